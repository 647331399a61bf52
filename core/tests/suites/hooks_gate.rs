//! Unit checks of `clawgate_core::http::hooks` that need a real `Instant` (the core itself never reads
//! the clock).

use clawgate_core::auth::Secret;
use clawgate_core::config::api::HooksConfig;
use clawgate_core::http::hooks::*;
use clawgate_core::openai::Agents;
use serde_json::json;
use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The one real-clock read of these tests.
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

fn cfg() -> HooksConfig {
    HooksConfig { token: Secret::new("hooktoken-abcdef1234567890"), path: "/hooks".into() }
}

fn head<'a>(method: &'a str, path: &'a str, auth: Option<&'a str>) -> HookHead<'a> {
    HookHead { method, path, query: None, authorization: auth, token_header: None, client: IpAddr::V4(Ipv4Addr::LOCALHOST) }
}

const GOOD: Option<&str> = Some("Bearer hooktoken-abcdef1234567890");

fn fleet() -> Agents {
    Agents { ids: vec!["main".into(), "research".into()], default: None }
}

const IDS: HookIds<'static> = HookIds { run_id: "run-1", job_id: "job-1" };

#[test]
fn gate_order() {
    let c = cfg();
    let mut l = HookAuthLimiter::new();
    let now = t0();
    assert_eq!(gate(None, &head("POST", "/hooks/wake", GOOD), &mut l, now), Gate::NotMine);
    assert_eq!(gate(Some(&c), &head("POST", "/hooksx", GOOD), &mut l, now), Gate::NotMine);
    assert_eq!(gate(Some(&c), &head("POST", "/v1/models", GOOD), &mut l, now), Gate::NotMine);
    let Gate::Respond(r) = gate(Some(&c), &head("GET", "/hooks/wake", None), &mut l, now) else { panic!() };
    assert_eq!((r.status, r.header("allow"), r.body.as_slice()), (405, Some("POST"), &b"Method Not Allowed"[..]));
    let mut q = head("POST", "/hooks/wake", GOOD);
    q.query = Some("a=1&token=hooktoken-abcdef1234567890");
    let Gate::Respond(r) = gate(Some(&c), &q, &mut l, now) else { panic!() };
    assert_eq!(
        (r.status, r.content_type, r.body.as_slice()),
        (400, clawgate_core::openai::api_response::TEXT, QUERY_TOKEN_MESSAGE.as_bytes())
    );
    let Gate::Respond(r) = gate(Some(&c), &head("POST", "/hooks/wake", Some("Bearer nope")), &mut l, now) else { panic!() };
    assert_eq!((r.status, r.body.as_slice()), (401, &b"Unauthorized"[..]));
    let Gate::Respond(r) = gate(Some(&c), &head("POST", "/hooks", GOOD), &mut l, now) else { panic!() };
    assert_eq!((r.status, r.body.as_slice()), (404, &b"Not Found"[..]));
    assert_eq!(gate(Some(&c), &head("POST", "/hooks/wake", GOOD), &mut l, now), Gate::Authorized { hook: "wake".into() });
    let mut x = head("POST", "/hooks/agent", None);
    x.token_header = Some(" hooktoken-abcdef1234567890 ");
    assert_eq!(gate(Some(&c), &x, &mut l, now), Gate::Authorized { hook: "agent".into() });
    assert_eq!(
        gate(Some(&c), &head("POST", "/hooks/wake", Some("bearer hooktoken-abcdef1234567890")), &mut l, now),
        Gate::Authorized { hook: "wake".into() }
    );
}

#[test]
fn limiter_locks_loopback_too() {
    let c = cfg();
    let mut l = HookAuthLimiter::new();
    let t0 = t0();
    for i in 0..AUTH_MAX_FAILURES {
        let Gate::Respond(r) =
            gate(Some(&c), &head("POST", "/hooks/wake", Some("Bearer bad")), &mut l, t0 + Duration::from_millis(u64::from(i)))
        else {
            panic!()
        };
        assert_eq!(r.status, 401);
    }
    let Gate::Respond(r) = gate(Some(&c), &head("POST", "/hooks/wake", GOOD), &mut l, t0 + Duration::from_secs(1)) else { panic!() };
    assert_eq!((r.status, r.header("retry-after")), (429, Some("60")));
    let other = HookHead { client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), ..head("POST", "/hooks/wake", GOOD) };
    assert!(matches!(gate(Some(&c), &other, &mut l, t0 + Duration::from_secs(1)), Gate::Authorized { .. }));
    assert!(matches!(gate(Some(&c), &head("POST", "/hooks/wake", GOOD), &mut l, t0 + Duration::from_secs(62)), Gate::Authorized { .. }));
}

#[test]
fn wake_and_agent() {
    let a = fleet();
    let p = HookPolicy::default();
    let d = decide("wake", br#"{"text":"ping","agentId":"main"}"#, &a, &p, IDS);
    assert_eq!(
        d,
        HookDecision::Wake(WakeRequest {
            text: "ping".into(),
            mode: WakeMode::Now,
            agent_id: "main".into(),
            session_key: "agent:main:main".into()
        })
    );
    assert_eq!(wake_response(WakeMode::Now, WakeOutcome::Queued).body, br#"{"ok":true,"mode":"now","eventOutcome":"queued"}"#);
    let HookDecision::Respond(r) = decide("wake", br#"{"agentId":"main"}"#, &a, &p, IDS) else { panic!() };
    assert_eq!((r.status, r.body.as_slice()), (400, &br#"{"ok":false,"error":"text required"}"#[..]));
    let HookDecision::Respond(r) = decide("agent", br#"{"agentId":"research"}"#, &a, &p, IDS) else { panic!() };
    assert_eq!(r.body, br#"{"ok":false,"error":"message required"}"#);
    let HookDecision::Agent(run) =
        decide("agent", br#"{"message":"Say hello","agentId":"research","name":"Test","deliver":false}"#, &a, &p, IDS)
    else {
        panic!()
    };
    assert_eq!(
        (run.agent_id.as_str(), run.session_key.as_str(), run.name.as_str(), run.deliver),
        ("research", "agent:research:cron:job-1", "Test", false)
    );
    assert_eq!(agent_response(&run.run_id).body, br#"{"ok":true,"runId":"run-1"}"#);
    let HookDecision::Agent(run) = decide("agent", br#"{"message":"x","agentId":"ghost"}"#, &a, &p, IDS) else { panic!() };
    assert_eq!(run.agent_id, "main");
    let HookDecision::Respond(r) = decide("agent", br#"{"message":"x","sessionKey":"hook:a"}"#, &a, &p, IDS) else { panic!() };
    assert_eq!(r.status, 400);
    let open = HookPolicy { allow_request_session_key: true, ..Default::default() };
    let HookDecision::Agent(run) = decide("agent", br#"{"message":"x","sessionKey":"hook:a","agentId":"research"}"#, &a, &open, IDS) else {
        panic!()
    };
    assert_eq!(run.session_key, "agent:research:hook:a");
    let HookDecision::Respond(r) = decide("agent", br#"{"message":"x","model":""}"#, &a, &p, IDS) else { panic!() };
    assert_eq!(r.body, br#"{"ok":false,"error":"model required"}"#);
    let HookDecision::Respond(r) = decide("nosuchmapping", br#"{"a":1}"#, &a, &p, IDS) else { panic!() };
    assert_eq!((r.status, r.content_type), (404, clawgate_core::openai::api_response::TEXT));
    let HookDecision::Respond(r) = decide("wake", b"{", &a, &p, IDS) else { panic!() };
    assert_eq!(r.body, br#"{"ok":false,"error":"Unexpected end of JSON input"}"#);
    let r = body_error(BodyError::TooLarge);
    assert_eq!((r.status, r.close, r.body.as_slice()), (413, true, &br#"{"ok":false,"error":"payload too large"}"#[..]));
    let restricted = HookPolicy::from_config(&json!({"hooks": {"allowedAgentIds": ["main"], "allowRequestSessionKey": true}}));
    assert!(restricted.allow_request_session_key);
    let HookDecision::Respond(r) = decide("agent", br#"{"message":"x","agentId":"research"}"#, &a, &restricted, IDS) else { panic!() };
    assert_eq!(r.body, br#"{"ok":false,"error":"agentId is not allowed by hooks.allowedAgentIds"}"#);
}
