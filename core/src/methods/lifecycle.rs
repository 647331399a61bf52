//! Session lifecycle methods answered from the store (operator §5): `sessions.resolve` (find a
//! session by key, session id or label) and `sessions.catalog.list` (external session catalogs:
//! clawgate has none).

use serde_json::{Value, json};

use super::validate_params;
use crate::config::api::Agents;
use crate::sessions::{SessionListQuery, SessionStore, resolve_session_key};
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
