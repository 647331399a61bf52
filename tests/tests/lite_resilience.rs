//! The `resilience` suite against `clawgate-lite` (the smol runtime).

#[path = "resilience.rs"]
mod suite;
