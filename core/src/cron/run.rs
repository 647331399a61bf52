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
    /// See [`RunResult::delivery_required`].
    pub delivery_required: bool,
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
    let delivery = job.spec.get("delivery");
    let field = |k: &str| delivery.and_then(|d| d.get(k)).and_then(Value::as_str);
    let wants_channel = field("mode").is_some_and(|m| m != "none");
    // `openclaw cron add` asks every isolated agent turn for a fallback announce to the last
    // chat (`channel: "last"`, no `to`): with no chat at all there is nothing it was meant for.
    let explicit = field("mode") == Some("webhook") || field("to").is_some() || field("channel").is_some_and(|c| c != "last");
    let best_effort = delivery.and_then(|d| d.get("bestEffort")).and_then(Value::as_bool).unwrap_or(false);
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
        delivery_required: wants_channel && explicit && !best_effort,
    }
}

/// The history entry's facts from how the agent run ended (`None`: it never reported).
pub fn run_result(plan: &CronRun, outcome: Option<&Outcome>, timed_out: bool) -> RunResult {
    let mut r = RunResult::failed("the run ended without a result");
    r.session_key = Some(plan.spec.session_key.clone());
    r.session_id = Some(plan.spec.session_id.clone());
    r.delivery_status = plan.delivery_status;
    r.delivery_required = plan.delivery_required;
    match outcome {
        Some(Outcome::Ok { text, meta }) => {
            r.status = RunStatus::Ok;
            r.error = plan
                .delivery_required
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::{Job, Zones};

    fn plan_for(delivery: Option<Value>) -> CronRun {
        let mut spec = json!({"name": "n", "schedule": {"kind": "every", "everyMs": 1000}, "sessionTarget": "isolated",
            "payload": {"kind": "agentTurn", "message": "hi", "timeoutSeconds": 5}});
        if let Some(d) = delivery {
            spec["delivery"] = d;
        }
        let job = Job::new("j".into(), spec.as_object().cloned().unwrap_or_default(), 0, &Zones::utc_only()).unwrap();
        let start = RunStart { job, run_id: "r".into(), run_at_ms: 0 };
        let agents = Agents { ids: vec!["main".into()], default: Some("main".into()) };
        plan_run(&start, &agents, "u".into())
    }

    #[test]
    fn sessions_timeouts_and_what_delivery_means_without_channels() {
        let none = plan_for(None);
        assert_eq!((none.spec.session_key.as_str(), none.timeout_ms), ("agent:main:cron:j:run:u", 5_000));
        assert_eq!((none.delivery_status, none.delivery_required), ("not-requested", false));
        // The CLI's default fallback announce: nothing delivered, but the run is complete.
        let fallback = plan_for(Some(json!({"mode": "announce", "channel": "last"})));
        assert_eq!((fallback.delivery_status, fallback.delivery_required), ("not-delivered", false));
        let explicit = plan_for(Some(json!({"mode": "announce", "channel": "telegram", "to": "123"})));
        assert_eq!((explicit.delivery_status, explicit.delivery_required), ("not-delivered", true));
        let best_effort = plan_for(Some(json!({"mode": "webhook", "to": "http://x", "bestEffort": true})));
        assert!(!best_effort.delivery_required);
        let ok = Outcome::Ok {
            text: "done".into(),
            meta: json!({"agentMeta": {"provider": "p", "model": "m", "usage": {"input": 2, "output": 3}}}),
        };
        let r = run_result(&explicit, Some(&ok), false);
        assert_eq!((r.status, r.usage.clone()), (RunStatus::Ok, Some(json!({"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}))));
        assert!(r.error.unwrap().contains("hosts no channels"));
        assert_eq!(run_result(&fallback, Some(&ok), false).error, None);
    }
}
