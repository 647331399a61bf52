//! Stores that fail to load are never overwritten (issue 11): a truncated pairing store is moved
//! aside unchanged, every intact record is recovered into a new store, and `health`/`status` say
//! so; the recovered devices keep working with their device tokens.

use std::sync::Arc;

use clawgate_conformance::device::DeviceKey;
use clawgate_tests::device::{UiAuth, ui_connect};
use clawgate_tests::process::run_clawgate;
use clawgate_tests::{GatewayBuilder, TempDir};
use serde_json::Value;

#[test]
fn a_truncated_pairing_store_is_moved_aside_and_its_intact_records_recovered() {
    let home = Arc::new(TempDir::new("damaged-devices"));
    let token = clawgate_tests::random_hex(12);
    let start = || GatewayBuilder::new().token(token.clone()).home(home.clone()).start();

    // Three devices paired on loopback (silently, with the gateway token).
    let mut gw = start();
    let mut paired = Vec::new();
    for i in 0..3u8 {
        let key = DeviceKey::from_seed([i + 1; 32]);
        let (hello, _ws) = ui_connect(gw.addr(), "/", &key, &UiAuth::Secret(token.clone()), None).hello();
        let device_token = hello["auth"]["deviceToken"].as_str().expect("a device token").to_string();
        paired.push((key, device_token));
    }
    gw.stop();

    // Cut the file inside its third device record (as a crash or a full disk would).
    let path = home.path().join("state/clawgate/devices.json");
    let text = std::fs::read_to_string(&path).expect("devices.json");
    let store: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<String> = store["devices"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(ids.len(), 3, "{text}");
    let mut order: Vec<(usize, String)> =
        ids.iter().map(|id| (text.find(&format!("\"{id}\": {{")).expect("record key"), id.clone())).collect();
    order.sort();
    let cut = order[2].0 + 40;
    let damaged = &text[..cut];
    std::fs::write(&path, damaged).unwrap();

    let gw = start();
    let log = gw.stderr();
    assert!(log.contains("PAIRING STORE DAMAGED"), "said loudly in the log:\n{log}");
    // The damaged file is kept, byte for byte, beside the new store.
    let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("devices.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "one copy moved aside");
    assert_eq!(std::fs::read_to_string(aside[0].path()).unwrap(), damaged);
    // The new store holds the two intact records, and nothing else.
    let now: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("a new devices.json")).expect("valid JSON");
    let mut kept: Vec<String> = now["devices"].as_object().unwrap().keys().cloned().collect();
    kept.sort();
    let mut want = vec![order[0].1.clone(), order[1].1.clone()];
    want.sort();
    assert_eq!(kept, want, "the records before the damage are recovered");

    // The recovered devices still connect with their device tokens; the lost one does not.
    for (key, device_token) in &paired {
        let id = key.device_id();
        let c = ui_connect(gw.addr(), "/", key, &UiAuth::DeviceToken(device_token.clone()), None);
        match c {
            clawgate_tests::device::UiConnect::Open { .. } => assert!(want.contains(&id), "{id} was lost but connected"),
            clawgate_tests::device::UiConnect::Rejected { error, .. } => {
                assert!(!want.contains(&id), "{id} was recovered but refused: {error}")
            }
        }
    }

    // health and status report it.
    let env = [("OPENCLAW_GATEWAY_TOKEN", token.as_str())];
    for method in ["health", "status"] {
        let out = run_clawgate(home.path(), &["call", method, "--json", "--port", &gw.port.to_string()], &env);
        assert!(out.success(), "{out:?}");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let w = &v["storeWarnings"][0];
        assert_eq!((w["store"].as_str(), w["state"].as_str()), (Some("devices"), Some("recovered")), "{method}: {v}");
        assert_eq!(w["recovered"]["devices"], 2, "{method}: {w}");
        assert!(w["movedTo"].as_str().unwrap().contains("devices.json.corrupt-"), "{w}");
    }
}

/// A session store with one damaged page (issue 11): the file is moved aside, every readable
/// session and message is salvaged into the new store, `health` reports the recovery as soon
/// as the gateway is up, and the sessions are listed again (it was 1 of 300 before).
#[test]
fn a_damaged_session_store_keeps_every_readable_session() {
    use clawgate_tests::upstream::FakeUpstream;
    let up = FakeUpstream::start();
    let home = Arc::new(TempDir::new("damaged-sessions"));
    let token = clawgate_tests::random_hex(12);
    let config = serde_json::json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("k")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    })
    .to_string();
    let start = || GatewayBuilder::new().token(token.clone()).home(home.clone()).config(config.clone()).start();
    let mut gw = start();
    let auth = format!("Bearer {token}");
    for i in 0..60 {
        let body = serde_json::json!({"model": "openclaw", "user": format!("user-{i}"), "messages": [{"role": "user", "content": format!("message {i} {}", "x".repeat(300))}]});
        let r = clawgate_tests::httpc::request(
            gw.addr(),
            "POST",
            "/v1/chat/completions",
            &[("Authorization", auth.as_str())],
            body.to_string().as_bytes(),
            std::time::Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    gw.stop();
    let db = home.path().join("state/clawgate/sessions.sqlite");
    // Everything into the main file (a stopped gateway may leave its last commits in the WAL).
    clawgate_driver::store::Store::open(&db).expect("open").checkpoint().expect("checkpoint");
    let mut bytes = std::fs::read(&db).expect("the session store");
    let pages = bytes.len() / 4096;
    assert!(pages > 8, "{pages} pages");
    let victim = pages / 2;
    bytes[4096 * victim..4096 * (victim + 1)].fill(0xA5);
    std::fs::write(&db, &bytes).unwrap();

    let gw = start();
    let env = [("OPENCLAW_GATEWAY_TOKEN", token.as_str())];
    let port = gw.port.to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let health = loop {
        let out = run_clawgate(home.path(), &["call", "health", "--json", "--port", &port], &env);
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        if v["storeWarnings"].is_array() {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no storeWarnings in health: {}\n{}", out.stdout, gw.stderr());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let w = health["storeWarnings"].as_array().unwrap().iter().find(|w| w["store"] == "sessions").cloned().expect("sessions");
    assert_eq!(w["state"], "recovered", "{w}");
    assert!(w["movedTo"].as_str().unwrap().contains("sessions.sqlite.corrupt-"), "{w}");
    let out = run_clawgate(home.path(), &["call", "sessions.list", "--json", "--port", &port, "--params", r#"{"limit": 200}"#], &env);
    assert!(out.success(), "{out:?}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let n = list["sessions"].as_array().map_or(0, Vec::len);
    // One 4 KiB page holds about a dozen of these session rows: only those may be lost.
    assert!(n >= 40, "only {n} of 60 sessions came back: {w}");
    assert_eq!(w["recovered"]["sessions"].as_u64(), Some(n as u64), "{w}");
}
