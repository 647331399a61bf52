//! One agent turn against an `openai-completions` upstream (spec http §9), sans-IO.
//!
//! The turn builds the upstream `POST {baseUrl}/chat/completions` request, consumes the response
//! the shell feeds back (status, then body bytes as they arrive), and emits [`TurnEvent`]s: text
//! deltas, tool-call pieces, and exactly one terminal `Finished` or `Failed`. Transient upstream
//! failures (429, 5xx, connection errors before any output) are retried with exponential backoff
//! that honours `Retry-After`, inside a bounded retry budget — seconds, not the reference's
//! minutes (a user-pain requirement: a stuck upstream must not hang clients).
//!
//! Shell loop: `poll_output` until `None`; carry out `Send` (one request at a time; a new `Send`
//! replaces the previous request) and `Cancel`; feed `handle_response_head` / `handle_body` /
//! `handle_body_end` / `handle_transport_error`; sleep until `poll_timeout`, then
//! `handle_timeout`. Stop when `is_done`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::auth::Secret;
use crate::openai::{ApiError, SseParser, ToolCall, UpstreamEvent};

/// Where and how to reach the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub provider_id: String,
    /// `models.providers.<id>.baseUrl`, without a trailing slash.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Extra request headers (`models.providers.<id>.headers`).
    pub headers: Vec<(String, String)>,
}

/// What to ask the upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnSpec {
    pub upstream: Upstream,
    pub model: String,
    /// OpenAI chat messages, system prompt and history included.
    pub messages: Vec<Value>,
    /// OpenAI function tools passed through to the upstream.
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    /// Sampling and limits forwarded as given (`temperature`, `max_completion_tokens`, …).
    pub sampling: Map<String, Value>,
    /// Random hex from the shell, for ids the upstream leaves out (tool calls without an id).
    pub id_seed: String,
}

/// Retry and timeout policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnPolicy {
    /// Attempts in total (first try included).
    pub max_attempts: u32,
    /// First backoff; doubled per retry, capped at `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry is scheduled past `started + retry_budget`.
    pub retry_budget: Duration,
    /// The upstream must answer (head, then each body chunk) within this.
    pub idle_timeout: Duration,
    /// Error bodies are read up to this many bytes (for their message).
    pub max_error_body: usize,
    /// The reply (text and tool-call arguments) may not grow past this many bytes.
    pub max_reply_bytes: usize,
}

impl TurnPolicy {
    /// The default policy under the gateway's limits.
    pub fn for_limits(limits: &crate::limits::Limits) -> TurnPolicy {
        TurnPolicy { max_reply_bytes: limits.max_reply_bytes, ..TurnPolicy::default() }
    }
}

impl Default for TurnPolicy {
    fn default() -> Self {
        TurnPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            retry_budget: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(120),
            max_error_body: 64 * 1024,
            max_reply_bytes: crate::limits::Limits::default().max_reply_bytes,
        }
    }
}

/// An HTTP request for the shell to send.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub method: &'static str,
    pub url: String,
    /// Header values may hold the provider key: never log them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// 1 for the first try.
    pub attempt: u32,
}

/// The result of a finished turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TurnResult {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `length`, `tool_calls`, …
    pub finish_reason: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl TurnResult {
    /// The tool calls as a stored assistant message carries them (OpenAI `tool_calls` shape);
    /// `None` when the model called no tool.
    pub fn tool_calls_json(&self) -> Option<serde_json::Value> {
        (!self.tool_calls.is_empty()).then(|| {
            serde_json::Value::Array(
                self.tool_calls
                    .iter()
                    .map(|c| serde_json::json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect(),
            )
        })
    }
}

/// What a turn reports, in order: any number of deltas, then one `Finished` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    Text(String),
    /// A tool call starts: `index` among this turn's calls, the call id, the function name.
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More argument text for call `index`.
    ToolCallArgs {
        index: usize,
        fragment: String,
    },
    Finished(TurnResult),
    Failed(ApiError),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnOutput {
    Send(UpstreamRequest),
    /// Drop the request in flight (its body is no longer wanted).
    Cancel,
    Event(TurnEvent),
}

#[derive(Debug)]
enum State {
    /// A request is in flight, no response head yet.
    AwaitingHead {
        deadline: Instant,
    },
    /// 2xx: streaming the SSE body.
    Streaming {
        deadline: Instant,
    },
    /// Non-2xx: reading the error body for its message.
    ErrorBody {
        status: u16,
        retry_after: Option<Duration>,
        body: Vec<u8>,
        deadline: Instant,
    },
    /// Waiting to retry.
    Backoff {
        until: Instant,
    },
    Done,
}

/// One agent turn.
#[derive(Debug)]
pub struct Turn {
    spec: TurnSpec,
    policy: TurnPolicy,
    started: Instant,
    attempt: u32,
    state: State,
    out: VecDeque<TurnOutput>,
    parser: SseParser,
    /// Anything was emitted to the client: from then on a failure cannot be retried.
    emitted: bool,
    result: TurnResult,
    /// Upstream call index → our index (calls are renumbered densely in arrival order).
    tool_index: Vec<usize>,
}

impl Turn {
    pub fn new(spec: TurnSpec, policy: TurnPolicy, now: Instant) -> Turn {
        let mut t = Turn {
            spec,
            policy,
            started: now,
            attempt: 0,
            state: State::Done,
            out: VecDeque::new(),
            parser: SseParser::default(),
            emitted: false,
            result: TurnResult::default(),
            tool_index: Vec::new(),
        };
        t.send(now);
        t
    }

    /// The request body sent upstream (spec §9): always streamed, usage included.
    pub fn upstream_body(spec: &TurnSpec) -> Value {
        let mut b = json!({"model": spec.model, "messages": spec.messages, "stream": true, "stream_options": {"include_usage": true}});
        let o = b.as_object_mut().expect("object literal");
        for (k, v) in &spec.sampling {
            // `max_tokens` is deprecated upstream; newer models only take the new name.
            let key = if k == "max_tokens" { "max_completion_tokens" } else { k.as_str() };
            o.insert(key.to_string(), v.clone());
        }
        if let Some(tools) = spec.tools.as_ref().filter(|t| !t.is_empty()) {
            o.insert("tools".into(), json!(tools));
            o.insert("tool_choice".into(), spec.tool_choice.clone().unwrap_or(json!("auto")));
        }
        b
    }

    fn request(&self) -> UpstreamRequest {
        let mut headers =
            vec![("content-type".to_string(), "application/json".to_string()), ("accept".to_string(), "text/event-stream".to_string())];
        if let Some(k) = &self.spec.upstream.api_key {
            headers.push(("authorization".to_string(), format!("Bearer {}", k.expose())));
        }
        headers.extend(self.spec.upstream.headers.iter().cloned());
        UpstreamRequest {
            method: "POST",
            url: format!("{}/chat/completions", self.spec.upstream.base_url),
            headers,
            body: Self::upstream_body(&self.spec).to_string().into_bytes(),
            attempt: self.attempt,
        }
    }

    fn send(&mut self, now: Instant) {
        self.attempt += 1;
        self.parser = SseParser::default();
        self.state = State::AwaitingHead { deadline: now + self.policy.idle_timeout };
        let req = self.request();
        self.out.push_back(TurnOutput::Send(req));
    }

    fn fail(&mut self, e: ApiError) {
        if matches!(self.state, State::Done) {
            return;
        }
        if !matches!(self.state, State::Backoff { .. }) {
            self.out.push_back(TurnOutput::Cancel);
        }
        self.state = State::Done;
        self.out.push_back(TurnOutput::Event(TurnEvent::Failed(e)));
    }

    /// Retry if allowed (nothing emitted yet, attempts and budget left), else fail with `e`.
    fn retry_or_fail(&mut self, now: Instant, retry_after: Option<Duration>, e: ApiError) {
        let backoff = self.policy.base_backoff.saturating_mul(1 << (self.attempt.saturating_sub(1)).min(16)).min(self.policy.max_backoff);
        let wait = retry_after.map_or(backoff, |r| r.max(backoff));
        let until = now + wait;
        if self.emitted || self.attempt >= self.policy.max_attempts || until > self.started + self.policy.retry_budget {
            self.fail(e);
            return;
        }
        self.out.push_back(TurnOutput::Cancel);
        self.state = State::Backoff { until };
    }

    pub fn handle_response_head(&mut self, now: Instant, status: u16, headers: &[(&str, &str)]) {
        if !matches!(self.state, State::AwaitingHead { .. }) {
            return;
        }
        let deadline = now + self.policy.idle_timeout;
        if (200..300).contains(&status) {
            self.state = State::Streaming { deadline };
        } else {
            let retry_after = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(3600.0)));
            self.state = State::ErrorBody { status, retry_after, body: Vec::new(), deadline };
        }
    }

    pub fn handle_body(&mut self, now: Instant, bytes: &[u8]) {
        let idle = self.policy.idle_timeout;
        match &mut self.state {
            State::Streaming { deadline } => {
                *deadline = now + idle;
                let events = self.parser.push(bytes);
                for e in events {
                    self.upstream_event(e);
                    if matches!(self.state, State::Done) {
                        return;
                    }
                }
            }
            State::ErrorBody { body, deadline, .. } => {
                *deadline = now + idle;
                let room = self.policy.max_error_body.saturating_sub(body.len());
                body.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            _ => {}
        }
    }

    pub fn handle_body_end(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Streaming { deadline } => {
                self.state = State::Streaming { deadline };
                // A stream without `[DONE]`: finish with what arrived, if anything did.
                if self.emitted
                    || !self.result.text.is_empty()
                    || !self.result.tool_calls.is_empty()
                    || !self.result.finish_reason.is_empty()
                {
                    self.finish();
                } else {
                    self.retry_or_fail(now, None, ApiError { status: 502, kind: "api_error", message: "upstream provider error".into() });
                }
            }
            State::ErrorBody { status, retry_after, body, deadline } => {
                self.state = State::ErrorBody { status, retry_after, body: Vec::new(), deadline };
                let message = error_message(&body);
                let mut e = crate::openai::map_upstream_status(status, &message);
                if status == 401 || status == 403 {
                    e.message = format!("provider {}: {}", self.spec.upstream.provider_id, e.message);
                }
                if status == 429 || status == 408 || status >= 500 {
                    self.retry_or_fail(now, retry_after, e);
                } else {
                    self.fail(e);
                }
            }
            other => self.state = other,
        }
    }

    /// The request failed below HTTP (connect refused, reset, TLS).
    pub fn handle_transport_error(&mut self, now: Instant, message: &str) {
        if matches!(self.state, State::Done | State::Backoff { .. }) {
            return;
        }
        let _ = message;
        let e = ApiError { status: 502, kind: "api_error", message: "upstream provider error".into() };
        if matches!(self.state, State::Streaming { .. }) && self.emitted {
            self.fail(e);
        } else {
            self.retry_or_fail(now, None, e);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::AwaitingHead { deadline } | State::Streaming { deadline } | State::ErrorBody { deadline, .. } => Some(*deadline),
            State::Backoff { until } => Some(*until),
            State::Done => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            State::Backoff { until } if now >= *until => self.send(now),
            State::AwaitingHead { deadline } | State::Streaming { deadline } | State::ErrorBody { deadline, .. } if now >= *deadline => {
                let e = ApiError { status: 504, kind: "api_error", message: "upstream provider timeout".into() };
                if matches!(self.state, State::Streaming { .. }) {
                    self.fail(e);
                } else {
                    self.retry_or_fail(now, None, e);
                }
            }
            _ => {}
        }
    }

    /// The client went away: stop, drop the upstream request, emit nothing more.
    pub fn abort(&mut self) {
        if !matches!(self.state, State::Done | State::Backoff { .. }) {
            self.out.push_back(TurnOutput::Cancel);
        }
        self.state = State::Done;
    }

    pub fn poll_output(&mut self) -> Option<TurnOutput> {
        self.out.pop_front()
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done) && self.out.is_empty()
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    fn emit(&mut self, e: TurnEvent) {
        self.emitted = true;
        self.out.push_back(TurnOutput::Event(e));
    }

    /// The reply so far, in bytes (what a stored turn keeps).
    fn reply_bytes(&self) -> usize {
        self.result.text.len() + self.result.tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>()
    }

    fn upstream_event(&mut self, e: UpstreamEvent) {
        let grows = match &e {
            UpstreamEvent::Text(t) => t.len(),
            UpstreamEvent::ToolStart { name, .. } => name.len(),
            UpstreamEvent::ToolArgs { fragment, .. } => fragment.len(),
            _ => 0,
        };
        if grows > 0 && self.reply_bytes() + grows > self.policy.max_reply_bytes {
            // Ends the turn cleanly: the client sees the error, the upstream request is dropped.
            self.fail(ApiError {
                status: 502,
                kind: "api_error",
                message: format!(
                    "upstream reply exceeded the gateway's limit of {} bytes (CLAWGATE_MAX_REPLY_BYTES)",
                    self.policy.max_reply_bytes
                ),
            });
            return;
        }
        match e {
            UpstreamEvent::Text(t) => {
                self.result.text.push_str(&t);
                self.emit(TurnEvent::Text(t));
            }
            UpstreamEvent::ToolStart { index, id, name } => {
                let ours = self.result.tool_calls.len();
                if self.tool_index.len() <= index {
                    self.tool_index.resize(index + 1, usize::MAX);
                }
                self.tool_index[index] = ours;
                let id = if id.is_empty() { format!("call_{}{ours}", self.spec.id_seed) } else { id };
                self.result.tool_calls.push(ToolCall { id: id.clone(), name: name.clone(), arguments: String::new() });
                self.emit(TurnEvent::ToolCallStart { index: ours, id, name });
            }
            UpstreamEvent::ToolArgs { index, fragment } => {
                let Some(&ours) = self.tool_index.get(index).filter(|i| **i != usize::MAX) else { return };
                if let Some(c) = self.result.tool_calls.get_mut(ours) {
                    c.arguments.push_str(&fragment);
                }
                self.emit(TurnEvent::ToolCallArgs { index: ours, fragment });
            }
            UpstreamEvent::Finish(f) => self.result.finish_reason = f,
            UpstreamEvent::Usage { prompt, completion } => {
                self.result.prompt_tokens = prompt;
                self.result.completion_tokens = completion;
            }
            UpstreamEvent::Done => self.finish(),
            UpstreamEvent::Error(message) => {
                let e = ApiError { status: 502, kind: "api_error", message: format!("upstream provider error: {message}") };
                self.fail(e);
            }
        }
    }

    fn finish(&mut self) {
        if matches!(self.state, State::Done) {
            return;
        }
        if self.result.finish_reason.is_empty() {
            self.result.finish_reason = if self.result.tool_calls.is_empty() { "stop".into() } else { "tool_calls".into() };
        }
        self.out.push_back(TurnOutput::Cancel);
        self.state = State::Done;
        let r = std::mem::take(&mut self.result);
        self.out.push_back(TurnOutput::Event(TurnEvent::Finished(r)));
    }
}

/// The message of an upstream error body (`{"error":{"message"}}`, else the text, shortened).
fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        if let Some(m) = v.pointer("/error/message").or_else(|| v.get("message")).and_then(Value::as_str) {
            return m.chars().take(300).collect();
        }
    }
    text.trim().chars().take(300).collect()
}
