//! The scheduler (operator §6): given the jobs, their state and `now` (unix ms, the wall clock
//! the schedules are written in), it says which runs start, what to persist first and when to
//! wake next. It performs nothing: the shell persists each [`CronOutput::Persist`] before it
//! starts the [`CronOutput::Start`] that follows, so a run's job row (next fire moved on, the run
//! marked as running) is durable before the run begins — a crash can then neither fire a slot
//! twice nor lose a run silently (it is found at the next start and recorded as interrupted).
//!
//! Policies (documented in the README, "Cron"):
//! * catch-up: a fire missed while the gateway was down runs **once** after start (never once
//!   per missed slot), unless it is stale — older than the job's `staleAfterMs`, or any missed
//!   recurring fire when `cron.skipMissedJobs` is on — then it is recorded `skipped`;
//! * overlap: a fire due while the job's previous run is still going is recorded `skipped`
//!   (`overlap: "skip"`, the default) or held for one run right after (`"queue"`; one at most);
//! * errors: a recurring job that fails backs off (30 s, 1 min, 5 min, 15 min, 60 min) until it
//!   succeeds again;
//! * one-shot (`at`) jobs disable after their run, or are deleted (`deleteAfterRun`) when it
//!   succeeded.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Value, json};

use super::job::{Job, Overlap};

/// Back-off after 1, 2, 3, 4, 5+ consecutive errors of a recurring job.
pub const ERROR_BACKOFF_MS: [u64; 5] = [30_000, 60_000, 300_000, 900_000, 3_600_000];

/// The longest the shell sleeps while jobs are scheduled: a wall-clock jump (the system clock
/// set forward while the monotonic clock was not) is noticed within this long.
pub const WALL_CLOCK_RECHECK_MS: u64 = 600_000;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    Error,
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Skipped => "skipped",
        }
    }
}

/// What the shell learned from a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub status: RunStatus,
    pub error: Option<String>,
    /// The reply text (or what the run did).
    pub summary: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    /// `{input_tokens, output_tokens, total_tokens}`.
    pub usage: Option<Value>,
    pub session_id: Option<String>,
    pub session_key: Option<String>,
    /// `not-requested`, or `not-delivered` when the job asked for a channel (none is hosted).
    pub delivery_status: &'static str,
    /// The job named a destination (not just the CLI's fallback announce to `last`) without
    /// `bestEffort`: a run that could not deliver is not complete (`completionStatus: failed`).
    pub delivery_required: bool,
}

impl RunResult {
    pub fn failed(error: impl Into<String>) -> RunResult {
        RunResult {
            status: RunStatus::Error,
            error: Some(error.into()),
            summary: None,
            model: None,
            provider: None,
            usage: None,
            session_id: None,
            session_key: None,
            delivery_status: "not-requested",
            delivery_required: false,
        }
    }
}

/// A run to start.
#[derive(Debug, Clone)]
pub struct RunStart {
    /// The job as it was when the run started.
    pub job: Job,
    pub run_id: String,
    pub run_at_ms: u64,
}

/// A run history entry (`cron.runs` `entries[]`), in the reference's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub job_id: String,
    pub ts: u64,
    pub status: RunStatus,
    pub body: Value,
}

/// What the shell must do, in order.
#[derive(Debug, Clone)]
pub enum CronOutput {
    /// Write this job row (durably) before going on.
    Persist(Box<Job>),
    /// Delete this job's row (and its history and scratch).
    Delete(String),
    /// Delete this job's row but keep its run history (a one-shot done with `deleteAfterRun`).
    Retire(String),
    /// Start this run; report its end with [`Scheduler::handle_finished`].
    Start(Box<RunStart>),
    /// Append to the run history.
    Record(Box<RunRecord>),
    /// Broadcast a `cron` event with this payload (read scope).
    Event(Value),
    /// Broadcast a `heartbeat` event with this payload (it is also `last-heartbeat` now).
    Heartbeat(Value),
}

/// `cron.run` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Run now, whatever the schedule.
    Force,
    /// Run only if the job is due now.
    Due,
    /// Run now if the job is enabled.
    IfEnabled,
}

/// The job scheduler.
#[derive(Debug, Default)]
pub struct Scheduler {
    jobs: BTreeMap<String, Job>,
    /// `(next fire, id)` of every enabled job that is scheduled.
    due: BTreeSet<(u64, String)>,
    out: VecDeque<CronOutput>,
    manual_runs: u64,
    /// `cron.enabled`: scheduled fires happen (manual runs always do).
    paused: bool,
    skip_missed: bool,
    /// `set-heartbeats {enabled:false}`: due heartbeats are skipped.
    heartbeats_off: bool,
    /// The last `heartbeat` event (`last-heartbeat`).
    last_heartbeat: Option<Value>,
}

fn backoff(errors: u32) -> u64 {
    ERROR_BACKOFF_MS[(errors.max(1) as usize - 1).min(ERROR_BACKOFF_MS.len() - 1)]
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// `cron.enabled` (false: nothing fires on its own) and `cron.skipMissedJobs`.
    pub fn configure(&mut self, enabled: bool, skip_missed: bool) {
        self.paused = !enabled;
        self.skip_missed = skip_missed;
    }

    pub fn enabled(&self) -> bool {
        !self.paused
    }

    /// Take over the stored jobs at start-up (`now_ms`): a run that was in progress when the
    /// gateway stopped is recorded as interrupted (and not run again: its fire was consumed);
    /// a fire missed while the gateway was down is kept due (it runs once, at the next
    /// [`Scheduler::handle_timeout`]) or, when stale, recorded as skipped.
    pub fn load(&mut self, jobs: Vec<Job>, now_ms: u64) {
        self.jobs.clear();
        self.due.clear();
        for mut job in jobs {
            let mut changed = false;
            if let Some(started) = job.state.running_at_ms.take() {
                let run_id = job.state.running_run_id.take().unwrap_or_default();
                let result = RunResult::failed("interrupted: the gateway stopped before this run finished");
                self.settle(&mut job, &run_id, started, None, &result, now_ms);
                if job.schedule().is_some_and(|s| !s.is_recurring()) {
                    job.spec.insert("enabled".into(), json!(false));
                    job.state.next_run_at_ms = None;
                }
                changed = true;
            }
            if job.state.queued {
                job.state.queued = false;
                changed = true;
            }
            if let Some(next) = job.state.next_run_at_ms.filter(|n| *n <= now_ms && job.enabled()) {
                let recurring = job.schedule().is_some_and(|s| s.is_recurring());
                let stale = job.stale_after_ms().is_some_and(|w| now_ms - next > w) || (recurring && self.skip_missed);
                if stale {
                    let record = self.record_skip(&mut job, next, now_ms, "missed while the gateway was down");
                    job.state.next_run_at_ms = if recurring { job.next_after(now_ms) } else { None };
                    if !recurring {
                        job.spec.insert("enabled".into(), json!(false));
                    }
                    self.out.push_back(CronOutput::Record(Box::new(record)));
                    changed = true;
                }
            }
            if changed {
                self.out.push_back(CronOutput::Persist(Box::new(job.clone())));
            }
            self.index(&job);
            self.jobs.insert(job.id.clone(), job);
        }
    }

    /// Keep the job's next fire in the due index (also while it runs: a fire that comes due
    /// meanwhile meets the overlap policy).
    fn index(&mut self, job: &Job) {
        if let (true, Some(next)) = (job.enabled(), job.state.next_run_at_ms) {
            self.due.insert((next, job.id.clone()));
        }
    }

    fn unindex(&mut self, job: &Job) {
        if let Some(next) = job.state.next_run_at_ms {
            self.due.remove(&(next, job.id.clone()));
        }
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.get(id)
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values()
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The next scheduled fire (`cron.status` `nextWakeAtMs`).
    pub fn next_fire(&self) -> Option<u64> {
        if self.paused { None } else { self.due.first().map(|(t, _)| *t) }
    }

    /// When to call [`Scheduler::handle_timeout`] next: the next fire, but no later than
    /// [`WALL_CLOCK_RECHECK_MS`] from `now_ms` while any job is scheduled. `None`: nothing to
    /// wake for (no scheduled job) — the shell sleeps until a job changes.
    ///
    /// While paused (`cron.enabled: false`) with jobs scheduled, the shell still wakes every
    /// [`WALL_CLOCK_RECHECK_MS`] to notice the setting change.
    pub fn poll_timeout(&self, now_ms: u64) -> Option<u64> {
        let first = self.due.first().map(|(t, _)| *t)?;
        let recheck = now_ms.saturating_add(WALL_CLOCK_RECHECK_MS);
        Some(if self.paused { recheck } else { first.min(recheck) })
    }

    pub fn poll_output(&mut self) -> Option<CronOutput> {
        self.out.pop_front()
    }

    /// Every pending output, in order.
    pub fn drain_outputs(&mut self) -> Vec<CronOutput> {
        self.out.drain(..).collect()
    }

    /// Start every job whose fire is due at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.paused {
            return;
        }
        while let Some((at, id)) = self.due.first().cloned() {
            if at > now_ms {
                break;
            }
            self.due.pop_first();
            let Some(mut job) = self.jobs.remove(&id) else { continue };
            let run_id = format!("cron:{id}:{at}");
            self.start(&mut job, run_id, at, now_ms, false);
            self.jobs.insert(id, job);
        }
    }

    /// Start a run of `job` (queued after persisting it). A scheduled fire (`manual: false`)
    /// consumes `slot`: the job's next fire moves past `now_ms` (missed slots in between are not
    /// run — catch-up runs once); a manual run leaves the schedule as it is. The caller has taken
    /// the job's entry out of the due index; it is put back here.
    fn start(&mut self, job: &mut Job, run_id: String, slot: u64, now_ms: u64, manual: bool) {
        if !manual {
            let recurring = job.schedule().is_some_and(|s| s.is_recurring());
            job.state.next_run_at_ms = if recurring { job.next_after(now_ms.max(slot)) } else { None };
        }
        if job.state.running_at_ms.is_some() {
            match job.overlap() {
                Overlap::Skip => {
                    let record = self.record_skip(job, slot, now_ms, "the previous run is still in progress");
                    self.out.push_back(CronOutput::Record(Box::new(record)));
                }
                Overlap::Queue => job.state.queued = true,
            }
            self.out.push_back(CronOutput::Persist(Box::new(job.clone())));
            self.index(job);
            return;
        }
        job.state.running_at_ms = Some(now_ms);
        job.state.running_run_id = Some(run_id.clone());
        self.out.push_back(CronOutput::Persist(Box::new(job.clone())));
        self.out.push_back(CronOutput::Event(json!({"jobId": job.id, "action": "started", "job": job.event_json(), "runAtMs": now_ms})));
        self.out.push_back(CronOutput::Start(Box::new(RunStart { job: job.clone(), run_id, run_at_ms: now_ms })));
        self.index(job);
    }

    fn record_skip(&self, job: &mut Job, slot: u64, now_ms: u64, why: &str) -> RunRecord {
        job.state.consecutive_skipped += 1;
        let body = json!({
            "ts": now_ms, "jobId": job.id, "action": "finished", "status": "skipped", "completionStatus": "unknown",
            "error": why, "runId": format!("cron:{}:{slot}", job.id), "runAtMs": slot, "jobName": job.name(),
            "delivered": false, "deliveryStatus": "not-requested",
        });
        RunRecord { job_id: job.id.clone(), ts: now_ms, status: RunStatus::Skipped, body }
    }

    /// Fold a run's end into the job's state and history; the history entry's body.
    fn settle(&mut self, job: &mut Job, run_id: &str, started: u64, duration: Option<u64>, r: &RunResult, now_ms: u64) -> Value {
        let st = &mut job.state;
        st.last_run_at_ms = Some(started);
        st.last_run_status = Some(r.status.as_str().to_string());
        st.last_duration_ms = duration;
        st.last_error = r.error.clone();
        st.last_delivery_status = Some(r.delivery_status.to_string());
        match r.status {
            RunStatus::Ok => {
                st.consecutive_errors = 0;
                st.consecutive_skipped = 0;
            }
            RunStatus::Error => st.consecutive_errors += 1,
            RunStatus::Skipped => st.consecutive_skipped += 1,
        }
        let completion = match r.status {
            RunStatus::Ok if r.delivery_status == "not-delivered" && r.delivery_required => "failed",
            RunStatus::Ok => "succeeded",
            RunStatus::Error => "failed",
            RunStatus::Skipped => "unknown",
        };
        let mut body = json!({
            "ts": now_ms, "jobId": job.id, "action": "finished", "status": r.status.as_str(), "completionStatus": completion,
        });
        let o = body.as_object_mut().expect("object");
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                o.insert(k.to_string(), v);
            }
        };
        put("error", json!(r.error));
        put("summary", json!(r.summary));
        put("runId", json!(run_id));
        put("runAtMs", json!(started));
        put("durationMs", json!(duration));
        put("nextRunAtMs", json!(job.state.next_run_at_ms));
        put("model", json!(r.model));
        put("provider", json!(r.provider));
        put("usage", r.usage.clone().unwrap_or(Value::Null));
        put("delivered", json!(false));
        put("deliveryStatus", json!(r.delivery_status));
        put("sessionId", json!(r.session_id));
        put("sessionKey", json!(r.session_key));
        put("jobName", json!(job.name()));
        self.out.push_back(CronOutput::Record(Box::new(RunRecord {
            job_id: job.id.clone(),
            ts: now_ms,
            status: r.status,
            body: body.clone(),
        })));
        body
    }

    /// A run started by [`CronOutput::Start`] ended.
    pub fn handle_finished(&mut self, job_id: &str, run_id: &str, result: RunResult, now_ms: u64) {
        let Some(mut job) = self.jobs.remove(job_id) else { return };
        if job.state.running_run_id.as_deref() != Some(run_id) {
            self.jobs.insert(job_id.to_string(), job);
            return;
        }
        self.unindex(&job);
        let started = job.state.running_at_ms.take().unwrap_or(now_ms);
        job.state.running_run_id = None;
        let recurring = job.schedule().is_some_and(|s| s.is_recurring());
        if recurring && result.status == RunStatus::Error {
            // Back off: not before the delay for this many consecutive errors.
            let errors = job.state.consecutive_errors + 1;
            let earliest = now_ms.saturating_add(backoff(errors));
            job.state.next_run_at_ms = job.state.next_run_at_ms.map(|n| n.max(earliest));
        }
        let record_body = self.settle(&mut job, run_id, started, Some(now_ms.saturating_sub(started)), &result, now_ms);
        if !recurring {
            if result.status == RunStatus::Ok && job.delete_after_run() {
                self.out.push_back(CronOutput::Retire(job.id.clone()));
                self.out.push_back(CronOutput::Event(json!({"jobId": job.id, "action": "removed", "job": job.event_json()})));
                return;
            }
            job.spec.insert("enabled".into(), json!(false));
            job.state.next_run_at_ms = None;
        }
        self.out.push_back(CronOutput::Persist(Box::new(job.clone())));
        let mut event = json!({"jobId": job.id, "action": "finished", "job": job.event_json()});
        if let (Some(e), Value::Object(r)) = (event.as_object_mut(), record_body) {
            for (k, v) in r {
                if !matches!(k.as_str(), "ts" | "jobId" | "action" | "jobName") {
                    e.insert(k, v);
                }
            }
        }
        self.out.push_back(CronOutput::Event(event));
        if job.state.queued && job.enabled() {
            job.state.queued = false;
            let run_id = format!("cron:{}:{now_ms}:queued", job.id);
            self.start(&mut job, run_id, now_ms, now_ms, true);
        } else {
            job.state.queued = false;
            self.index(&job);
        }
        self.jobs.insert(job.id.clone(), job);
    }

    /// Add a new job (`cron.add`): scheduled from `now_ms`.
    pub fn add(&mut self, mut job: Job, now_ms: u64) -> Value {
        job.state.next_run_at_ms = if job.enabled() { self.first_fire(&job, now_ms) } else { None };
        self.out.push_back(CronOutput::Persist(Box::new(job.clone())));
        self.out.push_back(CronOutput::Event(
            json!({"jobId": job.id, "action": "added", "job": job.event_json(), "nextRunAtMs": job.state.next_run_at_ms}),
        ));
        let answer = job.full_json();
        self.index(&job);
        self.jobs.insert(job.id.clone(), job);
        answer
    }

    /// The first fire of a job being (re)scheduled: a one-shot that has not run fires at its
    /// time, even a past one (it runs at once); a recurring job at its next slot after now.
    fn first_fire(&self, job: &Job, now_ms: u64) -> Option<u64> {
        match job.schedule()? {
            super::schedule::Schedule::At { at_ms } => job.state.last_run_at_ms.is_none().then_some(*at_ms),
            _ => job.next_after(now_ms),
        }
    }

    /// Replace a job's definition (`cron.update`): `edit` changes the described fields (and
    /// recompiles the schedule); the job is rescheduled when its schedule or `enabled` changed.
    pub fn update(&mut self, mut job: Job, now_ms: u64) -> Option<Value> {
        let old = self.jobs.remove(&job.id)?;
        self.unindex(&old);
        job.updated_at_ms = now_ms;
        let rescheduled = old.spec.get("schedule") != job.spec.get("schedule") || old.enabled() != job.enabled();
        if rescheduled {
            job.state.schedule_activated_at_ms = Some(now_ms);
            job.state.next_run_at_ms = if job.enabled() { self.first_fire(&job, now_ms) } else { None };
        }
        self.out.push_back(CronOutput::Persist(Box::new(job.clone())));
        self.out.push_back(CronOutput::Event(json!({"jobId": job.id, "action": "updated", "job": job.event_json()})));
        let answer = job.full_json();
        self.index(&job);
        self.jobs.insert(job.id.clone(), job);
        Some(answer)
    }

    /// Remove a job (`cron.remove`). A run in progress finishes; its end is then ignored.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(job) = self.jobs.remove(id) else { return false };
        self.unindex(&job);
        self.out.push_back(CronOutput::Delete(id.to_string()));
        self.out.push_back(CronOutput::Event(json!({"jobId": id, "action": "removed", "job": job.event_json()})));
        true
    }

    /// `cron.run`: `Some(Ok(run id))` when a run was started, `Some(Err(reason))` when it was
    /// not; `None` for an unknown job.
    pub fn run_now(&mut self, id: &str, mode: RunMode, now_ms: u64) -> Option<Result<String, &'static str>> {
        let mut job = self.jobs.remove(id)?;
        let answer = if job.state.running_at_ms.is_some() {
            Err("already-running")
        } else {
            match mode {
                RunMode::Due if !job.enabled() || job.state.next_run_at_ms.is_none_or(|n| n > now_ms) => Err("not-due"),
                RunMode::IfEnabled if !job.enabled() => Err("disabled"),
                RunMode::Due => {
                    let slot = job.state.next_run_at_ms.unwrap_or(now_ms);
                    let run_id = format!("cron:{id}:{slot}");
                    self.unindex(&job);
                    self.start(&mut job, run_id.clone(), slot, now_ms, false);
                    Ok(run_id)
                }
                _ => {
                    self.manual_runs += 1;
                    let run_id = format!("manual:{id}:{now_ms}:{}", self.manual_runs);
                    self.unindex(&job);
                    self.start(&mut job, run_id.clone(), now_ms, now_ms, true);
                    Ok(run_id)
                }
            }
        };
        self.jobs.insert(id.to_string(), job);
        Some(answer)
    }

    /// `set-heartbeats`.
    pub fn set_heartbeats(&mut self, enabled: bool) {
        self.heartbeats_off = !enabled;
    }

    pub fn heartbeats_enabled(&self) -> bool {
        !self.heartbeats_off
    }

    /// The last `heartbeat` event, if any (`last-heartbeat`).
    pub fn last_heartbeat(&self) -> Option<&Value> {
        self.last_heartbeat.as_ref()
    }

    /// A heartbeat ended with this event: keep it and have the shell broadcast it.
    pub fn record_heartbeat(&mut self, event: Value) {
        self.last_heartbeat = Some(event.clone());
        self.out.push_back(CronOutput::Heartbeat(event));
    }

    /// Make the managed heartbeat jobs match the config: `desired` is `(agent, every ms)` of each
    /// agent with a heartbeat; `fresh_ids` names jobs that must be created (one per desired
    /// agent is enough). A changed cadence keeps its anchor; a removed heartbeat's job goes.
    pub fn sync_heartbeats(&mut self, desired: &[(String, u64)], mut fresh_ids: Vec<String>, now_ms: u64) {
        use super::heartbeat::{heartbeat_agent, job_spec};
        let existing: Vec<(String, String)> =
            self.jobs.values().filter_map(|j| heartbeat_agent(&j.spec).map(|a| (a.to_string(), j.id.clone()))).collect();
        for (agent, id) in &existing {
            match desired.iter().find(|(a, _)| a == agent) {
                None => {
                    self.remove(id);
                }
                Some((_, every)) => {
                    let Some(job) = self.jobs.get(id) else { continue };
                    if job.spec.get("schedule").and_then(|s| s.get("everyMs")).and_then(Value::as_u64) != Some(*every) {
                        let mut job = job.clone();
                        let anchor = job.spec.get("schedule").and_then(|s| s.get("anchorMs")).and_then(Value::as_u64).unwrap_or(now_ms);
                        job.spec.insert("schedule".into(), json!({"kind": "every", "everyMs": every, "anchorMs": anchor}));
                        if job.compile(&super::Zones::utc_only()).is_ok() {
                            self.update(job, now_ms);
                        }
                    }
                }
            }
        }
        for (agent, every) in desired {
            if existing.iter().any(|(a, _)| a == agent) {
                continue;
            }
            let Some(id) = fresh_ids.pop() else { return };
            if let Ok(job) = Job::new(id, job_spec(agent, *every, now_ms), now_ms, &super::Zones::utc_only()) {
                self.add(job, now_ms);
            }
        }
    }

    /// Replace the job's scratch (`cron.scratch.set`): `Err(current revision)` on a revision
    /// mismatch.
    pub fn set_scratch(&mut self, id: &str, content: Option<String>, expected: Option<u64>, now_ms: u64) -> Option<Result<Value, u64>> {
        let job = self.jobs.get_mut(id)?;
        let current = job.scratch.as_ref().map_or(0, |s| s.revision);
        if expected.is_some_and(|e| e != current) {
            return Some(Err(current));
        }
        job.scratch = Some(super::job::Scratch { content, revision: current + 1, updated_at_ms: now_ms });
        self.out.push_back(CronOutput::Persist(Box::new(job.clone())));
        Some(Ok(job.scratch_json()))
    }
}
