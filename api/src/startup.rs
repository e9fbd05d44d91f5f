//! Builds the application from configuration and binds it, returning the
//! bound address, so tests can run it on port 0 against their own Redis
//! key prefix.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{Quota, RateLimiter};
use hookfleet_common::store::Store;
use hookfleet_common::{redis_pool, Config, Keys};
use poem::http::{header, HeaderValue, StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Route};
use poem_openapi::OpenApiService;

use crate::error::{json_error, ApiError};
use crate::routes;
use crate::spec;
use crate::state::{AppState, Shared};

/// A bound, not yet running, API server.
pub struct Application {
    addr: SocketAddr,
    acceptor: poem::listener::TcpAcceptor,
    state: AppState,
    published: Arc<spec::Published>,
}

/// The API's operations as one poem-openapi service.
fn service(state: &AppState) -> OpenApiService<impl poem_openapi::OpenApi + 'static, ()> {
    OpenApiService::new(routes::all(state), "Hookfleet", env!("CARGO_PKG_VERSION"))
        .description(include_str!("api_description.md"))
}

/// The published spec ([`spec::Published`]) for this configuration.
pub fn published_spec(state: &AppState) -> Result<spec::Published, String> {
    let api = service(state);
    spec::Published::new(&api.spec(), &api.swagger_ui_html(), &state.store.config)
}

/// The whole HTTP surface: the API, its spec, Swagger UI, the console, all
/// errors JSON.
/// Three rules the framework leaves open are kept here: a 405 says which
/// methods the path has (`Allow`); a path a literal route takes but an
/// operation with a parameter would take for that method
/// (`PATCH /api/v1/webhooks/events`) gets that operation's 404, as any id
/// naming nothing does; and a header parameter that is not text is
/// refused (400) rather than taken as absent.
pub fn app(state: AppState, published: Arc<spec::Published>) -> impl Endpoint {
    let spec_json = published.json.clone();
    let swagger_ui = published.swagger_ui.clone();
    let metrics = state.metrics.clone();
    Route::new()
        .nest("/", service(&state))
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(spec_json.clone())
            }),
        )
        .nest(
            "/docs",
            Route::new().at(
                "/",
                poem::endpoint::make_sync(move |_| poem::web::Html(swagger_ui.clone())),
            ),
        )
        .nest("/console", crate::console::routes())
        .at("/metrics", poem::get(crate::metrics::render))
        .data(state)
        .into_endpoint()
        .catch_all_error(json_error)
        .around(move |ep, req| {
            let published = published.clone();
            let metrics = metrics.clone();
            async move {
                let response = answer(&published, ep, req).await;
                // Every answer is counted, as it leaves.
                metrics.count(response.status());
                Ok(response)
            }
        })
}

/// The outermost layer of [`app`]: the rules the framework leaves open
/// (see there), around the routes' answer.
async fn answer<E: Endpoint<Output = poem::Response>>(
    published: &spec::Published,
    ep: Arc<E>,
    req: poem::Request,
) -> poem::Response {
    if let Some(name) = published.unreadable_header(req.headers()) {
        let error = ApiError::bad_header(name, "must be visible ASCII text");
        return error.into_response();
    }
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let has_key = req.headers().contains_key(header::AUTHORIZATION);
    let mut response = ep.get_response(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        // A literal route took a path that names, for this method, a
        // resource that does not exist. (Without a key that operation
        // answers 401 first.)
        if let Some(message) = published.shadowed_not_found(&method, &path) {
            let error = if has_key {
                let what = message.strip_suffix(" not found").unwrap_or(message);
                ApiError::not_found(what)
            } else {
                ApiError::unauthorized()
            };
            return error.into_response();
        }
        if let Some(allow) = published
            .allow(&path)
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
    }
    response
}

/// Reads nothing from the environment: everything comes from `config`.
pub async fn build(config: Config) -> Result<Application, String> {
    let pool = redis_pool::create_pool(&config)?;
    let keys = Keys::new(config.redis_prefix.clone());
    hookfleet_common::store::layout::check(&pool, &keys, &config).await?;
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
    let attempt_waiters = Arc::new(crate::test_send::AttemptWaiters::start(&config, &keys));
    let key_cache = Arc::new(crate::key_cache::KeyCache::start(&config, &keys));
    let index_cache = Arc::new(crate::index_cache::IndexCache::new(config.api_index_cache));
    let store = Store::new(pool, keys, config);
    let coalescer = hookfleet_common::publish::Coalescer::start(store.clone());
    let state = AppState::new(Shared {
        attempt_waiters,
        key_cache,
        index_cache,
        store,
        limiter,
        coalescer,
        metrics: Arc::new(
            crate::metrics::ApiMetrics::new().map_err(|err| format!("metrics: {err}"))?,
        ),
    });
    let acceptor = TcpListener::bind(state.store.config.listen)
        .into_acceptor()
        .await
        .map_err(|err| {
            format!(
                "HOOKFLEET_LISTEN: cannot bind {}: {err}",
                state.store.config.listen
            )
        })?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .ok_or_else(|| "cannot read the bound address".to_string())?;
    let published = Arc::new(published_spec(&state)?);
    Ok(Application {
        addr,
        acceptor,
        state,
        published,
    })
}

impl Application {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets
    /// requests in progress finish (up to 10 s). Requests hyper cannot parse
    /// are answered with a JSON error too ([`crate::framing`]).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        poem::Server::new_with_acceptor(crate::framing::JsonErrors::new(self.acceptor))
            .run_with_graceful_shutdown(
                app(self.state, self.published),
                shutdown,
                Some(std::time::Duration::from_secs(10)),
            )
            .await
    }
}
