//! The hold a running replay has on its endpoint (one replay per endpoint
//! at a time): renewed while it runs and released when it ends, each only
//! while this replay is still the holder (`replay_lock.lua`).

use redis::aio::ConnectionLike;

use super::scripts;
use crate::ids::Partition;
use crate::Keys;

/// What to do with the hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldAction {
    /// Keep holding for `hold_ms` more.
    Renew {
        hold_ms: u64,
    },
    Release,
}

/// Renews or releases `replay_id`'s hold on the endpoint; false when the
/// replay does not hold it (nothing written: another replay may).
pub async fn hold(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    endpoint_id: &str,
    replay_id: &str,
    action: HoldAction,
) -> redis::RedisResult<bool> {
    let (name, hold_ms) = match action {
        HoldAction::Renew { hold_ms } => ("renew", hold_ms),
        HoldAction::Release => ("release", 0),
    };
    let held: i64 = scripts::REPLAY_LOCK
        .key(keys.replay_running(partition, endpoint_id))
        .arg(replay_id)
        .arg(name)
        .arg(hold_ms)
        .invoke_async(conn)
        .await?;
    Ok(held == 1)
}

/// Takes the endpoint's hold for `replay_id` for `hold_ms`, unless another
/// replay holds it: `Ok(None)` when taken, else `Ok(Some(holder))`.
pub async fn acquire(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    endpoint_id: &str,
    replay_id: &str,
    hold_ms: u64,
) -> redis::RedisResult<Option<String>> {
    let running = keys.replay_running(partition, endpoint_id);
    let locked: Option<String> = redis::cmd("SET")
        .arg(&running)
        .arg(replay_id)
        .arg("NX")
        .arg("PX")
        .arg(hold_ms)
        .query_async(conn)
        .await?;
    if locked.is_some() {
        return Ok(None);
    }
    let holder: Option<String> = redis::cmd("GET").arg(&running).query_async(conn).await?;
    Ok(Some(holder.unwrap_or_default()))
}
