//! The OpenAI-compatible HTTP API end to end (spec http §4–§9): a real gateway process, a real
//! fake provider on loopback (the only test double: an upstream we cannot run here), raw HTTP
//! requests. Shapes are compared with the reference's captures; statuses, types and messages
//! exactly.

use std::time::{Duration, Instant};

use clawgate_tests::httpc::{Resp, request};
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

/// A gateway whose config enables both OpenAI endpoints on `up` (provider `fake`).
fn start(up: &FakeUpstream, extra: Value) -> Gateway {
    let mut cfg = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
    });
    merge(&mut cfg, extra);
    GatewayBuilder::new().config(serde_json::to_string_pretty(&cfg).unwrap()).start()
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn bearer(gw: &Gateway) -> String {
    format!("Bearer {}", gw.token.clone().expect("token"))
}

fn post(gw: &Gateway, path: &str, extra: &[(&str, &str)], body: &Value) -> Resp {
    let auth = bearer(gw);
    let mut h = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    h.extend_from_slice(extra);
    request(gw.addr(), "POST", path, &h, body.to_string().as_bytes(), T).expect("request")
}

fn get(gw: &Gateway, path: &str, auth: Option<&str>) -> Resp {
    let h: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
    request(gw.addr(), "GET", path, &h, b"", T).expect("request")
}

fn chat_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Say hello"}]})
}

fn error_of(r: &Resp) -> (u16, String, String) {
    let v = r.json();
    (r.status, v["error"]["type"].as_str().unwrap_or_default().to_string(), v["error"]["message"].as_str().unwrap_or_default().to_string())
}

#[test]
fn models_are_agent_first_and_need_auth() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let auth = bearer(&gw);
    let r = get(&gw, "/v1/models", Some(&auth));
    assert_eq!(r.status, 200, "{}", r.text());
    let ids: Vec<String> = r.json()["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["openclaw", "openclaw/default", "openclaw/main"], "§6.2 list order");
    assert_eq!(r.json()["data"][0], json!({"id": "openclaw", "object": "model", "created": 0, "owned_by": "openclaw", "permission": []}));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "§3 baseline headers");
    let r = get(&gw, "/v1/models/openclaw%2Fdefault", Some(&auth));
    assert_eq!((r.status, r.json()["id"].clone()), (200, json!("openclaw/default")));
    let r = get(&gw, "/v1/models/gpt-4o", Some(&auth));
    assert_eq!(error_of(&r), (400, "invalid_request_error".into(), "Invalid model id.".into()));
    let r = get(&gw, "/v1/models/openclaw:main", Some(&auth));
    assert_eq!(r.status, 404, "aliases are not listed ids");
    let r = get(&gw, "/v1/models", None);
    assert_eq!(error_of(&r), (401, "unauthorized".into(), "Unauthorized".into()));
    assert!(r.header("www-authenticate").is_none());
    let r = request(gw.addr(), "POST", "/v1/models", &[], b"", T).unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")), "405 before auth");
    let r = request(gw.addr(), "GET", "/v1/chat/completions", &[], b"", T).unwrap();
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = get(&gw, "/v1/chat/completions/", Some(&auth));
    assert_eq!(r.status, 404, "no trailing-slash normalisation");
}

#[test]
fn endpoints_are_absent_unless_enabled() {
    let gw = GatewayBuilder::new().start();
    let auth = bearer(&gw);
    for path in ["/v1/models", "/v1/models/openclaw"] {
        let r = get(&gw, path, Some(&auth));
        assert_eq!((r.status, r.text()), (404, "Not Found".to_string()), "{path}: disabled endpoints do not exist (§2)");
    }
    let r = post(&gw, "/v1/chat/completions", &[], &chat_body("openclaw", false));
    assert_eq!(r.status, 404);
}

#[test]
fn chat_completion_non_stream_reaches_the_provider() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let r = post(&gw, "/v1/chat/completions", &[], &chat_body("openclaw", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl_"), "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "openclaw", "the request model is echoed");
    assert_eq!(v["choices"][0]["message"], json!({"role": "assistant", "content": "Hello from fake upstream"}));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"], json!({"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}));
    let sent = up.chat_requests();
    assert_eq!(sent.len(), 1);
    let b = &sent[0].body;
    assert_eq!(sent[0].header("authorization"), Some("Bearer fake-upstream-key"), "the provider key goes upstream");
    assert_eq!(
        (b["model"].clone(), b["stream"].clone(), b["stream_options"].clone()),
        (json!("fake-model"), json!(true), json!({"include_usage": true}))
    );
    assert_eq!(b["max_completion_tokens"], 4096, "the model's maxTokens");
    assert_eq!(b["messages"].as_array().unwrap().last().unwrap()["content"], "Say hello");
}

#[test]
fn chat_completion_stream_has_the_reference_chunk_sequence() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let mut body = chat_body("openclaw/main", true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&gw, "/v1/chat/completions", &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/event-stream; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(r.sse_events().is_empty(), "chat streams have no event: lines");
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant"}), "role chunk first");
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl_"));
    assert!(chunks.iter().all(|c| c["id"] == id && c["object"] == "chat.completion.chunk" && c["model"] == "openclaw/main"));
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello from fake upstream");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!((finish["choices"][0]["delta"].clone(), finish["choices"][0]["finish_reason"].clone()), (json!({}), json!("stop")));
    let usage = &chunks[chunks.len() - 1];
    assert_eq!((usage["choices"].clone(), usage["usage"]["total_tokens"].clone()), (json!([]), json!(16)), "usage chunk after finish");
}

#[test]
fn tool_calls_round_trip_in_the_openai_format() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({"agents": {"defaults": {"model": {"primary": "fake/fake-tools"}}}}));
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let first = json!({"model": "openclaw", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": tools});
    let r = post(&gw, "/v1/chat/completions", &[], &first);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!((call["type"].clone(), call["function"]["name"].clone()), (json!("function"), json!("get_weather")));
    assert_eq!(serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(), json!({"city": "Paris"}));
    assert_eq!(up.chat_requests()[0].body["tools"][0]["function"]["name"], "get_weather", "client tools are passed upstream");

    // The client runs the tool and sends the result back.
    let follow = json!({"model": "openclaw", "tools": tools, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"}]});
    let r = post(&gw, "/v1/chat/completions", &[], &follow);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "tool said: 18C and sunny");

    // Streamed: an id/name chunk, argument chunks, finish_reason tool_calls.
    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let r = post(&gw, "/v1/chat/completions", &[], &streamed);
    let chunks: Vec<Value> = r.sse_data().iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    let start = chunks.iter().find(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"].is_string()).expect("a call chunk");
    assert_eq!(start["choices"][0]["delta"]["tool_calls"][0]["function"], json!({"name": "get_weather", "arguments": ""}));
    let args: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()).collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn upstream_failures_map_to_clear_errors_within_seconds() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let admin = [("x-openclaw-model", "fake/fake-401")];
    let r = post(&gw, "/v1/chat/completions", &admin, &chat_body("openclaw", false));
    let (status, kind, message) = error_of(&r);
    // Not a 401: OpenAI SDKs would report the provider's refusal as a bad gateway key.
    assert_eq!((status, kind.as_str()), (502, "api_error"), "upstream 401 is a provider error");
    assert!(
        message.contains("provider fake") && message.contains("rejected its API key") && message.contains("fake upstream error 401"),
        "says whose key and keeps the provider's message: {message}"
    );

    let before = up.chat_requests().len();
    let started = Instant::now();
    let r = post(&gw, "/v1/chat/completions", &[("x-openclaw-model", "fake/fake-429")], &chat_body("openclaw", false));
    assert_eq!(error_of(&r).0, 429);
    assert_eq!(error_of(&r).1, "rate_limit_error");
    assert!(up.chat_requests().len() - before > 1, "429 is retried");
    assert!(started.elapsed() < Duration::from_secs(25), "bounded retries, not the reference's minutes");

    let r = post(&gw, "/v1/chat/completions", &[("x-openclaw-model", "fake/fake-500")], &chat_body("openclaw", false));
    assert_eq!(error_of(&r), (502, "api_error".into(), "upstream provider error".into()));

    let r = post(&gw, "/v1/chat/completions", &[("x-openclaw-model", "fake/fake-flaky")], &chat_body("openclaw", false));
    assert_eq!(
        (r.status, r.json()["choices"][0]["message"]["content"].clone()),
        (200, json!("Recovered after a retry")),
        "transient 503 retried"
    );

    let r = post(&gw, "/v1/chat/completions", &[("x-openclaw-model", "nope/model")], &chat_body("openclaw", false));
    let unknown = "Unknown model: nope/model. Run `openclaw models list --refresh --provider nope` to inspect this provider's model choices, then retry with a model supported by your account.";
    assert_eq!((error_of(&r).0, error_of(&r).2), (404, unknown.into()), "chat-bad-model-override");

    // Streamed failure after the headers: an error event, then [DONE].
    let r = post(&gw, "/v1/chat/completions", &[("x-openclaw-model", "fake/fake-500")], &chat_body("openclaw", true));
    let data = r.sse_data();
    assert_eq!(r.status, 200);
    assert!(data.iter().any(|d| d.contains("\"error\"")) && data.last().map(String::as_str) == Some("[DONE]"), "{data:?}");
}

#[test]
fn chat_validation_matches_the_reference() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let cases = [
        (
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}),
            "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`.",
        ),
        (json!({"model": "openclaw/nope", "messages": [{"role": "user", "content": "x"}]}), "Unknown agent 'nope'."),
        (json!({"messages": []}), "Missing user message in `messages`."),
        (json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3}), "`temperature` must be between 0 and 2."),
        (json!([]), ": Invalid input: expected object, received array"),
    ];
    for (body, want) in cases {
        let r = post(&gw, "/v1/chat/completions", &[], &body);
        assert_eq!(error_of(&r), (400, "invalid_request_error".into(), want.to_string()), "{body}");
    }
    let r = post(&gw, "/v1/chat/completions", &[("x-openclaw-session-key", "cron:nightly")], &chat_body("openclaw", false));
    assert_eq!(error_of(&r).2, "`x-openclaw-session-key` cannot use reserved internal session namespaces.");
    assert!(up.chat_requests().is_empty(), "nothing invalid reaches the provider");
    // Over the 20 MiB limit (declared): 413 before the body is read.
    let auth = bearer(&gw);
    let r = request(gw.addr(), "POST", "/v1/chat/completions", &[("Authorization", &auth), ("Content-Length", "20971521")], b"", T);
    let r = r.expect("413 answered");
    assert_eq!(error_of(&r), (413, "invalid_request_error".into(), "Payload too large".into()));
}

#[test]
fn responses_non_stream_stream_and_previous_response_id() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({"agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}}}));
    let r = post(&gw, "/v1/responses", &[], &json!({"model": "openclaw", "input": "My name is Ada", "user": "sdk-user-1"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json();
    let id = first["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("resp_"), "{first}");
    assert_eq!(
        (first["object"].clone(), first["status"].clone(), first["model"].clone()),
        (json!("response"), json!("completed"), json!("openclaw"))
    );
    let item = &first["output"][0];
    assert_eq!(
        (item["type"].clone(), item["role"].clone(), item["phase"].clone()),
        (json!("message"), json!("assistant"), json!("final_answer"))
    );
    assert_eq!(item["content"][0]["text"], "echo: My name is Ada (messages: 1)");
    assert!(first["usage"]["input_tokens"].is_u64() && first["usage"]["output_tokens"].is_u64(), "Responses-style usage");

    // Continuity: the second request carries the first exchange upstream.
    let r = post(
        &gw,
        "/v1/responses",
        &[],
        &json!({"model": "openclaw", "input": "What is my name?", "user": "sdk-user-1", "previous_response_id": id}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["output"][0]["content"][0]["text"], "echo: What is my name? (messages: 3)");
    let sent = up.chat_requests();
    let msgs = sent.last().unwrap().body["messages"].as_array().unwrap().clone();
    assert_eq!(msgs[0]["content"], "My name is Ada");
    assert_eq!(msgs[1]["role"], "assistant");

    // Stored responses can be read back (beyond the reference); unknown ids are 404.
    let auth = bearer(&gw);
    let g = get(&gw, &format!("/v1/responses/{id}"), Some(&auth));
    assert_eq!((g.status, g.json()["id"].clone()), (200, json!(id.clone())));
    let g = get(&gw, "/v1/responses/resp_nope", Some(&auth));
    assert_eq!(error_of(&g).0, 404);
    let r = post(&gw, "/v1/responses", &[], &json!({"model": "openclaw", "input": "x", "previous_response_id": "resp_nope"}));
    assert_eq!(error_of(&r).0, 404, "an unknown previous_response_id is refused, not silently dropped");

    // Streamed: the event sequence of §7, each with event: and data:, then [DONE].
    let r = post(&gw, "/v1/responses", &[], &json!({"model": "openclaw", "input": "Stream it", "stream": true}));
    assert_eq!(r.status, 200);
    let events = r.sse_events();
    assert_eq!(events.first().map(String::as_str), Some("response.created"), "{events:?}");
    for want in [
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.output_item.done",
    ] {
        assert!(events.iter().any(|e| e == want), "{want} missing in {events:?}");
    }
    assert_eq!(events.last().map(String::as_str), Some("response.completed"));
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    let unknown = post(&gw, "/v1/responses", &[], &json!({"model": "openclaw", "input": "x", "not_an_openai_key": true}));
    assert_eq!(error_of(&unknown), (400, "invalid_request_error".into(), ": Unrecognized key: \"not_an_openai_key\"".into()));
    // Strict clients (issue 11): the OpenAI Agents SDK sends `include: []` and
    // `parallel_tool_calls`; the AI SDK requires `annotations` (and `logprobs`) on output_text.
    let strict = post(&gw, "/v1/responses", &[], &json!({"model": "openclaw", "input": "x", "include": [], "parallel_tool_calls": false}));
    assert_eq!(strict.status, 200, "{}", strict.text());
    let part = &strict.json()["output"][0]["content"][0];
    assert_eq!(
        (part["type"].clone(), part["annotations"].clone(), part["logprobs"].clone()),
        (json!("output_text"), json!([]), json!([])),
        "{part}"
    );
}

/// Identity-bearing callers (`--auth none`): the browser Origin policy applies on HTTP (a
/// cross-site Origin is 401), `x-openclaw-scopes` is honoured, and a narrow scope set gets the
/// scope-denied 403 (spec http §4.3, §4.4; captures C-none-*).
#[test]
fn auth_none_applies_the_origin_policy_and_scopes_on_http() {
    let up = FakeUpstream::start();
    let cfg = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("k")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
    });
    let gw = GatewayBuilder::new().no_token().args(["--auth", "none"]).config(cfg.to_string()).start();
    let a = gw.addr();
    let r = request(a, "GET", "/v1/models", &[], b"", T).unwrap();
    assert_eq!(r.status, 200, "no credentials needed: {}", r.text());
    let r = request(a, "GET", "/v1/models", &[("Authorization", "Bearer garbage")], b"", T).unwrap();
    assert_eq!(r.status, 200, "any bearer is ignored");
    let r = request(a, "GET", "/v1/models", &[("Origin", "https://evil.example")], b"", T).unwrap();
    assert_eq!(error_of(&r), (401, "unauthorized".into(), "Unauthorized".into()), "cross-site Origin");
    let r = request(a, "GET", "/v1/models", &[("Origin", "http://localhost:5173")], b"", T).unwrap();
    assert_eq!(r.status, 200, "a loopback origin from a local client passes");
    let host = format!("127.0.0.1:{}", gw.port);
    let origin = format!("http://{host}");
    let r = request(a, "GET", "/v1/models", &[("Origin", &origin), ("Host", &host)], b"", T).unwrap();
    assert_eq!(r.status, 200, "same-origin passes");
    let r = request(a, "GET", "/v1/models", &[("x-openclaw-scopes", "bogus.scope")], b"", T).unwrap();
    assert_eq!((r.status, r.json()["error"]["message"].clone()), (403, json!("missing scope: operator.read")));
    let r = request(a, "GET", "/v1/models", &[("x-openclaw-scopes", "operator.write")], b"", T).unwrap();
    assert_eq!(r.status, 200, "write implies read");
    let body = chat_body("openclaw", false).to_string();
    let r = request(a, "POST", "/v1/chat/completions", &[("x-openclaw-scopes", "operator.read")], body.as_bytes(), T).unwrap();
    assert_eq!(
        r.json(),
        json!({"ok": false, "error": {"type": "forbidden", "message": "missing scope: operator.write",
            "details": {"code": "MISSING_SCOPE", "missingScope": "operator.write", "requiredScopes": ["operator.write"]}}})
    );
    let r = request(
        a,
        "POST",
        "/v1/chat/completions",
        &[("x-openclaw-scopes", "operator.write"), ("x-openclaw-model", "fake/fake-model")],
        body.as_bytes(),
        T,
    )
    .unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["message"].clone()),
        (403, json!("missing scope: operator.admin")),
        "model override needs admin"
    );
    let r = request(a, "POST", "/v1/chat/completions", &[], body.as_bytes(), T).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Token mode: Origin is not checked on the HTTP APIs; the failed-auth limiter slows loopback
/// clients instead of locking them out; forwarded headers from an untrusted peer are refused.
#[test]
fn token_mode_http_auth_edges() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let a = gw.addr();
    let auth = bearer(&gw);
    let r = request(a, "GET", "/v1/models", &[("Authorization", &auth), ("Origin", "https://evil.example")], b"", T).unwrap();
    assert_eq!(r.status, 200, "token mode ignores Origin on HTTP");
    let r = request(a, "GET", "/v1/models", &[("Authorization", &auth), ("X-Forwarded-For", "203.0.113.9")], b"", T).unwrap();
    assert_eq!((r.status, r.json()["error"]["type"].clone()), (403, json!("proxy_attribution_required")));
    let r = request(a, "GET", "/v1/models", &[("Authorization", "Basic dXNlcjpwdw==")], b"", T).unwrap();
    assert_eq!(r.status, 401, "Basic is not a bearer");
    let lower = auth.replacen("Bearer", "bearer", 1);
    assert_eq!(request(a, "GET", "/v1/models", &[("Authorization", &lower)], b"", T).unwrap().status, 200, "scheme is case-insensitive");
    let started = Instant::now();
    for _ in 0..2 {
        let r = request(a, "GET", "/v1/models", &[("Authorization", "Bearer wrong")], b"", T).unwrap();
        assert_eq!(r.status, 401);
    }
    assert!(started.elapsed() >= Duration::from_millis(700), "loopback wrong secrets are delayed (250 ms, 500 ms)");
    assert_eq!(request(a, "GET", "/v1/models", &[("Authorization", &auth)], b"", T).unwrap().status, 200, "never locked out on loopback");
    let r = request(a, "POST", "/v1/chat/completions", &[("Authorization", &auth), ("Expect", "something-else")], b"{}", T).unwrap();
    assert_eq!(r.status, 417);
}

/// Providers over HTTPS: rustls with the Mozilla roots plus `NODE_EXTRA_CA_CERTS` (as the
/// reference's Node runtime), certificates really verified (an unknown CA fails the call).
#[test]
fn https_provider_with_a_private_ca() {
    let ca = clawgate_tests::upstream::TestCa::new();
    let up = FakeUpstream::start_tls(&ca);
    let dir = clawgate_tests::TempDir::new("ca");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let cfg = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("tls-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
    });
    let trusted = GatewayBuilder::new().env("NODE_EXTRA_CA_CERTS", ca_file.to_string_lossy()).config(cfg.to_string()).start();
    let r = post(&trusted, "/v1/chat/completions", &[], &chat_body("openclaw", false));
    assert_eq!((r.status, r.json()["choices"][0]["message"]["content"].clone()), (200, json!("Hello from fake upstream")), "{}", r.text());
    assert_eq!(up.chat_requests()[0].header("authorization"), Some("Bearer tls-key"));
    let untrusted = GatewayBuilder::new().config(cfg.to_string()).start();
    let r = post(&untrusted, "/v1/chat/completions", &[], &chat_body("openclaw", false));
    assert_eq!(error_of(&r), (502, "api_error".into(), "upstream provider error".into()), "an unknown CA is refused");
    assert_eq!(up.chat_requests().len(), 1, "nothing was sent over the unverified connection");
}

/// Issue 11 item 10: strict JavaScript clients, unchanged — the AI SDK's default OpenAI provider
/// (it rejects a `/v1/responses` answer whose `output_text` parts lack `annotations`) and the
/// OpenAI Agents SDK (it sends `include: []`) — get the upstream's answer, streamed and not.
#[test]
fn the_ai_sdk_and_the_agents_sdk_get_their_answers() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let results = clawgate_tests::js_clients::run_clients(&format!("http://{}/v1", gw.addr()), &gw.token());
    let scenarios = results.as_object().expect("an object of scenarios");
    assert_eq!(scenarios.len(), 5, "{results:#}");
    for (name, r) in scenarios {
        assert_eq!(r["ok"], true, "{name} failed: {r:#}\n--- gateway ---\n{}", gw.stderr());
        assert_eq!(r["text"], "Hello from fake upstream", "{name}: {r:#}");
    }
    let calls = up.chat_requests().len();
    assert!(calls >= 5, "every scenario reached the upstream ({calls} requests)");
}

/// One session-key grammar on both endpoints (`sessions::http_session_key`): reserved namespaces
/// refused as on the reference, and keys we cannot store safely (over 512 characters, control
/// characters, a malformed `agent:` form) refused 400 before any upstream call; an agent-scoped
/// key is stored with its agent part in canonical (lowercase) form.
#[test]
fn session_keys_follow_one_grammar_on_both_endpoints() {
    let up = FakeUpstream::start();
    let gw = start(&up, json!({}));
    let long = "k".repeat(513);
    for (path, body) in
        [("/v1/chat/completions", chat_body("openclaw", false)), ("/v1/responses", json!({"model": "openclaw", "input": "hi"}))]
    {
        for (key, want) in [
            ("harness:x", "`x-openclaw-session-key` cannot use reserved internal session namespaces."),
            ("agent:main:cron:nightly", "`x-openclaw-session-key` cannot use reserved internal session namespaces."),
            (long.as_str(), "Invalid `x-openclaw-session-key`."),
            ("a\tb", "Invalid `x-openclaw-session-key`."),
            ("agent:not an id:x", "Invalid `x-openclaw-session-key`."),
        ] {
            let r = post(&gw, path, &[("x-openclaw-session-key", key)], &body);
            assert_eq!(error_of(&r), (400, "invalid_request_error".into(), want.into()), "{path} {key:.40}");
        }
    }
    assert!(up.chat_requests().is_empty(), "no refused request reached the upstream");
    let r = post(&gw, "/v1/chat/completions", &[("x-openclaw-session-key", "Agent:MAIN:thread-9")], &chat_body("openclaw", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = clawgate_tests::process::run_clawgate(
        gw.home_path(),
        &["call", "sessions.list", "--json"],
        &[("OPENCLAW_GATEWAY_TOKEN", &gw.token())],
    );
    assert!(listed.stdout.contains("\"agent:main:thread-9\""), "{}", listed.stdout);
}
