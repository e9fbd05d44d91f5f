//! Invariant 8 over the whole API, read from the OpenAPI spec so a new
//! route cannot be forgotten: every operation refuses a request without a
//! key (401), every tenant operation on another tenant's resource answers
//! 404, and the admin operations refuse tenant keys.

use serde_json::{json, Value};

use hookfleet_tests::TestApp;

#[tokio::test]
async fn every_route_is_closed_to_strangers_and_other_tenants() {
    let app = TestApp::builder().spawn().await;
    let (alice_id, alice) = app.tenant("alice").await;
    let (_, bob) = app.tenant("bob").await;
    let endpoint = app
        .endpoint(
            &alice,
            json!({"url": "https://example.com/a", "events": ["*"]}),
        )
        .await;
    let event = app.publish(&alice, "user.created", json!({})).await;
    let (_, detail) = app
        .get(
            &format!("/api/v1/events/{}", event["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    let delivery_id = detail["deliveries"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            "/api/v1/event-types",
            &alice,
            json!({"name": "alice.only", "description": ""}),
        )
        .await;
    assert_eq!(status, 201);

    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = spec["paths"].as_object().unwrap();
    let mut checked = 0;
    let before = app.snapshot().await;
    for (template, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let secured = operation.get("security").is_some();
            let path = template
                .replace("{tenant_id}", &alice_id)
                .replace("{key_id}", "key_0000000000000000000000zz")
                .replace("{replay_id}", "rpl_0000000000000000000000zz")
                .replace(
                    "{id}",
                    if template.starts_with("/api/v1/events") {
                        event["id"].as_str().unwrap()
                    } else if template.starts_with("/api/v1/deliveries") {
                        &delivery_id
                    } else {
                        endpoint["id"].as_str().unwrap()
                    },
                )
                .replace("{name}", "alice.only");
            let send = |key: Option<&str>| {
                let mut request = app
                    .http
                    .request(method.to_uppercase().parse().unwrap(), app.url(&path));
                if let Some(key) = key {
                    request = request.bearer_auth(key);
                }
                if template.ends_with("/replay") {
                    request =
                        request.json(&json!({"since": hookfleet_common::time_util::rfc3339_ms(
                            hookfleet_common::time_util::now_ms() - 3_600_000,
                        )}));
                } else if method == "post" || method == "patch" {
                    request = request.json(&json!({}));
                }
                request.send()
            };
            if !secured {
                // Only the probes are open, and the exchange of a portal
                // link's token (the token is its credential; see portal.rs).
                assert!(
                    ["/healthz", "/readyz", "/api/v1/portal-sessions"].contains(&template.as_str()),
                    "{method} {template} has no security"
                );
                continue;
            }
            let response = send(None).await.unwrap();
            assert_eq!(response.status(), 401, "{method} {template} without a key");
            let admin_only = template.starts_with("/api/v1/tenants");
            if admin_only {
                let response = send(Some(&bob)).await.unwrap();
                assert_eq!(
                    response.status(),
                    401,
                    "{method} {template} with a tenant key"
                );
            } else if template.contains('{') {
                let response = send(Some(&bob)).await.unwrap();
                assert_eq!(
                    response.status(),
                    404,
                    "{method} {template} with another tenant's key"
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["code"], "not_found");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations checked");
    assert_eq!(
        app.snapshot().await,
        before,
        "no stranger's request changed anything"
    );
    // Alice still has everything.
    let (status, _) = app
        .get(
            &format!("/api/v1/webhooks/{}", endpoint["id"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert_eq!(status, 200);
    app.stop().await;
}
