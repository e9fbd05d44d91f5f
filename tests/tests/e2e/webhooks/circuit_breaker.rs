//! The circuit breaker and operational events: a 410 Gone, or failing
//! without a success for HOOKFLEET_DISABLE_AFTER, disables an endpoint; its
//! queued deliveries are held (not lost) until it is enabled again; the
//! tenant hears about it through signed operational events.

use std::time::Duration;

use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::signing::{verify, SigningSecret};
use hookfleet_common::time_util::now_ms;
use redis::AsyncCommands;
use serde_json::{json, Value};

use hookfleet_tests::{
    claim_settings, record_one, spawn_receiver, wait_until, Received, Reply, TenantWithEndpoint,
    TestApp,
};

fn body(request: &Received) -> Value {
    serde_json::from_str(&request.body).unwrap()
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_the_tenant_is_told() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let ops = spawn_receiver(vec![], Reply::status(200)).await;
    let gone = spawn_receiver(vec![], Reply::status(410)).await;
    let catch_all = spawn_receiver(vec![], Reply::status(200)).await;
    let ops_endpoint = app
        .endpoint(
            &key,
            json!({"url": ops.url, "events": ["endpoint.disabled", "message.attempt.exhausted"]}),
        )
        .await;
    let gone_endpoint = app
        .endpoint(&key, json!({"url": gone.url, "events": ["user.created"]}))
        .await;
    app.endpoint(&key, json!({"url": catch_all.url, "events": ["*"]}))
        .await;
    let gone_id = gone_endpoint["id"].as_str().unwrap();

    let event = app.publish(&key, "user.created", json!({"n": 1})).await;
    let detail = app
        .wait_for_deliveries(
            &key,
            event["id"].as_str().unwrap(),
            &["delivered", "failed"],
        )
        .await;
    let gone_delivery = detail["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["webhook_id"] == gone_id)
        .unwrap()
        .clone();
    assert_eq!(gone_delivery["status"], "failed");
    assert_eq!(gone_delivery["attempts"], 1);
    let (_, endpoint) = app.get(&format!("/api/v1/webhooks/{gone_id}"), &key).await;
    assert_eq!(endpoint["active"], false);

    let got = ops.wait_for(2).await;
    let mut types: Vec<String> = got
        .iter()
        .map(|r| body(r)["type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["endpoint.disabled", "message.attempt.exhausted"]);
    let secret = SigningSecret::parse(ops_endpoint["secret"].as_str().unwrap()).unwrap();
    for request in &got {
        let timestamp: u64 = request
            .header("webhook-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!(verify(
            &secret,
            request.header("webhook-id").unwrap(),
            timestamp,
            request.body.as_bytes(),
            request.header("webhook-signature").unwrap()
        ));
        let data = &body(request)["data"];
        assert_eq!(data["endpoint_id"], gone_id);
        if body(request)["type"] == "endpoint.disabled" {
            assert_eq!(data["reason"], "gone");
        } else {
            assert_eq!(data["delivery_id"], gone_delivery["id"]);
            assert_eq!(data["last_status_code"], 410);
        }
    }
    // `*` does not match operational types.
    assert_eq!(catch_all.count(), 1);
    // A disabled endpoint receives nothing new.
    let next = app.publish(&key, "user.created", json!({"n": 2})).await;
    assert_eq!(next["deliveries"], 1);
    // Tenants cannot publish operational types.
    let (status, error) = app
        .post(
            "/api/v1/events",
            &key,
            json!({"event_type": "endpoint.disabled", "data": {}}),
        )
        .await;
    assert_eq!((status, error["field"].as_str()), (422, Some("event_type")));
    app.stop().await;
}

#[tokio::test]
async fn failing_past_the_window_disables_holds_and_resumes_on_enable() {
    let app = TestApp::builder()
        .with_worker()
        .disable_after("300ms")
        .retry_schedule("0s,200ms,200ms,200ms,200ms,200ms,200ms")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let ops = spawn_receiver(vec![], Reply::status(200)).await;
    let flaky = spawn_receiver(
        vec![Reply::status(500), Reply::status(500), Reply::status(500)],
        Reply::status(200),
    )
    .await;
    app.endpoint(
        &key,
        json!({"url": ops.url, "events": ["endpoint.disabled"]}),
    )
    .await;
    let endpoint = app
        .endpoint(&key, json!({"url": flaky.url, "events": ["job.failed"]}))
        .await;
    let path = format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap());
    let event = app.publish(&key, "job.failed", json!({})).await;
    let event_id = event["id"].as_str().unwrap();

    let notice = ops.wait_for(1).await;
    let notice = body(&notice[0]);
    assert_eq!(notice["type"], "endpoint.disabled");
    assert_eq!(notice["data"]["reason"], "failing");
    assert!(notice["data"]["failing_since"].is_string());
    let (_, current) = app.get(&path, &key).await;
    assert_eq!(current["active"], false);
    assert_eq!(current["status"], "disabled");
    // The delivery is not lost: it waits, held, while the endpoint is off,
    // with no attempt due.
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    assert_eq!(detail["deliveries"][0]["status"], "held", "{detail}");
    assert!(detail["deliveries"][0].get("next_attempt_at").is_none());
    assert_eq!(flaky.count(), 3);

    let (status, _) = app.patch(&path, &key, json!({"active": true})).await;
    assert_eq!(status, 200);
    let detail = app
        .wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    assert_eq!(detail["deliveries"][0]["attempts"], 4);
    assert_eq!(flaky.count(), 4);
    app.stop().await;
}

#[tokio::test]
async fn an_exhausted_schedule_sends_message_attempt_exhausted() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let ops = spawn_receiver(vec![], Reply::status(500)).await;
    let broken = spawn_receiver(vec![], Reply::status(502)).await;
    app.endpoint(
        &key,
        json!({"url": ops.url, "events": ["message.attempt.exhausted"]}),
    )
    .await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": broken.url, "events": ["video.processed"]}),
        )
        .await;
    let event = app.publish(&key, "video.processed", json!({})).await;
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["failed"])
        .await;
    // The operations endpoint fails too: its own exhausted delivery must not
    // produce another operational event (no loop).
    let got = ops.wait_for(3).await;
    let first = body(&got[0]);
    assert_eq!(first["data"]["endpoint_id"], endpoint["id"]);
    assert_eq!(first["data"]["attempts"], 3);
    assert_eq!(first["data"]["last_status_code"], 502);
    let ids: std::collections::HashSet<&str> =
        got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "one operational event, retried");
    let another = wait_until(std::time::Duration::from_millis(800), || async {
        (ops.count() > 3).then_some(())
    })
    .await;
    assert!(
        another.is_none(),
        "an operational event's failure produced another event"
    );
    app.stop().await;
}

/// An operational event no endpoint subscribes to is not stored: a tenant
/// whose endpoint takes every type (`*`, which does not include
/// operational types) sees its failed delivery, and no
/// `message.attempt.exhausted` event in its list.
#[tokio::test]
async fn an_operational_event_no_endpoint_subscribes_to_is_not_stored() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let broken = spawn_receiver(vec![], Reply::status(502)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": broken.url, "events": ["*"]}))
        .await;
    let p = ids::partition_of(IdKind::Endpoint, endpoint["id"].as_str().unwrap()).unwrap();
    let event = app.publish(&key, "video.processed", json!({})).await;
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["failed"])
        .await;
    // The failure left a notice; the worker takes it up and drops it.
    let keys = app.keys();
    let taken = wait_until(Duration::from_secs(10), || async {
        (app.zcard(&keys.notices(p)).await == 0).then_some(())
    })
    .await;
    assert!(taken.is_some(), "the notice was not taken up");
    let (status, page) = app.get("/api/v1/events", &key).await;
    assert_eq!(status, 200, "{page}");
    let types: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(types, ["video.processed"], "{page}");
    assert_eq!(
        broken.count(),
        3,
        "the failing endpoint got an operational event"
    );
    app.stop().await;
}

/// Operational events are sent at least once: a worker that dies after
/// recording the attempt that ended a delivery `failed`, before publishing
/// `message.attempt.exhausted`, leaves a notice in the partition (written
/// in the same step as the failure), and another worker's sweep publishes
/// it. Published a second time (a sweep racing the worker that recorded
/// it), the notice makes no second event.
#[tokio::test]
async fn an_operational_event_left_unpublished_by_a_dead_worker_is_sent() {
    let mut app = TestApp::builder().fanout_recovery("1s").spawn().await;
    let ops = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key,
        endpoint: ops_endpoint,
        ..
    } = app
        .tenant_with_endpoint(&ops.url, &["message.attempt.exhausted"])
        .await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": "https://example.com/h", "events": ["video.processed"]}),
        )
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let p = ids::partition_of(IdKind::Endpoint, endpoint_id).unwrap();
    let event = app.publish(&key, "video.processed", json!({})).await;
    let event_id = event["id"].as_str().unwrap();

    // The dying worker: claims the delivery, gets a 400 (not retried),
    // records the delivery failed, and stops before publishing.
    let pool = hookfleet_common::redis_pool::create_pool(&app.config).unwrap();
    let keys = app.keys();
    let claimed = hookfleet_worker::claim::claim(
        &pool,
        &keys,
        p,
        10,
        claim_settings(60_000),
        &hookfleet_worker::claim::TenantSlots::unlimited(),
    )
    .await
    .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let job = &claimed.jobs[0];
    let result = hookfleet_worker::deliver::AttemptResult {
        status: Some(400),
        ..Default::default()
    };
    let recorded = record_one(
        &pool,
        &keys,
        &app.config,
        job,
        &result,
        hookfleet_worker::record::Decision::Failed,
    )
    .await;
    assert!(recorded.held);
    assert_eq!(recorded.notices.len(), 1, "{recorded:?}");
    app.wait_for_deliveries(&key, event_id, &["failed"]).await;
    assert_eq!(app.zcard(&keys.notices(p)).await, 1);

    // Another worker publishes what the dead one left.
    app.start_worker();
    let got = ops.wait_for(1).await;
    let sent = body(&got[0]);
    assert_eq!(sent["type"], "message.attempt.exhausted");
    assert_eq!(sent["data"]["event_id"], event_id);
    assert_eq!(sent["data"]["delivery_id"], job.delivery_id.as_str());
    assert_eq!(sent["data"]["endpoint_id"], endpoint_id);
    assert_eq!(sent["data"]["attempts"], 1);
    assert_eq!(sent["data"]["last_status_code"], 400);
    let emptied = wait_until(Duration::from_secs(10), || async {
        (app.zcard(&keys.notices(p)).await == 0).then_some(())
    })
    .await;
    assert!(emptied.is_some(), "the published notice was not removed");

    // The same notice published again creates nothing.
    let mut conn = app.redis().await;
    let _: () = conn
        .zadd(
            keys.notices(p),
            &recorded.notices[0],
            now_ms().saturating_sub(5_000),
        )
        .await
        .unwrap();
    let emptied = wait_until(Duration::from_secs(10), || async {
        (app.zcard(&keys.notices(p)).await == 0).then_some(())
    })
    .await;
    assert!(emptied.is_some(), "the sweep did not take the notice");
    let ops_id = ops_endpoint["id"].as_str().unwrap();
    let (status, page) = app
        .get(&format!("/api/v1/webhooks/{ops_id}/deliveries"), &key)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    app.stop().await;
}

/// A notice whose publishing fails stays, moved to the back of the sweep's
/// line (the sweep takes the oldest, so notices that keep failing would
/// otherwise hold up the rest), and is sent once publishing works again.
#[tokio::test]
async fn a_notice_whose_publish_fails_waits_at_the_back_and_is_sent_later() {
    let mut app = TestApp::builder().fanout_recovery("1s").spawn().await;
    let ops = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { tenant_id, key, .. } = app
        .tenant_with_endpoint(&ops.url, &["message.attempt.exhausted"])
        .await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": "https://example.com/h", "events": ["video.processed"]}),
        )
        .await;
    let p = ids::partition_of(IdKind::Endpoint, endpoint["id"].as_str().unwrap()).unwrap();
    app.publish(&key, "video.processed", json!({})).await;
    let pool = hookfleet_common::redis_pool::create_pool(&app.config).unwrap();
    let keys = app.keys();
    let claimed = hookfleet_worker::claim::claim(
        &pool,
        &keys,
        p,
        10,
        claim_settings(60_000),
        &hookfleet_worker::claim::TenantSlots::unlimited(),
    )
    .await
    .unwrap();
    let result = hookfleet_worker::deliver::AttemptResult {
        status: Some(400),
        ..Default::default()
    };
    let recorded = record_one(
        &pool,
        &keys,
        &app.config,
        &claimed.jobs[0],
        &result,
        hookfleet_worker::record::Decision::Failed,
    )
    .await;
    let notice = recorded.notices[0].clone();
    let mut conn = app.redis().await;
    let score = || async {
        let score: Option<f64> = pool
            .get()
            .await
            .unwrap()
            .zscore(keys.notices(p), &notice)
            .await
            .unwrap();
        score
    };
    let recorded_at = score().await.unwrap();

    // Publishing for this tenant fails: its endpoint index is unreadable.
    let index = keys.tenant_endpoints(&tenant_id);
    let saved: Vec<(String, String)> = conn.hgetall(&index).await.unwrap();
    let _: () = conn.del(&index).await.unwrap();
    let _: () = conn.set(&index, "not a hash").await.unwrap();
    app.start_worker();
    let moved = wait_until(Duration::from_secs(10), || async {
        let now = score().await;
        now.filter(|at| *at > recorded_at).map(|_| ())
    })
    .await;
    assert!(moved.is_some(), "the failed notice was not moved back");
    assert_eq!(ops.count(), 0);

    // Publishing works again: the notice is sent and removed.
    let _: () = conn.del(&index).await.unwrap();
    let _: () = conn.hset_multiple(&index, &saved).await.unwrap();
    let got = ops.wait_for(1).await;
    assert_eq!(body(&got[0])["type"], "message.attempt.exhausted");
    let emptied = wait_until(Duration::from_secs(10), || async {
        (app.zcard(&keys.notices(p)).await == 0).then_some(())
    })
    .await;
    assert!(emptied.is_some());
    app.stop().await;
}
