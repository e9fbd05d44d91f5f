//! The storage layout check both binaries run at start. Data written by a
//! version with another layout is not read by this one (see
//! `docs/ARCHITECTURE.md`, "Upgrading"), so starting on it would leave its
//! queued deliveries undelivered without a word: refuse instead, and say
//! why.

use crate::redis_pool::RedisPool;
use crate::{keys, Config, Keys};

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
        Some(other) => Err(format!(
            "Redis holds Hookfleet data of storage layout {other} under the prefix `{}`; this version uses layout {} (see docs/ARCHITECTURE.md, \"Upgrading\")",
            keys.prefix(),
            keys::LAYOUT
        )),
        None => {
            // The first layout kept a `due` set per partition, and no mark.
            let mut pipe = redis::pipe();
            for p in config.all_partitions() {
                pipe.exists(format!("{}due", keys.partition_prefix(p)));
            }
            let earlier: Vec<bool> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|err| format!("checking the storage layout: {err}"))?;
            if earlier.iter().any(|&found| found) {
                return Err(format!(
                    "Redis holds Hookfleet data of the first storage layout under the prefix `{}`; drain it with the earlier version first (see docs/ARCHITECTURE.md, \"Upgrading\")",
                    keys.prefix()
                ));
            }
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
