//! `POST /api/v1/webhooks/{id}/replay` and
//! `GET /api/v1/webhooks/{id}/replay/{replay_id}`: start a replay of a
//! window of an endpoint's deliveries, and read its progress. Starting one
//! checks the window, takes the endpoint's one-replay hold, writes the
//! replay's record and hands the work to a [`ReplayJob`] in the
//! background.

use std::collections::HashMap;

use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::store::replay::{self, HoldAction, ReplayStart};
use hookfleet_common::store::retry::Retryable;
use hookfleet_common::time_util::{now_ms, parse_rfc3339_ms, rfc3339_ms};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::load_endpoint;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::replay::{ReplayJob, REPLAY_STALE_MS};
use crate::routes::ApiTags;
use crate::state::AppState;

/// The longest window one replay may cover.
pub const MAX_REPLAY_WINDOW_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The replay routes.
pub struct ReplayApi {
    pub state: AppState,
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

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl ReplayApi {
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
        // One replay per endpoint at a time: the running one holds this key,
        // refreshed as it goes (it expires with a replay's heartbeat if the
        // API process running it dies).
        let mut conn = self.state.conn().await?;
        let holder = replay::acquire(
            &mut conn,
            &self.state.store.keys,
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
        let start = ReplayStart {
            replay_id: &replay_id,
            endpoint_id: &record.id,
            tenant_id: &tenant.tenant_id,
            since_ms: since,
            until_ms: until,
            filter: &filter,
            now_ms: now,
        };
        let fields = start.fields();
        let keys = &self.state.store.keys;
        let stored = replay::start(&mut conn, keys, p, &start, MAX_REPLAY_WINDOW_MS).await;
        if let Err(err) = stored {
            // Let the webhook have a replay again at once, not in 30 s.
            let _ = replay::hold(
                &mut conn,
                &self.state.store.keys,
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
        let map = replay::load(&mut conn, &self.state.store.keys, p, &replay_id.0).await?;
        if map.get("endpoint") != Some(&record.id) {
            return Err(ApiError::not_found("replay"));
        }
        Ok(Json(
            Replay::from_hash(&map, now_ms()).ok_or_else(|| ApiError::not_found("replay"))?,
        ))
    }
}
