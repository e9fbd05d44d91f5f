//! Publishing events and reading them back with their deliveries.
//!
//! An event's `data` stays JSON text from the request to the receiver and
//! back out of `GET /api/v1/events/{id}` ([`RawData`], then the checked
//! `EventData`), so it is delivered with the values it was sent with.

use std::collections::HashMap;

use hookfleet_common::event_data::EventData;
use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::store::endpoint as store_endpoint;
use hookfleet_common::time_util::rfc3339_ms;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::{Deserialize, Serialize};

use super::deliveries::DeliverySummary;
use super::event_types;
use super::ApiTags;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::delivery_view::{self, DeliveryRef};
use crate::error::{ApiError, ErrorBody};
use crate::event_data::RawData;
use crate::event_list::{self, EventQuery, ListParams};
use crate::exact_json::{via_to_json, ExactJson};
use crate::input;
use crate::publish;
use crate::state::AppState;

pub struct EventsApi {
    pub state: AppState,
}

/// An event to publish.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    /// The event's type: a built-in type or one created with
    /// `POST /api/v1/event-types`.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub event_type: String,
    /// The event's content, a JSON object. Receivers get it as `data` in
    /// `{"id", "type", "timestamp", "data"}`.
    pub data: RawData,
}

impl poem_openapi::types::Example for PublishEvent {
    fn example() -> Self {
        PublishEvent {
            event_type: "user.created".into(),
            data: RawData::example(
                serde_json::json!({"user_id": "u_123", "email": "ada@example.com"}),
            ),
        }
    }
}

/// The accepted event.
#[derive(Object)]
#[oai(example)]
pub struct Published {
    /// The event's id (`evt_…`); receivers see it as `webhook-id`.
    pub id: String,
    /// How many deliveries it fanned out to (one per matching active
    /// endpoint). For a fan-out larger than `HOOKFLEET_FANOUT_INLINE`
    /// across partitions, answered before every delivery is queued: the
    /// number of matching endpoints (one disabled meanwhile gets none).
    pub deliveries: u64,
    /// True when this request repeated an `Idempotency-Key` seen before (per
    /// tenant, within `HOOKFLEET_IDEMPOTENCY_TTL`): the answer is the first
    /// event's, and nothing new was created. The status stays 202 either
    /// way, so a client retrying after a lost answer handles both alike.
    pub duplicate: bool,
}

/// An event and the state of each of its deliveries.
// Answered with `ExactJson` (serde), so that `data` is written as stored;
// the doc comment above is the spec's description.
#[derive(Object, Serialize)]
#[oai(example)]
pub struct EventDetail {
    /// The event's id (`evt_…`).
    pub id: String,
    /// Its type.
    pub event_type: String,
    /// Its data, as published.
    pub data: RawData,
    /// When it was published (RFC 3339); also the body's `timestamp`.
    pub created_at: String,
    /// Its deliveries, one per endpoint.
    #[serde(serialize_with = "via_to_json")]
    pub deliveries: Vec<DeliverySummary>,
}

/// One event of a listing.
#[derive(Object)]
#[oai(example)]
pub struct EventSummary {
    /// The event's id (`evt_…`).
    pub id: String,
    /// Its type.
    pub event_type: String,
    /// When it was published (RFC 3339).
    pub created_at: String,
}

/// A page of events, newest first.
#[derive(Object)]
#[oai(example)]
pub struct EventPage {
    /// The events of this page. With `event_type` it may hold fewer than
    /// `limit` (or none) while `next` is present: a page examines at most
    /// 1,000 events.
    pub data: Vec<EventSummary>,
    /// Pass as `cursor` (with the same filters) for the next page; absent
    /// at the end.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// Events to publish in one request.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct PublishBatch {
    /// 1 to 1,000 events, published in this order, creating at most
    /// 100,000 deliveries among them. The whole request body obeys
    /// `HOOKFLEET_MAX_PAYLOAD` (256 KiB by default).
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub events: Vec<BatchEvent>,
}

/// One event of a batch: the fields of `POST /api/v1/events`, with the
/// idempotency key in the body instead of a header.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct BatchEvent {
    /// The event's type: a built-in type or one created with
    /// `POST /api/v1/event-types`.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub event_type: String,
    /// The event's content, a JSON object; receivers get it as `data`.
    pub data: RawData,
    /// Makes a retry of this event safe, like the `Idempotency-Key` header
    /// of a single publish (1 to 255 visible ASCII characters, per tenant,
    /// for 24 hours): a key seen before returns the first event and
    /// creates nothing. Events of one batch may repeat a key; the later
    /// ones then get the first one's id.
    #[oai(
        skip_serializing_if_is_none,
        validator(min_length = 1, max_length = 255, pattern = "^[!-~]+$"),
        nullable
    )]
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl poem_openapi::types::Example for PublishBatch {
    fn example() -> Self {
        PublishBatch {
            events: vec![
                BatchEvent {
                    event_type: "user.created".into(),
                    data: RawData::example(
                        serde_json::json!({"user_id": "u_123", "email": "ada@example.com"}),
                    ),
                    idempotency_key: Some("signup-u_123".into()),
                },
                BatchEvent {
                    event_type: "video.processed".into(),
                    data: RawData::example(
                        serde_json::json!({"video_id": "v_123", "duration_s": 93}),
                    ),
                    idempotency_key: None,
                },
            ],
        }
    }
}

/// The outcome of one event of a batch: `id` and `deliveries` when it was
/// accepted, `error` when it was not.
#[derive(Object)]
pub struct BatchItemResult {
    /// The event's position in the request's `events`, from 0.
    pub index: u64,
    /// The event's id (`evt_…`): the first event's id when its
    /// `idempotency_key` was seen before.
    #[oai(skip_serializing_if_is_none)]
    pub id: Option<String>,
    /// How many deliveries it fanned out to.
    #[oai(skip_serializing_if_is_none)]
    pub deliveries: Option<u64>,
    /// True when its `idempotency_key` was seen before and nothing was
    /// created.
    #[oai(skip_serializing_if_is_none)]
    pub duplicate: Option<bool>,
    /// Why this event was not accepted (only `unavailable`: the store
    /// failed midway; the event may or may not be stored, so retry it with
    /// an `idempotency_key`).
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<ErrorBody>,
}

/// The answer to a batch publish.
#[derive(Object)]
#[oai(example)]
pub struct BatchPublished {
    /// Events accepted (new or duplicate).
    pub accepted: u64,
    /// Events not accepted (see their `error`).
    pub failed: u64,
    /// One result per event, in the request's order.
    pub results: Vec<BatchItemResult>,
}

impl poem_openapi::types::Example for BatchPublished {
    fn example() -> Self {
        BatchPublished {
            accepted: 2,
            failed: 0,
            results: vec![
                BatchItemResult {
                    index: 0,
                    id: Some("evt_01jq8m2x3c4v5b6n7m8k9j02".into()),
                    deliveries: Some(2),
                    duplicate: Some(false),
                    error: None,
                },
                BatchItemResult {
                    index: 1,
                    id: Some("evt_01jq8m2x3c4v5b6n7m8k9j03".into()),
                    deliveries: Some(1),
                    duplicate: Some(false),
                    error: None,
                },
            ],
        }
    }
}

#[derive(ApiResponse)]
pub enum BatchPublishResponse {
    /// Accepted: every event is stored and its deliveries queued (large
    /// fan-outs: see the single publish route).
    #[oai(status = 202)]
    Accepted(Json<BatchPublished>),
    /// Partly accepted: the store failed midway. Events with an `id` are
    /// accepted; those with an `error` may or may not be stored: retry
    /// them (with an `idempotency_key`, so none is published twice).
    #[oai(status = 207)]
    Partial(Json<BatchPublished>),
}

#[derive(ApiResponse)]
pub enum PublishResponse {
    /// Accepted: the event is stored and every delivery will reach a final
    /// state. Deliveries are queued before this answer, except for a
    /// fan-out larger than `HOOKFLEET_FANOUT_INLINE` across partitions,
    /// whose other partitions are queued right after it (and finished by a
    /// worker if the API stops first). A repeated `Idempotency-Key`
    /// answers with the first event, and creates nothing.
    #[oai(status = 202)]
    Accepted(Json<Published>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Events")]
impl EventsApi {
    /// Publish an event
    ///
    /// Stores the event once and queues one delivery per active endpoint
    /// whose `events` match its type. Send an `Idempotency-Key` to make
    /// retries of this request safe: the same key (per tenant, for 24 hours)
    /// returns the first event and creates nothing new. A tenant with a
    /// cap on retained events (`max_retained_events`) that has reached it
    /// gets 429 `quota_exceeded`, naming the cap, and nothing is written.
    #[oai(path = "/events", method = "post", operation_id = "publish_event")]
    async fn publish(
        &self,
        auth: ApiKeyAuth,
        /// Makes retries safe: 1 to 255 visible ASCII characters.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = "^[!-~]+$")
        )]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<PublishEvent>,
    ) -> Result<PublishResponse, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let body = body.0;
        let idempotency_key = idempotency_key
            .0
            .as_deref()
            .map(input::idempotency_key)
            .transpose()?;
        let data = check_event("", &body.event_type, body.data)?;
        let Some(published) = publish::publish_one(
            &self.state,
            &tenant.tenant_id,
            &body.event_type,
            &data,
            idempotency_key.as_deref(),
        )
        .await?
        else {
            return Err(unknown_type("event_type", &body.event_type));
        };
        if !published.duplicate {
            self.state.metrics.published.inc();
        }
        // Debug, not info: a formatted log line per event is hot-path work
        // at high rates; `hookfleet_events_published_total` counts them.
        tracing::debug!(
            event_id = %published.event_id,
            deliveries = published.deliveries,
            duplicate = published.duplicate,
            "event published"
        );
        Ok(PublishResponse::Accepted(Json(Published {
            id: published.event_id,
            deliveries: published.deliveries,
            duplicate: published.duplicate,
        })))
    }

    /// Publish a batch of events
    ///
    /// Publishes up to 1,000 events in one request, each exactly as
    /// `POST /api/v1/events` would (stored once, one delivery per matching
    /// active endpoint); each event is atomic on its own, the batch is not
    /// a transaction. The whole batch is validated before anything is
    /// written: one invalid event refuses the request with a 4xx naming it
    /// (`events[3].event_type`) and nothing is published. So does a batch
    /// whose events would create more than 100,000 deliveries among them
    /// (say 101 events to 1,000 webhooks): 422 naming `events`, and one
    /// that would take a tenant past its cap on retained events: 429
    /// `quota_exceeded`. The answer has
    /// one result per event, in order. If the store fails midway, the
    /// answer is 207 and the events not accepted carry an `error` (503 when
    /// none was accepted).
    #[oai(
        path = "/events/batch",
        method = "post",
        operation_id = "publish_event_batch"
    )]
    async fn publish_batch(
        &self,
        auth: ApiKeyAuth,
        body: JsonBody<PublishBatch>,
    ) -> Result<BatchPublishResponse, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let batch = body.0;
        if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
            return Err(ApiError::invalid(
                "events",
                format!(
                    "must hold 1 to {MAX_BATCH} events (got {})",
                    batch.events.len()
                ),
            ));
        }
        // Validate everything before writing anything. Each event's data
        // moves into its checked form (no copy of the text).
        let mut known: HashMap<String, bool> = HashMap::new();
        let mut checked: Vec<(String, EventData, Option<String>)> =
            Vec::with_capacity(batch.events.len());
        for (i, event) in batch.events.into_iter().enumerate() {
            let BatchEvent {
                event_type,
                data,
                idempotency_key,
            } = event;
            let prefix = format!("events[{i}].");
            let data = check_event(&prefix, &event_type, data)?;
            if let Some(key) = &idempotency_key {
                if !input::is_idempotency_key(key) {
                    return Err(ApiError::invalid(
                        format!("{prefix}idempotency_key"),
                        "must be 1 to 255 visible ASCII characters",
                    ));
                }
            }
            let exists = match known.get(&event_type) {
                Some(exists) => *exists,
                None => {
                    let exists =
                        event_types::exists(&self.state, &tenant.tenant_id, &event_type).await?;
                    known.insert(event_type.clone(), exists);
                    exists
                }
            };
            if !exists {
                return Err(unknown_type(&format!("{prefix}event_type"), &event_type));
            }
            checked.push((event_type, data, idempotency_key));
        }

        let events: Vec<publish::BatchEvent<'_>> = checked
            .iter()
            .map(|(event_type, data, idempotency_key)| publish::BatchEvent {
                event_type,
                data,
                idempotency_key: idempotency_key.as_deref(),
            })
            .collect();
        // Counted against a cap: the events whose idempotency key is not
        // remembered (the others store nothing).
        let keyed: Vec<&str> = events.iter().filter_map(|e| e.idempotency_key).collect();
        let seen = publish::seen_keys(&self.state, &tenant.tenant_id, &keyed).await?;
        let mut seen = seen.into_iter();
        let counts: Vec<bool> = events
            .iter()
            .map(|e| e.idempotency_key.is_none() || !seen.next().unwrap_or(false))
            .collect();
        let to_count = counts.iter().filter(|c| **c).count() as u64;
        let counted = match to_count {
            0 => None,
            n => publish::count_against_cap(&self.state, &tenant.tenant_id, n).await?,
        };
        let outcomes = match publish::publish_many(&self.state, &tenant.tenant_id, &events).await {
            Ok(outcomes) => outcomes,
            Err(err) => {
                if let Some(hour) = counted {
                    publish::give_back(&self.state, &tenant.tenant_id, to_count, hour).await;
                }
                return Err(err);
            }
        };
        if let Some(hour) = counted {
            let not_stored = outcomes
                .iter()
                .zip(&counts)
                .filter(|(o, counted)| **counted && !matches!(o, Ok(p) if !p.duplicate))
                .count() as u64;
            publish::give_back(&self.state, &tenant.tenant_id, not_stored, hour).await;
        }
        let mut accepted = 0;
        let mut fresh = 0;
        let mut results = Vec::with_capacity(outcomes.len());
        for (index, outcome) in outcomes.into_iter().enumerate() {
            results.push(match outcome {
                Ok(published) => {
                    accepted += 1;
                    if !published.duplicate {
                        fresh += 1;
                    }
                    BatchItemResult {
                        index: index as u64,
                        id: Some(published.event_id),
                        deliveries: Some(published.deliveries),
                        duplicate: Some(published.duplicate),
                        error: None,
                    }
                }
                Err(err) => BatchItemResult {
                    index: index as u64,
                    id: None,
                    deliveries: None,
                    duplicate: None,
                    error: Some(err.into_body()),
                },
            });
        }
        self.state.metrics.published.inc_by(fresh);
        let failed = results.len() as u64 - accepted;
        tracing::info!(
            events = results.len(),
            accepted,
            failed,
            "event batch published"
        );
        if accepted == 0 {
            return Err(ApiError::unavailable());
        }
        let answer = Json(BatchPublished {
            accepted,
            failed,
            results,
        });
        Ok(if failed == 0 {
            BatchPublishResponse::Accepted(answer)
        } else {
            BatchPublishResponse::Partial(answer)
        })
    }

    /// List events
    ///
    /// The tenant's events (test sends aside), newest first, a page at a
    /// time (`limit`, default 50; pass `next` back as `cursor`). Filters:
    /// `event_type`, a time window (`since`, `until`), and `outcome=failed`
    /// for events with a delivery that ended failed (even if retried
    /// since). Events expire with the retention period. A page examines at
    /// most 1,000 events, so a selective filter may return a short page
    /// with a `next`.
    #[oai(path = "/events", method = "get", operation_id = "list_events")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        /// Only events of this type.
        #[oai(validator(
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
        ))]
        event_type: Query<Option<String>>,
        /// Only events published at or after this time (RFC 3339).
        since: Query<Option<String>>,
        /// Only events published at or before this time (RFC 3339).
        until: Query<Option<String>>,
        /// `failed`: only events with a delivery that ended failed.
        #[oai(validator(min_length = 6, max_length = 6, pattern = r"^failed$"))]
        outcome: Query<Option<String>>,
        /// Page size, 1 to 250 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "250")))]
        limit: Query<Option<u32>>,
        /// The `next` of the previous page (`evt_…`).
        #[oai(validator(
            min_length = 28,
            max_length = 28,
            pattern = r"^evt_[0-9a-hjkmnp-tv-z]{24}$"
        ))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        if tenant
            .portal
            .as_ref()
            .is_some_and(|link| link.endpoint_ids.is_some())
        {
            return Err(ApiError::forbidden(
                "this portal link is limited to some webhooks; it cannot list all events",
            ));
        }
        let query = EventQuery::parse(ListParams {
            event_type: event_type.0.as_deref(),
            since: since.0.as_deref(),
            until: until.0.as_deref(),
            outcome: outcome.0.as_deref(),
            limit: limit.0,
            cursor: cursor.0.as_deref(),
        })?;
        let page = query.page(&self.state, &tenant.tenant_id).await?;
        Ok(Json(EventPage {
            data: page
                .data
                .iter()
                .map(|listed| EventSummary {
                    id: listed.id.clone(),
                    event_type: listed.event_type.clone(),
                    created_at: event_list::created_at(listed),
                })
                .collect(),
            next: page.next,
        }))
    }

    /// Get an event
    ///
    /// The event, its data and each delivery's state. Events expire after
    /// the retention period (`HOOKFLEET_RETENTION`, 30 days by default) and
    /// then answer 404.
    #[oai(path = "/events/:id", method = "get", operation_id = "get_event")]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        /// The event's id (`evt_…`).
        id: Path<String>,
    ) -> Result<ExactJson<EventDetail>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let not_found = || ApiError::not_found("event (or it expired after the retention period)");
        let keys = &self.state.store.keys;
        let retention = self.state.retention_of(&tenant.tenant_id).await?;
        let record = {
            let mut conn = self.state.conn().await?;
            hookfleet_common::store::events::load(&mut conn, keys, &id.0, retention).await?
        };
        let record = record
            .filter(|record| record.tenant_id == tenant.tenant_id)
            .ok_or_else(not_found)?;
        let created = ids::created_ms(IdKind::Event, &id.0).unwrap_or(0);
        // The data as stored: its text, never a `Value` (whose numbers
        // would not be the ones published).
        let data = match record.data() {
            Some(data) => RawData::stored(data),
            None => {
                tracing::warn!(event_id = %id.0, "a stored event's body is not readable");
                return Err(ApiError::unavailable());
            }
        };
        // Its deliveries: those of the tenant's endpoints (and of endpoints
        // deleted since it was created) whose log lists it.
        let endpoint_ids = {
            let mut conn = self.state.conn().await?;
            store_endpoint::ids_since(&mut conn, keys, &tenant.tenant_id, created).await?
        };
        let refs: Vec<DeliveryRef> = endpoint_ids
            .iter()
            .filter(|endpoint_id| tenant.sees_endpoint(endpoint_id))
            .filter_map(|endpoint_id| DeliveryRef::new(&id.0, endpoint_id, None))
            .collect();
        let deliveries: Vec<DeliverySummary> =
            delivery_view::load(&self.state, &tenant.tenant_id, &refs)
                .await?
                .into_iter()
                .flatten()
                .map(|loaded| loaded.summary)
                .collect();
        // A portal limited to some endpoints sees only the events sent to
        // them.
        let limited = tenant
            .portal
            .as_ref()
            .is_some_and(|link| link.endpoint_ids.is_some());
        if limited && deliveries.is_empty() {
            return Err(not_found());
        }
        Ok(ExactJson(EventDetail {
            id: id.0.clone(),
            event_type: record.event_type.clone(),
            data,
            created_at: rfc3339_ms(created),
            deliveries,
        }))
    }
}

/// The checks every published event passes before the store is asked
/// whether its type exists; `prefix` places its fields (`""` for a single
/// publish, `"events[3]."` in a batch). Answers the checked data: an
/// object, without duplicate keys (see `RawData::check`).
fn check_event(prefix: &str, event_type: &str, data: RawData) -> Result<EventData, ApiError> {
    input::event_type_name(&format!("{prefix}event_type"), event_type)?;
    let data = data.check(prefix)?;
    if hookfleet_common::catalog::is_operational(event_type) {
        return Err(ApiError::invalid(
            format!("{prefix}event_type"),
            format!("`{event_type}` is an operational type that only Hookfleet publishes"),
        ));
    }
    Ok(data)
}

/// The refusal of an event type the tenant does not have.
fn unknown_type(field: &str, event_type: &str) -> ApiError {
    ApiError::invalid(
        field,
        format!("unknown event type `{event_type}` (see GET /api/v1/webhooks/events)"),
    )
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::{Example, ToJSON};

    use super::*;

    #[test]
    fn an_events_detail_reads_as_poem_openapi_would_write_it() {
        // `ExactJson` writes it with serde; for data a `Value` can hold,
        // that is the very JSON `Json` (poem-openapi's `ToJSON`) would
        // write, so the two cannot drift apart field by field.
        let detail = EventDetail::example();
        let by_serde: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&detail).unwrap()).unwrap();
        assert_eq!(Some(by_serde), detail.to_json());
    }

    #[test]
    fn an_events_detail_writes_data_as_stored() {
        let text = r#"{"n": 123456789012345678901234567890, "e": 1e400, "z": -0}"#;
        let raw = serde_json::value::RawValue::from_string(text.to_string()).unwrap();
        let detail = EventDetail {
            data: RawData::stored(&raw),
            ..EventDetail::example()
        };
        let written = String::from_utf8(serde_json::to_vec(&detail).unwrap()).unwrap();
        assert!(written.contains(&format!("\"data\":{text},")), "{written}");
    }
}
