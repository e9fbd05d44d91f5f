//! What a tenant does with an endpoint when a receiver misbehaves: send a
//! test event and see the answer, read its delivery log, read its
//! statistics, rotate its secret, and replay a window of its deliveries
//! (the replay itself runs as a [`ReplayJob`], `replay.rs`).

use std::collections::HashMap;
use std::time::Duration;

use hookfleet_common::catalog::TEST_EVENT_TYPE;
use hookfleet_common::event_data::EventData;
use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::signing::SigningSecret;
use hookfleet_common::stats::{self, LATENCY_BINS};
use hookfleet_common::store::endpoint::{self as store_endpoint, EndpointRef};
use hookfleet_common::store::reads;
use hookfleet_common::store::replay::{self, HoldAction};
use hookfleet_common::store::retry::Retryable;
use hookfleet_common::time_util::{now_ms, parse_rfc3339_ms, rfc3339_ms};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use redis::AsyncCommands;
use serde::Deserialize;

use super::deliveries::{self, Attempt, DeliveryPage};
use super::event_types;
use super::webhooks::load_endpoint;
use super::ApiTags;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::delivery_log::{LogParams, LogQuery};
use crate::delivery_view;
use crate::error::ApiError;
use crate::event_data::RawData;
use crate::input;
use crate::publish::{self, Target};
use crate::replay::{ReplayJob, REPLAY_STALE_MS};
use crate::state::AppState;
use crate::test_send::Place;

/// The longest window one replay may cover.
pub const MAX_REPLAY_WINDOW_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// The longest grace period of a secret rotation (7 days).
pub const MAX_GRACE_PERIOD_S: i64 = 604_800;

pub struct WebhookOpsApi {
    pub state: AppState,
}

/// A test event to send.
#[derive(Object, Deserialize, Default)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct TestWebhook {
    /// The event type to send; default `webhook.test` (any type the tenant
    /// can use is allowed).
    #[oai(
        validator(
            min_length = 1,
            max_length = 128,
            pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
        ),
        nullable
    )]
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

/// Latency percentiles, in ms (upper edges of log-scale bins: within 41%).
#[derive(Object)]
#[oai(example)]
pub struct Latency {
    /// Half of the attempts took at most this long.
    pub p50: u64,
    /// 95% of the attempts took at most this long.
    pub p95: u64,
    /// 99% of the attempts took at most this long.
    pub p99: u64,
}

/// The time and HTTP status of an attempt.
#[derive(Object)]
#[oai(example)]
pub struct LastAttempt {
    /// When (RFC 3339).
    pub at: String,
    /// The HTTP status; absent when there was no answer.
    #[oai(skip_serializing_if_is_none)]
    pub status_code: Option<u16>,
}

/// An endpoint's statistics over a window (test sends excluded).
#[derive(Object)]
#[oai(example)]
pub struct WebhookStats {
    /// `1h`, `24h` or `7d`.
    #[oai(validator(pattern = "^(1h|24h|7d)$"))]
    pub window: String,
    /// Attempts made in the window.
    pub attempts: u64,
    /// Attempts answered 2xx.
    pub attempts_succeeded: u64,
    /// Attempts that failed (non-2xx or no answer).
    pub attempts_failed: u64,
    /// `attempts_succeeded / attempts`; absent without attempts.
    #[oai(skip_serializing_if_is_none)]
    pub success_rate: Option<f64>,
    /// Attempt latency; absent without attempts.
    #[oai(skip_serializing_if_is_none)]
    pub latency_ms: Option<Latency>,
    /// Deliveries that ended `delivered` in the window.
    pub delivered: u64,
    /// Deliveries that ended `failed` in the window.
    pub failed: u64,
    /// Deliveries not ended now (pending, in flight, scheduled, held).
    pub backlog: u64,
    /// Of the backlog, those held because the webhook is paused (they go
    /// out on resume) or disabled (they go out when it is enabled); 0
    /// while it is enabled. The webhook's `status` says which.
    pub held: u64,
    /// The last successful attempt ever.
    #[oai(skip_serializing_if_is_none)]
    pub last_success: Option<LastAttempt>,
    /// The last failed attempt ever.
    #[oai(skip_serializing_if_is_none)]
    pub last_failure: Option<LastAttempt>,
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

/// A replay to start.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct StartReplay {
    /// Replay deliveries created at or after this time (RFC 3339).
    pub since: String,
    /// … and at or before this time (RFC 3339); default now. The window is
    /// at most 7 days.
    #[oai(nullable)]
    #[serde(default)]
    pub until: Option<String>,
    /// Which deliveries of the window: `failed` (default), only failed
    /// ones; `all`, failed and delivered ones. Test sends are never
    /// replayed. The replay reports it back as `filter`.
    #[oai(validator(pattern = "^(failed|all)$"), nullable)]
    #[serde(default)]
    pub filter: Option<String>,
}

/// A replay's progress.
#[derive(Object)]
#[oai(example)]
pub struct Replay {
    /// The replay's id (`rpl_…`).
    pub id: String,
    /// The webhook (endpoint) it replays to (`ep_…`).
    pub webhook_id: String,
    /// `running`, `completed`, or `interrupted` (the API process running it
    /// stopped; start it again: deliveries already queued are not doubled
    /// in a harmful way, they are simply attempted again).
    #[oai(validator(pattern = "^(running|completed|interrupted)$"))]
    pub status: String,
    /// The window's start (RFC 3339).
    pub since: String,
    /// The window's end (RFC 3339).
    pub until: String,
    /// `failed` or `all`.
    #[oai(validator(pattern = "^(failed|all)$"))]
    pub filter: String,
    /// Deliveries of the window looked at so far.
    pub scanned: u64,
    /// Deliveries queued again so far.
    pub queued: u64,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<String>,
}

#[derive(ApiResponse)]
pub enum ReplayStarted {
    /// The replay runs in the background; follow it with
    /// `GET /api/v1/webhooks/{id}/replay/{replay_id}`.
    #[oai(status = 202)]
    Accepted(Json<Replay>),
}

impl Replay {
    fn from_hash(map: &HashMap<String, String>, now: u64) -> Option<Self> {
        let get = |name: &str| map.get(name).cloned().unwrap_or_default();
        let time = |name: &str| get(name).parse::<u64>().ok();
        let mut status = get("status");
        if status == "running"
            && time("heartbeat").is_some_and(|h| now.saturating_sub(h) > REPLAY_STALE_MS)
        {
            status = "interrupted".into();
        }
        Some(Self {
            id: map.get("id")?.clone(),
            webhook_id: get("endpoint"),
            status,
            since: time("since").map(rfc3339_ms).unwrap_or_default(),
            until: time("until").map(rfc3339_ms).unwrap_or_default(),
            filter: get("filter"),
            scanned: time("scanned").unwrap_or(0),
            queued: time("queued").unwrap_or(0),
            started_at: time("started").map(rfc3339_ms).unwrap_or_default(),
            finished_at: time("finished").map(rfc3339_ms),
        })
    }
}

impl WebhookOpsApi {
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
                let attempt =
                    deliveries::load_attempts(&self.state, &delivery, loaded.stored.as_ref())
                        .await?
                        .pop();
                return Ok(TestResponse::Done(Json(TestResult {
                    event_id: published.event_id,
                    delivery_id,
                    status,
                    attempt,
                })));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(TestResponse::Queued(Json(TestResult {
                    event_id: published.event_id,
                    delivery_id,
                    status: "pending".into(),
                    attempt: None,
                })));
            }
            // Woken (read again) or at the deadline (one last read).
            waiter.woken(deadline).await;
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl WebhookOpsApi {
    /// Send a test event
    ///
    /// Sends one signed event to this endpoint alone, whatever it
    /// subscribes to (default type `webhook.test`, data `{"test": true}`),
    /// waits up to the endpoint's timeout for the attempt and returns it:
    /// status, duration, response excerpt or error. One attempt, no retries;
    /// it shows in the delivery log marked `test` and does not count in the
    /// statistics or the circuit breaker. 409 if the endpoint is disabled.
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
            .unwrap_or(self.state.config.request_timeout);
        // Up to the attempt's timeout, and 2 s for a worker to claim and
        // record it.
        let wait = timeout + Duration::from_secs(2);
        let place = Place::take(&self.state, &tenant.tenant_id, wait).await?;
        let sent = self
            .send_and_wait(&tenant.tenant_id, &record.id, &event_type, &data, wait)
            .await;
        place.release(&self.state).await;
        sent
    }

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

    /// Get a webhook's statistics
    ///
    /// Attempts, success rate, latency percentiles and ended deliveries in
    /// the window (`1h`, `24h` — the default — or `7d`), the backlog now, and
    /// the last success and failure. Kept as counters in 5-minute and hourly
    /// buckets, so reading them never scans the log. Test sends are not
    /// counted.
    #[oai(
        path = "/webhooks/:id/stats",
        method = "get",
        operation_id = "get_webhook_stats"
    )]
    async fn stats(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        /// `1h`, `24h` (default) or `7d`.
        #[oai(validator(pattern = "^(1h|24h|7d)$"))]
        window: Query<Option<String>>,
    ) -> Result<Json<WebhookStats>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let window = window.0.unwrap_or_else(|| "24h".into());
        let (window_ms, bucket_ms) = match window.as_str() {
            "1h" => (stats::COARSE_BUCKET_MS, stats::FINE_BUCKET_MS),
            "24h" => (24 * stats::COARSE_BUCKET_MS, stats::FINE_BUCKET_MS),
            "7d" => (7 * 24 * stats::COARSE_BUCKET_MS, stats::COARSE_BUCKET_MS),
            _ => return Err(ApiError::bad_param("window", "must be 1h, 24h or 7d")),
        };
        let (p, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        let keys = &self.state.keys;
        let mut pipe = redis::pipe();
        for start in stats::buckets(now_ms(), window_ms, bucket_ms) {
            if bucket_ms == stats::FINE_BUCKET_MS {
                pipe.hgetall(keys.stats_fine(p, &record.id, start));
            } else {
                pipe.hgetall(keys.stats_coarse(p, &record.id, start));
            }
        }
        pipe.hgetall(keys.endpoint_stats(p, &record.id));
        reads::add_backlog(&mut pipe, keys, p, &record.id);
        let mut conn = self.state.conn().await?;
        let mut replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let (waiting, in_flight): (u64, u64) = replies
            .pop()
            .and_then(|v| redis::from_redis_value(v).ok())
            .unwrap_or((0, 0));
        let totals: HashMap<String, String> = replies
            .pop()
            .and_then(|v| redis::from_redis_value(v).ok())
            .unwrap_or_default();
        let mut sums: HashMap<String, u64> = HashMap::new();
        for reply in replies {
            let bucket: HashMap<String, u64> = redis::from_redis_value(reply).unwrap_or_default();
            for (field, n) in bucket {
                *sums.entry(field).or_default() += n;
            }
        }
        let n = |name: &str| sums.get(name).copied().unwrap_or(0);
        let mut bins = [0u64; LATENCY_BINS];
        for (bin, slot) in bins.iter_mut().enumerate() {
            *slot = n(&stats::latency_field(bin));
        }
        let attempts = n("attempts");
        let latency_ms = match (
            stats::quantile(&bins, 0.5),
            stats::quantile(&bins, 0.95),
            stats::quantile(&bins, 0.99),
        ) {
            (Some(p50), Some(p95), Some(p99)) => Some(Latency { p50, p95, p99 }),
            _ => None,
        };
        let last = |at: &str, code: &str| {
            totals
                .get(at)
                .and_then(|v| v.parse().ok())
                .map(|ms| LastAttempt {
                    at: rfc3339_ms(ms),
                    status_code: totals.get(code).and_then(|v| v.parse().ok()),
                })
        };
        Ok(Json(WebhookStats {
            window,
            attempts,
            attempts_succeeded: n("ok"),
            attempts_failed: attempts.saturating_sub(n("ok")),
            success_rate: (attempts > 0).then(|| n("ok") as f64 / attempts as f64),
            latency_ms,
            delivered: n("delivered"),
            failed: n("failed"),
            backlog: waiting + in_flight,
            held: if !record.active || record.paused {
                waiting
            } else {
                0
            },
            last_success: last("last_success_at", "last_success_code"),
            last_failure: last("last_failure_at", "last_failure_code"),
        }))
    }

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
            &self.state.keys,
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

    /// Replay a webhook's deliveries
    ///
    /// Queues again, in the background, the endpoint's deliveries created
    /// in a window of at most 7 days: only the failed ones (`status:
    /// "failed"`, the default) or failed and delivered ones (`"all"`). Each
    /// gets one more attempt with its original `webhook-id`. Answers at once
    /// with the replay's id; follow its progress with
    /// `GET /api/v1/webhooks/{id}/replay/{replay_id}`. One replay per
    /// webhook runs at a time: 409 while another is running.
    #[oai(
        path = "/webhooks/:id/replay",
        method = "post",
        operation_id = "replay_webhook"
    )]
    async fn replay(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        body: JsonBody<StartReplay>,
    ) -> Result<ReplayStarted, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let body = body.0;
        let now = now_ms();
        let since = parse_rfc3339_ms(&body.since)
            .ok_or_else(|| ApiError::invalid("since", "must be an RFC 3339 time"))?;
        let until = match &body.until {
            Some(until) => parse_rfc3339_ms(until)
                .ok_or_else(|| ApiError::invalid("until", "must be an RFC 3339 time"))?,
            None => now,
        };
        if since > until {
            return Err(ApiError::invalid("since", "must not be after `until`"));
        }
        if until - since > MAX_REPLAY_WINDOW_MS {
            // Name the field the caller sent: without `until` the window
            // runs to now, and it is `since` that lies too far back.
            return Err(match body.until {
                Some(_) => ApiError::invalid("until", "the window may span at most 7 days"),
                None => ApiError::invalid(
                    "since",
                    "must be within 7 days of `until` (now, when `until` is not sent): the window may span at most 7 days",
                ),
            });
        }
        let filter = body.filter.unwrap_or_else(|| "failed".into());
        let allowed: &'static [Retryable] = match filter.as_str() {
            "failed" => &[Retryable::Failed],
            "all" => &[Retryable::Failed, Retryable::Delivered],
            _ => return Err(ApiError::invalid("filter", "must be `failed` or `all`")),
        };
        let (p, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        if !record.active {
            return Err(ApiError::conflict(
                "the webhook is disabled; enable it to replay",
            ));
        }
        let replay_id = ids::new_id(IdKind::Replay, p, now);
        let key = self.state.keys.replay(p, &replay_id);
        // One replay per endpoint at a time: the running one holds this key,
        // refreshed as it goes (it expires with a replay's heartbeat if the
        // API process running it dies).
        let mut conn = self.state.conn().await?;
        let holder = replay::acquire(
            &mut conn,
            &self.state.keys,
            p,
            &record.id,
            &replay_id,
            REPLAY_STALE_MS,
        )
        .await?;
        if let Some(other) = holder {
            return Err(ApiError::conflict(format!(
                "a replay of this webhook is running ({other}); wait for it to end"
            )));
        }
        let fields = [
            ("id", replay_id.clone()),
            ("endpoint", record.id.clone()),
            ("tenant", tenant.tenant_id.clone()),
            ("status", "running".into()),
            ("since", since.to_string()),
            ("until", until.to_string()),
            ("filter", filter.clone()),
            ("scanned", "0".into()),
            ("queued", "0".into()),
            ("started", now.to_string()),
            ("heartbeat", now.to_string()),
        ];
        let stored: redis::RedisResult<()> = redis::pipe()
            .hset_multiple(&key, &fields)
            .ignore()
            .pexpire(&key, MAX_REPLAY_WINDOW_MS as i64)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(err) = stored {
            // Let the webhook have a replay again at once, not in 30 s.
            let _ = replay::hold(
                &mut conn,
                &self.state.keys,
                p,
                &record.id,
                &replay_id,
                HoldAction::Release,
            )
            .await;
            return Err(err.into());
        }
        drop(conn);
        ReplayJob {
            state: self.state.clone(),
            tenant_id: tenant.tenant_id.clone(),
            p,
            endpoint_id: record.id.clone(),
            replay_id: replay_id.clone(),
            key,
            since,
            until,
            allowed,
        }
        .spawn();
        let map: HashMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let replay = Replay::from_hash(&map, now).ok_or_else(ApiError::unavailable)?;
        Ok(ReplayStarted::Accepted(Json(replay)))
    }

    /// Get a replay
    ///
    /// A replay's progress: how many deliveries it looked at and queued.
    /// Replays are kept 7 days.
    #[oai(
        path = "/webhooks/:id/replay/:replay_id",
        method = "get",
        operation_id = "get_replay"
    )]
    async fn get_replay(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        /// The replay's id (`rpl_…`).
        replay_id: Path<String>,
    ) -> Result<Json<Replay>, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let (p, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        if !ids::is_valid(IdKind::Replay, &replay_id.0) {
            return Err(ApiError::not_found("replay"));
        }
        let mut conn = self.state.conn().await?;
        let map: HashMap<String, String> = conn
            .hgetall(self.state.keys.replay(p, &replay_id.0))
            .await?;
        if map.get("endpoint") != Some(&record.id) {
            return Err(ApiError::not_found("replay"));
        }
        Ok(Json(
            Replay::from_hash(&map, now_ms()).ok_or_else(|| ApiError::not_found("replay"))?,
        ))
    }
}
