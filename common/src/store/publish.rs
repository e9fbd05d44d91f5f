//! Storing events and queuing their deliveries: `publish.lua` stores a
//! group of events sharing a home partition (body once, idempotency key,
//! the deliveries of that partition) and `fanout.lua` queues an event's
//! deliveries in each other partition. `crate::publish` decides what to
//! store; this module is how it is written.

use redis::aio::ConnectionLike;
use redis::ScriptInvocation;

use super::scripts;
use crate::ids::Partition;
use crate::Keys;

/// One event to store with [`PublishCall::new`].
#[derive(Debug, Clone, Copy)]
pub struct EventToStore<'a> {
    pub event_id: &'a str,
    /// The stored form (`stored_event.rs`): tenant, type, test flag, body.
    pub record: &'a [u8],
    /// Its home partition's events-hash bucket, and when it may expire.
    pub bucket: &'a str,
    pub expire_at: u64,
    /// Every delivery is in the home partition: nothing left to fan out.
    pub complete: bool,
    /// How many endpoints match it (in every partition).
    pub matched: usize,
    pub idempotency_key: Option<&'a str>,
    /// The matching endpoints in the home partition.
    pub here: &'a [String],
}

/// `publish.lua`'s answer for one event (the script answers four values
/// per event in one flat array): (1 for a new event or 0 for a
/// repeat of an idempotency key, the event id (the first event's for a
/// repeat), its deliveries (created here, or the first event's count),
/// its complete flag); or ([`STALE`], "", the version announced, "") when
/// the call's configuration version was older than the partition's and
/// nothing was written.
pub type PublishReply = (i64, String, u64, String);

/// The first value of a [`PublishReply`] for a call refused because it
/// was matched against an outdated copy of the tenant's configuration.
pub const STALE: i64 = -1;

/// Settings the API's processes must agree on when storing.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// The retry schedule's first entry: when a first attempt is due.
    pub initial_delay_ms: u64,
    pub idempotency_ttl_ms: u64,
    /// The id prefix of the oldest event still within retention
    /// (`ids::time_prefix` of now minus retention).
    pub retained_from: String,
}

/// One `publish.lua` call: events of one tenant sharing a home partition.
pub struct PublishCall(ScriptInvocation<'static>);

impl PublishCall {
    /// `checked`: the version of the tenant's publish configuration the
    /// events were matched against when it came from a cache (the call is
    /// refused, answering [`STALE`], if a later change was announced);
    /// `None` when it was read from Redis for these events.
    pub fn new(
        keys: &Keys,
        settings: PublishSettings,
        tenant_id: &str,
        home: Partition,
        checked: Option<u64>,
        events: &[EventToStore<'_>],
    ) -> Self {
        let mut invocation = scripts::PUBLISH.prepare_invoke();
        invocation
            .key(keys.ready(home))
            .key(keys.fanout_pending(home))
            .key(keys.queued(home))
            .key(keys.tenant_config_versions(home));
        for event in events {
            let events_key = keys.events(home, event.bucket);
            let idem_key = match event.idempotency_key {
                Some(key) => keys.idempotency(home, tenant_id, key),
                None => events_key.clone(),
            };
            invocation.key(events_key).key(idem_key);
        }
        invocation
            .arg(keys.partition_prefix(home))
            .arg(settings.initial_delay_ms)
            .arg(settings.idempotency_ttl_ms)
            .arg(tenant_id)
            .arg(home.0)
            .arg(keys.wake_channel())
            .arg(events.len())
            .arg(&settings.retained_from)
            .arg(checked.map(|v| v.to_string()).unwrap_or_default());
        for event in events {
            invocation
                .arg(if event.idempotency_key.is_some() {
                    "1"
                } else {
                    "0"
                })
                .arg(event.event_id)
                .arg(event.record)
                .arg(if event.complete { "1" } else { "0" })
                .arg(event.matched)
                .arg(event.expire_at)
                .arg(event.here.len());
            for endpoint_id in event.here {
                invocation.arg(endpoint_id);
            }
        }
        Self(invocation)
    }

    /// Runs this call alone (EVALSHA, reloading on NOSCRIPT).
    pub async fn invoke(
        &self,
        conn: &mut impl ConnectionLike,
    ) -> redis::RedisResult<Vec<PublishReply>> {
        replies(self.0.invoke_async(conn).await?)
    }

    /// Runs several calls in one pipelined round trip, loading the script
    /// and sending them again if Redis had lost it
    /// ([`scripts::query_pipeline`]: a call sent twice answers as it did
    /// and stores nothing again).
    pub async fn invoke_all(
        calls: &[PublishCall],
        conn: &mut impl ConnectionLike,
    ) -> redis::RedisResult<Vec<Vec<PublishReply>>> {
        let mut pipe = redis::pipe();
        for call in calls {
            pipe.invoke_script(&call.0);
        }
        let answers: Vec<Vec<redis::Value>> =
            scripts::query_pipeline(&pipe, &scripts::PUBLISH, conn).await?;
        answers.into_iter().map(replies).collect()
    }
}

/// A call's flat answer (four values per event) as one reply per event.
fn replies(values: Vec<redis::Value>) -> redis::RedisResult<Vec<PublishReply>> {
    if !values.len().is_multiple_of(4) {
        return Err(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "publish.lua answered a partial event",
            format!("{} values", values.len()),
        )));
    }
    values
        .chunks(4)
        .map(|answer| {
            Ok((
                redis::from_redis_value_ref(&answer[0])?,
                redis::from_redis_value_ref(&answer[1])?,
                redis::from_redis_value_ref(&answer[2])?,
                redis::from_redis_value_ref(&answer[3])?,
            ))
        })
        .collect()
}

/// Queues an event's deliveries in the partitions of `groups` (partition →
/// its matching endpoint ids): one `fanout.lua` call per partition (each
/// atomic and idempotent), all in one pipelined round trip (sent again
/// after loading the script if Redis had lost it). Returns how many of
/// those endpoints have a delivery of the event afterwards.
pub async fn fan_out<'g>(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    initial_delay_ms: u64,
    tenant_id: &str,
    event_id: &str,
    groups: impl Iterator<Item = (&'g Partition, &'g Vec<String>)>,
) -> redis::RedisResult<u64> {
    let mut pipe = redis::pipe();
    let mut calls = 0;
    for (&p, endpoint_ids) in groups {
        let mut invocation = scripts::FANOUT.prepare_invoke();
        invocation
            .key(keys.ready(p))
            .key(keys.queued(p))
            .arg(keys.partition_prefix(p))
            .arg(initial_delay_ms)
            .arg(event_id)
            .arg(tenant_id)
            .arg(p.0)
            .arg(keys.wake_channel());
        for endpoint_id in endpoint_ids {
            invocation.arg(endpoint_id);
        }
        pipe.invoke_script(&invocation);
        calls += 1;
    }
    if calls == 0 {
        return Ok(0);
    }
    let counts: Vec<u64> = scripts::query_pipeline(&pipe, &scripts::FANOUT, conn).await?;
    Ok(counts.iter().sum())
}

/// Takes an event off its home partition's list of incomplete fan-outs.
pub async fn mark_complete(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    home: Partition,
    event_id: &str,
) -> redis::RedisResult<()> {
    redis::cmd("ZREM")
        .arg(keys.fanout_pending(home))
        .arg(event_id)
        .exec_async(conn)
        .await
}

/// Up to `limit` events of home partition `p` whose fan-out has been
/// incomplete since `cutoff_ms` or before.
pub async fn pending_fanouts(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    p: Partition,
    cutoff_ms: u64,
    limit: usize,
) -> redis::RedisResult<Vec<String>> {
    super::due_members(conn, keys.fanout_pending(p), cutoff_ms, limit).await
}

/// How many of `endpoint_ids` have a delivery of `event_id` (their log
/// lists it).
pub async fn delivery_count(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    event_id: &str,
    endpoint_ids: impl Iterator<Item = &str>,
) -> redis::RedisResult<u64> {
    let mut pipe = redis::pipe();
    let mut any = false;
    for endpoint_id in endpoint_ids {
        if let Some(p) = crate::ids::partition_of(crate::ids::IdKind::Endpoint, endpoint_id) {
            pipe.zscore(keys.endpoint_deliveries(p, endpoint_id), event_id);
            any = true;
        }
    }
    if !any {
        return Ok(0);
    }
    let scores: Vec<Option<f64>> = pipe.query_async(conn).await?;
    Ok(scores.iter().filter(|s| s.is_some()).count() as u64)
}
