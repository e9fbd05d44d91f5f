//! One Redis pub/sub subscription per process, kept alive: the worker's
//! wake-ups (`hf:wake`) and the API's test-send notices (`hf:attempted`)
//! both ride on it, so a process holds one connection per channel however
//! many tasks wait on it, and Redis does no work per waiting request.
//!
//! Messages can be lost while a subscription is away, so every
//! (re)subscription calls `on_subscribed` first: its owner re-checks
//! whatever it was waiting for. A subscription only reads, so a connection
//! dropped silently on the way (a NAT or load balancer forgetting an idle
//! flow, a node gone without a reset) would never end it; after `keepalive`
//! without a message it is pinged, and replaced when the answer takes
//! longer. On a Redis Cluster a `PUBLISH` reaches subscribers on every node,
//! so one node is enough: the next address is tried after a failure.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::outage::{RedisOutage, Source};
use crate::{redis_pool, Config};

/// How the subscription reports to [`RedisOutage`].
const SUBSCRIPTION: Source = Source::task("subscription");

/// Where to subscribe: the one Redis, or every configured cluster node in
/// turn.
pub fn addresses(config: &Config) -> Vec<String> {
    let nodes = redis_pool::cluster_nodes(config);
    if nodes.is_empty() {
        vec![config.redis_url.clone()]
    } else {
        nodes
    }
}

/// Subscribes to `channel` until `shutdown` turns true (or its sender is
/// dropped), calling `on_subscribed` after each (re)subscription and
/// `on_message` with each message's payload; reconnects with backoff (100
/// ms doubling to 5 s) when Redis goes away or a keepalive ping goes
/// unanswered, reporting each loss and failed attempt to `outage` (which
/// logs an outage once, not once per attempt). Processes start on different
/// addresses, so subscriptions spread over a cluster's nodes.
pub async fn listen(
    addresses: Vec<String>,
    channel: String,
    keepalive: Duration,
    mut on_subscribed: impl FnMut() + Send,
    mut on_message: impl FnMut(&[u8]) + Send,
    outage: &RedisOutage,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut attempt: usize = rand::random::<u32>() as usize;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(redis_url) = addresses.get(attempt % addresses.len().max(1)) else {
            tracing::error!(%channel, "no Redis address to subscribe to");
            return;
        };
        attempt = attempt.wrapping_add(1);
        match subscribe(redis_url, &channel).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                outage.succeeded(SUBSCRIPTION);
                on_subscribed();
                let (mut sink, mut messages) = pubsub.split();
                let mut heard = Instant::now();
                let lost = loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => {
                                heard = Instant::now();
                                on_message(message.get_payload_bytes());
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
                        _ = stopped(&mut shutdown) => return,
                    }
                };
                // Said once per loss, on top of the outage report: a
                // silent connection (dropped on the way, Redis itself
                // fine) is a network problem worth a warning of its own;
                // a closed one usually means Redis went away, which the
                // outage says.
                if lost == "silent" {
                    tracing::warn!(%channel, "subscription silent (no answer to a keepalive ping); reconnecting");
                } else {
                    tracing::info!(%channel, "subscription lost; reconnecting");
                }
                outage.failed(
                    SUBSCRIPTION,
                    &format_args!("subscription {lost} ({channel})"),
                );
            }
            Err(err) => {
                outage.failed(
                    SUBSCRIPTION,
                    &format_args!("cannot subscribe to {channel}: {err}"),
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut shutdown) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Resolves when `shutdown` is true or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
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
