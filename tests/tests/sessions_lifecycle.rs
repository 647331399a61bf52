//! Session lifecycle methods against a real gateway and store (operator §5): `sessions.resolve`
//! by key, session id (or its prefix) and after a miss; `sessions.catalog.list` (no catalogs).

use std::time::Duration;

use clawgate_driver::client::Client;
use clawgate_tests::GatewayBuilder;
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{IO_TIMEOUT, connect_cli};
use clawgate_tokio::Tokio;
use serde_json::{Value, json};

async fn call(c: &mut Client<Tokio>, method: &str, params: Value) -> (bool, Value) {
    let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
    (f.ok, if f.ok { f.payload.unwrap_or_default() } else { json!(f.error.map(|e| e.message)) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_finds_sessions_by_key_and_session_id() {
    let up = FakeUpstream::start();
    let cfg = json!({
        "gateway": {"mode": "local"},
        "models": {"providers": {"fake": up.provider_config("k")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    });
    let gw = GatewayBuilder::new().config(cfg.to_string()).start();
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write"]).await.expect("connect");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"key": "main"})).await, (false, json!("No session found: agent:main:main")));
    let res = c.request(
        "agent",
        Some(json!({"message": "hi", "idempotencyKey": "r1", "sessionKey": "agent:main:main"})),
        true,
        Duration::from_secs(30),
    );
    assert!(res.await.expect("final").ok);
    let (ok, v) = call(&mut c, "sessions.resolve", json!({"key": "main"})).await;
    assert!(ok, "{v}");
    assert_eq!(v, json!({"ok": true, "key": "agent:main:main", "agentId": "main"}));
    let (_, list) = call(&mut c, "sessions.list", json!({})).await;
    let sid = list["sessions"].as_array().unwrap().iter().find(|s| s["key"] == "agent:main:main").unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(call(&mut c, "sessions.resolve", json!({"sessionId": sid})).await.1["key"], "agent:main:main");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"shortId": &sid[..8]})).await.1["key"], "agent:main:main");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"label": "nothing"})).await, (false, json!("No session found: nothing")));
    assert_eq!(
        call(&mut c, "sessions.resolve", json!({"x": 1})).await.1,
        json!("invalid sessions.resolve params: at root: unexpected property 'x'")
    );
    assert_eq!(call(&mut c, "sessions.catalog.list", json!({})).await, (true, json!({"catalogs": []})));
    assert_eq!(
        call(&mut c, "sessions.catalog.list", json!({"limitPerHost": 0})).await.1,
        json!("invalid sessions.catalog.list params: at /limitPerHost: must be >= 1")
    );
}
