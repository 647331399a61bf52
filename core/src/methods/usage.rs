//! `usage.status`, `usage.cost`, `sessions.usage`, `sessions.usage.timeseries`,
//! `sessions.usage.logs` (operator §3): parsed here, answered from the session store by
//! [`UsageCall::run`] off the reactor, summed by [`crate::sessions`]' usage rules.

use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::config::api::ApiConfig;
use crate::sessions::{
    self, CostQuery, SessionListQuery, SessionStore, SessionsUsageQuery, UsageRow, UsageWindow, cost_result, parse_cost_params,
    parse_key_param, parse_sessions_usage_params, sessions_usage_result, timeseries_result,
};
use crate::wire::{ErrorShape, Reply};

/// Most transcript rows one usage answer reads (bounds the memory of one request).
pub const MAX_USAGE_ROWS: usize = 200_000;
/// Most sessions `sessions.usage` lists.
const MAX_USAGE_SESSIONS: usize = 1_000;
/// Most messages `sessions.usage.timeseries` / `.logs` read of one session.
const MAX_SESSION_ROWS: usize = 5_000;

/// A usage request that needs the store.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageCall {
    Cost(CostQuery),
    Sessions(SessionsUsageQuery),
    Timeseries(String),
    Logs(String),
}

/// `usage.status`: provider quota windows. clawgate's providers are API-key providers with no
/// quota plan to report, as the reference answers for them.
pub fn status(now_ms: u64) -> Value {
    json!({"updatedAt": now_ms, "providers": []})
}

/// Parse a usage method's params into the call the store answers.
pub fn parse(method: &str, params: Option<&Value>) -> Option<Result<UsageCall, ErrorShape>> {
    Some(match method {
        "usage.cost" => parse_cost_params(params).map(UsageCall::Cost),
        "sessions.usage" => parse_sessions_usage_params(params).map(UsageCall::Sessions),
        "sessions.usage.timeseries" => parse_key_param(method, params).map(UsageCall::Timeseries),
        "sessions.usage.logs" => parse_key_param(method, params).map(UsageCall::Logs),
        _ => return None,
    })
}

impl UsageCall {
    /// The window whose calendar the shell must resolve (`None`: no days involved).
    pub fn window_mut(&mut self) -> Option<&mut UsageWindow> {
        match self {
            UsageCall::Cost(q) => Some(&mut q.window),
            UsageCall::Sessions(q) => Some(&mut q.window),
            _ => None,
        }
    }

    /// Resolve the days' time zone (the shell looks zones up: IO).
    pub fn resolve_zone(&mut self, system: &TimeZone, lookup: &dyn Fn(&str) -> Option<TimeZone>) {
        if let Some(w) = self.window_mut() {
            w.resolve_zone(system, lookup);
        }
    }

    /// Answer from `store` (`None`: no store, so no usage). Blocking.
    pub fn run(&self, api: &ApiConfig, store: Option<&dyn SessionStore>, now_ms: u64) -> Reply {
        match self.answer(api, store, now_ms) {
            Ok(v) => Reply::Ok(Some(v)),
            Err(e) => Reply::err(e),
        }
    }

    fn rows(store: Option<&dyn SessionStore>, window: &UsageWindow, now_ms: u64) -> Result<Vec<UsageRow>, ErrorShape> {
        let (start, end) = window.bounds(now_ms)?;
        match store {
            Some(s) => s.usage_rows(start, end, MAX_USAGE_ROWS).map_err(unavailable),
            None => Ok(Vec::new()),
        }
    }

    fn answer(&self, api: &ApiConfig, store: Option<&dyn SessionStore>, now_ms: u64) -> Result<Value, ErrorShape> {
        match self {
            UsageCall::Cost(q) => cost_result(q, &UsageCall::rows(store, &q.window, now_ms)?, api, now_ms),
            UsageCall::Sessions(q) => {
                let rows = UsageCall::rows(store, &q.window, now_ms)?;
                let sessions = match (store, &q.key) {
                    (None, _) => Vec::new(),
                    (Some(s), Some(key)) => {
                        let key = sessions::canonical_session_key(key, &api.agents.default_agent());
                        s.session(&key).map_err(unavailable)?.into_iter().collect()
                    }
                    (Some(s), None) => {
                        let query = SessionListQuery {
                            limit: MAX_USAGE_SESSIONS,
                            archived: crate::sessions::ArchivedFilter::All,
                            ..SessionListQuery::default()
                        };
                        s.list(&query).map_err(unavailable)?.sessions
                    }
                };
                sessions_usage_result(q, &rows, &sessions, api, now_ms)
            }
            UsageCall::Timeseries(key) | UsageCall::Logs(key) => {
                let key = sessions::canonical_session_key(key, &api.agents.default_agent());
                let Some(store) = store else { return Ok(empty(self)) };
                let Some(session) = store.session(&key).map_err(unavailable)? else { return Ok(empty(self)) };
                let page = store.history(&key, MAX_SESSION_ROWS, 0).map_err(unavailable)?;
                Ok(match self {
                    UsageCall::Logs(_) => logs(&page.entries, api),
                    _ => {
                        let rows: Vec<UsageRow> = page
                            .entries
                            .iter()
                            .map(|e| UsageRow {
                                session_key: key.clone(),
                                agent_id: session.agent_id.clone(),
                                role: e.role.as_str().to_string(),
                                ts_ms: e.ts_ms,
                                tool_calls: e.tool_calls.as_ref().and_then(Value::as_array).map_or(0, |a| a.len() as u64),
                                meta: e.meta.clone(),
                            })
                            .collect();
                        timeseries_result(&session.session_id, &rows, api)
                    }
                })
            }
        }
    }
}

fn empty(call: &UsageCall) -> Value {
    match call {
        UsageCall::Logs(_) => json!({"logs": []}),
        _ => json!({"sessionId": null, "points": []}),
    }
}

fn unavailable(e: String) -> ErrorShape {
    ErrorShape::unavailable(format!("session store unavailable: {e}"))
}

/// `sessions.usage.logs`: `{logs:[{timestamp, role, content, tokens?}]}` (text content).
fn logs(entries: &[crate::sessions::TranscriptEntry], api: &ApiConfig) -> Value {
    let logs: Vec<Value> = entries
        .iter()
        .map(|e| {
            let content = e.text();
            let mut v = json!({"timestamp": e.ts_ms, "role": e.role.as_str(), "content": content});
            if let Some(t) = e.meta.as_ref().and_then(|m| crate::sessions::row_totals(m, api)) {
                v["tokens"] = json!(t.total_tokens);
            }
            v
        })
        .collect();
    json!({"logs": logs})
}
