//! Redis Cluster: the API and a worker run against a cluster of three
//! masters (the one `scripts/test` starts, or one this test starts itself).
//! Endpoints of one tenant land on partitions that live on different
//! nodes; one event fans out to all of them, a failed attempt is retried,
//! and the tenant-wide delivery log merges what every node holds.
//!
//! `scripts/test` also runs the whole API suite a second time with
//! HOOKFLEET_TEST_REDIS_CLUSTER_NODES set, so every other end-to-end test
//! runs against the cluster as well.

use std::collections::{BTreeSet, HashMap};

use hookfleet_common::ids::{partition_of, IdKind};
use hookfleet_common::Keys;
use serde_json::json;

use hookfleet_tests::{
    cluster_masters, cluster_nodes, python_accepts, spawn_receiver, OwnCluster, Reply, TestApp,
};

#[tokio::test]
async fn fan_out_retries_and_the_log_span_the_nodes_of_a_cluster() {
    let (_own, nodes) = if cluster_nodes().is_empty() {
        let own = OwnCluster::start();
        let nodes = own.nodes_var();
        (Some(own), nodes)
    } else {
        (None, cluster_nodes())
    };
    let mut app = TestApp::builder()
        .redis_cluster_nodes(nodes.as_str())
        .partitions(16)
        .poll_interval("30s")
        .spawn()
        .await;
    let (_, key) = app.tenant("cluster").await;

    // Twelve endpoints, each with its own receiver; the first receiver
    // fails once, so its delivery needs a retry.
    let mut receivers = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..12 {
        let replies = if i == 0 {
            vec![Reply::status(503)]
        } else {
            vec![]
        };
        let receiver = spawn_receiver(replies, Reply::status(200)).await;
        let endpoint = app
            .endpoint(
                &key,
                json!({"url": receiver.url.clone(), "events": ["user.created"]}),
            )
            .await;
        receivers.push(receiver);
        endpoints.push(endpoint);
    }

    // The endpoints' records live on more than one node.
    let masters = cluster_masters(nodes.split(',').next().expect("a node")).await;
    assert_eq!(masters.len(), 3, "three masters: {masters:?}");
    let keys = Keys::new(app.config.redis_prefix.clone());
    let mut owners = BTreeSet::new();
    for endpoint in &endpoints {
        let id = endpoint["id"].as_str().expect("endpoint id");
        let record = keys.endpoint(partition_of(IdKind::Endpoint, id).expect("partition"), id);
        for master in &masters {
            let mut conn = redis::Client::open(master.as_str())
                .expect("node url")
                .get_multiplexed_async_connection()
                .await
                .expect("connect to a node");
            // A node that does not own the key's slot answers MOVED.
            let exists: redis::RedisResult<i64> = redis::cmd("EXISTS")
                .arg(&record)
                .query_async(&mut conn)
                .await;
            if exists == Ok(1) {
                owners.insert(master.clone());
            }
        }
    }
    assert!(
        owners.len() >= 2,
        "twelve endpoints over sixteen partitions span several nodes: {owners:?}"
    );

    app.start_worker();
    let event = app
        .publish(&key, "user.created", json!({"user": "ada"}))
        .await;
    assert_eq!(event["deliveries"], 12);
    let event_id = event["id"].as_str().expect("event id");
    let shown = app
        .wait_for_deliveries(&key, event_id, &["delivered"])
        .await;
    let attempts: HashMap<String, u64> = shown["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            (
                d["webhook_id"].as_str().unwrap_or_default().to_string(),
                d["attempts"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(attempts.len(), 12);
    for (i, (receiver, endpoint)) in receivers.iter().zip(&endpoints).enumerate() {
        let id = endpoint["id"].as_str().expect("endpoint id");
        let expected = if i == 0 { 2 } else { 1 };
        assert_eq!(attempts[id], expected, "attempts of endpoint {i}");
        let got = receiver.wait_for(expected as usize).await;
        let last = got.last().expect("a request");
        assert_eq!(last.header("webhook-id"), Some(event_id));
        let secret = endpoint["secret"].as_str().expect("secret");
        assert!(python_accepts(secret, last), "signature of endpoint {i}");
    }

    // The tenant-wide log merges all partitions, wherever they live.
    let (status, log) = app
        .get("/api/v1/deliveries?status=delivered&limit=5", &key)
        .await;
    assert_eq!(status, 200, "{log}");
    let mut seen: Vec<String> = Vec::new();
    let mut page = log;
    for _ in 0..10 {
        for d in page["data"].as_array().expect("data") {
            seen.push(d["id"].as_str().unwrap_or_default().to_string());
        }
        let Some(next) = page["next"].as_str().map(str::to_string) else {
            break;
        };
        let (status, body) = app
            .get(
                &format!("/api/v1/deliveries?status=delivered&limit=5&cursor={next}"),
                &key,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        page = body;
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert_eq!(unique.len(), 12);

    // And one delivery's detail shows the failed and the good attempt.
    let first = endpoints[0]["id"].as_str().expect("endpoint id");
    let delivery = shown["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["webhook_id"] == first)
        .expect("the first endpoint's delivery");
    let (status, detail) = app
        .get(
            &format!(
                "/api/v1/deliveries/{}",
                delivery["id"].as_str().unwrap_or("")
            ),
            &key,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    let codes: Vec<u64> = detail["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["status_code"].as_u64())
        .collect();
    assert_eq!(codes.len(), 2, "{detail}");
    assert!(codes.contains(&503) && codes.contains(&200), "{codes:?}");
    app.stop().await;
}
