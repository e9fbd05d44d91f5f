//! The fan-out to partitions other than the event's home: queuing them
//! (`store::publish::fan_out`), marking the event complete, and finishing
//! fan-outs their API process left incomplete ([`recover_fanouts`]).

use crate::store::publish as store_publish;

use super::subscribers::{endpoint_index, wanted_by};
use super::{PublishError, Store};
use crate::ids::{self, IdKind, Partition};
use crate::store;
use crate::time_util::now_ms;

/// Marks an event's fan-out complete: takes it off its home partition's
/// pending list.
pub(super) async fn mark_complete(
    state: &Store,
    home: Partition,
    event_id: &str,
) -> Result<(), PublishError> {
    let mut conn = state.conn().await?;
    Ok(store_publish::mark_complete(&mut conn, &state.keys, home, event_id).await?)
}

/// Finishes the fan-out of events of home partition `p` still pending
/// `older_than` after publishing (their API process died before queuing
/// every partition's deliveries; see `HOOKFLEET_FANOUT_RECOVERY`). At most
/// `limit` events per call; returns how many it took up (finished, dropped
/// as expired by retention, or left for the next round after an error).
pub async fn recover_fanouts(
    state: &Store,
    p: Partition,
    older_than: std::time::Duration,
    limit: usize,
) -> Result<usize, PublishError> {
    let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
    let pending: Vec<String> = {
        let mut conn = state.conn().await?;
        store_publish::pending_fanouts(&mut conn, &state.keys, p, cutoff, limit).await?
    };
    for event_id in &pending {
        let record = {
            let mut conn = state.conn().await?;
            store::events::load(
                &mut conn,
                &state.keys,
                event_id,
                state.config.storage_retention(),
            )
            .await?
        };
        let finished = match record {
            Some(record) => finish_fanout(state, &record.tenant_id, event_id).await,
            None => Err(PublishError::Expired),
        };
        match finished {
            Ok(total) => {
                tracing::info!(event_id = %event_id, deliveries = total, "finished an interrupted fan-out");
            }
            Err(PublishError::Expired) => {
                let mut conn = state.conn().await?;
                store_publish::mark_complete(&mut conn, &state.keys, p, event_id).await?;
            }
            Err(err) => {
                // Left pending: the next round tries it again; the others
                // of this round go ahead.
                tracing::warn!(event_id = %event_id, error = %err, "finishing an interrupted fan-out failed");
            }
        }
    }
    Ok(pending.len())
}

/// Queues an event's deliveries in the partitions of `groups`
/// ([`crate::store::publish::fan_out`]). Returns how many of those
/// endpoints have a delivery of the event afterwards.
pub(super) async fn fanout<'g>(
    state: &Store,
    tenant_id: &str,
    event_id: &str,
    groups: impl Iterator<Item = (&'g Partition, &'g Vec<String>)>,
) -> Result<u64, PublishError> {
    let mut conn = state.conn().await?;
    Ok(store_publish::fan_out(
        &mut conn,
        &state.keys,
        state.config.initial_delay_ms(),
        tenant_id,
        event_id,
        groups,
    )
    .await?)
}

/// Re-runs the fan-out of an event whose publish was interrupted, in every
/// partition of the endpoints matching it now (an endpoint created
/// meanwhile gets the event; one disabled meanwhile keeps what it got),
/// then marks it complete. Returns its delivery count: the tenant's
/// endpoints whose log lists the event.
pub(super) async fn finish_fanout(
    state: &Store,
    tenant_id: &str,
    event_id: &str,
) -> Result<u64, PublishError> {
    let home = ids::partition_of(IdKind::Event, event_id).ok_or(PublishError::Expired)?;
    let record = {
        let mut conn = state.conn().await?;
        store::events::load(
            &mut conn,
            &state.keys,
            event_id,
            state.config.storage_retention(),
        )
        .await?
    };
    let record = record.ok_or(PublishError::Expired)?;
    let index = endpoint_index(state, tenant_id).await?;
    let data = record.data().map_or("null", |data| data.get());
    let groups = wanted_by(&index, &record.event_type, data);
    fanout(state, tenant_id, event_id, groups.iter()).await?;
    let total = {
        let mut conn = state.conn().await?;
        let endpoints = index.keys().map(String::as_str);
        store_publish::delivery_count(&mut conn, &state.keys, event_id, endpoints).await?
    };
    mark_complete(state, home, event_id).await?;
    Ok(total)
}
