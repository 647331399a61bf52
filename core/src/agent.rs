//! Agent runs over the WebSocket (spec §10.2 accepted-then-final, §10.3 idempotency, §8.3
//! `agent`/`chat` events): the run registry with its idempotency cache, the events a run emits,
//! and `agent.wait`.
//!
//! The core decides; the shell executes: `agent` answers `accepted` at once and hands a
//! [`RunSpec`] to the shell, which asks [`plan`] what to do (call an upstream provider, or fail
//! because none is configured) and reports the outcome with [`crate::gateway::Hub::finish_run`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The shell's handle on the task executing a run: the hub calls it to stop the run (the shell
/// drops the upstream request and reports [`Outcome::Aborted`] with
/// [`crate::gateway::Hub::finish_run`]). Must not block.
pub trait RunControl: Send + Sync {
    fn abort(&self);
}

/// A registered [`RunControl`].
#[derive(Clone)]
pub(crate) struct Control(Arc<dyn RunControl>);

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Waiter {
    pub conn_id: String,
    pub request_id: String,
    pub deadline: Instant,
}

#[derive(Debug, Clone)]
pub(crate) enum RunState {
    Running { owner: Option<(String, String)>, waiters: Vec<Waiter> },
    Finished { reply: Box<Reply>, status: &'static str, ended_at: u64, error: Option<String>, at: Instant },
}

#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub spec: RunSpec,
    pub started_at: u64,
    /// Per-run `payload.seq` of `agent` events.
    pub seq: u64,
    pub state: RunState,
    /// The executor's stop handle, once the shell attached it.
    pub control: Option<Control>,
    /// An abort was asked for (possibly before the executor attached).
    pub abort_requested: bool,
    /// The assistant text streamed so far (`chat` deltas carry it whole, as the reference's).
    pub text: String,
}

/// The run registry and idempotency cache.
#[derive(Debug, Default)]
pub(crate) struct Runs {
    pub runs: HashMap<String, Run>,
}

/// What `agent` does for a request.
#[derive(Debug)]
pub enum Start {
    /// A new run: answer `accepted`, then hand the spec to the shell.
    Accepted { reply: Reply, run: RunSpec },
    /// A duplicate or an invalid request: this single answer.
    Answer(Reply),
}

impl Runs {
    pub(crate) fn prune(&mut self, now: Instant) {
        self.runs.retain(|_, r| match &r.state {
            RunState::Finished { at, .. } => now.saturating_duration_since(*at) < IDEMPOTENCY_TTL,
            RunState::Running { .. } => true,
        });
        let finished = self.runs.values().filter(|r| matches!(r.state, RunState::Finished { .. })).count();
        if finished > IDEMPOTENCY_MAX {
            let mut by_age: Vec<(Instant, String)> = self
                .runs
                .iter()
                .filter_map(|(k, r)| if let RunState::Finished { at, .. } = &r.state { Some((*at, k.clone())) } else { None })
                .collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(finished - IDEMPOTENCY_MAX) {
                self.runs.remove(&k);
            }
        }
    }

    /// Start (or dedupe) a run for `(conn_id, request_id)`.
    pub(crate) fn start(&mut self, spec: RunSpec, owner: (String, String), now: Instant, unix_ms: u64) -> Start {
        self.start_owned(spec, Some(owner), now, unix_ms)
    }

    /// Start a run nobody waits on over a socket (hooks, `chat.send`). `Err` holds the existing
    /// run's state: `None` while it runs, else its final status.
    pub(crate) fn start_unowned(&mut self, spec: RunSpec, now: Instant, unix_ms: u64) -> Result<RunSpec, Option<&'static str>> {
        self.prune(now);
        if let Some(r) = self.runs.get(&spec.run_id) {
            return Err(match &r.state {
                RunState::Running { .. } => None,
                RunState::Finished { status, .. } => Some(*status),
            });
        }
        match self.start_owned(spec, None, now, unix_ms) {
            Start::Accepted { run, .. } => Ok(run),
            Start::Answer(_) => Err(None),
        }
    }

    /// Attach the executor's stop handle; `true` when an abort was already asked for (the
    /// caller stops the run at once).
    pub(crate) fn attach(&mut self, run_id: &str, control: Arc<dyn RunControl>) -> bool {
        match self.runs.get_mut(run_id) {
            Some(r) if matches!(r.state, RunState::Running { .. }) => {
                r.control = Some(Control(control));
                r.abort_requested
            }
            _ => false,
        }
    }

    /// Mark the running runs of `session_key` (only `run_id` when given) aborted; returns their
    /// ids and the stop handles to call (outside the hub's lock).
    pub(crate) fn request_abort(&mut self, session_key: &str, run_id: Option<&str>) -> (Vec<String>, Vec<Arc<dyn RunControl>>) {
        let (mut ids, mut controls) = (Vec::new(), Vec::new());
        for r in self.runs.values_mut() {
            if !matches!(r.state, RunState::Running { .. }) || run_id.is_some_and(|id| id != r.spec.run_id) {
                continue;
            }
            if !same_session(&r.spec, session_key) {
                continue;
            }
            if !r.abort_requested {
                r.abort_requested = true;
                controls.extend(r.control.as_ref().map(|c| c.0.clone()));
            }
            ids.push(r.spec.run_id.clone());
        }
        ids.sort();
        (ids, controls)
    }

    /// The running runs of a session (canonical keys compared), oldest first.
    pub(crate) fn active_for(&self, session_key: &str) -> Vec<String> {
        let mut runs: Vec<(u64, &str)> = self
            .runs
            .values()
            .filter(|r| matches!(r.state, RunState::Running { .. }) && same_session(&r.spec, session_key))
            .map(|r| (r.started_at, r.spec.run_id.as_str()))
            .collect();
        runs.sort();
        runs.into_iter().map(|(_, id)| id.to_string()).collect()
    }

    /// The session a running run (by id) belongs to.
    pub(crate) fn running_session(&self, run_id: &str) -> Option<&RunSpec> {
        self.runs.get(run_id).filter(|r| matches!(r.state, RunState::Running { .. })).map(|r| &r.spec)
    }

    fn start_owned(&mut self, spec: RunSpec, owner: Option<(String, String)>, now: Instant, unix_ms: u64) -> Start {
        self.prune(now);
        if let Some(r) = self.runs.get(&spec.run_id) {
            return Start::Answer(match &r.state {
                RunState::Running { .. } => {
                    Reply::Ok(Some(json!({"runId": r.spec.run_id, "status": "in_flight", "agentId": r.spec.agent_id})))
                }
                RunState::Finished { reply, .. } => (**reply).clone(),
            });
        }
        let accepted = json!({"runId": spec.run_id, "agentId": spec.agent_id, "status": "accepted", "acceptedAt": unix_ms});
        self.runs.insert(
            spec.run_id.clone(),
            Run {
                spec: spec.clone(),
                started_at: unix_ms,
                seq: 0,
                state: RunState::Running { owner, waiters: Vec::new() },
                control: None,
                abort_requested: false,
                text: String::new(),
            },
        );
        Start::Accepted { reply: Reply::Ok(Some(accepted)), run: spec }
    }

    pub(crate) fn next_seq(&mut self, run_id: &str) -> Option<(RunSpec, u64)> {
        let r = self.runs.get_mut(run_id)?;
        r.seq += 1;
        Some((r.spec.clone(), r.seq))
    }
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

// ---- the run's records ------------------------------------------------------------------
//
// What a WebSocket run keeps in the session store and how it ends, decided here once; the
// executor (`driver/src/agent.rs`) performs the writes and the broadcasts in order: store the
// user turn, announce it, run the turn, store the reply (one transaction each), finish.

/// What a run keeps before the model is asked: the session's meta (created on first use) and the
/// user turn (spec protocol §10.2; the UI reconciles with `chat.history` while the run goes on).
pub fn user_turn(
    run: &RunSpec,
    provider: &str,
    model: &str,
    session_uuid: String,
    now_ms: u64,
) -> (crate::sessions::SessionMeta, crate::sessions::TranscriptEntry) {
    let user = crate::sessions::TranscriptEntry::user(run.message.clone(), now_ms).with_run_id(run.run_id.clone());
    let mut meta = crate::sessions::SessionMeta::new(run.session_key.clone(), run.agent_id.clone(), session_uuid, now_ms);
    meta.origin = Some("agent".into());
    meta.model = Some(model.to_string());
    meta.model_provider = Some(provider.to_string());
    (meta, user)
}

/// How the model turn of a run ended, as its executor saw it.
#[derive(Debug, Clone, Copy)]
pub enum TurnEnd<'a> {
    /// Stopped (`chat.abort`, `/stop`) before a result; `partial` is the text streamed so far.
    Aborted {
        partial: &'a str,
    },
    Finished(&'a crate::openai::turn::TurnResult),
    Failed(&'a crate::openai::ApiError),
    /// The turn stopped without a result or an error.
    NoResult,
}

/// The transcript's `stopReason` for an upstream `finish_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "tool_calls" => "toolUse",
        "length" => "length",
        _ => "stop",
    }
}

/// The end of a run: its outcome (the final answer's content), the session meta to store with
/// the reply (status, usage, last run), and the reply entries (none when the turn failed; the
/// partial text when aborted).
pub fn run_end(
    run: &RunSpec,
    mut meta: crate::sessions::SessionMeta,
    end: TurnEnd<'_>,
    started_ms: u64,
    duration_ms: u64,
    now_ms: u64,
) -> (Outcome, crate::sessions::SessionMeta, Vec<crate::sessions::TranscriptEntry>) {
    use crate::sessions::{LastRun, RunStatus, TranscriptEntry, Usage};
    meta.now_ms = now_ms;
    meta.last_run = Some(LastRun { run_id: run.run_id.clone(), started_ms, ended_ms: now_ms });
    let mut entries = Vec::new();
    let outcome = match end {
        TurnEnd::Aborted { partial } => {
            if !partial.is_empty() {
                entries.push(TranscriptEntry::assistant(Value::String(partial.to_string()), None, now_ms));
            }
            meta.status = Some(RunStatus::Killed);
            meta.aborted = true;
            Outcome::Aborted { text: partial.to_string() }
        }
        TurnEnd::Finished(r) => {
            let (input, output) = (r.prompt_tokens, r.completion_tokens);
            let mut reply = TranscriptEntry::assistant(Value::String(r.text.clone()), r.tool_calls_json(), now_ms);
            reply.meta = Some(json!({
                "api": "openai-completions", "provider": meta.model_provider, "model": meta.model,
                "usage": {"input": input, "output": output, "totalTokens": input + output, "cacheRead": 0, "cacheWrite": 0},
                "stopReason": stop_reason(&r.finish_reason),
            }));
            entries.push(reply);
            meta.usage = Some(Usage { input_tokens: input, output_tokens: output, total_tokens: input + output });
            meta.status = Some(RunStatus::Done);
            let text = if r.text.is_empty() { crate::openai::NO_RESPONSE.to_string() } else { r.text.clone() };
            let final_meta = json!({
                "durationMs": duration_ms,
                "agentMeta": {"sessionId": run.session_id, "sessionKey": run.session_key, "provider": meta.model_provider, "model": meta.model,
                    "usage": {"input": input, "output": output, "total": input + output}},
            });
            Outcome::Ok { text, meta: final_meta }
        }
        TurnEnd::Failed(e) => {
            meta.status = Some(RunStatus::Failed);
            Outcome::Err { message: e.message.clone() }
        }
        TurnEnd::NoResult => {
            meta.status = Some(RunStatus::Failed);
            Outcome::Err { message: "the run ended without a result".into() }
        }
    };
    let entries = entries.into_iter().map(|e| e.with_run_id(run.run_id.clone())).collect();
    (outcome, meta, entries)
}

/// A reply that could not be kept ends the run with an error the client sees (issue 11): the
/// conversation would otherwise silently lose it.
pub fn unsaved_reply(outcome: Outcome, stored: Result<(), &str>) -> Outcome {
    match (stored, outcome) {
        (Err(reason), Outcome::Ok { .. }) => Outcome::Err { message: format!("the reply was not saved: {reason}") },
        (_, o) => o,
    }
}

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

    fn spec() -> RunSpec {
        parse_agent_params(
            Some(&json!({"message": "hi", "idempotencyKey": "r1", "agentId": "main"})),
            &crate::openai::Agents::from_config(&Value::Null),
        )
        .unwrap()
    }

    #[test]
    fn a_finished_run_keeps_its_reply_with_usage_and_stop_reason() {
        let run = spec();
        let (meta, user) = user_turn(&run, "fake", "fake-model", "sid".into(), 10);
        assert_eq!(
            (meta.origin.as_deref(), meta.model.as_deref(), user.run_id.as_deref()),
            (Some("agent"), Some("fake-model"), Some("r1"))
        );
        let r = crate::openai::turn::TurnResult {
            text: String::new(),
            finish_reason: "length".into(),
            prompt_tokens: 3,
            completion_tokens: 4,
            ..Default::default()
        };
        let (outcome, meta, entries) = run_end(&run, meta, TurnEnd::Finished(&r), 10, 7, 20);
        let Outcome::Ok { text, meta: fin } = outcome else { panic!("{outcome:?}") };
        assert_eq!(text, crate::openai::NO_RESPONSE, "an empty reply reads as the reference's text");
        assert_eq!(fin["durationMs"], 7);
        assert_eq!(fin["agentMeta"]["usage"]["total"], 7);
        assert_eq!(meta.status, Some(crate::sessions::RunStatus::Done));
        assert_eq!(meta.last_run.as_ref().map(|l| (l.started_ms, l.ended_ms)), Some((10, 20)));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].meta.as_ref().unwrap()["stopReason"], "length");
        assert_eq!(entries[0].run_id.as_deref(), Some("r1"));
        assert_eq!(stop_reason("tool_calls"), "toolUse");
        assert_eq!(stop_reason("stop"), "stop");
    }

    #[test]
    fn aborted_and_failed_runs_and_unsaved_replies() {
        let run = spec();
        let (meta, _) = user_turn(&run, "p", "m", "sid".into(), 1);
        let (o, m, e) = run_end(&run, meta.clone(), TurnEnd::Aborted { partial: "half" }, 1, 1, 2);
        assert_eq!(o, Outcome::Aborted { text: "half".into() });
        assert!(m.aborted && m.status == Some(crate::sessions::RunStatus::Killed) && e.len() == 1);
        let (_, _, e) = run_end(&run, meta.clone(), TurnEnd::Aborted { partial: "" }, 1, 1, 2);
        assert!(e.is_empty(), "nothing streamed, nothing kept");
        let err = crate::openai::ApiError::invalid("boom");
        let (o, m, e) = run_end(&run, meta, TurnEnd::Failed(&err), 1, 1, 2);
        assert_eq!(o, Outcome::Err { message: "boom".into() });
        assert!(m.status == Some(crate::sessions::RunStatus::Failed) && e.is_empty());
        let ok = Outcome::Ok { text: "t".into(), meta: Value::Null };
        assert_eq!(unsaved_reply(ok.clone(), Ok(())), ok);
        assert_eq!(unsaved_reply(ok, Err("disk full")), Outcome::Err { message: "the reply was not saved: disk full".into() });
        assert_eq!(unsaved_reply(Outcome::Err { message: "x".into() }, Err("y")), Outcome::Err { message: "x".into() });
    }
}
