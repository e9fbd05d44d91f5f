//! Tenant deletions, run by the workers: every poll interval a worker looks
//! for a deletion whose lease has expired (a new one, or one whose worker
//! died), takes it and runs it step by step (`store::tenant_deletion`),
//! saving its cursor after each step and pacing itself at
//! `HOOKFLEET_TENANT_DELETE_RATE` entries a second, until the tenant is
//! gone or the worker loses the lease. A deletion therefore survives the
//! API process that accepted it and any worker that runs it.

use std::sync::Arc;
use std::time::Duration;

use hookfleet_common::ids::Partition;
use hookfleet_common::outage::Source;
use hookfleet_common::store::tenant_deletion::{self as deletion, DeletionJob, Phase, StepScope};
use hookfleet_common::time_util::now_ms;
use tokio::sync::watch;

use crate::context::Context;
use crate::rounds::{every_poll, Round};

/// Most log entries or events one step removes.
const CHUNK_MAX: u32 = 500;

/// Runs the deletions that are due, until shutdown (see `rounds.rs`).
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    const SOURCE: Source = Source::task("deleting tenants");
    let round = |mut shutdown: watch::Receiver<bool>| {
        let ctx = ctx.clone();
        async move {
            loop {
                if *shutdown.borrow() {
                    return Round::Shutdown;
                }
                let token = format!("{:016x}", rand::random::<u64>());
                match take(&ctx, &token).await {
                    Ok(Some((tenant_id, job))) => {
                        drive(&ctx, &tenant_id, job, &token, &mut shutdown).await;
                    }
                    Ok(None) => return Round::Done,
                    Err(err) => return Round::Failed(err),
                }
            }
        }
    };
    every_poll(&ctx, SOURCE, &mut shutdown, round).await;
}

async fn take(ctx: &Context, token: &str) -> Result<Option<(String, DeletionJob)>, String> {
    let mut conn = ctx.store.pool.get().await.map_err(|e| e.to_string())?;
    deletion::take(&mut conn, &ctx.store.keys, lease_ms(ctx), token)
        .await
        .map_err(|e| e.to_string())
}

/// How long after the delete nothing is removed: requests that resolved a
/// key of the tenant just before it (from Redis, or from an API process's
/// key cache until its `hf:auth` message arrives, at most
/// `HOOKFLEET_API_KEY_CACHE`) finish their writes first, so none lands
/// after its kind of data was removed.
fn grace(ctx: &Context) -> Duration {
    ctx.store.config.api_key_cache + Duration::from_secs(5)
}

fn lease_ms(ctx: &Context) -> u64 {
    ctx.store.config.lease.as_millis() as u64
}

/// What one step did.
enum Outcome {
    /// Progress saved; go on after a pause of `removed` entries' worth.
    Saved { removed: u64 },
    /// Too early to remove anything (see [`grace`]): look again then.
    Wait(Duration),
    /// The tenant is gone.
    Done,
    /// Another worker holds the deletion now.
    Lost,
}

/// Runs one deletion's steps while this worker holds it. On shutdown or a
/// Redis error it stops between steps; the deletion is taken again, from
/// its last saved cursor, once its lease expires.
async fn drive(
    ctx: &Context,
    tenant_id: &str,
    mut job: DeletionJob,
    token: &str,
    shutdown: &mut watch::Receiver<bool>,
) {
    let rate = ctx.store.config.tenant_delete_rate.max(1);
    let chunk = CHUNK_MAX.min(rate) as usize;
    tracing::info!(%tenant_id, phase = job.phase.name(), "deleting a tenant");
    loop {
        match step(ctx, tenant_id, &mut job, token, chunk).await {
            Ok(Outcome::Saved { removed }) => {
                let pause = Duration::from_secs_f64(removed as f64 / f64::from(rate));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = crate::shutdown::wait(shutdown) => return,
                }
            }
            Ok(Outcome::Wait(pause)) => {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = crate::shutdown::wait(shutdown) => return,
                }
            }
            Ok(Outcome::Done) => {
                tracing::info!(
                    %tenant_id,
                    endpoints = job.endpoints,
                    deliveries = job.deliveries,
                    events = job.events,
                    "tenant deleted"
                );
                return;
            }
            Ok(Outcome::Lost) => {
                tracing::info!(%tenant_id, "a tenant's deletion was taken over; stopped");
                return;
            }
            Err(err) => {
                ctx.metrics.redis_errors.inc();
                tracing::warn!(%tenant_id, error = %err, "a tenant's deletion step failed; it is taken again after its lease");
                return;
            }
        }
    }
}

/// Runs the next step of `job` and saves where it got to.
async fn step(
    ctx: &Context,
    tenant_id: &str,
    job: &mut DeletionJob,
    token: &str,
    chunk: usize,
) -> Result<Outcome, String> {
    let store = &ctx.store;
    let keys = &store.keys;
    let mut conn = store.pool.get().await.map_err(|e| e.to_string())?;
    let scope = StepScope {
        tenant_id,
        chunk,
        now_ms: now_ms(),
        retention_ms: store.config.storage_retention().as_millis() as u64,
    };
    let mut removed = 0;
    match job.phase {
        Phase::Access => {
            deletion::revoke_access(&mut conn, keys, tenant_id, job.requested_ms)
                .await
                .map_err(|e| e.to_string())?;
            let ready_at = job.requested_ms + grace(ctx).as_millis() as u64;
            let now = now_ms();
            if now < ready_at {
                let saved =
                    deletion::save(&mut conn, keys, tenant_id, token, lease_ms(ctx), Some(job))
                        .await
                        .map_err(|e| e.to_string())?;
                let pause = Duration::from_millis((ready_at - now).min(1000));
                return Ok(if saved {
                    Outcome::Wait(pause)
                } else {
                    Outcome::Lost
                });
            }
            job.phase = Phase::Endpoints;
        }
        Phase::Endpoints => {
            let ids = deletion::endpoint_ids(&mut conn, keys, tenant_id)
                .await
                .map_err(|e| e.to_string())?;
            let next = ids
                .into_iter()
                .find(|id| job.after.as_deref().is_none_or(|after| id.as_str() > after));
            match next {
                None => {
                    job.phase = Phase::Events;
                    job.partition = 0;
                }
                Some(endpoint_id) => {
                    let (gone, done) =
                        deletion::clear_endpoint_step(&mut conn, keys, scope, &endpoint_id)
                            .await
                            .map_err(|e| e.to_string())?;
                    removed = gone;
                    job.deliveries += gone;
                    if done {
                        job.endpoints += 1;
                        job.after = Some(endpoint_id);
                    }
                }
            }
        }
        Phase::Events => {
            if job.partition >= store.config.partitions {
                job.phase = Phase::Records;
            } else {
                let p = Partition(job.partition);
                let (gone, done) =
                    deletion::clear_events_step(&mut conn, keys, p, tenant_id, chunk)
                        .await
                        .map_err(|e| e.to_string())?;
                removed = gone;
                job.events += gone;
                if done {
                    job.partition += 1;
                }
            }
        }
        Phase::Records => {
            deletion::clear_records(&mut conn, keys, tenant_id, job.requested_ms)
                .await
                .map_err(|e| e.to_string())?;
            let saved = deletion::save(&mut conn, keys, tenant_id, token, lease_ms(ctx), None)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(if saved { Outcome::Done } else { Outcome::Lost });
        }
    }
    let saved = deletion::save(&mut conn, keys, tenant_id, token, lease_ms(ctx), Some(job))
        .await
        .map_err(|e| e.to_string())?;
    Ok(if saved {
        Outcome::Saved { removed }
    } else {
        Outcome::Lost
    })
}
