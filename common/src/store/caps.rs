//! Sets with a cap, kept in the same step as their write, so concurrent
//! requests cannot overshoot it: a tenant's endpoints and event types
//! (`capped_add.lua`) and its test sends waiting for their attempt
//! (`test_send_slot.lua`).

use redis::aio::ConnectionLike;

use super::scripts;
use crate::Keys;

/// A tenant's hash that holds at most a set number of fields.
#[derive(Debug, Clone, Copy)]
pub enum CappedHash<'a> {
    /// The tenant's endpoints (field: endpoint id).
    Endpoints { tenant_id: &'a str },
    /// The tenant's event types (field: name).
    EventTypes { tenant_id: &'a str },
}

/// What [`capped_add`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum CappedAdd {
    Added,
    /// The field was there already; nothing written.
    Exists,
    /// The hash holds the cap; nothing written.
    Full,
}

/// Adds `field` = `value` to `hash` unless it is there or the hash holds
/// `cap` fields already.
pub async fn capped_add(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    hash: CappedHash<'_>,
    cap: u64,
    field: &str,
    value: &str,
) -> redis::RedisResult<CappedAdd> {
    let key = match hash {
        CappedHash::Endpoints { tenant_id } => keys.tenant_endpoints(tenant_id),
        CappedHash::EventTypes { tenant_id } => keys.tenant_event_types(tenant_id),
    };
    let outcome: i64 = scripts::CAPPED_ADD
        .key(key)
        .arg(cap)
        .arg(field)
        .arg(value)
        .invoke_async(conn)
        .await?;
    Ok(match outcome {
        1 => CappedAdd::Added,
        0 => CappedAdd::Exists,
        _ => CappedAdd::Full,
    })
}

/// Takes one of a tenant's `cap` places for a test send waiting up to
/// `wait_ms`, under `token`. Answers 0 when taken, else the ms until the
/// first taken place frees itself at the latest.
pub async fn take_test_send_place(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    tenant_id: &str,
    cap: u32,
    token: &str,
    wait_ms: u64,
) -> redis::RedisResult<u64> {
    scripts::TEST_SEND_SLOT
        .key(keys.tenant_test_sends(tenant_id))
        .arg(cap)
        .arg(token)
        .arg(wait_ms)
        .invoke_async(conn)
        .await
}

/// Gives back a place [`take_test_send_place`] took.
pub async fn release_test_send_place(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    tenant_id: &str,
    token: &str,
) -> redis::RedisResult<()> {
    redis::cmd("ZREM")
        .arg(keys.tenant_test_sends(tenant_id))
        .arg(token)
        .exec_async(conn)
        .await
}
