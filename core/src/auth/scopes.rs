//! Roles, operator scopes, method authorization and event scope gating (spec §6).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::wire::ErrorShape;

pub const ADMIN: &str = "operator.admin";
pub const READ: &str = "operator.read";
pub const WRITE: &str = "operator.write";
pub const SESSIONS_READ: &str = "operator.sessions.read";
pub const SESSIONS_WRITE: &str = "operator.sessions.write";
pub const APPROVALS: &str = "operator.approvals";
pub const QUESTIONS: &str = "operator.questions";
pub const PAIRING: &str = "operator.pairing";
pub const TALK: &str = "operator.talk";
pub const TALK_SECRETS: &str = "operator.talk.secrets";

/// The closed set of operator scopes (spec §6.2).
pub const OPERATOR_SCOPES: [&str; 10] =
    [ADMIN, READ, WRITE, SESSIONS_READ, SESSIONS_WRITE, APPROVALS, QUESTIONS, PAIRING, TALK, TALK_SECRETS];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Operator,
    Node,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "node" => Some(Role::Node),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Node => "node",
        }
    }
}

/// How a method is classified in the reference's policy table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodClass {
    /// Needs this operator scope (params-independent, or the default of a dynamic method).
    Scope { scope: String, dynamic: bool },
    /// Callable only by `role:"node"` sockets.
    NodeOnly,
}

#[derive(Debug, Clone)]
pub struct MethodInfo {
    pub class: MethodClass,
    pub advertised: bool,
    pub startup_unavailable: bool,
}

fn table() -> &'static HashMap<String, MethodInfo> {
    static TABLE: OnceLock<HashMap<String, MethodInfo>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let raw: Value = serde_json::from_str(include_str!("../../data/method-scopes.json")).expect("embedded method table is JSON");
        let mut out = HashMap::new();
        if let Some(core) = raw.get("core").and_then(Value::as_object) {
            for (name, info) in core {
                let kind = info.get("kind").and_then(Value::as_str).unwrap_or("static");
                let class = if kind == "node" {
                    MethodClass::NodeOnly
                } else {
                    MethodClass::Scope {
                        scope: info.get("scope").and_then(Value::as_str).unwrap_or(ADMIN).to_string(),
                        dynamic: kind == "dynamic",
                    }
                };
                out.insert(
                    name.clone(),
                    MethodInfo {
                        class,
                        advertised: info.get("advertised").and_then(Value::as_bool).unwrap_or(false),
                        startup_unavailable: info.get("startupUnavailable").and_then(Value::as_bool).unwrap_or(false),
                    },
                );
            }
        }
        out
    })
}

/// The reference's policy entry for a method, if it has one.
pub fn method_info(method: &str) -> Option<&'static MethodInfo> {
    table().get(method)
}

/// Does the granted set satisfy `required` (implication rules of spec §6.2)?
pub fn satisfies(granted: &[String], required: &str) -> bool {
    let has = |s: &str| granted.iter().any(|g| g == s);
    if has(required) || has(ADMIN) {
        return true;
    }
    if matches!(required, READ | TALK | SESSIONS_READ | SESSIONS_WRITE) && has(WRITE) {
        return true;
    }
    required == SESSIONS_READ && (has(READ) || has(SESSIONS_WRITE))
}

fn is_session_method(method: &str) -> bool {
    method.starts_with("sessions.") || method.starts_with("session.") || method.starts_with("chat.")
}

/// The scope a method needs for these params, or `None` when the method needs none beyond
/// authentication (spec §6.3 step 6).
pub fn required_scope(method: &str, params: Option<&Value>) -> String {
    let reserved_admin = ["config.", "exec.approvals.", "wizard.", "update."];
    match method_info(method).map(|m| &m.class) {
        Some(MethodClass::Scope { scope, dynamic: false }) => scope.clone(),
        Some(MethodClass::Scope { scope, dynamic: true }) => dynamic_scope(method, scope, params),
        Some(MethodClass::NodeOnly) => ADMIN.to_string(),
        None if reserved_admin.iter().any(|p| method.starts_with(p)) => ADMIN.to_string(),
        None => ADMIN.to_string(),
    }
}

fn dynamic_scope(method: &str, default: &str, params: Option<&Value>) -> String {
    let p = |k: &str| params.and_then(|v| v.get(k));
    match method {
        "agent" => {
            let msg = p("message").and_then(Value::as_str).unwrap_or("").trim_start();
            if msg == "/new" || msg.starts_with("/reset") { ADMIN.into() } else { WRITE.into() }
        }
        "talk.config" if p("includeSecrets").and_then(Value::as_bool) == Some(true) => TALK_SECRETS.into(),
        "fs.listDir" if p("nodeId").is_some() => ADMIN.into(),
        "environments.list" if p("runtimeId").is_some() => WRITE.into(),
        "channels.pairing.approve" if p("bootstrapCommandOwner").is_some() => ADMIN.into(),
        "sessions.patch" | "sessions.create" | "sessions.delete" => session_mutation_scope(method, default, params),
        _ => default.to_string(),
    }
}

/// Session mutations that reach beyond the session's own presentation and model need admin
/// (the reference's `resolveBaseSessionMutationRequiredScope`, 2026.9.6): a patch of any other
/// field, a create with execution settings, a delete of a session that is not archived.
fn session_mutation_scope(method: &str, default: &str, params: Option<&Value>) -> String {
    const PATCH_FIELDS: &[&str] = &[
        "label",
        "autoLabel",
        "icon",
        "color",
        "category",
        "boardFace",
        "boardPresentation",
        "pinned",
        "archived",
        "unread",
        "model",
        "agentRuntime",
        "thinkingLevel",
        "fastMode",
        "permissionMode",
        "key",
        "agentId",
        "expectedSessionId",
        "expectedLifecycleRevision",
        "expectedPermissionMode",
        "expectedMarkedUnreadAt",
    ];
    const DELETE_FIELDS: &[&str] = &["key", "agentId", "deleteTranscript", "expectedSessionId", "archivedOnly"];
    let Some(Value::Object(p)) = params else { return default.to_string() };
    let full_access = p.get("permissionMode").and_then(Value::as_str) == Some("full");
    let admin = match method {
        "sessions.patch" => full_access || p.contains_key("sandboxMode") || p.keys().any(|k| !PATCH_FIELDS.contains(&k.as_str())),
        "sessions.create" => {
            full_access
                || p.get("incognito").and_then(Value::as_bool) == Some(true)
                || ["execNode", "toolOverrides"].iter().any(|k| p.contains_key(*k))
        }
        _ => p.get("archivedOnly").and_then(Value::as_bool) != Some(true) || p.keys().any(|k| !DELETE_FIELDS.contains(&k.as_str())),
    };
    if admin {
        ADMIN.to_string()
    } else if method == "sessions.delete" {
        WRITE.to_string()
    } else {
        default.to_string()
    }
}

/// Outcome of the per-request authorization of spec §6.3.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    Allowed,
    /// Answer with this error; `unauthorized_role` marks the role-mismatch answers that count
    /// toward the repeated-unauthorized-calls flood guard.
    Denied {
        error: ErrorShape,
        unauthorized_role: bool,
    },
}

/// Authorize one request (spec §6.3 steps 1–7).
pub fn authorize(role: Role, scopes: &[String], method: &str, params: Option<&Value>) -> Authorization {
    if method == "health" {
        return Authorization::Allowed;
    }
    let node_only = matches!(method_info(method).map(|m| &m.class), Some(MethodClass::NodeOnly));
    match role {
        Role::Node => {
            if node_only {
                Authorization::Allowed
            } else {
                Authorization::Denied { error: ErrorShape::invalid_request("unauthorized role: node"), unauthorized_role: true }
            }
        }
        Role::Operator => {
            if node_only {
                return Authorization::Denied {
                    error: ErrorShape::invalid_request("unauthorized role: operator"),
                    unauthorized_role: true,
                };
            }
            if method == "device.scopes.requestUpgrade" || method == "device.scopes.waitUpgrade" {
                return Authorization::Allowed;
            }
            if scopes.iter().any(|s| s == ADMIN) {
                return Authorization::Allowed;
            }
            let required = required_scope(method, params);
            let narrowed = is_session_method(method)
                && ((required == READ && scopes.iter().any(|s| s == SESSIONS_READ))
                    || (required == WRITE && scopes.iter().any(|s| s == SESSIONS_WRITE)));
            if satisfies(scopes, &required) || narrowed {
                Authorization::Allowed
            } else {
                Authorization::Denied { error: ErrorShape::missing_scope(&required), unauthorized_role: false }
            }
        }
    }
}

/// Delivery class of a broadcast event (spec §6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventGate {
    /// Every authenticated operator and node.
    Unrestricted,
    /// Operators holding one of these scopes (any satisfies, with the implication rules).
    AnyOf(&'static [&'static str]),
    /// Not delivered (unknown events).
    Never,
}

/// The gate of an event name (spec §6.4).
pub fn event_gate(event: &str) -> EventGate {
    match event {
        "tick" | "health" | "heartbeat" | "shutdown" | "gateway.suspension" | "update.available" => EventGate::Unrestricted,
        "chat.metadata.changed" => EventGate::AnyOf(&[READ, SESSIONS_READ]),
        "session.approval" => EventGate::AnyOf(&[APPROVALS]),
        "talk.mode" | "talk.voice.change" => EventGate::AnyOf(&[TALK]),
        "update.run.changed" | "plugins.install.progress" => EventGate::AnyOf(&[ADMIN]),
        e if e.starts_with("exec.approval.") || e.starts_with("plugin.approval.") || e.starts_with("openclaw.approval.") => {
            EventGate::AnyOf(&[APPROVALS])
        }
        e if e.starts_with("question.") => EventGate::AnyOf(&[QUESTIONS]),
        e if e.starts_with("device.pair.") || e.starts_with("node.pair.") => EventGate::AnyOf(&[PAIRING]),
        e if e.starts_with("terminal.") => EventGate::AnyOf(&[ADMIN]),
        e if e.starts_with("plugin.") => EventGate::AnyOf(&[WRITE]),
        "agent"
        | "chat"
        | "presence"
        | "sessions.changed"
        | "cron"
        | "task"
        | "task.suggestion"
        | "config.changed"
        | "skills.changed"
        | "plugins.changed"
        | "node.presence"
        | "node.hostStats"
        | "talk.event"
        | "users.prefs.changed"
        | "mentions.changed"
        | "models.snapshot"
        | "ui.command"
        | "portal.changed"
        | "progressCard.changed"
        | "plugins.controlUi.changed"
        | "controlUi.sessionPullRequests.changed"
        | "node.runnerInventory.changed" => EventGate::AnyOf(&[READ]),
        e if e.starts_with("session.") || e.starts_with("voicewake.") => EventGate::AnyOf(&[READ]),
        _ => EventGate::Never,
    }
}

/// May a socket with this role and these scopes receive the event?
pub fn event_allowed(role: Role, scopes: &[String], gate: &EventGate) -> bool {
    match gate {
        EventGate::Unrestricted => true,
        EventGate::Never => false,
        EventGate::AnyOf(required) => role == Role::Operator && required.iter().any(|r| satisfies(scopes, r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn session_mutations_need_admin_beyond_their_write_fields() {
        let scope = |m: &str, p: serde_json::Value| required_scope(m, Some(&p));
        assert_eq!(scope("sessions.patch", json!({"key": "k", "archived": true, "expectedSessionId": "s"})), WRITE);
        assert_eq!(scope("sessions.patch", json!({"key": "k", "verboseLevel": "on"})), ADMIN);
        assert_eq!(scope("sessions.patch", json!({"key": "k", "permissionMode": "full"})), ADMIN);
        assert_eq!(scope("sessions.create", json!({"label": "x"})), WRITE);
        assert_eq!(scope("sessions.create", json!({"execNode": "n"})), ADMIN);
        assert_eq!(scope("sessions.delete", json!({"key": "k"})), ADMIN);
        assert_eq!(scope("sessions.delete", json!({"key": "k", "archivedOnly": true})), WRITE);
        assert_eq!(scope("sessions.delete", json!({"key": "k", "archivedOnly": true, "x": 1})), ADMIN);
    }

    #[test]
    fn reference_denials() {
        let read = s(&[READ]);
        let deny = |m: &str, p: Option<Value>| match authorize(Role::Operator, &read, m, p.as_ref()) {
            Authorization::Denied { error, .. } => error.message,
            Authorization::Allowed => "allowed".into(),
        };
        assert_eq!(deny("config.patch", None), "missing scope: operator.admin");
        assert_eq!(deny("agent", Some(json!({"message":"hi"}))), "missing scope: operator.write");
        assert_eq!(deny("device.pair.list", None), "missing scope: operator.pairing");
        assert_eq!(deny("no.such.method", None), "missing scope: operator.admin");
        assert_eq!(deny("connect", None), "missing scope: operator.admin");
        assert_eq!(deny("status", None), "allowed");
        assert_eq!(deny("health", None), "allowed");
        assert_eq!(authorize(Role::Operator, &[], "health", None), Authorization::Allowed);
        assert!(matches!(authorize(Role::Operator, &[], "status", None), Authorization::Denied { .. }));
    }

    #[test]
    fn implication_rules() {
        assert!(satisfies(&s(&[WRITE]), READ));
        assert!(satisfies(&s(&[READ]), SESSIONS_READ));
        assert!(!satisfies(&s(&[READ]), WRITE));
        assert!(satisfies(&s(&[ADMIN]), PAIRING));
    }

    #[test]
    fn node_role() {
        assert!(matches!(authorize(Role::Node, &[], "status", None), Authorization::Denied { unauthorized_role: true, .. }));
        assert_eq!(authorize(Role::Node, &[], "node.event", None), Authorization::Allowed);
        assert!(matches!(authorize(Role::Operator, &s(&[ADMIN]), "node.event", None), Authorization::Denied { .. }));
    }

    #[test]
    fn presence_needs_read() {
        assert!(!event_allowed(Role::Operator, &[], &event_gate("presence")));
        assert!(event_allowed(Role::Operator, &[], &event_gate("health")));
        assert!(event_allowed(Role::Operator, &s(&[READ]), &event_gate("presence")));
        assert!(!event_allowed(Role::Node, &s(&[READ]), &event_gate("presence")));
    }
}
