//! The storage layout: what publishing writes for a queued delivery (an
//! event's record in its bucket's hash, the event id in each endpoint's
//! log, nothing per delivery), what a recorded attempt adds (the
//! delivery's state, one field), and the layout check both binaries run at
//! start.

use hookfleet_common::delivery_state::StoredState;
use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::stored_event::EventRecord;
use serde_json::{json, Value};

use hookfleet_tests::{python_accepts, spawn_receiver, Receiver, Reply, TestApp};

async fn hget<T: redis::FromRedisValue>(app: &TestApp, key: &str, field: &str) -> Option<T> {
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut app.redis().await)
        .await
        .unwrap()
}

/// Overwrites one field of a hash, as an earlier version would have
/// written it.
async fn hset(app: &TestApp, key: &str, field: &str, value: impl redis::ToRedisArgs) {
    let () = redis::cmd("HSET")
        .arg(key)
        .arg(field)
        .arg(value)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
}

/// The events and states hashes of an event's home partition and bucket.
fn hashes_of(app: &TestApp, event_id: &str) -> (String, String) {
    let k = app.keys();
    let home = ids::partition_of(IdKind::Event, event_id).unwrap();
    let (bucket, _) = ids::time_bucket(IdKind::Event, event_id).unwrap();
    (k.events(home, bucket), k.states(home, bucket))
}

/// One partition, a tenant (its id and key) and one endpoint for every
/// event on a receiver answering 200.
async fn one_endpoint() -> (TestApp, String, String, Receiver, Value) {
    let app = TestApp::builder().partitions(1).spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    (app, tenant_id, key, receiver, endpoint)
}

/// Publishing an event to the endpoints of one partition writes its
/// record once into its bucket's hash and its id into each endpoint's log,
/// and touches nothing else but the partition's ready set and counter: no
/// key per event, none per delivery. Its first recorded attempt adds one
/// field, the delivery's state; the body is delivered as stored.
#[tokio::test]
async fn a_queued_delivery_is_a_log_entry_beside_its_events_record() {
    let mut app = TestApp::builder().partitions(1).spawn().await;
    let k = app.keys();
    let (tenant_id, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let mut endpoints = Vec::new();
    for _ in 0..2 {
        let endpoint = app
            .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
            .await;
        endpoints.push(endpoint);
    }
    let before = app.snapshot().await;
    let data = json!({"note": "x".repeat(150)});
    let event = app.publish(&key, "user.created", data.clone()).await;
    let event_id = event["id"].as_str().unwrap();
    assert_eq!(event["deliveries"], 2);
    let home = ids::partition_of(IdKind::Event, event_id).unwrap();
    let (bucket, _) = ids::time_bucket(IdKind::Event, event_id).unwrap();
    let events_key = k.events(home, bucket);
    let mut expected = vec![
        events_key.clone(),
        k.queued(home),
        k.ready(home),
        k.tenant_events(home, &tenant_id),
    ];
    for endpoint in &endpoints {
        let id = endpoint["id"].as_str().unwrap();
        expected.push(k.endpoint_deliveries(home, id));
    }
    expected.sort();
    let mut changed = app.changed_since(&before).await;
    changed.sort();
    assert_eq!(changed, expected, "what publishing wrote");

    // The record: tenant, type and the body every attempt sends.
    let stored: Vec<u8> = hget(&app, &events_key, event_id).await.unwrap();
    let record = EventRecord::parse(event_id, &stored).unwrap();
    assert_eq!(record.tenant_id, tenant_id);
    assert_eq!(record.event_type, "user.created");
    assert!(!record.test);
    let body: Value = serde_json::from_str(record.body()).unwrap();
    assert_eq!(body["data"], data);
    let detail = app.wait_for_deliveries(&key, event_id, &["pending"]).await;
    assert_eq!(detail["deliveries"].as_array().unwrap().len(), 2);

    app.start_worker();
    let received = receiver.wait_for(2).await;
    for request in &received {
        assert_eq!(request.body, record.body());
    }
    let secret = endpoints[0]["secret"].as_str().unwrap();
    let to_first = received
        .iter()
        .find(|r| python_accepts(secret, r))
        .expect("a request signed with the first endpoint's secret");
    assert_eq!(to_first.header("webhook-id"), Some(event_id));
    let detail = app
        .wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    for delivery in detail["deliveries"].as_array().unwrap() {
        let id = delivery["id"].as_str().unwrap();
        let stored: Option<String> = hget(&app, &k.states(home, bucket), &id[4..]).await;
        let stored = stored.expect("a state once attempted");
        // Its times relative: at most 28 bytes, which with Redis's header
        // and terminator fit a 32-byte allocation.
        assert!(stored.starts_with("D|1|") && stored.len() <= 28, "{stored}");
    }
    assert_eq!(app.queued_total().await, 0);
    app.stop().await;
}

/// One event published and delivered to the only endpoint, with its
/// delivery's stored state as written and as Rust reads it.
struct DeliveredOne {
    created: u64,
    delivery_id: String,
    states: String,
    stored: String,
    state: StoredState,
}

async fn deliver_one(app: &TestApp, key: &str, n: usize) -> DeliveredOne {
    let event = app.publish(key, "user.created", json!({"n": n})).await;
    let event_id = event["id"].as_str().unwrap().to_string();
    let created = ids::created_ms(IdKind::Event, &event_id).unwrap();
    let detail = app
        .wait_for_deliveries(key, &event_id, &["delivered"])
        .await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_string();
    let (_, states) = hashes_of(app, &event_id);
    let stored: String = hget(app, &states, &delivery_id[4..]).await.unwrap();
    let state = StoredState::parse(&stored, created).unwrap();
    DeliveredOne {
        created,
        delivery_id,
        states,
        stored,
        state,
    }
}

/// A record written before the envelope was rebuilt on reading (the whole
/// body stored) still reads and is delivered as it was stored: an upgrade
/// needs no conversion.
#[tokio::test]
async fn records_holding_the_whole_body_still_read_and_deliver() {
    let (mut app, tenant_id, key, receiver, endpoint) = one_endpoint().await;
    let event = app
        .publish(&key, "user.created", json!({"new": "x".repeat(200)}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    let (events_key, _) = hashes_of(&app, event_id);
    let stored: Vec<u8> = hget(&app, &events_key, event_id).await.unwrap();
    let new_form = EventRecord::parse(event_id, &stored).unwrap();
    let timestamp = serde_json::from_str::<Value>(new_form.body()).unwrap()["timestamp"].clone();
    // The old form, with other data, so that what is delivered can only
    // come from the stored body.
    let old_body = format!(
        "{{\"id\":\"{event_id}\",\"type\":\"user.created\",\"timestamp\":{timestamp},\"data\":{{\"old\": [1, 2]}}}}"
    );
    let old = EventRecord::encode_whole_body(&tenant_id, "user.created", false, &old_body);
    hset(&app, &events_key, event_id, old).await;
    let (status, shown) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["data"], json!({"old": [1, 2]}));
    app.start_worker();
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].body, old_body);
    assert!(python_accepts(
        endpoint["secret"].as_str().unwrap(),
        &received[0]
    ));
    app.stop().await;
}

/// Delivery states written in the earlier forms (layout 2: the status as
/// a word, every time absolute; layout 3: a lower-case letter, `last_at`
/// and the entry ids absolute) read as they did, through the API and
/// through the scripts: a manual retry takes each up and writes the
/// current form (times relative) with both attempts.
#[tokio::test]
async fn delivery_states_of_the_earlier_forms_still_read() {
    let (mut app, _, key, receiver, _) = one_endpoint().await;
    app.start_worker();
    for (n, layout) in [2, 3].into_iter().enumerate() {
        let DeliveredOne {
            created,
            delivery_id,
            states,
            stored,
            state,
            ..
        } = deliver_one(&app, &key, n).await;
        assert!(stored.starts_with("D|1|"), "{stored}");
        let last_at = state.last_at.unwrap();
        let earlier = if layout == 2 {
            format!(
                "delivered|1|{last_at}|200|||{}|{}",
                state.recorded,
                state.attempt_ids.join(",")
            )
        } else {
            let (token, disabled) = state.recorded.split_once(':').unwrap();
            let token: u64 = token.parse().unwrap();
            let ids: Vec<&str> = state
                .attempt_ids
                .iter()
                .map(|id| id.strip_suffix("-0").unwrap_or(id))
                .collect();
            format!(
                "d|1|{last_at}|200|||{}:{disabled}|{}",
                token - last_at,
                ids.join(",")
            )
        };
        hset(&app, &states, &delivery_id[4..], &earlier).await;
        let path = format!("/api/v1/deliveries/{delivery_id}");
        let (status, read) = app.get(&path, &key).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["delivery"]["status"], "delivered");
        assert_eq!(read["delivery"]["attempts"], 1);
        assert_eq!(read["attempts"].as_array().map(Vec::len), Some(1), "{read}");
        let first_attempt = read["attempts"][0]["id"].clone();
        let (status, retried) = app.post(&format!("{path}/retry"), &key, json!({})).await;
        assert!(status < 300, "{status} {retried}");
        receiver.wait_for(2 * n + 2).await;
        let read = hookfleet_tests::wait_until(std::time::Duration::from_secs(10), || async {
            let (_, read) = app.get(&path, &key).await;
            (read["delivery"]["status"] == "delivered"
                && read["attempts"].as_array().map(Vec::len) == Some(2))
            .then_some(read)
        })
        .await
        .expect("the retried delivery delivered, with both attempts");
        assert_eq!(read["attempts"][0]["id"], first_attempt, "{read}");
        let rewritten: String = hget(&app, &states, &delivery_id[4..]).await.unwrap();
        assert!(rewritten.starts_with("D|2|"), "{rewritten}");
        let reread = StoredState::parse(&rewritten, created).unwrap();
        assert_eq!(reread.attempt_ids.first(), state.attempt_ids.first());
        assert_eq!(reread.attempt_ids.len(), 2);
    }
    app.stop().await;
}

/// `state.lua` reads and writes the current form exactly as
/// `delivery_state.rs` does, for values the natural path rarely makes:
/// entry ids before `last_at` and with a sequence. A state encoded in Rust
/// goes through a manual retry (`retry.lua` reads it and writes it back)
/// and comes out as Rust would write the retried state, byte for byte.
#[tokio::test]
async fn a_state_encoded_in_rust_goes_through_the_scripts_unchanged() {
    let (mut app, _, key, _, endpoint) = one_endpoint().await;
    app.start_worker();
    let DeliveredOne {
        created,
        delivery_id,
        states,
        mut state,
        ..
    } = deliver_one(&app, &key, 1).await;
    // Paused, so the retry waits and the state stays as retry.lua wrote it.
    let endpoint_path = format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap());
    let (status, paused) = app
        .patch(&endpoint_path, &key, json!({"paused": true}))
        .await;
    assert_eq!(status, 200, "{paused}");
    let last_at = state.last_at.unwrap();
    state.attempts = 3;
    state.attempt_ids = vec![
        format!("{}-0", last_at - 51),
        format!("{}-2", last_at - 3),
        state.attempt_ids[0].clone(),
    ];
    let written = state.encode(created);
    assert!(written.contains("|-51,-3.2,"), "{written}");
    hset(&app, &states, &delivery_id[4..], &written).await;
    let (status, retried) = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert!(status < 300, "{status} {retried}");
    let rewritten: String = hget(&app, &states, &delivery_id[4..]).await.unwrap();
    let read = StoredState::parse(&rewritten, created).unwrap();
    assert_eq!(read.status, "pending");
    assert_eq!(read.max_attempts, Some(4));
    assert_eq!(
        (&read.attempt_ids, read.last_at, &read.recorded),
        (&state.attempt_ids, state.last_at, &state.recorded)
    );
    assert_eq!(
        rewritten,
        read.encode(created),
        "the scripts write what Rust writes"
    );
    app.stop().await;
}

/// `record.lua` writes a delivery's state with the times the worker
/// counted (its attempt after the event's creation, its lease after the
/// attempt): at a first attempt and at a later one the state is what Rust
/// encodes for what it holds, byte for byte, its last attempt time is the
/// attempt log's, and its lease token comes after it.
#[tokio::test]
async fn record_lua_writes_the_state_rust_encodes_at_every_attempt() {
    let mut app = TestApp::builder().partitions(1).spawn().await;
    let (_, key) = app.tenant("acme").await;
    // The first answer fails, so the first event is delivered at its
    // second attempt; the second event at its first.
    let receiver = spawn_receiver(vec![Reply::status(500)], Reply::status(200)).await;
    app.endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    app.start_worker();
    for (n, attempts) in [(1, 2), (2, 1)] {
        let event = app.publish(&key, "user.created", json!({"n": n})).await;
        let event_id = event["id"].as_str().unwrap().to_string();
        let created = ids::created_ms(IdKind::Event, &event_id).unwrap();
        let detail = app
            .wait_for_deliveries(&key, &event_id, &["delivered"])
            .await;
        let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_string();
        let (_, states) = hashes_of(&app, &event_id);
        let stored: String = hget(&app, &states, &delivery_id[4..]).await.unwrap();
        let state = StoredState::parse(&stored, created).unwrap();
        assert_eq!(stored, state.encode(created), "event {n}");
        assert_eq!(state.attempts, attempts, "{stored}");
        assert_eq!(state.attempt_ids.len(), attempts as usize, "{stored}");
        let (status, read) = app
            .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
            .await;
        assert_eq!(status, 200, "{read}");
        let logged = read["attempts"].as_array().unwrap();
        assert_eq!(logged.len(), attempts as usize, "{read}");
        assert_eq!(
            read["delivery"]["last_attempt_at"],
            logged[logged.len() - 1]["at"],
            "the state's last attempt is the log's newest: {read}"
        );
        let (token, disabled) = state.recorded.split_once(':').unwrap();
        assert_eq!(disabled, "0", "{stored}");
        assert!(
            token.parse::<u64>().unwrap() > state.last_at.unwrap(),
            "the lease ends after the attempt: {stored}"
        );
    }
    app.stop().await;
}

/// Both binaries refuse data of another storage layout with a message
/// that says so, instead of leaving its queued deliveries unread; an empty
/// Redis is marked with this layout.
#[tokio::test]
async fn data_of_another_layout_is_refused_at_start() {
    let config = TestApp::builder().config();
    let keys = hookfleet_common::Keys::new(config.redis_prefix.clone());
    let pool = hookfleet_common::redis_pool::create_pool(&config).unwrap();
    let check = || hookfleet_common::store::layout::check(&pool, &keys, &config);
    let mut conn = pool.get().await.unwrap();
    let layout: Option<String> = redis::cmd("GET")
        .arg(keys.layout())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(layout, None);
    check().await.unwrap();
    let layout: Option<String> = redis::cmd("GET")
        .arg(keys.layout())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(layout.as_deref(), Some(hookfleet_common::keys::LAYOUT));
    check().await.unwrap();

    // The previous layouts are taken over in place and marked, so that
    // their versions refuse to start on what this one writes.
    assert_eq!(hookfleet_common::keys::LAYOUT, "4");
    for previous in ["2", "3"] {
        let _: () = redis::cmd("SET")
            .arg(keys.layout())
            .arg(previous)
            .query_async(&mut conn)
            .await
            .unwrap();
        check().await.unwrap();
        let layout: Option<String> = redis::cmd("GET")
            .arg(keys.layout())
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(layout.as_deref(), Some("4"), "from {previous}");
    }

    let _: () = redis::cmd("SET")
        .arg(keys.layout())
        .arg("9")
        .query_async(&mut conn)
        .await
        .unwrap();
    let refused = check().await.unwrap_err();
    assert!(refused.contains("layout 9"), "{refused}");
    let built = hookfleet_api::build(config.clone()).await;
    assert!(built.is_err(), "the API does not start");

    // The first layout had no mark, and a `due` set per partition.
    let _: () = redis::pipe()
        .del(keys.layout())
        .zadd(
            format!("{}due", keys.partition_prefix(ids::Partition(0))),
            "dlv_x",
            1,
        )
        .query_async(&mut conn)
        .await
        .unwrap();
    let refused = check().await.unwrap_err();
    assert!(refused.contains("first storage layout"), "{refused}");
    let _: () = redis::cmd("DEL")
        .arg(format!("{}due", keys.partition_prefix(ids::Partition(0))))
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// A drained Redis of the first layout keeps its configuration: the check
/// refuses while anything of it is still leased or held for a disabled
/// endpoint, then clears the endpoint indexes this layout reads otherwise
/// (keeping entries of this layout) and marks the data.
#[tokio::test]
async fn a_drained_first_layout_is_taken_over_and_anything_waiting_refuses() {
    let config = TestApp::builder().config();
    let keys = hookfleet_common::Keys::new(config.redis_prefix.clone());
    let pool = hookfleet_common::redis_pool::create_pool(&config).unwrap();
    let check = || hookfleet_common::store::layout::check(&pool, &keys, &config);
    let mut conn = pool.get().await.unwrap();
    let p = ids::Partition(1);
    let now_ms = 1_764_000_000_000u64;
    let tenant = ids::new_id(IdKind::Tenant, ids::Partition(0), now_ms);
    let endpoint = ids::new_id(IdKind::Endpoint, p, now_ms);
    let old_delivery = ids::new_id(IdKind::Delivery, p, now_ms);
    let new_event = ids::new_id(IdKind::Event, p, now_ms);
    let prefix = keys.partition_prefix(p);
    let held = format!("{prefix}ep_held:{endpoint}");
    let open = format!("{prefix}ep_open:{endpoint}");
    let log = keys.endpoint_deliveries(p, &endpoint);
    let _: () = redis::pipe()
        .zadd(keys.tenants(), &tenant, now_ms)
        .hset(keys.tenant_endpoints(&tenant), &endpoint, "1 *")
        .hset(keys.endpoint(p, &endpoint), "tenant", &tenant)
        .zadd(&log, &old_delivery, now_ms)
        .zadd(&log, &new_event, now_ms * 1000)
        .sadd(&open, &old_delivery)
        .zadd(&held, &old_delivery, now_ms)
        .zadd(keys.inflight(p), &old_delivery, now_ms)
        .query_async(&mut conn)
        .await
        .unwrap();

    let refused = check().await.unwrap_err();
    assert!(refused.contains("being attempted"), "{refused}");
    let _: () = redis::cmd("DEL")
        .arg(keys.inflight(p))
        .query_async(&mut conn)
        .await
        .unwrap();
    let refused = check().await.unwrap_err();
    assert!(refused.contains(&endpoint), "names the endpoint: {refused}");
    let layout: Option<String> = redis::cmd("GET")
        .arg(keys.layout())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(layout, None, "refused: not marked");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&log)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members.len(), 2, "refused: nothing cleared");

    let _: () = redis::cmd("DEL")
        .arg(&held)
        .query_async(&mut conn)
        .await
        .unwrap();
    check().await.unwrap();
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&log)
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        members,
        vec![new_event],
        "first-layout entries go, others stay"
    );
    let open_left: bool = redis::cmd("EXISTS")
        .arg(&open)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!open_left);
    let kept: Option<String> = redis::cmd("HGET")
        .arg(keys.endpoint(p, &endpoint))
        .arg("tenant")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        kept.as_deref(),
        Some(tenant.as_str()),
        "configuration stays"
    );
    let layout: Option<String> = redis::cmd("GET")
        .arg(keys.layout())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(layout.as_deref(), Some(hookfleet_common::keys::LAYOUT));
}
