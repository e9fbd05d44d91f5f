//! The Lua scripts that change queue state, one file per transition of a
//! delivery's life (see each file's header for its KEYS, ARGV and
//! guarantee), each preceded by `prelude.lua`'s shared helpers. They are
//! loaded once per process; `redis::Script` sends EVALSHA and reloads the
//! script when Redis answers NOSCRIPT (after a restart or `SCRIPT FLUSH`),
//! and [`query_pipeline`] does the same for a pipeline of calls.
//!
//! Private to [`crate::store`]: each script has one module there that
//! builds its KEYS and ARGV and reads its reply, and nothing else calls it.

use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{ErrorKind, FromRedisValue, Pipeline, RedisResult, Script, ServerErrorKind};

/// Runs `pipe`, a pipeline of calls to `script` (nothing else), and gives
/// its replies. It goes without a `SCRIPT LOAD` in front: Redis hashes the
/// whole text of a script it is asked to load (publish.lua and its prelude
/// are about 15 KB: some 18 µs, more than a call's own work), and on a
/// Redis Cluster a load is a round trip to every master before the calls
/// may go. So the script is loaded only when Redis answers NOSCRIPT (after
/// a restart, a failover or `SCRIPT FLUSH`), and then the whole pipeline is
/// sent again: every call in it must be safe to send twice (the scripts
/// sent this way answer a repeat as they did, writing nothing again; some
/// calls may have run before one met NOSCRIPT).
pub async fn query_pipeline<T: FromRedisValue>(
    pipe: &Pipeline,
    script: &Script,
    conn: &mut impl ConnectionLike,
) -> RedisResult<T> {
    match pipe.query_async(conn).await {
        Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            script.load_async(conn).await?;
            pipe.query_async(conn).await
        }
        answered => answered,
    }
}

/// `prelude.lua`: helpers every script starts with.
macro_rules! prelude {
    () => {
        include_str!("scripts/prelude.lua")
    };
}

/// The id layout the scripts slice ids by (1-based positions, as Lua's
/// `string.sub` takes them), generated from `ids.rs` so the two cannot
/// drift: the body of an event, endpoint or delivery id starts at
/// `EVT_BODY`, `EP_BODY`, `DLV_BODY`; a delivery's body is its event's
/// body (`DLV_EVENT` to `DLV_EVENT_END`) then its endpoint's (from
/// `DLV_ENDPOINT`); a time bucket ends at `EVT_BUCKET_END` in an event id
/// and `DLV_BUCKET_END` in a delivery id; the last `ID_PARTITION` characters
/// name the partition.
pub fn id_layout() -> String {
    use crate::ids::{IdKind, BODY_LEN, BUCKET_CHARS, PARTITION_CHARS};
    let body = |kind: IdKind| kind.prefix().len() + 2;
    let (evt, ep, dlv) = (
        body(IdKind::Event),
        body(IdKind::Endpoint),
        body(IdKind::Delivery),
    );
    format!(
        "local EVT_BODY, EP_BODY, DLV_BODY = {evt}, {ep}, {dlv}\n\
         local DLV_EVENT, DLV_EVENT_END, DLV_ENDPOINT = {dlv}, {}, {}\n\
         local EVT_BUCKET_END, DLV_BUCKET_END = {}, {}\n\
         local ID_PARTITION = {PARTITION_CHARS}\n",
        dlv + BODY_LEN - 1,
        dlv + BODY_LEN,
        evt + BUCKET_CHARS - 1,
        dlv + BUCKET_CHARS - 1,
    )
}

/// A script: the generated id layout, `prelude.lua`, the helper files it
/// uses (`state.lua`, `batch_read.lua`), then its own file. Helpers are closures made anew
/// on every call, so a script carries only those it uses.
macro_rules! script {
    ($name:ident, $file:literal $(, $helpers:literal)*) => {
        #[doc = concat!("`", $file, "`; see the file's header.")]
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(&format!(
                "{}{}",
                id_layout(),
                concat!(
                    prelude!(),
                    $(include_str!(concat!("scripts/", $helpers)),)*
                    include_str!(concat!("scripts/", $file))
                )
            ))
        });
    };
}

script!(PUBLISH, "publish.lua");
script!(FANOUT, "fanout.lua");
script!(CLAIM, "claim.lua", "state.lua", "batch_read.lua");
/// `record.lua`, after the constants it shares with `store::record`
/// (generated here, so the two cannot drift).
pub(super) static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "local STRIDE = {}\n{}{}",
        super::record::STRIDE,
        id_layout(),
        concat!(
            prelude!(),
            include_str!("scripts/state.lua"),
            include_str!("scripts/batch_read.lua"),
            include_str!("scripts/record.lua")
        )
    ))
});
script!(UPDATE_ENDPOINT, "update_endpoint.lua");
script!(DELETE_ENDPOINT, "delete_endpoint.lua");
script!(RETRY, "retry.lua", "state.lua");
script!(EVENT_HEADS, "event_heads.lua");
script!(BACKLOG, "backlog.lua");
script!(FIFO_HEAD, "fifo_head.lua", "state.lua");
script!(ROTATE_SECRET, "rotate_secret.lua");
script!(REPLAY_LOCK, "replay_lock.lua");
script!(REPLAY_TAKE, "replay_take.lua");
script!(REPLAY_CHUNK, "replay_chunk.lua", "state.lua");
script!(REPLAY_CANCEL, "replay_cancel.lua");
script!(CAPPED_ADD, "capped_add.lua");
script!(TEST_SEND_SLOT, "test_send_slot.lua");
script!(TENANT_UPDATE, "tenant_update.lua");
script!(USAGE_RESERVE, "usage_reserve.lua");
script!(USAGE_REBUILD, "usage_rebuild.lua");
script!(TENANT_DELETION_TAKE, "tenant_deletion_take.lua");
script!(TENANT_DELETION_STEP, "tenant_deletion_step.lua");
script!(CONFIG_BUMP, "config_bump.lua");
script!(CONFIG_MARK, "config_mark.lua");

/// Every script's file name and source, for tests that check them as text.
#[cfg(test)]
pub(crate) const SOURCES: &[(&str, &str)] = &[
    ("prelude.lua", prelude!()),
    ("state.lua", include_str!("scripts/state.lua")),
    ("batch_read.lua", include_str!("scripts/batch_read.lua")),
    ("publish.lua", include_str!("scripts/publish.lua")),
    ("fanout.lua", include_str!("scripts/fanout.lua")),
    ("claim.lua", include_str!("scripts/claim.lua")),
    ("record.lua", include_str!("scripts/record.lua")),
    (
        "update_endpoint.lua",
        include_str!("scripts/update_endpoint.lua"),
    ),
    (
        "delete_endpoint.lua",
        include_str!("scripts/delete_endpoint.lua"),
    ),
    ("retry.lua", include_str!("scripts/retry.lua")),
    (
        "rotate_secret.lua",
        include_str!("scripts/rotate_secret.lua"),
    ),
    ("replay_lock.lua", include_str!("scripts/replay_lock.lua")),
    ("replay_take.lua", include_str!("scripts/replay_take.lua")),
    ("replay_chunk.lua", include_str!("scripts/replay_chunk.lua")),
    (
        "replay_cancel.lua",
        include_str!("scripts/replay_cancel.lua"),
    ),
    ("capped_add.lua", include_str!("scripts/capped_add.lua")),
    (
        "test_send_slot.lua",
        include_str!("scripts/test_send_slot.lua"),
    ),
    ("event_heads.lua", include_str!("scripts/event_heads.lua")),
    ("backlog.lua", include_str!("scripts/backlog.lua")),
    ("fifo_head.lua", include_str!("scripts/fifo_head.lua")),
    (
        "tenant_update.lua",
        include_str!("scripts/tenant_update.lua"),
    ),
    (
        "usage_reserve.lua",
        include_str!("scripts/usage_reserve.lua"),
    ),
    (
        "usage_rebuild.lua",
        include_str!("scripts/usage_rebuild.lua"),
    ),
    (
        "tenant_deletion_take.lua",
        include_str!("scripts/tenant_deletion_take.lua"),
    ),
    (
        "tenant_deletion_step.lua",
        include_str!("scripts/tenant_deletion_step.lua"),
    ),
    ("config_bump.lua", include_str!("scripts/config_bump.lua")),
    ("config_mark.lua", include_str!("scripts/config_mark.lua")),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ENDPOINT_FIELDS;

    /// The arguments of each `redis.call(...)` in `source` whose command
    /// starts with `H` (a hash command), split at top-level commas.
    fn hash_calls(source: &str) -> Vec<Vec<String>> {
        let mut calls = Vec::new();
        for (at, _) in source.match_indices("redis.call('H") {
            let open = at + "redis.call".len();
            let (mut depth, mut quoted, mut args, mut arg) = (0, false, Vec::new(), String::new());
            for c in source[open..].chars() {
                match c {
                    '\'' => quoted = !quoted,
                    '(' if !quoted => {
                        depth += 1;
                        if depth == 1 {
                            continue;
                        }
                    }
                    ')' if !quoted => {
                        depth -= 1;
                        if depth == 0 {
                            args.push(arg.trim().to_string());
                            break;
                        }
                    }
                    ',' if !quoted && depth == 1 => {
                        args.push(std::mem::take(&mut arg).trim().to_string());
                        continue;
                    }
                    _ => {}
                }
                arg.push(c);
            }
            calls.push(args);
        }
        calls
    }

    /// Field names the scripts spell for an endpoint's hash (its key built
    /// from `'endpoint:'`, held in `endpoint_key`, or KEYS[1] where the
    /// header says it is the endpoint hash) are in `model::ENDPOINT_FIELDS`.
    /// (Fields gathered into a table first, as claim.lua's `qhead`/`busy`
    /// write, are not seen here.)
    #[test]
    fn scripts_use_only_the_endpoint_fields_model_rs_lists() {
        let mut checked = 0;
        for (name, source) in SOURCES {
            let keys_1_is_endpoint = source.contains("KEYS[1] endpoint hash");
            for args in hash_calls(source) {
                let Some(key) = args.get(1) else { continue };
                let endpoint = key.contains("'endpoint:'")
                    || key == "endpoint_key"
                    || (keys_1_is_endpoint && key == "KEYS[1]");
                if !endpoint {
                    continue;
                }
                for arg in &args[2..] {
                    let Some(field) = arg.strip_prefix('\'').and_then(|a| a.strip_suffix('\''))
                    else {
                        continue;
                    };
                    if field.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        && !field.is_empty()
                    {
                        assert!(
                            ENDPOINT_FIELDS.contains(&field),
                            "{name} uses endpoint field `{field}`, which model::ENDPOINT_FIELDS does not list"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(
            checked > 30,
            "only {checked} field names found: the parser is broken"
        );
    }

    /// Ids are sliced by the generated layout, never by literal positions.
    #[test]
    fn scripts_slice_ids_only_by_the_generated_layout() {
        for (name, source) in SOURCES {
            for (at, _) in source.match_indices("string.sub(") {
                let args = &source[at + "string.sub(".len()..];
                let second = args
                    .split(',')
                    .nth(1)
                    .and_then(|arg| arg.split(')').next())
                    .unwrap_or("")
                    .trim();
                let literal = second.trim_start_matches('-');
                let numeric = !literal.is_empty() && literal.chars().all(|c| c.is_ascii_digit());
                let line = source[..at].lines().count();
                assert!(
                    !numeric || literal == "1",
                    "{name}, line {line}: `string.sub` slices at the literal position {second}; use the id layout"
                );
            }
        }
    }
}
