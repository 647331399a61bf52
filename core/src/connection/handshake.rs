//! `connect` params, protocol negotiation, device-less scope rules and `hello-ok` (spec §4, §5.4).

use serde_json::{Value, json};

use crate::auth::scopes::Role;
pub use crate::wire::ClientInfo;
use crate::wire::{ErrorShape, MIN_NODE_PROTOCOL, MIN_PROBE_PROTOCOL, PROTOCOL_VERSION, details_code, error_code, msg};

/// Methods served, advertised in `hello-ok.features.methods`.
pub const ADVERTISED_METHODS: &[&str] = &[
    "health",
    "status",
    "system-presence",
    "system.info",
    "diagnostics.lanes",
    "diagnostics.stability",
    "last-heartbeat",
    "set-heartbeats",
    "logs.tail",
    "usage.status",
    "usage.cost",
    "sessions.usage",
    "sessions.usage.timeseries",
    "sessions.usage.logs",
    "channels.status",
    "channels.pairing.list",
    "config.get",
    "config.patch",
    "config.apply",
    "config.set",
    "config.schema",
    "config.schema.lookup",
    "secrets.reload",
    "secrets.store.list",
    "secrets.store.set",
    "secrets.store.delete",
    "agent",
    "agent.wait",
    "sessions.list",
    "sessions.resolve",
    "sessions.create",
    "sessions.patch",
    "sessions.reset",
    "sessions.delete",
    "sessions.compact",
    "sessions.cleanup",
    "commands.list",
    "sessions.catalog.list",
    "chat.history",
    "chat.send",
    "chat.abort",
    "tools.catalog",
    "tools.invoke",
    "models.list",
    // The Control UI's session views and the cheap answers it polls (crate::methods::ui).
    "chat.startup",
    "sessions.describe",
    "sessions.subscribe",
    "sessions.messages.subscribe",
    "sessions.messages.unsubscribe",
    "agents.list",
    "agent.identity.get",
    "chat.metadata",
    "sessions.observer.visibility",
    "update.status",
    "exec.approval.list",
    "plugin.approval.list",
    "openclaw.approval.list",
    "question.list",
    "users.prefs.get",
    "models.authStatus",
    "talk.catalog",
    "progressCard.get",
    "sessions.branches.list",
    "sessions.companion.state",
    "tasks.list",
    "device.pair.list",
    "device.pair.approve",
    "device.pair.reject",
    "device.pair.remove",
    "device.pair.rename",
    "device.token.rotate",
    "device.token.revoke",
    // What clawgate does not host, answered with its true (empty) state (crate::methods::absent).
    "plugins.list",
    "plugins.catalog.browse",
    "environments.list",
    "webSearch.status",
    "tools.github.status",
    "themes.list",
    "skills.status",
    "skills.library.list",
    "exec.approvals.get",
    "exec.approval.grants.list",
    "doctor.memory.status",
    "approval.history",
    "node.list",
    "cron.status",
    "cron.list",
    "cron.get",
    "cron.add",
    "cron.update",
    "cron.remove",
    "cron.run",
    "cron.runs",
    "cron.scratch.get",
    "cron.scratch.set",
];

/// The parts of `connect.params` the gateway acts on (validated against the schema first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectParams {
    pub min_protocol: u64,
    pub max_protocol: u64,
    pub client: ClientInfo,
    pub caps: Vec<String>,
    pub role: Option<String>,
    pub scopes: Vec<String>,
    pub auth_token: Option<String>,
    pub auth_password: Option<String>,
    pub auth_device_token: Option<String>,
    pub auth_bootstrap_token: Option<String>,
    pub device: Option<Value>,
    pub locale: Option<String>,
    pub user_agent: Option<String>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

fn int(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64))).unwrap_or(0)
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

/// Validate `connect` params against the closed schema; the error carries the reference's text.
pub fn parse_connect_params(params: Option<&Value>) -> Result<ConnectParams, ErrorShape> {
    let v = params.unwrap_or(&Value::Null);
    if let Err(detail) = crate::wire::schema::validate(crate::wire::schema("ConnectParamsSchema"), v) {
        return Err(ErrorShape::invalid_request(format!("invalid connect params: {detail}")));
    }
    let c = &v["client"];
    let auth = v.get("auth");
    Ok(ConnectParams {
        min_protocol: int(v, "minProtocol"),
        max_protocol: int(v, "maxProtocol"),
        client: ClientInfo {
            id: s(c, "id").unwrap_or_default(),
            version: s(c, "version").unwrap_or_default(),
            platform: s(c, "platform").unwrap_or_default(),
            mode: s(c, "mode").unwrap_or_default(),
            display_name: s(c, "displayName"),
            device_family: s(c, "deviceFamily"),
            model_identifier: s(c, "modelIdentifier"),
            time_zone: s(c, "timeZone"),
            instance_id: s(c, "instanceId"),
        },
        caps: strings(v, "caps"),
        role: s(v, "role"),
        scopes: strings(v, "scopes"),
        auth_token: auth.and_then(|a| s(a, "token")),
        auth_password: auth.and_then(|a| s(a, "password")),
        auth_device_token: auth.and_then(|a| s(a, "deviceToken")),
        auth_bootstrap_token: auth.and_then(|a| s(a, "bootstrapToken")),
        device: v.get("device").cloned(),
        locale: s(v, "locale"),
        user_agent: s(v, "userAgent"),
    })
}

/// Protocol negotiation (spec §4.3). The served protocol is always 4.
pub fn negotiate(p: &ConnectParams) -> Result<(), ErrorShape> {
    let (min, max) = (p.min_protocol, p.max_protocol);
    let role_node = p.role.as_deref() == Some("node");
    let ok = (min <= PROTOCOL_VERSION && PROTOCOL_VERSION <= max)
        || (p.client.mode == "probe" && max >= MIN_PROBE_PROTOCOL && min <= PROTOCOL_VERSION)
        || (role_node && p.client.mode == "node" && min <= MIN_NODE_PROTOCOL && MIN_NODE_PROTOCOL <= max);
    if ok {
        return Ok(());
    }
    Err(ErrorShape::invalid_request(msg::PROTOCOL_MISMATCH).with_details(json!({
        "code": details_code::PROTOCOL_MISMATCH,
        "clientMinProtocol": min,
        "clientMaxProtocol": max,
        "expectedProtocol": PROTOCOL_VERSION,
        "minimumProbeProtocol": MIN_PROBE_PROTOCOL,
    })))
}

/// The effective role; `operator` when absent (spec §4.4 step 7).
pub fn resolve_role(p: &ConnectParams) -> Result<Role, ErrorShape> {
    match p.role.as_deref() {
        None => Ok(Role::Operator),
        Some(r) => Role::parse(r).ok_or_else(|| ErrorShape::invalid_request(msg::INVALID_ROLE)),
    }
}

/// `NOT_PAIRED device identity required` (spec §5.4).
pub fn device_identity_required() -> ErrorShape {
    ErrorShape::new(error_code::NOT_PAIRED, msg::DEVICE_IDENTITY_REQUIRED)
        .with_details(json!({"code": details_code::DEVICE_IDENTITY_REQUIRED}))
}

/// Does a device-less, shared-secret client keep its requested scopes (spec §5.4)?
/// Only the local CLI and the local backend helper do; everything else is cleared to `[]`.
pub fn keeps_requested_scopes(client: &ClientInfo, has_origin: bool, is_local: bool) -> bool {
    let exempt = (client.id == "cli" && client.mode == "cli") || (client.id == "gateway-client" && client.mode == "backend");
    exempt && !has_origin && is_local
}

/// Events we may emit, advertised in `hello-ok.features.events`.
pub const ADVERTISED_EVENTS: &[&str] = &[
    "connect.challenge",
    "agent",
    "chat",
    "session.message",
    "sessions.changed",
    "tick",
    "health",
    "presence",
    "shutdown",
    "device.pair.requested",
    "device.pair.resolved",
];

/// Capabilities advertised in `connect.challenge` (the reference always sends this one).
pub const CHALLENGE_CAPABILITIES: &[&str] = &["model-catalog-snapshot"];

/// `policy` of `hello-ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_payload: usize,
    pub max_buffered_bytes: usize,
    pub tick_interval_ms: u64,
}

impl Policy {
    pub fn to_json(self) -> Value {
        // attachments.maxBytes = min(20 MiB, ⌊(maxPayload − 256 KiB)·3/4⌋); maxImageBytes = min(that, 6 MiB).
        let budget = (self.max_payload.saturating_sub(256 * 1024)) * 3 / 4;
        let max_bytes = budget.min(20 * 1024 * 1024);
        json!({
            "maxPayload": self.max_payload,
            "maxBufferedBytes": self.max_buffered_bytes,
            "tickIntervalMs": self.tick_interval_ms,
            "attachments": {"maxBytes": max_bytes, "maxImageBytes": max_bytes.min(6 * 1024 * 1024)},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(v: Value) -> Result<ConnectParams, ErrorShape> {
        parse_connect_params(Some(&v))
    }

    fn base() -> Value {
        json!({"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"}})
    }

    #[test]
    fn reference_messages() {
        let mut v = base();
        v["client"]["mode"] = json!("operator");
        assert_eq!(cp(v).unwrap_err().message, "invalid connect params: at /client/mode: must be equal to one of the allowed values");
        assert_eq!(parse_connect_params(None).unwrap_err().message, "invalid connect params: must be object");
        let mut v = base();
        v["permissions"] = json!({"a": 1});
        assert_eq!(cp(v).unwrap_err().message, "invalid connect params: at /permissions/a: must be boolean");
    }

    #[test]
    fn negotiation_windows() {
        let mut p = cp(base()).unwrap();
        assert!(negotiate(&p).is_ok());
        (p.min_protocol, p.max_protocol) = (5, 6);
        assert_eq!(negotiate(&p).unwrap_err().details.unwrap()["clientMinProtocol"], 5);
        (p.min_protocol, p.max_protocol) = (1, 3);
        assert!(negotiate(&p).is_err());
        p.client.mode = "probe".into();
        (p.min_protocol, p.max_protocol) = (3, 3);
        assert!(negotiate(&p).is_ok());
        (p.min_protocol, p.max_protocol) = (1, 99);
        assert!(negotiate(&p).is_ok());
        p.client.mode = "node".into();
        p.role = Some("node".into());
        (p.min_protocol, p.max_protocol) = (3, 3);
        assert!(negotiate(&p).is_ok());
    }

    #[test]
    fn scope_preservation() {
        let cli = ClientInfo { id: "cli".into(), mode: "cli".into(), ..Default::default() };
        assert!(keeps_requested_scopes(&cli, false, true));
        assert!(!keeps_requested_scopes(&cli, true, true));
        assert!(!keeps_requested_scopes(&cli, false, false));
        let probe = ClientInfo { id: "cli".into(), mode: "probe".into(), ..Default::default() };
        assert!(!keeps_requested_scopes(&probe, false, true));
        let backend = ClientInfo { id: "gateway-client".into(), mode: "backend".into(), ..Default::default() };
        assert!(keeps_requested_scopes(&backend, false, true));
    }
}
