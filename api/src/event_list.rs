//! `GET /api/v1/events`: a tenant's events, newest first, a page at a
//! time. Each partition keeps the tenant's events homed there in an index
//! ordered by id, which is by time (`tevents:<tid>`, written by
//! `publish.lua`), and the events with a delivery that ended failed in
//! another (`tfailed:<tid>`, written by `record.lua`). A page reads the
//! partitions' indexes from the cursor down (one pipelined round trip),
//! merges them, and reads the candidates' heads (type and tenant; one more)
//! to apply the type filter. Its cost is bounded as the delivery log's is:
//! at most [`FETCH_BUDGET`] index entries and [`SCAN_LIMIT`] candidates
//! examined, so a selective filter may return a short page; `next` is there
//! while more may exist.

use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::store::reads::{self, EventIndex};
use hookfleet_common::time_util::rfc3339_ms;

use crate::delivery_log::{parse_window, FETCH_BUDGET, SCAN_LIMIT};
use crate::error::ApiError;
use crate::state::AppState;

/// The form of a cursor: the last event id examined.
pub const CURSOR_PATTERN: &str = r"^evt_[0-9a-hjkmnp-tv-z]{24}$";

/// One listed event.
pub struct Listed {
    pub id: String,
    pub event_type: String,
    pub created_ms: u64,
}

/// A listing's query parameters as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListParams<'a> {
    pub event_type: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub limit: Option<u32>,
    pub cursor: Option<&'a str>,
}

/// One page and where the next starts.
pub struct EventsPage {
    pub data: Vec<Listed>,
    pub next: Option<String>,
}

/// A listing, parsed.
pub struct EventQuery {
    event_type: Option<String>,
    index: EventIndex,
    upper: String,
    lower: String,
    limit: usize,
}

impl EventQuery {
    pub fn parse(params: ListParams<'_>) -> Result<Self, ApiError> {
        let (since, until) = parse_window(params.since, params.until)?;
        if let Some(name) = params.event_type {
            hookfleet_common::catalog::validate_name(name)
                .map_err(|reason| ApiError::bad_param("event_type", reason))?;
        }
        let index = match params.outcome {
            None => EventIndex::All,
            Some("failed") => EventIndex::Failed,
            Some(_) => {
                return Err(ApiError::bad_param(
                    "outcome",
                    "must be `failed` (events with a delivery that ended failed)",
                ))
            }
        };
        let limit = params.limit.unwrap_or(50);
        if !(1..=250).contains(&limit) {
            return Err(ApiError::bad_param("limit", "must be between 1 and 250"));
        }
        // Ids sort by creation time: the window's bounds are id prefixes.
        let upper = match params.cursor {
            Some(cursor) => {
                if !ids::is_valid(IdKind::Event, cursor) {
                    return Err(ApiError::bad_param(
                        "cursor",
                        "not a cursor returned by this API",
                    ));
                }
                format!("({cursor}")
            }
            None => until.map_or_else(
                || "+".to_string(),
                |ms| format!("({}", ids::time_prefix(IdKind::Event, ms.saturating_add(1))),
            ),
        };
        let lower = since.map_or_else(
            || "-".to_string(),
            |ms| format!("[{}", ids::time_prefix(IdKind::Event, ms)),
        );
        Ok(Self {
            event_type: params.event_type.map(str::to_string),
            index,
            upper,
            lower,
            limit: limit as usize,
        })
    }

    /// Reads one page of `tenant_id`'s events, none older than the
    /// tenant's retention (the index may hold older ones until they are
    /// trimmed or swept).
    pub async fn page(&self, state: &AppState, tenant_id: &str) -> Result<EventsPage, ApiError> {
        let retention = state.retention_of(tenant_id).await?;
        let oldest = format!(
            "[{}",
            ids::time_prefix(
                IdKind::Event,
                hookfleet_common::time_util::now_ms().saturating_sub(retention.as_millis() as u64)
            )
        );
        let lower = if self.lower == "-" || self.lower < oldest {
            &oldest
        } else {
            &self.lower
        };
        let partitions: Vec<_> = state.store.config.all_partitions().collect();
        // Candidates to examine: the page, or more when a type filter may
        // leave most of them out.
        let want = if self.event_type.is_some() {
            SCAN_LIMIT
        } else {
            self.limit
        };
        let per_partition = want.min(FETCH_BUDGET / partitions.len().max(1)).max(1);
        let mut conn = state.conn().await?;
        let keys = &state.store.keys;
        let lists = reads::event_index_pages(
            &mut conn,
            keys,
            &partitions,
            tenant_id,
            self.index,
            (&self.upper, lower),
            per_partition,
        )
        .await?;
        // A partition that filled its share may have more below its last
        // id: nothing below the highest such id is known to be complete.
        let cut: Option<&String> = lists
            .iter()
            .filter(|list| list.len() >= per_partition)
            .filter_map(|list| list.last())
            .max();
        let mut candidates: Vec<&String> = lists
            .iter()
            .flatten()
            .filter(|id| cut.is_none_or(|cut| *id >= cut))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        let more_below = cut.is_some() || candidates.len() > want;
        candidates.truncate(want);
        let heads = {
            let ids: Vec<&str> = candidates.iter().map(|id| id.as_str()).collect();
            reads::event_heads(&mut conn, keys, &ids).await?
        };
        let mut data = Vec::new();
        let mut next = None;
        for (i, (id, head)) in candidates.iter().zip(heads).enumerate() {
            let Some(head) = head else { continue };
            let Some((event_tenant, event_type)) = head.get(1..).and_then(|h| h.split_once('\n'))
            else {
                continue;
            };
            if event_tenant != tenant_id
                || self.event_type.as_deref().is_some_and(|t| t != event_type)
            {
                continue;
            }
            data.push(Listed {
                id: id.to_string(),
                event_type: event_type.to_string(),
                created_ms: ids::created_ms(IdKind::Event, id).unwrap_or(0),
            });
            if data.len() == self.limit {
                if i + 1 < candidates.len() || more_below {
                    next = Some(id.to_string());
                }
                return Ok(EventsPage { data, next });
            }
        }
        if more_below {
            next = candidates.last().map(|id| id.to_string());
        }
        Ok(EventsPage { data, next })
    }
}

/// An event's creation time as the API shows it.
pub fn created_at(listed: &Listed) -> String {
    rfc3339_ms(listed.created_ms)
}
