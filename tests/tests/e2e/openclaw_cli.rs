//! The real OpenClaw CLI (`openclaw-ref`, unchanged) against a freshly started `clawgate run`.
//! Every command must exit 0, and what it prints must be true to our gateway's state (our
//! version, our state dir, our presence row), not just well-formed.

use std::time::Duration;

use clawgate_tests::openclaw::{openclaw, openclaw_with_env};
use clawgate_tests::vectors::{Capture, missing_top_level_keys};
use clawgate_tests::ws::{IO_TIMEOUT, connect_cli};
use clawgate_tests::{CmdOutput, Gateway, clawgate_version};
use serde_json::{Value, json};

const CLI_TIMEOUT: Duration = Duration::from_secs(90);

/// Run `openclaw-ref <args> --url <gw> --token <t>` and require exit 0.
fn cli_ok(gw: &Gateway, args: &[&str]) -> CmdOutput {
    let url = gw.url();
    let token = gw.token();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--url", &url, "--token", &token]);
    let out = openclaw(&full, CLI_TIMEOUT);
    assert!(
        out.success(),
        "`openclaw {}` failed (code {:?}, timed out {}):\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- gateway stderr ---\n{}",
        args.join(" "),
        out.code,
        out.timed_out,
        out.stdout,
        out.stderr,
        gw.stderr()
    );
    out
}

fn json_of(out: &CmdOutput, what: &str) -> Value {
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}):\n{}\n--- stderr ---\n{}", out.stdout, out.stderr))
}

fn assert_number(v: &Value, ptr: &str, what: &str) {
    assert!(v.pointer(ptr).is_some_and(Value::is_number), "{what}: {ptr} is not a number in {v:#}");
}

#[test]
fn gateway_call_health_json() {
    let gw = Gateway::start();
    let out = cli_ok(&gw, &["gateway", "call", "health", "--json"]);
    let v = json_of(&out, "gateway call health");
    assert_eq!(v["ok"], true, "health.ok: {v:#}");
    assert_number(&v, "/durationMs", "health");
    assert_number(&v, "/ts", "health");
    let el = &v["eventLoop"];
    assert!(el.is_object(), "health.eventLoop missing: {v:#}");
    assert!(el["degraded"].is_boolean(), "health.eventLoop.degraded: {el}");
    for k in ["intervalMs", "delayP99Ms", "delayMaxMs", "utilization"] {
        assert_number(el, &format!("/{k}"), "health.eventLoop");
    }
    for k in ["channels", "channelLabels"] {
        assert!(v[k].is_object(), "health.{k}: {v:#}");
    }
    assert!(v["channelOrder"].is_array(), "health.channelOrder: {v:#}");
}

#[test]
fn gateway_call_status_json() {
    let gw = Gateway::start();
    let out = cli_ok(&gw, &["gateway", "call", "status", "--json"]);
    let v = json_of(&out, "gateway call status");
    assert_eq!(v["runtimeVersion"], clawgate_version(), "status.runtimeVersion must be our version: {v:#}");
    assert!(v["eventLoop"].is_object(), "status.eventLoop: {v:#}");
    assert_eq!(v["pid"], gw.pid(), "status.pid must be the gateway's pid");
}

#[test]
fn gateway_call_system_presence_json() {
    let gw = Gateway::start();
    let out = cli_ok(&gw, &["gateway", "call", "system-presence", "--json"]);
    let v = json_of(&out, "gateway call system-presence");
    let rows = v.as_array().unwrap_or_else(|| panic!("system-presence is not an array: {v:#}"));
    let own = rows
        .iter()
        .find(|r| r["mode"] == "gateway" && r["reason"] == "self")
        .unwrap_or_else(|| panic!("no mode:gateway reason:self row: {v:#}"));
    assert_eq!(own["version"], clawgate_version(), "gateway presence row version: {own}");
    assert_number(own, "/ts", "presence row");
    // The CLI itself (mode cli) is not presence-tracked.
    assert!(rows.iter().all(|r| r["mode"] != "cli"), "cli clients must not appear in presence: {v:#}");
}

#[test]
fn gateway_call_config_get_json() {
    let gw = Gateway::start();
    let out = cli_ok(&gw, &["gateway", "call", "config.get", "--json"]);
    let v = json_of(&out, "gateway call config.get");
    for k in ["path", "exists", "hash", "config", "valid"] {
        assert!(v.get(k).is_some(), "config.get lacks {k}: {v:#}");
    }
    let want = gw.state_dir.join("openclaw.json");
    assert_eq!(v["path"], want.to_str().unwrap(), "config.get.path must be <stateDir>/openclaw.json");
    assert_eq!(v["exists"], false, "no config file was written: {v:#}");
    assert_eq!(v["valid"], true);
    assert!(v["hash"].is_string(), "config.get.hash: {v:#}");
    assert!(v["config"].is_object(), "config.get.config: {v:#}");
}

#[test]
fn gateway_health_text() {
    let gw = Gateway::start();
    let out = cli_ok(&gw, &["gateway", "health"]);
    assert!(out.stdout.contains("OK ("), "`gateway health` should print \"OK (<n>ms)\":\n{}", out.stdout);
}

#[test]
fn gateway_status_require_rpc_json() {
    let gw = Gateway::start();
    let out = cli_ok(&gw, &["gateway", "status", "--require-rpc", "--json"]);
    let v = json_of(&out, "gateway status --require-rpc");
    let rpc = &v["rpc"];
    assert_eq!(rpc["ok"], true, "rpc.ok: {rpc:#}");
    assert_eq!(rpc["capability"], "read_only", "rpc.capability: {rpc:#}");
    assert_eq!(rpc["auth"]["role"], "operator", "rpc.auth.role: {rpc:#}");
    assert_eq!(rpc["auth"]["scopes"], serde_json::json!(["operator.read"]), "rpc.auth.scopes: {rpc:#}");
    assert_eq!(rpc["server"]["version"], clawgate_version(), "rpc.server.version: {rpc:#}");
    assert_eq!(rpc["url"], gw.url(), "rpc.url: {rpc:#}");
}

#[test]
fn gateway_probe_json() {
    let gw = Gateway::start();
    let out = cli_ok(&gw, &["gateway", "probe", "--json"]);
    let v = json_of(&out, "gateway probe");
    assert_eq!(v["ok"], true, "probe.ok: {v:#}");
    let targets = v["targets"].as_array().unwrap_or_else(|| panic!("probe.targets: {v:#}"));
    let t = &targets[0];
    assert_eq!(t["url"], gw.url(), "targets[0] should be our explicit --url: {v:#}");
    assert_eq!(t["connect"]["ok"], true, "targets[0].connect.ok: {t:#}");
    assert_eq!(t["server"]["version"], clawgate_version(), "targets[0].server.version: {t:#}");
    assert!(t["server"]["connId"].is_string(), "targets[0].server.connId: {t:#}");
    assert_eq!(t["auth"]["scopes"], serde_json::json!([]), "probe-mode scopes are cleared: {t:#}");
    assert_eq!(t["auth"]["capability"], "connected_no_operator_scope", "targets[0].auth.capability: {t:#}");
    assert_eq!(v["capability"], "connected_no_operator_scope", "probe.capability: {v:#}");
}

#[test]
fn gateway_call_health_wrong_token_fails() {
    let gw = Gateway::start();
    let url = gw.url();
    let out = openclaw(&["gateway", "call", "health", "--json", "--url", &url, "--token", "wrong"], CLI_TIMEOUT);
    assert!(!out.timed_out, "CLI hung with a wrong token");
    assert!(out.code.is_some_and(|c| c != 0), "wrong token must fail: code {:?}\n{}\n{}", out.code, out.stdout, out.stderr);
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(all.contains("token mismatch"), "the CLI should report the token mismatch:\n{all}");
}

/// `gateway call agent --expect-final`: the CLI sees the `accepted` ack, waits for the final
/// answer of the same request and exits 1 with it — with no model provider configured, the run
/// fails with UNAVAILABLE, as the reference does without credentials
/// (`gateway-call-agent--expect-final.jsonl`).
#[test]
fn gateway_call_agent_expect_final_reports_the_final_error() {
    let gw = Gateway::start();
    let url = gw.url();
    let token = gw.token();
    let params = r#"{"message":"hello from the e2e suite","idempotencyKey":"e2e-agent-0001"}"#;
    let out = openclaw(
        &["gateway", "call", "agent", "--expect-final", "--json", "--params", params, "--url", &url, "--token", &token],
        CLI_TIMEOUT,
    );
    assert!(!out.timed_out, "the CLI never got the final answer:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(1), "a failed run exits 1:\n{}\n{}", out.stdout, out.stderr);
    let v = json_of(&out, "agent --expect-final");
    assert_eq!(v["ok"], false, "{v:#}");
    assert_eq!(v["error"]["code"], "UNAVAILABLE", "{v:#}");
    assert_eq!(v["error"]["type"], "gateway_request_error", "{v:#}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("model provider")), "{v:#}");
}

/// The results of the methods the CLI calls carry at least the top-level fields of the reference's
/// results (protocol.md §11.1; captures `gateway-call-*.jsonl`). Checked over our own client so a
/// failure names the method and the missing keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_method_results_cover_the_captured_fields() {
    let gw = Gateway::start();
    let mut client = connect_cli(&gw.url(), &gw.token(), &["operator.read"]).await.expect("connect");
    let mut problems = Vec::new();
    for (capture, method) in [
        ("gateway-call-health", "health"),
        ("gateway-call-status", "status"),
        ("gateway-call-config.get", "config.get"),
        ("gateway-call-system-presence", "system-presence"),
    ] {
        let cap = Capture::load(capture);
        let expected = cap
            .lines
            .iter()
            .find(|l| l["dir"] == "s2c" && l["frame"]["type"] == "res" && l["frame"]["payload"]["type"] != "hello-ok")
            .map(|l| l["frame"]["payload"].clone())
            .unwrap_or_else(|| panic!("{capture}: no method response"));
        let res = client.request(method, Some(json!({})), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
        assert!(res.ok, "{method} failed: {:?}", res.error);
        let got = res.payload.unwrap_or(Value::Null);
        match (&expected, &got) {
            (Value::Array(e), Value::Array(g)) => {
                // Presence rows: our own row must have the fields of the reference's own row.
                let own = |rows: &Vec<Value>| rows.iter().find(|r| r["reason"] == "self").cloned().unwrap_or(Value::Null);
                let missing = missing_top_level_keys(&own(e), &own(g));
                if !missing.is_empty() {
                    problems.push(format!("{method}: own presence row lacks {missing:?}"));
                }
            }
            (Value::Object(_), Value::Object(_)) => {
                let missing = missing_top_level_keys(&expected, &got);
                if !missing.is_empty() {
                    problems.push(format!("{method}: result lacks top-level keys {missing:?}"));
                }
            }
            _ => problems.push(format!("{method}: result is {got}, the reference returns {expected}")),
        }
    }
    client.close().await;
    assert!(problems.is_empty(), "results differ from the reference:\n{}", problems.join("\n"));
}

/// Issue 11 item 9: the real TUI, two messages in a row against an upstream that answers at
/// once. The first run ends within milliseconds of its `chat.send` answer; the TUI must still
/// see it end (status back to idle) and take the second message, not refuse it with "agent is
/// busy" for good.
#[test]
fn tui_takes_the_next_message_after_a_fast_reply() {
    use clawgate_tests::tui::Tui;
    use clawgate_tests::upstream::FakeUpstream;
    let up = FakeUpstream::start();
    let cfg = json!({
        "gateway": {"mode": "local"},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
    });
    let gw = clawgate_tests::GatewayBuilder::new().config(cfg.to_string()).start();
    let tui = Tui::start(&gw.url(), &gw.token());
    let wait = Duration::from_secs(90);
    let idle = |s: &str| s.lines().any(|l| l.contains("connected") && l.contains("idle"));
    tui.wait_for(wait, idle).unwrap_or_else(|s| panic!("the TUI never showed `connected | idle`:\n{s}\n{}", gw.stderr()));
    let replies = |s: &str| s.matches("Hello from fake upstream").count();
    for (n, message) in ["hello one", "hello two"].into_iter().enumerate() {
        tui.send_line(message);
        let screen = tui
            .wait_for(Duration::from_secs(30), |s| replies(s) > n && idle(s))
            .unwrap_or_else(|s| panic!("no reply to message {} with the TUI idle again:\n{s}", n + 1));
        assert!(!screen.contains("agent is busy"), "{screen}");
    }
    assert_eq!(up.chat_requests().len(), 2, "both messages reached the upstream");

    // The session commands (issue 13 item 5): /model sets the session's model (the next reply
    // comes from it), /reset starts the conversation over, /new opens a new session.
    tui.send_line("/model fake/fake-echo");
    tui.wait_for(Duration::from_secs(30), |s| s.contains("model set to fake/fake-echo"))
        .unwrap_or_else(|s| panic!("/model did not set the model:\n{s}\n{}", gw.stderr()));
    tui.send_line("which model now");
    tui.wait_for(Duration::from_secs(30), |s| s.contains("echo: which model now") && idle(s))
        .unwrap_or_else(|s| panic!("the patched model did not answer:\n{s}"));
    tui.send_line("/reset");
    // The conversation is gone from the screen and the token count is back to zero.
    tui.wait_for(Duration::from_secs(30), |s| !s.contains("echo: which model now") && s.contains("tokens 0") && idle(s))
        .unwrap_or_else(|s| panic!("/reset did not reset:\n{s}\n{}", gw.stderr()));
    tui.send_line("/new");
    let screen = tui
        .wait_for(Duration::from_secs(30), |s| s.contains("new session: agent:main:tui-"))
        .unwrap_or_else(|s| panic!("/new did not open a session:\n{s}\n{}", gw.stderr()));
    assert!(!screen.contains("failed"), "{screen}");
}

/// `openclaw channels status` (no `--url`: it reads the gateway from the environment) against a
/// gateway that hosts no channels: exit 0, "no configured chat channels", and with `--json` the
/// reference's empty shape with clawgate's own event-loop figures (spec operator §8).
#[test]
fn channels_status_reports_no_channels_truthfully() {
    let gw = Gateway::start();
    let env = [("OPENCLAW_GATEWAY_URL", gw.url()), ("OPENCLAW_GATEWAY_TOKEN", gw.token())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = openclaw_with_env(&["channels", "status"], &env, CLI_TIMEOUT);
    assert!(out.success(), "openclaw channels status: {out:?}\n--- gateway ---\n{}", gw.stderr());
    assert!(out.stdout.contains("Gateway reachable") && out.stdout.contains("no configured chat channels"), "{}", out.stdout);
    let out = openclaw_with_env(&["channels", "status", "--json"], &env, CLI_TIMEOUT);
    assert!(out.success(), "{out:?}");
    let v = json_of(&out, "channels status --json");
    assert_eq!((v["channels"].clone(), v["channelOrder"].clone()), (json!({}), json!([])), "{v:#}");
    assert!(v["eventLoop"]["cpuBreakdown"]["hostCpuCount"].as_u64() >= Some(1), "clawgate's measured figures: {v:#}");
}
