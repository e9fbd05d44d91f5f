//! An API process matches single publishes against the tenant's endpoints,
//! types and cap as it cached them, and still never against a copy from
//! before a change that was answered: every change is announced to the
//! partitions first, and `publish.lua` refuses a call matched at an older
//! version (`api/src/index_cache.rs`, `store::tenant_config`).

use hookfleet_tests::TestApp;
use serde_json::{json, Value};

/// One process's count of single publishes by how they found their
/// subscribers (`hit`, `miss`, `stale`).
async fn cache_count(authority: &str, result: &str) -> f64 {
    hookfleet_tests::counter(
        authority,
        &format!("hookfleet_api_index_cache_total{{result=\"{result}\"}}"),
    )
    .await
    .unwrap_or(0.0)
}

/// Publishes an `order.paid` event through the API at `base`.
async fn publish(app: &TestApp, base: &str, key: &str) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(key)
        .json(&json!({"event_type": "order.paid", "data": {"total": 5}}))
        .send()
        .await
        .expect("publish");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_change_answered_by_one_api_process_holds_for_the_next_publish_on_another() {
    let app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (tenant_id, key) = app.tenant("acme").await;
    let (status, body) = app
        .post(
            "/api/v1/event-types",
            &key,
            json!({"name": "order.paid", "description": "An order was paid"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Another process of the fleet, whose copies would last an hour: only
    // the version check can tell it that one is outdated.
    let (other, base) = app
        .start_api_process(&[("HOOKFLEET_API_INDEX_CACHE", "1h")])
        .await;
    let authority = base.trim_start_matches("http://").to_string();
    let deliveries = |answer: &Value| answer["deliveries"].as_u64();

    // No webhooks yet; the second publish is matched against the copy the
    // first one read.
    for _ in 0..2 {
        let (status, answer) = publish(&app, &base, &key).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(deliveries(&answer), Some(0));
    }
    assert_eq!(cache_count(&authority, "miss").await, 1.0);
    assert_eq!(cache_count(&authority, "hit").await, 1.0);

    // A webhook created through the test's own API process receives the
    // very next publish made on the other.
    let (status, webhook) = app
        .post(
            "/api/v1/webhooks",
            &key,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["order.*"]}),
        )
        .await;
    assert_eq!(status, 201, "{webhook}");
    let webhook_path = format!(
        "/api/v1/webhooks/{}",
        webhook["id"].as_str().unwrap_or_default()
    );
    let (status, answer) = publish(&app, &base, &key).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(deliveries(&answer), Some(1), "the new webhook gets it");
    assert_eq!(cache_count(&authority, "stale").await, 1.0);
    let (_, answer) = publish(&app, &base, &key).await;
    assert_eq!(deliveries(&answer), Some(1), "matched from the new copy");
    assert_eq!(cache_count(&authority, "hit").await, 3.0);

    // A subscription changed away from the type: no delivery.
    let (status, body) = app
        .patch(&webhook_path, &key, json!({"events": ["user.*"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, answer) = publish(&app, &base, &key).await;
    assert_eq!(
        deliveries(&answer),
        Some(0),
        "the changed webhook is not matched"
    );

    // A cap set by the admin counts the next publish: at the cap, 429.
    let (status, body) = app
        .patch(
            &format!("/api/v1/tenants/{tenant_id}"),
            &admin,
            json!({"max_retained_events": 5}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["retained_events"], 5, "{body}");
    let (status, answer) = publish(&app, &base, &key).await;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["code"], "quota_exceeded");
    // A higher cap: the next publish is counted by its cached copy, found
    // stale, matched again, and counted once.
    let tenant_path = format!("/api/v1/tenants/{tenant_id}");
    let (status, body) = app
        .patch(&tenant_path, &admin, json!({"max_retained_events": 50}))
        .await;
    assert_eq!(status, 200, "{body}");
    let stale_before = cache_count(&authority, "stale").await;
    let (status, answer) = publish(&app, &base, &key).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(cache_count(&authority, "stale").await, stale_before + 1.0);
    let (_, body) = app.get(&tenant_path, &admin).await;
    assert_eq!(body["usage"]["retained_events"], 6, "{body}");
    let (status, body) = app
        .patch(
            &format!("/api/v1/tenants/{tenant_id}"),
            &admin,
            json!({"max_retained_events": null}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A deleted type is refused at once.
    let (status, _) = app.delete("/api/v1/event-types/order.paid", &key).await;
    assert_eq!(status, 204);
    let (status, answer) = publish(&app, &base, &key).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["field"], "event_type");
    drop(other);
    app.stop().await;
}
