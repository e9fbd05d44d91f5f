//! Endpoint CRUD and every bad input: a 4xx naming the field, and nothing
//! written (the test compares every key under its prefix before and after).

use serde_json::{json, Value};

use hookfleet_tests::{TenantWithEndpoint, TestApp};

#[tokio::test]
async fn create_read_list_update_delete() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let created = app
        .endpoint(
            &key,
            json!({
                "url": "https://example.com/hooks",
                "events": ["video.*", "user.created"],
                "description": "prod receiver",
                "headers": {"X-Team": "blue"},
                "rate_limit": 50,
                "timeout_s": 3,
                "max_in_flight": 4
            }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("ep_"));
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["active"], true);
    assert_eq!(created["rate_limit"], 50);
    assert_eq!(created["timeout_s"], 3);
    assert_eq!(created["max_in_flight"], 4);
    assert_eq!(created["headers"], json!({"x-team": "blue"}));
    assert_eq!(created["ordering"], "none", "the default order");
    assert!(created.get("filter").is_none() && created.get("retry_schedule").is_none());

    let (status, fetched) = app.get(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert_eq!(status, 200);
    assert!(
        fetched.get("secret").is_none(),
        "the secret is shown only on create"
    );
    assert_eq!(fetched["url"], "https://example.com/hooks");
    assert_eq!(fetched["events"], json!(["video.*", "user.created"]));
    assert_eq!(fetched["description"], "prod receiver");

    let second = app
        .endpoint(
            &key,
            json!({"url": "http://example.org/x", "events": ["*"]}),
        )
        .await;
    let (status, list) = app.get("/api/v1/webhooks", &key).await;
    assert_eq!(status, 200);
    assert!(list.get("next").is_none(), "one page: {list}");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id, second["id"].as_str().unwrap()]);
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w.get("secret").is_none()));

    let (status, updated) = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &key,
            json!({"url": "https://example.com/v2", "rate_limit": null, "timeout_s": null, "max_in_flight": null, "active": false, "headers": {}}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["url"], "https://example.com/v2");
    assert!(updated.get("rate_limit").is_none());
    assert!(updated.get("timeout_s").is_none());
    assert!(updated.get("max_in_flight").is_none());
    assert_eq!(updated["active"], false);
    assert_eq!(updated["headers"], json!({}));
    assert_eq!(
        updated["description"], "prod receiver",
        "absent fields stay"
    );
    assert_eq!(updated["created_at"], created["created_at"]);
    let (_, again) = app.get(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert_eq!(again, updated);

    let (status, _) = app.delete(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert_eq!(status, 204);
    let (status, body) = app.get(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, _) = app.delete(&format!("/api/v1/webhooks/{id}"), &key).await;
    assert_eq!(status, 404);
    let (_, list) = app.get("/api/v1/webhooks", &key).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn ordering_filter_and_retry_schedule_are_set_shown_and_cleared() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let filter = "data.amount >= 1000 && data.currency == \"EUR\"";
    let created = app
        .endpoint(
            &key,
            json!({
                "url": "https://example.com/hooks",
                "events": ["*"],
                "ordering": "fifo",
                "filter": filter,
                "retry_schedule": ["0s", "30s", "90s", "300000ms", "1500ms", "1h"]
            }),
        )
        .await;
    assert_eq!(created["ordering"], "fifo");
    assert_eq!(created["filter"], filter);
    // Shown in the largest unit that holds each exactly.
    assert_eq!(
        created["retry_schedule"],
        json!(["0s", "30s", "90s", "5m", "1500ms", "1h"])
    );
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    let (status, fetched) = app.get(&path, &key).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["retry_schedule"], created["retry_schedule"]);
    assert!(
        fetched.get("head_of_line").is_none(),
        "nothing waits: {fetched}"
    );

    // Other fields change; these stay.
    let (status, updated) = app.patch(&path, &key, json!({"description": "d"})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["filter"], filter);
    assert_eq!(updated["ordering"], "fifo");
    let (status, updated) = app
        .patch(
            &path,
            &key,
            json!({"ordering": "none", "filter": "type == 'user.created'", "retry_schedule": ["5s"]}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["ordering"], "none");
    assert_eq!(updated["filter"], "type == 'user.created'");
    assert_eq!(updated["retry_schedule"], json!(["5s"]));
    // null returns to the defaults.
    let (status, cleared) = app
        .patch(&path, &key, json!({"filter": null, "retry_schedule": null}))
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared.get("filter").is_none(), "{cleared}");
    assert!(cleared.get("retry_schedule").is_none(), "{cleared}");
    let (_, list) = app.get("/api/v1/webhooks", &key).await;
    assert_eq!(list["data"][0]["ordering"], "none");
    app.stop().await;
}

#[tokio::test]
async fn event_types_list_create_delete() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let (status, list) = app.get("/api/v1/webhooks/events", &key).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for built_in in [
        "match.found",
        "video.processed",
        "job.failed",
        "user.created",
        "subscription.updated",
        "api_limit.reached",
    ] {
        assert!(names.contains(&built_in), "{built_in}");
    }
    let (status, created) = app
        .post("/api/v1/event-types", &key, json!({"name": "invoice.paid", "description": "An invoice was paid", "example": {"amount": 10}}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["built_in"], false);
    let (status, body) = app
        .post(
            "/api/v1/event-types",
            &key,
            json!({"name": "invoice.paid", "description": "again"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app
        .post(
            "/api/v1/event-types",
            &key,
            json!({"name": "user.created", "description": "taken"}),
        )
        .await;
    assert_eq!(status, 409);
    // Now usable by endpoints and publishing.
    app.endpoint(
        &key,
        json!({"url": "https://example.com/h", "events": ["invoice.paid"]}),
    )
    .await;
    let event = app
        .publish(&key, "invoice.paid", json!({"amount": 10}))
        .await;
    assert_eq!(event["deliveries"], 1);
    let (status, _) = app.delete("/api/v1/event-types/invoice.paid", &key).await;
    assert_eq!(status, 204);
    let (status, body) = app
        .post(
            "/api/v1/events",
            &key,
            json!({"event_type": "invoice.paid", "data": {}}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("event_type")));
    let (status, _) = app.delete("/api/v1/event-types/invoice.paid", &key).await;
    assert_eq!(status, 404);
    let (status, _) = app.delete("/api/v1/event-types/user.created", &key).await;
    assert_eq!(status, 409);
    // Another tenant does not see this tenant's types.
    let (_, other) = app.tenant("other").await;
    app.post(
        "/api/v1/event-types",
        &key,
        json!({"name": "mine.only", "description": ""}),
    )
    .await;
    let (_, list) = app.get("/api/v1/event-types", &other).await;
    assert!(!list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "mine.only"));
    app.stop().await;
}

/// Sends `body` and asserts the status, the error code and the field, and
/// that nothing under the test's prefix changed.
async fn refused(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
    status: u16,
    field: Option<&str>,
) {
    let before = app.snapshot().await;
    let (got, error) = match method {
        "POST" => app.post(path, key, body.clone()).await,
        "PATCH" => app.patch(path, key, body.clone()).await,
        _ => unreachable!(),
    };
    assert_eq!(got, status, "{method} {path} {body} -> {error}");
    assert!(
        error["code"].is_string() && error["message"].is_string(),
        "{error}"
    );
    assert_eq!(error["field"].as_str(), field, "{body} -> {error}");
    assert_eq!(app.snapshot().await, before, "{body} wrote something");
}

#[tokio::test]
async fn bad_event_type_input_is_refused_and_writes_nothing() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let with = |field: &str, value: Value| {
        let mut body = json!({"name": "invoice.paid", "description": ""});
        body[field] = value;
        body
    };
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (with("name", json!("")), 422, Some("name")),
        (with("name", json!("bad name")), 422, Some("name")),
        (with("example", json!([1, 2])), 422, Some("example")),
        (
            with("example", json!({"text": "x".repeat(9000)})),
            422,
            Some("example"),
        ),
        (with("unknown_field", json!(1)), 422, Some("unknown_field")),
    ];
    for (body, status, field) in cases {
        refused(
            &app,
            &key,
            "POST",
            "/api/v1/event-types",
            body,
            status,
            field,
        )
        .await;
    }
    // A tenant with 1000 types of its own gets no more.
    let keys = app.keys();
    let mut pipe = redis::pipe();
    for n in 0..1000 {
        pipe.hset(
            keys.tenant_event_types(&tenant_id),
            format!("t.n{n}"),
            json!({"name": format!("t.n{n}"), "description": "", "built_in": false, "operational": false}).to_string(),
        )
        .ignore();
    }
    let _: () = pipe.query_async(&mut app.redis().await).await.unwrap();
    refused(
        &app,
        &key,
        "POST",
        "/api/v1/event-types",
        with("name", json!("one.more")),
        409,
        None,
    )
    .await;
    app.stop().await;
}

/// Fills a tenant's capped hash (`endpoints` or `event_types`) up to
/// `count` fields with `filler(n)`.
async fn fill(app: &TestApp, key: &str, count: usize, filler: impl Fn(usize) -> (String, String)) {
    let mut pipe = redis::pipe();
    for n in 0..count {
        let (field, value) = filler(n);
        pipe.hset(key, field, value).ignore();
    }
    let _: () = pipe.query_async(&mut app.redis().await).await.unwrap();
}

async fn hlen(app: &TestApp, key: &str) -> usize {
    redis::cmd("HLEN")
        .arg(key)
        .query_async(&mut app.redis().await)
        .await
        .unwrap()
}

/// The caps of 1,000 webhooks and 1,000 event types per tenant hold under
/// concurrent creates: the check and the write are one step
/// (`capped_add.lua`), so 20 creates at once with 5 places left make
/// exactly 5, and the rest get 409 (an `HLEN` check before a separate
/// write let all 20 through).
#[tokio::test]
async fn caps_hold_under_concurrent_creates() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let keys = app.keys();

    let endpoints = keys.tenant_endpoints(&tenant_id);
    fill(&app, &endpoints, 995, |n| {
        (format!("ep_filler{n}"), "user.created".to_string())
    })
    .await;
    let bodies = (0..20)
        .map(|n| json!({"url": format!("https://example.com/h{n}"), "events": ["user.created"]}))
        .collect();
    let answers = app.post_all("/api/v1/webhooks", &key, bodies).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 5, "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 201 || *status == 409, "{status} {body}");
        if *status == 409 {
            assert_eq!(body["code"], "conflict", "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("1000 webhooks"),
                "{body}"
            );
        }
    }
    assert_eq!(hlen(&app, &endpoints).await, 1000);
    // Each created webhook is whole: readable, in the list.
    for webhook in &created {
        let id = webhook["id"].as_str().unwrap();
        let (status, read) = app.get(&format!("/api/v1/webhooks/{id}"), &key).await;
        assert_eq!(status, 200, "{read}");
    }
    let (_, listed) = app.get("/api/v1/webhooks", &key).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 5, "{listed}");
    // A full tenant's next create writes nothing.
    refused(
        &app,
        &key,
        "POST",
        "/api/v1/webhooks",
        json!({"url": "https://example.com/more", "events": ["user.created"]}),
        409,
        None,
    )
    .await;

    let event_types = keys.tenant_event_types(&tenant_id);
    fill(&app, &event_types, 995, |n| {
        (
            format!("t.n{n}"),
            json!({"name": format!("t.n{n}"), "description": "", "built_in": false, "operational": false}).to_string(),
        )
    })
    .await;
    // Ten new names twice each: a name is created once, and only five fit.
    let bodies = (0..20)
        .map(|n| json!({"name": format!("order.n{}", n % 10), "description": ""}))
        .collect();
    let answers = app.post_all("/api/v1/event-types", &key, bodies).await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(created, 5, "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 201 || *status == 409, "{status} {body}");
    }
    assert_eq!(hlen(&app, &event_types).await, 1000);
    app.stop().await;
}

#[tokio::test]
async fn bad_endpoint_input_is_refused_and_writes_nothing() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let ok = || json!({"url": "https://example.com/h", "events": ["user.created"]});
    let with = |field: &str, value: Value| {
        let mut body = ok();
        body[field] = value;
        body
    };
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"events": ["*"]}), 422, Some("url")),
        (with("url", json!("")), 422, Some("url")),
        (with("url", json!("not a url")), 422, Some("url")),
        (with("url", json!("ftp://example.com/h")), 422, Some("url")),
        (with("url", json!("file:///etc/passwd")), 422, Some("url")),
        (with("url", json!(42)), 422, Some("url")),
        (
            with(
                "url",
                json!(format!("https://example.com/{}", "a".repeat(3000))),
            ),
            422,
            Some("url"),
        ),
        (json!({"url": "https://example.com/h"}), 422, Some("events")),
        (with("events", json!([])), 422, Some("events")),
        (
            with("events", json!(["user.created", "no.such.type"])),
            422,
            Some("events[1]"),
        ),
        (with("events", json!(["bad type"])), 422, Some("events[0]")),
        (with("events", json!(["us*er"])), 422, Some("events[0]")),
        (with("events", json!("user.created")), 422, Some("events")),
        (
            with("description", json!("x".repeat(1025))),
            422,
            Some("description"),
        ),
        (
            with("headers", json!({"bad header": "v"})),
            422,
            Some("headers.bad header"),
        ),
        (
            with("headers", json!({"X-Ok": "line\nbreak"})),
            422,
            Some("headers.X-Ok"),
        ),
        (
            with("headers", json!({"webhook-signature": "v1,forged"})),
            422,
            Some("headers.webhook-signature"),
        ),
        (
            with("headers", json!({"Webhook-Id": "x"})),
            422,
            Some("headers.Webhook-Id"),
        ),
        (
            with("headers", json!({"Content-Type": "text/plain"})),
            422,
            Some("headers.Content-Type"),
        ),
        (
            with("headers", json!({"X-Num": 5})),
            422,
            Some("headers.X-Num"),
        ),
        (
            with("headers", json!({"X-Accent": "caf\u{e9}"})),
            422,
            Some("headers.X-Accent"),
        ),
        (
            with("headers", json!({"X-Team": "a", "x-team": "b"})),
            422,
            Some("headers.x-team"),
        ),
        (with("rate_limit", json!(0)), 422, Some("rate_limit")),
        (with("rate_limit", json!(-5)), 422, Some("rate_limit")),
        (with("rate_limit", json!(1e30)), 422, Some("rate_limit")),
        (with("rate_limit", json!("fast")), 422, Some("rate_limit")),
        (with("max_in_flight", json!(0)), 422, Some("max_in_flight")),
        (
            with("max_in_flight", json!(1001)),
            422,
            Some("max_in_flight"),
        ),
        (with("max_in_flight", json!(-1)), 422, Some("max_in_flight")),
        (
            with("max_in_flight", json!(2.5)),
            422,
            Some("max_in_flight"),
        ),
        (
            with("max_in_flight", json!("many")),
            422,
            Some("max_in_flight"),
        ),
        (with("active", json!("yes")), 422, Some("active")),
        (with("timeout_s", json!(0)), 422, Some("timeout_s")),
        (with("timeout_s", json!(6)), 422, Some("timeout_s")),
        (with("timeout_s", json!(2.5)), 422, Some("timeout_s")),
        (with("secret", json!("not-a-secret")), 422, Some("secret")),
        (with("ordering", json!("lifo")), 422, Some("ordering")),
        (with("ordering", json!(1)), 422, Some("ordering")),
        (with("ordering", json!("")), 422, Some("ordering")),
        (
            with("retry_schedule", json!([])),
            422,
            Some("retry_schedule"),
        ),
        (
            with("retry_schedule", json!("0s,5s")),
            422,
            Some("retry_schedule"),
        ),
        (
            with("retry_schedule", json!(vec!["1s"; 21])),
            422,
            Some("retry_schedule"),
        ),
        (
            with("retry_schedule", json!(["5x"])),
            422,
            Some("retry_schedule[0]"),
        ),
        (
            with("retry_schedule", json!(["0s", "30"])),
            422,
            Some("retry_schedule[1]"),
        ),
        (
            with("retry_schedule", json!(["0s", " 5s"])),
            422,
            Some("retry_schedule[1]"),
        ),
        (
            with("retry_schedule", json!(["0s", 5])),
            422,
            Some("retry_schedule[1]"),
        ),
        (
            with("retry_schedule", json!(["0s", "400d"])),
            422,
            Some("retry_schedule"),
        ),
        (with("filter", json!("")), 422, Some("filter")),
        (with("filter", json!(5)), 422, Some("filter")),
        (with("filter", json!("data.amount >")), 422, Some("filter")),
        (with("filter", json!("amount > 5")), 422, Some("filter")),
        (
            with("filter", json!("data.x.nosuch()")),
            422,
            Some("filter"),
        ),
        (with("filter", json!("1 + 2")), 422, Some("filter")),
        (
            with("filter", json!(format!("data.a == '{}'", "x".repeat(2040)))),
            422,
            Some("filter"),
        ),
        (
            with(
                "filter",
                json!(format!("{}true{}", "(".repeat(500), ")".repeat(500))),
            ),
            422,
            Some("filter"),
        ),
        (with("unknown_field", json!(1)), 422, Some("unknown_field")),
        (json!([1, 2]), 422, Some("body")),
        (json!("text"), 422, Some("body")),
    ];
    for (body, status, field) in cases {
        refused(&app, &key, "POST", "/api/v1/webhooks", body, status, field).await;
    }

    let endpoint = app.endpoint(&key, ok()).await;
    let path = format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap());
    let patches: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"url": "gopher://x"}), 422, Some("url")),
        (json!({"events": []}), 422, Some("events")),
        (json!({"events": ["nope.nope"]}), 422, Some("events[0]")),
        (json!({"rate_limit": 0}), 422, Some("rate_limit")),
        (json!({"max_in_flight": 0}), 422, Some("max_in_flight")),
        (json!({"max_in_flight": 5000}), 422, Some("max_in_flight")),
        (json!({"max_in_flight": true}), 422, Some("max_in_flight")),
        (
            json!({"headers": {"webhook-timestamp": "1"}}),
            422,
            Some("headers.webhook-timestamp"),
        ),
        (json!({"secret": "whsec_x"}), 422, Some("secret")),
        (json!({"ordering": "random"}), 422, Some("ordering")),
        (json!({"retry_schedule": []}), 422, Some("retry_schedule")),
        (
            json!({"retry_schedule": ["1w"]}),
            422,
            Some("retry_schedule[0]"),
        ),
        (json!({"filter": "data.a == "}), 422, Some("filter")),
        (json!({"filter": "headers.x == 'a'"}), 422, Some("filter")),
        // Valid ones next to an invalid one: nothing is applied.
        (
            json!({"ordering": "fifo", "filter": "data.a > 1", "retry_schedule": ["0s", "x"]}),
            422,
            Some("retry_schedule[1]"),
        ),
        // A valid change next to an invalid one: nothing is applied.
        (
            json!({"description": "new", "url": "nope"}),
            422,
            Some("url"),
        ),
    ];
    for (body, status, field) in patches {
        refused(&app, &key, "PATCH", &path, body, status, field).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let app = TestApp::builder().max_payload(4096).spawn().await;
    let (_, key) = app.tenant("acme").await;
    let before = app.snapshot().await;
    let cases: Vec<(Vec<u8>, &str, u16)> = vec![
        (b"{\"url\":".to_vec(), "application/json", 400),
        (b"".to_vec(), "application/json", 400),
        (b"{} trailing".to_vec(), "application/json", 400),
        (
            vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
            "application/json",
            400,
        ),
        (
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            "application/json",
            413,
        ),
        (
            format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes(),
            "application/json",
            422,
        ),
        (vec![b' '; 5000], "application/json", 413),
        (b"url=x".to_vec(), "application/x-www-form-urlencoded", 415),
    ];
    for (body, content_type, status) in cases {
        let (got, error) = app
            .post_raw("/api/v1/webhooks", &key, body.clone(), content_type)
            .await;
        assert_eq!(
            got,
            status,
            "{} -> {error}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
        assert!(error["code"].is_string(), "{error}");
    }
    // Nesting deeper than the parser's limit (128) inside an object.
    let deep = format!(
        r#"{{"event_type":"user.created","data":{{"a":{}1{}}}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let (status, error) = app
        .post_raw(
            "/api/v1/events",
            &key,
            deep.into_bytes(),
            "application/json",
        )
        .await;
    assert!(status == 400 || status == 422, "{status} {error}");
    let big = json!({"event_type": "user.created", "data": {"blob": "x".repeat(5000)}});
    let (status, error) = app.post("/api/v1/events", &key, big).await;
    assert_eq!(status, 413);
    assert_eq!(error["code"], "payload_too_large");
    assert_eq!(app.snapshot().await, before);
    app.stop().await;
}

#[tokio::test]
async fn bad_publish_input_is_refused_and_writes_nothing() {
    let app = TestApp::builder().spawn().await;
    let TenantWithEndpoint { key, .. } = app
        .tenant_with_endpoint("https://example.com/h", &["*"])
        .await;
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"data": {}}), 422, Some("event_type")),
        (json!({"event_type": "user.created"}), 422, Some("data")),
        (
            json!({"event_type": "no.such", "data": {}}),
            422,
            Some("event_type"),
        ),
        (
            json!({"event_type": "bad type", "data": {}}),
            422,
            Some("event_type"),
        ),
        (
            json!({"event_type": "user.created", "data": [1]}),
            422,
            Some("data"),
        ),
        (
            json!({"event_type": "user.created", "data": "x"}),
            422,
            Some("data"),
        ),
        (
            json!({"event_type": "user.created", "data": null}),
            422,
            Some("data"),
        ),
        (
            json!({"event_type": 7, "data": {}}),
            422,
            Some("event_type"),
        ),
        (
            json!({"event_type": "user.created", "data": {}, "extra": 1}),
            422,
            Some("extra"),
        ),
    ];
    for (body, status, field) in cases {
        refused(&app, &key, "POST", "/api/v1/events", body, status, field).await;
    }
    let before = app.snapshot().await;
    for bad_key in ["", &"k".repeat(300), "has space"] {
        let response = app
            .http
            .post(app.url("/api/v1/events"))
            .bearer_auth(&key)
            .header("Idempotency-Key", bad_key)
            .json(&json!({"event_type": "user.created", "data": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad_key:?}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["field"], "Idempotency-Key");
    }
    assert_eq!(app.snapshot().await, before);
    app.stop().await;
}

#[tokio::test]
async fn bad_ids_and_parameters_get_json_errors() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    for path in [
        "/api/v1/webhooks/nope",
        "/api/v1/webhooks/ep_0000000000000000000000zz",
        "/api/v1/events/evt_%00",
        "/api/v1/events/../../etc",
    ] {
        let (status, body) = app.get(path, &key).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["code"].is_string());
    }
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": "https://example.com/h", "events": ["*"]}),
        )
        .await;
    let id = endpoint["id"].as_str().unwrap();
    for limit in ["0", "251", "abc", "-1", "99999999999999999999"] {
        let (status, body) = app
            .get(
                &format!("/api/v1/webhooks/{id}/deliveries?limit={limit}"),
                &key,
            )
            .await;
        assert_eq!(status, 400, "limit={limit}: {body}");
        assert_eq!(body["field"], "limit");
        assert_eq!(
            body["message"], "limit: must be a whole number from 1 to 250",
            "limit={limit}"
        );
    }
    // Every parameter error says what the parameter takes, in plain words,
    // never the framework's validator text.
    let deliveries = format!("/api/v1/webhooks/{id}/deliveries");
    for (query, field, says) in [
        ("status=lost", "status", "must be pending, in_flight"),
        (
            "event_type=a..b",
            "event_type",
            "must be an event type name",
        ),
        ("cursor=", "cursor", "not a cursor"),
        ("since=yesterday", "since", "RFC 3339"),
        ("until=2026-13-45", "until", "RFC 3339"),
    ] {
        let (status, body) = app.get(&format!("{deliveries}?{query}"), &key).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["field"], field, "{query}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{query}: {message}");
        for framework in [
            "verification failed",
            "minimum(",
            "pattern(",
            "Failed to parse",
        ] {
            assert!(!message.contains(framework), "{query}: {message}");
        }
    }
    let (status, body) = app
        .get(&format!("/api/v1/webhooks/{id}/stats?window=2d"), &key)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "window: must be 1h, 24h or 7d");
    let (status, body) = app.get("/api/v1/no/such/route", &key).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

/// Follows `next` from `path` with `limit`, returning every item's `key`.
async fn walk(app: &TestApp, path: &str, key: &str, limit: u32, field: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (status, page) = app.get(&url, key).await;
        assert_eq!(status, 200, "{url}: {page}");
        let data = page["data"].as_array().expect("data is a list");
        assert!(data.len() <= limit as usize, "{page}");
        seen.extend(
            data.iter()
                .map(|item| item[field].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return seen,
        }
    }
    panic!("{path} did not end");
}

#[tokio::test]
async fn every_list_is_paged_the_same_way() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("pager").await;
    let admin = app.admin_key();
    let mut created = Vec::new();
    for i in 0..7 {
        let webhook = app
            .endpoint(
                &key,
                json!({"url": format!("https://example.com/{i}"), "events": ["*"]}),
            )
            .await;
        created.push(webhook["id"].as_str().unwrap().to_string());
    }
    // Oldest first, each once, across pages of 3.
    assert_eq!(walk(&app, "/api/v1/webhooks", &key, 3, "id").await, created);
    let (_, first) = app.get("/api/v1/webhooks?limit=7", &key).await;
    assert!(first.get("next").is_none(), "an exact page ends: {first}");

    for _ in 0..2 {
        app.post(
            &format!("/api/v1/tenants/{tenant_id}/api-keys"),
            &admin,
            json!({}),
        )
        .await;
    }
    let keys = walk(
        &app,
        &format!("/api/v1/tenants/{tenant_id}/api-keys"),
        &admin,
        2,
        "id",
    )
    .await;
    assert_eq!(keys.len(), 3);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let types = walk(&app, "/api/v1/event-types", &key, 4, "name").await;
    let (_, whole) = app.get("/api/v1/webhooks/events?limit=250", &key).await;
    let all: Vec<String> = whole["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, all);

    let tenants = walk(&app, "/api/v1/tenants", &admin, 1, "id").await;
    assert!(tenants.contains(&tenant_id));

    // Bad paging parameters name themselves.
    for (path, field) in [
        ("/api/v1/webhooks?limit=0", "limit"),
        ("/api/v1/webhooks?limit=251", "limit"),
        ("/api/v1/webhooks?cursor=not-ours", "cursor"),
        ("/api/v1/event-types?cursor=eDp5", "cursor"),
    ] {
        let (status, error) = app.get(path, &key).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert_eq!(error["field"], field, "{path}: {error}");
    }
    let (status, error) = app.get("/api/v1/tenants?cursor=bm9wZQ", &admin).await;
    assert_eq!(
        (status, &error["field"]),
        (400, &json!("cursor")),
        "{error}"
    );
    app.stop().await;
}
