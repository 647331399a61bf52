//! The `control_ui_browser` suite against `clawgate-lite` (the smol runtime): the harness picks the binary from
//! this test target's `lite_` prefix.

#[path = "control_ui_browser.rs"]
mod suite;
