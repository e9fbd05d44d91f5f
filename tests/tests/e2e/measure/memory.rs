//! Measures the Redis memory a retained delivery costs, with its attempts.
//! Not part of the suite (it asserts nothing): `scripts/measure-memory`
//! runs it and prints the figures documented in docs/BENCHMARKS.md ("Memory per delivery").

use std::time::Duration;

use serde_json::json;

use hookfleet_tests::{spawn_receiver, wait_until, OwnRedis, Reply, TestApp};

async fn memory_info(url: &str) -> std::collections::BTreeMap<String, u64> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}

#[tokio::test]
#[ignore = "a measurement, run by scripts/measure-memory"]
async fn memory_per_retained_delivery() {
    let events: usize = std::env::var("HOOKFLEET_MEASURE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let redis = OwnRedis::start();
    let url = redis.url();
    let mut builder = TestApp::builder();
    // Settings the measurement compares (e.g. compression off).
    for name in ["HOOKFLEET_COMPRESS_ABOVE", "HOOKFLEET_RESPONSE_EXCERPT"] {
        if let Ok(value) = std::env::var(name) {
            builder = builder.env(name, &value);
        }
    }
    let app = builder
        .with_worker()
        .redis_url(url.as_str())
        .partitions(16)
        .retry_schedule("0s,50ms,50ms,50ms,50ms,50ms,50ms,50ms")
        // Every attempt kept: the log's cap would otherwise trim them.
        .env("HOOKFLEET_ATTEMPT_LOG_MAXLEN", &(events * 4).to_string())
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    // The first `events` answers are 500s, the rest 200s: about two attempts
    // per delivery.
    let flaky = spawn_receiver(
        (0..events).map(|_| Reply::status(500)).collect(),
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
    let before_info = memory_info(&url).await;
    for _ in 0..events {
        app.publish(&key, "user.created", payload.clone()).await;
    }
    wait_until(Duration::from_secs(120), || async {
        let (_, stats) = app.get(&stats_path, &key).await;
        (stats["backlog"] == 0 && stats["attempts"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    let (_, stats) = app.get(&stats_path, &key).await;
    println!(
        "endpoint stats: attempts {}, delivered {}, failed {}",
        stats["attempts"], stats["delivered"], stats["failed"]
    );
    // Connections idle for 2 s have their buffers shrunk (Redis's clientsCron):
    // what is left is what the data costs, not the last burst's buffers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after_info = memory_info(&url).await;
    let grew = |name: &str| {
        let at = |info: &std::collections::BTreeMap<String, u64>| {
            info.get(name).copied().unwrap_or(0) as f64
        };
        (at(&after_info) - at(&before_info)) / events as f64
    };
    let (before, after) = (before_info["used_memory"], after_info["used_memory"]);
    let per_delivery = grew("used_memory");
    for name in [
        "used_memory_dataset",
        "used_memory_overhead",
        "mem_clients_normal",
        "used_memory_scripts",
        "used_memory_vm_eval",
    ] {
        println!("  {name} grew {:.0} per delivery", grew(name));
    }
    let attempts = flaky.count() as f64 / events as f64;
    println!("events: {events}, one endpoint, {attempts:.2} attempts each, data {body_len} bytes");
    println!("used_memory before {before}, after {after}");
    println!("bytes per retained delivery (event body, delivery, 2 attempts, indexes): {per_delivery:.0}");
    // The connections the run opened (the pools grow under load) keep
    // buffers that do not grow with what is retained.
    println!(
        "  of which the connections' buffers: {:.0}; without them: {:.0}",
        grew("mem_clients_normal"),
        per_delivery - grew("mem_clients_normal")
    );
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
    // Per kind, one key and its encoding, to show what an entry looks like.
    let mut example: std::collections::BTreeMap<String, (String, String)> = Default::default();
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
        *by_kind.entry(kind.clone()).or_default() += bytes.unwrap_or(0);
        if let std::collections::btree_map::Entry::Vacant(slot) = example.entry(kind) {
            let encoding: String = redis::cmd("OBJECT")
                .arg("ENCODING")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            slot.insert((key, encoding));
        }
    }
    for (kind, bytes) in &by_kind {
        let (key, encoding) = &example[kind];
        println!(
            "  {kind:<16} {bytes:>10} bytes  {:>7.0} per delivery  ({encoding}, e.g. {key})",
            *bytes as f64 / events as f64
        );
    }
    // What one entry of each large kind looks like.
    for (kind, (key, encoding)) in &example {
        let mut cmd = match encoding.as_str() {
            "stream" => redis::cmd("XRANGE"),
            "hashtable" => redis::cmd("HRANDFIELD"),
            "skiplist" => redis::cmd("ZRANGE"),
            _ => continue,
        };
        match encoding.as_str() {
            "stream" => cmd.arg(key).arg("-").arg("+").arg("COUNT").arg(2),
            "hashtable" => cmd.arg(key).arg(1).arg("WITHVALUES"),
            _ => cmd.arg(key).arg(0).arg(0).arg("WITHSCORES"),
        };
        let sample: redis::Value = cmd
            .query_async(&mut conn)
            .await
            .unwrap_or(redis::Value::Nil);
        println!("  {kind}: {sample:?}");
    }
    app.stop().await;
}
