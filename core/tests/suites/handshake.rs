//! Handshake on virtual time: the challenge, `hello-ok`, device-less scope rules and every bad
//! first frame of protocol.md §16 items 15–25 and 31–34 (§4).

use crate::common;

use clawgate_core::connection::Phase;
use common::*;
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn challenge_comes_first_without_seq() {
    let gw = Gw::new();
    let at = gw.t0 + ms(1234);
    let c = gw.open(at);
    // The pre-auth size limit is applied before anything else, then the challenge.
    assert_eq!(c.opened.len(), 2, "{:?}", c.opened);
    assert_eq!(c.opened[0], Out::MaxSize(MAX_PREAUTH));
    let ch = &c.opened.frames()[0];
    assert_eq!(keys(ch), ["event", "payload", "type"], "no seq, no stateVersion on the challenge: {ch}");
    assert_eq!(ch["type"], "event");
    assert_eq!(ch["event"], "connect.challenge");
    let p = &ch["payload"];
    assert_eq!(keys(p), ["capabilities", "nonce", "ts"]);
    assert_eq!(p["nonce"], "11111111-1111-4111-8111-000000000001");
    assert_eq!(p["ts"], UNIX0 + 1234);
    assert_eq!(p["capabilities"], json!(["model-catalog-snapshot"]));
    assert_eq!(c.phase(), Phase::AwaitingConnect);
    assert_eq!(gw.hub.preauth_count(loopback()), 1);
}

#[test]
fn hello_ok_shape_and_size_limits() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0 + ms(5_000));
    let outs = c.text(&cli_connect("w1"));
    // Order: raise the size limit, hello-ok, then the post-connect health event (seq 1).
    assert_eq!(outs[0], Out::MaxSize(MAX_PAYLOAD), "{outs:?}");
    let frames = outs.frames();
    assert_eq!(frames.len(), 2, "{frames:#?}");
    let res = &frames[0];
    assert_eq!(res["type"], "res");
    assert_eq!(res["id"], "w1");
    assert_eq!(res["ok"], true);
    let h = &res["payload"];
    assert_eq!(h["type"], "hello-ok");
    assert_eq!(h["protocol"], 4);
    assert_eq!(h["server"]["version"], clawgate_core::VERSION);
    assert_eq!(h["server"]["connId"], c.sock.conn.conn_id());
    assert!(h["server"]["connId"].as_str().is_some_and(|s| !s.is_empty()));
    let methods: Vec<&str> = h["features"]["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    for m in ["health", "status", "system-presence", "config.get"] {
        assert!(methods.contains(&m), "{m} not advertised: {methods:?}");
    }
    let events: Vec<&str> = h["features"]["events"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    for e in ["connect.challenge", "tick", "health", "presence", "shutdown"] {
        assert!(events.contains(&e), "{e} not advertised: {events:?}");
    }
    let snap = &h["snapshot"];
    let presence = snap["presence"].as_array().expect("snapshot.presence array");
    assert_eq!(presence[0]["mode"], "gateway");
    assert_eq!(presence[0]["reason"], "self");
    assert_eq!(snap["health"]["ok"], true);
    assert!(snap["health"]["durationMs"].is_u64());
    assert!(snap["stateVersion"]["presence"].is_u64() && snap["stateVersion"]["health"].is_u64(), "{}", snap["stateVersion"]);
    assert_eq!(snap["uptimeMs"], 5_000, "hub started at t0, connect at t0+5s");
    assert!(snap.get("configPath").is_none(), "configPath is for admins only");
    assert_eq!(h["auth"], json!({"role": "operator", "scopes": ["operator.read"], "method": "token"}));
    assert_eq!(h["policy"]["maxPayload"], 26_214_400);
    assert_eq!(h["policy"]["maxBufferedBytes"], 52_428_800);
    assert_eq!(h["policy"]["tickIntervalMs"], 30_000);
    assert_hello_key_order_matches_the_reference(&res["payload"]);
    // The health event right after hello-ok is the socket's first seq.
    let ev = &frames[1];
    assert_eq!(ev["event"], "health");
    assert_eq!(ev["seq"], 1);
    assert_eq!(ev["stateVersion"], snap["stateVersion"]);
    assert_eq!(c.phase(), Phase::Open);
    assert_eq!(c.sock.conn.principal().unwrap().1, &["operator.read".to_string()]);
    // Authenticated: the pre-auth slot is returned.
    assert_eq!(gw.hub.preauth_count(loopback()), 0);
    // Exactly two size changes over the socket's life: 64 KiB at open, 25 MiB at hello.
    let sizes: Vec<Out> = c.log.iter().map(|(_, o)| o.clone()).filter(|o| matches!(o, Out::MaxSize(_))).collect();
    assert_eq!(sizes, vec![Out::MaxSize(MAX_PREAUTH), Out::MaxSize(MAX_PAYLOAD)]);
}

#[test]
fn cli_keeps_requested_scopes_even_admin() {
    let gw = Gw::new();
    let scopes = ["operator.admin", "operator.read", "operator.write", "operator.approvals", "operator.pairing"];
    let (_c, hello) = gw.open_cli(gw.t0, &scopes);
    assert_eq!(hello["auth"]["scopes"], json!(scopes));
    assert_eq!(hello["auth"]["role"], "operator");
    // Admin sockets see the config path, state dir and auth mode.
    assert_eq!(hello["snapshot"]["authMode"], "token");
    assert!(hello["snapshot"]["configPath"].is_string());
    assert!(hello["snapshot"]["stateDir"].is_string());
}

#[test]
fn backend_helper_keeps_scopes_and_status_works() {
    // Checklist 10: gateway-client/backend keeps [operator.read]; `status` without params is ok.
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let mut p = client_params("gateway-client", "backend", Some(TOKEN), &["operator.read"]);
    p["client"]["displayName"] = json!("gateway:status");
    let hello = c.connect_ok(p);
    assert_eq!(hello["auth"]["scopes"], json!(["operator.read"]));
    let res = c.call("s1", "status", None);
    assert_eq!(res["ok"], true, "{res}");
}

#[test]
fn probe_mode_v3_is_accepted_with_no_scopes() {
    // Checklist 6 and 33.
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let mut p = client_params("cli", "probe", Some(TOKEN), &["operator.read"]);
    p["minProtocol"] = json!(3);
    p["maxProtocol"] = json!(3);
    p["client"]["version"] = json!("dev");
    let hello = c.connect_ok(p);
    assert_eq!(hello["protocol"], 4);
    assert_eq!(hello["auth"]["scopes"], json!([]));
    // Checklist 8 and 9: health works with scopes:[], status/config.get/system-presence do not.
    assert_eq!(c.call("h", "health", None)["ok"], true);
    for (id, m) in [("a", "status"), ("b", "system-presence"), ("c", "config.get")] {
        let res = c.call(id, m, Some(json!({})));
        let e = assert_err(&res, "FORBIDDEN", "missing scope: operator.read");
        assert_eq!(e["details"], json!({"code": "MISSING_SCOPE", "missingScope": "operator.read", "requiredScopes": ["operator.read"]}));
    }
}

#[test]
fn test_client_scopes_are_cleared() {
    // Checklist 7.
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let hello = c.connect_ok(client_params("test", "test", Some(TOKEN), &["operator.read", "operator.admin"]));
    assert_eq!(hello["auth"]["scopes"], json!([]));
    let res = c.call("s", "status", None);
    let e = assert_err(&res, "FORBIDDEN", "missing scope: operator.read");
    assert_eq!(e["details"]["code"], "MISSING_SCOPE");
}

#[test]
fn origin_header_clears_cli_scopes() {
    let gw = Gw::new();
    let mut c = gw.open_from(loopback(), &origin_facts("http://localhost:18789"), gw.t0);
    let hello = c.connect_ok(cli_params(TOKEN, &["operator.admin"]));
    assert_eq!(hello["auth"]["scopes"], json!([]));
}

#[test]
fn wide_protocol_range_and_token_in_password_field() {
    // Checklist 34.
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let mut p = cli_params(TOKEN, &["operator.read"]);
    p["minProtocol"] = json!(1);
    p["maxProtocol"] = json!(99);
    assert_eq!(c.connect_ok(p)["protocol"], 4);
    // Checklist 24.
    let mut c = gw.open(gw.t0);
    let mut p = client_params("cli", "cli", None, &["operator.read"]);
    p["auth"] = json!({"password": TOKEN});
    let hello = c.connect_ok(p);
    assert_eq!(hello["auth"]["method"], "token");
}

#[test]
fn binary_connect_and_binary_requests_work() {
    // Checklist 20.
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let outs = c.binary(cli_connect("b1").as_bytes());
    assert_eq!(outs.response("b1")["payload"]["type"], "hello-ok");
    let outs = c.binary(req("b2", "health", None).as_bytes());
    assert_eq!(outs.response("b2")["ok"], true);
}

/// What a rejected first frame must produce.
struct Rejection {
    /// `(error.code, error.message)` of the response, or `None` when there is no response.
    response: Option<(&'static str, String)>,
    details: Option<Value>,
    close: (u16, String),
}

fn check_rejection(name: &str, input: &dyn Fn(&mut Conn) -> Vec<Out>, want: Rejection) {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0 + ms(10));
    let mut outs = input(&mut c);
    // Wrong-token failures from loopback are held back; let them out.
    if c.phase() == Phase::ConnectPending {
        let until = c.sock.conn.poll_timeout().unwrap();
        outs.extend(c.advance_to(until));
    }
    let frames = outs.frames();
    match &want.response {
        None => assert!(frames.is_empty(), "{name}: expected no response, got {frames:#?}"),
        Some((code, message)) => {
            assert_eq!(frames.len(), 1, "{name}: {frames:#?}");
            let e = assert_err(&frames[0], code, message);
            assert_eq!(e.get("details"), want.details.as_ref(), "{name}: details");
            // The response precedes the close.
            let pos_res = outs.iter().position(|o| matches!(o, Out::Frame(_))).unwrap();
            let pos_close = outs.iter().position(|o| matches!(o, Out::Close(..))).unwrap();
            assert!(pos_res < pos_close, "{name}: response must precede the close");
        }
    }
    assert_eq!(outs.close(), Some(want.close.clone()), "{name}");
    assert!(want.close.1.len() <= 120, "{name}: close reason too long");
    assert!(!outs.iter().any(|o| matches!(o, Out::MaxSize(_) | Out::Dispatched { .. } | Out::Ping)), "{name}: {outs:?}");
    assert_eq!(c.phase(), Phase::Closing, "{name}");
    // Nothing else happens before the close grace ends; then the TCP connection is dropped.
    let closed_at = c.first_time(|o| matches!(o, Out::Close(..))).unwrap();
    let more = c.text(&cli_connect("again"));
    assert!(more.is_empty(), "{name}: input after close must be ignored: {more:?}");
    let before = c.advance_to(closed_at + ms(999));
    assert!(before.is_empty(), "{name}: {before:?}");
    let grace = c.advance_to(closed_at + ms(1000));
    assert_eq!(grace, vec![Out::Terminate], "{name}");
    assert_eq!(c.phase(), Phase::Closed);
    assert_eq!(c.sock.conn.poll_timeout(), None);
}

fn mode_params(mutate: impl Fn(&mut Value)) -> String {
    let mut p = cli_params(TOKEN, &["operator.read"]);
    mutate(&mut p);
    connect_frame("m1", p)
}

#[test]
fn bad_first_frames_match_the_reference() {
    let policy = |r: &str| (1008u16, r.to_string());
    // 15: another method first.
    check_rejection(
        "15 first request health",
        &|c| c.text(r#"{"type":"req","id":"a1","method":"health","params":{}}"#),
        Rejection {
            response: Some(("INVALID_REQUEST", "invalid handshake: first request must be connect".into())),
            details: None,
            close: policy("invalid handshake: first request must be connect"),
        },
    );
    // 16: non-JSON text.
    check_rejection(
        "16 non-JSON",
        &|c| c.text("this is not json {"),
        Rejection { response: None, details: None, close: (1000, String::new()) },
    );
    // 17: JSON that is not a request frame.
    check_rejection(
        "17 not a request",
        &|c| c.text(r#"{"hello":"world"}"#),
        Rejection { response: None, details: None, close: policy("invalid request frame") },
    );
    // 18: a connect frame with an extra top-level key.
    check_rejection(
        "18 extra key",
        &|c| {
            let mut f: Value = serde_json::from_str(&cli_connect("x1")).unwrap();
            f["extra"] = json!(true);
            c.json(&f)
        },
        Rejection { response: None, details: None, close: policy("invalid request frame") },
    );
    // 19: binary garbage (the bytes of edge-bad-binary-garbage.jsonl).
    check_rejection(
        "19 binary garbage",
        &|c| c.binary(&[0x00, 0xff, 0x10, 0x80, 0x7b]),
        Rejection { response: None, details: None, close: (1000, String::new()) },
    );
    // 21: client.mode "operator".
    let m = "invalid connect params: at /client/mode: must be equal to one of the allowed values";
    check_rejection(
        "21 mode operator",
        &|c| c.text(&mode_params(|p| p["client"]["mode"] = json!("operator"))),
        Rejection { response: Some(("INVALID_REQUEST", m.into())), details: None, close: policy(m) },
    );
    // 22: role "admin".
    check_rejection(
        "22 role admin",
        &|c| c.text(&mode_params(|p| p["role"] = json!("admin"))),
        Rejection { response: Some(("INVALID_REQUEST", "invalid role".into())), details: None, close: policy("invalid role") },
    );
    // 23: wrong token (loopback: delayed, then the same response).
    check_rejection(
        "23 wrong token",
        &|c| c.text(&connect_frame("d1", cli_params("wrong-token", &["operator.read"]))),
        Rejection {
            response: Some(("INVALID_REQUEST", TOKEN_MISMATCH_LOCAL.into())),
            details: Some(
                json!({"code": "AUTH_TOKEN_MISMATCH", "authReason": "token_mismatch", "canRetryWithDeviceToken": false, "recommendedNextStep": "update_auth_credentials"}),
            ),
            close: policy(TOKEN_MISMATCH_LOCAL),
        },
    );
    // 25: neither auth nor device.
    check_rejection(
        "25 no auth",
        &|c| c.text(&connect_frame("e1", client_params("cli", "cli", None, &["operator.read"]))),
        Rejection {
            response: Some(("NOT_PAIRED", "device identity required".into())),
            details: Some(json!({"code": "DEVICE_IDENTITY_REQUIRED"})),
            close: policy("device identity required"),
        },
    );
    // 31 and 32: protocol mismatch (high and low).
    for (min, max) in [(5, 6), (1, 3)] {
        check_rejection(
            &format!("31/32 protocol [{min},{max}]"),
            &|c| {
                c.text(&mode_params(|p| {
                    p["minProtocol"] = json!(min);
                    p["maxProtocol"] = json!(max);
                }))
            },
            Rejection {
                response: Some(("INVALID_REQUEST", "protocol mismatch".into())),
                details: Some(
                    json!({"code": "PROTOCOL_MISMATCH", "clientMinProtocol": min, "clientMaxProtocol": max, "expectedProtocol": 4, "minimumProbeProtocol": 3}),
                ),
                close: (1002, "protocol mismatch".into()),
            },
        );
    }
}

#[test]
fn wrong_first_frame_ids_are_echoed() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let outs = c.text(&req("zz-9", "status", None));
    assert_eq!(outs.responses()[0]["id"], "zz-9");
}

#[test]
fn long_close_reasons_are_truncated_to_120_bytes() {
    let gw = Gw::new();
    // Several schema errors: the message is long, the close reason is cut at 120 bytes.
    let mut c = gw.open(gw.t0);
    let outs = c.text(&mode_params(|p| {
        p["client"]["mode"] = json!("operator");
        p["client"]["id"] = json!("nope");
    }));
    let msg = outs.responses()[0]["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.len() > 120, "{msg}");
    assert!(msg.starts_with("invalid connect params: at /client/id: must be equal to one of the allowed values; "), "{msg}");
    let (code, reason) = outs.close().unwrap();
    assert_eq!(code, 1008);
    assert_eq!(reason.len(), 120);
    assert!(msg.starts_with(&reason));

    // A multi-byte property name: truncation respects UTF-8 boundaries.
    let mut c = gw.open(gw.t0);
    let outs = c.text(&mode_params(|p| p["é".repeat(80)] = json!(1)));
    let msg = outs.responses()[0]["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.starts_with("invalid connect params: at root: unexpected property 'é"), "{msg}");
    let (_, reason) = outs.close().unwrap();
    assert!(reason.len() <= 120 && reason.len() >= 118, "{}", reason.len());
    assert!(msg.starts_with(&reason));
}

#[test]
fn control_ui_without_device_is_refused() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let outs = c.text(&connect_frame("u1", client_params("openclaw-tui", "ui", Some(TOKEN), &["operator.read"])));
    let e =
        assert_err(&outs.response("u1"), "INVALID_REQUEST", "control ui requires device identity (use HTTPS or localhost secure context)");
    assert_eq!(e["details"]["code"], "CONTROL_UI_DEVICE_IDENTITY_REQUIRED");
    assert_eq!(outs.close().unwrap().0, 1008);
}

#[test]
fn disallowed_origin_is_refused_before_auth() {
    let gw = Gw::new();
    let mut c = gw.open_from(loopback(), &origin_facts("http://evil.example"), gw.t0);
    // Even the wrong token is not looked at: the origin check comes first (§4.4 step 8).
    let outs = c.text(&connect_frame("o1", cli_params("wrong", &[])));
    let res = outs.response("o1");
    assert_eq!(res["error"]["details"]["code"], "CONTROL_UI_ORIGIN_NOT_ALLOWED");
    assert_eq!(outs.close().unwrap().0, 1008);
}

/// The keys of `hello-ok` and its parts come in the reference's order (keys only one side has
/// are left out of the comparison): the frame as sent (parsed in order), against a captured one.
fn assert_hello_key_order_matches_the_reference(ours: &Value) {
    let capture =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/vectors/ws/edge-client-close-4000.jsonl")).unwrap();
    let theirs = capture
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| {
            let f = &l["frame"];
            let f: Value = f.as_str().map_or(f.clone(), |t| serde_json::from_str(t).unwrap_or(Value::Null));
            (f["payload"]["type"] == "hello-ok").then(|| f["payload"].clone())
        })
        .expect("a captured hello-ok");
    for path in ["", "server", "features", "snapshot", "auth"] {
        let (o, t) = if path.is_empty() { (ours, &theirs) } else { (&ours[path], &theirs[path]) };
        let t_keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        let o_keys: Vec<&String> = o.as_object().unwrap().keys().filter(|k| t_keys.contains(k)).collect();
        let t_keys: Vec<&String> = t_keys.into_iter().filter(|k| o_keys.contains(k)).collect();
        assert_eq!(o_keys, t_keys, "key order of hello-ok {path}");
    }
}
