//! `POST /v1/responses` (spec http §6.4, §7): the OpenAI Responses API over one agent turn, sans-IO.
//!
//! The HTTP handler drives it in this order (each step's errors are `400 invalid_request_error`
//! unless said otherwise):
//!
//! 1. [`parse_responses_request`]: the strict request schema, with zod-like messages in the
//!    reference's issue order (`model: Invalid input: expected string, received undefined`,
//!    `": Unrecognized key: \"parallel_tool_calls\""`, …).
//! 2. agent and session resolution (`openai::resolve_agent`, `http::chat::session_key` with the
//!    `openresponses` prefix), then the stored conversation of `previous_response_id`, if any.
//! 3. [`prepare_turn`]: input files/images (`invalid request`), tools (`invalid tool
//!    configuration`), then `Missing user message in `input`.`; yields the chat `messages`,
//!    `tools`, `tool_choice` and sampling of the upstream turn.
//! 4. the turn's events rendered by [`response_object`] + [`response_http_status`]
//!    (non-stream) or by a [`ResponsesStream`] (SSE).
//! 5. what the gateway keeps ([`crate::sessions::Exchange::records`], the response object) for
//!    `GET /v1/responses/{id}` and for the next request's
//!    `previous_response_id`.
//!
//! Ids and timestamps come from the caller ([`ResponseIds`], `created_at`): no clock, no RNG.

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::openai::turn::{TurnEvent, TurnResult};
use crate::openai::{ApiError, ToolCall};

/// The text of an answer when the agent produced none (as chat completions).
pub use crate::openai::NO_RESPONSE;
/// No user message and no `function_call_output` item (`responses-empty-input`).
pub const MISSING_USER_MESSAGE: &str = "Missing user message in `input`.";
/// A `tool_choice` that the tools cannot satisfy (spec §6.4).
pub const INVALID_TOOL_CONFIG: &str = "invalid tool configuration";
/// An input file or image that cannot be used (spec §6.4).
pub const INVALID_MEDIA: &str = "invalid request";

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// A validated `POST /v1/responses` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    /// Echoed verbatim in the response; resolved with `openai::resolve_agent`.
    pub model: String,
    pub input: ResponsesInput,
    pub instructions: Option<String>,
    pub tools: Vec<FunctionTool>,
    pub tool_choice: Option<ToolChoice>,
    pub stream: bool,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub user: Option<String>,
    /// The JSON numbers as sent (forwarded upstream unchanged).
    pub temperature: Option<Value>,
    pub top_p: Option<Value>,
    pub metadata: Option<Map<String, Value>>,
    pub store: Option<bool>,
    pub previous_response_id: Option<String>,
    pub reasoning: Option<Reasoning>,
    /// `auto` or `disabled`.
    pub truncation: Option<String>,
    /// `text.format.type` (only `text` is accepted).
    pub text_format: Option<String>,
    /// Forwarded to the upstream with the tools. Ours: the reference rejects the key.
    pub parallel_tool_calls: Option<bool>,
}

/// `input`: a string (one user message) or items.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponsesInput {
    Text(String),
    Items(Vec<InputItem>),
}

/// One input item.
#[derive(Debug, Clone, PartialEq)]
pub enum InputItem {
    /// `{type:"message"}` (also accepted without `type`, as the OpenAI SDKs' "easy" messages).
    /// String content is one text part.
    Message { role: Role, content: Vec<ContentPart> },
    /// A call the assistant made earlier (`call_id`, else `id`).
    FunctionCall { call_id: String, name: String, arguments: String },
    /// The client's result for a call (array outputs are reduced to their text parts).
    FunctionCallOutput { call_id: String, output: String },
    /// `reasoning` and `item_reference` items: accepted, not sent upstream.
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    System,
    Developer,
}

/// A message content part.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// `input_text` / `output_text`.
    Text(String),
    Image(ImageSource),
    File(FileSource),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// `source:{type:"url"}` or the OpenAI `image_url` (remote or `data:` URL).
    Url(String),
    Base64 {
        media_type: String,
        data: String,
    },
    /// An OpenAI `file_id` (there is no file store: rejected by [`prepare_turn`]).
    FileId(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileSource {
    Url(String),
    Base64 { media_type: Option<String>, data: String, filename: Option<String> },
    FileId(String),
}

/// A Responses function tool (flat: `{type:"function",name,description?,parameters?,strict?}`).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

impl FunctionTool {
    /// The chat completions form `{type:"function",function:{name,description?,parameters?,strict?}}`.
    pub fn to_chat(&self) -> Value {
        let mut f = Map::new();
        f.insert("name".into(), json!(self.name));
        if let Some(d) = &self.description {
            f.insert("description".into(), json!(d));
        }
        if let Some(p) = &self.parameters {
            f.insert("parameters".into(), p.clone());
        }
        if let Some(s) = self.strict {
            f.insert("strict".into(), json!(s));
        }
        json!({"type": "function", "function": f})
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    /// `{type:"function",name}` or `{type:"function",function:{name}}`.
    Function(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reasoning {
    pub effort: Option<String>,
    pub summary: Option<String>,
}

/// The top-level keys of the strict schema, in the reference's order (issue order follows it).
const REQUEST_KEYS: [&str; 25] = [
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "stream",
    "max_output_tokens",
    "max_tool_calls",
    "user",
    "temperature",
    "top_p",
    "metadata",
    "store",
    "previous_response_id",
    "reasoning",
    "truncation",
    // Ours: keys of the OpenAI Responses API the reference rejects (`Unrecognized key`), which
    // strict clients send (the OpenAI Agents SDK sends `include: []`): accepted, and honoured
    // where the gateway can (`parallel_tool_calls`), ignored otherwise (README).
    "include",
    "parallel_tool_calls",
    "stream_options",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
    "top_logprobs",
    "background",
];

/// Validate a `/v1/responses` body (spec §6.4). An empty or whitespace body is `{}`; the first
/// schema issue is reported as `"<path>: <message>"` (path segments joined with `.`, empty at the
/// root), as the reference's zod schema does.
pub fn parse_responses_request(body: &[u8]) -> Result<ResponsesRequest, ApiError> {
    let v = parse_json(body)?;
    let Some(o) = v.as_object() else {
        return Err(ApiError::invalid(crate::wire::zod_invalid_type("", "object", Some(&v))));
    };
    let mut iss = Issues::default();
    let req = parse_request_object(&mut iss, o);
    match (iss.0.first(), req) {
        (None, Some(r)) => Ok(r),
        (Some(i), _) => Err(ApiError::invalid(format!("{}: {}", i.path, i.message))),
        (None, None) => Err(ApiError::invalid("Invalid request body")),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(ApiError::invalid("Invalid JSON body: the request body is not valid UTF-8"));
    };
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            // The reference's (JSON.parse) wording for a truncated body (`chat-badjson`).
            ApiError::invalid("Unexpected end of JSON input")
        } else {
            ApiError::invalid(format!("Invalid JSON body: {e}"))
        }
    })
}

fn parse_request_object(iss: &mut Issues, o: &Map<String, Value>) -> Option<ResponsesRequest> {
    let model = req_string(iss, "model", o.get("model"));
    let input = parse_input(iss, o.get("input"));
    let instructions = opt_string(iss, "instructions", o.get("instructions"));
    let tools = match o.get("tools") {
        None => Some(Vec::new()),
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, t) in a.iter().enumerate() {
                if let Some(t) = parse_tool(iss, &at("tools", i), t) {
                    out.push(t);
                }
            }
            Some(out)
        }
        other => {
            invalid_type(iss, "tools", "array", other);
            None
        }
    };
    let tool_choice = o.get("tool_choice").and_then(|v| parse_tool_choice(iss, v));
    let text_format = o.get("text").and_then(|v| parse_text(iss, v));
    let stream = opt_bool(iss, "stream", o.get("stream"));
    let max_output_tokens = o.get("max_output_tokens").and_then(|v| positive_int(iss, "max_output_tokens", v));
    let max_tool_calls = o.get("max_tool_calls").and_then(|v| positive_int(iss, "max_tool_calls", v));
    let user = opt_string(iss, "user", o.get("user"));
    let temperature = o.get("temperature").and_then(|v| bounded(iss, "temperature", v, (0.0, "0"), (2.0, "2")));
    let top_p = o.get("top_p").and_then(|v| bounded(iss, "top_p", v, (0.0, "0"), (1.0, "1")));
    let metadata = o.get("metadata").and_then(|v| string_record(iss, "metadata", v));
    let store = opt_bool(iss, "store", o.get("store"));
    let previous_response_id = opt_string(iss, "previous_response_id", o.get("previous_response_id"));
    let reasoning = o.get("reasoning").and_then(|v| parse_reasoning(iss, v));
    let truncation = o.get("truncation").and_then(|v| one_of(iss, "truncation", Some(v), &["auto", "disabled"]));
    let parallel_tool_calls = opt_bool(iss, "parallel_tool_calls", o.get("parallel_tool_calls"));
    match o.get("include") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        other => invalid_type(iss, "include", "array", other),
    }
    if opt_bool(iss, "background", o.get("background")) == Some(true) {
        iss.hard("background", "background responses are not supported by this gateway".to_string());
    }
    strict_keys(iss, "", o, &REQUEST_KEYS);
    if !iss.0.is_empty() {
        return None;
    }
    Some(ResponsesRequest {
        model: model?,
        input: input?,
        instructions,
        tools: tools?,
        tool_choice,
        stream: stream.unwrap_or(false),
        max_output_tokens,
        max_tool_calls,
        user,
        temperature,
        top_p,
        metadata,
        store,
        previous_response_id,
        reasoning,
        truncation,
        text_format,
        parallel_tool_calls,
    })
}

// --- zod-like validation helpers ------------------------------------------------------------

/// One schema issue. `hard` issues abort their value (type errors, unknown keys, bad literals);
/// soft ones are failed checks (ranges, lengths, refinements). Inside a union only an option
/// with soft issues alone surfaces its own issues; otherwise the union reports `Invalid input`.
#[derive(Debug, Clone)]
struct Issue {
    path: String,
    message: String,
    hard: bool,
}

#[derive(Debug, Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn hard(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Issue { path: path.to_string(), message: message.into(), hard: true });
    }
    fn soft(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(Issue { path: path.to_string(), message: message.into(), hard: false });
    }
    fn aborted(&self) -> bool {
        self.0.iter().any(|i| i.hard)
    }
    fn merge(&mut self, other: Issues) {
        self.0.extend(other.0);
    }
}

fn at(path: &str, key: impl std::fmt::Display) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn invalid_type(iss: &mut Issues, path: &str, expected: &str, v: Option<&Value>) {
    iss.hard(path, crate::wire::zod_type_issue(expected, v));
}

fn req_string(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        other => {
            invalid_type(iss, path, "string", other);
            None
        }
    }
}

fn opt_string(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<String> {
    v.and_then(|v| req_string(iss, path, Some(v)))
}

/// `z.string().nullable().optional()`.
fn opt_nullable_string(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        other => req_string(iss, path, other),
    }
}

fn opt_bool(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<bool> {
    match v {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        other => {
            invalid_type(iss, path, "boolean", other);
            None
        }
    }
}

fn req_object<'a>(iss: &mut Issues, path: &str, v: Option<&'a Value>) -> Option<&'a Map<String, Value>> {
    match v {
        Some(Value::Object(o)) => Some(o),
        other => {
            invalid_type(iss, path, "object", other);
            None
        }
    }
}

fn quoted(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// `z.enum` / `z.literal` over strings.
fn one_of(iss: &mut Issues, path: &str, v: Option<&Value>, values: &[&str]) -> Option<String> {
    match v {
        Some(Value::String(s)) if values.contains(&s.as_str()) => Some(s.clone()),
        _ => {
            let message = match values {
                [one] => format!("Invalid input: expected {}", quoted(one)),
                many => format!("Invalid option: expected one of {}", many.iter().map(|x| quoted(x)).collect::<Vec<_>>().join("|")),
            };
            iss.hard(path, message);
            None
        }
    }
}

/// `.strict()`: keys outside `allowed` are one issue at the object's path.
fn strict_keys(iss: &mut Issues, path: &str, o: &Map<String, Value>, allowed: &[&str]) {
    let extra: Vec<String> = o.keys().filter(|k| !allowed.contains(&k.as_str())).map(|k| quoted(k)).collect();
    if !extra.is_empty() {
        let s = if extra.len() > 1 { "s" } else { "" };
        iss.hard(path, format!("Unrecognized key{s}: {}", extra.join(", ")));
    }
}

/// `z.number().min(lo).max(hi)`: the number as sent.
fn bounded(iss: &mut Issues, path: &str, v: &Value, lo: (f64, &str), hi: (f64, &str)) -> Option<Value> {
    let Some(x) = v.as_f64().filter(|_| v.is_number()) else {
        invalid_type(iss, path, "number", Some(v));
        return None;
    };
    if x < lo.0 {
        iss.soft(path, format!("Too small: expected number to be >={}", lo.1));
        return None;
    }
    if x > hi.0 {
        iss.soft(path, format!("Too big: expected number to be <={}", hi.1));
        return None;
    }
    Some(v.clone())
}

/// `z.number().int().positive()`.
fn positive_int(iss: &mut Issues, path: &str, v: &Value) -> Option<u64> {
    let Some(x) = v.as_f64().filter(|_| v.is_number()) else {
        invalid_type(iss, path, "number", Some(v));
        return None;
    };
    if x.fract() != 0.0 {
        iss.hard(path, "Invalid input: expected int, received number");
        return None;
    }
    if x > 9_007_199_254_740_991.0 {
        iss.soft(path, "Too big: expected int to be <=9007199254740991");
        return None;
    }
    if x <= 0.0 {
        iss.soft(path, "Too small: expected number to be >0");
        return None;
    }
    v.as_u64().or(Some(x as u64))
}

/// `z.record(z.string(), z.string())`.
fn string_record(iss: &mut Issues, path: &str, v: &Value) -> Option<Map<String, Value>> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "record", Some(v));
        return None;
    };
    let mut ok = true;
    for (k, x) in o {
        if !x.is_string() {
            invalid_type(iss, &at(path, k), "string", Some(x));
            ok = false;
        }
    }
    ok.then(|| o.clone())
}

/// Resolve a union from one option's issues: clean → the value; only soft issues → those;
/// anything aborting → `Invalid input` at the union's path.
fn union_result<T>(iss: &mut Issues, path: &str, sub: Issues, value: Option<T>) -> Option<T> {
    if sub.0.is_empty() {
        value
    } else if sub.aborted() {
        iss.hard(path, "Invalid input");
        None
    } else {
        iss.merge(sub);
        None
    }
}

/// `input`: `z.union([z.string(), z.array(ItemParam)])`.
fn parse_input(iss: &mut Issues, v: Option<&Value>) -> Option<ResponsesInput> {
    match v {
        Some(Value::String(s)) => Some(ResponsesInput::Text(s.clone())),
        Some(Value::Array(items)) => {
            let mut sub = Issues::default();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(x) = parse_item(&mut sub, &at("input", i), item) {
                    out.push(x);
                }
            }
            union_result(iss, "input", sub, Some(ResponsesInput::Items(out)))
        }
        _ => {
            iss.hard("input", "Invalid input");
            None
        }
    }
}

const ITEM_STATUS: [&str; 3] = ["in_progress", "completed", "incomplete"];

fn parse_item(iss: &mut Issues, path: &str, v: &Value) -> Option<InputItem> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "object", Some(v));
        return None;
    };
    match o.get("type").and_then(Value::as_str) {
        Some("message") => parse_message(iss, path, o),
        None if o.get("type").is_none() && o.contains_key("role") => parse_message(iss, path, o),
        Some("function_call") => parse_function_call(iss, path, o),
        Some("function_call_output") => parse_function_call_output(iss, path, o),
        Some("reasoning") => {
            // Accepted and ignored (not sent upstream); only its shape is checked.
            let mut local = Issues::default();
            opt_string(&mut local, &at(path, "id"), o.get("id"));
            opt_nullable_string(&mut local, &at(path, "encrypted_content"), o.get("encrypted_content"));
            if let Some(s) = o.get("status") {
                one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
            }
            strict_keys(&mut local, path, o, &["type", "id", "content", "encrypted_content", "summary", "status"]);
            let ok = local.0.is_empty();
            iss.merge(local);
            ok.then_some(InputItem::Skipped)
        }
        Some("item_reference") => {
            let mut local = Issues::default();
            req_string(&mut local, &at(path, "id"), o.get("id"));
            strict_keys(&mut local, path, o, &["type", "id"]);
            let ok = local.0.is_empty();
            iss.merge(local);
            ok.then_some(InputItem::Skipped)
        }
        _ => {
            iss.hard(&at(path, "type"), "Invalid input");
            None
        }
    }
}

fn parse_message(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<InputItem> {
    let mut local = Issues::default();
    opt_string(&mut local, &at(path, "id"), o.get("id"));
    let role = one_of(&mut local, &at(path, "role"), o.get("role"), &["system", "developer", "user", "assistant"]);
    let content = parse_content(&mut local, &at(path, "content"), o.get("content"));
    let phase = match o.get("phase") {
        None | Some(Value::Null) => None,
        v => one_of(&mut local, &at(path, "phase"), v, &["commentary", "final_answer"]),
    };
    if let Some(s) = o.get("status") {
        one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
    }
    strict_keys(&mut local, path, o, &["type", "id", "role", "content", "phase", "status"]);
    if !local.aborted() && phase.is_some() && role.as_deref() != Some("assistant") {
        local.soft(&at(path, "phase"), "`phase` is only valid on assistant messages.");
    }
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    let role = match role?.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        _ => Role::Developer,
    };
    Some(InputItem::Message { role, content: content? })
}

/// Message `content`: `z.union([z.string(), z.array(ContentPart)])`.
fn parse_content(iss: &mut Issues, path: &str, v: Option<&Value>) -> Option<Vec<ContentPart>> {
    match v {
        Some(Value::String(s)) => Some(vec![ContentPart::Text(s.clone())]),
        Some(Value::Array(parts)) => {
            let mut sub = Issues::default();
            let mut out = Vec::with_capacity(parts.len());
            for (i, p) in parts.iter().enumerate() {
                if let Some(p) = parse_part(&mut sub, &at(path, i), p) {
                    out.push(p);
                }
            }
            union_result(iss, path, sub, Some(out))
        }
        _ => {
            iss.hard(path, "Invalid input");
            None
        }
    }
}

fn parse_part(iss: &mut Issues, path: &str, v: &Value) -> Option<ContentPart> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "object", Some(v));
        return None;
    };
    let mut local = Issues::default();
    let part = match o.get("type").and_then(Value::as_str) {
        Some("input_text") => {
            let t = req_string(&mut local, &at(path, "text"), o.get("text"));
            strict_keys(&mut local, path, o, &["type", "text"]);
            t.map(ContentPart::Text)
        }
        Some("output_text") => {
            let t = req_string(&mut local, &at(path, "text"), o.get("text"));
            for k in ["annotations", "logprobs"] {
                if let Some(x) = o.get(k).filter(|x| !x.is_array()) {
                    invalid_type(&mut local, &at(path, k), "array", Some(x));
                }
            }
            strict_keys(&mut local, path, o, &["type", "text", "annotations", "logprobs"]);
            t.map(ContentPart::Text)
        }
        Some("input_image") => parse_image(&mut local, path, o).map(ContentPart::Image),
        Some("input_file") => parse_file(&mut local, path, o).map(ContentPart::File),
        _ => {
            local.hard(&at(path, "type"), "Invalid input");
            None
        }
    };
    let ok = local.0.is_empty();
    iss.merge(local);
    if ok { part } else { None }
}

/// A URL as `new URL()` would take it: a scheme, a colon, something after.
fn looks_like_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
}

const IMAGE_MIMES: [&str; 6] = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"];

/// `input_image`: the reference's `{type, source:{type:"url",url}|{type:"base64",media_type,data}}`,
/// or the OpenAI shape `{type, image_url?, file_id?, detail?}`.
fn parse_image(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<ImageSource> {
    if o.contains_key("source") || !(o.contains_key("image_url") || o.contains_key("file_id")) {
        let spath = at(path, "source");
        let src = parse_source(iss, &spath, o.get("source"), true);
        strict_keys(iss, path, o, &["type", "source"]);
        return match src? {
            Source::Url(u) => Some(ImageSource::Url(u)),
            Source::Base64 { media_type, data, .. } => Some(ImageSource::Base64 { media_type: media_type.unwrap_or_default(), data }),
        };
    }
    let url = opt_nullable_string(iss, &at(path, "image_url"), o.get("image_url"));
    let file_id = opt_nullable_string(iss, &at(path, "file_id"), o.get("file_id"));
    opt_nullable_string(iss, &at(path, "detail"), o.get("detail"));
    strict_keys(iss, path, o, &["type", "image_url", "file_id", "detail"]);
    match (url, file_id) {
        (Some(u), _) => Some(ImageSource::Url(u)),
        (None, Some(f)) => Some(ImageSource::FileId(f)),
        (None, None) => {
            iss.hard(&at(path, "image_url"), "Invalid input: expected string, received null");
            None
        }
    }
}

/// `input_file`: the reference's `{type, source}` or the OpenAI shape
/// `{type, file_data?, file_url?, file_id?, filename?}`.
fn parse_file(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<FileSource> {
    if o.contains_key("source") || !["file_data", "file_url", "file_id"].iter().any(|k| o.contains_key(*k)) {
        let src = parse_source(iss, &at(path, "source"), o.get("source"), false);
        strict_keys(iss, path, o, &["type", "source"]);
        return match src? {
            Source::Url(u) => Some(FileSource::Url(u)),
            Source::Base64 { media_type, data, filename } => Some(FileSource::Base64 { media_type, data, filename }),
        };
    }
    let data = opt_nullable_string(iss, &at(path, "file_data"), o.get("file_data"));
    let url = opt_nullable_string(iss, &at(path, "file_url"), o.get("file_url"));
    let file_id = opt_nullable_string(iss, &at(path, "file_id"), o.get("file_id"));
    let filename = opt_nullable_string(iss, &at(path, "filename"), o.get("filename"));
    opt_nullable_string(iss, &at(path, "detail"), o.get("detail"));
    strict_keys(iss, path, o, &["type", "file_data", "file_url", "file_id", "filename", "detail"]);
    if let Some(d) = data {
        // `file_data` is a data URL (`data:<mime>;base64,<data>`) or bare base64.
        return Some(match parse_data_url(&d) {
            Some((mime, payload)) => {
                FileSource::Base64 { media_type: Some(mime.to_string()).filter(|m| !m.is_empty()), data: payload.to_string(), filename }
            }
            None => FileSource::Base64 { media_type: None, data: d, filename },
        });
    }
    match (url, file_id) {
        (Some(u), _) => Some(FileSource::Url(u)),
        (None, Some(f)) => Some(FileSource::FileId(f)),
        (None, None) => {
            iss.hard(&at(path, "file_data"), "Invalid input: expected string, received null");
            None
        }
    }
}

enum Source {
    Url(String),
    Base64 { media_type: Option<String>, data: String, filename: Option<String> },
}

/// A `source` object (discriminated on `type`; extra keys are stripped, not rejected).
fn parse_source(iss: &mut Issues, path: &str, v: Option<&Value>, image: bool) -> Option<Source> {
    let o = req_object(iss, path, v)?;
    match o.get("type").and_then(Value::as_str) {
        Some("url") => {
            let u = req_string(iss, &at(path, "url"), o.get("url"))?;
            if !looks_like_url(&u) {
                iss.soft(&at(path, "url"), "Invalid URL");
                return None;
            }
            Some(Source::Url(u))
        }
        Some("base64") => {
            let mt_path = at(path, "media_type");
            let media_type = if image {
                one_of(iss, &mt_path, o.get("media_type"), &IMAGE_MIMES)
            } else {
                let m = req_string(iss, &mt_path, o.get("media_type"));
                if m.as_deref() == Some("") {
                    iss.soft(&mt_path, "Too small: expected string to have >=1 characters");
                }
                m
            };
            let data = req_string(iss, &at(path, "data"), o.get("data"));
            if data.as_deref() == Some("") {
                iss.soft(&at(path, "data"), "Too small: expected string to have >=1 characters");
            }
            let filename = if image { None } else { opt_string(iss, &at(path, "filename"), o.get("filename")) };
            Some(Source::Base64 { media_type, data: data?, filename })
        }
        _ => {
            iss.hard(&at(path, "type"), "Invalid input");
            None
        }
    }
}

/// `caller`: `{type:"direct"}` or `{type:"program",caller_id}`, nullable.
fn check_caller(iss: &mut Issues, path: &str, v: Option<&Value>) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("direct") => strict_keys(iss, path, o, &["type"]),
            Some("program") => {
                req_string(iss, &at(path, "caller_id"), o.get("caller_id"));
                strict_keys(iss, path, o, &["type", "caller_id"]);
            }
            _ => iss.hard(&at(path, "type"), "Invalid input"),
        },
        other => invalid_type(iss, path, "object", other),
    }
}

fn parse_function_call(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<InputItem> {
    let mut local = Issues::default();
    let id = opt_string(&mut local, &at(path, "id"), o.get("id"));
    let call_id = opt_string(&mut local, &at(path, "call_id"), o.get("call_id"));
    let name = req_string(&mut local, &at(path, "name"), o.get("name"));
    let arguments = req_string(&mut local, &at(path, "arguments"), o.get("arguments"));
    check_caller(&mut local, &at(path, "caller"), o.get("caller"));
    opt_string(&mut local, &at(path, "namespace"), o.get("namespace"));
    opt_string(&mut local, &at(path, "created_by"), o.get("created_by"));
    if let Some(s) = o.get("status") {
        one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
    }
    strict_keys(&mut local, path, o, &["type", "id", "call_id", "name", "arguments", "caller", "namespace", "created_by", "status"]);
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    Some(InputItem::FunctionCall { call_id: call_id.or(id).unwrap_or_default(), name: name?, arguments: arguments? })
}

fn parse_function_call_output(iss: &mut Issues, path: &str, o: &Map<String, Value>) -> Option<InputItem> {
    let mut local = Issues::default();
    opt_nullable_string(&mut local, &at(path, "id"), o.get("id"));
    let call_id = req_string(&mut local, &at(path, "call_id"), o.get("call_id"));
    let opath = at(path, "output");
    let output = match o.get("output") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(parts)) => {
            let mut sub = Issues::default();
            let mut texts = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                let ppath = at(&opath, i);
                let Some(po) = p.as_object() else {
                    invalid_type(&mut sub, &ppath, "object", Some(p));
                    continue;
                };
                match po.get("type").and_then(Value::as_str) {
                    Some("input_text") => {
                        if let Some(t) = req_string(&mut sub, &at(&ppath, "text"), po.get("text")) {
                            texts.push(t);
                        }
                    }
                    // Images and files in tool results are accepted but not forwarded.
                    Some("input_image" | "input_file") => {}
                    _ => sub.hard(&at(&ppath, "type"), "Invalid input"),
                }
            }
            union_result(&mut local, &opath, sub, Some(texts.join("\n")))
        }
        _ => {
            local.hard(&opath, "Invalid input");
            None
        }
    };
    check_caller(&mut local, &at(path, "caller"), o.get("caller"));
    opt_string(&mut local, &at(path, "created_by"), o.get("created_by"));
    if let Some(s) = o.get("status").filter(|s| !s.is_null()) {
        one_of(&mut local, &at(path, "status"), Some(s), &ITEM_STATUS);
    }
    strict_keys(&mut local, path, o, &["type", "id", "call_id", "output", "caller", "created_by", "status"]);
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    Some(InputItem::FunctionCallOutput { call_id: call_id?, output: output? })
}

/// One `tools[i]`: strict `{type:"function",name,description?,parameters?,strict?}`.
fn parse_tool(iss: &mut Issues, path: &str, v: &Value) -> Option<FunctionTool> {
    let Some(o) = v.as_object() else {
        invalid_type(iss, path, "object", Some(v));
        return None;
    };
    let mut local = Issues::default();
    one_of(&mut local, &at(path, "type"), o.get("type"), &["function"]);
    let name = req_string(&mut local, &at(path, "name"), o.get("name"));
    if name.as_deref() == Some("") {
        local.soft(&at(path, "name"), "Tool name cannot be empty");
    }
    let description = opt_string(&mut local, &at(path, "description"), o.get("description"));
    let parameters = match o.get("parameters") {
        None => None,
        Some(p @ Value::Object(_)) => Some(p.clone()),
        other => {
            invalid_type(&mut local, &at(path, "parameters"), "record", other);
            None
        }
    };
    let strict = opt_bool(&mut local, &at(path, "strict"), o.get("strict"));
    strict_keys(&mut local, path, o, &["type", "name", "description", "parameters", "strict"]);
    let ok = local.0.is_empty();
    iss.merge(local);
    if !ok {
        return None;
    }
    Some(FunctionTool { name: name?, description, parameters, strict })
}

/// `tool_choice`: `"auto" | "none" | "required" | {type:"function",name} | {type:"function",function:{name}}`.
fn parse_tool_choice(iss: &mut Issues, v: &Value) -> Option<ToolChoice> {
    const PATH: &str = "tool_choice";
    let o = match v {
        Value::String(s) => {
            return match s.as_str() {
                "auto" => Some(ToolChoice::Auto),
                "none" => Some(ToolChoice::None),
                "required" => Some(ToolChoice::Required),
                _ => {
                    iss.hard(PATH, "Invalid input");
                    None
                }
            };
        }
        Value::Object(o) => o,
        _ => {
            iss.hard(PATH, "Invalid input");
            return None;
        }
    };
    // Option A: {type:"function", name}.
    let mut a = Issues::default();
    one_of(&mut a, &at(PATH, "type"), o.get("type"), &["function"]);
    let name_a = req_string(&mut a, &at(PATH, "name"), o.get("name"));
    if name_a.as_deref() == Some("") {
        a.soft(&at(PATH, "name"), "Too small: expected string to have >=1 characters");
    }
    strict_keys(&mut a, PATH, o, &["type", "name"]);
    if a.0.is_empty() {
        return name_a.map(ToolChoice::Function);
    }
    // Option B: {type:"function", function:{name}}.
    let mut b = Issues::default();
    one_of(&mut b, &at(PATH, "type"), o.get("type"), &["function"]);
    let fpath = at(PATH, "function");
    let name_b = req_object(&mut b, &fpath, o.get("function")).and_then(|f| {
        let n = req_string(&mut b, &at(&fpath, "name"), f.get("name"));
        if n.as_deref() == Some("") {
            b.soft(&at(&fpath, "name"), "Too small: expected string to have >=1 characters");
        }
        n
    });
    strict_keys(&mut b, PATH, o, &["type", "function"]);
    if b.0.is_empty() {
        return name_b.map(ToolChoice::Function);
    }
    // The string literals always abort on an object; an object option whose issues are all
    // checks (not aborting) is the one the union reports.
    match (a.aborted(), b.aborted()) {
        (false, true) => iss.merge(a),
        (true, false) => iss.merge(b),
        _ => iss.hard(PATH, "Invalid input"),
    }
    None
}

/// `text`: `{format?:{type:"text"}}` (other keys stripped).
fn parse_text(iss: &mut Issues, v: &Value) -> Option<String> {
    let o = req_object(iss, "text", Some(v))?;
    let f = o.get("format")?;
    let f = req_object(iss, "text.format", Some(f))?;
    one_of(iss, "text.format.type", f.get("type"), &["text"])
}

fn parse_reasoning(iss: &mut Issues, v: &Value) -> Option<Reasoning> {
    let o = req_object(iss, "reasoning", Some(v))?;
    let mut local = Issues::default();
    let effort = o
        .get("effort")
        .and_then(|e| one_of(&mut local, "reasoning.effort", Some(e), &["none", "minimal", "low", "medium", "high", "xhigh"]));
    let summary = o.get("summary").and_then(|s| one_of(&mut local, "reasoning.summary", Some(s), &["auto", "concise", "detailed"]));
    let ok = local.0.is_empty();
    iss.merge(local);
    ok.then_some(Reasoning { effort, summary })
}

// ---------------------------------------------------------------------------------------------
// Request → upstream turn
// ---------------------------------------------------------------------------------------------

/// Limits on input images and files (spec §8: images 10 MiB, files 5 MiB, ≤ 8 URL parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLimits {
    /// Remote image URLs are passed to the upstream as `image_url` parts.
    pub allow_image_urls: bool,
    /// Remote image URLs per request.
    pub max_url_parts: usize,
    /// Decoded bytes per image.
    pub max_image_bytes: usize,
    /// Decoded bytes per file.
    pub max_file_bytes: usize,
    /// Characters of file text kept per file.
    pub max_file_chars: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            allow_image_urls: true,
            max_url_parts: 8,
            max_image_bytes: 10 * 1024 * 1024,
            max_file_bytes: 5 * 1024 * 1024,
            max_file_chars: 200_000,
        }
    }
}

/// What the agent turn needs (fields of `turn::TurnSpec`) and what to persist.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnInput {
    /// Chat messages for the upstream: one system message (instructions, system/developer
    /// items, input files) when there is anything for it, then `conversation`. The agent's own
    /// system prompt, if any, goes before all of it.
    pub messages: Vec<Value>,
    /// The `previous_response_id` history followed by this request's messages (no system
    /// message), tool calls paired with their results.
    pub conversation: Vec<Value>,
    /// Chat-form function tools (`None` when there are none).
    pub tools: Option<Vec<Value>>,
    /// Chat-form `tool_choice` (`None`: the upstream default, `auto`).
    pub tool_choice: Option<Value>,
    /// `temperature`, `top_p`, and `max_output_tokens` as `max_completion_tokens`.
    pub sampling: Map<String, Value>,
}

/// Turn a validated request plus the stored conversation of its `previous_response_id` (chat
/// messages, oldest first; empty when there is none) into the upstream turn's input. Checks, in
/// the reference's order: input files and images (`invalid request`), tools/`tool_choice`
/// (`invalid tool configuration`), then a user message or `function_call_output` must be present
/// (`Missing user message in `input`.`).
pub fn prepare_turn(req: &ResponsesRequest, history: &[Value], limits: &InputLimits) -> Result<TurnInput, ApiError> {
    let files = check_media(&req.input, limits)?;
    let (tools, tool_choice) = chat_tools(&req.tools, req.tool_choice.as_ref())?;

    let mut system: Vec<String> = req.instructions.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
    let mut exchange: Vec<Value> = Vec::new();
    let mut has_user = false;
    match &req.input {
        ResponsesInput::Text(s) => {
            if !s.is_empty() {
                has_user = true;
                exchange.push(json!({"role": "user", "content": s}));
            }
        }
        ResponsesInput::Items(items) => {
            for item in items {
                match item {
                    InputItem::Message { role, content } => {
                        let text = content
                            .iter()
                            .filter_map(|p| match p {
                                ContentPart::Text(t) => Some(t.as_str()),
                                _ => None,
                            })
                            .filter(|t| !t.is_empty())
                            .collect::<Vec<_>>()
                            .join("\n");
                        let text = text.trim();
                        match role {
                            Role::System | Role::Developer => {
                                if !text.is_empty() {
                                    system.push(text.to_string());
                                }
                            }
                            Role::Assistant => {
                                if !text.is_empty() {
                                    exchange.push(json!({"role": "assistant", "content": text}));
                                }
                            }
                            Role::User => {
                                let images: Vec<Value> = content
                                    .iter()
                                    .filter_map(|p| match p {
                                        ContentPart::Image(src) => {
                                            image_url(src).map(|u| json!({"type": "image_url", "image_url": {"url": u}}))
                                        }
                                        _ => None,
                                    })
                                    .collect();
                                if text.is_empty() && images.is_empty() {
                                    continue;
                                }
                                has_user = true;
                                if images.is_empty() {
                                    exchange.push(json!({"role": "user", "content": text}));
                                } else {
                                    let mut parts = Vec::with_capacity(images.len() + 1);
                                    if !text.is_empty() {
                                        parts.push(json!({"type": "text", "text": text}));
                                    }
                                    parts.extend(images);
                                    exchange.push(json!({"role": "user", "content": parts}));
                                }
                            }
                        }
                    }
                    InputItem::FunctionCall { call_id, name, arguments } => {
                        let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
                        push_tool_call(&mut exchange, call);
                    }
                    InputItem::FunctionCallOutput { call_id, output } => {
                        has_user = true;
                        exchange.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
                    }
                    InputItem::Skipped => {}
                }
            }
        }
    }
    system.extend(files);
    if !has_user {
        return Err(ApiError::invalid(MISSING_USER_MESSAGE));
    }

    let mut conversation: Vec<Value> = history.to_vec();
    conversation.extend(exchange);
    let conversation = pair_tool_calls(conversation);
    let mut messages = Vec::with_capacity(conversation.len() + 1);
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system.join("\n\n")}));
    }
    messages.extend(conversation.iter().cloned());

    let mut sampling = Map::new();
    if let Some(t) = &req.temperature {
        sampling.insert("temperature".into(), t.clone());
    }
    if let Some(p) = &req.top_p {
        sampling.insert("top_p".into(), p.clone());
    }
    if let Some(m) = req.max_output_tokens {
        sampling.insert("max_completion_tokens".into(), json!(m));
    }
    if let (Some(p), Some(_)) = (req.parallel_tool_calls, &tools) {
        sampling.insert("parallel_tool_calls".into(), json!(p));
    }
    Ok(TurnInput { messages, conversation, tools, tool_choice, sampling })
}

/// Add a tool call to the trailing assistant message, or start one.
fn push_tool_call(exchange: &mut Vec<Value>, call: Value) {
    if let Some(last) =
        exchange.last_mut().and_then(Value::as_object_mut).filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
    {
        match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            Some(calls) => calls.push(call),
            None => {
                last.insert("tool_calls".into(), json!([call]));
            }
        }
        return;
    }
    exchange.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

fn role_of(m: &Value) -> Option<&str> {
    m.get("role").and_then(Value::as_str)
}

fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// Make the transcript acceptable to a chat upstream: an assistant message's `tool_calls` keep
/// only the calls answered by the `tool` messages right after it (an assistant left with
/// neither text nor calls is dropped), and a `tool` message that answers no such call becomes a
/// user message `Tool:<call_id>: <output>`.
fn pair_tool_calls(msgs: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(msgs.len());
    let mut i = 0;
    while i < msgs.len() {
        let m = &msgs[i];
        let calls = m.get("tool_calls").and_then(Value::as_array).filter(|_| role_of(m) == Some("assistant"));
        let Some(calls) = calls else {
            if role_of(m) == Some("tool") {
                out.push(orphan_tool_result(m));
            } else {
                out.push(m.clone());
            }
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < msgs.len() && role_of(&msgs[j]) == Some("tool") {
            j += 1;
        }
        let results = &msgs[i + 1..j];
        let answered = |id: &str| results.iter().any(|r| r.get("tool_call_id").and_then(Value::as_str) == Some(id));
        let call_ids: Vec<&str> = calls.iter().filter_map(|c| c.get("id").and_then(Value::as_str)).collect();
        let kept: Vec<Value> = calls.iter().filter(|c| c.get("id").and_then(Value::as_str).is_some_and(answered)).cloned().collect();
        let mut a = m.clone();
        if let Some(o) = a.as_object_mut() {
            if kept.is_empty() {
                o.remove("tool_calls");
            } else {
                o.insert("tool_calls".into(), Value::Array(kept));
            }
        }
        let has_calls = a.get("tool_calls").is_some();
        let has_text = !text_of(a.get("content")).is_empty();
        if has_calls || has_text {
            if let Some(o) = a.as_object_mut().filter(|o| !has_calls && o.get("content").is_some_and(Value::is_null)) {
                o.insert("content".into(), json!(""));
            }
            out.push(a);
        }
        for r in results {
            let id = r.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
            if has_calls && call_ids.contains(&id) {
                out.push(r.clone());
            } else {
                out.push(orphan_tool_result(r));
            }
        }
        i = j;
    }
    out
}

fn orphan_tool_result(m: &Value) -> Value {
    let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
    json!({"role": "user", "content": format!("Tool:{id}: {}", text_of(m.get("content")))})
}

/// Chat-form tools and `tool_choice` (spec §6.4: `none` keeps no call possible, `required`
/// needs tools, a named function must be among them).
fn chat_tools(tools: &[FunctionTool], choice: Option<&ToolChoice>) -> Result<(Option<Vec<Value>>, Option<Value>), ApiError> {
    let bad = || ApiError::invalid(INVALID_TOOL_CONFIG);
    for (i, t) in tools.iter().enumerate() {
        if t.name.trim().is_empty() || tools[..i].iter().any(|u| u.name == t.name) {
            return Err(bad());
        }
    }
    let all: Vec<Value> = tools.iter().map(FunctionTool::to_chat).collect();
    let some = |v: Vec<Value>| if v.is_empty() { None } else { Some(v) };
    match choice {
        None => Ok((some(all), None)),
        Some(ToolChoice::Auto) => {
            let c = (!all.is_empty()).then(|| json!("auto"));
            Ok((some(all), c))
        }
        Some(ToolChoice::None) => {
            let c = (!all.is_empty()).then(|| json!("none"));
            Ok((some(all), c))
        }
        Some(ToolChoice::Required) if all.is_empty() => Err(bad()),
        Some(ToolChoice::Required) => Ok((Some(all), Some(json!("required")))),
        Some(ToolChoice::Function(name)) => {
            let name = name.trim();
            let matched: Vec<Value> = tools.iter().filter(|t| t.name == name).map(FunctionTool::to_chat).collect();
            if matched.is_empty() {
                return Err(bad());
            }
            Ok((Some(matched), Some(json!({"type": "function", "function": {"name": name}}))))
        }
    }
}

/// `data:<mime>[;base64],<payload>` → (mime, payload).
fn parse_data_url(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, payload))
}

fn base64_engine() -> base64::engine::GeneralPurpose {
    let config = base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
}

/// Decode lenient base64 (whitespace ignored, padding optional), refusing more than `max` bytes.
fn decode_base64(data: &str, max: usize) -> Option<Vec<u8>> {
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if clean.is_empty() || clean.len() / 4 * 3 > max.saturating_add(3) {
        return None;
    }
    let bytes = base64_engine().decode(clean.as_bytes()).ok()?;
    (bytes.len() <= max).then_some(bytes)
}

/// The upstream `image_url.url` of an image.
fn image_url(src: &ImageSource) -> Option<String> {
    match src {
        ImageSource::Url(u) => Some(u.clone()),
        ImageSource::Base64 { media_type, data } => {
            let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Some(format!("data:{media_type};base64,{data}"))
        }
        ImageSource::FileId(_) => None,
    }
}

/// Validate images and files; returns the files' text as `<file name="…">` blocks.
fn check_media(input: &ResponsesInput, limits: &InputLimits) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::invalid(INVALID_MEDIA);
    let ResponsesInput::Items(items) = input else { return Ok(Vec::new()) };
    let mut url_parts = 0usize;
    let mut files = Vec::new();
    for item in items {
        let InputItem::Message { content, .. } = item else { continue };
        for part in content {
            match part {
                ContentPart::Text(_) => {}
                ContentPart::Image(ImageSource::Url(u)) => match parse_data_url(u) {
                    Some((mime, payload)) => {
                        if !IMAGE_MIMES.contains(&mime.to_ascii_lowercase().as_str())
                            || decode_base64(payload, limits.max_image_bytes).is_none()
                        {
                            return Err(bad());
                        }
                    }
                    None => {
                        let lower = u.to_ascii_lowercase();
                        if !limits.allow_image_urls || !(lower.starts_with("https://") || lower.starts_with("http://")) {
                            return Err(bad());
                        }
                        url_parts += 1;
                        if url_parts > limits.max_url_parts {
                            return Err(bad());
                        }
                    }
                },
                ContentPart::Image(ImageSource::Base64 { data, .. }) => {
                    decode_base64(data, limits.max_image_bytes).ok_or_else(bad)?;
                }
                ContentPart::Image(ImageSource::FileId(_)) => return Err(bad()),
                ContentPart::File(FileSource::Base64 { media_type, data, filename }) => {
                    let bytes = decode_base64(data, limits.max_file_bytes).ok_or_else(bad)?;
                    let mime = media_type.as_deref().unwrap_or("text/plain").to_ascii_lowercase();
                    let mime = mime.split(';').next().unwrap_or_default().trim();
                    let texty = mime.starts_with("text/")
                        || matches!(mime, "application/json" | "application/xml" | "application/x-yaml" | "application/yaml");
                    if !texty {
                        return Err(bad());
                    }
                    let text = String::from_utf8(bytes).map_err(|_| bad())?;
                    let text: String = text.chars().take(limits.max_file_chars).collect();
                    let name = filename.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or("file").replace('"', "'");
                    if !text.trim().is_empty() {
                        files.push(format!("<file name=\"{name}\">\n{text}\n</file>"));
                    }
                }
                // No fetching and no file store in the gateway core.
                ContentPart::File(FileSource::Url(_) | FileSource::FileId(_)) => return Err(bad()),
            }
        }
    }
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// The ids of one response. The core has no RNG: build them from the shell's randomness,
/// normally with [`ResponseIds::from_seed`] (e.g. the hex of the request's random bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseIds {
    /// `resp_<uuid>`.
    pub response_id: String,
    /// `msg_<uuid>`: the assistant message item.
    pub message_id: String,
    /// Secret-free randomness the function-call ids are derived from.
    pub seed: String,
}

impl ResponseIds {
    /// All ids derived from one random seed (SHA-256; unpredictable if the seed is).
    pub fn from_seed(seed: &str) -> ResponseIds {
        ResponseIds {
            response_id: format!("resp_{}", derived_uuid(seed, "response", 0)),
            message_id: format!("msg_{}", derived_uuid(seed, "message", 0)),
            seed: seed.to_string(),
        }
    }

    /// `call_<uuid>`: the id of the `n`-th function_call output item.
    pub fn call_item_id(&self, n: usize) -> String {
        format!("call_{}", derived_uuid(&self.seed, "call-item", n))
    }

    /// The `call_id` of the `n`-th function call: 9 hex characters, as the reference generates
    /// (the upstream's own call id is not exposed).
    pub fn call_id(&self, n: usize) -> String {
        crate::ids::hex(&derive(&self.seed, "call-id", n)[..5])[..9].to_string()
    }
}

fn derive(seed: &str, label: &str, n: usize) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update([0]);
    h.update(label.as_bytes());
    h.update([0]);
    h.update((n as u64).to_le_bytes());
    h.finalize().into()
}

fn derived_uuid(seed: &str, label: &str, n: usize) -> String {
    let d = derive(seed, label, n);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    crate::ids::uuid_v4(b)
}

/// Responses-style usage.
fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input.saturating_add(output),
    })
}

fn envelope(ids: &ResponseIds, model: &str, created_at: u64, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({"id": ids.response_id, "object": "response", "created_at": created_at, "status": status, "model": model, "output": output, "usage": usage})
}

fn message_item(id: &str, text: &str, phase: &str) -> Value {
    json!({"type": "message", "id": id, "role": "assistant", "content": [output_text(text)], "phase": phase, "status": "completed"})
}

fn function_call_item(ids: &ResponseIds, n: usize, call: &ToolCall, status: Option<&str>) -> Value {
    let mut v = json!({"type": "function_call", "id": ids.call_item_id(n), "call_id": ids.call_id(n), "name": call.name, "arguments": call.arguments});
    if let (Some(s), Some(o)) = (status, v.as_object_mut()) {
        o.insert("status".into(), json!(s));
    }
    v
}

/// `completed`, or `incomplete` when the output budget ran out (`finish_reason: "length"`).
fn run_status(r: &TurnResult) -> &'static str {
    if r.finish_reason == "length" { "incomplete" } else { "completed" }
}

fn finish(mut v: Value, status: &str) -> Value {
    if status == "incomplete" {
        if let Some(o) = v.as_object_mut() {
            o.insert("incomplete_details".into(), json!({"reason": "max_output_tokens"}));
        }
    }
    v
}

fn failed_object(ids: &ResponseIds, model: &str, created_at: u64, e: &ApiError) -> Value {
    let mut v = envelope(ids, model, created_at, "failed", Vec::new(), usage(0, 0));
    if let Some(o) = v.as_object_mut() {
        o.insert("error".into(), json!({"code": e.kind, "message": e.message}));
    }
    v
}

/// The full response object of a finished or failed turn (`responses-nonstream`,
/// `responses-provider-key-disabled`). A text answer is one `message` item (`phase:
/// "final_answer"`); client tool calls are `function_call` items, after a `commentary` message
/// when the agent also wrote text. A failure is `status:"failed"`, `output:[]` and
/// `error:{code:<type>,message}`.
pub fn response_object(ids: &ResponseIds, model: &str, created_at: u64, outcome: Result<&TurnResult, &ApiError>) -> Value {
    let r = match outcome {
        Ok(r) => r,
        Err(e) => return failed_object(ids, model, created_at, e),
    };
    let mut output = Vec::with_capacity(r.tool_calls.len() + 1);
    if r.tool_calls.is_empty() {
        let text = if r.text.is_empty() { NO_RESPONSE } else { r.text.as_str() };
        output.push(message_item(&ids.message_id, text, "final_answer"));
    } else if !r.text.is_empty() {
        output.push(message_item(&ids.message_id, &r.text, "commentary"));
    }
    output.extend(r.tool_calls.iter().enumerate().map(|(n, c)| function_call_item(ids, n, c, None)));
    let status = run_status(r);
    finish(envelope(ids, model, created_at, status, output, usage(r.prompt_tokens, r.completion_tokens)), status)
}

/// The HTTP status of a failed run: the mapped status of a provider error, else 500.
pub fn failure_status(e: &ApiError) -> u16 {
    if (400..=599).contains(&e.status) { e.status } else { 500 }
}

/// The HTTP status of a non-streamed response: 200, or [`failure_status`].
pub fn response_http_status(outcome: Result<&TurnResult, &ApiError>) -> u16 {
    match outcome {
        Ok(_) => 200,
        Err(e) => failure_status(e),
    }
}

/// The SSE encoder of one streamed response (spec §7, `responses-stream-provider-key-disabled`):
/// `event: <type>\ndata: <json with the same type>\n\n` per event, `data: [DONE]\n\n` last.
///
/// [`start`](Self::start) right after the headers: `response.created`, `response.in_progress`,
/// then (as the reference, before any text) the message item's `output_item.added` and
/// `content_part.added`. Then [`on_event`](Self::on_event) per turn event: one
/// An `output_text` content part with the fields of the OpenAI schema: `annotations` and
/// `logprobs` (empty; the reference leaves them out, which strict clients such as the AI SDK
/// reject).
fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// `output_text.delta` per text delta; tool calls are collected; on `Finished`:
/// `output_text.done`, `content_part.done`, `output_item.done` (phase `final_answer`, or
/// `commentary` before tool calls), per call `output_item.added` + `output_item.done` (the
/// `function_call` item, `status:"completed"` on done), then `response.completed` (or
/// `response.incomplete`) with the full object and `[DONE]`; on `Failed`: `response.failed` and
/// `[DONE]`.
#[derive(Debug, Clone)]
pub struct ResponsesStream {
    ids: ResponseIds,
    model: String,
    created_at: u64,
    started: bool,
    text: String,
    calls: Vec<ToolCall>,
    response: Option<Value>,
}

fn sse(event: Value) -> String {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    format!("event: {kind}\ndata: {event}\n\n")
}

impl ResponsesStream {
    pub fn new(ids: ResponseIds, model: impl Into<String>, created_at: u64) -> ResponsesStream {
        ResponsesStream { ids, model: model.into(), created_at, started: false, text: String::new(), calls: Vec::new(), response: None }
    }

    pub fn ids(&self) -> &ResponseIds {
        &self.ids
    }

    /// The opening events (empty if already sent).
    pub fn start(&mut self) -> String {
        if self.started {
            return String::new();
        }
        self.started = true;
        let initial = envelope(&self.ids, &self.model, self.created_at, "in_progress", Vec::new(), usage(0, 0));
        let mut s = sse(json!({"type": "response.created", "response": initial}));
        s.push_str(&sse(json!({"type": "response.in_progress", "response": initial})));
        let item = json!({"type": "message", "id": self.ids.message_id, "role": "assistant", "content": [], "status": "in_progress"});
        s.push_str(&sse(json!({"type": "response.output_item.added", "output_index": 0, "item": item})));
        s.push_str(&sse(json!({
            "type": "response.content_part.added", "item_id": self.ids.message_id, "output_index": 0, "content_index": 0,
            "part": output_text(""),
        })));
        s
    }

    fn delta(&mut self, t: &str) -> String {
        self.text.push_str(t);
        sse(
            json!({"type": "response.output_text.delta", "item_id": self.ids.message_id, "output_index": 0, "content_index": 0, "delta": t}),
        )
    }

    /// The SSE text for one turn event (empty when it adds nothing yet, and after the end).
    /// Sends the opening events first if [`start`](Self::start) was not called.
    pub fn on_event(&mut self, ev: &TurnEvent) -> String {
        if self.response.is_some() {
            return String::new();
        }
        let mut s = self.start();
        match ev {
            TurnEvent::Text(t) if !t.is_empty() => s.push_str(&self.delta(t)),
            TurnEvent::Text(_) => {}
            TurnEvent::ToolCallStart { index, id, name } => {
                if self.calls.len() <= *index {
                    self.calls.resize(index.saturating_add(1), ToolCall::default());
                }
                if let Some(c) = self.calls.get_mut(*index) {
                    c.id.clone_from(id);
                    c.name.clone_from(name);
                }
            }
            TurnEvent::ToolCallArgs { index, fragment } => {
                if let Some(c) = self.calls.get_mut(*index) {
                    c.arguments.push_str(fragment);
                }
            }
            TurnEvent::Finished(r) => s.push_str(&self.finished(r)),
            TurnEvent::Failed(e) => {
                let v = failed_object(&self.ids, &self.model, self.created_at, e);
                s.push_str(&sse(json!({"type": "response.failed", "response": v})));
                s.push_str(crate::openai::SSE_DONE);
                self.response = Some(v);
            }
        }
        s
    }

    fn finished(&mut self, r: &TurnResult) -> String {
        let mut s = String::new();
        let calls: Vec<ToolCall> = if r.tool_calls.is_empty() {
            self.calls.iter().filter(|c| !c.name.is_empty()).cloned().collect()
        } else {
            r.tool_calls.clone()
        };
        if self.text.is_empty() {
            // Nothing streamed: send the final text (or the fallback) as one delta.
            let text = if !r.text.is_empty() {
                r.text.clone()
            } else if calls.is_empty() {
                NO_RESPONSE.to_string()
            } else {
                String::new()
            };
            if !text.is_empty() {
                s.push_str(&self.delta(&text));
            }
        }
        let id = self.ids.message_id.clone();
        let text = self.text.clone();
        s.push_str(&sse(json!({"type": "response.output_text.done", "item_id": id, "output_index": 0, "content_index": 0, "text": text})));
        s.push_str(&sse(json!({
            "type": "response.content_part.done", "item_id": id, "output_index": 0, "content_index": 0,
            "part": output_text(&text),
        })));
        let phase = if calls.is_empty() { "final_answer" } else { "commentary" };
        let message = message_item(&id, &text, phase);
        s.push_str(&sse(json!({"type": "response.output_item.done", "output_index": 0, "item": message})));
        let mut output = vec![message];
        for (n, c) in calls.iter().enumerate() {
            let index = n + 1;
            s.push_str(&sse(
                json!({"type": "response.output_item.added", "output_index": index, "item": function_call_item(&self.ids, n, c, None)}),
            ));
            s.push_str(&sse(json!({
                "type": "response.output_item.done", "output_index": index, "item": function_call_item(&self.ids, n, c, Some("completed")),
            })));
            output.push(function_call_item(&self.ids, n, c, None));
        }
        let status = run_status(r);
        let v =
            finish(envelope(&self.ids, &self.model, self.created_at, status, output, usage(r.prompt_tokens, r.completion_tokens)), status);
        let kind = if status == "incomplete" { "response.incomplete" } else { "response.completed" };
        s.push_str(&sse(json!({"type": kind, "response": v})));
        s.push_str(crate::openai::SSE_DONE);
        self.response = Some(v);
        s
    }

    /// The stream has ended (`[DONE]` sent).
    pub fn is_done(&self) -> bool {
        self.response.is_some()
    }

    /// The final response object, once the stream has ended (kept for `GET /v1/responses/{id}`).
    pub fn response(&self) -> Option<&Value> {
        self.response.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        parse_responses_request(body.as_bytes()).unwrap_err().message
    }

    fn ok(body: &str) -> ResponsesRequest {
        parse_responses_request(body.as_bytes()).unwrap()
    }

    #[test]
    fn schema_messages() {
        assert_eq!(err(""), "model: Invalid input: expected string, received undefined");
        assert_eq!(err("  \n"), "model: Invalid input: expected string, received undefined");
        assert_eq!(err("[]"), ": Invalid input: expected object, received array");
        assert_eq!(err("null"), ": Invalid input: expected object, received null");
        assert_eq!(err(r#"{"model":1,"input":"x"}"#), "model: Invalid input: expected string, received number");
        assert_eq!(err(r#"{"model":"m"}"#), "input: Invalid input");
        assert_eq!(err(r#"{"model":"m","input":5}"#), "input: Invalid input");
        assert_eq!(err(r#"{"model":"m","input":"hi","temperature":5}"#), "temperature: Too big: expected number to be <=2");
        assert_eq!(err(r#"{"model":"m","input":"hi","temperature":-1}"#), "temperature: Too small: expected number to be >=0");
        assert_eq!(err(r#"{"model":"m","input":"hi","temperature":null}"#), "temperature: Invalid input: expected number, received null");
        assert_eq!(err(r#"{"model":"m","input":"hi","top_p":1.5}"#), "top_p: Too big: expected number to be <=1");
        assert_eq!(err(r#"{"model":"m","input":"hi","max_output_tokens":0}"#), "max_output_tokens: Too small: expected number to be >0");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","max_output_tokens":1.5}"#),
            "max_output_tokens: Invalid input: expected int, received number"
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","stream":"yes"}"#), "stream: Invalid input: expected boolean, received string");
        assert_eq!(err(r#"{"model":"m","input":"hi","bogus_field":true}"#), ": Unrecognized key: \"bogus_field\"");
        // Ours: OpenAI keys the reference rejects are accepted (and honoured where they can be).
        let ok = parse_responses_request(
            br#"{"model":"m","input":"hi","include":[],"parallel_tool_calls":false,"stream_options":{},"service_tier":"auto"}"#,
        )
        .unwrap();
        assert_eq!(ok.parallel_tool_calls, Some(false));
        assert_eq!(
            err(r#"{"model":"m","input":"hi","background":true}"#),
            "background: background responses are not supported by this gateway"
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","include":"x"}"#), "include: Invalid input: expected array, received string");
        assert_eq!(err(r#"{"model":"m","input":"hi","a":1,"b":2}"#), ": Unrecognized keys: \"a\", \"b\"");
        // Field issues come before unknown keys, in schema order.
        assert_eq!(err(r#"{"zz":1,"input":"hi"}"#), "model: Invalid input: expected string, received undefined");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","truncation":"x"}"#),
            "truncation: Invalid option: expected one of \"auto\"|\"disabled\""
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","metadata":{"a":1}}"#), "metadata.a: Invalid input: expected string, received number");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","text":{"format":{"type":"json_object"}}}"#),
            "text.format.type: Invalid input: expected \"text\""
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","reasoning":{"effort":"max"}}"#).split(':').next(), Some("reasoning.effort"));
    }

    #[test]
    fn schema_tools_and_choice() {
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tools":[{"type":"web_search"}]}"#),
            "tools.0.type: Invalid input: expected \"function\""
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","tools":[{"type":"function","name":""}]}"#), "tools.0.name: Tool name cannot be empty");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tools":[{"type":"function","name":"f","parameters":"x"}]}"#),
            "tools.0.parameters: Invalid input: expected record, received string"
        );
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tools":[{"type":"function","function":{"name":"f"}}]}"#),
            "tools.0.name: Invalid input: expected string, received undefined"
        );
        assert_eq!(err(r#"{"model":"m","input":"hi","tool_choice":"any"}"#), "tool_choice: Invalid input");
        assert_eq!(
            err(r#"{"model":"m","input":"hi","tool_choice":{"type":"function","name":""}}"#),
            "tool_choice.name: Too small: expected string to have >=1 characters"
        );
        let r = ok(r#"{"model":"m","input":"hi","tool_choice":{"type":"function","function":{"name":"f"}}}"#);
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("f".into())));
        let r = ok(r#"{"model":"m","input":"hi","tool_choice":{"type":"function","name":"g"}}"#);
        assert_eq!(r.tool_choice, Some(ToolChoice::Function("g".into())));
    }

    #[test]
    fn schema_items() {
        assert_eq!(err(r#"{"model":"m","input":[{"type":"bogus"}]}"#), "input: Invalid input");
        assert_eq!(err(r#"{"model":"m","input":[{"type":"message","role":"user","content":"x","extra":1}]}"#), "input: Invalid input");
        // Only non-aborting checks inside the array: they surface with their own path.
        assert_eq!(
            err(r#"{"model":"m","input":[{"type":"message","role":"user","content":"x","phase":"commentary"}]}"#),
            "input.0.phase: `phase` is only valid on assistant messages."
        );
        assert_eq!(
            err(
                r#"{"model":"m","input":[{"type":"message","role":"user","content":[{"type":"input_image","source":{"type":"base64","media_type":"image/png","data":""}}]}]}"#
            ),
            "input.0.content.0.source.data: Too small: expected string to have >=1 characters"
        );
        let r = ok(
            r#"{"model":"m","input":[{"role":"user","content":"easy"},{"type":"reasoning","summary":[]},{"type":"item_reference","id":"x"}]}"#,
        );
        assert_eq!(
            r.input,
            ResponsesInput::Items(vec![
                InputItem::Message { role: Role::User, content: vec![ContentPart::Text("easy".into())] },
                InputItem::Skipped,
                InputItem::Skipped
            ])
        );
    }

    #[test]
    fn bad_json() {
        let e = parse_responses_request(br#"{"model":"openclaw/main","input":["#).unwrap_err();
        assert_eq!((e.status, e.kind, e.message.as_str()), (400, "invalid_request_error", "Unexpected end of JSON input"));
        let e = parse_responses_request(b"{nope}").unwrap_err();
        assert_eq!((e.status, e.kind), (400, "invalid_request_error"));
        assert!(e.message.starts_with("Invalid JSON body: "));
        assert_eq!(parse_responses_request(&[0xff, 0xfe]).unwrap_err().status, 400);
    }

    #[test]
    fn conversion_to_chat_messages() {
        let r = ok(r#"{"model":"m","instructions":"Be terse.","input":[
            {"type":"message","role":"developer","content":"Dev rule."},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"What is"},{"type":"input_text","text":"the weather?"}]},
            {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
            {"type":"function_call_output","call_id":"c1","output":"{\"t\":\"72F\"}"},
            {"type":"message","role":"assistant","content":[{"type":"output_text","text":"72F."}]},
            {"type":"message","role":"user","content":"thanks"}
        ],"temperature":0.5,"top_p":1,"max_output_tokens":100}"#);
        let t = prepare_turn(&r, &[], &InputLimits::default()).unwrap();
        assert_eq!(
            Value::Array(t.messages.clone()),
            json!([
                {"role": "system", "content": "Be terse.\n\nDev rule."},
                {"role": "user", "content": "What is\nthe weather?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\"t\":\"72F\"}"},
                {"role": "assistant", "content": "72F."},
                {"role": "user", "content": "thanks"},
            ])
        );
        assert_eq!(t.conversation.len(), 5);
        assert_eq!(Value::Object(t.sampling), json!({"temperature": 0.5, "top_p": 1, "max_completion_tokens": 100}));
        assert_eq!((t.tools, t.tool_choice), (None, None));
    }

    #[test]
    fn history_and_tool_pairing() {
        let history = vec![
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "abc123def", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}),
        ];
        let r = ok(
            r#"{"model":"m","previous_response_id":"resp_x","input":[{"type":"function_call_output","call_id":"abc123def","output":"sunny"}]}"#,
        );
        let t = prepare_turn(&r, &history, &InputLimits::default()).unwrap();
        assert_eq!(t.messages.len(), 3);
        assert_eq!(t.messages[2], json!({"role": "tool", "tool_call_id": "abc123def", "content": "sunny"}));
        // A new user turn instead of the tool result: the unanswered call is dropped.
        let r = ok(r#"{"model":"m","input":"never mind"}"#);
        let t = prepare_turn(&r, &history, &InputLimits::default()).unwrap();
        assert_eq!(Value::Array(t.messages), json!([{"role": "user", "content": "weather?"}, {"role": "user", "content": "never mind"}]));
        // A result for an unknown call is kept as text.
        let r = ok(r#"{"model":"m","input":[{"type":"function_call_output","call_id":"zz","output":"42"}]}"#);
        let t = prepare_turn(&r, &[], &InputLimits::default()).unwrap();
        assert_eq!(Value::Array(t.messages), json!([{"role": "user", "content": "Tool:zz: 42"}]));
    }

    #[test]
    fn missing_user_message() {
        for body in [
            r#"{"model":"m","input":[]}"#,
            r#"{"model":"m","input":""}"#,
            r#"{"model":"m","input":[{"type":"message","role":"assistant","content":"hi"}]}"#,
            r#"{"model":"m","input":[{"type":"message","role":"user","content":"   "}]}"#,
            r#"{"model":"m","input":[{"type":"message","role":"system","content":"rules"}]}"#,
        ] {
            let e = prepare_turn(&ok(body), &[json!({"role": "user", "content": "earlier"})], &InputLimits::default()).unwrap_err();
            assert_eq!((e.status, e.kind, e.message.as_str()), (400, "invalid_request_error", MISSING_USER_MESSAGE), "{body}");
        }
    }

    #[test]
    fn tools_mapping() {
        let tools = r#""tools":[{"type":"function","name":"get_weather","description":"Get weather","parameters":{"type":"object"},"strict":true},{"type":"function","name":"other"}]"#;
        let t = prepare_turn(&ok(&format!(r#"{{"model":"m","input":"hi",{tools}}}"#)), &[], &InputLimits::default()).unwrap();
        assert_eq!(
            t.tools.unwrap()[0],
            json!({"type": "function", "function": {"name": "get_weather", "description": "Get weather", "parameters": {"type": "object"}, "strict": true}})
        );
        assert_eq!(t.tool_choice, None);
        let t = prepare_turn(
            &ok(&format!(r#"{{"model":"m","input":"hi",{tools},"tool_choice":{{"type":"function","name":"other"}}}}"#)),
            &[],
            &InputLimits::default(),
        )
        .unwrap();
        assert_eq!(t.tools.unwrap(), vec![json!({"type": "function", "function": {"name": "other"}})]);
        assert_eq!(t.tool_choice, Some(json!({"type": "function", "function": {"name": "other"}})));
        let t =
            prepare_turn(&ok(&format!(r#"{{"model":"m","input":"hi",{tools},"tool_choice":"required"}}"#)), &[], &InputLimits::default())
                .unwrap();
        assert_eq!(t.tool_choice, Some(json!("required")));
        for body in [
            r#"{"model":"m","input":"hi","tool_choice":"required"}"#.to_string(),
            format!(r#"{{"model":"m","input":"hi",{tools},"tool_choice":{{"type":"function","name":"nope"}}}}"#),
            r#"{"model":"m","input":"hi","tools":[{"type":"function","name":"a"},{"type":"function","name":"a"}]}"#.to_string(),
        ] {
            assert_eq!(prepare_turn(&ok(&body), &[], &InputLimits::default()).unwrap_err().message, INVALID_TOOL_CONFIG, "{body}");
        }
        // The tool check comes before the user-message check.
        assert_eq!(
            prepare_turn(&ok(r#"{"model":"m","input":[],"tool_choice":"required"}"#), &[], &InputLimits::default()).unwrap_err().message,
            INVALID_TOOL_CONFIG
        );
    }

    #[test]
    fn media() {
        let png = base64::engine::general_purpose::STANDARD.encode([0x89, b'P', b'N', b'G']);
        let body = format!(
            r#"{{"model":"m","input":[{{"type":"message","role":"user","content":[{{"type":"input_text","text":"look"}},{{"type":"input_image","source":{{"type":"base64","media_type":"image/png","data":"{png}"}}}},{{"type":"input_image","image_url":"https://example.com/a.png"}},{{"type":"input_file","source":{{"type":"base64","media_type":"text/plain","data":"aGVsbG8=","filename":"a.txt"}}}}]}}]}}"#
        );
        let t = prepare_turn(&ok(&body), &[], &InputLimits::default()).unwrap();
        assert_eq!(t.messages[0], json!({"role": "system", "content": "<file name=\"a.txt\">\nhello\n</file>"}));
        assert_eq!(
            t.messages[1],
            json!({"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ]})
        );
        let bad = [
            r#"{"type":"input_image","source":{"type":"base64","media_type":"image/png","data":"!!!"}}"#,
            r#"{"type":"input_image","file_id":"file_1"}"#,
            r#"{"type":"input_file","source":{"type":"url","url":"https://example.com/a.pdf"}}"#,
            r#"{"type":"input_file","source":{"type":"base64","media_type":"application/pdf","data":"aGVsbG8="}}"#,
        ];
        for part in bad {
            let body = format!(
                r#"{{"model":"m","input":[{{"type":"message","role":"user","content":[{{"type":"input_text","text":"x"}},{part}]}}]}}"#
            );
            assert_eq!(prepare_turn(&ok(&body), &[], &InputLimits::default()).unwrap_err().message, INVALID_MEDIA, "{part}");
        }
        let no_urls = InputLimits { allow_image_urls: false, ..InputLimits::default() };
        let body = r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"https://example.com/a.png"}]}]}"#;
        assert_eq!(prepare_turn(&ok(body), &[], &no_urls).unwrap_err().message, INVALID_MEDIA);
    }

    fn ids() -> ResponseIds {
        ResponseIds::from_seed("00112233445566778899aabbccddeeff")
    }

    #[test]
    fn ids_shape() {
        let i = ids();
        assert!(i.response_id.starts_with("resp_") && i.response_id.len() == 41);
        assert!(i.message_id.starts_with("msg_") && i.message_id.len() == 40);
        assert_ne!(i.call_item_id(0), i.call_item_id(1));
        assert_eq!(i.call_id(0).len(), 9);
        assert!(i.call_id(0).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(i, ids(), "deterministic from the seed");
    }

    fn result(text: &str, calls: Vec<ToolCall>, finish: &str) -> TurnResult {
        TurnResult { text: text.into(), tool_calls: calls, finish_reason: finish.into(), prompt_tokens: 11, completion_tokens: 4 }
    }

    #[test]
    fn nonstream_objects() {
        let i = ids();
        let v = response_object(&i, "openclaw/main", 7, Ok(&result("Hello", vec![], "stop")));
        assert_eq!(v["status"], "completed");
        assert_eq!(v["output"][0]["phase"], "final_answer");
        assert!(v.get("error").is_none() && v.get("incomplete_details").is_none());
        let v = response_object(&i, "m", 7, Ok(&result("", vec![], "stop")));
        assert_eq!(v["output"][0]["content"][0]["text"], NO_RESPONSE);
        let v = response_object(&i, "m", 7, Ok(&result("partial", vec![], "length")));
        assert_eq!((v["status"].as_str(), &v["incomplete_details"]), (Some("incomplete"), &json!({"reason": "max_output_tokens"})));
        let call = ToolCall { id: "up1".into(), name: "get_weather".into(), arguments: "{\"city\":\"Paris\"}".into() };
        let v = response_object(&i, "m", 7, Ok(&result("", vec![call.clone()], "tool_calls")));
        assert_eq!(
            v["output"],
            json!([{"type": "function_call", "id": i.call_item_id(0), "call_id": i.call_id(0), "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}])
        );
        assert_eq!(v["status"], "completed");
        let v = response_object(&i, "m", 7, Ok(&result("Checking.", vec![call], "tool_calls")));
        assert_eq!((v["output"][0]["phase"].as_str(), v["output"][1]["type"].as_str()), (Some("commentary"), Some("function_call")));
        let e = ApiError { status: 401, kind: "authentication_error", message: "bad key".into() };
        assert_eq!(response_http_status(Err(&e)), 401);
        assert_eq!(response_object(&i, "m", 7, Err(&e))["error"], json!({"code": "authentication_error", "message": "bad key"}));
        assert_eq!(failure_status(&ApiError { status: 200, kind: "api_error", message: String::new() }), 500);
        assert_eq!(response_http_status(Ok(&TurnResult::default())), 200);
    }

    fn events(sse: &str) -> Vec<(String, Value)> {
        sse.split("\n\n")
            .filter(|b| !b.is_empty())
            .map(|b| match b.strip_prefix("event: ") {
                Some(rest) => {
                    let (kind, data) = rest.split_once("\ndata: ").unwrap();
                    (kind.to_string(), serde_json::from_str(data).unwrap())
                }
                None => ("".into(), json!(b)),
            })
            .collect()
    }

    #[test]
    fn stream_text() {
        let mut s = ResponsesStream::new(ids(), "openclaw/main", 5);
        let mut out = s.start();
        for t in ["Hello", " from", " fake", " upstream"] {
            out.push_str(&s.on_event(&TurnEvent::Text(t.into())));
        }
        out.push_str(&s.on_event(&TurnEvent::Finished(result("Hello from fake upstream", vec![], "stop"))));
        assert!(s.is_done() && out.ends_with("data: [DONE]\n\n"));
        assert_eq!(s.on_event(&TurnEvent::Text("late".into())), "");
        let ev = events(&out);
        for (kind, data) in &ev[..ev.len() - 1] {
            assert_eq!(data["type"].as_str(), Some(kind.as_str()));
        }
        let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
                ""
            ]
        );
        let done = &ev[11].1["response"];
        assert_eq!(done, &response_object(&ids(), "openclaw/main", 5, Ok(&result("Hello from fake upstream", vec![], "stop"))));
        assert_eq!(s.response(), Some(done));
    }

    #[test]
    fn stream_tool_calls() {
        let i = ids();
        let mut s = ResponsesStream::new(i.clone(), "m", 5);
        let mut out = s.on_event(&TurnEvent::ToolCallStart { index: 0, id: "up".into(), name: "get_weather".into() });
        out.push_str(&s.on_event(&TurnEvent::ToolCallArgs { index: 0, fragment: "{\"city\":".into() }));
        out.push_str(&s.on_event(&TurnEvent::ToolCallArgs { index: 0, fragment: "\"Paris\"}".into() }));
        out.push_str(&s.on_event(&TurnEvent::Finished(TurnResult { finish_reason: "tool_calls".into(), ..Default::default() })));
        let ev = events(&out);
        let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            &kinds[4..],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.output_item.done",
                "response.completed",
                ""
            ]
        );
        assert_eq!(ev[6].1["item"]["phase"], "commentary");
        let call = json!({"type": "function_call", "id": i.call_item_id(0), "call_id": i.call_id(0), "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"});
        assert_eq!(ev[7].1, json!({"type": "response.output_item.added", "output_index": 1, "item": call}));
        assert_eq!(ev[8].1["item"]["status"], "completed");
        assert_eq!(ev[9].1["response"]["output"][1], call);
    }

    #[test]
    fn stream_failure_and_incomplete() {
        let mut s = ResponsesStream::new(ids(), "m", 5);
        s.start();
        let out = s.on_event(&TurnEvent::Failed(ApiError { status: 500, kind: "api_error", message: "internal error".into() }));
        let ev = events(&out);
        assert_eq!(ev[0].0, "response.failed");
        assert_eq!(ev[0].1["response"]["error"], json!({"code": "api_error", "message": "internal error"}));
        assert_eq!(ev[0].1["response"]["output"], json!([]));
        assert_eq!(ev[1].0, "");
        let mut s = ResponsesStream::new(ids(), "m", 5);
        let out = s.on_event(&TurnEvent::Finished(result("cut", vec![], "length")));
        let ev = events(&out);
        assert_eq!(ev[4].1["delta"], "cut", "text never streamed is sent as one delta");
        assert_eq!(ev[ev.len() - 2].0, "response.incomplete");
        assert_eq!(ev[ev.len() - 2].1["response"]["incomplete_details"]["reason"], "max_output_tokens");
    }

    #[test]
    fn no_panics_on_odd_input() {
        for body in [
            "1",
            "\"s\"",
            "{\"model\":\"m\",\"input\":[null,1,\"x\",[],{}]}",
            "{\"model\":\"m\",\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":[null,{\"type\":\"input_image\"},{\"type\":\"input_file\"}]}]}",
            "{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{}}",
            "{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":1e300}",
            "{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":-0.0}",
        ] {
            let _ = parse_responses_request(body.as_bytes()).map(|r| prepare_turn(&r, &[], &InputLimits::default()));
        }
        let mut s = ResponsesStream::new(ids(), "m", 0);
        let _ = s.on_event(&TurnEvent::ToolCallArgs { index: 5, fragment: "x".into() });
        let _ = s.on_event(&TurnEvent::ToolCallStart { index: 3, id: "a".into(), name: "f".into() });
        let out = s.on_event(&TurnEvent::Finished(TurnResult::default()));
        assert!(out.contains("\"output_index\":1"));
    }
}
