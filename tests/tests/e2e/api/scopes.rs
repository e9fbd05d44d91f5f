//! Scoped API keys: `publish`, `manage`, `read`. A key used outside its
//! scopes gets 403 `forbidden` naming the scope it lacks, and nothing is
//! written; keys made before scopes keep all three.

use serde_json::{json, Value};

use hookfleet_api::auth::hash_key;
use hookfleet_tests::TestApp;

/// A key of `tenant_id` with `scopes`: (key, the API's answer).
async fn scoped_key(app: &TestApp, tenant_id: &str, scopes: Value) -> (String, Value) {
    let (status, created) = app
        .post(
            &format!("/api/v1/tenants/{tenant_id}/api-keys"),
            &app.admin_key(),
            json!({"name": "scoped", "scopes": scopes}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (created["key"].as_str().unwrap().to_string(), created)
}

#[tokio::test]
async fn a_key_outside_its_scopes_gets_403_naming_the_scope_and_writes_nothing() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, full) = app.tenant("acme").await;
    let endpoint = app
        .endpoint(
            &full,
            json!({"url": "https://example.com/hook", "events": ["*"]}),
        )
        .await;
    let ep = endpoint["id"].as_str().unwrap().to_string();
    let event = app.publish(&full, "user.created", json!({"n": 1})).await;
    let delivery = format!("dlv_{}{}", &event["id"].as_str().unwrap()[4..], &ep[3..]);

    let (read, created) = scoped_key(&app, &tenant_id, json!(["read"])).await;
    assert_eq!(created["scopes"], json!(["read"]));
    let (publish, _) = scoped_key(&app, &tenant_id, json!(["publish"])).await;
    let (manage, _) = scoped_key(&app, &tenant_id, json!(["manage"])).await;

    // (method, path, body, the scope it needs)
    let publish_body = json!({"event_type": "user.created", "data": {}});
    let writes: Vec<(&str, String, Value, &str)> = vec![
        (
            "POST",
            "/api/v1/events".into(),
            publish_body.clone(),
            "publish",
        ),
        (
            "POST",
            "/api/v1/events/batch".into(),
            json!({"events": [publish_body]}),
            "publish",
        ),
        (
            "POST",
            "/api/v1/webhooks".into(),
            json!({"url": "https://example.com/h2", "events": ["*"]}),
            "manage",
        ),
        (
            "PATCH",
            format!("/api/v1/webhooks/{ep}"),
            json!({"description": "changed"}),
            "manage",
        ),
        (
            "DELETE",
            format!("/api/v1/webhooks/{ep}"),
            json!({}),
            "manage",
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{ep}/secret/rotate"),
            json!({}),
            "manage",
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{ep}/test"),
            json!({"event_type": "user.created"}),
            "manage",
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{ep}/replay"),
            json!({"since": "2026-01-01T00:00:00Z"}),
            "manage",
        ),
        (
            "POST",
            format!("/api/v1/deliveries/{delivery}/retry"),
            json!({}),
            "manage",
        ),
        (
            "POST",
            "/api/v1/event-types".into(),
            json!({"name": "invoice.paid", "description": "x"}),
            "manage",
        ),
        (
            "DELETE",
            "/api/v1/event-types/invoice.paid".into(),
            json!({}),
            "manage",
        ),
        ("POST", "/api/v1/portal-links".into(), json!({}), "manage"),
    ];
    let reads = [
        "/api/v1/webhooks".to_string(),
        format!("/api/v1/webhooks/{ep}"),
        format!("/api/v1/webhooks/{ep}/deliveries"),
        format!("/api/v1/webhooks/{ep}/stats"),
        format!("/api/v1/events/{}", event["id"].as_str().unwrap()),
        "/api/v1/deliveries".into(),
        format!("/api/v1/deliveries/{delivery}"),
        "/api/v1/event-types".into(),
        "/api/v1/webhooks/events".into(),
    ];

    let before = app.snapshot().await;
    for (key, has) in [(&read, "read"), (&publish, "publish"), (&manage, "manage")] {
        for (method, path, body, needs) in &writes {
            if *needs == has {
                continue;
            }
            let response = app
                .http
                .request(method.parse().unwrap(), app.url(path))
                .bearer_auth(key)
                .json(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{has} key: {method} {path}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["code"], "forbidden", "{error}");
            let message = error["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("`{needs}`")), "{message}");
        }
        for path in &reads {
            let (status, body) = app.get(path, key).await;
            if has == "read" {
                assert_eq!(status, 200, "{path}: {body}");
            } else {
                assert_eq!(status, 403, "{has} key: GET {path}");
                assert!(body["message"].as_str().unwrap().contains("`read`"));
            }
        }
    }
    assert!(
        app.changed_since(&before).await.is_empty(),
        "a refused request wrote: {:?}",
        app.changed_since(&before).await
    );

    // Within their scopes they work.
    let (status, _) = app
        .post(
            "/api/v1/events",
            &publish,
            json!({"event_type": "user.created", "data": {}}),
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = app
        .patch(
            &format!("/api/v1/webhooks/{ep}"),
            &manage,
            json!({"description": "managed"}),
        )
        .await;
    assert_eq!(status, 200);
    // Any key may ask what it is, whatever its scopes.
    let (status, me) = app.get("/api/v1/me", &publish).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "tenant");
    assert_eq!(me["tenant_id"], tenant_id.as_str());
    assert_eq!(me["scopes"], json!(["publish"]));
    let (_, me) = app.get("/api/v1/me", &app.admin_key()).await;
    assert_eq!(me["kind"], "admin");
    assert_eq!(me["scopes"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn keys_made_before_scopes_keep_all_three() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, _) = app.tenant("acme").await;
    // A key as stored before scopes: a lookup of two parts, metadata
    // without `scopes`.
    let key = "hf_madebeforescopes0123456789abcdefghijklmnopq";
    let hash = hash_key(key);
    let keys = app.keys();
    let mut conn = app.redis().await;
    let key_id = "key_01m8jtd2jm4qz1b3c6x8ax00";
    let meta = json!({"id": key_id, "name": "old", "prefix": "hf_madebef", "created_at": "2026-01-31T12:00:00.000Z", "hash": hash});
    let () = redis::cmd("HSET")
        .arg(keys.tenant_api_keys(&tenant_id))
        .arg(key_id)
        .arg(meta.to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg(keys.api_key_lookup(&hash))
        .arg(format!("{tenant_id} {key_id}"))
        .query_async(&mut conn)
        .await
        .unwrap();

    let (_, listed) = app
        .get(
            &format!("/api/v1/tenants/{tenant_id}/api-keys"),
            &app.admin_key(),
        )
        .await;
    assert_eq!(
        listed["data"][0]["scopes"],
        json!(["publish", "manage", "read"])
    );
    let (_, me) = app.get("/api/v1/me", key).await;
    assert_eq!(me["scopes"], json!(["publish", "manage", "read"]));
    app.endpoint(
        key,
        json!({"url": "https://example.com/h", "events": ["*"]}),
    )
    .await;
    app.publish(key, "user.created", json!({})).await;
    let (status, _) = app.get("/api/v1/webhooks", key).await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn bad_scopes_are_refused_naming_the_field_and_make_no_key() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, _) = app.tenant("acme").await;
    let path = format!("/api/v1/tenants/{tenant_id}/api-keys");
    let before = app.snapshot().await;
    for scopes in [
        json!([]),
        json!(["admin"]),
        json!("read"),
        json!([1]),
        json!(["read", "read", "read", "read"]),
    ] {
        let (status, error) = app
            .post(&path, &app.admin_key(), json!({"scopes": scopes}))
            .await;
        assert_eq!(status, 422, "{scopes}: {error}");
        let field = error["field"].as_str().unwrap_or_default();
        assert!(field.starts_with("scopes"), "{scopes}: {error}");
    }
    assert!(app.changed_since(&before).await.is_empty());
    app.stop().await;
}
