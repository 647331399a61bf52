//! The ten `cron.*` methods (operator §6.2): params checked against the reference's schemas
//! (plus clawgate's two job fields, `overlap` and `staleAfterMs`), then carried out on the
//! shell's [`Scheduler`] ([`CronCall::apply`]) or, for `cron.runs`, on the run history in the
//! store ([`RunsQuery`]).

use serde_json::{Map, Value, json};

use super::validate_params;
use crate::config::api::ApiConfig;
use crate::cron::{Job, RunMode, Scheduler, Zones};
use crate::wire::ErrorShape;

/// Where the reference points a client that named an unknown job.
const NOT_FOUND_HINT: &str = "List automations and retry with a current job id. For cross-session management, use a fresh authenticated configured channel owner or Control UI administrator turn or the Automations page.";

/// The reference's params schema of `method`, with clawgate's job fields where jobs are
/// described: `overlap` (`skip`|`queue`) and `staleAfterMs` (see [`crate::cron::scheduler`]).
fn schema(method: &str) -> Value {
    let mut s = super::absent::reference_schema(method);
    let extra = |props: &mut Value| {
        if let Some(p) = props.as_object_mut() {
            p.insert("overlap".into(), json!({"anyOf": [{"type": "string", "const": "skip"}, {"type": "string", "const": "queue"}]}));
            p.insert("staleAfterMs".into(), json!({"type": "integer", "minimum": 0}));
        }
    };
    match method {
        "cron.add" => extra(&mut s["properties"]),
        "cron.update" => {
            if let Some(branches) = s.get_mut("anyOf").and_then(Value::as_array_mut) {
                for b in branches {
                    extra(&mut b["properties"]["patch"]["properties"]);
                }
            }
        }
        _ => {}
    }
    s
}

/// A validated `cron.*` request.
#[derive(Debug, Clone, PartialEq)]
pub enum CronCall {
    Status,
    List(Value),
    Get(String),
    Add(Map<String, Value>),
    Update { id: String, patch: Map<String, Value> },
    Remove(String),
    Run { id: String, mode: RunMode, expected_process: Option<String> },
    Runs(RunsQuery),
    ScratchGet(String),
    ScratchSet { id: String, content: Option<String>, expected: Option<u64> },
}

/// `cron.runs`: which history entries, newest first unless `sortDir: "asc"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunsQuery {
    pub job_id: Option<String>,
    /// One run (`openclaw cron run --wait` polls for its run id).
    pub run_id: Option<String>,
    pub statuses: Vec<String>,
    pub delivery_statuses: Vec<String>,
    pub query: Option<String>,
    pub ascending: bool,
    pub limit: usize,
    pub offset: usize,
}

fn job_id(p: &Value) -> String {
    p.get("id").or_else(|| p.get("jobId")).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn not_found(id: &str, lower: bool) -> ErrorShape {
    let head = if lower { "cron job not found" } else { "Automation not found" };
    ErrorShape::invalid_request(format!("{head}: {id}. {NOT_FOUND_HINT}")).with_details(json!({"code": "CRON_JOB_NOT_FOUND", "jobId": id}))
}

/// Parse a `cron.*` request.
pub fn parse(method: &str, params: Option<&Value>) -> Result<CronCall, ErrorShape> {
    validate_params(method, &schema(method), params)?;
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(match method {
        "cron.status" => CronCall::Status,
        "cron.list" => CronCall::List(p.clone()),
        "cron.get" => CronCall::Get(job_id(p)),
        "cron.add" => CronCall::Add(p.as_object().cloned().unwrap_or_default()),
        "cron.update" => CronCall::Update { id: job_id(p), patch: p["patch"].as_object().cloned().unwrap_or_default() },
        "cron.remove" => CronCall::Remove(job_id(p)),
        "cron.run" => CronCall::Run {
            id: job_id(p),
            mode: match p.get("mode").and_then(Value::as_str) {
                Some("due") => RunMode::Due,
                Some("if-enabled") => RunMode::IfEnabled,
                _ => RunMode::Force,
            },
            expected_process: text("expectedProcessInstanceId"),
        },
        "cron.runs" => {
            let list = |one: &str, many: &str| -> Vec<String> {
                let mut v: Vec<String> = p
                    .get(many)
                    .and_then(Value::as_array)
                    .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
                if let Some(s) = p.get(one).and_then(Value::as_str).filter(|s| *s != "all") {
                    v.push(s.to_string());
                }
                v
            };
            let scope_all = p.get("scope").and_then(Value::as_str) == Some("all");
            let id = job_id(p);
            CronCall::Runs(RunsQuery {
                job_id: (!scope_all && !id.is_empty()).then_some(id),
                run_id: text("runId"),
                statuses: list("status", "statuses"),
                delivery_statuses: list("deliveryStatus", "deliveryStatuses"),
                query: text("query").map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty()),
                ascending: p.get("sortDir").and_then(Value::as_str) == Some("asc"),
                limit: p.get("limit").and_then(Value::as_u64).unwrap_or(50) as usize,
                offset: p.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize,
            })
        }
        "cron.scratch.get" => CronCall::ScratchGet(job_id(p)),
        _ => CronCall::ScratchSet {
            id: job_id(p),
            content: p.get("content").and_then(Value::as_str).map(str::to_string),
            expected: p.get("expectedRevision").and_then(Value::as_u64),
        },
    })
}

/// The session-target and payload rules (operator §6.1) and what clawgate can run.
fn check_job(spec: &Map<String, Value>, method: &str, api: &ApiConfig) -> Result<(), ErrorShape> {
    let target = spec.get("sessionTarget").and_then(Value::as_str).unwrap_or("main");
    let kind = spec.get("payload").and_then(|p| p.get("kind")).and_then(Value::as_str).unwrap_or_default();
    if target == "main" && !matches!(kind, "systemEvent" | "script") {
        return Err(ErrorShape::invalid_request(format!(
            "invalid {method} params: main cron jobs require payload.kind=\"systemEvent\" or \"script\""
        )));
    }
    if target != "main" && !matches!(kind, "agentTurn" | "command" | "script") {
        return Err(ErrorShape::invalid_request(
            "isolated cron jobs require payload.kind=\"agentTurn\", \"command\", or \"script\"; script payloads do not support current/session targets",
        ));
    }
    if matches!(kind, "command" | "script") {
        return Err(ErrorShape::invalid_request(format!(
            "payload.kind=\"{kind}\" is not supported by clawgate: it runs agent turns and system events, not host commands or scripts"
        )));
    }
    if let Some(agent) = spec.get("agentId").and_then(Value::as_str) {
        let a = agent.trim().to_ascii_lowercase();
        if !api.agents.ids.contains(&a) {
            return Err(ErrorShape::invalid_request(format!("unknown agent id: {agent}")));
        }
    }
    Ok(())
}

fn schedule_error(e: crate::cron::ScheduleError, method: &str) -> ErrorShape {
    if e.is_params_error() {
        ErrorShape::invalid_request(format!("invalid {method} params: {e}"))
    } else {
        ErrorShape::invalid_request(e.to_string())
    }
}

/// How the job's result is delivered (`deliveryPreview` on add): clawgate hosts no channels,
/// so a run's reply stays in the job's session.
fn delivery_preview(spec: &Map<String, Value>) -> Value {
    match spec.get("delivery").and_then(|d| d.get("mode")).and_then(Value::as_str) {
        None | Some("none") => json!({"label": "not requested", "detail": "not requested"}),
        Some(mode) => {
            json!({"label": "not available", "detail": format!("{mode} delivery needs a channel; clawgate hosts none, so the result stays in the job's session")})
        }
    }
}

/// A heartbeat's job follows the config (`agents.*.heartbeat`): it is not edited or removed
/// as a job (the reference's rule: "edit agents.*.heartbeat, not the automation job").
fn managed_refusal(job: &Job) -> Result<(), ErrorShape> {
    match crate::cron::heartbeat::heartbeat_agent(&job.spec) {
        Some(agent) => Err(ErrorShape::invalid_request(format!(
            "{} is the heartbeat of agent \"{agent}\": it follows agents.*.heartbeat in the config; change the heartbeat there",
            job.id
        ))),
        None => Ok(()),
    }
}

/// What [`CronCall::apply`] needs from the shell.
pub struct CronEnv<'a> {
    pub api: &'a ApiConfig,
    pub zones: Zones<'a>,
    pub now_ms: u64,
    /// The id a job added now gets (made before the scheduler is locked).
    pub new_id: String,
    /// This process's id (`processInstanceId`).
    pub process_id: &'a str,
    /// The store file (`cron.status`).
    pub store_path: &'a str,
}

/// `cron.list` rows after its filters, sorted and paged.
fn list(s: &Scheduler, p: &Value) -> Value {
    let include_disabled = p.get("includeDisabled").and_then(Value::as_bool).unwrap_or(false);
    let enabled = p.get("enabled").and_then(Value::as_str).unwrap_or(if include_disabled { "all" } else { "enabled" });
    let kind = p.get("scheduleKind").and_then(Value::as_str).unwrap_or("all");
    let last = p.get("lastRunStatus").and_then(Value::as_str).unwrap_or("all");
    let agent = p.get("agentId").and_then(Value::as_str);
    let query = p.get("query").and_then(Value::as_str).map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
    let mut jobs: Vec<&Job> = s
        .jobs()
        .filter(|j| match enabled {
            "enabled" => j.enabled(),
            "disabled" => !j.enabled(),
            _ => true,
        })
        .filter(|j| kind == "all" || j.schedule().map(|x| x.kind()) == Some(kind))
        .filter(|j| match last {
            "all" => true,
            "unknown" => j.state.last_run_status.is_none(),
            st => j.state.last_run_status.as_deref() == Some(st),
        })
        .filter(|j| agent.is_none_or(|a| j.agent_id().unwrap_or("main") == a))
        .filter(|j| {
            query.as_ref().is_none_or(|q| {
                [Some(j.name()), j.spec.get("description").and_then(Value::as_str), Some(j.id.as_str())]
                    .iter()
                    .flatten()
                    .any(|t| t.to_lowercase().contains(q.as_str()))
            })
        })
        .collect();
    let by = p.get("sortBy").and_then(Value::as_str).unwrap_or("nextRunAtMs");
    let desc = p.get("sortDir").and_then(Value::as_str) == Some("desc");
    jobs.sort_by(|a, b| {
        let o = match by {
            "name" => a.name().cmp(b.name()),
            "updatedAtMs" => a.updated_at_ms.cmp(&b.updated_at_ms),
            // Unscheduled jobs last.
            _ => a.state.next_run_at_ms.unwrap_or(u64::MAX).cmp(&b.state.next_run_at_ms.unwrap_or(u64::MAX)),
        };
        let o = if desc { o.reverse() } else { o };
        o.then_with(|| a.id.cmp(&b.id))
    });
    let total = jobs.len();
    let offset = p.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let limit = p.get("limit").and_then(Value::as_u64).unwrap_or(200) as usize;
    let compact = p.get("compact").and_then(Value::as_bool).unwrap_or(false);
    let page: Vec<Value> = jobs
        .iter()
        .skip(offset)
        .take(limit)
        .map(|j| {
            let mut v = if compact { j.compact_json() } else { j.full_json() };
            v["effectiveAgentId"] = json!(j.agent_id().unwrap_or("main"));
            v
        })
        .collect();
    let next = offset + page.len();
    let revisions: Vec<String> = jobs.iter().map(|j| format!("{}:{}", j.id, j.updated_at_ms)).collect();
    json!({
        "jobs": page, "snapshotRevision": crate::config::file::hash_value(&json!(revisions)),
        "total": total, "offset": offset, "limit": limit, "hasMore": next < total, "nextOffset": if next < total { json!(next) } else { Value::Null },
    })
}

impl CronCall {
    /// Carry the request out on the scheduler (whose outputs the shell then performs). Not for
    /// [`CronCall::Runs`], which reads the store.
    pub fn apply(self, s: &mut Scheduler, env: &mut CronEnv<'_>) -> Result<Value, ErrorShape> {
        let now = env.now_ms;
        match self {
            CronCall::Status => Ok(json!({
                "enabled": s.enabled(), "triggersEnabled": false, "storePath": env.store_path, "storage": "sqlite",
                "sqlitePath": env.store_path, "jobs": s.len(), "nextWakeAtMs": s.next_fire(),
            })),
            CronCall::List(p) => Ok(list(s, &p)),
            CronCall::Get(id) => s.job(&id).map(Job::full_json).ok_or_else(|| not_found(&id, true)),
            CronCall::Add(spec) => {
                check_job(&spec, "cron.add", env.api)?;
                let preview = delivery_preview(&spec);
                let job = Job::new(std::mem::take(&mut env.new_id), spec, now, &env.zones).map_err(|e| schedule_error(e, "cron.add"))?;
                let mut v = s.add(job, now);
                v["deliveryPreview"] = preview;
                Ok(v)
            }
            CronCall::Update { id, patch } => {
                let mut job = s.job(&id).cloned().ok_or_else(|| not_found(&id, false))?;
                managed_refusal(&job)?;
                for (k, v) in patch {
                    // `state` patches are the scheduler's own business; nulls clear a field.
                    match (k.as_str(), v) {
                        ("state", _) => {}
                        (_, Value::Null) => {
                            job.spec.remove(&k);
                        }
                        (_, v) => {
                            job.spec.insert(k, v);
                        }
                    }
                }
                check_job(&job.spec, "cron.update", env.api)?;
                job.compile(&env.zones).map_err(|e| schedule_error(e, "cron.update"))?;
                s.update(job, now).ok_or_else(|| not_found(&id, false))
            }
            CronCall::Remove(id) => {
                if let Some(job) = s.job(&id) {
                    managed_refusal(job)?;
                }
                if s.remove(&id) { Ok(json!({"ok": true, "removed": true})) } else { Err(not_found(&id, false)) }
            }
            CronCall::Run { id, mode, expected_process } => {
                if expected_process.as_deref().is_some_and(|p| p != env.process_id) {
                    return Err(ErrorShape::unavailable("the gateway restarted since this run was requested; list automations and retry")
                        .with_details(json!({"processInstanceId": env.process_id})));
                }
                match s.run_now(&id, mode, now).ok_or_else(|| not_found(&id, false))? {
                    Ok(run_id) => Ok(json!({"ok": true, "enqueued": true, "runId": run_id, "processInstanceId": env.process_id})),
                    Err(reason) => Ok(json!({"ok": true, "ran": false, "reason": reason, "processInstanceId": env.process_id})),
                }
            }
            CronCall::ScratchGet(id) => s.job(&id).map(Job::scratch_json).ok_or_else(|| not_found(&id, false)),
            CronCall::ScratchSet { id, content, expected } => match s.set_scratch(&id, content, expected, now) {
                None => Err(not_found(&id, false)),
                Some(Err(current)) => Ok(json!({"ok": false, "reason": "revision-conflict", "currentRevision": current})),
                Some(Ok(scratch)) => {
                    let mut v = json!({"ok": true});
                    if let (Some(o), Value::Object(sv)) = (v.as_object_mut(), scratch) {
                        o.extend(sv);
                    }
                    Ok(v)
                }
            },
            CronCall::Runs(_) => Err(ErrorShape::unavailable("cron.runs reads the store")),
        }
    }
}

/// Apply `call` to the hub's scheduler (under its lock, briefly) and take the outputs it left
/// for the shell to perform. The one path both the driver and the in-memory harness use; the
/// job id a `cron.add` gets is made here, before the lock (`Hub::random_uuid` takes it too).
pub fn apply_on_hub(
    hub: &crate::gateway::Hub,
    call: CronCall,
    zones: Zones<'_>,
    now_ms: u64,
    process_id: &str,
    store_path: &str,
) -> (Result<Value, ErrorShape>, Vec<crate::cron::CronOutput>) {
    let settings = hub.settings();
    let new_id = hub.random_uuid();
    hub.with_cron(|s| {
        let mut env = CronEnv { api: &settings.api, zones, now_ms, new_id, process_id, store_path };
        let answer = call.apply(s, &mut env);
        (answer, s.drain_outputs())
    })
}

/// The `cron.runs` answer for one page of entries out of `total`.
pub fn runs_result(q: &RunsQuery, entries: Vec<Value>, total: usize) -> Value {
    let next = q.offset + entries.len();
    json!({
        "entries": entries, "total": total, "offset": q.offset, "limit": q.limit, "hasMore": next < total,
        "nextOffset": if next < total { json!(next) } else { Value::Null },
    })
}
