//! Replays run by the workers: one outlives the API process that accepted
//! it and the worker that was running it, and queues every delivery of its
//! window exactly once; a running replay can be cancelled.

use std::time::Duration;

use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use serde_json::{json, Value};

use hookfleet_tests::{
    api_binary, free_port, spawn_logged, spawn_receiver, wait_until, worker_binary, worker_env,
    Reply, TestApp,
};

/// Publishes `n` events (batch route) to the tenant of `key`.
async fn publish_many(app: &TestApp, key: &str, n: usize) {
    let mut left = n;
    while left > 0 {
        let count = left.min(200);
        let events: Vec<Value> = (0..count)
            .map(|i| json!({"event_type": "user.created", "data": {"i": n - left + i}}))
            .collect();
        let (status, batch) = app
            .post("/api/v1/events/batch", key, json!({"events": events}))
            .await;
        assert!(status == 202 || status == 200, "{batch}");
        left -= count;
    }
}

/// The endpoint's deliveries, every page.
async fn all_deliveries(app: &TestApp, key: &str, endpoint_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/webhooks/{endpoint_id}/deliveries?limit=250");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = app.get(&path, key).await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return out,
        }
    }
}

/// Waits until the endpoint's 1 h stats count `n` of `outcome`.
async fn wait_for_outcomes(app: &TestApp, key: &str, endpoint_id: &str, outcome: &str, n: u64) {
    let path = format!("/api/v1/webhooks/{endpoint_id}/stats?window=1h&series=false");
    let reached = wait_until(Duration::from_secs(60), || async {
        let (_, stats) = app.get(&path, key).await;
        (stats[outcome].as_u64() >= Some(n)).then_some(())
    })
    .await;
    let (_, stats) = app.get(&path, key).await;
    assert!(reached.is_some(), "{n} {outcome} expected: {stats}");
}

#[tokio::test]
async fn a_replay_outlives_its_api_and_its_worker_and_queues_each_delivery_once() {
    // No worker in this process: workers are processes of their own.
    let app = TestApp::builder()
        .request_timeout("2s")
        .lease("8s")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let total = 600;
    // Each delivery fails at once (400), then the receiver is healthy.
    let receiver = spawn_receiver(vec![Reply::status(400); total], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let id = endpoint["id"].as_str().unwrap_or_default().to_string();
    let since = rfc3339_ms(now_ms() - 1000);
    publish_many(&app, &key, total).await;
    let env = worker_env(
        &app.config,
        &[
            ("HOOKFLEET_REQUEST_TIMEOUT", "2s"),
            ("HOOKFLEET_LEASE", "8s"),
            // 100 log entries a second: the replay takes six seconds.
            ("HOOKFLEET_REPLAY_RATE", "100"),
        ],
    );
    let mut first_worker = spawn_logged(worker_binary(), &env);
    wait_for_outcomes(&app, &key, &id, "failed", total as u64).await;

    // An API process of its own accepts the replay.
    let port = free_port();
    let mut api_env = env.clone();
    api_env.push(("HOOKFLEET_LISTEN", format!("127.0.0.1:{port}")));
    api_env.push(("HOOKFLEET_ADMIN_KEY", app.admin_key()));
    api_env.push(("HOOKFLEET_API_RATE_LIMIT", "10000".into()));
    let mut api = spawn_logged(api_binary(), &api_env);
    let base = format!("http://127.0.0.1:{port}");
    let ready = wait_until(Duration::from_secs(20), || async {
        let response = app.http.get(format!("{base}/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the API process started: {}", api.log());
    let response = app
        .http
        .post(format!("{base}/api/v1/webhooks/{id}/replay"))
        .bearer_auth(&key)
        .json(&json!({"since": since, "filter": "all"}))
        .send()
        .await
        .expect("replay request");
    assert_eq!(response.status(), 202);
    let replay: Value = response.json().await.unwrap_or(Value::Null);
    let replay_id = replay["id"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/webhooks/{id}/replay/{replay_id}");

    // Once it is under way, the API that accepted it and the worker that
    // runs it die.
    let started = wait_until(Duration::from_secs(20), || async {
        let (_, replay) = app.get(&path, &key).await;
        (replay["scanned"].as_u64() >= Some(100)).then_some(replay)
    })
    .await
    .expect("the replay started");
    for child in [&mut api.child, &mut first_worker.child] {
        let killed = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(killed.success());
        let _ = child.wait();
    }
    let (_, at_kill) = app.get(&path, &key).await;
    assert_eq!(at_kill["status"], "running", "{at_kill}");
    assert!(
        at_kill["scanned"].as_u64() < Some(total as u64),
        "killed mid-way: {started} {at_kill}"
    );

    // A new worker takes it over once the dead one's lease expires, and
    // goes on from its cursor.
    let _second_worker = spawn_logged(worker_binary(), &env);
    let done = wait_until(Duration::from_secs(60), || async {
        let (_, replay) = app.get(&path, &key).await;
        (replay["status"] == "completed").then_some(replay)
    })
    .await
    .expect("the replay completes");
    assert_eq!(done["scanned"], total, "{done}");
    assert_eq!(done["queued"], total, "{done}");
    wait_for_outcomes(&app, &key, &id, "delivered", total as u64).await;
    // Exactly once: each delivery has its first attempt and one more. (A
    // delivery queued twice would have been attempted a third time: the
    // filter `all` queues delivered ones too.)
    let deliveries = all_deliveries(&app, &key, &id).await;
    assert_eq!(deliveries.len(), total);
    for delivery in &deliveries {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 2, "{delivery}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_running_replay_is_cancelled_and_queues_nothing_more() {
    let app = TestApp::builder()
        .env("HOOKFLEET_REPLAY_RATE", "40")
        .with_worker()
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let total = 200;
    let receiver = spawn_receiver(vec![Reply::status(400); total], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let id = endpoint["id"].as_str().unwrap_or_default().to_string();
    let since = rfc3339_ms(now_ms() - 1000);
    publish_many(&app, &key, total).await;
    wait_for_outcomes(&app, &key, &id, "failed", total as u64).await;
    let start = format!("/api/v1/webhooks/{id}/replay");
    let (status, replay) = app.post(&start, &key, json!({"since": since})).await;
    assert_eq!(status, 202, "{replay}");
    let path = format!("{start}/{}", replay["id"].as_str().unwrap_or_default());
    wait_until(Duration::from_secs(20), || async {
        let (_, replay) = app.get(&path, &key).await;
        (replay["scanned"].as_u64() >= Some(40)).then_some(())
    })
    .await
    .expect("the replay started");

    let (status, cancelled) = app.delete(&path, &key).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["finished_at"].is_string(), "{cancelled}");
    let queued = cancelled["queued"].as_u64().unwrap_or(0);
    assert!(queued < total as u64, "{cancelled}");
    let (status, again) = app.delete(&path, &key).await;
    assert_eq!(status, 409, "{again}");
    let (status, _) = app
        .delete(&format!("{start}/rpl_0000000000000000000000zz"), &key)
        .await;
    assert_eq!(status, 404);

    // The webhook may have another replay at once; it queues the failed
    // ones the cancelled one did not reach, and the cancelled one's
    // figures stay as they were.
    let (status, next) = app.post(&start, &key, json!({"since": since})).await;
    assert_eq!(status, 202, "{next}");
    let next_path = format!("{start}/{}", next["id"].as_str().unwrap_or_default());
    let done = wait_until(Duration::from_secs(30), || async {
        let (_, replay) = app.get(&next_path, &key).await;
        (replay["status"] == "completed").then_some(replay)
    })
    .await
    .expect("the second replay completes");
    let (_, after) = app.get(&path, &key).await;
    assert_eq!(after, cancelled, "the cancelled replay did nothing more");
    assert_eq!(
        queued + done["queued"].as_u64().unwrap_or(0),
        total as u64,
        "{cancelled} {done}"
    );
    wait_for_outcomes(&app, &key, &id, "delivered", total as u64).await;
    app.stop().await;
}
