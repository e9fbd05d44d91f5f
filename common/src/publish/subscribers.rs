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
    /// The configuration version they were matched at, when that came
    /// from a cache: `publish.lua` refuses the call if a later change was
    /// announced (see `store::tenant_config`).
    pub(super) checked: Option<u64>,
}

impl Subscribers {
    /// No endpoint wants the event.
    pub fn is_empty(&self) -> bool {
        self.groups.values().all(Vec::is_empty)
    }
}

/// A tenant's publish configuration as read at one version: its endpoint
/// index, its cap on retained events and the tenant-defined event types
/// found defined (built-in types need no check). Read whole, it may be
/// cached and matched against later ([`TenantConfig::subscribers`]).
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// The tenant's `config_version`, read before the rest.
    pub version: u64,
    pub index: HashMap<String, String>,
    pub max_events: Option<u64>,
    pub types: Vec<String>,
}

impl TenantConfig {
    /// Whether `event_type` is known to exist at this version: built in,
    /// or found defined by the tenant.
    pub fn knows(&self, event_type: &str) -> bool {
        crate::catalog::is_built_in(event_type) || self.types.iter().any(|t| t == event_type)
    }

    /// The tenant's endpoints that want the event (`data`: its JSON
    /// payload). `cached`: this copy comes from a cache, so the publish
    /// call checks its version.
    pub fn subscribers(&self, event_type: &str, data: &str, cached: bool) -> Subscribers {
        Subscribers {
            groups: wanted_by(&self.index, event_type, data),
            max_events: self.max_events,
            checked: cached.then_some(self.version),
        }
    }

    /// Adds what `older` knew of the tenant's types when both were read at
    /// the same version (a type found defined then still is).
    pub fn learn_from(&mut self, older: &TenantConfig) {
        if older.version != self.version {
            return;
        }
        for name in &older.types {
            if !self.types.contains(name) {
                self.types.push(name.clone());
            }
        }
    }
}

/// The tenant's publish configuration, read for an event of `event_type`,
/// or `None` when that type is neither built in nor defined by the
/// tenant. A tenant type's definition, the endpoint index, the cap and the
/// version share the tenant's hash slot, so all are read in one pipelined
/// round trip.
pub async fn read_config(
    state: &Store,
    tenant_id: &str,
    event_type: &str,
) -> Result<Option<TenantConfig>, PublishError> {
    let tenant_type = (!crate::catalog::is_built_in(event_type)).then_some(event_type);
    let mut conn = state.conn().await?;
    let read =
        store_endpoint::index_with_type(&mut conn, &state.keys, tenant_id, tenant_type).await?;
    drop(conn);
    if !read.defined {
        return Ok(None);
    }
    Ok(Some(TenantConfig {
        version: read.version,
        index: read.index,
        max_events: read.max_events,
        types: tenant_type.map(str::to_string).into_iter().collect(),
    }))
}

/// The tenant's active endpoints that want the event (`data` is its JSON
/// payload, for their filters), or `None` when the type is neither built
/// in nor defined by the tenant, read from Redis ([`read_config`]; a
/// single publish then makes three round trips: the API key unless
/// cached, this, and `publish.lua`; four for a tenant with a cap, whose
/// events are counted before they are stored).
pub async fn subscribers(
    state: &Store,
    tenant_id: &str,
    event_type: &str,
    data: &str,
) -> Result<Option<Subscribers>, PublishError> {
    Ok(read_config(state, tenant_id, event_type)
        .await?
        .map(|config| config.subscribers(event_type, data, false)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Endpoint ids of partition 1.
    fn endpoints() -> Vec<String> {
        (0..3)
            .map(|n| ids::new_id(IdKind::Endpoint, Partition(1), 1_700_000_000_000 + n))
            .collect()
    }

    fn config_of(endpoints: &[String]) -> TenantConfig {
        TenantConfig {
            version: 7,
            index: HashMap::from([
                (endpoints[0].clone(), "1 order.*".to_string()),
                (endpoints[1].clone(), "0 order.*".to_string()),
                (endpoints[2].clone(), "1 user.*".to_string()),
            ]),
            max_events: Some(10),
            types: vec!["order.paid".to_string()],
        }
    }

    #[test]
    fn a_config_knows_built_in_types_and_those_found_defined() {
        let config = config_of(&endpoints());
        assert!(config.knows("order.paid"));
        assert!(config.knows("message.attempt.exhausted"));
        assert!(!config.knows("order.sent"));
        let mut newer = TenantConfig {
            types: vec!["order.sent".to_string()],
            ..config.clone()
        };
        newer.learn_from(&config);
        assert!(newer.knows("order.paid") && newer.knows("order.sent"));
        let mut other_version = TenantConfig {
            version: 8,
            types: Vec::new(),
            ..config.clone()
        };
        other_version.learn_from(&config);
        assert!(!other_version.knows("order.paid"));
    }

    #[test]
    fn only_a_cached_config_has_its_version_checked() {
        let endpoints = endpoints();
        let config = config_of(&endpoints);
        let cached = config.subscribers("order.paid", "{}", true);
        assert_eq!(cached.checked, Some(7));
        assert_eq!(cached.max_events, Some(10));
        let wanted: Vec<&String> = cached.groups.values().flatten().collect();
        assert_eq!(wanted, [&endpoints[0]], "active and subscribed only");
        assert_eq!(config.subscribers("order.paid", "{}", false).checked, None);
    }
}
