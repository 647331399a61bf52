//! Handlers for the methods whose answer is gateway state: `health`, `status`,
//! `system-presence`, `config.get` (spec §11.1). Pure functions over the hub's state.

use std::time::Instant;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::agent::{Outcome, Plan, RunSpec, Start};
use crate::connection::{Dispatch, Reply};
use crate::gateway::{GatewaySettings, Hub, RuntimeStats, event_loop_json};
use crate::wire::{ErrorShape, msg};

/// Methods served, advertised in `hello-ok.features.methods`.
pub const ADVERTISED_METHODS: &[&str] =
    &["health", "status", "system-presence", "config.get", "config.patch", "config.apply", "secrets.reload", "agent", "agent.wait"];

/// Opaque content hash of a (redacted) config: `sha256:v1:<base64url>`.
pub fn config_hash(config: &Value) -> String {
    let digest = Sha256::digest(config.to_string().as_bytes());
    format!("sha256:v1:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

fn agent_sessions() -> Value {
    json!({"path": "", "count": 0, "recent": []})
}

/// The health snapshot (the `health` method result and `health` event payload).
pub(crate) fn health_snapshot(
    hub: &Hub,
    settings: &GatewaySettings,
    runtime: &RuntimeStats,
    degraded_since: Option<u64>,
    unix_ms: u64,
) -> Value {
    let _ = hub;
    json!({
        "ok": true,
        "ts": unix_ms,
        "durationMs": runtime_probe_ms(runtime),
        "plugins": {"loaded": [], "errors": [], "unavailable": []},
        "configReload": {"hotReloadStatus": if settings.hot_reload_active { "active" } else { "disabled" }},
        "channels": {},
        "channelOrder": [],
        "channelLabels": {},
        "heartbeatSeconds": 0,
        "defaultAgentId": "main",
        "agents": [{
            "agentId": "main",
            "isDefault": true,
            "heartbeat": {"enabled": false, "every": "disabled", "everyMs": null, "prompt": "", "target": "none", "ackMaxChars": 0},
            "sessions": agent_sessions(),
        }],
        "sessions": agent_sessions(),
        "modelRuntime": {"degraded": false, "pendingAgents": []},
        "eventLoop": event_loop_json(runtime, degraded_since),
    })
}

fn runtime_probe_ms(r: &RuntimeStats) -> u64 {
    // The sampler's own collection time (reading process and host counters) is the cost of a
    // health probe here.
    r.probe_duration_ms
}

fn status(hub: &Hub, d: &Dispatch, now: Instant) -> Value {
    let info = hub.info();
    let runtime = hub.runtime_stats();
    let (total, authed) = hub.connection_counts();
    let admin = d.caller.is_admin();
    let redact = |p: &str| if admin { json!(p) } else { json!("[redacted]") };
    json!({
        "runtimeVersion": info.version,
        "hostDesktop": {"enabled": false, "state": "disabled"},
        "heartbeat": {"defaultAgentId": "main", "agents": [{"agentId": "main", "enabled": false, "every": "disabled", "everyMs": null, "waitingForRoute": false}]},
        "channelSummary": [],
        "queuedSystemEvents": [],
        "degradedSecretOwners": [],
        "degradedPlugins": [],
        "tasks": {
            "total": 0, "active": 0, "terminal": 0, "failures": 0,
            "byStatus": {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "timed_out": 0, "cancelled": 0, "lost": 0},
            "byRuntime": {"subagent": 0, "acp": 0, "cli": 0, "cron": 0},
        },
        "taskAudit": {
            "total": 0, "warnings": 0, "errors": 0,
            "byCode": {"stale_queued": 0, "stale_running": 0, "lost": 0, "delivery_failed": 0, "missing_cleanup": 0, "inconsistent_timestamps": 0},
        },
        "sessions": {
            "paths": [],
            "count": 0,
            "defaults": {"model": null, "contextTokens": null},
            "recent": [],
            "byAgent": [{"agentId": "main", "path": redact(""), "count": 0, "recent": []}],
        },
        "modelRuntime": {"degraded": false, "pendingAgents": []},
        "eventLoop": hub.event_loop_json(),
        "processMemory": {"rssBytes": runtime.rss_bytes, "peakRssBytes": runtime.peak_rss_bytes},
        "workerPools": {"runtime": {"kind": info.runtime, "workerThreads": runtime.worker_threads}},
        "pid": info.pid,
        "shutdownBudget": {
            "timeoutMs": hub.settings().limits.shutdown_drain.as_millis() as u64,
            "reserveMs": 0,
            "nativeStopBudget": true,
            "activeWork": {"rootRequests": hub.pending_requests(), "connections": total},
        },
        "uptimeMs": hub.uptime_ms(now),
        "connections": {"total": total, "authenticated": authed, "pendingRequests": hub.pending_requests()},
        "configPath": redact(&info.config_path),
    })
}

fn config_get(hub: &Hub) -> Value {
    let info = hub.info();
    let s = hub.settings();
    let applied = config_hash(&s.config_redacted);
    let hash = s.config_file_hash.clone().unwrap_or_else(|| applied.clone());
    let parsed = if s.config_exists { s.config_redacted.clone() } else { json!({}) };
    json!({
        "path": info.config_path,
        "includedPaths": s.config_included,
        "exists": s.config_exists,
        "raw": if s.config_exists { Value::String(serde_json::to_string_pretty(&s.config_redacted).unwrap_or_default()) } else { Value::Null },
        "parsed": parsed,
        "sourceConfig": parsed,
        "resolved": parsed,
        "valid": true,
        "runtimeConfig": s.config_redacted,
        "config": s.config_redacted,
        "hash": hash,
        "issues": [],
        "warnings": s.config_warnings,
        "legacyIssues": [],
        "configRevisionHash": hash,
        "appliedConfigHash": applied,
    })
}

fn validate_params(method: &str, schema: &Value, params: Option<&Value>) -> Result<(), ErrorShape> {
    let empty = json!({});
    crate::schema::validate(schema, params.unwrap_or(&empty))
        .map_err(|d| ErrorShape::invalid_request(format!("invalid {method} params: {d}")))
}

/// What a dispatched request needs from the shell.
#[derive(Debug)]
pub enum Call {
    /// Answer now.
    Reply(Reply),
    /// Answer now with `reply` (`accepted`), then execute the run and report with
    /// [`Hub::finish_run`] (its final answer reaches the socket through its sink).
    StartRun { reply: Reply, run: RunSpec },
    /// Nothing now: the answer comes later through the socket's sink (`agent.wait`).
    Later,
    /// Write the config file (the shell does the IO with [`crate::config_file::plan_write`]).
    ConfigWrite(crate::config_file::ConfigWrite),
    /// Re-resolve SecretRefs and swap them in atomically.
    SecretsReload,
}

fn config_write_params(method: &str, params: Option<&Value>) -> Result<crate::config_file::ConfigWrite, ErrorShape> {
    let schema = json!({
        "type": "object",
        "required": ["raw"],
        "properties": {"raw": {"type": "string"}, "baseHash": {"type": "string", "minLength": 1}, "note": {"type": "string"}, "sessionKey": {"type": "string"}, "restartDelayMs": {"type": "integer", "minimum": 0}},
        "additionalProperties": false,
    });
    validate_params(method, &schema, params)?;
    let p = params.cloned().unwrap_or_default();
    Ok(crate::config_file::ConfigWrite {
        patch: method == "config.patch",
        raw: p["raw"].as_str().unwrap_or_default().to_string(),
        base_hash: p.get("baseHash").and_then(Value::as_str).map(str::to_string),
    })
}

/// Route one authorized request (spec §6.3 step 8 for unknown methods).
pub fn dispatch(hub: &Hub, d: &Dispatch, now: Instant, unix_ms: u64) -> Call {
    match d.method.as_str() {
        "agent" => match hub.start_run(&d.caller.conn_id, &d.request_id, d.params.as_ref(), now, unix_ms) {
            Start::Accepted { reply, run } => Call::StartRun { reply, run },
            Start::Answer(reply) => Call::Reply(reply),
        },
        "agent.wait" => match hub.wait_run(&d.caller.conn_id, &d.request_id, d.params.as_ref(), now) {
            Some(reply) => Call::Reply(reply),
            None => Call::Later,
        },
        "config.patch" | "config.apply" => match config_write_params(&d.method, d.params.as_ref()) {
            Ok(w) => Call::ConfigWrite(w),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "secrets.reload" => match validate_params(
            "secrets.reload",
            &json!({"type":"object","properties":{},"additionalProperties":false}),
            d.params.as_ref(),
        ) {
            Ok(()) => Call::SecretsReload,
            Err(e) => Call::Reply(Reply::err(e)),
        },
        _ => Call::Reply(call(hub, d, now, unix_ms)),
    }
}

/// Execute a run's plan where no IO is needed (no provider configured: it fails at once).
/// Returns `false` when the plan needs the shell (an upstream call).
pub fn execute_without_io(hub: &Hub, run: &RunSpec, now: Instant, unix_ms: u64) -> bool {
    match crate::agent::plan(&hub.settings(), run, Vec::new(), String::new()) {
        Plan::NoProvider { message } => {
            hub.begin_run(&run.run_id, None, None, unix_ms);
            hub.finish_run(&run.run_id, Outcome::Err { message }, now, unix_ms);
            true
        }
        Plan::Turn { .. } => false,
    }
}

/// Run a state method. Unknown methods (reachable only with `operator.admin`) answer
/// `unknown method: <name>` (spec §6.3 step 8). `agent` runs are started and executed in
/// place (their final answer goes through the socket's sink); the shells use [`dispatch`].
pub fn call(hub: &Hub, d: &Dispatch, now: Instant, unix_ms: u64) -> Reply {
    let params = d.params.as_ref();
    match d.method.as_str() {
        "agent" | "agent.wait" => {
            return match dispatch(hub, d, now, unix_ms) {
                Call::Reply(r) => r,
                Call::StartRun { reply, run } => {
                    execute_without_io(hub, &run, now, unix_ms);
                    reply
                }
                Call::Later | Call::ConfigWrite(_) | Call::SecretsReload => {
                    Reply::err(ErrorShape::unavailable(format!("{} needs the gateway process", d.method)))
                }
            };
        }
        _ => {}
    }
    let result = match d.method.as_str() {
        "health" => {
            // The cached snapshot's text is spliced into the response as is (no tree copy, no
            // second serialization).
            let force = params.and_then(|p| p.get("probe")).and_then(Value::as_bool) == Some(true);
            return Reply::OkJson(hub.health_json(now, unix_ms, force));
        }
        "status" => Ok(status(hub, d, now)),
        "system-presence" => Ok(Value::Array(hub.presence_list(now, unix_ms))),
        "config.get" => validate_params("config.get", &json!({"type":"object","properties":{},"additionalProperties":false}), params)
            .map(|()| config_get(hub)),
        "connect" => Err(ErrorShape::invalid_request(msg::CONNECT_ONLY_FIRST)),
        m => Err(ErrorShape::invalid_request(format!("unknown method: {m}"))),
    };
    match result {
        Ok(v) => Reply::Ok(Some(v)),
        Err(e) => Reply::err(e),
    }
}
