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
//! the subscription was away.
//!
//! A subscription only reads, so a connection dropped silently on the way
//! (a NAT or load balancer forgetting an idle flow, a node gone without a
//! reset) would never end it: wake-ups would stop and the worker would
//! fall back to polling for good. After `keepalive` without a message the
//! subscription is pinged, and replaced when the answer takes longer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

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

/// Subscribes to `channel` and notifies `notify` on every message until
/// shutdown, reconnecting with backoff when Redis goes away or a ping after
/// `keepalive` of quiet gets no answer within `keepalive`; a message's
/// partition number is marked in `woken`. `addresses` holds the one Redis, or
/// cluster nodes: after a lost or failed subscription the next is tried.
pub async fn listen(
    addresses: Vec<String>,
    channel: String,
    keepalive: Duration,
    notify: Arc<Notify>,
    woken: Arc<Woken>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    // Workers start on different nodes, so subscriptions spread out.
    let mut attempt: usize = rand::random::<u32>() as usize;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(redis_url) = addresses.get(attempt % addresses.len().max(1)) else {
            tracing::error!("no Redis address to subscribe to for wake-ups");
            return;
        };
        attempt = attempt.wrapping_add(1);
        match subscribe(redis_url, &channel).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                // Anything published while we were away may be waiting.
                woken.set_all();
                notify.notify_one();
                let (mut sink, mut messages) = pubsub.split();
                let mut heard = Instant::now();
                let lost = loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => {
                                heard = Instant::now();
                                if let Ok(partition) = message.get_payload::<u16>() {
                                    woken.set(partition);
                                }
                                notify.notify_one();
                            }
                            None => break "lost",
                        },
                        _ = tokio::time::sleep_until(heard + keepalive) => {
                            match tokio::time::timeout(keepalive, sink.ping::<redis::Value>()).await {
                                Ok(Ok(_)) => heard = Instant::now(),
                                Ok(Err(_)) => break "lost",
                                Err(_) => break "silent",
                            }
                        }
                        _ = crate::shutdown::wait(&mut shutdown) => return,
                    }
                };
                tracing::warn!(
                    subscription = lost,
                    "wake subscription {lost}; reconnecting"
                );
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot subscribe to wake-ups; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = crate::shutdown::wait(&mut shutdown) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe(redis_url: &str, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(redis_url)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(3), client.get_async_pubsub())
        .await
        .map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::Io, "timed out connecting to Redis"))
        })??;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
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
