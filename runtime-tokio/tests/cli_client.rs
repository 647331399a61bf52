//! The shared cli_client checks (`shared-tests/cli_client.rs`), run against `clawgate`. (Having integration tests
//! also makes `cargo test --workspace` build the binary before any suite uses it.)

const BIN: &str = env!("CARGO_BIN_EXE_clawgate");
#[allow(dead_code)]
const BIN_NAME: &str = "clawgate";

include!("../../shared-tests/cli_client.rs");
