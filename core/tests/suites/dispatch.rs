//! Requests after the handshake (protocol.md §6.3, §10.1, checklist 37–46, 51–52): scope
//! denials, unknown methods, a second `connect`, invalid frames, method params and the
//! process-wide request-start queue.

use crate::common;

use clawgate_core::connection::Phase;
use common::*;
use serde_json::{Value, json};

fn missing_scope(res: &Value, scope: &str) {
    let e = assert_err(res, "FORBIDDEN", &format!("missing scope: {scope}"));
    assert_eq!(e["details"], json!({"code": "MISSING_SCOPE", "missingScope": scope, "requiredScopes": [scope]}));
}

#[test]
fn scope_denials_of_a_read_only_socket() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    missing_scope(&c.call("1", "config.patch", Some(json!({"raw": "{}"}))), "operator.admin");
    missing_scope(&c.call("2", "agent", Some(json!({"message": "hi", "idempotencyKey": "k1"}))), "operator.write");
    missing_scope(&c.call("3", "device.pair.list", Some(json!({}))), "operator.pairing");
    missing_scope(&c.call("4", "no.such.method", None), "operator.admin");
    // Denials never reach the shell and the socket stays usable.
    assert!(!c.log.iter().any(|(_, o)| matches!(o, Out::Dispatched { .. })));
    assert_eq!(c.call("5", "status", None)["ok"], true);
    assert_eq!(c.phase(), Phase::Open);
}

#[test]
fn unknown_method_with_admin_is_invalid_request() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.admin"]);
    let outs = c.request("u", "no.such.method", Some(json!({})));
    assert!(outs.contains(&Out::Dispatched { id: "u".into(), method: "no.such.method".into() }));
    let res = outs.response("u");
    assert_err(&res, "INVALID_REQUEST", "unknown method: no.such.method");
    assert!(res["error"].get("details").is_none());
}

#[test]
fn second_connect() {
    let gw = Gw::new();
    // With read: FORBIDDEN missing operator.admin; the connection stays usable.
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    missing_scope(&c.call("c2", "connect", Some(cli_params(TOKEN, &["operator.admin"]))), "operator.admin");
    assert_eq!(c.call("h", "health", None)["ok"], true);
    assert_eq!(c.sock.conn.principal().unwrap().1, &["operator.read".to_string()], "scopes unchanged");
    // With admin: "connect is only valid as the first request".
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.admin"]);
    assert_err(
        &c.call("c2", "connect", Some(cli_params(TOKEN, &["operator.read"]))),
        "INVALID_REQUEST",
        "connect is only valid as the first request",
    );
    assert_eq!(c.call("h", "health", None)["ok"], true);
    assert_eq!(c.phase(), Phase::Open);
}

#[test]
fn invalid_frames_after_hello_are_answered_and_keep_the_socket() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    let one = |outs: Vec<Out>| -> Value {
        let r = outs.responses();
        assert_eq!(outs.len(), 1, "{outs:?}");
        r[0].clone()
    };
    // No id at all → id "invalid".
    let r = one(c.text(r#"{"type":"req","method":"health"}"#));
    assert_eq!(r["id"], "invalid");
    assert_err(&r, "INVALID_REQUEST", "invalid request frame: must have required property 'id'");
    // Non-string and empty ids are echoed as they were.
    let r = one(c.text(r#"{"type":"req","id":7,"method":"health"}"#));
    assert_eq!(r["id"], 7);
    assert!(r["error"]["message"].as_str().unwrap().starts_with("invalid request frame: "), "{r}");
    let r = one(c.text(r#"{"type":"req","id":"","method":"health"}"#));
    assert_eq!(r["id"], "");
    assert_eq!(r["error"]["code"], "INVALID_REQUEST");
    // An extra top-level property.
    let r = one(c.text(r#"{"type":"req","id":"x1","method":"health","bogus":1}"#));
    assert_eq!(r["id"], "x1");
    assert_err(&r, "INVALID_REQUEST", "invalid request frame: at root: unexpected property 'bogus'");
    // Clients never send events or responses.
    let r = one(c.text(r#"{"type":"event","event":"tick","id":"e1"}"#));
    assert_eq!(r["id"], "e1");
    assert_eq!(r["error"]["code"], "INVALID_REQUEST");
    // A traceparent longer than 128 characters makes the frame invalid ...
    let long = json!({"type":"req","id":"t1","method":"health","traceparent": "a".repeat(129)});
    let r = one(c.json(&long));
    assert_eq!(r["id"], "t1");
    assert!(r["error"]["message"].as_str().unwrap().starts_with("invalid request frame: "));
    // ... a short malformed one is ignored.
    let short = json!({"type":"req","id":"t2","method":"health","traceparent": "zz"});
    assert_eq!(c.json(&short).response("t2")["ok"], true);
    // Non-JSON text and undecodable binary are silently ignored.
    assert!(c.text("this is not json {").is_empty());
    assert!(c.binary(&[0xff, 0xfe, 0x00]).is_empty());
    assert_eq!(c.phase(), Phase::Open);
    assert_eq!(c.call("ok", "health", None)["ok"], true);
}

#[test]
fn method_params_and_results() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0 + secs(2), &["operator.read"]);
    assert_err(
        &c.call("g1", "config.get", Some(json!({"nope": true}))),
        "INVALID_REQUEST",
        "invalid config.get params: at root: unexpected property 'nope'",
    );
    // Checklist 13 and 14: `{}` and no params at all.
    for params in [Some(json!({})), None] {
        let r = c.call("g2", "config.get", params);
        let p = &r["payload"];
        for k in ["path", "exists", "hash", "config", "valid"] {
            assert!(p.get(k).is_some(), "config.get lacks {k}: {p}");
        }
    }
    // Checklist 11: health without params has a numeric durationMs.
    let h = c.call("h", "health", None);
    assert!(h["payload"]["durationMs"].is_u64(), "{h}");
    // health accepts even a string as params.
    assert_eq!(c.call("h2", "health", Some(json!("x")))["ok"], true);
    // Checklist 12: system-presence has the gateway's own row.
    let sp = c.call("sp", "system-presence", Some(json!({})));
    let rows = sp["payload"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["mode"] == "gateway" && r["reason"] == "self"), "{sp}");
    // status: uptime on virtual time.
    let st = c.call("st", "status", None);
    assert_eq!(st["payload"]["uptimeMs"], 2_000);
}

#[test]
fn requests_pipelined_after_connect_are_answered_in_order() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let mut outs = c.text(&cli_connect("c1"));
    for i in 0..5 {
        outs.extend(c.request(&format!("r{i}"), "health", None));
    }
    let ids: Vec<Value> = outs.responses().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, vec![json!("c1"), json!("r0"), json!("r1"), json!("r2"), json!("r3"), json!("r4")]);
}

#[test]
fn request_start_queue_holds_256_and_answers_busy() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    c.hold_dispatches = true;
    for i in 0..256 {
        let outs = c.request(&format!("q{i}"), "health", None);
        assert_eq!(outs, vec![Out::Dispatched { id: format!("q{i}"), method: "health".into() }], "request {i}");
    }
    assert_eq!(gw.hub.pending_requests(), 256);
    // The 257th is answered at once, never runs, and the socket stays open.
    let outs = c.request("over", "health", None);
    assert_eq!(outs.len(), 1, "{outs:?}");
    let e = assert_err(&outs.response("over"), "UNAVAILABLE", BUSY);
    assert_eq!(e["retryable"], true);
    assert!(e.get("retryAfterMs").is_none() && e.get("details").is_none(), "{e}");
    assert_eq!(c.phase(), Phase::Open);
    // The queue is process-wide: another operator socket is refused too.
    let (mut other, _) = gw.open_cli(gw.t0, &["operator.read"]);
    assert_err(&other.call("o1", "health", None), "UNAVAILABLE", BUSY);
    // Completing one request frees one slot (answers may come in any order).
    let outs = c.complete_held(100);
    assert_eq!(outs.response("q100")["ok"], true);
    assert_eq!(gw.hub.pending_requests(), 255);
    let outs = c.request("next", "health", None);
    assert_eq!(outs, vec![Out::Dispatched { id: "next".into(), method: "health".into() }]);
    assert_err(&c.call("over2", "health", None), "UNAVAILABLE", BUSY);
    // Completing everything empties the queue.
    while !c.held.is_empty() {
        let last = c.held.len() - 1;
        c.complete_held(last);
    }
    assert_eq!(gw.hub.pending_requests(), 0);
    assert_eq!(other.call("o2", "health", None)["ok"], true);
}

#[test]
fn dropped_dispatches_free_their_slots() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    c.hold_dispatches = true;
    for i in 0..10 {
        c.request(&format!("q{i}"), "health", None);
    }
    assert_eq!(gw.hub.pending_requests(), 10);
    // A shell that loses a request (e.g. the socket went away) drops the Dispatch.
    c.held.clear();
    assert_eq!(gw.hub.pending_requests(), 0);
    // Completing after the socket closed emits nothing.
    c.request("late", "health", None);
    c.shutdown("gateway stopping");
    assert!(c.complete_held(0).is_empty());
}

#[test]
fn requests_denied_by_scope_do_not_take_queue_slots() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    c.hold_dispatches = true;
    for i in 0..300 {
        missing_scope(&c.call(&format!("d{i}"), "config.patch", None), "operator.admin");
    }
    assert_eq!(gw.hub.pending_requests(), 0);
}
