//! Finding things: `GET /api/v1/events` (newest first, by type, time
//! window and outcome, paged with a cursor, bounded work per page) and the
//! delivery log's `response` filter (a status code, a class, `timeout`,
//! `connect_error`), over 100,000 entries and against real receivers.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_tests::{spawn_receiver, wait_until, Reply, TestApp};

/// Publishes `n` events (batch route), every `every`th of type
/// `video.processed`, the rest `user.created`.
async fn publish_many(app: &TestApp, key: &str, n: usize, every: usize) {
    let mut sent = 0;
    while sent < n {
        let count = (n - sent).min(1000);
        let events: Vec<Value> = (sent..sent + count)
            .map(|i| {
                let event_type = if i % every == every - 1 {
                    "video.processed"
                } else {
                    "user.created"
                };
                json!({"event_type": event_type, "data": {"i": i}})
            })
            .collect();
        let (status, batch) = app
            .post("/api/v1/events/batch", key, json!({"events": events}))
            .await;
        assert!(status == 202 || status == 200, "{batch}");
        sent += count;
    }
}

/// Every page of `path` (which has a query already), following `next`:
/// the pages' data, and how many pages it took.
async fn walk(app: &TestApp, key: &str, path: &str) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_string(),
        };
        let (status, page) = app.get(&url, key).await;
        assert_eq!(status, 200, "{url}: {page}");
        pages += 1;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        assert!(data.len() <= 250, "a page holds at most its limit");
        all.extend(data);
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return (all, pages),
        }
    }
}

#[tokio::test]
async fn events_list_newest_first_by_type_and_window_over_100000() {
    let app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let (_, other) = app.tenant("other").await;
    // A paused endpoint holds a delivery of every user.created event: its
    // log has 99,900 entries for the `response` filter below.
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": "https://example.com/h", "events": ["user.created"], "paused": true}),
        )
        .await;
    let total = 100_000;
    publish_many(&app, &key, total, 1000).await;
    publish_many(&app, &other, 10, 1000).await;

    // Every event once, newest first, 250 a page.
    let (events, pages) = walk(&app, &key, "/api/v1/events?limit=250").await;
    assert_eq!(events.len(), total);
    // (The last full page may still say `next`: more may exist.)
    assert!(
        pages == total / 250 || pages == total / 250 + 1,
        "{pages} pages"
    );
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), total);

    // A selective type: each page looks at 1,000 events at most, so the
    // 100 matches come over many short pages.
    let (videos, pages) = walk(
        &app,
        &key,
        "/api/v1/events?event_type=video.processed&limit=250",
    )
    .await;
    assert_eq!(videos.len(), 100);
    assert!(videos.iter().all(|e| e["event_type"] == "video.processed"));
    assert!(pages >= 100, "bounded work per page: {pages} pages");

    // A time window: only events created within it.
    let since = events[60_000]["created_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let until = events[40_000]["created_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (window, _) = walk(
        &app,
        &key,
        &format!("/api/v1/events?since={since}&until={until}&limit=250"),
    )
    .await;
    assert!(window.len() >= 20_000, "{} in the window", window.len());
    for event in &window {
        let at = event["created_at"].as_str().unwrap_or_default();
        assert!(
            at >= since.as_str() && at <= until.as_str(),
            "{at} outside the window"
        );
    }

    // The delivery log's `response` filter keeps its bound too: nothing in
    // this log has been attempted, and every page looks at 1,000 at most.
    let path = format!(
        "/api/v1/webhooks/{}/deliveries?response=5xx&limit=250",
        endpoint["id"].as_str().unwrap_or_default()
    );
    let (answered, pages) = walk(&app, &key, &path).await;
    assert!(answered.is_empty());
    assert!(pages >= 99, "bounded work per page: {pages} pages");

    // Bad parameters: 400 naming the parameter; nothing written.
    let before = app.snapshot().await;
    for (query, field) in [
        ("outcome=sent", "outcome"),
        ("limit=0", "limit"),
        ("limit=251", "limit"),
        ("cursor=evt_nope", "cursor"),
        ("since=yesterday", "since"),
        (
            "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
        ),
        ("event_type=bad%20type", "event_type"),
    ] {
        let (status, error) = app.get(&format!("/api/v1/events?{query}"), &key).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(error["field"], field, "{query}: {error}");
    }
    let (status, error) = app.get("/api/v1/deliveries?response=6xx", &key).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("response")),
        "{error}"
    );
    assert_eq!(app.snapshot().await, before);
    app.stop().await;
}

#[tokio::test]
async fn failed_events_and_deliveries_by_their_last_answer() {
    let app = TestApp::builder()
        .request_timeout("1s")
        .lease("8s")
        .with_worker()
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let hangs = Reply::status(200).with_delay(Duration::from_secs(5));
    let receivers = [
        spawn_receiver(Vec::new(), Reply::status(503)).await,
        spawn_receiver(Vec::new(), Reply::status(404)).await,
        spawn_receiver(Vec::new(), hangs).await,
        spawn_receiver(Vec::new(), Reply::status(200)).await,
    ];
    // Nothing listens on this port.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        format!("http://127.0.0.1:{port}/hook")
    };
    let mut urls: Vec<String> = receivers.iter().map(|r| r.url.clone()).collect();
    urls.push(closed);
    let mut endpoints = Vec::new();
    for url in &urls {
        // One attempt each: a failure is final.
        let endpoint = app
            .endpoint(
                &key,
                json!({"url": url, "events": ["user.created"], "retry_schedule": ["0s"]}),
            )
            .await;
        endpoints.push(endpoint["id"].as_str().unwrap_or_default().to_string());
    }
    let healthy = app
        .endpoint(
            &key,
            json!({"url": receivers[3].url, "events": ["video.processed"]}),
        )
        .await;
    let mut failing = Vec::new();
    for n in 0..3 {
        let event = app.publish(&key, "user.created", json!({"n": n})).await;
        failing.push(event["id"].as_str().unwrap_or_default().to_string());
    }
    let fine = app.publish(&key, "video.processed", json!({})).await;
    for id in &failing {
        app.wait_for_deliveries(&key, id, &["delivered", "failed"])
            .await;
    }
    app.wait_for_deliveries(
        &key,
        fine["id"].as_str().unwrap_or_default(),
        &["delivered"],
    )
    .await;

    // Events with a failed delivery: the three, newest first; not the fine one.
    let listed = wait_until(Duration::from_secs(10), || async {
        let (_, page) = app.get("/api/v1/events?outcome=failed", &key).await;
        let ids: Vec<String> = page["data"]
            .as_array()?
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        (ids.len() == 3).then_some(ids)
    })
    .await;
    let mut newest_first = failing.clone();
    newest_first.reverse();
    assert_eq!(listed, Some(newest_first));
    let (_, typed) = app
        .get(
            "/api/v1/events?outcome=failed&event_type=video.processed",
            &key,
        )
        .await;
    assert_eq!(typed["data"], json!([]));

    // The log by last answer, tenant-wide and per endpoint.
    let count = |page: &Value| page["data"].as_array().map_or(0, Vec::len);
    for (response, endpoint, error) in [
        ("503", 0, None),
        ("5xx", 0, None),
        ("404", 1, None),
        ("4xx", 1, None),
        ("timeout", 2, Some("timeout")),
        ("connect_error", 4, Some("connect_error")),
    ] {
        let (status, page) = app
            .get(&format!("/api/v1/deliveries?response={response}"), &key)
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(count(&page), 3, "{response}: {page}");
        for delivery in page["data"].as_array().into_iter().flatten() {
            assert_eq!(
                delivery["webhook_id"],
                endpoints[endpoint].as_str(),
                "{response}"
            );
            assert_eq!(delivery["status"], "failed");
            assert_eq!(delivery["last_error"].as_str(), error, "{delivery}");
        }
        let (_, own) = app
            .get(
                &format!(
                    "/api/v1/webhooks/{}/deliveries?response={response}",
                    endpoints[endpoint]
                ),
                &key,
            )
            .await;
        assert_eq!(count(&own), 3, "{response}: {own}");
    }
    let (_, ok) = app.get("/api/v1/deliveries?response=2xx", &key).await;
    assert_eq!(
        count(&ok),
        4,
        "three user.created to the 200 receiver, and the fine one: {ok}"
    );
    assert_eq!(ok["data"][0]["webhook_id"], healthy["id"]);
    app.stop().await;
}
