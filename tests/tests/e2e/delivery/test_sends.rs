//! Invariant 9 for test sends: a test send waits for its attempt without
//! polling Redis (one subscription per API process carries every notice),
//! and a tenant may have only `HOOKFLEET_TEST_SEND_MAX_PENDING` waiting.

use std::time::{Duration, Instant};

use serde_json::json;

use hookfleet_tests::{endpoint_partition, spawn_receiver, wait_until, OwnRedis, Reply, TestApp};

/// Redis's `total_commands_processed`.
async fn commands_processed(app: &TestApp) -> u64 {
    let mut conn = app.redis().await;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .expect("INFO stats");
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("total_commands_processed in INFO")
}

/// Commands per second Redis processes over `window`.
async fn commands_per_second(app: &TestApp, window: Duration) -> f64 {
    let before = commands_processed(app).await;
    tokio::time::sleep(window).await;
    let after = commands_processed(app).await;
    after.saturating_sub(before) as f64 / window.as_secs_f64()
}

#[tokio::test]
async fn two_hundred_test_sends_waiting_on_a_hanging_receiver_cost_redis_nothing_per_wait() {
    // A private Redis: the measurement must see this test's commands only.
    let redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::builder()
        .with_worker()
        .redis_url(url.as_str())
        .test_send_max_pending(200)
        .poll_interval("1s")
        .spawn()
        .await;
    let (tenant_id, key) = app.tenant("tester").await;
    let hanging = spawn_receiver(
        vec![],
        Reply::status(200).with_delay(Duration::from_secs(3600)),
    )
    .await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": hanging.url, "events": ["*"], "timeout_s": 5}),
        )
        .await;
    let id = endpoint["id"].as_str().unwrap().to_string();

    let idle = commands_per_second(&app, Duration::from_secs(2)).await;

    let started = Instant::now();
    let sends: Vec<_> = (0..200)
        .map(|_| {
            let http = app.http.clone();
            let url = app.url(&format!("/api/v1/webhooks/{id}/test"));
            let key = key.clone();
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("test send");
                response.status().as_u16()
            })
        })
        .collect();
    // Every request is waiting (its place taken, its event published)
    // before measuring.
    let places = app.keys().tenant_test_sends(&tenant_id);
    let log = app.keys().endpoint_deliveries(endpoint_partition(&id), &id);
    let all_waiting = wait_until(Duration::from_secs(5), || async {
        (app.zcard(&places).await == 200 && app.zcard(&log).await == 200).then_some(())
    })
    .await;
    assert!(all_waiting.is_some(), "200 test sends should be waiting");
    hanging.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = commands_per_second(&app, Duration::from_secs(2)).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the measurement ran past the test sends' wait"
    );
    eprintln!("Redis commands/s: idle {idle:.0}, 200 test sends waiting {waiting:.0}");
    // Polling every 20 ms made ~350 commands/s per waiting request (about
    // 70,000/s for 200); waiting costs nothing per request now.
    assert!(
        waiting <= idle * 2.0 + 100.0,
        "{waiting:.0} commands/s with 200 test sends waiting, {idle:.0} idle"
    );
    // The attempted ones (at most max_in_flight at once) time out and are
    // answered failed (200); the rest are not attempted within the wait and
    // are answered pending (202).
    let mut answered = [0; 2];
    for send in sends {
        match send.await.expect("join") {
            200 => answered[0] += 1,
            202 => answered[1] += 1,
            other => panic!("a test send got {other}"),
        }
    }
    assert!(answered[0] <= 32 && answered[1] >= 168, "{answered:?}");
    app.stop().await;
    drop(redis);
}

#[tokio::test]
async fn a_tenant_gets_429_past_its_waiting_test_sends_and_nothing_is_written() {
    let app = TestApp::builder()
        .with_worker()
        .test_send_max_pending(3)
        .spawn()
        .await;
    let (tenant_id, key) = app.tenant("eager").await;
    let (_, other_key) = app.tenant("other").await;
    let slow = spawn_receiver(
        vec![],
        Reply::status(200).with_delay(Duration::from_millis(1500)),
    )
    .await;
    let endpoint = app
        .endpoint(&key, json!({"url": slow.url, "events": ["*"]}))
        .await;
    let id = endpoint["id"].as_str().unwrap().to_string();
    let other = app
        .endpoint(&other_key, json!({"url": slow.url, "events": ["*"]}))
        .await;
    let other_id = other["id"].as_str().unwrap().to_string();

    let path = format!("/api/v1/webhooks/{id}/test");
    let first: Vec<_> = (0..3)
        .map(|_| {
            let http = app.http.clone();
            let url = app.url(&path);
            let key = key.clone();
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(key)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("test send")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // The three hold every place while their attempts take 1.5 s.
    let places = app.keys().tenant_test_sends(&tenant_id);
    let held = wait_until(Duration::from_secs(5), || async {
        (app.zcard(&places).await == 3).then_some(())
    })
    .await;
    assert!(held.is_some(), "three test sends should be waiting");
    let log = app.keys().endpoint_deliveries(endpoint_partition(&id), &id);
    let response = app
        .http
        .post(app.url(&path))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .expect("fourth test send");
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=35).contains(&retry_after), "Retry-After {retry_after}");
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert_eq!(body["code"], "too_many_test_sends", "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains('3'),
        "{body}"
    );
    // Refused before anything was written: no fourth event, no place.
    assert_eq!(
        app.zcard(&log).await,
        3,
        "a refused test send publishes nothing"
    );
    assert_eq!(app.zcard(&places).await, 3);
    // Another tenant's places are its own.
    let (status, answer) = app
        .post(
            &format!("/api/v1/webhooks/{other_id}/test"),
            &other_key,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");

    for send in first {
        assert_eq!(send.await.expect("join"), 200);
    }
    // Each gave its place back: the next ones go through.
    assert_eq!(app.zcard(&places).await, 0);
    let (status, answer) = app.post(&path, &key, json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "delivered");
    app.stop().await;
}
