//! Deleting a tenant: a job in Redis that the workers run in bounded steps.
//!
//! `DELETE /api/v1/tenants/{id}` records the job ([`start`]), marks the
//! tenant and revokes its access ([`revoke_access`]: API keys and portal
//! links), then answers. From then on nothing of the tenant's can be read
//! or published. Its data goes in the background, a step at a time:
//!
//! 1. `access`: its access revoked again (a key made in the instant before
//!    the delete is caught here);
//! 2. `endpoints`: each endpoint, live or deleted within retention, in id
//!    order: stopped (its waiting deliveries cancelled), then its log a
//!    chunk at a time (each delivery's state, its event's record, its
//!    entry in the failed-events index), then its attempt stream,
//!    counters, stats buckets and queue entries;
//! 3. `events`: each partition's index of the tenant's events, a chunk at
//!    a time (the records of events no endpoint received), then the
//!    partition's failed-events index and the tenant's operational events
//!    not yet published;
//! 4. `records`: the tenant's own keys (the tenant, its key metadata,
//!    endpoint index, event types, portal links, test sends) and its place
//!    in the listing; then the job ends.
//!
//! Every step removes what is there, so a step done twice removes nothing
//! twice: a worker that dies mid-step leaves a job whose lease expires,
//! and the next worker resumes from the last saved cursor
//! (`tenant_deletion_take.lua`, `tenant_deletion_step.lua`). Every key a
//! step touches is named by the tenant's id or by the id of one of its
//! endpoints or events, so another tenant's data is never touched, even
//! in the hashes tenants share (events and states by time bucket).

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::scripts;
use crate::ids::{self, IdKind, Partition};
use crate::stats::{COARSE_BUCKET_MS, COARSE_TTL_MS, FINE_BUCKET_MS, FINE_TTL_MS};
use crate::store::endpoint::{self as store_endpoint, EndpointRef};
use crate::store::portal as store_portal;
use crate::Keys;

/// Where a deletion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Access,
    Endpoints,
    Events,
    Records,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Access => "access",
            Phase::Endpoints => "endpoints",
            Phase::Events => "events",
            Phase::Records => "records",
        }
    }
}

/// A tenant's deletion as stored: its phase, its cursor and what it has
/// removed so far (counts may run a chunk ahead after a worker died
/// between removing and saving; they are progress, not an audit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionJob {
    pub requested_ms: u64,
    pub phase: Phase,
    /// The last endpoint whose data is gone (phase `endpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The partition whose events are being removed (phase `events`).
    #[serde(default)]
    pub partition: u16,
    #[serde(default)]
    pub endpoints: u64,
    #[serde(default)]
    pub deliveries: u64,
    #[serde(default)]
    pub events: u64,
}

impl DeletionJob {
    pub fn new(requested_ms: u64) -> Self {
        Self {
            requested_ms,
            phase: Phase::Access,
            after: None,
            partition: 0,
            endpoints: 0,
            deliveries: 0,
            events: 0,
        }
    }
}

fn job_field(tenant_id: &str) -> String {
    format!("job:{tenant_id}")
}

fn encode(job: &DeletionJob) -> redis::RedisResult<String> {
    serde_json::to_string(job).map_err(|err| {
        redis::RedisError::from((
            redis::ErrorKind::Client,
            "a deletion job could not be encoded",
            err.to_string(),
        ))
    })
}

/// Records the deletion of `tenant_id` (unless one is under way: that one
/// is answered) and marks the tenant `deleting`. The job is written
/// first: a crash before the mark leaves a job that marks it when it runs.
pub async fn start(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    now_ms: u64,
) -> redis::RedisResult<DeletionJob> {
    let job = DeletionJob::new(now_ms);
    let _: bool = conn
        .hset_nx(keys.tenant_deletions(), job_field(tenant_id), encode(&job)?)
        .await?;
    let job = load(conn, keys, tenant_id).await?.unwrap_or(job);
    mark(conn, keys, tenant_id, job.requested_ms).await?;
    Ok(job)
}

/// Marks the tenant as being deleted (when it still has its record).
async fn mark(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    requested_ms: u64,
) -> redis::RedisResult<()> {
    crate::store::tenants::mark_deleting(conn, keys, tenant_id, requested_ms).await
}

/// The deletion of `tenant_id` under way, if any.
pub async fn load(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<Option<DeletionJob>> {
    let text: Option<String> = conn
        .hget(keys.tenant_deletions(), job_field(tenant_id))
        .await?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Every deletion under way: tenant id → job.
pub async fn all(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
) -> redis::RedisResult<Vec<(String, DeletionJob)>> {
    let fields: std::collections::HashMap<String, String> =
        conn.hgetall(keys.tenant_deletions()).await?;
    Ok(fields
        .into_iter()
        .filter_map(|(field, text)| {
            let tenant = field.strip_prefix("job:")?.to_string();
            let job = serde_json::from_str(&text).ok()?;
            Some((tenant, job))
        })
        .collect())
}

/// Takes a deletion whose lease has expired, under a lease of `lease_ms`
/// for `token`: its tenant and job.
pub async fn take(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    lease_ms: u64,
    token: &str,
) -> redis::RedisResult<Option<(String, DeletionJob)>> {
    let taken: Option<(String, String)> = scripts::TENANT_DELETION_TAKE
        .key(keys.tenant_deletions())
        .arg(lease_ms)
        .arg(token)
        .invoke_async(conn)
        .await?;
    Ok(taken.map(|(tenant, text)| {
        // A job this version cannot read starts again from the beginning:
        // every step is idempotent, so that only costs time.
        let job = serde_json::from_str(&text).unwrap_or_else(|_| DeletionJob::new(0));
        (tenant, job)
    }))
}

/// Saves `job`'s progress and renews the lease, or ends the deletion
/// (`None`); false when `token` no longer holds it (nothing written).
pub async fn save(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    tenant_id: &str,
    token: &str,
    lease_ms: u64,
    job: Option<&DeletionJob>,
) -> redis::RedisResult<bool> {
    let text = match job {
        Some(job) => encode(job)?,
        None => String::new(),
    };
    let saved: i64 = scripts::TENANT_DELETION_STEP
        .key(keys.tenant_deletions())
        .arg(tenant_id)
        .arg(token)
        .arg(lease_ms)
        .arg(text)
        .invoke_async(conn)
        .await?;
    Ok(saved == 1)
}

/// Revokes every way of acting for the tenant: its API keys stop
/// authenticating and its portal links (and their sessions) stop working.
/// Also marks the tenant `deleting`. Idempotent.
pub async fn revoke_access(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    requested_ms: u64,
) -> redis::RedisResult<()> {
    mark(conn, keys, tenant_id, requested_ms).await?;
    let metas: Vec<String> = conn.hvals(keys.tenant_api_keys(tenant_id)).await?;
    for meta in metas {
        let hash = serde_json::from_str::<serde_json::Value>(&meta)
            .ok()
            .and_then(|v| v.get("hash").and_then(|h| h.as_str()).map(str::to_string));
        if let Some(hash) = hash.filter(|h| !h.is_empty()) {
            let () = conn.del(keys.api_key_lookup(&hash)).await?;
            crate::store::tenants::forget_api_key(conn, keys, &hash).await?;
        }
    }
    let links: Vec<String> = conn
        .zrange(keys.tenant_portal_links(tenant_id), 0, -1)
        .await?;
    for link_id in links {
        let link = store_portal::load(conn, keys, &link_id, 0).await?;
        if let Some(link) = link.filter(|l| l.tenant_id == tenant_id) {
            store_portal::revoke(conn, keys, &link).await?;
        }
    }
    Ok(())
}

/// The ids of every endpoint the tenant has, or deleted within retention,
/// in id order: all whose data the deletion removes.
pub async fn endpoint_ids(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<Vec<String>> {
    store_endpoint::ids_since(conn, keys, tenant_id, 0).await
}

/// What a step works on.
#[derive(Debug, Clone, Copy)]
pub struct StepScope<'a> {
    pub tenant_id: &'a str,
    /// Most log entries or events the step removes.
    pub chunk: usize,
    pub now_ms: u64,
    /// The installation's retention (ms).
    pub retention_ms: u64,
}

/// One step of removing an endpoint's data: at most `chunk` entries of
/// its log. Returns how many deliveries went, and whether the endpoint is
/// done (its log was empty, and its remaining keys are gone now).
pub async fn clear_endpoint_step(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    scope: StepScope<'_>,
    endpoint_id: &str,
) -> redis::RedisResult<(u64, bool)> {
    let StepScope {
        tenant_id,
        chunk,
        now_ms,
        retention_ms,
    } = scope;
    let Some(p) = ids::partition_of(IdKind::Endpoint, endpoint_id) else {
        return Ok((0, true));
    };
    let Some(endpoint_body) = ids::body_of(IdKind::Endpoint, endpoint_id) else {
        return Ok((0, true));
    };
    // Stop it first (its waiting deliveries cancelled, nothing more handed
    // out): the script checks the tenant, and does nothing for an endpoint
    // that is already gone.
    store_endpoint::delete(
        conn,
        keys,
        EndpointRef {
            partition: p,
            tenant_id,
            endpoint_id,
        },
        retention_ms,
    )
    .await?;
    let log = keys.endpoint_deliveries(p, endpoint_id);
    let events: Vec<String> = conn.zrange(&log, 0, chunk as isize - 1).await?;
    if events.is_empty() {
        clear_endpoint_keys(conn, keys, p, endpoint_id, endpoint_body, now_ms).await?;
        return Ok((0, true));
    }
    remove_log_entries(conn, keys, tenant_id, p, endpoint_id, &events).await?;
    Ok((events.len() as u64, false))
}

/// Removes some entries of an endpoint's log (`events`, event ids) with
/// what they point to: the deliveries' states (in its partition, by
/// bucket), the failed-events index entries they made, the records of
/// their events (in their home partitions), then the log entries
/// themselves, last: a step cut short leaves the entries, so the next one
/// finds them again. Shared with the retention sweep.
pub(crate) async fn remove_log_entries(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    p: Partition,
    endpoint_id: &str,
    events: &[String],
) -> redis::RedisResult<()> {
    let Some(endpoint_body) = ids::body_of(IdKind::Endpoint, endpoint_id) else {
        return Ok(());
    };
    let mut states: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut records: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for event_id in events {
        let Some(event_body) = ids::body_of(IdKind::Event, event_id) else {
            continue;
        };
        let Some((bucket, _)) = ids::time_bucket(IdKind::Event, event_id) else {
            continue;
        };
        states
            .entry(keys.states(p, bucket))
            .or_default()
            .push(format!("{event_body}{endpoint_body}"));
        if let Some(home) = ids::partition_of(IdKind::Event, event_id) {
            records
                .entry(keys.events(home, bucket))
                .or_default()
                .push(event_id);
        }
    }
    let mut pipe = redis::pipe();
    for (key, fields) in &states {
        pipe.hdel(key, fields).ignore();
    }
    pipe.zrem(keys.tenant_failed(p, tenant_id), events).ignore();
    let () = pipe.query_async(conn).await?;
    let mut pipe = redis::pipe();
    for (key, fields) in &records {
        pipe.hdel(key, fields).ignore();
    }
    let () = pipe.query_async(conn).await?;
    conn.zrem(keys.endpoint_deliveries(p, endpoint_id), events)
        .await
}

/// An endpoint's keys other than its log: its hash and queue state, its
/// attempt stream, counters, stats buckets, rate state, running replay's
/// hold, and its entries in the partition's sets (leases included: their
/// attempts record nothing for an endpoint that is gone).
async fn clear_endpoint_keys(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    p: Partition,
    endpoint_id: &str,
    endpoint_body: &str,
    now_ms: u64,
) -> redis::RedisResult<()> {
    let mut unlink = vec![
        keys.endpoint(p, endpoint_id),
        keys.endpoint_deliveries(p, endpoint_id),
        keys.endpoint_due(p, endpoint_id),
        keys.attempts(p, endpoint_id),
        keys.endpoint_stats(p, endpoint_id),
        keys.rate(p, endpoint_id),
        keys.replay_running(p, endpoint_id),
    ];
    // Stats buckets are found by time: every one their lifetimes allow.
    let mut start = now_ms.saturating_sub(FINE_TTL_MS + FINE_BUCKET_MS) / FINE_BUCKET_MS;
    while start * FINE_BUCKET_MS <= now_ms + FINE_BUCKET_MS {
        unlink.push(keys.stats_fine(p, endpoint_id, start * FINE_BUCKET_MS));
        start += 1;
    }
    let mut start = now_ms.saturating_sub(COARSE_TTL_MS + COARSE_BUCKET_MS) / COARSE_BUCKET_MS;
    while start * COARSE_BUCKET_MS <= now_ms + COARSE_BUCKET_MS {
        unlink.push(keys.stats_coarse(p, endpoint_id, start * COARSE_BUCKET_MS));
        start += 1;
    }
    let mut pipe = redis::pipe();
    for slice in unlink.chunks(100) {
        pipe.unlink(slice).ignore();
    }
    pipe.zrem(keys.ready(p), endpoint_id).ignore();
    pipe.zrem(keys.fifo_heads(p), endpoint_id).ignore();
    let () = pipe.query_async(conn).await?;
    let leased: Vec<String> = conn.zrange(keys.inflight(p), 0, -1).await?;
    let mine: Vec<&String> = leased
        .iter()
        .filter(|d| d.ends_with(endpoint_body))
        .collect();
    if !mine.is_empty() {
        let () = conn.zrem(keys.inflight(p), mine).await?;
    }
    Ok(())
}

/// One step of removing the records of the tenant's events homed in
/// partition `p`: at most `chunk` of its index. Returns how many events
/// went, and whether the partition is done (the index was empty; its
/// failed-events index, the tenant's unpublished operational events and
/// its configuration version there are gone now).
pub async fn clear_events_step(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    p: Partition,
    tenant_id: &str,
    chunk: usize,
) -> redis::RedisResult<(u64, bool)> {
    let index = keys.tenant_events(p, tenant_id);
    let events: Vec<String> = conn.zrange(&index, 0, chunk as isize - 1).await?;
    if events.is_empty() {
        let notices: Vec<String> = conn.zrange(keys.notices(p), 0, -1).await?;
        let needle = format!("\"{tenant_id}\"");
        let theirs: Vec<&String> = notices.iter().filter(|n| n.contains(&needle)).collect();
        let mut pipe = redis::pipe();
        pipe.unlink(&[index, keys.tenant_failed(p, tenant_id)])
            .ignore()
            .hdel(keys.tenant_config_versions(p), tenant_id)
            .ignore();
        if !theirs.is_empty() {
            pipe.zrem(keys.notices(p), theirs).ignore();
        }
        let () = pipe.query_async(conn).await?;
        return Ok((0, true));
    }
    remove_events(conn, keys, p, tenant_id, &events).await?;
    Ok((events.len() as u64, false))
}

/// Removes some of the tenant's events homed in partition `p` (ids from
/// its index): their records, their pending fan-outs, then their index
/// entries, last. Shared with the retention sweep.
pub(crate) async fn remove_events(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    p: Partition,
    tenant_id: &str,
    events: &[String],
) -> redis::RedisResult<()> {
    let mut records: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for event_id in events {
        if let Some((bucket, _)) = ids::time_bucket(IdKind::Event, event_id) {
            records
                .entry(keys.events(p, bucket))
                .or_default()
                .push(event_id);
        }
    }
    let mut pipe = redis::pipe();
    for (key, fields) in &records {
        pipe.hdel(key, fields).ignore();
    }
    pipe.zrem(keys.fanout_pending(p), events).ignore();
    pipe.zrem(keys.tenant_events(p, tenant_id), events).ignore();
    pipe.query_async(conn).await
}

/// The last step: the tenant's own keys and its place in the listing.
/// Access is revoked once more first, so a key whose metadata is gone can
/// never outlive it.
pub async fn clear_records(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    requested_ms: u64,
) -> redis::RedisResult<()> {
    revoke_access(conn, keys, tenant_id, requested_ms).await?;
    let () = conn
        .unlink(&[
            keys.tenant_api_keys(tenant_id),
            keys.tenant_endpoints(tenant_id),
            keys.tenant_endpoints_deleted(tenant_id),
            keys.tenant_event_types(tenant_id),
            keys.tenant_portal_links(tenant_id),
            keys.tenant_test_sends(tenant_id),
            keys.tenant_usage(tenant_id),
            keys.tenant(tenant_id),
        ])
        .await?;
    conn.zrem(keys.tenants(), tenant_id).await
}
