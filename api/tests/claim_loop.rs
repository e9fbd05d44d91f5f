//! The worker's claim loop sets aside a partition whose last claim found
//! nothing due, instead of claiming every partition on every round; a
//! wake-up, the partition's next due time or the poll interval brings it
//! back. Both tests run a worker process with a poll interval far longer
//! than their deadlines, so only those mechanisms can deliver in time.

mod common;

use std::time::Duration;

use common::{
    counter, free_port, spawn_app, spawn_logged, spawn_receiver, wait_until, worker_binary,
    worker_env, Reply,
};
use hookfleet_common::ids::{self, IdKind, Partition};
use serde_json::json;

/// Publishes `n` events in one batch request.
async fn publish_batch(app: &common::TestApp, key: &str, n: usize) {
    let events: Vec<_> = (0..n)
        .map(|i| json!({"event_type": "user.created", "data": {"n": i}}))
        .collect();
    let (status, answer) = app
        .post("/api/v1/events/batch", key, json!({ "events": events }))
        .await;
    assert_eq!((status, &answer["accepted"]), (202, &json!(n)));
}

/// Starts a worker process of `app`'s fleet that polls only every 60 s;
/// returns it and where it serves its metrics.
fn spawn_slow_polling_worker(
    app: &common::TestApp,
    extra: &[(&str, &str)],
) -> (common::LoggedChild, String) {
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    let mut settings = vec![
        ("HOOKFLEET_POLL_INTERVAL", "60s"),
        ("HOOKFLEET_METRICS_LISTEN", metrics_listen.as_str()),
    ];
    settings.extend_from_slice(extra);
    let worker = spawn_logged(worker_binary(), &worker_env(&app.config, &settings));
    (worker, metrics_listen)
}

/// Waits until `receiver` has `n` requests.
async fn wait_for_requests(receiver: &common::Receiver, n: usize) {
    let received = wait_until(Duration::from_secs(30), || async {
        (receiver.count() >= n).then_some(())
    })
    .await;
    assert!(received.is_some(), "received {} of {n}", receiver.count());
}

/// An app of 16 partitions (no worker) with one tenant (its key) and one
/// endpoint on a receiver answering 200.
async fn app_with_one_endpoint() -> (common::TestApp, String, common::Receiver) {
    let app = spawn_app(false, &[("HOOKFLEET_PARTITIONS", "16")]).await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    app.endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    (app, key, receiver)
}

/// 300 deliveries queued in one partition of 16 are drained with about one
/// empty claim per partition, not 15 per round of claims.
#[tokio::test]
async fn a_busy_partition_is_drained_without_claiming_the_empty_ones() {
    const EVENTS: usize = 300;
    let (app, key, receiver) = app_with_one_endpoint().await;
    publish_batch(&app, &key, EVENTS).await;
    let (worker, metrics_listen) = spawn_slow_polling_worker(&app, &[]);
    wait_for_requests(&receiver, EVENTS).await;
    let claims = counter(&metrics_listen, "hookfleet_claims_total")
        .await
        .unwrap();
    let empty = counter(&metrics_listen, "hookfleet_claims_empty_total")
        .await
        .unwrap();
    // At least ceil(300 / 64) = 5 rounds claimed the busy partition; with
    // every partition claimed on every round that alone is 75 empty claims.
    assert!(
        empty <= 32.0,
        "{empty} empty claims of {claims}; log:\n{}",
        worker.log()
    );
    assert!(claims >= 5.0, "{claims}");
    drop(worker);
    app.stop().await;
}

/// A retry recorded into a partition the loop had set aside as empty is
/// attempted at its due time, not at the next poll.
#[tokio::test]
async fn a_retry_brings_its_partition_back_before_the_poll_interval() {
    let app = spawn_app(false, &[]).await;
    let (_, key) = app.tenant("acme").await;
    // The first answer is slow, so the loop has found the partition empty
    // (the delivery in flight) and set it aside before the retry exists.
    let receiver = spawn_receiver(
        vec![Reply::status(503).with_delay(Duration::from_millis(500))],
        Reply::status(200),
    )
    .await;
    app.endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let (worker, _) = spawn_slow_polling_worker(&app, &[("HOOKFLEET_RETRY_SCHEDULE", "0s,300ms")]);
    let event = app.publish(&key, "user.created", json!({})).await;
    let done = wait_until(Duration::from_secs(20), || async {
        (receiver.count() >= 2).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "received {} of 2 attempts; log:\n{}",
        receiver.count(),
        worker.log()
    );
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;
    drop(worker);
    app.stop().await;
}

/// A burst published while the worker waits (one batch request: a
/// pipeline of `publish.lua` calls, each with its wake-up) is delivered,
/// with many deliveries per claim rather than a claim per wake-up.
#[tokio::test]
async fn a_burst_published_while_the_worker_waits_is_claimed_in_batches() {
    const EVENTS: usize = 300;
    let (app, key, receiver) = app_with_one_endpoint().await;
    let (worker, metrics_listen) = spawn_slow_polling_worker(&app, &[]);
    // The worker is up (and has looked at every partition) once its
    // metrics answer with a first round of claims.
    wait_until(Duration::from_secs(10), || async {
        counter(&metrics_listen, "hookfleet_claims_total")
            .await
            .filter(|c| *c >= 16.0)
    })
    .await
    .expect("the worker starts");
    let before = counter(&metrics_listen, "hookfleet_claims_total")
        .await
        .unwrap();
    publish_batch(&app, &key, EVENTS).await;
    wait_for_requests(&receiver, EVENTS).await;
    let claims = counter(&metrics_listen, "hookfleet_claims_total")
        .await
        .unwrap()
        - before;
    assert!(
        claims <= (EVENTS / 6) as f64,
        "{claims} claims for {EVENTS}"
    );
    drop(worker);
    app.stop().await;
}

/// Invariant 1 through a set-aside partition: a delivery claimed by a
/// worker that then dies (here, claimed by the test and never recorded) is
/// reclaimed when its lease expires, because the empty claim that set the
/// partition aside reported the lease deadline.
#[tokio::test]
async fn an_expired_lease_in_a_set_aside_partition_is_reclaimed_at_its_deadline() {
    let (app, key, receiver) = app_with_one_endpoint().await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let event_id = event["id"].as_str().unwrap();
    let pool = hookfleet_common::redis_pool::create_pool(&app.config).unwrap();
    let keys = app.keys();
    let p = hookfleet_common::ids::partition_of(hookfleet_common::ids::IdKind::Event, event_id)
        .unwrap();
    let claimed = hookfleet_worker::claim::claim(
        &pool,
        &keys,
        p,
        10,
        1_500,
        hookfleet_common::time_util::now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(claimed.jobs.len(), 1, "the dead worker's claim");
    let (worker, metrics_listen) = spawn_slow_polling_worker(&app, &[]);
    wait_for_requests(&receiver, 1).await;
    app.wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    // The worker had set the partition aside (found it empty) before the
    // lease ran out.
    let empty = counter(&metrics_listen, "hookfleet_claims_empty_total")
        .await
        .unwrap();
    assert!(empty >= 1.0, "{empty}");
    drop(worker);
    app.stop().await;
}

/// A partition whose claims fail (its Redis Cluster node away; here, its
/// queue holds a value of the wrong type) is set aside with a back-off of
/// its own, and the other partitions go on being claimed: one claim per
/// delivery (a claim batch of 1) drains at once. When a failing claim ended
/// the round and backed the whole loop off, 40 deliveries took minutes.
#[tokio::test]
async fn a_failing_partition_does_not_hold_up_the_others() {
    const EVENTS: usize = 40;
    let app = spawn_app(false, &[("HOOKFLEET_PARTITIONS", "2")]).await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let healthy = ids::partition_of(IdKind::Endpoint, endpoint_id).unwrap();
    let broken = Partition(1 - healthy.0);
    let keys = app.keys();
    let mut conn = app.redis().await;
    let _: () = redis::cmd("SET")
        .arg(keys.due(broken))
        .arg("not a queue")
        .query_async(&mut conn)
        .await
        .unwrap();
    publish_batch(&app, &key, EVENTS).await;
    let (worker, metrics_listen) =
        spawn_slow_polling_worker(&app, &[("HOOKFLEET_CLAIM_BATCH", "1")]);
    let received = wait_until(Duration::from_secs(20), || async {
        (receiver.count() >= EVENTS).then_some(())
    })
    .await;
    let errors = counter(&metrics_listen, "hookfleet_redis_errors_total").await;
    assert!(
        received.is_some(),
        "received {} of {EVENTS}; claim errors {errors:?}; log:\n{}",
        receiver.count(),
        worker.log()
    );
    drop(worker);
    app.stop().await;
}
