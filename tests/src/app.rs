//! A real API (the real router on 127.0.0.1:0) and, when asked, a real
//! worker (the worker library's run loop) for one test, against the test
//! Redis under a key prefix of its own. [`TestApp::builder`] names each
//! setting a test changes; everything else keeps a test default (a fast
//! retry schedule, loopback receivers allowed, no API rate limit to speak
//! of).

use std::time::Duration;

use hookfleet_common::Config;
use serde_json::Value;
use tokio::sync::watch;

use super::{cluster_masters, cluster_nodes, random_suffix, redis_url};

/// Installs the TLS crypto provider reqwest needs (once per process).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How a test wants its app: built by name, then [`spawn`]ed.
///
/// [`spawn`]: TestAppBuilder::spawn
#[must_use]
pub struct TestAppBuilder {
    with_worker: bool,
    vars: Vec<(String, String)>,
}

impl TestAppBuilder {
    /// Runs a worker (the library's run loop, in this process) next to the
    /// API, so published events are delivered.
    pub fn with_worker(mut self) -> Self {
        self.with_worker = true;
        self
    }

    /// `HOOKFLEET_RETRY_SCHEDULE`: the delays before each attempt.
    pub fn retry_schedule(self, schedule: &str) -> Self {
        self.env("HOOKFLEET_RETRY_SCHEDULE", schedule)
    }

    /// `HOOKFLEET_REQUEST_TIMEOUT`: how long one attempt may take.
    pub fn request_timeout(self, timeout: &str) -> Self {
        self.env("HOOKFLEET_REQUEST_TIMEOUT", timeout)
    }

    /// `HOOKFLEET_LEASE`: how long a claimed delivery stays a worker's.
    pub fn lease(self, lease: &str) -> Self {
        self.env("HOOKFLEET_LEASE", lease)
    }

    /// `HOOKFLEET_POLL_INTERVAL`: how often an idle worker looks anyway.
    pub fn poll_interval(self, interval: &str) -> Self {
        self.env("HOOKFLEET_POLL_INTERVAL", interval)
    }

    /// `HOOKFLEET_PARTITIONS`.
    pub fn partitions(self, partitions: u16) -> Self {
        self.env("HOOKFLEET_PARTITIONS", &partitions.to_string())
    }

    /// `HOOKFLEET_REDIS_URL`: a Redis of the test's own. The app then runs
    /// against that one alone, even when the suite runs on a cluster.
    pub fn redis_url(self, url: &str) -> Self {
        self.env("HOOKFLEET_REDIS_URL", url)
    }

    /// `HOOKFLEET_REDIS_CLUSTER_NODES`: a Redis Cluster of the test's own.
    pub fn redis_cluster_nodes(self, nodes: &str) -> Self {
        self.env("HOOKFLEET_REDIS_CLUSTER_NODES", nodes)
    }

    /// `HOOKFLEET_REDIS_POOL`: Redis connections per process.
    pub fn redis_pool(self, connections: u32) -> Self {
        self.env("HOOKFLEET_REDIS_POOL", &connections.to_string())
    }

    /// `HOOKFLEET_FANOUT_RECOVERY`: when an interrupted fan-out is finished.
    pub fn fanout_recovery(self, after: &str) -> Self {
        self.env("HOOKFLEET_FANOUT_RECOVERY", after)
    }

    /// `HOOKFLEET_FANOUT_INLINE`: most deliveries queued before the 202.
    pub fn fanout_inline(self, deliveries: u32) -> Self {
        self.env("HOOKFLEET_FANOUT_INLINE", &deliveries.to_string())
    }

    /// `HOOKFLEET_MAX_PAYLOAD`: the largest request body, in bytes.
    pub fn max_payload(self, bytes: u32) -> Self {
        self.env("HOOKFLEET_MAX_PAYLOAD", &bytes.to_string())
    }

    /// `HOOKFLEET_WORKER_MAX_RATE`: most attempts per second per worker.
    pub fn worker_max_rate(self, per_second: u32) -> Self {
        self.env("HOOKFLEET_WORKER_MAX_RATE", &per_second.to_string())
    }

    /// `HOOKFLEET_WORKER_TIMEOUT`: when a silent worker leaves the registry.
    pub fn worker_timeout(self, timeout: &str) -> Self {
        self.env("HOOKFLEET_WORKER_TIMEOUT", timeout)
    }

    /// `HOOKFLEET_TEST_SEND_MAX_PENDING`: test sends a tenant may have waiting.
    pub fn test_send_max_pending(self, sends: u32) -> Self {
        self.env("HOOKFLEET_TEST_SEND_MAX_PENDING", &sends.to_string())
    }

    /// `HOOKFLEET_RETENTION`: how long events and their logs are kept.
    pub fn retention(self, retention: &str) -> Self {
        self.env("HOOKFLEET_RETENTION", retention)
    }

    /// `HOOKFLEET_HTTPS_ONLY=true`: endpoint URLs must be https.
    pub fn https_only(self) -> Self {
        self.env("HOOKFLEET_HTTPS_ONLY", "true")
    }

    /// `HOOKFLEET_API_RATE_LIMIT`: requests per second per API key.
    pub fn api_rate_limit(self, per_second: u32) -> Self {
        self.env("HOOKFLEET_API_RATE_LIMIT", &per_second.to_string())
    }

    /// `HOOKFLEET_ALLOW_CIDRS`: private ranges endpoints may reach (the
    /// tests allow loopback; `""` allows none).
    pub fn allow_cidrs(self, cidrs: &str) -> Self {
        self.env("HOOKFLEET_ALLOW_CIDRS", cidrs)
    }

    /// `HOOKFLEET_DISABLE_AFTER`: the circuit breaker's failing time.
    pub fn disable_after(self, after: &str) -> Self {
        self.env("HOOKFLEET_DISABLE_AFTER", after)
    }

    /// Any other `HOOKFLEET_*` variable, by name: the escape hatch for a
    /// setting no test has needed a name for yet.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    /// The configuration the app would run with (a fresh key prefix), for
    /// tests that call the libraries without an API.
    pub fn config(&self) -> Config {
        let set = |name: &str| {
            self.vars
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        // The suite's Redis (or cluster) unless the test brings its own; it
        // is looked up only then, so a test with its own never starts one.
        let own_redis = set("HOOKFLEET_REDIS_URL");
        let cluster = set("HOOKFLEET_REDIS_CLUSTER_NODES").unwrap_or_else(|| {
            if own_redis.is_some() {
                String::new()
            } else {
                cluster_nodes()
            }
        });
        let url = own_redis.unwrap_or_else(redis_url);
        let config = Config::from_lookup(|name| match name {
            "HOOKFLEET_REDIS_URL" => Some(url.clone()),
            "HOOKFLEET_REDIS_CLUSTER_NODES" => Some(cluster.clone()),
            _ => set(name),
        })
        .expect("test configuration is valid");
        if std::env::var("HOOKFLEET_TEST_LOG").is_ok() {
            hookfleet_common::telemetry::init(&config.log_filter, false);
        }
        config
    }

    /// Starts the API (and the worker, if asked) on 127.0.0.1:0.
    pub async fn spawn(self) -> TestApp {
        init_tls();
        let config = self.config();
        let app = hookfleet_api::build(config.clone())
            .await
            .expect("api builds");
        let base = format!("http://{}", app.addr());
        let (shutdown, _) = watch::channel(false);
        let mut rx = shutdown.subscribe();
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            let _ = app.run_until(stop).await;
        });
        let mut test_app = TestApp {
            base,
            config,
            http: reqwest::Client::new(),
            shutdown,
            worker: None,
        };
        if self.with_worker {
            test_app.start_worker();
        }
        test_app
    }
}

impl TestApp {
    /// A builder with the test defaults: its own key prefix and admin key,
    /// the test Redis, a fast retry schedule, loopback allowed.
    pub fn builder() -> TestAppBuilder {
        let prefix = format!("test-{}", random_suffix());
        let admin = format!("admin-{}", random_suffix());
        let vars: Vec<(String, String)> = vec![
            ("HOOKFLEET_REDIS_PREFIX".into(), prefix),
            ("HOOKFLEET_LISTEN".into(), "127.0.0.1:0".into()),
            ("HOOKFLEET_ADMIN_KEY".into(), admin),
            ("HOOKFLEET_RETRY_SCHEDULE".into(), "0s,50ms,100ms".into()),
            ("HOOKFLEET_REQUEST_TIMEOUT".into(), "5s".into()),
            ("HOOKFLEET_LEASE".into(), "10s".into()),
            ("HOOKFLEET_POLL_INTERVAL".into(), "200ms".into()),
            ("HOOKFLEET_SHUTDOWN_GRACE".into(), "5s".into()),
            ("HOOKFLEET_PARTITIONS".into(), "8".into()),
            ("HOOKFLEET_ALLOW_CIDRS".into(), "127.0.0.0/8".into()),
            ("HOOKFLEET_API_RATE_LIMIT".into(), "10000".into()),
            ("HOOKFLEET_METRICS_LISTEN".into(), "127.0.0.1:0".into()),
            (
                "HOOKFLEET_LOG".into(),
                std::env::var("HOOKFLEET_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        TestAppBuilder {
            with_worker: false,
            vars,
        }
    }
}

/// A running API (and optionally a worker) for one test.
pub struct TestApp {
    pub base: String,
    pub config: Config,
    pub http: reqwest::Client,
    shutdown: watch::Sender<bool>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// Starts another API process of this app's fleet (the real binary, on
    /// a port of its own), with `extra` settings; returns it and its base
    /// URL once it is ready. Dropping it stops it.
    pub async fn start_api_process(&self, extra: &[(&str, &str)]) -> (crate::LoggedChild, String) {
        let port = crate::free_port();
        let mut env = crate::worker_env(&self.config, &[]);
        env.push(("HOOKFLEET_LISTEN", format!("127.0.0.1:{port}")));
        env.push(("HOOKFLEET_ADMIN_KEY", self.admin_key()));
        env.push(("HOOKFLEET_API_RATE_LIMIT", "10000".into()));
        for (name, value) in extra {
            env.push((name, value.to_string()));
        }
        let api = crate::spawn_logged(crate::api_binary(), &env);
        let base = format!("http://127.0.0.1:{port}");
        let ready = crate::wait_until(Duration::from_secs(20), || async {
            let response = self.http.get(format!("{base}/readyz")).send().await.ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
        assert!(ready.is_some(), "the API process started: {}", api.log());
        (api, base)
    }

    pub fn admin_key(&self) -> String {
        self.config.admin_key.clone().unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The API's `host:port`, for tests that talk to it on a raw socket.
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// A Redis connection to inspect what the API wrote (to the one Redis
    /// or to the cluster, like the app's own).
    pub async fn redis(&self) -> hookfleet_common::redis_pool::RedisConn {
        self.redis_pool()
            .get()
            .await
            .expect("connect to test redis")
    }

    /// The app's key names (its prefix).
    pub fn keys(&self) -> hookfleet_common::Keys {
        hookfleet_common::Keys::new(self.config.redis_prefix.clone())
    }

    /// The number of members of one of the app's sorted sets.
    pub async fn zcard(&self, key: &str) -> u64 {
        redis::cmd("ZCARD")
            .arg(key)
            .query_async(&mut self.redis().await)
            .await
            .expect("ZCARD")
    }

    /// The score of `member` in the sorted set `key`.
    pub async fn zscore(&self, key: &str, member: &str) -> Option<f64> {
        redis::cmd("ZSCORE")
            .arg(key)
            .arg(member)
            .query_async(&mut self.redis().await)
            .await
            .unwrap()
    }

    /// Deliveries waiting in all partitions (the scripts' `queued`
    /// counters): 0 once everything published has ended.
    pub async fn queued_total(&self) -> i64 {
        let keys = self.keys();
        let mut pipe = redis::pipe();
        for p in self.config.all_partitions() {
            pipe.get(keys.queued(p));
        }
        let counts: Vec<Option<i64>> = pipe.query_async(&mut self.redis().await).await.unwrap();
        counts.into_iter().flatten().sum()
    }

    /// The ids of a tenant's endpoints.
    pub async fn endpoint_ids(&self, key: &str) -> Vec<String> {
        // (A tenant has at most 1000 webhooks; the tests use fewer than
        // one page of 250.)
        let (status, list) = self.get("/api/v1/webhooks?limit=250", key).await;
        assert_eq!(status, 200, "{list}");
        assert!(list.get("next").is_none(), "more than one page: {list}");
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// A pool like the app's own, for polling closures that need a
    /// connection each time.
    pub fn redis_pool(&self) -> hookfleet_common::redis_pool::RedisPool {
        hookfleet_common::redis_pool::create_pool(&self.config).expect("redis pool")
    }

    /// Every key under this test's prefix with its value, so a test can prove
    /// a refused request wrote nothing. In cluster mode every node is read.
    pub async fn snapshot(&self) -> Vec<(String, String)> {
        let pattern = format!("{}:*", self.config.redis_prefix);
        let mut out = Vec::new();
        for mut conn in self.node_connections().await {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .expect("KEYS");
            for key in keys {
                let dump: Option<Vec<u8>> = redis::cmd("DUMP")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("DUMP");
                out.push((key, format!("{:?}", dump)));
            }
        }
        out.sort();
        out
    }

    /// A connection to each Redis holding this app's data: the one
    /// server, or every master of the cluster (for commands such as `KEYS`
    /// that see one node's keys only).
    pub async fn node_connections(&self) -> Vec<redis::aio::MultiplexedConnection> {
        let mut nodes = hookfleet_common::redis_pool::cluster_nodes(&self.config);
        if nodes.is_empty() {
            nodes.push(self.config.redis_url.clone());
        } else {
            nodes = cluster_masters(&nodes[0]).await;
        }
        let mut out = Vec::new();
        for node in nodes {
            out.push(
                redis::Client::open(node.as_str())
                    .expect("redis url")
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect to test redis"),
            );
        }
        out
    }

    /// The keys added, changed or removed since `before` (a [`snapshot`]).
    ///
    /// [`snapshot`]: TestApp::snapshot
    pub async fn changed_since(&self, before: &[(String, String)]) -> Vec<String> {
        let after = self.snapshot().await;
        let mut changed: Vec<String> = after
            .iter()
            .filter(|entry| !before.contains(entry))
            .chain(before.iter().filter(|entry| !after.contains(entry)))
            .map(|(key, _)| key.clone())
            .collect();
        changed.sort();
        changed.dedup();
        changed
    }

    /// Starts a worker for this app's configuration (if none runs).
    pub fn start_worker(&mut self) {
        if self.worker.is_some() {
            return;
        }
        let config = self.config.clone();
        let rx = self.shutdown.subscribe();
        self.worker = Some(tokio::spawn(async move {
            hookfleet_worker::run(config, rx)
                .await
                .expect("worker runs");
        }));
    }

    /// Starts a worker with a configuration of its own (e.g. a different
    /// address policy than the API's).
    pub fn start_worker_with(&mut self, config: Config) {
        let rx = self.shutdown.subscribe();
        self.worker = Some(tokio::spawn(async move {
            hookfleet_worker::run(config, rx)
                .await
                .expect("worker runs");
        }));
    }

    /// The attempt log entries of an endpoint, as field maps.
    pub async fn attempts(
        &self,
        endpoint_id: &str,
    ) -> Vec<std::collections::HashMap<String, String>> {
        let keys = hookfleet_common::Keys::new(self.config.redis_prefix.clone());
        let p = hookfleet_common::ids::partition_of(
            hookfleet_common::ids::IdKind::Endpoint,
            endpoint_id,
        )
        .expect("endpoint id");
        let mut conn = self.redis().await;
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(keys.attempts(p, endpoint_id))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        reply
            .ids
            .into_iter()
            .map(|entry| {
                hookfleet_common::model::attempt_fields(
                    endpoint_id,
                    entry
                        .map
                        .into_iter()
                        .map(|(k, v)| {
                            (k, redis::from_redis_value::<Vec<u8>>(v).unwrap_or_default())
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// Stops API and worker; returns once the worker has drained.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(worker) = self.worker.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
        }
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    /// Sends every body to `path` at once (each its own task and
    /// connection); the answers come back in the bodies' order.
    pub async fn post_all(&self, path: &str, key: &str, bodies: Vec<Value>) -> Vec<(u16, Value)> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let request = self.http.post(self.url(path)).bearer_auth(key).json(&body);
                tokio::spawn(async move { read(request.send().await.expect("request")).await })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await.expect("request task"));
        }
        answers
    }

    pub async fn post_raw(
        &self,
        path: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .patch(self.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        read(response).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        read(response).await
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("response is not JSON ({status}): {text}"))
    };
    (status, value)
}
