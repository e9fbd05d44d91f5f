//! Read-only scripts, added to a caller's pipeline beside its other reads:
//! the heads of events' records (`event_heads.lua`: tenant, type, test
//! flag, without the bodies) and an endpoint's backlog (`backlog.lua`).
//! Each adds its own `SCRIPT LOAD` right before its calls, since a
//! pipeline cannot retry EVALSHA on NOSCRIPT.

use super::scripts;
use crate::ids::{self, IdKind, Partition};
use crate::Keys;

/// Adds one `event_heads.lua` call per home partition: replies, in order,
/// one `Vec<Option<String>>` per group, each head being
/// `<flag><tenant id>\n<event type>` (`None`: the event is gone).
pub fn add_event_heads(pipe: &mut redis::Pipeline, keys: &Keys, groups: &[(Partition, Vec<&str>)]) {
    if groups.is_empty() {
        return;
    }
    pipe.load_script(&scripts::EVENT_HEADS).ignore();
    for (home, event_ids) in groups {
        let mut invocation = scripts::EVENT_HEADS.prepare_invoke();
        for event_id in event_ids {
            let bucket = ids::time_bucket(IdKind::Event, event_id).map_or("", |(b, _)| b);
            invocation.key(keys.events(*home, bucket)).arg(*event_id);
        }
        pipe.invoke_script(&invocation);
    }
}

/// Adds one `backlog.lua` call: replies `(waiting, in flight)`, the
/// endpoint's deliveries that have not ended.
pub fn add_backlog(pipe: &mut redis::Pipeline, keys: &Keys, p: Partition, endpoint_id: &str) {
    pipe.load_script(&scripts::BACKLOG).ignore();
    pipe.invoke_script(
        scripts::BACKLOG
            .key(keys.endpoint(p, endpoint_id))
            .key(keys.endpoint_deliveries(p, endpoint_id))
            .key(keys.endpoint_due(p, endpoint_id))
            .key(keys.inflight(p))
            .arg(ids::body_of(IdKind::Endpoint, endpoint_id).unwrap_or_default()),
    );
}

/// Up to `count` entries of an endpoint's log (event id, creation time in
/// µs) created within `(since_ms, until_ms)` (both ends included), oldest
/// first, skipping the first `offset`.
pub async fn log_window(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    p: Partition,
    endpoint_id: &str,
    (since_ms, until_ms): (u64, u64),
    offset: usize,
    count: usize,
) -> redis::RedisResult<Vec<(String, u64)>> {
    redis::cmd("ZRANGEBYSCORE")
        .arg(keys.endpoint_deliveries(p, endpoint_id))
        .arg(since_ms.saturating_mul(1000))
        .arg(until_ms.saturating_mul(1000).saturating_add(999))
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(offset)
        .arg(count)
        .query_async(conn)
        .await
}

/// An endpoint's statistics over a window: each bucket's counters (5-minute
/// or hourly buckets starting at `bucket_starts`), its lifetime counters
/// and last outcomes, and its backlog, in one round trip.
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// The window's counters, summed over its buckets.
    pub sums: std::collections::HashMap<String, u64>,
    /// Lifetime counters, `failing_since` and the last success and failure.
    pub totals: std::collections::HashMap<String, String>,
    /// Deliveries not yet attempted or waiting for a later attempt
    /// (including those held while paused or disabled), and in flight.
    pub waiting: u64,
    pub in_flight: u64,
}

/// Reads an endpoint's statistics (see [`EndpointStats`]); `fine` picks
/// the 5-minute buckets, else the hourly ones.
pub async fn endpoint_stats(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    p: Partition,
    endpoint_id: &str,
    bucket_starts: &[u64],
    fine: bool,
) -> redis::RedisResult<EndpointStats> {
    let mut pipe = redis::pipe();
    for &start in bucket_starts {
        if fine {
            pipe.hgetall(keys.stats_fine(p, endpoint_id, start));
        } else {
            pipe.hgetall(keys.stats_coarse(p, endpoint_id, start));
        }
    }
    pipe.hgetall(keys.endpoint_stats(p, endpoint_id));
    add_backlog(&mut pipe, keys, p, endpoint_id);
    let mut replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    let (waiting, in_flight): (u64, u64) = replies
        .pop()
        .and_then(|v| redis::from_redis_value(v).ok())
        .unwrap_or((0, 0));
    let totals = replies
        .pop()
        .and_then(|v| redis::from_redis_value(v).ok())
        .unwrap_or_default();
    let mut sums = std::collections::HashMap::new();
    for reply in replies {
        let bucket: std::collections::HashMap<String, u64> =
            redis::from_redis_value(reply).unwrap_or_default();
        for (field, n) in bucket {
            *sums.entry(field).or_default() += n;
        }
    }
    Ok(EndpointStats {
        sums,
        totals,
        waiting,
        in_flight,
    })
}

/// The attempt-log entries `entry_ids` of an endpoint, in that order (one
/// pipelined round trip; entries trimmed away are left out).
pub async fn attempts(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    p: Partition,
    endpoint_id: &str,
    entry_ids: &[String],
) -> redis::RedisResult<Vec<redis::streams::StreamId>> {
    let stream = keys.attempts(p, endpoint_id);
    let mut pipe = redis::pipe();
    for id in entry_ids {
        pipe.cmd("XRANGE").arg(&stream).arg(id).arg(id);
    }
    let replies: Vec<redis::streams::StreamRangeReply> = pipe.query_async(conn).await?;
    Ok(replies.into_iter().flat_map(|reply| reply.ids).collect())
}

/// What a page of the delivery log reads of each endpoint's log, newest
/// first: entries scored from `max` down to `min` (Redis score bounds, e.g.
/// `(123` for "below 123", `+inf`), at most `per_source`; and, when
/// `ties_at_us` is set, up to `ties_limit` entries scored exactly that
/// (those sharing the cursor's time, read apart).
#[derive(Debug, Clone, Copy)]
pub struct LogRange<'a> {
    pub max: &'a str,
    pub min: &'a str,
    pub per_source: usize,
    pub ties_at_us: Option<u64>,
    pub ties_limit: usize,
}

/// Entries (event id, creation µs) of an endpoint's log.
pub type LogEntries = Vec<(String, u64)>;

/// Reads `range` of each endpoint's log in one round trip: per source, in
/// order, (its entries at `ties_at_us` — empty when not asked —, its
/// entries in the range).
pub async fn log_ranges(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    sources: &[(Partition, String)],
    range: LogRange<'_>,
) -> redis::RedisResult<Vec<(LogEntries, LogEntries)>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for (p, endpoint_id) in sources {
        let key = keys.endpoint_deliveries(*p, endpoint_id);
        if let Some(us) = range.ties_at_us {
            pipe.cmd("ZREVRANGEBYSCORE")
                .arg(&key)
                .arg(us)
                .arg(us)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(range.ties_limit);
        }
        pipe.cmd("ZREVRANGEBYSCORE")
            .arg(&key)
            .arg(range.max)
            .arg(range.min)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(range.per_source);
    }
    let replies: Vec<LogEntries> = pipe.query_async(conn).await?;
    let mut replies = replies.into_iter();
    let mut out = Vec::with_capacity(sources.len());
    for _ in sources {
        let ties = if range.ties_at_us.is_some() {
            replies.next().unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push((ties, replies.next().unwrap_or_default()));
    }
    Ok(out)
}
