//! Hooks against the reference captures (`hooks-*.txt`).

use crate::http_capture;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use clawgate_core::auth::Secret;
use clawgate_core::config::api::HooksConfig;
use clawgate_core::http::hooks::{
    BodyError, Gate, HookAuthLimiter, HookDecision, HookHead, HookIds, HookPolicy, WakeOutcome, agent_response, body_error, decide, gate,
    wake_response,
};
use clawgate_core::openai::Agents;
use clawgate_core::openai::api_response::ApiResponse;
use http_capture::{Capture, load, names};

fn assert_matches(c: &Capture, r: &ApiResponse) {
    assert_eq!(r.status, c.status, "{}: status", c.name);
    assert_eq!(r.content_type, c.content_type(), "{}: content type", c.name);
    assert_eq!(r.header("allow"), c.header("allow"), "{}: allow", c.name);
    assert_eq!(r.close, c.header("connection") == Some("close"), "{}: connection", c.name);
    if c.content_type().starts_with("application/json") {
        assert_eq!(r.json_body(), Some(c.json()), "{}: body", c.name);
    }
    assert_eq!(String::from_utf8_lossy(&r.body), c.body, "{}: body bytes", c.name);
}

/// Config A hooks (`hooks.token=hooktoken-abcdef1234567890`, `path=/hooks`), or none for the
/// `hooks-disabled-*` captures.
fn config(c: &Capture) -> Option<HooksConfig> {
    (!c.name.starts_with("hooks-disabled")).then(|| HooksConfig { token: Secret::new("hooktoken-abcdef1234567890"), path: "/hooks".into() })
}

/// The one real-clock read of this test.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

#[test]
fn every_hooks_capture() {
    let all = names(&["hooks-"]);
    assert!(all.len() >= 12, "captures found: {all:?}");
    let agents = Agents { ids: vec!["main".into(), "research".into()], default: None };
    let mut limiter = HookAuthLimiter::new();
    let now = t0();
    for n in &all {
        let c = load(n);
        let req = c.req();
        let cfg = config(&c);
        let head = HookHead {
            method: &req.method,
            path: &req.path,
            query: req.query.as_deref(),
            authorization: req.header("authorization"),
            token_header: req.header("x-openclaw-token"),
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let r = match gate(cfg.as_ref(), &head, &mut limiter, now) {
            // Hooks off: the prefix falls through to normal routing (plain 404 for POST).
            Gate::NotMine => ApiResponse::not_found(),
            Gate::Respond(r) => r,
            Gate::Authorized { .. } if req.data_file.is_some() => body_error(BodyError::TooLarge),
            Gate::Authorized { hook } => {
                let body: Option<serde_json::Value> = serde_json::from_str(&c.body).ok();
                let run_id = body.as_ref().and_then(|b| b.get("runId")).and_then(|v| v.as_str()).unwrap_or("run").to_string();
                match decide(&hook, &req.body_bytes(), &agents, &HookPolicy::default(), HookIds { run_id: &run_id, job_id: "job" }) {
                    HookDecision::Respond(r) => r,
                    HookDecision::Wake(w) => wake_response(w.mode, WakeOutcome::Queued),
                    HookDecision::Agent(a) => agent_response(&a.run_id),
                }
            }
        };
        assert_matches(&c, &r);
    }
}
