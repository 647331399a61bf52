//! `/api/v1/admin/rpc` against the reference captures (`admin-rpc-*.txt`, `off-admin-rpc-*.txt`).

use crate::http_capture;

use clawgate_core::connection::Reply;
use clawgate_core::http::admin_rpc::{BodyError, body_error, handle};
use clawgate_core::openai::api_response::ApiResponse;
use clawgate_core::wire::ErrorShape;
use http_capture::{Capture, load, names};
use serde_json::Value;

fn assert_matches(c: &Capture, r: &ApiResponse) {
    assert_eq!(r.status, c.status, "{}: status", c.name);
    assert_eq!(r.content_type, c.content_type(), "{}: content type", c.name);
    assert_eq!(r.header("cache-control"), c.header("cache-control"), "{}: cache-control", c.name);
    assert_eq!(r.close, c.header("connection") == Some("close"), "{}: connection", c.name);
    if c.content_type().starts_with("application/json") {
        assert_eq!(r.json_body(), Some(c.json()), "{}: body", c.name);
        assert_eq!(String::from_utf8_lossy(&r.body), c.body, "{}: body bytes", c.name);
    } else {
        assert_eq!(String::from_utf8_lossy(&r.body), c.body, "{}: body", c.name);
    }
}

/// The gateway method, answered with what the reference answered (its payload or error): the
/// envelope, the id and the status mapping are this module's.
fn replay(c: &Capture) -> impl FnOnce(&str, Option<&Value>) -> Reply + '_ {
    move |_method, _params| {
        let v = c.json();
        if v["ok"] == true {
            // `health` comes from the snapshot cache (serialized once); the rest as values.
            // The raw payload text is kept (serde_json does not round-trip every float).
            let raw = c.body.find("\"payload\":").zip(c.body.rfind(",\"meta\":")).and_then(|(a, b)| c.body.get(a + 10..b));
            match raw.filter(|_| v.get("meta").is_some()) {
                Some(raw) => Reply::OkJson(raw.into()),
                None => Reply::Ok(Some(v["payload"].clone())),
            }
        } else {
            Reply::err(ErrorShape::new(v["error"]["code"].as_str().unwrap_or_default(), v["error"]["message"].as_str().unwrap_or_default()))
        }
    }
}

#[test]
fn every_admin_rpc_capture() {
    let all = names(&["admin-rpc-", "off-admin-rpc-"]);
    assert!(all.len() >= 11, "captures found: {all:?}");
    let mut checked = 0;
    for n in &all {
        let c = load(n);
        if n.starts_with("off-") {
            // Plugin disabled: the route does not exist (the shell's plain 404).
            assert_matches(&c, &ApiResponse::not_found());
            continue;
        }
        if c.status == 401 {
            // Gateway auth runs first (the shell), in the OpenAI family without Cache-Control.
            assert_eq!(c.json()["error"]["type"], "unauthorized", "{n}");
            assert_eq!(c.header("cache-control"), None, "{n}");
            continue;
        }
        let r = if c.status == 413 {
            body_error(BodyError::TooLarge)
        } else {
            // When the capture's request had no id, the reference's generated UUID is ours too.
            let id = c.json()["id"].as_str().unwrap_or("00000000-0000-4000-8000-000000000000").to_string();
            handle(&c.req().body_bytes(), &id, replay(&c))
        };
        assert_matches(&c, &r);
        checked += 1;
    }
    assert!(checked >= 5, "checked {checked}");
}

#[test]
fn method_not_allowed_after_auth() {
    let r = clawgate_core::http::admin_rpc::method_not_allowed();
    assert_eq!((r.status, r.header("allow"), r.header("cache-control")), (405, Some("POST"), Some("no-store")));
}
