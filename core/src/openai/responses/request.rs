//! The request: its types and the strict schema with zod-like messages in the reference's issue
//! order ([`parse_responses_request`]).

use serde_json::{Map, Value, json};

use super::*;
use crate::openai::ApiError;

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
pub(super) const REQUEST_KEYS: [&str; 25] = [
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

pub(super) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
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

pub(super) fn parse_request_object(iss: &mut Issues, o: &Map<String, Value>) -> Option<ResponsesRequest> {
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
