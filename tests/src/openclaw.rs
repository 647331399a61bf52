//! The real OpenClaw CLI (`tools/openclaw-ref`, installed from the npm registry on first use),
//! run with a throwaway HOME.
//!
//! The install dir is shared by every run: `$CLAWGATE_OPENCLAW_REF_DIR`, else
//! `$OPENCLAW_REF_DIR`, else `<real HOME>/.cache/clawgate/openclaw-ref` (the script's default).
//! The one-time install is guarded by an exclusive file lock next to that dir (tests run in
//! parallel, possibly in several processes).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{CmdOutput, TempDir, base_env, run_command};

/// The `openclaw-ref` wrapper script (override with `CLAWGATE_OPENCLAW_REF`).
pub fn openclaw_ref_script() -> PathBuf {
    match std::env::var_os("CLAWGATE_OPENCLAW_REF") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::workspace_root().join("tools").join("openclaw-ref"),
    }
}

/// The shared install dir, computed from the real HOME (never a child's temp HOME).
pub fn openclaw_ref_dir() -> PathBuf {
    for key in ["CLAWGATE_OPENCLAW_REF_DIR", "OPENCLAW_REF_DIR"] {
        if let Some(d) = std::env::var_os(key).filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root")).join(".cache"));
    cache.join("clawgate").join("openclaw-ref")
}

/// Make sure the reference CLI is installed (once per process, under a cross-process file lock).
pub fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = openclaw_ref_dir();
        let parent = dir.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&parent).expect("create the openclaw-ref parent dir");
        let lock_path = parent.join(format!(".{}.install.lock", dir.file_name().and_then(|n| n.to_str()).unwrap_or("openclaw-ref")));
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).expect("open install lock");
        flock(&lock, libc::LOCK_EX).expect("lock the openclaw-ref install");
        let home = TempDir::new("openclaw-install");
        let mut cmd = Command::new(openclaw_ref_script());
        base_env(&mut cmd, home.path());
        cmd.env("OPENCLAW_REF_DIR", &dir).arg("--print-dir");
        let out = run_command(&mut cmd, Duration::from_secs(900));
        let _ = flock(&lock, libc::LOCK_UN);
        assert!(out.success(), "installing/locating openclaw-ref failed: {out:?}");
    });
}

/// `flock(2)` on an open file (std's `File::lock` needs Rust 1.89; the MSRV is 1.85).
#[allow(unsafe_code)]
pub(crate) fn flock(file: &std::fs::File, op: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock on a file descriptor we own for the duration of the call.
        let r = unsafe { libc::flock(file.as_raw_fd(), op) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Run `openclaw-ref <args>` with a fresh HOME and the shared install dir, killed after `timeout`.
pub fn openclaw(args: &[&str], timeout: Duration) -> CmdOutput {
    openclaw_with_env(args, &[], timeout)
}

/// [`openclaw`] with extra environment (e.g. `OPENCLAW_GATEWAY_PORT`/`_TOKEN` for commands that
/// find the gateway the way an installed CLI does, without `--url`).
pub fn openclaw_with_env(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> CmdOutput {
    ensure_installed();
    let home = TempDir::new("openclaw-home");
    let mut cmd = Command::new(openclaw_ref_script());
    base_env(&mut cmd, home.path());
    cmd.env("OPENCLAW_REF_DIR", openclaw_ref_dir()).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(&mut cmd, timeout)
}
