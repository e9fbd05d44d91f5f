//! The worker's claim loop sets aside a partition whose last claim found
//! nothing due, instead of claiming every partition on every round; a
//! wake-up, the partition's next due time or the poll interval brings it
//! back; a wake subscription that goes silent is replaced. The tests run a
//! worker process with a poll interval far longer than their deadlines, so
//! only those mechanisms can deliver in time.

use std::time::Duration;

use hookfleet_common::ids::{self, IdKind, Partition};
use serde_json::json;

use hookfleet_tests::{
    claim_settings, counter, free_port, redis_url, spawn_logged, spawn_receiver, wait_until,
    worker_binary, worker_env, LoggedChild, Receiver, Reply, TenantWithEndpoint, TestApp,
};

/// Publishes `n` events in one batch request.
async fn publish_batch(app: &TestApp, key: &str, n: usize) {
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
fn spawn_slow_polling_worker(app: &TestApp, extra: &[(&str, &str)]) -> (LoggedChild, String) {
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
async fn wait_for_requests(receiver: &Receiver, n: usize) {
    let received = wait_until(Duration::from_secs(30), || async {
        (receiver.count() >= n).then_some(())
    })
    .await;
    assert!(received.is_some(), "received {} of {n}", receiver.count());
}

/// An app of 16 partitions (no worker) with one tenant (its key) and one
/// endpoint on a receiver answering 200.
async fn app_with_one_endpoint() -> (TestApp, String, Receiver) {
    let app = TestApp::builder().partitions(16).spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { key, .. } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
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
    let app = TestApp::builder().spawn().await;
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
/// pipeline of `publish.lua` calls, the first of which wakes the worker)
/// is delivered, with many deliveries per claim rather than a claim per
/// call.
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
        claim_settings(1_500),
        &hookfleet_worker::claim::TenantSlots::unlimited(),
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

/// The next wake-up message (a partition number), or `None` within 5 s.
async fn next_wake(
    messages: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
) -> Option<String> {
    use futures_util::StreamExt;
    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .ok()??;
    msg.get_payload().ok()
}

/// Wake-ups follow the ready set, not every event: a publish wakes the
/// fleet when it makes an endpoint due, not for an endpoint already due
/// (a worker is on its way to it); a claim that leaves due work behind
/// (its batch was full) wakes the fleet itself, so another worker with
/// room takes the rest; one that takes everything wakes nobody. Messages
/// of one Redis arrive in order, so a sentinel in another partition shows
/// which wake-ups were not sent.
#[tokio::test]
async fn wake_ups_are_sent_when_work_becomes_due_and_when_a_claim_leaves_some() {
    let url = redis_url();
    let app = TestApp::builder()
        .redis_url(url.as_str())
        .partitions(2)
        .spawn()
        .await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key,
        endpoint: main,
        ..
    } = app
        .tenant_with_endpoint(&receiver.url, &["user.created"])
        .await;
    let main_p = ids::partition_of(IdKind::Endpoint, main["id"].as_str().unwrap()).unwrap();
    let sentinel_p = loop {
        let sentinel = app
            .endpoint(&key, json!({"url": receiver.url, "events": ["job.failed"]}))
            .await;
        let id = sentinel["id"].as_str().unwrap();
        let p = ids::partition_of(IdKind::Endpoint, id).unwrap();
        if p != main_p {
            break p;
        }
        let (status, _) = app.delete(&format!("/api/v1/webhooks/{id}"), &key).await;
        assert_eq!(status, 204);
    };
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(app.keys().wake_channel()).await.unwrap();
    let mut messages = pubsub.into_on_message();
    let main_code = main_p.0.to_string();
    let sentinel_code = sentinel_p.0.to_string();

    app.publish(&key, "user.created", json!({"n": 1})).await;
    assert_eq!(
        next_wake(&mut messages).await.as_deref(),
        Some(main_code.as_str())
    );
    // Already due: no wake-up for these two.
    app.publish(&key, "user.created", json!({"n": 2})).await;
    app.publish(&key, "user.created", json!({"n": 3})).await;
    app.publish(&key, "job.failed", json!({"n": 4})).await;
    assert_eq!(
        next_wake(&mut messages).await.as_deref(),
        Some(sentinel_code.as_str()),
        "events to an endpoint already due woke the fleet"
    );

    let pool = hookfleet_common::redis_pool::create_pool(&app.config).unwrap();
    let keys = app.keys();
    let claim = |p: Partition, max: usize| {
        let (pool, keys) = (pool.clone(), keys.clone());
        async move {
            hookfleet_worker::claim::claim(
                &pool,
                &keys,
                p,
                max,
                claim_settings(60_000),
                &hookfleet_worker::claim::TenantSlots::unlimited(),
            )
            .await
            .unwrap()
            .jobs
            .len()
        }
    };
    // A full batch leaves two due: the claim hands them off.
    assert_eq!(claim(main_p, 1).await, 1);
    assert_eq!(
        next_wake(&mut messages).await.as_deref(),
        Some(main_code.as_str()),
        "a claim that left due work woke nobody"
    );
    // Claims that take everything wake nobody: the next message is the
    // sentinel's, whose endpoint is due again only after its claim.
    assert_eq!(claim(sentinel_p, 10).await, 1);
    assert_eq!(claim(main_p, 10).await, 2);
    app.publish(&key, "job.failed", json!({"n": 5})).await;
    assert_eq!(
        next_wake(&mut messages).await.as_deref(),
        Some(sentinel_code.as_str())
    );
    app.stop().await;
}

/// A partition whose claims fail (its Redis Cluster node away; here, its
/// ready set holds a value of the wrong type) is set aside with a back-off of
/// its own, and the other partitions go on being claimed: one claim per
/// delivery (a claim batch of 1) drains at once. When a failing claim ended
/// the round and backed the whole loop off, 40 deliveries took minutes.
#[tokio::test]
async fn a_failing_partition_does_not_hold_up_the_others() {
    const EVENTS: usize = 40;
    let app = TestApp::builder().partitions(2).spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let healthy = ids::partition_of(IdKind::Endpoint, &endpoint_id).unwrap();
    let broken = Partition(1 - healthy.0);
    let keys = app.keys();
    let mut conn = app.redis().await;
    let _: () = redis::cmd("SET")
        .arg(keys.ready(broken))
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

/// A TCP proxy to Redis that can silence the subscriber connections it
/// carries (those that sent `SUBSCRIBE`): their bytes are dropped both
/// ways while both sockets stay open, as when a NAT or load balancer
/// forgets an idle flow. Other connections, and subscriber connections
/// opened after the silencing, pass through.
struct SilencingProxy {
    url: String,
    /// Connections with a number below this are silenced.
    silenced_below: std::sync::Arc<std::sync::atomic::AtomicU64>,
    next_connection: std::sync::Arc<std::sync::atomic::AtomicU64>,
    subscribers: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SilencingProxy {
    async fn start(upstream: String) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let silenced_below = Arc::new(AtomicU64::new(0));
        let next_connection = Arc::new(AtomicU64::new(1));
        let subscribers = Arc::new(AtomicU64::new(0));
        let (below, next, subs) = (
            silenced_below.clone(),
            next_connection.clone(),
            subscribers.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = next.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let subscriber = Arc::new(AtomicBool::new(false));
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let silent = {
                    let (below, subscriber) = (below.clone(), subscriber.clone());
                    move || {
                        subscriber.load(Ordering::SeqCst) && number < below.load(Ordering::SeqCst)
                    }
                };
                let silent_up = silent.clone();
                let (subscriber_up, subs) = (subscriber.clone(), subs.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_read.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buffer[..n];
                        // (Wake subscriptions only: the API subscribes to
                        // test-send notices through the proxy too.)
                        if !subscriber_up.load(Ordering::SeqCst)
                            && chunk
                                .windows(9)
                                .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
                            && chunk.windows(5).any(|w| w == b":wake")
                        {
                            subscriber_up.store(true, Ordering::SeqCst);
                            subs.fetch_add(1, Ordering::SeqCst);
                        }
                        if !silent_up() && server_write.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(n) = server_read.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        if !silent() && client_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        SilencingProxy {
            url,
            silenced_below,
            next_connection,
            subscribers,
        }
    }

    /// Silences every subscriber connection open now.
    fn silence_subscribers(&self) {
        use std::sync::atomic::Ordering;
        let next = self.next_connection.load(Ordering::SeqCst);
        self.silenced_below.store(next, Ordering::SeqCst);
    }

    /// Subscriber connections opened so far.
    fn subscribers(&self) -> u64 {
        self.subscribers.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A wake subscription whose connection goes silent (dropped on the way
/// without a reset, so it never ends) is noticed by its keepalive ping and
/// replaced: the worker subscribes again and wake-ups deliver at once
/// again, with the poll interval at 60 s. Without the ping, the worker
/// never resubscribes and delivers only at its next poll.
#[tokio::test]
async fn a_silently_dropped_wake_subscription_is_replaced() {
    let upstream = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_string();
    let proxy = SilencingProxy::start(upstream).await;
    let app = TestApp::builder()
        .redis_url(proxy.url.as_str())
        .spawn()
        .await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { key, .. } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let (worker, _) = spawn_slow_polling_worker(&app, &[("HOOKFLEET_WAKE_KEEPALIVE", "500ms")]);
    let subscribed = wait_until(Duration::from_secs(10), || async {
        (proxy.subscribers() >= 1).then_some(())
    })
    .await;
    assert!(subscribed.is_some(), "log:\n{}", worker.log());
    app.publish(&key, "user.created", json!({"n": 1})).await;
    wait_for_requests(&receiver, 1).await;
    // A subscription that answers its pings is kept: no new one over four
    // keepalive periods.
    let replaced_early = wait_until(Duration::from_secs(2), || async {
        (proxy.subscribers() >= 2).then_some(())
    })
    .await;
    assert!(
        replaced_early.is_none(),
        "a healthy subscription was replaced; log:\n{}",
        worker.log()
    );

    proxy.silence_subscribers();
    let replaced = wait_until(Duration::from_secs(10), || async {
        (proxy.subscribers() >= 2).then_some(())
    })
    .await;
    assert!(
        replaced.is_some(),
        "no new subscription; log:\n{}",
        worker.log()
    );
    assert!(
        worker.log().contains("subscription silent"),
        "{}",
        worker.log()
    );
    // The new subscription carries wake-ups: delivered long before a poll.
    app.publish(&key, "user.created", json!({"n": 2})).await;
    let delivered = wait_until(Duration::from_secs(10), || async {
        (receiver.count() >= 2).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "log:\n{}", worker.log());
    drop(worker);
    app.stop().await;
}
