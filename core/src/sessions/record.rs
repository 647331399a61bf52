//! What the store keeps per session: its meta, usage and run status, and the rows it reads back.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::*;

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
    /// What operators set on the session (`sessions.create|patch|reset`: model override,
    /// thinking level, lifecycle revision, …), a JSON object; `None` when nothing was set.
    #[serde(default)]
    pub settings: Option<Value>,
}

impl SessionSummary {
    /// A setting the operator stored on the session (`sessions.create|patch|reset`).
    pub fn setting(&self, name: &str) -> Option<&Value> {
        self.settings.as_ref().and_then(|s| s.get(name))
    }

    /// When the session was archived (`sessions.patch {archived:true}`), unix ms.
    pub fn archived_at(&self) -> Option<u64> {
        self.setting("archivedAt").and_then(Value::as_u64)
    }

    /// The revision `sessions.create|reset` stamped (`expectedLifecycleRevision` checks it).
    pub fn lifecycle_revision(&self) -> Option<&str> {
        self.setting("lifecycleRevision").and_then(Value::as_str)
    }
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
