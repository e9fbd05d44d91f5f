//! Authentication and scopes. Every request carries
//! `Authorization: Bearer <credential>`:
//!
//! - the admin key (`HOOKFLEET_ADMIN_KEY`) for tenants, portal links and
//!   the fleet;
//! - a tenant's API key (`hf_…`), with the scopes it was created with;
//! - a portal session (`hfs_…`), exchanged for a portal link's token
//!   (`routes::portal`), acting for one tenant with `read` (and `manage`
//!   unless the link is read-only), perhaps for some endpoints only.
//!
//! Keys and sessions are stored only as SHA-256 hashes; each is shown
//! once, when it is created. The scope a request needs follows from its
//! method and path alone ([`scope_needed`]), so it is checked here, before
//! any handler runs or any body is read, and no route can forget it.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use hookfleet_common::signing::constant_time_eq;
use hookfleet_common::store::portal::{self as store_portal, PortalLink};
use hookfleet_common::store::tenants as store_tenants;
use hookfleet_common::time_util::now_ms;
use poem::http::Method;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, KeyKind};
use crate::state::AppState;

/// `Authorization: Bearer <key>` with a tenant API key (`hf_…`) or a
/// portal session (`hfs_…`): every route except tenant management. The
/// key needs the operation's scope: `read` for every GET, `publish` to
/// publish events, `manage` for every other write.
///
/// Keys are resolved while the request is extracted, before its body is
/// read, so a request without a valid key of the right kind and scope gets
/// 401 or 403 whatever its body holds, and nothing is written.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "ApiKey", checker = "resolve_tenant")]
pub struct ApiKeyAuth(pub TenantCtx);

/// `Authorization: Bearer <admin key>` (`HOOKFLEET_ADMIN_KEY`): every admin
/// route: tenants and their API keys (`/api/v1/tenants…`) and the fleet
/// (`/api/v1/admin/…`); it may also make and revoke any tenant's portal
/// links (`/api/v1/portal-links`) and ask `/api/v1/me`. Tenant routes need
/// a tenant key instead.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "AdminKey", checker = "resolve_admin")]
pub struct AdminAuth(pub ());

/// Either kind of credential, for the few routes both may call
/// (`/api/v1/me`, portal links). The admin key is tried first, so a
/// tenant credential that fails gets the tenant check's error.
#[derive(SecurityScheme)]
pub enum AnyAuth {
    Admin(AdminAuth),
    Tenant(ApiKeyAuth),
}

/// What a tenant credential may do.
///
/// Read from JSON as a string (an unknown name, or not a string, is
/// refused naming the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, poem_openapi::Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Scope {
    /// Publish events (`POST /api/v1/events`, `/api/v1/events/batch`).
    Publish,
    /// Every other write: endpoints, event types, retries, replays, test
    /// sends, secret rotation, portal links.
    Manage,
    /// Every `GET`.
    Read,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 3] = [Scope::Publish, Scope::Manage, Scope::Read];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Publish => "publish",
            Scope::Manage => "manage",
            Scope::Read => "read",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl TryFrom<String> for Scope {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Scope::parse(&name)
            .ok_or_else(|| format!("unknown scope `{name}`; expected publish, manage or read"))
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// All three: what keys made before scopes existed have.
    pub const ALL: Scopes = Scopes(0b111);

    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Scopes {
        Scopes(scopes.into_iter().fold(0, |bits, s| bits | s.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes, in [`Scope::ALL`]'s order.
    pub fn list(self) -> Vec<Scope> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .collect()
    }

    /// As stored: names joined by commas.
    pub fn encode(self) -> String {
        let names: Vec<&str> = self.list().into_iter().map(Scope::name).collect();
        names.join(",")
    }

    /// What [`Scopes::encode`] wrote; unknown names are ignored.
    pub fn decode(text: &str) -> Scopes {
        Scopes::of(text.split(',').filter_map(Scope::parse))
    }
}

/// The scope a tenant request needs, from its method and path: `read` for
/// `GET` (and `HEAD`), `publish` for publishing events, `manage` for any
/// other write. `GET /api/v1/me` needs none: any credential may ask what
/// it is.
pub fn scope_needed(method: &Method, path: &str) -> Option<Scope> {
    if path == "/api/v1/me" {
        return None;
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Scope::Read);
    }
    if method == Method::POST && (path == "/api/v1/events" || path == "/api/v1/events/batch") {
        return Some(Scope::Publish);
    }
    Some(Scope::Manage)
}

/// Why a portal session may not make this request, if it may not,
/// whatever its scopes: a portal shows one tenant's endpoints to that
/// tenant's customer; it never changes the tenant's event types or mints
/// portal links, and a portal limited to some endpoints cannot add others.
fn portal_refusal(method: &Method, path: &str, link: &PortalLink) -> Option<&'static str> {
    if path.starts_with("/api/v1/portal-links") {
        return Some("a portal session cannot list, create or revoke portal links");
    }
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    if path.starts_with("/api/v1/event-types") {
        return Some("a portal session cannot change event types");
    }
    if path == "/api/v1/webhooks" && link.endpoint_ids.is_some() {
        return Some("this portal link is limited to some webhooks; it cannot create others");
    }
    None
}

/// The tenant a request acts for, and what it may do.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant_id: String,
    /// The API key's id, or for a portal session its link's id (what the
    /// request budget is counted against).
    pub key_id: String,
    pub scopes: Scopes,
    /// Set for a portal session: the link it was made from.
    pub portal: Option<Arc<PortalLink>>,
}

impl TenantCtx {
    /// Whether this credential sees the endpoint: always, except for a
    /// portal limited to some endpoints. Others answer 404, as another
    /// tenant's would.
    pub fn sees_endpoint(&self, endpoint_id: &str) -> bool {
        match self.portal.as_ref().and_then(|l| l.endpoint_ids.as_ref()) {
            Some(ids) => ids.iter().any(|id| id == endpoint_id),
            None => true,
        }
    }
}

fn reject(error: ApiError) -> poem::Error {
    poem::Error::from_response(poem::IntoResponse::into_response(error))
}

fn state_of(req: &poem::Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| reject(ApiError::unavailable()))
}

async fn resolve_admin(req: &poem::Request, bearer: Bearer) -> poem::Result<()> {
    let state = state_of(req)?;
    match &state.store.config.admin_key {
        Some(admin) if constant_time_eq(admin.as_bytes(), bearer.token.as_bytes()) => {
            check_budget(state, "admin")
        }
        // A working tenant key sent to an admin route: say so, rather than
        // calling a valid key unknown.
        _ if lookup_tenant_key(state, &bearer.token).await?.is_some() => {
            Err(reject(ApiError::wrong_key_kind(KeyKind::Admin)))
        }
        _ => Err(reject(ApiError::unauthorized())),
    }
}

/// The `<tenant id> <key id>[ <scopes>]` a tenant key stands for, if it is
/// one.
async fn lookup_tenant_key(state: &AppState, key: &str) -> poem::Result<Option<String>> {
    if !key.starts_with(API_KEY_PREFIX) || key.len() > 128 {
        return Ok(None);
    }
    let hash = hash_key(key);
    if let Some(found) = state.key_cache.get(&hash) {
        return Ok(Some(found));
    }
    // Boxed: a miss is rare, and its read's future is large; every request
    // carries this one's through the routing layers, each of which moves
    // it in full.
    Box::pin(read_tenant_key(state, hash)).await
}

/// [`lookup_tenant_key`] on a miss: read from Redis, and kept.
async fn read_tenant_key(state: &AppState, hash: String) -> poem::Result<Option<String>> {
    let read_at = tokio::time::Instant::now();
    let mut conn = state.conn().await.map_err(reject)?;
    let found = store_tenants::lookup_api_key(&mut conn, &state.store.keys, &hash)
        .await
        .map_err(|err| reject(err.into()))?;
    if let Some(found) = &found {
        state.key_cache.put(&hash, found, read_at);
    }
    Ok(found)
}

/// The tenant and scopes of an API key, or of a portal session.
async fn tenant_of(state: &AppState, credential: &str) -> poem::Result<TenantCtx> {
    if credential.starts_with(SESSION_PREFIX) && credential.len() <= 128 {
        // Boxed, as a key's read from Redis is (see `lookup_tenant_key`).
        return Box::pin(portal_session(state, credential)).await;
    }
    let found = lookup_tenant_key(state, credential)
        .await?
        .ok_or_else(|| reject(ApiError::unauthorized()))?;
    let mut parts = found.split(' ');
    let (Some(tenant_id), Some(key_id)) = (parts.next(), parts.next()) else {
        return Err(reject(ApiError::unauthorized()));
    };
    Ok(TenantCtx {
        tenant_id: tenant_id.to_string(),
        key_id: key_id.to_string(),
        scopes: parts.next().map_or(Scopes::ALL, Scopes::decode),
        portal: None,
    })
}

/// The tenant and scopes of a portal session (`hfs_…`).
async fn portal_session(state: &AppState, credential: &str) -> poem::Result<TenantCtx> {
    let mut conn = state.conn().await.map_err(reject)?;
    let link = store_portal::by_session(
        &mut conn,
        &state.store.keys,
        &hash_key(credential),
        now_ms(),
    )
    .await
    .map_err(|err| reject(err.into()))?
    .ok_or_else(|| reject(ApiError::portal_expired()))?;
    let scopes = if link.read_only {
        Scopes::of([Scope::Read])
    } else {
        Scopes::of([Scope::Read, Scope::Manage])
    };
    Ok(TenantCtx {
        tenant_id: link.tenant_id.clone(),
        key_id: link.id.clone(),
        scopes,
        portal: Some(Arc::new(link)),
    })
}

async fn resolve_tenant(req: &poem::Request, bearer: Bearer) -> poem::Result<TenantCtx> {
    let state = state_of(req)?;
    let key = bearer.token.as_str();
    let is_admin = state
        .store
        .config
        .admin_key
        .as_ref()
        .is_some_and(|admin| constant_time_eq(admin.as_bytes(), key.as_bytes()));
    if is_admin {
        return Err(reject(ApiError::wrong_key_kind(KeyKind::Tenant)));
    }
    let tenant = tenant_of(state, key).await?;
    check_budget(state, &tenant.key_id)?;
    let (method, path) = (req.method(), req.uri().path());
    if let Some(scope) = scope_needed(method, path) {
        if !tenant.scopes.contains(scope) {
            let what = if tenant.portal.is_some() {
                "this portal session"
            } else {
                "this API key"
            };
            return Err(reject(ApiError::forbidden(format!(
                "{what} lacks the `{}` scope this operation needs",
                scope.name()
            ))));
        }
    }
    if let Some(link) = &tenant.portal {
        if let Some(why) = portal_refusal(method, path, link) {
            return Err(reject(ApiError::forbidden(why)));
        }
    }
    Ok(tenant)
}

/// Spends one request of the key's budget, or 429 with `Retry-After`.
/// Only known keys have a budget, so garbage keys cannot fill the limiter.
fn check_budget(state: &AppState, key_id: &str) -> poem::Result<()> {
    spend_budget(state, key_id).map_err(reject)
}

/// [`check_budget`] for handlers: one request of `budget_id`'s budget
/// (a key's id, or a portal link's for the exchanges of its token).
pub fn spend_budget(state: &AppState, budget_id: &str) -> Result<(), ApiError> {
    match state.limiter.check_key(&budget_id.to_string()) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Err(ApiError::too_many_requests(seconds.max(1)))
        }
    }
}

/// Prefix of tenant API keys, so leaked keys are recognisable by scanners.
pub const API_KEY_PREFIX: &str = "hf_";

/// Prefix of portal sessions.
pub const SESSION_PREFIX: &str = "hfs_";

/// Prefix of portal link tokens (the part of a link after `#`).
pub const PORTAL_TOKEN_PREFIX: &str = "hfp_";

/// A new secret credential: `prefix` and 32 random bytes, URL-safe base64.
pub fn generate_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A new tenant API key: `hf_` and 32 random bytes, URL-safe base64.
pub fn generate_api_key() -> String {
    generate_secret(API_KEY_PREFIX)
}

/// Lower-case hex SHA-256 of a key: what Redis stores instead of the key.
pub fn hash_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        // Every request hashes its key: no formatting machinery per byte.
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

impl AppState {
    /// The tenant the request's API key belongs to (its scope was checked
    /// when the request was extracted).
    pub async fn tenant(&self, auth: &ApiKeyAuth) -> Result<TenantCtx, ApiError> {
        Ok(auth.0.clone())
    }

    /// The admin key was checked when the request was extracted; this keeps
    /// the check visible in every admin handler.
    pub fn admin(&self, _auth: &AdminAuth) -> Result<(), ApiError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request with a key runs `resolve_tenant` inside its handler's
    /// future, which each routing layer moves in full: its reads from Redis
    /// (a cache miss, a portal session) are boxed so that future stays
    /// small. Unboxed it was 7,296 bytes in a debug build; boxed, 176.
    #[test]
    fn resolving_a_key_keeps_a_small_future() {
        fn future_size<A, B, F>(_: impl Fn(A, B) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let size =
            future_size(|req: &'static poem::Request, bearer: Bearer| resolve_tenant(req, bearer));
        assert!(size <= 1024, "resolve_tenant's future is {size} bytes");
    }

    #[test]
    fn keys_are_random_and_hashed() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_ne!(a, b);
        assert!(a.starts_with("hf_"));
        assert_eq!(hash_key(&a).len(), 64);
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn scopes_round_trip_and_old_keys_have_all() {
        let some = Scopes::of([Scope::Read, Scope::Publish]);
        assert_eq!(some.encode(), "publish,read");
        assert_eq!(Scopes::decode(&some.encode()), some);
        assert!(!some.contains(Scope::Manage));
        assert_eq!(Scopes::ALL.encode(), "publish,manage,read");
        assert_eq!(Scopes::decode("read,bogus"), Scopes::of([Scope::Read]));
    }

    #[test]
    fn each_operation_needs_the_scope_its_method_and_path_say() {
        let cases = [
            (Method::GET, "/api/v1/webhooks", Some(Scope::Read)),
            (Method::GET, "/api/v1/events/evt_1", Some(Scope::Read)),
            (Method::POST, "/api/v1/events", Some(Scope::Publish)),
            (Method::POST, "/api/v1/events/batch", Some(Scope::Publish)),
            (Method::POST, "/api/v1/webhooks", Some(Scope::Manage)),
            (Method::PATCH, "/api/v1/webhooks/ep_1", Some(Scope::Manage)),
            (
                Method::DELETE,
                "/api/v1/event-types/a.b",
                Some(Scope::Manage),
            ),
            (
                Method::POST,
                "/api/v1/deliveries/dlv_1/retry",
                Some(Scope::Manage),
            ),
            (
                Method::POST,
                "/api/v1/webhooks/ep_1/test",
                Some(Scope::Manage),
            ),
            (Method::POST, "/api/v1/portal-links", Some(Scope::Manage)),
            (Method::GET, "/api/v1/me", None),
        ];
        for (method, path, scope) in cases {
            assert_eq!(scope_needed(&method, path), scope, "{method} {path}");
        }
    }
}
