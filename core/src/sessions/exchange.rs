//! One finished HTTP exchange as the store keeps it, stored `/v1/responses` (`previous_response_id`),
//! and the per-agent session defaults.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::*;

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
                reply.meta = Some(super::reply_meta(x.provider.as_deref(), x.model.as_deref(), r));
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
