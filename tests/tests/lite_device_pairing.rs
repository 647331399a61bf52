//! The `device_pairing` suite against `clawgate-lite` (the smol runtime): the harness picks the binary from
//! this test target's `lite_` prefix.

#[path = "device_pairing.rs"]
mod suite;
