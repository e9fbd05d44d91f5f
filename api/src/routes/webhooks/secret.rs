//! `POST /api/v1/webhooks/{id}/secret/rotate`: give an endpoint a new
//! signing secret, with a grace period during which deliveries carry both
//! signatures (`store::endpoint::rotate_secret`, `rotate_secret.lua`).

use hookfleet_common::signing::SigningSecret;
use hookfleet_common::store::endpoint::{self as store_endpoint, EndpointRef};
use hookfleet_common::time_util::rfc3339_ms;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::load_endpoint;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::routes::ApiTags;
use crate::state::AppState;

/// The longest grace period of a secret rotation (7 days).
pub const MAX_GRACE_PERIOD_S: i64 = 604_800;

/// The secret-rotation route.
pub struct SecretApi {
    pub state: AppState,
}

/// A secret rotation.
#[derive(Object, Deserialize, Default)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the previous secret keeps signing (both signatures are
    /// sent, space-separated), 0 to 604800 seconds; default 86400.
    #[oai(validator(minimum(value = "0"), maximum(value = "604800")), nullable)]
    #[serde(default)]
    pub grace_period_s: Option<i64>,
}

/// The new secret, shown once.
#[derive(Object)]
#[oai(example)]
pub struct RotatedSecret {
    /// The new signing secret (`whsec_…`). Store it now.
    pub secret: String,
    /// Until when deliveries are also signed with the previous secret
    /// (RFC 3339).
    pub previous_secret_expires_at: String,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl SecretApi {
    /// Rotate a webhook's secret
    ///
    /// Returns a new signing secret, once. For the grace period (default
    /// 86400 s, at most 604800) deliveries carry two signatures in
    /// `webhook-signature`, space-separated: the new secret's and the
    /// previous one's, so receivers can switch without dropping events;
    /// after it, only the new one.
    #[oai(
        path = "/webhooks/:id/secret/rotate",
        method = "post",
        operation_id = "rotate_webhook_secret"
    )]
    async fn rotate(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        body: JsonBody<RotateSecret>,
    ) -> Result<Json<RotatedSecret>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let grace = body.0.grace_period_s.unwrap_or(86_400);
        if !(0..=MAX_GRACE_PERIOD_S).contains(&grace) {
            return Err(ApiError::invalid(
                "grace_period_s",
                format!("must be between 0 and {MAX_GRACE_PERIOD_S} seconds"),
            ));
        }
        let (p, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        let secret = SigningSecret::generate().expose();
        let mut conn = self.state.conn().await?;
        let endpoint = EndpointRef {
            tenant_id: &tenant.tenant_id,
            partition: p,
            endpoint_id: &record.id,
        };
        let rotated = store_endpoint::rotate_secret(
            &mut conn,
            &self.state.store.keys,
            endpoint,
            &secret,
            grace as u64 * 1000,
        )
        .await?;
        let Some(until) = rotated else {
            return Err(ApiError::not_found("webhook"));
        };
        tracing::info!(endpoint_id = %record.id, grace_period_s = grace, "secret rotated");
        Ok(Json(RotatedSecret {
            secret,
            previous_secret_expires_at: rfc3339_ms(until),
        }))
    }
}
