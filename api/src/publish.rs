//! Publishing from the API: the shared fan-out (see
//! `hookfleet_common::publish`) with its errors mapped to HTTP.

use hookfleet_common::event_data::EventData;
use hookfleet_common::publish::{self as shared, PublishError, Store};
pub use hookfleet_common::publish::{BatchEvent, Published, Subscribers, Target};

use crate::error::ApiError;
use crate::state::AppState;

impl From<PublishError> for ApiError {
    fn from(err: PublishError) -> Self {
        match err {
            PublishError::Expired => ApiError::not_found("event"),
            PublishError::TooManyDeliveries(deliveries) => ApiError::invalid(
                "events",
                format!(
                    "the batch would create {deliveries} deliveries among its events (at most {}); send fewer events per batch",
                    shared::MAX_BATCH_DELIVERIES
                ),
            ),
            other => {
                tracing::warn!(error = %other, "publish failed");
                ApiError::unavailable()
            }
        }
    }
}

fn store(state: &AppState) -> &Store {
    &state.store
}

/// The tenant's endpoints that want the event; `None` when the tenant
/// has no such type (see `hookfleet_common::publish::subscribers`).
pub async fn subscribers(
    state: &AppState,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
) -> Result<Option<Subscribers>, ApiError> {
    Ok(shared::subscribers(store(state), tenant_id, event_type, data.as_str()).await?)
}

/// Publishes one event for a tenant, its `publish.lua` call shared with
/// the single publishes arriving beside it. The caller has validated the
/// input.
pub async fn publish(
    state: &AppState,
    tenant_id: &str,
    event_type: &str,
    data: &EventData,
    idempotency_key: Option<&str>,
    target: Target,
) -> Result<Published, ApiError> {
    Ok(shared::publish(
        store(state),
        Some(&state.coalescer),
        tenant_id,
        event_type,
        data,
        idempotency_key,
        target,
    )
    .await?)
}

/// Publishes validated events of one tenant in one go (see
/// `hookfleet_common::publish::publish_many`): one result per event, in
/// order; a Redis failure becomes that event's 503-style error. A batch
/// refused as a whole (its deliveries over the cap: 422; the tenant's
/// endpoints unreadable: 503) writes nothing.
pub async fn publish_many(
    state: &AppState,
    tenant_id: &str,
    events: &[BatchEvent<'_>],
) -> Result<Vec<Result<Published, ApiError>>, ApiError> {
    Ok(shared::publish_many(store(state), tenant_id, events)
        .await?
        .into_iter()
        .map(|result| result.map_err(ApiError::from))
        .collect())
}
