//! Wake-ups: publishers `PUBLISH` on the wake channel inside the publish
//! script, and this task turns each message into a [`Notify`] permit, so an
//! idle worker claims a new event at once instead of on its next poll.
//!
//! Each message names the partition that got work; the claim loop scans
//! the last one named first, instead of reaching it after up to P − 1
//! empty claims (one Redis round trip each) in its rotation.
//!
//! Messages can be lost (while reconnecting, say); the claim loop's poll
//! interval is the safety net, not the latency path.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};

/// The partition most recently named by a wake-up, if any.
#[derive(Debug)]
pub struct Woken(AtomicU32);

impl Default for Woken {
    /// None named yet (a derived default would name partition 0).
    fn default() -> Self {
        Woken::new()
    }
}

impl Woken {
    const NONE: u32 = u32::MAX;

    pub fn new() -> Self {
        Woken(AtomicU32::new(Self::NONE))
    }

    fn set(&self, partition: u16) {
        self.0.store(u32::from(partition), Ordering::Relaxed);
    }

    /// Takes the partition named last (and forgets it).
    pub fn take(&self) -> Option<u16> {
        u16::try_from(self.0.swap(Self::NONE, Ordering::Relaxed)).ok()
    }
}

/// Subscribes to `channel` and notifies `notify` on every message until
/// shutdown, reconnecting with backoff when Redis goes away; a message's
/// partition number goes to `woken`. `addresses` holds the one Redis, or
/// cluster nodes: after a lost or failed subscription the next is tried.
pub async fn listen(
    addresses: Vec<String>,
    channel: String,
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
            Ok(mut pubsub) => {
                backoff = Duration::from_millis(100);
                // Anything published while we were away may be waiting.
                notify.notify_one();
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => {
                                if let Ok(partition) = message.get_payload::<u16>() {
                                    woken.set(partition);
                                }
                                notify.notify_one();
                            }
                            None => break,
                        },
                        _ = crate::shutdown::wait(&mut shutdown) => return,
                    }
                }
                tracing::warn!("wake subscription lost; reconnecting");
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
