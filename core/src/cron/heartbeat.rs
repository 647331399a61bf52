//! Heartbeats (operator §4, `agents.*.heartbeat`): a periodic agent turn per configured agent,
//! scheduled as a managed cron job (`declarationKey: "heartbeat:<agent>"`, payload
//! `{kind:"heartbeat"}`, listed by `cron.list` as the reference lists its own), and the
//! `heartbeat` event each one ends with (`last-heartbeat` answers the last one).
//!
//! clawgate hosts no channel, so only `target: "none"` (internal-only) heartbeats run a turn; any
//! other target has no delivery route and is skipped before the model is asked (`no-route`), as
//! the reference skips an ambient poll without a route.

use serde_json::{Map, Value, json};

use super::run::CronRun;
use super::scheduler::{RunResult, RunStart, RunStatus};
use crate::agent::{Outcome, RunSpec};
use crate::config::api::{ApiConfig, HeartbeatConfig};

/// The reference's default heartbeat prompt (sent verbatim as the turn's user message).
pub const DEFAULT_PROMPT: &str = "Follow the heartbeat monitor scratch context when provided. Recurring tasks are automations; create or change their schedules with the automations tool, not heartbeat scratch. Do not infer or repeat old tasks from prior chats. If nothing needs attention, reply NO_REPLY.";
/// The reference's `message` for its two no-delivery skips.
pub const TARGET_NONE_MESSAGE: &str = "Heartbeat delivery is disabled by configuration (target: none).";
pub const NO_ROUTE_MESSAGE: &str = "Heartbeat has no delivery route yet. Message your bot once, or set agents.defaults.heartbeat.target.";
/// A reply that is only an acknowledgement token and at most this much else is an ack.
const ACK_MAX_CHARS: usize = 300;
/// Longest `preview` in a heartbeat event.
const PREVIEW_CHARS: usize = 200;

/// The managed job's described fields for `agent`'s heartbeat every `every_ms`.
pub fn job_spec(agent: &str, every_ms: u64, anchor_ms: u64) -> Map<String, Value> {
    let v = json!({
        "name": format!("heartbeat-{agent}"), "declarationKey": format!("heartbeat:{agent}"),
        "displayName": format!("Heartbeat ({agent})"), "agentId": agent, "enabled": true,
        "schedule": {"kind": "every", "everyMs": every_ms, "anchorMs": anchor_ms},
        "sessionTarget": "main", "wakeMode": "next-heartbeat", "payload": {"kind": "heartbeat"},
    });
    v.as_object().cloned().unwrap_or_default()
}

/// The agent a managed heartbeat job belongs to.
pub fn heartbeat_agent(spec: &Map<String, Value>) -> Option<&str> {
    spec.get("declarationKey").and_then(Value::as_str).and_then(|k| k.strip_prefix("heartbeat:"))
}

/// What a due heartbeat does.
#[derive(Debug, Clone, PartialEq)]
pub enum HeartbeatPlan {
    /// Skip it (no turn): the run's history entry and the `heartbeat` event.
    Skip {
        result: RunResult,
        event: Value,
    },
    Run(CronRun),
}

fn skip(reason: &str, message: Option<&str>, now_ms: u64) -> HeartbeatPlan {
    let mut event = json!({"ts": now_ms, "status": "skipped", "reason": reason, "durationMs": 0});
    if let Some(m) = message {
        event["message"] = json!(m);
    }
    let mut result = RunResult::failed(message.map_or_else(|| reason.to_string(), |m| format!("{reason}: {m}")));
    result.status = RunStatus::Skipped;
    HeartbeatPlan::Skip { result, event }
}

/// Whether `minute` (of the local day) is inside `[start, end)` (a window may wrap midnight).
fn in_window(minute: u32, start: u32, end: u32) -> bool {
    if start <= end { minute >= start && minute < end } else { minute >= start || minute < end }
}

/// Plan a due heartbeat of `start.job`. `enabled` is `set-heartbeats`; `local_minute` tells the
/// minute of the day in a zone (the shell resolves zones; `None`: unknown zone, treated as
/// inside the window).
pub fn plan(
    start: &RunStart,
    api: &ApiConfig,
    enabled: bool,
    now_ms: u64,
    session_uuid: String,
    local_minute: &dyn Fn(Option<&str>) -> Option<u32>,
) -> HeartbeatPlan {
    let Some(agent) = heartbeat_agent(&start.job.spec) else { return skip("disabled", None, now_ms) };
    let Some(hb) = api.heartbeats.get(agent) else { return skip("disabled", None, now_ms) };
    if !enabled {
        return skip("disabled", None, now_ms);
    }
    if let Some((from, to, zone)) = &hb.active_hours
        && local_minute(zone.as_deref()).is_some_and(|m| !in_window(m, *from, *to))
    {
        return skip("quiet-hours", None, now_ms);
    }
    if hb.target != "none" {
        return skip("no-route", Some(NO_ROUTE_MESSAGE), now_ms);
    }
    HeartbeatPlan::Run(run_for(agent, hb, start, session_uuid))
}

fn run_for(agent: &str, hb: &HeartbeatConfig, start: &RunStart, session_uuid: String) -> CronRun {
    let session_key = match &hb.session {
        Some(s) if s.starts_with("agent:") => s.clone(),
        Some(s) => format!("agent:{agent}:{s}"),
        None => crate::sessions::agent_main_session_key(agent),
    };
    // Unset: the cadence, capped at 10 minutes (the reference's rule).
    let timeout_ms = hb.timeout_seconds.map_or(hb.every_ms.min(600_000), |s| s.saturating_mul(1000));
    CronRun {
        spec: RunSpec {
            run_id: start.run_id.clone(),
            agent_id: agent.to_string(),
            session_key,
            session_id: session_uuid,
            message: hb.prompt.clone().unwrap_or_else(|| DEFAULT_PROMPT.to_string()),
            model: hb.model.clone(),
        },
        timeout_ms,
        delivery_status: "not-requested",
        delivery_required: false,
    }
}

/// The reply without a leading or trailing acknowledgement token, and whether there was one.
fn strip_ack(text: &str) -> (String, bool) {
    let mut t = text.trim().to_string();
    let mut acked = false;
    for token in ["HEARTBEAT_OK", "NO_REPLY"] {
        if let Some(rest) = t.strip_prefix(token) {
            t = rest.trim().to_string();
            acked = true;
        }
        if let Some(rest) = t.strip_suffix(token) {
            t = rest.trim().to_string();
            acked = true;
        }
    }
    (t, acked)
}

/// How a heartbeat turn ended: its history entry and its `heartbeat` event (`ok-empty` for no
/// reply, `ok-token` for an acknowledgement, `skipped`/`target-none` for a reply with content —
/// it stays in the session, nothing is delivered — and `failed`).
pub fn outcome(plan: &CronRun, ended: Option<&Outcome>, duration_ms: u64, now_ms: u64) -> (RunResult, Value) {
    let mut result = super::run::run_result(plan, ended, false);
    let mut event = json!({"ts": now_ms, "durationMs": duration_ms});
    match ended {
        Some(Outcome::Ok { text, .. }) => {
            let (rest, acked) = strip_ack(text);
            if rest.is_empty() && !acked {
                event["status"] = json!("ok-empty");
            } else if acked && rest.chars().count() <= ACK_MAX_CHARS {
                event["status"] = json!("ok-token");
            } else {
                event["status"] = json!("skipped");
                event["reason"] = json!("target-none");
                event["message"] = json!(TARGET_NONE_MESSAGE);
                event["preview"] = json!(rest.chars().take(PREVIEW_CHARS).collect::<String>());
            }
        }
        _ => {
            event["status"] = json!("failed");
            event["reason"] = json!(result.error.clone().unwrap_or_else(|| "agent-runner-failure".into()));
            result.status = RunStatus::Error;
        }
    }
    (result, event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(text: Option<&str>) -> Value {
        let run = CronRun {
            spec: RunSpec {
                run_id: "r".into(),
                agent_id: "main".into(),
                session_key: "agent:main:main".into(),
                session_id: "s".into(),
                message: "m".into(),
                model: None,
            },
            timeout_ms: 1,
            delivery_status: "not-requested",
            delivery_required: false,
        };
        let ended = text.map(|t| Outcome::Ok { text: t.to_string(), meta: json!({}) });
        outcome(&run, ended.as_ref(), 5, 9).1
    }

    #[test]
    fn replies_become_the_reference_statuses() {
        assert_eq!(plan_of(Some("HEARTBEAT_OK"))["status"], "ok-token");
        assert_eq!(plan_of(Some("  "))["status"], "ok-empty");
        let content = plan_of(Some("Disk almost full"));
        assert_eq!((content["status"].clone(), content["reason"].clone()), (json!("skipped"), json!("target-none")));
        assert_eq!(content["preview"], "Disk almost full");
        assert_eq!(plan_of(None)["status"], "failed");
    }

    #[test]
    fn acknowledgements_and_windows() {
        assert_eq!(strip_ack("HEARTBEAT_OK"), (String::new(), true));
        assert_eq!(strip_ack("All quiet. NO_REPLY"), ("All quiet.".to_string(), true));
        assert_eq!(strip_ack("Your build broke"), ("Your build broke".to_string(), false));
        assert!(in_window(9 * 60, 8 * 60, 1440) && !in_window(7 * 60, 8 * 60, 1440));
        assert!(in_window(23 * 60, 22 * 60, 6 * 60) && in_window(60, 22 * 60, 6 * 60) && !in_window(12 * 60, 22 * 60, 6 * 60));
    }
}
