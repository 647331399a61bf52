//! Every device-signed `connect` the reference answered in the captures — the protocol probes
//! `vectors/ws/edge-device-*.jsonl` and every connect of the official Control UI in
//! `vectors/control-ui/*.jsonl` — replayed through the core's `ServerConnection` with the
//! captured challenge (nonce and `ts`) and clock: it must succeed or fail exactly as the
//! reference did (same error code, message and `details.code`/`reason`).
//!
//! The gateway side is rebuilt from each capture's notes: the shared token `testtoken123`; a
//! device the reference had already paired is pre-paired (with the device token the capture
//! presents); `autoApproveLocal: false` where the reference asked for approval from loopback;
//! the non-loopback page (`--bind lan`, 192.0.2.2) with or without the allowlisted origin.

use crate::common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clawgate_core::auth::device::{DeviceStore, DeviceToken, PairedDevice};
use clawgate_core::auth::ingress::RequestFacts;
use clawgate_core::connection::{Output, ServerConnection};
use clawgate_core::gateway::Hub;
use clawgate_core::testkit::{loopback_token_settings, test_server_info};
use common::{Sink, TOKEN, t0};
use serde_json::{Value, json};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

/// One captured connect and what the reference answered.
struct Attempt {
    file: String,
    conn: u64,
    nonce: String,
    challenge_ts: u64,
    /// Milliseconds between the challenge and the connect as captured (0 when not recorded).
    delay_ms: u64,
    origin: Option<String>,
    host: Option<String>,
    connect: Value,
    answer: Value,
}

/// A connect waiting for its answer: the frame and its challenge (nonce, `ts`, delay).
type PendingConnect = (Value, (String, u64, u64));

fn read_attempts(path: &std::path::Path) -> Vec<Attempt> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<Value> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let mut challenge: HashMap<u64, (String, u64, u64)> = HashMap::new();
    let mut headers: HashMap<u64, (Option<String>, Option<String>)> = HashMap::new();
    let mut pending: HashMap<(u64, String), PendingConnect> = HashMap::new();
    let mut out = Vec::new();
    for l in &lines {
        let conn = l["conn"].as_u64().unwrap_or(0);
        let t = l["t_ms"].as_u64().unwrap_or(0);
        match l["ws_event"].as_str() {
            Some("handshake-request") => {
                let h = &l["headers"];
                headers.insert(conn, (h["Origin"].as_str().map(str::to_string), h["Host"].as_str().map(str::to_string)));
            }
            Some("open") => {
                let origin = l["origin"].as_str().map(str::to_string);
                let host = origin.as_deref().and_then(|o| o.split("://").nth(1)).map(str::to_string);
                headers.insert(conn, (origin, host));
            }
            _ => {}
        }
        let f = &l["frame"];
        if l["dir"] == "s2c" && f["event"] == "connect.challenge" {
            let p = &f["payload"];
            challenge.insert(conn, (p["nonce"].as_str().unwrap_or_default().to_string(), p["ts"].as_u64().unwrap_or(0), t));
        }
        if l["dir"] == "c2s" && f["method"] == "connect" {
            if let Some((nonce, ts, t_ch)) = challenge.get(&conn) {
                let delay = t.saturating_sub(*t_ch);
                pending.insert((conn, f["id"].as_str().unwrap_or_default().to_string()), (f.clone(), (nonce.clone(), *ts, delay)));
            }
        }
        if l["dir"] == "s2c" && f["type"] == "res" {
            let key = (conn, f["id"].as_str().unwrap_or_default().to_string());
            if let Some((connect, (nonce, ts, delay_ms))) = pending.remove(&key) {
                let (origin, host) = headers.get(&conn).cloned().unwrap_or_default();
                out.push(Attempt { file: name.clone(), conn, nonce, challenge_ts: ts, delay_ms, origin, host, connect, answer: f.clone() });
            }
        }
    }
    out
}

/// The outcome in comparable form: `ok`, or `code|message|details.code|details.reason`.
fn outcome(res: &Value) -> String {
    if res["ok"] == json!(true) {
        return "ok".into();
    }
    let e = &res["error"];
    format!(
        "{}|{}|{}|{}",
        e["code"].as_str().unwrap_or(""),
        e["message"].as_str().unwrap_or(""),
        e["details"]["code"].as_str().unwrap_or(""),
        e["details"]["reason"].as_str().unwrap_or("")
    )
}

fn pre_paired(connect: &Value, token: Option<&str>) -> DeviceStore {
    let p = &connect["params"];
    let d = &p["device"];
    let scopes: Vec<String> = p["scopes"].as_array().unwrap().iter().filter_map(|s| s.as_str().map(str::to_string)).collect();
    let mut tokens = HashMap::new();
    tokens.insert(
        p["role"].as_str().unwrap_or("operator").to_string(),
        DeviceToken::issue(token.unwrap_or("issued-earlier").to_string(), 1, scopes),
    );
    let mut store = DeviceStore::default();
    store.devices.insert(
        d["id"].as_str().unwrap().to_string(),
        PairedDevice {
            device_id: d["id"].as_str().unwrap().to_string(),
            public_key: d["publicKey"].as_str().unwrap().to_string(),
            client_id: p["client"]["id"].as_str().unwrap_or_default().to_string(),
            client_mode: p["client"]["mode"].as_str().unwrap_or_default().to_string(),
            display_name: None,
            operator_label: None,
            platform: None,
            created_at_ms: 1,
            approved_at_ms: 1,
            approved_via: "owner".into(),
            tokens,
        },
    );
    store
}

/// Replay one attempt; returns our answer to the connect.
fn replay(a: &Attempt, already_paired: bool) -> Value {
    let t0 = t0();
    let mut settings = loopback_token_settings(TOKEN, 18789);
    let lan = a.file.starts_with("07-") || a.file.starts_with("08-");
    if lan {
        settings.listen.bind_mode = "lan".into();
        settings.listen.bind_host = "0.0.0.0".into();
        if a.file.starts_with("08-") {
            // The capture's fix: the exact page origin allowlisted (control-ui.md §3.4).
            settings.control_ui_allowed_origins = vec!["http://192.0.2.2:28836".into()];
        }
    }
    if a.file.starts_with("06-") {
        settings.pairing_auto_approve_local = false;
    }
    let unix0 = a.challenge_ts;
    let hub = Hub::new(test_server_info(t0, unix0), settings, t0);
    let auth = &a.connect["params"]["auth"];
    if let Some(token) = auth["deviceToken"].as_str() {
        // The device token came from an earlier pairing (04, 12): the reference knew it in 04;
        // in 12 its pairing table had been wiped, so the token is a stranger.
        if outcome(&a.answer) == "ok" {
            hub.load_devices(pre_paired(&a.connect, Some(token)));
        }
    } else if already_paired {
        hub.load_devices(pre_paired(&a.connect, None));
    }
    let remote: IpAddr = if lan { "192.0.2.2".parse().unwrap() } else { "127.0.0.1".parse().unwrap() };
    let facts = RequestFacts { origin: a.origin.clone(), host: a.host.clone(), ..RequestFacts::default() };
    let admission = hub.admit_upgrade(remote, &facts).unwrap_or_else(|e| panic!("{} conn {}: upgrade refused: {e:?}", a.file, a.conn));
    let sink = Arc::new(Sink::default());
    let mut sc = ServerConnection::new(admission, "conn".into(), a.nonce.clone(), sink, t0, unix0);
    let now = t0 + Duration::from_millis(a.delay_ms + 20);
    sc.handle_text(now, unix0 + a.delay_ms + 20, &a.connect.to_string());
    let id = a.connect["id"].clone();
    while let Some(o) = sc.poll_output() {
        if let Output::Send(text) = o {
            let v: Value = serde_json::from_str(&text).expect("JSON");
            if v["type"] == "res" && v["id"] == id {
                return v;
            }
        }
    }
    panic!("{} conn {}: no answer to connect", a.file, a.conn);
}

fn check_files(dir: &str, prefix: &str) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors().join(dir))
        .expect("vectors dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.ends_with(".jsonl") && !n.ends_with(".http.jsonl")
        })
        .collect();
    files.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for f in &files {
        let attempts = read_attempts(f);
        let mut paired_after_request = false;
        for a in attempts.iter().filter(|a| a.connect["params"]["device"].is_object()) {
            let expected = outcome(&a.answer);
            // A device that was asked to pair and later let in was approved in between
            // (`openclaw devices approve` at the capture's "approved" mark).
            let approved_in_between = paired_after_request && expected == "ok";
            let ours = outcome(&replay(a, approved_in_between));
            if expected.starts_with("NOT_PAIRED") {
                paired_after_request = true;
            }
            if ours != expected {
                failures.push(format!("{} conn {} ({}): reference {expected:?}, ours {ours:?}", a.file, a.conn, a.connect["id"]));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{} of {checked} connects differ:\n{}", failures.len(), failures.join("\n"));
    checked
}

#[test]
fn edge_device_transcripts_verify_or_fail_as_the_reference_did() {
    let n = check_files("ws", "edge-device-");
    assert!(n >= 9, "only {n} device connects found");
}

#[test]
fn every_control_ui_connect_verifies_or_fails_as_the_reference_did() {
    let n = check_files("control-ui", "");
    assert!(n >= 40, "only {n} UI connects found");
}

/// The official UI signs v2 only: each of its captured connects verifies as v2 and not as v3
/// (control-ui.md §0 item 2, checklist 11).
#[test]
fn control_ui_signatures_are_v2_not_v3() {
    use clawgate_core::auth::device::{DeviceProof, PayloadVersion, SignedFields, verify_proof};
    let mut n = 0;
    for f in std::fs::read_dir(vectors().join("control-ui")).unwrap().filter_map(|e| e.ok()) {
        let p = f.path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".jsonl") || name.ends_with(".http.jsonl") {
            continue;
        }
        for a in read_attempts(&p) {
            let params = &a.connect["params"];
            let Some(proof) = DeviceProof::from_value(&params["device"]) else { continue };
            let scopes: Vec<String> = params["scopes"].as_array().unwrap().iter().filter_map(|s| s.as_str().map(str::to_string)).collect();
            let auth = &params["auth"];
            let token = auth["token"].as_str().or(auth["deviceToken"].as_str()).unwrap_or("");
            let fields = SignedFields {
                client_id: params["client"]["id"].as_str().unwrap(),
                client_mode: params["client"]["mode"].as_str().unwrap(),
                role: params["role"].as_str().unwrap(),
                scopes: &scopes,
                token,
                platform: params["client"]["platform"].as_str(),
                device_family: params["client"]["deviceFamily"].as_str(),
            };
            assert_eq!(
                verify_proof(&proof, &fields, &a.nonce, a.challenge_ts + 50),
                Ok(PayloadVersion::V2),
                "{name} conn {}: the UI's signature must verify as v2",
                a.conn
            );
            n += 1;
        }
    }
    assert!(n >= 40, "only {n} UI signatures checked");
}
