//! Pause keeps every event, disable does not: a paused endpoint's
//! deliveries are created and held, in order, and go out on resume; a
//! disabled endpoint gets none for events published meanwhile.

use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_tests::{spawn_receiver, wait_until, Reply, TestApp};

/// The `n` in a delivered body's data.
fn sequence(body: &str) -> i64 {
    serde_json::from_str::<Value>(body).expect("JSON body")["data"]["n"]
        .as_i64()
        .expect("data.n")
}

#[tokio::test]
async fn ten_thousand_events_published_during_a_pause_go_out_in_order_on_resume() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("maintenance").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let control = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["user.created"]}),
        )
        .await;
    app.endpoint(
        &key,
        json!({"url": control.url, "events": ["video.processed"]}),
    )
    .await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/webhooks/{id}");

    let (status, paused) = app.patch(&path, &key, json!({"paused": true})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(
        (&paused["status"], &paused["paused"], &paused["active"]),
        (&json!("paused"), &json!(true), &json!(true))
    );

    let mut first_event = String::new();
    for batch in 0..10 {
        let events: Vec<Value> = (0..1000)
            .map(|i| json!({"event_type": "user.created", "data": {"n": batch * 1000 + i}}))
            .collect();
        let (status, answer) = app
            .post("/api/v1/events/batch", &key, json!({ "events": events }))
            .await;
        assert_eq!(status, 202, "{answer}");
        if batch == 0 {
            first_event = answer["results"][0]["id"]
                .as_str()
                .expect("the first event's id")
                .to_string();
        }
    }
    // The workers are busy meanwhile (another endpoint's event arrives),
    // yet nothing reaches the paused endpoint.
    app.publish(&key, "video.processed", json!({})).await;
    control.wait_for(1).await;
    assert_eq!(receiver.count(), 0, "a paused endpoint received deliveries");

    // Every delivery exists and says it is held, with no attempt due.
    let (_, detail) = app
        .get(&format!("/api/v1/events/{first_event}"), &key)
        .await;
    assert_eq!(detail["deliveries"][0]["status"], "held", "{detail}");
    assert!(detail["deliveries"][0].get("next_attempt_at").is_none());
    let (_, held) = app
        .get(&format!("{path}/deliveries?status=held&limit=100"), &key)
        .await;
    assert_eq!(held["data"].as_array().map(Vec::len), Some(100), "{held}");
    let (_, stats) = app.get(&format!("{path}/stats"), &key).await;
    assert_eq!(stats["held"], 10_000, "{stats}");
    assert_eq!(stats["backlog"], 10_000, "{stats}");

    let (status, resumed) = app.patch(&path, &key, json!({"paused": false})).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["status"], "enabled");
    let got = wait_until(Duration::from_secs(120), || async {
        let got = receiver.requests();
        (got.len() >= 10_000).then_some(got)
    })
    .await
    .unwrap_or_else(|| panic!("{} of 10000 arrived after resuming", receiver.count()));
    let order: Vec<i64> = got.iter().map(|r| sequence(&r.body)).collect();
    let mut seen = order.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 10_000, "every event once");
    // Sent in publish order: with up to max_in_flight (32) attempts at
    // once, an arrival is never more than that far from its place.
    for (place, n) in order.iter().enumerate() {
        assert!(
            (place as i64 - n).abs() <= 64,
            "event {n} arrived {place}th: out of publish order"
        );
    }
    let (_, stats) = app.get(&format!("{path}/stats"), &key).await;
    assert_eq!(stats["held"], 0, "{stats}");
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_endpoint_gets_nothing_for_events_published_meanwhile_and_a_paused_one_refuses_test_sends(
) {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("semantics").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["user.created"], "paused": true}),
        )
        .await;
    assert_eq!(endpoint["status"], "paused");
    let id = endpoint["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/webhooks/{id}");

    // Created paused: an event gets a held delivery.
    let kept = app.publish(&key, "user.created", json!({"n": 1})).await;
    assert_eq!(kept["deliveries"], 1, "{kept}");
    let (status, refused) = app.post(&format!("{path}/test"), &key, json!({})).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["message"].as_str().unwrap_or("").contains("paused"));

    // Disabled (while paused): nothing new is queued.
    let (status, disabled) = app.patch(&path, &key, json!({"active": false})).await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["status"], "disabled");
    let dropped = app.publish(&key, "user.created", json!({"n": 2})).await;
    assert_eq!(dropped["deliveries"], 0, "{dropped}");

    // Enabled but still paused: still held.
    let (_, enabled) = app.patch(&path, &key, json!({"active": true})).await;
    assert_eq!(enabled["status"], "paused");
    let (_, detail) = app
        .get(
            &format!("/api/v1/events/{}", kept["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(detail["deliveries"][0]["status"], "held", "{detail}");

    // Resumed: the kept event goes out; the one published while disabled
    // never does.
    app.patch(&path, &key, json!({"paused": false})).await;
    app.wait_for_deliveries(&key, kept["id"].as_str().unwrap(), &["delivered"])
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(sequence(&got[0].body), 1);
    let (_, log) = app.get(&format!("{path}/deliveries"), &key).await;
    assert_eq!(log["data"].as_array().map(Vec::len), Some(1), "{log}");
    app.stop().await;
}
