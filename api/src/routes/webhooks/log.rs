//! `GET /api/v1/webhooks/{id}/deliveries`: one endpoint's delivery log.
//! The same query as the tenant-wide log (`GET /api/v1/deliveries`, in
//! `routes/deliveries.rs`) over one endpoint: both parse their parameters
//! into a [`LogQuery`] and page through `delivery_log.rs`. It has a file
//! of its own, not a place beside the tenant-wide log, because it is a
//! webhook route: its path, its Swagger UI group and its 404 for an
//! unknown endpoint are the webhooks'.
//!
//! poem-openapi takes each query parameter's description and validator
//! from the handler's own signature, so both log routes declare the six
//! parameters, word for word; a test below keeps them equal.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::OpenApi;

use super::load_endpoint;
use crate::auth::ApiKeyAuth;
use crate::delivery_log::{LogParams, LogQuery};
use crate::error::ApiError;
use crate::routes::deliveries::DeliveryPage;
use crate::routes::ApiTags;
use crate::state::AppState;

/// The per-webhook delivery log route.
pub struct WebhookLogApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl WebhookLogApi {
    /// List a webhook's deliveries
    ///
    /// The endpoint's deliveries, newest first, filtered by state, event
    /// type and creation time. Pages are stable while new deliveries arrive:
    /// pass `next` back as `cursor`. At most 1000 deliveries are examined per
    /// page, so a selective filter may return a short (even empty) page with
    /// a `next`; keep following it until it is absent.
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        operation_id = "list_webhook_deliveries"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn deliveries(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        /// Only deliveries in this state: pending, in_flight, scheduled,
        /// delivered, failed or cancelled.
        #[oai(validator(
            pattern = r"^(pending|in_flight|scheduled|held|delivered|failed|cancelled)$"
        ))]
        status: Query<Option<String>>,
        /// Only deliveries whose last attempt got this answer: a status
        /// code (`503`), a class (`4xx`; `1xx` to `5xx`), `timeout` or
        /// `connect_error` (no answer).
        #[oai(validator(
            min_length = 3,
            max_length = 13,
            pattern = r"^([1-5][0-9][0-9]|[1-5]xx|timeout|connect_error)$"
        ))]
        response: Query<Option<String>>,
        /// Only deliveries of this event type.
        #[oai(validator(
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
        ))]
        event_type: Query<Option<String>>,
        /// Only deliveries created at or after this time (RFC 3339).
        since: Query<Option<String>>,
        /// Only deliveries created at or before this time (RFC 3339).
        until: Query<Option<String>>,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page (`<µs>-dlv_…`).
        #[oai(validator(
            min_length = 54,
            max_length = 72,
            pattern = r"^[0-9]{1,19}-dlv_[0-9a-hjkmnp-tv-z]{48}$"
        ))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<DeliveryPage>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let query = LogQuery::parse(LogParams {
            status: status.0.as_deref(),
            response: response.0.as_deref(),
            event_type: event_type.0.as_deref(),
            since: since.0.as_deref(),
            until: until.0.as_deref(),
            limit: limit.0,
            cursor: cursor.0.as_deref(),
        })?;
        let (p, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        let page = query
            .page(&self.state, &tenant.tenant_id, &[(p, record.id)])
            .await?;
        Ok(Json(page.into()))
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::registry::MetaOperationParam;
    use poem_openapi::OpenApi;

    use super::WebhookLogApi;
    use crate::routes::deliveries::DeliveriesApi;

    /// The parameters of `operation_id`, as the spec will state them.
    fn parameters<A: OpenApi>(operation_id: &str) -> Vec<MetaOperationParam> {
        A::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .flat_map(|path| path.operations)
            .find(|operation| operation.operation_id == Some(operation_id))
            .map(|operation| operation.params)
            .unwrap_or_default()
    }

    #[test]
    fn both_delivery_logs_declare_the_same_query_parameters() {
        let tenant_wide = parameters::<DeliveriesApi>("list_deliveries");
        let mut per_webhook = parameters::<WebhookLogApi>("list_webhook_deliveries");
        assert_eq!(per_webhook.first().map(|p| p.name.as_str()), Some("id"));
        per_webhook.remove(0);
        assert_eq!(tenant_wide.len(), 7);
        assert_eq!(tenant_wide, per_webhook);
    }
}
