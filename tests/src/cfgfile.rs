//! Config-file scenarios: edit the watched file like an operator would (write a temp file,
//! rename it over the config), wait for the gateway's log lines, poll for an outcome.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Gateway;

/// Generous guard for one reload (the gateway needs ~0.5 s after the write settles).
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// Replace `path` with `text` atomically (temp file in the same dir, then rename), so the
/// watcher never reads a half-written file. No pacing: an edit that lands while a reload is in
/// flight must still be picked up (`an_edit_during_a_reload_in_flight_is_not_lost`).
pub fn write_config(path: &Path, text: &str) {
    write_config_now(path, text);
}

/// The same as [`write_config`] (kept for callers that say they mean no pacing).
pub fn write_config_now(path: &Path, text: &str) {
    let dir = path.parent().expect("config path has a dir");
    let tmp = dir.join(format!(".test-edit-{}.tmp", crate::random_hex(8)));
    fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename onto {}: {e}", path.display()));
}

/// Poll `f` every 20 ms until it returns `Some`, or panic after `timeout` naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where the gateway's log currently ends (pass to [`wait_log_since`]).
pub fn log_mark(gw: &Gateway) -> usize {
    gw.stderr().len()
}

/// Wait until a log line written after `mark` contains `needle`; returns that line.
pub fn wait_log_since(gw: &Gateway, mark: usize, needle: &str) -> String {
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        let log = gw.stderr();
        if let Some(line) = log.get(mark..).unwrap_or("").lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line containing {needle:?} within {RELOAD_TIMEOUT:?}; log since the edit:\n{}",
            log.get(mark..).unwrap_or("")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Is nothing listening on `127.0.0.1:port` (connection refused)?
pub fn port_refused(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    matches!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Does `GET /healthz` on `127.0.0.1:port` answer 200?
pub fn healthz_ok(port: u16) -> bool {
    matches!(crate::process::http_get(SocketAddr::from(([127, 0, 0, 1], port)), "/healthz", Duration::from_millis(500)), Some((200, _)))
}
