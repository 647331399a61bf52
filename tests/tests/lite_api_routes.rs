//! The `api_routes` suite against `clawgate-lite` (the smol runtime): the harness picks the
//! binary from this test target's `lite_` prefix.

#[path = "api_routes.rs"]
mod suite;
