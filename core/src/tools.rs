//! Direct tool invocation: `POST /tools/invoke` (spec http §6.6) and the WS methods
//! `tools.catalog` / `tools.invoke`. Sans-IO: the session data comes from a [`ToolHost`] the
//! shell implements over its session database.
//!
//! Built-in tools (no outside service): `sessions_list`, `sessions_history`, `session_status`,
//! `agents_list`. Everything else is `404 not_found "Tool not available: <name>"`, as are the
//! names of the HTTP hard-deny list ([`HTTP_DENY`], adjusted by `gateway.tools.allow`/`deny`).
//!
//! HTTP shell flow (routing stage 9, always on): path match → `POST` only (405 before auth) →
//! gateway auth → scope `operator.write` → body read (≤ [`MAX_BODY_BYTES`]; 413/408 in the
//! OpenAI family with `Connection: close`) → [`handle_http`] (or [`parse_http_body`] +
//! [`invoke`] + [`http_response`]).

use serde_json::{Map, Value, json};

use crate::config::api::ApiConfig;
pub use crate::openai::api_response::BodyError;
use crate::openai::api_response::{ApiResponse, openai_body_error, parse_json_body};
use crate::openai::{Agents, ApiError};
use crate::sessions::{SessionListQuery, SessionStore};
use crate::wire::ErrorShape;
use crate::wire::Reply;

/// Largest `/tools/invoke` body (spec http §8).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Tools never reachable over HTTP unless `gateway.tools.allow` names them.
pub const HTTP_DENY: &[&str] = &[
    "exec",
    "spawn",
    "shell",
    "fs_write",
    "fs_delete",
    "fs_move",
    "apply_patch",
    "sessions_spawn",
    "sessions_send",
    "cron",
    "gateway",
    "nodes",
];

/// `sessions_list` row limit when none is given (`limitApplied`).
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Largest `sessions_list` limit.
pub const MAX_LIST_LIMIT: usize = 200;
/// `sessions_list.messageLimit` is clamped to this.
pub const MAX_LIST_MESSAGES: usize = 20;
/// `sessions_history` text blocks are cut at this many characters.
pub const HISTORY_TEXT_MAX_CHARS: usize = 4000;
/// `sessions_history` keeps the newest messages that fit in this many JSON bytes.
pub const HISTORY_MAX_BYTES: usize = 80 * 1024;

pub const REQUIRES_NAME: &str = "tools.invoke requires name";

/// Which surface the call came from: the HTTP hard-deny list applies to HTTP only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Http,
    Ws,
}

/// A stored session, as the host knows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionRow {
    /// Canonical key (`agent:<agentId>:<rest>`).
    pub key: String,
    pub session_id: Option<String>,
    /// Owning agent; derived from the key when `None`.
    pub agent_id: Option<String>,
    /// `main|group|cron|hook|node|other`; classified from the key when `None`.
    pub kind: Option<String>,
    /// Delivery channel; `unknown` (or `internal` for cron/hook/node sessions) when `None`.
    pub channel: Option<String>,
    pub archived: bool,
    pub pinned: bool,
    /// `createdActor` (e.g. `{"type":"system"}`), passed through.
    pub created_actor: Option<Value>,
    pub label: Option<String>,
    pub display_name: Option<String>,
    /// Unix milliseconds.
    pub updated_at: Option<u64>,
    pub model: Option<String>,
    pub context_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    /// Last run status: `running|done|failed|killed|timeout|paused`.
    pub status: Option<String>,
    pub aborted_last_run: Option<bool>,
}

/// Filters a host may apply itself (all of them are applied again here).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionQuery {
    pub agent_id: Option<String>,
    pub label: Option<String>,
    pub search: Option<String>,
    /// Only sessions updated at or after this unix-ms time.
    pub updated_since_ms: Option<u64>,
    /// The tool needs at most this many rows (newest first); returning more is fine.
    pub limit: usize,
}

/// One page of a session transcript.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPage {
    /// Transcript messages, oldest first (`{"role","content",…}` objects).
    pub messages: Vec<Value>,
    /// Messages in the whole transcript.
    pub total_messages: usize,
}

/// A configured agent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSummary {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Effective primary model (`provider/model`).
    pub model: Option<String>,
}

/// The session database, as the built-in tools need it.
pub trait ToolHost {
    /// Sessions matching the query, in any order. Returning all sessions is correct (the tool
    /// filters, sorts and limits); a large store should pre-filter and keep the newest
    /// `query.limit + 1` rows.
    fn sessions(&self, query: &SessionQuery) -> Vec<SessionRow>;
    /// The newest `limit` messages (all when `None`) of a session, skipping the newest `offset`.
    /// `None` when the session does not exist.
    fn history(&self, session_key: &str, limit: Option<usize>, offset: usize) -> Option<HistoryPage>;
    /// One session by key. The tools also try `session_id` matches through [`ToolHost::sessions`].
    fn session(&self, session_key: &str) -> Option<SessionRow>;
    /// The configured agents.
    fn agents(&self) -> Vec<AgentSummary>;
}

/// The built-in tools' view of the shell's session store ([`SessionStore`]; `None` when it is
/// unavailable: no sessions) and of the configured agents.
pub struct StoreHost<'a> {
    pub store: Option<&'a dyn SessionStore>,
    pub api: &'a ApiConfig,
}

impl ToolHost for StoreHost<'_> {
    fn sessions(&self, q: &SessionQuery) -> Vec<SessionRow> {
        let Some(store) = self.store else { return Vec::new() };
        let query = SessionListQuery {
            limit: q.limit.saturating_add(1),
            agent_id: q.agent_id.clone(),
            label: q.label.clone(),
            search: q.search.clone(),
            updated_since_ms: q.updated_since_ms,
            ..Default::default()
        };
        store.list(&query).map(|page| page.sessions.iter().map(SessionRow::from).collect()).unwrap_or_default()
    }

    fn history(&self, session_key: &str, limit: Option<usize>, offset: usize) -> Option<HistoryPage> {
        let store = self.store?;
        let page = store.history(session_key, limit.unwrap_or(usize::MAX), offset).ok()?;
        if page.total == 0 && store.session(session_key).ok()?.is_none() {
            return None;
        }
        let total_messages = usize::try_from(page.total).unwrap_or(usize::MAX);
        Some(HistoryPage { messages: crate::sessions::display_messages(&page.entries, None), total_messages })
    }

    fn session(&self, session_key: &str) -> Option<SessionRow> {
        self.store?.session(session_key).ok()?.as_ref().map(SessionRow::from)
    }

    fn agents(&self) -> Vec<AgentSummary> {
        let api = self.api;
        api.agents
            .ids
            .iter()
            .map(|id| AgentSummary {
                id: id.clone(),
                name: api.agent_configs.get(id).and_then(|a| a.name.clone()),
                description: None,
                model: api.model_for(id, None),
            })
            .collect()
    }
}

/// Configuration and clock for one call.
#[derive(Debug, Clone, Copy)]
pub struct ToolsContext<'a> {
    pub agents: &'a Agents,
    /// `gateway.tools.allow` (removes names from [`HTTP_DENY`]).
    pub tools_allow: &'a [String],
    /// `gateway.tools.deny` (adds names to [`HTTP_DENY`]).
    pub tools_deny: &'a [String],
    /// `agents.defaults.subagents.allowAgents` (`*` = any): the agents `agents_list` shows
    /// besides the requester.
    pub subagent_allow: &'a [String],
    /// Gateway version (the `session_status` card).
    pub version: &'a str,
    /// Current unix time in milliseconds.
    pub now_ms: u64,
}

impl<'a> ToolsContext<'a> {
    /// The context of a call under this API configuration.
    pub fn from_api(api: &'a ApiConfig, version: &'a str, now_ms: u64) -> Self {
        ToolsContext {
            agents: &api.agents,
            tools_allow: &api.tools_allow,
            tools_deny: &api.tools_deny,
            subagent_allow: &[],
            version,
            now_ms,
        }
    }
}

/// A parsed `/tools/invoke` body (or `tools.invoke` params).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolsInvokeInput {
    /// `name ?? tool`, trimmed; empty when missing or not a string.
    pub name: String,
    pub action: Option<String>,
    pub args: Map<String, Value>,
    pub session_key: Option<String>,
    pub agent_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub dry_run: bool,
}

fn opt_string(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

impl ToolsInvokeInput {
    /// From a JSON value (a non-object is `{}`). `name` wins over `tool` when present at all.
    pub fn from_value(v: &Value) -> Self {
        let empty = Map::new();
        let o = v.as_object().unwrap_or(&empty);
        let name_value = match o.get("name") {
            Some(n) if !n.is_null() => Some(n),
            _ => o.get("tool"),
        };
        ToolsInvokeInput {
            name: name_value.and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string(),
            action: opt_string(o, "action"),
            args: o.get("args").and_then(Value::as_object).cloned().unwrap_or_default(),
            session_key: opt_string(o, "sessionKey"),
            agent_id: opt_string(o, "agentId"),
            idempotency_key: opt_string(o, "idempotencyKey"),
            dry_run: o.get("dryRun").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// Parse a `/tools/invoke` body: empty is `{}`; malformed JSON is an OpenAI-family 400
/// (`tools-invoke-badjson`).
pub fn parse_http_body(body: &[u8]) -> Result<ToolsInvokeInput, ApiError> {
    let v = parse_json_body(body).map_err(ApiError::invalid)?.unwrap_or_else(|| json!({}));
    Ok(ToolsInvokeInput::from_value(&v))
}

/// The error `type` of a failed invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolErrorType {
    InvalidRequest,
    NotFound,
    ToolCallBlocked,
    ToolError,
}

impl ToolErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolErrorType::InvalidRequest => "invalid_request",
            ToolErrorType::NotFound => "not_found",
            ToolErrorType::ToolCallBlocked => "tool_call_blocked",
            ToolErrorType::ToolError => "tool_error",
        }
    }
    /// The `error.code` of a failed WS `tools.invoke`.
    pub fn rpc_code(self) -> &'static str {
        match self {
            ToolErrorType::InvalidRequest => "validation_error",
            ToolErrorType::NotFound => "not_found",
            ToolErrorType::ToolCallBlocked => "forbidden",
            ToolErrorType::ToolError => "internal_error",
        }
    }
}

/// The result of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeOutcome {
    /// `result` is `{"content":[…],"details":…}`.
    Ok {
        tool: String,
        result: Value,
    },
    Err {
        status: u16,
        tool: String,
        kind: ToolErrorType,
        message: String,
    },
}

impl InvokeOutcome {
    fn err(status: u16, tool: &str, kind: ToolErrorType, message: impl Into<String>) -> Self {
        InvokeOutcome::Err { status, tool: tool.to_string(), kind, message: message.into() }
    }
    pub fn status(&self) -> u16 {
        match self {
            InvokeOutcome::Ok { .. } => 200,
            InvokeOutcome::Err { status, .. } => *status,
        }
    }
}

/// The `/tools/invoke` response for an outcome.
pub fn http_response(outcome: &InvokeOutcome) -> ApiResponse {
    match outcome {
        InvokeOutcome::Ok { result, .. } => ApiResponse::json(200, &json!({"ok": true, "result": result})),
        InvokeOutcome::Err { status, kind, message, .. } => {
            ApiResponse::json(*status, &json!({"ok": false, "error": {"type": kind.as_str(), "message": message}}))
        }
    }
}

/// Body → response, for a shell that has read the body (after auth and the scope check).
pub fn handle_http(body: &[u8], ctx: &ToolsContext<'_>, host: &dyn ToolHost) -> ApiResponse {
    match parse_http_body(body) {
        Ok(input) => http_response(&invoke(&input, Surface::Http, ctx, host)),
        Err(e) => ApiResponse::openai_error(&e),
    }
}

/// The answer to a body read failure (413/408, OpenAI family, `Connection: close`).
pub fn body_error(e: BodyError) -> ApiResponse {
    openai_body_error(e)
}

// ---------------------------------------------------------------------------------------------
// Session keys and the invocation target

/// `agent:<agentId>:<rest>` → `(agentId lower-cased, rest)`.
pub fn parse_agent_session_key(key: &str) -> Option<(String, &str)> {
    let rest =
        key.strip_prefix("agent:").or_else(|| key.get(..6).filter(|p| p.eq_ignore_ascii_case("agent:")).and_then(|_| key.get(6..)))?;
    let (agent, tail) = rest.split_once(':')?;
    (!agent.is_empty() && !tail.is_empty()).then(|| (agent.to_ascii_lowercase(), tail))
}

/// The agent and canonical session key a call targets (`sessionKey` defaults to `main`).
pub fn resolve_target(agents: &Agents, session_key: Option<&str>, agent_id: Option<&str>) -> Result<(String, String), String> {
    let raw = session_key.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("main");
    let requested = agent_id.map(str::trim).filter(|s| !s.is_empty());
    if raw.len() >= 6 && raw.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("agent:")) {
        let Some((agent, rest)) = parse_agent_session_key(raw) else {
            return Err(format!("malformed session key \"{raw}\""));
        };
        if let Some(req) = requested {
            if req.to_ascii_lowercase() != agent {
                return Err(format!("agent \"{req}\" does not match session key agent \"{agent}\""));
            }
        }
        if !agents.ids.contains(&agent) {
            return Err(format!("unknown agent \"{agent}\""));
        }
        return Ok((agent.clone(), format!("agent:{agent}:{rest}")));
    }
    let agent = match requested {
        Some(req) => {
            let id = req.to_ascii_lowercase();
            if !agents.ids.contains(&id) {
                return Err(format!("unknown agent \"{req}\""));
            }
            id
        }
        None => agents.ambient_owner().map(str::to_string).ok_or_else(|| {
            "Multiple agents are configured, but this operation has no explicit owner. Pass agentId or an agent-scoped sessionKey."
                .to_string()
        })?,
    };
    Ok((agent.clone(), format!("agent:{agent}:{raw}")))
}

/// Is `name` available on this surface under `gateway.tools.allow`/`deny`?
pub fn tool_allowed(name: &str, surface: Surface, ctx: &ToolsContext<'_>) -> bool {
    if surface != Surface::Http {
        return true;
    }
    let n = name.to_ascii_lowercase();
    let listed = |l: &[String]| l.iter().any(|x| x.trim().eq_ignore_ascii_case(&n) || x.trim() == "*");
    if listed(ctx.tools_deny) {
        return false;
    }
    !HTTP_DENY.contains(&n.as_str()) || ctx.tools_allow.iter().any(|x| x.trim().eq_ignore_ascii_case(&n))
}

/// Invoke one tool (the shared engine behind HTTP and WS).
pub fn invoke(input: &ToolsInvokeInput, surface: Surface, ctx: &ToolsContext<'_>, host: &dyn ToolHost) -> InvokeOutcome {
    let name = input.name.as_str();
    if name.is_empty() {
        return InvokeOutcome::err(400, "", ToolErrorType::InvalidRequest, REQUIRES_NAME);
    }
    let (agent, session_key) = match resolve_target(ctx.agents, input.session_key.as_deref(), input.agent_id.as_deref()) {
        Ok(t) => t,
        Err(m) => return InvokeOutcome::err(400, name, ToolErrorType::InvalidRequest, m),
    };
    let Some(tool) = BuiltinTool::from_name(name).filter(|_| tool_allowed(name, surface, ctx)) else {
        return InvokeOutcome::err(404, name, ToolErrorType::NotFound, format!("Tool not available: {name}"));
    };
    let call = ToolCall { agent: &agent, session_key: &session_key, args: &input.args, ctx, host };
    match tool.execute(&call) {
        Ok(result) => InvokeOutcome::Ok { tool: name.to_string(), result },
        Err(m) => InvokeOutcome::err(400, name, ToolErrorType::ToolError, m),
    }
}

// ---------------------------------------------------------------------------------------------
// WS methods

fn non_empty() -> Value {
    json!({"type": "string", "minLength": 1})
}

/// `tools.invoke` params schema (closed object).
pub fn invoke_params_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": non_empty(),
            "args": {"type": "object"},
            "sessionKey": non_empty(),
            "agentId": non_empty(),
            "confirm": {"type": "boolean"},
            "idempotencyKey": non_empty(),
        },
        "additionalProperties": false,
    })
}

/// `tools.catalog` params schema (closed object).
pub fn catalog_params_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"agentId": non_empty(), "includePlugins": {"type": "boolean"}},
        "additionalProperties": false,
    })
}

fn validate(method: &str, schema: &Value, params: Option<&Value>) -> Result<(), ErrorShape> {
    let empty = json!({});
    crate::wire::schema::validate(schema, params.unwrap_or(&empty))
        .map_err(|d| ErrorShape::invalid_request(format!("invalid {method} params: {d}")))
}

/// WS `tools.invoke`: protocol-shaped success and failure payloads (a tool failure is still a
/// successful response with `ok:false` in the payload).
pub fn ws_invoke(params: Option<&Value>, ctx: &ToolsContext<'_>, host: &dyn ToolHost) -> Reply {
    if let Err(e) = validate("tools.invoke", &invoke_params_schema(), params) {
        return Reply::err(e);
    }
    let p = params.cloned().unwrap_or_else(|| json!({}));
    let requested = p.get("name").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
    if requested.is_empty() {
        return Reply::err(ErrorShape::invalid_request("invalid tools.invoke params: name required"));
    }
    let input = ToolsInvokeInput { name: requested.clone(), ..ToolsInvokeInput::from_value(&p) };
    let payload = match invoke(&input, Surface::Ws, ctx, host) {
        InvokeOutcome::Ok { tool, result } => json!({"ok": true, "toolName": tool, "output": result, "source": "core"}),
        InvokeOutcome::Err { tool, kind, message, .. } => json!({
            "ok": false,
            "toolName": if tool.is_empty() { requested } else { tool },
            "error": {"code": kind.rpc_code(), "message": message},
        }),
    };
    Reply::Ok(Some(payload))
}

/// WS `tools.catalog`: the built-in tools grouped for the agent configuration UI.
pub fn ws_catalog(params: Option<&Value>, agents: &Agents) -> Reply {
    if let Err(e) = validate("tools.catalog", &catalog_params_schema(), params) {
        return Reply::err(e);
    }
    let requested = params.and_then(|p| p.get("agentId")).and_then(Value::as_str).map(str::trim);
    let agent = match requested {
        Some(id) => {
            let id_l = id.to_ascii_lowercase();
            if !agents.ids.contains(&id_l) {
                return Reply::err(ErrorShape::invalid_request(format!("unknown agent id \"{id}\"")));
            }
            id_l
        }
        None => agents.default.clone().or_else(|| agents.ids.first().cloned()).unwrap_or_else(|| "main".into()),
    };
    Reply::Ok(Some(catalog_payload(&agent)))
}

/// The `tools.catalog` payload for an agent.
pub fn catalog_payload(agent_id: &str) -> Value {
    let mut groups: Vec<(&str, &str, Vec<Value>)> = Vec::new();
    for t in BuiltinTool::ALL {
        let d = t.descriptor();
        let entry = json!({
            "id": d.name, "label": d.label, "description": d.description, "source": "core",
            "risk": "low", "defaultProfiles": d.profiles,
        });
        match groups.iter_mut().find(|g| g.0 == d.group) {
            Some(g) => g.2.push(entry),
            None => groups.push((d.group, d.group_label, vec![entry])),
        }
    }
    json!({
        "agentId": agent_id,
        "profiles": [
            {"id": "minimal", "label": "Minimal"},
            {"id": "coding", "label": "Coding"},
            {"id": "messaging", "label": "Messaging"},
            {"id": "full", "label": "Full"},
        ],
        "groups": groups.into_iter().map(|(id, label, tools)| json!({"id": id, "label": label, "source": "core", "tools": tools})).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------
// Built-in tools

/// The tools served without an outside service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTool {
    SessionsList,
    SessionsHistory,
    SessionStatus,
    AgentsList,
}

/// Catalog metadata of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolDescriptor {
    pub name: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub group: &'static str,
    pub group_label: &'static str,
    pub profiles: &'static [&'static str],
}

impl BuiltinTool {
    pub const ALL: [BuiltinTool; 4] =
        [BuiltinTool::SessionsList, BuiltinTool::SessionsHistory, BuiltinTool::SessionStatus, BuiltinTool::AgentsList];

    /// Exact-name lookup (tool names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.descriptor().name == name)
    }

    pub fn descriptor(self) -> ToolDescriptor {
        match self {
            BuiltinTool::SessionsList => ToolDescriptor {
                name: "sessions_list",
                label: "Sessions",
                description: "List sessions with optional filters (kinds, activeMinutes, label, agentId, search) and the last messages of each.",
                group: "sessions",
                group_label: "Sessions",
                profiles: &["coding", "messaging", "full"],
            },
            BuiltinTool::SessionsHistory => ToolDescriptor {
                name: "sessions_history",
                label: "Session History",
                description: "Read the bounded, sanitized transcript of one session (tool results only with includeTools).",
                group: "sessions",
                group_label: "Sessions",
                profiles: &["coding", "messaging", "full"],
            },
            BuiltinTool::SessionStatus => ToolDescriptor {
                name: "session_status",
                label: "Session Status",
                description: "Show a /status-style card for a session (model, tokens, last run).",
                group: "sessions",
                group_label: "Sessions",
                profiles: &["minimal", "coding", "messaging", "full"],
            },
            BuiltinTool::AgentsList => ToolDescriptor {
                name: "agents_list",
                label: "Agents",
                description: "List agent ids you can target, with name and model metadata.",
                group: "agents",
                group_label: "Agents",
                profiles: &["coding", "messaging", "full"],
            },
        }
    }

    fn execute(self, call: &ToolCall<'_>) -> Result<Value, String> {
        match self {
            BuiltinTool::SessionsList => sessions_list(call),
            BuiltinTool::SessionsHistory => sessions_history(call),
            BuiltinTool::SessionStatus => session_status(call),
            BuiltinTool::AgentsList => Ok(agents_list(call)),
        }
    }
}

struct ToolCall<'a> {
    agent: &'a str,
    session_key: &'a str,
    args: &'a Map<String, Value>,
    ctx: &'a ToolsContext<'a>,
    host: &'a dyn ToolHost,
}

/// `{"content":[{"type":"text","text":<JSON, 2-space indent>}],"details":payload}` (the
/// reference's `jsonResult`).
pub fn json_result(payload: Value) -> Value {
    let text = serde_json::to_string_pretty(&payload).unwrap_or_default();
    json!({"content": [{"type": "text", "text": text}], "details": payload})
}

fn int_param(args: &Map<String, Value>, key: &str, min: u64) -> Result<Option<u64>, String> {
    let what = if min == 0 { "a non-negative integer" } else { "a positive integer" };
    let bad = || format!("{key} must be {what}");
    let n = match args.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(bad)?,
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().parse::<f64>().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if !n.is_finite() || n.fract() != 0.0 || n < min as f64 || n > 9.0e15 {
        return Err(bad());
    }
    Ok(Some(n as u64))
}

fn str_param(args: &Map<String, Value>, key: &str) -> Option<String> {
    opt_string(args, key)
}

fn kinds_param(args: &Map<String, Value>) -> Vec<String> {
    let raw: Vec<String> = match args.get("kinds") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|k| k.trim().to_ascii_lowercase())
        .filter(|k| matches!(k.as_str(), "main" | "group" | "cron" | "hook" | "node" | "other"))
        .collect()
}

/// `main|group|cron|hook|node|other` from a session key.
pub fn classify_session_kind(key: &str) -> &'static str {
    let rest = parse_agent_session_key(key).map(|(_, r)| r).unwrap_or(key);
    let lower = rest.to_ascii_lowercase();
    if lower == "main" || lower == "global" {
        "main"
    } else if lower.contains(":group:") || lower.contains(":channel:") || lower.starts_with("group:") || lower.starts_with("channel:") {
        "group"
    } else if lower.starts_with("cron:") {
        "cron"
    } else if lower.starts_with("hook:") {
        "hook"
    } else if lower.starts_with("node-") || lower.starts_with("node:") {
        "node"
    } else {
        "other"
    }
}

fn row_agent(r: &SessionRow) -> String {
    r.agent_id.clone().or_else(|| parse_agent_session_key(&r.key).map(|(a, _)| a)).unwrap_or_else(|| "main".into())
}

fn row_kind(r: &SessionRow) -> String {
    r.kind.clone().unwrap_or_else(|| classify_session_kind(&r.key).to_string())
}

/// A stored session as the `/tools/invoke` `sessions_list` row sees it (the tool builds the
/// reference's row shape, `tools-invoke-ok-sessions-list`, `E-tools-invoke-name-field`). The
/// derived title is not carried: the reference's tool rows show explicit names only.
impl From<&crate::sessions::SessionSummary> for SessionRow {
    fn from(s: &crate::sessions::SessionSummary) -> Self {
        SessionRow {
            key: s.key.clone(),
            session_id: Some(s.session_id.clone()),
            agent_id: Some(s.agent_id.clone()),
            kind: None,
            channel: s.channel.clone(),
            label: s.label.clone(),
            updated_at: Some(s.updated_ms),
            model: s.last_model.clone(),
            total_tokens: (s.last_total_tokens > 0).then_some(s.last_total_tokens),
            status: s.status.map(|st| st.as_str().to_string()),
            aborted_last_run: Some(s.aborted_last_run),
            ..Default::default()
        }
    }
}

/// A `sessions_list` row in the reference's key order.
pub fn session_row_json(r: &SessionRow) -> Value {
    let kind = row_kind(r);
    let channel = r
        .channel
        .clone()
        .unwrap_or_else(|| if matches!(kind.as_str(), "cron" | "hook" | "node") { "internal".into() } else { "unknown".into() });
    let mut o = Map::new();
    o.insert("key".into(), json!(r.key));
    if let Some(s) = &r.session_id {
        o.insert("sessionId".into(), json!(s));
    }
    o.insert("agentId".into(), json!(row_agent(r)));
    o.insert("kind".into(), json!(kind));
    o.insert("channel".into(), json!(channel));
    o.insert("archived".into(), json!(r.archived));
    o.insert("pinned".into(), json!(r.pinned));
    if let Some(a) = &r.created_actor {
        o.insert("createdActor".into(), a.clone());
    }
    if let Some(l) = &r.label {
        o.insert("label".into(), json!(l));
    }
    if let Some(d) = &r.display_name {
        o.insert("displayName".into(), json!(d));
    }
    if let Some(u) = r.updated_at {
        o.insert("updatedAt".into(), json!(u));
    }
    if let Some(m) = &r.model {
        o.insert("model".into(), json!(m));
    }
    if let Some(c) = r.context_tokens {
        o.insert("contextTokens".into(), json!(c));
    }
    if let Some(t) = r.total_tokens {
        o.insert("totalTokens".into(), json!(t));
    }
    if let Some(s) = r.status.as_deref().filter(|s| matches!(*s, "running" | "done" | "failed" | "killed" | "timeout" | "paused")) {
        o.insert("status".into(), json!(s));
    }
    if let Some(a) = r.aborted_last_run {
        o.insert("abortedLastRun".into(), json!(a));
    }
    Value::Object(o)
}

fn is_tool_message(m: &Value) -> bool {
    matches!(m.get("role").and_then(Value::as_str), Some("tool" | "toolResult" | "tool_result" | "function"))
}

fn sessions_list(call: &ToolCall<'_>) -> Result<Value, String> {
    let a = call.args;
    let limit = int_param(a, "limit", 1)?.map_or(DEFAULT_LIST_LIMIT, |n| usize::try_from(n).unwrap_or(usize::MAX).min(MAX_LIST_LIMIT));
    let active_minutes = int_param(a, "activeMinutes", 1)?;
    let message_limit = int_param(a, "messageLimit", 0)?.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX).min(MAX_LIST_MESSAGES));
    let kinds = kinds_param(a);
    let label = str_param(a, "label");
    let agent_filter = str_param(a, "agentId").map(|s| s.to_ascii_lowercase());
    let search = str_param(a, "search");
    let since = active_minutes.map(|m| call.ctx.now_ms.saturating_sub(m.saturating_mul(60_000)));
    let query =
        SessionQuery { agent_id: agent_filter.clone(), label: label.clone(), search: search.clone(), updated_since_ms: since, limit };
    let mut rows: Vec<SessionRow> = call
        .host
        .sessions(&query)
        .into_iter()
        .filter(|r| !r.key.is_empty() && r.key != "unknown" && r.key != "global")
        .filter(|r| kinds.is_empty() || kinds.contains(&row_kind(r)))
        .filter(|r| agent_filter.as_ref().is_none_or(|f| row_agent(r) == *f))
        .filter(|r| label.as_ref().is_none_or(|l| r.label.as_deref() == Some(l.as_str())))
        .filter(|r| since.is_none_or(|s| r.updated_at.is_some_and(|u| u >= s)))
        .filter(|r| {
            search.as_ref().is_none_or(|q| {
                let q = q.to_lowercase();
                [Some(&r.key), r.label.as_ref(), r.display_name.as_ref(), r.session_id.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|f| f.to_lowercase().contains(&q))
            })
        })
        .collect();
    rows.sort_by(|x, y| y.updated_at.unwrap_or(0).cmp(&x.updated_at.unwrap_or(0)).then_with(|| x.key.cmp(&y.key)));
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let sessions: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = session_row_json(r);
            if message_limit > 0 {
                let msgs: Vec<Value> = call
                    .host
                    .history(&r.key, None, 0)
                    .map(|p| p.messages.into_iter().filter(|m| !is_tool_message(m)).collect::<Vec<_>>())
                    .map(|m| m[m.len().saturating_sub(message_limit)..].to_vec())
                    .unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("messages".into(), Value::Array(msgs));
                }
            }
            v
        })
        .collect();
    Ok(json_result(json!({"count": sessions.len(), "sessions": sessions, "hasMore": has_more, "limitApplied": limit})))
}

/// `main`/`current` → the caller's session; a bare key → the caller's agent; a session id → its
/// session.
fn resolve_session_ref(call: &ToolCall<'_>, raw: &str) -> Option<SessionRow> {
    let raw = raw.trim();
    if raw == "main" || raw == "current" {
        return call
            .host
            .session(call.session_key)
            .or_else(|| Some(SessionRow { key: call.session_key.to_string(), ..Default::default() }));
    }
    let key = if parse_agent_session_key(raw).is_some() { raw.to_string() } else { format!("agent:{}:{raw}", call.agent) };
    if let Some(r) = call.host.session(&key) {
        return Some(r);
    }
    let by_id = SessionQuery { search: Some(raw.to_string()), limit: MAX_LIST_LIMIT, ..Default::default() };
    call.host.sessions(&by_id).into_iter().find(|r| r.session_id.as_deref() == Some(raw))
}

fn truncate_text(s: &str) -> (String, bool) {
    let units: usize = s.encode_utf16().count();
    if units <= HISTORY_TEXT_MAX_CHARS {
        return (s.to_string(), false);
    }
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        n += c.len_utf16();
        if n > HISTORY_TEXT_MAX_CHARS {
            break;
        }
        out.push(c);
    }
    out.push_str("\n…(truncated)…");
    (out, true)
}

fn sanitize_message(m: &Value) -> (Value, bool) {
    let Some(o) = m.as_object() else { return (m.clone(), false) };
    let mut o = o.clone();
    let mut truncated = false;
    for k in ["details", "usage", "cost"] {
        truncated |= o.remove(k).is_some();
    }
    let cut = |v: &mut Value, truncated: &mut bool| {
        if let Some(s) = v.as_str() {
            let (t, c) = truncate_text(s);
            *truncated |= c;
            *v = Value::String(t);
        }
    };
    if let Some(c) = o.get_mut("content") {
        if c.is_string() {
            cut(c, &mut truncated);
        } else if let Some(blocks) = c.as_array_mut() {
            for b in blocks.iter_mut().filter_map(Value::as_object_mut) {
                for k in ["text", "thinking", "partialJson"] {
                    if let Some(v) = b.get_mut(k) {
                        cut(v, &mut truncated);
                    }
                }
                truncated |= b.remove("thinkingSignature").is_some();
                if b.get("type").and_then(Value::as_str) == Some("image") {
                    truncated |= b.remove("data").is_some();
                    b.insert("omitted".into(), json!(true));
                }
            }
        }
    }
    if let Some(v) = o.get_mut("text") {
        cut(v, &mut truncated);
    }
    (Value::Object(o), truncated)
}

fn sessions_history(call: &ToolCall<'_>) -> Result<Value, String> {
    let a = call.args;
    let Some(raw) = str_param(a, "sessionKey") else {
        return Err("sessionKey required".into());
    };
    let limit = int_param(a, "limit", 1)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let offset = int_param(a, "offset", 0)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let include_tools = a.get("includeTools").and_then(Value::as_bool).unwrap_or(false);
    let Some(row) = resolve_session_ref(call, &raw) else {
        return Ok(json_result(json!({"status": "error", "error": format!("Session not found: {raw}")})));
    };
    let page = call.host.history(&row.key, limit, offset.unwrap_or(0)).unwrap_or_default();
    let selected: Vec<&Value> = page.messages.iter().filter(|m| include_tools || !is_tool_message(m)).collect();
    let mut content_truncated = false;
    let sanitized: Vec<Value> = selected
        .iter()
        .map(|m| {
            let (v, t) = sanitize_message(m);
            content_truncated |= t;
            v
        })
        .collect();
    // Keep the newest messages that fit the byte cap.
    let mut kept: Vec<Value> = Vec::new();
    let mut bytes = 2usize;
    for m in sanitized.iter().rev() {
        let n = m.to_string().len() + usize::from(!kept.is_empty());
        if bytes + n > HISTORY_MAX_BYTES {
            break;
        }
        bytes += n;
        kept.push(m.clone());
    }
    kept.reverse();
    let mut hard_capped = false;
    if kept.is_empty() && !sanitized.is_empty() {
        hard_capped = true;
        kept.push(json!({"role": "assistant", "content": "[sessions_history omitted: message too large]"}));
        bytes = Value::Array(kept.clone()).to_string().len();
    }
    let dropped = kept.len() < sanitized.len() || hard_capped;
    let mut out = json!({
        "sessionKey": row.key,
        "messages": kept,
        "truncated": dropped || content_truncated,
        "droppedMessages": dropped,
        "contentTruncated": content_truncated,
        "contentRedacted": false,
        "bytes": bytes,
    });
    if let (Some(off), Some(o)) = (offset, out.as_object_mut()) {
        let next = off.saturating_add(page.messages.len());
        let has_more = next < page.total_messages;
        o.insert("offset".into(), json!(off));
        if has_more {
            o.insert("nextOffset".into(), json!(next));
        }
        o.insert("hasMore".into(), json!(has_more));
        o.insert("totalMessages".into(), json!(page.total_messages));
    }
    Ok(json_result(out))
}

fn age_text(now_ms: u64, then_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

fn session_status(call: &ToolCall<'_>) -> Result<Value, String> {
    let a = call.args;
    if a.get("model").is_some_and(|m| !m.is_null()) {
        return Err("Model switching via session_status is not supported by this gateway.".into());
    }
    let raw = str_param(a, "sessionKey").unwrap_or_else(|| call.session_key.to_string());
    let row = if raw == call.session_key || raw == "main" || raw == "current" {
        call.host.session(call.session_key)
    } else {
        resolve_session_ref(call, &raw)
    };
    let Some(row) = row else {
        return Err(format!("Unknown sessionKey: {raw}"));
    };
    let mut lines = vec![format!("🦞 OpenClaw {}", call.ctx.version)];
    let model = row.model.clone().unwrap_or_else(|| "unknown".into());
    let context = match (row.total_tokens, row.context_tokens) {
        (Some(t), Some(c)) if c > 0 => format!("{t}/{c} ({}%)", t.saturating_mul(100) / c),
        (Some(t), _) => t.to_string(),
        (None, Some(c)) => format!("?/{c}"),
        (None, None) => "unknown".into(),
    };
    lines.push(format!("🧠 Model: {model} · 📚 Context: {context}"));
    let updated = row.updated_at.map(|u| format!(" • updated {}", age_text(call.ctx.now_ms, u))).unwrap_or_default();
    lines.push(format!("🧵 Session: {}{updated}", row.key));
    if let Some(s) = &row.status {
        lines.push(format!("⚙️ Last run: {s}{}", if row.aborted_last_run == Some(true) { " (aborted)" } else { "" }));
    }
    let status_text = lines.join("\n");
    Ok(json!({
        "content": [{"type": "text", "text": status_text}],
        "details": {"ok": true, "sessionKey": row.key, "changedModel": false, "statusText": status_text},
    }))
}

fn agents_list(call: &ToolCall<'_>) -> Value {
    let all = call.host.agents();
    let allow_any = call.ctx.subagent_allow.iter().any(|x| x.trim() == "*");
    let allowed = |id: &str| allow_any || call.ctx.subagent_allow.iter().any(|x| x.trim().eq_ignore_ascii_case(id));
    let mut others: Vec<&AgentSummary> = all.iter().filter(|a| a.id != call.agent && allowed(&a.id)).collect();
    others.sort_by(|x, y| x.id.cmp(&y.id));
    let requester = all.iter().find(|a| a.id == call.agent);
    let entry = |id: &str, a: Option<&AgentSummary>| {
        let mut o = Map::new();
        o.insert("id".into(), json!(id));
        if let Some(n) = a.and_then(|a| a.name.as_ref()) {
            o.insert("name".into(), json!(n));
        }
        if let Some(d) = a.and_then(|a| a.description.as_ref()) {
            o.insert("description".into(), json!(d));
        }
        o.insert("configured".into(), json!(a.is_some()));
        if let Some(m) = a.and_then(|a| a.model.as_ref()) {
            o.insert("model".into(), json!(m));
        }
        Value::Object(o)
    };
    let mut agents = vec![entry(call.agent, requester)];
    agents.extend(others.into_iter().map(|a| entry(&a.id, Some(a))));
    json_result(json!({"requester": call.agent, "allowAny": allow_any, "agents": agents}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Host {
        rows: Vec<SessionRow>,
        history: Vec<(String, Vec<Value>)>,
        agents: Vec<AgentSummary>,
    }

    impl ToolHost for Host {
        fn sessions(&self, _q: &SessionQuery) -> Vec<SessionRow> {
            self.rows.clone()
        }
        fn history(&self, key: &str, limit: Option<usize>, offset: usize) -> Option<HistoryPage> {
            let all = &self.history.iter().find(|(k, _)| k == key)?.1;
            let end = all.len().saturating_sub(offset);
            let start = limit.map_or(0, |l| end.saturating_sub(l));
            Some(HistoryPage { messages: all[start..end].to_vec(), total_messages: all.len() })
        }
        fn session(&self, key: &str) -> Option<SessionRow> {
            self.rows.iter().find(|r| r.key == key).cloned()
        }
        fn agents(&self) -> Vec<AgentSummary> {
            self.agents.clone()
        }
    }

    fn single() -> Agents {
        Agents { ids: vec!["main".into()], default: Some("main".into()) }
    }

    fn ctx(agents: &Agents) -> ToolsContext<'_> {
        ToolsContext { agents, tools_allow: &[], tools_deny: &[], subagent_allow: &[], version: "0.1.0", now_ms: 1_795_603_800_000 }
    }

    fn row(key: &str, updated: u64) -> SessionRow {
        SessionRow {
            key: key.into(),
            session_id: Some(format!("sid-{updated}")),
            updated_at: Some(updated),
            model: Some("fake-model".into()),
            context_tokens: Some(128_000),
            total_tokens: Some(11),
            status: Some("done".into()),
            aborted_last_run: Some(false),
            ..Default::default()
        }
    }

    fn http(body: &str, c: &ToolsContext<'_>, h: &Host) -> (u16, Value) {
        let r = handle_http(body.as_bytes(), c, h);
        (r.status, r.json_body().unwrap())
    }

    #[test]
    fn request_errors() {
        let a = single();
        let c = ctx(&a);
        let h = Host::default();
        assert_eq!(http("", &c, &h), (400, json!({"ok": false, "error": {"type": "invalid_request", "message": REQUIRES_NAME}})));
        assert_eq!(http("[1]", &c, &h).1["error"]["message"], REQUIRES_NAME);
        assert_eq!(http(r#"{"name":5,"tool":"sessions_list"}"#, &c, &h).1["error"]["message"], REQUIRES_NAME);
        assert_eq!(
            http("{\"tool\":", &c, &h),
            (400, json!({"error": {"message": "Unexpected end of JSON input", "type": "invalid_request_error"}}))
        );
        assert_eq!(
            http(r#"{"tool":"sessions_list","agentId":"main","sessionKey":"agent:other:main"}"#, &c, &h).1["error"]["message"],
            "agent \"main\" does not match session key agent \"other\""
        );
        assert_eq!(
            http(r#"{"tool":"sessions_list","sessionKey":"agent:ghost:x"}"#, &c, &h).1["error"]["message"],
            "unknown agent \"ghost\""
        );
        assert_eq!(
            http(r#"{"tool":"exec","args":{"command":"echo hi"}}"#, &c, &h),
            (404, json!({"ok": false, "error": {"type": "not_found", "message": "Tool not available: exec"}}))
        );
        assert_eq!(http(r#"{"tool":"no_such_tool"}"#, &c, &h).0, 404);
        assert_eq!(
            http(r#"{"tool":"sessions_list","args":{"limit":"many"}}"#, &c, &h),
            (400, json!({"ok": false, "error": {"type": "tool_error", "message": "limit must be a positive integer"}}))
        );
        let fleet = Agents { ids: vec!["main".into(), "research".into()], default: None };
        assert_eq!(http(r#"{"tool":"sessions_list"}"#, &ctx(&fleet), &h).0, 400);
        assert_eq!(http(r#"{"tool":"sessions_list","agentId":"Research"}"#, &ctx(&fleet), &h).0, 200);
    }

    #[test]
    fn deny_list_is_adjusted_by_config() {
        let a = single();
        let allow = vec!["exec".to_string()];
        let deny = vec!["sessions_list".to_string()];
        let mut c = ctx(&a);
        assert!(!tool_allowed("exec", Surface::Http, &c) && tool_allowed("exec", Surface::Ws, &c));
        c.tools_allow = &allow;
        c.tools_deny = &deny;
        assert!(tool_allowed("exec", Surface::Http, &c));
        assert!(!tool_allowed("sessions_list", Surface::Http, &c));
        assert_eq!(http(r#"{"tool":"sessions_list"}"#, &c, &Host::default()).1["error"]["message"], "Tool not available: sessions_list");
    }

    #[test]
    fn sessions_list_shape() {
        let a = single();
        let c = ctx(&a);
        let (s, v) = http(r#"{"tool":"sessions_list","action":"json","args":{}}"#, &c, &Host::default());
        assert_eq!(s, 200);
        assert_eq!(
            v.to_string(),
            r#"{"ok":true,"result":{"content":[{"type":"text","text":"{\n  \"count\": 0,\n  \"sessions\": [],\n  \"hasMore\": false,\n  \"limitApplied\": 100\n}"}],"details":{"count":0,"sessions":[],"hasMore":false,"limitApplied":100}}}"#
        );
        let mut cron = row("agent:research:cron:job-1", 5);
        cron.created_actor = Some(json!({"type": "system"}));
        cron.status = None;
        cron.aborted_last_run = None;
        let h = Host {
            rows: vec![row("agent:main:openai:a", 10), cron, row("agent:main:main", 20), row("agent:main:openai:b", 30)],
            ..Default::default()
        };
        let (_, v) = http(r#"{"name":"sessions_list","args":{"limit":2}}"#, &c, &h);
        let d = &v["result"]["details"];
        assert_eq!((d["count"].clone(), d["hasMore"].clone(), d["limitApplied"].clone()), (json!(2), json!(true), json!(2)));
        assert_eq!(d["sessions"][0]["key"], "agent:main:openai:b");
        assert_eq!(d["sessions"][1]["kind"], "main");
        let (_, v) = http(r#"{"name":"sessions_list","args":{"kinds":["cron"]}}"#, &c, &h);
        let cr = &v["result"]["details"]["sessions"][0];
        assert_eq!(
            cr.to_string(),
            r#"{"key":"agent:research:cron:job-1","sessionId":"sid-5","agentId":"research","kind":"cron","channel":"internal","archived":false,"pinned":false,"createdActor":{"type":"system"},"updatedAt":5,"model":"fake-model","contextTokens":128000,"totalTokens":11}"#
        );
        let (_, v) = http(r#"{"name":"sessions_list","args":{"search":"OPENAI:A"}}"#, &c, &h);
        assert_eq!(v["result"]["details"]["count"], 1);
        assert_eq!(
            http(r#"{"name":"sessions_list","args":{"activeMinutes":0}}"#, &c, &h).1["error"]["message"],
            "activeMinutes must be a positive integer"
        );
    }

    #[test]
    fn history_status_and_agents() {
        let a = single();
        let c = ctx(&a);
        let msgs = vec![
            json!({"role": "user", "content": "hi"}),
            json!({"role": "toolResult", "content": "secret tool output"}),
            json!({"role": "assistant", "content": [{"type": "text", "text": "x".repeat(5000)}], "usage": {"input": 1}}),
        ];
        let h = Host {
            rows: vec![row("agent:main:main", 1_795_603_700_000)],
            history: vec![("agent:main:main".into(), msgs)],
            agents: vec![
                AgentSummary { id: "main".into(), name: Some("Main".into()), ..Default::default() },
                AgentSummary { id: "b".into(), ..Default::default() },
            ],
        };
        let (s, v) = http(r#"{"tool":"sessions_history","args":{"sessionKey":"main"}}"#, &c, &h);
        assert_eq!(s, 200);
        let d = &v["result"]["details"];
        assert_eq!(d["messages"].as_array().map(Vec::len), Some(2));
        assert_eq!(d["contentTruncated"], true);
        assert!(d["messages"][1].get("usage").is_none());
        assert!(d["messages"][1]["content"][0]["text"].as_str().unwrap().ends_with("…(truncated)…"));
        let (_, v) =
            http(r#"{"tool":"sessions_history","args":{"sessionKey":"agent:main:main","includeTools":true,"limit":2,"offset":0}}"#, &c, &h);
        let d = &v["result"]["details"];
        assert_eq!(
            (d["messages"].as_array().map(Vec::len), d["hasMore"].clone(), d["nextOffset"].clone()),
            (Some(2), json!(true), json!(2))
        );
        assert_eq!(http(r#"{"tool":"sessions_history","args":{}}"#, &c, &h).1["error"]["message"], "sessionKey required");
        assert_eq!(http(r#"{"tool":"sessions_history","args":{"sessionKey":"nope"}}"#, &c, &h).1["result"]["details"]["status"], "error");

        let (s, v) = http(r#"{"tool":"session_status"}"#, &c, &h);
        assert_eq!(s, 200);
        let text = v["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("agent:main:main") && text.contains("11/128000"), "{text}");
        assert_eq!(v["result"]["details"]["changedModel"], false);
        assert_eq!(
            http(r#"{"tool":"session_status","args":{"sessionKey":"zzz"}}"#, &c, &h).1["error"]["message"],
            "Unknown sessionKey: zzz"
        );

        let (_, v) = http(r#"{"tool":"agents_list"}"#, &c, &h);
        assert_eq!(
            v["result"]["details"],
            json!({"requester": "main", "allowAny": false, "agents": [{"id": "main", "name": "Main", "configured": true}]})
        );
        let star = vec!["*".to_string()];
        let mut c2 = ctx(&a);
        c2.subagent_allow = &star;
        assert_eq!(http(r#"{"tool":"agents_list"}"#, &c2, &h).1["result"]["details"]["agents"][1]["id"], "b");
    }

    #[test]
    fn ws_methods() {
        let a = single();
        let c = ctx(&a);
        let h = Host::default();
        let Reply::Ok(Some(p)) = ws_invoke(Some(&json!({"name": "sessions_list"})), &c, &h) else { panic!() };
        assert_eq!((p["ok"].clone(), p["toolName"].clone(), p["source"].clone()), (json!(true), json!("sessions_list"), json!("core")));
        assert_eq!(p["output"]["details"]["count"], 0);
        let Reply::Ok(Some(p)) = ws_invoke(Some(&json!({"name": "nope"})), &c, &h) else { panic!() };
        assert_eq!(p, json!({"ok": false, "toolName": "nope", "error": {"code": "not_found", "message": "Tool not available: nope"}}));
        // exec is not HTTP-denied on WS, but it is not a built-in either.
        let Reply::Ok(Some(p)) = ws_invoke(Some(&json!({"name": "exec"})), &c, &h) else { panic!() };
        assert_eq!(p["error"]["code"], "not_found");
        let Reply::Err { error, .. } = ws_invoke(Some(&json!({"name": "x", "bogus": 1})), &c, &h) else { panic!() };
        assert!(error.message.starts_with("invalid tools.invoke params: "), "{}", error.message);
        let Reply::Err { error, .. } = ws_invoke(Some(&json!({"name": " "})), &c, &h) else { panic!() };
        assert_eq!(error.message, "invalid tools.invoke params: name required");
        let Reply::Ok(Some(cat)) = ws_catalog(None, &a) else { panic!() };
        assert_eq!(cat["agentId"], "main");
        assert_eq!(cat["groups"][0]["tools"][0]["id"], "sessions_list");
        assert!(matches!(ws_catalog(Some(&json!({"agentId": "zz"})), &a), Reply::Err { .. }));
    }

    #[test]
    fn session_keys() {
        assert_eq!(parse_agent_session_key("agent:Main:x:y"), Some(("main".into(), "x:y")));
        assert_eq!(parse_agent_session_key("agent:main"), None);
        assert_eq!(classify_session_kind("agent:main:main"), "main");
        assert_eq!(classify_session_kind("agent:r:cron:1"), "cron");
        assert_eq!(classify_session_kind("agent:r:slack:group:1"), "group");
        assert_eq!(classify_session_kind("agent:r:openai:1"), "other");
        assert_eq!(resolve_target(&single(), None, None), Ok(("main".into(), "agent:main:main".into())));
        assert!(resolve_target(&single(), Some("agent:main"), None).is_err());
        assert!(resolve_target(&single(), Some("agenté:x"), None).is_ok_and(|t| t.1 == "agent:main:agenté:x"));
    }
}
