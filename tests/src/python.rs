//! A Python virtualenv with the official `openai` SDK, built once per target dir (pip from PyPI)
//! and shared by the test processes (built in a temp dir, then renamed into place, so two test
//! binaries racing never see a half-built one).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::run_command;

/// The SDK version the suite is pinned to (the one the reference's captures used).
pub const OPENAI_SDK: &str = "3.57.0";

fn python() -> String {
    std::env::var("CLAWGATE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// `<dir>/openai-<version>/bin/python`, creating the venv when missing.
pub fn openai_venv(dir: &Path) -> PathBuf {
    let venv = dir.join(format!("openai-{OPENAI_SDK}"));
    let py = venv.join("bin").join("python");
    if venv.join(".ready").exists() {
        return py;
    }
    std::fs::create_dir_all(dir).expect("create the venv dir");
    let tmp = dir.join(format!("openai-{OPENAI_SDK}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = run_command(Command::new(python()).args(["-m", "venv"]).arg(&tmp), Duration::from_secs(120));
    assert!(out.success(), "python3 -m venv failed (is python3-venv installed?):\n{}\n{}", out.stdout, out.stderr);
    let out = run_command(
        Command::new(tmp.join("bin").join("python"))
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", &format!("openai=={OPENAI_SDK}")])
            .env("PIP_NO_INPUT", "1"),
        Duration::from_secs(600),
    );
    assert!(out.success(), "pip install openai=={OPENAI_SDK} failed:\n{}\n{}", out.stdout, out.stderr);
    std::fs::write(tmp.join(".ready"), OPENAI_SDK).expect("mark the venv ready");
    if std::fs::rename(&tmp, &venv).is_err() {
        // Another process finished first: use its venv, drop ours.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(venv.join(".ready").exists(), "venv at {} is not ready", venv.display());
    py
}
