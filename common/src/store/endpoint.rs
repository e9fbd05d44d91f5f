//! Changes to one endpoint that touch its queue state too, each one step:
//! an update (`update_endpoint.lua`: a lower concurrency cap, a resume or
//! an enable releases what waited), a delete (`delete_endpoint.lua`:
//! cancels what had not ended) and a secret rotation (`rotate_secret.lua`).

use redis::aio::ConnectionLike;

use super::scripts;
use crate::ids::Partition;
use crate::Keys;

/// The endpoint an operation is about: its tenant (checked by the script,
/// so an id of another tenant changes nothing), partition and id.
#[derive(Debug, Clone, Copy)]
pub struct EndpointRef<'a> {
    pub tenant_id: &'a str,
    pub partition: Partition,
    pub endpoint_id: &'a str,
}

/// Writes `fields` (name, value; `""` deletes the field) to the endpoint's
/// hash and releases what they free. `None` when there is no such endpoint
/// of the tenant; otherwise whether it was enabled or resumed with
/// deliveries waiting (they are due again at once).
pub async fn update(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    endpoint: EndpointRef<'_>,
    fields: &[(&str, String)],
) -> redis::RedisResult<Option<bool>> {
    let (p, id) = (endpoint.partition, endpoint.endpoint_id);
    let mut invocation = scripts::UPDATE_ENDPOINT.prepare_invoke();
    invocation
        .key(keys.endpoint(p, id))
        .key(keys.endpoint_stats(p, id))
        .key(keys.ready(p))
        .key(keys.endpoint_due(p, id))
        .key(keys.endpoint_deliveries(p, id))
        .arg(endpoint.tenant_id)
        .arg(keys.wake_channel())
        .arg(p.0)
        .arg(id);
    for (name, value) in fields {
        invocation.arg(*name).arg(value);
    }
    let released: i64 = invocation.invoke_async(conn).await?;
    Ok((released >= 0).then_some(released == 1))
}

/// Deletes the endpoint's hash and queue state and cancels its deliveries
/// that had not ended (their states stay readable until `retention_ms`
/// ends). `None` when there is no such endpoint of the tenant; otherwise
/// how many deliveries were cancelled.
pub async fn delete(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    endpoint: EndpointRef<'_>,
    retention_ms: u64,
) -> redis::RedisResult<Option<u64>> {
    let (p, id) = (endpoint.partition, endpoint.endpoint_id);
    let cancelled: i64 = scripts::DELETE_ENDPOINT
        .key(keys.endpoint(p, id))
        .key(keys.endpoint_due(p, id))
        .key(keys.ready(p))
        .key(keys.rate(p, id))
        .key(keys.endpoint_stats(p, id))
        .key(keys.endpoint_deliveries(p, id))
        .key(keys.attempts(p, id))
        .key(keys.queued(p))
        .arg(endpoint.tenant_id)
        .arg(retention_ms)
        .arg(id)
        .invoke_async(conn)
        .await?;
    Ok(u64::try_from(cancelled).ok())
}

/// Makes `secret` the endpoint's signing secret; the previous one keeps
/// signing too for `grace_ms`. `None` when there is no such endpoint of
/// the tenant; otherwise when the previous secret expires (epoch ms).
pub async fn rotate_secret(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    endpoint: EndpointRef<'_>,
    secret: &str,
    grace_ms: u64,
) -> redis::RedisResult<Option<u64>> {
    let until: i64 = scripts::ROTATE_SECRET
        .key(keys.endpoint(endpoint.partition, endpoint.endpoint_id))
        .arg(endpoint.tenant_id)
        .arg(secret)
        .arg(grace_ms)
        .invoke_async(conn)
        .await?;
    Ok(u64::try_from(until).ok())
}
