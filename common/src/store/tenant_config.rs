//! The version of a tenant's publish configuration: what a publish matches
//! an event against (the endpoint index, the tenant's event types, its cap
//! on retained events). An API process may match against a copy it cached
//! (`api/src/index_cache.rs`); this is how a change reaches every such copy
//! before the change is answered.
//!
//! A change is written first, then [`announce`]d: `config_bump.lua` counts
//! the tenant's `config_version` up, and `config_mark.lua` raises that
//! version in every partition's `tconfig` hash. A cached copy carries the
//! version read *before* it (so a copy is never older than its version),
//! and `publish.lua` refuses a call whose version is below its partition's:
//! once a change is answered, no publish made after it can be matched
//! against a copy from before it.

use redis::aio::ConnectionLike;

use super::scripts;
use crate::ids::Partition;
use crate::Keys;

/// Announces a change of the tenant's publish configuration, already
/// written, to `partitions` (every partition of the dataset): one round
/// trip for the new version, one pipelined round trip for the partitions.
/// Returns the new version, or `None` when the tenant is gone. Call it
/// before answering the change; if it fails, copies cached before the
/// change may be used until they expire (`HOOKFLEET_API_INDEX_CACHE`).
pub async fn announce(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    tenant_id: &str,
    partitions: impl Iterator<Item = Partition>,
) -> redis::RedisResult<Option<u64>> {
    let version: u64 = scripts::CONFIG_BUMP
        .key(keys.tenant(tenant_id))
        .invoke_async(conn)
        .await?;
    if version == 0 {
        return Ok(None);
    }
    // (Sent again whole if Redis had lost the script: a version marked
    // twice stays as it is.)
    let mut pipe = redis::pipe();
    for p in partitions {
        let mut invocation = scripts::CONFIG_MARK.prepare_invoke();
        invocation
            .key(keys.tenant_config_versions(p))
            .arg(tenant_id)
            .arg(version);
        pipe.invoke_script(&invocation).ignore();
    }
    scripts::query_pipeline::<()>(&pipe, &scripts::CONFIG_MARK, conn).await?;
    Ok(Some(version))
}
