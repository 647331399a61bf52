//! The OpenAI-compatible surface (spec http §5, §6.2, §6.3, §7): the agent-first model contract,
//! request validation, response and SSE shapes, and the upstream provider protocol
//! (`openai-completions`: the request the gateway sends, the SSE stream it parses).

pub mod api_response;
pub mod embeddings;
pub mod responses;
mod sse;
pub mod turn;

pub use sse::{MAX_SSE_EVENT_BYTES, SseParser};

use serde_json::{Map, Value, json};

/// The text of a reply the model left empty (the reference's words).
pub const NO_RESPONSE: &str = "No response from OpenClaw.";

/// An error answered in the OpenAI shape `{"error":{"message","type"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError { status: 400, kind: "invalid_request_error", message: message.into() }
    }
    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind}})
    }
}

pub use crate::config::api::Agents;

fn valid_agent_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// A parsed `model` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// `openclaw` / `openclaw/default`.
    Default,
    Agent(String),
}

/// Parse a `model` value (§5.1): `openclaw`, `openclaw/default`, `openclaw/<id>`, `openclaw:<id>`, `agent:<id>`.
pub fn parse_model(model: &str) -> Option<ModelRef> {
    let m = model.trim().to_ascii_lowercase();
    if m == "openclaw" || m == "openclaw/default" {
        return Some(ModelRef::Default);
    }
    let id = m.strip_prefix("openclaw/").or_else(|| m.strip_prefix("openclaw:")).or_else(|| m.strip_prefix("agent:"))?;
    valid_agent_id(id).then(|| ModelRef::Agent(id.to_string()))
}

pub const INVALID_MODEL: &str = "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`.";
pub const NO_OWNER: &str = "Multiple agents are configured, but this operation has no explicit owner. Select an agent explicitly; CLI callers can pass --agent <id>, channels can add a binding, and ambient services can set their agentId target.";

/// Pick the agent for a request: the `x-openclaw-agent-id` header wins over `model` (whose
/// syntax is still checked first).
pub fn resolve_agent(agents: &Agents, model: &str, header_agent: Option<&str>) -> Result<String, ApiError> {
    let parsed = parse_model(model).ok_or_else(|| ApiError::invalid(INVALID_MODEL))?;
    if let Some(raw) = header_agent {
        let id = raw.trim().to_ascii_lowercase();
        if !valid_agent_id(&id) || !agents.ids.contains(&id) {
            return Err(ApiError::invalid(format!("Unknown agent '{raw}'.")));
        }
        return Ok(id);
    }
    match parsed {
        ModelRef::Default => agents.default.clone().ok_or_else(|| ApiError::invalid(NO_OWNER)),
        ModelRef::Agent(id) if agents.ids.contains(&id) => Ok(id),
        ModelRef::Agent(id) => Err(ApiError::invalid(format!("Unknown agent '{id}'."))),
    }
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": "openclaw", "permission": []})
}

/// `GET /v1/models`.
pub fn models_list(agents: &Agents) -> Value {
    json!({"object": "list", "data": agents.model_ids().iter().map(|m| model_object(m)).collect::<Vec<_>>()})
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `GET /v1/models/{id}` (`raw` is the path after `/v1/models/`).
pub fn model_get(agents: &Agents, raw: &str) -> Result<Value, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid("Missing model id."));
    }
    let id = percent_decode(raw).ok_or_else(|| ApiError::invalid("Invalid model id encoding."))?;
    if id.trim().is_empty() {
        return Err(ApiError::invalid("Missing model id."));
    }
    if parse_model(&id).is_none() {
        return Err(ApiError::invalid("Invalid model id."));
    }
    if agents.model_ids().contains(&id) {
        Ok(model_object(&id))
    } else {
        Err(ApiError { status: 404, kind: "invalid_request_error", message: format!("Model '{id}' not found.") })
    }
}

/// A provider model reference `provider/model`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderModel {
    pub provider: String,
    pub model: String,
}

/// An `openai-completions` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: String,
    pub base_url: String,
    pub max_tokens: Option<u64>,
}

/// The provider and model an agent runs on (`agents.entries.<id>.model.primary`, else
/// `agents.defaults.model.primary`), when configured.
pub fn agent_model(cfg: &Value, agent_id: &str, override_model: Option<&str>) -> Option<(Provider, String)> {
    let primary = override_model
        .map(str::to_string)
        .or_else(|| {
            cfg.pointer(&format!("/agents/entries/{agent_id}/model/primary"))
                .or_else(|| cfg.pointer(&format!("/agents/entries/{agent_id}/model")))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or_else(|| {
            cfg.pointer("/agents/defaults/model/primary")
                .or_else(|| cfg.pointer("/agents/defaults/model"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })?;
    let (provider_id, model) = match primary.split_once('/') {
        Some((p, m)) => (p.to_string(), m.to_string()),
        None => {
            // A bare model id: the only configured provider.
            let providers = cfg.pointer("/models/providers").and_then(Value::as_object)?;
            (providers.keys().next()?.clone(), primary.clone())
        }
    };
    let p = cfg.pointer(&format!("/models/providers/{provider_id}"))?;
    let api = p.get("api").and_then(Value::as_str).unwrap_or("openai-completions");
    if api != "openai-completions" {
        return None;
    }
    let base_url = p.get("baseUrl").and_then(Value::as_str)?.trim_end_matches('/').to_string();
    let max_tokens = p
        .get("models")
        .and_then(Value::as_array)
        .and_then(|ms| ms.iter().find(|m| m.get("id").and_then(Value::as_str) == Some(model.as_str())))
        .and_then(|m| m.get("maxTokens"))
        .and_then(Value::as_u64);
    Some((Provider { id: provider_id, base_url, max_tokens }, model))
}

/// A validated chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub messages: Vec<Value>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub user: Option<String>,
    /// Sampling parameters forwarded upstream as given.
    pub sampling: Map<String, Value>,
}

fn num_in(v: &Value, lo: f64, hi: f64) -> bool {
    v.as_f64().is_some_and(|x| x >= lo && x <= hi)
}

/// Validate a chat completions body (§6.3 validation steps 1–5, the checks that do not need the
/// agent; [`check_chat_content`] has steps 9–11). An empty body is `{}`.
pub fn parse_chat_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::invalid("request body is not UTF-8"))?;
    let v: Value = if text.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(text).map_err(|e| ApiError::invalid(crate::openai::api_response::json_error_message(text, &e)))?
    };
    let o = v.as_object().ok_or_else(|| ApiError::invalid(crate::wire::zod_invalid_type("", "object", Some(&v))))?;
    let model = match o.get("model") {
        None | Some(Value::Null) => "openclaw".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ApiError::invalid(crate::wire::zod_invalid_type("model", "string", Some(other))));
        }
    };
    let stream = match o.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::invalid(crate::wire::zod_invalid_type("stream", "boolean", Some(other))));
        }
    };
    for k in ["max_tokens", "max_completion_tokens"] {
        if let Some(x) = o.get(k).filter(|x| !x.is_null()) {
            if x.as_u64().is_none_or(|n| n == 0) {
                return Err(ApiError::invalid(format!("{k}: Too small: expected number to be >0")));
            }
        }
    }
    if let Some(rf) = o.get("response_format").filter(|x| !x.is_null()) {
        let t = rf.get("type").and_then(Value::as_str);
        if !matches!(t, Some("text" | "json_object" | "json_schema")) {
            return Err(ApiError::invalid("Invalid response_format: response_format.type must be text, json_object, or json_schema"));
        }
    }
    if let Some(stop) = o.get("stop").filter(|x| !x.is_null()) {
        let ok = match stop {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => a.len() <= 4 && a.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty())),
            _ => false,
        };
        if stop.as_array().is_some_and(|a| a.len() > 4) {
            return Err(ApiError::invalid("Invalid stop: stop supports at most 4 sequences"));
        }
        if !ok {
            return Err(ApiError::invalid("Invalid stop: expected a non-empty string or up to 4 non-empty strings."));
        }
    }
    for (k, lo, hi) in [("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0), ("frequency_penalty", -2.0, 2.0), ("presence_penalty", -2.0, 2.0)] {
        if let Some(x) = o.get(k).filter(|x| !x.is_null()) {
            if !num_in(x, lo, hi) {
                return Err(ApiError::invalid(format!("`{k}` must be between {lo} and {hi}.").replace(".0 ", " ").replace(".0.", ".")));
            }
        }
    }
    let tools = match o.get("tools").filter(|x| !x.is_null()) {
        None => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => return Err(ApiError::invalid("Invalid tools/tool_choice: tools must be an array.")),
    };
    let messages = match o.get("messages") {
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(ApiError::invalid(crate::wire::zod_invalid_type("messages", "array", Some(other))));
        }
    };
    let mut sampling = Map::new();
    for k in [
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "stop",
        "response_format",
        "max_tokens",
        "max_completion_tokens",
    ] {
        if let Some(x) = o.get(k).filter(|x| !x.is_null()) {
            sampling.insert(k.to_string(), x.clone());
        }
    }
    Ok(ChatRequest {
        model,
        stream,
        include_usage: o.get("stream_options").and_then(|s| s.get("include_usage")).and_then(Value::as_bool).unwrap_or(false),
        messages,
        tools,
        tool_choice: o.get("tool_choice").filter(|x| !x.is_null()).cloned(),
        user: o.get("user").and_then(Value::as_str).map(str::to_string),
        sampling,
    })
}

/// The chat checks that come after the agent and session are resolved (§6.3 validation steps
/// 9–11): function tools only, inline images only, a user turn. An empty body in a multi-agent
/// fleet is therefore the agent error, not a missing message (`chat-emptybody`).
pub fn check_chat_content(req: &ChatRequest) -> Result<(), ApiError> {
    let tools = req.tools.as_deref().unwrap_or_default();
    if tools
        .iter()
        .any(|t| t.get("type").and_then(Value::as_str) != Some("function") || t.pointer("/function/name").and_then(Value::as_str).is_none())
    {
        return Err(ApiError::invalid("Invalid tools/tool_choice: only function tools are supported"));
    }
    for m in &req.messages {
        if let Some(Value::Array(parts)) = m.get("content") {
            for p in parts {
                if p.get("type").and_then(Value::as_str) == Some("image_url") {
                    let url = p.pointer("/image_url/url").and_then(Value::as_str).unwrap_or("");
                    if !url.starts_with("data:") {
                        return Err(ApiError::invalid("Invalid image_url content in `messages`."));
                    }
                }
            }
        }
    }
    if !req.messages.iter().any(|m| matches!(m.get("role").and_then(Value::as_str), Some("user" | "tool" | "assistant"))) {
        return Err(ApiError::invalid("Missing user message in `messages`."));
    }
    Ok(())
}

/// The upstream request body (spec §9): always streamed, usage included.
pub fn upstream_chat_body(
    model: &str,
    provider: &Provider,
    messages: &[Value],
    tools: Option<&[Value]>,
    tool_choice: Option<&Value>,
    sampling: &Map<String, Value>,
) -> Value {
    let mut b = json!({"model": model, "messages": messages, "stream": true, "stream_options": {"include_usage": true}});
    let o = b.as_object_mut().expect("object literal");
    for (k, v) in sampling {
        if k == "max_tokens" {
            o.insert("max_completion_tokens".into(), v.clone());
        } else {
            o.insert(k.clone(), v.clone());
        }
    }
    if !o.contains_key("max_completion_tokens") {
        if let Some(m) = provider.max_tokens {
            o.insert("max_completion_tokens".into(), json!(m));
        }
    }
    if let Some(t) = tools.filter(|t| !t.is_empty()) {
        o.insert("tools".into(), json!(t));
        o.insert("tool_choice".into(), tool_choice.cloned().unwrap_or(json!("auto")));
    }
    b
}

/// One tool call being assembled from stream deltas.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What one upstream SSE event contributed.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamEvent {
    Text(String),
    /// A tool call started (index, id, name) or got argument text (index, fragment).
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolArgs {
        index: usize,
        fragment: String,
    },
    Finish(String),
    Usage {
        prompt: u64,
        completion: u64,
    },
    Done,
    Error(String),
}

/// How an upstream HTTP failure is reported to the client (§6.3).
pub fn map_upstream_status(status: u16, message: &str) -> ApiError {
    match status {
        // The provider refused *its* key. The reference answers 401 `authentication_error`, which
        // every OpenAI SDK reports as a bad gateway key (a confusing-auth-error pain point): it is
        // a provider failure, so it is a 502 that says whose key was refused.
        401 | 403 => ApiError {
            status: 502,
            kind: "api_error",
            message: format!("upstream provider rejected its API key (HTTP {status}): {message}"),
        },
        404 => ApiError { status: 404, kind: "invalid_request_error", message: format!("Unknown model: {message}") },
        429 => ApiError { status: 429, kind: "rate_limit_error", message: "upstream provider rate limit".into() },
        408 | 504 => ApiError { status: 504, kind: "api_error", message: "upstream provider timeout".into() },
        _ => ApiError { status: 502, kind: "api_error", message: "upstream provider error".into() },
    }
}

/// The result of a run, for the chat completion response.
pub type Completion = crate::openai::turn::TurnResult;

/// A non-streamed `chat.completion` (§6.3), serialized from typed parts in the reference's key
/// order (every relayed non-streamed answer is one; no JSON tree is built for it, issue 17).
/// `finish_reason` is the one answered (the result's may still be empty).
pub fn chat_completion(id: &str, created: u64, model: &str, c: &Completion, finish_reason: &str) -> String {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        id: &'a str,
        object: &'static str,
        created: u64,
        model: &'a str,
        choices: [Choice<'a>; 1],
        usage: Usage,
    }
    #[derive(serde::Serialize)]
    struct Choice<'a> {
        index: u32,
        message: Message<'a>,
        finish_reason: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Message<'a> {
        role: &'static str,
        content: &'a str,
        #[serde(skip_serializing_if = "<[Call<'a>]>::is_empty")]
        tool_calls: Vec<Call<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Call<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        function: Function<'a>,
    }
    #[derive(serde::Serialize)]
    struct Function<'a> {
        name: &'a str,
        arguments: &'a str,
    }
    let content = if c.text.is_empty() && c.tool_calls.is_empty() { NO_RESPONSE } else { &c.text };
    let tool_calls = c
        .tool_calls
        .iter()
        .map(|t| Call { id: &t.id, kind: "function", function: Function { name: &t.name, arguments: &t.arguments } })
        .collect();
    let out = Out {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [Choice { index: 0, message: Message { role: "assistant", content, tool_calls }, finish_reason }],
        usage: Usage::of(c),
    };
    serde_json::to_string(&out).unwrap_or_default()
}

/// The `usage` object of a chat completion (and of its last stream chunk).
#[derive(serde::Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Usage {
    fn of(c: &Completion) -> Usage {
        Usage {
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
            total_tokens: c.prompt_tokens + c.completion_tokens,
        }
    }
}

/// One `chat.completion.chunk` SSE event (`data: …\n\n`).
pub fn chunk(id: &str, created: u64, model: &str, delta: Value, finish: Option<&str>) -> String {
    let v = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

/// A text delta's chunk, written straight into its SSE event: the same bytes as
/// [`chunk`] with `{"content": text}`, without building a JSON tree per delta (the streaming
/// path's most frequent event; issue 17).
pub fn content_chunk(id: &str, created: u64, model: &str, text: &str) -> String {
    use crate::wire::push_json_str;
    let mut out = String::with_capacity(160 + id.len() + model.len() + text.len());
    out.push_str("data: {\"id\":");
    push_json_str(&mut out, id);
    out.push_str(",\"object\":\"chat.completion.chunk\",\"created\":");
    out.push_str(&created.to_string());
    out.push_str(",\"model\":");
    push_json_str(&mut out, model);
    out.push_str(",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
    push_json_str(&mut out, text);
    out.push_str("},\"finish_reason\":null}]}\n\n");
    out
}

/// The usage chunk (`include_usage`).
pub fn usage_chunk(id: &str, created: u64, model: &str, c: &Completion) -> String {
    let v = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": Usage::of(c)});
    format!("data: {v}\n\n")
}

pub const SSE_DONE: &str = "data: [DONE]\n\n";

/// Split streamed text into the pieces sent to the client (words with their leading space), as
/// the reference re-chunks upstream text.
pub fn rechunk(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        if ch == ' ' && !cur.trim().is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_chunk_is_the_generic_chunk_byte_for_byte() {
        for (id, model, text) in [
            ("chatcmpl_1", "openclaw", "Hello"),
            ("c\"2", "m\\odel", " wörld\n\t\u{1}\"q\""),
            ("", "", ""),
            ("x", "openclaw/main", "</script>"),
        ] {
            let generic = super::chunk(id, 1_765_000_000, model, serde_json::json!({"content": text}), None);
            assert_eq!(super::content_chunk(id, 1_765_000_000, model, text), generic, "{text:?}");
        }
    }

    use super::*;

    #[test]
    fn model_contract() {
        let single = Agents::from_config(&json!({}));
        assert_eq!(single.model_ids(), ["openclaw", "openclaw/default", "openclaw/main"]);
        assert_eq!(resolve_agent(&single, "OpenClaw", None), Ok("main".into()));
        assert_eq!(resolve_agent(&single, "gpt-4o", None).unwrap_err().message, INVALID_MODEL);
        let fleet = Agents::from_config(&json!({"agents": {"entries": {"main": {}, "research": {}}}}));
        assert_eq!(resolve_agent(&fleet, "openclaw", None).unwrap_err().message, NO_OWNER);
        assert_eq!(resolve_agent(&fleet, "openclaw", Some("research")), Ok("research".into()));
        assert_eq!(resolve_agent(&fleet, "openclaw/nope", None).unwrap_err().message, "Unknown agent 'nope'.");
        assert_eq!(model_get(&fleet, "openclaw%2Fdefault").unwrap()["id"], "openclaw/default");
        assert_eq!(model_get(&fleet, "gpt-4o").unwrap_err().message, "Invalid model id.");
        assert_eq!(model_get(&fleet, "openclaw:research").unwrap_err().status, 404);
        assert_eq!(model_get(&fleet, "%zz").unwrap_err().message, "Invalid model id encoding.");
    }

    #[test]
    fn chat_validation_messages() {
        assert_eq!(parse_chat_request(b"[]").unwrap_err().message, ": Invalid input: expected object, received array");
        // The kind received is the body's own (zod), not a fixed word.
        assert_eq!(parse_chat_request(b"\"hi\"").unwrap_err().message, ": Invalid input: expected object, received string");
        assert_eq!(parse_chat_request(b"7").unwrap_err().message, ": Invalid input: expected object, received number");
        assert_eq!(
            parse_chat_request(br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#).unwrap_err().message,
            "max_tokens: Too small: expected number to be >0"
        );
        let content = |b: &[u8]| check_chat_content(&parse_chat_request(b).unwrap()).unwrap_err().message;
        assert_eq!(content(br#"{"messages":[]}"#), "Missing user message in `messages`.");
        assert_eq!(
            content(br#"{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}"#),
            "Invalid tools/tool_choice: only function tools are supported"
        );
        assert_eq!(
            parse_chat_request(br#"{"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#).unwrap_err().message,
            "Invalid stop: stop supports at most 4 sequences"
        );
        assert_eq!(parse_chat_request(br#"{"model":"openclaw/main","messages":["#).unwrap_err().message, "Unexpected end of JSON input");
        assert_eq!(
            parse_chat_request(br#"{"messages":[{"role":"user","content":"x"}],"temperature":3}"#).unwrap_err().message,
            "`temperature` must be between 0 and 2."
        );
        assert_eq!(content(b""), "Missing user message in `messages`.");
        let ok =
            parse_chat_request(br#"{"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#)
                .unwrap();
        assert!(ok.stream && ok.include_usage);
        assert_eq!(ok.model, "openclaw");
    }

    #[test]
    fn upstream_sse_is_parsed_across_chunk_boundaries() {
        let mut p = SseParser::default();
        let mut ev = p.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel");
        assert!(ev.is_empty());
        ev.extend(p.push(b"lo\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n"));
        ev.extend(p.push(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n"));
        assert_eq!(ev[0], UpstreamEvent::Text("Hello".into()));
        assert_eq!(ev[1], UpstreamEvent::ToolStart { index: 0, id: "c1".into(), name: "f".into() });
        assert_eq!(ev[2], UpstreamEvent::ToolArgs { index: 0, fragment: "{\"a\"".into() });
        assert_eq!(ev[3], UpstreamEvent::Finish("tool_calls".into()));
        assert_eq!(ev[4], UpstreamEvent::Usage { prompt: 3, completion: 2 });
        assert_eq!(ev[5], UpstreamEvent::Done);
    }

    #[test]
    fn chat_completion_is_the_tree_rendering_byte_for_byte() {
        // The JSON tree this answer was built as before issue 17, in the reference's key order.
        fn tree(id: &str, created: u64, model: &str, c: &Completion, finish: &str) -> String {
            let mut message = json!({"role": "assistant", "content": if c.text.is_empty() && c.tool_calls.is_empty() { NO_RESPONSE.to_string() } else { c.text.clone() }});
            if !c.tool_calls.is_empty() {
                message["tool_calls"] = json!(
                    c.tool_calls
                        .iter()
                        .map(|t| json!({"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}))
                        .collect::<Vec<_>>()
                );
            }
            json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "total_tokens": c.prompt_tokens + c.completion_tokens}})
            .to_string()
        }
        let call = ToolCall { id: "call_1".into(), name: "get \"w\"".into(), arguments: "{\"city\":\"Zürich\n\"}".into() };
        for c in [
            Completion { text: "Hello \"there\"\n\u{1}é".into(), prompt_tokens: 3, completion_tokens: 2, ..Default::default() },
            Completion::default(),
            Completion {
                tool_calls: vec![call.clone(), ToolCall { id: "c2".into(), ..call.clone() }],
                finish_reason: "tool_calls".into(),
                ..Default::default()
            },
            Completion { text: "both".into(), tool_calls: vec![call], prompt_tokens: u64::MAX / 4, ..Default::default() },
        ] {
            for finish in ["stop", "length", "tool_calls"] {
                assert_eq!(
                    chat_completion("chatcmpl_x", 1_795_602_626, "openclaw/\"m\"", &c, finish),
                    tree("chatcmpl_x", 1_795_602_626, "openclaw/\"m\"", &c, finish)
                );
            }
        }
    }

    #[test]
    fn rechunking_keeps_the_text() {
        assert_eq!(rechunk("Hello from fake upstream"), ["Hello", " from", " fake", " upstream"]);
        assert_eq!(rechunk("Hello from fake upstream").concat(), "Hello from fake upstream");
    }
}
