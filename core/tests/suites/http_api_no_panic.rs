//! The HTTP API decision functions never panic, whatever the body (`embeddings`, `tools`,
//! `admin_rpc`, `hooks`): arbitrary bytes and arbitrary JSON built from the fields they read.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use clawgate_core::auth::Secret;
use clawgate_core::config::api::{EmbeddingsConfig, HooksConfig};
use clawgate_core::connection::Reply;
use clawgate_core::openai::Agents;
use clawgate_core::tools::{AgentSummary, HistoryPage, SessionQuery, SessionRow, ToolHost, ToolsContext};
use clawgate_core::{http::admin_rpc, http::hooks, openai::embeddings, tools};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &[
    "model",
    "input",
    "encoding_format",
    "dimensions",
    "user",
    "tool",
    "name",
    "action",
    "args",
    "sessionKey",
    "agentId",
    "idempotencyKey",
    "dryRun",
    "limit",
    "offset",
    "activeMinutes",
    "messageLimit",
    "kinds",
    "label",
    "search",
    "includeTools",
    "id",
    "method",
    "params",
    "text",
    "mode",
    "message",
    "wakeMode",
    "deliver",
    "channel",
    "to",
    "thinking",
    "timeoutSeconds",
    "probe",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[a-z:/ é😀-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("openclaw/main"),
            Just("sessions_list"),
            Just("sessions_history"),
            Just("session_status"),
            Just("agents_list"),
            Just("health"),
            Just("agent:main:main"),
            Just("main"),
            Just("base64")
        ]
        .prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

struct Host;

impl ToolHost for Host {
    fn sessions(&self, _q: &SessionQuery) -> Vec<SessionRow> {
        vec![SessionRow { key: "agent:main:main".into(), updated_at: Some(1), ..Default::default() }, SessionRow::default()]
    }
    fn history(&self, _k: &str, _l: Option<usize>, _o: usize) -> Option<HistoryPage> {
        Some(HistoryPage {
            messages: vec![json!({"role": "user", "content": [{"type": "image", "data": "x"}]}), json!(5)],
            total_messages: 2,
        })
    }
    fn session(&self, key: &str) -> Option<SessionRow> {
        Some(SessionRow { key: key.into(), ..Default::default() })
    }
    fn agents(&self) -> Vec<AgentSummary> {
        vec![AgentSummary { id: "main".into(), ..Default::default() }]
    }
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn exercise(body: &[u8]) {
    let agents = Agents { ids: vec!["main".into(), "research".into()], default: Some("main".into()) };
    let cfg = EmbeddingsConfig { provider: "openai".into(), model: "m".into(), base_url: "http://x/v1".into(), api_key: None };
    let ctx = embeddings::EmbeddingsContext { agents: &agents, config: Some(&cfg), header_agent: None, header_model: Some("openai/x") };
    if let Ok(call) = embeddings::prepare(body, &ctx) {
        let _ = call.respond(200, body);
    }
    let tctx = ToolsContext { agents: &agents, tools_allow: &[], tools_deny: &[], subagent_allow: &[], version: "v", now_ms: u64::MAX };
    let _ = tools::handle_http(body, &tctx, &Host);
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let _ = tools::ws_invoke(Some(&v), &tctx, &Host);
        let _ = tools::ws_catalog(Some(&v), &agents);
    }
    let _ = admin_rpc::handle(body, "id", |_, _| Reply::Ok(None));
    for hook in ["wake", "agent", "x"] {
        let _ = hooks::decide(hook, body, &agents, &hooks::HookPolicy::default(), hooks::HookIds { run_id: "r", job_id: "j" });
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
        exercise(&b);
    }

    #[test]
    fn arbitrary_json(v in value()) {
        exercise(v.to_string().as_bytes());
        // Tool calls with arbitrary args.
        for t in ["sessions_list", "sessions_history", "session_status", "agents_list"] {
            exercise(json!({"tool": t, "args": v, "sessionKey": "main"}).to_string().as_bytes());
        }
    }

    #[test]
    fn arbitrary_hook_heads(path in "/hooks[/a-z%?=&]{0,12}", query in proptest::option::of("[a-z%=&0-9]{0,12}"), auth in proptest::option::of("[ -~]{0,20}")) {
        let cfg = HooksConfig { token: Secret::new("t"), path: "/hooks".into() };
        let mut limiter = hooks::HookAuthLimiter::new();
        let head = hooks::HookHead {
            method: "POST",
            path: &path,
            query: query.as_deref(),
            authorization: auth.as_deref(),
            token_header: None,
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let _ = hooks::gate(Some(&cfg), &head, &mut limiter, now());
    }
}
