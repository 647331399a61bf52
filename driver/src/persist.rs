//! Session persistence around agent turns: history in before a turn, the exchange out after it —
//! one transaction per turn in the session store ([`crate::store`]). Blocking: call through
//! `Runtime::spawn_blocking`. A store failure never fails the client's request (the answer was
//! already produced); it is logged.

use clawgate_core::openai::ApiError;
use clawgate_core::openai::turn::TurnResult;
use clawgate_core::sessions::{self, HistoryBudget, RunStatus, SessionMeta, StoredResponse, TranscriptEntry, Usage};
use serde_json::Value;

use crate::store::Store;

/// One finished exchange to record.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub key: String,
    pub agent_id: String,
    /// New messages of the request (OpenAI chat messages; user/tool ones are stored).
    pub input: Vec<Value>,
    /// The reply, or why there is none.
    pub outcome: Result<TurnResult, ApiError>,
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

/// The stored conversation of `key` as upstream messages (bounded by the default budget).
pub fn history(store: &Store, key: &str) -> Vec<Value> {
    match store.history(key, HistoryBudget::default().max_entries) {
        Ok(entries) => sessions::to_openai_messages(&entries, &HistoryBudget::default()),
        Err(e) => {
            tracing::warn!("session history of {key} unavailable: {e}");
            Vec::new()
        }
    }
}

/// Record one exchange in one transaction.
/// Store one exchange; `Err` (already logged) when it could not be saved.
pub fn record(store: &Store, x: Exchange) -> Result<(), String> {
    let mut entries: Vec<TranscriptEntry> = sessions::new_request_entries(&x.input, x.now_ms);
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
    store.append_turn_with_response(&meta, &entries, x.response.as_ref()).map(|_| ()).map_err(|e| {
        tracing::error!("session {} not saved: {e}", x.key);
        e.to_string()
    })
}
