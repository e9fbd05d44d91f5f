//! The Lua scripts that change queue state, one file per transition of a
//! delivery's life (see each file's header for its KEYS, ARGV and
//! guarantee), each preceded by `prelude.lua`'s shared helpers. They are
//! loaded once per process; `redis::Script` sends EVALSHA and reloads the
//! script when Redis answers NOSCRIPT (after a restart or `SCRIPT FLUSH`).
//!
//! Private to [`crate::store`]: each script has one module there that
//! builds its KEYS and ARGV and reads its reply, and nothing else calls it.

use std::sync::LazyLock;

use redis::Script;

/// `prelude.lua`: helpers every script starts with.
macro_rules! prelude {
    () => {
        include_str!("scripts/prelude.lua")
    };
}

/// A script: `prelude.lua`, the helper files it uses (`state.lua`), then
/// its own file. Helpers are closures made anew on
/// every call, so a script carries only those it uses.
macro_rules! script {
    ($name:ident, $file:literal $(, $helpers:literal)*) => {
        #[doc = concat!("`", $file, "`; see the file's header.")]
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                prelude!(),
                $(include_str!(concat!("scripts/", $helpers)),)*
                include_str!(concat!("scripts/", $file))
            ))
        });
    };
}

script!(PUBLISH, "publish.lua");
script!(FANOUT, "fanout.lua");
script!(CLAIM, "claim.lua", "state.lua");
/// `record.lua`, after the constants it shares with `store::record`
/// (generated here, so the two cannot drift).
pub(super) static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "local STRIDE = {}\n{}",
        super::record::STRIDE,
        concat!(
            prelude!(),
            include_str!("scripts/state.lua"),
            include_str!("scripts/record.lua")
        )
    ))
});
script!(UPDATE_ENDPOINT, "update_endpoint.lua");
script!(DELETE_ENDPOINT, "delete_endpoint.lua");
script!(RETRY, "retry.lua", "state.lua");
script!(EVENT_HEADS, "event_heads.lua");
script!(BACKLOG, "backlog.lua");
script!(ROTATE_SECRET, "rotate_secret.lua");
script!(REPLAY_LOCK, "replay_lock.lua");
script!(CAPPED_ADD, "capped_add.lua");
script!(TEST_SEND_SLOT, "test_send_slot.lua");

/// Every script's file name and source, for tests that check them as text.
#[cfg(test)]
pub(crate) const SOURCES: &[(&str, &str)] = &[
    ("prelude.lua", prelude!()),
    ("state.lua", include_str!("scripts/state.lua")),
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
    ("capped_add.lua", include_str!("scripts/capped_add.lua")),
    (
        "test_send_slot.lua",
        include_str!("scripts/test_send_slot.lua"),
    ),
    ("event_heads.lua", include_str!("scripts/event_heads.lua")),
    ("backlog.lua", include_str!("scripts/backlog.lua")),
];
