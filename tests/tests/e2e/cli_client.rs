//! The gateway binary's own client subcommands (`call`, `health`, `status`, `probe`,
//! `auth-token`) against a real `clawgate run --port N` on loopback, run as a user would in
//! another shell: no flags. The port comes from the record the running gateway keeps in the
//! state dir, the token from the state dir too. (`lite_e2e`: the same against
//! `clawgate-lite`.)

use clawgate_tests::process::run_clawgate;
use clawgate_tests::{CmdOutput, Gateway, GatewayBuilder};
use serde_json::Value;

/// A gateway with no token flag: it generates one and keeps it in its state dir, where the
/// client commands find it.
fn start() -> Gateway {
    GatewayBuilder::new().no_token().start()
}

/// Run a client subcommand as the same user in another shell: same HOME, nothing else.
fn run(gw: &Gateway, args: &[&str]) -> CmdOutput {
    run_clawgate(gw.home_path(), args, &[])
}

fn json(out: &CmdOutput) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

#[test]
fn call_health_status_probe_and_auth_token() {
    let gw = start();

    let out = run(&gw, &["call", "health", "--json"]);
    assert!(out.success(), "{}", out.stderr);
    let health = json(&out);
    assert_eq!(health["ok"], true);
    assert!(health["durationMs"].is_u64());
    assert!(health["eventLoop"]["cpuBreakdown"]["hostCpuCount"].as_u64().unwrap() >= 1);

    let out = run(&gw, &["call", "system-presence", "--json"]);
    assert!(out.success(), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows[0]["mode"], "gateway");
    assert_eq!(rows[0]["version"], env!("CARGO_PKG_VERSION"));

    let out = run(&gw, &["call", "config.get", "--params", r#"{"nope":true}"#]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let err = json(&out);
    assert_eq!(err["error"]["message"], "invalid config.get params: at root: unexpected property 'nope'");

    let out = run(&gw, &["health"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("OK ("), "{out:?}");

    let out = run(&gw, &["status", "--require-rpc", "--json"]);
    assert!(out.success(), "{}", out.stdout);
    let st = json(&out);
    assert_eq!(st["rpc"]["ok"], true);
    assert_eq!(st["rpc"]["capability"], "admin", "a shared token allows every operator scope: {st}");
    assert_eq!(st["rpc"]["version"], env!("CARGO_PKG_VERSION"));

    assert_eq!(st["gateway"]["probeUrl"], format!("ws://127.0.0.1:{}", gw.addr().port()), "{st}");

    let out = run(&gw, &["probe", "--json"]);
    assert!(out.success(), "{out:?}");
    let p = json(&out);
    assert_eq!(p["ok"], true);
    assert_eq!(p["auth"]["capability"], "read_only", "{p}");
    assert_eq!(p["connect"]["rpcOk"], true, "{p}");

    // The token the gateway generated is the one `auth-token` prints.
    let out = run(&gw, &["auth-token"]);
    let printed = out.stdout.trim().to_string();
    let kept = std::fs::read_to_string(gw.home_path().join("state/clawgate/gateway.token")).unwrap();
    assert_eq!(printed, kept.trim());
    assert_eq!(printed.len(), 48);
}

#[test]
fn wrong_token_fails_status_require_rpc() {
    let gw = start();
    let out = run(&gw, &["status", "--require-rpc", "--json", "--token", "not-the-token"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let st = json(&out);
    assert_eq!(st["rpc"]["ok"], false);
    assert!(st["rpc"]["error"].as_str().unwrap().contains("gateway token mismatch"), "{st}");
}
