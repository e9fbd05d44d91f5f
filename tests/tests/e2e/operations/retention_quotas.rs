//! A tenant's own retention and its cap on retained events: set by the
//! admin routes within the operator's bounds; a publish over the cap is
//! refused with 429 `quota_exceeded` and writes nothing, however many
//! arrive at once; data past a tenant's retention reads as gone and is
//! removed by the workers' sweep, while a tenant with a longer retention
//! keeps its events past the server's.

use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_common::ids::{self, IdKind};
use hookfleet_tests::{spawn_receiver, wait_until, Reply, TestApp};

async fn publish(app: &TestApp, key: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (status, event) = app
            .post(
                "/api/v1/events",
                key,
                json!({"event_type": "user.created", "data": {"i": i}}),
            )
            .await;
        assert_eq!(status, 202, "{event}");
        ids.push(event["id"].as_str().unwrap_or_default().to_string());
    }
    ids
}

/// Whether the event's record is still stored (in its home partition's
/// bucket hash), whatever the reads say.
async fn stored(app: &TestApp, event_id: &str) -> bool {
    let keys = app.keys();
    let (Some(p), Some((bucket, _))) = (
        ids::partition_of(IdKind::Event, event_id),
        ids::time_bucket(IdKind::Event, event_id),
    ) else {
        return false;
    };
    redis::cmd("HEXISTS")
        .arg(keys.events(p, bucket))
        .arg(event_id)
        .query_async(&mut app.redis().await)
        .await
        .unwrap_or(false)
}

#[tokio::test]
async fn a_tenant_over_its_cap_is_refused_and_nothing_is_written() {
    let app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (id, key) = app.tenant("capped").await;
    let path = format!("/api/v1/tenants/{id}");
    let (status, tenant) = app
        .patch(&path, &admin, json!({"max_retained_events": 5}))
        .await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["max_retained_events"], 5);
    assert_eq!(tenant["usage"]["retained_events"], 0);

    publish(&app, &key, 3).await;
    let (status, batch) = app
        .post(
            "/api/v1/events/batch",
            &key,
            json!({"events": [
                {"event_type": "user.created", "data": {}, "idempotency_key": "k-1"},
                {"event_type": "user.created", "data": {}},
            ]}),
        )
        .await;
    assert_eq!(status, 202, "{batch}");

    // Full: the sixth is refused, naming the cap, and writes nothing.
    let before = app.snapshot().await;
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .json(&json!({"event_type": "user.created", "data": {}}))
        .send()
        .await
        .expect("publish");
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let error: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(error["code"], "quota_exceeded", "{error}");
    assert_eq!(error["field"], "max_retained_events");
    assert!(
        error["message"].as_str().unwrap_or("").contains('5'),
        "{error}"
    );
    let (status, error) = app
        .post(
            "/api/v1/events/batch",
            &key,
            json!({"events": [{"event_type": "user.created", "data": {}}]}),
        )
        .await;
    assert_eq!(status, 429, "{error}");
    assert_eq!(
        app.changed_since(&before).await,
        Vec::<String>::new(),
        "a refused publish writes nothing"
    );

    // A retry with a key already used is answered with its event, not
    // refused and not counted.
    let (status, again) = app
        .post(
            "/api/v1/events/batch",
            &key,
            json!({"events": [{"event_type": "user.created", "data": {}, "idempotency_key": "k-1"}]}),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["results"][0]["duplicate"], true, "{again}");
    let (_, tenant) = app.get(&path, &admin).await;
    assert_eq!(tenant["usage"]["retained_events"], 5, "{tenant}");
    assert_eq!(tenant["usage"]["counted_events"], 5, "{tenant}");
    // The tenant sees its own cap and usage.
    let (_, me) = app.get("/api/v1/me", &key).await;
    assert_eq!(me["max_retained_events"], 5, "{me}");
    assert_eq!(me["retained_events"], 5, "{me}");
    assert_eq!(me["retention"], "30d", "{me}");

    // A higher cap lets publishes through again; none removes it.
    let (status, _) = app
        .patch(&path, &admin, json!({"max_retained_events": 6}))
        .await;
    assert_eq!(status, 200);
    publish(&app, &key, 1).await;
    let (status, tenant) = app
        .patch(&path, &admin, json!({"max_retained_events": null}))
        .await;
    assert_eq!(status, 200);
    assert!(tenant.get("max_retained_events").is_none(), "{tenant}");
    assert_eq!(tenant["usage"]["retained_events"], 6);
    publish(&app, &key, 2).await;
    app.stop().await;
}

/// Caps the tenant at 4 retained events over the 3 it keeps: the answer
/// counts them, one more publish fills the cap and the next is refused.
async fn cap_at_four_over_three(app: &TestApp, path: &str, admin: &str, key: &str) {
    let (status, tenant) = app
        .patch(path, admin, json!({"max_retained_events": 4}))
        .await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["usage"]["counted_events"], 3, "{tenant}");
    publish(app, key, 1).await;
    let (status, error) = app
        .post(
            "/api/v1/events",
            key,
            json!({"event_type": "user.created", "data": {}}),
        )
        .await;
    assert_eq!(status, 429, "{error}");
}

#[tokio::test]
async fn a_cap_set_later_counts_the_events_already_kept() {
    let app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (id, key) = app.tenant("late").await;
    publish(&app, &key, 3).await;
    let path = format!("/api/v1/tenants/{id}");
    cap_at_four_over_three(&app, &path, &admin, &key).await;
    // A change of retention recounts, keeping what was counted.
    let (status, tenant) = app.patch(&path, &admin, json!({"retention": "7d"})).await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["usage"]["counted_events"], 4, "{tenant}");
    assert_eq!(tenant["usage"]["retained_events"], 4, "{tenant}");
    app.stop().await;
}

/// Two changes racing: one counts the tenant's events for a cap, then
/// another removes the cap (and with it the count) before the first writes
/// its cap. The first must not write a cap without a count (publishes
/// would then pass it): it is refused until it counts again, which the
/// API does by itself.
#[tokio::test]
async fn a_cap_is_never_written_over_a_count_another_change_removed() {
    use hookfleet_common::store::{tenants, usage};
    let app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (id, key) = app.tenant("raced").await;
    publish(&app, &key, 3).await;
    let keys = app.keys();
    let retention_ms = app.config.retention.as_millis() as u64;
    let partitions: Vec<_> = app.config.all_partitions().collect();
    let mut conn = app.redis().await;
    // The first change counts...
    let counted = usage::rebuild(
        &mut conn,
        &keys,
        &id,
        &partitions,
        retention_ms,
        hookfleet_common::time_util::now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(counted, 3);
    // ...the second removes the cap, and the count with it...
    let path = format!("/api/v1/tenants/{id}");
    let (status, tenant) = app
        .patch(&path, &admin, json!({"max_retained_events": null}))
        .await;
    assert_eq!(status, 200, "{tenant}");
    let exists: bool = redis::cmd("EXISTS")
        .arg(keys.tenant_usage(&id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists, "an uncapped tenant keeps no count");
    // ...and the first's write comes last: refused, nothing written.
    let change = tenants::TenantChange {
        max_events: Some(Some(4)),
        ..Default::default()
    };
    let outcome = tenants::update(&mut conn, &keys, &id, &change, retention_ms)
        .await
        .unwrap();
    assert_eq!(outcome, tenants::Updated::Recount);
    let (_, tenant) = app.get(&path, &admin).await;
    assert!(tenant["max_retained_events"].is_null(), "{tenant}");
    // Through the API the change counts again and is written.
    cap_at_four_over_three(&app, &path, &admin, &key).await;
    // A cap whose count was started for another retention is refused too.
    let _ = usage::rebuild(
        &mut conn,
        &keys,
        &id,
        &partitions,
        retention_ms / 2,
        hookfleet_common::time_util::now_ms(),
    )
    .await
    .unwrap();
    let outcome = tenants::update(&mut conn, &keys, &id, &change, retention_ms)
        .await
        .unwrap();
    assert_eq!(outcome, tenants::Updated::Recount);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_publishes_never_pass_the_cap() {
    let app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (id, key) = app.tenant("racing").await;
    let path = format!("/api/v1/tenants/{id}");
    let (status, _) = app
        .patch(&path, &admin, json!({"max_retained_events": 20}))
        .await;
    assert_eq!(status, 200);
    let bodies: Vec<Value> = (0..60)
        .map(|i| json!({"event_type": "user.created", "data": {"i": i}}))
        .collect();
    let answers = app.post_all("/api/v1/events", &key, bodies).await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let refused = answers
        .iter()
        .filter(|(s, e)| *s == 429 && e["code"] == "quota_exceeded")
        .count();
    assert_eq!((accepted, refused), (20, 40), "{answers:?}");
    let (_, tenant) = app.get(&path, &admin).await;
    assert_eq!(tenant["usage"]["retained_events"], 20, "{tenant}");
    app.stop().await;
}

#[tokio::test]
async fn bad_retention_and_caps_are_refused_naming_the_field() {
    let app = TestApp::builder()
        .env("HOOKFLEET_TENANT_RETENTION_MIN", "1h")
        .env("HOOKFLEET_TENANT_RETENTION_MAX", "90d")
        .spawn()
        .await;
    let admin = app.admin_key();
    let (id, _) = app.tenant("bounds").await;
    let path = format!("/api/v1/tenants/{id}");
    let before = app.snapshot().await;
    for (body, field) in [
        (json!({"retention": "30m"}), "retention"),
        (json!({"retention": "91d"}), "retention"),
        (json!({"retention": "soon"}), "retention"),
        (json!({"retention": " 2d"}), "retention"),
        (json!({"retention": 7}), "retention"),
        (json!({"max_retained_events": 0}), "max_retained_events"),
        (json!({"max_retained_events": -1}), "max_retained_events"),
        (
            json!({"max_retained_events": 10_000_000_000u64}),
            "max_retained_events",
        ),
        (json!({"max_retained_events": "10"}), "max_retained_events"),
    ] {
        let (status, error) = app.patch(&path, &admin, body.clone()).await;
        assert!((400..500).contains(&status), "{body}: {status} {error}");
        assert!(
            error["field"].as_str().unwrap_or("").contains(field)
                || error["message"].as_str().unwrap_or("").contains(field),
            "{body}: {error}"
        );
    }
    assert_eq!(app.changed_since(&before).await, Vec::<String>::new());
    let (status, tenant) = app.patch(&path, &admin, json!({"retention": "90d"})).await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["retention"], "90d");
    assert_eq!(tenant["own_retention"], true);
    let (_, tenant) = app.patch(&path, &admin, json!({"retention": null})).await;
    assert_eq!(tenant["retention"], "30d");
    assert_eq!(tenant["own_retention"], false);
    app.stop().await;
}

#[tokio::test]
async fn each_tenant_keeps_its_data_for_its_own_retention() {
    // The server keeps 6 s; tenants may have 1 s to 1 h; the sweep runs
    // every 300 ms.
    let mut app = TestApp::builder()
        .retention("6s")
        .env("HOOKFLEET_TENANT_RETENTION_MIN", "1s")
        .env("HOOKFLEET_TENANT_RETENTION_MAX", "1h")
        .env("HOOKFLEET_RETENTION_SWEEP", "300ms")
        .spawn()
        .await;
    app.start_worker();
    let admin = app.admin_key();
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let mut tenants = Vec::new();
    for (name, retention) in [
        ("short", Some("2s")),
        ("default", None),
        ("long", Some("1h")),
    ] {
        let (id, key) = app.tenant(name).await;
        if let Some(retention) = retention {
            let (status, tenant) = app
                .patch(
                    &format!("/api/v1/tenants/{id}"),
                    &admin,
                    json!({"retention": retention}),
                )
                .await;
            assert_eq!(status, 200, "{tenant}");
        }
        let endpoint = app
            .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
            .await;
        let events = publish(&app, &key, 5).await;
        tenants.push((
            key,
            endpoint["id"].as_str().unwrap_or_default().to_string(),
            events,
        ));
    }
    let delivered = wait_until(Duration::from_secs(20), || async {
        (receiver.count() >= 15).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "all delivered");
    // The shared hashes live as long as the longest retention allowed.
    let first = &tenants[0].2[0];
    let (p, bucket) = (
        ids::partition_of(IdKind::Event, first).expect("event id"),
        ids::time_bucket(IdKind::Event, first)
            .expect("event id")
            .0
            .to_string(),
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg(app.keys().events(p, &bucket))
        .query_async(&mut app.redis().await)
        .await
        .expect("PTTL");
    assert!(
        ttl > 600_000,
        "the events hash outlives the server's retention: {ttl} ms"
    );

    let gone = |key: String, endpoint: String, events: Vec<String>| {
        let app = &app;
        async move {
            for event in &events {
                let (status, _) = app.get(&format!("/api/v1/events/{event}"), &key).await;
                if status != 404 || stored(app, event).await {
                    return None;
                }
            }
            let (_, list) = app.get("/api/v1/events", &key).await;
            let (_, log) = app
                .get(&format!("/api/v1/webhooks/{endpoint}/deliveries"), &key)
                .await;
            let empty = |page: &Value| page["data"].as_array().is_some_and(|d| d.is_empty());
            // Its attempts are trimmed from the endpoint's stream too.
            let p = ids::partition_of(IdKind::Endpoint, &endpoint)?;
            let logged: u64 = redis::cmd("XLEN")
                .arg(app.keys().attempts(p, &endpoint))
                .query_async(&mut app.redis().await)
                .await
                .ok()?;
            (empty(&list) && empty(&log) && logged == 0).then_some(())
        }
    };
    // The short tenant's events read as gone after 2 s, and are removed.
    let (short_key, short_endpoint, short_events) = tenants[0].clone();
    let short_gone = wait_until(Duration::from_secs(20), || {
        gone(
            short_key.clone(),
            short_endpoint.clone(),
            short_events.clone(),
        )
    })
    .await;
    assert!(short_gone.is_some(), "the 2 s tenant's data is gone");
    let (long_key, _, long_events) = tenants[2].clone();
    let (status, _) = app
        .get(&format!("/api/v1/events/{}", long_events[0]), &long_key)
        .await;
    assert_eq!(status, 200, "the 1 h tenant keeps its events meanwhile");

    // After the server's 6 s, the default tenant's are gone too (the
    // sweep removes them: the storage keeps 1 h); the 1 h tenant keeps
    // every one of its events, readable and listed.
    let (default_key, default_endpoint, default_events) = tenants[1].clone();
    let default_gone = wait_until(Duration::from_secs(30), || {
        gone(
            default_key.clone(),
            default_endpoint.clone(),
            default_events.clone(),
        )
    })
    .await;
    assert!(default_gone.is_some(), "the default tenant's data is gone");
    for event in &long_events {
        let (status, detail) = app.get(&format!("/api/v1/events/{event}"), &long_key).await;
        assert_eq!(status, 200, "{detail}");
        assert!(stored(&app, event).await);
    }
    let (_, list) = app.get("/api/v1/events", &long_key).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(5), "{list}");
    app.stop().await;
}

/// How many of the tenant's events are still indexed, over every partition.
async fn indexed_events(app: &TestApp, tenant_id: &str) -> u64 {
    let mut total = 0;
    for p in app.config.all_partitions() {
        total += app.zcard(&app.keys().tenant_events(p, tenant_id)).await;
    }
    total
}

/// Invariant 9 for the retention sweep: a large tenant's sweep is paced
/// (`HOOKFLEET_TENANT_DELETE_RATE`), so another tenant's events are
/// delivered by the same worker while it is still under way. With the
/// rate lifted, the sweep is over before they arrive and the test fails.
#[tokio::test]
async fn another_tenants_deliveries_go_on_while_a_large_retention_sweep_runs() {
    let app = TestApp::builder()
        .with_worker()
        .env("HOOKFLEET_TENANT_RETENTION_MIN", "1s")
        .env("HOOKFLEET_RETENTION_SWEEP", "300ms")
        // 2,000 events to sweep at 200 a second: about ten seconds.
        .env("HOOKFLEET_TENANT_DELETE_RATE", "200")
        .spawn()
        .await;
    let admin = app.admin_key();
    let neighbours = app.neighbours().await;
    let (big_id, big) = (&neighbours.big_id, &neighbours.big_key);
    for chunk in 0..4 {
        let events: Vec<Value> = (0..500)
            .map(|i| json!({"event_type": "user.created", "data": {"chunk": chunk, "i": i}}))
            .collect();
        let (status, batch) = app
            .post("/api/v1/events/batch", big, json!({"events": events}))
            .await;
        assert_eq!(status, 202, "{batch}");
    }
    assert_eq!(indexed_events(&app, big_id).await, 2_000);
    // Every event is past the retention about to be set, so the next pass
    // finds all 2,000 at once: only the pacing spreads their removal.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (status, tenant) = app
        .patch(
            &format!("/api/v1/tenants/{big_id}"),
            &admin,
            json!({"retention": "1s"}),
        )
        .await;
    assert_eq!(status, 200, "{tenant}");
    let started = wait_until(Duration::from_secs(30), || async {
        (indexed_events(&app, big_id).await < 2_000).then_some(())
    })
    .await;
    assert!(started.is_some(), "the sweep started removing events");

    let still = neighbours
        .delivered_while(&app, || async { indexed_events(&app, big_id).await > 0 })
        .await;
    assert!(
        still,
        "the other tenant's events arrived only after the sweep ended"
    );
    let swept = wait_until(Duration::from_secs(60), || async {
        (indexed_events(&app, big_id).await == 0).then_some(())
    })
    .await;
    assert!(swept.is_some(), "the sweep ended");
    app.stop().await;
}
