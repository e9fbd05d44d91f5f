//! The tenants' publish configurations (endpoint index, event types found
//! defined, cap on retained events) this process has read lately, so that
//! a single publish skips the round trip that reads them.
//!
//! A cached copy is never used stale. It carries the tenant's
//! `config_version` as read before it; every change of those three is
//! announced to every partition before it is answered
//! (`hookfleet_common::store::tenant_config`), and `publish.lua` refuses a
//! call matched at an older version. The publish is then matched again
//! against what Redis holds, so an event published after a change was
//! answered always sees it: a new endpoint receives it, a deleted type is
//! refused, a new cap counts it.
//!
//! `HOOKFLEET_API_INDEX_CACHE` (30 s) bounds how long a copy is used: the
//! memory idle tenants take, and, should a change's announcement fail
//! (the change is then answered with an error), how long copies from
//! before it stay in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookfleet_common::publish::TenantConfig;
use tokio::time::Instant;

/// Most tenants kept; past it the cache starts afresh (a bound on memory).
const MAX_ENTRIES: usize = 10_000;

/// Tenant id → its configuration as read, and when the read was sent.
pub struct IndexCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Arc<TenantConfig>, Instant)>>,
}

impl IndexCache {
    /// A cache keeping each copy for `ttl` (zero: nothing is kept).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's cached configuration, if read within the TTL.
    pub fn get(&self, tenant_id: &str) -> Option<Arc<TenantConfig>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (config, read_at) = entries.get(tenant_id)?;
        (read_at.elapsed() < self.ttl).then(|| Arc::clone(config))
    }

    /// Keeps a configuration just read from Redis (`read_at`: when the read
    /// was sent), with the types the copy it replaces knew at the same
    /// version. A copy older than the one kept is not kept.
    pub fn put(&self, tenant_id: &str, mut config: TenantConfig, read_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some((kept, _)) = entries.get(tenant_id) {
            if kept.version > config.version {
                return;
            }
            config.learn_from(kept);
        } else if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(tenant_id.to_string(), (Arc::new(config), read_at));
    }

    /// Drops the tenant's copy (a publish found it outdated).
    pub fn forget(&self, tenant_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(tenant_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(version: u64, types: &[&str]) -> TenantConfig {
        TenantConfig {
            version,
            index: HashMap::from([("ep_1".to_string(), "1 *".to_string())]),
            max_events: None,
            types: types.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn a_copy_is_kept_for_the_ttl_and_merges_types_of_its_version() {
        let cache = IndexCache::new(Duration::from_secs(60));
        assert!(cache.get("ten_a").is_none());
        cache.put("ten_a", config(3, &["order.paid"]), Instant::now());
        cache.put("ten_a", config(3, &["order.sent"]), Instant::now());
        let kept = cache.get("ten_a").expect("kept");
        assert!(kept.knows("order.paid") && kept.knows("order.sent"));
        // A newer version starts its own list; an older one is not kept.
        cache.put("ten_a", config(4, &["order.sent"]), Instant::now());
        cache.put("ten_a", config(2, &["order.paid"]), Instant::now());
        let kept = cache.get("ten_a").expect("kept");
        assert_eq!(kept.version, 4);
        assert!(!kept.knows("order.paid") && kept.knows("order.sent"));
        cache.forget("ten_a");
        assert!(cache.get("ten_a").is_none());
    }

    #[test]
    fn a_copy_expires_and_a_zero_ttl_keeps_nothing() {
        let cache = IndexCache::new(Duration::from_secs(30));
        let now = Instant::now();
        let (Some(recent), Some(old)) = (
            now.checked_sub(Duration::from_secs(29)),
            now.checked_sub(Duration::from_secs(31)),
        ) else {
            return; // (a clock this close to its start cannot go back)
        };
        cache.put("ten_a", config(1, &[]), recent);
        assert!(cache.get("ten_a").is_some());
        cache.put("ten_b", config(1, &[]), old);
        assert!(cache.get("ten_b").is_none());
        let off = IndexCache::new(Duration::ZERO);
        off.put("ten_a", config(1, &[]), Instant::now());
        assert!(off.get("ten_a").is_none());
    }
}
