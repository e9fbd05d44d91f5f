//! Nothing to link: this package holds Hookfleet's end-to-end tests, in
//! `tests/e2e` (one test binary). Run them with `cargo test -p hookfleet-tests`.
