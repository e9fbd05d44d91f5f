//! Content filters: an endpoint with a CEL `filter` gets only the events
//! its filter holds true for, on the single, batch and fan-out paths; a
//! filter that fails on an event (a missing field) means no match and is
//! counted; a test send bypasses the filter and says what it would have
//! done.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_tests::{spawn_receiver, summed, wait_until, Receiver, Reply, TestApp};

/// A counter from the API's `/metrics` (0 when absent).
async fn counter(app: &TestApp, name: &str) -> f64 {
    summed(app.authority(), name).await
}

/// The `n` of each event a receiver got, sorted.
fn received(receiver: &Receiver) -> Vec<u64> {
    let mut seen: Vec<u64> = receiver
        .requests()
        .iter()
        .filter_map(|r| {
            let body: Value = serde_json::from_str(&r.body).ok()?;
            body["data"]["n"].as_u64()
        })
        .collect();
    seen.sort();
    seen
}

#[tokio::test]
async fn filters_decide_which_endpoints_get_an_event() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let filters = [
        Some(r#"data.confidence >= 0.9 && data.video_id.startsWith("yt_")"#),
        None,
        Some("type == 'user.created'"),
        // Fails on every event below (no such field): never a match.
        Some("data.nope > 1"),
    ];
    let mut receivers = Vec::new();
    let mut ids = Vec::new();
    for filter in filters {
        let receiver = spawn_receiver(Vec::new(), Reply::status(200)).await;
        let mut body = json!({"url": receiver.url, "events": ["*"]});
        if let Some(filter) = filter {
            body["filter"] = json!(filter);
        }
        let endpoint = app.endpoint(&key, body).await;
        ids.push(endpoint["id"].as_str().unwrap_or_default().to_string());
        receivers.push(receiver);
    }
    let errors_before = counter(&app, "hookfleet_filter_errors_total").await;

    // (type, data, which endpoints get it)
    let cases = [
        (
            "user.created",
            json!({"n": 0, "confidence": 0.95, "video_id": "yt_1"}),
            vec![0, 1, 2],
        ),
        (
            "user.created",
            json!({"n": 1, "confidence": 0.5, "video_id": "yt_2"}),
            vec![1, 2],
        ),
        // An integer against a double literal.
        (
            "video.processed",
            json!({"n": 2, "confidence": 1, "video_id": "yt_3"}),
            vec![0, 1],
        ),
        (
            "video.processed",
            json!({"n": 3, "confidence": 0.99, "video_id": "vm_4"}),
            vec![1],
        ),
    ];
    let mut expected: HashMap<usize, Vec<u64>> = HashMap::new();
    for (event_type, data, targets) in &cases {
        let n = data["n"].as_u64().unwrap_or_default();
        let event = app.publish(&key, event_type, data.clone()).await;
        assert_eq!(event["deliveries"], targets.len(), "event {n}: {event}");
        let detail = app
            .wait_for_deliveries(
                &key,
                event["id"].as_str().unwrap_or_default(),
                &["delivered"],
            )
            .await;
        let mut went_to: Vec<String> = detail["deliveries"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| d["webhook_id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        went_to.sort();
        let mut want: Vec<String> = targets.iter().map(|&i| ids[i].clone()).collect();
        want.sort();
        assert_eq!(went_to, want, "event {n}: only the endpoints it passed");
        for &i in targets {
            expected.entry(i).or_default().push(n);
        }
    }
    // The batch route filters each event by its own data.
    let (status, batch) = app
        .post(
            "/api/v1/events/batch",
            &key,
            json!({"events": [
                {"event_type": "user.created", "data": {"n": 4, "confidence": 0.91, "video_id": "yt_5"}},
                {"event_type": "video.processed", "data": {"n": 5, "confidence": 0.1, "video_id": "yt_6"}}
            ]}),
        )
        .await;
    assert!(status == 200 || status == 202, "{batch}");
    assert_eq!(batch["results"][0]["deliveries"], 3, "{batch}");
    assert_eq!(batch["results"][1]["deliveries"], 1, "{batch}");
    expected.entry(0).or_default().push(4);
    for i in [1, 2] {
        expected.entry(i).or_default().push(4);
    }
    expected.entry(1).or_default().push(5);

    for (i, receiver) in receivers.iter().enumerate() {
        let want = expected.get(&i).cloned().unwrap_or_default();
        let got = wait_until(Duration::from_secs(20), || async {
            let got = received(receiver);
            (got.len() >= want.len()).then_some(got)
        })
        .await;
        assert_eq!(got, Some(want.clone()), "endpoint {i}");
    }
    // Six events, each failing the fourth endpoint's filter.
    let errors = counter(&app, "hookfleet_filter_errors_total").await - errors_before;
    assert!(errors >= 6.0, "{errors} filter errors counted");

    // A changed filter applies to the events published after it.
    let (status, changed) = app
        .patch(
            &format!("/api/v1/webhooks/{}", ids[3]),
            &key,
            json!({"filter": null}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let event = app
        .publish(
            &key,
            "job.failed",
            json!({"n": 6, "confidence": 0.0, "video_id": "x"}),
        )
        .await;
    assert_eq!(event["deliveries"], 2, "{event}");
    receivers[3].wait_for(1).await;
    assert_eq!(received(&receivers[3]), vec![6]);
    app.stop().await;
}

#[tokio::test]
async fn a_test_send_bypasses_the_filter_and_says_whether_it_would_have_passed() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(Vec::new(), Reply::status(200)).await;
    let filtered = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["user.created"], "filter": "data.amount > 100"}),
        )
        .await;
    let plain = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["user.created"]}),
        )
        .await;
    let path = |e: &Value| {
        format!(
            "/api/v1/webhooks/{}/test",
            e["id"].as_str().unwrap_or_default()
        )
    };
    for (data, matched) in [
        (json!({"amount": 5}), false),
        (json!({"amount": 500}), true),
    ] {
        let (status, result) = app
            .post(
                &path(&filtered),
                &key,
                json!({"event_type": "user.created", "data": data}),
            )
            .await;
        assert_eq!(status, 200, "{result}");
        assert_eq!(
            result["status"], "delivered",
            "sent whatever the filter says"
        );
        assert_eq!(result["filter_matched"], matched, "{result}");
    }
    // A filter that fails on the event (no `amount`) would not have passed.
    let (_, result) = app.post(&path(&filtered), &key, json!({})).await;
    assert_eq!(result["filter_matched"], false, "{result}");
    let (_, result) = app.post(&path(&plain), &key, json!({})).await;
    assert_eq!(result["status"], "delivered");
    assert!(result.get("filter_matched").is_none(), "{result}");
    assert_eq!(receiver.count(), 4);
    app.stop().await;
}
