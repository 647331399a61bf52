//! The operator subcommands (`call`, `health`, `status`, `probe`, `auth-token`), written once for
//! both binaries. Each returns the process exit code.

use std::time::{Duration, Instant};

use clawgate_core::cli::{CallArgs, ClientArgs, StatusArgs};
use clawgate_core::client::ClientOptions;
use clawgate_core::config;
use clawgate_core::scopes;
use serde_json::{Value, json};

use crate::client::{Client, ClientError};
use crate::rt::Runtime;
use crate::state;

fn env_nonblank(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Default URL: the locally resolved port on loopback.
fn default_url() -> String {
    let port =
        config::resolve_port(None, env_nonblank("OPENCLAW_GATEWAY_PORT").as_deref(), None, env_nonblank("OPENCLAW_PROFILE").as_deref())
            .unwrap_or(config::DEFAULT_PORT);
    format!("ws://127.0.0.1:{port}")
}

/// Credentials: flags, then environment, then the token kept in the state dir.
fn credentials(a: &ClientArgs) -> (Option<String>, Option<String>) {
    let password = a.password.clone().or_else(|| env_nonblank("OPENCLAW_GATEWAY_PASSWORD"));
    let token = a
        .token
        .clone()
        .or_else(|| env_nonblank("OPENCLAW_GATEWAY_TOKEN"))
        .or_else(|| if password.is_some() { None } else { state::read_token(&state::state_dir()).ok().flatten() });
    (token, password)
}

fn options(a: &ClientArgs, mut o: ClientOptions) -> ClientOptions {
    let (token, password) = credentials(a);
    o.token = token;
    o.password = password;
    o.connect_timeout = Duration::from_millis(a.timeout.max(1));
    o
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

fn error_json(e: &ClientError) -> Value {
    match e {
        ClientError::Rejected(res) => {
            let err = res.error.clone().map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).unwrap_or(Value::Null);
            json!({"ok": false, "error": {"type": "gateway_connect_error", "details": err}})
        }
        other => json!({"ok": false, "error": {"type": "gateway_unreachable", "message": other.to_string()}}),
    }
}

/// `call <method>`: connect with the method's least-privilege scope and print the result.
pub async fn call<R: Runtime>(rt: R, a: CallArgs) -> i32 {
    let params = match a.params.as_deref().map(serde_json::from_str::<Value>).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Invalid --params JSON: {e}");
            return 1;
        }
    };
    let scope = if a.method == "health" { scopes::READ.to_string() } else { scopes::required_scope(&a.method, params.as_ref()) };
    let url = a.client.url.clone().unwrap_or_else(default_url);
    let opts = options(&a.client, ClientOptions::cli(&[scope.as_str()]));
    let timeout = Duration::from_millis(a.client.timeout.max(1));
    let mut client = match Client::connect(&rt, &url, opts, &Vec::new()).await {
        Ok(c) => c,
        Err(e) => {
            if a.client.json {
                print_json(&error_json(&e))
            } else {
                eprintln!("gateway connect failed: {e}")
            }
            return 1;
        }
    };
    let res = client.request(&a.method, params.or(Some(json!({}))), a.expect_final, timeout).await;
    client.close().await;
    match res {
        Ok(frame) if frame.ok => {
            print_json(&frame.payload.unwrap_or(Value::Null));
            0
        }
        Ok(frame) => {
            let err = frame.error.map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).unwrap_or(Value::Null);
            let mut out = json!({"ok": false, "error": err});
            out["error"]["type"] = json!("gateway_request_error");
            print_json(&out);
            1
        }
        Err(e) => {
            if a.client.json {
                print_json(&error_json(&e))
            } else {
                eprintln!("gateway call failed: {e}")
            }
            1
        }
    }
}

/// `health`: the `health` method; prints `OK (<durationMs>ms)`.
pub async fn health<R: Runtime>(rt: R, a: ClientArgs) -> i32 {
    let url = a.url.clone().unwrap_or_else(default_url);
    let timeout = Duration::from_millis(a.timeout.max(1));
    let t0 = Instant::now();
    let mut client = match Client::connect(&rt, &url, options(&a, ClientOptions::cli(&[scopes::READ])), &Vec::new()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Gateway Health\nFAILED: {e}");
            return 1;
        }
    };
    let res = client.request("health", None, false, timeout).await;
    client.close().await;
    match res {
        Ok(f) if f.ok => {
            let p = f.payload.unwrap_or(Value::Null);
            if a.json {
                print_json(&p);
            } else {
                let ms = p.get("durationMs").and_then(Value::as_u64).unwrap_or(t0.elapsed().as_millis() as u64);
                println!("Gateway Health\nOK ({ms}ms)");
            }
            0
        }
        Ok(f) => {
            eprintln!("Gateway Health\nFAILED: {}", f.error.map(|e| e.message).unwrap_or_default());
            1
        }
        Err(e) => {
            eprintln!("Gateway Health\nFAILED: {e}");
            1
        }
    }
}

fn capability(scopes: &[String]) -> &'static str {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has(scopes::ADMIN) {
        "admin"
    } else if has(scopes::WRITE) {
        "read_write"
    } else if has(scopes::READ) {
        "read_only"
    } else {
        "connected_no_operator_scope"
    }
}

fn hello_scopes(hello: &Value) -> Vec<String> {
    hello
        .pointer("/auth/scopes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// `status [--require-rpc]`: connect as the backend helper and call `status`.
pub async fn status<R: Runtime>(rt: R, a: StatusArgs) -> i32 {
    let url = a.client.url.clone().unwrap_or_else(default_url);
    let timeout = Duration::from_millis(a.client.timeout.max(1));
    let mut o = ClientOptions::cli(&[scopes::READ]);
    o.client_id = "gateway-client".into();
    o.mode = "backend".into();
    o.display_name = Some("gateway:status".into());
    let connected = Client::connect(&rt, &url, options(&a.client, o), &Vec::new()).await;
    let (rpc, code) = match connected {
        Ok(mut client) => {
            let hello = client.hello.clone();
            let res = client.request("status", None, false, timeout).await;
            client.close().await;
            let scopes = hello_scopes(&hello);
            let ok = matches!(&res, Ok(f) if f.ok);
            let err = match &res {
                Ok(f) if !f.ok => f.error.as_ref().map(|e| e.message.clone()),
                Err(e) => Some(e.to_string()),
                _ => None,
            };
            let rpc = json!({
                "ok": ok,
                "kind": "read",
                "capability": capability(&scopes),
                "auth": {"role": hello.pointer("/auth/role"), "scopes": scopes, "capability": capability(&scopes)},
                "server": hello.get("server"),
                "version": hello.pointer("/server/version"),
                "url": url,
                "error": err,
            });
            (rpc, if ok || !a.require_rpc { 0 } else { 1 })
        }
        Err(e) => (json!({"ok": false, "url": url, "error": e.to_string()}), 1),
    };
    if a.client.json {
        print_json(&json!({"gateway": {"probeUrl": url}, "rpc": rpc}));
    } else {
        println!("Probe target: {url}");
        if let Some(v) = rpc.get("version").and_then(Value::as_str) {
            println!("Gateway version: {v}");
        }
        if rpc["ok"] == json!(true) {
            println!("Read probe: ok");
        } else {
            println!("Read probe: failed - {}", rpc.get("error").and_then(Value::as_str).unwrap_or("unknown error"));
        }
        println!("Capability: {}", rpc.get("capability").and_then(Value::as_str).unwrap_or("unknown").replace('_', "-"));
    }
    code
}

/// `probe`: connect like `openclaw gateway probe` (probe mode, protocol 3–4) and report.
pub async fn probe<R: Runtime>(rt: R, a: ClientArgs) -> i32 {
    let url = a.url.clone().unwrap_or_else(default_url);
    let timeout = Duration::from_millis(a.timeout.max(1));
    let mut o = ClientOptions::cli(&[scopes::READ]);
    o.mode = "probe".into();
    o.min_protocol = clawgate_core::wire::MIN_PROBE_PROTOCOL;
    let t0 = Instant::now();
    let result = match Client::connect(&rt, &url, options(&a, o), &Vec::new()).await {
        Ok(mut client) => {
            let latency = t0.elapsed().as_millis() as u64;
            let hello = client.hello.clone();
            let scopes = hello_scopes(&hello);
            let mut reads = serde_json::Map::new();
            let mut rpc_ok = true;
            let mut first_err = None;
            for m in ["health", "status", "system-presence", "config.get"] {
                match client.request(m, Some(json!({})), false, timeout).await {
                    Ok(f) if f.ok => {
                        reads.insert(m.into(), f.payload.unwrap_or(Value::Null));
                    }
                    Ok(f) => {
                        rpc_ok = false;
                        first_err.get_or_insert(f.error.map(|e| e.message).unwrap_or_default());
                    }
                    Err(e) => {
                        rpc_ok = false;
                        first_err.get_or_insert(e.to_string());
                    }
                }
            }
            client.close().await;
            json!({
                "ok": true,
                "url": url,
                "connect": {"ok": true, "rpcOk": rpc_ok, "scopeLimited": scopes.is_empty(), "latencyMs": latency, "error": first_err},
                "auth": {"role": hello.pointer("/auth/role"), "scopes": scopes, "capability": capability(&scopes)},
                "server": {"version": hello.pointer("/server/version"), "buildId": hello.pointer("/server/buildId"), "connId": hello.pointer("/server/connId")},
                "health": reads.get("health"),
            })
        }
        Err(e) => json!({"ok": false, "url": url, "connect": {"ok": false, "error": e.to_string()}}),
    };
    let ok = result["ok"] == json!(true);
    if a.json {
        print_json(&result);
    } else {
        println!("Gateway Status");
        println!("Reachable: {}", if ok { "yes" } else { "no" });
        if ok {
            println!("Capability: {}", result.pointer("/auth/capability").and_then(Value::as_str).unwrap_or("unknown").replace('_', "-"));
            println!("Gateway version: {}", result.pointer("/server/version").and_then(Value::as_str).unwrap_or("unknown"));
        } else {
            println!("Error: {}", result.pointer("/connect/error").and_then(Value::as_str).unwrap_or("unknown"));
        }
    }
    if ok { 0 } else { 1 }
}

/// `auth-token`: print the kept token (creating it if this is the first use).
pub fn auth_token() -> i32 {
    let dir = state::state_dir();
    match state::load_or_create_token(&dir) {
        Ok(t) => {
            println!("{t}");
            0
        }
        Err(e) => {
            eprintln!("Cannot read or create {}: {e}", state::token_path(&dir).display());
            1
        }
    }
}

/// `config validate`: load the config file, resolve its SecretRefs and run the startup
/// decisions, without binding anything. Exit 0 when it would start, 78 for config errors, 1 for
/// other failures.
pub fn config_validate(json_out: bool) -> i32 {
    let args = clawgate_core::cli::RunArgs::default();
    let result = crate::daemon::config_runtime(&args).and_then(|mut rt| {
        rt.dry_run = true;
        crate::config::startup(&mut rt).map(|r| (rt, r))
    });
    match result {
        Ok((rt, r)) => {
            let exists = rt.applied.is_some();
            if json_out {
                print_json(&json!({"ok": true, "path": rt.path, "exists": exists, "warnings": r.warnings,
                    "port": r.port, "bind": r.plan.mode.as_str(), "authMode": r.settings.auth.mode.as_str()}));
            } else {
                println!("{}: {}", rt.path, if exists { "valid" } else { "no config file (defaults apply)" });
                for w in &r.warnings {
                    println!("warning: {w}");
                }
            }
            0
        }
        Err(e) => {
            if json_out {
                print_json(&json!({"ok": false, "error": e.message, "exitCode": e.exit_code}));
            } else {
                eprintln!("{}", e.message);
            }
            e.exit_code
        }
    }
}

/// `secrets reload`: the `secrets.reload` RPC (needs `operator.admin`).
pub async fn secrets_reload<R: Runtime>(rt: R, a: ClientArgs) -> i32 {
    let url = a.url.clone().unwrap_or_else(default_url);
    let timeout = Duration::from_millis(a.timeout.max(1));
    let mut client = match Client::connect(&rt, &url, options(&a, ClientOptions::cli(&[scopes::ADMIN])), &Vec::new()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gateway connect failed: {e}");
            return 1;
        }
    };
    let res = client.request("secrets.reload", Some(json!({})), false, timeout).await;
    client.close().await;
    match res {
        Ok(f) if f.ok => {
            print_json(&f.payload.unwrap_or(Value::Null));
            0
        }
        Ok(f) => {
            print_json(&json!({"ok": false, "error": {"type": "cli_error", "message": f.error.map(|e| e.message).unwrap_or_default()}}));
            1
        }
        Err(e) => {
            eprintln!("secrets.reload failed: {e}");
            1
        }
    }
}

/// The systemd user unit for this binary (the reference's runbook policy: restart always,
/// except on exit 78 — a config error a restart cannot fix). Only what works in a user unit:
/// no ordering against `network-online.target` (a system target the user manager cannot see).
/// Restart-kind config edits restart in process and never exit, so `RestartSec` only paces
/// crash restarts; five crashes within a minute stop the loop.
pub fn systemd_unit(exe: &str, run_args: &[String]) -> String {
    let args = if run_args.is_empty() { String::new() } else { format!(" {}", run_args.join(" ")) };
    format!(
        "[Unit]\nDescription=clawgate (OpenClaw-compatible gateway)\nStartLimitIntervalSec=60\nStartLimitBurst=5\n\n[Service]\nExecStart={exe} run --supervised{args}\nRestart=always\nRestartSec=1\nRestartPreventExitStatus=78\nTimeoutStopSec=30\nKillMode=mixed\n\n[Install]\nWantedBy=default.target\n"
    )
}

/// `install`: write the systemd user unit (atomically).
pub fn install(a: clawgate_core::cli::InstallArgs) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(p) => p.display().to_string(),
        Err(e) => {
            eprintln!("cannot find this executable: {e}");
            return 1;
        }
    };
    let unit = systemd_unit(&exe, &a.run_args);
    if a.print {
        print!("{unit}");
        return 0;
    }
    let path = a.unit_path.clone().unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
        format!("{home}/.config/systemd/user/clawgate.service")
    });
    let p = std::path::Path::new(&path);
    if let Some(dir) = p.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            return 1;
        }
    }
    match crate::state::write_atomic(p, unit.as_bytes(), 0o644) {
        Ok(()) => {
            println!("wrote {path}\nenable it with: systemctl --user daemon-reload && systemctl --user enable --now clawgate");
            0
        }
        Err(e) => {
            eprintln!("cannot write {path}: {e}");
            1
        }
    }
}

/// One request on a fresh operator connection: the result payload, or the printed error and
/// the exit code.
async fn rpc_once<R: Runtime>(rt: &R, a: &ClientArgs, scopes: &[&str], method: &str, params: Value) -> Result<Value, i32> {
    let url = a.url.clone().unwrap_or_else(default_url);
    let opts = options(a, ClientOptions::cli(scopes));
    let timeout = Duration::from_millis(a.timeout.max(1));
    let mut client = match Client::connect(rt, &url, opts, &Vec::new()).await {
        Ok(c) => c,
        Err(e) => {
            if a.json {
                print_json(&error_json(&e))
            } else {
                eprintln!("gateway connect failed: {e}")
            }
            return Err(1);
        }
    };
    let res = client.request(method, Some(params), false, timeout).await;
    client.close().await;
    match res {
        Ok(frame) if frame.ok => Ok(frame.payload.unwrap_or(Value::Null)),
        Ok(frame) => {
            let err = frame.error.map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).unwrap_or(Value::Null);
            if a.json {
                let mut out = json!({"ok": false, "error": err});
                out["error"]["type"] = json!("gateway_request_error");
                print_json(&out);
            } else {
                eprintln!("{method} failed: {}", err["message"].as_str().unwrap_or("unknown error"));
            }
            Err(1)
        }
        Err(e) => {
            if a.json {
                print_json(&error_json(&e))
            } else {
                eprintln!("{method} failed: {e}")
            }
            Err(1)
        }
    }
}

fn str_list(v: &Value) -> String {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

fn device_label(v: &Value) -> &str {
    ["displayName", "clientId", "deviceId"].iter().find_map(|k| v[*k].as_str().filter(|s| !s.is_empty())).unwrap_or("?")
}

fn print_device_list(list: &Value) {
    let pending = list["pending"].as_array().cloned().unwrap_or_default();
    let paired = list["paired"].as_array().cloned().unwrap_or_default();
    println!("Pending ({})", pending.len());
    for r in &pending {
        println!(
            "  {}  {} ({})  role {}  scopes [{}]{}",
            r["requestId"].as_str().unwrap_or("?"),
            device_label(r),
            r["clientMode"].as_str().unwrap_or(""),
            r["role"].as_str().unwrap_or("?"),
            str_list(&r["scopes"]),
            if r["isRepair"] == json!(true) { "  (upgrade of a paired device)" } else { "" },
        );
    }
    println!("Paired ({})", paired.len());
    for d in &paired {
        println!(
            "  {}  {}  roles [{}]  scopes [{}]{}",
            d["deviceId"].as_str().unwrap_or("?"),
            device_label(d),
            str_list(&d["roles"]),
            str_list(&d["scopes"]),
            if d["connected"] == json!(true) { "  connected" } else { "" },
        );
    }
}

/// `devices list|approve|reject|remove` (the `device.pair.*` methods).
pub async fn devices<R: Runtime>(rt: R, c: clawgate_core::cli::DevicesCommand) -> i32 {
    use clawgate_core::cli::DevicesCommand;
    // Approving another device's operator scopes needs them (or admin) on this connection.
    let manage: &[&str] = &[scopes::PAIRING, scopes::ADMIN];
    match c {
        DevicesCommand::List(a) => match rpc_once(&rt, &a, &[scopes::PAIRING], "device.pair.list", json!({})).await {
            Ok(list) => {
                if a.json {
                    print_json(&list)
                } else {
                    print_device_list(&list)
                }
                0
            }
            Err(code) => code,
        },
        DevicesCommand::Approve { request_id: Some(id), latest: false, client } => {
            match rpc_once(&rt, &client, manage, "device.pair.approve", json!({"requestId": id})).await {
                Ok(v) => {
                    if client.json {
                        print_json(&v)
                    } else {
                        println!(
                            "Approved request {}: {} ({})",
                            v["requestId"].as_str().unwrap_or("?"),
                            device_label(&v["device"]),
                            v["device"]["deviceId"].as_str().unwrap_or("?")
                        );
                    }
                    0
                }
                Err(code) => code,
            }
        }
        DevicesCommand::Approve { request_id, client, .. } => {
            // Preview only: never approve something the operator has not named exactly.
            let list = match rpc_once(&rt, &client, &[scopes::PAIRING], "device.pair.list", json!({})).await {
                Ok(l) => l,
                Err(code) => return code,
            };
            let newest = list["pending"].as_array().and_then(|p| p.iter().max_by_key(|r| r["ts"].as_u64().unwrap_or(0))).cloned();
            match newest {
                None => eprintln!("No pending pairing requests."),
                Some(r) => {
                    if client.json {
                        print_json(&json!({"preview": r}))
                    } else {
                        let id = r["requestId"].as_str().unwrap_or("?");
                        println!(
                            "Newest pending request: {id}  {}  role {}  scopes [{}]",
                            device_label(&r),
                            r["role"].as_str().unwrap_or("?"),
                            str_list(&r["scopes"])
                        );
                        if request_id.is_some() {
                            println!("(--latest given: previewing only)");
                        }
                        println!("To approve it: clawgate devices approve {id}");
                    }
                }
            }
            1
        }
        DevicesCommand::Reject { request_id, client } => {
            match rpc_once(&rt, &client, &[scopes::PAIRING], "device.pair.reject", json!({"requestId": request_id})).await {
                Ok(v) => {
                    if client.json {
                        print_json(&v)
                    } else {
                        println!("Rejected {}", v["requestId"].as_str().unwrap_or("?"));
                    }
                    0
                }
                Err(code) => code,
            }
        }
        DevicesCommand::Remove { device_id, client } => {
            match rpc_once(&rt, &client, manage, "device.pair.remove", json!({"deviceId": device_id})).await {
                Ok(v) => {
                    if client.json {
                        print_json(&v)
                    } else {
                        println!("Removed {}", v["deviceId"].as_str().unwrap_or("?"));
                    }
                    0
                }
                Err(code) => code,
            }
        }
    }
}
