//! Endpoints ("webhooks" in the API, as in the system Hookfleet replaces)
//! and what a tenant does with one. Every route here is under
//! `/api/v1/webhooks` and in Swagger UI's *Webhooks* group; each file is one
//! poem-openapi service:
//!
//! - [`crud`]: create, list, read, change and delete endpoints (their
//!   bodies are in [`schema`]);
//! - [`test_send`]: send a test event and answer with its attempt;
//! - [`log`]: the endpoint's delivery log;
//! - [`stats`]: its attempts, latency and backlog over a window;
//! - [`secret`]: rotate its signing secret;
//! - [`replay`]: start a replay of a window of its deliveries and read its
//!   progress (the replay itself runs as a [`crate::replay::ReplayJob`]).
//!
//! Each route that names an endpoint finds it with [`load_endpoint`].

pub mod crud;
pub mod log;
pub mod replay;
pub mod schema;
pub mod secret;
pub mod stats;
pub mod test_send;

use hookfleet_common::ids::Partition;
use hookfleet_common::model::EndpointRecord;
use hookfleet_common::store::endpoint as store_endpoint;

use crate::auth::TenantCtx;
use crate::error::ApiError;
use crate::state::AppState;

/// The webhook services, in the order their operations appear in the spec
/// (and so in Swagger UI's group).
pub type Apis = (
    crud::WebhooksApi,
    test_send::TestSendApi,
    log::WebhookLogApi,
    stats::StatsApi,
    secret::SecretApi,
    replay::ReplayApi,
);

/// Every webhook service, for [`super::all`].
pub fn all(state: &AppState) -> Apis {
    (
        crud::WebhooksApi {
            state: state.clone(),
        },
        test_send::TestSendApi {
            state: state.clone(),
        },
        log::WebhookLogApi {
            state: state.clone(),
        },
        stats::StatsApi {
            state: state.clone(),
        },
        secret::SecretApi {
            state: state.clone(),
        },
        replay::ReplayApi {
            state: state.clone(),
        },
    )
}

/// The tenant's endpoint and its partition, or 404 (also for other
/// tenants' ids, and for endpoints a portal session does not show).
pub async fn load_endpoint(
    state: &AppState,
    tenant: &TenantCtx,
    id: &str,
) -> Result<(Partition, EndpointRecord), ApiError> {
    if !tenant.sees_endpoint(id) {
        return Err(ApiError::not_found("webhook"));
    }
    let mut conn = state.conn().await?;
    store_endpoint::load(&mut conn, &state.store.keys, &tenant.tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}
