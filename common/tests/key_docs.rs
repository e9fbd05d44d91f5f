//! The Redis key layout is documented once: docs/ARCHITECTURE.md's key
//! table lists exactly the keys `keys.rs` builds (placeholders for ids,
//! `{pN}` for a partition), and every key-building method of `Keys` is in
//! the list below, so a new key cannot go undocumented.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hookfleet_common::ids::Partition;
use hookfleet_common::Keys;

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Every key `Keys` builds, by method, with the placeholders the table
/// uses. Channels are not keys; they are named in the text below it.
fn built() -> Vec<(&'static str, String)> {
    let k = Keys::new("hf");
    let p = Partition(7);
    let start = 4_242_424_242;
    vec![
        ("layout", k.layout()),
        ("tenants", k.tenants()),
        ("api_key_lookup", k.api_key_lookup("<sha256>")),
        ("portal_link", k.portal_link("<plid>")),
        ("portal_token", k.portal_token("<sha256>")),
        ("portal_session", k.portal_session("<sha256>")),
        ("tenant_deletions", k.tenant_deletions()),
        ("retention_sweep", k.retention_sweep()),
        ("workers", k.workers()),
        ("workers_seen", k.workers_seen()),
        ("tenant", k.tenant("<tid>")),
        ("tenant_api_keys", k.tenant_api_keys("<tid>")),
        ("tenant_endpoints", k.tenant_endpoints("<tid>")),
        (
            "tenant_endpoints_deleted",
            k.tenant_endpoints_deleted("<tid>"),
        ),
        ("tenant_test_sends", k.tenant_test_sends("<tid>")),
        ("tenant_event_types", k.tenant_event_types("<tid>")),
        ("tenant_portal_links", k.tenant_portal_links("<tid>")),
        ("tenant_usage", k.tenant_usage("<tid>")),
        ("ready", k.ready(p)),
        ("queued", k.queued(p)),
        ("fanout_pending", k.fanout_pending(p)),
        ("notices", k.notices(p)),
        ("inflight", k.inflight(p)),
        ("fifo_heads", k.fifo_heads(p)),
        ("tenant_config_versions", k.tenant_config_versions(p)),
        ("replays", k.replays(p)),
        ("tenant_events", k.tenant_events(p, "<tid>")),
        ("tenant_failed", k.tenant_failed(p, "<tid>")),
        ("endpoint", k.endpoint(p, "<eid>")),
        ("events", k.events(p, "<bucket>")),
        ("states", k.states(p, "<bucket>")),
        ("idempotency", k.idempotency(p, "<tid>", "<key>")),
        ("endpoint_deliveries", k.endpoint_deliveries(p, "<eid>")),
        ("endpoint_due", k.endpoint_due(p, "<eid>")),
        ("attempts", k.attempts(p, "<eid>")),
        ("endpoint_stats", k.endpoint_stats(p, "<eid>")),
        ("rate", k.rate(p, "<eid>")),
        ("stats_fine", k.stats_fine(p, "<eid>", start)),
        ("stats_coarse", k.stats_coarse(p, "<eid>", start)),
        ("replay", k.replay(p, "<rid>")),
        ("replay_running", k.replay_running(p, "<eid>")),
    ]
    .into_iter()
    .map(|(name, key)| {
        let key = key
            .replace("{p7}", "{pN}")
            .replace(&start.to_string(), "<start>");
        (name, key)
    })
    .collect()
}

/// The first column of the key table in docs/ARCHITECTURE.md.
fn documented() -> BTreeSet<String> {
    let doc = repo_file("docs/ARCHITECTURE.md");
    let section = doc
        .split("## Redis key layout")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/ARCHITECTURE.md has a \"Redis key layout\" section");
    section
        .lines()
        .filter(|line| line.starts_with("| `hf:"))
        .map(|line| line.split('`').nth(1).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_key_table_lists_exactly_the_keys_keys_rs_builds() {
    let built: BTreeSet<String> = built().into_iter().map(|(_, key)| key).collect();
    let documented = documented();
    let missing: Vec<&String> = built.difference(&documented).collect();
    let stale: Vec<&String> = documented.difference(&built).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/ARCHITECTURE.md's key table: missing {missing:?}, not built by keys.rs {stale:?}"
    );
    let doc = repo_file("docs/ARCHITECTURE.md");
    let k = Keys::new("hf");
    for channel in [k.wake_channel(), k.attempted_channel(), k.auth_channel()] {
        assert!(
            doc.contains(&format!("`{channel}`")),
            "{channel} is not documented"
        );
    }
}

#[test]
fn every_key_method_of_keys_rs_is_checked() {
    let source = repo_file("common/src/keys.rs");
    let body = source
        .split("impl Keys {")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .expect("keys.rs has `impl Keys`");
    let not_keys = [
        "new",
        "prefix",
        "wake_channel",
        "attempted_channel",
        "auth_channel",
        "partition_prefix",
    ];
    let methods: BTreeSet<&str> = body
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub fn "))
        .filter_map(|rest| rest.split('(').next())
        .filter(|name| !not_keys.contains(name))
        .collect();
    let checked: BTreeSet<&str> = built().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        methods, checked,
        "a key method of keys.rs is not in key_docs.rs's list (add it, and its row to docs/ARCHITECTURE.md)"
    );
}
