//! Shutdown as a first-class signal: a `watch` channel every task holds.
//! SIGTERM or Ctrl-C flips it; the claim loop stops claiming, attempts in
//! flight finish (up to `HOOKFLEET_SHUTDOWN_GRACE`), then the process exits.

use tokio::sync::watch;

/// A sender to trigger shutdown and a receiver to hand to [`crate::run`].
pub fn channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits until `shutdown` is true (or its sender is gone).
pub async fn wait(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
