//! End-to-end test harness for clawgate.
//!
//! * [`process`]: find (or build) the gateway binary, start `clawgate run` on a free loopback
//!   port with a private HOME / state dir, wait for `/healthz`, stop it on drop; run short-lived
//!   commands with a timeout.
//! * [`openclaw`]: run the real OpenClaw CLI (`openclaw-ref`) with a throwaway HOME.
//! * [`ws`]: protocol clients on top of `clawgate-driver` (tokio), and the "bystander" client that
//!   keeps calling `health` while a scenario runs.
//! * [`vectors`]: load the reference wire captures and replay them against our gateway, comparing
//!   shapes (codes, messages, details, close codes and reasons) rather than per-run values.
//! * [`cfgfile`]: edit a running gateway's config file atomically and wait for the reload.
//! * [`rawws`]: a tiny blocking WebSocket client over `std::net::TcpStream`, for cases the async
//!   client cannot express (writing a 27 MB frame while reading the server's close).
//!
//! Environment knobs:
//! * `CLAWGATE_BIN` — binary under test (e.g. `target/debug/clawgate-lite`), used as is. Without
//!   it: `target/<profile>/clawgate` next to the test executable, (re)built once per test process
//!   with `cargo build -p clawgate-tokio --bin clawgate` when missing or older than its sources
//!   (`CLAWGATE_NO_BUILD=1`: never rebuild an existing binary).
//! * `CLAWGATE_OPENCLAW_REF_DIR` (else `OPENCLAW_REF_DIR`, else `~/.cache/clawgate/openclaw-ref`)
//!   — the install dir of the reference CLI, shared by every test; `CLAWGATE_OPENCLAW_REF` — the
//!   wrapper script (default: the repository's `tools/openclaw-ref`, which installs it from npm).
//! * `CLAWGATE_KEEP_TEMP=1` — keep temp HOMEs (gateway logs are in `<home>/*.stderr.log`).

pub mod browser;
pub mod cfgfile;
pub mod device;
pub mod httpc;
pub mod js_clients;
pub mod openclaw;
pub mod process;
pub mod proxy;
pub mod python;
pub mod rawws;
pub mod tui;
pub mod upstream;
pub mod vectors;
pub mod ws;

pub use process::{CmdOutput, Gateway, GatewayBuilder, TempDir, clawgate_bin, clawgate_version, run_command};

use std::path::PathBuf;

/// The workspace root (the repository checkout).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The reference's captured wire behaviour kept in the repository (`testdata/`, see its README).
pub fn testdata_dir() -> PathBuf {
    workspace_root().join("testdata")
}

/// Random lowercase hex of `n` chars (from the OS RNG via `/dev/urandom`, falling back to time).
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut bytes = vec![0u8; n.div_ceil(2)];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_ok();
    if !ok {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let seed = t ^ (std::process::id() as u128) << 64;
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(131);
        }
    }
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(n);
    s
}
