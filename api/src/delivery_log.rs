//! Reading the delivery log: filtered, newest-first pages with an opaque
//! cursor, over one endpoint or all of a tenant's endpoints, and the
//! attempts of one delivery.
//!
//! Each endpoint keeps its deliveries in a sorted set scored by creation
//! time (`ep_dlv`). A page walks those sets from the cursor down, merging
//! several endpoints by (time, id), and reads the candidates' hashes to
//! apply the status and type filters. The cursor is the last delivery
//! examined, so new deliveries (always newer) never shift a page: nothing
//! is lost or repeated while they arrive. A request's cost is bounded: at
//! most [`FETCH_BUDGET`] index entries over all endpoints and
//! [`SCAN_LIMIT`] candidates examined, so a selective filter, or a tenant
//! with many endpoints, may get a short page; `next` is present while more
//! may exist.

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

/// Index entries fetched at most per request over all endpoints: a
/// tenant-wide page over many endpoints asks each for fewer.
pub const FETCH_BUDGET: usize = 10_000;

/// Entries sharing the cursor's millisecond fetched per endpoint (one
/// `publish.lua` call gives up to 40 events the same creation time).
const TIES_LIMIT: usize = 1000;

/// A page of deliveries of `endpoints` (partition, endpoint id), newest
/// first.
///
/// Each endpoint's index is read from the cursor down, at most
/// `per_source` entries (fewer when many endpoints share
/// [`FETCH_BUDGET`]); entries created in the cursor's own millisecond are
/// read apart and kept when their id sorts below the cursor's, so a run of
/// deliveries sharing a millisecond is paged through, not skipped. The
/// merged candidates are exact only down to the oldest entry of an
/// endpoint that may have more: they are cut there, and `next` goes on.
pub async fn page(
    state: &AppState,
    endpoints: &[(Partition, String)],
    filter: &Filter,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Result<Page, ApiError> {
    let examinable_max = if filter.is_selective() {
        SCAN_LIMIT
    } else {
        limit + 1
    };
    let per_source = (FETCH_BUDGET / endpoints.len().max(1)).clamp(1, examinable_max);
    // Entries at the cursor's millisecond need their own read when it is
    // inside the window; everything else is strictly older than it.
    let ties_ms = cursor
        .map(|c| c.created_ms)
        .filter(|ms| filter.until_ms.is_none_or(|until| *ms <= until))
        .filter(|ms| filter.since_ms.is_none_or(|since| *ms >= since));
    let max = match (cursor, filter.until_ms) {
        (Some(c), Some(until)) if until < c.created_ms => until.to_string(),
        (Some(c), _) => format!("({}", c.created_ms),
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
        let key = state.keys.endpoint_deliveries(*p, endpoint_id);
        if let Some(ms) = ties_ms {
            pipe.cmd("ZREVRANGEBYSCORE")
                .arg(&key)
                .arg(ms)
                .arg(ms)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(TIES_LIMIT);
        }
        pipe.cmd("ZREVRANGEBYSCORE")
            .arg(&key)
            .arg(&max)
            .arg(&min)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(per_source);
    }
    let mut replies: std::vec::IntoIter<Vec<(String, u64)>> = if endpoints.is_empty() {
        Vec::new().into_iter()
    } else {
        let mut conn = state.conn().await?;
        let replies: Vec<Vec<(String, u64)>> = pipe.query_async(&mut conn).await?;
        replies.into_iter()
    };
    let mut maybe_more = false;
    let mut candidates: Vec<(u64, String, Partition)> = Vec::new();
    // The newest of the oldest entries of the endpoints that may have more:
    // candidates older than it might be preceded by entries not fetched.
    let mut exact_down_to: Option<(u64, String)> = None;
    for (p, _) in endpoints {
        if ties_ms.is_some() {
            let ties = replies.next().unwrap_or_default();
            let below = |id: &String| cursor.is_some_and(|c| *id < c.delivery_id);
            candidates.extend(
                ties.into_iter()
                    .filter(|(id, _)| below(id))
                    .map(|(id, score)| (score, id, *p)),
            );
        }
        let older = replies.next().unwrap_or_default();
        if older.len() >= per_source {
            maybe_more = true;
            if let Some((id, score)) = older.last() {
                let last = (*score, id.clone());
                if exact_down_to.as_ref().is_none_or(|bound| last > *bound) {
                    exact_down_to = Some(last);
                }
            }
        }
        candidates.extend(older.into_iter().map(|(id, score)| (score, id, *p)));
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    if let Some((score, id)) = &exact_down_to {
        candidates.retain(|(s, i, _)| (*s, i) >= (*score, id));
    }
    if candidates.len() > examinable_max {
        maybe_more = true;
        candidates.truncate(examinable_max);
    }

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
