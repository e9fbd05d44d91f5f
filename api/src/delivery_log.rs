//! Reading the delivery log: filtered, newest-first pages with an opaque
//! cursor, over one endpoint or all of a tenant's endpoints, and the
//! attempts of one delivery.
//!
//! Each endpoint keeps its deliveries in a sorted set scored by creation
//! time (`ep_dlv`). A page walks those sets from the cursor down, merging
//! several endpoints by (time, id), and reads the candidates' hashes to
//! apply the status and type filters. The cursor is the last delivery
//! examined, so new deliveries (always newer) never shift a page: nothing
//! is lost or repeated while they arrive. A selective filter may leave a
//! page short (at most [`SCAN_LIMIT`] candidates are examined per request,
//! so a request's cost is bounded); `next` is present while more may exist.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::model::DeliveryStatus;
use hookfleet_common::time_util::parse_rfc3339_ms;

use crate::error::ApiError;
use crate::routes::deliveries::DeliverySummary;
use crate::state::AppState;

/// Candidates examined at most per page when filters are given.
pub const SCAN_LIMIT: usize = 1000;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl Filter {
    /// Builds a filter from query parameters, naming the bad one.
    pub fn parse(
        status: Option<&str>,
        event_type: Option<&str>,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<Self, ApiError> {
        let status = status
            .map(|s| {
                DeliveryStatus::parse(s).ok_or_else(|| {
                    ApiError::bad_param(
                        "status",
                        "must be pending, in_flight, scheduled, delivered, failed or cancelled",
                    )
                })
            })
            .transpose()?;
        let time = |name: &str, value: Option<&str>| {
            value
                .map(|v| {
                    parse_rfc3339_ms(v).ok_or_else(|| {
                        ApiError::bad_param(
                            name,
                            "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z",
                        )
                    })
                })
                .transpose()
        };
        let since_ms = time("since", since)?;
        let until_ms = time("until", until)?;
        if let (Some(since), Some(until)) = (since_ms, until_ms) {
            if since > until {
                return Err(ApiError::bad_param("since", "must not be after `until`"));
            }
        }
        if let Some(event_type) = event_type {
            hookfleet_common::catalog::validate_name(event_type)
                .map_err(|reason| ApiError::bad_param("event_type", reason))?;
        }
        Ok(Self {
            status,
            event_type: event_type.map(str::to_string),
            since_ms,
            until_ms,
        })
    }

    fn is_selective(&self) -> bool {
        self.status.is_some() || self.event_type.is_some()
    }

    fn accepts(&self, delivery: &DeliverySummary) -> bool {
        self.status.is_none_or(|s| delivery.status == s.as_str())
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| &delivery.event_type == t)
    }
}

/// A position in the log: the last delivery examined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: u64,
    pub delivery_id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_ms, self.delivery_id))
    }

    pub fn decode(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_param("cursor", "not a cursor returned by this API");
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (ms, id) = raw.split_once(':').ok_or_else(bad)?;
        if !ids::is_valid(IdKind::Delivery, id) {
            return Err(bad());
        }
        Ok(Self {
            created_ms: ms.parse().map_err(|_| bad())?,
            delivery_id: id.to_string(),
        })
    }
}

/// One page.
pub struct Page {
    pub data: Vec<DeliverySummary>,
    pub next: Option<Cursor>,
}

/// A page of deliveries of `endpoints` (partition, endpoint id), newest
/// first.
pub async fn page(
    state: &AppState,
    endpoints: &[(Partition, String)],
    filter: &Filter,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Result<Page, ApiError> {
    let per_source = if filter.is_selective() {
        SCAN_LIMIT
    } else {
        limit + 1
    };
    let max = match (cursor, filter.until_ms) {
        (Some(c), Some(until)) => c.created_ms.min(until).to_string(),
        (Some(c), None) => c.created_ms.to_string(),
        (None, Some(until)) => until.to_string(),
        (None, None) => "+inf".to_string(),
    };
    let min = filter
        .since_ms
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-inf".into());

    // Candidates from every source, fetched in one round trip.
    let mut pipe = redis::pipe();
    for (p, endpoint_id) in endpoints {
        pipe.cmd("ZREVRANGEBYSCORE")
            .arg(state.keys.endpoint_deliveries(*p, endpoint_id))
            .arg(&max)
            .arg(&min)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(per_source);
    }
    let replies: Vec<Vec<(String, u64)>> = if endpoints.is_empty() {
        Vec::new()
    } else {
        let mut conn = state.conn().await?;
        pipe.query_async(&mut conn).await?
    };
    let mut maybe_more = false;
    let mut candidates: Vec<(u64, String, Partition)> = Vec::new();
    for ((p, _), reply) in endpoints.iter().zip(replies) {
        if reply.len() >= per_source {
            maybe_more = true;
        }
        for (id, score) in reply {
            let after_cursor = cursor.is_none_or(|c| {
                score < c.created_ms || (score == c.created_ms && id < c.delivery_id)
            });
            if after_cursor {
                candidates.push((score, id, *p));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let examinable = candidates.len().min(per_source);
    if candidates.len() > examinable {
        maybe_more = true;
    }
    candidates.truncate(examinable);

    // Read them in order, in chunks, until the page is full.
    let mut data = Vec::with_capacity(limit);
    let mut last_examined: Option<Cursor> = None;
    let mut full = false;
    for chunk in candidates.chunks(limit.max(50)) {
        let loaded = load_by_partition(state, chunk).await?;
        for ((score, id, _), summary) in chunk.iter().zip(loaded) {
            if data.len() == limit {
                full = true;
                break;
            }
            last_examined = Some(Cursor {
                created_ms: *score,
                delivery_id: id.clone(),
            });
            if let Some(summary) = summary {
                if filter.accepts(&summary) {
                    data.push(summary);
                }
            }
        }
        if full {
            break;
        }
    }
    let exhausted = !full && !maybe_more;
    Ok(Page {
        data,
        next: if exhausted { None } else { last_examined },
    })
}

/// Loads summaries for candidates, keeping their order (`None`: expired).
async fn load_by_partition(
    state: &AppState,
    candidates: &[(u64, String, Partition)],
) -> Result<Vec<Option<DeliverySummary>>, ApiError> {
    let mut pipe = redis::pipe();
    for (_, id, p) in candidates {
        pipe.hgetall(state.keys.delivery(*p, id));
    }
    let mut conn = state.conn().await?;
    let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
    Ok(maps.iter().map(DeliverySummary::from_hash).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            created_ms: 1_700_000_000_123,
            delivery_id: ids::delivery_id("evt_x", "ep_y", Partition(3)),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!!", "MTIz", &URL_SAFE_NO_PAD.encode("12:nope")] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_name_the_bad_parameter() {
        assert!(Filter::parse(Some("failed"), Some("user.created"), None, None).is_ok());
        for (status, since, until) in [
            (Some("lost"), None, None),
            (None, Some("yesterday"), None),
            (
                None,
                Some("2026-01-02T00:00:00Z"),
                Some("2026-01-01T00:00:00Z"),
            ),
        ] {
            assert!(Filter::parse(status, None, since, until).is_err());
        }
    }
}
