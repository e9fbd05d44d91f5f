//! Waiting for a test send's attempt without polling, and bounding how
//! many a tenant may have waiting.
//!
//! `POST /webhooks/{id}/test` answers with the attempt's result, so the
//! request waits for a worker (up to the endpoint's timeout plus 2 s).
//! Polling the delivery's state every few ms cost Redis ~350 commands per
//! second per waiting request: a few hundred test sends to a hanging
//! receiver took a quarter of a Redis core from every other tenant.
//! Instead `record.lua` publishes each test send's delivery id on
//! `hf:attempted` in the same step that records its attempt, and each API
//! process holds **one** subscription to that channel
//! ([`hookfleet_common::subscription`]) that wakes the request waiting for
//! that id. A waiting request reads the delivery when it starts, when it is
//! woken, and once at its deadline: a constant, whatever the wait.
//!
//! A notice lost while the subscription was away is covered by the
//! resubscription itself: every waiter reads once more then.
//!
//! Each waiting test send also holds one of its tenant's
//! `HOOKFLEET_TEST_SEND_MAX_PENDING` places, fleet-wide
//! (`test_send_slot.lua`); past that the API answers 429 with
//! `Retry-After`. A place frees itself when its wait would have ended, so a
//! process that dies mid-wait does not keep it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hookfleet_common::outage::RedisOutage;
use hookfleet_common::store::caps;
use hookfleet_common::{subscription, Config, Keys};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::state::AppState;

/// The requests of this process waiting for test sends' attempts.
pub struct AttemptWaiters {
    inner: Arc<Inner>,
    /// Dropping it (with the app) ends the subscription.
    _stop: watch::Sender<bool>,
}

struct Inner {
    /// Delivery id → the waiting request's wake-up.
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
    /// Bumped on every (re)subscription: a notice may have been missed.
    subscribed: watch::Sender<u64>,
}

impl AttemptWaiters {
    /// Subscribes to `record.lua`'s test-send notices for this process.
    pub fn start(config: &Config, keys: &Keys) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            waiting: Mutex::new(HashMap::new()),
            subscribed: watch::Sender::new(0),
        });
        let on_subscribed = {
            let inner: Weak<Inner> = Arc::downgrade(&inner);
            move || {
                if let Some(inner) = inner.upgrade() {
                    inner.subscribed.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        };
        let on_message = {
            let inner: Weak<Inner> = Arc::downgrade(&inner);
            move |payload: &[u8]| {
                let (Some(inner), Ok(id)) = (inner.upgrade(), std::str::from_utf8(payload)) else {
                    return;
                };
                let notify = inner
                    .waiting
                    .lock()
                    .ok()
                    .and_then(|waiting| waiting.get(id).cloned());
                if let Some(notify) = notify {
                    notify.notify_one();
                }
            }
        };
        let (addresses, channel) = (subscription::addresses(config), keys.attempted_channel());
        let keepalive = config.wake_keepalive;
        tokio::spawn(async move {
            // The subscription is the API's only loop that calls Redis;
            // requests report their own failures as they answer 503.
            let outage = RedisOutage::new();
            subscription::listen(
                addresses,
                channel,
                keepalive,
                on_subscribed,
                on_message,
                &outage,
                stop_rx,
            )
            .await;
        });
        Self { inner, _stop: stop }
    }

    /// Starts waiting for `delivery_id`'s attempt. Register before the
    /// first read of its state: a notice that arrives in between is kept
    /// (a [`Notify`] permit), not lost.
    pub fn register(&self, delivery_id: &str) -> Waiter {
        let notify = Arc::new(Notify::new());
        if let Ok(mut waiting) = self.inner.waiting.lock() {
            waiting.insert(delivery_id.to_string(), notify.clone());
        }
        Waiter {
            inner: self.inner.clone(),
            delivery_id: delivery_id.to_string(),
            notify,
            subscribed: self.inner.subscribed.subscribe(),
        }
    }
}

/// One request's wait; it stops being notified when dropped.
pub struct Waiter {
    inner: Arc<Inner>,
    delivery_id: String,
    notify: Arc<Notify>,
    subscribed: watch::Receiver<u64>,
}

impl Waiter {
    /// Waits until the attempt may have been recorded (its notice came, or
    /// the subscription was renewed and one may have been missed): true;
    /// or until `deadline`: false.
    pub async fn woken(&mut self, deadline: Instant) -> bool {
        tokio::select! {
            _ = self.notify.notified() => true,
            changed = self.subscribed.changed() => {
                if changed.is_err() {
                    // The subscription is gone (the app is stopping): wait
                    // out the deadline rather than spin.
                    tokio::time::sleep_until(deadline).await;
                    return false;
                }
                true
            }
            _ = tokio::time::sleep_until(deadline) => false,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.inner.waiting.lock() {
            waiting.remove(&self.delivery_id);
        }
    }
}

/// One of a tenant's places for a waiting test send; give it back with
/// [`Place::release`] (or it frees itself when the wait would have ended).
pub struct Place {
    tenant_id: String,
    token: String,
}

impl Place {
    /// Takes a place for a wait of up to `wait`, or 429 (`Retry-After`: when
    /// the first taken place frees itself at the latest) when the tenant
    /// has `HOOKFLEET_TEST_SEND_MAX_PENDING` waiting already.
    pub async fn take(state: &AppState, tenant_id: &str, wait: Duration) -> Result<Self, ApiError> {
        let token = format!("{:016x}", rand::random::<u64>());
        let cap = state.store.config.test_send_max_pending;
        let mut conn = state.conn().await?;
        let retry_in_ms = caps::take_test_send_place(
            &mut conn,
            &state.store.keys,
            tenant_id,
            cap,
            &token,
            wait.as_millis() as u64,
        )
        .await?;
        if retry_in_ms > 0 {
            return Err(ApiError::too_many_test_sends(
                cap,
                retry_in_ms.div_ceil(1000).max(1),
            ));
        }
        Ok(Self {
            tenant_id: tenant_id.to_string(),
            token,
        })
    }

    /// Gives the place back; a failure only means it frees itself later.
    pub async fn release(self, state: &AppState) {
        if let Ok(mut conn) = state.conn().await {
            let removed = caps::release_test_send_place(
                &mut conn,
                &state.store.keys,
                &self.tenant_id,
                &self.token,
            )
            .await;
            if let Err(err) = removed {
                tracing::debug!(error = %err, "releasing a test send's place failed; it frees itself");
            }
        }
    }
}
