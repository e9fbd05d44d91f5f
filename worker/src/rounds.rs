//! The loop the worker's lease-based background jobs share (replays and
//! tenant deletions): a round every poll interval, each round taking and
//! running what is due; a round that meets a Redis error ends there, is
//! reported once to the outage log, and makes the next wait longer
//! (doubling, up to 5 s), so an outage costs a few calls, not a call per
//! partition per poll.

use std::time::Duration;

use hookfleet_common::outage::Source;
use tokio::sync::watch;

use crate::context::Context;

/// How a round ended.
pub enum Round {
    /// Nothing more is due now.
    Done,
    /// Redis failed (the error, for the outage log).
    Failed(String),
    /// Shutdown was asked for.
    Shutdown,
}

/// Runs `round` every poll interval until shutdown; each round gets its
/// own handle on the shutdown signal (and owns what it uses, so the whole
/// loop can be spawned).
pub async fn every_poll<F, Fut>(
    ctx: &Context,
    source: Source,
    shutdown: &mut watch::Receiver<bool>,
    mut round: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = Round>,
{
    let every = ctx
        .store
        .config
        .poll_interval
        .max(Duration::from_millis(50));
    let mut failures: u32 = 0;
    loop {
        match round(shutdown.clone()).await {
            Round::Shutdown => return,
            Round::Done => {
                ctx.outage.succeeded(source);
                failures = 0;
            }
            Round::Failed(err) => {
                ctx.metrics.redis_errors.inc();
                ctx.outage.failed(source, &err);
                failures = failures.saturating_add(1);
            }
        }
        let wait = (every * 2u32.saturating_pow(failures.min(6))).min(Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::shutdown::wait(shutdown) => return,
        }
    }
}
