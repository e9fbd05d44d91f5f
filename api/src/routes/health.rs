//! `/healthz` (the process is up) and `/readyz` (Redis answers).

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::state::AppState;

pub struct HealthApi {
    pub state: AppState,
}

/// A probe's answer.
#[derive(Object)]
#[oai(example)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency is down.
    #[oai(validator(pattern = "^(ok|unavailable)$"))]
    pub status: String,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// Redis answered PING.
    #[oai(status = 200)]
    Ready(Json<Health>),
    /// Redis did not answer; the API cannot serve requests.
    #[oai(status = 503)]
    NotReady(Json<Health>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// Answers 200 while the process runs, whatever the state of Redis.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health {
            status: "ok".into(),
        })
    }

    /// Readiness
    ///
    /// Answers 200 when Redis answers PING within 2 seconds, else 503.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> ReadyResponse {
        let ping = async {
            let mut conn = self.state.store.pool.get().await.ok()?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .ok()
        };
        match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
            Ok(Some(_)) => ReadyResponse::Ready(Json(Health {
                status: "ok".into(),
            })),
            _ => ReadyResponse::NotReady(Json(Health {
                status: "unavailable".into(),
            })),
        }
    }
}
