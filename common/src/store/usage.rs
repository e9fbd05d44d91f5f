//! What a tenant keeps, against its cap on retained events: the hourly
//! count `{t:<tid>}:usage` that `usage_reserve.lua` keeps for a tenant
//! with a cap (`max_events` in its hash), and the exact number of its
//! retained events, read from its per-partition event index.
//!
//! The cap is checked before an event is stored: the events are counted
//! first, in one step that refuses them when they would pass the cap, and
//! given back when they turn out not to be stored (a repeated idempotency
//! key, a failure). Concurrent publishes can therefore never pass the cap
//! together. A publish process that dies between counting and storing
//! leaves its events counted until their hour is past retention: the
//! count errs towards refusing, never towards keeping more.

use redis::aio::ConnectionLike;
use redis::AsyncCommands;

use super::scripts;
use crate::ids::{self, IdKind, Partition};
use crate::Keys;

const HOUR_MS: u64 = 3_600_000;

/// What counting some events against the cap found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The tenant has no cap: nothing was counted.
    Uncapped,
    /// Counted, in `hour` (give them back with the same hour).
    Added { hour: u64, total: u64 },
    /// Over the cap: nothing was counted. The oldest counted events leave
    /// the count in `retry_after_ms`.
    Over {
        cap: u64,
        total: u64,
        retry_after_ms: u64,
    },
}

fn script(keys: &Keys, tenant_id: &str) -> redis::ScriptInvocation<'static> {
    let mut invocation = scripts::USAGE_RESERVE.prepare_invoke();
    invocation
        .key(keys.tenant_usage(tenant_id))
        .key(keys.tenant(tenant_id));
    invocation
}

/// Counts `n` events of the tenant against its cap, unless they would
/// pass it. `default_retention_ms`: the server's, for a tenant without
/// its own.
pub async fn add(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    tenant_id: &str,
    n: u64,
    default_retention_ms: u64,
) -> redis::RedisResult<Counted> {
    let reply: Vec<i64> = script(keys, tenant_id)
        .arg(n)
        .arg(default_retention_ms)
        .arg("add")
        .invoke_async(conn)
        .await?;
    let at = |i: usize| reply.get(i).copied().unwrap_or(0);
    Ok(match (at(0), at(1)) {
        (1, -1) => Counted::Uncapped,
        (1, total) => Counted::Added {
            hour: at(2).max(0) as u64,
            total: total.max(0) as u64,
        },
        (_, total) => Counted::Over {
            cap: at(2).max(0) as u64,
            total: total.max(0) as u64,
            retry_after_ms: at(3).max(0) as u64,
        },
    })
}

/// Gives back `n` events counted in `hour` that were not stored.
pub async fn give_back(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    tenant_id: &str,
    n: u64,
    hour: u64,
    default_retention_ms: u64,
) -> redis::RedisResult<()> {
    let _: Vec<i64> = script(keys, tenant_id)
        .arg(n)
        .arg(default_retention_ms)
        .arg("back")
        .arg(hour)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// The tenant's cap (`max_events`), if it has one.
pub async fn cap(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<Option<u64>> {
    let value: Option<String> = conn.hget(keys.tenant(tenant_id), "max_events").await?;
    Ok(value.and_then(|v| v.parse().ok()))
}

/// What the cap counts now (`None` without a cap).
pub async fn counted(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<Option<u64>> {
    let value: Option<String> = conn.hget(keys.tenant_usage(tenant_id), "total").await?;
    Ok(value.and_then(|v| v.parse().ok()))
}

/// How many of the tenant's events published between `from_ms` and
/// `to_ms` (exclusive) are in its event index, summed over `partitions`
/// (test sends are not indexed; nor counted).
async fn indexed_between(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    partitions: &[Partition],
    ranges: &[(u64, u64)],
) -> redis::RedisResult<Vec<u64>> {
    let mut pipe = redis::pipe();
    for &(from_ms, to_ms) in ranges {
        for &p in partitions {
            pipe.cmd("ZLEXCOUNT")
                .arg(keys.tenant_events(p, tenant_id))
                .arg(format!("[{}", ids::time_prefix(IdKind::Event, from_ms)))
                .arg(format!("({}", ids::time_prefix(IdKind::Event, to_ms)));
        }
    }
    let counts: Vec<u64> = pipe.query_async(conn).await?;
    Ok(counts
        .chunks(partitions.len().max(1))
        .map(|chunk| chunk.iter().sum())
        .collect())
}

/// The tenant's retained events: those of its index within
/// `retention_ms` of `now_ms`, exactly.
pub async fn retained(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    partitions: &[Partition],
    retention_ms: u64,
    now_ms: u64,
) -> redis::RedisResult<u64> {
    let range = (now_ms.saturating_sub(retention_ms), now_ms + HOUR_MS);
    let counts = indexed_between(conn, keys, tenant_id, partitions, &[range]).await?;
    Ok(counts.into_iter().sum())
}

/// Starts the count from the tenant's event index, hour by hour (when a
/// cap is set or the retention it counts by changes), keeping per hour the
/// larger of the index's figure and what publishes counted meanwhile, and
/// stamped with `retention_ms` (`usage_rebuild.lua`; the change itself is
/// written only over a count for its retention, see `tenant_update.lua`).
/// Returns the total counted.
pub async fn rebuild(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    partitions: &[Partition],
    retention_ms: u64,
    now_ms: u64,
) -> redis::RedisResult<u64> {
    let usage = keys.tenant_usage(tenant_id);
    let first = now_ms.saturating_sub(retention_ms) / HOUR_MS;
    let hour = now_ms / HOUR_MS;
    let ranges: Vec<(u64, u64)> = (first..=hour)
        .map(|h| (h * HOUR_MS, (h + 1) * HOUR_MS))
        .collect();
    let counts = indexed_between(conn, keys, tenant_id, partitions, &ranges).await?;
    let mut invocation = scripts::USAGE_REBUILD.prepare_invoke();
    invocation
        .key(&usage)
        .arg(first)
        .arg(retention_ms + HOUR_MS)
        .arg(retention_ms);
    for (h, count) in (first..=hour).zip(counts) {
        if count > 0 {
            invocation.arg(h).arg(count);
        }
    }
    let total: u64 = invocation.invoke_async(conn).await?;
    Ok(total)
}
