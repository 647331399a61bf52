//! Transcripts: one stored message ([`TranscriptEntry`]), the new messages of a request, and a
//! transcript as upstream history bounded by a [`HistoryBudget`]; titles and previews.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

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

pub(super) fn json_len(v: &Value) -> usize {
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
