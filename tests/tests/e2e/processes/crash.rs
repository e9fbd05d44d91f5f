//! Invariant 1 under failure: every event answered with 202 reaches its
//! receiver through a worker killed with SIGKILL mid-attempt and through a
//! Redis restart (AOF on), with API and workers reconnecting by themselves.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use hookfleet_tests::{
    api_binary, free_port, init_tls, random_suffix, sigterm, spawn_logged, spawn_receiver,
    wait_exit, wait_until, worker_binary, worker_env, OwnRedis, Receiver, Reply, TestApp,
};

fn ids_received(receiver: &Receiver) -> HashSet<String> {
    receiver
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_worker_killed_mid_attempt_loses_nothing() {
    // Request timeout 2 s, lease 7 s: a killed worker's deliveries come back
    // 7 s after it claimed them.
    let mut app = TestApp::builder()
        .request_timeout("2s")
        .lease("7s")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    // The first three requests are held open past the timeout; later ones
    // are answered at once.
    let hold = Reply::status(200).with_delay(Duration::from_secs(30));
    let receiver = spawn_receiver(vec![hold.clone(), hold.clone(), hold], Reply::status(200)).await;
    app.endpoint(&key, json!({"url": receiver.url, "events": ["*"]}))
        .await;

    let env = worker_env(
        &app.config,
        &[
            ("HOOKFLEET_REQUEST_TIMEOUT", "2s"),
            ("HOOKFLEET_LEASE", "7s"),
        ],
    );
    let mut doomed = spawn_logged(worker_binary(), &env);
    let mut published = Vec::new();
    for n in 0..20 {
        let event = app.publish(&key, "user.created", json!({"n": n})).await;
        published.push(event["id"].as_str().unwrap().to_string());
    }
    receiver.wait_for(20).await;
    // Three attempts are in flight (held by the receiver): kill the worker.
    let killed = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(doomed.child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = doomed.child.wait();
    let before = ids_received(&receiver);
    // What the dead worker had claimed but not recorded: at least the three
    // held attempts, plus any answered in the moment before the kill.
    let mut in_flight = 0;
    for id in &published {
        let (_, event) = app.get(&format!("/api/v1/events/{id}"), &key).await;
        in_flight += event["deliveries"].as_array().map_or(0, |d| {
            d.iter().filter(|d| d["status"] == "in_flight").count()
        });
    }
    assert!(
        in_flight >= 3,
        "{in_flight} deliveries in flight at the kill"
    );

    // Another worker (in-process) takes over when the leases expire.
    app.start_worker();
    for id in &published {
        app.wait_for_deliveries(&key, id, &["delivered"]).await;
    }
    let received = ids_received(&receiver);
    for id in &published {
        assert!(received.contains(id), "{id} never arrived");
    }
    assert!(before.len() == 20);
    // Duplicates only for what was in flight when the worker died.
    let total = receiver.count();
    assert!(
        total <= 20 + in_flight,
        "{total} requests for 20 events, {in_flight} in flight at the kill"
    );
    assert!(
        total >= 23,
        "the three held deliveries were attempted again"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_redis_restart_loses_no_accepted_event() {
    init_tls();
    let mut redis = OwnRedis::start();
    let port = free_port();
    let admin = format!("admin-{}", random_suffix());
    let env = vec![
        ("HOOKFLEET_REDIS_URL", redis.url()),
        ("HOOKFLEET_LISTEN", format!("127.0.0.1:{port}")),
        ("HOOKFLEET_ADMIN_KEY", admin.clone()),
        ("HOOKFLEET_ALLOW_CIDRS", "127.0.0.0/8".to_string()),
        ("HOOKFLEET_METRICS_LISTEN", "127.0.0.1:0".to_string()),
        (
            "HOOKFLEET_RETRY_SCHEDULE",
            "0s,100ms,200ms,500ms,1s,2s,2s,2s".to_string(),
        ),
        ("HOOKFLEET_REQUEST_TIMEOUT", "2s".to_string()),
        ("HOOKFLEET_LEASE", "7s".to_string()),
        ("HOOKFLEET_POLL_INTERVAL", "200ms".to_string()),
        ("HOOKFLEET_WORKER_CONCURRENCY", "4".to_string()),
        ("HOOKFLEET_LOG", "info".to_string()),
    ];
    let mut api = spawn_logged(api_binary(), &env);
    let mut worker = spawn_logged(worker_binary(), &env);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = || async {
        let response = http.get(format!("{base}/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    };
    wait_until(Duration::from_secs(20), ready)
        .await
        .expect("API ready");

    let post = |path: &str, key: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let tenant: Value = post("/api/v1/tenants", &admin, json!({"name": "acme"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant_id = tenant["id"].as_str().unwrap();
    let created: Value = post(
        &format!("/api/v1/tenants/{tenant_id}/api-keys"),
        &admin,
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let receiver = spawn_receiver(
        vec![],
        Reply::status(200).with_delay(Duration::from_millis(30)),
    )
    .await;
    let response = post(
        "/api/v1/webhooks",
        &key,
        json!({"url": receiver.url, "events": ["*"]}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);

    let mut accepted = Vec::new();
    let publish = |n: usize| {
        post(
            "/api/v1/events",
            &key,
            json!({"event_type": "user.created", "data": {"n": n}}),
        )
    };
    for n in 0..60 {
        let response = publish(n).await.unwrap();
        assert_eq!(response.status(), 202);
        accepted.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    // Redis goes away while deliveries are still queued and in flight.
    redis.stop();
    let started = Instant::now();
    let response = publish(999).await.unwrap();
    assert_eq!(response.status(), 503, "publish while Redis is down");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503 came fast, not after a hang"
    );
    let readyz = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), 503);
    // The outage lasts 3 s: long enough for the worker to call it one
    // (at least 1 s and 3 failed calls; it polls every 200 ms), so its end
    // is logged with the count checked below.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(api.is_running() && worker.is_running(), "nothing crashed");

    redis.restart();
    wait_until(Duration::from_secs(30), ready)
        .await
        .expect("API ready again without a restart");
    for n in 60..80 {
        let response = publish(n).await.unwrap();
        assert_eq!(response.status(), 202);
        accepted.push(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let everything = wait_until(Duration::from_secs(40), || async {
        let got = ids_received(&receiver);
        accepted.iter().all(|id| got.contains(id)).then_some(())
    })
    .await;
    let got = ids_received(&receiver);
    let missing: Vec<&String> = accepted.iter().filter(|id| !got.contains(*id)).collect();
    assert!(
        everything.is_some(),
        "{} accepted events never arrived: {missing:?}",
        missing.len()
    );

    // Every loop that failed (some run only every few seconds) has
    // succeeded since: the worker says the outage is over.
    wait_until(Duration::from_secs(20), || async {
        worker.log().contains("Redis is back").then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no end of the outage in the worker's log:\n{}",
            worker.log()
        )
    });
    sigterm(&worker.child);
    assert!(wait_exit(&mut worker.child).await.success());
    sigterm(&api.child);
    assert!(wait_exit(&mut api.child).await.success());
    for (name, log) in [("api", api.log()), ("worker", worker.log())] {
        assert!(!log.contains("panicked"), "{name} panicked:\n{log}");
    }
    // The worker backed off while Redis was away instead of spinning: a busy
    // loop would have failed thousands of calls in those seconds. The line
    // that ends the outage counts them (every loop's, not only claims).
    let log = worker.log();
    let failed_calls: u64 = log
        .lines()
        .find(|line| line.contains("Redis is back"))
        .and_then(|line| line.split("failed_calls=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failed_calls in the worker's log:\n{log}"));
    assert!(
        failed_calls < 300,
        "{failed_calls} failed Redis calls: not backing off"
    );
}
