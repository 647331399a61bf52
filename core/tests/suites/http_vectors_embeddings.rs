//! `/v1/embeddings` against the reference captures (`embeddings-*.txt`, `upstream-embeddings-*.txt`).

use crate::http_capture;

use clawgate_core::auth::Secret;
use clawgate_core::config::api::EmbeddingsConfig;
use clawgate_core::openai::Agents;
use clawgate_core::openai::api_response::{ApiResponse, BodyError};
use clawgate_core::openai::embeddings::{EmbeddingsCall, EmbeddingsContext, body_error, prepare};
use http_capture::{Capture, load, load_upstream, names};
use serde_json::{Value, json};

/// Config A: two agents (explicit fleet), `memory.search` → the fake upstream.
fn agents() -> Agents {
    Agents { ids: vec!["main".into(), "research".into()], default: None }
}

fn embeddings() -> EmbeddingsConfig {
    EmbeddingsConfig {
        provider: "openai-compatible".into(),
        model: "fake-embed".into(),
        base_url: "http://127.0.0.1:28812/v1".into(),
        api_key: Some(Secret::new("fake-embed-key")),
    }
}

/// The fake upstream answers `[0.1, 0.2, 0.3, 0.4]` for every input.
fn fake_upstream(call: &EmbeddingsCall) -> Vec<u8> {
    let data: Vec<Value> =
        (0..call.input_count).map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3, 0.4]})).collect();
    json!({"object": "list", "data": data, "model": call.upstream_model}).to_string().into_bytes()
}

fn assert_matches(c: &Capture, r: &ApiResponse) {
    assert_eq!(r.status, c.status, "{}: status", c.name);
    assert_eq!(r.content_type, c.content_type(), "{}: content type", c.name);
    if c.content_type().starts_with("application/json") {
        assert_eq!(r.json_body(), Some(c.json()), "{}: body", c.name);
        // Byte-exact too (key order, number formatting).
        assert_eq!(String::from_utf8_lossy(&r.body), c.body, "{}: body bytes", c.name);
    } else {
        assert_eq!(String::from_utf8_lossy(&r.body), c.body, "{}: body", c.name);
    }
    for h in ["allow", "cache-control"] {
        assert_eq!(r.header(h), c.header(h), "{}: {h}", c.name);
    }
}

fn run(c: &Capture) -> (ApiResponse, Option<EmbeddingsCall>) {
    let req = c.req();
    if req.method != "POST" {
        return (ApiResponse::method_not_allowed(), None);
    }
    let a = agents();
    let e = embeddings();
    let ctx = EmbeddingsContext {
        agents: &a,
        config: Some(&e),
        header_agent: req.header("x-openclaw-agent-id").or(req.header("x-openclaw-agent")),
        header_model: req.header("x-openclaw-model"),
    };
    match prepare(&req.body_bytes(), &ctx) {
        Ok(call) => {
            let body = fake_upstream(&call);
            let r = call.respond(200, &body).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
            (r, Some(call))
        }
        Err(e) => (e.response(), None),
    }
}

#[test]
fn every_embeddings_capture() {
    let all = names(&["embeddings-"]);
    assert!(all.len() >= 9, "captures found: {all:?}");
    for n in &all {
        let c = load(n);
        let (r, _) = run(&c);
        assert_matches(&c, &r);
    }
}

fn check_upstream(call: &EmbeddingsCall, log_name: &str) {
    let log = load_upstream(log_name);
    assert_eq!(log.method_path, "POST /v1/embeddings", "{log_name}");
    assert!(call.upstream.url.ends_with(&log.method_path["POST ".len()..]), "{log_name}: {}", call.upstream.url);
    let body: Value = serde_json::from_slice(&call.upstream.body).expect("upstream body is JSON");
    let mut other = body.as_object().cloned().unwrap_or_default();
    let input = other.remove("input").unwrap_or(Value::Null);
    assert_eq!(Value::Object(other), log.other_fields, "{log_name}: other fields");
    assert_eq!(input, log.input, "{log_name}: input");
    assert_eq!(Some(call.upstream.body.len()), log.content_length, "{log_name}: content-length");
    let header = |k: &str| call.upstream.headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(header("accept"), Some("application/json"));
    assert!(header("authorization").is_some_and(|a| a.starts_with("Bearer fake-em")));
}

#[test]
fn upstream_requests_match_the_fake_upstream_log() {
    for (capture, log) in [
        ("embeddings-base64-dims.txt", "upstream-embeddings-base64-dims.txt"),
        ("embeddings-model-override.txt", "upstream-embeddings-model-override.txt"),
    ] {
        let (_, call) = run(&load(capture));
        check_upstream(&call.expect("a successful call"), log);
    }
    // `embeddings-ok` itself was not kept; its request was two strings to `openclaw/main`.
    let a = agents();
    let e = embeddings();
    let ctx = EmbeddingsContext { agents: &a, config: Some(&e), header_agent: None, header_model: None };
    let call = prepare(br#"{"model":"openclaw/main","input":["alpha","beta"]}"#, &ctx).expect("valid");
    check_upstream(&call, "upstream-embeddings-ok.txt");
}

#[test]
fn body_errors_use_the_openai_family() {
    let r = body_error(BodyError::TooLarge);
    assert_eq!((r.status, r.close), (413, true));
    assert_eq!(r.json_body(), Some(json!({"error": {"message": "Payload too large", "type": "invalid_request_error"}})));
}
