//! The `service_lifecycle` suite against `clawgate-lite` (the smol runtime): the harness picks the
//! binary from this test target's `lite_` prefix.

#[path = "service_lifecycle.rs"]
mod suite;
