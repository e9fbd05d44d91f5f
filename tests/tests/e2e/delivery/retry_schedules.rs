//! A retry schedule per endpoint: it replaces the server's (attempts, and
//! the delay before the first), and `null` returns to the server's.

use std::time::{Duration, Instant};

use serde_json::json;

use hookfleet_tests::{spawn_receiver, wait_until, Reply, TestApp};

#[tokio::test]
async fn an_endpoints_own_schedule_replaces_the_servers() {
    // The server's schedule (the tests' default) makes three attempts.
    let mut app = TestApp::builder()
        .retry_schedule("0s,50ms,100ms")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let own = spawn_receiver(Vec::new(), Reply::status(500)).await;
    let servers = spawn_receiver(Vec::new(), Reply::status(500)).await;
    let own_endpoint = app
        .endpoint(
            &key,
            json!({"url": own.url, "events": ["*"],
                   "retry_schedule": ["400ms", "50ms", "50ms", "50ms", "50ms"]}),
        )
        .await;
    app.endpoint(&key, json!({"url": servers.url, "events": ["*"]}))
        .await;
    app.start_worker();
    let published_at = Instant::now();
    let event = app.publish(&key, "user.created", json!({"n": 1})).await;
    let event_id = event["id"].as_str().unwrap_or_default();
    let detail = app.wait_for_deliveries(&key, event_id, &["failed"]).await;
    let attempts: Vec<u64> = detail["deliveries"]
        .as_array()
        .map(|ds| ds.iter().filter_map(|d| d["attempts"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(own.count(), 5, "five attempts on the endpoint's schedule");
    assert_eq!(servers.count(), 3, "three on the server's");
    let mut sorted = attempts.clone();
    sorted.sort();
    assert_eq!(sorted, vec![3, 5], "{detail}");
    // The first entry delays the first attempt (a lower bound only).
    let first = own.requests()[0].at;
    assert!(
        first.duration_since(published_at) >= Duration::from_millis(400),
        "the first attempt waited its 400 ms"
    );

    // Back to the server's schedule: three attempts again.
    let path = format!(
        "/api/v1/webhooks/{}",
        own_endpoint["id"].as_str().unwrap_or_default()
    );
    let (status, changed) = app
        .patch(&path, &key, json!({"retry_schedule": null}))
        .await;
    assert_eq!(status, 200, "{changed}");
    let event = app.publish(&key, "user.created", json!({"n": 2})).await;
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap_or_default(), &["failed"])
        .await;
    let total = wait_until(Duration::from_secs(10), || async {
        (own.count() >= 8).then_some(own.count())
    })
    .await;
    assert_eq!(total, Some(8), "5 + 3 attempts");
    app.stop().await;
}

#[tokio::test]
async fn a_schedule_change_applies_to_the_next_failure_of_waiting_deliveries() {
    let mut app = TestApp::builder()
        .retry_schedule("0s,50ms,100ms")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(Vec::new(), Reply::status(500)).await;
    // A long second entry: the delivery waits for its retry.
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["*"], "retry_schedule": ["0s", "3s", "1h"]}),
        )
        .await;
    app.start_worker();
    let event = app.publish(&key, "user.created", json!({"n": 1})).await;
    let event_id = event["id"].as_str().unwrap_or_default();
    app.wait_for_deliveries(&key, event_id, &["scheduled"])
        .await;
    // Now two attempts in all: the waiting retry keeps its time (3 s) and
    // fails for good when it fails, instead of waiting an hour.
    let path = format!(
        "/api/v1/webhooks/{}",
        endpoint["id"].as_str().unwrap_or_default()
    );
    let (status, _) = app
        .patch(&path, &key, json!({"retry_schedule": ["0s", "3s"]}))
        .await;
    assert_eq!(status, 200);
    let detail = app.wait_for_deliveries(&key, event_id, &["failed"]).await;
    assert_eq!(detail["deliveries"][0]["attempts"], 2, "{detail}");
    assert_eq!(receiver.count(), 2);
    app.stop().await;
}
