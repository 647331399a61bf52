//! Conversation sessions (spec http §5.2–§5.3, protocol `sessions.list` / `chat.history`), sans-IO.
//!
//! Three parts, all pure:
//!
//! * **Session keys.** Which session a request talks to: [`http_session_key`] for
//!   `/v1/chat/completions` and `/v1/responses` (the `user` field and the `x-openclaw-session-key`
//!   header), [`ws_agent_session_key`] for the WebSocket `agent` method, [`canonical_session_key`]
//!   for keys given to WS methods.
//! * **Transcripts.** [`TranscriptEntry`] is one stored message ([`new_request_entries`] picks the
//!   new ones out of a request); [`to_openai_messages`] turns a
//!   transcript into OpenAI chat messages to send upstream as history, bounded by a
//!   [`HistoryBudget`] without ever separating an assistant `tool_calls` message from its tool
//!   results.
//! * **Method payloads.** `sessions.list` and `chat.history` are answered in two pure steps around
//!   one store read: parse the params into a query ([`parse_sessions_list_params`],
//!   [`parse_chat_history_params`]), let the shell read the store, then build the payload
//!   ([`sessions_list_payload`], [`chat_history_payload`]). The same rows feed the `/tools/invoke`
//!   `sessions_list` tool (through [`SessionStore`] and the `SessionRow` conversion), `GET /sessions/<key>/history`
//!   ([`http_session_history_payload`]) and the `sessions.changed` event
//!   ([`sessions_changed_payload`]).
//!
//! # Plain `x-openclaw-session-key` values
//!
//! The reference uses a key without the `agent:<id>:` prefix as given and later scopes it to the
//! *default* agent; in a multi-agent fleet with explicit ownership there is none, and the request
//! fails with **500 internal error** (`chat-explicit-session-key`). We scope a plain key to the
//! agent the request selected instead: `myapp-thread-1` sent to agent `research` is the session
//! `agent:research:myapp-thread-1`, the same session the agent-scoped header
//! `agent:research:myapp-thread-1` names. In a single-agent gateway this is exactly what the
//! reference does.

mod exchange;
mod history;
mod key;
mod list;
mod record;
mod transcript;
mod usage;

pub use exchange::*;
pub use history::*;
pub use key::*;
pub use list::*;
pub use record::*;
pub use transcript::*;
pub use usage::*;

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::openai::Agents;

    fn agents(ids: &[&str], default: Option<&str>) -> Agents {
        Agents { ids: ids.iter().map(|s| s.to_string()).collect(), default: default.map(str::to_string) }
    }

    #[test]
    fn http_keys_follow_the_reference() {
        let chat = HttpSurface::ChatCompletions;
        assert_eq!(http_session_key(chat, "main", None, None, "u-1").unwrap(), "agent:main:openai:u-1");
        assert_eq!(http_session_key(chat, "research", Some("conv-42"), None, "u").unwrap(), "agent:research:openai-user:conv-42");
        assert_eq!(http_session_key(chat, "main", Some("  "), Some(" "), "u").unwrap(), "agent:main:openai:u");
        let resp = HttpSurface::Responses;
        assert_eq!(http_session_key(resp, "main", Some("sdk-user-1"), None, "u").unwrap(), "agent:main:openresponses-user:sdk-user-1");
        assert_eq!(http_session_key(resp, "main", None, None, "x").unwrap(), "agent:main:openresponses:x");
        // The header wins over `user`.
        let k = http_session_key(chat, "research", Some("conv"), Some("agent:research:myapp-thread-1"), "u").unwrap();
        assert_eq!(k, "agent:research:myapp-thread-1");
        assert_eq!(http_session_key(chat, "research", None, Some("Agent:RESEARCH:T"), "u").unwrap(), "agent:research:T");
    }

    #[test]
    fn reserved_keys_are_refused() {
        for k in ["subagent:x", "CRON:job", "acp:1", "agent:main:subagent:spoofed", "agent:main:Cron:x", "agent:main:harness:codex:x"] {
            let e = http_session_key(HttpSurface::Responses, "main", None, Some(k), "u").unwrap_err();
            assert_eq!((e.status, e.kind, e.message.as_str()), (400, "invalid_request_error", RESERVED_SESSION_KEY), "{k}");
        }
        assert!(!is_reserved_session_key("agent:main:openai:cron:x"));
        assert!(!is_reserved_session_key("myapp-cron:1"));
    }

    #[test]
    fn plain_and_foreign_header_keys() {
        // Plain keys are scoped to the selected agent (the reference 500s in a fleet).
        let k = http_session_key(HttpSurface::ChatCompletions, "research", None, Some("myapp-thread-1"), "u").unwrap();
        assert_eq!(k, "agent:research:myapp-thread-1");
        let e = http_session_key(HttpSurface::ChatCompletions, "main", None, Some("agent:other:main"), "u").unwrap_err();
        assert_eq!(e.message, "agent \"main\" does not match session key agent \"other\"");
        for bad in ["agent:main", "agent::x", "agent:bad id:x", "a\u{1}b"] {
            let e = http_session_key(HttpSurface::ChatCompletions, "main", None, Some(bad), "u").unwrap_err();
            assert_eq!(e.message, INVALID_SESSION_KEY, "{bad:?}");
        }
        let long = "x".repeat(SESSION_KEY_MAX_LEN + 1);
        assert!(http_session_key(HttpSurface::ChatCompletions, "main", None, Some(&long), "u").is_err());
    }

    #[test]
    fn key_helpers() {
        assert_eq!(ws_agent_session_key("Main", "k1"), "agent:main:explicit:k1");
        assert_eq!(canonical_session_key("main", "main"), "agent:main:main");
        assert_eq!(canonical_session_key("agent:Ops:x:y", "main"), "agent:ops:x:y");
        assert_eq!(agent_id_of_key("agent:research:openai:1").as_deref(), Some("research"));
        assert_eq!(agent_id_of_key("global"), None);
        assert_eq!(row_kind("agent:main:openai:1"), "direct");
        assert_eq!(row_kind("global"), "global");
    }

    fn call(id: &str, name: &str) -> Value {
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}})
    }

    fn seqd(mut v: Vec<TranscriptEntry>) -> Vec<TranscriptEntry> {
        for (i, e) in v.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        v
    }

    #[test]
    fn openai_messages_keep_tool_blocks_whole() {
        let t = seqd(vec![
            TranscriptEntry::user("hi", 1),
            TranscriptEntry::assistant("hello", None, 2),
            TranscriptEntry::user("weather?", 3),
            TranscriptEntry::assistant("", Some(json!([call("c1", "get_weather"), call("c2", "get_time")])), 4),
            TranscriptEntry::tool("c1", "sunny", 5),
            TranscriptEntry::tool("c2", "noon", 6),
            TranscriptEntry::assistant("Sunny at noon.", None, 7),
        ]);
        let all = to_openai_messages(&t, &HistoryBudget::default());
        assert_eq!(all.len(), 7);
        assert_eq!(
            all[3],
            json!({"role": "assistant", "content": null, "tool_calls": [call("c1", "get_weather"), call("c2", "get_time")]})
        );
        assert_eq!(all[4], json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"}));
        // 3 entries: the last message fits, the tool block (3 more) does not → stop there.
        let few = to_openai_messages(&t, &HistoryBudget { max_entries: 3, max_bytes: usize::MAX });
        assert_eq!(few.len(), 1);
        assert_eq!(few[0]["content"], "Sunny at noon.");
        let four = to_openai_messages(&t, &HistoryBudget { max_entries: 4, max_bytes: usize::MAX });
        assert_eq!(four.len(), 4);
        assert_eq!(four[0]["tool_calls"][0]["id"], "c1");
        // Bytes: nothing fits.
        assert!(to_openai_messages(&t, &HistoryBudget { max_entries: 100, max_bytes: 10 }).is_empty());
    }

    #[test]
    fn openai_messages_repair_broken_tool_sequences() {
        let t = seqd(vec![
            TranscriptEntry::tool("orphan", "x", 1),
            TranscriptEntry::user("q", 2),
            TranscriptEntry::assistant("let me check", Some(json!([call("a", "f"), call("b", "g")])), 3),
            TranscriptEntry::tool("a", "A", 4),
            TranscriptEntry::user("next", 5),
            TranscriptEntry::assistant("", Some(json!([call("z", "f")])), 6),
            TranscriptEntry::user("again", 7),
            TranscriptEntry::assistant("", Some(json!([call("p", "f")])), 8),
        ]);
        let m = to_openai_messages(&t, &HistoryBudget::default());
        let roles: Vec<&str> = m.iter().map(|x| x["role"].as_str().unwrap()).collect();
        // orphan dropped; unanswered `b` removed; empty unanswered `z` dropped; trailing `p` kept.
        assert_eq!(roles, ["user", "assistant", "tool", "user", "user", "assistant"]);
        assert_eq!(m[1]["tool_calls"].as_array().unwrap().len(), 1);
        assert_eq!(m[1]["content"], "let me check");
        assert_eq!(m[5]["tool_calls"][0]["id"], "p");
    }

    #[test]
    fn from_openai_roundtrip() {
        let msgs = [
            json!({"role": "user", "content": [{"type": "text", "text": "hi"}]}),
            json!({"role": "assistant", "content": null, "tool_calls": [call("c", "f")]}),
            json!({"role": "tool", "tool_call_id": "c", "content": "r"}),
            json!({"role": "developer", "content": "be brief"}),
        ];
        let entries: Vec<TranscriptEntry> = msgs.iter().filter_map(|m| TranscriptEntry::from_openai_message(m, 9)).collect();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[3].role, Role::System);
        assert_eq!(entries[0].text(), "hi");
        assert_eq!(entry_to_openai(&entries[1]), msgs[1]);
        assert_eq!(entry_to_openai(&entries[2]), msgs[2]);
        assert!(TranscriptEntry::from_openai_message(&json!({"role": "function"}), 0).is_none());
        assert!(TranscriptEntry::from_openai_message(&json!("x"), 0).is_none());
    }

    #[test]
    fn new_request_entries_are_the_tail_after_the_last_reply() {
        let msgs = [
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": "weather?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [call("c", "f")]}),
            json!({"role": "tool", "tool_call_id": "c", "content": "sunny"}),
        ];
        let e = new_request_entries(&msgs, 5);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].role, e[0].tool_call_id.as_deref()), (Role::Tool, Some("c")));
        let e = new_request_entries(&msgs[..2], 5);
        assert_eq!((e.len(), e[0].role), (1, Role::User));
    }

    #[test]
    fn titles() {
        let t = vec![TranscriptEntry::system("sys", 0), TranscriptEntry::user("  Say\n hello  ", 1)];
        assert_eq!(derive_title(&t).as_deref(), Some("Say hello"));
        let long = "word ".repeat(30);
        let title = truncate_title(long.trim(), TITLE_MAX_CHARS);
        assert!(title.chars().count() <= TITLE_MAX_CHARS && title.ends_with('…'), "{title}");
        assert_eq!(message_preview(&[TranscriptEntry::user("a", 0), TranscriptEntry::assistant("b", None, 1)]).as_deref(), Some("b"));
        assert_eq!(derive_title(&[]), None);
    }

    #[test]
    fn a_rows_last_run_is_what_the_ui_recap_reads() {
        let mut s = summary("agent:main:main");
        assert!(session_row(&s, &SessionDefaults::default(), false, false).get("lastRunId").is_none());
        s.last_run = Some(LastRun { run_id: "r1".into(), started_ms: 5, ended_ms: 734 });
        let row = session_row(&s, &SessionDefaults::default(), false, false);
        assert_eq!(
            (row["lastRunId"].clone(), row["startedAt"].clone(), row["endedAt"].clone(), row["runtimeMs"].clone(), row["status"].clone()),
            (json!("r1"), json!(5), json!(734), json!(729), json!("done"))
        );
    }

    fn summary(key: &str) -> SessionSummary {
        SessionSummary {
            key: key.into(),
            agent_id: "main".into(),
            session_id: "208f7b0b-2b59-4b2e-a5d5-27dfa66d1984".into(),
            created_ms: 1,
            updated_ms: 1795603702292,
            label: None,
            display_name: Some("Say hello".into()),
            channel: None,
            origin: Some("openai".into()),
            message_count: 2,
            last_model: Some("fake-model".into()),
            last_model_provider: Some("fake".into()),
            input_tokens: 11,
            output_tokens: 4,
            last_total_tokens: 11,
            status: Some(RunStatus::Done),
            aborted_last_run: false,
            last_message_preview: Some("Hello from fake upstream".into()),
            last_run: None,
            settings: None,
        }
    }

    #[test]
    fn sessions_list_params_and_payload() {
        let a = agents(&["main", "research"], None);
        let e = parse_sessions_list_params(Some(&json!({"bogus": 1})), &a, 0).unwrap_err();
        assert_eq!(e.message, "invalid sessions.list params: at root: unexpected property 'bogus'");
        let e = parse_sessions_list_params(Some(&json!({"limit": 0})), &a, 0).unwrap_err();
        assert!(e.message.starts_with("invalid sessions.list params: at /limit: "), "{}", e.message);
        let q = parse_sessions_list_params(None, &a, 0).unwrap();
        assert_eq!((q.limit, q.offset), (SESSIONS_LIST_DEFAULT_LIMIT, 0));
        let q = parse_sessions_list_params(
            Some(&json!({"limit": 1, "activeMinutes": 2, "agentId": "Main", "search": " Hello ", "configuredAgentsOnly": true})),
            &a,
            600_000,
        )
        .unwrap();
        assert_eq!(q.updated_since_ms, Some(480_000));
        assert_eq!(q.agent_id.as_deref(), Some("main"));
        assert_eq!(q.search.as_deref(), Some("hello"));
        assert_eq!(q.only_agents, Some(vec!["main".to_string(), "research".to_string()]));
        let page = SessionPage { total_count: 3, sessions: vec![summary("agent:main:openai:aa")] };
        let defaults =
            SessionDefaults { model_provider: Some("fake".into()), model: Some("fake-model".into()), context_tokens: Some(128_000) };
        let p = sessions_list_payload(&q, &page, &defaults, "/s/sessions.sqlite", 7);
        assert_eq!(p["count"], 1);
        assert_eq!(p["totalCount"], 3);
        assert_eq!(p["nextOffset"], 1);
        assert_eq!(p["hasMore"], true);
        assert_eq!(p["defaults"]["contextTokens"], 128_000);
        let row = &p["sessions"][0];
        assert_eq!(row["kind"], "direct");
        assert_eq!(row["displayName"], "Say hello");
        assert_eq!(row["totalTokens"], 11);
        assert_eq!(row["status"], "done");
        assert!(row.get("label").is_none() && row.get("lastMessagePreview").is_none());
    }

    #[test]
    fn sessions_list_tool_rows_match_the_capture_shape() {
        let row = crate::tools::SessionRow::from(&summary("agent:main:openai:aa3e"));
        let v = crate::tools::session_row_json(&row);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let want = [
            "key",
            "sessionId",
            "agentId",
            "kind",
            "channel",
            "archived",
            "pinned",
            "updatedAt",
            "model",
            "totalTokens",
            "status",
            "abortedLastRun",
        ];
        assert_eq!(keys, want);
        assert_eq!((v["kind"].clone(), v["channel"].clone(), v["totalTokens"].clone()), (json!("other"), json!("unknown"), json!(11)));
    }

    #[test]
    fn chat_history_params() {
        let single = agents(&["main"], Some("main"));
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "main"})), &single).unwrap();
        assert_eq!((q.session_key.as_str(), q.limit, q.offset), ("agent:main:main", CHAT_HISTORY_DEFAULT_LIMIT, 0));
        let e = parse_chat_history_params(Some(&json!({})), &single).unwrap_err();
        assert_eq!(e.message, "invalid chat.history params: must have required property 'sessionKey'");
        let e = parse_chat_history_params(Some(&json!({"sessionKey": "main", "limit": 1001})), &single).unwrap_err();
        assert!(e.message.starts_with("invalid chat.history params: at /limit: "), "{}", e.message);
        let fleet = agents(&["main", "research"], None);
        assert!(parse_chat_history_params(Some(&json!({"sessionKey": "main"})), &fleet).is_err());
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "t1", "agentId": "research"})), &fleet).unwrap();
        assert_eq!(q.session_key, "agent:research:t1");
        let e = parse_chat_history_params(Some(&json!({"sessionKey": "agent:main:x", "agentId": "research"})), &fleet).unwrap_err();
        assert_eq!(e.message, "agent \"research\" does not match session key agent \"main\"");
        let e = parse_chat_history_params(Some(&json!({"sessionKey": "agent:ghost:x"})), &fleet).unwrap_err();
        assert_eq!(e.message, "unknown agent id: ghost");
    }

    #[test]
    fn chat_history_payload_shapes() {
        let single = agents(&["main"], Some("main"));
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "main", "limit": 3, "maxChars": 5})), &single).unwrap();
        let mut entries = seqd(vec![
            TranscriptEntry::user("weather in Paris?", 10),
            TranscriptEntry::assistant("", Some(json!([call("c1", "get_weather")])), 11).with_run_id("r1"),
            TranscriptEntry::tool("c1", "sunny", 12),
        ]);
        entries.iter_mut().for_each(|e| e.seq += 1);
        let page = HistoryPage { entries, total: 4 };
        let p = chat_history_payload(&q, Some(&summary("agent:main:main")), &page, &SessionDefaults::default());
        assert_eq!(p["sessionKey"], "main");
        assert_eq!(p["hasMore"], true);
        assert_eq!(p["nextOffset"], 3);
        assert_eq!(p["totalMessages"], 4);
        let m = p["messages"].as_array().unwrap();
        // A typed user message stays a string, as the reference shows it.
        assert_eq!(m[0]["content"], "weath…");
        assert_eq!(p["pendingInputs"], json!({"items": [], "total": 0}));
        assert_eq!(m[1]["content"][0], json!({"type": "toolCall", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}));
        assert_eq!(m[1]["__openclaw"], json!({"seq": 3, "runId": "r1"}));
        assert_eq!(m[1]["stopReason"], "toolUse");
        assert_eq!(m[2]["role"], "toolResult");
        assert_eq!(m[2]["toolName"], "get_weather");
        let h = http_session_history_payload("agent:main:main", &page, 200);
        assert_eq!(h["items"], h["messages"]);
        assert_eq!(h["hasMore"], false);
        // An unknown session: empty history, no sessionId.
        let p = chat_history_payload(&q, None, &HistoryPage::default(), &SessionDefaults::default());
        assert_eq!(p["messages"], json!([]));
        assert!(p.get("sessionId").is_none());
    }

    #[test]
    fn messages_in_the_reference_shape() {
        let mut user = TranscriptEntry::user("hello", 10).with_run_id("r1");
        user.seq = 1;
        user.id = Some(message_id("sid", 1));
        let m = display_message(&user, &[], None);
        assert_eq!(
            m,
            json!({"role": "user", "content": "hello", "timestamp": 10, "idempotencyKey": "r1:user",
                "__openclaw": {"id": message_id("sid", 1), "idempotencyKey": "r1:user", "seq": 1}})
        );
        let mut reply = TranscriptEntry::assistant("hi", None, 11).with_run_id("r1");
        reply.seq = 2;
        reply.id = Some(message_id("sid", 2));
        reply.meta = Some(
            json!({"api": "openai-completions", "provider": "fake", "model": "m", "usage": {"input": 1, "output": 2, "totalTokens": 3}, "stopReason": "stop"}),
        );
        let m = display_message(&reply, &[], None);
        assert_eq!(m["content"], json!([{"type": "text", "text": "hi"}]));
        assert_eq!((m["provider"].clone(), m["model"].clone(), m["usage"]["totalTokens"].clone()), (json!("fake"), json!("m"), json!(3)));
        assert_eq!(m["__openclaw"], json!({"runId": "r1", "id": message_id("sid", 2), "seq": 2}));
        assert_eq!(message_id("sid", 2).len(), 36);
        assert_ne!(message_id("sid", 2), message_id("sid", 1));
        assert_ne!(message_id("sid2", 1), message_id("sid", 1));
    }

    #[test]
    fn chat_startup_params() {
        let single = agents(&["main"], Some("main"));
        let q =
            parse_chat_startup_params(Some(&json!({"sessionKey": "agent:main:main", "limit": 80, "maxBytes": 262144})), &single).unwrap();
        assert_eq!((q.session_key.as_str(), q.limit, q.max_bytes), ("agent:main:main", 80, Some(262144)));
        let e = parse_chat_startup_params(Some(&json!({})), &single).unwrap_err();
        assert!(e.message.starts_with("invalid chat.startup params: "), "{}", e.message);
        let e = parse_chat_startup_params(Some(&json!({"sessionKey": "main", "maxBytes": 10})), &single).unwrap_err();
        assert!(e.message.starts_with("invalid chat.startup params: "), "{}", e.message);
        // The UI's reconcile call after a send.
        let q = parse_chat_history_params(Some(&json!({"sessionKey": "agent:main:main", "inputRunIds": ["r"], "limit": 1000})), &single);
        assert!(q.is_ok(), "{q:?}");
    }

    #[test]
    fn oversized_history_is_capped() {
        let big = "x".repeat(CHAT_HISTORY_MAX_MESSAGE_BYTES + 10);
        let m = display_message(&TranscriptEntry::user(big, 1), &[], None);
        assert_eq!(m["__openclaw"]["oversized"], true);
        let mut msgs: Vec<Value> = (0..10).map(|i| json!({"i": i, "pad": "y".repeat(100)})).collect();
        let dropped = cap_by_bytes(&mut msgs, 500);
        assert_eq!(msgs.last().unwrap()["i"], 9);
        assert_eq!(dropped + msgs.len(), 10);
        assert!(serde_json::to_string(&msgs).unwrap().len() <= 500);
    }

    #[test]
    fn response_continuation_rule() {
        let r = StoredResponse {
            id: "resp_1".into(),
            session_key: "agent:main:openresponses-user:u".into(),
            agent_id: "main".into(),
            owner: Some("token".into()),
            session_key_header: None,
            created_ms: 0,
            body: json!({}),
        };
        assert!(may_continue(&r, "main", Some("token"), Some(" ")));
        assert!(!may_continue(&r, "research", Some("token"), None));
        assert!(!may_continue(&r, "main", None, None));
        assert!(!may_continue(&r, "main", Some("token"), Some("agent:main:x")));
    }
}
