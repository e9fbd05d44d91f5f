//! Publishing: one event in, one delivery per matching endpoint out.
//!
//! The event's record (its body, tenant and type) is stored once, in its
//! *home* partition, by `publish.lua`, which also queues the deliveries of
//! the endpoints living in that partition — for the common case of a
//! tenant whose matching endpoints share a partition, publishing is one
//! atomic Lua call. Queuing a delivery writes no record for it: the event
//! id goes into the endpoint's `ep_dlv` and the endpoint into its
//! partition's ready set (see `keys.rs`). Endpoints in other partitions get
//! theirs from one `fanout.lua` call per partition (each one atomic;
//! separate because a Redis Cluster cannot run one script across slots),
//! sent together in one pipelined round trip (a cluster client must route
//! that pipeline per command, and load the script on every node). Until
//! the last of those calls succeeds the event is listed in its home
//! partition's `fanout_pending` set. Up to `HOOKFLEET_FANOUT_INLINE`
//! deliveries the API answers 202 only after all of them; a larger fan-out
//! is answered once `publish.lua` has stored the event, and the API queues
//! the other partitions right after. Either way an interrupted fan-out is
//! finished by repeating the request with the same `Idempotency-Key`, or by
//! a worker once it has been pending for `HOOKFLEET_FANOUT_RECOVERY`
//! ([`recover_fanouts`]); an endpoint's log lists an event once, so
//! nothing doubles.

mod coalesce;

pub use coalesce::Coalescer;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::event_data::EventData;
use crate::ids::{self, IdKind, Partition};
use crate::model::summary_wants;
use crate::store::publish::{EventToStore, PublishCall, PublishSettings};
use crate::stored_event::{self, EventRecord};
use crate::time_util::{now_ms, rfc3339_ms};
use redis::AsyncCommands;

use crate::redis_pool::RedisPool;

use crate::{Config, Keys};

/// What a publish needs: the pool, key names and configuration.
#[derive(Clone, Copy)]
pub struct Store<'a> {
    pub pool: &'a RedisPool,
    pub keys: &'a Keys,
    pub config: &'a Config,
}

impl Store<'_> {
    async fn conn(&self) -> Result<crate::redis_pool::RedisConn, PublishError> {
        Ok(self.pool.get().await?)
    }
}

/// Why a publish did not complete. Part of the fan-out may already be
/// queued: a retry with the same idempotency key finishes it instead of
/// creating a second event.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("redis pool: {0}")]
    Pool(#[from] crate::redis_pool::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the event expired")]
    Expired,
    /// A Redis failure shared by several events of one batch.
    #[error("{0}")]
    Batch(String),
    /// `publish.lua` answered something other than one reply per event.
    #[error("unexpected publish.lua reply: {0}")]
    Reply(&'static str),
    /// A batch whose events would create more than
    /// [`MAX_BATCH_DELIVERIES`] deliveries among them (nothing written).
    #[error("the batch would create {0} deliveries")]
    TooManyDeliveries(usize),
}

/// Who receives an event.
pub enum Target {
    /// Every active endpoint of the tenant whose patterns match the type.
    Subscribers,
    /// The endpoints [`subscribers`] found (read with the type check).
    Matched(Subscribers),
    /// A test send: one endpoint only, whatever it subscribes to; a single
    /// attempt, kept out of the endpoint's statistics.
    Test(String),
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    pub event_id: String,
    pub deliveries: u64,
    pub created_at: u64,
    /// True when the idempotency key was seen before and nothing was created.
    pub duplicate: bool,
}

/// Publishes one event. The caller has validated `event_type`; `data` is
/// checked by its type.
/// With a `coalescer` (the API's single-event route), the event's
/// `publish.lua` call is shared with the publishes arriving beside it (see
/// `publish/coalesce.rs`); without one (a worker's operational
/// events), it is its own call.
pub async fn publish(
    state: Store<'_>,
    coalescer: Option<&Coalescer>,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
    idempotency_key: Option<&str>,
    target: Target,
) -> Result<Published, PublishError> {
    // Each step takes its own connection handle (a shared lane, cheap).
    let test = matches!(target, Target::Test(_));
    let groups = match target {
        Target::Subscribers => matching_endpoints(state, tenant_id, event_type).await?,
        Target::Matched(found) => found.0,
        Target::Test(id) => group_by_partition(vec![id]),
    };
    let prepared = Prepared::new(
        state,
        tenant_id,
        event_type,
        data,
        idempotency_key,
        Arc::new(groups),
        test,
    );
    let (prepared, reply) = match coalescer {
        Some(coalescer) => coalescer.call(tenant_id, prepared).await?,
        None => {
            let replies: Vec<PublishReply> = {
                let mut conn = state.conn().await?;
                invocation(state, tenant_id, &[&prepared])
                    .invoke(&mut conn)
                    .await?
            };
            let reply = replies
                .into_iter()
                .next()
                .ok_or(PublishError::Reply("no answer for the event"))?;
            (prepared, reply)
        }
    };
    prepared.settle(state, tenant_id, reply).await
}

/// One event of [`publish_many`].
pub struct BatchEvent<'a> {
    pub event_type: &'a str,
    pub data: &'a EventData,
    pub idempotency_key: Option<&'a str>,
}

/// Most deliveries one batch may create among its events: 100 events to
/// a tenant's 1,000 webhooks. It bounds what one request can queue
/// (1,000 events to 1,000 `*` webhooks would be a million deliveries).
pub const MAX_BATCH_DELIVERIES: usize = 100_000;

/// How many events go to Redis in one pipelined round trip.
const PIPELINE_CHUNK: usize = 200;

/// At most this many events share one `publish.lua` call: enough to spread
/// a call's fixed cost thin, few enough that one call holds Redis for only
/// a millisecond or two.
const EVENTS_PER_CALL: usize = 40;

/// Publishes several events of one tenant to their subscribers: the tenant's
/// endpoint index is read once, events sharing a home partition share a
/// `publish.lua` call (up to [`EVENTS_PER_CALL`]; each event is atomic, and
/// so is the call), and the calls are pipelined, [`PIPELINE_CHUNK`] events
/// per round trip. Returns one result per event, in order. When Redis fails
/// in a chunk, that chunk's events and all later ones get the error (each
/// of them may or may not be stored: retrying with its idempotency key is
/// safe), and the earlier ones keep their results.
///
/// Fails as a whole, writing nothing, when the tenant's endpoints cannot
/// be read or when the events would create more than
/// [`MAX_BATCH_DELIVERIES`] deliveries (counting every event, also those
/// whose idempotency key turns out to be seen).
pub async fn publish_many(
    state: Store<'_>,
    tenant_id: &str,
    events: &[BatchEvent<'_>],
) -> Result<Vec<Result<Published, PublishError>>, PublishError> {
    let index = endpoint_index(state, tenant_id).await?;
    // Shared by every event of a type: no copy of the endpoint list per event.
    let mut groups_by_type: HashMap<&str, Arc<BTreeMap<Partition, Vec<String>>>> = HashMap::new();
    let mut deliveries = 0;
    for event in events {
        let groups = groups_by_type
            .entry(event.event_type)
            .or_insert_with(|| Arc::new(wanted_by(&index, event.event_type)));
        deliveries += groups.values().map(Vec::len).sum::<usize>();
    }
    if deliveries > MAX_BATCH_DELIVERIES {
        return Err(PublishError::TooManyDeliveries(deliveries));
    }
    let mut results = Vec::with_capacity(events.len());
    let mut failed: Option<PublishError> = None;
    for chunk in events.chunks(PIPELINE_CHUNK) {
        if let Some(err) = &failed {
            results.extend(chunk.iter().map(|_| Err(err.clone_kind())));
            continue;
        }
        let prepared: Vec<Prepared> = chunk
            .iter()
            .map(|event| {
                let groups = groups_by_type
                    .get(event.event_type)
                    .map(Arc::clone)
                    .unwrap_or_default();
                Prepared::new(
                    state,
                    tenant_id,
                    event.event_type,
                    event.data,
                    event.idempotency_key,
                    groups,
                    false,
                )
            })
            .collect();
        // The chunk's events by home partition (positions in the chunk),
        // then in calls of at most EVENTS_PER_CALL.
        let mut by_home: BTreeMap<Partition, Vec<usize>> = BTreeMap::new();
        for (position, event) in prepared.iter().enumerate() {
            by_home.entry(event.home).or_default().push(position);
        }
        let calls: Vec<&[usize]> = by_home
            .values()
            .flat_map(|positions| positions.chunks(EVENTS_PER_CALL))
            .collect();
        let invocations: Vec<PublishCall> = calls
            .iter()
            .map(|call| {
                let group: Vec<&Prepared> = call.iter().map(|&i| &prepared[i]).collect();
                invocation(state, tenant_id, &group)
            })
            .collect();
        let replies: Result<Vec<Vec<PublishReply>>, PublishError> = async {
            let mut conn = state.conn().await?;
            Ok(PublishCall::invoke_all(&invocations, &mut conn).await?)
        }
        .await;
        let replies = match replies {
            Ok(replies) => replies,
            Err(err) => {
                results.extend(chunk.iter().map(|_| Err(err.clone_kind())));
                failed = Some(err);
                continue;
            }
        };
        // Back to the chunk's order.
        let mut by_position: Vec<Option<PublishReply>> = vec![None; prepared.len()];
        for (call, call_replies) in calls.iter().zip(replies) {
            for (&position, reply) in call.iter().zip(call_replies) {
                by_position[position] = Some(reply);
            }
        }
        for (prepared, reply) in prepared.into_iter().zip(by_position) {
            results.push(match reply {
                Some(reply) => prepared.settle(state, tenant_id, reply).await,
                None => Err(PublishError::Reply("no answer for the event")),
            });
        }
    }
    Ok(results)
}

impl PublishError {
    /// The same kind of error, for every event it affects (the Redis error
    /// itself cannot be cloned).
    fn clone_kind(&self) -> PublishError {
        match self {
            PublishError::Expired => PublishError::Expired,
            PublishError::Reply(what) => PublishError::Reply(what),
            other => PublishError::Batch(other.to_string()),
        }
    }
}

/// `publish.lua`'s answer: (fresh, event id, deliveries, complete).
use crate::store::publish::PublishReply;

/// One event ready for `publish.lua`: its id, record and the endpoints it
/// goes to, by partition.
struct Prepared {
    now: u64,
    event_id: String,
    home: Partition,
    /// The stored form (stored_event.rs): tenant, type, test flag, body.
    record: String,
    /// Its home partition's events hash, and when that may expire.
    bucket: String,
    expire_at: u64,
    complete: bool,
    matched: usize,
    idempotency_key: Option<String>,
    groups: Arc<BTreeMap<Partition, Vec<String>>>,
}

impl Prepared {
    fn new(
        state: Store<'_>,
        tenant_id: &str,
        event_type: &str,
        data: &EventData,
        idempotency_key: Option<&str>,
        groups: Arc<BTreeMap<Partition, Vec<String>>>,
        test: bool,
    ) -> Self {
        let now = now_ms();
        let config = state.config;
        let home = match idempotency_key {
            Some(key) => ids::partition_for(&format!("{tenant_id}\n{key}"), config.partitions),
            None => groups
                .keys()
                .next()
                .copied()
                .unwrap_or_else(|| ids::random_partition(config.partitions)),
        };
        let event_id = ids::new_id(IdKind::Event, home, now);
        let record = EventRecord::encode_event(
            tenant_id,
            event_type,
            test,
            &event_id,
            &rfc3339_ms(now),
            data,
        );
        let (bucket, bucket_end) = ids::time_bucket(IdKind::Event, &event_id)
            .map(|(bucket, end)| (bucket.to_string(), end))
            .unwrap_or_default();
        let expire_at = bucket_end.saturating_add(config.retention.as_millis() as u64);
        let complete = groups.keys().all(|p| *p == home);
        let matched: usize = groups.values().map(Vec::len).sum();
        Prepared {
            now,
            event_id,
            home,
            record,
            bucket,
            expire_at,
            complete,
            matched,
            idempotency_key: idempotency_key.map(str::to_string),
            groups,
        }
    }

    /// After `publish.lua`: finish an interrupted fan-out of a repeated
    /// key, or queue the other partitions' deliveries of a new event.
    async fn settle(
        self,
        state: Store<'_>,
        tenant_id: &str,
        reply: PublishReply,
    ) -> Result<Published, PublishError> {
        let (fresh, id, count, first_complete) = reply;
        let now = self.now;
        if fresh == 0 {
            // Seen before. If that request's fan-out was interrupted, finish it.
            if first_complete != "1" {
                let deliveries = finish_fanout(state, tenant_id, &id).await?;
                return Ok(Published {
                    event_id: id,
                    deliveries,
                    created_at: now,
                    duplicate: true,
                });
            }
            return Ok(Published {
                event_id: id,
                deliveries: count,
                created_at: now,
                duplicate: true,
            });
        }
        if self.complete {
            return Ok(Published {
                event_id: self.event_id,
                deliveries: count,
                created_at: now,
                duplicate: false,
            });
        }
        if self.matched > state.config.fanout_inline {
            // A large fan-out: the event is stored, listed as pending and its
            // home partition's deliveries are queued, so answer now and queue
            // the rest right after. If this process dies first, a worker
            // finishes it (`recover_fanouts`).
            let home = self.home;
            let others: usize = self
                .groups
                .iter()
                .filter(|(p, _)| **p != home)
                .map(|(_, ids)| ids.len())
                .sum();
            let owned = OwnedStore {
                pool: state.pool.clone(),
                keys: state.keys.clone(),
                config: state.config.clone(),
            };
            let tenant_id = tenant_id.to_string();
            let event_id = self.event_id.clone();
            tokio::spawn(async move {
                let store = owned.store();
                if let Err(err) = self.fan_out_rest(store, &tenant_id, count).await {
                    tracing::warn!(event_id = %self.event_id, error = %err,
                        "background fan-out failed; a worker will finish it");
                }
            });
            return Ok(Published {
                event_id,
                deliveries: count + others as u64,
                created_at: now,
                duplicate: false,
            });
        }
        match self.fan_out_rest(state, tenant_id, count).await {
            Ok(total) => Ok(Published {
                event_id: self.event_id,
                deliveries: total,
                created_at: now,
                duplicate: false,
            }),
            // The event is stored and listed as pending, so it will be
            // delivered (a worker finishes the fan-out): accept it. An error
            // here would have the client publish it again under a new id,
            // which receivers could not tell from the first.
            Err(err) => {
                tracing::warn!(event_id = %self.event_id, error = %err,
                    "fan-out to other partitions failed; a worker will finish it");
                Ok(Published {
                    event_id: self.event_id,
                    deliveries: self.matched as u64,
                    created_at: now,
                    duplicate: false,
                })
            }
        }
    }

    /// Queues the other partitions' deliveries, then marks the event
    /// complete. Returns the event's delivery count.
    async fn fan_out_rest(
        &self,
        state: Store<'_>,
        tenant_id: &str,
        home_count: u64,
    ) -> Result<u64, PublishError> {
        let home = self.home;
        let others = self.groups.iter().filter(|(p, _)| **p != home);
        let total = home_count + fanout(state, tenant_id, &self.event_id, others).await?;
        mark_complete(state, home, &self.event_id).await?;
        Ok(total)
    }
}

/// The `publish.lua` call for events of one tenant sharing a home
/// partition.
fn invocation(state: Store<'_>, tenant_id: &str, group: &[&Prepared]) -> PublishCall {
    let home = group.first().map_or(Partition(0), |first| first.home);
    let events: Vec<EventToStore<'_>> = group
        .iter()
        .map(|event| EventToStore {
            event_id: &event.event_id,
            record: &event.record,
            bucket: &event.bucket,
            expire_at: event.expire_at,
            complete: event.complete,
            matched: event.matched,
            idempotency_key: event.idempotency_key.as_deref(),
            here: event
                .groups
                .get(&event.home)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        })
        .collect();
    let settings = PublishSettings {
        initial_delay_ms: state.config.initial_delay_ms(),
        idempotency_ttl_ms: state.config.idempotency_ttl.as_millis() as u64,
    };
    PublishCall::new(state.keys, settings, tenant_id, home, &events)
}

/// Marks an event's fan-out complete: takes it off its home partition's
/// pending list.
async fn mark_complete(
    state: Store<'_>,
    home: Partition,
    event_id: &str,
) -> Result<(), PublishError> {
    let mut conn = state.conn().await?;
    let _: () = conn.zrem(state.keys.fanout_pending(home), event_id).await?;
    Ok(())
}

/// An owned [`Store`], for work that outlives the request.
struct OwnedStore {
    pool: RedisPool,
    keys: Keys,
    config: Config,
}

impl OwnedStore {
    fn store(&self) -> Store<'_> {
        Store {
            pool: &self.pool,
            keys: &self.keys,
            config: &self.config,
        }
    }
}

/// Finishes the fan-out of events of home partition `p` still pending
/// `older_than` after publishing (their API process died before queuing
/// every partition's deliveries; see `HOOKFLEET_FANOUT_RECOVERY`). At most
/// `limit` events per call; returns how many it took up (finished, dropped
/// as expired by retention, or left for the next round after an error).
pub async fn recover_fanouts(
    state: Store<'_>,
    p: Partition,
    older_than: std::time::Duration,
    limit: usize,
) -> Result<usize, PublishError> {
    let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
    let pending: Vec<String> = {
        let mut conn = state.conn().await?;
        conn.zrangebyscore_limit(
            state.keys.fanout_pending(p),
            "-inf",
            cutoff,
            0,
            limit as isize,
        )
        .await?
    };
    for event_id in &pending {
        let record = {
            let mut conn = state.conn().await?;
            stored_event::load(&mut conn, state.keys, event_id, state.config.retention).await?
        };
        let finished = match record {
            Some(record) => finish_fanout(state, &record.tenant_id, event_id).await,
            None => Err(PublishError::Expired),
        };
        match finished {
            Ok(total) => {
                tracing::info!(event_id = %event_id, deliveries = total, "finished an interrupted fan-out");
            }
            Err(PublishError::Expired) => {
                let mut conn = state.conn().await?;
                let _: () = conn.zrem(state.keys.fanout_pending(p), event_id).await?;
            }
            Err(err) => {
                // Left pending: the next round tries it again; the others
                // of this round go ahead.
                tracing::warn!(event_id = %event_id, error = %err, "finishing an interrupted fan-out failed");
            }
        }
    }
    Ok(pending.len())
}

/// The tenant's active endpoints that want `event_type`, by partition.
async fn matching_endpoints(
    state: Store<'_>,
    tenant_id: &str,
    event_type: &str,
) -> Result<BTreeMap<Partition, Vec<String>>, PublishError> {
    let index = endpoint_index(state, tenant_id).await?;
    Ok(wanted_by(&index, event_type))
}

/// The endpoints of a tenant that want an event type, by partition.
pub struct Subscribers(BTreeMap<Partition, Vec<String>>);

/// The tenant's active endpoints that want `event_type`, or `None` when
/// the type is neither built in nor defined by the tenant. A tenant type's
/// definition and the endpoint index share the tenant's hash slot, so both
/// are read in one pipelined round trip (a single publish then makes three:
/// the API key, this, and `publish.lua`).
pub async fn subscribers(
    state: Store<'_>,
    tenant_id: &str,
    event_type: &str,
) -> Result<Option<Subscribers>, PublishError> {
    let index: HashMap<String, String> = if crate::catalog::is_built_in(event_type) {
        endpoint_index(state, tenant_id).await?
    } else {
        let mut conn = state.conn().await?;
        let (defined, index): (bool, HashMap<String, String>) = redis::pipe()
            .hexists(state.keys.tenant_event_types(tenant_id), event_type)
            .hgetall(state.keys.tenant_endpoints(tenant_id))
            .query_async(&mut conn)
            .await?;
        if !defined {
            return Ok(None);
        }
        index
    };
    Ok(Some(Subscribers(wanted_by(&index, event_type))))
}

/// The tenant's endpoint index: endpoint id → subscription summary.
async fn endpoint_index(
    state: Store<'_>,
    tenant_id: &str,
) -> Result<HashMap<String, String>, PublishError> {
    let mut conn = state.conn().await?;
    Ok(conn.hgetall(state.keys.tenant_endpoints(tenant_id)).await?)
}

/// The endpoints of `index` that want `event_type`, by partition.
fn wanted_by(
    index: &HashMap<String, String>,
    event_type: &str,
) -> BTreeMap<Partition, Vec<String>> {
    let mut wanted: Vec<String> = index
        .iter()
        .filter(|(_, summary)| summary_wants(summary, event_type))
        .map(|(id, _)| id.clone())
        .collect();
    wanted.sort();
    group_by_partition(wanted)
}

fn group_by_partition(endpoint_ids: Vec<String>) -> BTreeMap<Partition, Vec<String>> {
    let mut groups: BTreeMap<Partition, Vec<String>> = BTreeMap::new();
    for id in endpoint_ids {
        if let Some(p) = ids::partition_of(IdKind::Endpoint, &id) {
            groups.entry(p).or_default().push(id);
        }
    }
    groups
}

/// Queues an event's deliveries in the partitions of `groups`
/// ([`crate::store::publish::fan_out`]). Returns how many of those
/// endpoints have a delivery of the event afterwards.
async fn fanout<'g>(
    state: Store<'_>,
    tenant_id: &str,
    event_id: &str,
    groups: impl Iterator<Item = (&'g Partition, &'g Vec<String>)>,
) -> Result<u64, PublishError> {
    let mut conn = state.conn().await?;
    Ok(crate::store::publish::fan_out(
        &mut conn,
        state.keys,
        state.config.initial_delay_ms(),
        tenant_id,
        event_id,
        groups,
    )
    .await?)
}

/// Re-runs the fan-out of an event whose publish was interrupted, in every
/// partition of the endpoints matching it now (an endpoint created
/// meanwhile gets the event; one disabled meanwhile keeps what it got),
/// then marks it complete. Returns its delivery count: the tenant's
/// endpoints whose log lists the event.
async fn finish_fanout(
    state: Store<'_>,
    tenant_id: &str,
    event_id: &str,
) -> Result<u64, PublishError> {
    let home = ids::partition_of(IdKind::Event, event_id).ok_or(PublishError::Expired)?;
    let record = {
        let mut conn = state.conn().await?;
        stored_event::load(&mut conn, state.keys, event_id, state.config.retention).await?
    };
    let record = record.ok_or(PublishError::Expired)?;
    let index = endpoint_index(state, tenant_id).await?;
    let groups = wanted_by(&index, &record.event_type);
    fanout(state, tenant_id, event_id, groups.iter()).await?;
    let total: u64 = {
        let mut pipe = redis::pipe();
        let mut any = false;
        for endpoint_id in index.keys() {
            if let Some(p) = ids::partition_of(IdKind::Endpoint, endpoint_id) {
                pipe.zscore(state.keys.endpoint_deliveries(p, endpoint_id), event_id);
                any = true;
            }
        }
        if any {
            let mut conn = state.conn().await?;
            let scores: Vec<Option<f64>> = pipe.query_async(&mut conn).await?;
            scores.iter().filter(|s| s.is_some()).count() as u64
        } else {
            0
        }
    };
    mark_complete(state, home, event_id).await?;
    Ok(total)
}
