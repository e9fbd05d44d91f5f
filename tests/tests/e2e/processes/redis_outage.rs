//! A worker's log through a Redis outage, as an operator reads it: one line
//! when Redis goes away, one when it is back, not a line per partition per
//! back-off round; and plain text (no colour codes) when the log is a file
//! or a pipe.

use std::time::{Duration, Instant};

use hookfleet_tests::{
    random_suffix, sigterm, spawn_logged, wait_exit, wait_until, worker_binary, OwnRedis,
};

/// The log's lines that contain `text`.
fn lines_with(log: &str, text: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(text))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_redis_outage_is_logged_once_when_it_starts_and_once_when_it_ends() {
    let mut redis = OwnRedis::start();
    let env = vec![
        ("HOOKFLEET_REDIS_URL", redis.url()),
        (
            "HOOKFLEET_REDIS_PREFIX",
            format!("outage{}", random_suffix()),
        ),
        ("HOOKFLEET_METRICS_LISTEN", "127.0.0.1:0".to_string()),
        ("HOOKFLEET_POLL_INTERVAL", "200ms".to_string()),
        ("HOOKFLEET_LOG", "info".to_string()),
    ];
    // stderr is a pipe here, as it is for scripts/run's log files.
    let mut worker = spawn_logged(worker_binary(), &env);
    wait_until(Duration::from_secs(20), || async {
        worker.log().contains("worker started").then_some(())
    })
    .await
    .expect("the worker starts");

    redis.stop();
    let down_at = Instant::now();
    wait_until(Duration::from_secs(10), || async {
        worker.log().contains("Redis unreachable").then_some(())
    })
    .await
    .expect("the outage is logged");
    // Stay away about five seconds: every loop (16 partitions' claims, the
    // heartbeat, the sweeps, the subscription) fails many times over.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(down_at.elapsed())).await;
    redis.restart();
    wait_until(Duration::from_secs(30), || async {
        worker.log().contains("Redis is back").then_some(())
    })
    .await
    .expect("the end of the outage is logged");
    assert!(worker.is_running(), "the worker rides out the outage");

    let log = worker.log();
    assert_eq!(lines_with(&log, "Redis unreachable").len(), 1, "{log}");
    assert_eq!(lines_with(&log, "Redis is back").len(), 1, "{log}");
    // Nothing else at warning level: those two are the whole story (a
    // five-second outage is shorter than the 30 s reminder).
    let warnings = lines_with(&log, "WARN");
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    let back = &lines_with(&log, "Redis is back")[0];
    assert!(
        back.contains("down_for=") && back.contains("failed_calls="),
        "the end says how long and how many calls failed: {back}"
    );
    assert!(
        !log.contains("\x1b["),
        "colour codes in a log that is not a terminal: {log:?}"
    );

    sigterm(&worker.child);
    assert!(wait_exit(&mut worker.child).await.success());
}
