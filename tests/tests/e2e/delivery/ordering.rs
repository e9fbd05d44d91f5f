//! Ordered delivery (`"ordering": "fifo"`): one attempt in flight per
//! endpoint across the fleet, deliveries in the order their events were
//! published, a delivery waiting for its retry holding the ones behind it
//! until it ends, through random failures, four worker processes and a
//! worker killed mid-attempt. (The suite's cluster run repeats these on a
//! Redis Cluster.)

use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_tests::{
    spawn_logged, spawn_receiver, summed, wait_until, worker_binary, worker_env, Received,
    Receiver, Reply, TestApp,
};

/// The `seq` of each request's event, in the order the receiver got them.
fn sequence(receiver: &Receiver) -> Vec<u64> {
    receiver
        .requests()
        .iter()
        .map(|r: &Received| {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            body["data"]["seq"].as_u64().unwrap_or(u64::MAX)
        })
        .collect()
}

/// A receiver's script: failures drawn at random (seeded, so a failing run
/// can be replayed), 500s and answers slower than the attempt timeout, at
/// most `max_run` in a row (the endpoint's schedule allows more), then 200.
fn random_failures(seed: u64, len: usize, max_run: usize, slow: Duration) -> Vec<Reply> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % 100
    };
    let mut replies = Vec::with_capacity(len);
    let mut run = 0;
    for _ in 0..len {
        let roll = next();
        let reply = if run >= max_run || roll >= 45 {
            run = 0;
            Reply::status(200)
        } else if roll < 12 {
            run += 1;
            Reply::status(200).with_delay(slow)
        } else {
            run += 1;
            Reply::status(500)
        };
        replies.push(reply);
    }
    replies
}

fn assert_in_order(name: &str, seen: &[u64], events: u64) {
    for pair in seen.windows(2) {
        assert!(
            pair[0] <= pair[1],
            "{name}: {} arrived after {}: {seen:?}",
            pair[1],
            pair[0]
        );
    }
    for n in 0..events {
        assert!(
            seen.contains(&n),
            "{name}: event {n} never arrived: {seen:?}"
        );
    }
}

/// A FIFO endpoint's schedule: quick retries, more of them than the
/// receivers fail in a row.
fn quick_schedule() -> Value {
    json!(["0s", "50ms", "100ms", "150ms", "200ms", "250ms", "300ms", "300ms"])
}

#[tokio::test]
async fn fifo_keeps_publish_order_through_random_failures_and_four_workers() {
    // Attempts time out after 1 s; a slow answer takes 1.5 s.
    let app = TestApp::builder()
        .request_timeout("1s")
        .lease("8s")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let slow = Duration::from_millis(1500);
    let mut receivers = Vec::new();
    for seed in [7_u64, 1_234_567] {
        let receiver =
            spawn_receiver(random_failures(seed, 200, 3, slow), Reply::status(200)).await;
        app.endpoint(
            &key,
            json!({"url": receiver.url, "events": ["*"], "ordering": "fifo",
                   "retry_schedule": quick_schedule()}),
        )
        .await;
        receivers.push(receiver);
    }
    let env = worker_env(
        &app.config,
        &[
            ("HOOKFLEET_REQUEST_TIMEOUT", "1s"),
            ("HOOKFLEET_LEASE", "8s"),
            ("HOOKFLEET_POLL_INTERVAL", "100ms"),
        ],
    );
    let mut workers: Vec<_> = (0..4)
        .map(|_| spawn_logged(worker_binary(), &env))
        .collect();
    let events = 30;
    let mut ids = Vec::new();
    for seq in 0..events {
        let event = app.publish(&key, "user.created", json!({"seq": seq})).await;
        ids.push(event["id"].as_str().unwrap_or_default().to_string());
    }
    // Every event is delivered in the end (no receiver fails more often in
    // a row than the schedule retries).
    let all_delivered = wait_until(Duration::from_secs(90), || async {
        for id in &ids {
            let (_, event) = app.get(&format!("/api/v1/events/{id}"), &key).await;
            let deliveries = event["deliveries"].as_array()?;
            if deliveries.len() != 2 || deliveries.iter().any(|d| d["status"] != "delivered") {
                return None;
            }
        }
        Some(())
    })
    .await;
    let running = workers
        .iter_mut()
        .map(|w| w.is_running())
        .filter(|r| *r)
        .count();
    for (n, receiver) in receivers.iter().enumerate() {
        let seen = sequence(receiver);
        assert!(
            all_delivered.is_some(),
            "receiver {n} got {seen:?}; {running} workers running; a log: {}",
            workers[0].log()
        );
        assert_in_order(&format!("receiver {n}"), &seen, events);
        assert!(
            seen.len() as u64 > events,
            "receiver {n}: the script's failures were retried: {seen:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_worker_killed_mid_attempt_holds_the_line_until_its_lease_expires() {
    let app = TestApp::builder()
        .request_timeout("3s")
        .lease("8s")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    // The first request is held open; the worker is killed meanwhile.
    let hold = Reply::status(200).with_delay(Duration::from_secs(30));
    let receiver = spawn_receiver(vec![hold], Reply::status(200)).await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["*"], "ordering": "fifo"}),
        )
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap_or_default().to_string();
    let events = 8;
    for seq in 0..events {
        app.publish(&key, "user.created", json!({"seq": seq})).await;
    }
    let env = worker_env(
        &app.config,
        &[
            ("HOOKFLEET_REQUEST_TIMEOUT", "3s"),
            ("HOOKFLEET_LEASE", "8s"),
        ],
    );
    let mut doomed = spawn_logged(worker_binary(), &env);
    receiver.wait_for(1).await;
    let killed = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(doomed.child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = doomed.child.wait();

    // Its delivery is the head of the line, in flight under the dead
    // worker's lease.
    let (status, webhook) = app
        .get(&format!("/api/v1/webhooks/{endpoint_id}"), &key)
        .await;
    assert_eq!(status, 200, "{webhook}");
    assert_eq!(webhook["head_of_line"]["status"], "in_flight", "{webhook}");

    // Four workers take over; nothing behind the held delivery goes before
    // its lease expires and it is attempted again.
    let _workers: Vec<_> = (0..4)
        .map(|_| spawn_logged(worker_binary(), &env))
        .collect();
    let done = wait_until(Duration::from_secs(40), || async {
        let seen = sequence(&receiver);
        (seen.iter().filter(|&&n| n == events - 1).count() >= 1).then_some(seen)
    })
    .await;
    let seen = sequence(&receiver);
    assert!(done.is_some(), "not all arrived: {seen:?}");
    let expected: Vec<u64> = std::iter::once(0).chain(0..events).collect();
    assert_eq!(
        seen, expected,
        "the killed attempt again, then the rest in order"
    );
    let (_, webhook) = app
        .get(&format!("/api/v1/webhooks/{endpoint_id}"), &key)
        .await;
    assert!(webhook.get("head_of_line").is_none(), "{webhook}");
    app.stop().await;
}

#[tokio::test]
async fn fifo_sends_one_at_a_time_where_none_sends_several() {
    let mut app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let slow = Reply::status(200).with_delay(Duration::from_millis(150));
    let ordered = spawn_receiver(Vec::new(), slow.clone()).await;
    let unordered = spawn_receiver(Vec::new(), slow).await;
    app.endpoint(
        &key,
        json!({"url": ordered.url, "events": ["*"], "ordering": "fifo", "max_in_flight": 8}),
    )
    .await;
    app.endpoint(&key, json!({"url": unordered.url, "events": ["*"]}))
        .await;
    let events = 8;
    for seq in 0..events {
        app.publish(&key, "user.created", json!({"seq": seq})).await;
    }
    app.start_worker();
    ordered.wait_for(events as usize).await;
    unordered.wait_for(events as usize).await;
    assert_eq!(sequence(&ordered), (0..events).collect::<Vec<_>>());
    assert_eq!(
        ordered.peak_concurrency(),
        1,
        "a FIFO endpoint has one attempt in flight, whatever max_in_flight says"
    );
    assert!(
        unordered.peak_concurrency() > 1,
        "the unordered endpoint got its deliveries concurrently"
    );
    app.stop().await;
}

/// Sums a gauge over its partitions from the API's `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> f64 {
    summed(app.authority(), name).await
}

#[tokio::test]
async fn a_failing_head_holds_its_line_visibly_until_ordering_is_switched_off() {
    let mut app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(Vec::new(), Reply::status(503)).await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["*"], "ordering": "fifo",
                   "retry_schedule": ["0s", "1h"]}),
        )
        .await;
    let id = endpoint["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(endpoint["ordering"], "fifo");
    let mut events = Vec::new();
    for seq in 0..3 {
        let event = app.publish(&key, "user.created", json!({"seq": seq})).await;
        events.push(event["id"].as_str().unwrap_or_default().to_string());
    }
    app.start_worker();
    // The first delivery fails and waits an hour for its retry; the two
    // behind it wait with it.
    let path = format!("/api/v1/webhooks/{id}");
    let head = wait_until(Duration::from_secs(20), || async {
        let (_, webhook) = app.get(&path, &key).await;
        let head = webhook["head_of_line"].clone();
        (head["status"] == "scheduled").then_some(head)
    })
    .await
    .expect("the head waits for its retry");
    assert_eq!(head["event_id"], events[0].as_str(), "{head}");
    assert_eq!(head["attempts"], 1, "{head}");
    assert!(head["next_attempt_at"].is_string(), "{head}");
    assert!(head["age_ms"].as_u64().is_some(), "{head}");
    assert_eq!(receiver.count(), 1);
    // Invariant 9: a held line costs no claim meanwhile. The endpoint is
    // scored by its head's retry (an hour, less jitter), not by the
    // deliveries due behind it, so no worker visits it until then.
    let p = hookfleet_common::ids::partition_of(hookfleet_common::ids::IdKind::Endpoint, &id)
        .expect("an endpoint id");
    // (The claim that follows the failed attempt's record scores it so.)
    let half_hour = hookfleet_common::time_util::now_ms() as f64 + 1_800_000.0;
    let ready = app.keys().ready(p);
    let due = wait_until(Duration::from_secs(10), || async {
        let due = app.zscore(&ready, &id).await?;
        (due > half_hour).then_some(due)
    })
    .await;
    assert!(
        due.is_some(),
        "the held endpoint is due at {:?}, not in about an hour",
        app.zscore(&ready, &id).await
    );
    // Visible to operators: the gauge and the queue view.
    let held = wait_until(Duration::from_secs(10), || async {
        let held = gauge(&app, "hookfleet_fifo_held_endpoints").await;
        (held >= 1.0).then_some(held)
    })
    .await;
    assert_eq!(held, Some(1.0));
    assert!(gauge(&app, "hookfleet_fifo_head_age_seconds").await >= 0.0);
    let (status, queues) = app.get("/api/v1/admin/queues", &app.admin_key()).await;
    assert_eq!(status, 200, "{queues}");
    let held: u64 = queues
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["fifo_held"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(held, 1, "{queues}");
    for event in &events[1..] {
        let (_, detail) = app.get(&format!("/api/v1/events/{event}"), &key).await;
        assert_eq!(detail["deliveries"][0]["status"], "pending", "{detail}");
    }

    // Switched to `none`, the two behind it go at once; the head keeps its
    // retry time and the line is no longer held.
    let (status, changed) = app.patch(&path, &key, json!({"ordering": "none"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["ordering"], "none");
    let seen = wait_until(Duration::from_secs(20), || async {
        let seen = sequence(&receiver);
        (seen.len() >= 3).then_some(seen)
    })
    .await
    .expect("the others went out");
    assert_eq!(seen, vec![0, 1, 2]);
    let (_, webhook) = app.get(&path, &key).await;
    assert!(webhook.get("head_of_line").is_none(), "{webhook}");
    assert_eq!(gauge(&app, "hookfleet_fifo_held_endpoints").await, 0.0);
    app.stop().await;
}

#[tokio::test]
async fn a_manual_retry_goes_ahead_of_the_line_and_a_deleted_endpoint_leaves_the_gauge() {
    let mut app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    // The first attempt fails for good (400); then the receiver answers
    // 503 (retried an hour later), then 200.
    let receiver = spawn_receiver(
        vec![Reply::status(400), Reply::status(503)],
        Reply::status(200),
    )
    .await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["*"], "ordering": "fifo",
                   "retry_schedule": ["0s", "1h"]}),
        )
        .await;
    let id = endpoint["id"].as_str().unwrap_or_default().to_string();
    let first = app.publish(&key, "user.created", json!({"seq": 0})).await;
    let first_id = first["id"].as_str().unwrap_or_default().to_string();
    app.start_worker();
    app.wait_for_deliveries(&key, &first_id, &["failed"]).await;
    // The next one fails (503) and holds the line for an hour.
    let second = app.publish(&key, "user.created", json!({"seq": 1})).await;
    let second_id = second["id"].as_str().unwrap_or_default().to_string();
    app.wait_for_deliveries(&key, &second_id, &["scheduled"])
        .await;
    app.publish(&key, "user.created", json!({"seq": 2})).await;
    // A manual retry of the failed first delivery is sent at once, ahead
    // of the line; what it holds stays held.
    let (_, detail) = app.get(&format!("/api/v1/events/{first_id}"), &key).await;
    let delivery = detail["deliveries"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, retried) = app
        .post(
            &format!("/api/v1/deliveries/{delivery}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{retried}");
    app.wait_for_deliveries(&key, &first_id, &["delivered"])
        .await;
    assert_eq!(sequence(&receiver), vec![0, 1, 0]);
    let (_, webhook) = app.get(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert_eq!(
        webhook["head_of_line"]["event_id"],
        second_id.as_str(),
        "{webhook}"
    );
    assert_eq!(gauge(&app, "hookfleet_fifo_held_endpoints").await, 1.0);
    let (status, _) = app.delete(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert_eq!(status, 204);
    assert_eq!(gauge(&app, "hookfleet_fifo_held_endpoints").await, 0.0);
    app.stop().await;
}
