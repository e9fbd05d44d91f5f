//! Authentication. Every request carries `Authorization: Bearer <key>`:
//! the admin key (`HOOKFLEET_ADMIN_KEY`) for tenant management, or a
//! tenant's API key for everything else. Tenant keys are stored only as
//! SHA-256 hashes; a key is shown once, when it is created.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hookfleet_common::signing::constant_time_eq;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use rand::Rng;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// `Authorization: Bearer <key>`: a tenant API key (`hf_…`) for tenant
/// routes, or the admin key for `/api/v1/tenants`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct ApiKeyAuth(pub Bearer);

/// The tenant a request acts for.
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant_id: String,
    pub key_id: String,
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
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

impl AppState {
    /// Resolves a tenant API key, or 401.
    pub async fn tenant(&self, auth: &ApiKeyAuth) -> Result<TenantCtx, ApiError> {
        let key = auth.0.token.as_str();
        if !key.starts_with(API_KEY_PREFIX) || key.len() > 128 {
            return Err(ApiError::unauthorized());
        }
        let mut conn = self.conn().await?;
        let found: Option<String> = conn.get(self.keys.api_key_lookup(&hash_key(key))).await?;
        let found = found.ok_or_else(ApiError::unauthorized)?;
        let (tenant_id, key_id) = found.split_once(' ').ok_or_else(ApiError::unauthorized)?;
        Ok(TenantCtx {
            tenant_id: tenant_id.to_string(),
            key_id: key_id.to_string(),
        })
    }

    /// Checks the admin key, or 401 (also when none is configured).
    pub fn admin(&self, auth: &ApiKeyAuth) -> Result<(), ApiError> {
        match &self.config.admin_key {
            Some(admin) if constant_time_eq(admin.as_bytes(), auth.0.token.as_bytes()) => Ok(()),
            _ => Err(ApiError::unauthorized()),
        }
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
