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

mod call;
mod coalesce;
mod fanout;
mod subscribers;

pub use coalesce::Coalescer;
pub use fanout::recover_fanouts;
pub use subscribers::{read_config, subscribers, Subscribers, TenantConfig};

use call::{invocation, Prepared, PublishReply};
use subscribers::{any_filter, endpoint_index, group_by_partition, matching_endpoints, wanted_by};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::event_data::EventData;
use crate::ids::Partition;
use crate::store::publish::PublishCall;

pub use crate::store::Store;

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
    /// The event was matched against a cached copy of the tenant's
    /// configuration that a change has since outdated (nothing written):
    /// match it again against what Redis holds ([`read_config`]).
    #[error("the tenant's configuration changed since it was cached")]
    Stale,
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
    state: &Store,
    coalescer: Option<&Coalescer>,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
    idempotency_key: Option<&str>,
    target: Target,
) -> Result<Published, PublishError> {
    // Each step takes its own connection handle (a shared lane, cheap).
    let test = matches!(target, Target::Test(_));
    let (groups, checked) = match target {
        // (The paths the API's single publish does not take are boxed:
        // its future stays small, and every routing layer moves it.)
        Target::Subscribers => (
            Box::pin(matching_endpoints(
                state,
                tenant_id,
                event_type,
                data.as_str(),
            ))
            .await?,
            None,
        ),
        Target::Matched(found) => (found.groups, found.checked),
        Target::Test(id) => (group_by_partition(vec![id]), None),
    };
    let prepared = Prepared::new(
        state,
        tenant_id,
        event_type,
        data,
        idempotency_key,
        Arc::new(groups),
        test,
    )
    .checked_at(checked);
    let (prepared, reply) = match coalescer {
        Some(coalescer) => coalescer.call(tenant_id, prepared).await?,
        None => {
            let replies: Vec<PublishReply> = Box::pin(async {
                let mut conn = state.conn().await?;
                Ok::<_, PublishError>(
                    invocation(state, tenant_id, &[&prepared])
                        .invoke(&mut conn)
                        .await?,
                )
            })
            .await?;
            let reply = replies
                .into_iter()
                .next()
                .ok_or(PublishError::Reply("no answer for the event"))?;
            (prepared, reply)
        }
    };
    prepared.settle(state, tenant_id, reply).await
}

/// Which of the tenant's idempotency keys `keys` are remembered (a publish
/// with one of them stores nothing new), in one pipelined round trip.
pub async fn seen_keys(
    state: &Store,
    tenant_id: &str,
    keys: &[&str],
) -> Result<Vec<bool>, PublishError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for key in keys {
        let home =
            crate::ids::partition_for(&format!("{tenant_id}\n{key}"), state.config.partitions);
        pipe.exists(state.keys.idempotency(home, tenant_id, key));
    }
    let mut conn = state.conn().await?;
    Ok(pipe.query_async(&mut conn).await?)
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
    state: &Store,
    tenant_id: &str,
    events: &[BatchEvent<'_>],
) -> Result<Vec<Result<Published, PublishError>>, PublishError> {
    let index = endpoint_index(state, tenant_id).await?;
    // Shared by every event of a type (no copy of the endpoint list per
    // event), unless an endpoint has a filter: then each event's own.
    let filtered = any_filter(&index);
    let mut groups_by_type: HashMap<&str, Arc<BTreeMap<Partition, Vec<String>>>> = HashMap::new();
    let mut groups_of: Vec<Arc<BTreeMap<Partition, Vec<String>>>> =
        Vec::with_capacity(events.len());
    let mut deliveries = 0;
    for event in events {
        let groups = if filtered {
            Arc::new(wanted_by(&index, event.event_type, event.data.as_str()))
        } else {
            groups_by_type
                .entry(event.event_type)
                .or_insert_with(|| Arc::new(wanted_by(&index, event.event_type, "null")))
                .clone()
        };
        deliveries += groups.values().map(Vec::len).sum::<usize>();
        groups_of.push(groups);
    }
    if deliveries > MAX_BATCH_DELIVERIES {
        return Err(PublishError::TooManyDeliveries(deliveries));
    }
    let mut results = Vec::with_capacity(events.len());
    let mut failed: Option<PublishError> = None;
    for (chunk, chunk_groups) in events
        .chunks(PIPELINE_CHUNK)
        .zip(groups_of.chunks(PIPELINE_CHUNK))
    {
        if let Some(err) = &failed {
            results.extend(chunk.iter().map(|_| Err(err.clone_kind())));
            continue;
        }
        let prepared: Vec<Prepared> = chunk
            .iter()
            .zip(chunk_groups)
            .map(|(event, groups)| {
                let groups = Arc::clone(groups);
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
            PublishError::Stale => PublishError::Stale,
            PublishError::Reply(what) => PublishError::Reply(what),
            other => PublishError::Batch(other.to_string()),
        }
    }
}
