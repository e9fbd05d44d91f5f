//! Measures the Redis memory a retained delivery costs, with its attempts.
//! Not part of the suite (it asserts nothing): `scripts/measure-memory`
//! runs it and prints the figures documented in docs/BENCHMARKS.md ("Memory per delivery").

use std::time::Duration;

use serde_json::json;

use hookfleet_tests::{spawn_receiver, wait_until, OwnRedis, Reply, TestApp};

async fn used_memory(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test]
#[ignore = "a measurement, run by scripts/measure-memory"]
async fn memory_per_retained_delivery() {
    const EVENTS: usize = 2000;
    let redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::builder()
        .with_worker()
        .redis_url(url.as_str())
        .partitions(16)
        .retry_schedule("0s,50ms,50ms,50ms,50ms,50ms,50ms,50ms")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    // The first EVENTS answers are 500s, the rest 200s: about two attempts
    // per delivery.
    let flaky = spawn_receiver(
        (0..EVENTS).map(|_| Reply::status(500)).collect(),
        Reply::status(200),
    )
    .await;
    let endpoint = app
        .endpoint(&key, json!({"url": flaky.url, "events": ["*"]}))
        .await;
    let stats_path = format!(
        "/api/v1/webhooks/{}/stats",
        endpoint["id"].as_str().unwrap()
    );
    let payload = json!({"user_id": "u_123456", "email": "ada@example.com", "plan": "pro", "note": "x".repeat(120)});
    let body_len = payload.to_string().len();
    let before = used_memory(&url).await;
    for _ in 0..EVENTS {
        app.publish(&key, "user.created", payload.clone()).await;
    }
    wait_until(Duration::from_secs(120), || async {
        let (_, stats) = app.get(&stats_path, &key).await;
        (stats["backlog"] == 0 && stats["attempts"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    let (_, stats) = app.get(&stats_path, &key).await;
    println!("endpoint stats: {stats}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = used_memory(&url).await;
    let per_delivery = (after - before) as f64 / EVENTS as f64;
    let attempts = flaky.count() as f64 / EVENTS as f64;
    println!("events: {EVENTS}, one endpoint, {attempts:.2} attempts each, data {body_len} bytes");
    println!("used_memory before {before}, after {after}");
    println!("bytes per retained delivery (event body, delivery, 2 attempts, indexes): {per_delivery:.0}");
    // Where it goes: each key's MEMORY USAGE, summed by what the key holds
    // (its name after the partition tag, up to the next `:`).
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.config.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut by_kind: std::collections::BTreeMap<String, u64> = Default::default();
    for key in keys {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut conn)
            .await
            .unwrap();
        let after_tag = key.rsplit_once('}').map_or(key.as_str(), |(_, rest)| rest);
        let kind = after_tag
            .trim_start_matches(':')
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        *by_kind.entry(kind).or_default() += bytes.unwrap_or(0);
    }
    for (kind, bytes) in &by_kind {
        println!(
            "  {kind:<16} {bytes:>10} bytes  {:>7.0} per delivery",
            *bytes as f64 / EVENTS as f64
        );
    }
    app.stop().await;
}
