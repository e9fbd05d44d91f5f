//! Publish → receipt, end to end: the real API, a real worker, real Redis
//! and a real HTTP receiver.

use std::time::Duration;

use hookfleet_common::ids;
use hookfleet_common::signing::{verify, SigningSecret};
use hookfleet_common::stats;
use hookfleet_common::time_util::parse_rfc3339_ms;
use serde_json::{json, Value};

use hookfleet_tests::{
    claim_settings, endpoint_partition, python_accepts, spawn_receiver, wait_until, Received,
    Reply, TenantWithEndpoint, TestApp,
};

#[tokio::test]
async fn a_published_event_arrives_signed_with_exact_body_and_headers() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["user.created"], "headers": {"X-Team": "blue"}}),
        )
        .await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));

    let data =
        json!({"user_id": "u_1", "email": "ada@example.com", "nested": {"z": 1, "a": [1, 2]}});
    let event = app.publish(&key, "user.created", data.clone()).await;
    assert_eq!(event["deliveries"], 1);
    let event_id = event["id"].as_str().unwrap().to_string();

    let got = receiver.wait_for(1).await;
    let request = &got[0];
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["type"], "user.created");
    assert_eq!(body["data"], data);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "type", "timestamp", "data"]);
    assert!(
        hookfleet_common::time_util::parse_rfc3339_ms(body["timestamp"].as_str().unwrap())
            .is_some()
    );

    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some(concat!("Hookfleet/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(request.header("webhook-id"), Some(event_id.as_str()));
    assert_eq!(request.header("x-team"), Some("blue"));
    let timestamp: u64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let now = hookfleet_common::time_util::now_ms() / 1000;
    assert!(timestamp <= now && now - timestamp < 60);
    let signature = request.header("webhook-signature").unwrap();
    assert!(signature.starts_with("v1,"));
    let parsed = SigningSecret::parse(&secret).unwrap();
    assert!(verify(
        &parsed,
        &event_id,
        timestamp,
        request.body.as_bytes(),
        signature
    ));

    // The independent reference verifier (the `standardwebhooks` package).
    python_verify(&secret, request, true);
    let mut tampered = request.clone();
    tampered.body = tampered.body.replace("ada@", "eve@");
    python_verify(&secret, &tampered, false);

    let detail = app
        .wait_for_deliveries(&key, &event_id, &["delivered"])
        .await;
    assert_eq!(detail["deliveries"][0]["attempts"], 1);
    assert_eq!(detail["deliveries"][0]["last_status_code"], 200);
    assert_eq!(detail["data"], data);
    app.stop().await;
}

/// Runs the `standardwebhooks` PyPI package's verifier on a received request.
fn python_verify(secret: &str, request: &Received, expect_valid: bool) {
    assert_eq!(
        python_accepts(secret, request),
        expect_valid,
        "the reference verifier disagrees"
    );
}

#[tokio::test]
async fn retries_until_success_with_the_same_webhook_id() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(
        vec![
            Reply::status(500),
            Reply::status(500).with_body("still broken"),
        ],
        Reply::status(200),
    )
    .await;
    let TenantWithEndpoint { key, endpoint, .. } =
        app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let event = app.publish(&key, "job.failed", json!({"job": 1})).await;
    let event_id = event["id"].as_str().unwrap();

    let detail = app
        .wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    let got = receiver.requests();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.header("webhook-id") == Some(event_id)));
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every attempt sends the same body"
    );
    assert_eq!(detail["deliveries"][0]["attempts"], 3);

    let (_, stats) = app
        .get(
            &format!(
                "/api/v1/webhooks/{}/stats",
                endpoint["id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    assert_eq!(stats["attempts"], 3);
    assert_eq!(stats["attempts_failed"], 2);
    assert_eq!(stats["attempts_succeeded"], 1);
    assert_eq!(stats["delivered"], 1);
    assert_eq!(stats["backlog"], 0);
    assert_eq!(stats["last_success"]["status_code"], 200);
    assert_eq!(stats["last_failure"]["status_code"], 500);
    // The series, for charts: its buckets hold the same attempts, in the
    // bucket of now, and cover the window oldest first.
    for (window, bucket_s) in [("1h", 300u64), ("24h", 300), ("7d", 3600)] {
        let (status, stats) = app
            .get(
                &format!(
                    "/api/v1/webhooks/{}/stats?window={window}",
                    endpoint["id"].as_str().unwrap()
                ),
                &key,
            )
            .await;
        assert_eq!(status, 200, "{stats}");
        let series = stats["series"].as_array().expect("series");
        let sum = |field: &str| {
            series
                .iter()
                .map(|b| b[field].as_u64().unwrap())
                .sum::<u64>()
        };
        assert_eq!(sum("attempts"), 3, "{window}");
        assert_eq!(sum("succeeded"), 1, "{window}");
        assert_eq!(sum("failed"), 2, "{window}");
        let starts: Vec<u64> = series
            .iter()
            .map(|b| parse_rfc3339_ms(b["start"].as_str().unwrap()).unwrap())
            .collect();
        assert!(
            starts.windows(2).all(|w| w[1] - w[0] == bucket_s * 1000),
            "{window}"
        );
        let busy: Vec<&Value> = series
            .iter()
            .filter(|b| b["attempts"].as_u64() > Some(0))
            .collect();
        assert!(busy.iter().all(|b| b["p50"].is_u64() && b["p99"].is_u64()));
        assert!(series
            .iter()
            .filter(|b| b["attempts"] == 0)
            .all(|b| b.get("p50").is_none()));
    }
    // A listing asks for the totals only.
    let (_, totals) = app
        .get(
            &format!(
                "/api/v1/webhooks/{}/stats?series=false",
                endpoint["id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    assert_eq!(totals["attempts"], 3);
    assert!(totals.get("series").is_none(), "{totals}");
    // Each bucket the attempts wrote expires: no later than the time it
    // is kept after its last write.
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let p = endpoint_partition(endpoint_id);
    for (kept, bucket_key) in [
        (stats::FINE_TTL_MS, app.keys().stats_fine(p, endpoint_id, 0)),
        (
            stats::COARSE_TTL_MS,
            app.keys().stats_coarse(p, endpoint_id, 0),
        ),
    ] {
        // (The key of the bucket starting at 0, without that 0: every
        // start of this endpoint's buckets of that size.)
        let prefix = bucket_key
            .strip_suffix('0')
            .expect("a key ending in its start");
        let pattern = format!("{prefix}*");
        let buckets: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut app.redis().await)
            .await
            .expect("KEYS");
        assert!(!buckets.is_empty(), "no bucket matches {pattern}");
        for bucket in buckets {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&bucket)
                .query_async(&mut app.redis().await)
                .await
                .expect("PTTL");
            assert!(ttl > 0 && ttl <= kept as i64, "{bucket}: {ttl} ms");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_4xx_fails_at_once_and_an_exhausted_schedule_fails() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let rejecting = spawn_receiver(vec![], Reply::status(400)).await;
    let broken = spawn_receiver(vec![], Reply::status(503)).await;
    app.endpoint(
        &key,
        json!({"url": rejecting.url, "events": ["user.created"]}),
    )
    .await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let detail = app
        .wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["failed"])
        .await;
    assert_eq!(detail["deliveries"][0]["attempts"], 1);
    assert_eq!(detail["deliveries"][0]["last_status_code"], 400);
    assert_eq!(rejecting.count(), 1);

    app.endpoint(
        &key,
        json!({"url": broken.url, "events": ["video.processed"]}),
    )
    .await;
    let event = app.publish(&key, "video.processed", json!({})).await;
    let detail = app
        .wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["failed"])
        .await;
    // The test schedule has three entries: three attempts, then failed.
    assert_eq!(detail["deliveries"][0]["attempts"], 3);
    assert_eq!(broken.count(), 3);
    app.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(
        vec![Reply::status(429).with_header("retry-after", "1")],
        Reply::status(200),
    )
    .await;
    let TenantWithEndpoint { key, .. } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let event = app.publish(&key, "user.created", json!({})).await;
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;
    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    let gap = got[1].at - got[0].at;
    // The schedule alone would retry after ~50 ms; Retry-After says 1 s.
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    app.stop().await;
}

#[tokio::test]
async fn wildcards_match_and_inactive_endpoints_get_nothing() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let all = spawn_receiver(vec![], Reply::status(200)).await;
    let videos = spawn_receiver(vec![], Reply::status(200)).await;
    let users = spawn_receiver(vec![], Reply::status(200)).await;
    let inactive = spawn_receiver(vec![], Reply::status(200)).await;
    app.endpoint(&key, json!({"url": all.url, "events": ["*"]}))
        .await;
    app.endpoint(&key, json!({"url": videos.url, "events": ["video.*"]}))
        .await;
    app.endpoint(&key, json!({"url": users.url, "events": ["user.created"]}))
        .await;
    app.endpoint(
        &key,
        json!({"url": inactive.url, "events": ["*"], "active": false}),
    )
    .await;

    let video = app.publish(&key, "video.processed", json!({"v": 1})).await;
    assert_eq!(video["deliveries"], 2);
    let user = app.publish(&key, "user.created", json!({"u": 1})).await;
    assert_eq!(user["deliveries"], 2);
    let job = app.publish(&key, "job.failed", json!({"j": 1})).await;
    assert_eq!(job["deliveries"], 1);
    for event in [&video, &user, &job] {
        app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
            .await;
    }
    assert_eq!(all.count(), 3);
    assert_eq!(videos.count(), 1);
    assert_eq!(users.count(), 1);
    assert_eq!(inactive.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_event_and_creates_nothing() {
    let app = TestApp::builder().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { key, .. } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let send = || async {
        let response = app
            .http
            .post(app.url("/api/v1/events"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "order-42")
            .json(&json!({"event_type": "user.created", "data": {"n": 1}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json::<Value>().await.unwrap()
    };
    let first = send().await;
    let before = app.snapshot().await;
    let second = send().await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["deliveries"], 1);
    assert_eq!(first["duplicate"], false);
    assert_eq!(
        second["duplicate"], true,
        "a repeat says so, as the batch route does"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a repeated key writes nothing"
    );

    // Another tenant's identical key is its own.
    let (_, other) = app.tenant("other").await;
    app.endpoint(&other, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&other)
        .header("Idempotency-Key", "order-42")
        .json(&json!({"event_type": "user.created", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    let third: Value = response.json().await.unwrap();
    assert_ne!(third["id"], first["id"]);
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_endpoint_cancels_its_pending_deliveries() {
    // Retries an hour apart: the second attempt is pending when we delete.
    let app = TestApp::builder()
        .with_worker()
        .retry_schedule("0s,1h")
        .spawn()
        .await;
    let receiver = spawn_receiver(vec![], Reply::status(500)).await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let event_id = event["id"].as_str().unwrap();
    let scheduled = app
        .wait_for_deliveries(&key, event_id, &["scheduled"])
        .await;
    assert!(scheduled["deliveries"][0]["next_attempt_at"].is_string());

    let (status, _) = app
        .delete(&format!("/api/v1/webhooks/{endpoint_id}"), &key)
        .await;
    assert_eq!(status, 204);
    let detail = app
        .wait_for_deliveries(&key, event_id, &["cancelled"])
        .await;
    assert_eq!(detail["deliveries"][0]["attempts"], 1);
    let (status, _) = app
        .get(&format!("/api/v1/webhooks/{endpoint_id}"), &key)
        .await;
    assert_eq!(status, 404);
    let p = endpoint_partition(&endpoint_id);
    let keys = app.keys();
    assert_eq!(app.zcard(&keys.endpoint_due(p, &endpoint_id)).await, 0);
    assert_eq!(app.zscore(&keys.ready(p), &endpoint_id).await, None);
    assert_eq!(app.queued_total().await, 0, "nothing is counted as waiting");
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_endpoint_holds_deliveries_until_enabled_again() {
    let app = TestApp::builder().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { key, endpoint, .. } =
        app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let path = format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap());
    // Queued while active, then disabled before any worker runs.
    let event = app.publish(&key, "user.created", json!({})).await;
    let (status, _) = app.patch(&path, &key, json!({"active": false})).await;
    assert_eq!(status, 200);
    let mut app = app;
    app.start_worker();
    // The worker claims the partition, sees the endpoint disabled and takes
    // it out of the ready set: its delivery is held where it is.
    let keys = app.keys();
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let p = endpoint_partition(endpoint_id);
    let ready = keys.ready(p);
    assert!(app.zscore(&ready, endpoint_id).await.is_some());
    wait_until(Duration::from_secs(10), || async {
        app.zscore(&ready, endpoint_id)
            .await
            .is_none()
            .then_some(())
    })
    .await
    .expect("the delivery is held");
    assert_eq!(receiver.count(), 0);
    assert_eq!(app.queued_total().await, 1, "still waiting");
    let (status, _) = app.patch(&path, &key, json!({"active": true})).await;
    assert_eq!(status, 200);
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(app.queued_total().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_test_send_reaches_only_that_endpoint() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let target = spawn_receiver(vec![], Reply::status(200)).await;
    let bystander = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": target.url, "events": ["user.created"]}))
        .await;
    app.endpoint(&key, json!({"url": bystander.url, "events": ["*"]}))
        .await;
    let (status, sent) = app
        .post(
            &format!("/api/v1/webhooks/{}/test", endpoint["id"].as_str().unwrap()),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["status"], "delivered");
    assert_eq!(sent["attempt"]["status_code"], 200);
    assert_eq!(sent["attempt"]["test"], true);
    let got = target.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["data"], json!({"test": true}));
    assert_eq!(got[0].header("webhook-id"), sent["event_id"].as_str());
    app.wait_for_deliveries(&key, sent["event_id"].as_str().unwrap(), &["delivered"])
        .await;
    assert_eq!(bystander.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn an_endpoints_own_timeout_and_the_initial_delay_apply() {
    let app = TestApp::builder()
        .with_worker()
        .retry_schedule("300ms,50ms")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let slow = spawn_receiver(
        vec![Reply::status(200).with_delay(Duration::from_secs(3))],
        Reply::status(200),
    )
    .await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": slow.url, "events": ["*"], "timeout_s": 1}),
        )
        .await;
    let started = std::time::Instant::now();
    let event = app.publish(&key, "user.created", json!({})).await;
    let first = slow.wait_for(1).await;
    assert!(
        first[0].at - started >= Duration::from_millis(280),
        "the first attempt waited for the initial delay"
    );
    let detail = app
        .wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;
    assert_eq!(detail["deliveries"][0]["attempts"], 2);
    let attempts = app.attempts(endpoint["id"].as_str().unwrap()).await;
    assert!(
        attempts[0]["error"].starts_with("timeout"),
        "{:?}",
        attempts[0]
    );
    let duration: u64 = attempts[0]["duration_ms"].parse().unwrap();
    assert!(
        (900..2900).contains(&duration),
        "timed out after {duration} ms"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_workers_outbound_cap_spaces_its_attempts() {
    // 10 attempts per second for this worker, across all endpoints.
    let app = TestApp::builder()
        .with_worker()
        .worker_max_rate(10)
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let first = spawn_receiver(vec![], Reply::status(200)).await;
    let second = spawn_receiver(vec![], Reply::status(200)).await;
    app.endpoint(&key, json!({"url": first.url, "events": ["user.created"]}))
        .await;
    app.endpoint(
        &key,
        json!({"url": second.url, "events": ["video.processed"]}),
    )
    .await;
    for n in 0..15 {
        app.publish(&key, "user.created", json!({"n": n})).await;
        app.publish(&key, "video.processed", json!({"n": n})).await;
    }
    let mut times: Vec<std::time::Instant> =
        first.wait_for(15).await.iter().map(|r| r.at).collect();
    times.extend(second.wait_for(15).await.iter().map(|r| r.at));
    times.sort();
    // 30 attempts at 10/s (bursts of 10): at least two seconds end to end.
    let span = times[times.len() - 1] - times[0];
    assert!(
        span >= Duration::from_millis(1800),
        "30 attempts took {span:?}"
    );
    app.stop().await;
}

/// Queues `n` events for `key`'s endpoints (batches of 1000, no worker
/// needed) and returns the endpoint's partition.
async fn queue_events(app: &TestApp, key: &str, n: usize) {
    let mut left = n;
    while left > 0 {
        let batch = left.min(1000);
        let events: Vec<Value> = (0..batch)
            .map(|i| json!({"event_type": "user.created", "data": {"n": i}}))
            .collect();
        let (status, answer) = app
            .post("/api/v1/events/batch", key, json!({ "events": events }))
            .await;
        assert_eq!(status, 202, "{answer}");
        left -= batch;
    }
}

/// Holding and releasing do not touch deliveries one by one: a disabled
/// endpoint leaves its partition's ready set and its deliveries stay where
/// they are, re-enabling it puts it back (one ZADD however many are held,
/// where a hold of millions once blocked Redis for seconds), and every one
/// of them is delivered once.
#[tokio::test]
async fn re_enabling_releases_a_large_hold_at_once() {
    const EVENTS: usize = 1500;
    let mut app = TestApp::builder().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let path = format!("/api/v1/webhooks/{endpoint_id}");
    let p = endpoint_partition(&endpoint_id);
    let keys = app.keys();
    queue_events(&app, &key, EVENTS).await;
    let (status, _) = app.patch(&path, &key, json!({"active": false})).await;
    assert_eq!(status, 200);
    // A claim (as a worker's) holds them all: the endpoint leaves the
    // ready set, nothing is handed out, nothing moves.
    let pool = app.redis_pool();
    let log = keys.endpoint_deliveries(p, &endpoint_id);
    let before = app.snapshot().await;
    let claimed = hookfleet_worker::claim::claim(
        &pool,
        &keys,
        p,
        500,
        claim_settings(60_000),
        &hookfleet_worker::claim::TenantSlots::unlimited(),
    )
    .await
    .unwrap();
    assert!(claimed.jobs.is_empty());
    assert_eq!(
        app.changed_since(&before).await,
        vec![keys.ready(p)],
        "only the ready set changed"
    );
    assert_eq!(app.zcard(&log).await, EVENTS as u64);
    assert_eq!(app.queued_total().await, EVENTS as i64);

    let (status, _) = app.patch(&path, &key, json!({"active": true})).await;
    assert_eq!(status, 200);
    assert!(app.zscore(&keys.ready(p), &endpoint_id).await.is_some());

    app.start_worker();
    let got = receiver.wait_for(EVENTS).await;
    let ids: std::collections::HashSet<&str> =
        got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), EVENTS);
    let done = wait_until(Duration::from_secs(10), || async {
        let queued = app.queued_total().await + app.zcard(&keys.inflight(p)).await as i64;
        (queued == 0).then_some(())
    })
    .await;
    assert!(done.is_some(), "nothing left waiting");
    assert_eq!(receiver.count(), EVENTS, "none sent twice");
    app.stop().await;
}

/// Deleting an endpoint with a large backlog is constant work: the
/// endpoint leaves the ready set and its waiting deliveries are no longer
/// counted, each of them reads as cancelled, and none is sent.
#[tokio::test]
async fn deleting_cancels_a_large_backlog_at_once() {
    const EVENTS: usize = 1500;
    let mut app = TestApp::builder().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let p = endpoint_partition(&endpoint_id);
    let keys = app.keys();
    queue_events(&app, &key, EVENTS).await;
    assert_eq!(app.queued_total().await, EVENTS as i64);
    let (status, _) = app
        .delete(&format!("/api/v1/webhooks/{endpoint_id}"), &key)
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.zscore(&keys.ready(p), &endpoint_id).await, None);
    assert_eq!(app.queued_total().await, 0);

    app.start_worker();
    let event_ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys.endpoint_deliveries(p, &endpoint_id))
        .arg(0)
        .arg(-1)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    assert_eq!(event_ids.len(), EVENTS, "the log stays until retention");
    for event_id in [
        &event_ids[0],
        &event_ids[EVENTS / 2],
        &event_ids[EVENTS - 1],
    ] {
        let delivery_id = ids::delivery_id(event_id, &endpoint_id).unwrap();
        let (status, detail) = app
            .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
            .await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["delivery"]["status"], "cancelled", "{detail}");
        let (_, event) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
        assert_eq!(event["deliveries"][0]["status"], "cancelled", "{event}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 0);
    app.stop().await;
}

/// A delivery that finds its way back into its endpoint's queue after it
/// ended is dropped by the claim, not sent a second time (a safety net:
/// nothing queues an ended delivery without making it pending first).
#[tokio::test]
async fn an_ended_delivery_queued_again_is_not_sent_again() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let p = endpoint_partition(&endpoint_id);
    let event = app.publish(&key, "user.created", json!({})).await;
    let detail = app
        .wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(receiver.count(), 1);

    let keys = app.keys();
    let now = hookfleet_common::time_util::now_ms();
    let _: () = redis::pipe()
        .zadd(
            keys.endpoint_due(p, &endpoint_id),
            event["id"].as_str().unwrap(),
            now,
        )
        .zadd(keys.ready(p), &endpoint_id, now)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    let settled = wait_until(Duration::from_secs(10), || async {
        let waiting = app.zcard(&keys.endpoint_due(p, &endpoint_id)).await
            + app.zcard(&keys.inflight(p)).await;
        (waiting == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "the claim drops it");
    assert_eq!(receiver.count(), 1, "not sent again");
    let (_, after) = app
        .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(after["delivery"]["status"], "delivered", "{after}");
    assert_eq!(after["delivery"]["attempts"], 1, "{after}");
    app.stop().await;
}
