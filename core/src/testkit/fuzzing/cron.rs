//! The `cron` target.

use serde_json::{Value, json};

use crate::config::api::ApiConfig;
use crate::cron::{CronOutput, Job, RunResult, RunStatus, Scheduler, Zones};
use crate::methods::cron::{CronCall, CronEnv, parse};

/// Perform a scheduler's outputs as a shell would (runs end at once, alternately ok and
/// failed), checking that a run starts only after its job row was persisted as running.
fn settle(s: &mut Scheduler, now: u64) {
    let mut persisted_running: Vec<(String, String)> = Vec::new();
    for _ in 0..64 {
        let Some(o) = s.poll_output() else { return };
        match o {
            CronOutput::Persist(j) => {
                if let Some(r) = &j.state.running_run_id {
                    persisted_running.push((j.id.clone(), r.clone()));
                }
            }
            CronOutput::Start(r) => {
                assert!(persisted_running.contains(&(r.job.id.clone(), r.run_id.clone())), "a run started before its row was persisted");
                let status = if r.run_id.len() % 2 == 0 { RunStatus::Ok } else { RunStatus::Error };
                s.handle_finished(&r.job.id, &r.run_id, RunResult { status, ..RunResult::failed("fuzz") }, now);
            }
            CronOutput::Delete(_) | CronOutput::Retire(_) | CronOutput::Record(_) | CronOutput::Event(_) | CronOutput::Heartbeat(_) => {}
        }
    }
}

/// `cron.*` params and a stored job row from the network and the store file. Input: byte 0
/// picks the method, byte 1 the time offset; then the params (JSON text) up to a NUL, then a
/// job row (JSON text). Checks: no panic; every `next_after(t)` is after `t`; a run starts only
/// after its row is persisted; the scheduler's deadline is never in the past once it has fired
/// what was due.
pub fn cron(data: &[u8]) {
    let methods: Vec<&str> = crate::methods::ADVERTISED_METHODS.iter().copied().filter(|m| m.starts_with("cron.")).collect();
    let method = methods[data.first().copied().unwrap_or(0) as usize % methods.len()];
    let now = 1_796_637_600_000 + u64::from(data.get(1).copied().unwrap_or(0)) * 3_600_000;
    let rest = data.get(2..).unwrap_or_default();
    let (params, row) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let zones = Zones::utc_only();
    let api = ApiConfig::default();
    let mut s = Scheduler::new();
    let seeded = json!({"name": "seed", "schedule": {"kind": "every", "everyMs": 60_000}, "sessionTarget": "isolated",
        "wakeMode": "now", "payload": {"kind": "agentTurn", "message": "hi"}});
    if let Ok(job) = Job::new("j".into(), seeded.as_object().cloned().unwrap_or_default(), now, &zones) {
        s.add(job, now);
    }
    if let Ok(row) = serde_json::from_slice::<Job>(row) {
        let mut row = row;
        if row.compile(&zones).is_ok() {
            for t in [0, now, u64::MAX / 2, u64::MAX] {
                if let Some(n) = row.next_after(t) {
                    assert!(n > t, "next_after({t}) = {n}");
                }
            }
            let mut jobs: Vec<Job> = s.jobs().cloned().collect();
            jobs.push(row);
            s.load(jobs, now);
        }
    }
    settle(&mut s, now);
    let params: Option<Value> = serde_json::from_slice(params).ok();
    if let Ok(call) = parse(method, params.as_ref()) {
        if !matches!(call, CronCall::Runs(_)) {
            let mut env = CronEnv { api: &api, zones: Zones::utc_only(), now_ms: now, new_id: "n".into(), process_id: "p", store_path: "" };
            let _ = call.apply(&mut s, &mut env);
        }
    }
    settle(&mut s, now);
    let mut t = now;
    for _ in 0..8 {
        s.handle_timeout(t);
        settle(&mut s, t);
        match s.poll_timeout(t) {
            Some(next) => {
                assert!(next > t, "deadline {next} not after {t} once due fires ran");
                t = next;
            }
            None => break,
        }
    }
}
