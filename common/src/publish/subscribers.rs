//! Who gets an event: the tenant's endpoint index (one hash, read with
//! the event type's definition in one round trip) and the endpoints whose
//! subscriptions match the type and whose filters (if any) pass the event,
//! grouped by partition.

use std::collections::{BTreeMap, HashMap};

use crate::store::endpoint as store_endpoint;

use super::{PublishError, Store};
use crate::filter::Matcher;
use crate::ids::{self, IdKind, Partition};
use crate::model::{summary_filter, summary_wants};

/// The tenant's active endpoints that want the event, by partition.
pub(super) async fn matching_endpoints(
    state: &Store,
    tenant_id: &str,
    event_type: &str,
    data: &str,
) -> Result<BTreeMap<Partition, Vec<String>>, PublishError> {
    let index = endpoint_index(state, tenant_id).await?;
    Ok(wanted_by(&index, event_type, data))
}

/// The endpoints of a tenant that want an event type, by partition, and
/// the tenant's cap on retained events (read in the same round trip).
pub struct Subscribers {
    pub(super) groups: BTreeMap<Partition, Vec<String>>,
    pub max_events: Option<u64>,
}

impl Subscribers {
    /// No endpoint wants the event.
    pub fn is_empty(&self) -> bool {
        self.groups.values().all(Vec::is_empty)
    }
}

/// The tenant's active endpoints that want the event (`data` is its JSON
/// payload, for their filters), or `None` when the type is neither built
/// in nor defined by the tenant. A tenant type's
/// definition, the endpoint index and the tenant's cap share the tenant's
/// hash slot, so all are read in one pipelined round trip (a single
/// publish then makes three: the API key, this, and `publish.lua`; four
/// for a tenant with a cap, whose events are counted before they are
/// stored).
pub async fn subscribers(
    state: &Store,
    tenant_id: &str,
    event_type: &str,
    data: &str,
) -> Result<Option<Subscribers>, PublishError> {
    let tenant_type = (!crate::catalog::is_built_in(event_type)).then_some(event_type);
    let mut conn = state.conn().await?;
    let (defined, index, max_events) =
        store_endpoint::index_with_type(&mut conn, &state.keys, tenant_id, tenant_type).await?;
    drop(conn);
    if !defined {
        return Ok(None);
    }
    Ok(Some(Subscribers {
        groups: wanted_by(&index, event_type, data),
        max_events,
    }))
}

/// The tenant's endpoint index: endpoint id → subscription summary.
pub(super) async fn endpoint_index(
    state: &Store,
    tenant_id: &str,
) -> Result<HashMap<String, String>, PublishError> {
    let mut conn = state.conn().await?;
    Ok(store_endpoint::index_of(&mut conn, &state.keys, tenant_id).await?)
}

/// The endpoints of `index` that want an event of `event_type` with
/// payload `data` (JSON), by partition: their patterns match the type, and
/// their filters, if any, pass the event (the payload is parsed once, and
/// only when one of them has a filter).
pub(super) fn wanted_by(
    index: &HashMap<String, String>,
    event_type: &str,
    data: &str,
) -> BTreeMap<Partition, Vec<String>> {
    let mut wanted: Vec<String> = Vec::new();
    let mut filtered: Vec<(&String, &str)> = Vec::new();
    for (id, summary) in index {
        if !summary_wants(summary, event_type) {
            continue;
        }
        match summary_filter(summary) {
            None => wanted.push(id.clone()),
            Some(filter) => filtered.push((id, filter)),
        }
    }
    if !filtered.is_empty() {
        match serde_json::from_str::<serde_json::Value>(data) {
            Ok(value) => {
                let matcher = Matcher::new(event_type, &value);
                for (id, filter) in filtered {
                    if matcher.passes(filter) {
                        wanted.push(id.clone());
                    }
                }
            }
            // (Stored payloads are valid JSON: this would be damage.)
            Err(err) => {
                tracing::warn!(error = %err, "an event's data does not parse for its filters");
                crate::filter::ERRORS.inc_by(filtered.len() as u64);
            }
        }
    }
    wanted.sort();
    group_by_partition(wanted)
}

/// Whether any endpoint of `index` has a filter (then who gets an event
/// depends on its data, not only on its type).
pub(super) fn any_filter(index: &HashMap<String, String>) -> bool {
    index
        .values()
        .any(|summary| summary_filter(summary).is_some())
}

pub(super) fn group_by_partition(endpoint_ids: Vec<String>) -> BTreeMap<Partition, Vec<String>> {
    let mut groups: BTreeMap<Partition, Vec<String>> = BTreeMap::new();
    for id in endpoint_ids {
        if let Some(p) = ids::partition_of(IdKind::Endpoint, &id) {
            groups.entry(p).or_default().push(id);
        }
    }
    groups
}
