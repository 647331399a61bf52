//! The first hour of a new user (issue 10): the client subcommands find the gateway the way the
//! reference CLI does and say what they tried when they cannot; `auth-token` prints the token
//! the gateway accepts (or says why there is none); mistakes in the environment and the config
//! are refused naming their source; every refusal names the cause and the fix. Each scenario
//! runs the real binary in two "shells": the gateway, and a client command with the same HOME
//! and state dir and only the environment a user would have set.

use std::path::Path;
use std::sync::Arc;

use clawgate_tests::cfgfile::{log_mark, wait_log_since, write_config};
use clawgate_tests::process::{free_port, run_clawgate};
use clawgate_tests::upstream::{TestCa, TlsProxy};
use clawgate_tests::{CmdOutput, Gateway, GatewayBuilder, TempDir};
use serde_json::Value;

/// `clawgate <args>` as the user in another shell: the gateway's HOME and state dir, plus `env`.
fn cli(home: &Path, args: &[&str], env: &[(&str, &str)]) -> CmdOutput {
    run_clawgate(home, args, env)
}

fn json(out: &CmdOutput) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\nstdout: {}\nstderr: {}", out.stdout, out.stderr))
}

fn ok(out: &CmdOutput, what: &str) {
    assert!(out.success(), "{what}: exit {:?}\nstdout: {}\nstderr: {}", out.code, out.stdout, out.stderr);
}

fn fails(out: &CmdOutput, what: &str, needles: &[&str]) {
    assert_eq!(out.code, Some(1), "{what}: must fail with exit 1\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
    let text = format!("{}{}", out.stdout, out.stderr);
    for n in needles {
        assert!(text.contains(n), "{what}: output should contain {n:?}:\n{text}");
    }
}

fn write_state_config(home: &Path, text: &str) {
    std::fs::create_dir_all(home.join("state")).unwrap();
    std::fs::write(home.join("state/openclaw.json"), text).unwrap();
}

/// (2) `clawgate run --port N` with nothing configured; in another shell, with no flags at all,
/// every client command reaches it (the port from the record the gateway keeps in the state dir,
/// the token kept there). After a clean stop the record is gone and `status` says what it tried.
#[test]
fn commands_find_a_gateway_started_with_a_port_flag() {
    let mut gw = GatewayBuilder::new().no_token().start();
    let home = gw.home_path().to_path_buf();
    let st = cli(&home, &["status", "--require-rpc", "--json"], &[]);
    ok(&st, "status");
    let st = json(&st);
    assert_eq!(st["gateway"]["probeUrl"], format!("ws://127.0.0.1:{}", gw.port), "{st}");
    assert_eq!(st["rpc"]["ok"], true, "{st}");
    ok(&cli(&home, &["health"], &[]), "health");
    let call = cli(&home, &["call", "status", "--json"], &[]);
    ok(&call, "call status");
    assert_eq!(json(&call)["pid"], gw.pid(), "the call reached this gateway");
    ok(&cli(&home, &["probe"], &[]), "probe");
    let list = cli(&home, &["devices", "list", "--json"], &[]);
    ok(&list, "devices list");
    assert!(json(&list)["pending"].is_array());
    let reload = cli(&home, &["secrets", "reload"], &[]);
    ok(&reload, "secrets reload (operator.admin)");
    assert_eq!(json(&reload)["ok"], true);

    gw.stop();
    assert!(!home.join("state/clawgate/gateway.run.json").exists(), "a clean stop removes the record");
    // Nothing left to find: the default port (whatever answers there on this machine).
    let st = json(&cli(&home, &["status", "--json"], &[]));
    assert_eq!(
        (st["gateway"]["probeUrl"].as_str(), st["gateway"]["portSource"].as_str()),
        (Some("ws://127.0.0.1:18789"), Some("the default")),
        "{st}"
    );
    // A record whose pid now belongs to another program (this test) is not followed.
    std::fs::write(home.join("state/clawgate/gateway.run.json"), format!("{{\"pid\":{},\"port\":1}}", std::process::id())).unwrap();
    let st = json(&cli(&home, &["status", "--json"], &[]));
    assert_eq!(st["gateway"]["portSource"].as_str(), Some("the default"), "a reused pid is not a gateway: {st}");
    // And an unreachable target says what was tried and how to point elsewhere.
    let free = free_port().to_string();
    let st = cli(&home, &["status"], &[("OPENCLAW_GATEWAY_PORT", &free)]);
    fails(
        &st,
        "status of a stopped gateway",
        &[
            &format!("Gateway not reachable at ws://127.0.0.1:{free} (ECONNREFUSED)"),
            "port from OPENCLAW_GATEWAY_PORT",
            "--port PORT",
            "OPENCLAW_GATEWAY_URL",
        ],
    );
}

/// (2) `gateway.port` and a `gateway.auth.token` SecretRef from the config: the gateway starts on
/// them, and the client commands use the same two (the ref resolved in the client's own
/// environment). A ref the client cannot resolve fails closed, naming it.
#[test]
fn commands_use_the_configured_port_and_secret_ref_token() {
    let token = format!("cfg-{}", clawgate_tests::random_hex(16));
    let config =
        r#"{gateway: {mode: "local", port: {{PORT}}, auth: {token: {source: "env", provider: "default", id: "CLAWGATE_TEST_GW_TOKEN"}}}}"#;
    let gw = GatewayBuilder::new().no_token().port_from_config().config(config).env("CLAWGATE_TEST_GW_TOKEN", &token).start();
    let home = gw.home_path().to_path_buf();
    let env = [("CLAWGATE_TEST_GW_TOKEN", token.as_str())];
    let st = cli(&home, &["status", "--require-rpc", "--json"], &env);
    ok(&st, "status with the config's port and token");
    assert_eq!(json(&st)["gateway"]["portSource"], format!("gateway.port in {}", home.join("state/openclaw.json").display()));
    ok(&cli(&home, &["health"], &env), "health");
    let printed = cli(&home, &["auth-token"], &env);
    ok(&printed, "auth-token");
    assert_eq!(printed.stdout.trim(), token, "auth-token prints the token the gateway accepts");
    assert!(!home.join("state/clawgate/gateway.token").exists(), "no kept token is made when the config has one");
    let unresolved = cli(&home, &["health"], &[]);
    fails(&unresolved, "unresolvable ref", &["gateway.auth.token", "CLAWGATE_TEST_GW_TOKEN", "does not resolve"]);
}

/// (2) The reference's override rules: `OPENCLAW_GATEWAY_PORT`, `OPENCLAW_GATEWAY_URL` (with
/// environment credentials only), `--url` (explicit credentials only), `--port`; the invalid and
/// conflicting ones refused with their name.
#[test]
fn environment_and_flag_overrides() {
    let gw = Gateway::start();
    let (home, port, token) = (TempDir::new("elsewhere"), gw.port.to_string(), gw.token());
    let h = home.path();
    let url = format!("ws://127.0.0.1:{port}");
    ok(&cli(h, &["health"], &[("OPENCLAW_GATEWAY_PORT", &port), ("OPENCLAW_GATEWAY_TOKEN", &token)]), "env port + env token");
    ok(&cli(h, &["health", "--port", &port, "--token", &token], &[]), "--port + --token");
    fails(
        &cli(h, &["health"], &[("OPENCLAW_GATEWAY_URL", &url)]),
        "env URL without env credentials",
        &["requires explicit credentials", "OPENCLAW_GATEWAY_TOKEN"],
    );
    ok(&cli(h, &["health"], &[("OPENCLAW_GATEWAY_URL", &url), ("OPENCLAW_GATEWAY_TOKEN", &token)]), "env URL + env token");
    fails(
        &cli(h, &["health", "--url", &url], &[("OPENCLAW_GATEWAY_TOKEN", &token)]),
        "--url without --token",
        &["gateway url override requires explicit credentials", "--token or --password"],
    );
    ok(&cli(h, &["health", "--url", &url, "--token", &token], &[]), "--url + --token");
    fails(
        &cli(h, &["health", "--url", &url, "--port", &port, "--token", &token], &[]),
        "--url with --port",
        &["Use either --url or --port, not both."],
    );
    fails(&cli(h, &["health"], &[("OPENCLAW_GATEWAY_PORT", "abc")]), "env port abc", &["Invalid OPENCLAW_GATEWAY_PORT \"abc\""]);
    let wrong = cli(h, &["health", "--port", &port, "--token", "not-the-token"], &[]);
    fails(&wrong, "wrong token", &["gateway token mismatch", "does not accept the credentials from --token", "--token or --password"]);
    // JSON errors carry the reference's error types and the target.
    let free = free_port().to_string();
    let down = cli(h, &["call", "health", "--json", "--port", &free], &[]);
    assert_eq!(down.code, Some(1));
    let v = json(&down);
    assert_eq!(
        (v["error"]["type"].as_str(), v["gateway"]["urlSource"].as_str()),
        (Some("gateway_transport_error"), Some("cli --port")),
        "{v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().starts_with(&format!("Gateway not reachable at ws://127.0.0.1:{free}")), "{v}");
}

/// (2) `gateway.mode: "remote"`: the client goes to `gateway.remote.url` — here `wss://` through a
/// TLS-terminating proxy whose private CA the client trusts via `CLAWGATE_EXTRA_CA_CERTS` — with
/// `gateway.remote.token`; `OPENCLAW_GATEWAY_PORT` does not pull it back to loopback. Remote
/// mode without a URL is refused with the fix.
#[test]
fn remote_mode_over_wss_with_the_remote_token() {
    let gw = Gateway::start();
    let ca = TestCa::new();
    let proxy = TlsProxy::start(&ca, gw.addr());
    let home = TempDir::new("remote-client");
    let h = home.path();
    let ca_path = h.join("ca.pem");
    std::fs::write(&ca_path, &ca.ca_pem).unwrap();
    write_state_config(
        h,
        &format!(r#"{{gateway: {{mode: "remote", remote: {{url: "wss://localhost:{}", token: "{}"}}}}}}"#, proxy.port, gw.token()),
    );
    let env = [("CLAWGATE_EXTRA_CA_CERTS", ca_path.to_str().unwrap()), ("OPENCLAW_GATEWAY_PORT", "1")];
    let st = cli(h, &["status", "--require-rpc", "--json"], &env);
    ok(&st, "status through wss");
    let st = json(&st);
    assert_eq!(
        (st["gateway"]["probeUrl"].as_str(), st["gateway"]["urlSource"].as_str()),
        (Some(format!("wss://localhost:{}", proxy.port).as_str()), Some("config gateway.remote.url"))
    );
    // Without the CA the certificate is refused.
    let untrusted = cli(h, &["health"], &[]);
    fails(&untrusted, "untrusted certificate", &["Gateway not reachable at wss://localhost:", "TLS"]);
    write_state_config(h, r#"{gateway: {mode: "remote"}}"#);
    fails(
        &cli(h, &["health"], &env),
        "remote without url",
        &["gateway.remote.url missing", "Fix: set gateway.remote.url, or set gateway.mode=local."],
    );
}

/// (2)/(6) A password gateway: a client with no credentials is told what it looked at and how to
/// pass one (not "device identity required"); the password from the environment or the config
/// works; `auth-token` says there is no token and where the password comes from.
#[test]
fn password_gateways_explain_missing_credentials() {
    let pw = format!("pw-{}", clawgate_tests::random_hex(12));
    let gw = GatewayBuilder::new().no_token().args(["--auth", "password", "--password", &pw]).start();
    let home = TempDir::new("pw-client");
    let port = gw.port.to_string();
    let none = cli(home.path(), &["health", "--port", &port], &[]);
    fails(&none, "no credentials", &["requires authentication and this command found no credentials", "--password"]);
    ok(&cli(home.path(), &["health", "--port", &port], &[("OPENCLAW_GATEWAY_PASSWORD", &pw)]), "env password");

    let cfg = TempDir::new("pw-config");
    write_state_config(
        cfg.path(),
        &format!(r#"{{gateway: {{mode: "local", port: {port}, auth: {{mode: "password", password: "{pw}"}}}}}}"#),
    );
    ok(&cli(cfg.path(), &["status", "--require-rpc"], &[]), "config password");
    let t = cli(cfg.path(), &["auth-token"], &[]);
    fails(&t, "auth-token in password mode", &["does not use a token", "password auth", "gateway.auth.password in"]);
    assert!(t.stdout.trim().is_empty(), "nothing on stdout: {}", t.stdout);
}

/// (6) `--auth none` on loopback: `health`, `call`, `status` all work (the commands connect as
/// the local backend helper), even with a stale kept token in the state dir.
#[test]
fn auth_none_gateways_answer_every_command() {
    let home = Arc::new(TempDir::new("none"));
    std::fs::create_dir_all(home.path().join("state/clawgate")).unwrap();
    std::fs::write(home.path().join("state/clawgate/gateway.token"), "stale-token-from-an-earlier-run\n").unwrap();
    let gw = GatewayBuilder::new().no_token().home(home.clone()).args(["--auth", "none"]).start();
    let h = gw.home_path().to_path_buf();
    ok(&cli(&h, &["health"], &[]), "health");
    ok(&cli(&h, &["call", "status"], &[]), "call status");
    ok(&cli(&h, &["status", "--require-rpc"], &[]), "status");
    let cfg = TempDir::new("none-config");
    write_state_config(cfg.path(), r#"{gateway: {mode: "local", auth: {mode: "none"}}}"#);
    fails(&cli(cfg.path(), &["auth-token"], &[]), "auth-token with auth none", &["does not use a token", "auth mode none"]);
}

/// (3) `auth-token` prints the token the gateway accepts, wherever it comes from: the config,
/// the environment, or the kept token (created once); the printed token authenticates.
#[test]
fn auth_token_prints_the_accepted_token() {
    let from_config = format!("cfg-{}", clawgate_tests::random_hex(12));
    let gw = GatewayBuilder::new()
        .no_token()
        .port_from_config()
        .config(format!(r#"{{gateway: {{mode: "local", port: {{{{PORT}}}}, auth: {{token: "{from_config}"}}}}}}"#))
        .start();
    let h = gw.home_path().to_path_buf();
    let printed = cli(&h, &["auth-token"], &[]);
    ok(&printed, "auth-token (config)");
    assert_eq!(printed.stdout.trim(), from_config);
    ok(&cli(&h, &["health", "--port", &gw.port.to_string(), "--token", printed.stdout.trim()], &[]), "the printed token works");
    drop(gw);

    let from_env = format!("env-{}", clawgate_tests::random_hex(12));
    let gw = GatewayBuilder::new().no_token().env("OPENCLAW_GATEWAY_TOKEN", &from_env).start();
    let h = gw.home_path().to_path_buf();
    let printed = cli(&h, &["auth-token"], &[("OPENCLAW_GATEWAY_TOKEN", &from_env)]);
    assert_eq!(printed.stdout.trim(), from_env);
    drop(gw);

    let gw = GatewayBuilder::new().no_token().start();
    let h = gw.home_path().to_path_buf();
    let printed = cli(&h, &["auth-token"], &[]);
    let kept = std::fs::read_to_string(h.join("state/clawgate/gateway.token")).unwrap();
    assert_eq!(printed.stdout.trim(), kept.trim());
    ok(&cli(&h, &["health", "--port", &gw.port.to_string(), "--token", printed.stdout.trim()], &[]), "the kept token works");
}

/// (5) Mistakes are refused naming their source: an `OPENCLAW_GATEWAY_PORT` that is not a port
/// (exit 78), a config key the reference's schema does not know (with a "did you mean"), at
/// `config validate` and at start; `host:N` is accepted with a warning that the host is not
/// where it listens; keys the reference knows and clawgate does not use start, logged once.
#[test]
fn mistakes_are_refused_naming_their_source() {
    let home = TempDir::new("mistakes");
    let h = home.path();
    let out = cli(h, &["run"], &[("OPENCLAW_GATEWAY_PORT", "abc")]);
    assert_eq!(out.code, Some(78), "{out:?}");
    assert!(out.stderr.contains("Invalid OPENCLAW_GATEWAY_PORT \"abc\""), "{}", out.stderr);

    write_state_config(h, r#"{gateway: {mode: "local", prot: 18790, auth: {tokn: "x"}}}"#);
    let v = cli(h, &["config", "validate"], &[]);
    assert_eq!(v.code, Some(78), "{v:?}");
    assert!(v.stderr.contains(r#"gateway: Unrecognized key: "prot" (did you mean "port"?)"#), "{}", v.stderr);
    assert!(v.stderr.contains(r#"gateway.auth: Unrecognized key: "tokn" (did you mean "token"?)"#), "{}", v.stderr);
    let run = cli(h, &["run", "--port", &free_port().to_string()], &[]);
    assert_eq!(run.code, Some(78), "a typo stops the start: {run:?}");
    assert!(run.stderr.contains("Unrecognized key: \"prot\""), "{}", run.stderr);

    let port = free_port();
    let gw = GatewayBuilder::new()
        .port(port)
        .port_from_config() // no --port: the port comes from OPENCLAW_GATEWAY_PORT=host:N
        .env("OPENCLAW_GATEWAY_PORT", format!("10.9.9.9:{port}"))
        .config(r#"{gateway: {mode: "local", tailscale: {mode: "off"}}, channels: {telegram: {enabled: false}}}"#)
        .start();
    let log = gw.stderr();
    assert!(log.contains("the host part \"10.9.9.9\" is ignored"), "{log}");
    let unused = "config keys that clawgate does not use (kept as they are, no effect here): gateway.tailscale, channels";
    assert!(log.contains(unused), "{log}");
    let mark = log_mark(&gw);
    write_config(
        &gw.config_path(),
        r#"{gateway: {mode: "local", tailscale: {mode: "off"}}, channels: {telegram: {enabled: false}}, logging: {level: "debug"}}"#,
    );
    let line = wait_log_since(&gw, mark, "config keys that clawgate does not use");
    assert!(line.ends_with(": logging"), "only the newly seen key is reported: {line}");
}

/// (6) Refusals name the cause and the fix.
#[test]
fn refusals_name_the_cause_and_the_fix() {
    let home = TempDir::new("refusals");
    let h = home.path();
    let out = cli(h, &["run", "--bind", "lan", "--auth", "none", "--token", "x-123456789"], &[]);
    assert_eq!(out.code, Some(78), "{out:?}");
    assert!(out.stderr.starts_with("Refusing to bind gateway to lan without auth.\nAuth mode none"), "{}", out.stderr);
    assert!(!out.stderr.contains("pass --token"), "the token was given; the refusal is about auth none: {}", out.stderr);
    let out = cli(h, &["run", "--bind", "custom", "--port", &free_port().to_string()], &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("gateway.customBindHost") && out.stderr.contains("--custom-bind-host"), "{}", out.stderr);
    let help = cli(h, &["run", "--help"], &[]);
    let line = help.stdout.lines().skip_while(|l| !l.contains("--allow-unconfigured")).take(3).collect::<Vec<_>>().join(" ");
    assert!(line.contains("gateway.mode"), "--allow-unconfigured is explained as the way past the gateway.mode refusal: {line}");

    let gw = GatewayBuilder::new().no_token().start();
    let h = gw.home_path().to_path_buf();
    let approve = cli(&h, &["devices", "approve", "no-such-request"], &[]);
    fails(&approve, "approve an unknown id", &["unknown requestId no-such-request", "clawgate devices list"]);
    let reject = cli(&h, &["devices", "reject", "no-such-request"], &[]);
    fails(&reject, "reject an unknown id", &["unknown requestId"]);
    // Port in use (by a gateway of another state dir: one of the same state dir is refused
    // earlier, by the state dir's lock): the fix names the flags.
    let other = TempDir::new("first-hour-busy");
    let busy = cli(other.path(), &["run", "--port", &gw.port.to_string()], &[]);
    assert_eq!(busy.code, Some(1), "{busy:?}");
    assert!(busy.stderr.contains("already listening") && busy.stderr.contains("--port"), "{}", busy.stderr);
}
