//! Session keys: which session a request talks to (spec http §5.2; the `agent:<id>:` forms,
//! reserved namespaces, the HTTP and WebSocket defaults).

use crate::openai::ApiError;

/// The 400 message for a reserved `x-openclaw-session-key` (spec http §5.2).
pub const RESERVED_SESSION_KEY: &str = "`x-openclaw-session-key` cannot use reserved internal session namespaces.";
/// The 400 message for an `x-openclaw-session-key` we cannot use (too long, control characters,
/// a malformed `agent:` form). The reference has no such check.
pub const INVALID_SESSION_KEY: &str = "Invalid `x-openclaw-session-key`.";
/// Longest session key accepted from a client (the reference's `chat.send` bound).
pub const SESSION_KEY_MAX_LEN: usize = 512;

/// Namespaces reserved for internal sessions, matched case-insensitively at the start of a key
/// or of the part after `agent:<id>:`. `harness:` keys belong to agent harnesses; we never create
/// them, so a client can never address one.
const RESERVED_NAMESPACES: [&str; 4] = ["subagent:", "cron:", "acp:", "harness:"];

/// Which OpenAI-compatible endpoint a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSurface {
    /// `/v1/chat/completions`: `openai:<uuid>` / `openai-user:<user>`.
    ChatCompletions,
    /// `/v1/responses`: `openresponses:<uuid>` / `openresponses-user:<user>`.
    Responses,
}

impl HttpSurface {
    pub fn prefix(self) -> &'static str {
        match self {
            HttpSurface::ChatCompletions => "openai",
            HttpSurface::Responses => "openresponses",
        }
    }
}

/// `agent:<agentId>:<rest>` split into its parts (agent id as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentKey<'a> {
    pub agent_id: &'a str,
    pub rest: &'a str,
}

/// Agent ids: `[a-z0-9][a-z0-9_-]{0,63}`, case-insensitive (spec http §5.1).
pub fn valid_agent_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// Split an agent-scoped key `agent:<id>:<rest>` (the `agent` literal case-insensitive). `None`
/// when the key is not agent-scoped or the id is not a valid agent id or `rest` is empty.
pub fn parse_agent_session_key(key: &str) -> Option<AgentKey<'_>> {
    let key = key.trim();
    let head = key.get(..6)?;
    if !head.eq_ignore_ascii_case("agent:") {
        return None;
    }
    let (agent_id, rest) = key[6..].split_once(':')?;
    (valid_agent_id(agent_id) && !rest.is_empty()).then_some(AgentKey { agent_id, rest })
}

/// The agent a key belongs to (lowercase), when it is agent-scoped.
pub fn agent_id_of_key(key: &str) -> Option<String> {
    parse_agent_session_key(key).map(|k| k.agent_id.to_ascii_lowercase())
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// Is this key in a reserved internal namespace (`subagent:`, `cron:`, `acp:`, `harness:`), plain
/// or agent-scoped (`agent:<id>:subagent:…`)?
pub fn is_reserved_session_key(key: &str) -> bool {
    let key = key.trim();
    let rest = parse_agent_session_key(key).map(|k| k.rest).unwrap_or(key);
    RESERVED_NAMESPACES.iter().any(|ns| starts_with_ci(key, ns) || starts_with_ci(rest, ns))
}

/// A key as stored: agent-scoped keys get a lowercase `agent:<id>:` prefix; anything else is
/// scoped to `agent_id` (`main` → `agent:main:main`).
pub fn canonical_session_key(key: &str, agent_id: &str) -> String {
    let key = key.trim();
    match parse_agent_session_key(key) {
        Some(k) => format!("agent:{}:{}", k.agent_id.to_ascii_lowercase(), k.rest),
        None => format!("agent:{}:{}", agent_id.to_ascii_lowercase(), key),
    }
}

/// An agent's main session (`agent:<agentId>:main`, the reference's `mainSessionKey` with the
/// default `session.mainKey`): where a WebSocket `agent` run naming its agent goes.
pub fn agent_main_session_key(agent_id: &str) -> String {
    format!("agent:{}:main", agent_id.to_ascii_lowercase())
}

/// The default session of a WebSocket `agent` run: `agent:<agentId>:explicit:<idempotencyKey>`
/// (spec protocol §10.2; [`crate::agent::parse_agent_params`] uses the same rule).
pub fn ws_agent_session_key(agent_id: &str, idempotency_key: &str) -> String {
    format!("agent:{}:explicit:{}", agent_id.to_ascii_lowercase(), idempotency_key)
}

pub(super) fn agent_mismatch(selected: &str, key_agent: &str) -> String {
    format!("agent \"{selected}\" does not match session key agent \"{key_agent}\"")
}

/// The session of an OpenAI-compatible request (spec http §5.2–§5.3), for the agent the request
/// selected (`agent_id`, already resolved by [`crate::openai::resolve_agent`]).
///
/// * `x-openclaw-session-key` (`header`, trimmed; empty counts as absent) wins:
///   reserved namespaces → 400 [`RESERVED_SESSION_KEY`]; an agent-scoped key is used as is (agent
///   part lowercased) and its agent must be `agent_id`, else 400
///   `agent "<selected>" does not match session key agent "<key agent>"`; a plain key is scoped to
///   `agent_id` (see the module docs: the reference 500s here in a multi-agent fleet). Keys longer
///   than [`SESSION_KEY_MAX_LEN`], with control characters, or a malformed `agent:` form → 400
///   [`INVALID_SESSION_KEY`].
/// * else `user` (trimmed, non-empty): `agent:<agentId>:<prefix>-user:<user>`, a stable session;
/// * else `agent:<agentId>:<prefix>:<uuid>`, a new session per request (`uuid` from the caller).
pub fn http_session_key(
    surface: HttpSurface,
    agent_id: &str,
    user: Option<&str>,
    header: Option<&str>,
    uuid: &str,
) -> Result<String, ApiError> {
    let agent_id = agent_id.to_ascii_lowercase();
    if let Some(raw) = header.map(str::trim).filter(|h| !h.is_empty()) {
        if is_reserved_session_key(raw) {
            return Err(ApiError::invalid(RESERVED_SESSION_KEY));
        }
        if raw.len() > SESSION_KEY_MAX_LEN || raw.chars().any(char::is_control) {
            return Err(ApiError::invalid(INVALID_SESSION_KEY));
        }
        if let Some(k) = parse_agent_session_key(raw) {
            let key_agent = k.agent_id.to_ascii_lowercase();
            if key_agent != agent_id {
                return Err(ApiError::invalid(agent_mismatch(&agent_id, &key_agent)));
            }
            return Ok(format!("agent:{key_agent}:{}", k.rest));
        }
        if starts_with_ci(raw, "agent:") {
            return Err(ApiError::invalid(INVALID_SESSION_KEY));
        }
        return Ok(format!("agent:{agent_id}:{raw}"));
    }
    let prefix = surface.prefix();
    match user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(user) => Ok(format!("agent:{agent_id}:{prefix}-user:{user}")),
        None => Ok(format!("agent:{agent_id}:{prefix}:{uuid}")),
    }
}

/// The `kind` of a `sessions.list` row: `global`, `unknown`, `group` (channel group keys) or
/// `direct`.
pub fn row_kind(key: &str) -> &'static str {
    match key {
        "global" => "global",
        "unknown" => "unknown",
        _ if is_group_key(key) => "group",
        _ => "direct",
    }
}

fn is_group_key(key: &str) -> bool {
    let rest = parse_agent_session_key(key).map(|k| k.rest).unwrap_or(key);
    let parts: Vec<&str> = rest.split(':').collect();
    parts.len() >= 3 && matches!(parts[1], "group" | "channel")
}
