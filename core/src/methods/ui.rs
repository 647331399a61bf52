//! What the official Control UI needs beyond the runs themselves (spec control-ui §4, §5, §7):
//! the session-view methods (`chat.startup`, `sessions.describe`, `sessions.subscribe`,
//! `sessions.messages.subscribe`, `agents.list`, `agent.identity.get`, `chat.metadata`), the
//! cheap truthful answers of §7.3 (`update.status`, the approval and question lists, …), the
//! `hello-ok.snapshot.sessionDefaults`, and the payloads of the `sessions.changed` /
//! `session.message` events a run emits (§5.1).
//!
//! Params are checked against the reference's own schemas (extracted from `openclaw` 2026.9.6),
//! so bad params get the reference's `invalid <method> params: …` texts.

use serde_json::{Map, Value, json};

use crate::config::api::ApiConfig;
use crate::connection::Dispatch;
use crate::openai::Agents;
pub use crate::sessions::hello_session_defaults;
use crate::sessions::{self, SessionSummary, agent_model};
use crate::wire::{ErrorShape, details_code};

fn validate(method: &str, schema: &Value, params: Option<&Value>) -> Result<(), ErrorShape> {
    crate::methods::validate_params(method, schema, params)
}

fn ne() -> Value {
    json!({"type": "string", "minLength": 1})
}

fn closed(props: Value, required: &[&str]) -> Value {
    let mut s = json!({"type": "object", "properties": props, "additionalProperties": false});
    if !required.is_empty() {
        s["required"] = json!(required);
    }
    s
}

/// `{sessionKey, agentId?}` (`progressCard.get`, `sessions.branches.list`, `sessions.companion.state`).
fn session_key_schema() -> Value {
    closed(json!({"sessionKey": ne(), "agentId": ne()}), &["sessionKey"])
}

fn param_str<'a>(params: Option<&'a Value>, key: &str) -> Option<&'a str> {
    params.and_then(|p| p.get(key)).and_then(Value::as_str)
}

fn unknown_agent(id: &str) -> ErrorShape {
    ErrorShape::invalid_request(format!("unknown agent id: {id}"))
        .with_details(json!({"code": details_code::UNKNOWN_AGENT_ID, "agentId": id}))
}

/// A configured agent id (lowercased), or the default agent when absent.
fn agent_param(agents: &Agents, raw: Option<&str>) -> Result<String, ErrorShape> {
    match raw.map(|a| a.trim().to_ascii_lowercase()).filter(|a| !a.is_empty()) {
        Some(a) if agents.ids.contains(&a) => Ok(a),
        Some(a) => Err(unknown_agent(&a)),
        None => Ok(agents.default_agent()),
    }
}

fn thinking(v: &mut Value) {
    v["thinkingLevels"] = json!([{"id": "off", "label": "off"}]);
    v["thinkingOptions"] = json!(["off"]);
    v["thinkingDefault"] = json!("off");
}

fn agent_runtime() -> Value {
    json!({"id": "auto", "cloudPlacementSupported": false, "devicePlacementSupported": false, "source": "implicit"})
}

/// `agents.list`.
pub fn agents_list(api: &ApiConfig) -> Value {
    let agents: Vec<Value> = api
        .agents
        .ids
        .iter()
        .map(|id| {
            let mut a = json!({"id": id, "kind": "agent"});
            let cfg = api.agent_configs.get(id);
            if let Some(name) = cfg.and_then(|c| c.name.as_ref()) {
                a["name"] = json!(name);
            }
            a["agentRuntime"] = agent_runtime();
            thinking(&mut a);
            if let Some(m) = api.model_for(id, None) {
                a["model"] = json!({"primary": m});
            }
            a
        })
        .collect();
    json!({
        "defaultId": api.agents.default_agent(),
        "ownership": "sole",
        "selectionRequired": api.agents.default.is_none(),
        "mainKey": "main",
        "scope": "per-sender",
        "agents": agents,
    })
}

/// `agent.identity.get`: the agent's configured name, else the reference's default
/// `Assistant`; the avatar is the name's first letter.
pub fn agent_identity(api: &ApiConfig, params: Option<&Value>) -> Result<Value, ErrorShape> {
    validate("agent.identity.get", &closed(json!({"agentId": ne(), "sessionKey": {"type": "string"}}), &[]), params)?;
    let agent_raw = param_str(params, "agentId");
    let agent_id = match param_str(params, "sessionKey").map(str::trim).filter(|k| !k.is_empty()) {
        Some(key) => {
            if key.get(..6).is_some_and(|h| h.eq_ignore_ascii_case("agent:")) && sessions::parse_agent_session_key(key).is_none() {
                return Err(ErrorShape::invalid_request(format!("invalid agent.identity.get params: malformed session key \"{key}\"")));
            }
            sessions::resolve_session_key(key, agent_raw, &api.agents)?.1
        }
        None => agent_param(&api.agents, agent_raw)?,
    };
    let configured = api.agent_configs.get(&agent_id).and_then(|c| c.name.clone()).filter(|n| !n.trim().is_empty());
    let (name, source) = match configured {
        Some(n) => (n, "config"),
        None => ("Assistant".to_string(), "default"),
    };
    let avatar: String = name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_else(|| "A".into());
    Ok(json!({"agentId": agent_id, "name": name, "nameSource": source, "avatar": avatar}))
}

/// The slash commands `chat.send` understands (`/stop`), in the reference's command shape.
fn commands() -> Value {
    json!([{"name": "stop", "nativeName": "stop", "textAliases": ["/stop"], "description": "Stop the current run.",
        "category": "session", "source": "native", "scope": "both", "acceptsArgs": false}])
}

fn metadata(api: &ApiConfig) -> Value {
    let models = crate::methods::models_list(api);
    json!({
        "models": models["models"],
        "commands": commands(),
        "swarmEnabled": false,
        "accountSelection": models["accountSelection"],
        "runtimeSelectionLocked": false,
    })
}

/// `chat.metadata`: the models, the commands and the account selection of the composer.
pub fn chat_metadata(api: &ApiConfig, params: Option<&Value>) -> Result<Value, ErrorShape> {
    let schema = json!({
        "type": "object",
        "properties": {"agentId": ne(), "authProfileId": {"type": "string", "minLength": 1, "maxLength": 256}, "sessionKey": ne()},
        "additionalProperties": false,
        "not": {"required": ["sessionKey", "authProfileId"]},
    });
    validate("chat.metadata", &schema, params)?;
    if param_str(params, "sessionKey").is_some() && param_str(params, "authProfileId").is_some() {
        return Err(ErrorShape::invalid_request("invalid chat.metadata params: must NOT be valid"));
    }
    match param_str(params, "sessionKey") {
        Some(key) => {
            sessions::resolve_session_key(key, param_str(params, "agentId"), &api.agents)?;
        }
        None => {
            agent_param(&api.agents, param_str(params, "agentId"))?;
        }
    }
    Ok(metadata(api))
}

/// `defaults` of `chat.startup` / `chat.history` for a session of `agent_id`.
pub fn chat_defaults(api: &ApiConfig, agent_id: &str) -> Value {
    let m = agent_model(api, agent_id);
    let mut d = m.to_json();
    d["agentRuntime"] = agent_runtime();
    thinking(&mut d);
    d["modelSelectionTarget"] = json!("session");
    d
}

/// A session's row as the UI's session views read it (`sessionInfo`, `sessions.describe`, the
/// `session` of `sessions.changed`/`session.message`): the stored row plus what is live —
/// `status:"running"`, `hasActiveRun`, `activeRunIds` while runs are going.
pub fn live_session_row(
    key: &str,
    agent_id: &str,
    stored: Option<&SessionSummary>,
    api: &ApiConfig,
    active_runs: &[String],
    now_ms: u64,
) -> Value {
    let defaults = agent_model(api, agent_id);
    let mut row = match stored {
        Some(s) => sessions::session_row(s, &defaults, false, true),
        None => {
            let mut r = json!({"key": key, "kind": sessions::row_kind(key), "agentId": agent_id, "updatedAt": null});
            for (k, v) in [("modelProvider", &defaults.model_provider), ("model", &defaults.model)] {
                if let Some(v) = v {
                    r[k] = json!(v);
                }
            }
            if let Some(c) = defaults.context_tokens {
                r["contextTokens"] = json!(c);
            }
            r
        }
    };
    let is_main = key == format!("agent:{agent_id}:main");
    row["classification"] = json!(if is_main { "main" } else { "direct" });
    row["isMain"] = json!(is_main);
    row["isBackground"] = json!(false);
    row["archived"] = json!(false);
    row["pinned"] = json!(false);
    row["unread"] = json!(false);
    thinking(&mut row);
    if row.get("totalTokensFresh").is_none() {
        row["totalTokensFresh"] = json!(stored.is_some());
    }
    if !active_runs.is_empty() {
        row["status"] = json!("running");
    }
    row["agentRuntime"] = agent_runtime();
    row["runtimeSelectionLocked"] = json!(false);
    row["snapshotAt"] = json!(now_ms);
    row["hasActiveRun"] = json!(!active_runs.is_empty());
    row["activeRunIds"] = json!(active_runs);
    row
}

/// Copy a row's fields (but its `key`) beside the event's own, as the reference flattens them.
fn flatten_row(p: &mut Map<String, Value>, row: &Value) {
    for (k, v) in row.as_object().into_iter().flatten() {
        if k != "key" && !p.contains_key(k) {
            p.insert(k.clone(), v.clone());
        }
    }
}

/// What a `sessions.changed` event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// A run of the session started (`phase:"start"`).
    RunStart(&'a str),
    /// A run ended (`phase:"end"`). The row read back from the store carries the run's
    /// `lastRunId`/`startedAt`/`endedAt`/`runtimeMs` (the UI's "Done in …" recap).
    RunEnd(&'a str),
}

/// A `sessions.changed` payload: `{sessionKey, agentId, phase, runId, ts, session:{row},
/// …row fields}`.
pub fn sessions_changed(key: &str, agent_id: &str, change: Change<'_>, row: &Value, ts: u64) -> Value {
    let (phase, run_id) = match change {
        Change::RunStart(r) => ("start", r),
        Change::RunEnd(r) => ("end", r),
    };
    let mut p = Map::new();
    p.insert("sessionKey".into(), json!(key));
    p.insert("agentId".into(), json!(agent_id));
    p.insert("phase".into(), json!(phase));
    p.insert("runId".into(), json!(run_id));
    p.insert("ts".into(), json!(ts));
    p.insert("session".into(), row.clone());
    flatten_row(&mut p, row);
    Value::Object(p)
}

/// A `session.message` payload: `{sessionKey, agentId, message, messageId, messageSeq,
/// session:{row}, …row fields}`; `message` is the display message `chat.history` returns.
pub fn session_message(key: &str, agent_id: &str, message: &Value, row: &Value) -> Value {
    let mut p = Map::new();
    p.insert("sessionKey".into(), json!(key));
    p.insert("agentId".into(), json!(agent_id));
    p.insert("message".into(), message.clone());
    p.insert("messageId".into(), message.pointer("/__openclaw/id").cloned().unwrap_or(Value::Null));
    p.insert("messageSeq".into(), message.pointer("/__openclaw/seq").cloned().unwrap_or(Value::Null));
    p.insert("session".into(), row.clone());
    flatten_row(&mut p, row);
    Value::Object(p)
}

/// `chat.startup` extras on top of the `chat.history` payload: `sessionInfo`, `thinkingLevel`,
/// `defaults` of the session's agent and the composer `metadata`.
pub fn complete_chat_view(payload: &mut Value, api: &ApiConfig, agent_id: &str, row: Value, startup: bool) {
    payload["defaults"] = chat_defaults(api, agent_id);
    payload["sessionInfo"] = row;
    payload["thinkingLevel"] = json!("off");
    if startup {
        payload["metadata"] = metadata(api);
    }
}

/// What a `sessions.*subscribe` call asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Subscribe {
    /// Answered now.
    Done(Value),
    /// `sessions.subscribe` with list params: subscribed, the answer also carries this list.
    WithList(sessions::SessionListQuery),
}

/// `sessions.subscribe` / `sessions.messages.subscribe` / `sessions.messages.unsubscribe` for
/// the calling socket.
pub fn subscribe(hub: &crate::gateway::Hub, d: &Dispatch, unix_ms: u64) -> Result<Subscribe, ErrorShape> {
    let api = hub.settings().api.clone();
    let params = d.params.as_ref();
    let conn = d.caller.conn_id.as_str();
    match d.method.as_str() {
        "sessions.subscribe" => {
            // The reference validates these params as `sessions.list` params (and lists).
            let query = sessions::parse_sessions_list_params(params, &api.agents, unix_ms).map_err(|e| {
                ErrorShape::invalid_request(e.message.replacen("invalid sessions.list params", "invalid sessions.subscribe params", 1))
            })?;
            let subscribed = hub.subscribe_sessions(conn);
            let has_params = params.and_then(Value::as_object).is_some_and(|o| !o.is_empty());
            Ok(if subscribed && has_params { Subscribe::WithList(query) } else { Subscribe::Done(json!({"subscribed": subscribed})) })
        }
        method => {
            let subscribe = method == "sessions.messages.subscribe";
            let mut props = json!({"key": ne(), "agentId": ne()});
            if subscribe {
                props["includeApprovals"] = json!({"type": "boolean", "const": true});
            }
            validate(method, &closed(props, &["key"]), params)?;
            let key = param_str(params, "key").unwrap_or_default().trim();
            if key.is_empty() {
                return Err(ErrorShape::invalid_request("key required"));
            }
            let approvals = params.and_then(|p| p.get("includeApprovals")) == Some(&json!(true));
            if approvals && !d.caller.scopes.iter().any(|s| s == crate::auth::scopes::ADMIN || s == crate::auth::scopes::APPROVALS) {
                return Err(ErrorShape::invalid_request(format!(
                    "sessions.messages.subscribe includeApprovals requires a paired device and gateway scope: {}",
                    crate::auth::scopes::APPROVALS
                )));
            }
            let (canonical, _) = sessions::resolve_session_key(key, param_str(params, "agentId"), &api.agents)?;
            let ok = hub.subscribe_session_messages(conn, &canonical, subscribe);
            let mut out = json!({"subscribed": subscribe && ok, "key": canonical});
            if approvals {
                // No approval records exist here: an empty, complete replay.
                out["approvalReplay"] = json!({"sessionKey": canonical, "updatedAtMs": unix_ms, "approvals": [], "truncated": false});
            }
            Ok(Subscribe::Done(out))
        }
    }
}

/// The UI methods that need neither the store nor the hub's subscriptions. `None`
/// for any other method.
pub fn call(api: &ApiConfig, method: &str, params: Option<&Value>, unix_ms: u64) -> Option<Result<Value, ErrorShape>> {
    let empty_schema = || closed(json!({}), &[]);
    let session_scoped = |m: &str, answer: Value| -> Result<Value, ErrorShape> {
        validate(m, &session_key_schema(), params)?;
        sessions::resolve_session_key(param_str(params, "sessionKey").unwrap_or_default(), param_str(params, "agentId"), &api.agents)?;
        Ok(answer)
    };
    Some(match method {
        "agents.list" => validate(method, &empty_schema(), params).map(|()| agents_list(api)),
        "agent.identity.get" => agent_identity(api, params),
        "chat.metadata" => chat_metadata(api, params),
        // clawgate does not update itself: nothing scheduled, nothing known to be newer.
        "update.status" => validate(method, &closed(json!({"refreshCheckout": {"type": "boolean"}}), &[]), params).map(|()| {
            json!({"sentinel": null, "updateAvailable": null, "effectiveChannel": "stable", "schedule": {"channel": "stable", "autoEnabled": false}})
        }),
        // No approval, question, task, progress card, branch or companion records exist here.
        "exec.approval.list" | "plugin.approval.list" | "openclaw.approval.list" => Ok(json!([])),
        "question.list" => validate(method, &empty_schema(), params).map(|()| json!({"questions": []})),
        "tasks.list" => {
            let status = json!({"anyOf": [
                {"type": "string", "enum": ["queued", "running", "completed", "failed", "cancelled", "timed_out"]},
                {"type": "array", "items": {"type": "string", "enum": ["queued", "running", "completed", "failed", "cancelled", "timed_out"]}},
            ]});
            let schema = closed(
                json!({"status": status, "agentId": ne(), "sessionKey": ne(), "limit": {"type": "integer", "minimum": 1, "maximum": 500},
                    "cursor": {"type": "string", "maxLength": 512}, "sortBy": {"type": "string", "enum": ["updatedAt", "endedAt"]}}),
                &[],
            );
            validate(method, &schema, params).map(|()| json!({"tasks": []}))
        }
        "progressCard.get" => session_scoped(method, json!({"card": null})),
        "sessions.branches.list" => session_scoped(method, json!({"branches": []})),
        "sessions.companion.state" => session_scoped(method, json!({"exchanges": []})),
        // User preferences are not kept: every key is unset.
        "users.prefs.get" => {
            let schema = closed(
                json!({"keys": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 256}, "maxItems": 32, "uniqueItems": true}}),
                &[],
            );
            validate(method, &schema, params).map(|()| json!({"status": "ok", "entries": {}}))
        }
        "sessions.observer.visibility" => {
            validate(method, &closed(json!({"visible": {"type": "boolean"}}), &["visible"]), params).map(|()| json!({"ok": true}))
        }
        "models.authStatus" => {
            validate(method, &closed(json!({"refresh": {"type": "boolean"}, "agentId": {"type": "string"}}), &[]), params).map(|()| {
                let providers: Vec<Value> = api
                    .providers
                    .values()
                    .map(|p| {
                        let status = if p.api_key_error.is_some() { "missing" } else { "static" };
                        json!({"provider": p.id, "authProvider": p.id, "displayName": p.id, "status": status, "profiles": [], "apiKey": {"source": "config"}})
                    })
                    .collect();
                json!({"ts": unix_ms, "providers": providers, "providerCapabilities": []})
            })
        }
        // No talk (voice) providers: an empty catalog.
        "talk.catalog" => validate(method, &closed(json!({"provider": ne(), "model": ne()}), &[]), params).map(|()| {
            json!({"modes": [], "transports": [], "brains": [], "speech": {"providers": []},
                "transcription": {"ready": false, "providers": []}, "realtime": {"ready": false, "providers": []}})
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> ApiConfig {
        let cfg = json!({
            "models": {"providers": {"fake": {"baseUrl": "http://x/v1", "apiKey": "k", "api": "openai-completions",
                "models": [{"id": "fake-model", "name": "Fake Model", "contextWindow": 128000}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
        });
        ApiConfig::from_config(&cfg, &Default::default())
    }

    #[test]
    fn hello_defaults_say_a_model_is_configured() {
        let d = hello_session_defaults(&api());
        assert_eq!(
            d,
            json!({"defaultAgentId": "main", "modelConfigured": true, "ownership": "sole", "selectionRequired": false,
                "mainKey": "main", "mainSessionKey": "agent:main:main", "scope": "per-sender"})
        );
        assert_eq!(hello_session_defaults(&ApiConfig::default())["modelConfigured"], false);
    }

    #[test]
    fn stubs_answer_as_the_reference() {
        let a = api();
        let ok = |m: &str, p: Value| call(&a, m, Some(&p), 5).unwrap().unwrap();
        let err = |m: &str, p: Value| call(&a, m, Some(&p), 5).unwrap().unwrap_err().message;
        assert_eq!(ok("exec.approval.list", json!({})), json!([]));
        assert_eq!(ok("question.list", json!({})), json!({"questions": []}));
        assert_eq!(ok("users.prefs.get", json!({"keys": ["ui.theme"]})), json!({"status": "ok", "entries": {}}));
        assert_eq!(ok("progressCard.get", json!({"sessionKey": "agent:main:main"})), json!({"card": null}));
        assert_eq!(ok("sessions.branches.list", json!({"sessionKey": "agent:main:main"})), json!({"branches": []}));
        assert_eq!(ok("sessions.companion.state", json!({"sessionKey": "agent:main:main", "agentId": "main"})), json!({"exchanges": []}));
        assert_eq!(ok("tasks.list", json!({"status": ["queued", "running"], "limit": 200})), json!({"tasks": []}));
        assert_eq!(ok("sessions.observer.visibility", json!({"visible": true})), json!({"ok": true}));
        assert_eq!(ok("update.status", json!({}))["effectiveChannel"], "stable");
        assert_eq!(ok("models.authStatus", json!({"agentId": "main"}))["providers"][0]["status"], "static");
        assert_eq!(ok("talk.catalog", json!({}))["realtime"]["ready"], false);
        assert_eq!(err("question.list", json!({"x": 1})), "invalid question.list params: at root: unexpected property 'x'");
        assert_eq!(
            err("sessions.observer.visibility", json!({})),
            "invalid sessions.observer.visibility params: must have required property 'visible'"
        );
        assert_eq!(err("progressCard.get", json!({})), "invalid progressCard.get params: must have required property 'sessionKey'");
        assert!(err("tasks.list", json!({"limit": 501})).starts_with("invalid tasks.list params: at /limit"));
        assert!(err("sessions.branches.list", json!({"sessionKey": "agent:ghost:x"})).contains("unknown agent id: ghost"));
        assert!(call(&a, "no.such", None, 0).is_none());
    }

    #[test]
    fn agents_identity_and_metadata() {
        let a = api();
        let l = agents_list(&a);
        assert_eq!((l["defaultId"].clone(), l["agents"][0]["id"].clone()), (json!("main"), json!("main")));
        assert_eq!(l["agents"][0]["model"], json!({"primary": "fake/fake-model"}));
        let i = agent_identity(&a, Some(&json!({"agentId": "main"}))).unwrap();
        assert_eq!(i, json!({"agentId": "main", "name": "Assistant", "nameSource": "default", "avatar": "A"}));
        assert!(agent_identity(&a, Some(&json!({"agentId": "nope"}))).unwrap_err().message.contains("unknown agent id"));
        let m = chat_metadata(&a, Some(&json!({"agentId": "main", "sessionKey": "agent:main:main"}))).unwrap();
        assert_eq!(m["models"][0]["id"], "fake-model");
        assert_eq!(m["commands"][0]["name"], "stop");
        assert!(chat_metadata(&a, Some(&json!({"bogus": 1}))).is_err());
    }

    #[test]
    fn live_rows_and_events() {
        let a = api();
        let row = live_session_row("agent:main:main", "main", None, &a, &["r1".to_string()], 9);
        assert_eq!(
            (row["status"].clone(), row["hasActiveRun"].clone(), row["isMain"].clone()),
            (json!("running"), json!(true), json!(true))
        );
        assert_eq!((row["model"].clone(), row["contextTokens"].clone()), (json!("fake-model"), json!(128000)));
        let done = live_session_row("agent:main:main", "main", None, &a, &[], 9);
        assert_eq!((done.get("status"), done["hasActiveRun"].clone()), (None, json!(false)));
        let ev = sessions_changed("agent:main:main", "main", Change::RunEnd("r1"), &done, 10);
        assert_eq!((ev["phase"].clone(), ev["runId"].clone(), ev["hasActiveRun"].clone()), (json!("end"), json!("r1"), json!(false)));
        let msg = json!({"role": "user", "content": "hi", "__openclaw": {"id": "m1", "seq": 1}});
        let ev = session_message("agent:main:main", "main", &msg, &row);
        assert_eq!((ev["messageId"].clone(), ev["messageSeq"].clone()), (json!("m1"), json!(1)));
        assert_eq!(ev["session"]["status"], "running");
    }
}
