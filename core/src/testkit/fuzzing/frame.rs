//! The `frame` target.

use super::*;

/// Frame parsing and validation on arbitrary bytes (as lossy UTF-8 text and as raw JSON).
pub fn frame(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_parse_request(&text);

    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    // The value path agrees with the text path.
    assert_eq!(wire::request_from_value(v.clone()).is_ok(), wire::parse_request(&text).is_ok(), "text and value parsing disagree");
    for name in crate::wire::PROTOCOL_SCHEMA_NAMES {
        let schema = wire::schema(name);
        assert!(schema.is_object(), "{name} missing");
        check_validate(schema, &v);
    }
    // The input as a schema, against itself and a few fixed instances.
    check_validate(&v, &v);
    for inst in [json!(null), json!({"type": "req", "id": "1", "method": "health"}), json!([1, "a", {}]), json!("x")] {
        check_validate(&v, &inst);
    }
    // Connect params: the value itself and its `params`.
    for p in [Some(&v), v.get("params")] {
        if let Ok(cp) = crate::connection::handshake::parse_connect_params(p) {
            let _ = crate::connection::handshake::negotiate(&cp);
            let _ = crate::connection::handshake::resolve_role(&cp);
            let _ = crate::connection::handshake::keeps_requested_scopes(&cp.client, false, true);
        }
    }
    // What a client makes of it.
    let _ = serde_json::from_value::<wire::ServerFrame>(v.clone());
    let _ = serde_json::from_value::<wire::ErrorShape>(v.clone());
    if let (Some(method), params) = (v.get("method").and_then(Value::as_str), v.get("params")) {
        let scopes: Vec<String> =
            v.get("scopes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
        for role in [Role::Operator, Role::Node] {
            let _ = crate::auth::scopes::authorize(role, &scopes, method, params);
        }
        let _ = crate::auth::scopes::required_scope(method, params);
        let _ = crate::auth::scopes::event_gate(method);
    }
}

/// JSON equality with numbers compared as `f64` within a relative 1e-12.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w))),
        _ => a == b,
    }
}

fn check_validate(schema: &Value, v: &Value) {
    let errors = crate::wire::schema::collect_errors(schema, v);
    assert!(errors.len() <= crate::wire::schema::MAX_RAW_ERRORS);
    match crate::wire::schema::validate(schema, v) {
        Ok(()) => assert!(errors.is_empty()),
        Err(msg) => assert!(!msg.is_empty() && !errors.is_empty()),
    }
}

/// `parse_request` never panics; what it accepts is a normalized, closed request frame that
/// parses back to itself; what it refuses gets a well-formed error response.
fn check_parse_request(text: &str) {
    match wire::parse_request(text) {
        Ok(r) => {
            assert!(!r.id.is_empty() && !r.method.is_empty(), "empty id/method accepted: {r:?}");
            let mut back = serde_json::to_value(&r).expect("request serializes");
            back["type"] = json!("req");
            assert!(
                crate::wire::schema::validate(wire::schema("RequestFrameSchema"), &back).is_ok(),
                "normalized request fails the schema: {back}"
            );
            let again = wire::parse_request(&back.to_string()).expect("a normalized request parses again");
            // serde_json's float parsing may be one ULP off (no `float_roundtrip`), so numbers
            // compare approximately; everything else exactly.
            assert!(
                again.id == r.id
                    && again.method == r.method
                    && again.traceparent == r.traceparent
                    && again.expected_profile_id == r.expected_profile_id
                    && match (&again.params, &r.params) {
                        (Some(a), Some(b)) => same_json(a, b),
                        (a, b) => a == b,
                    },
                "normalization is not idempotent: {r:?} became {again:?}"
            );
            let ok = wire::response_ok(&r.id, r.params.as_ref());
            assert!(serde_json::from_str::<Value>(&ok).is_ok(), "response_ok is not JSON: {ok}");
        }
        Err(FrameError::NotJson) => assert!(serde_json::from_str::<Value>(text).is_err()),
        Err(FrameError::NotRequest { id, detail }) => {
            assert!(!detail.is_empty());
            let e = ErrorShape::invalid_request(format!("{}: {detail}", wire::msg::INVALID_REQUEST_FRAME));
            let res = wire::response_err(&id.unwrap_or(json!("invalid")), None, &e);
            let parsed: Value = serde_json::from_str(&res).unwrap_or_else(|e| panic!("error response is not JSON ({e}): {res}"));
            assert_eq!(parsed["ok"], json!(false));
        }
    }
}
