//! `sessions.list`: params, rows, payload (and the `sessions.changed` payload built from a row).

use serde_json::{Map, Value, json};

use super::*;
use crate::openai::Agents;
use crate::wire::ErrorShape;

/// Rows returned when `limit` is absent (the reference's `SESSIONS_LIST_DEFAULT_LIMIT`).
pub const SESSIONS_LIST_DEFAULT_LIMIT: usize = 100;
/// Hard ceiling on rows per call (ours: keeps one answer well under the frame limit).
pub const SESSIONS_LIST_MAX_LIMIT: usize = 1_000;
/// Longest session label (`SessionLabelString`, 2026.9.6).
pub const SESSION_LABEL_MAX_LEN: u64 = 512;

/// The reference's `SessionsListParamsSchema` (2026.9.6). Filters we keep no data for
/// (`projectId`, `pinned`, `ownerId`, …) are accepted; see [`parse_sessions_list_params`].
fn sessions_list_schema() -> Value {
    let b = json!({"type": "boolean"});
    let ne = json!({"type": "string", "minLength": 1});
    let consts = |v: &[&str]| json!({"anyOf": v.iter().map(|c| json!({"type": "string", "const": c})).collect::<Vec<_>>()});
    json!({
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "minimum": 1},
            "offset": {"type": "integer", "minimum": 0},
            "activeMinutes": {"type": "integer", "minimum": 1},
            "activeOnly": b, "requireLastInteraction": b,
            "sortBy": consts(&["updatedAt", "lastInteractionAt", "activity"]),
            "includeGlobal": b, "includeUnknown": b, "excludeSubagents": b, "excludeCron": b, "excludeSystem": b,
            "configuredAgentsOnly": b, "includeDerivedTitles": b, "includeLastMessage": b, "includeActivitySummary": b,
            "label": {"type": "string", "minLength": 1, "maxLength": SESSION_LABEL_MAX_LEN},
            "projectId": ne, "workspaceDir": ne, "group": {"type": "string"}, "pinned": b,
            "boardFace": consts(&["chat", "dashboard"]), "hasBoard": b,
            "creatorId": ne, "ownerId": ne, "ownerFirst": b, "involvingMe": b,
            "profileRelation": {
                "type": "object",
                "required": ["profileId", "relationship"],
                "properties": {"profileId": ne, "relationship": consts(&["owned", "created", "involving"])},
                "additionalProperties": false,
            },
            "involvingProfileId": ne, "includePeople": b,
            "spawnedBy": ne, "agentId": ne,
            "search": {"type": "string"},
            "archived": {"anyOf": [b, {"type": "string", "const": "all"}]},
        },
        "additionalProperties": false,
    })
}

/// Which sessions `sessions.list` shows by their archive state (`archived`: absent or `false`,
/// `true`, `"all"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchivedFilter {
    /// Only sessions that are not archived (the default).
    #[default]
    Exclude,
    /// Only archived sessions.
    Only,
    /// Both.
    All,
}

impl ArchivedFilter {
    pub fn admits(self, s: &SessionSummary) -> bool {
        match self {
            ArchivedFilter::Exclude => s.archived_at().is_none(),
            ArchivedFilter::Only => s.archived_at().is_some(),
            ArchivedFilter::All => true,
        }
    }
}

/// What `sessions.list` asks the store for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionListQuery {
    pub limit: usize,
    pub offset: usize,
    /// Only this agent's sessions (lowercase).
    pub agent_id: Option<String>,
    /// Only sessions of these agents (`configuredAgentsOnly`).
    pub only_agents: Option<Vec<String>>,
    pub label: Option<String>,
    /// Case-insensitive (ASCII) substring of key, label, title, session id or model.
    pub search: Option<String>,
    /// Only sessions updated at or after this time (`activeMinutes`).
    pub updated_since_ms: Option<u64>,
    pub archived: ArchivedFilter,
    /// The query cannot match anything (`spawnedBy`, `pinned`: we keep no such sessions).
    pub match_nothing: bool,
    pub include_derived_titles: bool,
    pub include_last_message: bool,
}

/// Validate `sessions.list` params (errors: `invalid sessions.list params: …`).
pub fn parse_sessions_list_params(params: Option<&Value>, agents: &Agents, now_ms: u64) -> Result<SessionListQuery, ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&sessions_list_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid sessions.list params: {d}")))?;
    let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
    let limit = p.get("limit").and_then(Value::as_u64).map(|n| n.min(SESSIONS_LIST_MAX_LIMIT as u64) as usize);
    let search = p.get("search").and_then(Value::as_str).map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
    let updated_since_ms = p.get("activeMinutes").and_then(Value::as_u64).map(|m| now_ms.saturating_sub(m.saturating_mul(60_000)));
    Ok(SessionListQuery {
        limit: limit.unwrap_or(SESSIONS_LIST_DEFAULT_LIMIT),
        offset: p.get("offset").and_then(Value::as_u64).map(|n| n.min(usize::MAX as u64) as usize).unwrap_or(0),
        agent_id: p.get("agentId").and_then(Value::as_str).map(|a| a.trim().to_ascii_lowercase()),
        only_agents: flag("configuredAgentsOnly").then(|| agents.ids.clone()),
        label: p.get("label").and_then(Value::as_str).map(|l| l.trim().to_string()).filter(|l| !l.is_empty()),
        search,
        updated_since_ms,
        archived: match p.get("archived") {
            Some(Value::Bool(true)) => ArchivedFilter::Only,
            Some(Value::String(_)) => ArchivedFilter::All,
            _ => ArchivedFilter::Exclude,
        },
        // No spawned, pinned, grouped, project or board sessions are kept here.
        match_nothing: ["spawnedBy", "projectId", "workspaceDir", "group", "creatorId", "ownerId", "involvingProfileId", "profileRelation"]
            .iter()
            .any(|k| p.get(*k).is_some())
            || flag("pinned")
            || flag("hasBoard"),
        include_derived_titles: flag("includeDerivedTitles"),
        include_last_message: flag("includeLastMessage"),
    })
}

/// One page of sessions read for a [`SessionListQuery`] (newest `updated_ms` first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionPage {
    /// Sessions matching the query, before `limit`/`offset`.
    pub total_count: usize,
    pub sessions: Vec<SessionSummary>,
}

fn opt_str(v: Option<&String>) -> Value {
    v.map_or(Value::Null, |s| json!(s))
}

/// A `sessions.list` row (the reference's `GatewaySessionRow`, the fields we have). Optional
/// fields are omitted when unknown.
pub fn session_row(s: &SessionSummary, defaults: &SessionDefaults, derived_title: bool, last_message: bool) -> Value {
    let mut row = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            row.insert(k.to_string(), v);
        }
    };
    put("key", json!(s.key));
    put("kind", json!(row_kind(&s.key)));
    put("agentId", json!(s.agent_id));
    put("label", opt_str(s.label.as_ref()));
    put("displayName", opt_str(s.display_name.as_ref()));
    if derived_title {
        let title = s.display_name.clone().unwrap_or_else(|| s.session_id.chars().take(8).collect());
        put("derivedTitle", json!(title));
    }
    if last_message {
        put("lastMessagePreview", opt_str(s.last_message_preview.as_ref()));
    }
    put("channel", opt_str(s.channel.as_ref()));
    put("updatedAt", json!(s.updated_ms));
    put("createdAt", json!(s.created_ms));
    put("sessionId", json!(s.session_id));
    put("abortedLastRun", json!(s.aborted_last_run));
    put("archived", json!(s.archived_at().is_some()));
    put("archivedAt", s.archived_at().map_or(Value::Null, |t| json!(t)));
    put("archiveReason", s.archived_at().and(s.setting("archiveReason")).cloned().unwrap_or(Value::Null));
    put("inputTokens", json!(s.input_tokens));
    put("outputTokens", json!(s.output_tokens));
    if s.last_total_tokens > 0 {
        put("totalTokens", json!(s.last_total_tokens));
        put("totalTokensFresh", json!(true));
    }
    put("status", s.status.map_or(Value::Null, |st| json!(st.as_str())));
    if let Some(r) = &s.last_run {
        put("startedAt", json!(r.started_ms));
        put("endedAt", json!(r.ended_ms));
        put("runtimeMs", json!(r.ended_ms.saturating_sub(r.started_ms)));
        put("lastRunId", json!(r.run_id));
    }
    put("modelProvider", opt_str(s.last_model_provider.as_ref().or(defaults.model_provider.as_ref())));
    put("model", opt_str(s.last_model.as_ref().or(defaults.model.as_ref())));
    put("contextTokens", defaults.context_tokens.map_or(Value::Null, |c| json!(c)));
    put("messageCount", json!(s.message_count));
    Value::Object(row)
}

/// The `sessions.list` payload: `{ts, path, count, totalCount, limitApplied, offset, nextOffset,
/// hasMore, defaults, sessions}`. `path` is the store file (or `"(multiple)"`).
pub fn sessions_list_payload(query: &SessionListQuery, page: &SessionPage, defaults: &SessionDefaults, path: &str, now_ms: u64) -> Value {
    let sessions: Vec<Value> =
        page.sessions.iter().map(|s| session_row(s, defaults, query.include_derived_titles, query.include_last_message)).collect();
    let next = query.offset.saturating_add(sessions.len());
    let next_offset = if next < page.total_count { json!(next) } else { Value::Null };
    json!({
        "ts": now_ms,
        "path": path,
        "count": sessions.len(),
        "totalCount": page.total_count,
        "limitApplied": query.limit,
        "offset": query.offset,
        "nextOffset": next_offset,
        "hasMore": !next_offset.is_null(),
        "defaults": defaults.to_json(),
        "sessions": sessions,
    })
}

/// The session store as the core's decisions read it (`sessions.list`, `chat.history`, the
/// built-in tools, `GET /sessions/<key>/history`). The shell's database implements it; the
/// calls block: make them off the reactor. Errors are short descriptions for logs and
/// `UNAVAILABLE` answers.
pub trait SessionStore {
    /// Where the sessions live (`sessions.list` `path`).
    fn path(&self) -> String;
    /// Sessions matching `query`, newest first, with the total before paging.
    fn list(&self, query: &SessionListQuery) -> Result<SessionPage, String>;
    /// One session's row.
    fn session(&self, key: &str) -> Result<Option<SessionSummary>, String>;
    /// Up to `limit` messages after skipping the `offset` newest, oldest first.
    fn history(&self, key: &str, limit: usize, offset: usize) -> Result<HistoryPage, String>;
    /// The transcript rows written in `[start_ms, end_ms]` (usage: no content), oldest first,
    /// at most `limit`.
    fn usage_rows(&self, start_ms: u64, end_ms: u64, limit: usize) -> Result<Vec<UsageRow>, String>;
    /// A session with no messages yet; an existing key is returned as it is (`false`).
    fn create(&self, meta: &SessionMeta, settings: &Value) -> Result<(SessionSummary, bool), String>;
    /// If `expect` holds for the session (checked in the same transaction), set/clear the
    /// label and merge-patch the settings.
    fn patch(
        &self,
        key: &str,
        expect: &Expect,
        label: Option<Option<&str>>,
        settings: &Value,
        now_ms: u64,
    ) -> Result<Guarded<SessionSummary>, String>;
    /// A new conversation on the same key (messages gone, counters cleared, new session id).
    fn reset(&self, key: &str, new_session_id: &str, settings: &Value, now_ms: u64) -> Result<Option<SessionSummary>, String>;
    /// If `expect` holds for the session (checked in the same transaction), remove it and its
    /// messages.
    fn delete(&self, key: &str, expect: &Expect) -> Result<Guarded<()>, String>;
    /// Store maintenance (`sessions.cleanup`) for one agent's sessions.
    fn maintain(&self, agent_id: &str) -> Result<Maintenance, String>;
}

/// Preconditions a client puts on a session mutation (`expectedSessionId`,
/// `expectedLifecycleRevision`, `archivedOnly`): the session must still be the one it read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expect {
    pub session_id: Option<String>,
    pub lifecycle_revision: Option<String>,
    /// `sessions.delete {archivedOnly:true}`: only an archived session may go.
    pub archived: bool,
}

/// Why a mutation's preconditions failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another request replaced, reset or deleted the session since the client read it.
    Changed,
    /// `archivedOnly`, and the session is not archived.
    NotArchived,
}

impl Expect {
    pub fn is_empty(&self) -> bool {
        *self == Expect::default()
    }

    /// Does the session as stored now (`None`: there is none) meet the preconditions?
    pub fn check(&self, current: Option<&SessionSummary>) -> Result<(), Refusal> {
        if self.archived && current.and_then(SessionSummary::archived_at).is_none() {
            return Err(Refusal::NotArchived);
        }
        let id_moved = self.session_id.as_ref().is_some_and(|id| current.map(|s| &s.session_id) != Some(id));
        let revision_moved =
            self.lifecycle_revision.as_deref().is_some_and(|r| current.and_then(SessionSummary::lifecycle_revision) != Some(r));
        if id_moved || revision_moved {
            return Err(Refusal::Changed);
        }
        Ok(())
    }
}

/// What a guarded mutation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Guarded<T> {
    Done(T),
    /// No such session (and no precondition said there had to be one).
    Missing,
    Refused(Refusal),
}

/// What a maintenance sweep found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Maintenance {
    /// The agent's sessions (none is removed: clawgate's store has no expiry or cap).
    pub sessions: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The model defaults shown beside session rows: the default model of the config.
pub fn session_defaults(api: &crate::config::api::ApiConfig) -> SessionDefaults {
    let (provider, model) = match api.default_model.as_deref().map(|m| api.split_model(m).map(|(p, m)| (p.id.clone(), m.to_string()))) {
        Some(Some((p, m))) => (Some(p), Some(m)),
        _ => (None, None),
    };
    SessionDefaults { model_provider: provider, model, context_tokens: None }
}

/// The `sessions.changed` event payload after a turn (or a delete, with `session: None`).
pub fn sessions_changed_payload(
    key: &str,
    agent_id: &str,
    reason: &str,
    session: Option<&SessionSummary>,
    defaults: &SessionDefaults,
    ts_ms: u64,
) -> Value {
    let mut p = json!({"sessionKey": key, "agentId": agent_id, "reason": reason, "ts": ts_ms});
    if let Some(s) = session {
        p["session"] = session_row(s, defaults, false, false);
    }
    p
}
