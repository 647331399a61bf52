//! Conversation sessions (spec http §5.2–§5.3, protocol `sessions.list` / `chat.history`), sans-IO.
//!
//! Three parts, all pure:
//!
//! * **Session keys.** Which session a request talks to: [`http_session_key`] for
//!   `/v1/chat/completions` and `/v1/responses` (the `user` field and the `x-openclaw-session-key`
//!   header), [`ws_agent_session_key`] for the WebSocket `agent` method, [`canonical_session_key`]
//!   for keys given to WS methods.
//! * **Transcripts.** [`TranscriptEntry`] is one stored message ([`new_request_entries`] picks the
//!   new ones out of a request); [`to_openai_messages`] turns a
//!   transcript into OpenAI chat messages to send upstream as history, bounded by a
//!   [`HistoryBudget`] without ever separating an assistant `tool_calls` message from its tool
//!   results.
//! * **Method payloads.** `sessions.list` and `chat.history` are answered in two pure steps around
//!   one store read: parse the params into a query ([`parse_sessions_list_params`],
//!   [`parse_chat_history_params`]), let the shell read the store, then build the payload
//!   ([`sessions_list_payload`], [`chat_history_payload`]). The same rows feed the `/tools/invoke`
//!   `sessions_list` tool (through [`SessionStore`] and the `SessionRow` conversion), `GET /sessions/<key>/history`
//!   ([`http_session_history_payload`]) and the `sessions.changed` event
//!   ([`sessions_changed_payload`]).
//!
//! # Plain `x-openclaw-session-key` values
//!
//! The reference uses a key without the `agent:<id>:` prefix as given and later scopes it to the
//! *default* agent; in a multi-agent fleet with explicit ownership there is none, and the request
//! fails with **500 internal error** (`chat-explicit-session-key`). We scope a plain key to the
//! agent the request selected instead: `myapp-thread-1` sent to agent `research` is the session
//! `agent:research:myapp-thread-1`, the same session the agent-scoped header
//! `agent:research:myapp-thread-1` names. In a single-agent gateway this is exactly what the
//! reference does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::openai::{Agents, ApiError};
use crate::wire::{ErrorShape, details_code};

// ---------------------------------------------------------------------------------------------
// Session keys
// ---------------------------------------------------------------------------------------------

/// The 400 message for a reserved `x-openclaw-session-key` (spec http §5.2).
pub const RESERVED_SESSION_KEY: &str = "`x-openclaw-session-key` cannot use reserved internal session namespaces.";
/// The 400 message for an `x-openclaw-session-key` we cannot use (too long, control characters,
/// a malformed `agent:` form). The reference has no such check.
pub const INVALID_SESSION_KEY: &str = "Invalid `x-openclaw-session-key`.";
/// Longest session key accepted from a client (the reference's `chat.send` bound).
pub const SESSION_KEY_MAX_LEN: usize = 512;

/// Namespaces reserved for internal sessions, matched case-insensitively at the start of a key
/// or of the part after `agent:<id>:`. `harness:` keys belong to agent harnesses; we never create
/// them, so a client can never address one.
const RESERVED_NAMESPACES: [&str; 4] = ["subagent:", "cron:", "acp:", "harness:"];

/// Which OpenAI-compatible endpoint a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSurface {
    /// `/v1/chat/completions`: `openai:<uuid>` / `openai-user:<user>`.
    ChatCompletions,
    /// `/v1/responses`: `openresponses:<uuid>` / `openresponses-user:<user>`.
    Responses,
}

impl HttpSurface {
    pub fn prefix(self) -> &'static str {
        match self {
            HttpSurface::ChatCompletions => "openai",
            HttpSurface::Responses => "openresponses",
        }
    }
}

/// `agent:<agentId>:<rest>` split into its parts (agent id as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentKey<'a> {
    pub agent_id: &'a str,
    pub rest: &'a str,
}

/// Agent ids: `[a-z0-9][a-z0-9_-]{0,63}`, case-insensitive (spec http §5.1).
pub fn valid_agent_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// Split an agent-scoped key `agent:<id>:<rest>` (the `agent` literal case-insensitive). `None`
/// when the key is not agent-scoped or the id is not a valid agent id or `rest` is empty.
pub fn parse_agent_session_key(key: &str) -> Option<AgentKey<'_>> {
    let key = key.trim();
    let head = key.get(..6)?;
    if !head.eq_ignore_ascii_case("agent:") {
        return None;
    }
    let (agent_id, rest) = key[6..].split_once(':')?;
    (valid_agent_id(agent_id) && !rest.is_empty()).then_some(AgentKey { agent_id, rest })
}

/// The agent a key belongs to (lowercase), when it is agent-scoped.
pub fn agent_id_of_key(key: &str) -> Option<String> {
    parse_agent_session_key(key).map(|k| k.agent_id.to_ascii_lowercase())
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// Is this key in a reserved internal namespace (`subagent:`, `cron:`, `acp:`, `harness:`), plain
/// or agent-scoped (`agent:<id>:subagent:…`)?
pub fn is_reserved_session_key(key: &str) -> bool {
    let key = key.trim();
    let rest = parse_agent_session_key(key).map(|k| k.rest).unwrap_or(key);
    RESERVED_NAMESPACES.iter().any(|ns| starts_with_ci(key, ns) || starts_with_ci(rest, ns))
}

/// A key as stored: agent-scoped keys get a lowercase `agent:<id>:` prefix; anything else is
/// scoped to `agent_id` (`main` → `agent:main:main`).
pub fn canonical_session_key(key: &str, agent_id: &str) -> String {
    let key = key.trim();
    match parse_agent_session_key(key) {
        Some(k) => format!("agent:{}:{}", k.agent_id.to_ascii_lowercase(), k.rest),
        None => format!("agent:{}:{}", agent_id.to_ascii_lowercase(), key),
    }
}

/// An agent's main session (`agent:<agentId>:main`, the reference's `mainSessionKey` with the
/// default `session.mainKey`): where a WebSocket `agent` run naming its agent goes.
pub fn agent_main_session_key(agent_id: &str) -> String {
    format!("agent:{}:main", agent_id.to_ascii_lowercase())
}

/// The default session of a WebSocket `agent` run: `agent:<agentId>:explicit:<idempotencyKey>`
/// (spec protocol §10.2; [`crate::agent::parse_agent_params`] uses the same rule).
pub fn ws_agent_session_key(agent_id: &str, idempotency_key: &str) -> String {
    format!("agent:{}:explicit:{}", agent_id.to_ascii_lowercase(), idempotency_key)
}

fn agent_mismatch(selected: &str, key_agent: &str) -> String {
    format!("agent \"{selected}\" does not match session key agent \"{key_agent}\"")
}

/// The session of an OpenAI-compatible request (spec http §5.2–§5.3), for the agent the request
/// selected (`agent_id`, already resolved by [`crate::openai::resolve_agent`]).
///
/// * `x-openclaw-session-key` (`header`, trimmed; empty counts as absent) wins:
///   reserved namespaces → 400 [`RESERVED_SESSION_KEY`]; an agent-scoped key is used as is (agent
///   part lowercased) and its agent must be `agent_id`, else 400
///   `agent "<selected>" does not match session key agent "<key agent>"`; a plain key is scoped to
///   `agent_id` (see the module docs: the reference 500s here in a multi-agent fleet). Keys longer
///   than [`SESSION_KEY_MAX_LEN`], with control characters, or a malformed `agent:` form → 400
///   [`INVALID_SESSION_KEY`].
/// * else `user` (trimmed, non-empty): `agent:<agentId>:<prefix>-user:<user>`, a stable session;
/// * else `agent:<agentId>:<prefix>:<uuid>`, a new session per request (`uuid` from the caller).
pub fn http_session_key(
    surface: HttpSurface,
    agent_id: &str,
    user: Option<&str>,
    header: Option<&str>,
    uuid: &str,
) -> Result<String, ApiError> {
    let agent_id = agent_id.to_ascii_lowercase();
    if let Some(raw) = header.map(str::trim).filter(|h| !h.is_empty()) {
        if is_reserved_session_key(raw) {
            return Err(ApiError::invalid(RESERVED_SESSION_KEY));
        }
        if raw.len() > SESSION_KEY_MAX_LEN || raw.chars().any(char::is_control) {
            return Err(ApiError::invalid(INVALID_SESSION_KEY));
        }
        if let Some(k) = parse_agent_session_key(raw) {
            let key_agent = k.agent_id.to_ascii_lowercase();
            if key_agent != agent_id {
                return Err(ApiError::invalid(agent_mismatch(&agent_id, &key_agent)));
            }
            return Ok(format!("agent:{key_agent}:{}", k.rest));
        }
        if starts_with_ci(raw, "agent:") {
            return Err(ApiError::invalid(INVALID_SESSION_KEY));
        }
        return Ok(format!("agent:{agent_id}:{raw}"));
    }
    let prefix = surface.prefix();
    match user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(user) => Ok(format!("agent:{agent_id}:{prefix}-user:{user}")),
        None => Ok(format!("agent:{agent_id}:{prefix}:{uuid}")),
    }
}

/// The `kind` of a `sessions.list` row: `global`, `unknown`, `group` (channel group keys) or
/// `direct`.
pub fn row_kind(key: &str) -> &'static str {
    match key {
        "global" => "global",
        "unknown" => "unknown",
        _ if is_group_key(key) => "group",
        _ => "direct",
    }
}

fn is_group_key(key: &str) -> bool {
    let rest = parse_agent_session_key(key).map(|k| k.rest).unwrap_or(key);
    let parts: Vec<&str> = rest.split(':').collect();
    parts.len() >= 3 && matches!(parts[1], "group" | "channel")
}

// ---------------------------------------------------------------------------------------------
// Transcripts
// ---------------------------------------------------------------------------------------------

/// Who wrote a transcript message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    Tool,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::System => "system",
        }
    }
    /// `user`, `assistant`, `tool`, `system`; `developer` is a system message.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            "system" | "developer" => Some(Role::System),
            _ => None,
        }
    }
}

/// One stored message of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// 1-based position in the session, assigned by the store (ignored on append).
    pub seq: u64,
    pub role: Role,
    /// A string, or an array of OpenAI content parts.
    pub content: Value,
    /// OpenAI `tool_calls` (`[{id,type:"function",function:{name,arguments}}]`) of an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Value>,
    /// The call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    pub ts_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The message's stable id (`__openclaw.id`), filled in by the store on read
    /// ([`message_id`] of the session id and `seq`); ignored on append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display metadata of an assistant reply, as the reference shows it beside the content:
    /// `{api, provider, model, usage, stopReason}` (stored with the message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// The stable id of message `seq` of the session `session_id` (a UUID-shaped digest): the same
/// id in the `session.message` event that announced the message and in every later
/// `chat.history`/`chat.startup` (the Control UI reconciles by it).
pub fn message_id(session_id: &str, seq: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"clawgate:message:");
    h.update(session_id.as_bytes());
    h.update(b":");
    h.update(seq.to_string().as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    crate::ids::uuid_v4(b)
}

impl TranscriptEntry {
    fn new(role: Role, content: Value, ts_ms: u64) -> Self {
        TranscriptEntry { seq: 0, role, content, tool_calls: None, tool_call_id: None, ts_ms, run_id: None, id: None, meta: None }
    }
    pub fn user(content: impl Into<Value>, ts_ms: u64) -> Self {
        Self::new(Role::User, content.into(), ts_ms)
    }
    pub fn system(content: impl Into<Value>, ts_ms: u64) -> Self {
        Self::new(Role::System, content.into(), ts_ms)
    }
    /// An assistant reply; `tool_calls` is kept only when it is a non-empty array.
    pub fn assistant(content: impl Into<Value>, tool_calls: Option<Value>, ts_ms: u64) -> Self {
        let mut e = Self::new(Role::Assistant, content.into(), ts_ms);
        e.tool_calls = tool_calls.filter(|t| t.as_array().is_some_and(|a| !a.is_empty()));
        e
    }
    /// The result of tool call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<Value>, ts_ms: u64) -> Self {
        let mut e = Self::new(Role::Tool, content.into(), ts_ms);
        e.tool_call_id = Some(tool_call_id.into());
        e
    }
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// An OpenAI chat message from a request (`user`, `assistant`, `tool`, `system`, `developer`);
    /// `None` for other roles or a non-object.
    pub fn from_openai_message(msg: &Value, ts_ms: u64) -> Option<TranscriptEntry> {
        let role = Role::parse(msg.get("role")?.as_str()?)?;
        let content = match msg.get("content") {
            None | Some(Value::Null) => Value::String(String::new()),
            Some(c) => c.clone(),
        };
        Some(match role {
            Role::Assistant => Self::assistant(content, msg.get("tool_calls").cloned(), ts_ms),
            Role::Tool => Self::tool(msg.get("tool_call_id").and_then(Value::as_str).unwrap_or_default(), content, ts_ms),
            _ => Self::new(role, content, ts_ms),
        })
    }

    /// The ids of this assistant message's tool calls.
    pub fn tool_call_ids(&self) -> Vec<&str> {
        self.tool_calls
            .as_ref()
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|c| c.get("id").and_then(Value::as_str)).collect())
            .unwrap_or_default()
    }

    /// The text of the content: a string, or the `text` parts joined with newlines.
    pub fn text(&self) -> String {
        content_text(&self.content)
    }
}

/// The part of an OpenAI request's `messages` that is new in this turn, as entries: the `user`
/// and `tool` messages after the request's last `assistant` message (clients resend the whole
/// conversation; what came before is already stored). `system`/`developer` messages are
/// per-request instructions and are not stored.
pub fn new_request_entries(messages: &[Value], ts_ms: u64) -> Vec<TranscriptEntry> {
    let start = messages.iter().rposition(|m| m.get("role").and_then(Value::as_str) == Some("assistant")).map_or(0, |i| i + 1);
    messages[start..]
        .iter()
        .filter_map(|m| TranscriptEntry::from_openai_message(m, ts_ms))
        .filter(|e| matches!(e.role, Role::User | Role::Tool))
        .collect()
}

/// The text of an OpenAI message content: a string, or its text parts joined with newlines.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The OpenAI chat message of one entry.
pub fn entry_to_openai(e: &TranscriptEntry) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), json!(e.role.as_str()));
    match e.role {
        Role::Assistant if e.tool_calls.is_some() => {
            let empty = e.content.is_null() || e.content.as_str() == Some("") || e.content.as_array().is_some_and(|a| a.is_empty());
            m.insert("content".into(), if empty { Value::Null } else { e.content.clone() });
            m.insert("tool_calls".into(), e.tool_calls.clone().unwrap_or(Value::Null));
        }
        Role::Tool => {
            m.insert("tool_call_id".into(), json!(e.tool_call_id.as_deref().unwrap_or_default()));
            m.insert("content".into(), e.content.clone());
        }
        _ => {
            m.insert("content".into(), if e.content.is_null() { json!("") } else { e.content.clone() });
        }
    }
    Value::Object(m)
}

/// How much stored history to send upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryBudget {
    /// At most this many messages.
    pub max_entries: usize,
    /// At most this many bytes of serialized messages (a rough token bound: ~4 bytes a token).
    pub max_bytes: usize,
}

impl Default for HistoryBudget {
    fn default() -> Self {
        HistoryBudget { max_entries: 200, max_bytes: 256 * 1024 }
    }
}

/// The most recent part of a transcript (ascending `seq`) as OpenAI chat messages, within
/// `budget`.
///
/// An assistant message with `tool_calls` and the tool messages answering it form one block that
/// is kept or dropped whole, so the upstream never sees a tool result without its call nor a call
/// without its results. Repairs on the way: tool messages answering no earlier call are dropped;
/// a call left unanswered in the middle of the transcript (a run that died between the call and
/// its result) is removed from its assistant message (the message itself goes when nothing else
/// is left). Unanswered calls in the *last* block stay: their results are the client's `tool`
/// messages of the request being built, which the caller appends after this history.
///
/// Blocks are taken newest first while they fit; the first that does not fit ends the history
/// (no gaps). The result may be empty.
pub fn to_openai_messages(entries: &[TranscriptEntry], budget: &HistoryBudget) -> Vec<Value> {
    let blocks = tool_blocks(entries);
    let mut kept: Vec<Vec<Value>> = Vec::new();
    let (mut count, mut bytes) = (0usize, 0usize);
    for block in blocks.into_iter().rev() {
        let size: usize = block.iter().map(json_len).sum();
        if count + block.len() > budget.max_entries || bytes + size > budget.max_bytes {
            break;
        }
        count += block.len();
        bytes += size;
        kept.push(block);
    }
    kept.into_iter().rev().flatten().collect()
}

fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map(|s| s.len()).unwrap_or(0)
}

/// Group a transcript into blocks of OpenAI messages (see [`to_openai_messages`]).
fn tool_blocks(entries: &[TranscriptEntry]) -> Vec<Vec<Value>> {
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let e = &entries[i];
        match e.role {
            Role::Assistant if e.tool_calls.is_some() => {
                let ids = e.tool_call_ids();
                let mut results = Vec::new();
                let mut answered: Vec<&str> = Vec::new();
                let mut j = i + 1;
                while j < entries.len() && entries[j].role == Role::Tool {
                    let id = entries[j].tool_call_id.as_deref().unwrap_or_default();
                    if ids.contains(&id) && !answered.contains(&id) {
                        answered.push(id);
                        results.push(entry_to_openai(&entries[j]));
                    }
                    j += 1;
                }
                let trailing = j == entries.len();
                if answered.len() == ids.len() || trailing {
                    let mut block = vec![entry_to_openai(e)];
                    block.extend(results);
                    blocks.push(block);
                } else {
                    let mut repaired = e.clone();
                    let calls: Vec<Value> = e
                        .tool_calls
                        .as_ref()
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter(|c| c.get("id").and_then(Value::as_str).is_some_and(|id| answered.contains(&id)))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    repaired.tool_calls = (!calls.is_empty()).then_some(Value::Array(calls));
                    if repaired.tool_calls.is_some() || !content_text(&repaired.content).is_empty() {
                        let mut block = vec![entry_to_openai(&repaired)];
                        block.extend(results);
                        blocks.push(block);
                    }
                }
                i = j;
            }
            // A tool result whose call is not right before it.
            Role::Tool => i += 1,
            _ => {
                blocks.push(vec![entry_to_openai(e)]);
                i += 1;
            }
        }
    }
    blocks
}

/// Longest derived session title, in characters (the reference's `DERIVED_TITLE_MAX_LEN`).
pub const TITLE_MAX_CHARS: usize = 60;
/// Longest last-message preview, in characters.
pub const PREVIEW_MAX_CHARS: usize = 120;

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cut `text` to `max` characters, at a word boundary when one is close, with `…`.
pub fn truncate_title(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    match cut.rfind(' ') {
        Some(sp) if cut[..sp].chars().count() * 10 > max * 6 => format!("{}…", &cut[..sp]),
        _ => format!("{cut}…"),
    }
}

/// A session title from the first user message of `entries` (whitespace collapsed, at most
/// [`TITLE_MAX_CHARS`]): what the reference shows as `displayName` (`"Say hello"`).
pub fn derive_title(entries: &[TranscriptEntry]) -> Option<String> {
    let first = entries.iter().find(|e| e.role == Role::User)?;
    let text = collapse_whitespace(&first.text());
    (!text.is_empty()).then(|| truncate_title(&text, TITLE_MAX_CHARS))
}

/// A preview of the last user or assistant message with text (at most [`PREVIEW_MAX_CHARS`]).
pub fn message_preview(entries: &[TranscriptEntry]) -> Option<String> {
    entries.iter().rev().filter(|e| matches!(e.role, Role::User | Role::Assistant)).find_map(|e| {
        let text = collapse_whitespace(&e.text());
        (!text.is_empty()).then(|| truncate_title(&text, PREVIEW_MAX_CHARS))
    })
}

// ---------------------------------------------------------------------------------------------
// Session metadata (what the store keeps per session)
// ---------------------------------------------------------------------------------------------

/// Token usage of one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// How the last run of a session ended (the reference's row `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Done,
    Failed,
    Killed,
    Timeout,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
            RunStatus::Timeout => "timeout",
        }
    }
    pub fn parse(s: &str) -> Option<RunStatus> {
        match s {
            "done" => Some(RunStatus::Done),
            "failed" => Some(RunStatus::Failed),
            "killed" => Some(RunStatus::Killed),
            "timeout" => Some(RunStatus::Timeout),
            _ => None,
        }
    }
}

/// What a turn tells the store about its session. Fields left `None` keep the stored value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// The session key ([`http_session_key`], [`ws_agent_session_key`], …).
    pub key: String,
    pub agent_id: String,
    /// A UUID naming this conversation; used when the session is created, kept after.
    pub session_id: String,
    /// The turn's wall-clock time (`updatedAt`; `createdAt` of a new session).
    pub now_ms: u64,
    pub label: Option<String>,
    /// Title; when unset on a new session, [`derive_title`] of the first turn.
    pub display_name: Option<String>,
    /// Ingress channel (`webchat`, `slack`, … from `x-openclaw-message-channel`).
    pub channel: Option<String>,
    /// Which surface created the session: `openai`, `openresponses`, `agent`, `chat.send`, ….
    pub origin: Option<String>,
    pub model: Option<String>,
    pub model_provider: Option<String>,
    pub usage: Option<Usage>,
    pub status: Option<RunStatus>,
    pub aborted: bool,
    /// The run this turn ended (`lastRunId`, `startedAt`, `endedAt`, `runtimeMs` of the row:
    /// the Control UI's "Done in …" recap).
    pub last_run: Option<LastRun>,
}

/// A session's last finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub run_id: String,
    pub started_ms: u64,
    pub ended_ms: u64,
}

impl SessionMeta {
    pub fn new(key: impl Into<String>, agent_id: impl Into<String>, session_id: impl Into<String>, now_ms: u64) -> Self {
        SessionMeta {
            key: key.into(),
            agent_id: agent_id.into(),
            session_id: session_id.into(),
            now_ms,
            label: None,
            display_name: None,
            channel: None,
            origin: None,
            model: None,
            model_provider: None,
            usage: None,
            status: None,
            aborted: false,
            last_run: None,
        }
    }
}

/// Entries as the store kept them (each with its `seq` and message id) and the session's row
/// after the write: what `session.message` announces.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub entries: Vec<TranscriptEntry>,
    pub session: Option<SessionSummary>,
}

impl Stored {
    /// `entries` written from `first_seq` on; their ids come from the row's session id (else
    /// `fallback_session_id`, the one the write asked for).
    pub fn stamped(entries: Vec<TranscriptEntry>, first_seq: u64, fallback_session_id: &str, session: Option<SessionSummary>) -> Stored {
        let sid = session.as_ref().map_or(fallback_session_id, |s| s.session_id.as_str()).to_string();
        let entries = entries
            .into_iter()
            .zip(first_seq..)
            .map(|(mut e, seq)| {
                e.seq = seq;
                e.id = Some(message_id(&sid, seq));
                e
            })
            .collect();
        Stored { entries, session }
    }
}

/// A stored session, as the store reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub key: String,
    pub agent_id: String,
    pub session_id: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub label: Option<String>,
    pub display_name: Option<String>,
    pub channel: Option<String>,
    pub origin: Option<String>,
    pub message_count: u64,
    pub last_model: Option<String>,
    pub last_model_provider: Option<String>,
    /// Summed over all turns.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `total_tokens` of the last turn that reported usage (the context size the reference shows
    /// as `totalTokens`).
    pub last_total_tokens: u64,
    pub status: Option<RunStatus>,
    pub aborted_last_run: bool,
    pub last_message_preview: Option<String>,
    pub last_run: Option<LastRun>,
}

/// Model defaults reported beside session rows (`defaults` of `sessions.list`/`chat.history`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDefaults {
    pub model_provider: Option<String>,
    pub model: Option<String>,
    pub context_tokens: Option<u64>,
}

impl SessionDefaults {
    pub fn to_json(&self) -> Value {
        json!({"modelProvider": self.model_provider, "model": self.model, "contextTokens": self.context_tokens})
    }
}

// ---------------------------------------------------------------------------------------------
// sessions.list
// ---------------------------------------------------------------------------------------------

/// Rows returned when `limit` is absent (the reference's `SESSIONS_LIST_DEFAULT_LIMIT`).
pub const SESSIONS_LIST_DEFAULT_LIMIT: usize = 100;
/// Hard ceiling on rows per call (ours: keeps one answer well under the frame limit).
pub const SESSIONS_LIST_MAX_LIMIT: usize = 1_000;
/// Longest session label (`SessionLabelString`, 2026.9.6).
pub const SESSION_LABEL_MAX_LEN: u64 = 512;

/// The reference's `SessionsListParamsSchema` (2026.9.6). Filters we keep no data for
/// (`projectId`, `pinned`, `ownerId`, …) are accepted; see [`parse_sessions_list_params`].
fn sessions_list_schema() -> Value {
    let b = json!({"type": "boolean"});
    let ne = json!({"type": "string", "minLength": 1});
    let consts = |v: &[&str]| json!({"anyOf": v.iter().map(|c| json!({"type": "string", "const": c})).collect::<Vec<_>>()});
    json!({
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "minimum": 1},
            "offset": {"type": "integer", "minimum": 0},
            "activeMinutes": {"type": "integer", "minimum": 1},
            "activeOnly": b, "requireLastInteraction": b,
            "sortBy": consts(&["updatedAt", "lastInteractionAt", "activity"]),
            "includeGlobal": b, "includeUnknown": b, "excludeSubagents": b, "excludeCron": b, "excludeSystem": b,
            "configuredAgentsOnly": b, "includeDerivedTitles": b, "includeLastMessage": b, "includeActivitySummary": b,
            "label": {"type": "string", "minLength": 1, "maxLength": SESSION_LABEL_MAX_LEN},
            "projectId": ne, "workspaceDir": ne, "group": {"type": "string"}, "pinned": b,
            "boardFace": consts(&["chat", "dashboard"]), "hasBoard": b,
            "creatorId": ne, "ownerId": ne, "ownerFirst": b, "involvingMe": b,
            "profileRelation": {
                "type": "object",
                "required": ["profileId", "relationship"],
                "properties": {"profileId": ne, "relationship": consts(&["owned", "created", "involving"])},
                "additionalProperties": false,
            },
            "involvingProfileId": ne, "includePeople": b,
            "spawnedBy": ne, "agentId": ne,
            "search": {"type": "string"},
            "archived": {"anyOf": [b, {"type": "string", "const": "all"}]},
        },
        "additionalProperties": false,
    })
}

/// What `sessions.list` asks the store for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionListQuery {
    pub limit: usize,
    pub offset: usize,
    /// Only this agent's sessions (lowercase).
    pub agent_id: Option<String>,
    /// Only sessions of these agents (`configuredAgentsOnly`).
    pub only_agents: Option<Vec<String>>,
    pub label: Option<String>,
    /// Case-insensitive (ASCII) substring of key, label, title, session id or model.
    pub search: Option<String>,
    /// Only sessions updated at or after this time (`activeMinutes`).
    pub updated_since_ms: Option<u64>,
    /// The query cannot match anything (`spawnedBy`, `archived:true`: we keep no such sessions).
    pub match_nothing: bool,
    pub include_derived_titles: bool,
    pub include_last_message: bool,
}

/// Validate `sessions.list` params (errors: `invalid sessions.list params: …`).
pub fn parse_sessions_list_params(params: Option<&Value>, agents: &Agents, now_ms: u64) -> Result<SessionListQuery, ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&sessions_list_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid sessions.list params: {d}")))?;
    let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
    let limit = p.get("limit").and_then(Value::as_u64).map(|n| n.min(SESSIONS_LIST_MAX_LIMIT as u64) as usize);
    let search = p.get("search").and_then(Value::as_str).map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
    let updated_since_ms = p.get("activeMinutes").and_then(Value::as_u64).map(|m| now_ms.saturating_sub(m.saturating_mul(60_000)));
    Ok(SessionListQuery {
        limit: limit.unwrap_or(SESSIONS_LIST_DEFAULT_LIMIT),
        offset: p.get("offset").and_then(Value::as_u64).map(|n| n.min(usize::MAX as u64) as usize).unwrap_or(0),
        agent_id: p.get("agentId").and_then(Value::as_str).map(|a| a.trim().to_ascii_lowercase()),
        only_agents: flag("configuredAgentsOnly").then(|| agents.ids.clone()),
        label: p.get("label").and_then(Value::as_str).map(|l| l.trim().to_string()).filter(|l| !l.is_empty()),
        search,
        updated_since_ms,
        // No spawned, archived, pinned, grouped, project or board sessions are kept here.
        match_nothing: ["spawnedBy", "projectId", "workspaceDir", "group", "creatorId", "ownerId", "involvingProfileId", "profileRelation"]
            .iter()
            .any(|k| p.get(*k).is_some())
            || flag("archived")
            || flag("pinned")
            || flag("hasBoard"),
        include_derived_titles: flag("includeDerivedTitles"),
        include_last_message: flag("includeLastMessage"),
    })
}

/// One page of sessions read for a [`SessionListQuery`] (newest `updated_ms` first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionPage {
    /// Sessions matching the query, before `limit`/`offset`.
    pub total_count: usize,
    pub sessions: Vec<SessionSummary>,
}

fn opt_str(v: Option<&String>) -> Value {
    v.map_or(Value::Null, |s| json!(s))
}

/// A `sessions.list` row (the reference's `GatewaySessionRow`, the fields we have). Optional
/// fields are omitted when unknown.
pub fn session_row(s: &SessionSummary, defaults: &SessionDefaults, derived_title: bool, last_message: bool) -> Value {
    let mut row = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            row.insert(k.to_string(), v);
        }
    };
    put("key", json!(s.key));
    put("kind", json!(row_kind(&s.key)));
    put("agentId", json!(s.agent_id));
    put("label", opt_str(s.label.as_ref()));
    put("displayName", opt_str(s.display_name.as_ref()));
    if derived_title {
        let title = s.display_name.clone().unwrap_or_else(|| s.session_id.chars().take(8).collect());
        put("derivedTitle", json!(title));
    }
    if last_message {
        put("lastMessagePreview", opt_str(s.last_message_preview.as_ref()));
    }
    put("channel", opt_str(s.channel.as_ref()));
    put("updatedAt", json!(s.updated_ms));
    put("createdAt", json!(s.created_ms));
    put("sessionId", json!(s.session_id));
    put("abortedLastRun", json!(s.aborted_last_run));
    put("inputTokens", json!(s.input_tokens));
    put("outputTokens", json!(s.output_tokens));
    if s.last_total_tokens > 0 {
        put("totalTokens", json!(s.last_total_tokens));
        put("totalTokensFresh", json!(true));
    }
    put("status", s.status.map_or(Value::Null, |st| json!(st.as_str())));
    if let Some(r) = &s.last_run {
        put("startedAt", json!(r.started_ms));
        put("endedAt", json!(r.ended_ms));
        put("runtimeMs", json!(r.ended_ms.saturating_sub(r.started_ms)));
        put("lastRunId", json!(r.run_id));
    }
    put("modelProvider", opt_str(s.last_model_provider.as_ref().or(defaults.model_provider.as_ref())));
    put("model", opt_str(s.last_model.as_ref().or(defaults.model.as_ref())));
    put("contextTokens", defaults.context_tokens.map_or(Value::Null, |c| json!(c)));
    put("messageCount", json!(s.message_count));
    Value::Object(row)
}

/// The `sessions.list` payload: `{ts, path, count, totalCount, limitApplied, offset, nextOffset,
/// hasMore, defaults, sessions}`. `path` is the store file (or `"(multiple)"`).
pub fn sessions_list_payload(query: &SessionListQuery, page: &SessionPage, defaults: &SessionDefaults, path: &str, now_ms: u64) -> Value {
    let sessions: Vec<Value> =
        page.sessions.iter().map(|s| session_row(s, defaults, query.include_derived_titles, query.include_last_message)).collect();
    let next = query.offset.saturating_add(sessions.len());
    let next_offset = if next < page.total_count { json!(next) } else { Value::Null };
    json!({
        "ts": now_ms,
        "path": path,
        "count": sessions.len(),
        "totalCount": page.total_count,
        "limitApplied": query.limit,
        "offset": query.offset,
        "nextOffset": next_offset,
        "hasMore": !next_offset.is_null(),
        "defaults": defaults.to_json(),
        "sessions": sessions,
    })
}

/// The session store as the core's decisions read it (`sessions.list`, `chat.history`, the
/// built-in tools, `GET /sessions/<key>/history`). The shell's database implements it; the
/// calls block: make them off the reactor. Errors are short descriptions for logs and
/// `UNAVAILABLE` answers.
pub trait SessionStore {
    /// Where the sessions live (`sessions.list` `path`).
    fn path(&self) -> String;
    /// Sessions matching `query`, newest first, with the total before paging.
    fn list(&self, query: &SessionListQuery) -> Result<SessionPage, String>;
    /// One session's row.
    fn session(&self, key: &str) -> Result<Option<SessionSummary>, String>;
    /// Up to `limit` messages after skipping the `offset` newest, oldest first.
    fn history(&self, key: &str, limit: usize, offset: usize) -> Result<HistoryPage, String>;
}

/// The model defaults shown beside session rows: the default model of the config.
pub fn session_defaults(api: &crate::config::api::ApiConfig) -> SessionDefaults {
    let (provider, model) = match api.default_model.as_deref().map(|m| api.split_model(m).map(|(p, m)| (p.id.clone(), m.to_string()))) {
        Some(Some((p, m))) => (Some(p), Some(m)),
        _ => (None, None),
    };
    SessionDefaults { model_provider: provider, model, context_tokens: None }
}

/// The `sessions.changed` event payload after a turn (or a delete, with `session: None`).
pub fn sessions_changed_payload(
    key: &str,
    agent_id: &str,
    reason: &str,
    session: Option<&SessionSummary>,
    defaults: &SessionDefaults,
    ts_ms: u64,
) -> Value {
    let mut p = json!({"sessionKey": key, "agentId": agent_id, "reason": reason, "ts": ts_ms});
    if let Some(s) = session {
        p["session"] = session_row(s, defaults, false, false);
    }
    p
}

// ---------------------------------------------------------------------------------------------
// chat.history
// ---------------------------------------------------------------------------------------------

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
fn cap_by_bytes(messages: &mut Vec<Value>, max_bytes: usize) -> usize {
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

// ---------------------------------------------------------------------------------------------
// Stored responses (`/v1/responses`)
// ---------------------------------------------------------------------------------------------

/// One finished HTTP exchange (`/v1/chat/completions`, `/v1/responses`) to record in one
/// transaction: the request's new messages, the reply (or why there is none), the session's meta.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub key: String,
    pub agent_id: String,
    /// New messages of the request (OpenAI chat messages; user/tool ones are stored).
    pub input: Vec<Value>,
    /// The reply, or why there is none.
    pub outcome: Result<crate::openai::turn::TurnResult, crate::openai::ApiError>,
    /// `openai`, `openresponses`, `agent`, `chat.send`.
    pub origin: &'static str,
    pub channel: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub run_id: Option<String>,
    pub response: Option<StoredResponse>,
    pub now_ms: u64,
    /// Used as the session id of a new session.
    pub session_id: String,
    /// The run was aborted: `outcome` holds what had streamed so far (kept when not empty).
    pub aborted: bool,
}

impl Exchange {
    /// What the store keeps of it: the session meta (status, usage, model) and the transcript
    /// entries (the request's new user/tool messages, then the reply; the partial text of an
    /// aborted run), each tagged with the run id when there is one.
    pub fn records(&self) -> (SessionMeta, Vec<TranscriptEntry>) {
        let x = self;
        let mut entries: Vec<TranscriptEntry> = new_request_entries(&x.input, x.now_ms);
        let mut meta = SessionMeta::new(x.key.clone(), x.agent_id.clone(), x.session_id.clone(), x.now_ms);
        meta.origin = Some(x.origin.to_string());
        meta.channel = x.channel.clone();
        meta.model = x.model.clone();
        meta.model_provider = x.provider.clone();
        match &x.outcome {
            Ok(r) if x.aborted => {
                if !r.text.is_empty() {
                    entries.push(TranscriptEntry::assistant(Value::String(r.text.clone()), None, x.now_ms));
                }
                meta.status = Some(RunStatus::Killed);
                meta.aborted = true;
            }
            Ok(r) => {
                let calls = r.tool_calls_json();
                let mut reply = TranscriptEntry::assistant(Value::String(r.text.clone()), calls, x.now_ms);
                if let Some(id) = &x.run_id {
                    reply = reply.with_run_id(id.clone());
                }
                entries.push(reply);
                meta.usage = Some(Usage {
                    input_tokens: r.prompt_tokens,
                    output_tokens: r.completion_tokens,
                    total_tokens: r.prompt_tokens + r.completion_tokens,
                });
                meta.status = Some(RunStatus::Done);
            }
            Err(_) => meta.status = Some(RunStatus::Failed),
        }
        if let Some(id) = &x.run_id {
            for e in entries.iter_mut().filter(|e| e.run_id.is_none()) {
                e.run_id = Some(id.clone());
            }
        }
        (meta, entries)
    }
}

/// A `/v1/responses` response kept for `previous_response_id` and `GET /v1/responses/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// `resp_<uuid>`.
    pub id: String,
    pub session_key: String,
    pub agent_id: String,
    /// Who created it (auth subject); `previous_response_id` and retrieval must match it.
    pub owner: Option<String>,
    /// The `x-openclaw-session-key` header the request carried, if any (must match on reuse).
    pub session_key_header: Option<String>,
    pub created_ms: u64,
    /// The response object as sent to the client.
    pub body: Value,
}

/// May a request (selected `agent_id`, auth `owner`, `x-openclaw-session-key` `header`) continue
/// from `prev` with `previous_response_id`? The reference reuses the earlier session only when
/// all three match (spec http §5.3).
pub fn may_continue(prev: &StoredResponse, agent_id: &str, owner: Option<&str>, header: Option<&str>) -> bool {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    prev.agent_id.eq_ignore_ascii_case(agent_id) && prev.owner.as_deref() == owner && prev.session_key_header.as_deref() == header
}

// ---- per-agent session defaults ----------------------------------------------------------

/// The model (`provider`, `model`, context window) an agent runs on, if one is configured.
pub fn agent_model(api: &crate::config::api::ApiConfig, agent_id: &str) -> SessionDefaults {
    let Some(model_ref) = api.model_for(agent_id, None) else { return SessionDefaults::default() };
    match api.split_model(&model_ref) {
        Some((p, m)) => SessionDefaults {
            model_provider: Some(p.id.clone()),
            model: Some(m.to_string()),
            context_tokens: p.context_windows.get(m).copied(),
        },
        None => SessionDefaults::default(),
    }
}

/// `hello-ok.snapshot.sessionDefaults`: without it the UI's model picker says "Models
/// unavailable" (control-ui §0 item 11).
pub fn hello_session_defaults(api: &crate::config::api::ApiConfig) -> Value {
    let agent = api.agents.default_agent();
    json!({
        "defaultAgentId": agent,
        "modelConfigured": agent_model(api, &agent).model.is_some(),
        "ownership": "sole",
        "selectionRequired": api.agents.default.is_none(),
        "mainKey": "main",
        "mainSessionKey": format!("agent:{agent}:main"),
        "scope": "per-sender",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(ids: &[&str], default: Option<&str>) -> Agents {
        Agents { ids: ids.iter().map(|s| s.to_string()).collect(), default: default.map(str::to_string) }
    }

    #[test]
    fn http_keys_follow_the_reference() {
        let chat = HttpSurface::ChatCompletions;
        assert_eq!(http_session_key(chat, "main", None, None, "u-1").unwrap(), "agent:main:openai:u-1");
        assert_eq!(http_session_key(chat, "research", Some("conv-42"), None, "u").unwrap(), "agent:research:openai-user:conv-42");
        assert_eq!(http_session_key(chat, "main", Some("  "), Some(" "), "u").unwrap(), "agent:main:openai:u");
        let resp = HttpSurface::Responses;
        assert_eq!(http_session_key(resp, "main", Some("sdk-user-1"), None, "u").unwrap(), "agent:main:openresponses-user:sdk-user-1");
        assert_eq!(http_session_key(resp, "main", None, None, "x").unwrap(), "agent:main:openresponses:x");
        // The header wins over `user`.
        let k = http_session_key(chat, "research", Some("conv"), Some("agent:research:myapp-thread-1"), "u").unwrap();
        assert_eq!(k, "agent:research:myapp-thread-1");
        assert_eq!(http_session_key(chat, "research", None, Some("Agent:RESEARCH:T"), "u").unwrap(), "agent:research:T");
    }

    #[test]
    fn reserved_keys_are_refused() {
        for k in ["subagent:x", "CRON:job", "acp:1", "agent:main:subagent:spoofed", "agent:main:Cron:x", "agent:main:harness:codex:x"] {
            let e = http_session_key(HttpSurface::Responses, "main", None, Some(k), "u").unwrap_err();
            assert_eq!((e.status, e.kind, e.message.as_str()), (400, "invalid_request_error", RESERVED_SESSION_KEY), "{k}");
        }
        assert!(!is_reserved_session_key("agent:main:openai:cron:x"));
        assert!(!is_reserved_session_key("myapp-cron:1"));
    }

    #[test]
    fn plain_and_foreign_header_keys() {
        // Plain keys are scoped to the selected agent (the reference 500s in a fleet).
        let k = http_session_key(HttpSurface::ChatCompletions, "research", None, Some("myapp-thread-1"), "u").unwrap();
        assert_eq!(k, "agent:research:myapp-thread-1");
        let e = http_session_key(HttpSurface::ChatCompletions, "main", None, Some("agent:other:main"), "u").unwrap_err();
        assert_eq!(e.message, "agent \"main\" does not match session key agent \"other\"");
        for bad in ["agent:main", "agent::x", "agent:bad id:x", "a\u{1}b"] {
            let e = http_session_key(HttpSurface::ChatCompletions, "main", None, Some(bad), "u").unwrap_err();
            assert_eq!(e.message, INVALID_SESSION_KEY, "{bad:?}");
        }
        let long = "x".repeat(SESSION_KEY_MAX_LEN + 1);
        assert!(http_session_key(HttpSurface::ChatCompletions, "main", None, Some(&long), "u").is_err());
    }

    #[test]
    fn key_helpers() {
        assert_eq!(ws_agent_session_key("Main", "k1"), "agent:main:explicit:k1");
        assert_eq!(canonical_session_key("main", "main"), "agent:main:main");
        assert_eq!(canonical_session_key("agent:Ops:x:y", "main"), "agent:ops:x:y");
        assert_eq!(agent_id_of_key("agent:research:openai:1").as_deref(), Some("research"));
        assert_eq!(agent_id_of_key("global"), None);
        assert_eq!(row_kind("agent:main:openai:1"), "direct");
        assert_eq!(row_kind("global"), "global");
    }

    fn call(id: &str, name: &str) -> Value {
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}})
    }

    fn seqd(mut v: Vec<TranscriptEntry>) -> Vec<TranscriptEntry> {
        for (i, e) in v.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        v
    }

    #[test]
    fn openai_messages_keep_tool_blocks_whole() {
        let t = seqd(vec![
            TranscriptEntry::user("hi", 1),
            TranscriptEntry::assistant("hello", None, 2),
            TranscriptEntry::user("weather?", 3),
            TranscriptEntry::assistant("", Some(json!([call("c1", "get_weather"), call("c2", "get_time")])), 4),
            TranscriptEntry::tool("c1", "sunny", 5),
            TranscriptEntry::tool("c2", "noon", 6),
            TranscriptEntry::assistant("Sunny at noon.", None, 7),
        ]);
        let all = to_openai_messages(&t, &HistoryBudget::default());
        assert_eq!(all.len(), 7);
        assert_eq!(
            all[3],
            json!({"role": "assistant", "content": null, "tool_calls": [call("c1", "get_weather"), call("c2", "get_time")]})
        );
        assert_eq!(all[4], json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"}));
        // 3 entries: the last message fits, the tool block (3 more) does not → stop there.
        let few = to_openai_messages(&t, &HistoryBudget { max_entries: 3, max_bytes: usize::MAX });
        assert_eq!(few.len(), 1);
        assert_eq!(few[0]["content"], "Sunny at noon.");
        let four = to_openai_messages(&t, &HistoryBudget { max_entries: 4, max_bytes: usize::MAX });
        assert_eq!(four.len(), 4);
        assert_eq!(four[0]["tool_calls"][0]["id"], "c1");
        // Bytes: nothing fits.
        assert!(to_openai_messages(&t, &HistoryBudget { max_entries: 100, max_bytes: 10 }).is_empty());
    }

    #[test]
    fn openai_messages_repair_broken_tool_sequences() {
        let t = seqd(vec![
            TranscriptEntry::tool("orphan", "x", 1),
            TranscriptEntry::user("q", 2),
            TranscriptEntry::assistant("let me check", Some(json!([call("a", "f"), call("b", "g")])), 3),
            TranscriptEntry::tool("a", "A", 4),
            TranscriptEntry::user("next", 5),
            TranscriptEntry::assistant("", Some(json!([call("z", "f")])), 6),
            TranscriptEntry::user("again", 7),
            TranscriptEntry::assistant("", Some(json!([call("p", "f")])), 8),
        ]);
        let m = to_openai_messages(&t, &HistoryBudget::default());
        let roles: Vec<&str> = m.iter().map(|x| x["role"].as_str().unwrap()).collect();
        // orphan dropped; unanswered `b` removed; empty unanswered `z` dropped; trailing `p` kept.
        assert_eq!(roles, ["user", "assistant", "tool", "user", "user", "assistant"]);
        assert_eq!(m[1]["tool_calls"].as_array().unwrap().len(), 1);
        assert_eq!(m[1]["content"], "let me check");
        assert_eq!(m[5]["tool_calls"][0]["id"], "p");
    }

    #[test]
    fn from_openai_roundtrip() {
        let msgs = [
            json!({"role": "user", "content": [{"type": "text", "text": "hi"}]}),
            json!({"role": "assistant", "content": null, "tool_calls": [call("c", "f")]}),
            json!({"role": "tool", "tool_call_id": "c", "content": "r"}),
            json!({"role": "developer", "content": "be brief"}),
        ];
        let entries: Vec<TranscriptEntry> = msgs.iter().filter_map(|m| TranscriptEntry::from_openai_message(m, 9)).collect();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[3].role, Role::System);
        assert_eq!(entries[0].text(), "hi");
        assert_eq!(entry_to_openai(&entries[1]), msgs[1]);
        assert_eq!(entry_to_openai(&entries[2]), msgs[2]);
        assert!(TranscriptEntry::from_openai_message(&json!({"role": "function"}), 0).is_none());
        assert!(TranscriptEntry::from_openai_message(&json!("x"), 0).is_none());
    }

    #[test]
    fn new_request_entries_are_the_tail_after_the_last_reply() {
        let msgs = [
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [call("c", "f")]}),
            json!({"role": "tool", "tool_call_id": "c", "content": "sunny"}),
        ];
        let e = new_request_entries(&msgs, 5);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].role, e[0].tool_call_id.as_deref()), (Role::Tool, Some("c")));
        let e = new_request_entries(&msgs[..2], 5);
        assert_eq!((e.len(), e[0].role), (1, Role::User));
    }

    #[test]
    fn titles() {
        let t = vec![TranscriptEntry::system("sys", 0), TranscriptEntry::user("  Say\n hello  ", 1)];
        assert_eq!(derive_title(&t).as_deref(), Some("Say hello"));
        let long = "word ".repeat(30);
        let title = truncate_title(long.trim(), TITLE_MAX_CHARS);
        assert!(title.chars().count() <= TITLE_MAX_CHARS && title.ends_with('…'), "{title}");
        assert_eq!(message_preview(&[TranscriptEntry::user("a", 0), TranscriptEntry::assistant("b", None, 1)]).as_deref(), Some("b"));
        assert_eq!(derive_title(&[]), None);
    }

    #[test]
    fn a_rows_last_run_is_what_the_ui_recap_reads() {
        let mut s = summary("agent:main:main");
        assert!(session_row(&s, &SessionDefaults::default(), false, false).get("lastRunId").is_none());
        s.last_run = Some(LastRun { run_id: "r1".into(), started_ms: 5, ended_ms: 734 });
        let row = session_row(&s, &SessionDefaults::default(), false, false);
        assert_eq!(
            (row["lastRunId"].clone(), row["startedAt"].clone(), row["endedAt"].clone(), row["runtimeMs"].clone(), row["status"].clone()),
            (json!("r1"), json!(5), json!(734), json!(729), json!("done"))
        );
    }

    fn summary(key: &str) -> SessionSummary {
        SessionSummary {
            key: key.into(),
            agent_id: "main".into(),
            session_id: "208f7b0b-2b59-4b2e-a5d5-27dfa66d1984".into(),
            created_ms: 1,
            updated_ms: 1795603702292,
            label: None,
            display_name: Some("Say hello".into()),
            channel: None,
            origin: Some("openai".into()),
            message_count: 2,
            last_model: Some("fake-model".into()),
            last_model_provider: Some("fake".into()),
            input_tokens: 11,
            output_tokens: 4,
            last_total_tokens: 11,
            status: Some(RunStatus::Done),
            aborted_last_run: false,
            last_message_preview: Some("Hello from fake upstream".into()),
            last_run: None,
        }
    }

    #[test]
    fn sessions_list_params_and_payload() {
        let a = agents(&["main", "research"], None);
        let e = parse_sessions_list_params(Some(&json!({"bogus": 1})), &a, 0).unwrap_err();
        assert_eq!(e.message, "invalid sessions.list params: at root: unexpected property 'bogus'");
        let e = parse_sessions_list_params(Some(&json!({"limit": 0})), &a, 0).unwrap_err();
        assert!(e.message.starts_with("invalid sessions.list params: at /limit: "), "{}", e.message);
        let q = parse_sessions_list_params(None, &a, 0).unwrap();
        assert_eq!((q.limit, q.offset), (SESSIONS_LIST_DEFAULT_LIMIT, 0));
        let q = parse_sessions_list_params(
            Some(&json!({"limit": 1, "activeMinutes": 2, "agentId": "Main", "search": " Hello ", "configuredAgentsOnly": true})),
            &a,
            600_000,
        )
        .unwrap();
        assert_eq!(q.updated_since_ms, Some(480_000));
        assert_eq!(q.agent_id.as_deref(), Some("main"));
        assert_eq!(q.search.as_deref(), Some("hello"));
        assert_eq!(q.only_agents, Some(vec!["main".to_string(), "research".to_string()]));
        let page = SessionPage { total_count: 3, sessions: vec![summary("agent:main:openai:aa")] };
        let defaults =
            SessionDefaults { model_provider: Some("fake".into()), model: Some("fake-model".into()), context_tokens: Some(128_000) };
        let p = sessions_list_payload(&q, &page, &defaults, "/s/sessions.sqlite", 7);
        assert_eq!(p["count"], 1);
        assert_eq!(p["totalCount"], 3);
        assert_eq!(p["nextOffset"], 1);
        assert_eq!(p["hasMore"], true);
        assert_eq!(p["defaults"]["contextTokens"], 128_000);
        let row = &p["sessions"][0];
        assert_eq!(row["kind"], "direct");
        assert_eq!(row["displayName"], "Say hello");
        assert_eq!(row["totalTokens"], 11);
        assert_eq!(row["status"], "done");
        assert!(row.get("label").is_none() && row.get("lastMessagePreview").is_none());
    }

    #[test]
    fn sessions_list_tool_rows_match_the_capture_shape() {
        let row = crate::tools::SessionRow::from(&summary("agent:main:openai:aa3e"));
        let v = crate::tools::session_row_json(&row);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let want = [
            "key",
            "sessionId",
            "agentId",
            "kind",
            "channel",
            "archived",
            "pinned",
            "updatedAt",
            "model",
            "totalTokens",
            "status",
            "abortedLastRun",
        ];
        assert_eq!(keys, want);
        assert_eq!((v["kind"].clone(), v["channel"].clone(), v["totalTokens"].clone()), (json!("other"), json!("unknown"), json!(11)));
    }

    #[test]
    fn chat_history_params() {
        let single = agents(&["main"], Some("main"));
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "main"})), &single).unwrap();
        assert_eq!((q.session_key.as_str(), q.limit, q.offset), ("agent:main:main", CHAT_HISTORY_DEFAULT_LIMIT, 0));
        let e = parse_chat_history_params(Some(&json!({})), &single).unwrap_err();
        assert_eq!(e.message, "invalid chat.history params: must have required property 'sessionKey'");
        let e = parse_chat_history_params(Some(&json!({"sessionKey": "main", "limit": 1001})), &single).unwrap_err();
        assert!(e.message.starts_with("invalid chat.history params: at /limit: "), "{}", e.message);
        let fleet = agents(&["main", "research"], None);
        assert!(parse_chat_history_params(Some(&json!({"sessionKey": "main"})), &fleet).is_err());
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "t1", "agentId": "research"})), &fleet).unwrap();
        assert_eq!(q.session_key, "agent:research:t1");
        let e = parse_chat_history_params(Some(&json!({"sessionKey": "agent:main:x", "agentId": "research"})), &fleet).unwrap_err();
        assert_eq!(e.message, "agent \"research\" does not match session key agent \"main\"");
        let e = parse_chat_history_params(Some(&json!({"sessionKey": "agent:ghost:x"})), &fleet).unwrap_err();
        assert_eq!(e.message, "unknown agent id: ghost");
    }

    #[test]
    fn chat_history_payload_shapes() {
        let single = agents(&["main"], Some("main"));
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "main", "limit": 3, "maxChars": 5})), &single).unwrap();
        let mut entries = seqd(vec![
            TranscriptEntry::user("weather in Paris?", 10),
            TranscriptEntry::assistant("", Some(json!([call("c1", "get_weather")])), 11).with_run_id("r1"),
            TranscriptEntry::tool("c1", "sunny", 12),
        ]);
        entries.iter_mut().for_each(|e| e.seq += 1);
        let page = HistoryPage { entries, total: 4 };
        let p = chat_history_payload(&q, Some(&summary("agent:main:main")), &page, &SessionDefaults::default());
        assert_eq!(p["sessionKey"], "main");
        assert_eq!(p["hasMore"], true);
        assert_eq!(p["nextOffset"], 3);
        assert_eq!(p["totalMessages"], 4);
        let m = p["messages"].as_array().unwrap();
        // A typed user message stays a string, as the reference shows it.
        assert_eq!(m[0]["content"], "weath…");
        assert_eq!(p["pendingInputs"], json!({"items": [], "total": 0}));
        assert_eq!(m[1]["content"][0], json!({"type": "toolCall", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}));
        assert_eq!(m[1]["__openclaw"], json!({"seq": 3, "runId": "r1"}));
        assert_eq!(m[1]["stopReason"], "toolUse");
        assert_eq!(m[2]["role"], "toolResult");
        assert_eq!(m[2]["toolName"], "get_weather");
        let h = http_session_history_payload("agent:main:main", &page, 200);
        assert_eq!(h["items"], h["messages"]);
        assert_eq!(h["hasMore"], false);
        // An unknown session: empty history, no sessionId.
        let p = chat_history_payload(&q, None, &HistoryPage::default(), &SessionDefaults::default());
        assert_eq!(p["messages"], json!([]));
        assert!(p.get("sessionId").is_none());
    }

    #[test]
    fn messages_in_the_reference_shape() {
        let mut user = TranscriptEntry::user("hello", 10).with_run_id("r1");
        user.seq = 1;
        user.id = Some(message_id("sid", 1));
        let m = display_message(&user, &[], None);
        assert_eq!(
            m,
            json!({"role": "user", "content": "hello", "timestamp": 10, "idempotencyKey": "r1:user",
                "__openclaw": {"id": message_id("sid", 1), "idempotencyKey": "r1:user", "seq": 1}})
        );
        let mut reply = TranscriptEntry::assistant("hi", None, 11).with_run_id("r1");
        reply.seq = 2;
        reply.id = Some(message_id("sid", 2));
        reply.meta = Some(
            json!({"api": "openai-completions", "provider": "fake", "model": "m", "usage": {"input": 1, "output": 2, "totalTokens": 3}, "stopReason": "stop"}),
        );
        let m = display_message(&reply, &[], None);
        assert_eq!(m["content"], json!([{"type": "text", "text": "hi"}]));
        assert_eq!((m["provider"].clone(), m["model"].clone(), m["usage"]["totalTokens"].clone()), (json!("fake"), json!("m"), json!(3)));
        assert_eq!(m["__openclaw"], json!({"runId": "r1", "id": message_id("sid", 2), "seq": 2}));
        assert_eq!(message_id("sid", 2).len(), 36);
        assert_ne!(message_id("sid", 2), message_id("sid", 1));
        assert_ne!(message_id("sid2", 1), message_id("sid", 1));
    }

    #[test]
    fn chat_startup_params() {
        let single = agents(&["main"], Some("main"));
        let q =
            parse_chat_startup_params(Some(&json!({"sessionKey": "agent:main:main", "limit": 80, "maxBytes": 262144})), &single).unwrap();
        assert_eq!((q.session_key.as_str(), q.limit, q.max_bytes), ("agent:main:main", 80, Some(262144)));
        let e = parse_chat_startup_params(Some(&json!({})), &single).unwrap_err();
        assert!(e.message.starts_with("invalid chat.startup params: "), "{}", e.message);
        let e = parse_chat_startup_params(Some(&json!({"sessionKey": "main", "maxBytes": 10})), &single).unwrap_err();
        assert!(e.message.starts_with("invalid chat.startup params: "), "{}", e.message);
        // The UI's reconcile call after a send.
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "agent:main:main", "inputRunIds": ["r"], "limit": 1000})), &single);
        assert!(q.is_ok(), "{q:?}");
    }

    #[test]
    fn oversized_history_is_capped() {
        let big = "x".repeat(CHAT_HISTORY_MAX_MESSAGE_BYTES + 10);
        let m = display_message(&TranscriptEntry::user(big, 1), &[], None);
        assert_eq!(m["__openclaw"]["oversized"], true);
        let mut msgs: Vec<Value> = (0..10).map(|i| json!({"i": i, "pad": "y".repeat(100)})).collect();
        let dropped = cap_by_bytes(&mut msgs, 500);
        assert_eq!(msgs.last().unwrap()["i"], 9);
        assert_eq!(dropped + msgs.len(), 10);
        assert!(serde_json::to_string(&msgs).unwrap().len() <= 500);
    }

    #[test]
    fn response_continuation_rule() {
        let r = StoredResponse {
            id: "resp_1".into(),
            session_key: "agent:main:openresponses-user:u".into(),
            agent_id: "main".into(),
            owner: Some("token".into()),
            session_key_header: None,
            created_ms: 0,
            body: json!({}),
        };
        assert!(may_continue(&r, "main", Some("token"), Some(" ")));
        assert!(!may_continue(&r, "research", Some("token"), None));
        assert!(!may_continue(&r, "main", None, None));
        assert!(!may_continue(&r, "main", Some("token"), Some("agent:main:x")));
    }
}
