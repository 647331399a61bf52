//! The remaining HTTP API routes and the session WS methods end to end (spec http §2, §6.5–§6.8,
//! §8; protocol `sessions.list`, `chat.history`, `chat.send`, `chat.abort`, `tools.*`): a real
//! gateway process, the fake provider on loopback, raw HTTP requests. Statuses, content types,
//! error types and messages are compared with the reference's captures exactly; per-run values
//! (ids, timestamps) by shape.

use std::time::{Duration, Instant};

use base64::Engine as _;
use clawgate_tests::httpc::{Resp, request};
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{connect_cli, events_named};
use clawgate_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
const RW: &[&str] = &["operator.read", "operator.write"];
const HOOK_TOKEN: &str = "hooktoken-abcdef1234567890";
const HSTS: &str = "max-age=31536000; includeSubDomains";
const JSON: &str = "application/json; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Config A of the captures: both OpenAI endpoints, agents `main` + `research` (an explicit
/// fleet), `memory.search` on the fake provider, the admin RPC plugin, hooks; plus HSTS.
fn config_a(up: &FakeUpstream) -> Value {
    json!({
        "gateway": {"mode": "local", "http": {
            "endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}},
            "securityHeaders": {"strictTransportSecurity": HSTS},
        }},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}, "entries": {"main": {}, "research": {"model": "fake/fake-slow"}}},
        "memory": {"search": {"provider": "openai-compatible", "model": "fake-embed", "remote": {"baseUrl": up.base_url(), "apiKey": "fake-embed-key"}}},
        "plugins": {"entries": {"admin-http-rpc": {"enabled": true}}},
        "hooks": {"enabled": true, "token": HOOK_TOKEN, "path": "/hooks"},
    })
}

fn start(cfg: &Value) -> Gateway {
    GatewayBuilder::new().config(serde_json::to_string_pretty(cfg).unwrap()).start()
}

fn bearer(gw: &Gateway) -> String {
    format!("Bearer {}", gw.token())
}

fn send(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    request(gw.addr(), method, path, headers, body, T).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// An authorized JSON POST.
fn post(gw: &Gateway, path: &str, extra: &[(&str, &str)], body: &Value) -> Resp {
    let auth = bearer(gw);
    let mut h = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    h.extend_from_slice(extra);
    send(gw, "POST", path, &h, body.to_string().as_bytes())
}

/// The baseline security headers of every router response (spec http §3), and the configured HSTS.
fn baseline(r: &Resp, hsts: bool) {
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{:?}", r.headers);
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("permissions-policy"), Some("camera=(), microphone=(self), geolocation=()"));
    assert_eq!(r.header("strict-transport-security"), hsts.then_some(HSTS), "{:?}", r.headers);
    assert!(r.header("www-authenticate").is_none() && r.header("access-control-allow-origin").is_none());
}

fn openai_error(r: &Resp) -> (u16, String, String) {
    let v = r.json();
    (r.status, v["error"]["type"].as_str().unwrap_or_default().into(), v["error"]["message"].as_str().unwrap_or_default().into())
}

fn f32s(b64: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn embeddings_float_base64_dimensions_limits_and_overrides() {
    let up = FakeUpstream::start();
    let gw = start(&config_a(&up));
    // float (the default): one vector per input, in order; `usage` always zero (embeddings-ok).
    let r = post(&gw, "/v1/embeddings", &[], &json!({"model": "openclaw/main", "input": ["alpha", "be"]}));
    assert_eq!(r.status, 200, "{}", r.text());
    baseline(&r, true);
    assert_eq!(r.header("content-type"), Some(JSON));
    assert!(r.header("cache-control").is_none(), "API JSON has no Cache-Control (§3)");
    assert_eq!(
        r.json(),
        json!({"object": "list", "data": [
            {"object": "embedding", "index": 0, "embedding": [5.0, 0.5, -1.25]},
            {"object": "embedding", "index": 1, "embedding": [2.0, 0.5, -1.25]}],
            "model": "openclaw/main", "usage": {"prompt_tokens": 0, "total_tokens": 0}})
    );
    let sent = up.requests();
    let last = sent.last().expect("the upstream was called");
    assert!(last.path.ends_with("/v1/embeddings"), "{}", last.path);
    assert_eq!(last.body, json!({"model": "fake-embed", "input": ["alpha", "be"]}));
    assert_eq!(last.header("authorization"), Some("Bearer fake-embed-key"));

    // base64 with dimensions (embeddings-base64-dims): `dimensions` goes upstream, no
    // encoding_format; the answer is little-endian f32 in base64.
    let r = post(
        &gw,
        "/v1/embeddings",
        &[],
        &json!({"model": "openclaw/research", "input": "alpha", "encoding_format": "base64", "dimensions": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "openclaw/research");
    assert_eq!(f32s(v["data"][0]["embedding"].as_str().unwrap()), [5.0, 0.5], "cut to `dimensions`");
    assert_eq!(up.requests().last().unwrap().body, json!({"model": "fake-embed", "input": ["alpha"], "dimensions": 2}));

    // x-openclaw-model: a bare id uses the configured provider; a foreign provider is refused.
    let r = post(&gw, "/v1/embeddings", &[("x-openclaw-model", "other-embed")], &json!({"model": "openclaw/main", "input": "alpha"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests().last().unwrap().body["model"], "other-embed");
    let calls = up.requests().len();
    let bad = [
        (
            vec![("x-openclaw-model", "openai/text-embedding-3-small")],
            json!({"model": "openclaw/main", "input": "alpha"}),
            "This agent does not allow that embedding provider on `/v1/embeddings`.",
        ),
        (
            vec![],
            json!({"model": "openclaw/main", "input": "a", "encoding_format": "hex"}),
            "encoding_format: Invalid option: expected one of \"float\"|\"base64\"",
        ),
        (vec![], json!({"input": "alpha"}), "Missing `model`."),
        (vec![], json!({"model": "text-embedding-3-small", "input": "alpha"}), "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`."),
        (vec![], json!({"model": "openclaw/main", "input": vec!["a"; 129]}), "Too many inputs (max 128)."),
        (vec![], json!({"model": "openclaw/main", "input": []}), "`input` must contain at least one non-empty string."),
        (vec![], json!({"model": "openclaw/main", "input": [1, 2]}), "input: Invalid input"),
    ];
    for (headers, body, want) in bad {
        let r = post(&gw, "/v1/embeddings", &headers, &body);
        assert_eq!(openai_error(&r), (400, "invalid_request_error".into(), want.into()), "{body}");
        baseline(&r, true);
    }
    assert_eq!(up.requests().len(), calls, "nothing invalid reaches the provider");

    // Method before auth; the body limit (5 MiB) in the OpenAI family, closing the connection.
    let r = send(&gw, "GET", "/v1/embeddings", &[], b"");
    assert_eq!((r.status, r.header("allow"), r.header("content-type")), (405, Some("POST"), Some(TEXT)));
    let auth = bearer(&gw);
    let r = send(&gw, "POST", "/v1/embeddings", &[("Authorization", &auth), ("Content-Length", "5242881")], b"");
    assert_eq!(openai_error(&r), (413, "invalid_request_error".into(), "Payload too large".into()));
    assert_eq!(r.header("connection"), Some("close"));
    baseline(&r, true);
    let r = send(&gw, "POST", "/v1/embeddings", &[("Content-Type", "application/json")], b"{}");
    assert_eq!(openai_error(&r), (401, "unauthorized".into(), "Unauthorized".into()));
}

#[test]
fn embeddings_provider_failures_are_an_opaque_500_with_the_reason_logged() {
    // A provider that refuses connections: the reference's `internal error`, the reason in the log.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let cfg = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"responses": {"enabled": true}}}},
        "memory": {"search": {"provider": "openai-compatible", "model": "fake-embed", "remote": {"baseUrl": dead_url}}},
    });
    let gw = start(&cfg);
    let r = post(&gw, "/v1/embeddings", &[], &json!({"model": "openclaw", "input": "alpha"}));
    assert_eq!(r.json(), json!({"error": {"message": "internal error", "type": "api_error"}}));
    assert_eq!(r.status, 500);
    baseline(&r, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.stderr().contains("embedding provider request failed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gw.stderr().contains("embedding provider request failed"), "the 500's reason is logged:\n{}", gw.stderr());
}

#[test]
fn disabled_routes_are_plain_404_and_tools_invoke_is_always_on() {
    let gw = GatewayBuilder::new().start();
    let auth = bearer(&gw);
    for (path, headers) in [
        ("/v1/embeddings", vec![("Authorization", auth.as_str())]),
        ("/api/v1/admin/rpc", vec![("Authorization", auth.as_str())]),
        ("/api/v1/admin/rpc", vec![]),
        ("/hooks/wake", vec![("Authorization", "Bearer hooktoken")]),
    ] {
        let r = send(&gw, "POST", path, &headers, br#"{"method":"health","text":"hi","model":"openclaw","input":"hi"}"#);
        assert_eq!(
            (r.status, r.text(), r.header("content-type")),
            (404, "Not Found".into(), Some(TEXT)),
            "{path} (off-*, hooks-disabled-wake)"
        );
        baseline(&r, false);
    }
    // No config: one implicit agent; the exact capture (tools-invoke-ok-sessions-list).
    let r = post(&gw, "/tools/invoke", &[], &json!({"tool": "sessions_list", "action": "json", "args": {}}));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        r#"{"ok":true,"result":{"content":[{"type":"text","text":"{\n  \"count\": 0,\n  \"sessions\": [],\n  \"hasMore\": false,\n  \"limitApplied\": 100\n}"}],"details":{"count":0,"sessions":[],"hasMore":false,"limitApplied":100}}}"#
    );
    baseline(&r, false);
}

#[test]
fn tools_invoke_errors_limits_and_sessions_list_after_a_chat() {
    let up = FakeUpstream::start();
    let gw = start(&config_a(&up));
    let auth = bearer(&gw);
    // Body and tool errors (tools-invoke-*), each family as captured.
    let r = send(&gw, "POST", "/tools/invoke", &[("Authorization", &auth)], b"");
    assert_eq!(
        (r.status, r.json()),
        (400, json!({"ok": false, "error": {"type": "invalid_request", "message": "tools.invoke requires name"}}))
    );
    baseline(&r, true);
    let r = send(&gw, "POST", "/tools/invoke", &[("Authorization", &auth), ("Content-Type", "application/json")], br#"{"tool":"#);
    assert_eq!(openai_error(&r), (400, "invalid_request_error".into(), "Unexpected end of JSON input".into()));
    for tool in ["exec", "no_such_tool"] {
        let r = post(&gw, "/tools/invoke", &[], &json!({"tool": tool, "agentId": "main", "args": {"command": "echo hi"}}));
        let want = json!({"ok": false, "error": {"type": "not_found", "message": format!("Tool not available: {tool}")}});
        assert_eq!((r.status, r.json()), (404, want));
        assert_eq!(r.header("content-type"), Some(JSON));
    }
    let r = post(&gw, "/tools/invoke", &[], &json!({"tool": "sessions_list", "agentId": "main", "sessionKey": "agent:research:main"}));
    assert_eq!(
        r.json()["error"],
        json!({"type": "invalid_request", "message": "agent \"main\" does not match session key agent \"research\""})
    );
    let r = post(&gw, "/tools/invoke", &[], &json!({"tool": "sessions_list", "agentId": "main", "args": {"limit": "many"}}));
    assert_eq!((r.status, r.json()["error"]["type"].clone()), (400, json!("tool_error")), "E-tools-invoke-bad-args");
    let r = send(&gw, "GET", "/tools/invoke", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")), "405 before auth");
    let r = send(&gw, "POST", "/tools/invoke", &[], br#"{"tool":"sessions_list"}"#);
    assert_eq!(openai_error(&r), (401, "unauthorized".into(), "Unauthorized".into()));
    let r = send(&gw, "POST", "/tools/invoke", &[("Authorization", &auth), ("Content-Length", "3145728")], b"");
    assert_eq!(openai_error(&r), (413, "invalid_request_error".into(), "Payload too large".into()));
    assert_eq!(r.header("connection"), Some("close"));
    baseline(&r, true);

    // A chat completion creates a session; `sessions_list` shows it in the reference's row shape.
    let r = post(&gw, "/tools/invoke", &[], &json!({"name": "sessions_list", "agentId": "main", "args": {}}));
    assert_eq!(r.json()["result"]["details"]["count"], 0);
    let chat =
        post(&gw, "/v1/chat/completions", &[], &json!({"model": "openclaw/main", "messages": [{"role": "user", "content": "Say hello"}]}));
    assert_eq!(chat.status, 200, "{}", chat.text());
    let r = post(&gw, "/tools/invoke", &[], &json!({"name": "sessions_list", "agentId": "main", "args": {}}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let details = &v["result"]["details"];
    assert_eq!(
        (details["count"].clone(), details["hasMore"].clone(), details["limitApplied"].clone()),
        (json!(1), json!(false), json!(100))
    );
    let row = &details["sessions"][0];
    assert!(row["key"].as_str().unwrap().starts_with("agent:main:openai:"), "{row}");
    // The capture's row keys in its order, less `contextTokens` (no model catalog here).
    let capture = std::fs::read_to_string(clawgate_tests::testdata_dir().join("vectors/http/E-tools-invoke-name-field.txt")).unwrap();
    let captured: Value = serde_json::from_str(capture.lines().last().unwrap()).unwrap();
    let want: Vec<&String> =
        captured["result"]["details"]["sessions"][0].as_object().unwrap().keys().filter(|k| *k != "contextTokens").collect();
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert_eq!(keys, want);
    assert_eq!(
        (row["kind"].clone(), row["channel"].clone(), row["model"].clone()),
        (json!("other"), json!("unknown"), json!("fake-model"))
    );
    assert_eq!(
        (row["status"].clone(), row["abortedLastRun"].clone(), row["totalTokens"].clone()),
        (json!("done"), json!(false), json!(16))
    );
    let text: Value = serde_json::from_str(v["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, details, "the text part is the details, pretty-printed");
}

#[test]
fn admin_rpc_auth_before_method_envelopes_and_limits() {
    let up = FakeUpstream::start();
    let gw = start(&config_a(&up));
    let auth = bearer(&gw);
    let rpc = |body: &[u8]| send(&gw, "POST", "/api/v1/admin/rpc", &[("Authorization", &auth), ("Content-Type", "application/json")], body);
    // admin-rpc-health: the id echoed, `Cache-Control: no-store`.
    let r = rpc(br#"{"id":"req-1","method":"health","params":{}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!((v["id"].clone(), v["ok"].clone(), v["payload"]["ok"].clone()), (json!("req-1"), json!(true), json!(true)));
    assert_eq!((r.header("cache-control"), r.header("content-type")), (Some("no-store"), Some(JSON)));
    baseline(&r, true);
    // A missing id is replaced by a UUID; config.get runs as for an owner.
    let r = rpc(br#"{"method":"config.get"}"#);
    let v = r.json();
    assert_eq!((r.status, v["ok"].clone()), (200, json!(true)), "{v}");
    assert_eq!(v["id"].as_str().map(str::len), Some(36), "{v}");
    assert_eq!(v["payload"]["exists"], true);
    let r = rpc(br#"{"method":"commands.list"}"#);
    assert!(r.json()["payload"]["methods"].as_array().is_some_and(|m| m.contains(&json!("health"))));
    // Outside the allowlist (admin-rpc-disallowed-method).
    let r = rpc(br#"{"id":"x","method":"sessions.delete"}"#);
    assert_eq!(
        (r.status, r.json()),
        (
            400,
            json!({"id": "x", "ok": false, "error": {"code": "INVALID_REQUEST", "message": "admin HTTP RPC method is not supported: sessions.delete"}})
        )
    );
    // Body errors (admin-rpc-badjson, admin-rpc-missing-method).
    for (body, msg) in [
        (&br#"{"method":"#[..], "request body must be valid JSON"),
        (br#"{"params":{}}"#, "method must be a non-empty string"),
        (b"", "request body must be JSON"),
    ] {
        let r = rpc(body);
        assert_eq!((r.status, r.json()), (400, json!({"ok": false, "error": {"type": "invalid_request", "message": msg}})));
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    // Auth before the method: GET without auth → 401 (no Cache-Control), with auth → 405 JSON.
    let r = send(&gw, "GET", "/api/v1/admin/rpc", &[], b"");
    assert_eq!(openai_error(&r), (401, "unauthorized".into(), "Unauthorized".into()));
    assert!(r.header("cache-control").is_none());
    let r = send(&gw, "GET", "/api/v1/admin/rpc", &[("Authorization", &auth)], b"");
    assert_eq!(
        (r.status, r.header("allow"), r.header("cache-control"), r.json()),
        (
            405,
            Some("POST"),
            Some("no-store"),
            json!({"ok": false, "error": {"type": "method_not_allowed", "message": "Method Not Allowed"}})
        )
    );
    // Over 1 MiB (admin-rpc-oversized).
    let r = send(&gw, "POST", "/api/v1/admin/rpc", &[("Authorization", &auth), ("Content-Length", "2097152")], b"");
    assert_eq!((r.status, r.json()), (413, json!({"ok": false, "error": {"type": "invalid_request", "message": "Payload too large"}})));
    assert_eq!((r.header("connection"), r.header("cache-control")), (Some("close"), Some("no-store")));
    baseline(&r, true);
}

#[test]
fn hooks_token_methods_wake_agent_and_limits() {
    let up = FakeUpstream::start();
    let gw = start(&config_a(&up));
    let hook_auth = format!("Bearer {HOOK_TOKEN}");
    let hook = |path: &str, headers: &[(&str, &str)], body: &[u8]| send(&gw, "POST", path, headers, body);
    // hooks-wake-ok and the x-openclaw-token alternative.
    let r = hook("/hooks/wake", &[("Authorization", &hook_auth)], br#"{"text":"ping","agentId":"main"}"#);
    assert_eq!((r.status, r.json()), (200, json!({"ok": true, "mode": "now", "eventOutcome": "queued"})));
    assert_eq!(r.header("content-type"), Some(JSON));
    baseline(&r, true);
    let r = hook("/hooks/wake", &[("x-openclaw-token", HOOK_TOKEN)], br#"{"text":"ping"}"#);
    assert_eq!(r.status, 200);
    // The gateway token is not a hook token; plain-text 401 (hooks-wake-gateway-token).
    let gw_auth = bearer(&gw);
    for auth in [gw_auth.as_str(), "Bearer nope"] {
        let r = hook("/hooks/wake", &[("Authorization", auth)], br#"{"text":"ping"}"#);
        assert_eq!((r.status, r.text(), r.header("content-type")), (401, "Unauthorized".into(), Some(TEXT)));
        baseline(&r, true);
    }
    // hooks-wake-query-token, hooks-wake-get-noauth.
    let r = hook("/hooks/wake?token=x", &[("Authorization", &hook_auth)], br#"{"text":"ping"}"#);
    assert_eq!(
        (r.status, r.text(), r.header("content-type")),
        (
            400,
            "Hook token must be provided via Authorization: Bearer <token> or X-OpenClaw-Token header (query parameters are not allowed)."
                .into(),
            Some(TEXT)
        )
    );
    let r = send(&gw, "GET", "/hooks/wake", &[], b"");
    assert_eq!((r.status, r.header("allow"), r.text()), (405, Some("POST"), "Method Not Allowed".into()));
    // Body errors and paths (hooks-wake-missing-text, hooks-agent-missing-message, -base-path, -unknown-mapping).
    let r = hook("/hooks/wake", &[("Authorization", &hook_auth)], br#"{"agentId":"main"}"#);
    assert_eq!((r.status, r.json()), (400, json!({"ok": false, "error": "text required"})));
    let r = hook("/hooks/agent", &[("Authorization", &hook_auth)], br#"{"agentId":"research"}"#);
    assert_eq!((r.status, r.json()), (400, json!({"ok": false, "error": "message required"})));
    for path in ["/hooks", "/hooks/nosuchmapping"] {
        let r = hook(path, &[("Authorization", &hook_auth)], br#"{"a":1}"#);
        assert_eq!((r.status, r.text()), (404, "Not Found".into()), "{path}");
    }
    // 300 KiB, chunked (counted as it arrives): 413 in the hooks family (hooks-oversized).
    let big = vec![b'x'; 300 * 1024];
    let mut chunked = format!("{:x}\r\n", big.len()).into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = hook("/hooks/wake", &[("Authorization", &hook_auth), ("Transfer-Encoding", "chunked")], &chunked);
    assert_eq!((r.status, r.json(), r.header("connection")), (413, json!({"ok": false, "error": "payload too large"}), Some("close")));
    baseline(&r, true);

    // hooks-agent-ok: `{ok, runId}` at once, and the run really reaches the provider.
    let r = hook("/hooks/agent", &[("Authorization", &hook_auth)], br#"{"message":"Say hello from a hook","name":"Test","deliver":false}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["runId"].as_str().map(str::len), Some(36), "{v}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let reached = || {
        up.chat_requests()
            .iter()
            .any(|c| c.body["messages"].as_array().and_then(|m| m.last()).is_some_and(|m| m["content"] == "Say hello from a hook"))
    };
    while !reached() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reached(), "the hook run reached the upstream: {:?}", up.chat_requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_history_over_http_and_ws_after_an_agent_run() {
    let up = FakeUpstream::start();
    let gw = start(&config_a(&up));
    let mut c = connect_cli(&gw.url(), &gw.token(), RW).await.expect("connect");
    let params = json!({"message": "Say hello", "idempotencyKey": "hist-run-1", "agentId": "main", "sessionKey": "agent:main:main"});
    let fin = c.request("agent", Some(params), true, T).await.expect("final");
    assert_eq!(fin.payload.as_ref().map(|p| p["status"].clone()), Some(json!("ok")), "{fin:?}");

    // chat.history: the user turn and the reply, in display shape.
    let h = c.request("chat.history", Some(json!({"sessionKey": "agent:main:main"})), false, T).await.unwrap();
    assert!(h.ok, "{:?}", h.error);
    let p = h.payload.unwrap();
    let msgs = p["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{p}");
    assert_eq!((msgs[0]["role"].clone(), msgs[0]["content"].clone()), (json!("user"), json!("Say hello")), "a typed user turn is a string");
    assert_eq!((msgs[1]["role"].clone(), msgs[1]["content"][0]["text"].clone()), (json!("assistant"), json!("Hello from fake upstream")));
    assert_eq!(msgs[1]["__openclaw"]["runId"], "hist-run-1");
    assert_eq!(
        (p["sessionKey"].clone(), p["hasMore"].clone(), p["totalMessages"].clone()),
        (json!("agent:main:main"), json!(false), json!(2))
    );
    let e = c.request("chat.history", Some(json!({"sessionKey": "main"})), false, T).await.unwrap();
    assert_eq!(e.error.map(|e| e.code), Some("INVALID_REQUEST".to_string()), "a plain key needs an agent in an explicit fleet");

    // sessions.list: the session's row.
    let l = c.request("sessions.list", Some(json!({"includeLastMessage": true})), false, T).await.unwrap();
    let p = l.payload.expect("sessions.list payload");
    let row = p["sessions"].as_array().unwrap().iter().find(|s| s["key"] == "agent:main:main").cloned().expect("the run's session");
    assert_eq!((row["kind"].clone(), row["agentId"].clone(), row["status"].clone()), (json!("direct"), json!("main"), json!("done")));
    assert_eq!((row["lastMessagePreview"].clone(), row["messageCount"].clone()), (json!("Hello from fake upstream"), json!(2)));
    assert!(p["path"].as_str().is_some_and(|s| s.ends_with("sessions.sqlite")), "{p}");

    // GET /sessions/<key>/history (E-session-history-auth / -noauth).
    let auth = bearer(&gw);
    let r = send(&gw, "GET", "/sessions/agent%3Amain%3Amain/history", &[("Authorization", &auth)], b"");
    assert_eq!((r.status, r.header("content-type")), (200, Some(JSON)), "{}", r.text());
    baseline(&r, true);
    let v = r.json();
    assert_eq!((v["sessionKey"].clone(), v["hasMore"].clone()), (json!("agent:main:main"), json!(false)));
    assert_eq!(v["items"], v["messages"]);
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["messages"][1]["content"][0]["text"], "Hello from fake upstream");
    let r = send(&gw, "GET", "/sessions/agent%3Amain%3Amain/history?limit=1", &[("Authorization", &auth)], b"");
    assert_eq!((r.json()["messages"].as_array().map(Vec::len), r.json()["hasMore"].clone()), (Some(1), json!(true)));
    let r = send(&gw, "GET", "/sessions/agent%3Amain%3Amain/history", &[], b"");
    assert_eq!(openai_error(&r), (401, "unauthorized".into(), "Unauthorized".into()));
    let r = send(&gw, "GET", "/sessions/agent%3Amain%3Anope/history", &[("Authorization", &auth)], b"");
    assert_eq!(
        (r.status, r.json()),
        (404, json!({"ok": false, "error": {"type": "not_found", "message": "Session not found: agent:main:nope"}}))
    );
    // /kill: POST only (E-session-kill-get); a known idle session → killed:false; unknown → 404.
    let r = send(&gw, "GET", "/sessions/x/kill", &[("Authorization", &auth)], b"");
    assert_eq!((r.status, r.header("allow"), r.text()), (405, Some("POST"), "Method Not Allowed".into()));
    let r = send(&gw, "POST", "/sessions/agent%3Amain%3Amain/kill", &[("Authorization", &auth)], b"");
    assert_eq!((r.status, r.json()), (200, json!({"ok": true, "killed": false})));
    let r = send(&gw, "POST", "/sessions/agent%3Amain%3Anope/kill", &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 404);

    // tools.catalog and tools.invoke over the WebSocket.
    let cat = c.request("tools.catalog", Some(json!({"agentId": "research"})), false, T).await.unwrap();
    let cat = cat.payload.expect("catalog");
    assert_eq!(cat["agentId"], "research");
    assert_eq!(cat["groups"][0]["tools"][0]["id"], "sessions_list");
    let inv = c
        .request(
            "tools.invoke",
            Some(json!({"name": "sessions_history", "agentId": "main", "args": {"sessionKey": "agent:main:main"}})),
            false,
            T,
        )
        .await;
    let p = inv.unwrap().payload.expect("tools.invoke payload");
    assert_eq!(
        (p["ok"].clone(), p["toolName"].clone(), p["source"].clone()),
        (json!(true), json!("sessions_history"), json!("core")),
        "{p}"
    );
    assert_eq!(p["output"]["details"]["messages"].as_array().map(Vec::len), Some(2), "{p}");
    let inv = c.request("tools.invoke", Some(json!({"name": "exec", "agentId": "main"})), false, T).await.unwrap();
    let p = inv.payload.unwrap();
    assert_eq!((p["ok"].clone(), p["error"]["code"].clone()), (json!(false), json!("not_found")));
    let bad = c.request("tools.invoke", Some(json!({"name": "x", "bogus": 1})), false, T).await.unwrap();
    assert!(!bad.ok);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_send_streams_chat_events_and_a_final() {
    let up = FakeUpstream::start();
    let gw = start(&config_a(&up));
    let mut c = connect_cli(&gw.url(), &gw.token(), RW).await.expect("connect");
    let params =
        json!({"sessionKey": "main", "message": "Say hello", "idempotencyKey": "send-1", "deliver": false, "expectedLeafEntryId": null});
    let res = c.request("chat.send", Some(params.clone()), false, T).await.unwrap();
    assert!(res.ok, "{:?}", res.error);
    assert_eq!(res.payload, Some(json!({"runId": "send-1", "status": "started"})), "a single res, not accepted-then-final");
    let waited = c.request("agent.wait", Some(json!({"runId": "send-1", "timeoutMs": 20000})), false, T).await.unwrap();
    assert_eq!(waited.payload.unwrap()["status"], "ok");
    let chat = events_named(&c.events, "chat");
    assert!(chat.iter().all(|e| e["runId"] == "send-1" && e["sessionKey"] == "agent:main:main"), "{chat:?}");
    let deltas: String = chat.iter().filter(|e| e["state"] == "delta").filter_map(|e| e["deltaText"].as_str()).collect();
    assert_eq!(deltas, "Hello from fake upstream");
    let last = chat.last().expect("chat events");
    assert_eq!((last["state"].clone(), last["message"]["content"][0]["text"].clone()), (json!("final"), json!("Hello from fake upstream")));
    assert!(events_named(&c.events, "agent").iter().any(|a| a["stream"] == "lifecycle"));
    // The same key again: the finished run's status, no second upstream call.
    let again = c.request("chat.send", Some(params), false, T).await.unwrap();
    assert_eq!(again.payload, Some(json!({"runId": "send-1", "status": "ok"})));
    assert_eq!(up.chat_requests().len(), 1);
    let h = c.request("chat.history", Some(json!({"sessionKey": "agent:main:main"})), false, T).await.unwrap();
    assert_eq!(h.payload.unwrap()["messages"].as_array().map(Vec::len), Some(2));
    let e =
        c.request("chat.send", Some(json!({"sessionKey": "main", "message": "  ", "idempotencyKey": "send-2"})), false, T).await.unwrap();
    assert_eq!(e.error.map(|e| e.message), Some("message or attachment required".to_string()));
    let ro = connect_cli(&gw.url(), &gw.token(), &["operator.read"]).await.expect("read-only");
    let mut ro = ro;
    let e =
        ro.request("chat.send", Some(json!({"sessionKey": "main", "message": "x", "idempotencyKey": "send-3"})), false, T).await.unwrap();
    assert_eq!(e.error.map(|e| e.message), Some("missing scope: operator.write".to_string()));
    ro.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_abort_stops_a_slow_run_and_its_upstream_request() {
    let up = FakeUpstream::start();
    up.set_slow_ms(4000);
    let gw = start(&config_a(&up));
    let mut c = connect_cli(&gw.url(), &gw.token(), RW).await.expect("connect");
    // Agent `research` runs on `fake-slow`: the provider waits 4 s before it answers.
    let key = "agent:research:main";
    let started = Instant::now();
    let res =
        c.request("chat.send", Some(json!({"sessionKey": key, "message": "slow please", "idempotencyKey": "slow-1"})), false, T).await;
    assert_eq!(res.unwrap().payload.unwrap()["status"], "started");
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.chat_requests().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up.chat_requests().len(), 1, "the run is waiting on its provider");
    let wrong = c.request("chat.abort", Some(json!({"sessionKey": "agent:main:main", "runId": "slow-1"})), false, T).await.unwrap();
    assert_eq!(wrong.error.map(|e| e.message), Some("runId does not match sessionKey".to_string()));
    let ab = c.request("chat.abort", Some(json!({"sessionKey": key})), false, T).await.unwrap();
    assert_eq!(ab.payload, Some(json!({"ok": true, "aborted": true, "runIds": ["slow-1"]})));
    let waited = c.request("agent.wait", Some(json!({"runId": "slow-1", "timeoutMs": 10000})), false, T).await.unwrap();
    assert_eq!(waited.payload.unwrap()["status"], "aborted");
    assert!(started.elapsed() < Duration::from_millis(3000), "the run stopped without waiting for the provider: {:?}", started.elapsed());
    let chat = events_named(&c.events, "chat");
    assert_eq!(chat.last().map(|e| e["state"].clone()), Some(json!("aborted")), "{chat:?}");
    let again = c.request("chat.abort", Some(json!({"sessionKey": key, "runId": "slow-1"})), false, T).await.unwrap();
    assert_eq!(again.payload, Some(json!({"ok": true, "aborted": false, "runIds": []})));
    // The user turn is kept; the session's last run is marked aborted.
    let l = c.request("sessions.list", Some(json!({"agentId": "research"})), false, T).await.unwrap();
    let p = l.payload.unwrap();
    assert_eq!((p["sessions"][0]["key"].clone(), p["sessions"][0]["abortedLastRun"].clone()), (json!(key), json!(true)), "{p}");
    assert_eq!(p["sessions"][0]["status"], "killed");
    assert_eq!(up.chat_requests().len(), 1, "no retry after an abort");
    c.close().await;
}
