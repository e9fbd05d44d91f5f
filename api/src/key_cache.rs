//! The API keys this process has looked up lately, so that most requests
//! (a publish above all) skip the Redis round trip that resolves their key.
//!
//! Staleness is bounded twice:
//! - every revocation (`DELETE …/api-keys/{id}`, a tenant's deletion)
//!   publishes the key's hash on `hf:auth` after deleting its lookup, and
//!   every API process drops it from its cache on receipt: a revoked key
//!   stops working across the fleet within the message's delay;
//! - an entry is used for at most `HOOKFLEET_API_KEY_CACHE` (1 s by
//!   default) after it was read, so a message lost to a broken connection
//!   (or a lookup that raced a revocation and cached the key just after its
//!   message) keeps a revoked key working for no longer than that. The
//!   whole cache is also dropped whenever the subscription (re)starts,
//!   since messages may have been missed while it was away.
//!
//! Only keys that resolved are kept: an unknown key is looked up every
//! time, so a new key works at once and guessing fills nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hookfleet_common::outage::RedisOutage;
use hookfleet_common::{subscription, Config, Keys};
use tokio::sync::watch;
use tokio::time::Instant;

/// Most entries kept; past it the cache starts afresh (a bound on memory,
/// far above the keys one process sees in a second).
const MAX_ENTRIES: usize = 100_000;

/// Resolved keys by their SHA-256: the lookup's value and when it was read.
pub struct KeyCache {
    inner: Arc<Inner>,
    _stop: watch::Sender<bool>,
}

struct Inner {
    ttl: Duration,
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl Inner {
    /// Drops the key whose SHA-256 is `hash` (`*`: every key).
    fn forget(&self, hash: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            if hash == "*" {
                entries.clear();
            } else {
                entries.remove(hash);
            }
        }
    }
}

impl KeyCache {
    /// Starts the cache and its subscription to `hf:auth`; a `ttl` of zero
    /// turns it off (every request looks its key up).
    pub fn start(config: &Config, keys: &Keys) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            ttl: config.api_key_cache,
            entries: Mutex::new(HashMap::new()),
        });
        if !config.api_key_cache.is_zero() {
            let on_subscribed = {
                let inner: Weak<Inner> = Arc::downgrade(&inner);
                move || {
                    if let Some(inner) = inner.upgrade() {
                        inner.forget("*");
                    }
                }
            };
            let on_message = {
                let inner: Weak<Inner> = Arc::downgrade(&inner);
                move |payload: &[u8]| {
                    if let (Some(inner), Ok(hash)) = (inner.upgrade(), std::str::from_utf8(payload))
                    {
                        inner.forget(hash);
                    }
                }
            };
            let (addresses, channel) = (subscription::addresses(config), keys.auth_channel());
            let keepalive = config.wake_keepalive;
            tokio::spawn(async move {
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
        }
        Self { inner, _stop: stop }
    }

    /// Drops the key whose SHA-256 is `hash` (`*`: every key) at once: the
    /// process that revokes a key does not wait for its own message.
    pub fn forget(&self, hash: &str) {
        self.inner.forget(hash);
    }

    /// The cached lookup of the key whose SHA-256 is `hash`, if it was read
    /// within the TTL.
    pub fn get(&self, hash: &str) -> Option<String> {
        if self.inner.ttl.is_zero() {
            return None;
        }
        let entries = self.inner.entries.lock().ok()?;
        let (value, read_at) = entries.get(hash)?;
        (read_at.elapsed() < self.inner.ttl).then(|| value.clone())
    }

    /// Keeps a lookup just read from Redis (`read_at`: when the read was
    /// sent, so the TTL counts from before Redis answered).
    pub fn put(&self, hash: &str, value: &str, read_at: Instant) {
        if self.inner.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.inner.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(hash.to_string(), (value.to_string(), read_at));
        }
    }
}
