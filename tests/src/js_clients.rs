//! OpenAI-compatible JavaScript clients nobody here wrote — the AI SDK's default OpenAI provider
//! and the OpenAI Agents SDK — pinned in `tests/js-clients/` (`npm ci`'d on first use) and run on
//! the reference CLI's Node against a gateway's `/v1` API.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::browser::{node, npm_ci_once};
use crate::process::{TempDir, base_env, run_command};

/// Run every scenario of `tests/js-clients/clients.mjs`: `{scenario: {ok, text | error}}`.
pub fn run_clients(base_url: &str, token: &str) -> Value {
    let dir = crate::workspace_root().join("tests").join("js-clients");
    npm_ci_once(&dir, "@openai/agents", &[]);
    let home = TempDir::new("js-clients-home");
    let mut cmd = Command::new(node());
    base_env(&mut cmd, home.path());
    cmd.current_dir(&dir).arg("clients.mjs").env("BASE_URL", base_url).env("TOKEN", token);
    let out = run_command(&mut cmd, Duration::from_secs(180));
    let last = out.stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "clients.mjs printed no result ({e}; code {:?}, timed out {}):\n{}\n--- stderr ---\n{}",
            out.code, out.timed_out, out.stdout, out.stderr
        )
    })
}
