//! Publishing events and reading them back with their deliveries.

use std::collections::HashMap;

use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::time_util::rfc3339_ms;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use redis::AsyncCommands;
use serde::Deserialize;

use super::deliveries::{self, DeliverySummary};
use super::event_types;
use super::ApiTags;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::input;
use crate::publish::{self, Target};
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
    #[oai(validator(
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
    ))]
    pub event_type: String,
    /// The event's content, a JSON object. Receivers get it as `data` in
    /// `{"id", "type", "timestamp", "data"}`.
    pub data: serde_json::Value,
}

impl poem_openapi::types::Example for PublishEvent {
    fn example() -> Self {
        PublishEvent {
            event_type: "user.created".into(),
            data: serde_json::json!({"user_id": "u_123", "email": "ada@example.com"}),
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
    /// endpoint).
    pub deliveries: u64,
}

/// An event and the state of each of its deliveries.
#[derive(Object)]
#[oai(example)]
pub struct EventDetail {
    /// The event's id (`evt_…`).
    pub id: String,
    /// Its type.
    pub event_type: String,
    /// Its data, as published.
    pub data: serde_json::Value,
    /// When it was published (RFC 3339); also the body's `timestamp`.
    pub created_at: String,
    /// Its deliveries, one per endpoint.
    pub deliveries: Vec<DeliverySummary>,
}

#[derive(ApiResponse)]
pub enum PublishResponse {
    /// Accepted: every delivery is queued and will reach a final state.
    /// A repeated `Idempotency-Key` answers with the first event, and
    /// creates nothing.
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
    /// returns the first event and creates nothing new.
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
        let event_type = input::event_type_name("event_type", &body.event_type)?;
        if !body.data.is_object() {
            return Err(ApiError::invalid("data", "must be a JSON object"));
        }
        if hookfleet_common::catalog::is_operational(&event_type) {
            return Err(ApiError::invalid(
                "event_type",
                format!("`{event_type}` is an operational type that only Hookfleet publishes"),
            ));
        }
        if !event_types::exists(&self.state, &tenant.tenant_id, &event_type).await? {
            return Err(ApiError::invalid(
                "event_type",
                format!("unknown event type `{event_type}` (see GET /api/v1/webhooks/events)"),
            ));
        }
        let published = publish::publish(
            &self.state,
            &tenant.tenant_id,
            &event_type,
            &body.data,
            idempotency_key.as_deref(),
            Target::Subscribers,
        )
        .await?;
        if !published.duplicate {
            self.state.metrics.published.inc();
        }
        tracing::info!(
            event_id = %published.event_id,
            deliveries = published.deliveries,
            duplicate = published.duplicate,
            "event published"
        );
        Ok(PublishResponse::Accepted(Json(Published {
            id: published.event_id,
            deliveries: published.deliveries,
        })))
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
    ) -> Result<Json<EventDetail>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let not_found = || ApiError::not_found("event (or it expired after the retention period)");
        let home = ids::partition_of(IdKind::Event, &id.0).ok_or_else(not_found)?;
        // One pooled connection at a time (holding one while waiting for
        // another deadlocks the pool under load).
        let event: HashMap<String, String> = {
            let mut conn = self.state.conn().await?;
            conn.hgetall(self.state.keys.event(home, &id.0)).await?
        };
        if event.get("tenant") != Some(&tenant.tenant_id) {
            return Err(not_found());
        }
        let body: serde_json::Value = event
            .get("body")
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_default();
        let partitions: Vec<Partition> = event
            .get("partitions")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
            .filter_map(|p| p.parse().ok())
            .map(Partition)
            .collect();
        let mut all = Vec::new();
        for p in partitions {
            let mut ids: Vec<String> = {
                let mut conn = self.state.conn().await?;
                conn.smembers(self.state.keys.event_deliveries(p, &id.0))
                    .await?
            };
            ids.sort();
            all.extend(deliveries::load_many(&self.state, p, &ids).await?);
        }
        all.sort_by(|a, b| a.endpoint_id.cmp(&b.endpoint_id));
        Ok(Json(EventDetail {
            id: id.0.clone(),
            event_type: event.get("type").cloned().unwrap_or_default(),
            data: body.get("data").cloned().unwrap_or_default(),
            created_at: rfc3339_ms(
                event
                    .get("created")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
            ),
            deliveries: all,
        }))
    }
}
