//! The run registry: running and finished runs by id (idempotency, spec §10.3), their stop
//! handles, `agent.wait` waiters, and the per-run `seq` of `agent` events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{IDEMPOTENCY_MAX, IDEMPOTENCY_TTL, RunSpec, same_session};
use crate::wire::Reply;

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
    /// The provider and model the run reached (lifecycle `model`), for its diagnostics.
    pub model: (Option<String>, Option<String>),
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
    /// Runs executing now.
    pub(crate) fn running(&self) -> usize {
        self.runs.values().filter(|r| matches!(r.state, RunState::Running { .. })).count()
    }

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
                model: (None, None),
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
