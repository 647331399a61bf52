//! Device identity and pairing on virtual time (spec §4.5, §5.5; protocol §16 items 35, 54–58).

use crate::common;

use base64::Engine as _;
use common::*;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Device {
    key: SigningKey,
}

fn b64u(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Device {
    fn new(seed: u8) -> Self {
        Device { key: SigningKey::from_bytes(&[seed; 32]) }
    }
    fn public(&self) -> Vec<u8> {
        self.key.verifying_key().to_bytes().to_vec()
    }
    fn id(&self) -> String {
        Sha256::digest(self.public()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Options for one signed connect.
#[derive(Clone)]
struct Signed<'a> {
    client: (&'a str, &'a str),
    role: &'a str,
    scopes: Vec<&'a str>,
    auth: Value,
    signed_at: Option<u64>,
    nonce: Option<&'a str>,
    v2: bool,
    min_protocol: u64,
}

impl Default for Signed<'_> {
    fn default() -> Self {
        Signed {
            client: ("cli", "cli"),
            role: "operator",
            scopes: vec!["operator.read", "operator.write"],
            auth: json!({"token": TOKEN}),
            signed_at: None,
            nonce: None,
            v2: false,
            min_protocol: 4,
        }
    }
}

fn challenge_nonce(c: &Conn) -> String {
    c.opened.events_named("connect.challenge")[0]["payload"]["nonce"].as_str().unwrap().to_string()
}

fn signed_connect(c: &Conn, d: &Device, o: &Signed<'_>) -> String {
    let nonce = o.nonce.map(str::to_string).unwrap_or_else(|| challenge_nonce(c));
    let signed_at = o.signed_at.unwrap_or_else(|| c.unix());
    let token = o.auth.get("token").or(o.auth.get("deviceToken")).and_then(Value::as_str).unwrap_or("");
    let scopes = o.scopes.join(",");
    let payload = if o.v2 {
        format!("v2|{}|{}|{}|{}|{scopes}|{signed_at}|{token}|{}", d.id(), o.client.0, o.client.1, o.role, nonce.trim())
    } else {
        format!("v3|{}|{}|{}|{}|{scopes}|{signed_at}|{token}|{}|linux|linux", d.id(), o.client.0, o.client.1, o.role, nonce.trim())
    };
    let sig = d.key.sign(payload.as_bytes());
    connect_frame(
        "c1",
        json!({
            "minProtocol": o.min_protocol, "maxProtocol": 4,
            "client": {"id": o.client.0, "version": "1", "platform": "linux", "deviceFamily": "Linux", "mode": o.client.1},
            "caps": [], "auth": o.auth, "role": o.role, "scopes": o.scopes,
            "device": {"id": d.id(), "publicKey": b64u(&d.public()), "signature": b64u(&sig.to_bytes()), "signedAt": signed_at, "nonce": nonce},
        }),
    )
}

fn connect(gw: &Gw, d: &Device, o: &Signed<'_>) -> (Conn, Vec<Out>) {
    let mut c = gw.open(gw.t0);
    let frame = signed_connect(&c, d, o);
    let outs = c.text(&frame);
    (c, outs)
}

#[test]
fn local_signed_device_is_paired_silently_and_gets_a_device_token() {
    let gw = Gw::new();
    let (_c, outs) = connect(&gw, &Device::new(1), &Signed::default());
    let res = outs.response("c1");
    assert_eq!(res["ok"], true, "{res}");
    let auth = &res["payload"]["auth"];
    assert_eq!(auth["method"], "token");
    assert_eq!(auth["role"], "operator");
    assert_eq!(auth["scopes"], json!(["operator.read", "operator.write"]));
    assert_eq!(auth["recoveryMigrationAllowed"], true);
    assert_eq!(auth["deviceToken"].as_str().unwrap().len(), 43);
    assert!(auth["issuedAtMs"].is_u64());
    let (generation, store) = gw.hub.devices_snapshot();
    assert_eq!(generation, 1);
    assert!(store.devices.contains_key(&Device::new(1).id()));
}

#[test]
fn legacy_v2_signatures_are_accepted() {
    let gw = Gw::new();
    let (_c, outs) = connect(&gw, &Device::new(2), &Signed { v2: true, scopes: vec!["operator.read"], ..Default::default() });
    assert_eq!(outs.response("c1")["ok"], true);
}

#[test]
fn reconnect_with_the_device_token_alone() {
    let gw = Gw::new();
    let d = Device::new(3);
    let (_c, outs) = connect(&gw, &d, &Signed::default());
    let token = outs.response("c1")["payload"]["auth"]["deviceToken"].as_str().unwrap().to_string();

    let (_c, outs) = connect(&gw, &d, &Signed { auth: json!({"deviceToken": token}), ..Default::default() });
    let auth = outs.response("c1")["payload"]["auth"].clone();
    assert_eq!(auth["method"], "device-token");
    assert_eq!(auth["deviceToken"], json!(token), "the same token is echoed");

    // The shared-token field may carry the device token too (shared-token fallback).
    let (_c, outs) = connect(&gw, &d, &Signed { auth: json!({"token": token}), ..Default::default() });
    assert_eq!(outs.response("c1")["payload"]["auth"]["method"], "device-token");

    let (_c, outs) = connect(&gw, &d, &Signed { auth: json!({"deviceToken": "nope"}), ..Default::default() });
    let err = assert_err(&outs.response("c1"), "INVALID_REQUEST", "unauthorized: device token mismatch (rotate/reissue device token)");
    assert_eq!(err["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH");

    let (_c, outs) =
        connect(&gw, &d, &Signed { auth: json!({"deviceToken": token}), scopes: vec!["operator.admin"], ..Default::default() });
    let err =
        assert_err(&outs.response("c1"), "INVALID_REQUEST", "unauthorized: device token scope mismatch (re-pair or approve scope upgrade)");
    assert_eq!(err["details"]["code"], "AUTH_SCOPE_MISMATCH");
}

#[test]
fn wrong_shared_token_with_a_device_suggests_the_device_token() {
    let gw = Gw::new();
    let (mut c, outs) = connect(&gw, &Device::new(4), &Signed { auth: json!({"token": "wrong"}), ..Default::default() });
    // Loopback failures are held back 250 ms.
    assert!(outs.responses().is_empty());
    let outs = c.advance_by(ms(250));
    let err = assert_err(
        &outs.response("c1"),
        "INVALID_REQUEST",
        "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)",
    );
    assert_eq!(err["details"]["canRetryWithDeviceToken"], true);
    assert_eq!(err["details"]["recommendedNextStep"], "retry_with_device_token");
}

#[test]
fn a_device_without_any_credential_is_token_missing() {
    let gw = Gw::new();
    let (_c, outs) = connect(&gw, &Device::new(5), &Signed { auth: json!({}), ..Default::default() });
    let err = assert_err(
        &outs.response("c1"),
        "INVALID_REQUEST",
        "unauthorized: gateway token missing (use this gateway's gateway.auth.token or pair the device)",
    );
    assert_eq!(err["details"]["code"], "AUTH_TOKEN_MISSING");
}

#[test]
fn proof_failures_in_the_reference_order() {
    let gw = Gw::new();
    let d = Device::new(6);
    let cases: Vec<(Signed, &str, &str)> = vec![
        (Signed { signed_at: Some(UNIX0 - 120_001), ..Default::default() }, "device signature expired", "DEVICE_AUTH_SIGNATURE_EXPIRED"),
        (Signed { nonce: Some(" "), ..Default::default() }, "device nonce required", "DEVICE_AUTH_NONCE_REQUIRED"),
        (Signed { nonce: Some("some-other-nonce"), ..Default::default() }, "device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH"),
    ];
    for (o, message, code) in cases {
        let (_c, outs) = connect(&gw, &d, &o);
        let err = assert_err(&outs.response("c1"), "INVALID_REQUEST", message);
        assert_eq!(err["details"]["code"], code);
        assert_eq!(outs.close(), Some((1008, message.to_string())));
    }
    // A signature over other fields (here: other scopes than the ones sent).
    let mut c = gw.open(gw.t0);
    let frame = signed_connect(&c, &d, &Signed::default())
        .replace("\"scopes\":[\"operator.read\",\"operator.write\"]", "\"scopes\":[\"operator.read\"]");
    let outs = c.text(&frame);
    let err = assert_err(&outs.response("c1"), "INVALID_REQUEST", "device signature invalid");
    assert_eq!(err["details"], json!({"code": "DEVICE_AUTH_SIGNATURE_INVALID", "reason": "device-signature"}));
    // An id that is not the key's hash.
    let mut c = gw.open(gw.t0);
    let frame = signed_connect(&c, &d, &Signed::default()).replace(&d.id(), &"ab".repeat(32));
    let outs = c.text(&frame);
    assert_err(&outs.response("c1"), "INVALID_REQUEST", "device identity mismatch");
    // Signed at the edge of the skew window is still fine.
    let (_c, outs) = connect(&gw, &d, &Signed { signed_at: Some(UNIX0 - 120_000), ..Default::default() });
    assert_eq!(outs.response("c1")["ok"], true);
}

#[test]
fn a_node_pairs_with_protocol_3_and_may_only_call_node_methods() {
    let gw = Gw::new();
    let o = Signed { client: ("node-host", "node"), role: "node", scopes: vec![], min_protocol: 3, ..Default::default() };
    let (mut c, outs) = connect(&gw, &Device::new(7), &o);
    let hello = outs.response("c1")["payload"].clone();
    assert_eq!(hello["protocol"], 4);
    assert_eq!(hello["auth"]["role"], "node");
    assert_eq!(hello["auth"]["scopes"], json!([]));
    assert!(hello["auth"]["deviceToken"].is_string());
    assert!(hello["auth"].get("recoveryMigrationAllowed").is_none());
    let outs = c.request("s", "status", None);
    assert_err(&outs.response("s"), "INVALID_REQUEST", "unauthorized role: node");
    let outs = c.request("h", "health", None);
    assert_eq!(outs.response("h")["ok"], true);
    // The 11th consecutive unauthorized-role answer (the health call above broke the streak)
    // is sent, then the socket is closed.
    for i in 0..11 {
        let outs = c.request(&format!("x{i}"), "status", None);
        assert_err(&outs.response(&format!("x{i}")), "INVALID_REQUEST", "unauthorized role: node");
        if i < 10 {
            assert!(outs.close().is_none(), "closed early at {i}");
        } else {
            assert_eq!(outs.close(), Some((1008, "repeated unauthorized calls".into())));
        }
    }
}

#[test]
fn a_node_without_a_device_is_refused() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let outs = c.text(
        &connect_frame("c1", client_params("node-host", "node", Some(TOKEN), &[])).replace("\"role\":\"operator\"", "\"role\":\"node\""),
    );
    let err = assert_err(&outs.response("c1"), "NOT_PAIRED", "device identity required");
    assert_eq!(err["details"]["code"], "DEVICE_IDENTITY_REQUIRED");
}

#[test]
fn a_remote_device_needs_approval_and_operators_with_pairing_hear_about_it() {
    let gw = Gw::new();
    let (mut watcher, _) = gw.open_cli(gw.t0, &["operator.pairing"]);
    let mut c = gw.open_from(remote_ip(), &Default::default(), gw.t0);
    let frame = signed_connect(&c, &Device::new(8), &Signed::default());
    let outs = c.text(&frame);
    let err = assert_err(&outs.response("c1"), "NOT_PAIRED", "pairing required: device is not approved yet");
    assert_eq!(err["details"]["code"], "PAIRING_REQUIRED");
    assert_eq!(err["details"]["reason"], "not-paired");
    assert!(err["details"]["requestId"].is_string());
    assert_eq!(outs.close().map(|c| c.0), Some(1008));
    let events = watcher.pump();
    let req = events.events_named("device.pair.requested");
    assert_eq!(req.len(), 1, "{events:?}");
    assert_eq!(req[0]["payload"]["deviceId"], json!(Device::new(8).id()));
    let (_, store) = gw.hub.devices_snapshot();
    assert_eq!(store.pending.len(), 1);
    assert!(store.devices.is_empty());
}

#[test]
fn silent_local_pairing_is_announced_to_pairing_operators_only() {
    let gw = Gw::new();
    let (mut pairing, _) = gw.open_cli(gw.t0, &["operator.pairing"]);
    let (mut reader, _) = gw.open_cli(gw.t0, &["operator.read"]);
    let (_c, outs) = connect(&gw, &Device::new(9), &Signed::default());
    assert_eq!(outs.response("c1")["ok"], true);
    let resolved = pairing.pump().events_named("device.pair.resolved");
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["payload"]["decision"], "approved");
    assert_eq!(resolved[0]["payload"]["deviceId"], json!(Device::new(9).id()));
    assert!(reader.pump().events_named("device.pair.resolved").is_empty());
}

#[test]
fn the_device_store_round_trips_through_json() {
    let gw = Gw::new();
    let (_c, outs) = connect(&gw, &Device::new(10), &Signed::default());
    let token = outs.response("c1")["payload"]["auth"]["deviceToken"].clone();
    let (_, store) = gw.hub.devices_snapshot();
    let text = serde_json::to_string(&store).unwrap();
    // A restarted gateway that loads the store accepts the same device token.
    let gw2 = Gw::new();
    gw2.hub.load_devices(serde_json::from_str(&text).unwrap());
    let (_c, outs) = connect(&gw2, &Device::new(10), &Signed { auth: json!({"deviceToken": token}), ..Default::default() });
    assert_eq!(outs.response("c1")["payload"]["auth"]["method"], "device-token");
}

/// A damaged pairing store yields every record before the damage (issue 11): truncation,
/// garbage in the middle, a record whose key is not its id; a store that parses is untouched.
#[test]
fn salvage_reads_the_intact_records_of_a_damaged_store() {
    use clawgate_core::auth::device::salvage_store;
    let dev = |id: &str| {
        json!({"deviceId": id, "publicKey": "k", "clientId": "c", "clientMode": "webchat", "createdAtMs": 1,
               "roles": ["operator"], "scopes": [], "tokens": {}})
    };
    let req = json!({"requestId": "r1", "deviceId": "d9", "publicKey": "k", "role": "operator", "scopes": [],
                     "clientId": "c", "clientMode": "webchat", "reason": "not-paired", "ts": 5});
    let whole = format!(
        "{{\"devices\": {{\"d1\": {}, \"d2\": {}, \"d3\": {}}}, \"pending\": {{\"r1\": {}}}}}",
        dev("d1"),
        dev("d2"),
        dev("d3"),
        req
    );
    let all = salvage_store(whole.as_bytes());
    assert!(all.error.is_empty(), "{}", all.error);
    assert_eq!((all.store.devices.len(), all.store.pending.len()), (3, 1), "a sound store is read whole");
    // Truncated inside d3: d1 and d2 survive, the pending map is never reached.
    let cut = whole.find("\"d3\"").unwrap() + 20;
    let t = salvage_store(&whole.as_bytes()[..cut]);
    let mut ids: Vec<&String> = t.store.devices.keys().collect();
    ids.sort();
    assert_eq!(ids, ["d1", "d2"]);
    assert!(!t.error.is_empty());
    // Garbage in the middle of d2: d1 before it, and d3 and the request found past it.
    let at = whole.find("\"d2\"").unwrap();
    let bad = format!("{}{}", &whole[..at], whole[at..].replacen("\"clientId\":\"c\"", "\"clientId\":\u{0}", 1));
    let g = salvage_store(bad.as_bytes());
    let mut ids: Vec<&String> = g.store.devices.keys().collect();
    ids.sort();
    assert_eq!(ids, ["d1", "d3"], "{}", g.error);
    assert_eq!(g.store.pending.len(), 1);
    // A record filed under another device's id is not intact.
    let swapped = whole.replacen("\"d2\": {", "\"dX\": {", 1);
    let s = salvage_store(swapped.as_bytes());
    assert!(!s.store.devices.contains_key("dX") && s.store.devices.len() == 2);
    // Not JSON at all: nothing, and the reason.
    let n = salvage_store(b"\x00\x01 not json");
    assert!(n.store.devices.is_empty() && !n.error.is_empty());
}
