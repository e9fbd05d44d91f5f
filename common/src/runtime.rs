//! The tokio runtime each binary runs on, with as many threads as its
//! configuration says (`HOOKFLEET_API_THREADS`, `HOOKFLEET_WORKER_THREADS`;
//! 0, the default, is one per CPU core, tokio's own default). On a small
//! machine that also runs Redis and the other binary, fewer threads than
//! cores can cost less CPU per request; see docs/BENCHMARKS.md.

/// A multi-threaded runtime with `threads` worker threads (one per core
/// when 0), timers and I/O enabled.
pub fn build(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder.build()
}
