//! Builds the application from configuration and binds it, returning the
//! bound address, so tests can run it on port 0 against their own Redis
//! key prefix.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{Quota, RateLimiter};
use hookfleet_common::{redis_pool, Config, Keys};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, IntoEndpoint, Route};
use poem_openapi::OpenApiService;

use crate::error::json_error;
use crate::routes;
use crate::state::AppState;

/// A bound, not yet running, API server.
pub struct Application {
    addr: SocketAddr,
    acceptor: poem::listener::TcpAcceptor,
    state: AppState,
}

/// The whole HTTP surface: the API, its spec, Swagger UI, all errors JSON.
pub fn app(state: AppState) -> impl poem::Endpoint {
    let api = OpenApiService::new(routes::all(&state), "Hookfleet", env!("CARGO_PKG_VERSION"))
        .description(include_str!("api_description.md"));
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at("/metrics", poem::get(crate::metrics::render))
        .around(crate::metrics::count)
        .data(state)
        .into_endpoint()
        .catch_all_error(json_error)
}

/// Reads nothing from the environment: everything comes from `config`.
pub async fn build(config: Config) -> Result<Application, String> {
    let pool = redis_pool::create_pool(&config)?;
    let per_second = NonZeroU32::new(config.api_rate_limit).unwrap_or(NonZeroU32::MIN);
    let burst = per_second.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
    let limiter = Arc::new(RateLimiter::keyed(
        Quota::per_second(per_second).allow_burst(burst),
    ));
    // Forget idle keys now and then, so the limiter's memory stays bounded.
    let sweeper = Arc::downgrade(&limiter);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            match sweeper.upgrade() {
                Some(limiter) => limiter.retain_recent(),
                None => return,
            }
        }
    });
    let state = AppState {
        keys: Keys::new(config.redis_prefix.clone()),
        config: Arc::new(config),
        pool,
        limiter,
        metrics: Arc::new(
            crate::metrics::ApiMetrics::new().map_err(|err| format!("metrics: {err}"))?,
        ),
    };
    let acceptor = TcpListener::bind(state.config.listen)
        .into_acceptor()
        .await
        .map_err(|err| {
            format!(
                "HOOKFLEET_LISTEN: cannot bind {}: {err}",
                state.config.listen
            )
        })?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| "cannot read the bound address".to_string())?;
    Ok(Application {
        addr,
        acceptor,
        state,
    })
}

impl Application {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets
    /// requests in progress finish (up to 10 s).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                app(self.state),
                shutdown,
                Some(std::time::Duration::from_secs(10)),
            )
            .await
    }
}
