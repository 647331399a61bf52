//! Webhook ingress under `hooks.path` (spec http §6.8): `POST <path>/wake` and
//! `POST <path>/agent`, with their own token and their own failed-auth limiter.
//!
//! Shell flow (routing stage 6, only when `ApiConfig::hooks` is set; otherwise the request falls
//! through to normal routing):
//! 1. [`gate`] with the request head: path match ([`Gate::NotMine`] → continue routing),
//!    `?token=` (400), method (405, before auth), limiter (429), hook token (401, plain text),
//!    base path (404). [`Gate::Authorized`] carries the hook name.
//! 2. Read the body (≤ [`MAX_BODY_BYTES`]; [`body_error`] for 413/408, `Connection: close`).
//! 3. [`decide`] → [`HookDecision::Respond`], or [`HookDecision::Wake`] (enqueue the system
//!    event, then [`wake_response`]) or [`HookDecision::Agent`] (start the run, then
//!    [`agent_response`]).

use std::net::IpAddr;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::auth::{LimitCheck, LimiterSubject, constant_time_eq};
use crate::config::api::HooksConfig;
use crate::openai::Agents;
pub use crate::openai::api_response::BodyError;
use crate::openai::api_response::{ApiResponse, parse_json_body};

/// Largest hook body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub use crate::auth::{HOOK_AUTH_MAX_FAILURES as AUTH_MAX_FAILURES, HOOK_AUTH_WINDOW as AUTH_WINDOW, HookAuthLimiter};
const LIMITER_SCOPE: &str = "hook-auth";

pub const QUERY_TOKEN_MESSAGE: &str =
    "Hook token must be provided via Authorization: Bearer <token> or X-OpenClaw-Token header (query parameters are not allowed).";

/// The request head facts the gate needs.
#[derive(Debug, Clone, Copy)]
pub struct HookHead<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// The raw query string (after `?`), if any.
    pub query: Option<&'a str>,
    /// `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// `x-openclaw-token` header value.
    pub token_header: Option<&'a str>,
    /// The client address (the rate-limit subject: the peer, or the attributed client behind a
    /// trusted proxy).
    pub client: IpAddr,
}

/// Result of the pre-body checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Not under `hooks.path` (or hooks are off): continue routing.
    NotMine,
    /// Answer now (400/405/429/401/404).
    Respond(ApiResponse),
    /// Authenticated: read the body, then call [`decide`] with this hook name (`wake`, `agent`, …).
    Authorized { hook: String },
}

/// The hook name if `path` is under `base` (`None` when not; `Some("")` for the base itself).
pub fn sub_path<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() {
        return Some("");
    }
    let rest = rest.strip_prefix('/')?;
    Some(rest.trim_start_matches('/'))
}

fn query_has_token(query: &str) -> bool {
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or_default();
        key == "token" || key.eq_ignore_ascii_case("%74oken") || percent_decode(key).as_deref() == Some("token")
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(b'%') => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            Some(b'+') => {
                out.push(b' ');
                i += 1;
            }
            Some(c) => {
                out.push(*c);
                i += 1;
            }
            None => break,
        }
    }
    String::from_utf8(out).ok()
}

/// The presented hook token: `Authorization: Bearer <t>`, else `x-openclaw-token`.
pub fn presented_token<'a>(head: &HookHead<'a>) -> Option<&'a str> {
    let bearer = head.authorization.map(str::trim).and_then(|a| {
        let scheme = a.get(..7)?;
        scheme.eq_ignore_ascii_case("bearer ").then(|| a.get(7..).unwrap_or_default().trim()).filter(|t| !t.is_empty())
    });
    bearer.or_else(|| head.token_header.map(str::trim).filter(|t| !t.is_empty()))
}

/// The pre-body checks, in the reference's order.
pub fn gate(cfg: Option<&HooksConfig>, head: &HookHead<'_>, limiter: &mut HookAuthLimiter, now: Instant) -> Gate {
    let Some(cfg) = cfg else { return Gate::NotMine };
    let Some(hook) = sub_path(&cfg.path, head.path) else { return Gate::NotMine };
    if head.query.is_some_and(query_has_token) {
        return Gate::Respond(ApiResponse::text(400, QUERY_TOKEN_MESSAGE));
    }
    if head.method != "POST" {
        return Gate::Respond(ApiResponse::method_not_allowed());
    }
    let subject = LimiterSubject::ip(head.client);
    if let LimitCheck::Locked { retry_after_ms } = limiter.limiter.check(now, LIMITER_SCOPE, &subject) {
        let secs = retry_after_ms.div_ceil(1000).max(1);
        return Gate::Respond(ApiResponse::text(429, "Too Many Requests").with_header("Retry-After", secs.to_string()));
    }
    let ok = presented_token(head).is_some_and(|t| constant_time_eq(t.as_bytes(), cfg.token.expose().as_bytes()));
    if !ok {
        limiter.limiter.record_failure(now, LIMITER_SCOPE, &subject);
        return Gate::Respond(ApiResponse::text(401, "Unauthorized"));
    }
    limiter.limiter.reset(LIMITER_SCOPE, &subject);
    if hook.is_empty() {
        return Gate::Respond(ApiResponse::not_found());
    }
    Gate::Authorized { hook: hook.to_string() }
}

fn hook_error(status: u16, message: &str) -> ApiResponse {
    ApiResponse::json(status, &json!({"ok": false, "error": message}))
}

/// The response for a body read failure (`Connection: close`).
pub fn body_error(e: BodyError) -> ApiResponse {
    match e {
        BodyError::TooLarge => hook_error(413, "payload too large").closing(),
        BodyError::Timeout => hook_error(408, "request body timeout").closing(),
        BodyError::ConnectionClosed => hook_error(400, "Connection closed").closing(),
    }
}

/// Session and agent routing policy for `/agent` (`hooks.allowRequestSessionKey`,
/// `hooks.defaultSessionKey`, `hooks.allowedSessionKeyPrefixes`, `hooks.allowedAgentIds`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookPolicy {
    pub allow_request_session_key: bool,
    pub default_session_key: Option<String>,
    /// Lower-cased prefixes; `None` = any.
    pub allowed_session_key_prefixes: Option<Vec<String>>,
    /// `None` or containing `*` = any agent.
    pub allowed_agent_ids: Option<Vec<String>>,
}

impl HookPolicy {
    /// Read the policy fields of the `hooks` config section.
    pub fn from_config(cfg: &Value) -> HookPolicy {
        let h = cfg.get("hooks");
        let list = |k: &str| {
            h.and_then(|h| h.get(k))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(|s| s.trim().to_string()).collect::<Vec<_>>())
        };
        HookPolicy {
            allow_request_session_key: h.and_then(|h| h.get("allowRequestSessionKey")).and_then(Value::as_bool) == Some(true),
            default_session_key: h
                .and_then(|h| h.get("defaultSessionKey"))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            allowed_session_key_prefixes: list("allowedSessionKeyPrefixes")
                .map(|v| v.into_iter().map(|p| p.to_ascii_lowercase()).filter(|p| !p.is_empty()).collect::<Vec<_>>())
                .filter(|v| !v.is_empty()),
            allowed_agent_ids: list("allowedAgentIds").map(|v| v.into_iter().map(|a| a.to_ascii_lowercase()).collect()),
        }
    }
}

/// `/wake` and `/agent` `mode`/`wakeMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeMode {
    Now,
    NextHeartbeat,
}

impl WakeMode {
    fn parse(v: Option<&Value>) -> WakeMode {
        if v.and_then(Value::as_str) == Some("next-heartbeat") { WakeMode::NextHeartbeat } else { WakeMode::Now }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            WakeMode::Now => "now",
            WakeMode::NextHeartbeat => "next-heartbeat",
        }
    }
}

/// Enqueue `text` as a system event for the agent's main session (and wake it now if asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeRequest {
    pub text: String,
    pub mode: WakeMode,
    pub agent_id: String,
    /// Canonical session key (`agent:<agentId>:main` unless `sessionKey` was given).
    pub session_key: String,
}

/// Start an isolated agent run with this message.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRunRequest {
    /// The caller's fresh run id, answered as `runId`.
    pub run_id: String,
    /// The caller's fresh job id (the reference runs hook turns as `cron:<jobId>` sessions).
    pub job_id: String,
    pub agent_id: String,
    /// Canonical session key.
    pub session_key: String,
    pub message: String,
    /// Human-readable hook name (`Hook` by default).
    pub name: String,
    pub wake_mode: WakeMode,
    pub deliver: bool,
    /// `last` or a channel id.
    pub channel: String,
    pub to: Option<String>,
    pub model: Option<String>,
    pub thinking: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub idempotency_key: Option<String>,
}

/// What to do with an authorized hook request.
#[derive(Debug, Clone, PartialEq)]
pub enum HookDecision {
    Respond(ApiResponse),
    Wake(WakeRequest),
    /// Boxed: the run request is large.
    Agent(Box<AgentRunRequest>),
}

/// Fresh ids for a possible agent run (UUIDs from the caller's RNG).
#[derive(Debug, Clone, Copy)]
pub struct HookIds<'a> {
    pub run_id: &'a str,
    pub job_id: &'a str,
}

fn str_field(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A requested agent id: a known id, else (as the reference) the default agent.
fn target_agent(agents: &Agents, requested: Option<&str>) -> String {
    match requested.map(|r| r.trim().to_ascii_lowercase()) {
        Some(id) if agents.ids.contains(&id) => id,
        _ => agents.default_agent(),
    }
}

fn scoped(agent: &str, key: &str) -> String {
    match crate::tools::parse_agent_session_key(key) {
        Some((a, rest)) => format!("agent:{a}:{rest}"),
        None => format!("agent:{agent}:{key}"),
    }
}

/// Decide an authorized request from its body (empty = `{}`).
pub fn decide(hook: &str, body: &[u8], agents: &Agents, policy: &HookPolicy, ids: HookIds<'_>) -> HookDecision {
    let v = match parse_json_body(body) {
        Ok(v) => v.unwrap_or_else(|| json!({})),
        Err(m) => return HookDecision::Respond(hook_error(400, &m)),
    };
    let empty = Map::new();
    let o = v.as_object().unwrap_or(&empty);
    match hook {
        "wake" => decide_wake(o, agents),
        "agent" => decide_agent(o, agents, policy, ids),
        // Mappings (`hooks.mappings`) are not served: every other name is unknown.
        _ => HookDecision::Respond(ApiResponse::not_found()),
    }
}

fn decide_wake(o: &Map<String, Value>, agents: &Agents) -> HookDecision {
    let Some(text) = str_field(o, "text") else {
        return HookDecision::Respond(hook_error(400, "text required"));
    };
    let agent_id = target_agent(agents, str_field(o, "agentId").as_deref());
    let session_key = str_field(o, "sessionKey").map_or_else(|| format!("agent:{agent_id}:main"), |k| scoped(&agent_id, &k));
    HookDecision::Wake(WakeRequest { text, mode: WakeMode::parse(o.get("mode")), agent_id, session_key })
}

fn decide_agent(o: &Map<String, Value>, agents: &Agents, policy: &HookPolicy, ids: HookIds<'_>) -> HookDecision {
    let bad = |m: &str| HookDecision::Respond(hook_error(400, m));
    let Some(message) = str_field(o, "message") else { return bad("message required") };
    let name = str_field(o, "name").unwrap_or_else(|| "Hook".into());
    let requested_agent = str_field(o, "agentId");
    if let Some(allowed) = &policy.allowed_agent_ids {
        if !allowed.iter().any(|a| a == "*") {
            let resolved = target_agent(agents, requested_agent.as_deref());
            if !allowed.contains(&resolved) {
                return bad("agentId is not allowed by hooks.allowedAgentIds");
            }
        }
    }
    let agent_id = target_agent(agents, requested_agent.as_deref());
    let channel = match o.get("channel") {
        None => "last".to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_ascii_lowercase(),
        Some(_) => return bad("channel must be last or a channel id"),
    };
    let model = match o.get("model") {
        None => None,
        Some(m) => match m.as_str().map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => Some(m.to_string()),
            None => return bad("model required"),
        },
    };
    let prefix_ok = |k: &str| {
        policy.allowed_session_key_prefixes.as_ref().is_none_or(|ps| ps.iter().any(|p| k.to_ascii_lowercase().starts_with(p.as_str())))
    };
    let session = match str_field(o, "sessionKey") {
        Some(k) => {
            if !policy.allow_request_session_key {
                return bad("sessionKey is disabled for external /hooks/agent payloads; set hooks.allowRequestSessionKey=true to enable");
            }
            if !prefix_ok(&k) {
                return bad(&prefix_error(policy));
            }
            k
        }
        None => match &policy.default_session_key {
            Some(k) => k.clone(),
            None => {
                let k = format!("cron:{}", ids.job_id);
                if !prefix_ok(&k) && !prefix_ok(&format!("hook:{}", ids.job_id)) {
                    return bad(&prefix_error(policy));
                }
                k
            }
        },
    };
    let timeout_seconds = o
        .get("timeoutSeconds")
        .and_then(Value::as_f64)
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| t.floor().min(u64::MAX as f64) as u64);
    let idempotency_key = str_field(o, "idempotencyKey").filter(|k| k.len() <= 256);
    HookDecision::Agent(Box::new(AgentRunRequest {
        run_id: ids.run_id.to_string(),
        job_id: ids.job_id.to_string(),
        session_key: scoped(&agent_id, &session),
        agent_id,
        message,
        name,
        wake_mode: WakeMode::parse(o.get("wakeMode")),
        deliver: o.get("deliver") != Some(&Value::Bool(false)),
        channel,
        to: str_field(o, "to"),
        model,
        thinking: str_field(o, "thinking"),
        timeout_seconds,
        idempotency_key,
    }))
}

fn prefix_error(policy: &HookPolicy) -> String {
    format!("sessionKey must start with one of: {}", policy.allowed_session_key_prefixes.clone().unwrap_or_default().join(", "))
}

/// How the wake event was enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeOutcome {
    Queued,
    /// Merged into an identical pending event.
    Coalesced,
}

/// `200 {"ok":true,"mode","eventOutcome"}`.
pub fn wake_response(mode: WakeMode, outcome: WakeOutcome) -> ApiResponse {
    let o = match outcome {
        WakeOutcome::Queued => "queued",
        WakeOutcome::Coalesced => "coalesced",
    };
    ApiResponse::json(200, &json!({"ok": true, "mode": mode.as_str(), "eventOutcome": o}))
}

/// `200 {"ok":true,"runId"}` once the run is started.
pub fn agent_response(run_id: &str) -> ApiResponse {
    ApiResponse::json(200, &json!({"ok": true, "runId": run_id}))
}

/// A hook-family failure `{"ok":false,"error":<message>}` (e.g. 503 when runs cannot start).
pub fn failure(status: u16, message: &str) -> ApiResponse {
    hook_error(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(sub_path("/hooks", "/hooks"), Some(""));
        assert_eq!(sub_path("/hooks", "/hooks/"), Some(""));
        assert_eq!(sub_path("/hooks", "/hooks/wake"), Some("wake"));
        assert_eq!(sub_path("/hooks", "/hooks//wake/"), Some("wake/"));
        assert_eq!(sub_path("/hooks", "/hooksy"), None);
        assert!(query_has_token("token"));
        assert!(query_has_token("x=1&%74oken=2"));
        assert!(!query_has_token("tokens=1"));
    }
}
