//! Publishing: one event in, one delivery per matching endpoint out.
//!
//! The event's body is stored once, in its *home* partition, by
//! `publish.lua`, which also queues the deliveries of the endpoints living in
//! that partition — for the common case of a tenant whose matching endpoints
//! share a partition, publishing is one atomic Lua call. Endpoints in other
//! partitions get theirs from one `fanout.lua` call per partition (each one
//! atomic; separate because a Redis Cluster cannot run one script across
//! slots). Until the last of those calls succeeds the event is marked
//! incomplete; the API answers 202 only after all of them, and repeating the
//! request with the same `Idempotency-Key` finishes an interrupted fan-out
//! (delivery ids are derived from event and endpoint, so nothing doubles).

use std::collections::{BTreeMap, HashMap};

use crate::ids::{self, IdKind, Partition};
use crate::model::summary_wants;
use crate::scripts;
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
}

/// Who receives an event.
pub enum Target {
    /// Every active endpoint of the tenant whose patterns match the type.
    Subscribers,
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

/// Publishes one event. The caller has validated `event_type` and `data`.
pub async fn publish(
    state: Store<'_>,
    tenant_id: &str,
    event_type: &str,
    data: &serde_json::Value,
    idempotency_key: Option<&str>,
    target: Target,
) -> Result<Published, PublishError> {
    let now = now_ms();
    let keys = state.keys;
    let config = state.config;

    // A request holds at most one pooled connection at a time: holding one
    // while waiting for another deadlocks the pool under load.
    let test = matches!(target, Target::Test(_));
    let groups = match target {
        Target::Subscribers => matching_endpoints(state, tenant_id, event_type).await?,
        Target::Test(id) => group_by_partition(vec![id]),
    };
    let home = match idempotency_key {
        Some(key) => ids::partition_for(&format!("{tenant_id}\n{key}"), config.partitions),
        None => groups
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| ids::random_partition(config.partitions)),
    };
    let event_id = ids::new_id(IdKind::Event, home, now);
    let body = serde_json::json!({
        "id": event_id,
        "type": event_type,
        "timestamp": rfc3339_ms(now),
        "data": data,
    })
    .to_string();
    let complete = groups.keys().all(|p| *p == home);
    let matched: usize = groups.values().map(Vec::len).sum();
    let partitions_csv = groups
        .keys()
        .map(|p| p.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let retention = config.retention.as_millis() as u64;
    let idem_key = idempotency_key
        .map(|key| keys.idempotency(home, tenant_id, key))
        .unwrap_or_else(|| keys.event(home, &event_id));

    let mut invocation = scripts::PUBLISH.prepare_invoke();
    invocation
        .key(keys.event(home, &event_id))
        .key(idem_key)
        .key(keys.due(home))
        .key(keys.event_deliveries(home, &event_id))
        .arg(keys.partition_prefix(home))
        .arg(initial_delay_ms(config))
        .arg(retention)
        .arg(config.idempotency_ttl.as_millis() as u64)
        .arg(if idempotency_key.is_some() { "1" } else { "0" })
        .arg(&event_id)
        .arg(tenant_id)
        .arg(event_type)
        .arg(&body)
        .arg(if complete { "1" } else { "0" })
        .arg(home.0)
        .arg(keys.wake_channel())
        .arg(matched)
        .arg(&partitions_csv)
        .arg(if test { "1" } else { "0" });
    for endpoint_id in groups.get(&home).into_iter().flatten() {
        invocation
            .arg(endpoint_id)
            .arg(ids::delivery_id(&event_id, endpoint_id, home));
    }
    let (fresh, id, count, first_complete): (i64, String, u64, String) = {
        let mut conn = state.conn().await?;
        invocation.invoke_async(&mut conn).await?
    };

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
    if complete {
        return Ok(Published {
            event_id,
            deliveries: count,
            created_at: now,
            duplicate: false,
        });
    }
    let event_ref = EventRef {
        tenant_id,
        event_type,
        event_id: &event_id,
        home,
        test,
    };
    let mut total = count;
    for (p, endpoint_ids) in &groups {
        if *p != home {
            total += fanout(state, &event_ref, *p, endpoint_ids).await?;
        }
    }
    let mut conn = state.conn().await?;
    let _: () = conn
        .hset_multiple(
            keys.event(home, &event_id),
            &[
                ("complete", "1".to_string()),
                ("deliveries", total.to_string()),
            ],
        )
        .await?;
    Ok(Published {
        event_id,
        deliveries: total,
        created_at: now,
        duplicate: false,
    })
}

/// The event a fan-out call queues deliveries for.
#[derive(Clone, Copy)]
struct EventRef<'a> {
    tenant_id: &'a str,
    event_type: &'a str,
    event_id: &'a str,
    home: Partition,
    test: bool,
}

/// The tenant's active endpoints that want `event_type`, by partition.
async fn matching_endpoints(
    state: Store<'_>,
    tenant_id: &str,
    event_type: &str,
) -> Result<BTreeMap<Partition, Vec<String>>, PublishError> {
    let mut conn = state.conn().await?;
    let index: HashMap<String, String> =
        conn.hgetall(state.keys.tenant_endpoints(tenant_id)).await?;
    let mut wanted: Vec<String> = index
        .into_iter()
        .filter(|(_, summary)| summary_wants(summary, event_type))
        .map(|(id, _)| id)
        .collect();
    wanted.sort();
    Ok(group_by_partition(wanted))
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

/// Queues the deliveries of one non-home partition (idempotent).
async fn fanout(
    state: Store<'_>,
    event: &EventRef<'_>,
    p: Partition,
    endpoint_ids: &[String],
) -> Result<u64, PublishError> {
    let EventRef {
        tenant_id,
        event_type,
        event_id,
        home,
        test,
    } = *event;
    let keys = state.keys;
    let mut conn = state.conn().await?;
    let mut invocation = scripts::FANOUT.prepare_invoke();
    invocation
        .key(keys.due(p))
        .key(keys.event_deliveries(p, event_id))
        .arg(keys.partition_prefix(p))
        .arg(initial_delay_ms(state.config))
        .arg(state.config.retention.as_millis() as u64)
        .arg(event_id)
        .arg(tenant_id)
        .arg(event_type)
        .arg(home.0)
        .arg(p.0)
        .arg(keys.wake_channel())
        .arg(if test { "1" } else { "0" });
    for endpoint_id in endpoint_ids {
        invocation
            .arg(endpoint_id)
            .arg(ids::delivery_id(event_id, endpoint_id, p));
    }
    Ok(invocation.invoke_async(&mut conn).await?)
}

/// Re-runs the fan-out of an event whose publish was interrupted, then
/// marks it complete. Returns its delivery count.
async fn finish_fanout(
    state: Store<'_>,
    tenant_id: &str,
    event_id: &str,
) -> Result<u64, PublishError> {
    let home = ids::partition_of(IdKind::Event, event_id).ok_or(PublishError::Expired)?;
    let event_type: Option<String> = {
        let mut conn = state.conn().await?;
        conn.hget(state.keys.event(home, event_id), "type").await?
    };
    let event_type = event_type.ok_or(PublishError::Expired)?;
    let groups = matching_endpoints(state, tenant_id, &event_type).await?;
    let event_ref = EventRef {
        tenant_id,
        event_type: &event_type,
        event_id,
        home,
        test: false,
    };
    let mut total = 0;
    for (p, endpoint_ids) in &groups {
        total += fanout(state, &event_ref, *p, endpoint_ids).await?;
    }
    let partitions_csv = groups
        .keys()
        .map(|p| p.0.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut conn = state.conn().await?;
    let _: () = conn
        .hset_multiple(
            state.keys.event(home, event_id),
            &[
                ("complete", "1".to_string()),
                ("deliveries", total.to_string()),
                ("partitions", partitions_csv),
            ],
        )
        .await?;
    Ok(total)
}

/// The retry schedule's first entry: the delay before the first attempt.
fn initial_delay_ms(config: &Config) -> u64 {
    config
        .retry_schedule
        .first()
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
