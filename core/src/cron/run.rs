//! What a started cron run executes (operator §6.1 `sessionTarget` × `payload`): an agent turn
//! on clawgate's ordinary agent runs, in the session the job names, and how the run's end
//! becomes a history entry.

use serde_json::{Value, json};

use super::scheduler::{RunResult, RunStart, RunStatus};
use crate::agent::{Outcome, RunSpec};
use crate::config::api::Agents;

/// The scheduler's watchdog for a run whose job sets no `timeoutSeconds` (the reference's 60
/// minutes for isolated agent turns).
pub const DEFAULT_RUN_TIMEOUT_MS: u64 = 3_600_000;

/// A cron run as an agent run.
#[derive(Debug, Clone, PartialEq)]
pub struct CronRun {
    pub spec: RunSpec,
    /// Stop the run after this long.
    pub timeout_ms: u64,
    /// `not-requested`, or `not-delivered` when the job asked for channel delivery (clawgate
    /// hosts no channel: the reply stays in the session).
    pub delivery_status: &'static str,
}

/// Plan the agent run of `start`. `session_uuid` names a fresh session (isolated jobs get one
/// per run: `agent:<agent>:cron:<jobId>:run:<uuid>`).
pub fn plan_run(start: &RunStart, agents: &Agents, session_uuid: String) -> CronRun {
    let job = &start.job;
    let agent_id =
        job.agent_id().map(|a| a.trim().to_ascii_lowercase()).filter(|a| agents.ids.contains(a)).unwrap_or_else(|| agents.default_agent());
    let payload = job.payload();
    let text = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let main = crate::sessions::agent_main_session_key(&agent_id);
    let scoped = |key: &str| if key.starts_with("agent:") { key.to_string() } else { format!("agent:{agent_id}:{key}") };
    let (session_key, session_id) = match job.session_target() {
        "isolated" => (format!("agent:{agent_id}:cron:{}:run:{session_uuid}", job.id), session_uuid.clone()),
        "current" => (job.spec.get("sessionKey").and_then(Value::as_str).map_or(main, scoped), session_uuid.clone()),
        t if t.starts_with("session:") => (scoped(&t["session:".len()..]), session_uuid.clone()),
        _ => (main, session_uuid.clone()),
    };
    let message = match payload.get("kind").and_then(Value::as_str) {
        // A system event reaches the main session as a turn of its own (no heartbeat queue).
        Some("systemEvent") => format!("System: {}", text("text")),
        _ => text("message"),
    };
    let timeout_ms = payload
        .get("timeoutSeconds")
        .and_then(Value::as_f64)
        .filter(|s| *s > 0.0)
        .map_or(DEFAULT_RUN_TIMEOUT_MS, |s| (s * 1000.0).min(u64::MAX as f64) as u64);
    let wants_channel = job.spec.get("delivery").and_then(|d| d.get("mode")).and_then(Value::as_str).is_some_and(|m| m != "none");
    CronRun {
        spec: RunSpec {
            run_id: start.run_id.clone(),
            agent_id,
            session_key,
            session_id,
            message,
            model: payload.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()).map(str::to_string),
        },
        timeout_ms,
        delivery_status: if wants_channel { "not-delivered" } else { "not-requested" },
    }
}

/// The history entry's facts from how the agent run ended (`None`: it never reported).
pub fn run_result(plan: &CronRun, outcome: Option<&Outcome>, timed_out: bool) -> RunResult {
    let mut r = RunResult::failed("the run ended without a result");
    r.session_key = Some(plan.spec.session_key.clone());
    r.session_id = Some(plan.spec.session_id.clone());
    r.delivery_status = plan.delivery_status;
    match outcome {
        Some(Outcome::Ok { text, meta }) => {
            r.status = RunStatus::Ok;
            r.error = (plan.delivery_status == "not-delivered")
                .then(|| "channel delivery is not available: clawgate hosts no channels (the reply is in the job's session)".to_string());
            r.summary = Some(text.clone());
            let m = &meta["agentMeta"];
            r.provider = m["provider"].as_str().map(str::to_string);
            r.model = m["model"].as_str().map(str::to_string);
            let u = &m["usage"];
            if let (Some(i), Some(o)) = (u["input"].as_u64(), u["output"].as_u64()) {
                r.usage = Some(json!({"input_tokens": i, "output_tokens": o, "total_tokens": i + o}));
            }
        }
        Some(Outcome::Err { message }) => r.error = Some(message.clone()),
        Some(Outcome::Aborted { text }) => {
            let why = if timed_out { format!("timed out after {} ms", plan.timeout_ms) } else { "aborted".to_string() };
            r.error = Some(why);
            r.summary = (!text.is_empty()).then(|| text.clone());
        }
        None => {}
    }
    r
}
