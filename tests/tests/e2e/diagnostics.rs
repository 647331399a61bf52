//! Diagnostics that tell the truth (operator §4), end to end against a real gateway: `system.info`
//! with the host's and the process's real figures, `diagnostics.stability` recording what the
//! gateway did (startup, agent runs against the loopback fake provider, config reloads),
//! `diagnostics.lanes`, `status` activity, the Prometheus `/metrics` endpoint behind the
//! gateway's auth, and the real `openclaw gateway stability` and `openclaw status --all`.

use std::time::{Duration, Instant};

use clawgate_driver::client::Client;
use clawgate_tests::cfgfile::write_config;
use clawgate_tests::openclaw::{openclaw, openclaw_with_env};
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{IO_TIMEOUT, connect_cli};
use clawgate_tests::{Gateway, GatewayBuilder, TempDir};
use clawgate_tokio::Tokio;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

fn config(up: &FakeUpstream, extra: Value) -> Value {
    let mut gateway = json!({"mode": "local", "port": "__PORT__"});
    if let (Some(g), Some(e)) = (gateway.as_object_mut(), extra.as_object()) {
        g.extend(e.clone());
    }
    json!({
        "gateway": gateway,
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    })
}

fn text(cfg: &Value) -> String {
    serde_json::to_string_pretty(cfg).unwrap().replace("\"__PORT__\"", "{{PORT}}")
}

async fn rpc(c: &mut Client<Tokio>, method: &str, params: Value) -> Value {
    let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
    assert!(f.ok, "{method}: {:?}", f.error);
    f.payload.unwrap_or_default()
}

fn types(stability: &Value) -> Vec<String> {
    stability["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap_or_default().to_string()).collect()
}

fn metrics(gw: &Gateway, token: Option<&str>) -> clawgate_tests::httpc::Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("Authorization", a)]).unwrap_or_default();
    clawgate_tests::httpc::request(gw.addr(), "GET", "/metrics", &headers, b"", T).expect("GET /metrics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_report_what_the_gateway_did() {
    let up = FakeUpstream::start();
    let cfg = config(&up, json!({}));
    let gw = GatewayBuilder::new().port_from_config().config(text(&cfg)).start();
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write"]).await.expect("connect");

    // system.info: the host's and the process's own figures (the sampler publishes within ~1 s).
    let deadline = Instant::now() + T;
    let info = loop {
        let v = rpc(&mut c, "system.info", json!({})).await;
        if v["processMemory"]["rssBytes"].as_u64().unwrap_or(0) > 0 && v["hostname"].as_str().is_some_and(|h| !h.is_empty()) {
            break v;
        }
        assert!(Instant::now() < deadline, "system.info never filled in: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(info["pid"], gw.pid(), "{info}");
    assert_eq!(info["port"], gw.addr().port());
    assert_eq!(info["platform"], std::env::consts::OS);
    assert!(info["cpuCount"].as_u64() >= Some(1));
    assert!(info["memoryTotalBytes"].as_u64() > Some(0) && info["memoryFreeBytes"].as_u64() <= info["memoryTotalBytes"].as_u64());
    assert!(info["uptimeMs"].as_u64().is_some());
    assert!(info["disks"][0]["totalBytes"].as_u64() > Some(0), "{info}");
    assert!(info["nodeVersion"].as_str().is_some_and(|v| v.starts_with("clawgate ")), "{info}");
    assert!(info["eventLoop"]["delayP99Ms"].is_number());
    let e = c.request("system.info", Some(json!({"x": 1})), false, IO_TIMEOUT).await.unwrap();
    assert_eq!(e.error.unwrap().message, "invalid system.info params: at root: unexpected property 'x'");

    // The startup phase is in the ring; a run adds its model call and session states.
    let s = rpc(&mut c, "diagnostics.stability", json!({})).await;
    assert_eq!(s["capacity"], 1000);
    assert!(types(&s).contains(&"diagnostic.phase.completed".to_string()), "{s}");
    let res = c.request("agent", Some(json!({"message": "diag", "idempotencyKey": "diag-1"})), true, T).await.expect("final");
    assert!(res.ok, "{:?}", res.error);
    let s = rpc(&mut c, "diagnostics.stability", json!({})).await;
    let kinds = types(&s);
    for k in ["model.call.started", "model.call.completed", "session.state"] {
        assert!(kinds.contains(&k.to_string()), "{k} missing: {kinds:?}");
    }
    let done = s["events"].as_array().unwrap().iter().find(|e| e["type"] == "model.call.completed").unwrap().clone();
    assert_eq!((done["provider"].clone(), done["model"].clone()), (json!("fake"), json!("fake-echo")), "{s}");
    let started = s["events"].as_array().unwrap().iter().find(|e| e["type"] == "model.call.started").unwrap().clone();
    assert_eq!(started["runId"], "diag-1");
    assert!(done["durationMs"].as_u64().is_some());
    assert_eq!(s["summary"]["byType"]["model.call.completed"], 1);
    let one = rpc(&mut c, "diagnostics.stability", json!({"limit": 1})).await;
    assert_eq!(one["events"].as_array().unwrap().len(), 1);
    assert_eq!(one["events"][0]["seq"], s["lastSeq"], "the newest event");
    let lanes = rpc(&mut c, "diagnostics.lanes", json!({"x": 1})).await;
    assert_eq!(lanes["lanes"][0]["lane"], "main");
    assert_eq!(lanes["lanes"][0]["activeCount"], 0, "no run in flight now");

    // A hot config edit: recorded as a reload, counted in status and /metrics.
    let mut edited = cfg.clone();
    edited["gateway"]["port"] = json!(gw.addr().port());
    edited["gateway"]["http"] = json!({"endpoints": {"chatCompletions": {"enabled": true}}});
    write_config(&gw.config_path(), &serde_json::to_string_pretty(&edited).unwrap());
    let deadline = Instant::now() + T;
    let status = loop {
        let st = rpc(&mut c, "status", json!({})).await;
        if st["configReloads"]["applied"].as_u64() >= Some(1) {
            break st;
        }
        assert!(Instant::now() < deadline, "the reload was never recorded: {st}\n{}", gw.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["configReloads"]["last"]["outcome"], "applied", "{status}");
    assert_eq!(status["runs"]["finished"]["ok"], 1);
    let s = rpc(&mut c, "diagnostics.stability", json!({"type": "config.reload"})).await;
    assert!(s["events"].as_array().unwrap().iter().any(|e| e["outcome"] == "applied"), "{s}");

    // /metrics: the gateway's auth, the same figures.
    assert_eq!(metrics(&gw, None).status, 401, "no token, no metrics");
    assert_eq!(metrics(&gw, Some("wrong-token-000000")).status, 401);
    let m = metrics(&gw, Some(&gw.token()));
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")), "{:?}", m.headers);
    let body = m.text();
    for needle in [
        "clawgate_uptime_seconds ",
        "clawgate_connections{state=\"authenticated\"} ",
        "clawgate_agent_runs_finished_total{status=\"ok\"} 1",
        "clawgate_config_reloads_total{outcome=\"applied\"} 1",
        "clawgate_agent_runs_active 0",
    ] {
        assert!(body.contains(needle), "{needle} missing:\n{body}");
    }
    let rss_line = body.lines().find(|l| l.starts_with("clawgate_process_resident_memory_bytes ")).unwrap();
    let rss: f64 = rss_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(rss > 1_000_000.0, "{rss_line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_cli_reads_stability_and_status_all() {
    let up = FakeUpstream::start();
    let gw = GatewayBuilder::new().port_from_config().config(text(&config(&up, json!({})))).start();
    let (url, token) = (gw.url(), gw.token());
    let out = tokio::task::block_in_place(|| openclaw(&["gateway", "stability", "--url", &url, "--token", &token], T));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Gateway Stability") && out.stdout.contains("diagnostic.phase.completed"), "{}", out.stdout);
    let out = tokio::task::block_in_place(|| openclaw(&["gateway", "stability", "--url", &url, "--token", &token, "--json"], T));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let j: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(j["capacity"], 1000);

    // `status --all` reads the local config (an empty one) and reaches the gateway by env.
    let cfg_dir = TempDir::new("status-all-config");
    let cfg_path = cfg_dir.path().join("openclaw.json");
    std::fs::write(&cfg_path, "{}").unwrap();
    let cfg_path = cfg_path.display().to_string();
    let env =
        [("OPENCLAW_GATEWAY_URL", url.as_str()), ("OPENCLAW_GATEWAY_TOKEN", token.as_str()), ("OPENCLAW_CONFIG_PATH", cfg_path.as_str())];
    let out = tokio::task::block_in_place(|| openclaw_with_env(&["status", "--all"], &env, Duration::from_secs(90)));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let gateway_row = out.stdout.lines().find(|l| l.contains("Gateway ") && l.contains(&url)).unwrap_or_default().to_string();
    assert!(gateway_row.contains("reachable") && !gateway_row.contains("unreachable"), "{}", out.stdout);
    assert!(out.stdout.contains("Inbound delivery telemetry: received 0"), "stability answered: {}", out.stdout);
    assert!(!out.stdout.contains("unknown method"), "{}", out.stdout);
}
