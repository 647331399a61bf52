//! Request → upstream turn ([`prepare_turn`]): media checks, tools, the chat messages.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::*;
use crate::openai::ApiError;

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
pub(super) fn push_tool_call(exchange: &mut Vec<Value>, call: Value) {
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

pub(super) fn role_of(m: &Value) -> Option<&str> {
    m.get("role").and_then(Value::as_str)
}

pub(super) fn text_of(content: Option<&Value>) -> String {
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
pub(super) fn pair_tool_calls(msgs: Vec<Value>) -> Vec<Value> {
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

pub(super) fn orphan_tool_result(m: &Value) -> Value {
    let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
    json!({"role": "user", "content": format!("Tool:{id}: {}", text_of(m.get("content")))})
}

/// Chat-form tools and `tool_choice` (spec §6.4: `none` keeps no call possible, `required`
/// needs tools, a named function must be among them).
pub(super) fn chat_tools(tools: &[FunctionTool], choice: Option<&ToolChoice>) -> Result<(Option<Vec<Value>>, Option<Value>), ApiError> {
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
pub(super) fn parse_data_url(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, payload))
}

pub(super) fn base64_engine() -> base64::engine::GeneralPurpose {
    let config = base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config)
}

/// Decode lenient base64 (whitespace ignored, padding optional), refusing more than `max` bytes.
pub(super) fn decode_base64(data: &str, max: usize) -> Option<Vec<u8>> {
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if clean.is_empty() || clean.len() / 4 * 3 > max.saturating_add(3) {
        return None;
    }
    let bytes = base64_engine().decode(clean.as_bytes()).ok()?;
    (bytes.len() <= max).then_some(bytes)
}

/// The upstream `image_url.url` of an image.
pub(super) fn image_url(src: &ImageSource) -> Option<String> {
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
pub(super) fn check_media(input: &ResponsesInput, limits: &InputLimits) -> Result<Vec<String>, ApiError> {
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
