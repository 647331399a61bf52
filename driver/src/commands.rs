//! The operator subcommands (`call`, `health`, `status`, `probe`, `auth-token`, `devices`,
//! `secrets reload`), written once for both binaries. Each returns the process exit code.
//!
//! Every client command finds its gateway the way the reference CLI does
//! ([`clawgate_core::connection::client_target`]) and connects as the local backend helper
//! ([`ClientOptions::backend`]); when it cannot connect it says what it tried and how to point
//! it elsewhere.

use std::time::{Duration, Instant};

use clawgate_core::auth::AuthMode;
use clawgate_core::auth::scopes;
use clawgate_core::cli::{CallArgs, ClientArgs, LogsArgs, StatusArgs};
use clawgate_core::connection::client::ClientOptions;
use clawgate_core::connection::client_target::{self, Target, TargetError};
use serde_json::{Value, json};

use crate::client::{Client, ClientError};
use crate::rt::Runtime;
use crate::state;
use crate::target;

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// `connect ECONNREFUSED 127.0.0.1:1` → `ECONNREFUSED`.
fn short_reason(reason: &str) -> &str {
    reason.strip_prefix("connect ").and_then(|r| r.split_whitespace().next()).unwrap_or(reason)
}

/// A target that could not be chosen, printed for humans or as JSON.
fn print_target_error(e: &TargetError, config_path: &str, json_out: bool) {
    if json_out {
        print_json(&json!({"ok": false, "error": {"type": e.kind, "message": e.message}}));
    } else if e.message.contains("Config: ") {
        eprintln!("{}", e.message);
    } else {
        eprintln!("{}\nConfig: {config_path}", e.message);
    }
}

/// A failed connection to a chosen target, with what was tried and the fix.
fn print_connect_error(e: &ClientError, t: &Target, config_path: &str, json_out: bool) {
    let gateway = json!({"url": t.url, "urlSource": t.source.as_str(), "portSource": t.port_source});
    let (kind, message, extra) = match e {
        ClientError::Connect(reason) | ClientError::Url(_, reason) => {
            let text = client_target::unreachable_message(t, short_reason(reason), config_path);
            ("gateway_transport_error", text, json!({"kind": "closed", "reason": reason}))
        }
        ClientError::Rejected(res) => {
            let err = res.error.clone().unwrap_or_else(|| clawgate_core::wire::ErrorShape::new("UNAVAILABLE", "refused"));
            let detail = err.details.as_ref().and_then(|d| d.get("code")).and_then(Value::as_str).map(str::to_string);
            let text = client_target::refusal_message(t, &err.code, &err.message, detail.as_deref());
            ("gateway_connect_error", text, json!({"code": err.code, "details": err.details}))
        }
        ClientError::Http { status, body } => (
            "gateway_transport_error",
            format!("The gateway at {} answered the WebSocket upgrade with HTTP {status}: {}", t.url, body.trim()),
            json!({"status": status}),
        ),
        ClientError::Closed { code, reason } => (
            "gateway_transport_error",
            format!("The gateway at {} closed the connection during the handshake ({code} {reason}).", t.url),
            json!({"closeCode": code}),
        ),
        ClientError::Timeout(ms) => (
            "gateway_transport_error",
            format!("The gateway at {} did not complete the handshake within {ms} ms (--timeout).", t.url),
            json!({"kind": "timeout"}),
        ),
    };
    if json_out {
        let mut error = json!({"type": kind, "message": message});
        if let (Some(o), Value::Object(x)) = (error.as_object_mut(), extra) {
            o.extend(x);
        }
        print_json(&json!({"ok": false, "error": error, "gateway": gateway}));
    } else {
        eprintln!("{message}");
    }
}

/// A hint for a request refused for lack of scope on a connection that was granted none.
fn scope_hint(hello: &Value, message: &str) -> Option<&'static str> {
    (message.contains("missing scope") && hello_scopes(hello).is_empty()).then_some(
        "This connection was granted no operator scopes: a client without a device identity keeps its scopes only on a loopback connection to the gateway. Run the command on the gateway host (or through an SSH tunnel to it).",
    )
}

/// Choose the target, connect as the backend helper with `scopes`, and complete the handshake.
/// Errors are printed here; the caller gets the exit code.
async fn open<R: Runtime>(rt: &R, a: &ClientArgs, scopes: &[&str], label: &str) -> Result<(Client<R>, Target), i32> {
    let (i, t) = target::resolve(a);
    let t = t.map_err(|e| {
        print_target_error(&e, &i.config_path, a.json);
        1
    })?;
    let mut o = ClientOptions::backend(scopes, label);
    o.token = t.token.as_ref().map(|c| c.secret.expose().to_string());
    o.password = t.password.as_ref().map(|c| c.secret.expose().to_string());
    o.connect_timeout = Duration::from_millis(a.timeout.max(1));
    match Client::connect(rt, &t.url, o, &Vec::new()).await {
        Ok(c) => Ok((c, t)),
        Err(e) => {
            print_connect_error(&e, &t, &i.config_path, a.json);
            Err(1)
        }
    }
}

/// One request on a fresh connection: the result payload, or the printed error and exit code.
async fn rpc_once<R: Runtime>(rt: &R, a: &ClientArgs, scopes: &[&str], method: &str, params: Value) -> Result<Value, i32> {
    rpc_explained(rt, a, scopes, method, params, &|_| None).await
}

/// [`rpc_once`], with `explain` turning a refusal's message into a clearer one for humans.
async fn rpc_explained<R: Runtime>(
    rt: &R,
    a: &ClientArgs,
    scopes: &[&str],
    method: &str,
    params: Value,
    explain: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Value, i32> {
    let (mut client, _) = open(rt, a, scopes, &format!("clawgate {method}")).await?;
    let timeout = Duration::from_millis(a.timeout.max(1));
    let res = client.request(method, Some(params), false, timeout).await;
    let hello = client.hello.clone();
    client.close().await;
    match res {
        Ok(frame) if frame.ok => Ok(frame.payload.unwrap_or(Value::Null)),
        Ok(frame) => {
            let err = frame.error.map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).unwrap_or(Value::Null);
            let message = err["message"].as_str().unwrap_or("unknown error").to_string();
            if a.json {
                let mut out = json!({"ok": false, "error": err});
                out["error"]["type"] = json!("gateway_request_error");
                print_json(&out);
            } else {
                eprintln!("{method} failed: {}", explain(&message).unwrap_or(message.clone()));
                if let Some(h) = scope_hint(&hello, &message) {
                    eprintln!("{h}");
                }
            }
            Err(1)
        }
        Err(e) => {
            if a.json {
                print_json(&json!({"ok": false, "error": {"type": "gateway_transport_error", "message": e.to_string()}}))
            } else {
                eprintln!("{method} failed: {e}")
            }
            Err(1)
        }
    }
}

/// `logs [--follow] [--json]` (spec operator §1.3): `logs.tail` over a fresh connection per poll
/// (scope `operator.read`), printed as `openclaw logs` prints it: plain `time level subsystem
/// message` after a `Log file:` line, or JSON lines (`meta`, then one `log` per line); notices
/// (truncated window, rotated file) go to stderr.
pub async fn logs<R: Runtime>(rt: R, a: LogsArgs) -> i32 {
    if !(1..=5_000).contains(&a.limit) || !(1..=1_000_000).contains(&a.max_bytes) || a.interval == 0 {
        let message = "--limit must be 1-5000, --max-bytes 1-1000000 and --interval positive";
        if a.client.json {
            print_json(&json!({"ok": false, "error": {"type": "cli_error", "message": message}}));
        } else {
            eprintln!("{message}");
        }
        return 1;
    }
    let timeout = Duration::from_millis(a.client.timeout.max(1));
    let mut cursor: Option<u64> = None;
    let mut first = true;
    loop {
        let (mut client, _) = match open(&rt, &a.client, &[scopes::READ], "clawgate logs").await {
            Ok(c) => c,
            // The local gateway does not answer: read its file here, as `openclaw logs` does
            // (never for an explicit --url, never while following: a stale file would mislead).
            Err(code) if first && a.client.url.is_none() && !a.follow => return logs_from_file(&a, code),
            Err(code) => return code,
        };
        let mut params = json!({"limit": a.limit, "maxBytes": a.max_bytes});
        if let Some(c) = cursor {
            params["cursor"] = json!(c);
        }
        let res = client.request("logs.tail", Some(params), false, timeout).await;
        client.close().await;
        let payload = match res {
            Ok(frame) if frame.ok => frame.payload.unwrap_or(Value::Null),
            Ok(frame) => {
                let message = frame.error.map(|e| e.message).unwrap_or_default();
                if a.client.json {
                    eprintln!("{}", json!({"type": "error", "message": message, "error": message}));
                } else {
                    eprintln!("logs.tail failed: {message}");
                }
                return 1;
            }
            Err(e) => {
                if a.client.json {
                    eprintln!("{}", json!({"type": "error", "message": e.to_string(), "error": e.to_string()}));
                } else {
                    eprintln!("logs.tail failed: {e}");
                }
                return 1;
            }
        };
        print_log_page(&payload, a.client.json, first);
        first = false;
        cursor = payload["cursor"].as_u64();
        if !a.follow {
            return 0;
        }
        rt.sleep_until(Instant::now() + Duration::from_millis(a.interval)).await;
    }
}

/// One JSON object per line (the `--json` stream of `logs`).
fn print_json_line(v: &Value) {
    println!("{v}");
}

/// `clawgate logs` when the local gateway is unreachable: the same page, read from its file.
fn logs_from_file(a: &LogsArgs, failed: i32) -> i32 {
    let (_, t) = target::resolve(&a.client);
    let port = t.ok().and_then(|t| t.url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse::<u16>().ok()));
    let target = crate::logfile::local_target(port.unwrap_or(clawgate_core::config::DEFAULT_PORT));
    let params = clawgate_core::logs::TailParams { cursor: None, limit: a.limit as usize, max_bytes: a.max_bytes };
    match crate::logfile::tail_local(&target, &params) {
        clawgate_core::Reply::Ok(Some(page)) if page["size"].as_u64() > Some(0) => {
            notice(a.client.json, "Gateway not reachable; showing the local log file.");
            print_log_page(&page, a.client.json, true);
            0
        }
        _ => failed,
    }
}

fn notice(json_mode: bool, message: &str) {
    if json_mode {
        eprintln!("{}", json!({"type": "notice", "message": message}));
    } else {
        eprintln!("{message}");
    }
}

/// One `logs.tail` answer as the CLI prints it.
fn print_log_page(page: &Value, json_mode: bool, first: bool) {
    let file = page["file"].as_str().unwrap_or_default();
    if first {
        if json_mode {
            print_json_line(&json!({"type": "meta", "file": file, "sourceKind": "file", "cursor": page["cursor"], "size": page["size"]}));
        } else {
            println!("Log file: {file}");
        }
    }
    if page["reset"] == json!(true) && !first {
        notice(json_mode, "Log cursor reset (file rotated).");
    }
    for raw in page["lines"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let l = clawgate_core::logs::parse_line(raw);
        if json_mode {
            print_json_line(
                &json!({"type": "log", "time": l.time, "level": l.level, "subsystem": l.subsystem, "message": l.message, "raw": raw}),
            );
        } else {
            let parts = [l.time.as_deref(), l.level.as_deref(), l.subsystem.as_deref().or(l.module.as_deref())];
            let head: Vec<&str> = parts.into_iter().flatten().collect();
            if head.is_empty() { println!("{}", l.message) } else { println!("{} {}", head.join(" "), l.message) }
        }
    }
    if page["truncated"] == json!(true) {
        notice(json_mode, "Log tail truncated (increase --limit or --max-bytes).");
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
    let (mut client, _) = match open(&rt, &a.client, &[scope.as_str()], &format!("clawgate call {}", a.method)).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let timeout = Duration::from_millis(a.client.timeout.max(1));
    let res = client.request(&a.method, params.or(Some(json!({}))), a.expect_final, timeout).await;
    let hello = client.hello.clone();
    client.close().await;
    match res {
        Ok(frame) if frame.ok => {
            print_json(&frame.payload.unwrap_or(Value::Null));
            0
        }
        Ok(frame) => {
            let err = frame.error.map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).unwrap_or(Value::Null);
            let hint = scope_hint(&hello, err["message"].as_str().unwrap_or_default());
            let mut out = json!({"ok": false, "error": err});
            out["error"]["type"] = json!("gateway_request_error");
            if let Some(h) = hint {
                out["error"]["hint"] = json!(h);
            }
            print_json(&out);
            1
        }
        Err(e) => {
            if a.client.json {
                print_json(&json!({"ok": false, "error": {"type": "gateway_transport_error", "message": e.to_string()}}))
            } else {
                eprintln!("gateway call failed: {e}")
            }
            1
        }
    }
}

/// `health`: the `health` method; prints `OK (<durationMs>ms)`.
pub async fn health<R: Runtime>(rt: R, a: ClientArgs) -> i32 {
    let t0 = Instant::now();
    let (mut client, _) = match open(&rt, &a, &[scopes::READ], "clawgate health").await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let res = client.request("health", None, false, Duration::from_millis(a.timeout.max(1))).await;
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

/// `status [--require-rpc] [--deep]`: the runbook's lines — Service (the unit and what
/// systemd says), Runtime (the gateway owning the state dir: pid, uptime, address), the
/// connectivity probe (a `status` RPC as the backend helper) and the capability it was granted.
pub async fn status<R: Runtime>(rt: R, a: StatusArgs) -> i32 {
    let timeout = Duration::from_millis(a.client.timeout.max(1));
    let (i, t) = target::resolve(&a.client);
    let t = match t {
        Ok(t) => t,
        Err(e) => {
            print_target_error(&e, &i.config_path, a.client.json);
            return 1;
        }
    };
    let state_dir = crate::state::state_dir();
    let service = crate::lifecycle::inspect_service(&rt, a.system).await;
    let runtime = crate::lifecycle::inspect_runtime(&state_dir);
    // Every operator scope the credentials may hold: `Capability:` then says what they allow
    // (a shared secret is granted all; the answer is read with `operator.read`).
    let mut o = ClientOptions::backend(&[scopes::ADMIN, scopes::READ, scopes::WRITE], "gateway:status");
    o.token = t.token.as_ref().map(|c| c.secret.expose().to_string());
    o.password = t.password.as_ref().map(|c| c.secret.expose().to_string());
    o.connect_timeout = timeout;
    let url = t.url.clone();
    let (rpc, code, failure) = match Client::connect(&rt, &url, o, &Vec::new()).await {
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
            (rpc, if ok || !a.require_rpc { 0 } else { 1 }, None)
        }
        Err(e) => (json!({"ok": false, "kind": "connect", "capability": "unknown", "url": url, "error": e.to_string()}), 1, Some(e)),
    };
    let config_exists = std::path::Path::new(&i.config_path).exists();
    let deep = a.deep.then(|| {
        let own_unit = crate::lifecycle::unit_path(a.system);
        let port = url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
        let ports: Vec<u16> = [Some(clawgate_core::config::DEFAULT_PORT), Some(clawgate_core::service::profile::DEV_PORT), port]
            .into_iter()
            .flatten()
            .collect();
        crate::lifecycle::deep_scan(&own_unit, &ports, &state_dir)
    });
    if a.client.json {
        let mut out = json!({
            "service": service,
            "runtime": runtime,
            "config": {"path": i.config_path, "exists": config_exists},
            "stateDir": state_dir,
            "gateway": {"probeUrl": url, "urlSource": t.source.as_str(), "portSource": t.port_source},
            "rpc": rpc,
        });
        if let Some(d) = deep {
            out["deep"] = d;
        }
        print_json(&out);
    } else {
        use clawgate_core::service::report;
        for l in report::service_lines(&service) {
            println!("{l}");
        }
        println!("Config: {} ({})", i.config_path, if config_exists { "exists" } else { "missing" });
        println!("State dir: {state_dir}");
        println!("Probe target: {url} ({})", t.source.as_str());
        println!();
        println!("{}", report::runtime_line(&runtime));
        if rpc["ok"] == json!(true) {
            println!("Connectivity probe: ok");
        } else {
            println!("Connectivity probe: failed - {}", rpc.get("error").and_then(Value::as_str).unwrap_or("unknown error"));
        }
        if let Some(v) = rpc.get("version").and_then(Value::as_str) {
            println!("Gateway version: {v}");
        }
        println!("Capability: {}", rpc.get("capability").and_then(Value::as_str).unwrap_or("unknown").replace('_', "-"));
        if let Some(d) = &deep {
            println!();
            for l in crate::lifecycle::deep_text(d) {
                println!("{l}");
            }
        }
        if let Some(e) = &failure {
            eprintln!();
            print_connect_error(e, &t, &i.config_path, false);
        }
    }
    code
}

/// `probe`: connect and report reachability, capability and the read RPCs that
/// `openclaw gateway probe` runs (`health`, `status`, `system-presence`, `config.get`).
pub async fn probe<R: Runtime>(rt: R, a: ClientArgs) -> i32 {
    let timeout = Duration::from_millis(a.timeout.max(1));
    let (i, t) = target::resolve(&a);
    let t = match t {
        Ok(t) => t,
        Err(e) => {
            print_target_error(&e, &i.config_path, a.json);
            return 1;
        }
    };
    let mut o = ClientOptions::backend(&[scopes::READ], "clawgate probe");
    o.token = t.token.as_ref().map(|c| c.secret.expose().to_string());
    o.password = t.password.as_ref().map(|c| c.secret.expose().to_string());
    o.connect_timeout = timeout;
    let url = t.url.clone();
    let t0 = Instant::now();
    let mut failure = None;
    let result = match Client::connect(&rt, &url, o, &Vec::new()).await {
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
                "urlSource": t.source.as_str(),
                "connect": {"ok": true, "rpcOk": rpc_ok, "scopeLimited": scopes.is_empty(), "latencyMs": latency, "error": first_err},
                "auth": {"role": hello.pointer("/auth/role"), "scopes": scopes, "capability": capability(&scopes)},
                "server": {"version": hello.pointer("/server/version"), "buildId": hello.pointer("/server/buildId"), "bootId": hello.pointer("/server/bootId"), "connId": hello.pointer("/server/connId")},
                "health": reads.get("health"),
            })
        }
        Err(e) => {
            let r = json!({"ok": false, "url": url, "urlSource": t.source.as_str(), "connect": {"ok": false, "error": e.to_string()}});
            failure = Some(e);
            r
        }
    };
    let ok = result["ok"] == json!(true);
    let others = probe_other_gateways(&rt, &url, &t, timeout).await;
    let identities = gateway_identities(&result, &others);
    let mut result = result;
    result["targets"] = json!(others);
    result["identities"] = json!(identities.distinct);
    if identities.warn {
        result["warning"] = json!("multiple reachable gateway identities");
    }
    if a.json {
        print_json(&result);
    } else {
        println!("Gateway Status");
        println!("Target: {url} ({})", t.source.as_str());
        println!("Reachable: {}", if ok { "yes" } else { "no" });
        if ok {
            println!("Capability: {}", result.pointer("/auth/capability").and_then(Value::as_str).unwrap_or("unknown").replace('_', "-"));
            println!("Gateway version: {}", result.pointer("/server/version").and_then(Value::as_str).unwrap_or("unknown"));
            println!("Gateway identity: bootId {}", result.pointer("/server/bootId").and_then(Value::as_str).unwrap_or("unknown"));
            match result.pointer("/connect/error").and_then(Value::as_str) {
                None => println!("Read probe: ok"),
                Some(e) => println!("Read probe: failed - {e}"),
            }
        } else if let Some(e) = &failure {
            print_connect_error(e, &t, &i.config_path, false);
        }
        for o in &others {
            let who = match (o["bootId"].as_str(), o["error"].as_str()) {
                (Some(b), _) => format!("bootId {b}"),
                (None, Some(e)) => format!("identity not proven ({e})"),
                _ => "identity not proven".into(),
            };
            println!("Also reachable: {} ({}): {who}", o["url"].as_str().unwrap_or(""), o["source"].as_str().unwrap_or(""));
        }
        if identities.warn {
            println!(
                "Warning: multiple reachable gateway identities ({} distinct{}). If that is intended, give each gateway its own port, config, state dir and workspace (--profile NAME); otherwise stop the extra one.",
                identities.distinct.len(),
                if identities.unproven > 0 { format!(", {} unproven", identities.unproven) } else { String::new() }
            );
        }
    }
    if ok { 0 } else { 1 }
}

/// Other gateways a probe can see on this host: the default and dev ports, and the ports of
/// gateways owning other state dirs (their locks say; their kept tokens prove who they are).
/// Connection refused means nobody is there and is not listed.
async fn probe_other_gateways<R: Runtime>(rt: &R, primary: &str, t: &Target, timeout: Duration) -> Vec<Value> {
    let primary_port = primary.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
    let mut candidates: Vec<(u16, String, Option<String>)> = Vec::new();
    for d in crate::lifecycle::state_dirs() {
        // Only a live owner's port: a stale record's port may belong to anything now.
        if d.pointer("/owner/status").and_then(Value::as_str) != Some("running") {
            continue;
        }
        if let (Some(port), Some(path)) = (d.pointer("/owner/port").and_then(Value::as_u64), d["path"].as_str()) {
            let token = crate::state::read_token(path).ok().flatten();
            candidates.push((port as u16, format!("state dir {path}"), token));
        }
    }
    for (port, source) in
        [(clawgate_core::config::DEFAULT_PORT, "default port"), (clawgate_core::service::profile::DEV_PORT, "dev profile port")]
    {
        candidates.push((port, source.to_string(), None));
    }
    let mut seen: Vec<u16> = primary_port.into_iter().collect();
    let mut out = Vec::new();
    for (port, source, token) in candidates {
        if seen.contains(&port) {
            continue;
        }
        seen.push(port);
        let url = format!("ws://127.0.0.1:{port}");
        let mut o = ClientOptions::backend(&[scopes::READ], "clawgate probe");
        o.token = token.or_else(|| t.token.as_ref().map(|c| c.secret.expose().to_string()));
        o.password = t.password.as_ref().map(|c| c.secret.expose().to_string());
        o.connect_timeout = timeout.min(Duration::from_secs(2));
        match Client::connect(rt, &url, o, &Vec::new()).await {
            Ok(c) => {
                let boot = c.hello.pointer("/server/bootId").cloned();
                c.close().await;
                out.push(json!({"url": url, "source": source, "bootId": boot}));
            }
            Err(ClientError::Connect(_)) | Err(ClientError::Url(..)) => {}
            Err(e) => out.push(json!({"url": url, "source": source, "bootId": null, "error": e.to_string()})),
        }
    }
    out
}

/// The distinct gateways among the answers (by `bootId`); an answer without one cannot be
/// proven to be the same gateway.
struct Identities {
    distinct: Vec<String>,
    unproven: usize,
    warn: bool,
}

fn gateway_identities(primary: &Value, others: &[Value]) -> Identities {
    let mut distinct: Vec<String> = Vec::new();
    let mut unproven = 0;
    let answers = primary.pointer("/server/bootId").into_iter().chain(others.iter().map(|o| &o["bootId"]));
    for b in answers {
        match b.as_str() {
            Some(b) if !distinct.iter().any(|d| d == b) => distinct.push(b.to_string()),
            Some(_) => {}
            None => unproven += 1,
        }
    }
    let warn = distinct.len() + unproven > 1;
    Identities { distinct, unproven, warn }
}

/// `auth-token`: print the token the local gateway accepts with this config and environment —
/// `gateway.auth.token` (SecretRefs resolved), `OPENCLAW_GATEWAY_TOKEN`, `gateway.remote.token`,
/// else the token `clawgate run` keeps in the state dir (created here if it does not exist yet,
/// as the gateway would on its first start). When the gateway does not use a token, say where
/// its secret comes from instead, and exit 1.
pub fn auth_token() -> i32 {
    // The local gateway's view: no flags, no override URL, whatever gateway.mode says.
    let mut i = target::inputs(&ClientArgs::default());
    i.env_url = None;
    if let Some(c) = i.config.as_mut() {
        c.mode = None;
    }
    let t = match client_target::resolve(&i) {
        Ok(t) => t,
        Err(e) => {
            print_target_error(&e, &i.config_path, false);
            return 1;
        }
    };
    let mode = t.expected_mode.unwrap_or(AuthMode::Token);
    if mode != AuthMode::Token {
        let what = match (&t.password, mode) {
            (_, AuthMode::None) => "auth mode none: the gateway accepts connections without a secret".to_string(),
            (Some(p), _) => format!("password auth (the password comes from {})", p.source),
            (None, AuthMode::TrustedProxy) => "trusted-proxy auth: a reverse proxy vouches for each user".to_string(),
            (None, _) => "password auth, but no password is configured (the gateway refuses to start)".to_string(),
        };
        eprintln!("This gateway does not use a token: {what} (config {}). There is no token to print.", i.config_path);
        return 1;
    }
    let token = match t.token {
        Some(c) => {
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!("(token from {})", c.source);
            }
            c.secret.expose().to_string()
        }
        None => {
            let dir = state::state_dir();
            match state::load_or_create_token(&dir) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("Cannot read or create {}: {e}", state::token_path(&dir).display());
                    return 1;
                }
            }
        }
    };
    println!("{token}");
    0
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
    let timeout = Duration::from_millis(a.timeout.max(1));
    let (mut client, _) = match open(&rt, &a, &[scopes::ADMIN], "clawgate secrets reload").await {
        Ok(c) => c,
        Err(code) => return code,
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
            // The gateway answers an id that is not pending with the reference's bare "device
            // pairing approval denied"; say what that means.
            let explain = |m: &str| {
                (m == "device pairing approval denied").then(|| {
                    format!("unknown requestId {id}: no pending pairing request has this id (already approved or rejected, or mistyped); `clawgate devices list` shows the pending ones")
                })
            };
            match rpc_explained(&rt, &client, manage, "device.pair.approve", json!({"requestId": id}), &explain).await {
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
        DevicesCommand::Rotate { device_id, role, scopes, no_scopes, client } => {
            let mut params = json!({"deviceId": device_id, "role": role});
            if no_scopes || !scopes.is_empty() {
                params["scopes"] = json!(scopes);
            }
            match rpc_once(&rt, &client, manage, "device.token.rotate", params).await {
                Ok(v) => {
                    if client.json {
                        print_json(&v)
                    } else {
                        println!(
                            "Rotated the {} token of {}: scopes [{}]",
                            v["role"].as_str().unwrap_or("?"),
                            v["deviceId"].as_str().unwrap_or("?"),
                            str_list(&v["scopes"])
                        );
                        match v["token"].as_str() {
                            Some(t) => println!("New token: {t}"),
                            None => println!("The new token goes to the device when it pairs again (not shown to other devices)."),
                        }
                    }
                    0
                }
                Err(code) => code,
            }
        }
        DevicesCommand::Revoke { device_id, role, client } => {
            match rpc_once(&rt, &client, manage, "device.token.revoke", json!({"deviceId": device_id, "role": role})).await {
                Ok(v) => {
                    if client.json {
                        print_json(&v)
                    } else {
                        println!("Revoked the {} token of {}", v["role"].as_str().unwrap_or("?"), v["deviceId"].as_str().unwrap_or("?"));
                    }
                    0
                }
                Err(code) => code,
            }
        }
        DevicesCommand::Rename { device_id, label, client } => {
            match rpc_once(&rt, &client, &[scopes::PAIRING], "device.pair.rename", json!({"deviceId": device_id, "label": label})).await {
                Ok(v) => {
                    if client.json {
                        print_json(&v)
                    } else {
                        println!("Renamed {} to \"{}\"", v["deviceId"].as_str().unwrap_or("?"), v["label"].as_str().unwrap_or("?"));
                    }
                    0
                }
                Err(code) => code,
            }
        }
    }
}

/// `clawgate cron …`: one `cron.*` request (the core builds it); JSON with `--json`, else a table
/// for `list` and the answer as JSON for the rest.
pub async fn cron<R: Runtime>(rt: R, c: clawgate_core::cli::CronCommand) -> i32 {
    use clawgate_core::cron::cli::{list_table, request};
    let (method, params, client) = match request(&c, crate::session::unix_ms()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clawgate cron: {e}");
            return 2;
        }
    };
    let scope = scopes::required_scope(method, Some(&params));
    match rpc_once(&rt, client, &[scope.as_str()], method, params).await {
        Ok(v) => {
            if !client.json && method == "cron.list" {
                print!("{}", list_table(&v));
            } else {
                print_json(&v);
            }
            0
        }
        Err(code) => code,
    }
}
