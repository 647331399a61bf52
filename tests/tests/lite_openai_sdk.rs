//! The `openai_sdk` suite against `clawgate-lite` (the smol runtime).

#[path = "openai_sdk.rs"]
mod suite;
