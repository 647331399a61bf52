//! `chat.history` / `chat.startup` and `GET /sessions/<key>/history`: params, the display form of
//! transcript messages, byte caps, payloads.

use serde_json::{Map, Value, json};

use super::*;
use crate::openai::Agents;
use crate::wire::{ErrorShape, details_code};

/// Messages returned when `limit` is absent, and the ceiling (`CHAT_HISTORY_MAX_ENTRIES`).
pub const CHAT_HISTORY_DEFAULT_LIMIT: usize = 200;
pub const CHAT_HISTORY_MAX_LIMIT: usize = 1_000;
/// Bytes of messages in one `chat.history` answer (the reference's 6 MiB).
pub const CHAT_HISTORY_MAX_BYTES: usize = 6 * 1024 * 1024;
/// A single message above this is replaced by a placeholder.
pub const CHAT_HISTORY_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The reference's `ChatHistoryParamsSchema` (`chat.startup` accepts the same object, or a
/// `{shortId, agentId}` form, see [`parse_chat_startup_params`]).
fn chat_history_schema() -> Value {
    let ne = json!({"type": "string", "minLength": 1});
    json!({
        "type": "object",
        "required": ["sessionKey"],
        "properties": {
            "sessionKey": ne,
            "agentId": ne,
            "cursor": {"type": "string"},
            "limit": {"type": "integer", "minimum": 1, "maximum": CHAT_HISTORY_MAX_LIMIT},
            "maxBytes": {"type": "integer", "minimum": 1024},
            "offset": {"type": "integer", "minimum": 0},
            "pendingBefore": {"type": "integer", "minimum": 1},
            "inputRunIds": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 256}, "minItems": 1, "maxItems": 50, "uniqueItems": true},
            "messageId": ne,
            "sessionId": ne,
            "maxChars": {"type": "integer", "minimum": 1, "maximum": 500_000},
        },
        "additionalProperties": false,
    })
}

/// The reference's `ChatStartupParamsSchema`: the `chat.history` object, or `{shortId, agentId}`.
fn chat_startup_schema() -> Value {
    let ne = json!({"type": "string", "minLength": 1});
    json!({"anyOf": [chat_history_schema(), {
        "type": "object",
        "required": ["shortId", "agentId"],
        "properties": {
            "shortId": ne, "slugHint": ne, "agentId": ne,
            "limit": {"type": "integer", "minimum": 1, "maximum": CHAT_HISTORY_MAX_LIMIT},
            "maxBytes": {"type": "integer", "minimum": 1024},
        },
        "additionalProperties": false,
    }]})
}

/// What `chat.history` asks the store for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The canonical key to read ([`canonical_session_key`]).
    pub session_key: String,
    /// The key as the client sent it (echoed back as `sessionKey`).
    pub requested_key: String,
    pub agent_id: String,
    pub limit: usize,
    /// Skip this many of the newest messages (paging backwards).
    pub offset: usize,
    /// Cut each text part to this many characters.
    pub max_chars: Option<usize>,
    /// At most this many bytes of messages (`maxBytes`; never above [`CHAT_HISTORY_MAX_BYTES`]).
    pub max_bytes: Option<usize>,
}

/// Validate `chat.history` params (errors: `invalid chat.history params: …`) and resolve the key:
/// agent-scoped keys are used as is (their agent must be configured and match `agentId` when
/// given); a plain key (`main`) is scoped to `agentId`, else to the default agent; in a fleet
/// without a default agent a plain key needs `agentId`.
pub fn parse_chat_history_params(params: Option<&Value>, agents: &Agents) -> Result<HistoryQuery, ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&chat_history_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid chat.history params: {d}")))?;
    history_query(p, agents)
}

/// Validate `chat.startup` params (errors: `invalid chat.startup params: …`). The `{shortId}`
/// form names a session by the reference's short share id; we have none, so it finds nothing.
pub fn parse_chat_startup_params(params: Option<&Value>, agents: &Agents) -> Result<HistoryQuery, ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&chat_startup_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid chat.startup params: {d}")))?;
    if let Some(short) = p.get("shortId").and_then(Value::as_str) {
        return Err(ErrorShape::invalid_request(format!("unknown session: {short}")));
    }
    history_query(p, agents)
}

fn history_query(p: &Value, agents: &Agents) -> Result<HistoryQuery, ErrorShape> {
    let requested_key = p["sessionKey"].as_str().unwrap_or_default().trim().to_string();
    let (session_key, agent_id) = resolve_session_key(&requested_key, p.get("agentId").and_then(Value::as_str), agents)?;
    Ok(HistoryQuery {
        session_key,
        requested_key,
        agent_id,
        limit: p.get("limit").and_then(Value::as_u64).map_or(CHAT_HISTORY_DEFAULT_LIMIT, |n| n as usize),
        offset: p.get("offset").and_then(Value::as_u64).map(|n| n.min(usize::MAX as u64) as usize).unwrap_or(0),
        max_chars: p.get("maxChars").and_then(Value::as_u64).map(|n| n as usize),
        max_bytes: p.get("maxBytes").and_then(Value::as_u64).map(|n| n.min(CHAT_HISTORY_MAX_BYTES as u64) as usize),
    })
}

/// The canonical key and agent of a session named by a WS method (`sessionKey`/`key` plus an
/// optional `agentId`): an agent-scoped key is used as is (its agent must be configured and
/// match `agentId` when given); a plain key (`main`) is scoped to `agentId`, else to the default
/// agent; in a fleet without a default agent a plain key needs `agentId`.
pub fn resolve_session_key(requested_key: &str, agent_param: Option<&str>, agents: &Agents) -> Result<(String, String), ErrorShape> {
    let requested_key = requested_key.trim();
    let param_agent = agent_param.map(|a| a.trim().to_ascii_lowercase());
    let unknown = |id: &str| {
        ErrorShape::invalid_request(format!("unknown agent id: {id}"))
            .with_details(json!({"code": details_code::UNKNOWN_AGENT_ID, "agentId": id}))
    };
    if let Some(a) = &param_agent {
        if !agents.ids.contains(a) {
            return Err(unknown(a));
        }
    }
    let agent_id = match (agent_id_of_key(requested_key), param_agent) {
        (Some(key_agent), Some(a)) if key_agent != a => return Err(ErrorShape::invalid_request(agent_mismatch(&a, &key_agent))),
        (Some(key_agent), _) => key_agent,
        (None, Some(a)) => a,
        (None, None) => agents.default.clone().ok_or_else(|| {
            ErrorShape::invalid_request("Multiple agents are configured: use an agent-scoped sessionKey (agent:<agentId>:…) or agentId.")
        })?,
    };
    if !agents.ids.contains(&agent_id) {
        return Err(unknown(&agent_id));
    }
    Ok((canonical_session_key(requested_key, &agent_id), agent_id))
}

/// Messages read for a [`HistoryQuery`]: ascending `seq`, the newest `limit` after skipping
/// `offset`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPage {
    pub entries: Vec<TranscriptEntry>,
    /// Messages in the session.
    pub total: u64,
}

fn cut_chars(s: &str, max: Option<usize>) -> String {
    match max {
        Some(n) if s.chars().count() > n => format!("{}…", s.chars().take(n).collect::<String>()),
        _ => s.to_string(),
    }
}

/// Content as display parts (`[{type:"text",text}]`, other parts kept), text cut to `max_chars`.
fn display_parts(content: &Value, max_chars: Option<usize>) -> Vec<Value> {
    match content {
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![json!({"type": "text", "text": cut_chars(s, max_chars)})],
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => json!({"type": "text", "text": cut_chars(s, max_chars)}),
                _ => match p.get("text").and_then(Value::as_str) {
                    Some(t)
                        if p.get("type")
                            .and_then(Value::as_str)
                            .is_none_or(|ty| ty == "text" || ty == "input_text" || ty == "output_text") =>
                    {
                        json!({"type": "text", "text": cut_chars(t, max_chars)})
                    }
                    _ => p.clone(),
                },
            })
            .collect(),
        other => vec![json!({"type": "text", "text": cut_chars(&other.to_string(), max_chars)})],
    }
}

/// One transcript entry in the reference's display shape (the messages of `chat.history` and
/// `GET /sessions/<key>/history`): `{role, content:[parts], timestamp, __openclaw:{seq, runId?}}`;
/// assistant tool calls become `{type:"toolCall", id, name, arguments}` parts, tool messages
/// `role:"toolResult"` with `toolCallId`/`toolName`. `tool_names` maps call ids to tool names.
pub fn display_message(e: &TranscriptEntry, tool_names: &[(String, String)], max_chars: Option<usize>) -> Value {
    let mut meta = Map::new();
    if let Some(r) = e.run_id.as_ref().filter(|_| e.role != Role::User) {
        meta.insert("runId".into(), json!(r));
    }
    if let Some(id) = &e.id {
        meta.insert("id".into(), json!(id));
    }
    // A user turn of a run carries the run's idempotency key (`<runId>:user`), as the reference's.
    let user_key = e.run_id.as_ref().filter(|_| e.role == Role::User).map(|r| format!("{r}:user"));
    if let Some(k) = &user_key {
        meta.insert("idempotencyKey".into(), json!(k));
    }
    meta.insert("seq".into(), json!(e.seq));
    let meta = Value::Object(meta);
    let mut content = display_parts(&e.content, max_chars);
    let msg = match e.role {
        // The reference keeps a typed user message as a plain string.
        Role::User if e.content.is_string() => {
            let mut m =
                json!({"role": "user", "content": cut_chars(e.content.as_str().unwrap_or_default(), max_chars), "timestamp": e.ts_ms});
            if let Some(k) = &user_key {
                m["idempotencyKey"] = json!(k);
            }
            m
        }
        Role::Assistant => {
            for call in e.tool_calls.as_ref().and_then(Value::as_array).into_iter().flatten() {
                let raw_args = call.pointer("/function/arguments").cloned().unwrap_or(Value::Null);
                let args = match &raw_args {
                    Value::String(s) => serde_json::from_str::<Value>(s).unwrap_or(raw_args.clone()),
                    _ => raw_args,
                };
                content.push(json!({
                    "type": "toolCall",
                    "id": call.get("id").cloned().unwrap_or(Value::Null),
                    "name": call.pointer("/function/name").cloned().unwrap_or(Value::Null),
                    "arguments": args,
                }));
            }
            let stop = if e.tool_calls.is_some() { "toolUse" } else { "stop" };
            let mut m = json!({"role": "assistant", "content": content});
            // Stored reply metadata (`api`, `provider`, `model`, `usage`, `stopReason`) sits beside
            // the content, as in the reference's transcript.
            for (k, v) in e.meta.as_ref().and_then(Value::as_object).into_iter().flatten() {
                m[k.as_str()] = v.clone();
            }
            if m.get("stopReason").is_none() {
                m["stopReason"] = json!(stop);
            }
            m["timestamp"] = json!(e.ts_ms);
            m
        }
        Role::Tool => {
            let id = e.tool_call_id.clone().unwrap_or_default();
            let name = tool_names.iter().find(|(cid, _)| *cid == id).map(|(_, n)| n.clone());
            let mut m = json!({"role": "toolResult", "toolCallId": id, "content": content, "isError": false, "timestamp": e.ts_ms});
            if let Some(n) = name {
                m["toolName"] = json!(n);
            }
            m
        }
        role => {
            let mut m = json!({"role": role.as_str(), "content": content, "timestamp": e.ts_ms});
            if let Some(k) = &user_key {
                m["idempotencyKey"] = json!(k);
            }
            m
        }
    };
    let mut msg = msg;
    msg["__openclaw"] = meta;
    if json_len(&msg) > CHAT_HISTORY_MAX_MESSAGE_BYTES {
        return json!({
            "role": msg["role"].clone(),
            "content": [{"type": "text", "text": "[message omitted: too large for history]"}],
            "timestamp": e.ts_ms,
            "__openclaw": {"seq": e.seq, "oversized": true},
        });
    }
    msg
}

/// Display messages for `entries` (ascending), tool names resolved from earlier tool calls.
pub fn display_messages(entries: &[TranscriptEntry], max_chars: Option<usize>) -> Vec<Value> {
    let mut names: Vec<(String, String)> = Vec::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        for call in e.tool_calls.as_ref().and_then(Value::as_array).into_iter().flatten() {
            if let (Some(id), Some(name)) = (call.get("id").and_then(Value::as_str), call.pointer("/function/name").and_then(Value::as_str))
            {
                names.push((id.to_string(), name.to_string()));
            }
        }
        out.push(display_message(e, &names, max_chars));
    }
    out
}

/// Keep the newest messages that fit in `max_bytes` of JSON; returns how many were dropped.
pub(super) fn cap_by_bytes(messages: &mut Vec<Value>, max_bytes: usize) -> usize {
    let mut total = 2usize;
    let mut keep_from = messages.len();
    for (i, m) in messages.iter().enumerate().rev() {
        let size = json_len(m) + 1;
        if total + size > max_bytes {
            break;
        }
        total += size;
        keep_from = i;
    }
    messages.drain(..keep_from);
    keep_from
}

/// The `chat.history` payload: `{sessionKey, sessionId?, messages, offset?, nextOffset?, hasMore,
/// totalMessages, defaults}`. An unknown session answers an empty history (like the reference).
/// Messages over [`CHAT_HISTORY_MAX_BYTES`] in total are dropped oldest first.
pub fn chat_history_payload(
    query: &HistoryQuery,
    session: Option<&SessionSummary>,
    page: &HistoryPage,
    defaults: &SessionDefaults,
) -> Value {
    let mut messages = display_messages(&page.entries, query.max_chars);
    let dropped = cap_by_bytes(&mut messages, query.max_bytes.unwrap_or(CHAT_HISTORY_MAX_BYTES));
    let served = query.offset as u64 + messages.len() as u64;
    let has_more = served < page.total;
    let mut p = Map::new();
    p.insert("sessionKey".into(), json!(query.requested_key));
    if let Some(s) = session {
        p.insert("sessionId".into(), json!(s.session_id));
    }
    p.insert("messages".into(), Value::Array(messages));
    // No queued inputs: a run starts at once (the reference's steer queue is always empty here).
    p.insert("pendingInputs".into(), json!({"items": [], "total": 0}));
    p.insert("inputReceipts".into(), json!([]));
    p.insert("inputConsumptions".into(), json!([]));
    if query.offset > 0 {
        p.insert("offset".into(), json!(query.offset));
    }
    if has_more {
        p.insert("nextOffset".into(), json!(served));
    }
    p.insert("hasMore".into(), json!(has_more));
    p.insert("totalMessages".into(), json!(page.total));
    if dropped > 0 {
        p.insert("truncated".into(), json!(true));
    }
    p.insert("defaults".into(), defaults.to_json());
    Value::Object(p)
}

/// `GET /sessions/<key>/history` body: `{sessionKey, items, messages, hasMore}` (`items` and
/// `messages` hold the same display messages; `E-session-history-auth`).
pub fn http_session_history_payload(key: &str, page: &HistoryPage, limit: usize) -> Value {
    let messages = display_messages(&page.entries, None);
    let has_more = (messages.len() as u64) < page.total && messages.len() >= limit;
    json!({"sessionKey": key, "items": messages.clone(), "messages": messages, "hasMore": has_more})
}
