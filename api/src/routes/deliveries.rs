//! Deliveries: the tenant-wide delivery log, one delivery with every
//! attempt, and manual retries. Also how a delivery is shown everywhere
//! (the summary used by events, endpoints' logs and replays).
//!
//! The tenant-wide log declares its query parameters word for word as the
//! per-webhook log does (`routes/webhooks/log.rs`, whose test keeps the two
//! equal); both parse them with [`LogQuery`].

use std::collections::{BTreeMap, HashMap};

use hookfleet_common::delivery_state::StoredState;
use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::model::{
    attempt_field as field, attempt_fields, request_headers, SentWith, USER_AGENT,
};
use hookfleet_common::store::endpoint as store_endpoint;
use hookfleet_common::store::reads;
use hookfleet_common::store::retry::{self, RetryOutcome, RetryRequest, Retryable};
use hookfleet_common::stored_event;
use hookfleet_common::time_util::rfc3339_ms;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::auth::ApiKeyAuth;
use crate::delivery_log::{self, LogParams, LogQuery};
use crate::delivery_view::{self, DeliveryRef};
use crate::error::ApiError;
use crate::state::AppState;

/// One event's delivery to one endpoint.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct DeliverySummary {
    /// The delivery's id (`dlv_…`).
    pub id: String,
    /// The event delivered; also the `webhook-id` header of every attempt.
    pub event_id: String,
    /// The webhook (endpoint) it goes to (`ep_…`).
    pub webhook_id: String,
    /// The event's type.
    pub event_type: String,
    /// `pending` (waiting for its first attempt), `in_flight` (a worker is
    /// attempting it), `scheduled` (waiting for a retry), `held` (waiting
    /// while its endpoint is paused or disabled; it goes out when the
    /// endpoint is resumed or enabled), `delivered`, `failed` (answered with
    /// a non-retryable 4xx, or out of retries) or `cancelled` (its endpoint
    /// was deleted).
    #[oai(validator(pattern = "^(pending|in_flight|scheduled|held|delivered|failed|cancelled)$"))]
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When the last attempt ended (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub last_attempt_at: Option<String>,
    /// HTTP status of the last attempt (absent if none, or no response).
    #[oai(skip_serializing_if_is_none)]
    pub last_status_code: Option<u16>,
    /// Why the last attempt got no status code: `timeout` (no answer within
    /// its timeout) or `connect_error` (the connection failed or was
    /// refused). Absent otherwise.
    #[oai(
        validator(pattern = "^(timeout|connect_error)$"),
        skip_serializing_if_is_none
    )]
    pub last_error: Option<String>,
    /// When the next attempt is due (RFC 3339), while pending or scheduled.
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<String>,
    /// True for a test send (`POST /api/v1/webhooks/{id}/test`): one
    /// attempt, not counted in the endpoint's statistics.
    pub test: bool,
}

/// One attempt, as logged.
#[derive(Object, Debug, Clone)]
#[oai(example)]
pub struct Attempt {
    /// The attempt's id in the log.
    pub id: String,
    /// 1 for the first attempt of the delivery, 2 for the next, …
    pub attempt: u32,
    /// When it ended (RFC 3339).
    pub at: String,
    /// `delivered`, `retry` (another attempt was scheduled) or `failed`.
    #[oai(validator(pattern = "^(delivered|retry|failed)$"))]
    pub outcome: String,
    /// HTTP status of the answer; absent when there was none.
    #[oai(skip_serializing_if_is_none)]
    pub status_code: Option<u16>,
    /// How long the request took, in ms.
    pub duration_ms: u64,
    /// Why it failed without an answer (timeout, connection refused,
    /// refused by the SSRF policy, …).
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// The request headers, signature included. Attempts logged since the
    /// log became compact keep only which secret signed: the headers are
    /// rebuilt from the endpoint's custom headers as they are now and the
    /// signature recomputed (shown as `(made with a secret since rotated
    /// out)` once the endpoint no longer has that secret).
    pub request_headers: BTreeMap<String, String>,
    /// The response headers.
    pub response_headers: BTreeMap<String, String>,
    /// The start of the response body: its first
    /// `HOOKFLEET_RESPONSE_EXCERPT` bytes (1 KiB by default).
    pub response_body: String,
    /// When the next attempt was scheduled for, after this one (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<String>,
    /// True for a test send.
    pub test: bool,
}

impl Attempt {
    fn from_fields(
        id: String,
        fields: &HashMap<String, String>,
        request_headers: Vec<(String, String)>,
    ) -> Self {
        let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
        let pairs = |name: &str| -> BTreeMap<String, String> {
            serde_json::from_str::<Vec<(String, String)>>(get(name))
                .unwrap_or_default()
                .into_iter()
                .collect()
        };
        Self {
            id,
            attempt: get(field::ATTEMPT).parse().unwrap_or(0),
            at: get(field::AT).parse().map(rfc3339_ms).unwrap_or_default(),
            outcome: get(field::OUTCOME).to_string(),
            status_code: get(field::STATUS_CODE).parse().ok(),
            duration_ms: get(field::DURATION_MS).parse().unwrap_or(0),
            error: Some(get(field::ERROR).to_string()).filter(|e| !e.is_empty()),
            request_headers: request_headers.into_iter().collect(),
            response_headers: pairs(field::RESPONSE_HEADERS),
            response_body: get(field::RESPONSE_BODY).to_string(),
            next_attempt_at: get(field::NEXT_ATTEMPT_AT).parse().ok().map(rfc3339_ms),
            test: get(field::TEST) == "1",
        }
    }
}

/// A delivery with its request and every attempt.
#[derive(Object)]
#[oai(example)]
pub struct DeliveryDetail {
    /// The delivery.
    pub delivery: DeliverySummary,
    /// The body POSTed on every attempt (the same bytes each time).
    #[oai(skip_serializing_if_is_none)]
    pub request_body: Option<String>,
    /// Every attempt, oldest first. Attempts beyond the endpoint's log cap
    /// (`HOOKFLEET_ATTEMPT_LOG_MAXLEN`) or retention are no longer listed.
    pub attempts: Vec<Attempt>,
}

/// A page of deliveries, newest first.
#[derive(Object)]
#[oai(example)]
pub struct DeliveryPage {
    /// The deliveries. A selective filter, or a tenant-wide list over many
    /// webhooks, may leave a page short of `limit`, even empty; keep
    /// following `next`.
    pub data: Vec<DeliverySummary>,
    /// Pass as `cursor` to get the next (older) page; absent at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

impl From<delivery_log::Page> for DeliveryPage {
    fn from(page: delivery_log::Page) -> Self {
        Self {
            data: page.data,
            next: page.next.map(|c| c.encode()),
        }
    }
}

/// The outcome of a manual retry.
#[derive(Object)]
#[oai(example)]
pub struct RetryQueued {
    /// The delivery.
    pub delivery_id: String,
    /// Its state before the retry.
    #[oai(validator(pattern = "^(pending|in_flight|scheduled|held|delivered|failed|cancelled)$"))]
    pub previous_status: String,
    /// `queued`, or `already_queued` for a pending delivery.
    #[oai(validator(pattern = "^(queued|already_queued)$"))]
    pub result: String,
}

#[derive(ApiResponse)]
pub enum RetryResponse {
    /// A new attempt is queued for now (same `webhook-id`).
    #[oai(status = 202)]
    Accepted(Json<RetryQueued>),
}

pub struct DeliveriesApi {
    pub state: AppState,
}

/// The body an event's deliveries carry, unless it has expired
/// (`retention`).
pub async fn event_body(
    state: &AppState,
    event_id: &str,
    retention: std::time::Duration,
) -> Result<Option<String>, ApiError> {
    let mut conn = state.conn().await?;
    Ok(
        hookfleet_common::store::events::load(&mut conn, &state.store.keys, event_id, retention)
            .await?
            .map(stored_event::EventRecord::into_body),
    )
}

/// The attempts of a delivery, oldest first (those its state lists that
/// the endpoint's log still holds). `body` is the event's (when it has
/// not expired): a compact entry's signature is recomputed from it.
pub async fn load_attempts(
    state: &AppState,
    delivery: &DeliveryRef,
    stored: Option<&StoredState>,
    body: Option<&str>,
) -> Result<Vec<Attempt>, ApiError> {
    let entry_ids: &[String] = stored.map_or(&[], |s| s.attempt_ids.as_slice());
    if entry_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = state.conn().await?;
    let keys = &state.store.keys;
    let (p, endpoint_id) = (delivery.partition, &delivery.endpoint_id);
    let entries = reads::attempts(&mut conn, keys, p, endpoint_id, entry_ids).await?;
    let read: Vec<(String, HashMap<String, String>)> = entries
        .into_iter()
        .map(|entry| {
            let stored: HashMap<String, Vec<u8>> = entry
                .map
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        redis::from_redis_value_ref::<Vec<u8>>(v).unwrap_or_default(),
                    )
                })
                .collect();
            (entry.id, attempt_fields(endpoint_id, stored))
        })
        .collect();
    // Compact entries keep which secrets signed, not the headers: the
    // endpoint's secrets and custom headers rebuild them.
    let sent_with: Vec<Option<String>> = if read
        .iter()
        .any(|(_, fields)| fields.contains_key(field::SIGNED_BY))
    {
        reads::endpoint_fields(
            &mut conn,
            keys,
            p,
            endpoint_id,
            &["secret", "old_secret", "headers"],
        )
        .await?
    } else {
        Vec::new()
    };
    let at = |i: usize| sent_with.get(i).and_then(|v| v.as_deref());
    let endpoint = SentWith {
        secret: at(0),
        old_secret: at(1),
        headers: at(2),
    };
    Ok(read
        .into_iter()
        .map(|(id, fields)| {
            let headers = request_headers(&fields, &endpoint, body, USER_AGENT);
            Attempt::from_fields(id, &fields, headers)
        })
        .collect())
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Deliveries")]
impl DeliveriesApi {
    /// List deliveries
    ///
    /// Deliveries across all the tenant's endpoints, newest first, with
    /// the same filters and paging as `GET /api/v1/webhooks/{id}/deliveries`.
    /// A page reads at most 10,000 index entries, shared among the
    /// endpoints, so with many endpoints it may end early; keep following
    /// `next`. Deliveries of deleted endpoints are not listed here (read
    /// them by id or through their event).
    #[oai(path = "/deliveries", method = "get", operation_id = "list_deliveries")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ApiKeyAuth,
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
        let mut conn = self.state.conn().await?;
        let keys = &self.state.store.keys;
        let endpoint_ids = store_endpoint::ids_of(&mut conn, keys, &tenant.tenant_id).await?;
        drop(conn);
        let sources: Vec<(Partition, String)> = endpoint_ids
            .into_iter()
            .filter(|id| tenant.sees_endpoint(id))
            .filter_map(|id| ids::partition_of(IdKind::Endpoint, &id).map(|p| (p, id)))
            .collect();
        let page = query.page(&self.state, &tenant.tenant_id, &sources).await?;
        Ok(Json(page.into()))
    }

    /// Get a delivery
    ///
    /// The delivery, the exact body sent, and every attempt: time, request
    /// headers as sent, response status, headers and body excerpt, duration,
    /// error, and the next attempt time while one is scheduled. Deliveries
    /// expire after the retention period (`HOOKFLEET_RETENTION`, 30 days by
    /// default) and then answer 404.
    #[oai(
        path = "/deliveries/:id",
        method = "get",
        operation_id = "get_delivery"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        /// The delivery's id (`dlv_…`).
        id: Path<String>,
    ) -> Result<Json<DeliveryDetail>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let (delivery, loaded) = delivery_view::load_visible(&self.state, &tenant, &id.0).await?;
        let retention = self.state.retention_of(&tenant.tenant_id).await?;
        let request_body = event_body(&self.state, &delivery.event_id, retention).await?;
        let attempts = load_attempts(
            &self.state,
            &delivery,
            loaded.stored.as_ref(),
            request_body.as_deref(),
        )
        .await?;
        let summary = loaded.summary;
        Ok(Json(DeliveryDetail {
            delivery: summary,
            request_body,
            attempts,
        }))
    }

    /// Retry a delivery
    ///
    /// Queues a new attempt now, with the same `webhook-id`: for a failed or
    /// delivered delivery one more attempt; for a scheduled one its next
    /// attempt moves to now (the rest of its schedule stays). 409 when it was
    /// cancelled, is being attempted right now, or its endpoint is disabled.
    #[oai(
        path = "/deliveries/:id/retry",
        method = "post",
        operation_id = "retry_delivery"
    )]
    async fn retry(
        &self,
        auth: ApiKeyAuth,
        /// The delivery's id (`dlv_…`).
        id: Path<String>,
    ) -> Result<RetryResponse, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let (delivery, _) = delivery_view::load_visible(&self.state, &tenant, &id.0).await?;
        let (code, previous) = retry_one(
            &self.state,
            &tenant.tenant_id,
            &delivery,
            &[
                Retryable::Failed,
                Retryable::Delivered,
                Retryable::Scheduled,
            ],
            false,
        )
        .await?;
        let result = match code {
            RetryOutcome::Queued => "queued",
            RetryOutcome::LeftAlone => "already_queued",
            RetryOutcome::Cancelled => {
                return Err(ApiError::conflict(
                    "the delivery was cancelled (its webhook was deleted)",
                ))
            }
            RetryOutcome::EndpointDisabled => {
                return Err(ApiError::conflict(
                    "the webhook is disabled or deleted; enable it first",
                ))
            }
            RetryOutcome::InFlight => {
                return Err(ApiError::conflict(
                    "the delivery is being attempted right now",
                ))
            }
            RetryOutcome::NotFound => return Err(ApiError::not_found("delivery")),
        };
        Ok(RetryResponse::Accepted(Json(RetryQueued {
            delivery_id: id.0.clone(),
            previous_status: previous,
            result: result.into(),
        })))
    }
}

/// Queues one delivery again (`store::retry`); returns what happened and
/// its status before. `skip_test`: a test send is left alone (a replay).
pub async fn retry_one(
    state: &AppState,
    tenant_id: &str,
    delivery: &DeliveryRef,
    allowed: &[Retryable],
    skip_test: bool,
) -> Result<(RetryOutcome, String), ApiError> {
    let mut conn = state.conn().await?;
    let request = RetryRequest {
        tenant_id,
        partition: delivery.partition,
        delivery_id: &delivery.delivery_id,
        event_id: &delivery.event_id,
        endpoint_id: &delivery.endpoint_id,
        allowed,
        skip_test,
        retention: state.store.config.storage_retention(),
    };
    Ok(retry::retry(&mut conn, &state.store.keys, request).await?)
}
