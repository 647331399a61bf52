//! The end-to-end suites against `clawgate` (the tokio runtime), one test binary: one link of the
//! driver instead of one per suite, and `cargo test` packs every suite's tests onto its threads
//! instead of running the suites one after another. `lite_e2e` runs the same suites (all but
//! the runtime-independent ones) against `clawgate-lite`; the harness picks the binary from the
//! test executable's name (`clawgate_tests::process::runtime_under_test`).

mod agent_runs;
mod api_routes;
mod bad_input_vectors;
mod cli_client;
mod cli_flags;
mod config_editing;
mod config_reload;
mod control_ui_browser;
mod control_ui_http;
mod control_ui_ws;
mod core_purity;
mod cron;
mod daemon;
mod damaged_stores;
mod device_pairing;
mod diagnostics;
mod first_hour;
mod hardening;
mod http_vectors;
mod logs;
mod openai_http;
mod openai_sdk;
mod openclaw_cli;
mod readme;
mod resilience;
mod secrets_ops;
mod service_lifecycle;
mod sessions_lifecycle;
mod usage;
