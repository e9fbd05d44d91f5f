//! Running a fleet: Prometheus metrics on the API and on each worker, the
//! worker registry, JSON logs — and no secret in any log line (invariant 5).

use std::time::Duration;

use serde_json::{json, Value};

use hookfleet_tests::{
    free_port, sigterm, spawn_logged, spawn_receiver, wait_exit, wait_until, worker_binary,
    worker_env, Reply, TenantWithEndpoint, TestApp,
};

/// The value of one sample line (`name{labels} value`) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_registry_and_json_logs() {
    let app = TestApp::builder().worker_timeout("2s").spawn().await;
    let receiver = spawn_receiver(vec![Reply::status(503)], Reply::status(200)).await;
    let TenantWithEndpoint { key, secret, .. } =
        app.tenant_with_endpoint(&receiver.url, &["*"]).await;

    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let env = worker_env(
        &app.config,
        &[
            ("HOOKFLEET_METRICS_LISTEN", &metrics_listen),
            ("HOOKFLEET_LOG_FORMAT", "json"),
            ("HOOKFLEET_LOG", "debug"),
        ],
    );
    let mut worker = spawn_logged(worker_binary(), &env);
    let mut doomed = spawn_logged(worker_binary(), &worker_env(&app.config, &[]));

    // Both workers register.
    let admin = app.admin_key();
    let workers = wait_until(Duration::from_secs(10), || async {
        let (status, list) = app.get("/api/v1/admin/workers", &admin).await;
        (status == 200 && list.as_array()?.len() == 2).then_some(list)
    })
    .await
    .expect("two live workers");
    let pids: Vec<u64> = workers
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&u64::from(worker.child.id())));
    for w in workers.as_array().unwrap() {
        assert!(
            w["host"].is_string() && w["last_heartbeat"].is_string() && w["in_flight"].is_i64()
        );
    }
    let (status, _) = app.get("/api/v1/admin/workers", &key).await;
    assert_eq!(status, 401, "tenant keys cannot list workers");

    // A worker that dies without a word drops off after the timeout.
    let _ = doomed.child.kill();
    let _ = doomed.child.wait();
    wait_until(Duration::from_secs(10), || async {
        let (_, list) = app.get("/api/v1/admin/workers", &admin).await;
        (list.as_array()?.len() == 1).then_some(())
    })
    .await
    .expect("the killed worker drops off");

    let event = app.publish(&key, "user.created", json!({"n": 1})).await;
    app.wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;

    // The worker's metrics.
    let http = reqwest::Client::new();
    let scrape = wait_until(Duration::from_secs(10), || async {
        let text = http
            .get(format!("http://{metrics_listen}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (sample(
            &text,
            "hookfleet_attempt_outcomes_total{outcome=\"delivered\"}",
        ) == Some(1.0)
            && text.contains("hookfleet_queue_depth{"))
        .then_some(text)
    })
    .await
    .expect("the worker's metrics show the delivery");
    assert_eq!(
        sample(
            &scrape,
            "hookfleet_attempt_outcomes_total{outcome=\"retry\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&scrape, "hookfleet_attempts_total{class=\"5xx\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&scrape, "hookfleet_attempts_total{class=\"2xx\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&scrape, "hookfleet_attempt_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        sample(&scrape, "hookfleet_delivery_latency_seconds_count"),
        Some(1.0)
    );
    assert!(
        sample(&scrape, "hookfleet_claimed_total").unwrap_or(0.0) >= 2.0,
        "{scrape}"
    );
    assert!(scrape.contains("hookfleet_rate_limited_total"));
    assert!(scrape.contains("hookfleet_redis_errors_total"));
    assert!(scrape.contains("hookfleet_worker_in_flight"));
    assert!(scrape.contains("hookfleet_queue_oldest_due_age_seconds{"));

    // The API's metrics, on its own port.
    let scrape_api = || async {
        let response = http.get(app.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    };
    let api_scrape = scrape_api().await;
    assert_eq!(
        sample(&api_scrape, "hookfleet_events_published_total"),
        Some(1.0)
    );
    assert!(
        sample(&api_scrape, "hookfleet_api_responses_total{class=\"2xx\"}").unwrap_or(0.0) >= 4.0
    );
    assert!(
        sample(&api_scrape, "hookfleet_api_responses_total{class=\"4xx\"}").unwrap_or(0.0) >= 1.0
    );
    assert!(api_scrape.contains("hookfleet_queue_depth{partition=\"0\"}"));
    // Every answer is counted, also one the outermost layer gives before
    // any route runs (a header parameter that is not text: 400).
    let client_errors = |scrape: &str| {
        sample(scrape, "hookfleet_api_responses_total{class=\"4xx\"}").unwrap_or(0.0)
    };
    let refused = http
        .post(app.url("/api/v1/events"))
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let rescrape = scrape_api().await;
    assert_eq!(client_errors(&rescrape), client_errors(&api_scrape) + 1.0);

    // A clean stop leaves the registry at once.
    sigterm(&worker.child);
    assert!(wait_exit(&mut worker.child).await.success());
    let (_, list) = app.get("/api/v1/admin/workers", &admin).await;
    assert_eq!(list, json!([]));

    // JSON logs, with the ids as fields, and never a secret or key.
    let log = worker.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
        })
        .collect();
    assert!(lines.len() > 3);
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["delivery_id"].is_string() && l["span"]["event_id"] == event["id"]),
        "attempt logs carry the ids"
    );
    let secret_key = secret.trim_start_matches("whsec_");
    for text in [&log, &doomed.log()] {
        assert!(!text.contains(secret_key), "a signing secret was logged");
        assert!(!text.contains(&key), "an API key was logged");
        assert!(!text.contains(&admin), "the admin key was logged");
    }
    app.stop().await;
}
