//! An endpoint's storage: its hash `{pN}:endpoint:<eid>` and its entry in
//! the tenant's index `{t:<tid>}:endpoints` (what publish matches on).
//! Creating takes one of the tenant's places with the index entry
//! (`capped_add.lua`); changes that touch queue state are one script
//! each: an update (`update_endpoint.lua`: a lower concurrency cap, a
//! resume or an enable releases what waited), a delete
//! (`delete_endpoint.lua`: cancels what had not ended) and a secret
//! rotation (`rotate_secret.lua`). The index lives in the tenant's slot,
//! not the endpoint's, so it is written beside the scripts, after them.

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use redis::AsyncCommands;

use super::caps::{self, CappedAdd, CappedHash};
use super::scripts;
use crate::ids::{self, IdKind, Partition};
use crate::model::{EndpointChanges, EndpointRecord};
use crate::Keys;

/// The endpoint an operation is about: its tenant (checked by the script,
/// so an id of another tenant changes nothing), partition and id.
#[derive(Debug, Clone, Copy)]
pub struct EndpointRef<'a> {
    pub tenant_id: &'a str,
    pub partition: Partition,
    pub endpoint_id: &'a str,
}

/// Writes `changes` to the endpoint's hash and releases what they free,
/// then updates the tenant's index. `None` when there is no such endpoint
/// of the tenant; otherwise the endpoint as stored after the change.
pub async fn update(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    endpoint: EndpointRef<'_>,
    changes: &EndpointChanges,
    now_ms: u64,
) -> redis::RedisResult<Option<EndpointRecord>> {
    let (p, id) = (endpoint.partition, endpoint.endpoint_id);
    let mut invocation = scripts::UPDATE_ENDPOINT.prepare_invoke();
    invocation
        .key(keys.endpoint(p, id))
        .key(keys.endpoint_stats(p, id))
        .key(keys.ready(p))
        .key(keys.endpoint_due(p, id))
        .key(keys.endpoint_deliveries(p, id))
        .key(keys.fifo_heads(p))
        .arg(endpoint.tenant_id)
        .arg(keys.wake_channel())
        .arg(p.0)
        .arg(id);
    for (name, value) in changes.to_fields(now_ms) {
        invocation.arg(name).arg(value);
    }
    let reply: redis::Value = invocation.invoke_async(conn).await?;
    let redis::Value::Array(parts) = reply else {
        return Ok(None);
    };
    let stored: HashMap<String, String> = match parts.into_iter().nth(1) {
        Some(hash) => redis::from_redis_value(hash)?,
        None => return Ok(None),
    };
    let Some(record) = EndpointRecord::from_hash(&stored) else {
        return Ok(None);
    };
    index(conn, keys, &record).await?;
    Ok(Some(record))
}

/// Deletes the endpoint's hash and queue state and cancels its deliveries
/// that had not ended (their states stay readable until `retention_ms`
/// ends). `None` when there is no such endpoint of the tenant; otherwise
/// how many deliveries were cancelled.
pub async fn delete(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    endpoint: EndpointRef<'_>,
    retention_ms: u64,
) -> redis::RedisResult<Option<u64>> {
    let (p, id) = (endpoint.partition, endpoint.endpoint_id);
    let cancelled: i64 = scripts::DELETE_ENDPOINT
        .key(keys.endpoint(p, id))
        .key(keys.endpoint_due(p, id))
        .key(keys.ready(p))
        .key(keys.rate(p, id))
        .key(keys.endpoint_stats(p, id))
        .key(keys.endpoint_deliveries(p, id))
        .key(keys.attempts(p, id))
        .key(keys.queued(p))
        .key(keys.fifo_heads(p))
        .arg(endpoint.tenant_id)
        .arg(retention_ms)
        .arg(id)
        .invoke_async(conn)
        .await?;
    Ok(u64::try_from(cancelled).ok())
}

/// Makes `secret` the endpoint's signing secret; the previous one keeps
/// signing too for `grace_ms`. `None` when there is no such endpoint of
/// the tenant; otherwise when the previous secret expires (epoch ms).
pub async fn rotate_secret(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    endpoint: EndpointRef<'_>,
    secret: &str,
    grace_ms: u64,
) -> redis::RedisResult<Option<u64>> {
    let until: i64 = scripts::ROTATE_SECRET
        .key(keys.endpoint(endpoint.partition, endpoint.endpoint_id))
        .arg(endpoint.tenant_id)
        .arg(secret)
        .arg(grace_ms)
        .invoke_async(conn)
        .await?;
    Ok(u64::try_from(until).ok())
}

/// Stores a new endpoint (its hash, with its signing secret) and takes one
/// of the tenant's `cap` places with its index entry. Without a place the
/// hash is deleted again and `Full` is answered. Until the index entry
/// exists nothing reaches the endpoint (publishing reads the index), so a
/// crash in between leaves only an unreachable hash, never a place taken
/// by no endpoint.
pub async fn create(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    partition: Partition,
    record: &EndpointRecord,
    secret: &str,
    cap: u64,
) -> redis::RedisResult<CappedAdd> {
    let hash = keys.endpoint(partition, &record.id);
    let mut fields = record.to_fields();
    fields.push(("secret", secret.to_string()));
    let () = conn.hset_multiple(&hash, &fields).await?;
    let placed = caps::capped_add(
        conn,
        keys,
        CappedHash::Endpoints {
            tenant_id: &record.tenant_id,
        },
        cap,
        &record.id,
        &record.subscription_summary(),
    )
    .await;
    if !matches!(placed, Ok(CappedAdd::Added)) {
        let undone: redis::RedisResult<()> = conn.del(&hash).await;
        if let Err(err) = undone {
            tracing::warn!(endpoint_id = %record.id, error = %err, "could not delete the hash of an endpoint not created");
        }
    }
    // A fresh id never exists: both other answers mean no place is left.
    Ok(match placed? {
        CappedAdd::Added => CappedAdd::Added,
        CappedAdd::Exists | CappedAdd::Full => CappedAdd::Full,
    })
}

/// The endpoint `endpoint_id` of `tenant_id`; `None` when there is none
/// (or it is another tenant's, or its id is malformed).
pub async fn load(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    endpoint_id: &str,
) -> redis::RedisResult<Option<(Partition, EndpointRecord)>> {
    let Some(p) = ids::partition_of(IdKind::Endpoint, endpoint_id) else {
        return Ok(None);
    };
    let map: HashMap<String, String> = conn.hgetall(keys.endpoint(p, endpoint_id)).await?;
    Ok(EndpointRecord::from_hash(&map)
        .filter(|record| record.tenant_id == tenant_id)
        .map(|record| (p, record)))
}

/// The ids of the tenant's endpoints (its index), in creation order.
pub async fn ids_of(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut ids: Vec<String> = conn.hkeys(keys.tenant_endpoints(tenant_id)).await?;
    // Ids begin with their creation time: id order is creation order.
    ids.sort();
    Ok(ids)
}

/// The tenant's endpoints of `endpoint_ids`, in that order (one pipelined
/// round trip; ids of no endpoint of the tenant are left out).
pub async fn load_many(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    endpoint_ids: &[String],
) -> redis::RedisResult<Vec<EndpointRecord>> {
    let mut pipe = redis::pipe();
    for id in endpoint_ids {
        if let Some(p) = ids::partition_of(IdKind::Endpoint, id) {
            pipe.hgetall(keys.endpoint(p, id));
        }
    }
    let maps: Vec<HashMap<String, String>> = pipe.query_async(conn).await?;
    Ok(maps
        .iter()
        .filter_map(EndpointRecord::from_hash)
        .filter(|record| record.tenant_id == tenant_id)
        .collect())
}

/// Writes the endpoint's entry in its tenant's index, as it is now.
pub async fn index(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    record: &EndpointRecord,
) -> redis::RedisResult<()> {
    conn.hset(
        keys.tenant_endpoints(&record.tenant_id),
        &record.id,
        record.subscription_summary(),
    )
    .await
}

/// Takes a deleted endpoint out of its tenant's index and lists it among
/// the endpoints deleted within retention (an event's deliveries to it are
/// found through that list until retention ends), dropping older ones.
pub async fn unindex_deleted(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    endpoint_id: &str,
    now_ms: u64,
    retention_ms: u64,
) -> redis::RedisResult<()> {
    let deleted = keys.tenant_endpoints_deleted(tenant_id);
    redis::pipe()
        .hdel(keys.tenant_endpoints(tenant_id), endpoint_id)
        .ignore()
        .zadd(&deleted, endpoint_id, now_ms)
        .ignore()
        .zrembyscore(&deleted, "-inf", now_ms.saturating_sub(retention_ms))
        .ignore()
        .query_async(conn)
        .await
}

/// The ids of the tenant's endpoints and of those deleted since
/// `since_ms` (within retention): every endpoint that may have a delivery
/// of an event created then, sorted, each once.
pub async fn ids_since(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    since_ms: u64,
) -> redis::RedisResult<Vec<String>> {
    let (mut ids, deleted): (Vec<String>, Vec<String>) = redis::pipe()
        .hkeys(keys.tenant_endpoints(tenant_id))
        .zrangebyscore(keys.tenant_endpoints_deleted(tenant_id), since_ms, "+inf")
        .query_async(conn)
        .await?;
    ids.extend(deleted);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The tenant's endpoint index: endpoint id → subscription summary
/// (`EndpointRecord::subscription_summary`), what publish matches on.
pub async fn index_of(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<HashMap<String, String>> {
    conn.hgetall(keys.tenant_endpoints(tenant_id)).await
}

/// What [`index_with_type`] read.
#[derive(Debug)]
pub struct IndexRead {
    /// The tenant's `config_version` (`store::tenant_config`), read first:
    /// what follows is at least as new as it.
    pub version: u64,
    /// Whether the tenant defined the event type asked about (`true` when
    /// none was asked about).
    pub defined: bool,
    pub index: HashMap<String, String>,
    pub max_events: Option<u64>,
}

/// The tenant's endpoint index with whether it defined the event type
/// `event_type` (when one is given), its cap on retained events and the
/// version of all three, in one round trip and one `MULTI`/`EXEC` (all
/// live in the tenant's slot): a cluster connection sends a plain
/// pipeline's commands concurrently, and the version must not be read
/// after the index it labels.
pub async fn index_with_type(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    event_type: Option<&str>,
) -> redis::RedisResult<IndexRead> {
    let mut pipe = redis::pipe();
    pipe.atomic().hget(keys.tenant(tenant_id), "config_version");
    match event_type {
        Some(event_type) => pipe.hexists(keys.tenant_event_types(tenant_id), event_type),
        // (Something to read in its place, so the reply has one shape.)
        None => pipe.exists(keys.tenant(tenant_id)),
    };
    pipe.hgetall(keys.tenant_endpoints(tenant_id))
        .hget(keys.tenant(tenant_id), "max_events");
    let (version, defined, index, cap): (
        Option<String>,
        bool,
        HashMap<String, String>,
        Option<String>,
    ) = pipe.query_async(conn).await?;
    Ok(IndexRead {
        version: version.and_then(|v| v.parse().ok()).unwrap_or(0),
        defined: defined || event_type.is_none(),
        index,
        max_events: cap.and_then(|c| c.parse().ok()),
    })
}
