//! The worker registry: `workers` (worker id → its last heartbeat, JSON)
//! and `workers_seen` (worker ids by heartbeat time), written by each
//! worker every few seconds and read by `GET /api/v1/admin/workers`.

use redis::aio::ConnectionLike;

use crate::Keys;

/// Records a worker's heartbeat (`json`) at `at_ms`.
pub async fn beat(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    worker_id: &str,
    json: &str,
    at_ms: u64,
) -> redis::RedisResult<()> {
    redis::pipe()
        .hset(keys.workers(), worker_id, json)
        .ignore()
        .zadd(keys.workers_seen(), worker_id, at_ms)
        .ignore()
        .query_async(conn)
        .await
}

/// Takes workers out of the registry (one stopping, or silent ones).
pub async fn remove(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    worker_ids: &[String],
) -> redis::RedisResult<()> {
    if worker_ids.is_empty() {
        return Ok(());
    }
    redis::pipe()
        .hdel(keys.workers(), worker_ids)
        .ignore()
        .zrem(keys.workers_seen(), worker_ids)
        .ignore()
        .query_async(conn)
        .await
}

/// The heartbeats (JSON) of the workers heard from since `cutoff_ms`,
/// oldest first; those silent longer are dropped from the registry.
pub async fn live(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    cutoff_ms: u64,
) -> redis::RedisResult<Vec<String>> {
    let stale: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(keys.workers_seen())
        .arg("-inf")
        .arg(format!("({cutoff_ms}"))
        .query_async(conn)
        .await?;
    remove(conn, keys, &stale).await?;
    let live: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(keys.workers_seen())
        .arg(cutoff_ms)
        .arg("+inf")
        .query_async(conn)
        .await?;
    if live.is_empty() {
        return Ok(Vec::new());
    }
    let beats: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(keys.workers())
        .arg(&live)
        .query_async(conn)
        .await?;
    Ok(beats.into_iter().flatten().collect())
}
