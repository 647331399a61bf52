//! The official Control UI in a real browser: Debian's Chromium (`/usr/bin/chromium`, never a
//! downloaded browser) driven by `playwright-core` from npm (pinned in `tests/browser/`), run
//! with the reference package's Node. The UI files are the reference package's
//! `dist/control-ui` (installed by `openclaw-ref`), served by clawgate from `gateway.controlUi.root`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::openclaw::{ensure_installed, flock, openclaw_ref_dir, openclaw_ref_script};
use crate::process::{TempDir, base_env, run_command};

/// The browser: Debian's package `chromium` (`.ci/run` installs it). When it is missing and we
/// may (root, or password-less sudo), it is installed from the Debian archive here, once, under
/// a file lock — so `cargo test --workspace` also works on a fresh machine.
pub fn chromium() -> PathBuf {
    let p = std::env::var_os("CLAWGATE_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !p.exists() && std::env::var_os("CLAWGATE_CHROMIUM").is_none() {
        install_chromium();
    }
    assert!(p.exists(), "{} is missing: install Debian's chromium (`apt-get install chromium`; .ci/run does)", p.display());
    p
}

fn install_chromium() {
    crate::process::ensure_debian_package("/usr/bin/chromium", "chromium");
}

/// The official Control UI directory of the installed reference package.
pub fn control_ui_dir() -> PathBuf {
    ensure_installed();
    let d = openclaw_ref_dir().join("node_modules").join("openclaw").join("dist").join("control-ui");
    assert!(d.join("index.html").exists(), "no Control UI at {}", d.display());
    d
}

/// The Node binary the reference CLI uses.
pub fn node() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| {
        ensure_installed();
        let home = TempDir::new("node-path");
        let mut cmd = Command::new(openclaw_ref_script());
        base_env(&mut cmd, home.path());
        cmd.env("OPENCLAW_REF_DIR", openclaw_ref_dir()).arg("--print-node");
        let out = run_command(&mut cmd, Duration::from_secs(60));
        assert!(out.success(), "openclaw-ref --print-node: {out:?}");
        PathBuf::from(out.stdout.trim())
    })
    .clone()
}

fn browser_dir() -> PathBuf {
    crate::workspace_root().join("tests").join("browser")
}

/// `npm ci` in `tests/browser` once. No browser download: playwright-core alone, with
/// `PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD`.
pub fn ensure_playwright() {
    npm_ci_once(&browser_dir(), "playwright-core", &[("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")]);
}

/// `npm ci` in `dir` (its `package-lock.json` pins everything) unless `node_modules/<probe>` is
/// there: once per process, under a file lock (both runtimes' suites may start together).
pub fn npm_ci_once(dir: &std::path::Path, probe: &str, env: &[(&str, &str)]) {
    static DONE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|d| d == dir) {
        return;
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(format!("clawgate-npm-{name}-install.lock")))
        .expect("open the npm install lock");
    flock(&lock, libc::LOCK_EX).expect("lock the npm install");
    if !dir.join("node_modules").join(probe).join("package.json").exists() {
        let mut cmd = Command::new("npm");
        cmd.current_dir(dir).args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run_command(&mut cmd, Duration::from_secs(600));
        assert!(out.success(), "npm ci in {} failed: {out:?}", dir.display());
    }
    let _ = flock(&lock, libc::LOCK_UN);
    done.push(dir.to_path_buf());
}

/// Where a scenario's screenshots go: `target/ui-screenshots/<binary>/<scenario>/` (kept as CI
/// artifacts).
pub fn screenshot_dir(scenario: &str) -> PathBuf {
    let (bin, _) = crate::process::runtime_under_test();
    let d = crate::workspace_root().join("target").join("ui-screenshots").join(bin).join(scenario);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("screenshot dir");
    d
}

/// Run `tests/browser/ui.mjs` with `env`; returns the JSON it printed (stderr is its step log).
pub fn run_ui(env: &[(&str, String)], timeout: Duration) -> (Value, String) {
    ensure_playwright();
    let chromium = chromium();
    let profile = TempDir::new("chromium-profile");
    let home = TempDir::new("browser-home");
    let mut cmd = Command::new(node());
    base_env(&mut cmd, home.path());
    cmd.current_dir(browser_dir()).arg("ui.mjs").env("CHROMIUM", chromium).env("PROFILE", profile.path().join("profile"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_command(&mut cmd, timeout);
    let last = out.stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "ui.mjs printed no result ({e}; code {:?}, timed out {}):\n{}\n--- stderr ---\n{}",
            out.code, out.timed_out, out.stdout, out.stderr
        )
    });
    (v, out.stderr)
}
