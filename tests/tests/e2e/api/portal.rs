//! Portal links and the console that serves them: a link opens the
//! console for one tenant, exchanging its token for a session that acts
//! within the link's limits (read-only, some endpoints, never publish);
//! revoked and expired links are refused; the console's files come from
//! the binary with a strict Content-Security-Policy.

use serde_json::{json, Value};

use hookfleet_tests::TestApp;

/// Makes a portal link with the admin key; returns its JSON answer.
async fn link(app: &TestApp, body: Value) -> Value {
    let (status, link) = app
        .post("/api/v1/portal-links", &app.admin_key(), body)
        .await;
    assert_eq!(status, 201, "{link}");
    link
}

/// The token of a link: the part of its URL after `#`.
fn token_of(link: &Value) -> String {
    let url = link["url"].as_str().unwrap();
    url.split_once('#').unwrap().1.to_string()
}

/// Exchanges a link's token for a session: (status, answer).
async fn open(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/api/v1/portal-sessions"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn session(app: &TestApp, link: &Value) -> String {
    let (status, session) = open(app, &token_of(link)).await;
    assert_eq!(status, 201, "{session}");
    session["session"].as_str().unwrap().to_string()
}

fn delivery_id(event: &Value, endpoint_id: &str) -> String {
    format!(
        "dlv_{}{}",
        &event["id"].as_str().unwrap()[4..],
        &endpoint_id[3..]
    )
}

#[tokio::test]
async fn a_portal_session_acts_for_one_tenant_within_its_link() {
    let app = TestApp::builder().spawn().await;
    let (tenant_a, key_a) = app.tenant("acme").await;
    let (_, key_b) = app.tenant("globex").await;
    let shown = app
        .endpoint(
            &key_a,
            json!({"url": "https://example.com/shown", "events": ["user.*"]}),
        )
        .await;
    let hidden = app
        .endpoint(
            &key_a,
            json!({"url": "https://example.com/hidden", "events": ["video.*"]}),
        )
        .await;
    let other = app
        .endpoint(
            &key_b,
            json!({"url": "https://example.com/b", "events": ["*"]}),
        )
        .await;
    let (shown_id, hidden_id, other_id) = (
        shown["id"].as_str().unwrap(),
        hidden["id"].as_str().unwrap(),
        other["id"].as_str().unwrap(),
    );
    let to_shown = app.publish(&key_a, "user.created", json!({"n": 1})).await;
    let to_hidden = app
        .publish(&key_a, "video.processed", json!({"n": 2}))
        .await;
    let of_b = app.publish(&key_b, "user.created", json!({"n": 3})).await;

    let link = link(
        &app,
        json!({
            "tenant_id": tenant_a,
            "endpoint_ids": [shown_id],
            "branding": {"name": "Acme Video", "accent_color": "#0b7285"},
        }),
    )
    .await;
    assert!(link["id"].as_str().unwrap().starts_with("pl_"));
    assert!(link["url"].as_str().unwrap().starts_with(&app.url(&format!(
        "/console/portal/{}#hfp_",
        link["id"].as_str().unwrap()
    ))));
    let session = session(&app, &link).await;
    assert!(session.starts_with("hfs_"));

    let (status, me) = app.get("/api/v1/me", &session).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "portal");
    assert_eq!(me["tenant_id"], tenant_a.as_str());
    assert_eq!(me["scopes"], json!(["manage", "read"]));
    assert_eq!(me["endpoint_ids"], json!([shown_id]));
    assert_eq!(me["branding"]["name"], "Acme Video");

    // It sees the one endpoint, its deliveries and events, and nothing else.
    let (_, listed) = app.get("/api/v1/webhooks", &session).await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [shown_id]);
    let (status, _) = app
        .get(&format!("/api/v1/webhooks/{shown_id}/deliveries"), &session)
        .await;
    assert_eq!(status, 200);
    let (_, log) = app.get("/api/v1/deliveries", &session).await;
    let listed: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [shown_id]);
    let (status, event) = app
        .get(
            &format!("/api/v1/events/{}", to_shown["id"].as_str().unwrap()),
            &session,
        )
        .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["deliveries"].as_array().unwrap().len(), 1);
    let (status, _) = app
        .get(
            &format!("/api/v1/deliveries/{}", delivery_id(&to_shown, shown_id)),
            &session,
        )
        .await;
    assert_eq!(status, 200);
    let not_found = [
        format!("/api/v1/webhooks/{hidden_id}"),
        format!("/api/v1/webhooks/{hidden_id}/stats"),
        format!("/api/v1/events/{}", to_hidden["id"].as_str().unwrap()),
        format!("/api/v1/deliveries/{}", delivery_id(&to_hidden, hidden_id)),
        // Another tenant's ids are not found either.
        format!("/api/v1/webhooks/{other_id}"),
        format!("/api/v1/events/{}", of_b["id"].as_str().unwrap()),
        format!("/api/v1/deliveries/{}", delivery_id(&of_b, other_id)),
    ];
    for path in &not_found {
        let (status, body) = app.get(path, &session).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // Nor can it act on them.
    let hidden_writes = [
        (
            "POST",
            format!(
                "/api/v1/deliveries/{}/retry",
                delivery_id(&to_hidden, hidden_id)
            ),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{hidden_id}/replay"),
            json!({"since": "2026-12-01T00:00:00Z"}),
        ),
        (
            "GET",
            format!("/api/v1/webhooks/{hidden_id}/replay/rpl_01m8jw2k7c3a9x0d5t8e1q05"),
            Value::Null,
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{hidden_id}/secret/rotate"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/v1/webhooks/{hidden_id}/test"),
            json!({"event_type": "video.processed"}),
        ),
        (
            "DELETE",
            format!("/api/v1/webhooks/{hidden_id}"),
            Value::Null,
        ),
    ];
    let before = app.snapshot().await;
    for (method, path, body) in &hidden_writes {
        let mut request = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&session);
        if !body.is_null() {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    assert!(app.changed_since(&before).await.is_empty());

    // It manages what it shows, and nothing beyond its portal.
    let (status, _) = app
        .patch(
            &format!("/api/v1/webhooks/{shown_id}"),
            &session,
            json!({"description": "from the portal"}),
        )
        .await;
    assert_eq!(status, 200);
    // ...but not what it receives: the tenant's other events may be meant
    // for others.
    let (status, error) = app
        .patch(
            &format!("/api/v1/webhooks/{shown_id}"),
            &session,
            json!({"events": ["*"]}),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    assert!(error["message"].as_str().unwrap().contains("`events`"));
    let (status, _) = app
        .patch(
            &format!("/api/v1/webhooks/{hidden_id}"),
            &session,
            json!({"description": "no"}),
        )
        .await;
    assert_eq!(status, 404);
    let before = app.snapshot().await;
    let refused = [
        (
            "/api/v1/events",
            json!({"event_type": "user.created", "data": {}}),
            "`publish`",
        ),
        (
            "/api/v1/webhooks",
            json!({"url": "https://example.com/new", "events": ["*"]}),
            "limited to some webhooks",
        ),
        (
            "/api/v1/event-types",
            json!({"name": "portal.made", "description": "x"}),
            "event types",
        ),
        (
            "/api/v1/portal-links",
            json!({"tenant_id": tenant_a}),
            "portal links",
        ),
    ];
    for (path, body, why) in refused {
        let (status, error) = app.post(path, &session, body).await;
        assert_eq!(status, 403, "{path}: {error}");
        assert_eq!(error["code"], "forbidden");
        assert!(error["message"].as_str().unwrap().contains(why), "{error}");
    }
    assert!(app.changed_since(&before).await.is_empty());

    // Neither the link's token nor the session is stored as itself.
    let token = token_of(&link);
    let snapshot = app.snapshot().await;
    assert!(snapshot.iter().all(|(k, v)| {
        !k.contains(&token) && !v.contains(&token) && !k.contains(&session) && !v.contains(&session)
    }));
    app.stop().await;
}

#[tokio::test]
async fn a_read_only_portal_reads_and_a_tenant_key_makes_links_for_its_own_tenant() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let (other_tenant, _) = app.tenant("globex").await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": "https://example.com/h", "events": ["*"]}),
        )
        .await;
    let ep = endpoint["id"].as_str().unwrap();
    // A tenant key with `manage` makes links for its own tenant only.
    let (status, error) = app
        .post(
            "/api/v1/portal-links",
            &key,
            json!({"tenant_id": other_tenant}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["field"], "tenant_id");
    // A key may not hand out more than it has: a link's sessions read.
    let (status, manage_only) = app
        .post(
            &format!("/api/v1/tenants/{tenant_id}/api-keys"),
            &app.admin_key(),
            json!({"scopes": ["manage"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, error) = app
        .post(
            "/api/v1/portal-links",
            manage_only["key"].as_str().unwrap(),
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    assert!(error["message"].as_str().unwrap().contains("`read`"));
    let (status, link) = app
        .post("/api/v1/portal-links", &key, json!({"read_only": true}))
        .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["tenant_id"], tenant_id.as_str());
    let session = session(&app, &link).await;
    let (_, me) = app.get("/api/v1/me", &session).await;
    assert_eq!(me["scopes"], json!(["read"]));
    // Every endpoint of the tenant shows (the link names none).
    let (status, _) = app.get(&format!("/api/v1/webhooks/{ep}"), &session).await;
    assert_eq!(status, 200);

    let before = app.snapshot().await;
    for (method, path) in [
        ("PATCH", format!("/api/v1/webhooks/{ep}")),
        ("DELETE", format!("/api/v1/webhooks/{ep}")),
        ("POST", format!("/api/v1/webhooks/{ep}/secret/rotate")),
        ("POST", "/api/v1/webhooks".to_string()),
    ] {
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&session)
            .json(&json!({"description": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert!(error["message"].as_str().unwrap().contains("`manage`"));
    }
    assert!(app.changed_since(&before).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn revoked_and_expired_links_and_their_sessions_are_refused() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let revoked = link(&app, json!({"tenant_id": tenant_id})).await;
    let session = session(&app, &revoked).await;
    // The link opens again until it ends (a reloaded frame opens it anew).
    let again = self::session(&app, &revoked).await;
    assert_ne!(session, again);

    // Another tenant cannot revoke it: not found.
    let (_, other_key) = app.tenant("globex").await;
    // The tenant lists its live links (never their tokens); others do not
    // see them; the admin names the tenant; a portal session may not list.
    let listed_ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, page) = app.get("/api/v1/portal-links", &key).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(listed_ids(&page), [revoked["id"].as_str().unwrap()]);
    assert!(!page.to_string().contains(&token_of(&revoked)));
    let (_, page) = app.get("/api/v1/portal-links", &other_key).await;
    assert!(listed_ids(&page).is_empty(), "{page}");
    let (_, page) = app
        .get(
            &format!("/api/v1/portal-links?tenant_id={tenant_id}"),
            &app.admin_key(),
        )
        .await;
    assert_eq!(listed_ids(&page), [revoked["id"].as_str().unwrap()]);
    let (status, error) = app.get("/api/v1/portal-links", &app.admin_key()).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("tenant_id")));
    let (status, _) = app.get("/api/v1/portal-links", &session).await;
    assert_eq!(status, 403);
    let path = format!("/api/v1/portal-links/{}", revoked["id"].as_str().unwrap());
    let (status, _) = app.delete(&path, &other_key).await;
    assert_eq!(status, 404);
    let (status, _) = app.delete(&path, &key).await;
    assert_eq!(status, 204);
    let (status, _) = app.delete(&path, &key).await;
    assert_eq!(status, 404);
    for s in [&session, &again] {
        let (status, error) = app.get("/api/v1/webhooks", s).await;
        assert_eq!(status, 401);
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("expired or was revoked"));
    }
    let (status, error) = open(&app, &token_of(&revoked)).await;
    assert_eq!(status, 401, "{error}");

    // An expired link: its stored expiry is moved into the past, as time
    // would.
    let expiring = link(&app, json!({"tenant_id": tenant_id, "expires_in": 60})).await;
    let session = self::session(&app, &expiring).await;
    let (status, _) = app.get("/api/v1/webhooks", &session).await;
    assert_eq!(status, 200);
    let keys = app.keys();
    let mut conn = app.redis().await;
    let stored_key = keys.portal_link(expiring["id"].as_str().unwrap());
    let stored: String = redis::cmd("GET")
        .arg(&stored_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut stored: Value = serde_json::from_str(&stored).unwrap();
    stored["expires_ms"] = json!(1_000);
    let () = redis::cmd("SET")
        .arg(&stored_key)
        .arg(stored.to_string())
        .arg("KEEPTTL")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (status, _) = app.get("/api/v1/webhooks", &session).await;
    assert_eq!(status, 401);
    let (status, _) = open(&app, &token_of(&expiring)).await;
    assert_eq!(status, 401);
    // Neither the revoked nor the expired link is listed.
    let (_, page) = app.get("/api/v1/portal-links", &key).await;
    assert_eq!(page["data"], json!([]), "{page}");
    // And a link's keys expire in Redis with it.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(keys.portal_link(revoked["id"].as_str().unwrap()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(ttl, -2, "a revoked link is deleted");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&stored_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");

    // Tokens that never were.
    for token in ["hfp_nope", "nope", "hfs_nope"] {
        let (status, error) = open(&app, token).await;
        assert_eq!(status, 401, "{token}: {error}");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_portal_links_are_refused_naming_the_field_and_write_nothing() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, key) = app.tenant("acme").await;
    let (_, other_key) = app.tenant("globex").await;
    let others = app
        .endpoint(
            &other_key,
            json!({"url": "https://example.com/b", "events": ["*"]}),
        )
        .await;
    let with = |extra: Value| {
        let mut body = json!({"tenant_id": tenant_id});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let many: Vec<String> = (0..11)
        .map(|i| format!("https://a{i}.example.com"))
        .collect();
    let cases = [
        (json!({}), "tenant_id"),
        (json!({"tenant_id": "ten_nope"}), "tenant_id"),
        (json!({"tenant_id": 5}), "tenant_id"),
        (with(json!({"expires_in": 59})), "expires_in"),
        (with(json!({"expires_in": 86_401})), "expires_in"),
        (with(json!({"expires_in": -1})), "expires_in"),
        (with(json!({"read_only": "yes"})), "read_only"),
        (with(json!({"endpoint_ids": []})), "endpoint_ids"),
        (
            with(json!({"endpoint_ids": ["ep_nope"]})),
            "endpoint_ids[0]",
        ),
        (
            with(json!({"endpoint_ids": [others["id"]]})),
            "endpoint_ids[0]",
        ),
        (
            with(json!({"allowed_origins": ["https://app.example.com/path"]})),
            "allowed_origins[0]",
        ),
        (
            with(json!({"allowed_origins": ["https://a.example.com; script-src *"]})),
            "allowed_origins[0]",
        ),
        (
            with(json!({"allowed_origins": ["javascript://x"]})),
            "allowed_origins[0]",
        ),
        (
            with(json!({"allowed_origins": ["https://ok.example.com", "https://[::1]"]})),
            "allowed_origins[1]",
        ),
        (
            with(json!({"allowed_origins": ["https://a.example.com:70000"]})),
            "allowed_origins[0]",
        ),
        (with(json!({"allowed_origins": many})), "allowed_origins"),
        (
            with(json!({"branding": {"logo_url": "http://example.com/logo.png"}})),
            "branding.logo_url",
        ),
        (
            with(json!({"branding": {"logo_url": "https://example.com/\"onerror"}})),
            "branding.logo_url",
        ),
        (
            with(json!({"branding": {"accent_color": "red"}})),
            "branding.accent_color",
        ),
        (
            with(json!({"branding": {"name": "a\u{7}b"}})),
            "branding.name",
        ),
        (with(json!({"branding": {"font": "x"}})), "branding"),
        (with(json!({"branding": [null, null]})), "branding"),
        (with(json!({"nope": 1})), "nope"),
    ];
    let before = app.snapshot().await;
    for (body, field) in cases {
        let (status, error) = app
            .post("/api/v1/portal-links", &app.admin_key(), body.clone())
            .await;
        assert_eq!(status, 422, "{body}: {error}");
        let named = error["field"].as_str().unwrap_or_default();
        assert!(named.starts_with(field), "{body}: {error}");
    }
    for body in [json!({}), json!({"token": 5}), json!({"token": ""})] {
        let response = app
            .http
            .post(app.url("/api/v1/portal-sessions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["field"], "token", "{error}");
    }
    let (status, _) = app.delete("/api/v1/portal-links/pl_nope", &key).await;
    assert_eq!(status, 404);
    assert!(app.changed_since(&before).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let app = TestApp::builder().spawn().await;
    let (tenant_id, _) = app.tenant("acme").await;
    let page = app.http.get(app.url("/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = |response: &reqwest::Response| {
        response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = policy(&page);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    let html = page.text().await.unwrap();

    // Every script and stylesheet the page names is served, from here.
    let sources = regex::Regex::new(r#"(?:src|href)="([^"]+)""#).unwrap();
    let mut named = 0;
    for found in sources.captures_iter(&html) {
        let url = &found[1];
        if url.starts_with("data:") {
            continue;
        }
        assert!(
            url.starts_with("/console/"),
            "{url} is not the console's own"
        );
        let asset = app.http.get(app.url(url)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{url}");
        assert!(!policy(&asset).is_empty(), "{url} has no policy");
        named += 1;
    }
    assert!(named >= 2, "the page names its script and styles: {html}");
    // No inline script, style or handler the policy would block.
    let inline =
        regex::Regex::new(r#"<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+="#).unwrap();
    assert!(!inline.is_match(&html), "inline code in the page");
    for name in hookfleet_api::console::assets().iter().map(|(n, _, _)| *n) {
        let text = app
            .http
            .get(app.url(&format!("/console/assets/{name}")))
            .send()
            .await
            .unwrap();
        if name == "index.html" {
            assert_eq!(text.status(), 404);
            continue;
        }
        assert_eq!(text.status(), 200, "{name}");
        let body = text.text().await.unwrap_or_default();
        assert!(
            !body.contains("eval(") && !body.contains("new Function"),
            "{name} evaluates code"
        );
    }
    let missing = app
        .http
        .get(app.url("/console/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["code"], "not_found");

    // A portal page may be framed by the origins its link names, and only
    // while the link lives.
    let framed = link(
        &app,
        json!({"tenant_id": tenant_id, "allowed_origins": ["https://app.example.com", "http://localhost:3000"]}),
    )
    .await;
    let portal = format!("/console/portal/{}", framed["id"].as_str().unwrap());
    let page = app.http.get(app.url(&portal)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(policy(&page).contains("frame-ancestors https://app.example.com http://localhost:3000"));
    assert!(page.headers().get("x-frame-options").is_none());
    let (status, _) = app
        .delete(
            &format!("/api/v1/portal-links/{}", framed["id"].as_str().unwrap()),
            &app.admin_key(),
        )
        .await;
    assert_eq!(status, 204);
    for path in [portal.as_str(), "/console/portal/pl_nope"] {
        let page = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(policy(&page).contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            page.headers()
                .get("x-frame-options")
                .and_then(|v| v.to_str().ok()),
            Some("DENY")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_operator_sees_every_partitions_queue() {
    let app = TestApp::builder().partitions(4).spawn().await;
    let (_, key) = app.tenant("acme").await;
    app.endpoint(
        &key,
        json!({"url": "https://example.com/h", "events": ["*"]}),
    )
    .await;
    for n in 0..3 {
        app.publish(&key, "user.created", json!({"n": n})).await;
    }
    let (status, queues) = app.get("/api/v1/admin/queues", &app.admin_key()).await;
    assert_eq!(status, 200, "{queues}");
    let queues = queues.as_array().unwrap();
    let partitions: Vec<u64> = queues
        .iter()
        .map(|q| q["partition"].as_u64().unwrap())
        .collect();
    assert_eq!(partitions, [0, 1, 2, 3]);
    let queued: u64 = queues.iter().map(|q| q["queued"].as_u64().unwrap()).sum();
    assert_eq!(queued, 3);
    // No worker runs: the busy partition's work has been due since it was
    // published.
    let busy = queues.iter().find(|q| q["queued"] == 3).unwrap();
    assert!(busy["oldest_due_age_ms"].as_u64().is_some(), "{busy}");
    let (status, _) = app.get("/api/v1/admin/queues", &key).await;
    assert_eq!(status, 401);
    app.stop().await;
}

#[tokio::test]
async fn a_token_opens_only_its_own_links_page_and_exchanges_spend_the_links_budget() {
    let app = TestApp::builder().api_rate_limit(5).spawn().await;
    let (tenant_id, _) = app.tenant("acme").await;
    let first = link(&app, json!({"tenant_id": tenant_id})).await;
    let second = link(&app, json!({"tenant_id": tenant_id})).await;
    // The page of one link cannot open another link's session.
    let exchange = |token: String, link_id: Value| {
        let app = &app;
        async move {
            let response = app
                .http
                .post(app.url("/api/v1/portal-sessions"))
                .json(&json!({"token": token, "link_id": link_id}))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    assert_eq!(exchange(token_of(&first), second["id"].clone()).await, 401);
    assert_eq!(exchange(token_of(&first), first["id"].clone()).await, 201);
    // Exchanges need no key, so they spend the link's budget (5/s, bursts
    // of 10 here): a link cannot fill Redis with sessions.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(exchange(token_of(&second), Value::Null).await);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let made = statuses.iter().filter(|s| **s == 201).count();
    let sessions = app
        .snapshot()
        .await
        .into_iter()
        .filter(|(key, _)| key.contains(":portal_session:"))
        .count();
    assert_eq!(sessions, made + 1, "{statuses:?}");
    app.stop().await;
}
