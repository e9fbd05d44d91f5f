//! How a delivery is shown: the summary used by the event view and the
//! endpoint's delivery log, read from the delivery's hash.

use std::collections::HashMap;

use hookfleet_common::ids::Partition;
use hookfleet_common::time_util::rfc3339_ms;
use poem_openapi::Object;

use crate::error::ApiError;
use crate::state::AppState;

/// One event's delivery to one endpoint.
#[derive(Object, Debug, Clone)]
pub struct DeliverySummary {
    /// The delivery's id (`dlv_…`).
    pub id: String,
    /// The event delivered; also the `webhook-id` header of every attempt.
    pub event_id: String,
    /// The endpoint it goes to.
    pub endpoint_id: String,
    /// The event's type.
    pub event_type: String,
    /// `pending` (waiting for its first attempt), `in_flight` (a worker is
    /// attempting it), `scheduled` (waiting for a retry), `delivered`,
    /// `failed` (answered with a non-retryable 4xx, or out of retries) or
    /// `cancelled` (its endpoint was deleted).
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
    /// When the next attempt is due (RFC 3339), while pending or scheduled.
    #[oai(skip_serializing_if_is_none)]
    pub next_attempt_at: Option<String>,
}

impl DeliverySummary {
    /// Builds a summary from a delivery hash; `None` when it is empty.
    pub fn from_hash(map: &HashMap<String, String>) -> Option<Self> {
        let get = |name: &str| map.get(name).map(String::as_str).unwrap_or("");
        let id = map.get("id")?.clone();
        let status = get("status").to_string();
        let time = |name: &str| get(name).parse::<u64>().ok().map(rfc3339_ms);
        let waiting = matches!(status.as_str(), "pending" | "scheduled");
        Some(Self {
            id,
            event_id: get("event").to_string(),
            endpoint_id: get("endpoint").to_string(),
            event_type: get("type").to_string(),
            attempts: get("attempts").parse().unwrap_or(0),
            created_at: time("created").unwrap_or_default(),
            last_attempt_at: time("last_at"),
            last_status_code: get("last_code").parse().ok(),
            next_attempt_at: if waiting { time("next") } else { None },
            status,
        })
    }
}

/// Loads deliveries of one partition by id, in the given order, skipping
/// those that have expired.
pub async fn load_many(
    state: &AppState,
    p: Partition,
    ids: &[String],
) -> Result<Vec<DeliverySummary>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.hgetall(state.keys.delivery(p, id));
    }
    let mut conn = state.conn().await?;
    let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut *conn).await?;
    Ok(maps.iter().filter_map(DeliverySummary::from_hash).collect())
}
