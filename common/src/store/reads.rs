//! Read-only scripts, added to a caller's pipeline beside its other reads:
//! the heads of events' records (`event_heads.lua`: tenant, type, test
//! flag, without the bodies) and an endpoint's backlog (`backlog.lua`).
//! Each adds its own `SCRIPT LOAD` right before its calls, since a
//! pipeline cannot retry EVALSHA on NOSCRIPT.

use super::scripts;
use crate::ids::{self, IdKind, Partition};
use crate::Keys;

/// Adds one `event_heads.lua` call per home partition: replies, in order,
/// one `Vec<Option<String>>` per group, each head being
/// `<flag><tenant id>\n<event type>` (`None`: the event is gone).
pub fn add_event_heads(pipe: &mut redis::Pipeline, keys: &Keys, groups: &[(Partition, Vec<&str>)]) {
    if groups.is_empty() {
        return;
    }
    pipe.load_script(&scripts::EVENT_HEADS).ignore();
    for (home, event_ids) in groups {
        let mut invocation = scripts::EVENT_HEADS.prepare_invoke();
        for event_id in event_ids {
            let bucket = ids::time_bucket(IdKind::Event, event_id).map_or("", |(b, _)| b);
            invocation.key(keys.events(*home, bucket)).arg(*event_id);
        }
        pipe.invoke_script(&invocation);
    }
}

/// Adds one `backlog.lua` call: replies `(waiting, in flight)`, the
/// endpoint's deliveries that have not ended.
pub fn add_backlog(pipe: &mut redis::Pipeline, keys: &Keys, p: Partition, endpoint_id: &str) {
    pipe.load_script(&scripts::BACKLOG).ignore();
    pipe.invoke_script(
        scripts::BACKLOG
            .key(keys.endpoint(p, endpoint_id))
            .key(keys.endpoint_deliveries(p, endpoint_id))
            .key(keys.endpoint_due(p, endpoint_id))
            .key(keys.inflight(p))
            .arg(ids::body_of(IdKind::Endpoint, endpoint_id).unwrap_or_default()),
    );
}

/// Up to `count` entries of an endpoint's log (event id, creation time in
/// µs) created within `(since_ms, until_ms)` (both ends included), oldest
/// first, skipping the first `offset`.
pub async fn log_window(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    p: Partition,
    endpoint_id: &str,
    (since_ms, until_ms): (u64, u64),
    offset: usize,
    count: usize,
) -> redis::RedisResult<Vec<(String, u64)>> {
    redis::cmd("ZRANGEBYSCORE")
        .arg(keys.endpoint_deliveries(p, endpoint_id))
        .arg(since_ms.saturating_mul(1000))
        .arg(until_ms.saturating_mul(1000).saturating_add(999))
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(offset)
        .arg(count)
        .query_async(conn)
        .await
}
