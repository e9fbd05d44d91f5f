//! Who gets an event: the tenant's endpoint index (one hash, read with
//! the event type's definition in one round trip) and the endpoints whose
//! subscriptions match the type, grouped by partition.

use std::collections::{BTreeMap, HashMap};

use crate::store::endpoint as store_endpoint;

use super::{PublishError, Store};
use crate::ids::{self, IdKind, Partition};
use crate::model::summary_wants;

/// The tenant's active endpoints that want `event_type`, by partition.
pub(super) async fn matching_endpoints(
    state: &Store,
    tenant_id: &str,
    event_type: &str,
) -> Result<BTreeMap<Partition, Vec<String>>, PublishError> {
    let index = endpoint_index(state, tenant_id).await?;
    Ok(wanted_by(&index, event_type))
}

/// The endpoints of a tenant that want an event type, by partition.
pub struct Subscribers(pub(super) BTreeMap<Partition, Vec<String>>);

/// The tenant's active endpoints that want `event_type`, or `None` when
/// the type is neither built in nor defined by the tenant. A tenant type's
/// definition and the endpoint index share the tenant's hash slot, so both
/// are read in one pipelined round trip (a single publish then makes three:
/// the API key, this, and `publish.lua`).
pub async fn subscribers(
    state: &Store,
    tenant_id: &str,
    event_type: &str,
) -> Result<Option<Subscribers>, PublishError> {
    let index: HashMap<String, String> = if crate::catalog::is_built_in(event_type) {
        endpoint_index(state, tenant_id).await?
    } else {
        let mut conn = state.conn().await?;
        let keys = &state.keys;
        let (defined, index) =
            store_endpoint::index_with_type(&mut conn, keys, tenant_id, event_type).await?;
        if !defined {
            return Ok(None);
        }
        index
    };
    Ok(Some(Subscribers(wanted_by(&index, event_type))))
}

/// The tenant's endpoint index: endpoint id → subscription summary.
pub(super) async fn endpoint_index(
    state: &Store,
    tenant_id: &str,
) -> Result<HashMap<String, String>, PublishError> {
    let mut conn = state.conn().await?;
    Ok(store_endpoint::index_of(&mut conn, &state.keys, tenant_id).await?)
}

/// The endpoints of `index` that want `event_type`, by partition.
pub(super) fn wanted_by(
    index: &HashMap<String, String>,
    event_type: &str,
) -> BTreeMap<Partition, Vec<String>> {
    let mut wanted: Vec<String> = index
        .iter()
        .filter(|(_, summary)| summary_wants(summary, event_type))
        .map(|(id, _)| id.clone())
        .collect();
    wanted.sort();
    group_by_partition(wanted)
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
