//! One agent run from its `accepted` answer to its final (spec protocol §10.2), as a sans-IO
//! machine shaped like [`crate::openai::turn::Turn`]: it takes the session's history, store
//! completions and turn events, and emits [`RunAction`]s. The order of everything a run does is
//! decided here once (control-ui §5.1):
//!
//! 1. read the session's history (`LoadHistory`);
//! 2. keep the user turn (`Store`), then `sessions.changed` (`running`) and `session.message`
//!    for it — the UI reconciles with `chat.history` while the run goes on;
//! 3. lifecycle `start`, lifecycle `model`, then the upstream turn (`StartTurn`): each text
//!    delta is an `agent` assistant event and a `chat` delta;
//! 4. `usage` (only when the model reported tokens), keep the reply (`Store`, a second
//!    transaction with the run's status and usage), `session.message` for it;
//! 5. the final (lifecycle end, `chat` final, the caller's answer, `agent.wait` answers);
//! 6. `sessions.changed` (`done`, failed or killed) with the row as stored (`ReadSession`).
//!
//! Without a usable provider the run fails at once (lifecycle `model` without one, then the
//! final error), as the reference. The shell performs the IO actions; notices go to the hub
//! through `crate::methods::run_notice`.

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::Value;

use super::{Outcome, Plan, RunSpec, TurnEnd, plan, run_end, unsaved_reply, user_turn};
use crate::config::settings::GatewaySettings;
use crate::openai::ApiError;
use crate::openai::turn::{Turn, TurnEvent, TurnPolicy, TurnResult};
use crate::sessions::{SessionMeta, SessionSummary, Stored, TranscriptEntry};

/// What the shell must do for a run.
#[derive(Debug)]
pub enum RunAction {
    /// Read the session's stored conversation as upstream messages; answer with
    /// [`RunMachine::handle_history`].
    LoadHistory { session_key: String },
    /// Append `entries` to the session in one transaction; answer with
    /// [`RunMachine::handle_stored`].
    Store { meta: SessionMeta, entries: Vec<TranscriptEntry> },
    /// Drive this upstream turn: feed its events to [`RunMachine::handle_turn_event`] (perform
    /// the notices they produce as they come) and its end to [`RunMachine::handle_turn_end`].
    StartTurn(Box<Turn>),
    /// Read the session's row as stored; answer with [`RunMachine::handle_session`].
    ReadSession { session_key: String },
    /// Tell the hub (events, broadcasts, the final answer).
    Notify(RunNotice),
}

/// What the hub is told about a run, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum RunNotice {
    /// `sessions.changed` for the session's row (`running` at the start, `done`/failed/killed at
    /// the end) to `sessions.subscribe`rs.
    SessionsChanged { change: RunChange, session: Option<SessionSummary> },
    /// `session.message` for each stored entry, to the session's message subscribers.
    Messages { entries: Vec<TranscriptEntry>, session: Option<SessionSummary> },
    /// Lifecycle `start`.
    Started,
    /// Lifecycle `model` (none: no usable provider).
    Model { provider: Option<String>, model: Option<String> },
    /// Streamed assistant text.
    Delta(String),
    /// The model's output token count.
    Usage { output_tokens: u64 },
    /// The run ended.
    Finish(Outcome),
}

/// Which edge of a run a `sessions.changed` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunChange {
    Start,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    LoadingHistory,
    StoringUserTurn,
    Turning,
    StoringReply,
    ReadingSession,
    Done,
}

/// One executing run (see the module docs for its order).
#[derive(Debug)]
pub struct RunMachine {
    run: RunSpec,
    phase: Phase,
    out: VecDeque<RunAction>,
    /// OS randomness from the shell: the upstream request ids and the transcript's session id.
    seed: [u8; 21],
    meta: Option<SessionMeta>,
    turn: Option<Box<Turn>>,
    model: Option<(String, String)>,
    started: Option<(Instant, u64)>,
    partial: String,
    result: Option<Result<TurnResult, ApiError>>,
    outcome: Option<Outcome>,
}

impl RunMachine {
    /// A run about to execute; `seed` is fresh OS randomness (the transcript's session id must be
    /// unpredictable).
    pub fn new(run: RunSpec, seed: [u8; 21]) -> Self {
        let mut out = VecDeque::new();
        out.push_back(RunAction::LoadHistory { session_key: run.session_key.clone() });
        RunMachine {
            run,
            phase: Phase::LoadingHistory,
            out,
            seed,
            meta: None,
            turn: None,
            model: None,
            started: None,
            partial: String::new(),
            result: None,
            outcome: None,
        }
    }

    /// A run that cannot execute (no OS randomness): it fails at once with `message`.
    pub fn refused(run: RunSpec, message: String) -> Self {
        let mut m = RunMachine::new(run, [0; 21]);
        m.out.clear();
        m.fail_at_once(message);
        m
    }

    pub fn run(&self) -> &RunSpec {
        &self.run
    }

    /// The next thing to do; `None` while the machine waits for an answer, and once it is done.
    pub fn poll_action(&mut self) -> Option<RunAction> {
        self.out.pop_front()
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.out.is_empty()
    }

    fn notify(&mut self, n: RunNotice) {
        self.out.push_back(RunAction::Notify(n));
    }

    fn fail_at_once(&mut self, message: String) {
        self.notify(RunNotice::Model { provider: None, model: None });
        self.notify(RunNotice::Finish(Outcome::Err { message }));
        self.phase = Phase::Done;
    }

    /// The session's stored settings (read with its history): a model override set with
    /// `sessions.patch` applies when the request named no model of its own.
    /// An archived session takes no new runs until it is restored (operator §5).
    pub fn handle_session_settings(&mut self, session_settings: Option<&Value>) {
        if self.phase != Phase::LoadingHistory {
            return;
        }
        if session_settings.and_then(|s| s.get("archivedAt")).is_some_and(|t| !t.is_null()) {
            let key = self.run.session_key.clone();
            return self.fail_at_once(format!("Session \"{key}\" is archived. Restore it before starting new work."));
        }
        if self.run.model.is_some() {
            return;
        }
        if let Some(m) = session_settings.and_then(|s| s.get("modelOverride")).and_then(Value::as_str) {
            self.run.model = Some(m.to_string());
        }
    }

    /// The session's history (OpenAI chat messages) and the settings the run starts with.
    pub fn handle_history(&mut self, settings: &GatewaySettings, history: Vec<Value>, now: Instant, unix_ms: u64) {
        if self.phase != Phase::LoadingHistory {
            return;
        }
        let id_seed = crate::ids::hex(&self.seed[..5]);
        match plan(settings, &self.run, history, id_seed) {
            Plan::NoProvider { message } => self.fail_at_once(message),
            Plan::Turn { spec, provider, model } => {
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(&self.seed[5..21]);
                let (meta, user) = user_turn(&self.run, &provider, &model, crate::ids::uuid_v4(uuid), unix_ms);
                self.turn = Some(Box::new(Turn::new(*spec, TurnPolicy::for_limits(&settings.limits), now)));
                self.model = Some((provider, model));
                self.meta = Some(meta.clone());
                self.out.push_back(RunAction::Store { meta, entries: vec![user] });
                self.phase = Phase::StoringUserTurn;
            }
        }
    }

    /// A [`RunAction::Store`] completed: the entries as stored (with `seq` and id) and the row,
    /// or why they could not be kept (the run goes on; nothing is announced as stored).
    pub fn handle_stored(&mut self, stored: Result<Stored, String>, now: Instant, unix_ms: u64) {
        match self.phase {
            Phase::StoringUserTurn => {
                let (entries, session) = split(stored.ok());
                self.notify(RunNotice::SessionsChanged { change: RunChange::Start, session: session.clone() });
                if let Some(entries) = entries {
                    self.notify(RunNotice::Messages { entries, session });
                }
                self.started = Some((now, unix_ms));
                self.notify(RunNotice::Started);
                let (provider, model) = self.model.clone().unwrap_or_default();
                self.notify(RunNotice::Model { provider: Some(provider), model: Some(model) });
                if let Some(turn) = self.turn.take() {
                    self.out.push_back(RunAction::StartTurn(turn));
                }
                self.phase = Phase::Turning;
            }
            Phase::StoringReply => {
                let outcome = self.outcome.take().unwrap_or(Outcome::Err { message: "the run ended without a result".into() });
                let outcome = unsaved_reply(outcome, stored.as_ref().map(|_| ()).map_err(String::as_str));
                let (entries, session) = split(stored.ok());
                if let Some(entries) = entries {
                    self.notify(RunNotice::Messages { entries, session });
                }
                self.notify(RunNotice::Finish(outcome));
                self.out.push_back(RunAction::ReadSession { session_key: self.run.session_key.clone() });
                self.phase = Phase::ReadingSession;
            }
            _ => {}
        }
    }

    /// One event of the upstream turn.
    pub fn handle_turn_event(&mut self, event: TurnEvent) {
        if self.phase != Phase::Turning {
            return;
        }
        match event {
            TurnEvent::Text(t) => {
                self.partial.push_str(&t);
                self.notify(RunNotice::Delta(t));
            }
            TurnEvent::Finished(r) => self.result = Some(Ok(r)),
            TurnEvent::Failed(e) => self.result = Some(Err(e)),
            TurnEvent::ToolCallStart { .. } | TurnEvent::ToolCallArgs { .. } => {}
        }
    }

    /// The upstream turn is over; `stopped`: it was stopped (`chat.abort`, a session kill).
    pub fn handle_turn_end(&mut self, stopped: bool, now: Instant, unix_ms: u64) {
        if self.phase != Phase::Turning {
            return;
        }
        if let Some(Ok(r)) = &self.result {
            // The reference sends no `usage` for a turn that produced no tokens.
            if r.completion_tokens > 0 {
                self.notify(RunNotice::Usage { output_tokens: r.completion_tokens });
            }
        }
        let end = match &self.result {
            None if stopped => TurnEnd::Aborted { partial: &self.partial },
            Some(Ok(r)) => TurnEnd::Finished(r),
            Some(Err(e)) => TurnEnd::Failed(e),
            None => TurnEnd::NoResult,
        };
        let (started_at, started_ms) = self.started.unwrap_or((now, unix_ms));
        let meta = self
            .meta
            .take()
            .unwrap_or_else(|| SessionMeta::new(self.run.session_key.clone(), self.run.agent_id.clone(), String::new(), unix_ms));
        let duration = now.saturating_duration_since(started_at).as_millis() as u64;
        let (outcome, meta, entries) = run_end(&self.run, meta, end, started_ms, duration, unix_ms);
        self.outcome = Some(outcome);
        self.out.push_back(RunAction::Store { meta, entries });
        self.phase = Phase::StoringReply;
    }

    /// The session's row after the run (none: the store has no such session or is unavailable).
    pub fn handle_session(&mut self, session: Option<SessionSummary>) {
        if self.phase != Phase::ReadingSession {
            return;
        }
        self.notify(RunNotice::SessionsChanged { change: RunChange::End, session });
        self.phase = Phase::Done;
    }
}

fn split(stored: Option<Stored>) -> (Option<Vec<TranscriptEntry>>, Option<SessionSummary>) {
    match stored {
        Some(s) => (Some(s.entries), s.session),
        None => (None, None),
    }
}
