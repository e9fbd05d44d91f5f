//! Fixtures: the tenants, keys and endpoints most tests start from, and
//! the waits that follow a published event, so a test names what it needs
//! (`app.tenant_with_endpoint(&receiver.url, &["*"])`) instead of repeating
//! the requests that make it.

use std::time::Duration;

use serde_json::{json, Value};

use super::{spawn_receiver, wait_until, Receiver, Reply, TestApp};

/// Two tenants for invariant 9 around one tenant's background work (a
/// deletion, a retention sweep), as [`TestApp::neighbours`] makes them:
/// "big", whose data the work goes through, and "other", whose one
/// endpoint (`*`) is `receiver`'s.
pub struct Neighbours {
    pub big_id: String,
    pub big_key: String,
    pub other_key: String,
    pub receiver: Receiver,
}

impl Neighbours {
    /// Publishes ten events for the other tenant, waits until all have
    /// arrived, and says whether the big tenant's work was still `running`
    /// then.
    pub async fn delivered_while<F, Fut>(&self, app: &TestApp, running: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for i in 0..10 {
            app.publish(&self.other_key, "user.created", json!({"i": i}))
                .await;
        }
        self.receiver.wait_for(10).await;
        running().await
    }
}

/// A tenant with an API key and one endpoint, as
/// [`TestApp::tenant_with_endpoint`] makes them.
pub struct TenantWithEndpoint {
    pub tenant_id: String,
    /// The tenant's API key.
    pub key: String,
    pub endpoint_id: String,
    /// The endpoint's signing secret (`whsec_…`).
    pub secret: String,
    /// The endpoint as created (the API's JSON answer).
    pub endpoint: Value,
}

impl TestApp {
    /// Creates a tenant and an API key for it: (tenant id, key).
    pub async fn tenant(&self, name: &str) -> (String, String) {
        let admin = self.admin_key();
        let (status, tenant) = self
            .post("/api/v1/tenants", &admin, json!({"name": name}))
            .await;
        assert_eq!(status, 201, "{tenant}");
        let id = tenant["id"].as_str().expect("tenant id").to_string();
        let (status, key) = self
            .post(&format!("/api/v1/tenants/{id}/api-keys"), &admin, json!({}))
            .await;
        assert_eq!(status, 201, "{key}");
        (id, key["key"].as_str().expect("key").to_string())
    }

    /// The tenants of [`Neighbours`], with the other's receiver running.
    pub async fn neighbours(&self) -> Neighbours {
        let (big_id, big_key) = self.tenant("big").await;
        let (_, other_key) = self.tenant("other").await;
        let receiver = spawn_receiver(vec![], Reply::status(200)).await;
        self.endpoint(&other_key, json!({"url": receiver.url, "events": ["*"]}))
            .await;
        Neighbours {
            big_id,
            big_key,
            other_key,
            receiver,
        }
    }

    /// Creates an endpoint; returns its JSON (with `secret`).
    pub async fn endpoint(&self, key: &str, body: Value) -> Value {
        let (status, endpoint) = self.post("/api/v1/webhooks", key, body).await;
        assert_eq!(status, 201, "{endpoint}");
        endpoint
    }

    pub async fn publish(&self, key: &str, event_type: &str, data: Value) -> Value {
        let (status, event) = self
            .post(
                "/api/v1/events",
                key,
                json!({"event_type": event_type, "data": data}),
            )
            .await;
        assert_eq!(status, 202, "{event}");
        event
    }

    /// Polls the event until every delivery has reached one of `states`.
    pub async fn wait_for_deliveries(&self, key: &str, event_id: &str, states: &[&str]) -> Value {
        let path = format!("/api/v1/events/{event_id}");
        wait_until(Duration::from_secs(20), || async {
            let (status, event) = self.get(&path, key).await;
            if status != 200 {
                return None;
            }
            let deliveries = event["deliveries"].as_array()?;
            deliveries
                .iter()
                .all(|d| states.contains(&d["status"].as_str().unwrap_or("")))
                .then_some(event)
        })
        .await
        .unwrap_or_else(|| panic!("deliveries of {event_id} did not reach {states:?} in time"))
    }

    /// A tenant ("acme") with a key and one endpoint at `url` subscribed
    /// to `events`: the prologue of most delivery tests.
    pub async fn tenant_with_endpoint(&self, url: &str, events: &[&str]) -> TenantWithEndpoint {
        let (tenant_id, key) = self.tenant("acme").await;
        let endpoint = self
            .endpoint(&key, json!({"url": url, "events": events}))
            .await;
        TenantWithEndpoint {
            tenant_id,
            key,
            endpoint_id: endpoint["id"].as_str().expect("endpoint id").to_string(),
            secret: endpoint["secret"]
                .as_str()
                .expect("endpoint secret")
                .to_string(),
            endpoint,
        }
    }
}

/// The partition an endpoint id names.
pub fn endpoint_partition(endpoint_id: &str) -> hookfleet_common::ids::Partition {
    hookfleet_common::ids::partition_of(hookfleet_common::ids::IdKind::Endpoint, endpoint_id)
        .expect("an endpoint id")
}
