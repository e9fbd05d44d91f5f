//! How many of this worker's attempt slots each tenant holds, so that no
//! tenant holds more than its share (`HOOKFLEET_TENANT_SHARE` percent of
//! `HOOKFLEET_WORKER_CONCURRENCY`).
//!
//! The per-endpoint cap (`max_in_flight`, in `claim.lua`) bounds one slow
//! endpoint; a tenant with many slow endpoints could still fill a worker,
//! one endpoint at a time. The share bounds the tenant: when it holds its
//! share, the worker's claims skip its endpoints (`claim.lua` leaves them
//! due a moment later, for workers with room), and the rest of the slots
//! stay free for every other tenant. The count lives in the worker because
//! the slots do; each worker enforces it on its own slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::claim::TenantSlots;

/// Attempts in flight per tenant in this worker.
#[derive(Debug)]
pub struct TenantShare {
    limit: usize,
    holding: Mutex<HashMap<Arc<str>, usize>>,
}

impl TenantShare {
    /// A tenant may hold `percent` of `concurrency` slots (at least one).
    pub fn new(concurrency: usize, percent: u32) -> Self {
        let limit = (concurrency * percent as usize / 100).max(1);
        Self {
            limit,
            holding: Mutex::new(HashMap::new()),
        }
    }

    /// An attempt of `tenant` starts; hold the returned guard until it ends.
    pub fn start(self: &Arc<Self>, tenant: &Arc<str>) -> Held {
        if let Ok(mut holding) = self.holding.lock() {
            *holding.entry(tenant.clone()).or_default() += 1;
        }
        Held {
            share: self.clone(),
            tenant: tenant.clone(),
        }
    }

    /// What the next claim must know: each tenant's slots held here and
    /// the limit (it hands a tenant no more than the difference).
    pub fn slots(&self) -> TenantSlots {
        let holding = self.holding.lock().map_or_else(
            |_| Vec::new(),
            |holding| holding.iter().map(|(t, n)| (t.clone(), *n)).collect(),
        );
        TenantSlots {
            limit: self.limit,
            holding,
        }
    }
}

/// One attempt's slot, counted for its tenant until dropped.
pub struct Held {
    share: Arc<TenantShare>,
    tenant: Arc<str>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut holding) = self.share.holding.lock() {
            if let Some(n) = holding.get_mut(&self.tenant) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    holding.remove(&self.tenant);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tenants holding their whole share.
    fn full(share: &TenantShare) -> Vec<Arc<str>> {
        let slots = share.slots();
        slots
            .holding
            .into_iter()
            .filter(|(_, n)| *n >= slots.limit)
            .map(|(tenant, _)| tenant)
            .collect()
    }

    #[test]
    fn a_tenant_is_full_at_its_share_and_free_again_when_an_attempt_ends() {
        let share = Arc::new(TenantShare::new(10, 50));
        assert_eq!(share.slots().limit, 5);
        let noisy: Arc<str> = "ten_noisy".into();
        let quiet: Arc<str> = "ten_quiet".into();
        let mut held: Vec<Held> = (0..4).map(|_| share.start(&noisy)).collect();
        let _other = share.start(&quiet);
        assert!(full(&share).is_empty());
        held.push(share.start(&noisy));
        assert_eq!(full(&share), vec![noisy.clone()]);
        held.pop();
        assert!(full(&share).is_empty());
        drop(held);
        assert!(full(&share).is_empty());
        // At least one slot, whatever the figures.
        assert_eq!(TenantShare::new(1, 1).slots().limit, 1);
    }
}
