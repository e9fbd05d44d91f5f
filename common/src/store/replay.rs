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

/// A replay's record as it starts.
#[derive(Debug, Clone, Copy)]
pub struct ReplayStart<'a> {
    pub replay_id: &'a str,
    pub endpoint_id: &'a str,
    pub tenant_id: &'a str,
    /// The window, creation times in ms, both ends included.
    pub since_ms: u64,
    pub until_ms: u64,
    /// `failed` or `all`, as the request said.
    pub filter: &'a str,
    pub now_ms: u64,
}

impl ReplayStart<'_> {
    /// The record's fields, as [`load`] answers them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.replay_id.to_string()),
            ("endpoint", self.endpoint_id.to_string()),
            ("tenant", self.tenant_id.to_string()),
            ("status", "running".into()),
            ("since", self.since_ms.to_string()),
            ("until", self.until_ms.to_string()),
            ("filter", self.filter.to_string()),
            ("scanned", "0".into()),
            ("queued", "0".into()),
            ("started", self.now_ms.to_string()),
            ("heartbeat", self.now_ms.to_string()),
        ]
    }
}

/// Writes a new replay's record, kept for `keep_ms`.
pub async fn start(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    replay: &ReplayStart<'_>,
    keep_ms: u64,
) -> redis::RedisResult<()> {
    let key = keys.replay(partition, replay.replay_id);
    redis::pipe()
        .hset_multiple(&key, &replay.fields())
        .ignore()
        .pexpire(&key, keep_ms as i64)
        .ignore()
        .query_async(conn)
        .await
}

/// Where a running replay is.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Deliveries of the window looked at, and queued again.
    pub scanned: u64,
    pub queued: u64,
    /// Now: the replay's heartbeat.
    pub now_ms: u64,
    /// The window is done.
    pub done: bool,
}

/// Writes a running replay's progress.
pub async fn progress(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    replay_id: &str,
    progress: Progress,
) -> redis::RedisResult<()> {
    let mut fields = vec![
        ("scanned", progress.scanned.to_string()),
        ("queued", progress.queued.to_string()),
        ("heartbeat", progress.now_ms.to_string()),
    ];
    if progress.done {
        fields.push(("status", "completed".into()));
        fields.push(("finished", progress.now_ms.to_string()));
    }
    redis::cmd("HSET")
        .arg(keys.replay(partition, replay_id))
        .arg(fields)
        .exec_async(conn)
        .await
}

/// Marks a replay that lost its hold to another one as interrupted.
pub async fn interrupted(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    replay_id: &str,
) -> redis::RedisResult<()> {
    redis::cmd("HSET")
        .arg(keys.replay(partition, replay_id))
        .arg("status")
        .arg("interrupted")
        .exec_async(conn)
        .await
}

/// A replay's record (empty when there is none).
pub async fn load(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    replay_id: &str,
) -> redis::RedisResult<std::collections::HashMap<String, String>> {
    redis::cmd("HGETALL")
        .arg(keys.replay(partition, replay_id))
        .query_async(conn)
        .await
}
