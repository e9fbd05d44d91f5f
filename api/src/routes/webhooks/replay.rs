//! `POST /api/v1/webhooks/{id}/replay`,
//! `GET /api/v1/webhooks/{id}/replay/{replay_id}` and `DELETE` of the
//! same: start a replay of a window of an endpoint's deliveries, read its
//! progress, cancel it. Starting one checks the window, takes the
//! endpoint's one-replay hold and writes the replay's record, listed for
//! the workers, which run it (`worker/src/replays.rs`): a replay outlives
//! the API process that accepted it.

use std::collections::HashMap;

use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::store::replay::{self, ReplayStart};
use hookfleet_common::time_util::{now_ms, parse_rfc3339_ms, rfc3339_ms};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::load_endpoint;
use crate::auth::ApiKeyAuth;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::routes::ApiTags;
use crate::state::AppState;

/// The longest window one replay may cover; also how long a replay's
/// record is kept, and the longest its endpoint's hold may last.
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
    /// `running` (waiting for a worker, or being run: a worker that dies
    /// hands it on to another once its lease expires), `completed`, or
    /// `cancelled` (by `DELETE`, or its webhook was deleted).
    /// (`interrupted` is only found on replays of versions that ran them
    /// in the API process.)
    #[oai(validator(pattern = "^(running|completed|cancelled|interrupted)$"))]
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
    /// When it ended or was cancelled (RFC 3339).
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<String>,
}

#[derive(ApiResponse)]
pub enum ReplayCancelled {
    /// Cancelled: it queues nothing more (what it queued stays queued).
    #[oai(status = 200)]
    Cancelled(Json<Replay>),
}

#[derive(ApiResponse)]
pub enum ReplayStarted {
    /// The replay runs in the background; follow it with
    /// `GET /api/v1/webhooks/{id}/replay/{replay_id}`.
    #[oai(status = 202)]
    Accepted(Json<Replay>),
}

impl Replay {
    fn from_hash(map: &HashMap<String, String>) -> Option<Self> {
        let get = |name: &str| map.get(name).cloned().unwrap_or_default();
        let time = |name: &str| get(name).parse::<u64>().ok();
        let status = get("status");
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
    /// `GET /api/v1/webhooks/{id}/replay/{replay_id}`, cancel it with
    /// `DELETE` there. The workers run it, at most `HOOKFLEET_REPLAY_RATE`
    /// deliveries a second, each delivery queued once even if the worker
    /// running it dies (another goes on from where it stopped). One replay
    /// per webhook runs at a time: 409 while another is running.
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
        // (replay_chunk.lua reads it: `failed`, or `all` for failed and
        // delivered ones.)
        if filter != "failed" && filter != "all" {
            return Err(ApiError::invalid("filter", "must be `failed` or `all`"));
        }
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
        // (Held until the replay ends or is cancelled; the expiry only
        // bounds a hold whose replay record is gone.)
        let holder = replay::acquire(
            &mut conn,
            &self.state.store.keys,
            p,
            &record.id,
            &replay_id,
            MAX_REPLAY_WINDOW_MS,
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
            // Let the webhook have a replay again at once.
            let _ =
                replay::release(&mut conn, &self.state.store.keys, p, &record.id, &replay_id).await;
            return Err(err.into());
        }
        drop(conn);
        tracing::info!(%replay_id, endpoint_id = %record.id, "replay queued for the workers");
        let map: HashMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let replay = Replay::from_hash(&map).ok_or_else(ApiError::unavailable)?;
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
            Replay::from_hash(&map).ok_or_else(|| ApiError::not_found("replay"))?,
        ))
    }

    /// Cancel a replay
    ///
    /// Stops a running replay: it queues nothing more; the deliveries it
    /// has queued so far stay queued. The webhook may have another replay
    /// at once. 409 when the replay has already ended.
    #[oai(
        path = "/webhooks/:id/replay/:replay_id",
        method = "delete",
        operation_id = "cancel_replay"
    )]
    async fn cancel_replay(
        &self,
        auth: ApiKeyAuth,
        /// The endpoint's id (`ep_…`).
        id: Path<String>,
        /// The replay's id (`rpl_…`).
        replay_id: Path<String>,
    ) -> Result<ReplayCancelled, ApiError> {
        let tenant = self.state.tenant(&auth).await?;
        let (p, record) = load_endpoint(&self.state, &tenant, &id.0).await?;
        if !ids::is_valid(IdKind::Replay, &replay_id.0) {
            return Err(ApiError::not_found("replay"));
        }
        let keys = &self.state.store.keys;
        let mut conn = self.state.conn().await?;
        let map = replay::load(&mut conn, keys, p, &replay_id.0).await?;
        if map.get("endpoint") != Some(&record.id) {
            return Err(ApiError::not_found("replay"));
        }
        if !replay::cancel(&mut conn, keys, p, &replay_id.0, &record.id).await? {
            let status = map.get("status").cloned().unwrap_or_default();
            return Err(ApiError::conflict(format!(
                "the replay has already ended ({status})"
            )));
        }
        tracing::info!(replay_id = %replay_id.0, endpoint_id = %record.id, "replay cancelled");
        let map = replay::load(&mut conn, keys, p, &replay_id.0).await?;
        Ok(ReplayCancelled::Cancelled(Json(
            Replay::from_hash(&map).ok_or_else(|| ApiError::not_found("replay"))?,
        )))
    }
}
