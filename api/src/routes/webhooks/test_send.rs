//! `POST /api/v1/webhooks/{id}/test`: send one test event to an endpoint
//! alone and answer with its attempt. The request waits without polling
//! and holds one of the tenant's places for waiting test sends; both are
//! [`crate::test_send`]'s.

use std::time::Duration;

use hookfleet_common::catalog::TEST_EVENT_TYPE;
use hookfleet_common::event_data::EventData;
use hookfleet_common::filter::would_pass;
use hookfleet_common::ids;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::load_endpoint;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::delivery_view;
use crate::error::ApiError;
use crate::event_data::RawData;
use crate::input;
use crate::publish::{self, Target};
use crate::routes::deliveries::{self, Attempt};
use crate::routes::event_types;
use crate::routes::ApiTags;
use crate::state::AppState;
use crate::test_send::Place;

/// The test-send route.
pub struct TestSendApi {
    pub state: AppState,
}

/// A test event to send.
#[derive(Object, Deserialize, Default)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct TestWebhook {
    /// The event type to send; default `webhook.test` (any type the tenant
    /// can use is allowed).
    #[oai(validator(min_length = 1, max_length = 128), nullable)]
    #[serde(default)]
    pub event_type: Option<String>,
    /// The event's `data` (a JSON object); default `{"test": true}`.
    #[oai(nullable)]
    #[serde(default)]
    pub data: Option<RawData>,
}

/// A test send's `data` when the request has none.
const DEFAULT_TEST_DATA: &str = r#"{"test":true}"#;

/// What a test send did.
#[derive(Object)]
#[oai(example)]
pub struct TestResult {
    /// The event's id (`evt_…`), also its `webhook-id`.
    pub event_id: String,
    /// The delivery to this endpoint (`dlv_…`).
    pub delivery_id: String,
    /// `delivered`, `failed`, or `pending` when no worker attempted it
    /// within the endpoint's timeout (follow it with
    /// `GET /api/v1/deliveries/{delivery_id}`).
    #[oai(validator(pattern = "^(delivered|failed|pending)$"))]
    pub status: String,
    /// The attempt, once made.
    #[oai(skip_serializing_if_is_none)]
    pub attempt: Option<Attempt>,
    /// For an endpoint with a `filter`: whether this event would have
    /// passed it. A test send is delivered either way; absent when the
    /// endpoint has no filter.
    #[oai(skip_serializing_if_is_none)]
    pub filter_matched: Option<bool>,
}

#[derive(ApiResponse)]
pub enum TestResponse {
    /// The attempt was made; `status` and `attempt` say how it went.
    #[oai(status = 200)]
    Done(Json<TestResult>),
    /// Queued, but not attempted within the endpoint's timeout.
    #[oai(status = 202)]
    Queued(Json<TestResult>),
}

impl TestSendApi {
    /// Publishes a test event to `endpoint_id` alone and waits up to `wait`
    /// for its attempt (see [`crate::test_send`]: no polling, three reads of
    /// the delivery at most: now, when woken, at the deadline).
    async fn send_and_wait(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        event_type: &str,
        data: &EventData,
        wait: Duration,
        filter_matched: Option<bool>,
    ) -> Result<TestResponse, ApiError> {
        let published = publish::publish(
            &self.state,
            tenant_id,
            event_type,
            data,
            None,
            Target::Test(endpoint_id.to_string()),
        )
        .await?;
        let delivery_id =
            ids::delivery_id(&published.event_id, endpoint_id).ok_or_else(ApiError::unavailable)?;
        let mut waiter = self.state.attempt_waiters.register(&delivery_id);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (delivery, loaded) =
                delivery_view::load_one(&self.state, tenant_id, &delivery_id).await?;
            let status = loaded.summary.status.clone();
            if status == "delivered" || status == "failed" {
                let retention = self.state.store.config.storage_retention();
                let body =
                    deliveries::event_body(&self.state, &published.event_id, retention).await?;
                let attempt = deliveries::load_attempts(
                    &self.state,
                    &delivery,
                    loaded.stored.as_ref(),
                    body.as_deref(),
                )
                .await?
                .pop();
                return Ok(TestResponse::Done(Json(TestResult {
                    event_id: published.event_id,
                    delivery_id,
                    status,
                    attempt,
                    filter_matched,
                })));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(TestResponse::Queued(Json(TestResult {
                    event_id: published.event_id,
                    delivery_id,
                    status: "pending".into(),
                    attempt: None,
                    filter_matched,
                })));
            }
            // Woken (read again) or at the deadline (one last read).
            waiter.woken(deadline).await;
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl TestSendApi {
    /// Send a test event
    ///
    /// Sends one signed event to this endpoint alone, whatever it
    /// subscribes to (default type `webhook.test`, data `{"test": true}`),
    /// waits up to the endpoint's timeout for the attempt and returns it:
    /// status, duration, response excerpt or error. One attempt, no retries;
    /// it shows in the delivery log marked `test` and does not count in the
    /// statistics or the circuit breaker. It bypasses the endpoint's
    /// `filter` (`filter_matched` says whether it would have passed). On a
    /// `fifo` endpoint it takes its place at the end of the line, as any
    /// event does. 409 if the endpoint is disabled.
    #[oai(
        path = "/webhooks/:id/test",
        method = "post",
        operation_id = "test_webhook"
    )]
    async fn test(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        body: JsonBody<TestWebhook>,
    ) -> Result<TestResponse, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let body = body.0;
        let event_type = match &body.event_type {
            Some(name) => {
                let name = input::event_type_name("event_type", name)?;
                if name != TEST_EVENT_TYPE
                    && !event_types::exists(&self.state, &tenant.tenant_id, &name).await?
                {
                    return Err(ApiError::invalid(
                        "event_type",
                        format!("unknown event type `{name}`"),
                    ));
                }
                name
            }
            None => TEST_EVENT_TYPE.to_string(),
        };
        let data = match body.data {
            Some(data) => data.check("")?,
            None => EventData::from_json(DEFAULT_TEST_DATA)
                .map_err(|err| ApiError::invalid("data", err.to_string()))?,
        };
        let (_, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        if !record.active {
            return Err(ApiError::conflict(
                "the webhook is disabled; enable it to send a test",
            ));
        }
        if record.paused {
            return Err(ApiError::conflict(
                "the webhook is paused; resume it to send a test (a test send would be held with the rest)",
            ));
        }
        let timeout = record
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.state.store.config.request_timeout);
        // Up to the attempt's timeout, and 2 s for a worker to claim and
        // record it.
        let wait = timeout + Duration::from_secs(2);
        let place = Place::take(&self.state, &tenant.tenant_id, wait).await?;
        let filter_matched = record
            .filter
            .as_deref()
            .map(|filter| would_pass(filter, &event_type, data.as_str()));
        let sent = self
            .send_and_wait(
                &tenant.tenant_id,
                &record.id,
                &event_type,
                &data,
                wait,
                filter_matched,
            )
            .await;
        place.release(&self.state).await;
        sent
    }
}
