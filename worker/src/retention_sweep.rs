//! The retention sweep: every `HOOKFLEET_RETENTION_SWEEP`, one worker of
//! the fleet (the one that takes `retention_sweep` first) removes the data
//! of each tenant whose retention (its own, or the server's) is shorter
//! than the storage's (`HOOKFLEET_TENANT_RETENTION_MAX`): each endpoint's
//! log entries, delivery states and attempts from before the tenant's
//! retention, and its events from before then. Steps are bounded and
//! paced like a tenant's deletion (`HOOKFLEET_TENANT_DELETE_RATE`); a
//! sweep cut short by a crash is simply run again by the next. With the
//! default configuration (no tenant retention above the server's, none
//! below) there is nothing to sweep and the pass costs one read per tenant.

use std::sync::Arc;
use std::time::Duration;

use hookfleet_common::outage::Source;
use hookfleet_common::store::{retention, tenant_deletion, tenants};
use hookfleet_common::time_util::now_ms;
use tokio::sync::watch;

use crate::context::Context;

/// Most log entries or events one step removes.
const CHUNK: usize = 500;
/// Tenants read per page of the listing.
const PAGE: usize = 500;

/// Sweeps every interval while this worker runs.
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    const SOURCE: Source = Source::task("sweeping retention");
    let every = ctx
        .store
        .config
        .retention_sweep
        .max(Duration::from_millis(100));
    let holder = format!("{:016x}", rand::random::<u64>());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = crate::shutdown::wait(&mut shutdown) => return,
        }
        match sweep(&ctx, &holder, every, &mut shutdown).await {
            Ok(removed) => {
                ctx.outage.succeeded(SOURCE);
                if removed > 0 {
                    tracing::info!(
                        removed,
                        "retention sweep removed data past tenants' retention"
                    );
                }
            }
            Err(err) => {
                ctx.metrics.redis_errors.inc();
                ctx.outage.failed(SOURCE, &err);
            }
        }
    }
}

/// One pass over the tenants, when this worker holds the sweep; returns
/// how many log entries and events it removed.
async fn sweep(
    ctx: &Context,
    holder: &str,
    every: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<u64, String> {
    let keys = &ctx.store.keys;
    let mut conn = ctx.store.pool.get().await.map_err(|e| e.to_string())?;
    let hold_ms = every.as_millis() as u64;
    if !retention::take_sweep(&mut conn, keys, holder, hold_ms)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(0);
    }
    let removed = pass(ctx, &mut conn, holder, hold_ms, shutdown).await;
    // (A release that fails leaves the hold to expire after one interval.)
    let _ = retention::release_sweep(&mut conn, keys, holder).await;
    removed
}

/// The sweep's pass over every tenant, renewing the hold between steps
/// (and stopping when another worker has it).
async fn pass(
    ctx: &Context,
    conn: &mut hookfleet_common::redis_pool::RedisConn,
    holder: &str,
    hold_ms: u64,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<u64, String> {
    let store = &ctx.store;
    let keys = &store.keys;
    let config = &store.config;
    let storage_ms = config.storage_retention().as_millis() as u64;
    let default_ms = config.retention.as_millis() as u64;
    let rate = f64::from(config.tenant_delete_rate.max(1));
    let partitions: Vec<_> = config.all_partitions().collect();
    let mut removed = 0;
    let mut from: Option<u64> = None;
    let mut seen_last: Option<String> = None;
    loop {
        let page = tenants::ids_from(conn, keys, from, PAGE + 1)
            .await
            .map_err(|e| e.to_string())?;
        // Skip those of the last page again (a page starts at the last
        // one's creation time).
        let start = seen_last
            .as_ref()
            .and_then(|last| page.iter().position(|id| id == last))
            .map_or(0, |i| i + 1);
        let ids: Vec<String> = page[start..].to_vec();
        if ids.is_empty() {
            return Ok(removed);
        }
        let own = retention::retentions(conn, keys, &ids)
            .await
            .map_err(|e| e.to_string())?;
        for (tenant_id, own) in ids.iter().zip(own) {
            let retention_ms = own.unwrap_or(default_ms);
            if retention_ms >= storage_ms {
                continue;
            }
            let cutoff = now_ms().saturating_sub(retention_ms);
            let endpoints = tenant_deletion::endpoint_ids(conn, keys, tenant_id)
                .await
                .map_err(|e| e.to_string())?;
            for endpoint_id in &endpoints {
                loop {
                    if *shutdown.borrow() {
                        return Ok(removed);
                    }
                    let (gone, done) = retention::sweep_endpoint_step(
                        conn,
                        keys,
                        tenant_id,
                        endpoint_id,
                        cutoff,
                        CHUNK,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    removed += gone;
                    pace(gone, rate).await;
                    if !still_held(conn, keys, holder, hold_ms).await? {
                        return Ok(removed);
                    }
                    if done {
                        break;
                    }
                }
            }
            for &p in &partitions {
                loop {
                    if *shutdown.borrow() {
                        return Ok(removed);
                    }
                    let (gone, done) =
                        retention::sweep_events_step(conn, keys, p, tenant_id, cutoff, CHUNK)
                            .await
                            .map_err(|e| e.to_string())?;
                    removed += gone;
                    pace(gone, rate).await;
                    if !still_held(conn, keys, holder, hold_ms).await? {
                        return Ok(removed);
                    }
                    if done {
                        break;
                    }
                }
            }
        }
        if page.len() <= PAGE {
            return Ok(removed);
        }
        seen_last = ids.last().cloned();
        from = seen_last.as_deref().and_then(|id| {
            hookfleet_common::ids::created_ms(hookfleet_common::ids::IdKind::Tenant, id)
        });
    }
}

async fn still_held(
    conn: &mut hookfleet_common::redis_pool::RedisConn,
    keys: &hookfleet_common::Keys,
    holder: &str,
    hold_ms: u64,
) -> Result<bool, String> {
    retention::renew_sweep(conn, keys, holder, hold_ms)
        .await
        .map_err(|e| e.to_string())
}

async fn pace(removed: u64, rate: f64) {
    if removed > 0 {
        tokio::time::sleep(Duration::from_secs_f64(removed as f64 / rate)).await;
    }
}
