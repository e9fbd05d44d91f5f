//! The storage layout of a queued event: what publishing writes for the
//! common case (one or two endpoints of one partition) and for larger
//! events, and that events stored by the previous layout (the body inside
//! the event's hash, an `event_dlv` set for every event) are still
//! delivered and shown.

mod common;

use common::{python_accepts, spawn_app, spawn_receiver, Reply};
use hookfleet_common::ids::{self, IdKind};
use hookfleet_common::time_util::now_ms;
use serde_json::{json, Value};

async fn encoding(app: &common::TestApp, key: &str) -> String {
    let mut conn = app.redis().await;
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn exists(app: &common::TestApp, key: &str) -> bool {
    let mut conn = app.redis().await;
    let n: u32 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    n == 1
}

/// The delivery ids the event's detail lists, sorted.
async fn listed(app: &common::TestApp, key: &str, event_id: &str) -> Vec<String> {
    let (status, detail) = app.get(&format!("/api/v1/events/{event_id}"), key).await;
    assert_eq!(status, 200, "{detail}");
    let mut ids: Vec<String> = detail["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn delivery_ids(event_id: &str, endpoints: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = endpoints
        .iter()
        .map(|e| {
            let id = e["id"].as_str().unwrap();
            let p = ids::partition_of(IdKind::Endpoint, id).unwrap();
            ids::delivery_id(event_id, id, p)
        })
        .collect();
    ids.sort();
    ids
}

/// One or two deliveries in the event's partition: the event's hash is a
/// listpack listing them itself, the body is a string of its own and there
/// is no `event_dlv` set. A third endpoint puts the event back on the set;
/// the detail lists every delivery either way.
#[tokio::test]
async fn a_small_event_is_one_listpack_hash_and_its_body() {
    let app = spawn_app(false, &[("HOOKFLEET_PARTITIONS", "1")]).await;
    let k = app.keys();
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let mut endpoints = Vec::new();
    for expected_set in [false, false, true] {
        endpoints.push(
            app.endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
                .await,
        );
        let data = json!({"n": endpoints.len(), "note": "x".repeat(150)});
        let event = app.publish(&key, "user.created", data.clone()).await;
        let event_id = event["id"].as_str().unwrap();
        assert_eq!(event["deliveries"], endpoints.len());
        let home = ids::partition_of(IdKind::Event, event_id).unwrap();

        assert_eq!(
            encoding(&app, &k.event(home, event_id)).await,
            "listpack",
            "the event's hash, {} endpoint(s)",
            endpoints.len()
        );
        let mut conn = app.redis().await;
        let body: String = redis::cmd("GET")
            .arg(k.event_body(home, event_id))
            .query_async(&mut conn)
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["data"], data);
        assert_eq!(
            exists(&app, &k.event_deliveries(home, event_id)).await,
            expected_set,
            "event_dlv set with {} endpoint(s)",
            endpoints.len()
        );
        assert_eq!(
            listed(&app, &key, event_id).await,
            delivery_ids(event_id, &endpoints)
        );
    }
    app.stop().await;
}

/// An event written the way earlier versions wrote it (body in the hash,
/// deliveries in an `event_dlv` set, no body key, attempts logged one
/// stream field per value) is delivered with its body and signature, and
/// its detail and delivery show it with both attempts.
#[tokio::test]
async fn an_event_stored_by_the_previous_layout_is_delivered_and_shown() {
    let mut app = spawn_app(false, &[]).await;
    let k = app.keys();
    let (tenant_id, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let secret = endpoint["secret"].as_str().unwrap();
    let p = ids::partition_of(IdKind::Endpoint, endpoint_id).unwrap();

    let now = now_ms();
    let event_id = ids::new_id(IdKind::Event, p, now);
    let delivery_id = ids::delivery_id(&event_id, endpoint_id, p);
    let body = json!({"id": event_id, "type": "user.created",
        "timestamp": "2026-01-01T00:00:00.000Z", "data": {"old": "layout"}})
    .to_string();
    let prefix = k.partition_prefix(p);
    let mut conn = app.redis().await;
    let _: () = redis::pipe()
        .hset_multiple(
            k.event(p, &event_id),
            &[
                ("id", event_id.as_str()),
                ("tenant", &tenant_id),
                ("type", "user.created"),
                ("body", &body),
                ("created", &now.to_string()),
                ("complete", "1"),
                ("deliveries", "1"),
                ("partitions", &p.0.to_string()),
            ],
        )
        .sadd(k.event_deliveries(p, &event_id), &delivery_id)
        .hset_multiple(
            k.delivery(p, &delivery_id),
            &[
                ("id", delivery_id.as_str()),
                ("event", &event_id),
                ("evp", &p.0.to_string()),
                ("endpoint", endpoint_id),
                ("tenant", &tenant_id),
                ("type", "user.created"),
                ("status", "pending"),
                ("attempts", "0"),
                ("created", &now.to_string()),
                ("next", &now.to_string()),
                ("claims", "0"),
            ],
        )
        .zadd(k.due(p), &delivery_id, now)
        // Its first attempt, logged one stream field per value.
        .cmd("XADD")
        .arg(k.attempts(p, endpoint_id))
        .arg("1-1")
        .arg(&[
            ("delivery", delivery_id.as_str()),
            ("event", &event_id),
            ("attempt", "1"),
            ("at", &(now - 1000).to_string()),
            ("code", "503"),
            ("duration_ms", "12"),
            ("error", ""),
            ("outcome", "retry"),
            ("response_headers", r#"[["retry-after","1"]]"#),
            ("response_body", "busy"),
            ("next", &now.to_string()),
            ("webhook_timestamp", "1700000000"),
            ("request_headers", r#"[["webhook-id","msg_old"]]"#),
            ("test", "0"),
        ])
        .hset_multiple(
            k.delivery(p, &delivery_id),
            &[("attempts", "1"), ("attempt_ids", "1-1")],
        )
        .zadd(k.endpoint_deliveries(p, endpoint_id), &delivery_id, now)
        .sadd(k.endpoint_open(p, endpoint_id), &delivery_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    drop(conn);
    assert!(!exists(&app, &format!("{prefix}event_body:{event_id}")).await);

    app.start_worker();
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].body, body);
    assert!(python_accepts(secret, &received[0]), "signature");
    let detail = app
        .wait_for_deliveries(&key, &event_id, &["delivered"])
        .await;
    assert_eq!(detail["data"], json!({"old": "layout"}));
    assert_eq!(
        listed(&app, &key, &event_id).await,
        vec![delivery_id.clone()]
    );
    let (status, delivery) = app
        .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, 200, "{delivery}");
    assert_eq!(delivery["request_body"], body);
    // Both attempts read alike: the old entry's fields, the new packed one.
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{delivery}");
    assert_eq!(attempts[0]["status_code"], 503);
    assert_eq!(attempts[0]["outcome"], "retry");
    assert_eq!(attempts[0]["response_body"], "busy");
    assert_eq!(attempts[0]["request_headers"]["webhook-id"], "msg_old");
    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["status_code"], 200);
    assert_eq!(attempts[1]["outcome"], "delivered");
    assert_eq!(
        attempts[1]["request_headers"]["webhook-id"],
        received[0].header("webhook-id").unwrap()
    );
    // The new attempt is one stream field, the packed entry.
    let mut conn = app.redis().await;
    let log: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(k.attempts(p, endpoint_id))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let names: Vec<Vec<&String>> = log.ids.iter().map(|e| e.map.keys().collect()).collect();
    assert_eq!(names.len(), 2);
    assert_eq!(names[0].len(), 14);
    assert_eq!(names[1], vec!["entry"]);
    drop(conn);
    app.stop().await;
}
