//! The config file at runtime, end to end (config-auth-reload §1.3, §4.3, §5, §6, §7, §9 and
//! checklist 25–80): every test starts a real gateway from a real config file in its temp state
//! dir, edits the file like an operator (temp file + rename) and watches the outcome. Waits are
//! polls with generous guards, never timing assertions. Loopback only.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clawgate_core::config::file::{file_hash, parse_json5};
use clawgate_driver::client::{Client, ClientError, Headers, RawEvent};
use clawgate_tests::cfgfile::{
    RELOAD_TIMEOUT, healthz_ok, log_mark, port_refused, wait_log_since, wait_until, write_config, write_config_now,
};
use clawgate_tests::process::{free_port, ipv6_loopback_available, run_clawgate};
use clawgate_tests::ws::{HealthLoop, IO_TIMEOUT, call_health, cli_options, connect_cli, connect_with};
use clawgate_tests::{Gateway, GatewayBuilder, TempDir, clawgate_bin, random_hex, run_command, testdata_dir};
use clawgate_tokio::Tokio;
use serde_json::{Value, json};

const ADMIN: &[&str] = &["operator.admin"];
const READ: &[&str] = &["operator.read"];

// ---- helpers ---------------------------------------------------------------------------------

/// A token-mode config on `port` (`{{PORT}}` for the builder) with extra `gateway` keys.
fn token_config(port: &str, token: &str, extra: &str) -> String {
    format!(
        "{{\n  // written by the config_reload suite\n  gateway: {{\n    mode: \"local\",\n    port: {port},\n    auth: {{mode: \"token\", token: \"{token}\"}},\n    {extra}\n  }},\n}}\n"
    )
}

/// A gateway whose port and token come from its config file only.
fn start_with_config(text: &str) -> Gateway {
    GatewayBuilder::new().no_token().port_from_config().config(text).start()
}

/// Blocking waits inside the async tests (the multi-thread runtime keeps serving the clients).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn connect(url: &str, token: &str, scopes: &[&str]) -> Client<Tokio> {
    let mut c = connect_cli(url, token, scopes).await.unwrap_or_else(|e| panic!("token {token} refused on {url}: {e}"));
    call_health(&mut c).await.unwrap_or_else(|e| panic!("health on a fresh client: {e}"));
    c
}

/// Connect must fail with a refusal (`connect` rejected); returns the error message and details code.
async fn refused(url: &str, token: &str, headers: &Headers) -> (String, Option<String>) {
    match connect_with(url, cli_options(Some(token), READ), headers).await {
        Err(ClientError::Rejected(res)) => {
            let e = res.error.expect("a rejected connect carries an error");
            let code = e.details.as_ref().and_then(|d| d.get("code")).and_then(Value::as_str).map(str::to_string);
            (e.message, code)
        }
        Err(e) => panic!("expected a refusal for {token} on {url}, got {e}"),
        Ok(_) => panic!("token {token} with headers {headers:?} must be refused on {url}"),
    }
}

/// Read frames until the server closes the socket; returns the close code and reason.
async fn wait_close(c: &mut Client<Tokio>) -> (u16, String) {
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.raw.next_frame(left).await {
            Some(RawEvent::Close { code, reason }) => return (code, reason),
            Some(RawEvent::Ended) => panic!("the connection ended without a close frame"),
            None => panic!("no close frame within {RELOAD_TIMEOUT:?}"),
            Some(_) => {}
        }
    }
}

/// Call a method and return the response frame as JSON (`ok`, `payload`, `error`).
async fn rpc(c: &mut Client<Tokio>, method: &str, params: Value) -> Value {
    let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
    json!({"ok": f.ok, "payload": f.payload, "error": f.error.map(|e| serde_json::to_value(e).unwrap())})
}

/// A fresh HOME with `text` as its config file.
fn home_with_config(label: &str, text: &str) -> TempDir {
    let home = TempDir::new(label);
    std::fs::create_dir_all(home.path().join("state")).unwrap();
    std::fs::write(home.path().join("state/openclaw.json"), text).unwrap();
    home
}

/// Write a private (0600) file atomically.
fn write_private(path: &Path, text: &str) {
    let tmp = path.with_extension(format!("tmp-{}", random_hex(6)));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}

/// Is something listening on `0.0.0.0:port` (IPv4 wildcard)? Read from /proc, binds nothing.
fn listening_on_wildcard(port: u16) -> bool {
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else { return false };
    let want = format!("00000000:{port:04X}");
    tcp.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1] == want && f[3] == "0A"
    })
}

// ---- (a) hot edit ----------------------------------------------------------------------------

/// (a) §6.4 hot keys: `gateway.controlUi.allowedOrigins` and `gateway.auth.rateLimit` edits are
/// applied in process (checklist 44, 48, 59) while an already-connected client keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_edit_is_applied_and_connected_clients_stay() {
    let token = "tok-hot-0123456789";
    let gw = start_with_config(&token_config("{{PORT}}", token, "controlUi: {allowedOrigins: []},"));
    let (url, port, path) = (gw.url(), gw.port.to_string(), gw.config_path());
    let pid = gw.pid();
    let bystander = HealthLoop::start(&url, token).await;
    let ops: Headers = vec![("Origin".into(), "https://ops.example".into())];

    // Before: a foreign Origin is refused (§5.3 step 6, checklist 46).
    let (msg, code) = refused(&url, token, &ops).await;
    assert!(msg.starts_with("origin not allowed"), "{msg}");
    assert_eq!(code.as_deref(), Some("CONTROL_UI_ORIGIN_NOT_ALLOWED"));

    // Edit: allow it. The reload logs the detection then the hot apply (checklist 59).
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &token_config(&port, token, "controlUi: {allowedOrigins: [\"https://ops.example\"]},")));
    let line = blocking(|| wait_log_since(&gw, mark, "config hot reload applied"));
    assert!(line.contains("gateway.controlUi.allowedOrigins"), "{line}");
    let detected = blocking(|| wait_log_since(&gw, mark, "config change detected; evaluating reload"));
    assert!(detected.contains("gateway.controlUi.allowedOrigins"), "{detected}");
    let mut from_ops = connect_with(&url, cli_options(Some(token), READ), &ops)
        .await
        .unwrap_or_else(|e| panic!("the newly allowed origin is still refused: {e}\n{}", gw.stderr()));
    call_health(&mut from_ops).await.unwrap();

    // config.get shows the new value.
    let mut admin = connect(&url, token, ADMIN).await;
    let got = rpc(&mut admin, "config.get", json!({})).await;
    assert_eq!(got["payload"]["config"]["gateway"]["controlUi"]["allowedOrigins"], json!(["https://ops.example"]), "{got}");

    // Remove it again: the client from that origin is closed 1008 "origin not allowed" (checklist 48).
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &token_config(&port, token, "controlUi: {allowedOrigins: []},")));
    assert_eq!(wait_close(&mut from_ops).await, (1008, "origin not allowed".to_string()), "checklist 48");
    blocking(|| wait_log_since(&gw, mark, "config hot reload applied"));

    // gateway.auth.rateLimit hot-applies (checklist 44): one failure locks loopback once
    // exemptLoopback is off, and then even the right token is rate-limited (checklist 38).
    let mark = log_mark(&gw);
    blocking(|| {
        write_config(
            &path,
            &token_config(&port, token, "controlUi: {allowedOrigins: []},").replace(
                "token: \"tok-hot",
                "rateLimit: {maxAttempts: 1, windowMs: 60000, lockoutMs: 60000, exemptLoopback: false}, token: \"tok-hot",
            ),
        )
    });
    let line = blocking(|| wait_log_since(&gw, mark, "config hot reload applied"));
    assert!(line.contains("gateway.auth.rateLimit"), "{line}");
    let (_, code) = refused(&url, "wrong-token-xyz", &Headers::new()).await;
    assert_eq!(code.as_deref(), Some("AUTH_TOKEN_MISMATCH"));
    let (msg, code) = refused(&url, token, &Headers::new()).await;
    assert_eq!(code.as_deref(), Some("AUTH_RATE_LIMITED"), "{msg}");

    // The connected clients never noticed (same connection, same process).
    call_health(&mut admin).await.expect("the admin client stays connected");
    let calls = bystander.finish().await;
    assert!(calls >= 2);
    assert_eq!(gw.pid(), pid);
    assert!(gw.stderr().matches("config hot reload applied").count() >= 3);
    assert!(!gw.stderr().contains("restart"), "hot edits must not restart:\n{}", gw.stderr());
}

/// (a2) §6.2: "a newer observation supersedes a reload in flight" — an edit written while the
/// previous change is still being evaluated (here: its exec SecretRef takes a second to answer)
/// is applied after it, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_during_a_reload_in_flight_is_not_lost() {
    let token = "tok-slow-0123456789";
    let home = Arc::new(TempDir::new("reload-in-flight"));
    let script = home.path().join("slow-secret.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncat > /dev/null\nsleep 1\nprintf '%s' '{{\"protocolVersion\":1,\"values\":{{\"gw\":\"{token}\"}}}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = |port: &str, origin: &str| {
        format!(
            "{{gateway: {{mode: \"local\", port: {port}, auth: {{mode: \"token\", token: {{source: \"exec\", provider: \"slow\", id: \"gw\"}}}}, controlUi: {{allowedOrigins: [\"{origin}\"]}}}},\n secrets: {{providers: {{slow: {{source: \"exec\", command: \"{}\"}}}}}}}}\n",
            script.display()
        )
    };
    let gw =
        GatewayBuilder::new().no_token().port_from_config().home(home.clone()).config(config("{{PORT}}", "https://o0.example")).start();
    let (url, port, path) = (gw.url(), gw.port.to_string(), gw.config_path());
    connect(&url, token, READ).await.close().await;
    // Edit A; as soon as its evaluation has started (the secret takes 1 s), edit B.
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &config(&port, "https://o1.example")));
    blocking(|| wait_log_since(&gw, mark, "config change detected; evaluating reload"));
    write_config_now(&path, &config(&port, "https://o2.example"));
    blocking(|| wait_log_since(&gw, mark, "config hot reload applied"));
    // B must land too. A reload takes ~1.5 s here; 10 s is a generous guard.
    let o2: Headers = vec![("Origin".into(), "https://o2.example".into())];
    let deadline = Instant::now() + Duration::from_secs(10);
    while connect_with(&url, cli_options(Some(token), READ), &o2).await.is_err() {
        assert!(Instant::now() < deadline, "the edit written during a reload in flight was never applied:\n{}", gw.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- (b) port edit ---------------------------------------------------------------------------

/// (b) A `gateway.port` edit (restart class, §6.4) moves the listener in process: the new port
/// answers, the old one is released, the same PID serves (README: new address really applied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_edit_moves_the_listener_without_a_new_process() {
    let token = "tok-port-0123456789";
    let mut gw = start_with_config(&token_config("{{PORT}}", token, ""));
    let (old, path, pid) = (gw.port, gw.config_path(), gw.pid());
    let mut before = connect(&gw.url(), token, READ).await;
    let status = rpc(&mut before, "status", json!({})).await;
    assert_eq!(status["payload"]["pid"], json!(pid), "{status}");

    let new = loop {
        let p = free_port();
        if p != old {
            break p;
        }
    };
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &token_config(&new.to_string(), token, "")));
    let line = blocking(|| wait_log_since(&gw, mark, "config change requires gateway restart"));
    assert!(line.contains("gateway.port"), "{line}");
    blocking(|| wait_until(&format!("the new port {new} to answer /healthz"), RELOAD_TIMEOUT, || healthz_ok(new).then_some(())));
    blocking(|| wait_until(&format!("the old port {old} to be released"), RELOAD_TIMEOUT, || port_refused(old).then_some(())));
    assert!(gw.try_exit_status().is_none(), "the process must keep running:\n{}", gw.stderr());
    gw.port = new;

    let mut after = connect(&gw.url(), token, READ).await;
    let status = rpc(&mut after, "status", json!({})).await;
    assert_eq!(status["payload"]["pid"], json!(pid), "the same process serves the new port: {status}");
    if ipv6_loopback_available() {
        let v6 = format!("ws://[::1]:{new}");
        connect(&v6, token, READ).await.close().await;
    }
    after.close().await;
}

// ---- (c) invalid edit --------------------------------------------------------------------------

/// (c) An invalid JSON5 edit is skipped with `config reload skipped (invalid config)` naming the
/// line and column; the old config keeps serving, the file is left alone (§6.2, checklist 61–62).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edit_is_skipped_and_the_old_config_keeps_serving() {
    let token = "tok-invalid-0123456";
    let gw = start_with_config(&token_config("{{PORT}}", token, "controlUi: {allowedOrigins: []},"));
    let (url, port, path) = (gw.url(), gw.port.to_string(), gw.config_path());
    let mut client = connect(&url, token, READ).await;

    // Line 5 starts `auth` without a comma after `port` on line 4.
    let broken = format!(
        "{{\n  gateway: {{\n    mode: \"local\",\n    port: {port}\n    auth: {{mode: \"token\", token: \"other-token-1\"}},\n  }},\n}}\n"
    );
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &broken));
    let line = blocking(|| wait_log_since(&gw, mark, "config reload skipped (invalid config)"));
    assert!(line.contains("line 5 column 5"), "the skip names line and column: {line}");
    assert!(line.contains(&path.display().to_string()), "the skip names the file: {line}");
    call_health(&mut client).await.expect("the connected client keeps answering");
    connect(&url, token, READ).await.close().await;
    let (_, code) = refused(&url, "other-token-1", &Headers::new()).await;
    assert_eq!(code.as_deref(), Some("AUTH_TOKEN_MISMATCH"), "the broken file's token must not be in effect");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken, "§6.2: the file is not rewritten");

    // A schema-invalid edit names the key path (checklist 62).
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &token_config("\"abc\"", token, "")));
    let line = blocking(|| wait_log_since(&gw, mark, "config reload skipped (invalid config)"));
    assert!(line.contains("gateway.port"), "{line}");
    call_health(&mut client).await.expect("still serving");

    // A valid edit afterwards is applied again (the watcher carries on).
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &token_config(&port, token, "controlUi: {allowedOrigins: [\"https://x.example\"]},")));
    blocking(|| wait_log_since(&gw, mark, "config hot reload applied"));
    call_health(&mut client).await.expect("still the same connection");
}

// ---- (d) token rotation ------------------------------------------------------------------------

/// (d) `gateway.auth.token` a→b with mode token is hot (§6.3): shared-token clients are closed
/// 4001 "gateway auth changed" (checklist 67), b works, a is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_rotation_closes_shared_token_clients_with_4001() {
    let (a, b) = ("tok-rot-aaaaaaaa", "tok-rot-bbbbbbbb");
    let gw = start_with_config(&token_config("{{PORT}}", a, ""));
    let (url, port, path, pid) = (gw.url(), gw.port.to_string(), gw.config_path(), gw.pid());
    let mut old_client = connect(&url, a, READ).await;

    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &token_config(&port, b, "")));
    assert_eq!(wait_close(&mut old_client).await, (4001, "gateway auth changed".to_string()), "§6.5 / checklist 67");
    let line = blocking(|| wait_log_since(&gw, mark, "config hot reload applied"));
    assert!(line.contains("gateway.auth.token"), "{line}");
    connect(&url, b, READ).await.close().await;
    let (msg, code) = refused(&url, a, &Headers::new()).await;
    assert_eq!(code.as_deref(), Some("AUTH_TOKEN_MISMATCH"), "{msg}");
    assert_eq!(gw.pid(), pid);
}

/// §4.7 last paragraph: a hot change to who may vouch for clients (`trustedProxies`) bumps the
/// auth-policy generation: connected clients are closed with 4001 `gateway policy changed`, and
/// new connects are served under the new policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_edit_closes_clients_with_gateway_policy_changed() {
    let token = "tok-policy-0123456";
    let gw = start_with_config(&token_config("{{PORT}}", token, ""));
    let (url, port, path, pid) = (gw.url(), gw.port.to_string(), gw.config_path(), gw.pid());
    let mut client = connect(&url, token, READ).await;
    blocking(|| write_config(&path, &token_config(&port, token, r#"trustedProxies: ["10.1.2.3"],"#)));
    assert_eq!(wait_close(&mut client).await, (4001, "gateway policy changed".to_string()), "§4.7 policy generation");
    connect(&url, token, READ).await.close().await;
    assert_eq!(gw.pid(), pid, "hot: same process");
}

/// A write killed before its rename leaves a hidden temp file that may hold plaintext secrets:
/// the next start removes those of dead processes (and nothing else).
#[test]
fn startup_removes_temp_files_left_by_a_killed_write() {
    let token = "tok-temp-0123456789";
    let dead = {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let home = Arc::new(TempDir::new("stale-temp"));
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join(format!(".openclaw.json.{dead}.7.tmp")), "{gateway: {auth: {token: \"leaked\"}}}").unwrap();
    std::fs::write(state.join("unrelated.tmp"), "keep me").unwrap();
    let gw = GatewayBuilder::new().home(home).no_token().port_from_config().config(token_config("{{PORT}}", token, "")).start();
    let dir = gw.config_path().parent().unwrap().to_path_buf();
    assert!(!dir.join(format!(".openclaw.json.{dead}.7.tmp")).exists(), "stale temp file of a dead pid removed");
    assert!(dir.join("unrelated.tmp").exists(), "other files are left alone");
}

// ---- (e) kill -9 during config.patch -----------------------------------------------------------

fn patched_value(original: &Value, n: u64) -> Value {
    let mut v = original.clone();
    v["env"]["vars"]["n"] = json!(n);
    v["env"]["vars"]["bulk"] = json!(format!("{n:08}-").repeat(4000));
    v
}

/// (e) `kill -9` while `config.patch` writes are in flight: the file on disk is always a complete
/// config equal to the original or one of the written versions, never torn, and no temp file is
/// left that looks like the config (README: temp file, fsync, rename).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_config_patch_never_leaves_a_torn_file() {
    let token = "tok-kill-0123456789";
    let original_text = token_config("{{PORT}}", token, "controlUi: {allowedOrigins: []},")
        .replace("gateway: {", "env: {vars: {n: 0, keep: [1, 2, 3]}}, agents: {entries: {main: {name: \"Main\"}}}, wizard: {lastRunMode: \"local\"},\n  gateway: {");
    let mut leftovers = Vec::new();
    for round in 0..4 {
        let mut gw = start_with_config(&original_text);
        let path = gw.config_path();
        let original = parse_json5("cfg", &std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut admin = connect(&gw.url(), token, ADMIN).await;
        let got = rpc(&mut admin, "config.get", json!({})).await;
        let mut hash = got["payload"]["hash"].as_str().expect("config.get.hash").to_string();
        assert_eq!(hash, file_hash(&std::fs::read(&path).unwrap()), "config.get.hash is the file's hash");

        let sent = Arc::new(AtomicU64::new(0));
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (sent2, acked2, stop2) = (sent.clone(), acked.clone(), stop.clone());
        let writer = tokio::spawn(async move {
            let mut n = 0u64;
            while !stop2.load(Ordering::SeqCst) {
                n += 1;
                let raw = json!({"env": {"vars": {"n": n, "bulk": format!("{n:08}-").repeat(4000)}}}).to_string();
                sent2.store(n, Ordering::SeqCst);
                match admin.request("config.patch", Some(json!({"raw": raw, "baseHash": hash})), false, IO_TIMEOUT).await {
                    Ok(f) if f.ok => {
                        hash = f.payload.as_ref().and_then(|p| p["hash"].as_str()).expect("config.patch returns the new hash").to_string();
                        acked2.store(n, Ordering::SeqCst);
                    }
                    Ok(f) => return Err(format!("patch {n} refused: {:?}", f.error)),
                    Err(_) => return Ok(n), // the gateway died
                }
            }
            Ok(n)
        });
        // A random moment, 50–450 ms into the writes.
        let wait = 50 + u64::from_str_radix(&random_hex(4), 16).unwrap() % 400;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        gw.signal(libc::SIGKILL);
        let status = blocking(|| gw.wait_exit(Duration::from_secs(10))).expect("the gateway dies on SIGKILL");
        assert_eq!(status.code(), None, "killed by a signal");
        stop.store(true, Ordering::SeqCst);
        let written = tokio::time::timeout(Duration::from_secs(30), writer).await.expect("writer ends").expect("writer task");
        written.unwrap_or_else(|e| panic!("round {round}: {e}"));
        let (sent, acked) = (sent.load(Ordering::SeqCst), acked.load(Ordering::SeqCst));
        eprintln!("round {round}: killed after {wait} ms; patches sent {sent}, acknowledged {acked}");
        assert!(acked >= 1 || sent <= 1, "round {round}: some patches must have been written (sent {sent}, acked {acked})");

        // The file is complete and is exactly one version: the original or patch n with acked ≤ n ≤ sent.
        let text = std::fs::read_to_string(&path).unwrap();
        let now = parse_json5("cfg", &text).unwrap_or_else(|e| panic!("round {round}: torn config after kill -9: {e}\n{text}"));
        let n = now["env"]["vars"]["n"].as_u64().unwrap_or_else(|| panic!("round {round}: env.vars.n missing"));
        if n == 0 {
            assert_eq!(now, original, "round {round}: the original file");
        } else {
            assert_eq!(now, patched_value(&original, n), "round {round}: version {n} complete");
        }
        assert!(n >= acked && n <= sent, "round {round}: file holds version {n}; acknowledged {acked}, sent {sent}");
        // It loads as a config.
        let home = gw.home.clone();
        let v = run_clawgate(home.path(), &["config", "validate", "--json"], &[]);
        assert_eq!(v.code, Some(0), "round {round}: the surviving file validates: {}{}", v.stdout, v.stderr);

        // Nothing else in the state dir looks like the config.
        for e in std::fs::read_dir(&gw.state_dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "openclaw.json" || name == "clawgate" {
                continue;
            }
            let looks_like_config = !name.starts_with('.') || name.ends_with(".json") || name.ends_with(".json5");
            assert!(!looks_like_config, "round {round}: a file that looks like the config was left behind: {name}");
            leftovers.push(name);
        }
        drop(gw);
    }
    if !leftovers.is_empty() {
        eprintln!("note: hidden temp files left by killed writes (not config-like): {leftovers:?}");
    }
}

/// (e2) `config.patch` calls racing with the same `baseHash`: exactly one wins, the others are
/// refused as stale, and the file is the original plus the winner's patch (never torn or mixed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_config_patches_with_one_base_hash_have_one_winner() {
    let token = "tok-race-0123456789";
    let gw = start_with_config(&token_config("{{PORT}}", token, "").replace("gateway: {", "env: {vars: {w: -1}},\n  gateway: {"));
    let path = gw.config_path();
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(connect(&gw.url(), token, ADMIN).await);
    }
    for round in 0..5 {
        let before = std::fs::read(&path).unwrap();
        let base = file_hash(&before);
        let original = parse_json5("cfg", &String::from_utf8_lossy(&before)).unwrap();
        let mut tasks = Vec::new();
        for (i, mut c) in clients.drain(..).enumerate() {
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                // `round` makes every patch change the file: a patch that rewrote identical bytes
                // would leave the hash as it was, and a second writer with it would rightly win.
                let raw = json!({"env": {"vars": {"w": i, "round": round, "bulk": format!("{i}").repeat(200_000)}}}).to_string();
                let f = c
                    .request("config.patch", Some(json!({"raw": raw, "baseHash": base})), false, IO_TIMEOUT)
                    .await
                    .expect("patch answered");
                (c, i, f.ok)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (c, i, ok) = t.await.unwrap();
            clients.push(c);
            if ok {
                winners.push(i);
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let now = parse_json5("cfg", &text).unwrap_or_else(|e| panic!("round {round}: torn config after racing patches: {e}"));
        let on_disk = now["env"]["vars"]["w"].as_i64();
        let bulk = now["env"]["vars"]["bulk"].as_str().unwrap_or_default();
        let bulk_of = bulk.chars().next().and_then(|c| c.to_digit(10)).map(i64::from);
        let first = bulk.chars().next().unwrap_or('?');
        let consistent = bulk.len() == 200_000 && bulk.chars().all(|c| c == first);
        assert!(
            consistent && bulk_of == on_disk,
            "round {round}: a mixed file: env.vars.w {on_disk:?}, bulk of {bulk_of:?} ({} bytes, consistent {consistent})",
            bulk.len()
        );
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one patch with baseHash {base} may win, got {winners:?} (on disk: {on_disk:?})"
        );
        let w = winners[0];
        assert_eq!(on_disk, Some(w as i64), "round {round}: the acknowledged patch (client {w}) must be the one on disk");
        let mut want = original.clone();
        want["env"]["vars"]["w"] = json!(w);
        want["env"]["vars"]["round"] = json!(round);
        want["env"]["vars"]["bulk"] = json!(format!("{w}").repeat(200_000));
        assert!(now == want, "round {round}: the file is the original plus the winner's patch");
    }
}

// ---- (f) secrets.reload ------------------------------------------------------------------------

fn file_ref_config(secret_path: &Path) -> String {
    format!(
        "{{\n  gateway: {{mode: \"local\", port: {{{{PORT}}}}, auth: {{mode: \"token\", token: {{source: \"file\", provider: \"gwfile\", id: \"value\"}}}}}},\n  secrets: {{providers: {{gwfile: {{source: \"file\", path: \"{}\", mode: \"singleValue\"}}}}}},\n}}\n",
        secret_path.display()
    )
}

fn start_with_file_ref(label: &str, first: &str) -> (Gateway, std::path::PathBuf) {
    let home = Arc::new(TempDir::new(label));
    let secret = home.path().join("gateway-token.secret");
    write_private(&secret, &format!("{first}\n"));
    let gw = GatewayBuilder::new().no_token().port_from_config().home(home).config(file_ref_config(&secret)).start();
    (gw, secret)
}

/// (f1) `clawgate secrets reload --token <old>` after rotating a file SecretRef: the new token
/// works, the old one is refused, and the command reports success `{"ok":true,…}` (§7.3,
/// checklist 79 — the reference prints `{"ok":true,"warningCount":0}`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reload_cli_rotates_a_file_secret_ref_and_reports_ok() {
    let (one, two) = ("tok-file-one-1234", "tok-file-two-5678");
    let (gw, secret) = start_with_file_ref("secrets-cli", one);
    connect(&gw.url(), one, READ).await.close().await;
    write_private(&secret, &format!("{two}\n"));
    let out = run_clawgate(gw.home.path(), &["secrets", "reload", "--url", &gw.url(), "--token", one, "--json"], &[]);
    connect(&gw.url(), two, READ).await.close().await;
    let (_, code) = refused(&gw.url(), one, &Headers::new()).await;
    assert_eq!(code.as_deref(), Some("AUTH_TOKEN_MISMATCH"), "the old token is refused after the rotation");
    assert_eq!(out.code, Some(0), "§7.3: a successful rotation reports success; stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("JSON output ({e}): {}", out.stdout));
    assert_eq!(v["ok"], true, "{v}");
}

/// (f2) A broken ref (0644 file, then a deleted file) makes `secrets.reload` fail with an error
/// naming the problem; the previous token keeps working (§7.1 live, §7.3, checklist 80).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reload_with_a_broken_ref_fails_and_keeps_the_previous_token() {
    let (one, two) = ("tok-file-one-abcd", "tok-file-two-efgh");
    let (gw, secret) = start_with_file_ref("secrets-broken", one);
    let url = gw.url();
    // Rotate first (its answer is (f1)'s business): the new token is in effect.
    write_private(&secret, &format!("{two}\n"));
    let _ = run_clawgate(gw.home.path(), &["secrets", "reload", "--url", &url, "--token", one, "--json"], &[]);
    connect(&url, two, READ).await.close().await;

    // 0644: refused with insecure-permissions; the current token stays.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_private(&secret, "tok-never-used-1\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mark = log_mark(&gw);
    let out = run_clawgate(gw.home.path(), &["secrets", "reload", "--url", &url, "--token", two, "--json"], &[]);
    assert_eq!(out.code, Some(1), "secrets reload must fail: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("secrets.reload failed") && out.stdout.contains("insecure-permissions"), "§7.1: {}", out.stdout);
    assert!(out.stdout.contains("permissions are too open"), "{}", out.stdout);
    blocking(|| wait_log_since(&gw, mark, "secrets.reload failed"));
    let mut admin = connect(&url, two, ADMIN).await;
    let res = rpc(&mut admin, "secrets.reload", json!({})).await;
    assert_eq!(res["ok"], false, "{res}");
    assert!(res["error"]["message"].as_str().unwrap_or_default().contains("insecure-permissions"), "{res}");
    call_health(&mut admin).await.expect("a failed reload does not disturb clients");
    connect(&url, two, READ).await.close().await;
    let (_, code) = refused(&url, "tok-never-used-1", &Headers::new()).await;
    assert_eq!(code.as_deref(), Some("AUTH_TOKEN_MISMATCH"));

    // Deleted file: refused naming the file; the current token stays.
    std::fs::remove_file(&secret).unwrap();
    let res = rpc(&mut admin, "secrets.reload", json!({})).await;
    assert_eq!(res["ok"], false, "{res}");
    let msg = res["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("secrets.reload failed") && msg.contains(&secret.display().to_string()), "{res}");
    connect(&url, two, READ).await.close().await;
    call_health(&mut admin).await.unwrap();
}

// ---- (g) reference config round trip ------------------------------------------------------------

/// (g) A reference-style config (the reference's own rewritten file + `gateway.mode: local`,
/// agents, models, plugins, unknown roots) starts clawgate; `config.patch` with the `config.get`
/// baseHash changes one key and every other key survives; a stale baseHash writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_config_round_trips_through_config_patch() {
    let token = "tok-ref-0123456789";
    let vector = std::fs::read_to_string(testdata_dir().join("vectors/http/config-A-as-rewritten-by-gateway.json"))
        .expect("reference config vector");
    let mut cfg: Value = serde_json::from_str(&vector).unwrap();
    cfg["gateway"]["mode"] = json!("local");
    cfg["gateway"]["port"] = json!("__PORT__");
    cfg["gateway"]["auth"] = json!({"mode": "token", "token": token});
    // Keys the reference knows and clawgate does not read (kept as they are).
    cfg["gateway"]["tailscale"] = json!({"mode": "off", "preserveFunnel": false});
    cfg["env"] = json!({"vars": {"nested": {"list": ["x", 2, true, null]}, "n": 1.5}});
    cfg["wizard"] = json!({"lastRunAt": "2026-09-06T00:00:00.000Z", "lastRunMode": "local"});
    let text = serde_json::to_string_pretty(&cfg).unwrap().replace("\"__PORT__\"", "{{PORT}}");
    let gw = start_with_config(&text);
    let path = gw.config_path();
    let original = parse_json5("cfg", &std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut admin = connect(&gw.url(), token, ADMIN).await;

    let got = rpc(&mut admin, "config.get", json!({})).await;
    let hash = got["payload"]["hash"].as_str().expect("hash").to_string();
    assert_eq!(hash, file_hash(&std::fs::read(&path).unwrap()));
    assert_eq!(got["payload"]["config"]["env"], original["env"], "config.get shows keys clawgate does not read");
    assert_eq!(got["payload"]["config"]["gateway"]["tailscale"], original["gateway"]["tailscale"]);
    assert_eq!(got["payload"]["config"]["gateway"]["auth"]["token"], "__OPENCLAW_REDACTED__", "config.get redacts the token");

    // A key of ours that the file already has (hot, §6.4 gateway.http.endpoints).
    let patch = json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": false}}}}});
    let res = rpc(&mut admin, "config.patch", json!({"raw": patch.to_string(), "baseHash": hash})).await;
    assert_eq!(res["ok"], true, "{res}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(res["payload"]["hash"].as_str(), Some(file_hash(&bytes).as_str()), "the returned hash is the new file's");
    let now = parse_json5("cfg", &String::from_utf8_lossy(&bytes)).unwrap();
    let mut want = original.clone();
    want["gateway"]["http"]["endpoints"]["chatCompletions"]["enabled"] = json!(false);
    assert_eq!(now, want, "every key but the patched one survives in meaning");

    // Stale and missing baseHash: refused, nothing written.
    for params in [
        json!({"raw": json!({"gateway": {"http": {"endpoints": {"responses": {"enabled": false}}}}}).to_string(), "baseHash": hash}),
        json!({"raw": json!({"gateway": {"http": {"endpoints": {"responses": {"enabled": false}}}}}).to_string()}),
    ] {
        let res = rpc(&mut admin, "config.patch", params.clone()).await;
        assert_eq!(res["ok"], false, "{params}: {res}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "a refused patch writes nothing ({params})");
    }
    // config.get reads the file: the new hash at once; the hot reload then lands in the
    // running config.
    let new_hash = file_hash(&bytes);
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        let got = rpc(&mut admin, "config.get", json!({})).await;
        assert_eq!(got["payload"]["hash"].as_str(), Some(new_hash.as_str()), "config.get hashes the file on disk");
        if got["payload"]["config"]["gateway"]["http"]["endpoints"]["chatCompletions"]["enabled"] == json!(false) {
            break;
        }
        assert!(Instant::now() < deadline, "config.get never showed the patched file:\n{}", gw.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call_health(&mut admin).await.expect("the patch was hot: the client stays");
}

// ---- (h) startup failures ----------------------------------------------------------------------

/// (h) Startup failures and their exit codes (§4.3, §8.2, table M; checklist 28–30, 33).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_failures_exit_with_the_right_code_and_message() {
    let port = free_port().to_string();
    let run = |label: &str, text: &str, extra: &[&str], env: &[(&str, &str)]| {
        let home = home_with_config(label, text);
        let mut args = vec!["run", "--port", &port];
        args.extend_from_slice(extra);
        let out = run_clawgate(home.path(), &args, env);
        (out, home.path().join("state/openclaw.json").display().to_string())
    };
    // Schema-invalid: 78, names the file and the key path.
    let (out, path) =
        run("bad-type", r#"{gateway: {mode: "local", auth: {mode: "token", token: "abcdef123456"}, bind: "sideways"}}"#, &[], &[]);
    assert_eq!(out.code, Some(78), "invalid config exits 78: {}", out.stderr);
    assert!(out.stderr.contains(&path) && out.stderr.contains("gateway.bind"), "names file and key path:\n{}", out.stderr);
    // JSON5 syntax error: 78, names the file, line and column.
    let (out, path) = run("bad-syntax", "{\n  gateway: {mode: \"local\"\n  oops\n}\n", &[], &[]);
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(out.stderr.contains(&path) && out.stderr.contains("line 3 column 3"), "{}", out.stderr);
    // Unresolvable `${MISSING}` token: exit 1, "required secrets are unavailable" (checklist 28).
    let (out, _) = run("missing-secret", r#"{gateway: {mode: "local", auth: {mode: "token", token: "${MISSING_TOKEN_VAR_X}"}}}"#, &[], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("Startup failed: required secrets are unavailable."), "{}", out.stderr);
    // …and with the variable set it starts (same file).
    let ok = GatewayBuilder::new()
        .no_token()
        .config(r#"{gateway: {mode: "local", auth: {mode: "token", token: "${MISSING_TOKEN_VAR_X}"}}}"#)
        .env("MISSING_TOKEN_VAR_X", "now-it-is-set-123")
        .start();
    connect(&ok.url(), "now-it-is-set-123", READ).await.close().await;
    drop(ok);
    // mode remote: 78 (checklist 29) unless --allow-unconfigured.
    let remote = r#"{gateway: {mode: "remote", auth: {mode: "token", token: "abcdef123456"}}}"#;
    let (out, _) = run("mode-remote", remote, &[], &[]);
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(
        out.stderr.contains("Gateway start blocked: set gateway.mode=local (current: remote) or pass --allow-unconfigured."),
        "{}",
        out.stderr
    );
    let gw = GatewayBuilder::new().no_token().config(remote).arg("--allow-unconfigured").start();
    connect(&gw.url(), "abcdef123456", READ).await.close().await;
    drop(gw);
    // mode missing: 78 (checklist 30).
    let (out, _) = run("mode-missing", r#"{gateway: {auth: {token: "abcdef123456"}}}"#, &[], &[]);
    assert_eq!(out.code, Some(78), "{}", out.stderr);
    assert!(out.stderr.contains("Gateway start blocked: existing config is missing gateway.mode."), "{}", out.stderr);
    // Both token and password, no mode: exit 1 (checklist 25).
    let (out, _) = run("both", r#"{gateway: {mode: "local", auth: {token: "t-abcdef1", password: "p-abcdef1"}}}"#, &[], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("gateway.auth.token and gateway.auth.password are both configured"), "{}", out.stderr);
}

// ---- (i) config validate / install ---------------------------------------------------------------

/// (i) `clawgate config validate --json` (exit 0 / 78 / 1 with a JSON verdict) and
/// `clawgate install --print` (the supervisor policy of §9).
#[test]
fn config_validate_and_install_print() {
    let validate = |label: &str, text: Option<&str>, env: &[(&str, &str)]| {
        let home = match text {
            Some(t) => home_with_config(label, t),
            None => TempDir::new(label),
        };
        let out = run_clawgate(home.path(), &["config", "validate", "--json"], env);
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{label}: JSON on stdout ({e}): {out:?}"));
        (out.code, v, home)
    };
    let (code, v, home) = validate(
        "valid-good",
        Some(r#"{gateway: {mode: "local", port: 28999, bind: "loopback", auth: {mode: "token", token: "abcdef123456"}}}"#),
        &[],
    );
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["exists"], true);
    assert_eq!((v["port"].clone(), v["bind"].clone(), v["authMode"].clone()), (json!(28999), json!("loopback"), json!("token")), "{v}");
    assert_eq!(v["path"], json!(home.path().join("state/openclaw.json").display().to_string()));
    assert!(v["warnings"].is_array());

    let (code, v, _) = validate("valid-bad", Some(r#"{gateway: {mode: "local", port: "abc"}}"#), &[]);
    assert_eq!(code, Some(78), "{v}");
    assert_eq!((v["ok"].clone(), v["exitCode"].clone()), (json!(false), json!(78)), "{v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("gateway.port"), "{v}");

    let (code, v, _) = validate("valid-syntax", Some("{gateway: "), &[]);
    assert_eq!((code, v["exitCode"].clone()), (Some(78), json!(78)), "{v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("line 1 column"), "{v}");

    let (code, v, _) = validate("valid-secret", Some(r#"{gateway: {mode: "local", auth: {token: "${NOT_SET_ANYWHERE_X}"}}}"#), &[]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!((v["ok"].clone(), v["exitCode"].clone()), (json!(false), json!(1)), "{v}");
    assert!(v["error"].as_str().unwrap_or_default().contains("required secrets are unavailable"), "{v}");

    let (code, v, _) = validate("valid-remote", Some(r#"{gateway: {mode: "remote"}}"#), &[]);
    assert_eq!((code, v["exitCode"].clone()), (Some(78), json!(78)), "{v}");

    let (code, v, _) = validate("valid-lan", Some(r#"{gateway: {mode: "local", bind: "lan"}}"#), &[]);
    assert_eq!(code, Some(78), "lan without a secret: {v}");
    assert!(v["error"].as_str().unwrap_or_default().starts_with("Refusing to bind gateway to lan without auth."), "{v}");

    let (code, v, home) = validate("valid-none", None, &[]);
    assert_eq!(code, Some(0), "no config file: defaults apply: {v}");
    assert_eq!((v["ok"].clone(), v["exists"].clone()), (json!(true), json!(false)), "{v}");
    // Validation has no side effects: token auth without a token would create the kept token on
    // a real start, but `config validate` must not.
    assert!(!home.path().join("state/clawgate/gateway.token").exists(), "config validate created the kept token");

    // install --print: RestartPreventExitStatus=78 and ExecStart=<binary> run --supervised --port N.
    let home = TempDir::new("install");
    let out = run_clawgate(home.path(), &["install", "--print"], &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let exe = std::fs::canonicalize(clawgate_bin()).unwrap().display().to_string();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"RestartPreventExitStatus=78"), "{}", out.stdout);
    assert!(lines.contains(&"Restart=always"), "{}", out.stdout);
    // Only what works in a user unit: a user manager cannot order against network-online.target.
    assert!(!out.stdout.contains("network-online"), "{}", out.stdout);
    // systemd itself finds nothing to complain about (unknown keys, bad values, a missing binary).
    let unit_dir = TempDir::new("unit");
    let unit = unit_dir.path().join("clawgate.service");
    std::fs::write(&unit, &out.stdout).unwrap();
    let runtime_dir = unit_dir.path().join("xdg-runtime");
    std::fs::create_dir_all(&runtime_dir).unwrap();
    let mut verify = std::process::Command::new("systemd-analyze");
    verify.args(["--user", "verify"]).arg(&unit).env("XDG_RUNTIME_DIR", &runtime_dir);
    let v = run_command(&mut verify, std::time::Duration::from_secs(60));
    assert!(v.success() && v.stderr.trim().is_empty(), "systemd-analyze --user verify: {v:?}\n{}", out.stdout);
    assert!(
        lines.iter().any(|l| *l == format!("ExecStart={exe} run --supervised --port 18789")),
        "ExecStart={exe} run --supervised --port 18789 in:\n{}",
        out.stdout
    );
    assert!(!home.path().join(".config/systemd/user/clawgate.service").exists(), "--print writes nothing");
}

// ---- (j) supervisor ------------------------------------------------------------------------------

/// (j1) Under a supervisor (systemd's `INVOCATION_ID`, or `--supervised`) a restart-class edit
/// restarts in process too, as it does unsupervised: exiting for systemd to restart us would
/// cost the unit's `RestartSec` of downtime. The same PID serves the new port; a client of the
/// old generation is closed with `1012` and reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervised_restart_class_edit_restarts_in_process() {
    let token = "tok-sup-0123456789";
    for how in ["INVOCATION_ID", "--supervised"] {
        let mut b =
            GatewayBuilder::new().no_token().port_from_config().config(token_config("{{PORT}}", token, "controlUi: {allowedOrigins: []},"));
        b = if how == "--supervised" { b.arg("--supervised") } else { b.env("INVOCATION_ID", "test") };
        let mut gw = b.start();
        let (port, path, pid) = (gw.port.to_string(), gw.config_path(), gw.pid());
        let mut client = connect(&gw.url(), token, READ).await;
        // A hot edit is applied in place.
        let mark = log_mark(&gw);
        blocking(|| write_config(&path, &token_config(&port, token, "controlUi: {allowedOrigins: [\"https://x.example\"]},")));
        blocking(|| wait_log_since(&gw, mark, "config hot reload applied"));
        call_health(&mut client).await.unwrap();
        // A port edit restarts in process.
        let new = loop {
            let p = free_port();
            if p != gw.port {
                break p;
            }
        };
        let mark = log_mark(&gw);
        blocking(|| write_config(&path, &token_config(&new.to_string(), token, "controlUi: {allowedOrigins: [\"https://x.example\"]},")));
        blocking(|| wait_log_since(&gw, mark, "gateway restarted in process"));
        blocking(|| wait_until(&format!("{how}: the new port {new} to answer /healthz"), RELOAD_TIMEOUT, || healthz_ok(new).then_some(())));
        assert!(gw.try_exit_status().is_none(), "{how}: a restart-kind edit must not exit under a supervisor:\n{}", gw.stderr());
        let (code, _) = wait_close(&mut client).await;
        assert_eq!(code, 1012, "{how}: the old generation's socket is closed as a service restart");
        gw.port = new;
        let mut after = connect(&gw.url(), token, READ).await;
        let status = rpc(&mut after, "status", json!({})).await;
        assert_eq!(status["payload"]["pid"], json!(pid), "{how}: the same process serves the new port: {status}");
        after.close().await;
    }
}

/// (j2) Unsupervised, a restart into an insecure config (`bind: lan` + `auth.mode: none`, §4.3
/// step 4) is refused and the gateway keeps serving on its current address with its current auth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_restart_is_refused_and_the_gateway_keeps_serving() {
    let token = "tok-insecure-012345";
    let gw = start_with_config(&token_config("{{PORT}}", token, ""));
    let (url, port, path, pid) = (gw.url(), gw.port, gw.config_path(), gw.pid());
    let bystander = HealthLoop::start(&url, token).await;
    let mark = log_mark(&gw);
    blocking(|| write_config(&path, &format!("{{gateway: {{mode: \"local\", port: {port}, bind: \"lan\", auth: {{mode: \"none\"}}}}}}\n")));
    let line = blocking(|| wait_log_since(&gw, mark, "restart refused"));
    assert!(line.contains("Refusing to bind gateway to lan without auth"), "{line}");
    assert!(!listening_on_wildcard(port), "nothing may listen on 0.0.0.0:{port}");
    assert!(healthz_ok(port), "still serving on 127.0.0.1:{port}");
    connect(&url, token, READ).await.close().await;
    let (_, code) = refused(&url, "not-the-token-1", &Headers::new()).await;
    assert_eq!(code.as_deref(), Some("AUTH_TOKEN_MISMATCH"), "the old auth stays in force");
    bystander.finish().await;
    assert_eq!(gw.pid(), pid);
    let mut gw = gw;
    assert!(gw.try_exit_status().is_none());
}

/// The e2e set names its binary like the other suites (`lite_*` → clawgate-lite).
#[test]
fn suite_targets_the_runtime_its_name_says() {
    let (name, _) = clawgate_tests::process::runtime_under_test();
    assert!(clawgate_bin().file_name().unwrap().to_string_lossy().starts_with(name));
}
