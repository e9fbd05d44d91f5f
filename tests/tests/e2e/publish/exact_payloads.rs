//! Invariant 10, end to end: what is accepted is what is delivered. An
//! event's `data` reaches the receiver, signed, with the digits it was
//! published with (big integers, long decimals, `-0`, `1e400`), and
//! `GET /api/v1/events/{id}` answers with them too; data that could not be
//! kept exactly (a key twice in one object) is refused with a 422 naming
//! where, and nothing is written. The checks compare raw text: parsing
//! the bodies into a `serde_json::Value` would hide exactly what is tested.

use std::time::Duration;

use hookfleet_common::signing::{verify, SigningSecret};
use serde_json::Value;

use hookfleet_tests::{
    python_accepts, spawn_receiver, wait_until, Received, Reply, TenantWithEndpoint, TestApp,
};

/// Numbers a `serde_json::Value` cannot hold as written, in data laid out
/// the way a client might send it (whitespace is kept too).
const EXACT: &str = r#"{"n": 123456789012345678901234567890,
  "neg": -98765432109876543210987654321098765432,
  "u65": 18446744073709551616, "i65": -9223372036854775809,
  "d": 0.1000000000000000000000000001, "z": -0, "zf": -0.0,
  "e": 1e400, "tiny": -1E-400, "kept": 1.50, "exp": 2e+5,
  "nested": {"items": [1, {"x": 12345678901234567890123}]},
  "s": "Zo\u00eb \ud83d\ude00 \"q\""}"#;

/// Posts `body` as it is (JSON the test helpers could not write: exact
/// numbers, duplicate keys).
async fn post_text(app: &TestApp, path: &str, key: &str, body: &str) -> (u16, Value) {
    app.post_raw(path, key, body.as_bytes().to_vec(), "application/json")
        .await
}

/// The body of a GET, as text.
async fn get_text(app: &TestApp, path: &str, key: &str) -> (u16, String) {
    let response = app
        .http
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Asserts that `request` carries `data` verbatim as the last member of
/// its body, and that its signature holds over the bytes received.
fn assert_exact_and_signed(request: &Received, secret: &str, data: &str) {
    assert!(
        request.body.ends_with(&format!(",\"data\":{data}}}")),
        "the body does not end with the data as sent: {}",
        request.body
    );
    let id = request.header("webhook-id").expect("webhook-id");
    let timestamp: u64 = request
        .header("webhook-timestamp")
        .and_then(|t| t.parse().ok())
        .expect("webhook-timestamp");
    let signature = request.header("webhook-signature").expect("signature");
    let secret = SigningSecret::parse(secret).expect("secret");
    assert!(verify(
        &secret,
        id,
        timestamp,
        request.body.as_bytes(),
        signature
    ));
}

/// Waits until the delivery of `event_id` to `endpoint_id` is delivered;
/// answers its detail. (Not through the event's detail, which holds
/// numbers the helpers' `Value` cannot.)
async fn delivered(app: &TestApp, key: &str, event_id: &str, endpoint_id: &str) -> Value {
    let delivery_id =
        hookfleet_common::ids::delivery_id(event_id, endpoint_id).expect("delivery id");
    let path = format!("/api/v1/deliveries/{delivery_id}");
    wait_until(Duration::from_secs(20), || async {
        let (status, delivery) = app.get(&path, key).await;
        (status == 200 && delivery["delivery"]["status"] == "delivered").then_some(delivery)
    })
    .await
    .unwrap_or_else(|| panic!("{delivery_id} was not delivered in time"))
}

/// Asserts that `GET /api/v1/events/{id}` answers with `data` verbatim.
async fn assert_detail_exact(app: &TestApp, key: &str, event_id: &str, data: &str) {
    let (status, detail) = get_text(app, &format!("/api/v1/events/{event_id}"), key).await;
    assert_eq!(status, 200, "{detail}");
    assert!(
        detail.contains(&format!("\"data\":{data},")),
        "the event's detail does not hold the data as sent: {detail}"
    );
}

#[tokio::test]
async fn exact_numbers_arrive_signed_and_read_back_as_published() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint { key, endpoint, .. } = app
        .tenant_with_endpoint(&receiver.url, &["user.created"])
        .await;
    let secret = endpoint["secret"].as_str().unwrap();

    let body = format!(r#"{{"event_type": "user.created", "data": {EXACT}}}"#);
    let (status, event) = post_text(&app, "/api/v1/events", &key, &body).await;
    assert_eq!(status, 202, "{event}");
    let event_id = event["id"].as_str().unwrap();

    let got = receiver.wait_for(1).await;
    assert_exact_and_signed(&got[0], secret, EXACT);
    // The reference verifier (the `standardwebhooks` package) agrees.
    assert!(python_accepts(secret, &got[0]));
    assert_eq!(got[0].header("webhook-id"), Some(event_id));
    assert!(got[0].body.starts_with(&format!(
        "{{\"id\":\"{event_id}\",\"type\":\"user.created\",\"timestamp\":\""
    )));
    assert_detail_exact(&app, &key, event_id, EXACT).await;

    // The delivery's log shows the same bytes as were sent.
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let delivery = delivered(&app, &key, event_id, endpoint_id).await;
    assert_eq!(
        delivery["request_body"].as_str(),
        Some(got[0].body.as_str()),
        "{delivery}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_and_a_test_send_keep_exact_numbers_too() {
    let app = TestApp::builder().with_worker().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key,
        endpoint,
        secret,
        ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;

    let datas = [
        EXACT.to_string(),
        r#"{"order":{"total":99999999999999999999.99,"ids":[-0,1e400]}}"#.to_string(),
        r#"{"d":3.141592653589793238462643383279502884197}"#.to_string(),
    ];
    let events: Vec<String> = datas
        .iter()
        .map(|data| format!(r#"{{"event_type":"user.created","data":{data}}}"#))
        .collect();
    let body = format!(r#"{{"events":[{}]}}"#, events.join(","));
    let (status, answer) = post_text(&app, "/api/v1/events/batch", &key, &body).await;
    assert_eq!(status, 202, "{answer}");
    let got = receiver.wait_for(datas.len()).await;
    for (i, data) in datas.iter().enumerate() {
        let event_id = answer["results"][i]["id"].as_str().expect("an id");
        let request = got
            .iter()
            .find(|r| r.header("webhook-id") == Some(event_id))
            .unwrap_or_else(|| panic!("event {i} did not arrive"));
        assert_exact_and_signed(request, &secret, data);
        assert_detail_exact(&app, &key, event_id, data).await;
    }

    // A test send with data of its own.
    let data = r#"{"amount":100000000000000000000000000001,"rate":-0.000000000000000000001}"#;
    let (status, sent) = post_text(
        &app,
        &format!("/api/v1/webhooks/{}/test", endpoint["id"].as_str().unwrap()),
        &key,
        &format!(r#"{{"data":{data}}}"#),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["status"], "delivered", "{sent}");
    let got = receiver.wait_for(datas.len() + 1).await;
    let test = got
        .iter()
        .find(|r| r.header("webhook-id") == sent["event_id"].as_str())
        .expect("the test send arrived");
    assert_exact_and_signed(test, &secret, data);
    app.stop().await;
}

#[tokio::test]
async fn data_that_cannot_be_kept_exactly_is_refused_naming_where_and_nothing_is_written() {
    // No worker: its heartbeats would change keys while nothing else does.
    let app = TestApp::builder().spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key, endpoint_id, ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;

    // (data, the path inside it, the key named)
    let cases = [
        (r#"{"a":1,"a":2}"#, ".a", "a"),
        (r#"{"a":{"b":1,"b":2}}"#, ".a.b", "b"),
        (
            r#"{"items":[{"id":1},{"id":2,"id":3}]}"#,
            ".items[1].id",
            "id",
        ),
        (
            r#"{"m":[[{"k":{"x":1,"y":2,"x":3}}]]}"#,
            ".m[0][0].k.x",
            "x",
        ),
        // The same key spelled two ways is still one key.
        (
            r#"{"user":{"name":"a","n\u0061me":"b"}}"#,
            ".user.name",
            "name",
        ),
    ];
    let good = r#"{"event_type":"user.created","data":{"ok":1}}"#;
    let before = app.snapshot().await;
    for (data, path, dup) in cases {
        let single = format!(r#"{{"event_type":"user.created","data":{data}}}"#);
        let batch = format!(
            r#"{{"events":[{good},{good},{{"event_type":"user.created","data":{data}}},{good}]}}"#
        );
        let test_send = format!(r#"{{"data":{data}}}"#);
        for (route, body, field) in [
            ("/api/v1/events".to_string(), single, format!("data{path}")),
            (
                "/api/v1/events/batch".to_string(),
                batch,
                format!("events[2].data{path}"),
            ),
            (
                format!("/api/v1/webhooks/{endpoint_id}/test"),
                test_send,
                format!("data{path}"),
            ),
        ] {
            let (status, error) = post_text(&app, &route, &key, &body).await;
            assert_eq!(status, 422, "{route} {body}: {error}");
            assert_eq!(error["code"], "invalid_field", "{error}");
            assert_eq!(error["field"].as_str(), Some(field.as_str()), "{error}");
            let message = error["message"].as_str().unwrap_or("");
            assert!(message.contains(&format!("`{dup}`")), "{error}");
        }
    }

    // A string that is no Unicode text cannot arrive as sent either.
    let (status, error) = post_text(
        &app,
        "/api/v1/events",
        &key,
        r#"{"event_type":"user.created","data":{"list":["ok","\ud800"]}}"#,
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["field"], "data.list[1]", "{error}");

    // Nor can data nested deeper than receivers' parsers read.
    let deep = format!(
        r#"{{"event_type":"user.created","data":{{"a":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let (status, error) = post_text(&app, "/api/v1/events", &key, &deep).await;
    assert_eq!(status, 422, "{error}");
    let field = error["field"].as_str().unwrap_or("");
    assert!(field.starts_with("data.a[0][0]"), "{error}");
    // Bytes that are no UTF-8 are malformed JSON, as anywhere in a body.
    let mut bad = br#"{"event_type":"user.created","data":{"s":""#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(br#""}}"#);
    let (status, error) = app
        .post_raw("/api/v1/events", &key, bad, "application/json")
        .await;
    assert_eq!(status, 400, "{error}");

    // Data that is no object is still refused as before.
    let (status, error) = post_text(
        &app,
        "/api/v1/events/batch",
        &key,
        &format!(r#"{{"events":[{good},{{"event_type":"user.created","data":[1e400]}}]}}"#),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["field"], "events[1].data", "{error}");

    // Nothing was written: not one key changed, the log is empty and
    // nothing reached the receiver.
    assert_eq!(app.changed_since(&before).await, Vec::<String>::new());
    let (status, log) = app
        .get(&format!("/api/v1/webhooks/{endpoint_id}/deliveries"), &key)
        .await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["data"].as_array().map(Vec::len), Some(0), "{log}");
    assert_eq!(receiver.count(), 0);
    app.stop().await;
}
