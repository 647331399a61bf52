//! The `agent_runs` suite against `clawgate-lite` (the smol runtime).

#[path = "agent_runs.rs"]
mod suite;
