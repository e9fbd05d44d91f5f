//! Measures what a Redis crash costs with `appendonly yes` and
//! `appendfsync everysec` (the supported set-up): publishers run flat out,
//! redis-server is killed with SIGKILL (no chance to flush anything), then
//! restarted on the same files; every event the API acknowledged with 202
//! is looked up again. Not part of the suite (a measurement of Redis, run by
//! `scripts/measure-aof-loss`); the figures are quoted in the README.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use hookfleet_tests::{wait_until, OwnRedis, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run by scripts/measure-aof-loss"]
async fn acknowledged_events_after_a_redis_sigkill() {
    const PUBLISHERS: usize = 16;
    const RUNS: usize = 3;
    for run in 1..=RUNS {
        let mut redis = OwnRedis::start();
        let url = redis.url();
        let app = Arc::new(TestApp::builder().redis_url(url.as_str()).spawn().await);
        let (_, key) = app.tenant("aof").await;
        app.endpoint(
            &key,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["user.created"]}),
        )
        .await;

        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..PUBLISHERS {
            let (app, key, acked, stop) = (app.clone(), key.clone(), acked.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let (status, body) = app
                        .post(
                            "/api/v1/events",
                            &key,
                            json!({"event_type": "user.created", "data": {"n": n, "pad": "x".repeat(150)}}),
                        )
                        .await;
                    if status == 202 {
                        if let Some(id) = body["id"].as_str() {
                            acked.lock().unwrap().push(id.to_string());
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let killed_at = Instant::now();
        redis.kill();
        // Publishers now get 503s; stop them and count what was promised.
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        let acked: Vec<String> = acked.lock().unwrap().clone();
        redis.restart();
        let restarted_in = killed_at.elapsed();

        // The API reconnects by itself; look every acknowledged event up.
        wait_until(Duration::from_secs(20), || async {
            let (status, _) = app.get("/readyz", "").await;
            (status == 200).then_some(())
        })
        .await
        .expect("the API is ready again");
        let mut lost = 0usize;
        for id in &acked {
            let (status, _) = app.get(&format!("/api/v1/events/{id}"), &key).await;
            if status != 200 {
                lost += 1;
            }
        }
        println!(
            "run {run}: {} events acknowledged in 2.5 s, SIGKILL, restart after {:.1} s: {lost} lost",
            acked.len(),
            restarted_in.as_secs_f64()
        );
        assert!(!acked.is_empty(), "publishers got 202s before the kill");
        redis.stop();
    }
}
