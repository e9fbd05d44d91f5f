//! The examples shown in the OpenAPI spec and Swagger UI, one per request
//! and response type.
//!
//! They live together, not beside each type (except `PublishEvent`'s, in
//! `routes/events.rs`), so that they tell one story:
//! the same tenant, endpoint, event and delivery ids run through every
//! example, as they would through a real session. Because each is a value
//! of its type, an example cannot drift from the shape the API sends or
//! accepts; request examples are also valid input (schemathesis sends them,
//! and the conformance test expects them to be accepted).

use std::collections::BTreeMap;

use poem_openapi::types::{Example, MaybeUndefined};
use serde_json::json;

use crate::auth::Scope;
use crate::event_data::RawData;
use crate::routes::admin::{QueuePartition, Worker};
use crate::routes::deliveries::{
    Attempt, DeliveryDetail, DeliveryPage, DeliverySummary, RetryQueued,
};
use crate::routes::event_types::{CreateEventType, EventType};
use crate::routes::events::{EventDetail, EventPage, EventSummary, Published};
use crate::routes::health::Health;
use crate::routes::me::{CredentialKind, Me};
use crate::routes::portal::{
    CreatePortalLink, CreatePortalSession, CreatedPortalLink, PortalBranding, PortalLinkInfo,
    PortalLinkPage, PortalSession,
};
use crate::routes::tenants::{
    ApiKeyInfo, CreateApiKey, CreateTenant, CreatedApiKey, StorageUsage, Tenant, TenantDeletion,
    UpdateTenant,
};
use crate::routes::webhooks::replay::{Replay, StartReplay};
use crate::routes::webhooks::schema::{CreateWebhook, HeadOfLine, UpdateWebhook, Webhook};
use crate::routes::webhooks::secret::{RotateSecret, RotatedSecret};
use crate::routes::webhooks::stats::{LastAttempt, Latency, StatsBucket, WebhookStats};
use crate::routes::webhooks::test_send::{TestResult, TestWebhook};

const TENANT_ID: &str = "ten_01m8jtd28xm1bp8vz820ax00";
const KEY_ID: &str = "key_01m8jtd2jm4qz1b3c6x8ax00";
const ENDPOINT_ID: &str = "ep_01m8jtd2w4fn1rcrvcvhhk05";
const EVENT_ID: &str = "evt_01m8jthetzw12qegmcz5hc02";
/// The delivery of [`EVENT_ID`] to [`ENDPOINT_ID`]: their two bodies.
const DELIVERY_ID: &str = "dlv_01m8jthetzw12qegmcz5hc0201m8jtd2w4fn1rcrvcvhhk05";
const REPLAY_ID: &str = "rpl_01m8jw2k7c3a9x0d5t8e1q05";
const URL: &str = "https://example.com/hooks/billing";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CREATED: &str = "2026-01-31T12:00:00.000Z";
const ATTEMPTED: &str = "2026-01-31T12:00:00.184Z";

fn event_data() -> serde_json::Value {
    json!({"user_id": "u_123", "email": "ada@example.com"})
}

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Example for CreateTenant {
    fn example() -> Self {
        Self {
            name: "acme".into(),
        }
    }
}

impl Example for Tenant {
    fn example() -> Self {
        Self {
            id: TENANT_ID.into(),
            name: "acme".into(),
            created_at: CREATED.into(),
            retention: "30d".into(),
            own_retention: false,
            max_retained_events: Some(1_000_000),
            usage: Some(StorageUsage {
                retained_events: 48_210,
                counted_events: Some(48_377),
            }),
        }
    }
}

impl Example for TenantDeletion {
    fn example() -> Self {
        Self {
            tenant_id: TENANT_ID.into(),
            name: Some("acme".into()),
            requested_at: CREATED.into(),
            phase: "endpoints".into(),
            endpoints_removed: 3,
            deliveries_removed: 41_500,
            events_removed: 0,
        }
    }
}

impl Example for UpdateTenant {
    fn example() -> Self {
        Self {
            name: Some("acme-eu".into()),
            retention: MaybeUndefined::Value("90d".into()),
            max_retained_events: MaybeUndefined::Value(1_000_000),
        }
    }
}

impl Example for CreateApiKey {
    fn example() -> Self {
        Self {
            name: Some("billing-service".into()),
            scopes: Some(vec![Scope::Publish, Scope::Read]),
        }
    }
}

impl Example for CreatedApiKey {
    fn example() -> Self {
        Self {
            id: KEY_ID.into(),
            key: "hf_Xq3n8Vb1sK0aP7dR2tY6uW9zC4eF5gH8jL1mN3oQ5rS".into(),
            name: "billing-service".into(),
            prefix: "hf_Xq3n8Vb".into(),
            scopes: vec![Scope::Publish, Scope::Read],
            created_at: CREATED.into(),
        }
    }
}

impl Example for ApiKeyInfo {
    fn example() -> Self {
        Self {
            id: KEY_ID.into(),
            name: "billing-service".into(),
            prefix: "hf_Xq3n8Vb".into(),
            scopes: vec![Scope::Publish, Scope::Read],
            created_at: CREATED.into(),
            hash: String::new(),
        }
    }
}

impl Example for CreateWebhook {
    fn example() -> Self {
        Self {
            url: URL.into(),
            events: vec!["user.created".into(), "video.*".into()],
            description: Some("Billing service".into()),
            headers: Some(headers(&[("X-Team", "billing")])),
            rate_limit: Some(50),
            timeout_s: Some(10),
            max_in_flight: Some(16),
            active: Some(true),
            paused: None,
            ordering: Some("fifo".into()),
            filter: Some("data.amount >= 1000 && data.currency == \"EUR\"".into()),
            retry_schedule: Some(vec!["0s".into(), "30s".into(), "5m".into(), "1h".into()]),
            secret: None,
        }
    }
}

impl Example for UpdateWebhook {
    fn example() -> Self {
        Self {
            url: None,
            events: Some(vec!["user.created".into()]),
            description: None,
            headers: None,
            rate_limit: MaybeUndefined::Null,
            timeout_s: MaybeUndefined::Undefined,
            max_in_flight: MaybeUndefined::Undefined,
            active: None,
            paused: Some(true),
            ordering: None,
            filter: MaybeUndefined::Undefined,
            retry_schedule: MaybeUndefined::Null,
        }
    }
}

impl Example for Webhook {
    fn example() -> Self {
        Self {
            id: ENDPOINT_ID.into(),
            url: URL.into(),
            events: vec!["user.created".into(), "video.*".into()],
            description: "Billing service".into(),
            headers: headers(&[("x-team", "billing")]),
            rate_limit: Some(50),
            timeout_s: Some(10),
            max_in_flight: Some(16),
            status: "enabled".into(),
            active: true,
            paused: false,
            ordering: "fifo".into(),
            filter: Some("data.amount >= 1000 && data.currency == \"EUR\"".into()),
            retry_schedule: Some(vec!["0s".into(), "30s".into(), "5m".into(), "1h".into()]),
            head_of_line: Some(HeadOfLine::example()),
            // Only `create_webhook` returns it; `spec::complete` shows it
            // in that operation's example.
            secret: None,
            created_at: CREATED.into(),
            updated_at: CREATED.into(),
        }
    }
}

impl Example for HeadOfLine {
    fn example() -> Self {
        Self {
            delivery_id: DELIVERY_ID.into(),
            event_id: EVENT_ID.into(),
            status: "scheduled".into(),
            attempts: 2,
            queued_at: CREATED.into(),
            age_ms: 35_200,
            next_attempt_at: Some(CREATED.into()),
        }
    }
}

impl Example for TestWebhook {
    fn example() -> Self {
        Self {
            event_type: Some("webhook.test".into()),
            data: Some(RawData::example(json!({"test": true}))),
        }
    }
}

impl Example for Attempt {
    fn example() -> Self {
        Self {
            id: "1769860800184-0".into(),
            attempt: 1,
            at: ATTEMPTED.into(),
            outcome: "delivered".into(),
            status_code: Some(204),
            duration_ms: 184,
            error: None,
            request_headers: headers(&[
                ("content-type", "application/json"),
                ("webhook-id", EVENT_ID),
                (
                    "webhook-signature",
                    "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                ),
                ("webhook-timestamp", "1769860800"),
                ("x-team", "billing"),
            ]),
            response_headers: headers(&[("date", "Sat, 31 Jan 2026 12:00:00 GMT")]),
            response_body: String::new(),
            next_attempt_at: None,
            test: false,
        }
    }
}

impl Example for TestResult {
    fn example() -> Self {
        Self {
            event_id: EVENT_ID.into(),
            delivery_id: DELIVERY_ID.into(),
            status: "delivered".into(),
            attempt: Some(Attempt {
                test: true,
                ..Attempt::example()
            }),
            filter_matched: Some(false),
        }
    }
}

impl Example for Latency {
    fn example() -> Self {
        Self {
            p50: 181,
            p95: 512,
            p99: 1024,
        }
    }
}

impl Example for LastAttempt {
    fn example() -> Self {
        Self {
            at: ATTEMPTED.into(),
            status_code: Some(204),
        }
    }
}

impl Example for WebhookStats {
    fn example() -> Self {
        Self {
            window: "24h".into(),
            attempts: 120,
            attempts_succeeded: 117,
            attempts_failed: 3,
            success_rate: Some(0.975),
            latency_ms: Some(Latency::example()),
            delivered: 117,
            failed: 1,
            backlog: 2,
            held: 0,
            last_success: Some(LastAttempt::example()),
            last_failure: Some(LastAttempt {
                at: "2026-01-31T11:42:10.007Z".into(),
                status_code: Some(503),
            }),
            series: Some(vec![StatsBucket::example()]),
        }
    }
}

impl Example for StatsBucket {
    fn example() -> Self {
        Self {
            start: "2026-01-31T11:55:00.000Z".into(),
            attempts: 5,
            succeeded: 4,
            failed: 1,
            p50: Some(181),
            p95: Some(362),
            p99: Some(362),
        }
    }
}

impl Example for RotateSecret {
    fn example() -> Self {
        Self {
            grace_period_s: Some(3600),
        }
    }
}

impl Example for RotatedSecret {
    fn example() -> Self {
        Self {
            secret: "whsec_2Qd0m9Xv7c1bT4yK8nR3pL6sF0hJ5wE9".into(),
            previous_secret_expires_at: "2026-01-31T13:00:00.000Z".into(),
        }
    }
}

impl Example for StartReplay {
    fn example() -> Self {
        Self {
            since: "2026-01-30T12:00:00Z".into(),
            until: Some("2026-01-31T12:00:00Z".into()),
            filter: Some("failed".into()),
        }
    }
}

impl Example for Replay {
    fn example() -> Self {
        Self {
            id: REPLAY_ID.into(),
            webhook_id: ENDPOINT_ID.into(),
            status: "running".into(),
            since: "2026-01-30T12:00:00.000Z".into(),
            until: "2026-01-31T12:00:00.000Z".into(),
            filter: "failed".into(),
            scanned: 200,
            queued: 14,
            started_at: "2026-01-31T12:05:00.000Z".into(),
            finished_at: None,
        }
    }
}

impl Example for EventSummary {
    fn example() -> Self {
        Self {
            id: EVENT_ID.into(),
            event_type: "user.created".into(),
            created_at: CREATED.into(),
        }
    }
}

impl Example for EventPage {
    fn example() -> Self {
        Self {
            data: vec![EventSummary::example()],
            next: Some(EVENT_ID.into()),
        }
    }
}

impl Example for DeliverySummary {
    fn example() -> Self {
        Self {
            id: DELIVERY_ID.into(),
            event_id: EVENT_ID.into(),
            webhook_id: ENDPOINT_ID.into(),
            event_type: "user.created".into(),
            status: "delivered".into(),
            attempts: 1,
            created_at: CREATED.into(),
            last_attempt_at: Some(ATTEMPTED.into()),
            last_status_code: Some(204),
            last_error: None,
            next_attempt_at: None,
            test: false,
        }
    }
}

impl Example for DeliveryDetail {
    fn example() -> Self {
        let body = json!({
            "id": EVENT_ID,
            "type": "user.created",
            "timestamp": CREATED,
            "data": event_data(),
        });
        Self {
            delivery: DeliverySummary::example(),
            request_body: Some(body.to_string()),
            attempts: vec![Attempt::example()],
        }
    }
}

impl Example for DeliveryPage {
    fn example() -> Self {
        Self {
            data: vec![DeliverySummary::example()],
            next: Some("MTc2OTg2MDgwMDAwMDpkbHZfNXQwdnExZzhoMmtkM2M5YTdtZnowZTR4MDU".into()),
        }
    }
}

impl Example for RetryQueued {
    fn example() -> Self {
        Self {
            delivery_id: DELIVERY_ID.into(),
            previous_status: "failed".into(),
            result: "queued".into(),
        }
    }
}

impl Example for EventType {
    fn example() -> Self {
        Self {
            name: "invoice.paid".into(),
            description: "An invoice was paid in full.".into(),
            example: Some(json!({"invoice_id": "inv_123", "amount_cents": 4200})),
            built_in: false,
            operational: false,
            created_at: Some(CREATED.into()),
        }
    }
}

impl Example for CreateEventType {
    fn example() -> Self {
        Self {
            name: "invoice.paid".into(),
            description: "An invoice was paid in full.".into(),
            example: Some(json!({"invoice_id": "inv_123", "amount_cents": 4200})),
        }
    }
}

impl Example for Published {
    fn example() -> Self {
        Self {
            id: EVENT_ID.into(),
            deliveries: 1,
            duplicate: false,
        }
    }
}

impl Example for EventDetail {
    fn example() -> Self {
        Self {
            id: EVENT_ID.into(),
            event_type: "user.created".into(),
            data: RawData::example(event_data()),
            created_at: CREATED.into(),
            deliveries: vec![DeliverySummary::example()],
        }
    }
}

impl Example for Worker {
    fn example() -> Self {
        Self {
            id: "worker-1-7-3f9a2c1d".into(),
            host: "worker-1".into(),
            pid: 7,
            started: "2026-01-31T08:00:00.000Z".into(),
            last_heartbeat: "2026-01-31T12:00:00.000Z".into(),
            in_flight: 3,
            deliveries_per_second: 41.5,
            version: env!("CARGO_PKG_VERSION").into(),
            started_ms: 0,
            heartbeat_ms: 0,
        }
    }
}

impl Example for Health {
    fn example() -> Self {
        Self {
            status: "ok".into(),
        }
    }
}

/// The answer of `create_webhook`: the one time the secret is shown.
pub fn created_webhook() -> serde_json::Value {
    let mut webhook = poem_openapi::types::ToJSON::to_json(&Webhook::example()).unwrap_or_default();
    if let Some(map) = webhook.as_object_mut() {
        map.insert("secret".into(), json!(SECRET));
    }
    webhook
}

impl Example for crate::routes::webhooks::schema::WebhookPage {
    fn example() -> Self {
        Self {
            data: vec![Webhook::example()],
            next: Some(crate::paging::encode(ENDPOINT_ID)),
        }
    }
}

impl Example for crate::routes::tenants::TenantPage {
    fn example() -> Self {
        Self {
            data: vec![Tenant::example()],
            next: Some(crate::paging::encode(TENANT_ID)),
        }
    }
}

impl Example for crate::routes::tenants::ApiKeyPage {
    fn example() -> Self {
        Self {
            data: vec![ApiKeyInfo::example()],
            next: None,
        }
    }
}

impl Example for crate::routes::event_types::EventTypePage {
    fn example() -> Self {
        let first = EventType::example();
        let next = Some(crate::paging::encode(&first.name));
        Self {
            data: vec![first],
            next,
        }
    }
}

const PORTAL_LINK_ID: &str = "pl_01m8jtd3b7qz0k2w9d5e8x00";

fn portal_branding() -> PortalBranding {
    PortalBranding {
        name: Some("Acme Video".into()),
        logo_url: Some("https://acme.example.com/logo.svg".into()),
        accent_color: Some("#0b7285".into()),
    }
}

impl Example for Me {
    fn example() -> Self {
        Self {
            kind: CredentialKind::Portal.name().into(),
            tenant_id: Some(TENANT_ID.into()),
            tenant_name: Some("Acme Video".into()),
            scopes: vec![Scope::Manage, Scope::Read],
            endpoint_ids: Some(vec![ENDPOINT_ID.into()]),
            expires_at: Some(CREATED.into()),
            branding: Some(portal_branding()),
            retention: Some("30d".into()),
            max_retained_events: Some(1_000_000),
            retained_events: Some(48_210),
        }
    }
}

impl Example for CreatePortalLink {
    fn example() -> Self {
        Self {
            tenant_id: Some(TENANT_ID.into()),
            expires_in: Some(3600),
            read_only: Some(false),
            endpoint_ids: Some(vec![ENDPOINT_ID.into()]),
            allowed_origins: Some(vec!["https://app.acme.example.com".into()]),
            branding: Some(portal_branding()),
        }
    }
}

impl Example for CreatedPortalLink {
    fn example() -> Self {
        let path = format!(
            "/console/portal/{PORTAL_LINK_ID}#hfp_Zr4m1Qx8Vb2sK0aP7dR2tY6uW9zC4eF5gH8jL1mN3o"
        );
        Self {
            id: PORTAL_LINK_ID.into(),
            tenant_id: TENANT_ID.into(),
            url: format!("https://hooks.acme.example.com{path}"),
            path,
            expires_at: CREATED.into(),
            read_only: false,
            endpoint_ids: Some(vec![ENDPOINT_ID.into()]),
            allowed_origins: vec!["https://app.acme.example.com".into()],
            branding: Some(portal_branding()),
        }
    }
}

impl Example for CreatePortalSession {
    fn example() -> Self {
        Self {
            token: "hfp_Zr4m1Qx8Vb2sK0aP7dR2tY6uW9zC4eF5gH8jL1mN3o".into(),
            link_id: Some(PORTAL_LINK_ID.into()),
        }
    }
}

impl Example for PortalSession {
    fn example() -> Self {
        Self {
            session: "hfs_Kd9w2Lx7Qa1sV0bP6cR3tY8uW5zN4eF2gH7jM1oQ3rS".into(),
            expires_at: CREATED.into(),
        }
    }
}

impl Example for QueuePartition {
    fn example() -> Self {
        Self {
            partition: 3,
            queued: 1250,
            in_flight: 32,
            oldest_due_age_ms: Some(140),
            fifo_held: 1,
            fifo_head_age_ms: Some(35_200),
        }
    }
}

impl Example for PortalLinkInfo {
    fn example() -> Self {
        Self {
            id: PORTAL_LINK_ID.into(),
            tenant_id: TENANT_ID.into(),
            created_at: CREATED.into(),
            expires_at: "2026-01-31T13:00:00.000Z".into(),
            read_only: false,
            endpoint_ids: Some(vec![ENDPOINT_ID.into()]),
            allowed_origins: vec!["https://app.acme.example.com".into()],
            branding: Some(portal_branding()),
        }
    }
}

impl Example for PortalLinkPage {
    fn example() -> Self {
        Self {
            data: vec![PortalLinkInfo::example()],
            next: None,
        }
    }
}
