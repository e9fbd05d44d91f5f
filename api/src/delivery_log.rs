//! Reading the delivery log: filtered, newest-first pages with a cursor,
//! over one endpoint or all of a tenant's endpoints. [`LogQuery`] is the
//! request both log routes make, parsed once from their query parameters.
//!
//! Each endpoint keeps its deliveries in a sorted set of event ids scored
//! by creation time in microseconds, unique per endpoint (`ep_dlv`). A
//! page walks those sets from the cursor down, merging several endpoints
//! by (time, delivery id), and reads the candidates (`delivery_view.rs`)
//! to apply the status and type filters. The cursor is the last delivery
//! examined, so new deliveries (always newer) never shift a page: nothing
//! is lost or repeated while they arrive. A request's cost is bounded: at
//! most [`FETCH_BUDGET`] index entries over all endpoints and
//! [`SCAN_LIMIT`] candidates examined, so a selective filter, or a tenant
//! with many endpoints, may get a short page; `next` is present while more
//! may exist.

use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::model::DeliveryStatus;
use hookfleet_common::store::reads::{self, LogRange};
use hookfleet_common::time_util::parse_rfc3339_ms;

use crate::delivery_view::{self, DeliveryRef};
use crate::error::ApiError;
use crate::routes::deliveries::DeliverySummary;
use crate::state::AppState;

/// Candidates examined at most per page when filters are given.
pub const SCAN_LIMIT: usize = 1000;

/// Which last answers the `response` parameter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFilter {
    /// This status code exactly.
    Code(u16),
    /// Any code of this class: 2 for `2xx`, … 5 for `5xx`.
    Class(u16),
    Timeout,
    ConnectError,
}

impl ResponseFilter {
    /// `404`, `4xx` (1xx to 5xx), `timeout` or `connect_error`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "timeout" => return Some(Self::Timeout),
            "connect_error" => return Some(Self::ConnectError),
            _ => {}
        }
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !(b'1'..=b'5').contains(&bytes[0]) {
            return None;
        }
        if &text[1..] == "xx" {
            return Some(Self::Class(u16::from(bytes[0] - b'0')));
        }
        text.parse().ok().map(Self::Code)
    }

    fn accepts(self, delivery: &DeliverySummary) -> bool {
        match self {
            Self::Code(code) => delivery.last_status_code == Some(code),
            Self::Class(class) => delivery.last_status_code.is_some_and(|c| c / 100 == class),
            Self::Timeout => delivery.last_error.as_deref() == Some("timeout"),
            Self::ConnectError => delivery.last_error.as_deref() == Some("connect_error"),
        }
    }
}

/// The form of the `response` parameter, as the spec states it.
pub const RESPONSE_PATTERN: &str = r"^([1-5][0-9][0-9]|[1-5]xx|timeout|connect_error)$";

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<DeliveryStatus>,
    /// The last attempt's answer: a code, a class, or why there was none.
    pub response: Option<ResponseFilter>,
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
                        "must be pending, in_flight, scheduled, held, delivered, failed or cancelled",
                    )
                })
            })
            .transpose()?;
        let (since_ms, until_ms) = parse_window(since, until)?;
        if let Some(event_type) = event_type {
            hookfleet_common::catalog::validate_name(event_type)
                .map_err(|reason| ApiError::bad_param("event_type", reason))?;
        }
        Ok(Self {
            status,
            response: None,
            event_type: event_type.map(str::to_string),
            since_ms,
            until_ms,
        })
    }

    fn is_selective(&self) -> bool {
        self.status.is_some() || self.event_type.is_some() || self.response.is_some()
    }

    fn accepts(&self, delivery: &DeliverySummary) -> bool {
        self.status.is_none_or(|s| delivery.status == s.as_str())
            && self.response.is_none_or(|r| r.accepts(delivery))
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| &delivery.event_type == t)
    }
}

/// A `since`/`until` window of query parameters (RFC 3339, both ends
/// included) in ms, naming the parameter that is wrong.
pub fn parse_window(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let time = |name: &str, value: Option<&str>| {
        value
            .map(|v| {
                parse_rfc3339_ms(v).ok_or_else(|| {
                    ApiError::bad_param(name, "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z")
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
    Ok((since_ms, until_ms))
}

/// The form of a cursor, as the spec states it for the `cursor` parameter
/// of both delivery-log routes (a test checks that the two agree).
pub const CURSOR_PATTERN: &str = r"^[0-9]{1,19}-dlv_[0-9a-hjkmnp-tv-z]{48}$";

/// A position in the log: the last delivery examined, by its log score.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The delivery's creation time, µs (its score in its endpoint's log).
    pub created_us: u64,
    pub delivery_id: String,
}

impl Cursor {
    /// The cursor as text: `<created µs>-<delivery id>`, e.g.
    /// `1764979200000000-dlv_…`. Plain rather than opaque, so the spec can
    /// state its exact form ([`CURSOR_PATTERN`]).
    pub fn encode(&self) -> String {
        format!("{}-{}", self.created_us, self.delivery_id)
    }

    pub fn decode(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_param("cursor", "not a cursor returned by this API");
        let (us, id) = text.split_once('-').ok_or_else(bad)?;
        if !ids::is_valid(IdKind::Delivery, id) {
            return Err(bad());
        }
        Ok(Self {
            created_us: us.parse().map_err(|_| bad())?,
            delivery_id: id.to_string(),
        })
    }
}

/// One page.
pub struct Page {
    pub data: Vec<DeliverySummary>,
    pub next: Option<Cursor>,
}

/// A delivery-log request's query parameters as sent, for [`LogQuery::parse`].
/// Both log routes (`GET /api/v1/deliveries` and
/// `GET /api/v1/webhooks/{id}/deliveries`) declare these parameters on their
/// handlers, as poem-openapi requires, and hand them over here unparsed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogParams<'a> {
    pub status: Option<&'a str>,
    pub response: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub limit: Option<u32>,
    pub cursor: Option<&'a str>,
}

/// Page size when the request names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a request may ask for.
pub const MAX_LIMIT: u32 = 250;

/// A delivery-log request, parsed: what to list, from where, how many.
/// The one place both log routes turn their parameters into a [`Filter`],
/// a [`Cursor`] and a page size.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub filter: Filter,
    pub cursor: Option<Cursor>,
    pub limit: usize,
}

impl LogQuery {
    /// Parses the parameters, naming the bad one (the filter's first, then
    /// the cursor). The page size is clamped to 1..=[`MAX_LIMIT`].
    pub fn parse(params: LogParams<'_>) -> Result<Self, ApiError> {
        let mut filter =
            Filter::parse(params.status, params.event_type, params.since, params.until)?;
        filter.response = params
            .response
            .map(|text| {
                ResponseFilter::parse(text).ok_or_else(|| {
                    ApiError::bad_param(
                        "response",
                        "must be a status code (404), a class (1xx to 5xx), timeout or connect_error",
                    )
                })
            })
            .transpose()?;
        let cursor = params.cursor.map(Cursor::decode).transpose()?;
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize;
        Ok(Self {
            filter,
            cursor,
            limit,
        })
    }

    /// The page this query asks for, over `endpoints` (see [`page`]).
    pub async fn page(
        &self,
        state: &AppState,
        tenant_id: &str,
        endpoints: &[(Partition, String)],
    ) -> Result<Page, ApiError> {
        page(
            state,
            tenant_id,
            endpoints,
            &self.filter,
            self.cursor.as_ref(),
            self.limit,
        )
        .await
    }
}

/// Index entries fetched at most per request over all endpoints: a
/// tenant-wide page over many endpoints asks each for fewer.
pub const FETCH_BUDGET: usize = 10_000;

/// Entries sharing the cursor's score fetched per endpoint (scores are
/// unique within an endpoint's log, so at most one; across endpoints two
/// deliveries may share a microsecond).
const TIES_LIMIT: usize = 10;

/// A page of the deliveries of `endpoints` (partition, endpoint id) of
/// `tenant_id`, newest first.
///
/// Each endpoint's log is read from the cursor down, at most `per_source`
/// entries (fewer when many endpoints share [`FETCH_BUDGET`]); entries at
/// the cursor's own score are read apart and kept when their delivery id
/// sorts below the cursor's. The merged candidates are exact only down to
/// the oldest entry of an endpoint that may have more: they are cut there,
/// and `next` goes on.
pub async fn page(
    state: &AppState,
    tenant_id: &str,
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
    // The window in log scores (µs).
    let since_us = filter.since_ms.map(|ms| ms.saturating_mul(1000));
    let until_us = filter
        .until_ms
        .map(|ms| ms.saturating_mul(1000).saturating_add(999));
    // Entries at the cursor's score need their own read when it is inside
    // the window; everything else is strictly older than it.
    let ties_us = cursor
        .map(|c| c.created_us)
        .filter(|us| until_us.is_none_or(|until| *us <= until))
        .filter(|us| since_us.is_none_or(|since| *us >= since));
    let max = match (cursor, until_us) {
        (Some(c), Some(until)) if until < c.created_us => until.to_string(),
        (Some(c), _) => format!("({}", c.created_us),
        (None, Some(until)) => until.to_string(),
        (None, None) => "+inf".to_string(),
    };
    let min = since_us
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-inf".into());

    // Candidates from every source, fetched in one round trip.
    let range = LogRange {
        max: &max,
        min: &min,
        per_source,
        ties_at_us: ties_us,
        ties_limit: TIES_LIMIT,
    };
    let read = if endpoints.is_empty() {
        Vec::new()
    } else {
        let mut conn = state.conn().await?;
        reads::log_ranges(&mut conn, &state.store.keys, endpoints, range).await?
    };
    let mut maybe_more = false;
    // (score, delivery) candidates.
    let mut candidates: Vec<(u64, DeliveryRef)> = Vec::new();
    // The newest of the oldest entries of the endpoints that may have more:
    // candidates older than it might be preceded by entries not fetched.
    let mut exact_down_to: Option<(u64, String)> = None;
    let refs_of = |entries: Vec<(String, u64)>, endpoint_id: &str| -> Vec<(u64, DeliveryRef)> {
        entries
            .into_iter()
            .filter_map(|(event_id, score)| {
                DeliveryRef::new(&event_id, endpoint_id, Some(score)).map(|r| (score, r))
            })
            .collect()
    };
    for ((_, endpoint_id), (ties, older)) in endpoints.iter().zip(read) {
        if ties_us.is_some() {
            let ties = refs_of(ties, endpoint_id);
            let below = |id: &str| cursor.is_some_and(|c| id < c.delivery_id.as_str());
            candidates.extend(ties.into_iter().filter(|(_, r)| below(&r.delivery_id)));
        }
        let full = older.len() >= per_source;
        let older = refs_of(older, endpoint_id);
        if full {
            maybe_more = true;
            if let Some((score, r)) = older.last() {
                let last = (*score, r.delivery_id.clone());
                if exact_down_to.as_ref().is_none_or(|bound| last > *bound) {
                    exact_down_to = Some(last);
                }
            }
        }
        candidates.extend(older);
    }
    candidates.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| b.1.delivery_id.cmp(&a.1.delivery_id))
    });
    if let Some((score, id)) = &exact_down_to {
        candidates.retain(|(s, r)| (*s, &r.delivery_id) >= (*score, id));
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
        let refs: Vec<DeliveryRef> = chunk.iter().map(|(_, r)| r.clone()).collect();
        let loaded = delivery_view::load(state, tenant_id, &refs).await?;
        for ((score, r), loaded) in chunk.iter().zip(loaded) {
            if data.len() == limit {
                full = true;
                break;
            }
            last_examined = Some(Cursor {
                created_us: *score,
                delivery_id: r.delivery_id.clone(),
            });
            if let Some(loaded) = loaded {
                if filter.accepts(&loaded.summary) {
                    data.push(loaded.summary);
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            created_us: 1_700_000_000_123_456,
            delivery_id: ids::delivery_id(
                &ids::new_id(IdKind::Event, Partition(1), 5),
                &ids::new_id(IdKind::Endpoint, Partition(3), 6),
            )
            .unwrap(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        let form = regex::Regex::new(CURSOR_PATTERN).unwrap();
        assert!(form.is_match(&cursor.encode()), "{}", cursor.encode());
        for bad in [
            "",
            "!!!",
            "12",
            "12-nope",
            "x-dlv_",
            &URL_SAFE_NO_PAD.encode("12:nope"),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_queries_default_and_clamp_the_page_size_and_check_the_cursor() {
        let query = LogQuery::parse(LogParams::default()).unwrap();
        assert_eq!(query.limit, DEFAULT_LIMIT as usize);
        assert!(query.cursor.is_none());
        for (limit, expected) in [(0, 1), (7, 7), (1000, MAX_LIMIT as usize)] {
            let params = LogParams {
                limit: Some(limit),
                ..LogParams::default()
            };
            assert_eq!(LogQuery::parse(params).unwrap().limit, expected);
        }
        let bad_cursor = LogParams {
            cursor: Some("12-nope"),
            ..LogParams::default()
        };
        assert!(LogQuery::parse(bad_cursor).is_err());
        let bad_status = LogParams {
            status: Some("lost"),
            ..LogParams::default()
        };
        assert!(LogQuery::parse(bad_status).is_err());
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
