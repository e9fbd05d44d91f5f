//! Logging set-up shared by both binaries: `tracing` with an env-filter
//! taken from `HOOKFLEET_LOG`, as text for people or JSON lines
//! (`HOOKFLEET_LOG_FORMAT=json`) for log pipelines. Span fields (the
//! worker's debug-level attempt span: `delivery_id`, `event_id`,
//! `endpoint_id`) appear in both. Text is
//! coloured only when stderr is a terminal, so log files (scripts/run's
//! `.data/logs/`, a container's captured output) hold plain text.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call is a
/// no-op), which tests rely on.
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    // Logs go to stderr, leaving stdout to whatever a binary prints on purpose.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(true);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Whether to colour the log: only for a person at a terminal, and not
/// when `NO_COLOR` is set to anything but the empty string
/// (<https://no-color.org>). Escape codes in a file or a pipe are noise to
/// `less`, `grep` and log collectors.
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a file or a pipe gets plain text");
        assert!(!colour(true, Some(OsStr::new("1"))), "NO_COLOR=1");
        assert!(!colour(false, Some(OsStr::new("1"))));
        // no-color.org: an empty NO_COLOR does not count as set.
        assert!(colour(true, Some(OsStr::new(""))));
    }
}
