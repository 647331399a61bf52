//! A cron job (operator §6.1): what the client described (kept as given, in its key order),
//! what the gateway keeps about it (id, times, run state, scratch), and the shapes it is shown
//! in (`cron.get`/`cron.add`/`cron` events, `cron.list {compact:true}` rows).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::schedule::{Schedule, ScheduleError, Zones, iso_utc};

/// Largest scratch note (`cron.scratch.*` `maxBytes`).
pub const SCRATCH_MAX_BYTES: usize = 262_144;

/// What a due run does while the job's previous run is still going (clawgate's `overlap` job
/// field; the reference always skips).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Record the due run as `skipped` (the default, as the reference).
    Skip,
    /// Run once more as soon as the current run ends (at most one is held: runs never pile up).
    Queue,
}

/// The run state the gateway keeps per job (`state` in the job's shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    /// The next time the scheduler fires the job (absent while disabled or finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at_ms: Option<u64>,
    /// A run in progress: when it started and its id. Written before the run starts, so a run
    /// that a crash cut short is found at the next start (recorded as interrupted, not re-run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery_status: Option<String>,
    #[serde(default)]
    pub consecutive_errors: u32,
    #[serde(default)]
    pub consecutive_skipped: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_activated_at_ms: Option<u64>,
    /// A queued run waits for the current one (`overlap: "queue"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
}

/// The job's scratch note (`cron.scratch.get|set`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scratch {
    pub content: Option<String>,
    pub revision: u64,
    pub updated_at_ms: u64,
}

/// A stored job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    /// The fields the client gave (`name`, `schedule`, `payload`, …), as given.
    pub spec: Map<String, Value>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    #[serde(default)]
    pub state: JobState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch: Option<Scratch>,
    #[serde(skip)]
    schedule: Option<Schedule>,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.spec, self.created_at_ms, self.updated_at_ms, &self.state, &self.scratch)
            == (&other.id, &other.spec, other.created_at_ms, other.updated_at_ms, &other.state, &other.scratch)
    }
}

impl Job {
    /// A job from its described fields; the schedule is parsed (errors in the reference's words).
    pub fn new(id: String, mut spec: Map<String, Value>, now_ms: u64, zones: &Zones<'_>) -> Result<Job, ScheduleError> {
        // An interval counts from its anchor, the creation time unless given (kept, as the
        // reference shows it).
        if let Some(Value::Object(s)) = spec.get_mut("schedule")
            && s.get("kind").and_then(Value::as_str) == Some("every")
            && !s.contains_key("anchorMs")
        {
            s.insert("anchorMs".into(), Value::from(now_ms));
        }
        let mut job =
            Job { id, spec, created_at_ms: now_ms, updated_at_ms: now_ms, state: JobState::default(), scratch: None, schedule: None };
        job.compile(zones)?;
        Ok(job)
    }

    /// Parse the schedule (after loading from the store, or after a patch).
    pub fn compile(&mut self, zones: &Zones<'_>) -> Result<(), ScheduleError> {
        let schedule = self.spec.get("schedule").cloned().unwrap_or(Value::Null);
        self.schedule = Some(Schedule::parse(&schedule, self.created_at_ms, zones)?);
        Ok(())
    }

    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedule.as_ref()
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.spec.get(key).and_then(Value::as_str)
    }

    pub fn name(&self) -> &str {
        self.text("name").unwrap_or_default()
    }

    pub fn enabled(&self) -> bool {
        self.spec.get("enabled").and_then(Value::as_bool).unwrap_or(true)
    }

    pub fn delete_after_run(&self) -> bool {
        self.spec.get("deleteAfterRun").and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn overlap(&self) -> Overlap {
        if self.text("overlap") == Some("queue") { Overlap::Queue } else { Overlap::Skip }
    }

    /// A missed fire older than this at start-up is skipped, not caught up (clawgate's
    /// `staleAfterMs` job field).
    pub fn stale_after_ms(&self) -> Option<u64> {
        self.spec.get("staleAfterMs").and_then(Value::as_u64)
    }

    pub fn agent_id(&self) -> Option<&str> {
        self.text("agentId")
    }

    pub fn session_target(&self) -> &str {
        self.text("sessionTarget").unwrap_or("main")
    }

    pub fn payload(&self) -> &Value {
        self.spec.get("payload").unwrap_or(&Value::Null)
    }

    /// A stable offset inside the cron `staggerMs` window, from the job id.
    pub fn spread(&self) -> u64 {
        let d = Sha256::digest(self.id.as_bytes());
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    /// The first fire strictly after `after_ms` (`None`: never again).
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        self.schedule.as_ref()?.next_after(after_ms, self.spread())
    }

    /// `sha256:<base64url>` of the described fields: changes whenever the job's definition does.
    pub fn config_revision(&self) -> String {
        use base64::Engine as _;
        let digest = Sha256::digest(Value::Object(self.spec.clone()).to_string().as_bytes());
        format!("sha256:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
    }

    fn state_json(&self) -> Value {
        let s = &self.state;
        let mut o = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.to_string(), v);
            }
        };
        put("nextRunAtMs", s.next_run_at_ms.map(Value::from));
        put("runningAtMs", s.running_at_ms.map(Value::from));
        put("lastRunAtMs", s.last_run_at_ms.map(Value::from));
        put("lastRunStatus", s.last_run_status.clone().map(Value::from));
        put("lastStatus", s.last_run_status.clone().map(Value::from));
        put("lastDurationMs", s.last_duration_ms.map(Value::from));
        put("lastError", s.last_error.clone().map(Value::from));
        if s.last_run_at_ms.is_some() {
            put("lastDelivered", Some(json!(false)));
            put("lastDeliveryStatus", Some(json!(s.last_delivery_status.as_deref().unwrap_or("not-requested"))));
            put("consecutiveErrors", Some(json!(s.consecutive_errors)));
            put("consecutiveSkipped", Some(json!(s.consecutive_skipped)));
        }
        put("scheduleActivatedAtMs", s.schedule_activated_at_ms.map(Value::from));
        Value::Object(o)
    }

    /// The job as `cron` events carry it (`job`): described fields, times, state.
    pub fn event_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        for k in ["name", "displayName", "description", "enabled"] {
            if let Some(v) = self.spec.get(k) {
                o.insert(k.into(), v.clone());
            }
        }
        o.entry("enabled").or_insert(json!(true));
        o.insert("createdAtMs".into(), json!(self.created_at_ms));
        o.insert("updatedAtMs".into(), json!(self.updated_at_ms));
        for (k, v) in &self.spec {
            if !o.contains_key(k) {
                o.insert(k.clone(), v.clone());
            }
        }
        o.insert("state".into(), self.state_json());
        Value::Object(o)
    }

    /// The job as `cron.get|add|update` answer it: the event shape plus its revision and the
    /// state's times mirrored at the top.
    pub fn full_json(&self) -> Value {
        let mut v = self.event_json();
        if let Some(o) = v.as_object_mut() {
            o.insert("configRevision".into(), json!(self.config_revision()));
            let s = &self.state;
            if let Some(n) = s.next_run_at_ms {
                o.insert("nextRunAtMs".into(), json!(n));
            }
            if let Some(t) = s.last_run_at_ms {
                o.insert("lastRunAtMs".into(), json!(t));
                o.insert("lastRunStatus".into(), json!(s.last_run_status));
                o.insert("lastDelivered".into(), json!(false));
                o.insert("lastDeliveryStatus".into(), json!(s.last_delivery_status.as_deref().unwrap_or("not-requested")));
            }
        }
        v
    }

    /// A `cron.list {compact:true}` row.
    pub fn compact_json(&self) -> Value {
        let s = &self.state;
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("name".into(), json!(self.name()));
        if let Some(a) = self.spec.get("agentId") {
            o.insert("agentId".into(), a.clone());
        }
        o.insert("updatedAtMs".into(), json!(self.updated_at_ms));
        if let Some(d) = self.spec.get("displayName") {
            o.insert("displayName".into(), d.clone());
        }
        o.insert("enabled".into(), json!(self.enabled()));
        o.insert("nextRunAt".into(), s.next_run_at_ms.map_or(Value::Null, iso_utc));
        o.insert("nextRunAtMs".into(), json!(s.next_run_at_ms));
        o.insert("scheduleKind".into(), json!(self.schedule.as_ref().map(Schedule::kind)));
        o.insert("schedule".into(), self.spec.get("schedule").cloned().unwrap_or(Value::Null));
        o.insert("lastRunAt".into(), s.last_run_at_ms.map_or(Value::Null, iso_utc));
        o.insert("lastRunAtMs".into(), json!(s.last_run_at_ms));
        o.insert("lastRunStatus".into(), json!(s.last_run_status));
        o.insert("lastRunError".into(), json!(s.last_error));
        Value::Object(o)
    }

    /// The scratch answer (`cron.scratch.get`).
    pub fn scratch_json(&self) -> Value {
        let current = self.scratch.as_ref().map_or(0, |s| s.revision);
        let scratch = match &self.scratch {
            Some(Scratch { content: Some(c), revision, updated_at_ms }) => {
                json!({"content": c, "revision": revision, "updatedAtMs": updated_at_ms})
            }
            _ => Value::Null,
        };
        json!({"scratch": scratch, "currentRevision": current, "maxBytes": SCRATCH_MAX_BYTES})
    }
}
