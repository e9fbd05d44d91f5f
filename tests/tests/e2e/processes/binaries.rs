//! The real binaries as processes: start `hookfleet-api` and
//! `hookfleet-worker`, deliver an event, and stop both with SIGTERM — the
//! worker finishing the attempt it has in flight before it exits 0.
//!
//! `hookfleet-worker` is found next to `hookfleet-api` in the target folder;
//! `scripts/test` builds all binaries before running the tests.

use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_tests::{
    api_binary, free_port, init_tls, random_suffix, redis_url, sigterm, spawn, spawn_receiver,
    wait_exit, wait_until, worker_binary, Reply,
};

#[tokio::test]
async fn binaries_deliver_and_stop_cleanly_on_sigterm() {
    init_tls();
    let port = free_port();
    let prefix = format!("proc-{}", random_suffix());
    let admin = format!("admin-{}", random_suffix());
    let env = vec![
        ("HOOKFLEET_REDIS_URL", redis_url()),
        ("HOOKFLEET_REDIS_PREFIX", prefix),
        ("HOOKFLEET_LISTEN", format!("127.0.0.1:{port}")),
        ("HOOKFLEET_ADMIN_KEY", admin.clone()),
        ("HOOKFLEET_RETRY_SCHEDULE", "0s,50ms".to_string()),
        ("HOOKFLEET_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
        ("HOOKFLEET_METRICS_LISTEN", "127.0.0.1:0".to_string()),
        ("HOOKFLEET_LOG", "warn".to_string()),
    ];
    let mut api = spawn(api_binary(), &env);
    let mut worker = spawn(worker_binary(), &env);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_until(Duration::from_secs(20), || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await
    .expect("the API becomes ready");

    let post = |path: String, key: String, body: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http
                .post(format!("{base}{path}"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (_, tenant) = post(
        "/api/v1/tenants".into(),
        admin.clone(),
        json!({"name": "acme"}),
    )
    .await;
    let tenant_id = tenant["id"].as_str().unwrap();
    let (_, created) = post(
        format!("/api/v1/tenants/{tenant_id}/api-keys"),
        admin.clone(),
        json!({}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_string();
    // The first answer takes a second: SIGTERM arrives while it is in flight.
    let receiver = spawn_receiver(
        vec![Reply::status(200).with_delay(Duration::from_millis(1500))],
        Reply::status(200),
    )
    .await;
    let (status, _) = post(
        "/api/v1/webhooks".into(),
        key.clone(),
        json!({"url": receiver.url, "events": ["*"]}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, event) = post(
        "/api/v1/events".into(),
        key.clone(),
        json!({"event_type": "user.created", "data": {"n": 1}}),
    )
    .await;
    assert_eq!(status, 202);
    let event_id = event["id"].as_str().unwrap().to_string();

    receiver.wait_for(1).await;
    sigterm(&worker);
    let worker_status = wait_exit(&mut worker).await;
    assert!(worker_status.success(), "worker exit: {worker_status:?}");
    // The attempt in flight was finished and recorded before the exit.
    let response = http
        .get(format!("{base}/api/v1/events/{event_id}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let detail: Value = response.json().await.unwrap();
    assert_eq!(detail["deliveries"][0]["status"], "delivered", "{detail}");
    assert_eq!(receiver.count(), 1);

    sigterm(&api);
    let api_status = wait_exit(&mut api).await;
    assert!(api_status.success(), "api exit: {api_status:?}");
}
