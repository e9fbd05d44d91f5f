//! A tenant's own retention, enforced: the shared hashes (events and
//! delivery states by time bucket) and the endpoints' logs live as long as
//! the longest retention a tenant may have
//! ([`crate::Config::storage_retention`]); a tenant whose retention is
//! shorter has what is older removed by the workers' sweep, in steps of
//! the same kind as a tenant's deletion (`store::tenant_deletion`), named
//! by its own ids only. Reads treat what is older than the tenant's
//! retention as gone already, so the sweep only frees memory.
//!
//! The sweep holds `retention_sweep` (a key with a TTL of one sweep
//! interval, renewed between steps and released at the end) while it
//! runs, so one worker of the fleet sweeps at a time.

use redis::aio::ConnectionLike;
use redis::AsyncCommands;

use super::tenant_deletion::{remove_events, remove_log_entries};
use crate::ids::{self, IdKind, Partition};
use crate::Keys;

/// Takes the fleet's sweep for `hold_ms` unless another worker holds it.
pub async fn take_sweep(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    holder: &str,
    hold_ms: u64,
) -> redis::RedisResult<bool> {
    let taken: Option<String> = redis::cmd("SET")
        .arg(keys.retention_sweep())
        .arg(holder)
        .arg("NX")
        .arg("PX")
        .arg(hold_ms.max(1))
        .query_async(conn)
        .await?;
    Ok(taken.is_some())
}

/// Keeps the sweep for another `hold_ms` while `holder` has it; false
/// when another worker holds it now (the caller stops).
pub async fn renew_sweep(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    holder: &str,
    hold_ms: u64,
) -> redis::RedisResult<bool> {
    let key = keys.retention_sweep();
    let current: Option<String> = conn.get(&key).await?;
    if current.as_deref() != Some(holder) {
        return Ok(false);
    }
    let _: bool = conn.pexpire(&key, hold_ms.max(1) as i64).await?;
    Ok(true)
}

/// Lets the sweep go once a pass is over, if `holder` still has it.
pub async fn release_sweep(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    holder: &str,
) -> redis::RedisResult<()> {
    let key = keys.retention_sweep();
    let current: Option<String> = conn.get(&key).await?;
    if current.as_deref() == Some(holder) {
        let () = conn.del(&key).await?;
    }
    Ok(())
}

/// The own retention (ms) of each of `tenant_ids`, in order.
pub async fn retentions(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_ids: &[String],
) -> redis::RedisResult<Vec<Option<u64>>> {
    let mut pipe = redis::pipe();
    for id in tenant_ids {
        pipe.hget(keys.tenant(id), "retention_ms");
    }
    let values: Vec<Option<String>> = pipe.query_async(conn).await?;
    Ok(values
        .into_iter()
        .map(|v| v.and_then(|v| v.parse().ok()))
        .collect())
}

/// One step of removing what an endpoint of `tenant_id` holds from before
/// `cutoff_ms`: at most `chunk` entries of its log, among those already
/// handed out (a delivery still waiting for its first attempt is left to
/// the worker, which fails it once its event is gone), then, when none is
/// left, its attempts from before then. Returns how many went, and
/// whether the endpoint is done.
pub async fn sweep_endpoint_step(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    endpoint_id: &str,
    cutoff_ms: u64,
    chunk: usize,
) -> redis::RedisResult<(u64, bool)> {
    let Some(p) = ids::partition_of(IdKind::Endpoint, endpoint_id) else {
        return Ok((0, true));
    };
    let (exists, qhead): (bool, Option<String>) = redis::pipe()
        .exists(keys.endpoint(p, endpoint_id))
        .hget(keys.endpoint(p, endpoint_id), "qhead")
        .query_async(conn)
        .await?;
    // Log scores are creation times in µs.
    let cutoff_us = cutoff_ms.saturating_mul(1000);
    let upper: Option<u64> = match (exists, qhead.and_then(|q| q.parse::<f64>().ok())) {
        (false, _) => Some(cutoff_us),
        (true, Some(head)) => Some(cutoff_us.min(head as u64)),
        (true, None) => None,
    };
    let events: Vec<String> = match upper {
        Some(upper) => {
            conn.zrangebyscore_limit(
                keys.endpoint_deliveries(p, endpoint_id),
                "-inf",
                upper,
                0,
                chunk as isize,
            )
            .await?
        }
        None => Vec::new(),
    };
    if !events.is_empty() {
        remove_log_entries(conn, keys, tenant_id, p, endpoint_id, &events).await?;
    }
    let done = events.len() < chunk;
    if done {
        let () = redis::cmd("XTRIM")
            .arg(keys.attempts(p, endpoint_id))
            .arg("MINID")
            .arg(cutoff_ms)
            .exec_async(conn)
            .await?;
    }
    Ok((events.len() as u64, done))
}

/// One step of removing the tenant's events homed in `p` from before
/// `cutoff_ms` (those no endpoint log holds any more, or never did): at
/// most `chunk`. Returns how many went, and whether the partition is done.
pub async fn sweep_events_step(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    p: Partition,
    tenant_id: &str,
    cutoff_ms: u64,
    chunk: usize,
) -> redis::RedisResult<(u64, bool)> {
    let before = format!("({}", ids::time_prefix(IdKind::Event, cutoff_ms));
    let events: Vec<String> = conn
        .zrangebylex_limit(
            keys.tenant_events(p, tenant_id),
            "-",
            &before,
            0,
            chunk as isize,
        )
        .await?;
    if !events.is_empty() {
        remove_events(conn, keys, p, tenant_id, &events).await?;
    }
    let done = events.len() < chunk;
    if done {
        let () = conn
            .zrembylex(keys.tenant_failed(p, tenant_id), "-", &before)
            .await?;
    }
    Ok((events.len() as u64, done))
}
