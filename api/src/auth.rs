//! Authentication. Every request carries `Authorization: Bearer <key>`:
//! the admin key (`HOOKFLEET_ADMIN_KEY`) for tenant management, or a
//! tenant's API key for everything else. Tenant keys are stored only as
//! SHA-256 hashes; a key is shown once, when it is created.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use governor::clock::{Clock, DefaultClock};
use hookfleet_common::signing::constant_time_eq;
use hookfleet_common::store::tenants as store_tenants;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, KeyKind};
use crate::state::AppState;

/// `Authorization: Bearer <key>` with a tenant API key (`hf_…`): every
/// route except tenant management.
///
/// Keys are resolved while the request is extracted, before its body is
/// read, so a request without a valid key of the right kind gets 401
/// whatever its body holds.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "ApiKey", checker = "resolve_tenant")]
pub struct ApiKeyAuth(pub TenantCtx);

/// `Authorization: Bearer <admin key>` (`HOOKFLEET_ADMIN_KEY`): every admin
/// route: tenants and their API keys (`/api/v1/tenants…`) and the fleet
/// (`/api/v1/admin/…`). Tenant routes need a tenant key instead.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "AdminKey", checker = "resolve_admin")]
pub struct AdminAuth(pub ());

/// The tenant a request acts for.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant_id: String,
    pub key_id: String,
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

/// The `<tenant id> <key id>` a tenant key stands for, if it is one.
async fn lookup_tenant_key(state: &AppState, key: &str) -> poem::Result<Option<String>> {
    if !key.starts_with(API_KEY_PREFIX) || key.len() > 128 {
        return Ok(None);
    }
    let mut conn = state.conn().await.map_err(reject)?;
    store_tenants::lookup_api_key(&mut conn, &state.store.keys, &hash_key(key))
        .await
        .map_err(|err| reject(err.into()))
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
    let found = lookup_tenant_key(state, key)
        .await?
        .ok_or_else(|| reject(ApiError::unauthorized()))?;
    let (tenant_id, key_id) = found
        .split_once(' ')
        .ok_or_else(|| reject(ApiError::unauthorized()))?;
    check_budget(state, key_id)?;
    Ok(TenantCtx {
        tenant_id: tenant_id.to_string(),
        key_id: key_id.to_string(),
    })
}

/// Spends one request of the key's budget, or 429 with `Retry-After`.
/// Only known keys have a budget, so garbage keys cannot fill the limiter.
fn check_budget(state: &AppState, key_id: &str) -> poem::Result<()> {
    match state.limiter.check_key(&key_id.to_string()) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Err(reject(ApiError::too_many_requests(seconds.max(1))))
        }
    }
}

/// Prefix of tenant API keys, so leaked keys are recognisable by scanners.
pub const API_KEY_PREFIX: &str = "hf_";

/// A new tenant API key: `hf_` and 32 random bytes, URL-safe base64.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
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
    /// The tenant the request's API key belongs to.
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
}
