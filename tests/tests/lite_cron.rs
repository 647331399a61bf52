//! The `cron` suite against `clawgate-lite` (the smol runtime): the harness picks the binary from
//! this test target's `lite_` prefix.

#[path = "cron.rs"]
mod suite;
