//! Logging set-up shared by both binaries: `tracing` with an env-filter
//! taken from `HOOKFLEET_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call is a
/// no-op), which tests rely on.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .try_init();
}
