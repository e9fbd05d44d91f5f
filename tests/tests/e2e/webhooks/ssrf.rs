//! Invariant 7, no SSRF: restricted destinations are refused when an
//! endpoint is saved (any spelling) and again when the worker connects
//! (after DNS resolution); redirects are never followed.

use serde_json::json;

use hookfleet_tests::{spawn_receiver, Reply, TestApp};

#[tokio::test]
async fn restricted_urls_are_refused_in_every_spelling() {
    let app = TestApp::builder().allow_cidrs("").spawn().await;
    let (_, key) = app.tenant("acme").await;
    let before = app.snapshot().await;
    for url in [
        "http://127.0.0.1/",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0.0.0.0/",
        "http://localhost:8080/",
        "http://sub.localhost/",
        "http://10.0.0.1/",
        "http://172.20.1.1/",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest",
        "http://100.100.100.100/",
        "http://239.1.1.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a00:1::]/",
        "http://[2001::1]/",
        "http://[3fff::1]/",
        "http://198.18.0.1/",
    ] {
        let (status, error) = app
            .post(
                "/api/v1/webhooks",
                &key,
                json!({"url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(status, 422, "{url}: {error}");
        assert_eq!(error["field"], "url", "{url}");
    }
    assert_eq!(app.snapshot().await, before);
    // Public destinations are fine.
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": "https://93.184.216.34/hook", "events": ["*"]}),
        )
        .await;
    // A change of URL gets the same check, and writes nothing when refused.
    let path = format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap());
    let before = app.snapshot().await;
    for url in ["http://[::ffff:0:7f00:1]/", "http://[::ffff:0:a9fe:a9fe]/"] {
        let (status, error) = app.patch(&path, &key, json!({"url": url})).await;
        assert_eq!(status, 422, "{url}: {error}");
        assert_eq!(error["field"], "url", "{url}");
    }
    assert_eq!(app.snapshot().await, before);
    app.stop().await;
}

#[tokio::test]
async fn https_only_refuses_plain_http() {
    let app = TestApp::builder().https_only().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let (status, error) = app
        .post(
            "/api/v1/webhooks",
            &key,
            json!({"url": "http://example.com/", "events": ["*"]}),
        )
        .await;
    assert_eq!((status, error["field"].as_str()), (422, Some("url")));
    app.stop().await;
}

#[tokio::test]
async fn the_worker_refuses_restricted_addresses_at_connect_time() {
    // The API (allow-list 127.0.0.0/8) accepts the URLs; the worker (no
    // allow-list) is the last line of defence and must refuse them.
    let mut app = TestApp::builder().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/hook")
        .to_string();
    // A name that resolves to loopback (the machine's own name, where it
    // does; else `localhost`), and a literal loopback address.
    let name = loopback_name().await;
    let by_name = app
        .endpoint(
            &key,
            json!({"url": format!("http://{name}:{port}/hook"), "events": ["user.created"]}),
        )
        .await;
    let by_address = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "events": ["video.processed"]}),
        )
        .await;
    let mut strict = app.config.clone();
    strict.address_policy = hookfleet_common::net_policy::AddressPolicy::default();
    app.start_worker_with(strict);

    let named = app.publish(&key, "user.created", json!({})).await;
    let literal = app.publish(&key, "video.processed", json!({})).await;
    let named = app
        .wait_for_deliveries(&key, named["id"].as_str().unwrap(), &["failed"])
        .await;
    let literal = app
        .wait_for_deliveries(&key, literal["id"].as_str().unwrap(), &["failed"])
        .await;
    assert_eq!(receiver.count(), 0, "no request reached the receiver");
    // A literal restricted address fails at once; a name that resolves to
    // one is retried (DNS may change) until the schedule is exhausted.
    assert_eq!(literal["deliveries"][0]["attempts"], 1);
    let expected = if name == "localhost" { 1 } else { 3 };
    assert_eq!(named["deliveries"][0]["attempts"], expected, "{name}");
    for endpoint in [&by_name, &by_address] {
        let attempts = app.attempts(endpoint["id"].as_str().unwrap()).await;
        assert!(!attempts.is_empty());
        for attempt in attempts {
            assert!(attempt["error"].contains("refused"), "{attempt:?}");
            assert_eq!(attempt["code"], "");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, key) = app.tenant("acme").await;
    let target = spawn_receiver(vec![], Reply::status(200)).await;
    let redirecting = spawn_receiver(
        vec![],
        Reply::status(302).with_header("location", &target.url),
    )
    .await;
    let endpoint = app
        .endpoint(&key, json!({"url": redirecting.url, "events": ["*"]}))
        .await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let detail = app
        .wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["failed"])
        .await;
    assert_eq!(detail["deliveries"][0]["last_status_code"], 302);
    assert_eq!(redirecting.count(), 3, "3xx is retried like a failure");
    assert_eq!(target.count(), 0, "the redirect was not followed");
    let attempts = app.attempts(endpoint["id"].as_str().unwrap()).await;
    assert!(attempts.iter().all(|a| a["code"] == "302"));
    app.stop().await;
}

/// A host name other than `localhost` that resolves only to loopback
/// addresses, so the refusal must come from the resolver; `localhost` (which
/// the worker refuses by name) when the machine has none.
async fn loopback_name() -> String {
    let hostname = std::process::Command::new("hostname")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !hostname.is_empty() && hostname != "localhost" {
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::net::lookup_host((hostname.as_str(), 0)).await {
                Ok(addrs) => addrs.collect(),
                Err(_) => Vec::new(),
            };
        if !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()) {
            return hostname;
        }
    }
    "localhost".to_string()
}
