//! Agent runs over the WebSocket (spec §10.2 accepted-then-final, §10.3 idempotency, §8.3
//! `agent`/`chat` events): the run registry with its idempotency cache, the events a run emits,
//! and `agent.wait`.
//!
//! The core decides; the shell executes: `agent` answers `accepted` at once and hands a
//! [`RunSpec`] to the shell, which asks [`plan`] what to do (call an upstream provider, or fail
//! because none is configured) and reports the outcome with [`crate::gateway::Hub::finish_run`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::settings::GatewaySettings;
use crate::wire::Reply;
use crate::wire::{ErrorShape, details_code};

/// Completed runs are replayed for this long (spec §10.3).
pub const IDEMPOTENCY_TTL: Duration = Duration::from_millis(300_000);
/// At most this many completed runs are remembered (active runs are never evicted).
pub const IDEMPOTENCY_MAX: usize = 1_000;
/// Default and ceiling of `agent.wait` `timeoutMs`.
pub const WAIT_DEFAULT_MS: u64 = 30_000;
pub const WAIT_MAX_MS: u64 = 600_000;

pub use crate::config::api::DEFAULT_AGENT_ID;

fn agent_params_schema() -> Value {
    let s = json!({"type": "string"});
    let ne = json!({"type": "string", "minLength": 1});
    json!({
        "type": "object",
        "required": ["message", "idempotencyKey"],
        "properties": {
            "message": s, "idempotencyKey": ne, "agentId": ne, "sessionKey": ne, "sessionId": ne,
            "thinking": s, "deliver": {"type": "boolean"}, "attachments": {"type": "array"}, "channel": s,
            "timeout": {"type": "integer", "minimum": 0}, "label": s, "to": s, "replyTo": s, "extraSystemPrompt": s,
            "lane": s, "model": s,
        },
        "additionalProperties": false,
    })
}

fn wait_params_schema() -> Value {
    json!({
        "type": "object",
        "required": ["runId"],
        "properties": {"runId": {"type": "string", "minLength": 1}, "timeoutMs": {"type": "integer", "minimum": 0}},
        "additionalProperties": false,
    })
}

/// What a run needs to execute.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    pub run_id: String,
    pub agent_id: String,
    pub session_key: String,
    pub session_id: String,
    pub message: String,
    /// `model` param: a `provider/model` override.
    pub model: Option<String>,
}

/// Validate `agent` params into a run (spec §10.2). Errors carry the reference's texts. `agents`
/// are the configured agents; without an `agentId` the run goes to the default agent (or
/// `main`, or the first configured one, in an explicit fleet).
pub fn parse_agent_params(params: Option<&Value>, agents: &crate::openai::Agents) -> Result<RunSpec, ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&agent_params_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid agent params: {d}")))?;
    let key = p["idempotencyKey"].as_str().unwrap_or_default().to_string();
    let fallback = agents.default_agent();
    let agent_id = p.get("agentId").and_then(Value::as_str).map(|a| a.trim().to_ascii_lowercase()).unwrap_or(fallback);
    if !agents.ids.contains(&agent_id) {
        return Err(ErrorShape::invalid_request(format!("unknown agent id: {agent_id}"))
            .with_details(json!({"code": details_code::UNKNOWN_AGENT_ID, "agentId": agent_id})));
    }
    // The session (captured off the reference): the given `sessionKey`; else, when the caller
    // names the agent (`openclaw agent --agent main` sends `agentId`), that agent's main
    // session, so the user's conversation continues; else a session of this run alone
    // (`gateway call agent` sends no agent: `agent:<id>:explicit:<idempotencyKey>`).
    let session_key = match (p.get("sessionKey").and_then(Value::as_str), p.get("agentId").and_then(Value::as_str)) {
        (Some(k), _) => k.to_string(),
        (None, Some(_)) => crate::sessions::agent_main_session_key(&agent_id),
        (None, None) => crate::sessions::ws_agent_session_key(&agent_id, &key),
    };
    let session_id = p.get("sessionId").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| key.clone());
    Ok(RunSpec {
        run_id: key,
        agent_id,
        session_key,
        session_id,
        message: p["message"].as_str().unwrap_or_default().to_string(),
        model: p.get("model").and_then(Value::as_str).map(str::to_string),
    })
}

/// Validate `agent.wait` params: `(runId, timeout)`.
pub fn parse_wait_params(params: Option<&Value>) -> Result<(String, Duration), ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&wait_params_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid agent.wait params: {d}")))?;
    let ms = p.get("timeoutMs").and_then(Value::as_u64).unwrap_or(WAIT_DEFAULT_MS).min(WAIT_MAX_MS);
    Ok((p["runId"].as_str().unwrap_or_default().to_string(), Duration::from_millis(ms)))
}

fn chat_send_schema() -> Value {
    let s = json!({"type": "string"});
    let ne = json!({"type": "string", "minLength": 1});
    json!({
        "type": "object",
        "required": ["sessionKey", "message", "idempotencyKey"],
        "properties": {
            "sessionKey": ne, "sessionId": ne, "message": s, "thinking": s, "deliver": {"type": "boolean"},
            "originatingChannel": s, "originatingTo": s, "originatingAccountId": s, "originatingThreadId": s,
            "attachments": {"type": "array"}, "timeoutMs": {"type": "integer", "minimum": 0},
            "systemInputProvenance": {"type": "object"}, "systemProvenanceReceipt": s, "idempotencyKey": ne,
            "expectedLeafEntryId": {"type": ["string", "null"]},
        },
        "additionalProperties": false,
    })
}

fn chat_abort_schema() -> Value {
    let ne = json!({"type": "string", "minLength": 1});
    json!({
        "type": "object",
        "required": ["sessionKey"],
        "properties": {"sessionKey": ne, "runId": ne},
        "additionalProperties": false,
    })
}

/// What a `chat.send` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatSend {
    /// Start a run on the session (`runId` = `idempotencyKey`).
    Run(RunSpec),
    /// `/stop`: abort the session's running runs.
    Stop { session_key: String },
}

/// The agent a session key belongs to: its `agent:<id>:` part, else the default agent (or
/// `main`, or the first configured one).
fn session_agent(key: &str, agents: &crate::openai::Agents) -> Result<String, ErrorShape> {
    let agent_id = crate::sessions::agent_id_of_key(key).unwrap_or_else(|| agents.default_agent());
    if !agents.ids.contains(&agent_id) {
        return Err(ErrorShape::invalid_request(format!("unknown agent id: {agent_id}"))
            .with_details(json!({"code": details_code::UNKNOWN_AGENT_ID, "agentId": agent_id})));
    }
    Ok(agent_id)
}

/// Validate `chat.send` params (errors: `invalid chat.send params: …`). The session key is
/// stored in canonical form (`main` → `agent:<default>:main`).
pub fn parse_chat_send_params(params: Option<&Value>, agents: &crate::openai::Agents) -> Result<ChatSend, ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&chat_send_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid chat.send params: {d}")))?;
    let raw_key = p["sessionKey"].as_str().unwrap_or_default().trim();
    let agent_id = session_agent(raw_key, agents)?;
    let session_key = crate::sessions::canonical_session_key(raw_key, &agent_id);
    let message = p["message"].as_str().unwrap_or_default();
    if message.trim().eq_ignore_ascii_case("/stop") {
        return Ok(ChatSend::Stop { session_key });
    }
    if message.trim().is_empty() {
        return Err(ErrorShape::invalid_request("message or attachment required"));
    }
    let run_id = p["idempotencyKey"].as_str().unwrap_or_default().to_string();
    Ok(ChatSend::Run(RunSpec {
        session_id: p.get("sessionId").and_then(Value::as_str).map_or_else(|| run_id.clone(), str::to_string),
        run_id,
        agent_id,
        session_key,
        message: message.to_string(),
        model: None,
    }))
}

/// Validate `chat.abort` params: `(sessionKey, runId)`.
pub fn parse_chat_abort_params(params: Option<&Value>) -> Result<(String, Option<String>), ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&chat_abort_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid chat.abort params: {d}")))?;
    Ok((p["sessionKey"].as_str().unwrap_or_default().trim().to_string(), p.get("runId").and_then(Value::as_str).map(str::to_string)))
}

/// How the shell should execute a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The agent cannot run (no model provider configured, unusable provider): the run fails
    /// with this message.
    NoProvider { message: String },
    /// Run this turn against the provider (the shell adds the session history to `messages`
    /// before the new user message when it has one).
    Turn { spec: Box<crate::openai::turn::TurnSpec>, provider: String, model: String },
}

/// Decide how to execute a run with the current settings. `history` is the session's earlier
/// conversation (OpenAI chat messages), `id_seed` random hex from the shell.
pub fn plan(settings: &GatewaySettings, run: &RunSpec, history: Vec<Value>, id_seed: String) -> Plan {
    let api = &settings.api;
    let model_override = run.model.as_deref().filter(|m| m.contains('/'));
    match upstream_for(api, &run.agent_id, model_override) {
        Err(e) => Plan::NoProvider { message: e.message },
        Ok((upstream, model, max_tokens)) => {
            let mut messages: Vec<Value> = history;
            messages.push(json!({"role": "user", "content": run.message}));
            let mut sampling = serde_json::Map::new();
            if let Some(m) = max_tokens {
                sampling.insert("max_completion_tokens".into(), json!(m));
            }
            let provider = upstream.provider_id.clone();
            let spec = crate::openai::turn::TurnSpec {
                upstream,
                model: model.clone(),
                messages,
                tools: None,
                tool_choice: None,
                sampling,
                id_seed,
            };
            Plan::Turn { spec: Box::new(spec), provider, model }
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok {
        text: String,
        /// `result.meta` of the final answer (`durationMs`, `agentMeta` with the session id,
        /// provider, model and usage), as the reference's CLI shows with `--json`.
        meta: Value,
    },
    Err {
        message: String,
    },
    /// Stopped by `chat.abort` (or a session kill); `text` is what had streamed so far.
    Aborted {
        text: String,
    },
}

/// The lifecycle data of a run's last `agent` event.
pub(crate) fn lifecycle_end(outcome: &Outcome, started_at: u64, unix_ms: u64) -> Value {
    match outcome {
        Outcome::Ok { .. } => json!({"phase": "end", "startedAt": started_at, "endedAt": unix_ms, "executionSettled": true}),
        Outcome::Err { message } => {
            json!({"phase": "error", "startedAt": started_at, "endedAt": unix_ms, "error": message, "executionSettled": true})
        }
        Outcome::Aborted { .. } => json!({"phase": "end", "startedAt": started_at, "endedAt": unix_ms, "aborted": true,
            "stopReason": "rpc", "executionSettled": true}),
    }
}

/// The run's last `chat` event (`final`, `error` or `aborted`).
pub(crate) fn chat_end(spec: &RunSpec, seq: u64, outcome: &Outcome, unix_ms: u64) -> Value {
    let mut chat = json!({"runId": spec.run_id, "sessionKey": spec.session_key, "agentId": spec.agent_id, "seq": seq});
    match outcome {
        Outcome::Ok { text, .. } => {
            chat["state"] = json!("final");
            chat["stopReason"] = json!("stop");
            chat["message"] = json!({"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": unix_ms});
        }
        Outcome::Err { message } => {
            chat["state"] = json!("error");
            chat["errorMessage"] = json!(message);
        }
        Outcome::Aborted { text } => {
            chat["state"] = json!("aborted");
            chat["stopReason"] = json!("rpc");
            if !text.is_empty() {
                chat["message"] = json!({"role": "assistant", "content": [{"type": "text", "text": text}]});
            }
        }
    }
    chat
}

/// An `agent` event payload (`stream` lifecycle/assistant/…).
pub(crate) fn agent_event(spec: &RunSpec, stream: &str, data: Value, seq: u64, ts: u64) -> Value {
    json!({
        "runId": spec.run_id, "agentId": spec.agent_id, "sessionId": spec.session_id, "sessionKey": spec.session_key,
        "stream": stream, "data": data, "seq": seq, "ts": ts,
    })
}

/// The final reply of a finished run.
pub(crate) fn final_reply(spec: &RunSpec, outcome: &Outcome) -> (Reply, &'static str, Option<String>) {
    match outcome {
        // `result.payloads[].text` is what the reference CLI prints for `openclaw agent`.
        Outcome::Ok { text, meta } => (
            Reply::Ok(Some(json!({"runId": spec.run_id, "status": "ok", "summary": "completed",
                "result": {"payloads": [{"text": text, "mediaUrl": null}], "meta": meta}}))),
            "ok",
            None,
        ),
        Outcome::Err { message } => (
            Reply::Err {
                error: ErrorShape::unavailable(message.clone()),
                payload: Some(json!({"runId": spec.run_id, "status": "error", "summary": message})),
            },
            "error",
            Some(message.clone()),
        ),
        Outcome::Aborted { text } => (
            Reply::Ok(Some(json!({"runId": spec.run_id, "status": "aborted", "summary": "aborted",
                    "result": {"payloads": [{"text": text, "mediaUrl": null}], "aborted": true}}))),
            "aborted",
            None,
        ),
    }
}

/// Does a run belong to the session `key` (both compared in canonical form)?
fn same_session(spec: &RunSpec, key: &str) -> bool {
    let canonical = |k: &str| crate::sessions::canonical_session_key(k, &spec.agent_id);
    canonical(&spec.session_key) == canonical(key)
}

/// The upstream (provider, model) an agent runs on.
pub fn upstream_for(
    api: &crate::config::api::ApiConfig,
    agent_id: &str,
    override_model: Option<&str>,
) -> Result<(crate::openai::turn::Upstream, String, Option<u64>), crate::openai::ApiError> {
    let Some(model_ref) = api.model_for(agent_id, override_model) else {
        return Err(crate::openai::ApiError {
            status: 503,
            kind: "api_error",
            message: format!(
                "No model provider is configured for agent {agent_id} (set agents.defaults.model.primary and models.providers)."
            ),
        });
    };
    let Some((p, model)) = api.split_model(&model_ref) else {
        // An override naming an unknown provider/model fails like the reference's run (404).
        let status = if override_model.is_some() { 404 } else { 503 };
        let provider = model_ref.split_once('/').map_or(model_ref.as_str(), |(p, _)| p);
        let message = format!(
            "Unknown model: {model_ref}. Run `openclaw models list --refresh --provider {provider}` to inspect this provider's model choices, then retry with a model supported by your account."
        );
        return Err(crate::openai::ApiError { status, kind: "invalid_request_error", message });
    };
    if p.api != "openai-completions" {
        return Err(crate::openai::ApiError {
            status: 503,
            kind: "api_error",
            message: format!("models.providers.{}.api \"{}\" is not supported (use openai-completions)", p.id, p.api),
        });
    }
    if let Some(e) = &p.api_key_error {
        return Err(crate::openai::ApiError { status: 503, kind: "api_error", message: format!("provider {} is unavailable: {e}", p.id) });
    }
    let max_tokens = p.models.iter().find(|(id, _)| id == model).and_then(|(_, m)| *m);
    let upstream = crate::openai::turn::Upstream {
        provider_id: p.id.clone(),
        base_url: p.base_url.clone(),
        api_key: p.api_key.clone(),
        headers: p.headers.clone(),
    };
    Ok((upstream, model.to_string(), max_tokens))
}

mod records;
mod run;
mod runs;

pub use records::{TurnEnd, run_end, unsaved_reply, user_turn};
pub use run::{RunAction, RunChange, RunMachine, RunNotice};
pub use runs::{RunControl, Start};
pub(crate) use runs::{RunState, Runs, Waiter};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_errors_match_the_reference() {
        let agents = crate::openai::Agents::from_config(&Value::Null);
        let e = parse_agent_params(Some(&json!({"message": "no key"})), &agents).unwrap_err();
        assert_eq!(e.message, "invalid agent params: must have required property 'idempotencyKey'");
        let r = parse_agent_params(Some(&json!({"message": "hi", "idempotencyKey": "k1"})), &agents).unwrap();
        assert_eq!(r.run_id, "k1");
        assert_eq!(r.session_key, "agent:main:explicit:k1");
        // `openclaw agent --agent main` (its params, captured): the agent's main session, as on
        // the reference; an explicit sessionKey still wins.
        let cli = json!({"message": "hi there", "agentId": "main", "deliver": false, "timeout": 600, "idempotencyKey": "k2"});
        assert_eq!(parse_agent_params(Some(&cli), &agents).unwrap().session_key, "agent:main:main");
        let mut keyed = cli.clone();
        keyed["sessionKey"] = json!("agent:main:work");
        assert_eq!(parse_agent_params(Some(&keyed), &agents).unwrap().session_key, "agent:main:work");
        let e = parse_agent_params(Some(&json!({"message": "hi", "idempotencyKey": "k", "bogus": 1})), &agents).unwrap_err();
        assert_eq!(e.message, "invalid agent params: at root: unexpected property 'bogus'");
    }
}
