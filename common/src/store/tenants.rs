//! Tenants and their API keys: the tenant hash `{t:<tid>}:tenant`, the
//! admin listing `tenants` (ids by creation time), a tenant's key
//! metadata `{t:<tid>}:api_keys` (never the key itself) and the lookup from
//! a key's SHA-256 to its tenant, key id and scopes, `api_key:<sha256>`.
//! A tenant being deleted has `deleting` (when it was asked for) in its
//! hash until the deletion's last step removes it (see
//! [`super::tenant_deletion`]).

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use redis::AsyncCommands;

use super::scripts;
use crate::Keys;

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: String,
    pub name: String,
    pub created_ms: u64,
    /// When its deletion was asked for, while it is being deleted.
    pub deleting_ms: Option<u64>,
    /// Its own retention (ms), if it has one.
    pub retention_ms: Option<u64>,
    /// Its cap on retained events, if it has one.
    pub max_events: Option<u64>,
}

/// What an update found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Updated,
    NotFound,
    Deleting,
    /// Nothing written: the change leaves the tenant capped, and its count
    /// is missing or for another retention (a change ran meanwhile).
    /// Start the count ([`super::usage::rebuild`]) and try again.
    Recount,
}

/// A change to a tenant: each `Some` is written (`Some(None)` removes the
/// setting: the server's retention, no cap).
#[derive(Debug, Clone, Default)]
pub struct TenantChange {
    pub name: Option<String>,
    pub retention_ms: Option<Option<u64>>,
    pub max_events: Option<Option<u64>>,
}

/// Marks the tenant `id` as being deleted since `requested_ms`, unless it
/// is missing (its deletion's last step already ran: nothing is brought
/// back) or marked already. One step (`tenant_update.lua`).
pub async fn mark_deleting(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    id: &str,
    requested_ms: u64,
) -> redis::RedisResult<()> {
    let _: i64 = scripts::TENANT_UPDATE
        .key(keys.tenant(id))
        .key(keys.tenant_usage(id))
        .arg(0)
        .arg("deleting")
        .arg(requested_ms)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// Applies `change` to the tenant `id`, unless it is missing or being
/// deleted, or it leaves the tenant capped without a count for its
/// retention (`server_retention_ms` for a tenant without its own).
pub async fn update(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    id: &str,
    change: &TenantChange,
    server_retention_ms: u64,
) -> redis::RedisResult<Updated> {
    let mut invocation = scripts::TENANT_UPDATE.prepare_invoke();
    invocation
        .key(keys.tenant(id))
        .key(keys.tenant_usage(id))
        .arg(server_retention_ms);
    if let Some(name) = &change.name {
        invocation.arg("name").arg(name);
    }
    for (field, value) in [
        ("retention_ms", change.retention_ms),
        ("max_events", change.max_events),
    ] {
        if let Some(value) = value {
            invocation
                .arg(field)
                .arg(value.map(|v| v.to_string()).unwrap_or_default());
        }
    }
    let outcome: i64 = invocation.invoke_async(conn).await?;
    Ok(match outcome {
        1 => Updated::Updated,
        -1 => Updated::Deleting,
        -2 => Updated::Recount,
        _ => Updated::NotFound,
    })
}

/// Stores a new tenant and lists it for the admin listing.
pub async fn create(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant: &TenantRecord,
) -> redis::RedisResult<()> {
    let () = conn
        .hset_multiple(
            keys.tenant(&tenant.id),
            &[
                ("id", tenant.id.clone()),
                ("name", tenant.name.clone()),
                ("created", tenant.created_ms.to_string()),
            ],
        )
        .await?;
    conn.zadd(keys.tenants(), &tenant.id, tenant.created_ms)
        .await
}

/// The tenant `id`, if there is one.
pub async fn load(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    id: &str,
) -> redis::RedisResult<Option<TenantRecord>> {
    let map: HashMap<String, String> = conn.hgetall(keys.tenant(id)).await?;
    let (Some(name), Some(created)) = (map.get("name"), map.get("created")) else {
        return Ok(None);
    };
    Ok(Some(TenantRecord {
        id: id.to_string(),
        name: name.clone(),
        created_ms: created.parse().unwrap_or(0),
        deleting_ms: map.get("deleting").and_then(|ms| ms.parse().ok()),
        retention_ms: map.get("retention_ms").and_then(|ms| ms.parse().ok()),
        max_events: map.get("max_events").and_then(|n| n.parse().ok()),
    }))
}

/// The tenant's own retention (ms), if it has one.
pub async fn retention(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    id: &str,
) -> redis::RedisResult<Option<u64>> {
    let value: Option<String> = conn.hget(keys.tenant(id), "retention_ms").await?;
    Ok(value.and_then(|v| v.parse().ok()))
}

/// Up to `count` tenant ids in creation order, from those created at
/// `from_ms` on (all when `None`).
pub async fn ids_from(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    from_ms: Option<u64>,
    count: usize,
) -> redis::RedisResult<Vec<String>> {
    let from = from_ms.map_or_else(|| "-inf".to_string(), |ms| ms.to_string());
    conn.zrangebyscore_limit(keys.tenants(), from, "+inf", 0, count as isize)
        .await
}

/// Stores a new API key of `tenant_id`: its metadata (`meta`, JSON, never
/// the key) first, so a key that authenticates is always listed and can be
/// revoked, then the lookup from its hash.
pub async fn add_api_key(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    key_id: &str,
    key_hash_hex: &str,
    scopes: &str,
    meta: &str,
) -> redis::RedisResult<()> {
    let () = conn
        .hset(keys.tenant_api_keys(tenant_id), key_id, meta)
        .await?;
    conn.set(
        keys.api_key_lookup(key_hash_hex),
        format!("{tenant_id} {key_id} {scopes}"),
    )
    .await
}

/// Every API key's metadata of `tenant_id` (key id → JSON).
pub async fn api_keys(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<HashMap<String, String>> {
    conn.hgetall(keys.tenant_api_keys(tenant_id)).await
}

/// One API key's metadata of `tenant_id`.
pub async fn api_key(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    key_id: &str,
) -> redis::RedisResult<Option<String>> {
    conn.hget(keys.tenant_api_keys(tenant_id), key_id).await
}

/// Revokes an API key: the lookup goes first (from then on the key no
/// longer authenticates), then every API process is told to drop it from
/// its cache ([`forget_api_key`]), then its metadata.
pub async fn revoke_api_key(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    key_id: &str,
    key_hash_hex: &str,
) -> redis::RedisResult<()> {
    let () = conn.del(keys.api_key_lookup(key_hash_hex)).await?;
    forget_api_key(conn, keys, key_hash_hex).await?;
    conn.hdel(keys.tenant_api_keys(tenant_id), key_id).await
}

/// Tells every API process that the key whose SHA-256 is `key_hash_hex`
/// no longer resolves (its lookup is gone): each drops it from its cache.
pub async fn forget_api_key(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    key_hash_hex: &str,
) -> redis::RedisResult<()> {
    let _: i64 = conn.publish(keys.auth_channel(), key_hash_hex).await?;
    Ok(())
}

/// `<tenant id> <key id> <scopes>` for the API key whose SHA-256 is
/// `key_hash_hex` (`<tenant id> <key id>` for keys made before scopes).
pub async fn lookup_api_key(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    key_hash_hex: &str,
) -> redis::RedisResult<Option<String>> {
    conn.get(keys.api_key_lookup(key_hash_hex)).await
}
