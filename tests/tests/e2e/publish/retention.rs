//! Retention: events, deliveries and their logs expire after
//! HOOKFLEET_RETENTION; their routes then answer 404 with a message that
//! says so, and an expired delivery still queued is dropped, not attempted.

use std::time::Duration;

use serde_json::json;

use hookfleet_tests::{
    endpoint_partition, spawn_receiver, wait_until, Reply, TenantWithEndpoint, TestApp,
};

#[tokio::test]
async fn expired_events_and_deliveries_answer_404() {
    let mut app = TestApp::builder().retention("1s").spawn().await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let TenantWithEndpoint {
        key,
        endpoint_id: id,
        ..
    } = app.tenant_with_endpoint(&receiver.url, &["*"]).await;
    let event = app.publish(&key, "user.created", json!({})).await;
    let event_id = event["id"].as_str().unwrap();
    let (_, detail) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_string();

    let expired = wait_until(Duration::from_secs(10), || async {
        let (status, body) = app.get(&format!("/api/v1/events/{event_id}"), &key).await;
        (status == 404).then_some(body)
    })
    .await
    .expect("the event expires");
    assert!(
        expired["message"].as_str().unwrap().contains("retention"),
        "{expired}"
    );
    let (status, body) = app
        .get(&format!("/api/v1/deliveries/{delivery_id}"), &key)
        .await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("retention"));
    let (_, page) = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), &key)
        .await;
    assert_eq!(page["data"], json!([]));

    // The delivery expired while still queued: a worker drops it.
    app.start_worker();
    let ready = app.keys().ready(endpoint_partition(&id));
    wait_until(Duration::from_secs(10), || async {
        let gone = app.queued_total().await == 0 && app.zscore(&ready, &id).await.is_none();
        gone.then_some(())
    })
    .await
    .expect("the expired delivery leaves the queue");
    assert_eq!(receiver.count(), 0);
    app.stop().await;
}
