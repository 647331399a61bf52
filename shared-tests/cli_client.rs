// A gateway binary's own client subcommands (`call`, `health`, `status`, `probe`, `auth-token`) against a
// real `clawgate run --port N` on loopback, run as a user would in another shell: no flags. The
// port comes from the record the running gateway keeps in the state dir, the token from the
// state dir too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Gateway {
    child: Child,
    home: PathBuf,
    port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn healthz(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

fn start(tag: &str) -> Gateway {
    let home = std::env::temp_dir().join(format!("clawgate-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let port = free_port();
    let child = Command::new(BIN)
        .args(["run", "--port", &port.to_string()])
        .env("HOME", &home)
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("OPENCLAW_GATEWAY_TOKEN")
        .env_remove("OPENCLAW_GATEWAY_PASSWORD")
        .env_remove("OPENCLAW_GATEWAY_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Gateway { child, home, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthz(port) {
        assert!(Instant::now() < deadline, "gateway did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    gw
}

/// Run a client subcommand as the same user in another shell: same HOME, nothing else.
fn run(gw: &Gateway, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("HOME", &gw.home)
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("OPENCLAW_GATEWAY_TOKEN")
        .env_remove("OPENCLAW_GATEWAY_PASSWORD")
        .env_remove("OPENCLAW_GATEWAY_PORT")
        .env_remove("OPENCLAW_GATEWAY_URL");
    cmd.output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn call_health_status_probe_and_auth_token() {
    let gw = start("all");

    let out = run(&gw, &["call", "health", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let health = json(&out);
    assert_eq!(health["ok"], true);
    assert!(health["durationMs"].is_u64());
    assert!(health["eventLoop"]["cpuBreakdown"]["hostCpuCount"].as_u64().unwrap() >= 1);

    let out = run(&gw, &["call", "system-presence", "--json"]);
    assert!(out.status.success());
    let rows = json(&out);
    assert_eq!(rows[0]["mode"], "gateway");
    assert_eq!(rows[0]["version"], env!("CARGO_PKG_VERSION"));

    let out = run(&gw, &["call", "config.get", "--params", r#"{"nope":true}"#]);
    assert_eq!(out.status.code(), Some(1));
    let err = json(&out);
    assert_eq!(err["error"]["message"], "invalid config.get params: at root: unexpected property 'nope'");

    let out = run(&gw, &["health"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK ("));

    let out = run(&gw, &["status", "--require-rpc", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let st = json(&out);
    assert_eq!(st["rpc"]["ok"], true);
    assert_eq!(st["rpc"]["capability"], "read_only");
    assert_eq!(st["rpc"]["version"], env!("CARGO_PKG_VERSION"));

    assert_eq!(st["gateway"]["probeUrl"], format!("ws://127.0.0.1:{}", gw.port), "{st}");

    let out = run(&gw, &["probe", "--json"]);
    assert!(out.status.success());
    let p = json(&out);
    assert_eq!(p["ok"], true);
    assert_eq!(p["auth"]["capability"], "read_only", "{p}");
    assert_eq!(p["connect"]["rpcOk"], true, "{p}");

    // The token the gateway generated is the one `auth-token` prints.
    let out = run(&gw, &["auth-token"]);
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let kept = std::fs::read_to_string(gw.home.join(".openclaw/clawgate/gateway.token")).unwrap();
    assert_eq!(printed, kept.trim());
    assert_eq!(printed.len(), 48);
}

#[test]
fn wrong_token_fails_status_require_rpc() {
    let gw = start("wrong");
    let out = run(&gw, &["status", "--require-rpc", "--json", "--token", "not-the-token"]);
    assert_eq!(out.status.code(), Some(1));
    let st = json(&out);
    assert_eq!(st["rpc"]["ok"], false);
    assert!(st["rpc"]["error"].as_str().unwrap().contains("gateway token mismatch"), "{st}");
}
