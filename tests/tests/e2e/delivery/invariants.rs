//! Design invariants that the spine already carries: one payload per event
//! (2), at-least-once through a dead worker's lease (1), an interrupted
//! fan-out finished by the idempotent retry (1), and lease ownership.

use std::collections::HashMap;
use std::time::Duration;

use hookfleet_common::ids::{self, IdKind, Partition};
use hookfleet_common::store;
use hookfleet_common::time_util::now_ms;
use serde_json::json;

use hookfleet_tests::{
    claim_jobs, claim_settings, endpoint_partition, random_suffix, record_one, spawn_receiver,
    wait_until, Reply, TenantWithEndpoint, TestApp,
};

/// How many stored values (string, hash field, stream field) contain
/// `marker`; an event record counts if the body it makes contains it
/// (its `data` may be stored compressed).
async fn occurrences(app: &TestApp, marker: &str) -> usize {
    let mut conn = app.redis().await;
    let pattern = format!("{}:*", app.config.redis_prefix);
    let all: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut found = 0;
    for key in all {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let values: Vec<String> = match kind.as_str() {
            "string" => vec![redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap()],
            "hash" => {
                let map: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                map.into_iter()
                    .map(
                        |(field, value)| match hookfleet_common::stored_event::EventRecord::parse(
                            &field, &value,
                        ) {
                            Some(record) => record.into_body(),
                            None => String::from_utf8_lossy(&value).into_owned(),
                        },
                    )
                    .collect()
            }
            "set" => redis::cmd("SMEMBERS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "stream" => {
                let raw: redis::Value = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                vec![format!("{raw:?}")]
            }
            _ => Vec::new(),
        };
        found += values.iter().filter(|v| v.contains(marker)).count();
    }
    found
}

#[tokio::test]
async fn fan_out_to_many_endpoints_stores_the_body_once() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let mut partitions = std::collections::BTreeSet::new();
    for i in 0..60 {
        let endpoint = app
            .endpoint(
                &key,
                json!({"url": format!("https://example.com/{i}"), "events": ["*"]}),
            )
            .await;
        partitions
            .insert(ids::partition_of(IdKind::Endpoint, endpoint["id"].as_str().unwrap()).unwrap());
    }
    assert!(partitions.len() > 1, "endpoints spread over partitions");
    let marker = format!("marker-{}", random_suffix());
    let event = app
        .publish(
            &key,
            "user.created",
            json!({"note": marker, "pad": "x".repeat(2000)}),
        )
        .await;
    assert_eq!(event["deliveries"], 60);
    assert_eq!(
        occurrences(&app, &marker).await,
        1,
        "the payload is stored exactly once"
    );

    // Each endpoint's log lists the event once, and 60 deliveries wait.
    let mut listed = 0;
    for id in app.endpoint_ids(&key).await {
        let p = endpoint_partition(&id);
        listed += app.zcard(&app.keys().endpoint_deliveries(p, &id)).await;
    }
    assert_eq!(listed, 60);
    assert_eq!(app.queued_total().await, 60);
    let (_, detail) = app
        .get(
            &format!("/api/v1/events/{}", event["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 60);
    app.stop().await;
}

#[tokio::test]
async fn a_dead_workers_lease_expires_and_another_worker_delivers() {
    let mut app = TestApp::builder().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { key, endpoint, .. } =
        app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let p = ids::partition_of(IdKind::Endpoint, endpoint["id"].as_str().unwrap()).unwrap();
    let event = app.publish(&key, "user.created", json!({})).await;
    let event_id = event["id"].as_str().unwrap().to_string();

    // A worker claims the delivery with a short lease, then "dies": it never
    // attempts or records anything.
    let pool = app.redis_pool();
    let claimed = hookfleet_worker::claim::claim(
        &pool,
        &app.keys(),
        p,
        10,
        claim_settings(300),
        &hookfleet_worker::claim::TenantSlots::unlimited(),
    )
    .await
    .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let dead_job = claimed.jobs[0].clone();
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    assert_eq!(detail["deliveries"][0]["status"], "in_flight");

    // A live worker takes it over once the lease has expired.
    app.start_worker();
    let detail = app
        .wait_for_deliveries(&key, &event_id, &["delivered"])
        .await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(detail["deliveries"][0]["attempts"], 1);

    // The dead worker coming back late cannot overwrite the outcome.
    let late = hookfleet_worker::deliver::AttemptResult {
        status: Some(500),
        ..Default::default()
    };
    let held = record_one(
        &pool,
        &app.keys(),
        &app.config,
        &dead_job,
        &late,
        hookfleet_worker::record::Decision::RetryAt(now_ms() + 60_000),
    )
    .await;
    assert!(!held.held, "a lost lease is reported");
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    assert_eq!(detail["deliveries"][0]["status"], "delivered");
    app.stop().await;
}

#[tokio::test]
async fn an_interrupted_fan_out_is_finished_by_the_idempotent_retry() {
    let mut app = TestApp::builder().partitions(4).spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let all_endpoints = endpoints_in_two_partitions(&app, &key, &receiver.url).await;

    // Simulate an API that ran publish.lua for the home partition and then
    // crashed before the other partitions' fan-out: no 202 was sent.
    let idem = "crash-1";
    let home = ids::partition_for(&format!("{tenant_id}\n{idem}"), app.config.partitions);
    let event_id = store_event_then_die(&app, &tenant_id, home, Some(idem), all_endpoints).await;

    // The client retries with the same key: the fan-out is completed.
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .header("Idempotency-Key", idem)
        .json(&json!({"event_type": "user.created", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let retried: serde_json::Value = response.json().await.unwrap();
    assert_eq!(retried["id"], event_id.as_str());
    assert_eq!(retried["deliveries"], all_endpoints);
    app.start_worker();
    receiver.wait_for(all_endpoints).await;
    let detail = app
        .wait_for_deliveries(&key, &event_id, &["delivered"])
        .await;
    assert_eq!(
        detail["deliveries"].as_array().unwrap().len(),
        all_endpoints
    );
    // A further retry changes nothing.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let again = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .header("Idempotency-Key", idem)
        .json(&json!({"event_type": "user.created", "data": {}}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(again["id"], event_id.as_str());
    assert_eq!(again["deliveries"], all_endpoints);
    app.stop().await;
    assert_eq!(receiver.count(), all_endpoints);
}

/// An app without a worker, a tenant's key, and one endpoint (never
/// reached: the tests drive claim and record by hand) with its partition.
async fn app_with_one_endpoint() -> (TestApp, String, String, Partition) {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app
        .tenant_with_endpoint("http://127.0.0.1:9/hook", &["*"])
        .await;
    let p = ids::partition_of(IdKind::Endpoint, &endpoint_id).unwrap();
    (app, key, endpoint_id, p)
}

/// A publish.lua call that reaches Redis twice (the client lost the first
/// reply and sent it again, as redis-rs' cluster client does after a
/// dropped connection) answers the same and writes nothing again: the
/// delivery it created keeps the state it has reached since.
#[tokio::test]
async fn a_resent_publish_call_writes_nothing_twice() {
    let (app, _key, endpoint_id, p) = app_with_one_endpoint().await;
    let k = app.keys();
    let tenant_id: String = {
        let mut conn = app.redis().await;
        redis::cmd("HGET")
            .arg(k.endpoint(p, &endpoint_id))
            .arg("tenant")
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    // Without an idempotency key, and with one (which the first run stored:
    // the resend must not take its own key for an earlier event's).
    for idempotency_key in [None, Some("order-1")] {
        let event_id = ids::new_id(IdKind::Event, p, now_ms());
        let call = RawPublish {
            tenant_id: &tenant_id,
            home: p,
            event_id: &event_id,
            idempotency_key,
            matched: 1,
            complete: true,
            here: std::slice::from_ref(&endpoint_id),
        };
        let invoke = || call.run(&app);
        let first = invoke().await;
        assert_eq!(first, (1, event_id.clone(), 1, "1".to_string()));
        // The delivery moves on: claimed, attempted and delivered.
        let pool = app.redis_pool();
        let job = claim_jobs(&pool, &k, p).await.remove(0);
        assert_eq!(job.event_id, event_id);
        let ok = hookfleet_worker::deliver::AttemptResult {
            status: Some(200),
            ..Default::default()
        };
        let delivered = hookfleet_worker::record::Decision::Delivered;
        assert!(
            record_one(&pool, &k, &app.config, &job, &ok, delivered)
                .await
                .held
        );
        let before = app.snapshot().await;
        let again = invoke().await;
        assert_eq!(again, first, "idempotency key {idempotency_key:?}");
        let changed = app.changed_since(&before).await;
        assert!(changed.is_empty(), "the resend changed {changed:?}");
    }
    app.stop().await;
}

/// A resent `publish.lua` call of several events, the first a repeat of
/// an idempotency key (it writes nothing in either run): the call decides
/// once whether it ran before, at its first event that is not a repeat,
/// and the resend answers the same and writes nothing.
#[tokio::test]
async fn a_resent_call_of_several_events_led_by_a_repeat_writes_nothing_twice() {
    let (app, _key, endpoint_id, p) = app_with_one_endpoint().await;
    let k = app.keys();
    let tenant_id: String = redis::cmd("HGET")
        .arg(k.endpoint(p, &endpoint_id))
        .arg("tenant")
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    let data = hookfleet_common::event_data::EventData::from_json("{}").unwrap();
    let record = hookfleet_common::stored_event::EventRecord::encode_event(
        &tenant_id,
        "user.created",
        false,
        &data,
        app.config.compress_above,
    );
    // An event with the key "order-9"; then a call of a repeat of that
    // key and two new events, one with a key of its own.
    let event_ids: Vec<String> = (0..4)
        .map(|_| ids::new_id(IdKind::Event, p, now_ms()))
        .collect();
    let events: Vec<store::publish::EventToStore> = event_ids
        .iter()
        .zip([Some("order-9"), Some("order-9"), None, Some("order-10")])
        .map(|(event_id, idempotency_key)| {
            let (bucket, end) = ids::time_bucket(IdKind::Event, event_id).unwrap();
            store::publish::EventToStore {
                event_id,
                record: &record,
                bucket,
                expire_at: end + 86_400_000,
                complete: true,
                matched: 1,
                idempotency_key,
                here: std::slice::from_ref(&endpoint_id),
            }
        })
        .collect();
    let settings = store::publish::PublishSettings {
        initial_delay_ms: 0,
        idempotency_ttl_ms: 86_400_000,
        retained_from: "evt_".into(),
    };
    let call = |events| {
        store::publish::PublishCall::new(&k, settings.clone(), &tenant_id, p, None, events)
    };
    let first = call(&events[..1])
        .invoke(&mut app.redis().await)
        .await
        .unwrap();
    assert_eq!(first[0].0, 1, "{first:?}");
    let call = call(&events[1..]);
    let once = call.invoke(&mut app.redis().await).await.unwrap();
    let (flags, answered): (Vec<i64>, Vec<String>) = once
        .iter()
        .map(|(fresh, id, _, _)| (*fresh, id.clone()))
        .unzip();
    assert_eq!(flags, [0, 1, 1], "{once:?}");
    assert_eq!(
        answered,
        [
            event_ids[0].clone(),
            event_ids[2].clone(),
            event_ids[3].clone()
        ]
    );
    let before = app.snapshot().await;
    let again = call.invoke(&mut app.redis().await).await.unwrap();
    assert_eq!(again, once);
    let changed = app.changed_since(&before).await;
    assert!(changed.is_empty(), "the resend changed {changed:?}");
    app.stop().await;
}

/// A record call that reaches Redis twice (the client lost the first reply
/// and sent it again: the worker's own retry, or redis-rs' in cluster
/// mode) logs and counts the attempt once and answers the same both times.
#[tokio::test]
async fn a_repeated_record_call_logs_and_counts_the_attempt_once() {
    let (app, key, endpoint_id, p) = app_with_one_endpoint().await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let event_id = event["id"].as_str().unwrap().to_string();
    let pool = app.redis_pool();
    let k = app.keys();
    let record = |job: hookfleet_worker::claim::Job, status: u16, decision| {
        let (pool, k, config) = (pool.clone(), k.clone(), app.config.clone());
        async move {
            let result = hookfleet_worker::deliver::AttemptResult {
                status: Some(status),
                ..Default::default()
            };
            record_one(&pool, &k, &config, &job, &result, decision).await
        }
    };

    // A failed attempt, rescheduled for now; the call arrives twice.
    let job = claim_jobs(&pool, &k, p).await.remove(0);
    let retry = hookfleet_worker::record::Decision::RetryAt(now_ms());
    let first = record(job.clone(), 500, retry).await;
    let again = record(job, 500, retry).await;
    assert!(first.held);
    assert_eq!(again, first);
    assert_eq!(app.attempts(&endpoint_id).await.len(), 1);

    // The next attempt succeeds; that call arrives twice too.
    let job = claim_jobs(&pool, &k, p).await.remove(0);
    let delivered = hookfleet_worker::record::Decision::Delivered;
    let first = record(job.clone(), 200, delivered).await;
    let again = record(job, 200, delivered).await;
    assert!(first.held);
    assert_eq!(again, first);
    assert_eq!(app.attempts(&endpoint_id).await.len(), 2);

    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    assert_eq!(detail["deliveries"][0]["status"], "delivered");
    assert_eq!(detail["deliveries"][0]["attempts"], 2);
    let (_, stats) = app
        .get(
            &format!("/api/v1/webhooks/{endpoint_id}/stats?window=1h"),
            &key,
        )
        .await;
    assert_eq!(stats["attempts"], 2, "{stats}");
    app.stop().await;
}

/// One `record.lua` call carrying several attempts (what the worker's
/// recorder sends under load) treats each as if recorded alone: each
/// delivery moves by its own outcome, a lost lease is logged but moves
/// nothing, counters and stats buckets add up to one per attempt, and the
/// whole call resent after a lost reply records nothing twice.
#[tokio::test]
async fn a_batched_record_call_counts_and_moves_each_attempt_once() {
    use hookfleet_worker::deliver::AttemptResult;
    use hookfleet_worker::record::{record_many, Attempted, Decision};

    let (app, key, endpoint_id, p) = app_with_one_endpoint().await;
    let mut event_ids = Vec::new();
    for n in 0..4 {
        let event = app.publish(&key, "user.created", json!({"n": n})).await;
        event_ids.push(event["id"].as_str().unwrap().to_string());
    }
    let pool = app.redis_pool();
    let k = app.keys();
    let mut jobs = claim_jobs(&pool, &k, p).await;
    assert_eq!(jobs.len(), 4);
    jobs.sort_by_key(|job| event_ids.iter().position(|id| *id == job.event_id));
    // The fourth attempt comes from a worker whose lease was taken over.
    jobs[3].lease_token = "999".into();

    let answered = |status: u16| AttemptResult {
        status: Some(status),
        ..Default::default()
    };
    let results = [answered(200), answered(500), answered(400), answered(200)];
    let decisions = [
        Decision::Delivered,
        Decision::RetryAt(now_ms() + 60_000),
        Decision::Failed,
        Decision::Delivered,
    ];
    let at = now_ms();
    let attempted: Vec<Attempted> = (0..4)
        .map(|i| Attempted {
            job: jobs[i].clone(),
            result: results[i].clone(),
            decision: decisions[i],
            at_ms: at,
        })
        .collect();
    let attempted: Vec<&Attempted> = attempted.iter().collect();
    let first = record_many(&pool, &k, &app.config, p, &attempted)
        .await
        .unwrap();
    let held: Vec<bool> = first.iter().map(|r| r.held).collect();
    assert_eq!(held, [true, true, true, false]);
    let again = record_many(&pool, &k, &app.config, p, &attempted)
        .await
        .unwrap();
    let moved = |answers: &[hookfleet_worker::record::Recorded]| -> Vec<(bool, bool)> {
        answers[..3].iter().map(|r| (r.held, r.disabled)).collect()
    };
    assert_eq!(
        moved(&again),
        moved(&first),
        "a resent call gets the same answers"
    );
    // The failed delivery's notice is written once; the resent call leaves
    // it to the sweep instead of answering it again.
    assert_eq!(first[2].notices.len(), 1, "{first:?}");
    assert!(again.iter().all(|r| r.notices.is_empty()), "{again:?}");
    assert_eq!(app.zcard(&k.notices(p)).await, 1);

    let mut statuses = Vec::new();
    for event_id in &event_ids {
        let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
        statuses.push(
            detail["deliveries"][0]["status"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(statuses, ["delivered", "scheduled", "failed", "in_flight"]);
    // Logged once each; the lost-lease attempt was logged by both calls
    // (it happened twice as far as Redis can tell: no lease to tie it to).
    let logged = app.attempts(&endpoint_id).await;
    let per_delivery = |i: usize| {
        logged
            .iter()
            .filter(|entry| entry.get("delivery") == Some(&jobs[i].delivery_id))
            .count()
    };
    assert_eq!(
        (per_delivery(0), per_delivery(1), per_delivery(2)),
        (1, 1, 1)
    );

    let (_, stats) = app
        .get(
            &format!("/api/v1/webhooks/{endpoint_id}/stats?window=1h"),
            &key,
        )
        .await;
    let attempts = logged.len() as u64;
    assert_eq!(stats["attempts"], attempts, "{stats}");
    assert_eq!(stats["delivered"], 1, "{stats}");
    assert_eq!(stats["failed"], 1, "{stats}");
    assert_eq!(stats["last_failure"]["status_code"], 400, "{stats}");
    app.stop().await;
}

/// `record.lua` reads the states of a call's deliveries before its loop
/// and writes them after it; an attempt that comes twice in one call
/// (sent twice by a worker) still sees what the first wrote, as if each
/// ran on its own: logged, counted and moved once, and answered the same.
#[tokio::test]
async fn an_attempt_twice_in_one_record_call_is_recorded_once() {
    use hookfleet_worker::deliver::AttemptResult;
    use hookfleet_worker::record::{record_many, Attempted, Decision};

    let (app, key, endpoint_id, p) = app_with_one_endpoint().await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let event_id = event["id"].as_str().unwrap().to_string();
    let pool = app.redis_pool();
    let k = app.keys();
    let job = claim_jobs(&pool, &k, p).await.remove(0);
    let attempted = Attempted {
        job,
        result: AttemptResult {
            status: Some(500),
            ..Default::default()
        },
        decision: Decision::RetryAt(now_ms() + 60_000),
        at_ms: now_ms(),
    };
    let answers = record_many(&pool, &k, &app.config, p, &[&attempted, &attempted])
        .await
        .unwrap();
    assert!(answers[0].held, "{answers:?}");
    assert_eq!(answers[1], answers[0], "the same answer twice");
    assert_eq!(app.attempts(&endpoint_id).await.len(), 1);
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    assert_eq!(detail["deliveries"][0]["status"], "scheduled", "{detail}");
    assert_eq!(detail["deliveries"][0]["attempts"], 1, "{detail}");
    let (_, stats) = app
        .get(
            &format!("/api/v1/webhooks/{endpoint_id}/stats?window=1h"),
            &key,
        )
        .await;
    assert_eq!(stats["attempts"], 1, "{stats}");
    assert_eq!(stats["attempts_failed"], 1, "{stats}");
    app.stop().await;
}

/// `claim.lua` reads the records of an endpoint's first attempts with one
/// command per events hash: each job carries its own event's record, and
/// an event whose record is gone (expired) is dropped from the queue
/// while the others around it are handed out.
#[tokio::test]
async fn a_claim_hands_out_each_event_with_its_own_record_and_drops_a_gone_one() {
    // One partition: the events live where their deliveries are claimed,
    // so the claim reads their records.
    let app = TestApp::builder().partitions(1).spawn().await;
    let TenantWithEndpoint { key, .. } = app
        .tenant_with_endpoint("http://127.0.0.1:9/hook", &["*"])
        .await;
    let p = Partition(0);
    let mut event_ids = Vec::new();
    for n in 0..5 {
        let event = app.publish(&key, "user.created", json!({"n": n})).await;
        event_ids.push(event["id"].as_str().unwrap().to_string());
    }
    let gone = event_ids[2].clone();
    let home = ids::partition_of(IdKind::Event, &gone).unwrap();
    let (bucket, _) = ids::time_bucket(IdKind::Event, &gone).unwrap();
    let removed: u64 = redis::cmd("HDEL")
        .arg(app.keys().events(home, bucket))
        .arg(&gone)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let queued = app.queued_total().await;
    let pool = app.redis_pool();
    let jobs = claim_jobs(&pool, &app.keys(), p).await;
    let mut handed: Vec<(String, i64)> = jobs
        .iter()
        .map(|job| {
            let event = job.event.as_ref().expect("the claim carries the record");
            let body: serde_json::Value = serde_json::from_str(event.body()).unwrap();
            assert_eq!(body["id"], job.event_id.as_str(), "{body}");
            (job.event_id.clone(), body["data"]["n"].as_i64().unwrap())
        })
        .collect();
    handed.sort_by_key(|(_, n)| *n);
    let expected: Vec<(String, i64)> = [0, 1, 3, 4]
        .iter()
        .map(|&n| (event_ids[n as usize].clone(), n))
        .collect();
    assert_eq!(handed, expected);
    // The gone one left the queue; the four handed out are in flight.
    assert_eq!(app.queued_total().await, queued - 5);
    app.stop().await;
}

/// Record calls of more than 1,000 attempts read and write in slices of
/// 1,000 (Lua's `unpack` has a limit): across the slices' edge, each
/// attempt is checked against its own lease and each state lands in its
/// own field; and each claimed job carries its own event's record.
#[tokio::test]
async fn claims_and_records_of_over_a_thousand_deliveries_keep_each_its_own() {
    use hookfleet_common::delivery_state::StoredState;
    use hookfleet_worker::deliver::AttemptResult;
    use hookfleet_worker::record::{record_many, Attempted, Decision};

    const N: usize = 1_200;
    let app = TestApp::builder().partitions(1).spawn().await;
    let TenantWithEndpoint { key, .. } = app
        .tenant_with_endpoint("http://127.0.0.1:9/hook", &["*"])
        .await;
    let p = Partition(0);
    let mut published: HashMap<String, usize> = HashMap::new();
    for half in 0..2 {
        let events: Vec<_> = (0..N / 2)
            .map(|i| json!({"event_type": "user.created", "data": {"n": half * N / 2 + i}}))
            .collect();
        let (status, answer) = app
            .post("/api/v1/events/batch", &key, json!({"events": events}))
            .await;
        assert_eq!(status, 202, "{answer}");
        for (i, result) in answer["results"].as_array().unwrap().iter().enumerate() {
            let id = result["id"].as_str().unwrap().to_string();
            published.insert(id, half * N / 2 + i);
        }
    }
    let pool = app.redis_pool();
    let k = app.keys();
    let settings = hookfleet_worker::claim::ClaimSettings {
        max_in_flight: 2 * N as u32,
        ..claim_settings(30_000)
    };
    // Two claims, so the jobs hold two lease deadlines; the record call
    // takes them alternately, so an answer read for the wrong attempt
    // meets the other lease.
    let mut halves = Vec::new();
    for _ in 0..2 {
        let claimed = hookfleet_worker::claim::claim(
            &pool,
            &k,
            p,
            N / 2,
            settings,
            &hookfleet_worker::claim::TenantSlots::unlimited(),
        )
        .await
        .unwrap()
        .jobs;
        assert_eq!(claimed.len(), N / 2);
        halves.push(claimed);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_ne!(halves[0][0].lease_token, halves[1][0].lease_token);
    let mut jobs: Vec<_> = halves[0]
        .iter()
        .zip(&halves[1])
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    for job in &jobs {
        let event = job.event.as_ref().expect("the claim carries the record");
        let body: serde_json::Value = serde_json::from_str(event.body()).unwrap();
        assert_eq!(body["data"]["n"], published[&job.event_id], "{body}");
    }
    // Attempts around the slices' edge come from workers whose leases
    // were taken over: logged, but they move nothing.
    let stale = [0, 998, 999, 1_000, 1_001, N - 1];
    for &i in &stale {
        jobs[i].lease_token = "999".into();
    }
    let at = now_ms();
    let attempted: Vec<Attempted> = jobs
        .iter()
        .map(|job| Attempted {
            job: job.clone(),
            result: AttemptResult {
                status: Some(200),
                ..Default::default()
            },
            decision: Decision::Delivered,
            at_ms: at,
        })
        .collect();
    let attempted: Vec<&Attempted> = attempted.iter().collect();
    let answers = record_many(&pool, &k, &app.config, p, &attempted)
        .await
        .unwrap();
    let not_held: Vec<usize> = (0..N).filter(|&i| !answers[i].held).collect();
    assert_eq!(not_held, stale);
    assert_eq!(app.zcard(&k.inflight(p)).await, stale.len() as u64);

    let mut conn = app.redis().await;
    for (i, job) in jobs.iter().enumerate() {
        let (bucket, _) = ids::time_bucket(IdKind::Event, &job.event_id).unwrap();
        let created = ids::created_ms(IdKind::Event, &job.event_id).unwrap();
        let stored: Option<String> = redis::cmd("HGET")
            .arg(k.states(p, bucket))
            .arg(&job.delivery_id[4..])
            .query_async(&mut conn)
            .await
            .unwrap();
        if stale.contains(&i) {
            assert_eq!(stored, None, "attempt {i}");
            continue;
        }
        let stored = stored.unwrap_or_else(|| panic!("attempt {i}: no state"));
        let state = StoredState::parse(&stored, created).unwrap();
        assert_eq!(state.status, "delivered", "attempt {i}: {stored}");
        assert_eq!(state.last_at, Some(at), "attempt {i}: {stored}");
        assert!(
            state.recorded.starts_with(&format!("{}:", job.lease_token)),
            "attempt {i}: {stored}"
        );
    }
    app.stop().await;
}

/// Endpoints of one tenant in at least two partitions, all on `url`.
async fn endpoints_in_two_partitions(app: &TestApp, key: &str, url: &str) -> usize {
    let mut partitions = std::collections::HashSet::new();
    let mut count = 0;
    while partitions.len() < 2 || count < 4 {
        let endpoint = app
            .endpoint(key, json!({"url": url, "events": ["*"]}))
            .await;
        let id = endpoint["id"].as_str().unwrap();
        partitions.insert(ids::partition_of(IdKind::Endpoint, id).unwrap());
        count += 1;
    }
    count
}

/// One event of type `user.created` as a direct `publish.lua` call for its
/// home partition, as the API makes it: `matched` endpoints (all in
/// `home` when `complete`), of which those in `here` (endpoint ids of
/// `home`) get their deliveries in this call.
struct RawPublish<'a> {
    tenant_id: &'a str,
    home: Partition,
    event_id: &'a str,
    idempotency_key: Option<&'a str>,
    matched: usize,
    complete: bool,
    here: &'a [String],
}

impl RawPublish<'_> {
    /// Runs the call; returns `publish.lua`'s answer for the event.
    async fn run(&self, app: &TestApp) -> (i64, String, u64, String) {
        let (k, home, event_id) = (app.keys(), self.home, self.event_id);
        let data = hookfleet_common::event_data::EventData::from_json("{}").unwrap();
        let record = hookfleet_common::stored_event::EventRecord::encode_event(
            self.tenant_id,
            "user.created",
            false,
            &data,
            app.config.compress_above,
        );
        let (bucket, end) = ids::time_bucket(IdKind::Event, event_id).unwrap();
        let event = store::publish::EventToStore {
            event_id,
            record: &record,
            bucket,
            expire_at: end + 86_400_000,
            complete: self.complete,
            matched: self.matched,
            idempotency_key: self.idempotency_key,
            here: self.here,
        };
        let settings = store::publish::PublishSettings {
            initial_delay_ms: 0,
            idempotency_ttl_ms: 86_400_000,
            retained_from: "evt_".into(),
        };
        let call =
            store::publish::PublishCall::new(&k, settings, self.tenant_id, home, None, &[event]);
        let replies = call.invoke(&mut app.redis().await).await.unwrap();
        assert_eq!(replies.len(), 1);
        replies[0].clone()
    }
}

/// Runs `publish.lua` alone, as an API would right before dying: the event
/// is stored (under `idempotency_key` if given), marked incomplete for
/// `matched` endpoints and listed as pending; no partition's deliveries are
/// queued and no 202 is sent. Returns the event id.
async fn store_event_then_die(
    app: &TestApp,
    tenant_id: &str,
    home: Partition,
    idempotency_key: Option<&str>,
    matched: usize,
) -> String {
    let event_id = ids::new_id(IdKind::Event, home, now_ms());
    RawPublish {
        tenant_id,
        home,
        event_id: &event_id,
        idempotency_key,
        matched,
        complete: false,
        here: &[],
    }
    .run(app)
    .await;
    event_id
}

/// An API that dies after storing an event (publish.lua for the home
/// partition) but before queuing the other partitions' deliveries leaves the
/// event pending; with no client retry at all, a worker finishes the
/// fan-out once it has been pending for HOOKFLEET_FANOUT_RECOVERY.
#[tokio::test]
async fn a_fan_out_left_incomplete_is_finished_by_a_worker() {
    let mut app = TestApp::builder()
        .partitions(4)
        .fanout_recovery("1s")
        .spawn()
        .await;
    let (tenant_id, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let all_endpoints = endpoints_in_two_partitions(&app, &key, &receiver.url).await;

    let k = app.keys();
    let home = Partition(0);
    let event_id = store_event_then_die(&app, &tenant_id, home, None, all_endpoints).await;
    let pending = app.zcard(&k.fanout_pending(home)).await;
    assert_eq!(pending, 1, "the stored event is listed as pending");

    app.start_worker();
    receiver.wait_for(all_endpoints).await;
    let detail = app
        .wait_for_deliveries(&key, &event_id, &["delivered"])
        .await;
    assert_eq!(
        detail["deliveries"].as_array().unwrap().len(),
        all_endpoints
    );
    let pending = app.zcard(&k.fanout_pending(home)).await;
    assert_eq!(pending, 0, "the finished fan-out is no longer pending");
    app.stop().await;
    assert_eq!(receiver.count(), all_endpoints, "nothing was sent twice");
}

/// Past HOOKFLEET_FANOUT_INLINE deliveries, publish answers 202 once the
/// event is stored and queues the other partitions right after: the answer
/// counts every matching endpoint, and every one of them gets the event.
#[tokio::test]
async fn a_large_fan_out_is_answered_first_and_queued_in_full() {
    let app = TestApp::builder()
        .with_worker()
        .partitions(4)
        .fanout_inline(1)
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let all_endpoints = endpoints_in_two_partitions(&app, &key, &receiver.url).await;
    let event = app.publish(&key, "user.created", json!({"n": 1})).await;
    assert_eq!(event["deliveries"], all_endpoints);
    let event_id = event["id"].as_str().unwrap();
    receiver.wait_for(all_endpoints).await;
    let detail = app
        .wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    assert_eq!(
        detail["deliveries"].as_array().unwrap().len(),
        all_endpoints
    );
    app.stop().await;
}

/// The scripts' variadic writes (a fan-out's queue entries, a batch's
/// lease changes) go through `prelude.lua`'s `in_slices`: Lua's `unpack`
/// refuses a few thousand values, so a fan-out to thousands of endpoints
/// of one partition would fail without the slicing.
#[tokio::test]
async fn variadic_script_writes_are_sliced_below_luas_unpack_limit() {
    let app = TestApp::builder().spawn().await;
    let prelude = store::PRELUDE;
    let key = format!("{}:{{p0}}:slices-test", app.config.redis_prefix);
    let members: Vec<String> = (0..10_000).map(|n| format!("m{n}")).collect();
    let mut conn = app.redis().await;
    let sliced = redis::Script::new(&format!(
        "{prelude}\nin_slices('SADD', KEYS[1], ARGV)\nreturn redis.call('SCARD', KEYS[1])"
    ));
    let count: usize = sliced
        .key(&key)
        .arg(&members)
        .invoke_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 10_000);
    // What the slicing avoids: one unpack of them all.
    let whole = redis::Script::new("return redis.call('SADD', KEYS[1], unpack(ARGV))");
    let refused: redis::RedisResult<usize> =
        whole.key(&key).arg(&members).invoke_async(&mut conn).await;
    assert!(refused.is_err(), "unpack of 10,000 values should fail");
    app.stop().await;
}

/// A fan-out that fails in another partition after `publish.lua` stored
/// the event is answered 202 all the same, and a worker finishes it: the
/// event is stored and listed as pending, so it will be delivered, while
/// an error would have the client publish it again under a new id, which
/// receivers cannot tell from the first.
#[tokio::test]
async fn a_fan_out_failing_after_the_event_is_stored_is_accepted_and_finished() {
    let mut app = TestApp::builder()
        .partitions(4)
        .fanout_recovery("1s")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let mut partitions = std::collections::BTreeSet::new();
    let mut count = 0;
    while partitions.len() < 2 {
        let endpoint = app
            .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
            .await;
        let id = endpoint["id"].as_str().unwrap();
        partitions.insert(ids::partition_of(IdKind::Endpoint, id).unwrap());
        count += 1;
    }
    // The event's home is the lowest partition; every other one's ready
    // set is made unusable (a value of the wrong type), so fanout.lua fails.
    let k = app.keys();
    let others: Vec<Partition> = partitions.iter().skip(1).copied().collect();
    let mut conn = app.redis().await;
    for p in &others {
        let _: () = redis::pipe()
            .del(k.ready(*p))
            .set(k.ready(*p), "broken")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let (status, event) = app
        .post(
            "/api/v1/events",
            &key,
            json!({"event_type": "user.created", "data": {}}),
        )
        .await;
    assert_eq!(status, 202, "{event}");
    assert_eq!(event["deliveries"], count);
    let event_id = event["id"].as_str().unwrap().to_string();

    for p in &others {
        let _: () = redis::cmd("DEL")
            .arg(k.ready(*p))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    app.start_worker();
    receiver.wait_for(count).await;
    let detail = app
        .wait_for_deliveries(&key, &event_id, &["delivered"])
        .await;
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), count);
    app.stop().await;
}

/// A rotate_secret.lua call that reaches Redis twice (a resend after a lost
/// reply) rotates once: the secret before the call stays the previous one,
/// so receivers still verifying with it keep working through the grace
/// period, and both runs answer the same deadline.
#[tokio::test]
async fn a_resent_rotation_keeps_the_previous_secret() {
    let (app, _key, endpoint_id, p) = app_with_one_endpoint().await;
    let k = app.keys();
    let mut conn = app.redis().await;
    let (tenant_id, before): (String, String) = redis::cmd("HMGET")
        .arg(k.endpoint(p, &endpoint_id))
        .arg("tenant")
        .arg("secret")
        .query_async(&mut conn)
        .await
        .unwrap();
    let new_secret = hookfleet_common::signing::SigningSecret::generate().expose();
    let rotate = || async {
        let endpoint = store::endpoint::EndpointRef {
            tenant_id: &tenant_id,
            partition: p,
            endpoint_id: &endpoint_id,
        };
        store::endpoint::rotate_secret(&mut app.redis().await, &k, endpoint, &new_secret, 60_000)
            .await
            .unwrap()
            .unwrap()
    };
    let first = rotate().await;
    let second = rotate().await;
    assert!(first > 0);
    assert_eq!(second, first);
    let (secret, old_secret): (String, String) = redis::cmd("HMGET")
        .arg(k.endpoint(p, &endpoint_id))
        .arg("secret")
        .arg("old_secret")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(secret, new_secret);
    assert_eq!(
        old_secret, before,
        "the secret before the rotation signs on"
    );
    app.stop().await;
}

/// Finishing an interrupted fan-out keeps the deliveries made before the
/// interruption: an endpoint that matched at publish time and is disabled
/// by the time a worker finishes the fan-out still has its delivery listed
/// under the event, and counted.
#[tokio::test]
async fn a_finished_fan_out_keeps_the_deliveries_made_before_it_was_interrupted() {
    let mut app = TestApp::builder()
        .partitions(4)
        .fanout_recovery("1s")
        .spawn()
        .await;
    let (tenant_id, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let mut endpoints: Vec<(String, Partition)> = Vec::new();
    while endpoints
        .iter()
        .map(|(_, p)| *p)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        < 2
    {
        let endpoint = app
            .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
            .await;
        let id = endpoint["id"].as_str().unwrap().to_string();
        let p = ids::partition_of(IdKind::Endpoint, &id).unwrap();
        endpoints.push((id, p));
    }
    let home = endpoints.iter().map(|(_, p)| *p).min().unwrap();
    // publish.lua ran for the home partition (its deliveries are queued),
    // then the API died before the other partitions.
    let k = app.keys();
    let event_id = ids::new_id(IdKind::Event, home, now_ms());
    let here: Vec<String> = endpoints
        .iter()
        .filter(|(_, p)| *p == home)
        .map(|(id, _)| id.clone())
        .collect();
    RawPublish {
        tenant_id: &tenant_id,
        home,
        event_id: &event_id,
        idempotency_key: None,
        matched: endpoints.len(),
        complete: false,
        here: &here,
    }
    .run(&app)
    .await;
    // Meanwhile the home partition's endpoints are disabled.
    for id in &here {
        let (status, _) = app
            .patch(
                &format!("/api/v1/webhooks/{id}"),
                &key,
                json!({"active": false}),
            )
            .await;
        assert_eq!(status, 200);
    }

    app.start_worker();
    let others = endpoints.len() - here.len();
    receiver.wait_for(others).await;
    let finished = wait_until(Duration::from_secs(20), || async {
        let pending = app.zcard(&k.fanout_pending(home)).await;
        (pending == 0).then_some(())
    })
    .await;
    assert!(finished.is_some(), "a worker finishes the fan-out");
    let (_, event) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    assert_eq!(
        event["deliveries"].as_array().map_or(0, Vec::len),
        endpoints.len(),
        "the event lists every delivery made for it: {event}"
    );
    app.stop().await;
}
