//! Delivery operations: the delivery log (filters, paging while new
//! deliveries arrive), a delivery with every attempt, retry, replay, test
//! sends, windowed statistics and secret rotation.

use std::collections::HashSet;
use std::time::Duration;

use hookfleet_common::time_util::{now_ms, rfc3339_ms};
use serde_json::{json, Value};

use hookfleet_tests::{
    endpoint_partition, python_accepts, spawn_receiver, wait_until, Reply, TenantWithEndpoint,
    TestApp,
};

async fn all_pages(app: &TestApp, key: &str, path: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (status, page) = app.get(&url, key).await;
        assert_eq!(status, 200, "{url}: {page}");
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return out,
        }
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn paging_loses_and_repeats_nothing_while_deliveries_arrive() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint { key, endpoint, .. } = app
        .tenant_with_endpoint("https://example.com/h", &["*"])
        .await;
    let other = app
        .endpoint(
            &key,
            json!({"url": "https://example.com/o", "events": ["video.*"]}),
        )
        .await;
    let id = endpoint["id"].as_str().unwrap();
    let mut first_batch = HashSet::new();
    for n in 0..23 {
        let event_type = if n % 3 == 0 {
            "video.processed"
        } else {
            "user.created"
        };
        let event = app.publish(&key, event_type, json!({"n": n})).await;
        first_batch.insert(event["id"].as_str().unwrap().to_string());
    }
    let path = format!("/api/v1/webhooks/{id}/deliveries");
    // Walk page by page, publishing between pages.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=5&cursor={c}"),
            None => format!("{path}?limit=5"),
        };
        let (status, page) = app.get(&url, &key).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 5);
        seen.extend(
            data.iter()
                .map(|d| d["event_id"].as_str().unwrap().to_string()),
        );
        app.publish(&key, "user.created", json!({"late": true}))
            .await;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated");
    assert_eq!(
        unique, first_batch,
        "nothing lost, nothing newer than the first page"
    );
    // Newest first.
    let everything = all_pages(&app, &key, &path, 250).await;
    let times: Vec<&str> = everything
        .iter()
        .map(|d| d["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));

    // Filters.
    let videos = all_pages(&app, &key, &format!("{path}?event_type=video.processed"), 3).await;
    assert_eq!(videos.len(), 8);
    assert!(videos.iter().all(|d| d["event_type"] == "video.processed"));
    let pending = all_pages(&app, &key, &format!("{path}?status=pending"), 50).await;
    assert_eq!(pending.len(), everything.len(), "no worker: all pending");
    let none = all_pages(&app, &key, &format!("{path}?status=delivered"), 50).await;
    assert!(none.is_empty());
    let future = rfc3339_ms(now_ms() + 60_000);
    let later = all_pages(&app, &key, &format!("{path}?since={future}"), 50).await;
    assert!(later.is_empty());
    let past = rfc3339_ms(now_ms() - 60_000);
    let until_past = all_pages(&app, &key, &format!("{path}?until={past}"), 50).await;
    assert!(until_past.is_empty());

    // Tenant-wide: both endpoints, merged newest first.
    let tenant_wide = all_pages(&app, &key, "/api/v1/deliveries", 7).await;
    let other_id = other["id"].as_str().unwrap();
    assert_eq!(tenant_wide.len(), everything.len() + 8);
    assert_eq!(
        tenant_wide
            .iter()
            .filter(|d| d["webhook_id"] == other_id)
            .count(),
        8
    );
    let times: Vec<&str> = tenant_wide
        .iter()
        .map(|d| d["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
    let ids: HashSet<&str> = tenant_wide
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), tenant_wide.len());
    app.stop().await;
}

#[tokio::test]
async fn bad_log_parameters_are_refused() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint {
        key,
        endpoint_id: id,
        ..
    } = app
        .tenant_with_endpoint("https://example.com/h", &["*"])
        .await;
    for base in [
        format!("/api/v1/webhooks/{id}/deliveries"),
        "/api/v1/deliveries".to_string(),
    ] {
        for (query, field) in [
            ("status=lost", "status"),
            ("since=yesterday", "since"),
            ("until=2026-13-01T00:00:00Z", "until"),
            (
                "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
                "since",
            ),
            ("event_type=bad%20type", "event_type"),
            ("cursor=%21%21", "cursor"),
            ("cursor=MTIzOm5vcGU", "cursor"),
            ("limit=0", "limit"),
            ("limit=1000", "limit"),
        ] {
            let (status, error) = app.get(&format!("{base}?{query}"), &key).await;
            assert_eq!(status, 400, "{base}?{query}: {error}");
            assert_eq!(error["field"], field, "{query}");
        }
    }
    for (query, field) in [
        ("window=2h", "window"),
        ("window=", "window"),
        ("window=1h;drop", "window"),
        ("series=maybe", "series"),
        ("series=", "series"),
    ] {
        let (status, error) = app
            .get(&format!("/api/v1/webhooks/{id}/stats?{query}"), &key)
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some(field)),
            "{query}: {error}"
        );
    }
    for (body, field) in [
        (json!({"grace_period_s": -1}), "grace_period_s"),
        (json!({"grace_period_s": 604_801}), "grace_period_s"),
        (json!({"grace_period_s": "soon"}), "grace_period_s"),
        (json!({"grace": 5}), "grace"),
    ] {
        let before = app.snapshot().await;
        let (status, error) = app
            .post(
                &format!("/api/v1/webhooks/{id}/secret/rotate"),
                &key,
                body.clone(),
            )
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
        assert_eq!(app.snapshot().await, before);
    }
    let hour_ago = rfc3339_ms(now_ms() - 3_600_000);
    for (body, field) in [
        (json!({}), "since"),
        (json!({"since": "last week"}), "since"),
        (json!({"since": hour_ago, "until": "x"}), "until"),
        // Only `since` sent, 8 days back: the window runs to now, and the
        // error names the field the caller sent.
        (
            json!({"since": rfc3339_ms(now_ms() - 8 * 86_400_000)}),
            "since",
        ),
        (
            json!({"since": rfc3339_ms(now_ms() - 9 * 86_400_000), "until": hour_ago}),
            "until",
        ),
        (
            json!({"since": rfc3339_ms(now_ms()), "until": hour_ago}),
            "since",
        ),
        (json!({"since": hour_ago, "filter": "delivered"}), "filter"),
        (json!({"since": hour_ago, "status": "all"}), "status"),
    ] {
        let before = app.snapshot().await;
        let (status, error) = app
            .post(&format!("/api/v1/webhooks/{id}/replay"), &key, body.clone())
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{body}: {error}"
        );
        assert_eq!(app.snapshot().await, before);
    }
    for path in [
        "/api/v1/deliveries/nope",
        "/api/v1/deliveries/dlv_0000000000000000000000zz",
    ] {
        let (status, _) = app.get(path, &key).await;
        assert_eq!(status, 404);
        let (status, _) = app.post(&format!("{path}/retry"), &key, json!({})).await;
        assert_eq!(status, 404);
    }
    let (status, _) = app
        .get(
            &format!("/api/v1/webhooks/{id}/replay/rpl_0000000000000000000000zz"),
            &key,
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_shows_every_attempt_and_can_be_retried() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(
        vec![
            Reply::status(500)
                .with_body("oops")
                .with_header("x-trace", "t1"),
            Reply::status(422).with_body(&"e".repeat(6000)),
        ],
        Reply::status(200).with_body("fine"),
    )
    .await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["*"], "headers": {"X-Team": "blue"}}),
        )
        .await;
    let event = app.publish(&key, "user.created", json!({"n": 1})).await;
    let event_id = event["id"].as_str().unwrap();
    let detail = app.wait_for_deliveries(&key, event_id, &["failed"]).await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_string();

    let (status, delivery) = app
        .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(delivery["delivery"]["status"], "failed");
    let sent: Value = serde_json::from_str(delivery["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["data"], json!({"n": 1}));
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["outcome"], "retry");
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["response_body"], "oops");
    assert_eq!(attempts[0]["response_headers"]["x-trace"], "t1");
    assert!(attempts[0]["next_attempt_at"].is_string());
    assert_eq!(attempts[0]["request_headers"]["webhook-id"], event_id);
    assert_eq!(attempts[0]["request_headers"]["x-team"], "blue");
    // The log keeps which secret signed; the signature shown is
    // recomputed, and verifies against the exact body sent.
    let secret =
        hookfleet_common::signing::SigningSecret::parse(endpoint["secret"].as_str().unwrap())
            .unwrap();
    let timestamp: u64 = attempts[0]["request_headers"]["webhook-timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert!(hookfleet_common::signing::verify(
        &secret,
        event_id,
        timestamp,
        delivery["request_body"].as_str().unwrap().as_bytes(),
        attempts[0]["request_headers"]["webhook-signature"]
            .as_str()
            .unwrap(),
    ));
    assert_eq!(attempts[1]["outcome"], "failed");
    assert_eq!(attempts[1]["status_code"], 422);
    assert_eq!(
        attempts[1]["response_body"].as_str().unwrap(),
        "e".repeat(1024),
        "excerpt capped at HOOKFLEET_RESPONSE_EXCERPT (1 KiB by default)"
    );
    // The excerpt is kept LZ4-compressed (it is over
    // HOOKFLEET_COMPRESS_ABOVE and compresses): the log entry is far
    // smaller than the kilobyte it shows.
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let p =
        hookfleet_common::ids::partition_of(hookfleet_common::ids::IdKind::Endpoint, endpoint_id)
            .unwrap();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(app.keys().attempts(p, endpoint_id))
        .arg("-")
        .arg("+")
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    let sizes: Vec<usize> = entries
        .ids
        .iter()
        .filter_map(|entry| entry.get::<Vec<u8>>("b"))
        .map(|stored| stored.len())
        .collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(
        sizes[1] < 200,
        "the 1 KiB excerpt stored in {} bytes",
        sizes[1]
    );

    // Retry: one more attempt, same webhook-id, now delivered.
    let (status, retried) = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{retried}");
    assert_eq!(retried["previous_status"], "failed");
    app.wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    let got = receiver.requests();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.header("webhook-id") == Some(event_id)));
    let (_, delivery) = app
        .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(delivery["delivery"]["attempts"], 3);

    // A delivered delivery can be sent again too.
    let (status, _) = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, 202);
    receiver.wait_for(4).await;
    app.wait_for_deliveries(&key, event_id, &["delivered"])
        .await;

    // Disabled endpoint: 409. Deleted endpoint (cancelled delivery): 409.
    let path = format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap());
    app.patch(&path, &key, json!({"active": false})).await;
    let (status, error) = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    app.stop().await;
}

#[tokio::test]
async fn retrying_a_cancelled_delivery_is_a_conflict() {
    let app = TestApp::builder()
        .with_worker()
        .retry_schedule("0s,1h,1h")
        .spawn()
        .await;
    let receiver = spawn_receiver(vec![], Reply::status(500)).await;
    let TenantWithEndpoint { key, endpoint, .. } =
        app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let event_id = event["id"].as_str().unwrap();
    let detail = app
        .wait_for_deliveries(&key, event_id, &["scheduled"])
        .await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_string();
    // A scheduled delivery's next attempt moves to now.
    let (status, retried) = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, retried["previous_status"].as_str()),
        (202, Some("scheduled"))
    );
    receiver.wait_for(2).await;
    wait_until(Duration::from_secs(10), || async {
        let (_, detail) = app
            .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
            .await;
        (detail["delivery"]["status"] == "scheduled" && detail["delivery"]["attempts"] == 2)
            .then_some(())
    })
    .await
    .expect("scheduled again after the second attempt");
    app.delete(
        &format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap()),
        &key,
    )
    .await;
    app.wait_for_deliveries(&key, event_id, &["cancelled"])
        .await;
    let (status, _) = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, 409);
    app.stop().await;
}

#[tokio::test]
async fn a_replay_requeues_the_failed_deliveries_of_a_window() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    // Four 400s (fail at once), then healthy.
    let receiver = spawn_receiver(vec![Reply::status(400); 4], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let id = endpoint["id"].as_str().unwrap();
    let since = rfc3339_ms(now_ms() - 1000);
    let mut events = Vec::new();
    for n in 0..4 {
        let event = app.publish(&key, "user.created", json!({"n": n})).await;
        events.push(event["id"].as_str().unwrap().to_string());
        app.wait_for_deliveries(&key, events.last().unwrap(), &["failed"])
            .await;
    }
    let fine = app
        .publish(&key, "user.created", json!({"n": "fine"}))
        .await;
    app.wait_for_deliveries(&key, fine["id"].as_str().unwrap(), &["delivered"])
        .await;

    let (status, replay) = app
        .post(
            &format!("/api/v1/webhooks/{id}/replay"),
            &key,
            json!({"since": since}),
        )
        .await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["status"], "running");
    let replay_id = replay["id"].as_str().unwrap();
    let done = wait_until(Duration::from_secs(20), || async {
        let (_, replay) = app
            .get(&format!("/api/v1/webhooks/{id}/replay/{replay_id}"), &key)
            .await;
        (replay["status"] == "completed").then_some(replay)
    })
    .await
    .expect("the replay completes");
    assert_eq!(done["scanned"], 5);
    assert_eq!(done["queued"], 4, "only the failed ones");
    assert_eq!(done["filter"], "failed");
    for event_id in &events {
        app.wait_for_deliveries(&key, event_id, &["delivered"])
            .await;
    }
    assert_eq!(receiver.count(), 4 + 1 + 4);
    app.stop().await;
}

#[tokio::test]
async fn a_test_send_returns_its_attempt_and_stays_out_of_the_stats() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(
        vec![Reply::status(503).with_body("down for maintenance")],
        Reply::status(200),
    )
    .await;
    let TenantWithEndpoint { key, endpoint, .. } = app
        .tenant_with_endpoint(&receiver.url, &["user.created"])
        .await;
    let id = endpoint["id"].as_str().unwrap();
    let (status, result) = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            &key,
            json!({"event_type": "video.processed", "data": {"x": 1}}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    // One attempt only, even for a retryable answer.
    assert_eq!(result["status"], "failed");
    assert_eq!(result["attempt"]["status_code"], 503);
    assert_eq!(result["attempt"]["response_body"], "down for maintenance");
    assert!(result["attempt"]["duration_ms"].is_u64());
    assert_eq!(receiver.count(), 1);
    let (_, page) = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), &key)
        .await;
    assert_eq!(page["data"][0]["test"], true);

    // A real delivery counts; the test send does not.
    let event = app.publish(&key, "user.created", json!({})).await;
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;
    let (status, stats) = app
        .get(&format!("/api/v1/webhooks/{id}/stats?window=1h"), &key)
        .await;
    assert_eq!(status, 200);
    assert_eq!(stats["attempts"], 1);
    assert_eq!(stats["attempts_succeeded"], 1);
    assert_eq!(stats["success_rate"], 1.0);
    assert_eq!(stats["delivered"], 1);
    assert_eq!(stats["failed"], 0);
    assert!(
        stats["last_failure"].is_null(),
        "the test's 503 is not a failure of the endpoint"
    );
    let latency = &stats["latency_ms"];
    assert!(latency["p50"].as_u64().unwrap() <= latency["p99"].as_u64().unwrap());
    for window in ["24h", "7d"] {
        let (_, stats) = app
            .get(
                &format!("/api/v1/webhooks/{id}/stats?window={window}"),
                &key,
            )
            .await;
        assert_eq!(stats["attempts"], 1, "{window}");
    }

    // A disabled endpoint cannot be tested.
    app.patch(
        &format!("/api/v1/webhooks/{id}"),
        &key,
        json!({"active": false}),
    )
    .await;
    let (status, _) = app
        .post(&format!("/api/v1/webhooks/{id}/test"), &key, json!({}))
        .await;
    assert_eq!(status, 409);
    app.stop().await;
}

#[tokio::test]
async fn stats_sum_attempts_and_latency_in_the_window() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(
        vec![
            Reply::status(500),
            Reply::status(200).with_delay(Duration::from_millis(200)),
        ],
        Reply::status(200),
    )
    .await;
    let TenantWithEndpoint {
        key,
        endpoint_id: id,
        ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    for n in 0..5 {
        let event = app.publish(&key, "user.created", json!({"n": n})).await;
        app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
            .await;
    }
    let (_, stats) = app.get(&format!("/api/v1/webhooks/{id}/stats"), &key).await;
    assert_eq!(stats["window"], "24h");
    assert_eq!(stats["attempts"], 6);
    assert_eq!(stats["attempts_failed"], 1);
    assert_eq!(stats["delivered"], 5);
    let rate = stats["success_rate"].as_f64().unwrap();
    assert!((rate - 5.0 / 6.0).abs() < 1e-9);
    // One attempt took ≥ 200 ms: the top percentile sees it.
    assert!(
        stats["latency_ms"]["p99"].as_u64().unwrap() >= 200,
        "{stats}"
    );
    assert_eq!(stats["last_failure"]["status_code"], 500);
    assert_eq!(stats["last_success"]["status_code"], 200);
    app.stop().await;
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_grace_period_only() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key,
        endpoint_id: id,
        secret: old,
        ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;

    let (status, rotated) = app
        .post(
            &format!("/api/v1/webhooks/{id}/secret/rotate"),
            &key,
            json!({"grace_period_s": 2}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let (_, fetched) = app.get(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert!(fetched.get("secret").is_none());

    app.publish(&key, "user.created", json!({"during": "grace"}))
        .await;
    let during = receiver.wait_for(1).await.remove(0);
    assert_eq!(
        during
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    assert!(
        python_accepts(&old, &during),
        "old secret during the grace period"
    );
    assert!(
        python_accepts(&new, &during),
        "new secret during the grace period"
    );

    // After the grace period only the new secret signs.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.publish(&key, "user.created", json!({"after": "grace"}))
        .await;
    let after = receiver.wait_for(2).await.remove(1);
    assert_eq!(
        after
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    assert!(
        !python_accepts(&old, &after),
        "old secret after the grace period"
    );
    assert!(
        python_accepts(&new, &after),
        "new secret after the grace period"
    );

    // Grace 0: the old secret stops at once; default grace is a day.
    let (_, immediate) = app
        .post(
            &format!("/api/v1/webhooks/{id}/secret/rotate"),
            &key,
            json!({"grace_period_s": 0}),
        )
        .await;
    let newest = immediate["secret"].as_str().unwrap().to_string();
    app.publish(&key, "user.created", json!({"n": 3})).await;
    let third = receiver.wait_for(3).await.remove(2);
    assert!(!python_accepts(&new, &third));
    assert!(python_accepts(&newest, &third));
    let (_, default) = app
        .post(
            &format!("/api/v1/webhooks/{id}/secret/rotate"),
            &key,
            json!({}),
        )
        .await;
    let expires = hookfleet_common::time_util::parse_rfc3339_ms(
        default["previous_secret_expires_at"].as_str().unwrap(),
    )
    .unwrap();
    assert!(expires > now_ms() + 86_000_000);
    app.stop().await;
}

/// Publishes `n` events of `event_type` through the batch route.
async fn publish_batch(app: &TestApp, key: &str, event_type: &str, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"event_type": event_type, "data": {"n": i}}))
        .collect();
    let (status, answer) = app
        .post("/api/v1/events/batch", key, json!({ "events": events }))
        .await;
    assert_eq!(status, 202, "{answer}");
}

/// The ids of `pages`, checking that none repeats and that they come
/// newest first.
fn distinct_newest_first(pages: &[Value]) -> HashSet<String> {
    let ids: Vec<String> = pages
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "a delivery repeated");
    let times: Vec<&str> = pages
        .iter()
        .map(|d| d["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    unique
}

/// A batch gives dozens of deliveries of one endpoint the same creation
/// millisecond (one publish.lua call); small pages walk through such a run
/// instead of stopping in it or skipping the rest of it.
#[tokio::test]
async fn paging_walks_through_deliveries_created_in_the_same_millisecond() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint { key, endpoint, .. } = app
        .tenant_with_endpoint("https://example.com/h", &["*"])
        .await;
    app.endpoint(
        &key,
        json!({"url": "https://example.com/o", "events": ["*"]}),
    )
    .await;
    publish_batch(&app, &key, "user.created", 120).await;
    let id = endpoint["id"].as_str().unwrap();
    for limit in [1, 5] {
        let one = all_pages(
            &app,
            &key,
            &format!("/api/v1/webhooks/{id}/deliveries"),
            limit,
        )
        .await;
        assert_eq!(distinct_newest_first(&one).len(), 120, "limit {limit}");
    }
    let all = all_pages(&app, &key, "/api/v1/deliveries", 7).await;
    assert_eq!(distinct_newest_first(&all).len(), 240);
    app.stop().await;
}

/// Over many endpoints, each endpoint's index is read only in part (the
/// request's fetch budget is shared): a page stops where an endpoint may
/// have unread entries, and the next page goes on from there, so the
/// newest deliveries of one busy endpoint are not skipped in favour of
/// older ones of the others.
#[tokio::test]
async fn a_tenant_wide_page_over_many_endpoints_skips_nothing() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint { key, .. } = app
        .tenant_with_endpoint("https://example.com/busy", &["user.*"])
        .await;
    // 60 endpoints: the budget allows each 10,000 / 61 = 163 entries.
    for n in 0..60 {
        app.endpoint(
            &key,
            json!({"url": format!("https://example.com/{n}"), "events": ["video.*"]}),
        )
        .await;
    }
    publish_batch(&app, &key, "video.processed", 3).await;
    publish_batch(&app, &key, "user.created", 200).await;
    let all = all_pages(&app, &key, "/api/v1/deliveries", 250).await;
    assert_eq!(distinct_newest_first(&all).len(), 380);
    let busy = all
        .iter()
        .take_while(|d| d["event_type"] == "user.created")
        .count();
    assert_eq!(busy, 200, "the busy endpoint's deliveries are the newest");
    app.stop().await;
}

/// One replay per webhook runs at a time (each walks up to 7 days of its
/// log): a second one is refused with 409 and writes nothing, and the
/// webhook can be replayed again once the first has ended.
#[tokio::test]
async fn a_webhook_runs_one_replay_at_a_time() {
    let mut app = TestApp::builder().spawn().await;
    let TenantWithEndpoint {
        key,
        endpoint_id: id,
        ..
    } = app
        .tenant_with_endpoint("https://example.com/h", &["*"])
        .await;
    let p = endpoint_partition(&id);
    let keys = app.keys();
    let running = keys.replay_running(p, &id);
    let path = format!("/api/v1/webhooks/{id}/replay");
    let body = json!({"since": rfc3339_ms(now_ms() - 60_000)});

    // Another replay holds the webhook (as one running in another API
    // process would).
    let _: () = redis::cmd("SET")
        .arg(&running)
        .arg("rpl_0000000000000000000000zz")
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    let before = app.snapshot().await;
    let (status, error) = app.post(&path, &key, body.clone()).await;
    assert_eq!(status, 409, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("rpl_0000000000000000000000zz"),
        "{error}"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused replay writes nothing"
    );
    // Another replay cannot release the holder's hold.
    use hookfleet_common::store::replay;
    let held = replay::release(
        &mut app.redis().await,
        &keys,
        p,
        &id,
        "rpl_0000000000000000000000yy",
    )
    .await
    .unwrap();
    assert!(!held);
    assert_eq!(
        app.snapshot().await,
        before,
        "the other replay's hold stays"
    );

    let _: () = redis::cmd("DEL")
        .arg(&running)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    // Workers run replays.
    app.start_worker();
    for _ in 0..2 {
        let (status, replay) = app.post(&path, &key, body.clone()).await;
        assert_eq!(status, 202, "{replay}");
        let replay_id = replay["id"].as_str().unwrap().to_string();
        let done = wait_until(Duration::from_secs(20), || async {
            let (_, replay) = app.get(&format!("{path}/{replay_id}"), &key).await;
            (replay["status"] == "completed").then_some(())
        })
        .await;
        assert!(done.is_some(), "the replay completes");
        // Its hold ends with it, so the next one may start.
        let released = wait_until(Duration::from_secs(5), || async {
            let exists: u64 = redis::cmd("EXISTS")
                .arg(&running)
                .query_async(&mut app.redis().await)
                .await
                .unwrap();
            (exists == 0).then_some(())
        })
        .await;
        assert!(released.is_some(), "the running replay's hold is released");
    }
    app.stop().await;
}
