//! Configuration: one typed struct, read once from `HOOKFLEET_*` environment
//! variables and validated at start-up with errors that name the variable.
//!
//! [`VARIABLES`] is the single list of variables, defaults and meanings; the
//! README's table is written from it and a test keeps the two in step.

use std::net::SocketAddr;
use std::time::Duration;

use crate::duration::{parse_duration, parse_duration_list};
use crate::ids::MAX_PARTITIONS;
use crate::net_policy::AddressPolicy;

/// (name, default, meaning) of every variable either binary reads.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("HOOKFLEET_REDIS_URL", "redis://127.0.0.1:6379", "Redis to use (the only store)."),
    ("HOOKFLEET_REDIS_CLUSTER_NODES", "(none)", "Comma-separated `redis://host:port` addresses of some Redis Cluster nodes (the rest are discovered). When set, Hookfleet runs against the cluster and `HOOKFLEET_REDIS_URL` is not used."),
    ("HOOKFLEET_REDIS_PREFIX", "hf", "Prefix of every Redis key, so several installations (or test runs) can share one Redis."),
    ("HOOKFLEET_REDIS_POOL", "32", "Redis connections per process (a single Redis: multiplexed connections that requests share in turn; against a cluster each process shares one multiplexed connection per node)."),
    ("HOOKFLEET_LISTEN", "127.0.0.1:8080", "API listen address (Swagger UI at `/docs`, spec at `/openapi.json`)."),
    ("HOOKFLEET_ADMIN_KEY", "(none)", "Bearer key for the admin routes (tenants, API keys). Without it the admin routes answer 401."),
    ("HOOKFLEET_PARTITIONS", "16", "Queue partitions (Redis hash tags). May grow, never shrink, for the life of a dataset. At most 1024."),
    ("HOOKFLEET_RETRY_SCHEDULE", "0s,5s,5m,30m,2h,5h,10h,10h", "Delay before each attempt: the first is the delay before the first attempt (counted from publishing), each next one from the failed attempt before it; the list's length is the number of attempts. Retry delays get ±10% jitter."),
    ("HOOKFLEET_REQUEST_TIMEOUT", "30s", "Default timeout of one delivery attempt (an endpoint may set its own with `timeout_s`)."),
    ("HOOKFLEET_LEASE", "60s", "How long a claimed delivery stays claimed before another worker may take it over. Must exceed the request timeout by at least 5s."),
    ("HOOKFLEET_RETRY_AFTER_MAX", "1h", "Longest `Retry-After` (on 429/503) that is honoured."),
    ("HOOKFLEET_MAX_PAYLOAD", "262144", "Largest request body the API accepts, in bytes (larger gets 413)."),
    ("HOOKFLEET_ALLOW_CIDRS", "(none)", "Comma-separated CIDRs that endpoints may reach although private, loopback or otherwise restricted (e.g. `10.0.0.0/8` for receivers on your own network)."),
    ("HOOKFLEET_HTTPS_ONLY", "false", "`true` refuses endpoint URLs that are not https."),
    ("HOOKFLEET_DISABLE_AFTER", "5d", "Circuit breaker: an endpoint failing without any success for this long is disabled (and `endpoint.disabled` is sent). A 410 Gone disables it at once."),
    ("HOOKFLEET_API_THREADS", "0", "Threads of the API process's runtime (0: one per CPU core)."),
    ("HOOKFLEET_WORKER_THREADS", "0", "Threads of a worker process's runtime (0: one per CPU core)."),
    ("HOOKFLEET_API_KEY_CACHE", "1s", "How long an API process may use an API key it has resolved without asking Redis again (`0s`: always ask). A revoked key is dropped from every process's cache at once through Redis pub/sub; this bounds how long one keeps working if that message is lost."),
    ("HOOKFLEET_API_INDEX_CACHE", "30s", "How long an API process may match single publishes against a tenant's endpoint index, event types and cap as it last read them (`0s`: read them for every publish). A change of those is announced to every partition before it is answered, and a publish matched against an older copy is refused by Redis and matched again, so a new endpoint receives every event published after its creation was answered; this bounds the memory idle tenants take and, should an announcement fail, how long a copy from before it is used."),
    ("HOOKFLEET_API_RATE_LIMIT", "100", "Requests per second each API key may make (bursts up to twice that); over it the API answers 429 with `Retry-After`."),
    ("HOOKFLEET_RETENTION", "30d", "How long events, deliveries and attempt logs are kept, unless a tenant has a retention of its own (`PATCH /api/v1/tenants/{id}`)."),
    ("HOOKFLEET_TENANT_RETENTION_MIN", "(none)", "The shortest retention a tenant may be given. Unset: just longer than the retry schedule with its jitter (+10 %), which is also the least it may be set to."),
    ("HOOKFLEET_TENANT_RETENTION_MAX", "(none)", "The longest retention a tenant may be given (at least `HOOKFLEET_RETENTION`, the default when unset). Above `HOOKFLEET_RETENTION`, the shared event and state hashes live this long, and the workers remove each tenant's data when its own retention ends."),
    ("HOOKFLEET_RESPONSE_EXCERPT", "1024", "Bytes of each response body kept in the attempt log (0 to 65536). Most receivers answer a few bytes; an error page is cut here. Every byte is kept for each attempt for the whole retention."),
    ("HOOKFLEET_COMPRESS_ABOVE", "128", "Event payloads (`data`) and response excerpts at least this many bytes long are stored LZ4-compressed when that saves an eighth of them (set it above `HOOKFLEET_MAX_PAYLOAD` to store them as sent). Costs about 1 µs per event or attempt."),
    ("HOOKFLEET_IDEMPOTENCY_TTL", "24h", "How long an `Idempotency-Key` is remembered (more than twice `HOOKFLEET_FANOUT_RECOVERY`: operational events use keys of their own too)."),
    ("HOOKFLEET_ATTEMPT_LOG_MAXLEN", "10000", "Attempts kept per endpoint in its log stream (approximate cap)."),
    ("HOOKFLEET_WORKER_CONCURRENCY", "256", "Attempts one worker runs at once."),
    ("HOOKFLEET_WORKER_MAX_RATE", "0", "Most attempts per second one worker starts, across all endpoints (0: no limit). Protects the worker's host and network; per-endpoint limits are `rate_limit`."),
    ("HOOKFLEET_MAX_IN_FLIGHT", "32", "Default most attempts in flight to one endpoint at once, across every worker (1 to 1000; an endpoint may set its own `max_in_flight`). An endpoint at its limit is skipped by claims, so a slow or hanging receiver holds at most this many of the fleet's attempt slots; while its attempts time out its limit is lowered further (halved per timeout, +1 per answer)."),
    ("HOOKFLEET_TENANT_SHARE", "50", "Most of a worker's attempt slots (`HOOKFLEET_WORKER_CONCURRENCY`) one tenant may hold, in percent (1 to 100). A tenant holding its share has its endpoints skipped by that worker's claims until one of its attempts ends, so a tenant with many slow endpoints leaves the other slots to everyone else. An installation with a single tenant may set 100."),
    ("HOOKFLEET_TEST_SEND_MAX_PENDING", "10", "Most test sends (`POST /api/v1/webhooks/{id}/test`) one tenant may have waiting for their attempt at once, across every API process; the next gets 429 with `Retry-After`."),
    ("HOOKFLEET_CLAIM_BATCH", "64", "Deliveries claimed per Redis call."),
    ("HOOKFLEET_FANOUT_INLINE", "100", "An event with more deliveries than this, across several partitions, is answered 202 once stored and its home partition's deliveries queued; the API queues the rest right after (see Architecture)."),
    ("HOOKFLEET_FANOUT_RECOVERY", "30s", "A worker finishes the fan-out of an event still incomplete this long after it was published (its API process died mid-way), and publishes an operational event (`endpoint.disabled`, `message.attempt.exhausted`) still unpublished this long after it was recorded (its worker died first)."),
    ("HOOKFLEET_REPLAY_RATE", "2000", "Most deliveries of its window one replay looks at per second (workers run replays, a chunk of at most 200 at a time, so a large replay does not flood the queue at once)."),
    ("HOOKFLEET_TENANT_DELETE_RATE", "5000", "Most log entries and events a tenant's deletion removes per second (workers remove a deleted tenant's data in the background, at most 500 at a time, so a large tenant's deletion does not stall Redis)."),
    ("HOOKFLEET_RETENTION_SWEEP", "1m", "How often one worker of the fleet removes the data of tenants whose own retention is shorter than `HOOKFLEET_TENANT_RETENTION_MAX` (reads already treat it as gone)."),
    ("HOOKFLEET_POLL_INTERVAL", "1s", "Idle workers re-check the queue this often even without a wake-up message."),
    ("HOOKFLEET_WAKE_KEEPALIVE", "15s", "A worker pings its wake-up subscription after this long without a message, and replaces it when the ping gets no answer within the same time (a connection a NAT or load balancer dropped silently)."),
    ("HOOKFLEET_SHUTDOWN_GRACE", "25s", "On SIGTERM, how long a worker waits for attempts in flight before exiting."),
    ("HOOKFLEET_LOG", "info", "Log filter (`tracing` env-filter syntax, e.g. `info,hookfleet_worker=debug`)."),
    ("HOOKFLEET_LOG_FORMAT", "text", "`text` for people, `json` for log pipelines (one JSON object per line, ids as fields)."),
    ("HOOKFLEET_METRICS_LISTEN", "127.0.0.1:9091", "Where a worker serves Prometheus `/metrics` (the API serves them on its own port)."),
    ("HOOKFLEET_WORKER_TIMEOUT", "15s", "A worker that has not sent a heartbeat for this long is dropped from `GET /api/v1/admin/workers`."),
];

/// The highest concurrency cap an endpoint (or the default) may have.
pub const MAX_IN_FLIGHT: u32 = 1000;

/// Why the configuration was refused; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

/// The whole configuration of either binary.
#[derive(Clone, Debug)]
pub struct Config {
    pub redis_url: String,
    /// Comma-separated cluster node URLs; empty for a single Redis.
    pub redis_cluster_nodes: String,
    pub redis_prefix: String,
    pub redis_pool: usize,
    pub listen: SocketAddr,
    /// Never logged: `Debug` on this struct is only used in tests.
    pub admin_key: Option<String>,
    pub partitions: u16,
    pub retry_schedule: Vec<Duration>,
    pub request_timeout: Duration,
    pub lease: Duration,
    pub retry_after_max: Duration,
    pub max_payload: usize,
    /// Runtime threads of the API and of a worker (0: one per core).
    pub api_threads: usize,
    pub worker_threads: usize,
    /// How long a resolved API key is used from the API's cache.
    pub api_key_cache: Duration,
    /// How long a tenant's publish configuration is used from the API's
    /// cache (`HOOKFLEET_API_INDEX_CACHE`).
    pub api_index_cache: Duration,
    /// Bytes of a response body an attempt's log entry keeps.
    pub response_excerpt: usize,
    /// `HOOKFLEET_COMPRESS_ABOVE`: payloads this long or longer are stored
    /// compressed (when that pays, `stored_event.rs`).
    pub compress_above: usize,
    /// A tenant's retention unless it has its own.
    pub retention: Duration,
    /// The bounds of a tenant's own retention.
    pub tenant_retention_min: Duration,
    pub tenant_retention_max: Duration,
    /// How often the retention sweep runs (`HOOKFLEET_RETENTION_SWEEP`).
    pub retention_sweep: Duration,
    pub idempotency_ttl: Duration,
    /// Deliveries up to which a multi-partition fan-out completes before
    /// the 202 (`HOOKFLEET_FANOUT_INLINE`).
    pub fanout_inline: usize,
    /// Age after which a worker finishes an incomplete fan-out.
    pub fanout_recovery: Duration,
    pub attempt_log_maxlen: u64,
    pub worker_concurrency: usize,
    pub claim_batch: usize,
    /// Default fleet-wide cap of one endpoint's attempts in flight.
    pub max_in_flight: u32,
    /// Test sends one tenant may have waiting at once.
    pub test_send_max_pending: u32,
    /// Percent of a worker's slots one tenant may hold.
    pub tenant_share: u32,
    pub poll_interval: Duration,
    /// Quiet time after which the wake subscription is pinged, and how
    /// long the ping may take (`HOOKFLEET_WAKE_KEEPALIVE`).
    pub wake_keepalive: Duration,
    pub shutdown_grace: Duration,
    pub log_filter: String,
    /// `text` or `json`.
    pub log_json: bool,
    pub metrics_listen: SocketAddr,
    pub worker_timeout: Duration,
    /// Circuit breaker window.
    pub disable_after: Duration,
    /// Attempts per second one worker may start (0: unlimited).
    pub worker_max_rate: u32,
    /// Requests per second per API key.
    pub api_rate_limit: u32,
    /// Log entries one replay looks at per second (`HOOKFLEET_REPLAY_RATE`).
    pub replay_rate: u32,
    /// Log entries and events a tenant's deletion removes per second
    /// (`HOOKFLEET_TENANT_DELETE_RATE`).
    pub tenant_delete_rate: u32,
    /// Where deliveries may go (SSRF protection).
    pub address_policy: AddressPolicy,
}

fn default_of(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, d, _)| *d)
        .unwrap_or("")
}

impl Config {
    /// How long the shared, time-bucketed hashes (events, delivery states)
    /// and endpoint logs are kept: the longest retention any tenant may
    /// have. A tenant whose own retention is shorter has its data removed
    /// at its end by the workers' retention sweep.
    pub fn storage_retention(&self) -> Duration {
        self.tenant_retention_max.max(self.retention)
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| -> String {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default_of(name).to_string())
        };
        let duration = |name: &'static str| -> Result<Duration, ConfigError> {
            parse_duration(&get(name)).map_err(|reason| ConfigError {
                variable: name,
                reason,
            })
        };
        let number = |name: &'static str| -> Result<u64, ConfigError> {
            get(name).trim().parse::<u64>().map_err(|_| ConfigError {
                variable: name,
                reason: format!("`{}` is not a whole number", get(name)),
            })
        };

        let listen = get("HOOKFLEET_LISTEN")
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError {
                variable: "HOOKFLEET_LISTEN",
                reason: "expected host:port, e.g. 127.0.0.1:8080".into(),
            })?;
        let partitions = number("HOOKFLEET_PARTITIONS")?;
        if partitions == 0 || partitions > u64::from(MAX_PARTITIONS) {
            return Err(ConfigError {
                variable: "HOOKFLEET_PARTITIONS",
                reason: format!("must be 1..={MAX_PARTITIONS}"),
            });
        }
        let retry_schedule =
            parse_duration_list(&get("HOOKFLEET_RETRY_SCHEDULE")).map_err(|reason| {
                ConfigError {
                    variable: "HOOKFLEET_RETRY_SCHEDULE",
                    reason,
                }
            })?;
        if retry_schedule.is_empty() {
            return Err(ConfigError {
                variable: "HOOKFLEET_RETRY_SCHEDULE",
                reason: "needs at least one duration".into(),
            });
        }
        let request_timeout = duration("HOOKFLEET_REQUEST_TIMEOUT")?;
        let lease = duration("HOOKFLEET_LEASE")?;
        // A lease shorter than an attempt would let a second worker take a
        // delivery whose first attempt is still running: a duplicate POST.
        if lease < request_timeout + Duration::from_secs(5) {
            return Err(ConfigError {
                variable: "HOOKFLEET_LEASE",
                reason: format!(
                    "must exceed HOOKFLEET_REQUEST_TIMEOUT ({}s) by at least 5s",
                    request_timeout.as_secs()
                ),
            });
        }
        let retention = duration("HOOKFLEET_RETENTION")?;
        // A delivery must not expire while it still has attempts to make:
        // the schedule with its jitter (up to +10% each). (A retry that
        // `Retry-After`, a rate limit or a lease pushes later ends the
        // delivery as failed, see the worker's `attempt::within_retention`.)
        let schedule_total: Duration = retry_schedule.iter().sum();
        let needed = schedule_total.mul_f64(1.1);
        if retention <= needed {
            return Err(ConfigError {
                variable: "HOOKFLEET_RETENTION",
                reason: format!(
                    "must be longer than the whole retry schedule with its jitter ({}s)",
                    needed.as_secs()
                ),
            });
        }
        let optional_duration = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                Some(text) => parse_duration(&text)
                    .map(Some)
                    .map_err(|reason| ConfigError {
                        variable: name,
                        reason,
                    }),
                None => Ok(None),
            }
        };
        let threads = |name: &'static str| -> Result<usize, ConfigError> {
            match number(name)? {
                n @ 0..=256 => Ok(n as usize),
                _ => Err(ConfigError {
                    variable: name,
                    reason: "must be 0 (one per core) to 256".into(),
                }),
            }
        };
        let response_excerpt = number("HOOKFLEET_RESPONSE_EXCERPT")?;
        if response_excerpt > 65_536 {
            return Err(ConfigError {
                variable: "HOOKFLEET_RESPONSE_EXCERPT",
                reason: "must be at most 65536".into(),
            });
        }
        let response_excerpt = response_excerpt as usize;
        let compress_above =
            usize::try_from(number("HOOKFLEET_COMPRESS_ABOVE")?).unwrap_or(usize::MAX);
        let floor = needed + Duration::from_secs(1);
        let tenant_retention_min = optional_duration("HOOKFLEET_TENANT_RETENTION_MIN")?;
        if tenant_retention_min.is_some_and(|min| min <= needed || min > retention) {
            return Err(ConfigError {
                variable: "HOOKFLEET_TENANT_RETENTION_MIN",
                reason: format!(
                    "must be longer than the whole retry schedule with its jitter ({}s) and at most HOOKFLEET_RETENTION",
                    needed.as_secs()
                ),
            });
        }
        let tenant_retention_max = optional_duration("HOOKFLEET_TENANT_RETENTION_MAX")?;
        if tenant_retention_max.is_some_and(|max| max < retention) {
            return Err(ConfigError {
                variable: "HOOKFLEET_TENANT_RETENTION_MAX",
                reason: "must be at least HOOKFLEET_RETENTION".into(),
            });
        }
        let tenant_retention_min = tenant_retention_min.unwrap_or(floor.min(retention));
        let tenant_retention_max = tenant_retention_max.unwrap_or(retention);
        // An operational event left unpublished is published by a sweep
        // after HOOKFLEET_FANOUT_RECOVERY under the same idempotency key as
        // its first try, which must still be remembered then.
        let idempotency_ttl = duration("HOOKFLEET_IDEMPOTENCY_TTL")?;
        let fanout_recovery = duration("HOOKFLEET_FANOUT_RECOVERY")?;
        if idempotency_ttl <= fanout_recovery * 2 {
            return Err(ConfigError {
                variable: "HOOKFLEET_IDEMPOTENCY_TTL",
                reason: "must be more than twice HOOKFLEET_FANOUT_RECOVERY".into(),
            });
        }
        let redis_prefix = get("HOOKFLEET_REDIS_PREFIX");
        if redis_prefix.contains(['{', '}', ' ']) {
            return Err(ConfigError {
                variable: "HOOKFLEET_REDIS_PREFIX",
                reason: "must not contain braces or spaces".into(),
            });
        }
        let redis_cluster_nodes = lookup("HOOKFLEET_REDIS_CLUSTER_NODES").unwrap_or_default();
        for node in redis_cluster_nodes.split(',').map(str::trim) {
            if !node.is_empty() && !node.starts_with("redis://") && !node.starts_with("rediss://") {
                return Err(ConfigError {
                    variable: "HOOKFLEET_REDIS_CLUSTER_NODES",
                    reason: format!("`{node}` is not a redis:// or rediss:// URL"),
                });
            }
        }
        let positive = |name: &'static str| -> Result<u64, ConfigError> {
            let value = number(name)?;
            if value == 0 {
                return Err(ConfigError {
                    variable: name,
                    reason: "must be at least 1".into(),
                });
            }
            Ok(value)
        };
        let nonzero_duration = |name: &'static str| -> Result<Duration, ConfigError> {
            let value = duration(name)?;
            if value.is_zero() {
                return Err(ConfigError {
                    variable: name,
                    reason: "must be longer than 0s".into(),
                });
            }
            Ok(value)
        };

        let allow =
            AddressPolicy::parse_allow_list(&lookup("HOOKFLEET_ALLOW_CIDRS").unwrap_or_default())
                .map_err(|reason| ConfigError {
                variable: "HOOKFLEET_ALLOW_CIDRS",
                reason,
            })?;
        let https_only = match get("HOOKFLEET_HTTPS_ONLY").trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                return Err(ConfigError {
                    variable: "HOOKFLEET_HTTPS_ONLY",
                    reason: format!("`{other}` is not true or false"),
                })
            }
        };

        Ok(Self {
            address_policy: AddressPolicy::new(allow, https_only),
            disable_after: duration("HOOKFLEET_DISABLE_AFTER")?,
            worker_max_rate: u32::try_from(number("HOOKFLEET_WORKER_MAX_RATE")?).map_err(|_| {
                ConfigError {
                    variable: "HOOKFLEET_WORKER_MAX_RATE",
                    reason: "too large".into(),
                }
            })?,
            api_rate_limit: u32::try_from(positive("HOOKFLEET_API_RATE_LIMIT")?).map_err(|_| {
                ConfigError {
                    variable: "HOOKFLEET_API_RATE_LIMIT",
                    reason: "too large".into(),
                }
            })?,
            replay_rate: u32::try_from(positive("HOOKFLEET_REPLAY_RATE")?).map_err(|_| {
                ConfigError {
                    variable: "HOOKFLEET_REPLAY_RATE",
                    reason: "too large".into(),
                }
            })?,
            tenant_delete_rate: u32::try_from(positive("HOOKFLEET_TENANT_DELETE_RATE")?).map_err(
                |_| ConfigError {
                    variable: "HOOKFLEET_TENANT_DELETE_RATE",
                    reason: "too large".into(),
                },
            )?,
            redis_url: get("HOOKFLEET_REDIS_URL"),
            redis_cluster_nodes,
            redis_prefix,
            redis_pool: positive("HOOKFLEET_REDIS_POOL")? as usize,
            listen,
            admin_key: lookup("HOOKFLEET_ADMIN_KEY").filter(|k| !k.trim().is_empty()),
            partitions: partitions as u16,
            retry_schedule,
            request_timeout,
            lease,
            retry_after_max: duration("HOOKFLEET_RETRY_AFTER_MAX")?,
            max_payload: positive("HOOKFLEET_MAX_PAYLOAD")? as usize,
            retention,
            tenant_retention_min,
            tenant_retention_max,
            response_excerpt,
            compress_above,
            api_key_cache: duration("HOOKFLEET_API_KEY_CACHE")?,
            api_index_cache: duration("HOOKFLEET_API_INDEX_CACHE")?,
            api_threads: threads("HOOKFLEET_API_THREADS")?,
            worker_threads: threads("HOOKFLEET_WORKER_THREADS")?,
            retention_sweep: duration("HOOKFLEET_RETENTION_SWEEP")?,
            idempotency_ttl,
            attempt_log_maxlen: positive("HOOKFLEET_ATTEMPT_LOG_MAXLEN")?,
            worker_concurrency: positive("HOOKFLEET_WORKER_CONCURRENCY")? as usize,
            claim_batch: positive("HOOKFLEET_CLAIM_BATCH")? as usize,
            max_in_flight: {
                let n = positive("HOOKFLEET_MAX_IN_FLIGHT")?;
                if n > u64::from(MAX_IN_FLIGHT) {
                    return Err(ConfigError {
                        variable: "HOOKFLEET_MAX_IN_FLIGHT",
                        reason: format!("must be between 1 and {MAX_IN_FLIGHT}"),
                    });
                }
                n as u32
            },
            tenant_share: {
                let n = positive("HOOKFLEET_TENANT_SHARE")?;
                if n > 100 {
                    return Err(ConfigError {
                        variable: "HOOKFLEET_TENANT_SHARE",
                        reason: "must be a percentage from 1 to 100".into(),
                    });
                }
                n as u32
            },
            test_send_max_pending: u32::try_from(positive("HOOKFLEET_TEST_SEND_MAX_PENDING")?)
                .map_err(|_| ConfigError {
                    variable: "HOOKFLEET_TEST_SEND_MAX_PENDING",
                    reason: "too large".into(),
                })?,
            poll_interval: duration("HOOKFLEET_POLL_INTERVAL")?,
            wake_keepalive: nonzero_duration("HOOKFLEET_WAKE_KEEPALIVE")?,
            fanout_inline: number("HOOKFLEET_FANOUT_INLINE")? as usize,
            fanout_recovery,
            shutdown_grace: duration("HOOKFLEET_SHUTDOWN_GRACE")?,
            log_filter: get("HOOKFLEET_LOG"),
            log_json: match get("HOOKFLEET_LOG_FORMAT").trim() {
                "text" => false,
                "json" => true,
                other => {
                    return Err(ConfigError {
                        variable: "HOOKFLEET_LOG_FORMAT",
                        reason: format!("`{other}` is not text or json"),
                    })
                }
            },
            metrics_listen: get("HOOKFLEET_METRICS_LISTEN")
                .parse::<SocketAddr>()
                .map_err(|_| ConfigError {
                    variable: "HOOKFLEET_METRICS_LISTEN",
                    reason: "expected host:port, e.g. 0.0.0.0:9091".into(),
                })?,
            worker_timeout: duration("HOOKFLEET_WORKER_TIMEOUT")?,
        })
    }

    /// The retry schedule's first entry (ms): a first attempt is due this
    /// long after its event was published.
    pub fn initial_delay_ms(&self) -> u64 {
        self.retry_schedule
            .first()
            .map_or(0, |delay| delay.as_millis() as u64)
    }

    /// The partitions `0..partitions`.
    pub fn all_partitions(&self) -> impl Iterator<Item = crate::ids::Partition> {
        (0..self.partitions).map(crate::ids::Partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_valid() {
        let config = load(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.retry_schedule.len(), 8);
        assert_eq!(config.partitions, 16);
        assert_eq!(config.max_payload, 256 * 1024);
        assert!(config.admin_key.is_none());
    }

    #[test]
    fn errors_name_the_variable() {
        let err = load(&[("HOOKFLEET_RETRY_SCHEDULE", "1s,soon")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_RETRY_SCHEDULE");
        let err = load(&[("HOOKFLEET_LISTEN", "nowhere")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_LISTEN");
        let err = load(&[("HOOKFLEET_PARTITIONS", "0")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_PARTITIONS");
        let err = load(&[("HOOKFLEET_ALLOW_CIDRS", "10.0.0.0/99")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_ALLOW_CIDRS");
        let err = load(&[("HOOKFLEET_REDIS_CLUSTER_NODES", "redis://a:7000,b:7001")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_REDIS_CLUSTER_NODES");
        let err = load(&[("HOOKFLEET_HTTPS_ONLY", "maybe")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_HTTPS_ONLY");
        let err = load(&[
            ("HOOKFLEET_IDEMPOTENCY_TTL", "1m"),
            ("HOOKFLEET_FANOUT_RECOVERY", "30s"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_IDEMPOTENCY_TTL");
        let err = load(&[("HOOKFLEET_WAKE_KEEPALIVE", "0s")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_WAKE_KEEPALIVE");
        let err = load(&[("HOOKFLEET_MAX_PAYLOAD", "-1")]).unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_MAX_PAYLOAD");
    }

    #[test]
    fn retention_must_outlive_the_schedule() {
        let err = load(&[
            ("HOOKFLEET_RETRY_SCHEDULE", "0s,1h"),
            ("HOOKFLEET_RETENTION", "30m"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_RETENTION");
        // Longer than the schedule, but not than its jitter: a last retry
        // 10% late would find its delivery expired.
        let err = load(&[
            ("HOOKFLEET_RETRY_SCHEDULE", "0s,10h"),
            ("HOOKFLEET_RETENTION", "630m"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_RETENTION");
        assert!(load(&[
            ("HOOKFLEET_RETRY_SCHEDULE", "0s,10h"),
            ("HOOKFLEET_RETENTION", "690m"),
        ])
        .is_ok());
    }

    #[test]
    fn lease_must_outlive_the_request_timeout() {
        let err = load(&[
            ("HOOKFLEET_REQUEST_TIMEOUT", "30s"),
            ("HOOKFLEET_LEASE", "30s"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "HOOKFLEET_LEASE");
        assert!(load(&[
            ("HOOKFLEET_REQUEST_TIMEOUT", "1s"),
            ("HOOKFLEET_LEASE", "6s")
        ])
        .is_ok());
    }
}
