//! The end-to-end suites against `clawgate-lite` (the smol runtime): the same files as `e2e`,
//! one test binary; the harness picks the binary from this executable's `lite_` prefix.

#[path = "../e2e/agent_runs.rs"]
mod agent_runs;
#[path = "../e2e/api_routes.rs"]
mod api_routes;
#[path = "../e2e/bad_input_vectors.rs"]
mod bad_input_vectors;
#[path = "../e2e/cli_client.rs"]
mod cli_client;
#[path = "../e2e/cli_flags.rs"]
mod cli_flags;
#[path = "../e2e/config_editing.rs"]
mod config_editing;
#[path = "../e2e/config_reload.rs"]
mod config_reload;
#[path = "../e2e/control_ui_browser.rs"]
mod control_ui_browser;
#[path = "../e2e/control_ui_http.rs"]
mod control_ui_http;
#[path = "../e2e/control_ui_ws.rs"]
mod control_ui_ws;
#[path = "../e2e/cron.rs"]
mod cron;
#[path = "../e2e/daemon.rs"]
mod daemon;
#[path = "../e2e/damaged_stores.rs"]
mod damaged_stores;
#[path = "../e2e/device_pairing.rs"]
mod device_pairing;
#[path = "../e2e/diagnostics.rs"]
mod diagnostics;
#[path = "../e2e/first_hour.rs"]
mod first_hour;
#[path = "../e2e/hardening.rs"]
mod hardening;
#[path = "../e2e/http_vectors.rs"]
mod http_vectors;
#[path = "../e2e/logs.rs"]
mod logs;
#[path = "../e2e/openai_http.rs"]
mod openai_http;
#[path = "../e2e/openai_sdk.rs"]
mod openai_sdk;
#[path = "../e2e/openclaw_cli.rs"]
mod openclaw_cli;
#[path = "../e2e/resilience.rs"]
mod resilience;
#[path = "../e2e/service_lifecycle.rs"]
mod service_lifecycle;
#[path = "../e2e/sessions_lifecycle.rs"]
mod sessions_lifecycle;
#[path = "../e2e/usage.rs"]
mod usage;
