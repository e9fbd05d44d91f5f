//! Operational events waiting to be published: `{pN}:notices`, members
//! `record.lua` adds in the same step as the state change they report,
//! scored by when they are due to be published (see the worker's
//! `operational.rs`).

use redis::aio::ConnectionLike;

use crate::ids::Partition;
use crate::Keys;

/// Up to `limit` notices of partition `p` due at `cutoff_ms` or before.
pub async fn due(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    p: Partition,
    cutoff_ms: u64,
    limit: usize,
) -> redis::RedisResult<Vec<String>> {
    super::due_members(conn, keys.notices(p), cutoff_ms, limit).await
}

/// A notice published: it leaves the set.
pub async fn done(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    p: Partition,
    member: &str,
) -> redis::RedisResult<()> {
    redis::cmd("ZREM")
        .arg(keys.notices(p))
        .arg(member)
        .exec_async(conn)
        .await
}

/// A notice whose publish failed goes to the back of the line (due
/// `now_ms`), if it is still there.
pub async fn again(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    p: Partition,
    member: &str,
    now_ms: u64,
) -> redis::RedisResult<()> {
    redis::cmd("ZADD")
        .arg(keys.notices(p))
        .arg("XX")
        .arg(now_ms)
        .arg(member)
        .exec_async(conn)
        .await
}
