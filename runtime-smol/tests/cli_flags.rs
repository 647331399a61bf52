//! The shared cli_flags checks (`shared-tests/cli_flags.rs`), run against `clawgate-lite`. (Having integration tests
//! also makes `cargo test --workspace` build the binary before any suite uses it.)

const BIN: &str = env!("CARGO_BIN_EXE_clawgate-lite");
#[allow(dead_code)]
const BIN_NAME: &str = "clawgate-lite";

include!("../../shared-tests/cli_flags.rs");
