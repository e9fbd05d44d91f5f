//! Replays in Redis: a replay's record (`replay:<rid>`, with its window,
//! filter, cursor and counts), the partition's set of running replays the
//! workers take them from (`replays`, `replay_take.lua`), the steps a
//! worker runs them in (`replay_chunk.lua`: a chunk of deliveries queued and
//! the cursor moved, atomically), cancelling (`replay_cancel.lua`), and the
//! hold a running replay has on its endpoint (one at a time per endpoint;
//! `replay_lock.lua` releases it only for its holder).

use redis::aio::ConnectionLike;

use super::scripts;
use crate::ids::Partition;
use crate::Keys;

/// Releases `replay_id`'s hold on the endpoint (a replay whose record
/// could not be written); false when the replay does not hold it (nothing
/// written: another replay may). A running replay's hold lasts until
/// `replay_chunk.lua` ends it or `replay_cancel.lua` cancels it.
pub async fn release(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    endpoint_id: &str,
    replay_id: &str,
) -> redis::RedisResult<bool> {
    let held: i64 = scripts::REPLAY_LOCK
        .key(keys.replay_running(partition, endpoint_id))
        .arg(replay_id)
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

/// Writes a new replay's record, kept for `keep_ms`, and lists it for the
/// workers (due now) in one transaction.
pub async fn start(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    replay: &ReplayStart<'_>,
    keep_ms: u64,
) -> redis::RedisResult<()> {
    let key = keys.replay(partition, replay.replay_id);
    redis::pipe()
        .atomic()
        .hset_multiple(&key, &replay.fields())
        .ignore()
        .pexpire(&key, keep_ms as i64)
        .ignore()
        .zadd(keys.replays(partition), replay.replay_id, replay.now_ms)
        .ignore()
        .query_async(conn)
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

/// Takes a due replay of partition `p` for the caller (`token`) under a
/// lease of `lease_ms` (`replay_take.lua`); its id, or `None`.
pub async fn take(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    lease_ms: u64,
    token: &str,
) -> redis::RedisResult<Option<String>> {
    scripts::REPLAY_TAKE
        .key(keys.replays(partition))
        .arg(keys.partition_prefix(partition))
        .arg(lease_ms)
        .arg(token)
        .invoke_async(conn)
        .await
}

/// One step of a held replay.
#[derive(Debug, Clone, Copy)]
pub struct StepRequest<'a> {
    pub replay_id: &'a str,
    pub endpoint_id: &'a str,
    /// The holder's token, as given to [`take`].
    pub token: &'a str,
    /// Most log entries to look at.
    pub chunk: u64,
    /// The lease, renewed by a step that leaves more to do.
    pub lease_ms: u64,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More to do; the totals so far.
    More { scanned: u64, queued: u64 },
    /// The replay ended (completed, or cancelled: its endpoint is gone).
    Ended { scanned: u64, queued: u64 },
    /// The caller no longer holds it (cancelled, or taken over).
    Lost,
}

/// Runs one chunk of a replay (`replay_chunk.lua`): queues the next
/// deliveries of its window and moves its cursor, atomically.
pub async fn step(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    request: StepRequest<'_>,
) -> redis::RedisResult<Step> {
    let (p, endpoint) = (partition, request.endpoint_id);
    let reply: (i64, u64, u64) = scripts::REPLAY_CHUNK
        .key(keys.replay(p, request.replay_id))
        .key(keys.replays(p))
        .key(keys.endpoint(p, endpoint))
        .key(keys.endpoint_deliveries(p, endpoint))
        .key(keys.endpoint_due(p, endpoint))
        .key(keys.ready(p))
        .key(keys.inflight(p))
        .key(keys.queued(p))
        .key(keys.replay_running(p, endpoint))
        .arg(keys.partition_prefix(p))
        .arg(request.replay_id)
        .arg(request.token)
        .arg(request.chunk)
        .arg(request.lease_ms)
        .arg(keys.wake_channel())
        .arg(p.0)
        .arg(endpoint)
        .invoke_async(conn)
        .await?;
    Ok(match reply {
        (1, scanned, queued) => Step::Ended { scanned, queued },
        (0, scanned, queued) => Step::More { scanned, queued },
        _ => Step::Lost,
    })
}

/// Cancels a running replay (`replay_cancel.lua`); false when it had
/// already ended.
pub async fn cancel(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    partition: Partition,
    replay_id: &str,
    endpoint_id: &str,
) -> redis::RedisResult<bool> {
    let cancelled: i64 = scripts::REPLAY_CANCEL
        .key(keys.replay(partition, replay_id))
        .key(keys.replays(partition))
        .key(keys.replay_running(partition, endpoint_id))
        .arg(replay_id)
        .invoke_async(conn)
        .await?;
    Ok(cancelled == 1)
}
