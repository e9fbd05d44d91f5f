//! The storage layout check both binaries run at start. Data written by a
//! version with another layout is not read by this one (see
//! `docs/ARCHITECTURE.md`, "Upgrading"), so starting on it would leave its
//! queued deliveries undelivered without a word: refuse instead, and say
//! why. Configuration of the first layout (tenants, API keys, endpoints,
//! event types) is taken over once nothing waits in it.

use redis::aio::ConnectionLike;

use crate::ids::{self, IdKind};
use crate::redis_pool::RedisPool;
use crate::{keys, Config, Keys};

/// The layouts before this one, with the same keys, whose forms this
/// version reads: `2` (event records holding the whole body, delivery
/// states with the status as a word, attempt entries as JSON arrays) and
/// `3` (states with absolute times, response dates kept as sent).
const PREVIOUS_LAYOUTS: [&str; 2] = ["2", "3"];

/// Below this an `ep_dlv` score is a first-layout one (epoch ms, ~1.7e12);
/// this layout scores in microseconds (~1.7e15).
const FIRST_LAYOUT_SCORE_LIMIT: &str = "100000000000000";

/// Checks that the data under the configured prefix is in this version's
/// layout, and marks an empty Redis as such. `Err` names the problem; an
/// unreachable Redis is not one (the binaries start and wait for it, as
/// they always do), so the check passes then with a warning.
pub async fn check(pool: &RedisPool, keys: &Keys, config: &Config) -> Result<(), String> {
    let mut conn = match pool.get().await {
        Ok(conn) => conn,
        Err(err) => {
            tracing::warn!(error = %err, "redis unreachable at start; the storage layout is not checked");
            return Ok(());
        }
    };
    let found: Result<Option<String>, _> = redis::cmd("GET")
        .arg(keys.layout())
        .query_async(&mut conn)
        .await;
    let found = match found {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the storage layout; not checked");
            return Ok(());
        }
    };
    match found.as_deref() {
        Some(keys::LAYOUT) => Ok(()),
        Some(previous) if PREVIOUS_LAYOUTS.contains(&previous) => {
            // Read as it is (event records, delivery states and attempt
            // entries of its forms still read); marked, so that a version
            // of that layout, which cannot read the forms this one
            // writes, refuses to start on it from now on.
            let _: () = redis::cmd("SET")
                .arg(keys.layout())
                .arg(keys::LAYOUT)
                .query_async(&mut conn)
                .await
                .map_err(|err| format!("marking the storage layout: {err}"))?;
            tracing::info!(
                from = previous,
                to = keys::LAYOUT,
                "storage layout taken over in place"
            );
            Ok(())
        }
        Some(other) => Err(format!(
            "Redis holds Hookfleet data of storage layout {other} under the prefix `{}`; this version uses layout {} (see docs/ARCHITECTURE.md, \"Upgrading\")",
            keys.prefix(),
            keys::LAYOUT
        )),
        None => {
            take_over_first_layout(&mut conn, keys, config).await?;
            let _: () = redis::cmd("SET")
                .arg(keys.layout())
                .arg(keys::LAYOUT)
                .arg("NX")
                .query_async(&mut conn)
                .await
                .map_err(|err| format!("marking the storage layout: {err}"))?;
            Ok(())
        }
    }
}

/// The first layout kept no mark. Its deliveries waited in a `due` set and
/// were leased in `inflight` per partition, held in `ep_held` per disabled
/// endpoint, and incomplete fan-outs were listed in `fanout_pending`; none
/// of that can be read by this layout, so any of it left refuses the
/// start. Drained, its configuration is kept as it is (the same keys and
/// fields) and the endpoint indexes this layout reads differently are
/// cleared: `ep_dlv` entries scored in milliseconds (removed by score, so
/// entries this layout has written meanwhile, by a process that started
/// first, stay), `ep_open` and `ep_held`. The old events, deliveries and
/// their indexes expire with retention; attempt logs and counters stay.
/// Nothing is changed on an empty Redis, and a start interrupted half way
/// does it again.
async fn take_over_first_layout<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    config: &Config,
) -> Result<(), String> {
    let context = |err: redis::RedisError| format!("checking the storage layout: {err}");
    let mut pipe = redis::pipe();
    for p in config.all_partitions() {
        let prefix = keys.partition_prefix(p);
        pipe.exists(format!("{prefix}due"))
            .zcard(keys.inflight(p))
            .zcard(keys.fanout_pending(p));
    }
    let counts: Vec<u64> = pipe.query_async(conn).await.map_err(context)?;
    if counts.iter().any(|&n| n > 0) {
        return Err(format!(
            "Redis holds Hookfleet data of the first storage layout under the prefix `{}`, with deliveries waiting, being attempted or fanning out; drain it with the earlier version first (see docs/ARCHITECTURE.md, \"Upgrading\")",
            keys.prefix()
        ));
    }
    let tenants: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys.tenants())
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .map_err(context)?;
    let mut endpoints = Vec::new();
    for tenant in &tenants {
        let ids: Vec<String> = redis::cmd("HKEYS")
            .arg(keys.tenant_endpoints(tenant))
            .query_async(conn)
            .await
            .map_err(context)?;
        endpoints.extend(
            ids.into_iter()
                .filter_map(|id| ids::partition_of(IdKind::Endpoint, &id).map(|p| (p, id))),
        );
    }
    if endpoints.is_empty() {
        return Ok(());
    }
    for chunk in endpoints.chunks(500) {
        let mut pipe = redis::pipe();
        for (p, id) in chunk {
            pipe.zcard(format!("{}ep_held:{id}", keys.partition_prefix(*p)));
        }
        let held: Vec<u64> = pipe.query_async(conn).await.map_err(context)?;
        if let Some(((_, id), _)) = chunk.iter().zip(&held).find(|(_, &n)| n > 0) {
            return Err(format!(
                "Redis holds Hookfleet data of the first storage layout under the prefix `{}`, with deliveries held for the disabled endpoint {id}; enable it (or delete it) with the earlier version and let them drain first (see docs/ARCHITECTURE.md, \"Upgrading\")",
                keys.prefix()
            ));
        }
    }
    for chunk in endpoints.chunks(500) {
        let mut pipe = redis::pipe();
        for (p, id) in chunk {
            let prefix = keys.partition_prefix(*p);
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(keys.endpoint_deliveries(*p, id))
                .arg("-inf")
                .arg(format!("({FIRST_LAYOUT_SCORE_LIMIT}"))
                .del(format!("{prefix}ep_open:{id}"))
                .del(format!("{prefix}ep_held:{id}"));
        }
        let _: Vec<redis::Value> = pipe
            .query_async(conn)
            .await
            .map_err(|err| format!("taking over the first storage layout: {err}"))?;
    }
    tracing::info!(
        tenants = tenants.len(),
        endpoints = endpoints.len(),
        "configuration of the first storage layout taken over"
    );
    Ok(())
}
