//! The OpenAPI spec is complete and tells the truth.
//!
//! Complete: every operation has a summary, a description, examples of
//! what it takes and answers, and the errors it can answer with, all in the
//! one error schema; every schema, field and parameter is described, and
//! every input is bounded. True: the schema-only annotations do not change
//! what the server answers (its own `{code, message, field}` errors, 422
//! for bad fields), and the rules the spec states are the ones enforced.
//! (schemathesis, run by `scripts/conformance`, checks the rest against the
//! live server with generated input.)

use serde_json::{json, Value};

use hookfleet_tests::TestApp;

const ERROR_SCHEMA: &str = "#/components/schemas/ErrorBody";
const JSON_TYPE: &str = "application/json; charset=utf-8";

async fn spec() -> (TestApp, Value) {
    let app = TestApp::builder().spawn().await;
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .json()
        .await
        .expect("the spec is JSON");
    (app, spec)
}

/// (path, method, operation) of every operation.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

/// The schema a `$ref` points to, or the schema itself.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .expect("local ref");
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// Whether a (resolved) schema, or its items for an array, has an example.
fn has_example(spec: &Value, schema: &Value) -> bool {
    let schema = resolve(spec, schema);
    if !schema["example"].is_null() {
        return true;
    }
    schema["type"] == "array" && has_example(spec, &schema["items"])
}

#[tokio::test]
async fn every_operation_is_documented_with_examples_and_its_errors() {
    let (app, spec) = spec().await;
    let mut problems = Vec::new();
    for (path, method, op) in operations(&spec) {
        let name = format!("{} {path}", method.to_uppercase());
        for key in ["summary", "description", "operationId"] {
            if op[key].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no {key}"));
            }
        }
        let responses = op["responses"].as_object().expect("responses");
        let body = &op["requestBody"];
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let can_fail = secured || !params.is_empty() || !body.is_null();

        // Examples of what it takes and answers.
        if !body.is_null() {
            let schema = &body["content"]["application/json"]["schema"];
            if !has_example(&spec, schema) {
                problems.push(format!("{name}: the request body has no example"));
            }
        }
        for (status, response) in responses {
            let Some(content) = response["content"].as_object() else {
                continue;
            };
            let media = &content[JSON_TYPE];
            if status.starts_with('2') && !has_example(&spec, &media["schema"]) {
                problems.push(format!("{name}: response {status} has no example"));
            }
            let is_probe_answer = op["operationId"] == "readyz";
            if (status.starts_with('4') || status.starts_with('5')) && !is_probe_answer {
                if media["schema"]["$ref"] != ERROR_SCHEMA {
                    problems.push(format!("{name}: error {status} is not an ErrorBody"));
                }
                if media["example"]["code"].as_str().is_none() {
                    problems.push(format!("{name}: error {status} has no example"));
                }
            }
        }

        // The errors it can answer with.
        let mut expected: Vec<&str> = Vec::new();
        if secured {
            expected.extend(["401", "429", "503"]);
        }
        if !body.is_null() {
            expected.extend(["400", "413", "415", "422"]);
        }
        if params.iter().any(|p| p["in"] == "path") {
            expected.push("404");
        }
        if params
            .iter()
            .any(|p| p["in"] == "query" || p["in"] == "header")
        {
            expected.push("400");
        }
        for status in expected {
            if !responses.contains_key(status) {
                problems.push(format!("{name}: error {status} is not documented"));
            }
        }
        let errors = responses
            .iter()
            .filter(|(status, r)| {
                status.starts_with('4') && r["content"][JSON_TYPE]["schema"]["$ref"] == ERROR_SCHEMA
            })
            .count();
        if can_fail && errors == 0 {
            problems.push(format!("{name}: no 4xx response with the error schema"));
        }
        if !can_fail && responses.keys().any(|s| s.starts_with('4')) {
            problems.push(format!("{name}: documents errors it cannot answer with"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn every_schema_field_and_parameter_is_described_and_every_input_bounded() {
    let (app, spec) = spec().await;
    let mut problems = Vec::new();
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for (name, schema) in schemas {
        if schema["description"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("schema {name}: no description"));
        }
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let description = property["description"].as_str().unwrap_or("");
            if description.is_empty() {
                problems.push(format!("{name}.{field}: no description"));
            }
            if description.contains("RFC 3339") && property["format"] != "date-time" {
                problems.push(format!("{name}.{field}: a time without format date-time"));
            }
        }
    }

    // Every input is bounded: strings by length, format or pattern;
    // numbers by a range; lists and maps by a count.
    let mut inputs: Vec<(String, Value)> = Vec::new();
    for (path, method, op) in operations(&spec) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = format!(
                "{} {path} parameter {}",
                method.to_uppercase(),
                param["name"]
            );
            if param["description"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no description"));
            }
            if param["in"] != "path" {
                inputs.push((name, param["schema"].clone()));
            }
        }
        if let Some(reference) =
            op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
        {
            let name = reference.trim_start_matches("#/components/schemas/");
            let schema = &spec["components"]["schemas"][name];
            if schema["additionalProperties"] != false {
                problems.push(format!("{reference}: accepts unknown fields"));
            }
            for (field, property) in schema["properties"].as_object().into_iter().flatten() {
                inputs.push((format!("{reference}.{field}"), property.clone()));
            }
        }
    }
    for (name, schema) in inputs {
        let has = |key: &str| !schema[key].is_null();
        let bounded = match schema["type"].as_str() {
            Some("string") => has("maxLength") || has("format") || has("enum"),
            Some("integer") | Some("number") => has("minimum") && has("maximum"),
            Some("array") => {
                has("maxItems")
                    && (schema["items"]["maxLength"].is_number()
                        || schema["items"]["type"] != "string")
            }
            Some("object") => {
                // Free-form JSON objects (event data) are bounded by the body
                // size limit; maps of strings by a count and a value length.
                schema["additionalProperties"].is_null()
                    || (has("maxProperties")
                        && schema["additionalProperties"]["maxLength"].is_number())
            }
            Some("boolean") => true,
            _ => false,
        };
        if !bounded {
            problems.push(format!("{name}: unbounded input {schema}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn documented_constraints_keep_the_apis_own_errors() {
    let (app, spec) = spec().await;
    let (_, key) = app.tenant("spec").await;
    let create = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move { app.post("/api/v1/webhooks", &key, body).await }
    };

    // Body fields with schema validators are still checked by our own code:
    // 422, our message, the field named.
    let long = "x".repeat(1025);
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("x-h{i}"), json!("v"))).collect();
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/h", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com/h", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["*"], "description": long}),
            "description",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["*"], "headers": many}),
            "headers",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["*"], "rate_limit": 0}),
            "rate_limit",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["*"], "nope": 1}),
            "nope",
        ),
    ] {
        let (status, error) = create(body.clone()).await;
        assert_eq!(status, 422, "{body} -> {error}");
        assert_eq!(error["code"], "invalid_field", "{error}");
        assert_eq!(error["field"], field, "{error}");
    }

    // What the URL pattern forbids, the server refuses; what the URL
    // parser would have repaired silently included.
    for url in [
        "http:/example.com/h",
        "https:example.com/h",
        " https://example.com/h",
        "https://example.com/a b",
        "https://example.com/h\n",
        "https://example.com/h#top",
    ] {
        let (status, error) = create(json!({"url": url, "events": ["*"]})).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some("url")),
            "{url:?} -> {error}"
        );
    }
    let (status, _) = create(json!({"url": "HTTPS://example.com/h", "events": ["*"]})).await;
    assert_eq!(status, 201, "the scheme is case-insensitive");

    // `null` is documented for optional fields, and taken as absent.
    let (status, webhook) = create(json!({
        "url": "https://example.com/h", "events": ["*"], "description": null, "active": null
    }))
    .await;
    assert_eq!(status, 201, "{webhook}");
    assert_eq!(webhook["active"], true);

    // Names are bounded before trimming, as `maxLength` says.
    let admin = app.admin_key();
    let name = format!("{}  ", "n".repeat(199));
    let (status, error) = app
        .post("/api/v1/tenants", &admin, json!({"name": name}))
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("name")),
        "{error}"
    );

    // Parameter validators are enforced by poem-openapi, in our error shape.
    for query in ["limit=0", "limit=251", "status=lost", "cursor="] {
        let (status, error) = app.get(&format!("/api/v1/deliveries?{query}"), &key).await;
        assert_eq!(status, 400, "{query} -> {error}");
        assert_eq!(error["code"], "invalid_parameter", "{error}");
        assert!(
            query.starts_with(error["field"].as_str().unwrap_or("?")),
            "{error}"
        );
    }

    // A header parameter that is not text is refused, not ignored.
    let response = app
        .http
        .post(app.url("/api/v1/events"))
        .bearer_auth(&key)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").expect("header"),
        )
        .json(&json!({"event_type": "user.created", "data": {}}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["field"], "Idempotency-Key", "{error}");

    // A 405 says which methods the path has.
    let response = app
        .http
        .put(app.url("/api/v1/webhooks/events"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 405);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, HEAD")
    );
    // A method the literal route lacks but the id route has: `events` is
    // taken as an id naming nothing, as any other would be (401 first
    // without a key).
    for (with_key, expected) in [(true, 404), (false, 401)] {
        let mut request = app
            .http
            .patch(app.url("/api/v1/webhooks/events"))
            .json(&json!({"description": "x"}));
        if with_key {
            request = request.bearer_auth(&key);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), expected);
        let error: Value = response.json().await.expect("json");
        let code = if with_key {
            "not_found"
        } else {
            "unauthorized"
        };
        assert_eq!(error["code"], code, "{error}");
    }
    let response = app
        .http
        .delete(app.url("/api/v1/webhooks/events"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);

    // The endpoint timeout's documented maximum follows the lease (the
    // tests run with a 10 s lease: 5 s).
    let timeout = &spec["components"]["schemas"]["CreateWebhook"]["properties"]["timeout_s"];
    assert_eq!(timeout["maximum"], 5, "{timeout}");
    let (status, error) =
        create(json!({"url": "https://example.com/h", "events": ["*"], "timeout_s": 6})).await;
    assert_eq!((status, error["field"].as_str()), (422, Some("timeout_s")));

    // Swagger UI shows this very document.
    let page = app
        .http
        .get(app.url("/docs"))
        .send()
        .await
        .expect("GET /docs")
        .text()
        .await
        .expect("page");
    let served = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json")
        .text()
        .await
        .expect("spec");
    assert!(
        page.contains(&served),
        "/docs does not inline /openapi.json"
    );
    app.stop().await;
}

#[tokio::test]
async fn only_the_create_example_shows_a_signing_secret() {
    let (app, spec) = spec().await;
    let created = &spec["paths"]["/api/v1/webhooks"]["post"]["responses"]["201"]["content"]
        [JSON_TYPE]["example"];
    assert!(
        created["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{created}"
    );
    let webhook = &spec["components"]["schemas"]["Webhook"]["example"];
    assert!(webhook.is_object(), "{webhook}");
    assert!(webhook.get("secret").is_none(), "{webhook}");
    app.stop().await;
}

/// Swagger UI reads as a user meets the API: groups in that order, the
/// admin key's description covering every admin route, examples that
/// match their operation.
#[tokio::test]
async fn swagger_ui_groups_and_examples_read_in_the_users_order() {
    let (app, doc) = spec().await;
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        tags,
        [
            "Webhooks",
            "Events",
            "Deliveries",
            "EventTypes",
            "Access",
            "Tenants",
            "Admin",
            "Health"
        ]
    );
    let admin = doc["components"]["securitySchemes"]["AdminKey"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        admin.contains("/api/v1/tenants") && admin.contains("/api/v1/admin"),
        "{admin}"
    );
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let example =
                &op["responses"]["400"]["content"]["application/json; charset=utf-8"]["example"];
            if op.get("requestBody").is_none() && !example.is_null() {
                assert_eq!(
                    example["code"], "invalid_parameter",
                    "{method} {path}: a 400 without a body is about a parameter: {example}"
                );
            }
        }
    }
    let create = doc["components"]["schemas"]["CreateWebhook"]["example"]
        .as_object()
        .expect("CreateWebhook example");
    assert!(!create.contains_key("secret"), "{create:?}");
    assert!(create.values().all(|v| !v.is_null()), "{create:?}");
    app.stop().await;
}

/// The patterns the spec states for endpoint URLs, event type names,
/// subscriptions and delivery-log cursors are the rules the API applies,
/// and every cursor the API hands out matches the pattern its route states.
#[tokio::test]
async fn the_spec_states_the_rules_the_api_applies() {
    use hookfleet_api::{delivery_log::CURSOR_PATTERN, input::URL_PATTERN};
    use hookfleet_common::catalog::{NAME_PATTERN, SUBSCRIPTION_PATTERN};
    let (app, spec) = spec().await;
    let schemas = &spec["components"]["schemas"];
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        let properties = &schemas[schema]["properties"];
        assert_eq!(properties["url"]["pattern"], URL_PATTERN, "{schema}.url");
        assert_eq!(
            properties["events"]["items"]["pattern"], SUBSCRIPTION_PATTERN,
            "{schema}.events"
        );
    }
    for (schema, field) in [
        ("CreateEventType", "name"),
        ("PublishEvent", "event_type"),
        ("BatchEvent", "event_type"),
        ("TestWebhook", "event_type"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"], NAME_PATTERN,
            "{schema}.{field}"
        );
    }
    let routes = ["/api/v1/deliveries", "/api/v1/webhooks/{id}/deliveries"];
    for route in routes {
        let parameters = spec["paths"][route]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let cursor = parameters
            .iter()
            .find(|p| p["name"] == "cursor")
            .expect("a cursor parameter");
        assert_eq!(cursor["schema"]["pattern"], CURSOR_PATTERN, "{route}");
        let event_type = parameters
            .iter()
            .find(|p| p["name"] == "event_type")
            .expect("an event_type parameter");
        assert_eq!(event_type["schema"]["pattern"], NAME_PATTERN, "{route}");
    }

    let form = regex::Regex::new(CURSOR_PATTERN).expect("the cursor pattern compiles");
    let (_, key) = app.tenant("cursors").await;
    let endpoint = app
        .endpoint(
            &key,
            json!({"url": "https://example.com/h", "events": ["*"]}),
        )
        .await;
    for n in 0..3 {
        app.publish(&key, "user.created", json!({"n": n})).await;
    }
    let id = endpoint["id"].as_str().expect("id");
    for path in [
        "/api/v1/deliveries".to_string(),
        format!("/api/v1/webhooks/{id}/deliveries"),
    ] {
        let mut url = format!("{path}?limit=1");
        let mut pages = 0;
        loop {
            let (status, page) = app.get(&url, &key).await;
            assert_eq!(status, 200, "{url}: {page}");
            pages += 1;
            let Some(next) = page["next"].as_str() else {
                break;
            };
            assert!(form.is_match(next), "{path}: cursor {next}");
            url = format!("{path}?limit=1&cursor={next}");
        }
        assert!(pages >= 3, "{path}: {pages} pages");
    }
    app.stop().await;
}

/// The bounds the spec states for an endpoint's fields are the constants
/// `input.rs` checks them against (body validators only document, so
/// without this the two could drift apart).
#[tokio::test]
async fn the_endpoint_bounds_the_spec_states_are_the_ones_input_rs_applies() {
    use hookfleet_api::input::{
        MAX_DESCRIPTION_LEN, MAX_EVENTS, MAX_HEADERS, MAX_HEADER_VALUE_LEN, MAX_RATE_LIMIT,
        MAX_URL_LEN,
    };
    use hookfleet_common::config::MAX_IN_FLIGHT;
    let (app, spec) = spec().await;
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        let p = &spec["components"]["schemas"][schema]["properties"];
        let checks = [
            ("url.maxLength", &p["url"]["maxLength"], MAX_URL_LEN as u64),
            (
                "events.maxItems",
                &p["events"]["maxItems"],
                MAX_EVENTS as u64,
            ),
            (
                "description.maxLength",
                &p["description"]["maxLength"],
                MAX_DESCRIPTION_LEN as u64,
            ),
            (
                "headers.maxProperties",
                &p["headers"]["maxProperties"],
                MAX_HEADERS as u64,
            ),
            (
                "headers values' maxLength",
                &p["headers"]["additionalProperties"]["maxLength"],
                MAX_HEADER_VALUE_LEN as u64,
            ),
            (
                "rate_limit.maximum",
                &p["rate_limit"]["maximum"],
                u64::from(MAX_RATE_LIMIT),
            ),
            (
                "max_in_flight.maximum",
                &p["max_in_flight"]["maximum"],
                u64::from(MAX_IN_FLIGHT),
            ),
        ];
        for (what, stated, applied) in checks {
            assert_eq!(stated.as_f64(), Some(applied as f64), "{schema}.{what}");
        }
    }
    app.stop().await;
}
