//! One gateway per state dir (config-auth-reload §8.1, layer 1): the state dir's sessions,
//! devices, cron jobs and token belong to one process. The shell holds an advisory lock on
//! `<stateDir>/clawgate/gateway.lock` for its whole life (the kernel releases it when the
//! process dies, `kill -9` included) and writes this record inside, so a second gateway can
//! name the owner. Taking the lock happens before binding: a second gateway never answers on
//! a port while it is refused the state.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::StartupError;

/// The lock file, relative to the state dir.
pub const LOCK_FILE: &str = "clawgate/gateway.lock";
/// How long a starting gateway waits for the owner to go (a supervisor's restart overlaps the
/// old process's exit); the reference's per-config lock waits as long.
pub const LOCK_WAIT: Duration = Duration::from_millis(5000);
/// How often it looks again.
pub const LOCK_POLL: Duration = Duration::from_millis(100);

/// What the owner writes into the lock file (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRecord {
    pub pid: u32,
    pub port: u16,
    /// The bind mode (`loopback`, `lan`, …), for the address `status` shows.
    #[serde(default)]
    pub bind: String,
    pub started_at_ms: u64,
    pub state_dir: String,
}

impl LockRecord {
    /// The record in a lock file; `None` for anything else (an empty file being written, a
    /// foreign or damaged one): the lock itself, not the text, decides ownership.
    pub fn parse(bytes: &[u8]) -> Option<LockRecord> {
        serde_json::from_slice(bytes).ok()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default() + "\n"
    }

    /// The address the owner listens on, as `status` shows it: all interfaces for `lan`, the
    /// loopback otherwise (what `loopback`, and `auto` outside a container, bind).
    pub fn listening(&self) -> String {
        let host = if self.bind == "lan" { "0.0.0.0" } else { "127.0.0.1" };
        format!("ws://{host}:{}", self.port)
    }
}

/// The refusal of a second gateway on a held state dir: the reference's words
/// (`gateway already running (pid <pid>); lock timeout after <ms>ms`), then the owner's port
/// and what to do. Under a supervisor the exit code is 78, so `Restart=always` does not loop
/// against a healthy owner (§8.2); otherwise 1.
pub fn refusal(owner: Option<&LockRecord>, state_dir: &str, waited: Duration, supervised: bool) -> StartupError {
    let pid = owner.map_or_else(|| "unknown".to_string(), |o| o.pid.to_string());
    let port = owner.map_or_else(|| "an unknown port".to_string(), |o| format!("port {}", o.port));
    let head = format!("gateway already running (pid {pid}); lock timeout after {}ms", waited.as_millis());
    let detail = format!(
        "The state dir {state_dir} belongs to the gateway with pid {pid} on {port}.\nFix: stop that gateway (`clawgate stop`, or kill {pid}), or give this one its own state dir and port: --profile NAME, or OPENCLAW_STATE_DIR and --port."
    );
    if supervised {
        StartupError::config(format!("Gateway failed to start: {head}; exiting with code 78 to prevent a Restart=always loop\n{detail}"))
    } else {
        StartupError::failure(format!("Gateway failed to start: {head}\n{detail}"))
    }
}

/// What the shell found when it took a free lock: a record left by an owner that died
/// without cleaning up (`kill -9`, power loss) is worth a log line.
pub fn takeover_note(previous: Option<&LockRecord>, alive: impl Fn(u32) -> bool) -> Option<String> {
    let p = previous?;
    (!alive(p.pid)).then(|| format!("took over the state dir from a gateway that did not exit cleanly (pid {}, port {})", p.pid, p.port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EXIT_CONFIG, EXIT_FAILURE};

    fn rec() -> LockRecord {
        LockRecord { pid: 4242, port: 18789, bind: "loopback".into(), started_at_ms: 1, state_dir: "/s".into() }
    }

    #[test]
    fn the_record_round_trips_and_junk_is_no_record() {
        assert_eq!(LockRecord::parse(rec().to_json().as_bytes()), Some(rec()));
        for junk in [&b""[..], b"{", b"{\"pid\":-1}", b"\xff\xfe", b"[]"] {
            assert_eq!(LockRecord::parse(junk), None);
        }
    }

    #[test]
    fn the_refusal_names_the_owner_and_exits_78_only_under_a_supervisor() {
        let e = refusal(Some(&rec()), "/s", LOCK_WAIT, false);
        assert_eq!(e.exit_code, EXIT_FAILURE);
        assert!(e.message.contains("gateway already running (pid 4242); lock timeout after 5000ms"), "{}", e.message);
        assert!(e.message.contains("port 18789") && e.message.contains("/s"), "{}", e.message);
        let e = refusal(None, "/s", LOCK_WAIT, true);
        assert_eq!(e.exit_code, EXIT_CONFIG);
        assert!(e.message.contains("pid unknown") && e.message.contains("code 78"), "{}", e.message);
    }

    #[test]
    fn a_dead_owner_is_noted_a_live_one_is_not() {
        assert!(takeover_note(Some(&rec()), |_| false).unwrap().contains("pid 4242, port 18789"));
        assert_eq!(takeover_note(Some(&rec()), |_| true), None);
        assert_eq!(takeover_note(None, |_| false), None);
    }
}
