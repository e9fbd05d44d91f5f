//! A tenant's life after creation: renamed, then deleted. Deleting stops
//! its keys and portal links at once, and the workers remove its data in
//! steps that survive a killed worker; another tenant whose ids interleave
//! with it in every shared hash keeps every byte.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_tests::{
    spawn_logged, spawn_receiver, wait_until, worker_binary, worker_env, Reply, TestApp,
};

/// Every entry under the app's prefix, one line per hash field, sorted-set
/// member, stream entry, set member or string, so a test can say which
/// entries of a shared hash went and which stayed.
async fn entries(app: &TestApp) -> BTreeSet<String> {
    let pattern = format!("{}:*", app.config.redis_prefix);
    let mut out = BTreeSet::new();
    for mut conn in app.node_connections().await {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        node_entries(&mut conn, keys, &mut out).await;
    }
    out
}

async fn node_entries(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: Vec<String>,
    out: &mut BTreeSet<String>,
) {
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("TYPE");
        // (A key emptied between KEYS and TYPE is gone: nothing to list.)
        if kind == "none" {
            continue;
        }
        let lines: Vec<String> = match kind.as_str() {
            "hash" => {
                // (Event records may hold compressed bytes: shown lossily,
                // their head, with the tenant id, is text.)
                let map: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(conn)
                    .await
                    .expect("HGETALL");
                map.into_iter()
                    .map(|(f, v)| format!("{f} = {}", String::from_utf8_lossy(&v)))
                    .collect()
            }
            "zset" => {
                let members: Vec<(String, String)> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(conn)
                    .await
                    .expect("ZRANGE");
                members
                    .into_iter()
                    .map(|(m, s)| format!("{m} @ {s}"))
                    .collect()
            }
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(conn)
                .await
                .expect("SMEMBERS"),
            "stream" => {
                let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query_async(conn)
                    .await
                    .expect("XRANGE");
                reply
                    .ids
                    .into_iter()
                    .map(|e| format!("{} {:?}", e.id, e.map))
                    .collect()
            }
            _ => {
                let value: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(conn)
                    .await
                    .unwrap_or(None);
                vec![value.unwrap_or_default()]
            }
        };
        for line in lines {
            out.insert(format!("{key} :: {line}"));
        }
    }
}

/// Entries that change on their own while workers run (heartbeats).
fn volatile(entry: &str) -> bool {
    entry.contains(":workers")
}

/// Publishes `n` events of `event_type` in batches of 50.
async fn publish(app: &TestApp, key: &str, event_type: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for start in (0..n).step_by(50) {
        let events: Vec<Value> = (start..n.min(start + 50))
            .map(|i| json!({"event_type": event_type, "data": {"i": i}}))
            .collect();
        let (status, batch) = app
            .post("/api/v1/events/batch", key, json!({"events": events}))
            .await;
        assert!(status == 202 || status == 200, "{batch}");
        for event in batch["data"].as_array().cloned().unwrap_or_default() {
            ids.push(event["id"].as_str().unwrap_or_default().to_string());
        }
    }
    ids
}

fn kill(child: &mut std::process::Child) {
    let killed = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = child.wait();
}

#[tokio::test]
async fn a_deleted_tenants_data_goes_in_steps_that_survive_a_killed_worker_and_no_one_elses_does() {
    let app = TestApp::builder()
        .request_timeout("1s")
        .lease("6s")
        .spawn()
        .await;
    let admin = app.admin_key();
    let (alice_id, alice) = app.tenant("alice").await;
    let (_, bob) = app.tenant("bob").await;
    let (status, second_key) = app
        .post(
            &format!("/api/v1/tenants/{alice_id}/api-keys"),
            &admin,
            json!({"name": "second", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 201, "{second_key}");
    let second_key = second_key["key"].as_str().unwrap_or_default().to_string();
    let ok = spawn_receiver(vec![], Reply::status(200)).await;
    let refusing = spawn_receiver(vec![], Reply::status(400)).await;

    // Both tenants have endpoints in several partitions (ids are random,
    // so their partitions mix), one refusing everything (failed
    // deliveries, the failed-events index); Alice also has her own event
    // type, a portal link and an endpoint deleted with its log kept.
    let mut alice_endpoints = Vec::new();
    let mut bob_endpoints = Vec::new();
    for i in 0..4 {
        let url = if i == 0 { &refusing.url } else { &ok.url };
        let body = json!({"url": url, "events": ["user.created"]});
        alice_endpoints.push(app.endpoint(&alice, body.clone()).await);
        bob_endpoints.push(app.endpoint(&bob, body).await);
    }
    let (status, _) = app
        .post(
            "/api/v1/event-types",
            &alice,
            json!({"name": "alice.special", "description": "hers"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, link) = app
        .post(
            "/api/v1/portal-links",
            &admin,
            json!({"tenant_id": alice_id}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let token = link["url"]
        .as_str()
        .and_then(|u| u.split_once('#'))
        .map(|(_, t)| t.to_string())
        .unwrap_or_default();
    let doomed = app
        .endpoint(&alice, json!({"url": ok.url, "events": ["user.created"]}))
        .await;

    // Interleaved publishes: the two tenants' events share buckets in
    // every partition, and so do their delivery states.
    let mut alice_events = Vec::new();
    for _ in 0..6 {
        alice_events.extend(publish(&app, &alice, "user.created", 100).await);
        publish(&app, &bob, "user.created", 60).await;
    }
    // Events no endpoint of hers takes: only the events phase finds them.
    alice_events.extend(publish(&app, &alice, "job.failed", 150).await);

    let env = worker_env(
        &app.config,
        &[
            ("HOOKFLEET_REQUEST_TIMEOUT", "1s"),
            ("HOOKFLEET_LEASE", "6s"),
            // 400 entries a second: Alice's 3,000 deliveries take seconds.
            ("HOOKFLEET_TENANT_DELETE_RATE", "400"),
        ],
    );
    let mut first_worker = spawn_logged(worker_binary(), &env);
    let drained = wait_until(Duration::from_secs(120), || async {
        (app.queued_total().await == 0).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "everything delivered: {}",
        first_worker.log()
    );
    // Quiet first: the operational events the failures cause are
    // published, and no lease is left, in any partition.
    let quiet = wait_until(Duration::from_secs(60), || async {
        for p in app.config.all_partitions() {
            let keys = app.keys();
            if app.zcard(&keys.notices(p)).await > 0 || app.zcard(&keys.inflight(p)).await > 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(quiet.is_some(), "notices published, no lease left");
    let doomed_id = doomed["id"].as_str().unwrap_or_default();
    let (status, _) = app
        .delete(&format!("/api/v1/webhooks/{doomed_id}"), &alice)
        .await;
    assert_eq!(status, 204);

    // What to look for: Alice's tenant id, her portal link's id, her
    // endpoints' and events' ids (a delivery id or a state's field holds
    // both bodies).
    let link_id = link["id"].as_str().unwrap_or_default().to_string();
    assert!(!link_id.is_empty(), "{link}");
    let mut needles: Vec<String> = vec![alice_id.clone(), link_id];
    for endpoint in alice_endpoints.iter().chain([&doomed]) {
        needles.push(endpoint["id"].as_str().unwrap_or_default()[3..].to_string());
    }
    for event in &alice_events {
        needles.push(event[4..].to_string());
    }
    let hers = |entry: &str| needles.iter().any(|n| entry.contains(n.as_str()));
    let before = entries(&app).await;
    let alice_before = before.iter().filter(|e| hers(e)).count();
    assert!(
        alice_before > 3_000,
        "Alice has data: {alice_before} entries"
    );
    let bob_before: BTreeSet<&String> =
        before.iter().filter(|e| !hers(e) && !volatile(e)).collect();
    assert!(
        bob_before.len() > 1_000,
        "Bob has data: {}",
        bob_before.len()
    );

    // Delete: her keys and her portal link stop before the answer.
    let (status, deleting) = app
        .delete(&format!("/api/v1/tenants/{alice_id}"), &admin)
        .await;
    assert_eq!(status, 202, "{deleting}");
    assert_eq!(deleting["tenant_id"], alice_id.as_str());
    let path = format!("/api/v1/tenants/{alice_id}");
    let (status, _) = app.get(&path, &admin).await;
    assert_eq!(status, 404, "the tenant is gone for the API at once");
    for key in [&alice, &second_key] {
        let (status, _) = app.get("/api/v1/webhooks", key).await;
        assert_eq!(status, 401);
    }
    let (status, _) = app
        .post(
            "/api/v1/events",
            &alice,
            json!({"event_type": "user.created", "data": {}}),
        )
        .await;
    assert_eq!(status, 401, "a publish after the delete is refused");
    let response = app
        .http
        .post(app.url("/api/v1/portal-sessions"))
        .json(&json!({"token": token}))
        .send()
        .await
        .expect("portal session request");
    assert!(
        response.status().is_client_error(),
        "her portal link no longer opens: {}",
        response.status()
    );

    // The worker is killed mid-way through her endpoints.
    let progress = || async {
        let (status, list) = app.get("/api/v1/admin/tenant-deletions", &admin).await;
        assert_eq!(status, 200, "{list}");
        list.as_array().and_then(|l| {
            l.iter()
                .find(|d| d["tenant_id"] == alice_id.as_str())
                .cloned()
        })
    };
    let midway = wait_until(Duration::from_secs(60), || async {
        progress()
            .await
            .filter(|d| d["deliveries_removed"].as_u64() >= Some(400))
    })
    .await;
    assert!(
        midway.is_some(),
        "the deletion started: {}",
        first_worker.log()
    );
    kill(&mut first_worker.child);
    let at_kill = progress().await.expect("the deletion is listed");
    assert_eq!(at_kill["phase"], "endpoints", "{at_kill}");
    assert_eq!(at_kill["name"], "alice", "{at_kill}");
    let (status, page) = app.get("/api/v1/tenants?limit=250", &admin).await;
    assert_eq!(status, 200);
    let listed = page["data"].as_array().cloned().unwrap_or_default();
    assert!(
        !listed.iter().any(|t| t["id"] == alice_id.as_str()),
        "no longer listed among the tenants: {page}"
    );

    // A new worker takes the deletion over once the lease expires.
    let mut env = env;
    env.retain(|(name, _)| *name != "HOOKFLEET_TENANT_DELETE_RATE");
    let mut second_worker = spawn_logged(worker_binary(), &env);
    let gone = wait_until(Duration::from_secs(90), || async {
        progress().await.is_none().then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "the deletion ended: {}",
        second_worker.log()
    );

    // Nothing of hers is left anywhere; everything of Bob's is as it was.
    // Her idempotency records (her operational events made some) are
    // the one exception: a key and an event id each, unreachable, gone
    // within the idempotency window.
    let after = entries(&app).await;
    let idempotency = |e: &str| e.contains(":idem:");
    let left: Vec<&String> = after
        .iter()
        .filter(|e| hers(e) && !idempotency(e))
        .take(5)
        .collect();
    assert!(left.is_empty(), "Alice's data left: {left:?}");
    let window = app.config.idempotency_ttl.as_millis() as i64;
    let mut conn = app.redis().await;
    for entry in after.iter().filter(|e| hers(e) && idempotency(e)) {
        let key = entry.split(" :: ").next().unwrap_or_default();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("PTTL");
        assert!(
            ttl > 0 && ttl <= window,
            "{key} expires within the window: {ttl}"
        );
    }
    let bob_after: BTreeSet<&String> = after.iter().filter(|e| !volatile(e) && !hers(e)).collect();
    let lost: Vec<&&String> = bob_before.difference(&bob_after).take(5).collect();
    let added: Vec<&&String> = bob_after.difference(&bob_before).take(5).collect();
    assert!(
        lost.is_empty() && added.is_empty(),
        "Bob's data changed: lost {lost:?}, added {added:?}"
    );
    let (status, _) = app.get("/api/v1/webhooks", &bob).await;
    assert_eq!(status, 200, "Bob's key still works");
    kill(&mut second_worker.child);
    app.stop().await;
}

/// No tenant slows another (invariant 9), deletions included: a large
/// tenant's deletion goes in paced, bounded steps, so another tenant's
/// events published while it runs are delivered while it is still under
/// way, by the same worker, instead of waiting for it to end.
#[tokio::test]
async fn another_tenants_deliveries_go_on_while_a_large_deletion_runs() {
    let app = TestApp::builder()
        .with_worker()
        // 2,000 events to remove at 200 a second: about ten seconds.
        .env("HOOKFLEET_TENANT_DELETE_RATE", "200")
        .spawn()
        .await;
    let admin = app.admin_key();
    let neighbours = app.neighbours().await;
    let big_id = &neighbours.big_id;
    publish(&app, &neighbours.big_key, "job.failed", 2_000).await;

    let (status, deleting) = app
        .delete(&format!("/api/v1/tenants/{big_id}"), &admin)
        .await;
    assert_eq!(status, 202, "{deleting}");
    let progress = || async {
        let (status, list) = app.get("/api/v1/admin/tenant-deletions", &admin).await;
        assert_eq!(status, 200, "{list}");
        list.as_array().and_then(|l| {
            l.iter()
                .find(|d| d["tenant_id"] == big_id.as_str())
                .cloned()
        })
    };
    let started = wait_until(Duration::from_secs(30), || async {
        progress()
            .await
            .filter(|d| d["events_removed"].as_u64() > Some(0))
    })
    .await;
    assert!(started.is_some(), "the deletion started removing events");

    let still = neighbours
        .delivered_while(&app, || async { progress().await.is_some() })
        .await;
    assert!(
        still,
        "the other tenant's events arrived only after the deletion ended"
    );
    let gone = wait_until(Duration::from_secs(60), || async {
        progress().await.is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the deletion ended");
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_is_renamed_and_a_deleted_tenant_is_gone_for_every_route() {
    let mut app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (id, key) = app.tenant("acme").await;
    let path = format!("/api/v1/tenants/{id}");

    let (status, renamed) = app
        .patch(&path, &admin, json!({"name": "  Acme Europe  "}))
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "Acme Europe");
    let (_, tenant) = app.get(&path, &admin).await;
    assert_eq!(tenant["name"], "Acme Europe");
    let (status, list) = app.get("/api/v1/admin/tenant-deletions", &admin).await;
    assert_eq!((status, list), (200, json!([])), "no deletion under way");
    let (status, same) = app.patch(&path, &admin, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(same["name"], "Acme Europe");

    // Bad renames name the field and change nothing.
    let before = app.snapshot().await;
    for body in [
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "tab\there"}),
        json!({"name": 7}),
        json!({"nickname": "acme"}),
    ] {
        let (status, error) = app.patch(&path, &admin, body.clone()).await;
        assert!(
            (400..500).contains(&status),
            "{body} answered {status}: {error}"
        );
        let named = error["field"].as_str().or(error["message"].as_str());
        assert!(
            named.is_some_and(|n| n.contains("name")),
            "{body}: the error names the field: {error}"
        );
    }
    for missing in ["ten_0000000000000000000000zz", "nope"] {
        let (status, error) = app
            .patch(
                &format!("/api/v1/tenants/{missing}"),
                &admin,
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(status, 404, "{error}");
        let (status, _) = app
            .delete(&format!("/api/v1/tenants/{missing}"), &admin)
            .await;
        assert_eq!(status, 404);
    }
    let (status, _) = app.patch(&path, &key, json!({"name": "mine"})).await;
    assert_eq!(status, 401, "a tenant key cannot rename");
    assert_eq!(app.changed_since(&before).await, Vec::<String>::new());

    // Deleted: the tenant is gone for every route at once.
    let (status, first) = app.delete(&path, &admin).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["name"], "Acme Europe");
    assert_eq!(first["phase"], "access");
    let (status, _) = app.delete(&path, &admin).await;
    assert_eq!(status, 404, "deleting it again");
    let (status, error) = app.patch(&path, &admin, json!({"name": "back"})).await;
    assert_eq!(status, 404, "{error}");
    let (status, error) = app
        .post(&format!("{path}/api-keys"), &admin, json!({}))
        .await;
    assert_eq!(status, 404, "no new key for a deleted tenant: {error}");
    let (status, _) = app.get(&format!("{path}/api-keys"), &admin).await;
    assert_eq!(status, 404);
    let (status, error) = app
        .post("/api/v1/portal-links", &admin, json!({"tenant_id": id}))
        .await;
    assert!((400..500).contains(&status), "{error}");
    assert!(error.to_string().contains("tenant_id"), "{error}");

    // A worker finishes it: it leaves the deletions under way.
    app.start_worker();
    let gone = wait_until(Duration::from_secs(30), || async {
        let (_, list) = app.get("/api/v1/admin/tenant-deletions", &admin).await;
        list.as_array()
            .is_some_and(|l| !l.iter().any(|d| d["tenant_id"] == id.as_str()))
            .then_some(())
    })
    .await;
    assert!(gone.is_some(), "the empty tenant's deletion ended");
    app.stop().await;
}
