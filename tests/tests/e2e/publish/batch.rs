//! `POST /api/v1/events/batch`: many events in one request, each published
//! exactly as `POST /api/v1/events` would, with per-item results; the whole
//! batch is validated before anything is written. And single publishes
//! arriving together, which share `publish.lua` calls the same way.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use hookfleet_tests::{
    command_calls, spawn_receiver, wait_until, OwnRedis, Reply, TenantWithEndpoint, TestApp,
};

const BATCH: &str = "/api/v1/events/batch";

fn events(n: usize, event_type: &str) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"event_type": event_type, "data": {"n": i}}))
        .collect()
}

fn ids(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            r["id"]
                .as_str()
                .expect("an accepted item has an id")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn every_event_of_a_batch_is_delivered() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let users = spawn_receiver(vec![], Reply::status(200)).await;
    let everything = spawn_receiver(vec![], Reply::status(204)).await;
    app.endpoint(&key, json!({"url": users.url, "events": ["user.created"]}))
        .await;
    app.endpoint(&key, json!({"url": everything.url, "events": ["*"]}))
        .await;

    let mut batch = events(40, "user.created");
    batch.extend(events(10, "video.processed"));
    let (status, answer) = app.post(BATCH, &key, json!({ "events": batch })).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 50);
    assert_eq!(answer["failed"], 0);
    let results = answer["results"].as_array().unwrap();
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], i);
        assert_eq!(result["duplicate"], false);
        assert!(result.get("error").is_none(), "{result}");
        let expected = if i < 40 { 2 } else { 1 };
        assert_eq!(result["deliveries"], expected, "{result}");
    }
    let ids = ids(&answer);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        50,
        "ids are distinct"
    );

    let got = users.wait_for(40).await;
    let to_users: BTreeSet<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(to_users, ids[..40].iter().map(String::as_str).collect());
    let got = everything.wait_for(50).await;
    let to_all: BTreeSet<&str> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(to_all, ids.iter().map(String::as_str).collect());
    // Bodies are the same as a single publish's, data as sent.
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert!(body["data"]["n"].is_u64(), "{body}");

    let event = app
        .wait_for_deliveries(&key, &ids[45], &["delivered"])
        .await;
    assert_eq!(event["event_type"], "video.processed");
    // Each result names its own event, across the publish.lua calls the
    // batch was split into (at most 40 events per call).
    for (i, id) in ids.iter().enumerate() {
        let (status, event) = app.get(&format!("/api/v1/events/{id}"), &key).await;
        assert_eq!(status, 200, "{event}");
        let (event_type, n) = if i < 40 {
            ("user.created", i)
        } else {
            ("video.processed", i - 40)
        };
        assert_eq!(event["event_type"], event_type, "item {i}");
        assert_eq!(event["data"], json!({ "n": n }), "item {i}");
    }
    app.stop().await;
}

#[tokio::test]
async fn idempotency_keys_work_per_event() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint { key, .. } = app
        .tenant_with_endpoint("https://example.com/h", &["*"])
        .await;
    let item = |k: &str, n: u64| json!({"event_type": "user.created", "data": {"n": n}, "idempotency_key": k});

    let (status, first) = app
        .post(
            BATCH,
            &key,
            json!({"events": [item("a", 1), item("b", 2), item("a", 3)]}),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let first_ids = ids(&first);
    assert_ne!(first_ids[0], first_ids[1]);
    assert_eq!(first_ids[2], first_ids[0], "a key repeated in one batch");
    assert_eq!(first["results"][2]["duplicate"], true);
    assert_eq!(first["results"][2]["deliveries"], 1);

    let (status, second) = app
        .post(BATCH, &key, json!({"events": [item("a", 4), item("c", 5)]}))
        .await;
    assert_eq!(status, 202, "{second}");
    let second_ids = ids(&second);
    assert_eq!(second_ids[0], first_ids[0]);
    assert_eq!(second["results"][0]["duplicate"], true);
    assert_eq!(second["results"][1]["duplicate"], false);
    assert!(!first_ids.contains(&second_ids[1]));

    // The batch's keys and the single route's header share one namespace.
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "b")
        .json(&json!({"event_type": "user.created", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let single: Value = response.json().await.unwrap();
    assert_eq!(single["id"].as_str(), Some(first_ids[1].as_str()));

    // The first event kept its data: a repeat creates nothing.
    let (_, event) = app
        .get(&format!("/api/v1/events/{}", first_ids[0]), &key)
        .await;
    assert_eq!(event["data"], json!({"n": 1}));
    app.stop().await;
}

/// The README's "Errors" section: the batch its example sends (the `-d`
/// of its `curl`) and the answer it shows.
fn readme_error_example() -> (Value, Value) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Errors\n")
        .nth(1)
        .expect("an Errors section");
    let request = section
        .split("-d '")
        .nth(1)
        .and_then(|rest| rest.split("'\n").next())
        .expect("a curl -d '…' in the Errors section");
    let answer = section
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a json block in the Errors section");
    (
        serde_json::from_str(request).expect("the example request is JSON"),
        serde_json::from_str(answer).expect("the example answer is JSON"),
    )
}

#[tokio::test]
async fn the_readmes_error_example_is_what_the_api_answers() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let (request, shown) = readme_error_example();
    let (status, answer) = app.post(BATCH, &key, request).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer, shown, "the README shows another answer");
    // The spec's example of the batch route's 422 is the same answer.
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("the spec is JSON");
    assert_eq!(
        spec["paths"][BATCH]["post"]["responses"]["422"]["content"]
            ["application/json; charset=utf-8"]["example"],
        shown
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bad_event_refuses_the_whole_batch_and_writes_nothing() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint { key, .. } = app
        .tenant_with_endpoint("https://example.com/h", &["*"])
        .await;
    let good = || json!({"event_type": "user.created", "data": {}});
    let with_bad = |bad: Value| json!({"events": [good(), good(), bad, good()]});
    let cases: Vec<(Value, u16, &str)> = vec![
        (with_bad(json!({"data": {}})), 422, "events[2].event_type"),
        (
            with_bad(json!({"event_type": "user.created"})),
            422,
            "events[2].data",
        ),
        (
            with_bad(json!({"event_type": "no.such", "data": {}})),
            422,
            "events[2].event_type",
        ),
        (
            with_bad(json!({"event_type": "bad type", "data": {}})),
            422,
            "events[2].event_type",
        ),
        (
            with_bad(json!({"event_type": "endpoint.disabled", "data": {}})),
            422,
            "events[2].event_type",
        ),
        (
            with_bad(json!({"event_type": 7, "data": {}})),
            422,
            "events[2].event_type",
        ),
        (
            with_bad(json!({"event_type": "user.created", "data": [1]})),
            422,
            "events[2].data",
        ),
        (
            with_bad(
                json!({"event_type": "user.created", "data": {}, "idempotency_key": "has space"}),
            ),
            422,
            "events[2].idempotency_key",
        ),
        (
            with_bad(
                json!({"event_type": "user.created", "data": {}, "idempotency_key": "k".repeat(256)}),
            ),
            422,
            "events[2].idempotency_key",
        ),
        (with_bad(json!("x")), 422, "events[2]"),
        (json!({"events": []}), 422, "events"),
        (
            json!({"events": events(1001, "user.created")}),
            422,
            "events",
        ),
        (json!({}), 422, "events"),
        (json!({"events": {}}), 422, "events"),
    ];
    let before = app.snapshot().await;
    for (body, status, field) in cases {
        let (got, error) = app.post(BATCH, &key, body.clone()).await;
        assert_eq!(got, status, "{error}");
        assert_eq!(error["code"], "invalid_field", "{error}");
        assert_eq!(error["field"].as_str(), Some(field), "{error}");
        assert!(error["message"].is_string(), "{error}");
    }
    // An unknown field is named too (serde names the item it is in).
    let (got, error) = app
        .post(
            BATCH,
            &key,
            with_bad(json!({"event_type": "user.created", "data": {}, "extra": 1})),
        )
        .await;
    assert_eq!(got, 422, "{error}");
    assert!(
        error["field"]
            .as_str()
            .unwrap_or("")
            .starts_with("events[2]"),
        "{error}"
    );
    let (got, error) = app
        .post_raw(BATCH, &key, b"{\"events\": [".to_vec(), "application/json")
        .await;
    assert_eq!(got, 400, "{error}");
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused batch wrote something"
    );
    app.stop().await;
}

/// A batch may create at most 100,000 deliveries among its events: with
/// 1,000 webhooks wanting `user.created`, 101 such events are refused
/// (422 naming `events`, nothing written) and 100 are published.
#[tokio::test]
async fn a_batch_creates_at_most_100000_deliveries() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint {
        tenant_id,
        key,
        endpoint: real,
        ..
    } = app
        .tenant_with_endpoint("https://example.com/h", &["user.created"])
        .await;
    // 999 more entries in the tenant's index (publish.lua skips those with
    // no endpoint hash, but the batch counts every entry that matches).
    let keys = app.keys();
    let mut pipe = redis::pipe();
    for n in 0..999u16 {
        let id = hookfleet_common::ids::new_id(
            hookfleet_common::ids::IdKind::Endpoint,
            hookfleet_common::ids::Partition(n % app.config.partitions),
            1,
        );
        pipe.hset(keys.tenant_endpoints(&tenant_id), id, "1 user.*")
            .ignore();
    }
    let _: () = pipe.query_async(&mut app.redis().await).await.unwrap();

    let before = app.snapshot().await;
    let (status, error) = app
        .post(BATCH, &key, json!({"events": events(101, "user.created")}))
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["code"], "invalid_field", "{error}");
    assert_eq!(error["field"], "events", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("101000 deliveries"),
        "{error}"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused batch wrote something"
    );

    // Events of a type no webhook wants count nothing: 100 events that
    // match 1,000 entries and 900 that match none are published.
    let mut mixed = events(100, "user.created");
    mixed.extend(events(900, "video.processed"));
    let (status, answer) = app.post(BATCH, &key, json!({"events": mixed})).await;
    assert_eq!(status, 202, "{}", answer["failed"]);
    assert_eq!(answer["accepted"], 1000);
    let results = answer["results"].as_array().unwrap();
    // (The entries without an endpoint hash are skipped when queued.)
    assert!(results[..100]
        .iter()
        .all(|r| r["deliveries"].as_u64() >= Some(1)));
    assert!(results[100..].iter().all(|r| r["deliveries"] == 0));
    let (status, event) = app
        .get(
            &format!("/api/v1/events/{}", results[0]["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(status, 200);
    let endpoints: Vec<&str> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["webhook_id"].as_str())
        .collect();
    assert_eq!(endpoints, [real["id"].as_str().unwrap()], "{event}");
    app.stop().await;
}

#[tokio::test]
async fn the_whole_batch_obeys_the_payload_limit() {
    let app = TestApp::builder().max_payload(4096).spawn().await;
    let (_, key) = app.tenant("acme").await;
    let before = app.snapshot().await;
    let (status, error) = app
        .post(BATCH, &key, json!({"events": events(200, "user.created")}))
        .await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["code"], "payload_too_large");
    assert_eq!(app.snapshot().await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_batch_events() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, alice) = app.tenant("alice").await;
    let (_, bob) = app.tenant("bob").await;
    let alices = spawn_receiver(vec![], Reply::status(200)).await;
    let bobs = spawn_receiver(vec![], Reply::status(200)).await;
    app.endpoint(&alice, json!({"url": alices.url, "events": ["*"]}))
        .await;
    app.endpoint(&bob, json!({"url": bobs.url, "events": ["*"]}))
        .await;
    let item = json!({"event_type": "user.created", "data": {}, "idempotency_key": "shared"});

    let (status, answer) = app
        .post(
            BATCH,
            &alice,
            json!({"events": [item, {"event_type": "job.failed", "data": {}}]}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let alice_ids = ids(&answer);
    alices.wait_for(2).await;
    for id in &alice_ids {
        let (status, _) = app.get(&format!("/api/v1/events/{id}"), &bob).await;
        assert_eq!(status, 404, "bob reads alice's event {id}");
    }
    // Idempotency keys are per tenant: bob's "shared" is a new event.
    let (status, answer) = app.post(BATCH, &bob, json!({"events": [item]})).await;
    assert_eq!(status, 202, "{answer}");
    let bob_ids = ids(&answer);
    assert_ne!(bob_ids[0], alice_ids[0]);
    assert_eq!(answer["results"][0]["duplicate"], false);
    bobs.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(alices.count(), 2, "alice got only her own events");
    assert_eq!(bobs.count(), 1, "bob got only his own event");
    app.stop().await;
}

/// Single publishes that arrive while a `publish.lua` call is in flight
/// (here held up by `CLIENT PAUSE`) share one call once it returns, and
/// each is answered as it would be alone: its own event, or, for a repeated
/// idempotency key, the first one's. On a private Redis, whose command
/// counts are this test's alone.
#[tokio::test]
async fn single_publishes_arriving_together_share_calls() {
    const PUBLISHES: usize = 20;
    let redis = OwnRedis::start();
    let url = redis.url();
    // One partition: every event has the same home, so one call can
    // carry them all.
    let app = TestApp::builder()
        .redis_url(url.as_str())
        .partitions(1)
        .spawn()
        .await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app
        .tenant_with_endpoint("http://127.0.0.1:9/hook", &["user.created"])
        .await;
    // (Loads the script, so no call below meets NOSCRIPT and runs twice.)
    app.publish(&key, "user.created", json!({"n": -1})).await;
    let mut conn = app.redis().await;
    let before = command_calls(&mut conn, "evalsha").await;
    // (The first publish read the tenant's endpoints; the others match
    // against the API's copy, counted as hits.)
    let hits = || async {
        hookfleet_tests::counter(
            app.authority(),
            "hookfleet_api_index_cache_total{result=\"hit\"}",
        )
        .await
        .unwrap_or(0.0)
    };
    let hits_before = hits().await;
    // Writes wait (the first publish's call among them) until every
    // publish has found its endpoints and is queued behind that call.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(20_000)
        .arg("WRITE")
        .query_async(&mut conn)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..PUBLISHES)
        .map(|i| {
            let mut request = http
                .post(app.url("/api/v1/events"))
                .bearer_auth(&key)
                .json(&json!({"event_type": "user.created", "data": {"n": i}}));
            // Two of them share a key: one event between them.
            if i >= PUBLISHES - 2 {
                request = request.header("Idempotency-Key", "order-7");
            }
            tokio::spawn(async move {
                let response = request.send().await.expect("request");
                let status = response.status().as_u16();
                let body: Value = response.json().await.expect("json");
                (status, body)
            })
        })
        .collect();
    let all_read = wait_until(std::time::Duration::from_secs(15), || async {
        (hits().await - hits_before >= PUBLISHES as f64).then_some(())
    })
    .await;
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        all_read.is_some(),
        "the publishes did not all find their endpoints"
    );
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let calls = command_calls(&mut conn, "evalsha").await - before;
    assert!(
        calls <= 4,
        "{PUBLISHES} publishes took {calls} publish.lua calls"
    );
    let mut event_ids = BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 202, "{body}");
        assert_eq!(body["deliveries"], 1, "{body}");
        event_ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(event_ids.len(), PUBLISHES - 1, "one event per key");
    // And the warm-up's.
    let stored = PUBLISHES as u64;
    let p =
        hookfleet_common::ids::partition_of(hookfleet_common::ids::IdKind::Endpoint, &endpoint_id)
            .unwrap();
    let logged = app
        .zcard(&app.keys().endpoint_deliveries(p, &endpoint_id))
        .await;
    assert_eq!(logged, stored);
    assert_eq!(app.queued_total().await, stored as i64);
    app.stop().await;
}
