//! Wake-ups: publishers `PUBLISH` on the wake channel inside the publish
//! script, and this task turns each message into a [`Notify`] permit, so an
//! idle worker claims a new event at once instead of on its next poll.
//!
//! Each message names the partition that got work. The claim loop skips
//! a partition its last claim found empty until something is due there
//! (or the poll interval passes); a wake-up for the partition ends that at
//! once, and the loop scans it first.
//!
//! Messages can be lost (while reconnecting, say); the claim loop's poll
//! interval is the safety net, not the latency path. After (re)subscribing
//! every partition counts as woken: anything may have been published while
//! the subscription was away. The subscription itself (reconnects, the
//! keepalive ping that finds a silently dropped connection) is
//! `hookfleet_common::subscription`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hookfleet_common::outage::RedisOutage;
use tokio::sync::{watch, Notify};

/// The most partitions a configuration may have (`HOOKFLEET_PARTITIONS`).
const MAX_PARTITIONS: usize = hookfleet_common::ids::MAX_PARTITIONS as usize;

/// The partitions named by wake-ups since the claim loop last looked: one
/// bit per partition.
#[derive(Debug)]
pub struct Woken([AtomicU64; MAX_PARTITIONS.div_ceil(64)]);

impl Default for Woken {
    fn default() -> Self {
        Woken::new()
    }
}

impl Woken {
    pub fn new() -> Self {
        Woken(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    /// Marks `partition` as having new work.
    pub fn set(&self, partition: u16) {
        let index = usize::from(partition);
        if let Some(word) = self.0.get(index / 64) {
            word.fetch_or(1 << (index % 64), Ordering::Relaxed);
        }
    }

    /// Marks every partition (a wake-up may have been missed).
    pub fn set_all(&self) {
        for word in &self.0 {
            word.store(u64::MAX, Ordering::Relaxed);
        }
    }

    /// Takes the marked partitions, lowest first, and clears them.
    pub fn take(&self) -> Vec<u16> {
        let mut taken = Vec::new();
        for (w, word) in self.0.iter().enumerate() {
            let mut bits = word.swap(0, Ordering::Relaxed);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Ok(p) = u16::try_from(w * 64 + bit) {
                    taken.push(p);
                }
            }
        }
        taken
    }
}

/// Subscribes to `channel` (see [`hookfleet_common::subscription`]) and
/// notifies `notify` on every message until shutdown; a message's partition
/// number is marked in `woken`, and after each (re)subscription every
/// partition is: anything may have been published while it was away.
pub async fn listen(
    addresses: Vec<String>,
    channel: String,
    keepalive: Duration,
    notify: Arc<Notify>,
    woken: Arc<Woken>,
    outage: Arc<RedisOutage>,
    shutdown: watch::Receiver<bool>,
) {
    let on_subscribed = {
        let (notify, woken) = (notify.clone(), woken.clone());
        move || {
            woken.set_all();
            notify.notify_one();
        }
    };
    let on_message = move |payload: &[u8]| {
        if let Some(partition) = std::str::from_utf8(payload)
            .ok()
            .and_then(|text| text.parse::<u16>().ok())
        {
            woken.set(partition);
        }
        notify.notify_one();
    };
    hookfleet_common::subscription::listen(
        addresses,
        channel,
        keepalive,
        on_subscribed,
        on_message,
        &outage,
        shutdown,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn woken_partitions_are_taken_once_lowest_first() {
        let woken = Woken::new();
        assert!(woken.take().is_empty());
        for p in [700, 3, 64, 3, 1023] {
            woken.set(p);
        }
        woken.set(1024); // beyond the limit: ignored
        assert_eq!(woken.take(), vec![3, 64, 700, 1023]);
        assert!(woken.take().is_empty());
        woken.set_all();
        assert_eq!(woken.take().len(), MAX_PARTITIONS);
    }
}
