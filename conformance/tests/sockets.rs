//! The socket runner against the real binaries: `clawgate` (tokio) and `clawgate-lite` (smol),
//! each started on a free loopback port with a private HOME. Both must give the same result on
//! every check, and both must pass every check that is neither slow (the in-memory test covers
//! those) nor a pending feature.
//!
//! The binaries are built with `cargo build -p clawgate-tokio -p clawgate-smol` first (a no-op
//! when they are fresh); `CONFORMANCE_NO_BUILD=1` skips that, `CONFORMANCE_TOKIO_BIN` /
//! `CONFORMANCE_SMOL_BIN` name other binaries.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clawgate_conformance::engine::{Env, Secret};
use clawgate_conformance::model::{CheckResult, Outcome, Tag};
use clawgate_conformance::{PENDING_FEATURES, SocketRunner, checks};

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().expect("deps dir");
    if dir.file_name().is_some_and(|n| n == "deps") { dir.parent().expect("profile dir").to_path_buf() } else { dir.to_path_buf() }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn binaries() -> (PathBuf, PathBuf) {
    let dir = target_dir();
    let tokio = std::env::var_os("CONFORMANCE_TOKIO_BIN").map(PathBuf::from).unwrap_or_else(|| dir.join("clawgate"));
    let smol = std::env::var_os("CONFORMANCE_SMOL_BIN").map(PathBuf::from).unwrap_or_else(|| dir.join("clawgate-lite"));
    if std::env::var_os("CONFORMANCE_NO_BUILD").is_none_or(|v| v.is_empty() || v == "0") {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root()).args(["build", "-p", "clawgate-tokio", "-p", "clawgate-smol", "--bins"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p clawgate-tokio -p clawgate-smol failed: {status}");
    }
    assert!(tokio.is_file(), "{} is missing", tokio.display());
    assert!(smol.is_file(), "{} is missing", smol.display());
    (tokio, smol)
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    getrandom::fill(&mut b).expect("OS randomness");
    let mut s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    s.truncate(n);
    s
}

fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

/// A gateway child process, killed on drop.
struct Gateway {
    child: Child,
    port: u16,
    token: String,
    home: PathBuf,
}

impl Gateway {
    fn start(bin: &Path, label: &str) -> Gateway {
        let mut last = String::new();
        for attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
            let token = random_hex(12);
            let home =
                std::env::temp_dir().join(format!("clawgate-conformance-{label}-{}-{attempt}-{}", std::process::id(), random_hex(6)));
            std::fs::create_dir_all(&home).expect("temp HOME");
            let log = std::fs::File::create(home.join("gateway.log")).expect("log file");
            let mut cmd = Command::new(bin);
            cmd.env_clear();
            for key in ["PATH", "TMPDIR", "LANG"] {
                if let Some(v) = std::env::var_os(key) {
                    cmd.env(key, v);
                }
            }
            cmd.env("HOME", &home).env("OPENCLAW_STATE_DIR", home.join("state"));
            cmd.args(["run", "--port", &port.to_string(), "--token", &token]);
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
            let mut gw = Gateway { child, port, token, home };
            let deadline = Instant::now() + Duration::from_secs(20);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            loop {
                if healthz(addr) {
                    return gw;
                }
                if let Ok(Some(status)) = gw.child.try_wait() {
                    last = format!(
                        "{} exited: {status}: {}",
                        bin.display(),
                        std::fs::read_to_string(gw.home.join("gateway.log")).unwrap_or_default()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    last = format!("{} did not answer /healthz on {addr}", bin.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("gateway did not start: {last}");
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn run(gw: &Gateway) -> Vec<CheckResult> {
    let env =
        Env { secret: Secret::Token(gw.token.clone()), skip_slow: true, deterministic: false, default_timeout: Duration::from_secs(10) };
    SocketRunner::new(&gw.url(), env).run_all(&checks::all())
}

#[test]
fn tokio_and_smol_agree_and_pass() {
    let (tokio_bin, smol_bin) = binaries();
    let tokio_gw = Gateway::start(&tokio_bin, "tokio");
    let smol_gw = Gateway::start(&smol_bin, "smol");
    let (tokio, smol) = std::thread::scope(|s| {
        let t = s.spawn(|| run(&tokio_gw));
        let m = s.spawn(|| run(&smol_gw));
        (t.join().expect("tokio run"), m.join().expect("smol run"))
    });

    let suite = checks::all();
    let mut problems = Vec::new();
    for ((check, t), m) in suite.iter().zip(&tokio).zip(&smol) {
        assert_eq!(check.id, t.id);
        assert_eq!(check.id, m.id);
        if t.outcome.status() != m.outcome.status() {
            problems.push(format!(
                "{}: clawgate {} ({}) but clawgate-lite {} ({})",
                check.id,
                t.outcome.status(),
                t.outcome.reason(),
                m.outcome.status(),
                m.outcome.reason()
            ));
        }
        let must_pass =
            !check.has(Tag::Slow) && !PENDING_FEATURES.contains(&check.id) && check.skip.is_none() && !check.has(Tag::RemotePeer);
        for (name, r) in [("clawgate", t), ("clawgate-lite", m)] {
            match &r.outcome {
                Outcome::Fail(why) if must_pass => problems.push(format!("{}: {name} FAIL: {why}", check.id)),
                Outcome::Skip(why) if must_pass => problems.push(format!("{}: {name} skipped: {why}", check.id)),
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "socket runs:\n  {}", problems.join("\n  "));
}
