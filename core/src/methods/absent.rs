//! What the Control UI and CLI ask about subsystems clawgate does not host (issue 13 item 7,
//! operator §6–§8): plugins, skills, themes, web search, GitHub tools, exec approvals, agent
//! memory and nodes (until nodes land). Each answer is the reference's result shape describing
//! clawgate's true state — nothing installed, nothing configured — so the views render their empty state instead of an error
//! banner. Nothing here is invented: where the reference lists what it ships (bundled plugins,
//! skills, themes, search providers), clawgate lists nothing because it ships none.
//! Params are checked as the reference checks them (captured in testdata/operator-schemas.json
//! and from the live reference; `core/data/operator-params.json` keeps the closed schemas).

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::validate_params;
use crate::config::api::ApiConfig;
use crate::wire::{ErrorShape, details_code};

/// The params schemas taken verbatim from the reference's (`testdata/operator-schemas.json`).
pub const OPERATOR_PARAMS: &str = include_str!("../../data/operator-params.json");

pub(crate) fn reference_schema(method: &str) -> Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    let all = PARSED.get_or_init(|| serde_json::from_str(OPERATOR_PARAMS).unwrap_or_default());
    all.get(method).cloned().unwrap_or_else(|| json!({"type": "object"}))
}

fn closed(properties: Value) -> Value {
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

fn agent_of(api: &ApiConfig, params: Option<&Value>) -> Result<String, ErrorShape> {
    match params.and_then(|p| p.get("agentId")).and_then(Value::as_str) {
        Some(id) if api.agents.ids.contains(&id.to_ascii_lowercase()) => Ok(id.to_ascii_lowercase()),
        Some(id) => Err(ErrorShape::invalid_request(format!("unknown agent id \"{id}\""))
            .with_details(json!({"code": details_code::UNKNOWN_AGENT_ID, "agentId": id}))),
        None => Ok(api.agents.default_agent()),
    }
}

/// Answer a method of a subsystem clawgate does not host; `None` for any other method.
pub(crate) fn call(api: &ApiConfig, method: &str, params: Option<&Value>, unix_ms: u64) -> Option<Result<Value, ErrorShape>> {
    let ne = json!({"type": "string", "minLength": 1});
    let v = |schema: Value| validate_params(method, &schema, params);
    Some(match method {
        // No plugins are installed: the admin RPC route is built in, not a plugin.
        "plugins.list" => {
            v(closed(json!({}))).map(|()| json!({"plugins": [], "diagnostics": [], "mutationAllowed": false, "generation": 0}))
        }
        // No plugin catalog to browse.
        "plugins.catalog.browse" => {
            v(closed(json!({"intent": {"type": "string"}, "category": {"type": "string"}, "query": {"type": "string"},
            "searchSource": {"type": "string"}, "cursor": {"type": "string"}, "pageSize": {"type": "integer", "minimum": 1}})))
            .map(|()| json!({"items": []}))
        }
        // Agent turns run on the gateway itself: that one environment exists.
        "environments.list" => v(closed(
            json!({"projection": {"type": "string"}, "includeDesktopSetup": {"type": "boolean"}, "runtimeId": {"type": "string"}}),
        ))
        .map(|()| {
            if params.and_then(|p| p.get("projection")).and_then(Value::as_str) == Some("profiles") {
                return json!({"environments": []});
            }
            json!({"environments": [{"id": "gateway", "type": "local", "label": "Gateway local", "status": "available",
                    "platform": std::env::consts::OS, "sessionHost": true, "trust": "persistent",
                    "capabilities": ["agent.run", "sessions", "tools"]}]})
        }),
        "webSearch.status" => v(closed(json!({"agentId": ne}))).and_then(|()| agent_of(api, params)).map(|agent| {
            let m = crate::sessions::agent_model(api, &agent);
            json!({
                "enabled": false, "provider": null, "agentId": agent,
                "model": {"provider": m.model_provider, "id": m.model, "runtime": "unknown", "runtimeLabel": "Not resolved"},
                "providers": [],
                "route": {"kind": "unavailable", "label": "Web search is not available", "testable": false,
                    "reason": "clawgate has no web search provider."},
            })
        }),
        "tools.github.status" => {
            let schema = json!({"type": "object", "required": ["agentId", "selectedScope"],
                "properties": {"agentId": ne, "selectedScope": {"type": "string"}}, "additionalProperties": false});
            v(schema).and_then(|()| agent_of(api, params)).map(|agent| {
                let scope = params.and_then(|p| p.get("selectedScope")).cloned().unwrap_or(Value::Null);
                // No GitHub credential of any kind is available to clawgate's tools.
                let none = json!({"source": "system-detected", "credentialKind": "native", "credentialState": "unavailable", "account": null,
                    "gitAuthor": {"name": null, "email": null}, "evidence": "none", "accessExpiresAtMs": null,
                    "refreshState": "not_applicable", "oauthScopes": [], "repositoryGrants": "unknown"});
                json!({"agentId": agent, "selectedScope": scope, "selected": {"scope": scope, "configured": false, "identity": null}, "effective": none})
            })
        }
        // The gateway stores no theme choice and ships no themes of its own: the UI's default
        // built-in theme is what is in effect (its other built-in themes stay in the browser).
        "themes.list" => v(closed(json!({}))).map(|()| {
            let claw = json!({"id": "claw", "name": "Claw", "source": "builtin", "modes": ["light", "dark"]});
            json!({"current": {"id": "claw", "mode": "system", "scope": "browser", "overrides": {}}, "theme": claw, "themes": [claw]})
        }),
        "skills.status" => v(closed(json!({"agentId": ne})))
            .and_then(|()| agent_of(api, params))
            .map(|agent| json!({"workspaceDir": null, "managedSkillsDir": null, "agentId": agent, "skills": []})),
        "skills.library.list" => v(closed(json!({"scope": {"type": "string"}, "agentId": ne, "sessionKey": ne}))).map(|()| {
            json!({"entries": [], "profileId": null, "multipleProfiles": false, "defaultTarget": "unavailable",
                "canManageWorkspace": false, "defaultSelectionLimit": 64})
        }),
        // No exec tool, so no exec approvals policy file.
        "exec.approvals.get" => v(reference_schema(method)).map(|()| {
            json!({"path": null, "exists": false, "file": {"version": 1, "defaults": {}, "agents": {}}, "hash": null,
                "resolvedDefaults": {"security": "deny", "ask": "off", "askFallback": "deny", "autoAllowSkills": false}})
        }),
        "exec.approval.grants.list" => v(closed(json!({}))).map(|()| json!({"grants": []})),
        // No agent memory: the reference's answer without its memory plugin (params are not
        // checked, as there).
        "doctor.memory.status" => {
            agent_of(api, params).map(|agent| json!({"agentId": agent, "embedding": {"ok": false, "error": "memory plugin unavailable"}}))
        }
        // The reference's message names no property here.
        "approval.history" => {
            let schema = closed(json!({"limit": {"type": "integer", "minimum": 1}, "cursor": {"type": "string"}}));
            crate::wire::schema::validate(&schema, params.unwrap_or(&json!({})))
                .map(|()| json!({"items": []}))
                .map_err(|_| ErrorShape::invalid_request("invalid approval.history params"))
        }
        "node.list" => v(reference_schema(method)).map(|()| json!({"ts": unix_ms, "nodes": []})),
        _ => return None,
    })
}
