//! A request never holds one pooled Redis connection while waiting for
//! another: with a pool of one connection, every operation still answers
//! (a nested acquisition would wait for itself and end in a 503).

use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use serde_json::json;

use hookfleet_tests::{spawn_receiver, Reply, TenantWithEndpoint, TestApp};

#[tokio::test]
async fn every_operation_works_with_a_single_connection() {
    let app = TestApp::builder().with_worker().redis_pool(1).spawn().await;
    let receiver = spawn_receiver(vec![Reply::status(500)], Reply::status(200)).await;
    let TenantWithEndpoint {
        tenant_id,
        key,
        endpoint_id: id,
        ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "one")
        .json(&json!({"event_type": "user.created", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let event: serde_json::Value = response.json().await.unwrap();
    let event_id = event["id"].as_str().unwrap();
    let detail = app
        .wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap();
    let admin = app.admin_key();
    let since = rfc3339_ms(now_ms() - 60_000);
    let checks: Vec<(&str, String, Option<serde_json::Value>, &str)> = vec![
        ("GET", format!("/api/v1/events/{event_id}"), None, &key),
        (
            "GET",
            format!("/api/v1/deliveries/{delivery_id}"),
            None,
            &key,
        ),
        (
            "GET",
            "/api/v1/deliveries?status=delivered".into(),
            None,
            &key,
        ),
        (
            "GET",
            format!("/api/v1/webhooks/{id}/deliveries"),
            None,
            &key,
        ),
        ("GET", format!("/api/v1/webhooks/{id}/stats"), None, &key),
        ("GET", "/api/v1/webhooks".into(), None, &key),
        ("GET", "/api/v1/webhooks/events".into(), None, &key),
        (
            "PATCH",
            format!("/api/v1/webhooks/{id}"),
            Some(json!({"description": "d"})),
            &key,
        ),
        (
            "POST",
            format!("/api/v1/deliveries/{delivery_id}/retry"),
            Some(json!({})),
            &key,
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{id}/replay"),
            Some(json!({"since": since})),
            &key,
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{id}/test"),
            Some(json!({})),
            &key,
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{id}/secret/rotate"),
            Some(json!({})),
            &key,
        ),
        (
            "GET",
            format!("/api/v1/tenants/{tenant_id}/api-keys"),
            None,
            &admin,
        ),
        ("GET", "/api/v1/admin/workers".into(), None, &admin),
    ];
    for (method, path, body, auth) in checks {
        let (status, answer) = match (method, body) {
            ("GET", _) => app.get(&path, auth).await,
            ("PATCH", Some(body)) => app.patch(&path, auth, body).await,
            (_, Some(body)) => app.post(&path, auth, body).await,
            _ => unreachable!(),
        };
        assert!(status < 300, "{method} {path}: {status} {answer}");
    }
    app.stop().await;
}
