//! The driver's side of the Hookfleet API: creating a tenant, its key and
//! endpoints for one phase, and publishing events (one per request, or in
//! batches through `POST /api/v1/events/batch`).

use std::time::Duration;

use hookfleet_bench::{event_data, unix_nanos};
use serde_json::{json, Value};

/// The event type every benchmark event has (built in, so no setup).
pub const EVENT_TYPE: &str = "user.created";

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// A tenant made for one phase, with its API key and endpoint ids.
pub struct Tenant {
    pub key: String,
    pub endpoints: Vec<String>,
}

impl Api {
    /// A client keeping up to `clients` HTTP/1.1 keep-alive connections.
    pub fn new(base: &str, clients: usize) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(clients.max(1))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The same API over HTTP/2 without TLS (prior knowledge, as the API
    /// speaks it): one connection, every request a stream of it.
    pub fn http2(&self) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("http/2 client: {e}"))?;
        Ok(Api {
            base: self.base.clone(),
            http,
        })
    }

    /// POSTs JSON; returns the status and the parsed answer.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Result<(u16, Value), String> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("POST {path}: reading the answer: {e}"))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// A fresh tenant with its API key and no endpoints yet.
    pub async fn new_tenant(&self, admin_key: &str) -> Result<Tenant, String> {
        let name = format!("bench-{}", unix_nanos());
        let (status, tenant) = self
            .post("/api/v1/tenants", admin_key, &json!({ "name": name }))
            .await?;
        if status != 201 {
            return Err(format!("creating a tenant: {status} {tenant}"));
        }
        let id = tenant["id"].as_str().unwrap_or_default().to_string();
        let (status, key) = self
            .post(
                &format!("/api/v1/tenants/{id}/api-keys"),
                admin_key,
                &json!({}),
            )
            .await?;
        if status != 201 {
            return Err(format!("creating an API key: {status} {key}"));
        }
        Ok(Tenant {
            key: key["key"].as_str().unwrap_or_default().to_string(),
            endpoints: Vec::new(),
        })
    }

    /// Creates one endpoint (`body` as `POST /api/v1/webhooks` takes it)
    /// and returns it as the API answered.
    pub async fn endpoint(&self, key: &str, body: &Value) -> Result<Value, String> {
        let (status, endpoint) = self.post("/api/v1/webhooks", key, body).await?;
        if status != 201 {
            return Err(format!("creating an endpoint: {status} {endpoint}"));
        }
        Ok(endpoint)
    }

    /// Deletes an endpoint, cancelling its deliveries that have not ended:
    /// a phase that leaves failing work behind removes it this way, so it
    /// does not go on being retried under the phases after it.
    pub async fn delete_endpoint(&self, key: &str, id: &str) -> Result<(), String> {
        let path = format!("/api/v1/webhooks/{id}");
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .map_err(|e| format!("DELETE {path}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("DELETE {path}: {status} {text}"));
        }
        Ok(())
    }

    /// A fresh tenant with `endpoints` endpoints pointing at `hook_url`, all
    /// subscribed to [`EVENT_TYPE`].
    pub async fn tenant(
        &self,
        admin_key: &str,
        hook_url: &str,
        endpoints: usize,
    ) -> Result<Tenant, String> {
        let body = json!({"url": hook_url, "events": [EVENT_TYPE]});
        self.tenant_with(admin_key, vec![body; endpoints]).await
    }

    /// A fresh tenant with one endpoint per body (`POST /api/v1/webhooks`
    /// bodies), created 16 at a time: 1,000 endpoints take a second, not
    /// ten. The ids are in no particular order.
    pub async fn tenant_with(&self, admin_key: &str, bodies: Vec<Value>) -> Result<Tenant, String> {
        let Tenant { key, .. } = self.new_tenant(admin_key).await?;
        let mut ids = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(16) {
            let mut set = tokio::task::JoinSet::new();
            for body in chunk {
                let api = self.clone();
                let key = key.clone();
                let body = body.clone();
                set.spawn(async move { api.endpoint(&key, &body).await });
            }
            while let Some(done) = set.join_next().await {
                let endpoint = done.map_err(|e| e.to_string())??;
                ids.push(endpoint["id"].as_str().unwrap_or_default().to_string());
            }
        }
        Ok(Tenant {
            key,
            endpoints: ids,
        })
    }

    /// PATCHes an endpoint; an error unless the API answers 200.
    pub async fn patch_endpoint(&self, key: &str, id: &str, body: &Value) -> Result<(), String> {
        let path = format!("/api/v1/webhooks/{id}");
        let response = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("PATCH {path}: {e}"))?;
        let status = response.status();
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("PATCH {path}: {status} {text}"));
        }
        Ok(())
    }

    /// Publishes one event carrying its send time; Ok(event id) on 202.
    pub async fn publish(&self, key: &str, body_bytes: usize) -> Result<String, String> {
        let (status, answer) = self.post_event("/api/v1/events", key, body_bytes).await?;
        if status != 202 {
            return Err(format!("publish: {status} {answer}"));
        }
        Ok(answer["id"].as_str().unwrap_or_default().to_string())
    }

    /// POSTs one publish body (as [`Api::publish`] sends it) to `path`.
    async fn post_event(
        &self,
        path: &str,
        key: &str,
        body_bytes: usize,
    ) -> Result<(u16, Value), String> {
        let body = json!({
            "event_type": EVENT_TYPE,
            "data": event_data(unix_nanos(), body_bytes),
        });
        self.post(path, key, &body).await
    }

    /// The same request as [`Api::publish`], to any `path` (the bare
    /// phase's relay sends it to the receiver); its status.
    pub async fn publish_status(
        &self,
        path: &str,
        key: &str,
        body_bytes: usize,
    ) -> Result<u16, String> {
        Ok(self.post_event(path, key, body_bytes).await?.0)
    }

    /// Publishes `n` events in one batch request; Ok(ids) when every item
    /// was accepted.
    pub async fn publish_batch(
        &self,
        key: &str,
        n: usize,
        body_bytes: usize,
    ) -> Result<Vec<String>, String> {
        let sent = unix_nanos();
        let events: Vec<Value> = (0..n)
            .map(|_| json!({"event_type": EVENT_TYPE, "data": event_data(sent, body_bytes)}))
            .collect();
        let (status, answer) = self
            .post("/api/v1/events/batch", key, &json!({ "events": events }))
            .await?;
        if status != 202 {
            return Err(format!("batch publish: {status} {answer}"));
        }
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        let mut ids = Vec::with_capacity(n);
        for item in &results {
            match item["id"].as_str() {
                Some(id) => ids.push(id.to_string()),
                None => return Err(format!("batch item refused: {item}")),
            }
        }
        if ids.len() != n {
            return Err(format!("batch: {} results for {n} events", ids.len()));
        }
        Ok(ids)
    }
}

/// The benchmark receiver's control routes.
#[derive(Clone)]
pub struct ReceiverControl {
    pub base: String,
    pub http: reqwest::Client,
}

impl ReceiverControl {
    pub fn new(base: &str) -> Self {
        ReceiverControl {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Where endpoints should point.
    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub async fn reset(&self) -> Result<(), String> {
        self.http
            .post(format!("{}/reset", self.base))
            .send()
            .await
            .map_err(|e| format!("receiver reset: {e}"))?;
        Ok(())
    }

    pub async fn stats(
        &self,
        with_latency: bool,
    ) -> Result<hookfleet_bench::ReceiverStats, String> {
        let query = if with_latency { "?latency=1" } else { "" };
        let text = self
            .http
            .get(format!("{}/stats{query}", self.base))
            .send()
            .await
            .map_err(|e| format!("receiver stats: {e}"))?
            .text()
            .await
            .map_err(|e| format!("receiver stats: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("receiver stats: {e}"))
    }

    /// Polls until `n` requests arrived; an error if `timeout` passes
    /// first (a phase whose deliveries do not all arrive has no result).
    pub async fn wait_for(
        &self,
        n: u64,
        timeout: Duration,
        every: Duration,
    ) -> Result<hookfleet_bench::ReceiverStats, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.stats(false).await?;
            if stats.count >= n {
                return Ok(stats);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "only {} of {n} deliveries arrived within {} s",
                    stats.count,
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(every).await;
        }
    }
}
