//! Portal links and their sessions (plain commands, one key each, so they
//! work the same on Redis Cluster): the link `portal_link:<plid>` (JSON,
//! holding the SHA-256 of its token, never the token), the lookup from the
//! token's hash to the link, `portal_token:<sha256>`, and each session's
//! lookup to its link, `portal_session:<sha256>`. All three expire with
//! the link. A session names its link, so revoking the link (deleting it)
//! ends every session made from it at once. The tenant's listing,
//! `{t:<tid>}:portal_links`, holds link ids scored by expiry.

use redis::aio::ConnectionLike;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::Keys;

/// How a portal presents itself: the platform's name, logo and colour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
}

/// A portal link as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalLink {
    pub id: String,
    pub tenant_id: String,
    /// SHA-256 (hex) of the link's token.
    pub token_hash: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// Sessions get `read` only (else `read` and `manage`).
    pub read_only: bool,
    /// The endpoints the portal shows; all of the tenant's when `None`.
    #[serde(default)]
    pub endpoint_ids: Option<Vec<String>>,
    /// Origins allowed to embed the portal in a frame.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub branding: Option<Branding>,
}

impl PortalLink {
    /// Milliseconds the link has left at `now_ms` (0 once expired).
    pub fn ttl_ms(&self, now_ms: u64) -> u64 {
        self.expires_ms.saturating_sub(now_ms)
    }
}

/// Stores a new link: listed first (so a link that works can always be
/// found and revoked; expired ids leave the listing here), then the link,
/// then the lookup from its token, so a token that resolves always has its
/// link.
pub async fn create(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    link: &PortalLink,
    now_ms: u64,
) -> redis::RedisResult<()> {
    let listing = keys.tenant_portal_links(&link.tenant_id);
    let () = conn.zrembyscore(&listing, "-inf", now_ms).await?;
    let () = conn.zadd(&listing, &link.id, link.expires_ms).await?;
    let json = serde_json::to_string(link).map_err(|err| {
        redis::RedisError::from((redis::ErrorKind::Client, "portal link", err.to_string()))
    })?;
    let ttl = link.ttl_ms(now_ms).max(1);
    let () = conn.pset_ex(keys.portal_link(&link.id), json, ttl).await?;
    conn.pset_ex(keys.portal_token(&link.token_hash), &link.id, ttl)
        .await
}

/// The link `id`, if it exists and has not expired at `now_ms`. A record
/// that no longer reads (written by a later version) counts as absent.
pub async fn load(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    id: &str,
    now_ms: u64,
) -> redis::RedisResult<Option<PortalLink>> {
    let json: Option<String> = conn.get(keys.portal_link(id)).await?;
    Ok(json
        .and_then(|json| serde_json::from_str::<PortalLink>(&json).ok())
        .filter(|link| link.expires_ms > now_ms))
}

/// The link whose token hashes to `token_hash`, if it is still valid.
pub async fn by_token(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    token_hash: &str,
    now_ms: u64,
) -> redis::RedisResult<Option<PortalLink>> {
    let id: Option<String> = conn.get(keys.portal_token(token_hash)).await?;
    match id {
        Some(id) => load(conn, keys, &id, now_ms).await,
        None => Ok(None),
    }
}

/// Records a session of `link`, living as long as the link.
pub async fn add_session(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    session_hash: &str,
    link: &PortalLink,
    now_ms: u64,
) -> redis::RedisResult<()> {
    conn.pset_ex(
        keys.portal_session(session_hash),
        &link.id,
        link.ttl_ms(now_ms).max(1),
    )
    .await
}

/// The link of the session whose token hashes to `session_hash`, if both
/// the session and its link are still valid.
pub async fn by_session(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    session_hash: &str,
    now_ms: u64,
) -> redis::RedisResult<Option<PortalLink>> {
    let id: Option<String> = conn.get(keys.portal_session(session_hash)).await?;
    match id {
        Some(id) => load(conn, keys, &id, now_ms).await,
        None => Ok(None),
    }
}

/// Revokes a link: its token stops resolving and its sessions stop
/// authenticating (their link is gone); their lookups expire on their own.
pub async fn revoke(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    link: &PortalLink,
) -> redis::RedisResult<()> {
    let () = conn.del(keys.portal_link(&link.id)).await?;
    let () = conn.del(keys.portal_token(&link.token_hash)).await?;
    conn.zrem(keys.tenant_portal_links(&link.tenant_id), &link.id)
        .await
}

/// The ids of the tenant's links that have not expired at `now_ms`, in
/// id (creation) order.
pub async fn ids_of(
    conn: &mut (impl ConnectionLike + Send + Sync),
    keys: &Keys,
    tenant_id: &str,
    now_ms: u64,
) -> redis::RedisResult<Vec<String>> {
    let mut ids: Vec<String> = conn
        .zrangebyscore(keys.tenant_portal_links(tenant_id), now_ms + 1, "+inf")
        .await?;
    ids.sort();
    Ok(ids)
}
