//! Usage and cost from clawgate's own store (operator §3), end to end: real agent runs and an
//! OpenAI-compatible call against the loopback fake provider (it reports 11 prompt + 5
//! completion tokens per reply), priced from `models.providers.*.models[].cost`; read back with
//! `usage.cost`, `sessions.usage`, the per-session timeseries and logs, and the real
//! `openclaw gateway usage-cost`.

use std::time::Duration;

use clawgate_driver::client::Client;
use clawgate_tests::openclaw::openclaw;
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{IO_TIMEOUT, connect_cli};
use clawgate_tests::{Gateway, GatewayBuilder};
use clawgate_tokio::Tokio;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
/// USD per million tokens for `fake/fake-echo`.
const PRICE_IN: f64 = 2.0;
const PRICE_OUT: f64 = 10.0;

fn start(up: &FakeUpstream) -> Gateway {
    let mut provider = up.provider_config("fake-upstream-key");
    for m in provider["models"].as_array_mut().unwrap() {
        if m["id"] == "fake-echo" {
            m["cost"] = json!({"input": PRICE_IN, "output": PRICE_OUT, "cacheRead": 0, "cacheWrite": 0});
        }
    }
    let cfg = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": provider}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    });
    GatewayBuilder::new().config(cfg.to_string()).start()
}

async fn rpc(c: &mut Client<Tokio>, method: &str, params: Value) -> Value {
    let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
    assert!(f.ok, "{method}: {:?}", f.error);
    f.payload.unwrap_or_default()
}

async fn rpc_err(c: &mut Client<Tokio>, method: &str, params: Value) -> String {
    let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
    assert!(!f.ok, "{method} must fail: {:?}", f.payload);
    f.error.map(|e| e.message).unwrap_or_default()
}

fn cost(input: u64, output: u64) -> f64 {
    (input as f64 * PRICE_IN + output as f64 * PRICE_OUT) / 1_000_000.0
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_cost_come_from_the_store_and_the_configured_prices() {
    let up = FakeUpstream::start();
    let gw = start(&up);
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write"]).await.expect("connect");

    // Nothing yet: 30 zero days ending today.
    let empty = rpc(&mut c, "usage.cost", json!({})).await;
    assert_eq!(empty["days"], 30);
    assert_eq!(empty["daily"].as_array().unwrap().len(), 30);
    assert_eq!(empty["totals"]["totalTokens"], 0);

    for i in 0..2 {
        let res = c
            .request(
                "agent",
                Some(json!({"message": format!("count me {i}"), "idempotencyKey": format!("usage-{i}"), "sessionKey": "agent:main:main"})),
                true,
                T,
            )
            .await;
        let res = res.expect("final");
        assert!(res.ok && res.payload.as_ref().unwrap()["status"] == "ok", "{:?}", res.payload);
    }
    // An OpenAI-compatible call counts too (its reply keeps its usage in the transcript).
    let body = json!({"model": "openclaw", "messages": [{"role": "user", "content": "http turn"}]}).to_string();
    let auth = format!("Bearer {}", gw.token());
    let resp = clawgate_tests::httpc::request(
        gw.addr(),
        "POST",
        "/v1/chat/completions",
        &[("Authorization", auth.as_str()), ("Content-Type", "application/json")],
        body.as_bytes(),
        T,
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());

    let (input, output) = (3 * 11, 3 * 5);
    let v = rpc(&mut c, "usage.cost", json!({"days": 7})).await;
    assert_eq!(v["days"], 7);
    let today = v["daily"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (today["input"].clone(), today["output"].clone(), today["totalTokens"].clone()),
        (json!(input), json!(output), json!(input + output)),
        "{v}"
    );
    assert!(close(&today["totalCost"], cost(input, output)), "{today}");
    assert!(close(&v["totals"]["inputCost"], input as f64 * PRICE_IN / 1e6), "{v}");
    assert_eq!(v["totals"]["missingCostEntries"], 0);
    assert!(v["updatedAt"].as_u64().is_some());
    // Explicit dates in another calendar, and the reference's refusals.
    let zoned = rpc(&mut c, "usage.cost", json!({"mode": "specific", "timeZone": "Pacific/Kiritimati", "days": 3})).await;
    assert_eq!(zoned["days"], 3);
    assert_eq!(zoned["totals"]["totalTokens"], input + output);
    assert_eq!(
        rpc_err(&mut c, "usage.cost", json!({"mode": "specific", "timeZone": "Mars/Base"})).await,
        "invalid timeZone: expected a valid IANA time zone"
    );
    assert_eq!(rpc_err(&mut c, "usage.cost", json!({"startDate": "2026-12-01"})).await, "startDate and endDate must be provided together");
    assert_eq!(rpc(&mut c, "usage.status", json!({})).await["providers"], json!([]));

    // Per session: the WS runs share agent:main:main.
    let s = rpc(&mut c, "sessions.usage", json!({"range": "7d"})).await;
    assert_eq!(s["cacheStatus"]["status"], "fresh");
    let main = s["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "agent:main:main")
        .unwrap_or_else(|| panic!("main session: {s}"))
        .clone();
    assert_eq!(main["usage"]["totalTokens"], 2 * 16, "{main}");
    assert_eq!(main["usage"]["messageCounts"]["user"], 2);
    assert_eq!(main["usage"]["messageCounts"]["assistant"], 2);
    assert!(close(&main["usage"]["totalCost"], cost(22, 10)), "{main}");
    assert_eq!(s["totals"]["totalTokens"], input + output, "{s}");
    assert_eq!(s["aggregates"]["byModel"][0]["model"], "fake-echo");
    assert_eq!(
        rpc_err(&mut c, "sessions.usage", json!({"agentScope": "all", "key": "main"})).await,
        "agentScope=all cannot be combined with key or agentId"
    );
    assert!(rpc_err(&mut c, "sessions.usage", json!({"range": "2d"})).await.starts_with("invalid sessions.usage params: at /range"));
    let ts = rpc(&mut c, "sessions.usage.timeseries", json!({"key": "agent:main:main"})).await;
    let points = ts["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["cumulativeTokens"], 32);
    assert_eq!(ts["sessionId"], main["sessionId"]);
    let logs = rpc(&mut c, "sessions.usage.logs", json!({"key": "agent:main:main"})).await;
    let logs = logs["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 4);
    assert_eq!((logs[0]["role"].clone(), logs[0]["content"].clone()), (json!("user"), json!("count me 0")));
    assert_eq!(logs[1]["tokens"], 16);

    // The real CLI reads the same figures.
    let url = gw.url();
    let token = gw.token();
    let out =
        tokio::task::block_in_place(|| openclaw(&["gateway", "usage-cost", "--url", &url, "--token", &token, "--days", "7", "--json"], T));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let j: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(j["totals"]["totalTokens"], input + output);
    let out = tokio::task::block_in_place(|| openclaw(&["gateway", "usage-cost", "--url", &url, "--token", &token, "--days", "7"], T));
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&(input + output).to_string()) || out.stdout.contains("48"),
        "the summary shows the tokens: {}",
        out.stdout
    );
}
