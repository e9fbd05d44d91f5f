//! Wake-ups: publishers `PUBLISH` on the wake channel inside the publish
//! script, and this task turns each message into a [`Notify`] permit, so an
//! idle worker claims a new event at once instead of on its next poll.
//!
//! Messages can be lost (while reconnecting, say); the claim loop's poll
//! interval is the safety net, not the latency path.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};

/// Subscribes to `channel` and notifies `notify` on every message until
/// shutdown, reconnecting with backoff when Redis goes away. `addresses`
/// holds the one Redis, or cluster nodes: after a lost or failed
/// subscription the next address is tried.
pub async fn listen(
    addresses: Vec<String>,
    channel: String,
    notify: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0usize;
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
                            Some(_) => notify.notify_one(),
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
