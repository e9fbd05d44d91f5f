//! Logging set-up shared by both binaries: `tracing` with an env-filter
//! taken from `HOOKFLEET_LOG`, as text for people or JSON lines
//! (`HOOKFLEET_LOG_FORMAT=json`) for log pipelines. Span fields
//! (`delivery_id`, `event_id`, `endpoint_id`) appear in both.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call is a
/// no-op), which tests rely on.
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr, leaving stdout to whatever a binary prints on purpose.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}
