//! Session lifecycle methods answered from the store (operator §5): `sessions.create`, `.patch`
//! (label, model override, thinking level, preferences), `.reset`, `.delete`, `.resolve` (find a
//! session by key, session id or label) and `sessions.catalog.list` (external session catalogs:
//! clawgate has none). Everything a mutation sets is kept in the store's per-session settings.

use serde_json::{Value, json};

use super::validate_params;
use crate::config::api::{Agents, ApiConfig};
use crate::sessions::{
    ArchivedFilter, Expect, Guarded, Refusal, SessionListQuery, SessionMeta, SessionStore, SessionSummary, resolve_session_key,
};
use crate::wire::{ErrorShape, Reply};

/// What `sessions.resolve` looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolve {
    /// A key (canonicalized) and its agent.
    Key(String, String),
    SessionId(String, Option<String>),
    Label(String, Option<String>),
}

fn resolve_schema() -> Value {
    let ne = json!({"type": "string", "minLength": 1});
    json!({
        "type": "object",
        "properties": {
            "key": ne, "sessionId": ne, "label": {"type": "string", "minLength": 1, "maxLength": 512},
            "reference": {"type": "object", "required": ["key"], "properties": {"key": ne, "slug": ne}, "additionalProperties": false},
            "shortId": ne, "slugHint": ne, "agentId": ne, "spawnedBy": ne,
            "includeGlobal": {"type": "boolean"}, "includeUnknown": {"type": "boolean"}, "allowMissing": {"type": "boolean"},
        },
        "additionalProperties": false,
    })
}

/// `sessions.resolve` params: the key (or `reference.key`), else the session id (or its short
/// form), else the label.
pub fn parse_resolve(params: Option<&Value>, agents: &Agents) -> Result<Resolve, ErrorShape> {
    validate_params("sessions.resolve", &resolve_schema(), params)?;
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let agent = s("agentId");
    if let Some(key) = s("key").or_else(|| p.pointer("/reference/key").and_then(Value::as_str).map(str::to_string)) {
        let (key, agent_id) = resolve_session_key(&key, agent.as_deref(), agents)?;
        return Ok(Resolve::Key(key, agent_id));
    }
    if let Some(id) = s("sessionId").or_else(|| s("shortId")) {
        return Ok(Resolve::SessionId(id, agent));
    }
    if let Some(label) = s("label") {
        return Ok(Resolve::Label(label, agent));
    }
    Err(ErrorShape::invalid_request("sessions.resolve needs key, sessionId or label"))
}

impl Resolve {
    fn wanted(&self) -> &str {
        match self {
            Resolve::Key(k, _) => k,
            Resolve::SessionId(v, _) | Resolve::Label(v, _) => v,
        }
    }

    /// Look it up (`None` store: nothing is kept, so nothing is found).
    pub fn run(&self, store: Option<&dyn SessionStore>) -> Reply {
        let miss = || Reply::err(ErrorShape::invalid_request(format!("No session found: {}", self.wanted())));
        let Some(store) = store else { return miss() };
        let found = match self {
            Resolve::Key(key, _) => store.session(key),
            Resolve::SessionId(id, agent) | Resolve::Label(id, agent) => {
                let by_label = matches!(self, Resolve::Label(..));
                let query = SessionListQuery {
                    limit: 1000,
                    agent_id: agent.clone().map(|a| a.to_ascii_lowercase()),
                    label: by_label.then(|| id.clone()),
                    search: (!by_label).then(|| id.clone()),
                    archived: ArchivedFilter::All,
                    ..SessionListQuery::default()
                };
                store.list(&query).map(|page| {
                    page.sessions
                        .into_iter()
                        .find(|s| if by_label { s.label.as_deref() == Some(id) } else { s.session_id.starts_with(id.as_str()) })
                })
            }
        };
        match found {
            Ok(Some(s)) => Reply::Ok(Some(json!({"ok": true, "key": s.key, "agentId": s.agent_id}))),
            Ok(None) => miss(),
            Err(e) => Reply::err(ErrorShape::unavailable(format!("session store unavailable: {e}"))),
        }
    }
}

/// `sessions.catalog.list`: external session catalogs (coding-agent sessions on hosts).
/// clawgate connects to none, so there are none (params checked as the reference does).
pub fn catalog_list(params: Option<&Value>) -> Result<Value, ErrorShape> {
    let ne = json!({"type": "string", "minLength": 1});
    let schema = json!({
        "type": "object",
        "properties": {
            "catalogId": ne, "metadataOnly": {"type": "boolean"}, "cursors": {"type": "object"}, "agentId": ne,
            "progressId": {"type": "string", "minLength": 1, "maxLength": 128}, "allowPartialResults": {"type": "boolean"},
            "search": {"type": "string"}, "limitPerHost": {"type": "integer", "minimum": 1}, "hostIds": {"type": "array", "items": ne},
        },
        "additionalProperties": false,
    });
    validate_params("sessions.catalog.list", &schema, params)?;
    Ok(json!({"catalogs": []}))
}

/// A change to a stored session (`sessions.create|patch|reset|delete`, operator §5), decided
/// here (params, ids, what the settings become) and carried out on the store off the reactor.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    Create {
        meta: Box<SessionMeta>,
        settings: Value,
    },
    Patch {
        key: String,
        agent_id: String,
        expect: Expect,
        label: Option<Option<String>>,
        settings: Value,
    },
    /// A reset keeps the session id (a fresh one only for a session that did not exist) and
    /// rotates `lifecycleRevision` (captured from the reference).
    Reset {
        key: String,
        agent_id: String,
        expect: Expect,
        new_session_id: String,
        settings: Value,
    },
    Delete {
        key: String,
        agent_id: String,
        expect: Expect,
    },
}

/// Patch fields kept in the session's settings as given (beyond label, model and thinking
/// level, which clawgate checks): the reference's session preferences, so a client that set
/// one reads it back.
const KEPT_AS_GIVEN: &[&str] = &[
    "icon",
    "color",
    "category",
    "statusNote",
    "attention",
    "pinned",
    "unread",
    "fastMode",
    "verboseLevel",
    "traceLevel",
    "reasoningLevel",
    "responseUsage",
    "sendPolicy",
    "groupActivation",
    "autoLabel",
    "contextWindow",
];

/// The model a session runs on: its override, else its agent's default.
pub fn session_model(api: &ApiConfig, agent_id: &str, settings: Option<&Value>) -> (Option<String>, Option<String>) {
    if let Some((p, m)) = settings.and_then(|s| s.get("modelOverride")).and_then(Value::as_str).and_then(|r| api.split_model(r)) {
        return (Some(p.id.clone()), Some(m.to_string()));
    }
    let d = crate::sessions::agent_model(api, agent_id);
    (d.model_provider, d.model)
}

fn check_model(api: &ApiConfig, model: &str) -> Result<(), ErrorShape> {
    if api.split_model(model).is_some() {
        return Ok(());
    }
    Err(ErrorShape::invalid_request(format!("Unknown model: {model}")))
}

/// clawgate's providers take no thinking level: only `off`.
fn check_thinking(level: &str, provider: Option<&str>, model: Option<&str>) -> Result<(), ErrorShape> {
    if level == "off" {
        return Ok(());
    }
    let target = format!("{}/{}", provider.unwrap_or("?"), model.unwrap_or("?"));
    Err(ErrorShape::invalid_request(format!("thinkingLevel \"{level}\" is not supported for {target} (use off)")))
}

/// The preconditions of a patch or delete (`expectedSessionId`, `expectedLifecycleRevision`,
/// `archivedOnly`).
fn expect_param(p: &Value) -> Expect {
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    Expect {
        session_id: text("expectedSessionId"),
        lifecycle_revision: text("expectedLifecycleRevision"),
        archived: p.get("archivedOnly").and_then(Value::as_bool).unwrap_or(false),
    }
}

fn is_main_session(key: &str, agent_id: &str) -> bool {
    key == format!("agent:{agent_id}:main") || key == "global"
}

fn agent_param(p: &Value, agents: &Agents) -> Result<Option<String>, ErrorShape> {
    match p.get("agentId").and_then(Value::as_str).map(|a| a.trim().to_ascii_lowercase()) {
        Some(a) if !agents.ids.contains(&a) => Err(ErrorShape::invalid_request(format!("Unknown agent id \"{a}\""))),
        other => Ok(other),
    }
}

/// Parse `sessions.create|patch|reset|delete` params. `uuid` gives fresh ids (the hub's).
pub fn parse_mutation(
    method: &str,
    params: Option<&Value>,
    api: &ApiConfig,
    now_ms: u64,
    uuid: &mut dyn FnMut() -> String,
) -> Result<Mutation, ErrorShape> {
    validate_params(method, &crate::methods::absent::reference_schema(method), params)?;
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    let agents = &api.agents;
    let agent = agent_param(p, agents)?;
    let key_param = p.get("key").and_then(Value::as_str).map(str::trim).filter(|k| !k.is_empty());
    let resolve = |key: &str| resolve_session_key(key, agent.as_deref(), agents);
    match method {
        "sessions.create" => {
            let agent_id = agent.clone().unwrap_or_else(|| agents.default_agent());
            let key = match key_param {
                Some(k) => resolve_session_key(k, Some(&agent_id), agents)?.0,
                None => format!("agent:{agent_id}:dashboard:{}", uuid()),
            };
            let mut settings = serde_json::Map::new();
            settings.insert("lifecycleRevision".into(), json!(uuid()));
            settings.insert("createdVia".into(), json!("operator"));
            if let Some(parent) = p.get("parentSessionKey").and_then(Value::as_str) {
                settings.insert("parentSessionKey".into(), json!(parent));
            }
            if let Some(m) = p.get("model").and_then(Value::as_str) {
                check_model(api, m)?;
                settings.insert("modelOverride".into(), json!(m));
            }
            if let Some(l) = p.get("thinkingLevel").and_then(Value::as_str) {
                let (provider, model) = session_model(api, &agent_id, Some(&Value::Object(settings.clone())));
                check_thinking(l, provider.as_deref(), model.as_deref())?;
                settings.insert("thinkingLevel".into(), json!(l));
            }
            let mut meta = SessionMeta::new(key, agent_id, uuid(), now_ms);
            meta.label = p.get("label").and_then(Value::as_str).map(str::to_string);
            meta.display_name = p.get("displayName").and_then(Value::as_str).map(str::to_string);
            meta.origin = Some("operator".into());
            Ok(Mutation::Create { meta: Box::new(meta), settings: Value::Object(settings) })
        }
        "sessions.patch" => {
            let (key, agent_id) = resolve(key_param.unwrap_or_default())?;
            let mut settings = serde_json::Map::new();
            if let Some(m) = p.get("model") {
                match m.as_str() {
                    Some(m) => {
                        check_model(api, m)?;
                        settings.insert("modelOverride".into(), json!(m));
                    }
                    None => {
                        settings.insert("modelOverride".into(), Value::Null);
                    }
                }
            }
            if let Some(l) = p.get("thinkingLevel").and_then(Value::as_str) {
                let probe = Value::Object(settings.clone());
                let (provider, model) = session_model(api, &agent_id, Some(&probe));
                check_thinking(l, provider.as_deref(), model.as_deref())?;
                settings.insert("thinkingLevel".into(), json!(l));
            }
            for k in KEPT_AS_GIVEN {
                if let Some(v) = p.get(*k) {
                    settings.insert((*k).to_string(), v.clone());
                }
            }
            // Archiving hides the session from `sessions.list` (unless asked for) and refuses new
            // runs in it; `archived:false` restores it.
            // Archiving clears the pin; restoring clears the archive stamps (captured).
            match p.get("archived").and_then(Value::as_bool) {
                // Decided by the key alone when no precondition comes first (see archive_checks).
                Some(true) if is_main_session(&key, &agent_id) && expect_param(p).is_empty() => {
                    return Err(ErrorShape::invalid_request("Cannot archive an agent's main session."));
                }
                Some(true) => {
                    settings.insert("archivedAt".into(), json!(now_ms));
                    settings.insert("archiveReason".into(), json!("manual"));
                    if settings.get("pinned") != Some(&json!(true)) {
                        settings.insert("pinned".into(), Value::Null);
                    }
                }
                Some(false) => {
                    settings.insert("archivedAt".into(), Value::Null);
                    settings.insert("archiveReason".into(), Value::Null);
                }
                None => {}
            }
            let label = p.get("label").map(|l| l.as_str().map(str::to_string));
            Ok(Mutation::Patch { key, agent_id, expect: expect_param(p), label, settings: Value::Object(settings) })
        }
        "sessions.reset" => {
            let (key, agent_id) = resolve(key_param.unwrap_or_default())?;
            let settings = json!({"lifecycleRevision": uuid(), "sessionStartedAt": now_ms, "compactionCount": 0});
            Ok(Mutation::Reset { key, agent_id, expect: expect_param(p), new_session_id: uuid(), settings })
        }
        _ => {
            let (key, agent_id) = resolve(key_param.unwrap_or_default())?;
            if is_main_session(&key, &agent_id) {
                return Err(ErrorShape::invalid_request(format!("Cannot delete the main session ({key}).")));
            }
            Ok(Mutation::Delete { key, agent_id, expect: expect_param(p) })
        }
    }
}

/// A stored session as `sessions.create|patch|reset` show it (`entry`).
pub fn entry(s: &SessionSummary, api: &ApiConfig) -> Value {
    let (provider, model) = session_model(api, &s.agent_id, s.settings.as_ref());
    let mut e = json!({
        "sessionId": s.session_id, "updatedAt": s.updated_ms, "createdAt": s.created_ms,
        "delivery": {"kind": "none"}, "spawnDepth": 0,
        "modelOverrideSource": if s.settings.as_ref().is_some_and(|v| v.get("modelOverride").is_some()) { "operator" } else { "default" },
        "inputTokens": s.input_tokens, "outputTokens": s.output_tokens, "totalTokens": s.last_total_tokens,
        "abortedLastRun": s.aborted_last_run, "modelProvider": provider, "model": model,
    });
    if let Some(l) = &s.label {
        e["label"] = json!(l);
    }
    if let (Some(Value::Object(settings)), Some(o)) = (&s.settings, e.as_object_mut()) {
        for (k, v) in settings {
            o.insert(k.clone(), v.clone());
        }
    }
    e
}

fn resolved(s: &SessionSummary, api: &ApiConfig) -> Value {
    let (provider, model) = session_model(api, &s.agent_id, s.settings.as_ref());
    json!({"modelProvider": provider, "model": model})
}

impl Mutation {
    fn target(&self) -> (&str, &str) {
        match self {
            Mutation::Create { meta, .. } => (&meta.key, &meta.agent_id),
            Mutation::Patch { key, agent_id, .. } | Mutation::Reset { key, agent_id, .. } | Mutation::Delete { key, agent_id, .. } => {
                (key, agent_id)
            }
        }
    }

    /// Carry it out on `store` (blocking) and tell `sessions.subscribe`rs. A running turn of a
    /// reset or deleted session is stopped first (its reply would land in a conversation that
    /// is gone).
    pub fn run(&self, hub: &crate::gateway::Hub, store: Option<&dyn SessionStore>, now_ms: u64) -> Reply {
        let Some(store) = store else {
            // No store: no session — a precondition that needs one fails as it would on an
            // empty store.
            if let Mutation::Patch { key, expect, .. } | Mutation::Delete { key, expect, .. } = self
                && let Err(why) = expect.check(None)
            {
                return Reply::err(refusal(why, key, if matches!(self, Mutation::Patch { .. }) { "patch" } else { "deletion" }));
            }
            return Reply::err(ErrorShape::unavailable("session store unavailable: not open"));
        };
        let api = hub.settings().api.clone();
        let (key, agent_id) = self.target();
        let unavailable = |e: String| Reply::err(ErrorShape::unavailable(format!("session store unavailable: {e}")));
        if matches!(self, Mutation::Reset { .. } | Mutation::Delete { .. }) {
            hub.abort_runs(key, None);
        }
        let (reason, row, answer) = match self {
            Mutation::Create { meta, settings } => match store.create(meta, settings) {
                Ok((s, _created)) => {
                    let v = json!({"ok": true, "key": s.key, "sessionId": s.session_id, "entry": entry(&s, &api), "runStarted": false,
                        "resolved": resolved(&s, &api)});
                    ("create", Some(s), v)
                }
                Err(e) => return unavailable(e),
            },
            Mutation::Patch { expect, label, settings, .. } => {
                let settings = match archive_checks(store, key, agent_id, expect, settings) {
                    Ok(s) => s,
                    Err(e) => return Reply::err(e),
                };
                match store.patch(key, expect, label.as_ref().map(|l| l.as_deref()), &settings, now_ms) {
                    Ok(Guarded::Done(s)) => {
                        let v = json!({"ok": true, "key": s.key, "entry": entry(&s, &api), "resolved": resolved(&s, &api)});
                        ("patch", Some(s), v)
                    }
                    Ok(Guarded::Missing) => return Reply::err(ErrorShape::invalid_request(format!("No session found: {key}"))),
                    Ok(Guarded::Refused(why)) => return Reply::err(refusal(why, key, "patch")),
                    Err(e) => return unavailable(e),
                }
            }
            Mutation::Reset { expect, new_session_id, settings, .. } => {
                let current = match store.session(key) {
                    Ok(c) => c,
                    Err(e) => return unavailable(e),
                };
                if current.as_ref().is_some_and(|c| c.archived_at().is_some()) {
                    return Reply::err(ErrorShape::invalid_request(format!(
                        "Session \"{key}\" is archived. Restore it before starting new work."
                    )));
                }
                if let Err(why) = expect.check(current.as_ref()) {
                    return Reply::err(refusal(why, key, "reset"));
                }
                let session_id = current.as_ref().map_or(new_session_id, |c| &c.session_id);
                // A session reset before its first turn: create it, then reset (same answer).
                let mut result = store.reset(key, session_id, settings, now_ms);
                if let Ok(None) = result {
                    let mut meta = SessionMeta::new(key, agent_id, new_session_id.clone(), now_ms);
                    meta.origin = Some("operator".into());
                    result = store.create(&meta, settings).map(|(s, _)| Some(s));
                }
                match result {
                    Ok(Some(s)) => {
                        let v = json!({"ok": true, "key": s.key, "entry": entry(&s, &api), "resolved": resolved(&s, &api)});
                        ("reset", Some(s), v)
                    }
                    Ok(None) => return Reply::err(ErrorShape::invalid_request(format!("No session found: {key}"))),
                    Err(e) => return unavailable(e),
                }
            }
            // The transcript is removed, not archived (clawgate keeps no archive files).
            Mutation::Delete { expect, .. } => match store.delete(key, expect) {
                Ok(Guarded::Refused(why)) => return Reply::err(refusal(why, key, "deletion")),
                Ok(done) => {
                    let deleted = matches!(done, Guarded::Done(()));
                    ("delete", None, json!({"ok": true, "key": key, "deleted": deleted, "archived": []}))
                }
                Err(e) => return unavailable(e),
            },
        };
        let defaults = crate::sessions::session_defaults(&api);
        let changed = crate::sessions::sessions_changed_payload(key, agent_id, reason, row.as_ref(), &defaults, now_ms);
        hub.broadcast_to("sessions.changed", &changed, crate::gateway::Audience::SessionsSubscribers);
        Reply::Ok(Some(answer))
    }
}

/// What an archive or unarchive patch (`archived` given) must meet, in the reference's order:
/// the preconditions hold, main/global are never archived, the session exists and
/// `expectedSessionId` was given; an archived session is not pinned. Returns the settings to write (a second archive keeps the
/// first `archivedAt`). Other patches pass through.
fn archive_checks(store: &dyn SessionStore, key: &str, agent_id: &str, expect: &Expect, settings: &Value) -> Result<Value, ErrorShape> {
    let archiving = settings.get("archivedAt").map(|v| !v.is_null());
    let pinning = settings.get("pinned") == Some(&json!(true));
    if archiving.is_none() && !pinning {
        return Ok(settings.clone());
    }
    let current = store.session(key).map_err(|e| ErrorShape::unavailable(format!("session store unavailable: {e}")))?;
    let archived_now = current.as_ref().and_then(SessionSummary::archived_at).is_some();
    let mut out = settings.clone();
    if let Some(archive) = archiving {
        expect.check(current.as_ref()).map_err(|why| refusal(why, key, "patch"))?;
        if archive && key == "unknown" {
            return Err(ErrorShape::invalid_request("Cannot archive the unknown session sentinel."));
        }
        if archive && is_main_session(key, agent_id) {
            return Err(ErrorShape::invalid_request("Cannot archive an agent's main session."));
        }
        if current.is_none() {
            return Err(ErrorShape::invalid_request(format!("session not found: {key}")));
        }
        if expect.session_id.is_none() {
            return Err(ErrorShape::invalid_request(format!("expectedSessionId required for session lifecycle patch: {key}")));
        }
        if archive && archived_now {
            if let Some(o) = out.as_object_mut() {
                o.remove("archivedAt");
            }
        }
    }
    if pinning && (archiving == Some(true) || (archived_now && archiving != Some(false))) {
        return Err(ErrorShape::invalid_request("cannot pin an archived session; restore it first"));
    }
    Ok(out)
}

/// The reference's answers when a mutation's preconditions fail (`reason: "session-changed"`
/// lets a client re-read and retry).
fn refusal(why: Refusal, key: &str, what: &str) -> ErrorShape {
    match why {
        Refusal::Changed => ErrorShape::invalid_request(format!("Session {key} changed before {what}. Retry."))
            .with_details(json!({"reason": "session-changed"})),
        Refusal::NotArchived => ErrorShape::invalid_request(format!("Session {key} is not archived. Archive it first, then delete it.")),
    }
}

/// `commands.list`: the slash commands that work against clawgate — `/new`, `/reset` and
/// `/model` (the TUI and the Control UI carry them out with `sessions.create|reset|patch`) and
/// `/stop` (`chat.send` stops the session's runs). In the reference's shape; `includeArgs`
/// adds the argument lists.
pub fn commands_list(params: Option<&Value>) -> Result<Value, ErrorShape> {
    validate_params("commands.list", &crate::methods::absent::reference_schema("commands.list"), params)?;
    let include_args = params.and_then(|p| p.get("includeArgs")).and_then(Value::as_bool).unwrap_or(false);
    let command = |name: &str, description: &str, category: &str, args: Option<Value>| {
        let mut c = json!({"name": name, "nativeName": name, "textAliases": [format!("/{name}")], "description": description,
            "category": category, "source": "native", "scope": "both", "acceptsArgs": args.is_some() || name == "new" || name == "reset"});
        if let (true, Some(a)) = (include_args, args) {
            c["args"] = a;
        }
        c
    };
    let model_args = json!([{"name": "model", "description": "Model id (provider/model) for this session", "type": "string"}]);
    Ok(json!({"commands": [
        command("stop", "Stop the current run.", "session", None),
        command("reset", "Reset the current session.", "session", None),
        command("new", "Start a new session.", "session", None),
        command("model", "Show or set the session's model.", "options", Some(model_args)),
    ]}))
}

/// `sessions.compact {key, maxLines?}` (operator §5; `openclaw sessions compact [--max-lines]`):
/// without `maxLines` the provider summarises the older turns and the transcript keeps that
/// summary and the newest messages; with `maxLines` the transcript is truncated to its newest
/// `maxLines` messages, no summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    pub key: String,
    pub agent_id: String,
    /// Messages kept as they are (the newest ones).
    pub keep: usize,
    /// `maxLines` given: truncate instead of summarising.
    pub truncate: bool,
}

/// Messages a summarising compaction keeps as they are.
pub const COMPACT_KEEP_DEFAULT: usize = 8;

/// What to do with the session's transcript.
#[derive(Debug)]
pub enum CompactPlan {
    /// Answer now (too small, or no provider).
    Answer(Reply),
    /// Ask the provider for a summary of the older messages, then store it in their place.
    Summarize { spec: Box<crate::openai::turn::TurnSpec>, keep_from_seq: u64, kept: usize },
    /// Drop the messages before `keep_from_seq` (no summary).
    Truncate { keep_from_seq: u64, kept: usize },
}

pub fn parse_compact(params: Option<&Value>, agents: &Agents) -> Result<Compaction, ErrorShape> {
    let ne = json!({"type": "string", "minLength": 1});
    let schema = json!({"type": "object", "required": ["key"],
        "properties": {"key": ne, "agentId": ne, "maxLines": {"type": "integer", "minimum": 1}}, "additionalProperties": false});
    validate_params("sessions.compact", &schema, params)?;
    let p = params.cloned().unwrap_or_default();
    let (key, agent_id) = resolve_session_key(p["key"].as_str().unwrap_or_default(), p.get("agentId").and_then(Value::as_str), agents)?;
    let max_lines = p.get("maxLines").and_then(Value::as_u64).map(|n| n as usize);
    Ok(Compaction { key, agent_id, keep: max_lines.unwrap_or(COMPACT_KEEP_DEFAULT), truncate: max_lines.is_some() })
}

/// The instruction the provider summarises with.
const SUMMARY_PROMPT: &str = "Summarize the conversation below for your own future reference: the facts, decisions, \
     open questions and anything the user asked you to remember. Be concise; write it as notes, not as a reply.";

/// The role of the stored summary, and how it introduces itself to later turns.
pub const SUMMARY_PREFIX: &str = "Summary of the earlier conversation (compacted):\n";

impl Compaction {
    /// Decide from the stored transcript (oldest first).
    pub fn plan(
        &self,
        api: &ApiConfig,
        session: Option<&SessionSummary>,
        entries: &[crate::sessions::TranscriptEntry],
        id_seed: String,
    ) -> CompactPlan {
        let too_small = || {
            CompactPlan::Answer(Reply::Ok(Some(
                json!({"ok": false, "key": self.key, "compacted": false, "reason": "Nothing to compact (session too small)"}),
            )))
        };
        if session.is_none() || entries.len() <= self.keep {
            return too_small();
        }
        let split = entries.len() - self.keep;
        if self.truncate {
            return CompactPlan::Truncate { keep_from_seq: entries[split].seq, kept: self.keep };
        }
        // Never cut between a tool call and its result: keep from the user message at or
        // before the split.
        let split = (0..=split).rev().find(|&i| entries[i].role == crate::sessions::Role::User).unwrap_or(split);
        if split == 0 {
            return too_small();
        }
        let older: Vec<String> = entries[..split].iter().map(|e| format!("{}: {}", e.role.as_str(), e.text())).collect();
        let model_override = session.and_then(|s| s.settings.as_ref()).and_then(|s| s.get("modelOverride")).and_then(Value::as_str);
        let (upstream, model, _) = match crate::agent::upstream_for(api, &self.agent_id, model_override) {
            Ok(u) => u,
            Err(e) => return CompactPlan::Answer(Reply::err(ErrorShape::unavailable(e.message))),
        };
        let spec = crate::openai::turn::TurnSpec {
            upstream,
            model,
            messages: vec![json!({"role": "system", "content": SUMMARY_PROMPT}), json!({"role": "user", "content": older.join("\n\n")})],
            tools: None,
            tool_choice: None,
            sampling: serde_json::Map::new(),
            id_seed,
        };
        CompactPlan::Summarize { spec: Box::new(spec), keep_from_seq: entries[split].seq, kept: entries.len() - split }
    }

    /// The summary entry that replaces the older messages.
    pub fn summary_entry(summary: &str, now_ms: u64) -> crate::sessions::TranscriptEntry {
        crate::sessions::TranscriptEntry::system(format!("{SUMMARY_PREFIX}{}", summary.trim()), now_ms)
    }

    /// The answer once the summary is stored.
    pub fn compacted(&self, kept: usize) -> Reply {
        Reply::Ok(Some(json!({"ok": true, "key": self.key, "compacted": true, "kept": kept})))
    }
}

/// `sessions.cleanup {agent?, allAgents?, enforce?, …}`: the store's maintenance for one agent
/// (or all): nothing expires or is capped in clawgate's store, so no session is removed; the
/// sweep folds the write-ahead log into the database file and reports the bytes on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    pub agents: Vec<String>,
}

pub fn parse_cleanup(params: Option<&Value>, agents: &Agents) -> Result<Cleanup, ErrorShape> {
    let ne = json!({"type": "string", "minLength": 1});
    let schema = json!({"type": "object", "properties": {"agent": ne, "allAgents": {"type": "boolean"}, "enforce": {"type": "boolean"},
        "activeKey": ne, "fixMissing": {"type": "boolean"}, "fixDmScope": {"type": "boolean"}}, "additionalProperties": false});
    validate_params("sessions.cleanup", &schema, params)?;
    let p = params.cloned().unwrap_or_default();
    if p.get("allAgents").and_then(Value::as_bool) == Some(true) {
        return Ok(Cleanup { agents: agents.ids.to_vec() });
    }
    let agent = match p.get("agent").and_then(Value::as_str).map(|a| a.trim().to_ascii_lowercase()) {
        Some(a) if !agents.ids.contains(&a) => return Err(ErrorShape::invalid_request(format!("Unknown agent id \"{a}\""))),
        Some(a) => a,
        None => agents.default_agent(),
    };
    Ok(Cleanup { agents: vec![agent] })
}

impl Cleanup {
    pub fn run(&self, store: Option<&dyn SessionStore>) -> Reply {
        let Some(store) = store else { return Reply::err(ErrorShape::unavailable("session store unavailable: not open")) };
        let mut reports = Vec::new();
        for agent in &self.agents {
            let m = match store.maintain(agent) {
                Ok(m) => m,
                Err(e) => return Reply::err(ErrorShape::unavailable(format!("session store unavailable: {e}"))),
            };
            reports.push(json!({
                "agentId": agent, "storePath": store.path(), "mode": "enforce", "dryRun": false,
                "beforeCount": m.sessions, "afterCount": m.sessions, "missing": 0, "dmScopeRetired": 0, "modelRunPruned": 0,
                "archived": 0, "capArchived": 0, "pruned": 0, "capped": 0,
                "unreferencedArtifacts": {"scannedFiles": 0, "removedFiles": 0, "freedBytes": 0},
                "diskBudget": {"totalBytesBefore": m.bytes_before, "totalBytesAfter": m.bytes_after, "removedFiles": 0, "removedEntries": 0,
                    "freedBytes": m.bytes_before.saturating_sub(m.bytes_after), "maxBytes": null, "highWaterBytes": null, "overBudget": false},
                "wouldMutate": false, "applied": true, "appliedCount": m.sessions,
            }));
        }
        match reports.len() {
            1 => Reply::Ok(reports.pop()),
            _ => Reply::Ok(Some(json!({"allAgents": true, "agents": reports}))),
        }
    }
}
