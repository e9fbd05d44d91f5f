//! Authentication and tenant isolation (invariant 8): no key or a wrong key
//! gets 401; another tenant's ids get 404, never 403, and nothing changes.

use serde_json::json;

use hookfleet_tests::{spawn_receiver, Reply, TestApp};

#[tokio::test]
async fn missing_or_wrong_keys_get_401() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let routes = [
        ("GET", "/api/v1/webhooks".to_string()),
        ("POST", "/api/v1/webhooks".to_string()),
        ("GET", "/api/v1/webhooks/events".to_string()),
        ("POST", "/api/v1/events".to_string()),
        ("GET", "/api/v1/event-types".to_string()),
        ("GET", "/api/v1/tenants".to_string()),
        ("POST", format!("/api/v1/tenants/{tenant_id}/api-keys")),
    ];
    for (method, path) in &routes {
        for auth in [None, Some("hf_wrong"), Some("Basic abc")] {
            let mut request = app.http.request(method.parse().unwrap(), app.url(path));
            if let Some(auth) = auth {
                request = request.header("authorization", format!("Bearer {auth}"));
            }
            let response = request.json(&json!({})).send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} with {auth:?}");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["code"], "unauthorized");
        }
    }
    // A tenant key is not an admin key, and the admin key is not a tenant
    // key: each is told so, and which kind the route needs.
    let (status, body) = app.get("/api/v1/tenants", &key).await;
    assert_eq!(status, 401);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("tenant API key") && message.contains("needs the admin key"),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/webhooks", &app.admin_key()).await;
    assert_eq!(status, 401);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("admin key") && message.contains("needs a tenant API key"),
        "{body}"
    );
    // An unknown key is still just unknown.
    let (_, body) = app.get("/api/v1/tenants", "hf_not-a-key").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("missing, unknown"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn revoked_keys_stop_working_and_keys_are_stored_hashed() {
    let app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (tenant_id, key) = app.tenant("acme").await;
    let (status, _) = app.get("/api/v1/webhooks", &key).await;
    assert_eq!(status, 200);

    // The key itself is nowhere in Redis.
    let snapshot = app.snapshot().await;
    assert!(snapshot
        .iter()
        .all(|(k, v)| !k.contains(&key) && !v.contains(&key)));

    let (status, keys) = app
        .get(&format!("/api/v1/tenants/{tenant_id}/api-keys"), &admin)
        .await;
    assert_eq!(status, 200);
    let listed = keys["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("key").is_none());
    assert!(key.starts_with(listed[0]["prefix"].as_str().unwrap()));
    let key_id = listed[0]["id"].as_str().unwrap();

    let (status, _) = app
        .delete(
            &format!("/api/v1/tenants/{tenant_id}/api-keys/{key_id}"),
            &admin,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/api/v1/webhooks", &key).await;
    assert_eq!(status, 401);
    let (status, _) = app
        .delete(
            &format!("/api/v1/tenants/{tenant_id}/api-keys/{key_id}"),
            &admin,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post("/api/v1/tenants/ten_nope/api-keys", &admin, json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .post("/api/v1/tenants", &admin, json!({"name": ""}))
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("name")));
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_cannot_see_or_touch_another_tenants_data() {
    let app = TestApp::builder().with_worker().spawn().await;
    let (_, alice) = app.tenant("alice").await;
    let (_, bob) = app.tenant("bob").await;
    let receiver = spawn_receiver(vec![], Reply::status(200)).await;
    let endpoint = app
        .endpoint(&alice, json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let id = endpoint["id"].as_str().unwrap();
    let event = app
        .publish(&alice, "user.created", json!({"secret": "alice's"}))
        .await;
    let event_id = event["id"].as_str().unwrap();
    app.wait_for_deliveries(&alice, event_id, &["delivered"])
        .await;

    let before = app.snapshot().await;
    for path in [
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
        format!("/api/v1/webhooks/{id}/stats"),
        format!("/api/v1/events/{event_id}"),
    ] {
        let (status, body) = app.get(&path, &bob).await;
        assert_eq!(status, 404, "GET {path}: {body}");
    }
    let (status, _) = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &bob,
            json!({"active": false}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(&format!("/api/v1/webhooks/{id}/test"), &bob, json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.delete(&format!("/api/v1/webhooks/{id}"), &bob).await;
    assert_eq!(status, 404);
    let (_, list) = app.get("/api/v1/webhooks", &bob).await;
    assert_eq!(list, json!({"data": []}));
    // Bob publishing the same type reaches none of Alice's endpoints.
    let bobs = app.publish(&bob, "user.created", json!({})).await;
    assert_eq!(bobs["deliveries"], 0);
    let changed = app.changed_since(&before).await;
    // Only Bob's own new event may have appeared (in its bucket's hash,
    // which may hold Alice's too: hers reads as before; and in Bob's own
    // event index).
    assert!(
        changed
            .iter()
            .all(|k| k.contains(":events:") || k.contains(":tevents:")),
        "{changed:?}"
    );
    let (status, listed) = app.get("/api/v1/events", &bob).await;
    assert_eq!(status, 200, "{listed}");
    let listed: Vec<&str> = listed["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        listed,
        vec![bobs["id"].as_str().unwrap_or_default()],
        "Bob lists his own event only"
    );
    let (status, alices) = app.get(&format!("/api/v1/events/{event_id}"), &alice).await;
    assert_eq!(status, 200);
    assert_eq!(alices["data"], json!({"secret": "alice's"}));
    assert_eq!(alices["deliveries"][0]["status"], "delivered");
    assert_eq!(receiver.count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn each_api_key_has_a_request_budget() {
    // 2 per second, bursts of 4.
    let app = TestApp::builder().api_rate_limit(2).spawn().await;
    let (_, busy) = app.tenant("busy").await;
    let (_, calm) = app.tenant("calm").await;
    let mut limited = None;
    for _ in 0..10 {
        let response = app
            .http
            .get(app.url("/api/v1/webhooks"))
            .bearer_auth(&busy)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let response = limited.expect("the budget runs out within 10 quick requests");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // Another key is not affected.
    let (status, _) = app.get("/api/v1/webhooks", &calm).await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// Starts an API binary of `app`'s fleet with its own `HOOKFLEET_API_KEY_CACHE`;
/// returns it and its base URL once it is ready.
async fn api_process(app: &TestApp, cache: &str) -> (hookfleet_tests::LoggedChild, String) {
    app.start_api_process(&[("HOOKFLEET_API_KEY_CACHE", cache)])
        .await
}

/// What `GET /api/v1/webhooks` with `key` answers on the API at `base`
/// (0 when the request itself fails).
async fn webhooks_status(app: &TestApp, base: &str, key: String) -> u16 {
    app.http
        .get(format!("{base}/api/v1/webhooks"))
        .bearer_auth(key)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_key_revoked_through_one_api_process_stops_working_on_another() {
    let app = TestApp::builder().spawn().await;
    let admin = app.admin_key();
    let (tenant_id, key) = app.tenant("acme").await;
    // Another API process of the same fleet whose cache would keep a key
    // for an hour: only the revocation's message can end it there.
    let (mut other, base) = api_process(&app, "1h").await;
    let get = |key: String| webhooks_status(&app, &base, key);
    assert_eq!(
        get(key.clone()).await,
        200,
        "the key resolves (and is cached)"
    );
    assert_eq!(get(key.clone()).await, 200);

    let (_, keys) = app
        .get(&format!("/api/v1/tenants/{tenant_id}/api-keys"), &admin)
        .await;
    let key_id = keys["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, _) = app
        .delete(
            &format!("/api/v1/tenants/{tenant_id}/api-keys/{key_id}"),
            &admin,
        )
        .await;
    assert_eq!(status, 204, "revoked through the test's own API process");
    let stopped = hookfleet_tests::wait_until(std::time::Duration::from_secs(5), || async {
        (get(key.clone()).await == 401).then_some(())
    })
    .await;
    assert!(
        stopped.is_some(),
        "the other process dropped the key it had cached: {}",
        other.log()
    );

    // A tenant's deletion reaches the other process's cache too.
    let (tenant_b, key_b) = app.tenant("globex").await;
    assert_eq!(get(key_b.clone()).await, 200);
    let (status, _) = app
        .delete(&format!("/api/v1/tenants/{tenant_b}"), &admin)
        .await;
    assert_eq!(status, 202);
    let stopped = hookfleet_tests::wait_until(std::time::Duration::from_secs(5), || async {
        (get(key_b.clone()).await == 401).then_some(())
    })
    .await;
    assert!(
        stopped.is_some(),
        "the deleted tenant's key stopped there too"
    );
    let _ = other.child.kill();
    let _ = other.child.wait();
    app.stop().await;
}

#[tokio::test]
async fn without_its_message_a_cached_key_lasts_no_longer_than_the_cache() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let (mut other, base) = api_process(&app, "1s").await;
    let status = |key: String| webhooks_status(&app, &base, key);
    assert_eq!(status(key.clone()).await, 200);
    // The lookup goes without a message (as if it were lost): the key
    // keeps working there only until its cached entry is a second old.
    let hash = hookfleet_api::auth::hash_key(&key);
    let () = redis::cmd("DEL")
        .arg(app.keys().api_key_lookup(&hash))
        .query_async(&mut app.redis().await)
        .await
        .expect("DEL");
    // (A cache that never expired would fail this deadline.)
    let stopped = hookfleet_tests::wait_until(std::time::Duration::from_secs(10), || async {
        (status(key.clone()).await == 401).then_some(())
    })
    .await;
    assert!(stopped.is_some(), "the cached key expired: {}", other.log());
    let _ = (tenant_id, other.child.kill(), other.child.wait());
    app.stop().await;
}
