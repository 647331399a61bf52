//! The README is executable documentation: every `json5` block is a config that `clawgate config
//! validate` accepts, and every `sh` block runs, in order, as a user would type it — in a sandbox
//! (an empty HOME and a private network namespace, so the README's literal ports are free),
//! with `cargo` standing in for the build (it runs the binaries this suite already built, after
//! checking the package and binary names the README uses) and `clawgate run` returning once the
//! gateway is ready (a new `run` stops the previous gateway, as a user would in its terminal).
//! The fake model server listens on 127.0.0.1:11434, where the README's local model server is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clawgate_tests::openclaw::{ensure_installed, openclaw_ref_dir};
use clawgate_tests::process::base_env;
use clawgate_tests::{TempDir, clawgate_bin, run_command, workspace_root};
use serde_json::Value;

/// A fenced code block of the README.
#[derive(Debug)]
struct Block {
    lang: String,
    text: String,
    /// 1-based line of the opening fence.
    line: usize,
}

fn readme_blocks() -> Vec<Block> {
    let text = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => open = Some(Block { lang: lang.trim().to_string(), text: String::new(), line: i + 1 }),
            (Some(_), Some(rest)) if rest.trim().is_empty() => blocks.push(open.take().expect("open block")),
            (Some(b), _) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README.md has an unterminated code block");
    blocks
}

/// Every block is one the test knows how to check; plain blocks (no language) are prose.
#[test]
fn every_block_has_a_checked_language() {
    let blocks = readme_blocks();
    for b in &blocks {
        assert!(
            matches!(b.lang.as_str(), "sh" | "json5" | ""),
            "README line {}: a ```{} block is neither run nor validated",
            b.line,
            b.lang
        );
    }
    // The two commands at the top: the gateway, then the tests (.ci/run runs exactly these).
    let first = &blocks[0];
    assert_eq!(first.lang, "sh");
    let commands: Vec<&str> = first.text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).collect();
    assert_eq!(commands, ["cargo run --release -p clawgate-tokio --bin clawgate -- run", "cargo test --workspace"]);
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).expect(".ci/run");
    assert!(ci.contains("README.md") && ci.contains("run_cmd") && ci.contains("test_cmd"), ".ci/run runs the README's two commands");
}

/// Environment variable names a config block reads: `${NAME}` and env SecretRef ids.
fn env_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let tail = &rest[i + 2..];
        if let Some(j) = tail.find('}') {
            names.push(tail[..j].to_string());
        }
        rest = &rest[i + 2..];
    }
    let mut rest = text;
    while let Some(i) = rest.find("id: \"") {
        let tail = &rest[i + 5..];
        if let Some(j) = tail.find('"') {
            let id = &tail[..j];
            if !id.is_empty() && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                names.push(id.to_string());
            }
        }
        rest = tail;
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_json5_block_is_a_valid_config() {
    let blocks: Vec<Block> = readme_blocks().into_iter().filter(|b| b.lang == "json5").collect();
    assert!(blocks.len() >= 3, "the README shows its configs as json5 blocks");
    for b in blocks {
        let home = TempDir::new("readme-json5");
        let state = home.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("openclaw.json"), &b.text).unwrap();
        let mut cmd = Command::new(clawgate_bin());
        base_env(&mut cmd, home.path());
        cmd.env("OPENCLAW_STATE_DIR", &state).args(["config", "validate", "--json"]);
        for name in env_names(&b.text) {
            cmd.env(&name, format!("stand-in-{}", clawgate_tests::random_hex(24)));
        }
        let out = run_command(&mut cmd, Duration::from_secs(60));
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        assert!(
            out.success() && v["ok"] == Value::Bool(true) && v["exists"] == Value::Bool(true),
            "README line {}: `clawgate config validate` refuses this config:\n{}\n{}{}",
            b.line,
            b.text,
            out.stdout,
            out.stderr
        );
    }
}

/// The `cargo` stand-in: `cargo run -p P --bin B -- ARGS` runs the built B (P must hold B),
/// `cargo install --path DIR` links the binary DIR's package builds into `~/.cargo/bin`, and
/// `cargo test --workspace` is left to `.ci/run` (which runs it in a fresh clone).
const CARGO_SHIM: &str = r#"#!/bin/bash
set -euo pipefail
shims=$(dirname "$0")
bin_of() { case "$1" in clawgate-tokio|runtime-tokio) echo clawgate ;; clawgate-smol|runtime-smol) echo clawgate-lite ;; *) return 1 ;; esac; }
case "${1:-}" in
  run)
    shift; pkg=""; bin=""
    while [[ $# -gt 0 && $1 != -- ]]; do
      case $1 in -p|--package) pkg=$2; shift 2 ;; --bin) bin=$2; shift 2 ;; --release|--locked) shift ;; *) echo "cargo (README sandbox): unexpected $1" >&2; exit 2 ;; esac
    done
    [[ ${1:-} == -- ]] && shift
    [[ -n $bin && $(bin_of "$pkg") == "$bin" ]] || { echo "cargo (README sandbox): package $pkg has no binary $bin" >&2; exit 2; }
    exec "$shims/bin/$bin" "$@" ;;
  install)
    shift; path=""
    while [[ $# -gt 0 ]]; do
      case $1 in --path) path=$2; shift 2 ;; --locked|--force) shift ;; *) echo "cargo (README sandbox): unexpected $1" >&2; exit 2 ;; esac
    done
    [[ -f $path/Cargo.toml ]] || { echo "cargo (README sandbox): no package at $path" >&2; exit 2; }
    bin=$(bin_of "$path") || { echo "cargo (README sandbox): $path builds no gateway binary" >&2; exit 2; }
    mkdir -p "$HOME/.cargo/bin"
    ln -sf "$shims/bin/$bin" "$HOME/.cargo/bin/$bin"
    echo "  Installed $HOME/.cargo/bin/$bin (README sandbox)" ;;
  test)
    [[ "$*" == "test --workspace" ]] || { echo "cargo (README sandbox): unexpected: cargo $*" >&2; exit 2; }
    echo "(the README's test command: .ci/run runs it in a fresh clone)" ;;
  *) echo "cargo (README sandbox): unsupported: cargo $*" >&2; exit 2 ;;
esac
"#;

/// The gateway binary in the sandbox: `run` starts it in the background (stopping the one a
/// previous `run` started) and returns once it logs `gateway ready`, or fails with its log.
const CLAWGATE_SHIM: &str = r#"#!/bin/bash
real=@REAL@
if [[ ${1:-} == run ]]; then
  pids="$HOME/.readme-gateway-pids"
  if [[ -s $pids ]]; then
    while read -r p; do kill -TERM "$p" 2>/dev/null || true; done <"$pids"
    while read -r p; do for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done; done <"$pids"
    : >"$pids"
  fi
  log=$(mktemp "$HOME/.readme-gateway.XXXXXX")
  "$real" "$@" >"$log" 2>&1 &
  pid=$!
  echo "$pid" >>"$pids"
  echo "$pid" >>"$HOME/.readme-pids"
  for _ in $(seq 1 400); do
    if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; rc=$?; cat "$log" >&2; exit "$rc"; fi
    grep -q "gateway ready" "$log" && { echo "(README sandbox: clawgate $* is running, pid $pid)"; exit 0; }
    sleep 0.05
  done
  echo "clawgate run: not ready after 20 s" >&2; cat "$log" >&2; exit 1
fi
exec "$real" "$@"
"#;

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn every_sh_block_runs_in_order() {
    let blocks: Vec<Block> = readme_blocks().into_iter().filter(|b| b.lang == "sh").collect();
    assert!(blocks.len() >= 5, "the README's commands are sh blocks");
    ensure_installed(); // the README's `openclaw` (tools/openclaw-ref), from the shared install
    let sandbox = TempDir::new("readme-sandbox");
    let (home, shims, logs) = (sandbox.path().join("home"), sandbox.path().join("shims"), sandbox.path().join("logs"));
    for d in [&home, &shims.join("bin"), &logs] {
        std::fs::create_dir_all(d).unwrap();
    }
    write_exec(&shims.join("cargo"), CARGO_SHIM);
    let tokio_bin = clawgate_bin();
    let lite_bin: PathBuf = tokio_bin.with_file_name(format!("clawgate-lite{}", std::env::consts::EXE_SUFFIX));
    write_exec(&shims.join("bin/clawgate"), &CLAWGATE_SHIM.replace("@REAL@", &tokio_bin.display().to_string()));
    write_exec(&shims.join("bin/clawgate-lite"), &CLAWGATE_SHIM.replace("@REAL@", &lite_bin.display().to_string()));

    let mut script = String::from("set -euo pipefail\nip link set lo up\n");
    script.push_str(&format!("cd '{}'\n", workspace_root().display()));
    script.push_str(&format!(
        "'{}' 11434 >'{}/provider.log' 2>&1 &\necho $! >>\"$HOME/.readme-pids\"\n",
        env!("CARGO_BIN_EXE_clawgate-fake-provider"),
        logs.display()
    ));
    script.push_str(
        "cleanup() { [[ -f $HOME/.readme-pids ]] || return 0; while read -r p; do kill -TERM \"$p\" 2>/dev/null || true; done <\"$HOME/.readme-pids\"; sleep 0.3; while read -r p; do kill -KILL \"$p\" 2>/dev/null || true; done <\"$HOME/.readme-pids\"; }\ntrap cleanup EXIT\n",
    );
    script.push_str("for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/11434) 2>/dev/null && break; sleep 0.05; done\n");
    for (i, b) in blocks.iter().enumerate() {
        let file = logs.join(format!("block{i}.sh"));
        std::fs::write(&file, &b.text).unwrap();
        script.push_str(&format!(
            "echo {i} >'{}/current'\necho '::: README line {}'\nsource '{}'\n",
            logs.display(),
            b.line,
            file.display()
        ));
    }
    script.push_str(&format!("echo done >'{}/current'\n", logs.display()));
    std::fs::write(logs.join("session.sh"), &script).unwrap();

    // A private network namespace (root: a plain one; otherwise inside a user namespace).
    #[allow(unsafe_code)]
    // SAFETY: getuid(2) has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let mut cmd = Command::new("unshare");
    cmd.arg("--net");
    if !root {
        cmd.arg("--map-root-user");
    }
    cmd.arg("bash").arg(logs.join("session.sh"));
    base_env(&mut cmd, &home);
    let path = format!(
        "{h}/.cargo/bin:{h}/.local/bin:{s}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        h = home.display(),
        s = shims.display()
    );
    cmd.env("PATH", path).env("LANG", "C.UTF-8").env("OPENCLAW_REF_DIR", openclaw_ref_dir()).env_remove("OPENCLAW_STATE_DIR");
    let out = run_command(&mut cmd, Duration::from_secs(600));
    let current = std::fs::read_to_string(logs.join("current")).unwrap_or_default();
    if !out.success() || current.trim() != "done" {
        let failed = current.trim().parse::<usize>().ok().and_then(|i| blocks.get(i));
        let gateway_logs: String = std::fs::read_dir(&home)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(".readme-gateway."))
                    .map(|e| format!("--- {}\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "a README sh block failed (exit {:?}, timed out {}):\n{}\n--- stdout\n{}\n--- stderr\n{}\n{}",
            out.code,
            out.timed_out,
            failed.map(|b| format!("README line {}:\n{}", b.line, b.text)).unwrap_or_else(|| format!("(block {current:?})")),
            out.stdout,
            out.stderr,
            gateway_logs
        );
    }
    // The API example went through the gateway to the model server and back.
    assert!(out.stdout.contains("Hello from fake upstream"), "the README's curl got the model's answer:\n{}", out.stdout);
}
