//! `/tools/invoke` against the reference captures (`tools-invoke-*.txt`, `E-tools-invoke-*.txt`).

use crate::http_capture;

use clawgate_core::openai::Agents;
use clawgate_core::openai::api_response::{ApiResponse, BodyError};
use clawgate_core::tools::{AgentSummary, HistoryPage, SessionQuery, SessionRow, ToolHost, ToolsContext, body_error, handle_http};
use http_capture::{Capture, load, names};
use serde_json::Value;

/// Sessions rebuilt from a capture's own `sessions_list` details (kind, channel and agent are
/// left out so the tool derives them).
#[derive(Default)]
struct Host {
    rows: Vec<SessionRow>,
}

impl ToolHost for Host {
    fn sessions(&self, _q: &SessionQuery) -> Vec<SessionRow> {
        // Oldest first: the tool must sort.
        let mut v = self.rows.clone();
        v.reverse();
        v
    }
    fn history(&self, _key: &str, _limit: Option<usize>, _offset: usize) -> Option<HistoryPage> {
        None
    }
    fn session(&self, key: &str) -> Option<SessionRow> {
        self.rows.iter().find(|r| r.key == key).cloned()
    }
    fn agents(&self) -> Vec<AgentSummary> {
        vec![AgentSummary { id: "main".into(), ..Default::default() }]
    }
}

fn rows_from(details: &Value) -> Vec<SessionRow> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
    details["sessions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| SessionRow {
                    key: s(v, "key").unwrap_or_default(),
                    session_id: s(v, "sessionId"),
                    agent_id: None,
                    kind: None,
                    channel: None,
                    archived: v["archived"].as_bool().unwrap_or(false),
                    pinned: v["pinned"].as_bool().unwrap_or(false),
                    created_actor: v.get("createdActor").cloned(),
                    label: s(v, "label"),
                    display_name: s(v, "displayName"),
                    updated_at: n(v, "updatedAt"),
                    model: s(v, "model"),
                    context_tokens: n(v, "contextTokens"),
                    total_tokens: n(v, "totalTokens"),
                    status: s(v, "status"),
                    aborted_last_run: v.get("abortedLastRun").and_then(Value::as_bool),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Configs "none" and E: one implicit agent `main`.
fn agents() -> Agents {
    Agents { ids: vec!["main".into()], default: Some("main".into()) }
}

fn assert_matches(c: &Capture, r: &ApiResponse) {
    assert_eq!(r.status, c.status, "{}: status", c.name);
    assert_eq!(r.content_type, c.content_type(), "{}: content type", c.name);
    assert_eq!(r.json_body(), Some(c.json()), "{}: body", c.name);
    assert_eq!(String::from_utf8_lossy(&r.body), c.body, "{}: body bytes", c.name);
    assert_eq!(r.close, c.header("connection") == Some("close"), "{}: connection", c.name);
}

/// Captures decided by the shell before this module runs (auth) or by the body reader.
fn shell_only(c: &Capture) -> bool {
    c.status == 401
}

#[test]
fn every_tools_invoke_capture() {
    let all = names(&["tools-invoke-", "E-tools-invoke-"]);
    assert!(all.len() >= 14, "captures found: {all:?}");
    let a = agents();
    let ctx =
        ToolsContext { agents: &a, tools_allow: &[], tools_deny: &[], subagent_allow: &[], version: "2026.9.6", now_ms: 1_795_603_800_000 };
    let mut checked = 0;
    for n in &all {
        let c = load(n);
        if shell_only(&c) {
            assert_eq!(c.json()["error"]["type"], "unauthorized", "{n}");
            continue;
        }
        let r = if c.status == 413 {
            body_error(BodyError::TooLarge)
        } else if c.status == 408 {
            body_error(BodyError::Timeout)
        } else {
            let host = if c.status == 200 { Host { rows: rows_from(&c.json()["result"]["details"]) } } else { Host::default() };
            handle_http(&c.req().body_bytes(), &ctx, &host)
        };
        assert_matches(&c, &r);
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked}");
}

#[test]
fn sessions_list_text_is_the_pretty_json_of_details() {
    let c = load("E-tools-invoke-name-field.txt");
    let v = c.json();
    let details = &v["result"]["details"];
    assert_eq!(details["count"], 48);
    let text = v["result"]["content"][0]["text"].as_str().unwrap_or_default();
    assert_eq!(text, serde_json::to_string_pretty(details).unwrap_or_default());
}
