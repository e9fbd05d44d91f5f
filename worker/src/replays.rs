//! Replays, run by the workers: every poll interval a worker looks in each
//! partition for a replay that is due (new, or left by a worker that
//! stopped renewing its lease), takes it under a lease and runs it a chunk
//! at a time (`replay_chunk.lua`: each chunk queues its deliveries and
//! moves the replay's cursor in one atomic step), paced at
//! `HOOKFLEET_REPLAY_RATE` log entries per second, until it ends, is
//! cancelled, or another worker has taken it over. A replay therefore
//! outlives the API process that accepted it and the worker running it.

use std::sync::Arc;
use std::time::Duration;

use hookfleet_common::ids::Partition;
use hookfleet_common::outage::Source;
use hookfleet_common::store::replay::{self, Step};
use tokio::sync::watch;

use crate::context::Context;
use crate::rounds::{every_poll, Round};

/// Most log entries one chunk looks at.
const CHUNK_MAX: u64 = 200;

/// Runs the replays due in any partition, until shutdown (see
/// `rounds.rs`: a round that meets a Redis error ends there).
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    const SOURCE: Source = Source::task("running replays");
    let round = |mut shutdown: watch::Receiver<bool>| {
        let ctx = ctx.clone();
        async move {
            for p in ctx.store.config.all_partitions() {
                loop {
                    if *shutdown.borrow() {
                        return Round::Shutdown;
                    }
                    let token = format!("{:016x}", rand::random::<u64>());
                    match take(&ctx, p, &token).await {
                        Ok(Some(replay_id)) => {
                            drive(&ctx, p, &replay_id, &token, &mut shutdown).await;
                        }
                        Ok(None) => break,
                        Err(err) => return Round::Failed(err),
                    }
                }
            }
            Round::Done
        }
    };
    every_poll(&ctx, SOURCE, &mut shutdown, round).await;
}

async fn take(ctx: &Context, p: Partition, token: &str) -> Result<Option<String>, String> {
    let mut conn = ctx.store.pool.get().await.map_err(|e| e.to_string())?;
    replay::take(&mut conn, &ctx.store.keys, p, lease_ms(ctx), token)
        .await
        .map_err(|e| e.to_string())
}

fn lease_ms(ctx: &Context) -> u64 {
    ctx.store.config.lease.as_millis() as u64
}

/// Runs one replay's chunks while this worker holds it. On shutdown it
/// stops between chunks; the replay is taken over when its lease expires.
async fn drive(
    ctx: &Context,
    p: Partition,
    replay_id: &str,
    token: &str,
    shutdown: &mut watch::Receiver<bool>,
) {
    let rate = u64::from(ctx.store.config.replay_rate.max(1));
    let chunk = CHUNK_MAX.min(rate);
    // Each chunk, then a pause that keeps the pace at `rate` per second.
    let pause = Duration::from_secs_f64(chunk as f64 / rate as f64);
    let endpoint_id = match load_endpoint_id(ctx, p, replay_id).await {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(%replay_id, error = %err, "reading a replay failed; it is taken again after its lease");
            return;
        }
    };
    loop {
        let step = {
            let mut conn = match ctx.store.pool.get().await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(%replay_id, error = %err, "a replay's chunk could not run; it is taken again after its lease");
                    return;
                }
            };
            replay::step(
                &mut conn,
                &ctx.store.keys,
                p,
                replay::StepRequest {
                    replay_id,
                    endpoint_id: &endpoint_id,
                    token,
                    chunk,
                    lease_ms: lease_ms(ctx),
                },
            )
            .await
        };
        match step {
            Ok(Step::More { .. }) => {}
            Ok(Step::Ended { scanned, queued }) => {
                tracing::info!(%replay_id, %endpoint_id, scanned, queued, "replay ended");
                return;
            }
            Ok(Step::Lost) => {
                tracing::info!(%replay_id, "replay cancelled or taken over; stopped");
                return;
            }
            Err(err) => {
                ctx.metrics.redis_errors.inc();
                tracing::warn!(%replay_id, error = %err, "a replay's chunk failed; it is taken again after its lease");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = crate::shutdown::wait(shutdown) => return,
        }
    }
}

async fn load_endpoint_id(
    ctx: &Context,
    p: Partition,
    replay_id: &str,
) -> Result<Option<String>, String> {
    let mut conn = ctx.store.pool.get().await.map_err(|e| e.to_string())?;
    let record = replay::load(&mut conn, &ctx.store.keys, p, replay_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(record.get("endpoint").cloned())
}
