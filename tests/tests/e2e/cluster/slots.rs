//! Invariant 4, cluster-safe keys: the whole delivery flow runs on a Redis
//! in cluster mode. A one-node cluster that owns every slot needs no
//! cluster-aware client, yet Redis itself refuses any script whose keys
//! span hash slots (CROSSSLOT, and Redis 7's check on keys a script touches
//! without declaring them). So every script and multi-key command the API
//! and worker run is proven single-slot here.

use std::time::Duration;

use serde_json::json;

use hookfleet_tests::{spawn_receiver, wait_until, OwnRedis, Reply, TestApp};

async fn make_cluster(redis: &OwnRedis) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query_async(&mut conn)
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        async move {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .ok()?;
            info.contains("cluster_state:ok").then_some(())
        }
    })
    .await
    .expect("the one-node cluster becomes ok");
}

#[tokio::test]
async fn every_operation_runs_on_a_cluster_mode_redis() {
    let redis = OwnRedis::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
    ]);
    make_cluster(&redis).await;
    // The check is real: a cross-slot script is refused here.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let refused: redis::RedisResult<redis::Value> =
        redis::Script::new("return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)")
            .key("{a}x")
            .key("{b}y")
            .invoke_async(&mut conn)
            .await;
    assert!(refused.is_err(), "cluster mode refuses cross-slot scripts");

    let url = redis.url();
    let app = TestApp::builder()
        .with_worker()
        .redis_url(url.as_str())
        .retry_schedule("0s,50ms,50ms,1h")
        .spawn()
        .await;
    let (_, key) = app.tenant("acme").await;
    let ok = spawn_receiver(vec![Reply::status(500)], Reply::status(200)).await;
    let ops = spawn_receiver(vec![], Reply::status(200)).await;
    let gone = spawn_receiver(vec![], Reply::status(410)).await;
    // Endpoints in several partitions.
    let mut endpoints = Vec::new();
    for _ in 0..6 {
        endpoints.push(
            app.endpoint(
                &key,
                json!({"url": ok.url, "events": ["user.*"], "rate_limit": 1000}),
            )
            .await,
        );
    }
    app.endpoint(
        &key,
        json!({"url": ops.url, "events": ["endpoint.disabled", "message.attempt.exhausted"]}),
    )
    .await;
    let gone_endpoint = app
        .endpoint(&key, json!({"url": gone.url, "events": ["job.failed"]}))
        .await;
    let event = app.publish(&key, "user.created", json!({"n": 1})).await;
    assert_eq!(event["deliveries"], 6);
    let detail = app
        .wait_for_deliveries(&key, event["id"].as_str().unwrap(), &["delivered"])
        .await;

    // Idempotent publish, event types, list, patch.
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "k1")
        .json(&json!({"event_type": "user.created", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let (status, _) = app
        .post(
            "/api/v1/event-types",
            &key,
            json!({"name": "user.deleted", "description": ""}),
        )
        .await;
    assert_eq!(status, 201);
    let first = endpoints[0]["id"].as_str().unwrap();
    let (status, _) = app
        .patch(
            &format!("/api/v1/webhooks/{first}"),
            &key,
            json!({"active": false}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .patch(
            &format!("/api/v1/webhooks/{first}"),
            &key,
            json!({"active": true}),
        )
        .await;
    assert_eq!(status, 200);

    // Logs, retry, replay, test send, stats, rotation.
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap();
    let (status, _) = app
        .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/api/v1/deliveries?status=delivered", &key).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let since =
        hookfleet_common::time_util::rfc3339_ms(hookfleet_common::time_util::now_ms() - 60_000);
    let (status, _) = app
        .post(
            &format!("/api/v1/webhooks/{first}/replay"),
            &key,
            json!({"since": since, "filter": "all"}),
        )
        .await;
    assert_eq!(status, 202);
    let (status, test) = app
        .post(&format!("/api/v1/webhooks/{first}/test"), &key, json!({}))
        .await;
    assert_eq!(
        (status, test["status"].as_str()),
        (200, Some("delivered")),
        "{test}"
    );
    let (status, _) = app
        .get(&format!("/api/v1/webhooks/{first}/stats?window=7d"), &key)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/api/v1/webhooks/{first}/secret/rotate"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!(status, 200);

    // Circuit breaker and operational events.
    let failed = app.publish(&key, "job.failed", json!({})).await;
    app.wait_for_deliveries(&key, failed["id"].as_str().unwrap(), &["failed"])
        .await;
    ops.wait_for(2).await;
    let (_, gone_now) = app
        .get(
            &format!("/api/v1/webhooks/{}", gone_endpoint["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(gone_now["active"], false);

    // Delete with deliveries still scheduled.
    let (status, _) = app.delete(&format!("/api/v1/webhooks/{first}"), &key).await;
    assert_eq!(status, 204);
    app.stop().await;
}
