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

/// A tenant's event index, for a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventIndex {
    /// Every event (`tevents:<tid>` of each home partition).
    All,
    /// Events with a delivery that ended failed (`tfailed:<tid>` of each
    /// endpoint partition).
    Failed,
}

/// Up to `count` ids of the tenant's event index in each partition, newest
/// first, between the lexicographic bounds `upper` and `lower` (as
/// `ZREVRANGEBYLEX` takes them: `(evt_…`, `[evt_…`, `+`, `-`), in one
/// round trip; one list per partition, in the order given.
#[allow(clippy::too_many_arguments)]
pub async fn event_index_pages(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    partitions: &[Partition],
    tenant_id: &str,
    index: EventIndex,
    (upper, lower): (&str, &str),
    count: usize,
) -> redis::RedisResult<Vec<Vec<String>>> {
    let mut pipe = redis::pipe();
    for &p in partitions {
        let key = match index {
            EventIndex::All => keys.tenant_events(p, tenant_id),
            EventIndex::Failed => keys.tenant_failed(p, tenant_id),
        };
        pipe.cmd("ZREVRANGEBYLEX")
            .arg(key)
            .arg(upper)
            .arg(lower)
            .arg("LIMIT")
            .arg(0)
            .arg(count);
    }
    pipe.query_async(conn).await
}

/// The heads of some events' records (`<flag><tenant id>\n<event type>`,
/// see `stored_event.rs`), `None` for an event that is gone, in the order
/// given, in one round trip (`event_heads.lua` per home partition).
pub async fn event_heads(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    event_ids: &[&str],
) -> redis::RedisResult<Vec<Option<String>>> {
    let mut groups: Vec<(Partition, Vec<&str>)> = Vec::new();
    let mut at: Vec<(usize, usize)> = Vec::with_capacity(event_ids.len());
    for &id in event_ids {
        let Some(home) = ids::partition_of(IdKind::Event, id) else {
            at.push((usize::MAX, 0));
            continue;
        };
        let group = match groups.iter().position(|(p, _)| *p == home) {
            Some(g) => g,
            None => {
                groups.push((home, Vec::new()));
                groups.len() - 1
            }
        };
        at.push((group, groups[group].1.len()));
        groups[group].1.push(id);
    }
    if groups.is_empty() {
        return Ok(vec![None; event_ids.len()]);
    }
    let mut pipe = redis::pipe();
    add_event_heads(&mut pipe, keys, &groups);
    let replies: Vec<Vec<Option<String>>> = pipe.query_async(conn).await?;
    Ok(at
        .into_iter()
        .map(|(g, i)| replies.get(g).and_then(|r| r.get(i)).cloned().flatten())
        .collect())
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

/// Where the head of a FIFO endpoint's line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadStatus {
    InFlight,
    /// Waiting in ep_due for its next attempt (at `next_ms`).
    Scheduled,
    /// Not attempted yet: next to go.
    Pending,
}

impl HeadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HeadStatus::InFlight => "in_flight",
            HeadStatus::Scheduled => "scheduled",
            HeadStatus::Pending => "pending",
        }
    }
}

/// The delivery at the head of an ordered endpoint's line (`fifo_head.lua`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoHead {
    pub event_id: String,
    pub status: HeadStatus,
    /// When it entered the endpoint's log (ms).
    pub queued_ms: u64,
    pub next_ms: Option<u64>,
    pub attempts: u32,
}

/// The head of an endpoint's line, as a FIFO endpoint sees it; `None`
/// when nothing waits.
pub async fn fifo_head(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    p: Partition,
    endpoint_id: &str,
) -> redis::RedisResult<Option<FifoHead>> {
    let reply: Vec<redis::Value> = scripts::FIFO_HEAD
        .key(keys.endpoint(p, endpoint_id))
        .key(keys.endpoint_due(p, endpoint_id))
        .key(keys.endpoint_deliveries(p, endpoint_id))
        .key(keys.inflight(p))
        .arg(keys.partition_prefix(p))
        .arg(endpoint_id)
        .invoke_async(conn)
        .await?;
    let text = |i: usize| -> String {
        reply
            .get(i)
            .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
            .unwrap_or_default()
    };
    if reply.len() < 5 {
        return Ok(None);
    }
    let status = match text(1).as_str() {
        "in_flight" => HeadStatus::InFlight,
        "scheduled" => HeadStatus::Scheduled,
        _ => HeadStatus::Pending,
    };
    let queued_us: f64 = text(2).parse().unwrap_or(0.0);
    Ok(Some(FifoHead {
        event_id: text(0),
        status,
        queued_ms: (queued_us / 1000.0) as u64,
        next_ms: text(3).parse().ok(),
        attempts: text(4).parse().unwrap_or(0),
    }))
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
    /// Each bucket's counters, in the order of `bucket_starts`.
    pub buckets: Vec<std::collections::HashMap<String, u64>>,
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
    let mut buckets = Vec::with_capacity(replies.len());
    for reply in replies {
        let bucket: std::collections::HashMap<String, u64> =
            redis::from_redis_value(reply).unwrap_or_default();
        for (field, n) in &bucket {
            *sums.entry(field.clone()).or_default() += n;
        }
        buckets.push(bucket);
    }
    Ok(EndpointStats {
        sums,
        buckets,
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

/// Some fields of an endpoint's hash, in order (absent ones `None`).
pub async fn endpoint_fields(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    p: Partition,
    endpoint_id: &str,
    fields: &[&str],
) -> redis::RedisResult<Vec<Option<String>>> {
    redis::cmd("HMGET")
        .arg(keys.endpoint(p, endpoint_id))
        .arg(fields)
        .query_async(conn)
        .await
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

/// One delivery to read facts of: the pair it names, its partition (the
/// endpoint's) and its log score when the caller has it already.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryKey<'a> {
    pub partition: Partition,
    pub delivery_id: &'a str,
    pub event_id: &'a str,
    pub endpoint_id: &'a str,
    pub created_us: Option<u64>,
}

/// What Redis holds of one delivery (its status is derived from these by
/// `delivery_state::derive`).
#[derive(Debug, Clone, Default)]
pub struct DeliveryFacts {
    /// Its score in its endpoint's log (creation µs); `None`: not listed.
    pub created_us: Option<u64>,
    /// Its stored state once attempted (`delivery_state.rs`'s text).
    pub stored: Option<String>,
    /// In the lease set: being attempted.
    pub leased: bool,
    /// Its due time in the endpoint's `ep_due` (a later attempt queued).
    pub due_at: Option<u64>,
}

/// What a read of some deliveries found, in one round trip.
#[derive(Debug, Default)]
pub struct Facts {
    /// Event id → its record's head, `<flag><tenant id>\n<event type>`, for
    /// the events still stored.
    pub heads: std::collections::HashMap<String, String>,
    /// Endpoint id → (it exists, it holds its waiting deliveries: paused or
    /// disabled).
    pub endpoints: std::collections::HashMap<String, (bool, bool)>,
    /// Per delivery, in the order asked.
    pub deliveries: Vec<DeliveryFacts>,
}

/// Reads the facts of `deliveries` (see [`Facts`]) in one pipelined round
/// trip; events past retention (`expired(created_ms)`) are not read.
pub async fn delivery_facts(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    deliveries: &[DeliveryKey<'_>],
    expired: impl Fn(u64) -> bool,
) -> redis::RedisResult<Facts> {
    use std::collections::HashMap;
    if deliveries.is_empty() {
        return Ok(Facts::default());
    }
    // The events, by home partition (one event_heads.lua call each).
    let mut events: Vec<&str> = deliveries.iter().map(|d| d.event_id).collect();
    events.sort_unstable();
    events.dedup();
    let mut by_home: HashMap<Partition, Vec<&str>> = HashMap::new();
    for event_id in events {
        if expired(ids::created_ms(IdKind::Event, event_id).unwrap_or(0)) {
            continue;
        }
        if let Some(home) = ids::partition_of(IdKind::Event, event_id) {
            by_home.entry(home).or_default().push(event_id);
        }
    }
    let mut endpoints: Vec<(&str, Partition)> = deliveries
        .iter()
        .map(|d| (d.endpoint_id, d.partition))
        .collect();
    endpoints.sort_unstable();
    endpoints.dedup();

    let mut pipe = redis::pipe();
    let homes: Vec<(Partition, Vec<&str>)> = by_home.into_iter().collect();
    add_event_heads(&mut pipe, keys, &homes);
    for (endpoint_id, p) in &endpoints {
        pipe.cmd("HMGET")
            .arg(keys.endpoint(*p, endpoint_id))
            .arg("active")
            .arg("paused");
    }
    for d in deliveries {
        let p = d.partition;
        let bucket = ids::time_bucket(IdKind::Delivery, d.delivery_id).map_or("", |(b, _)| b);
        if d.created_us.is_none() {
            pipe.zscore(keys.endpoint_deliveries(p, d.endpoint_id), d.event_id);
        }
        pipe.hget(
            keys.states(p, bucket),
            d.delivery_id.get(4..).unwrap_or_default(),
        )
        .zscore(keys.inflight(p), d.delivery_id)
        .zscore(keys.endpoint_due(p, d.endpoint_id), d.event_id);
    }
    let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    let mut replies = replies.into_iter();
    let mut next = || replies.next().unwrap_or(redis::Value::Nil);

    let mut facts = Facts::default();
    for (_, event_ids) in &homes {
        let answer: Vec<Option<String>> = redis::from_redis_value(next())?;
        for (event_id, head) in event_ids.iter().zip(answer) {
            if let Some(head) = head {
                facts.heads.insert(event_id.to_string(), head);
            }
        }
    }
    for (endpoint_id, _) in &endpoints {
        let fields: Vec<Option<String>> = redis::from_redis_value(next())?;
        let mut fields = fields.into_iter();
        let (active, paused) = (fields.next().flatten(), fields.next().flatten());
        let holds = active.as_deref() != Some("1") || paused.as_deref() == Some("1");
        facts
            .endpoints
            .insert(endpoint_id.to_string(), (active.is_some(), holds));
    }
    for d in deliveries {
        let created_us = match d.created_us {
            Some(us) => Some(us),
            None => redis::from_redis_value::<Option<f64>>(next())?.map(|score| score as u64),
        };
        let stored: Option<String> = redis::from_redis_value(next())?;
        let leased: Option<f64> = redis::from_redis_value(next())?;
        let due_at: Option<f64> = redis::from_redis_value(next())?;
        facts.deliveries.push(DeliveryFacts {
            created_us,
            stored,
            leased: leased.is_some(),
            due_at: due_at.map(|at| at as u64),
        });
    }
    Ok(facts)
}

/// A partition's queue as the gauges show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Deliveries waiting (its `queued` counter, never below 0).
    pub queued: u64,
    /// When its earliest ready endpoint is due (ms), if any.
    pub first_due_ms: Option<u64>,
    /// Deliveries being attempted (its lease set).
    pub in_flight: u64,
    /// Ordered endpoints whose line a delivery waiting for its retry
    /// holds, and when the oldest of those deliveries was queued (ms).
    pub fifo_held: u64,
    pub fifo_oldest_head_ms: Option<u64>,
}

/// Every partition's queue in one round trip, in the order given.
pub async fn queue_depths(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    partitions: &[Partition],
) -> redis::RedisResult<Vec<QueueDepth>> {
    let mut pipe = redis::pipe();
    for &p in partitions {
        pipe.get(keys.queued(p));
        pipe.cmd("ZRANGE")
            .arg(keys.ready(p))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
        pipe.zcard(keys.inflight(p));
        pipe.cmd("ZRANGE")
            .arg(keys.fifo_heads(p))
            .arg(0)
            .arg(0)
            .arg("WITHSCORES");
        pipe.zcard(keys.fifo_heads(p));
    }
    let replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    Ok(replies
        .chunks(5)
        .map(|chunk| {
            let value = |i: usize| chunk.get(i).cloned().unwrap_or(redis::Value::Nil);
            let queued = redis::from_redis_value::<Option<i64>>(value(0))
                .ok()
                .flatten()
                .unwrap_or(0)
                .max(0) as u64;
            let first: Vec<(String, u64)> = redis::from_redis_value(value(1)).unwrap_or_default();
            let in_flight: i64 = redis::from_redis_value(value(2)).unwrap_or(0);
            let oldest_head: Vec<(String, u64)> =
                redis::from_redis_value(value(3)).unwrap_or_default();
            let fifo_held: i64 = redis::from_redis_value(value(4)).unwrap_or(0);
            QueueDepth {
                queued,
                first_due_ms: first.first().map(|(_, due)| *due),
                in_flight: in_flight.max(0) as u64,
                fifo_held: fifo_held.max(0) as u64,
                fifo_oldest_head_ms: oldest_head.first().map(|(_, at)| *at),
            }
        })
        .collect())
}
