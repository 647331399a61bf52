//! The `control_ui_ws` suite against `clawgate-lite` (the smol runtime).

#[path = "control_ui_ws.rs"]
mod suite;
