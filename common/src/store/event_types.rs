//! A tenant's own event types: `{t:<tid>}:event_types`, name → the type as
//! JSON (its description and example). Built-in types are not stored
//! (`catalog.rs`); adding one goes through [`super::caps::capped_add`], which
//! keeps the tenant's cap in the same step.

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use redis::AsyncCommands;

use crate::Keys;

/// Every type the tenant defined: name → JSON.
pub async fn all(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<HashMap<String, String>> {
    conn.hgetall(keys.tenant_event_types(tenant_id)).await
}

/// The names of the types the tenant defined.
pub async fn names(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
) -> redis::RedisResult<Vec<String>> {
    conn.hkeys(keys.tenant_event_types(tenant_id)).await
}

/// Whether the tenant defined `name`.
pub async fn exists(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    name: &str,
) -> redis::RedisResult<bool> {
    conn.hexists(keys.tenant_event_types(tenant_id), name).await
}

/// Deletes the tenant's type `name`; false when it had none of that name.
pub async fn delete(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    name: &str,
) -> redis::RedisResult<bool> {
    let removed: u64 = conn.hdel(keys.tenant_event_types(tenant_id), name).await?;
    Ok(removed > 0)
}
