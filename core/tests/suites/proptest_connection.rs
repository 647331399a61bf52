//! Property tests on virtual time:
//!
//! * `ServerConnection` fed arbitrary input sequences never panics, never emits anything but
//!   `Terminate` after its first `Close` (and nothing at all after `Terminate` or a peer
//!   close), emits at most one `Close`, keeps `seq` increasing, and its deadline never falls
//!   into the past (which would mean a skipped timer);
//! * the `RateLimiter` never locks a loopback IP and locks a non-loopback IP at exactly
//!   `max_attempts` failures within the window;
//! * `schema::validate` and `wire::parse_request` never panic on arbitrary JSON-ish input.

use crate::common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use clawgate_core::auth::ingress::RequestFacts;
use clawgate_core::auth::scopes::event_gate;
use clawgate_core::auth::{LimitCheck, LimiterSubject, RateLimitPolicy, RateLimiter, SHARED_SECRET_SCOPE};
use clawgate_core::connection::{Phase, Reply};
use clawgate_core::gateway::Broadcast;
use clawgate_core::wire::ErrorShape;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

// ---- generators --------------------------------------------------------------------------

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z./_ -]{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["req", "connect", "health", "status", "operator.read", "cli", "test", "probe", "é☃", ""])
            .prop_map(|s| json!(s)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "type",
        "id",
        "method",
        "params",
        "traceparent",
        "expectedProfileId",
        "minProtocol",
        "maxProtocol",
        "client",
        "auth",
        "token",
        "password",
        "role",
        "scopes",
        "mode",
        "version",
        "platform",
        "device",
        "caps",
        "x",
        "bogus",
    ]);
    json_leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// Connect params with random (often valid) fields.
fn connect_params() -> impl Strategy<Value = Value> {
    let ids = prop::sample::select(vec![
        "cli",
        "cli",
        "gateway-client",
        "test",
        "test",
        "openclaw-macos",
        "openclaw-tui",
        "webchat-ui",
        "node-host",
        "nope",
    ]);
    let modes = prop::sample::select(vec!["cli", "cli", "backend", "probe", "test", "test", "ui", "node", "webchat", "operator"]);
    let roles = prop::sample::select(vec![None, None, Some("operator"), Some("operator"), Some("node"), Some("admin")]);
    let tokens = prop::sample::select(vec![None, Some(TOKEN), Some(TOKEN), Some(TOKEN), Some(TOKEN), Some("wrong-token"), Some("")]);
    let scopes = prop::sample::subsequence(vec!["operator.read", "operator.write", "operator.admin", "operator.pairing"], 0..4);
    let protocol = prop_oneof![3 => Just((4u64, 4u64)), 1 => (0u64..7, 0u64..7)];
    (ids, modes, roles, tokens, any::<bool>(), scopes, protocol, prop::option::weighted(0.1, json_value())).prop_map(
        |(id, mode, role, token, in_password, scopes, (min, max), extra)| {
            let mut p = json!({
                "minProtocol": min.min(max).max(1), "maxProtocol": max.max(min).max(1),
                "client": {"id": id, "version": "1", "platform": "linux", "mode": mode},
                "scopes": scopes,
            });
            if let Some(r) = role {
                p["role"] = json!(r);
            }
            if let Some(t) = token {
                p["auth"] = if in_password { json!({"password": t}) } else { json!({"token": t}) };
            }
            if let Some(x) = extra {
                p["extra"] = x;
            }
            p
        },
    )
}

/// Connect params that pass the handshake (random client kind, scopes and credential field).
fn good_connect_params() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(vec![
        ("cli", "cli"),
        ("test", "test"),
        ("gateway-client", "backend"),
        ("cli", "probe"),
        ("openclaw-macos", "ui"),
    ]);
    let scopes = prop::sample::subsequence(vec!["operator.read", "operator.write", "operator.admin", "operator.pairing"], 0..4);
    (kinds, scopes, any::<bool>(), prop::sample::select(vec![(4u64, 4u64), (1, 99), (3, 4)])).prop_map(
        |((id, mode), scopes, in_password, (min, max))| {
            let mut p = client_params(id, mode, None, &scopes);
            p["auth"] = if in_password { json!({"password": TOKEN}) } else { json!({"token": TOKEN}) };
            p["minProtocol"] = json!(if mode == "probe" { min.min(3) } else { min });
            p["maxProtocol"] = json!(max);
            p
        },
    )
}

fn text_input() -> impl Strategy<Value = String> {
    let methods =
        prop::sample::select(vec!["health", "status", "system-presence", "config.get", "config.patch", "connect", "agent", "no.such"]);
    prop_oneof![
        4 => connect_params().prop_map(|p| connect_frame("c", p)),
        4 => (methods, "[a-z0-9]{1,4}", prop::option::of(json_value())).prop_map(|(m, id, p)| req(&id, m, p)),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => any::<String>(),
        1 => Just(cli_connect("ok")),
        1 => Just("{".to_string()),
    ]
}

#[derive(Debug, Clone)]
enum Input {
    Text(String),
    Binary(Vec<u8>),
    Pong,
    Advance(u64),
    Event { name: &'static str, drop_if_slow: bool, buffered: usize },
    CompleteHeld { index: usize, ok: bool },
    CompleteRandom(String),
    Shutdown,
    TooLarge,
    PeerClose,
}

fn input() -> impl Strategy<Value = Input> {
    let buffered = prop_oneof![Just(0usize), Just(MAX_BUFFERED), Just(MAX_BUFFERED + 1), any::<usize>()];
    let names = prop::sample::select(vec!["tick", "health", "presence", "heartbeat", "update.available", "device.pair.requested", "zzz"]);
    prop_oneof![
        10 => text_input().prop_map(Input::Text),
        2 => prop_oneof![
            prop::collection::vec(any::<u8>(), 0..48),
            Just(cli_connect("bin").into_bytes()),
        ].prop_map(Input::Binary),
        2 => Just(Input::Pong),
        5 => (0u64..40_000).prop_map(Input::Advance),
        3 => (names, any::<bool>(), buffered).prop_map(|(name, drop_if_slow, buffered)| Input::Event { name, drop_if_slow, buffered }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(index, ok)| Input::CompleteHeld { index, ok }),
        1 => "[a-z0-9]{0,6}".prop_map(Input::CompleteRandom),
        1 => Just(Input::Shutdown),
        1 => Just(Input::TooLarge),
        1 => Just(Input::PeerClose),
    ]
}

/// Checks the output invariants incrementally.
#[derive(Default)]
struct Checker {
    closes: usize,
    terminated: bool,
    peer_closed: bool,
    last_seq: u64,
    hellos: usize,
}

impl Checker {
    fn check(&mut self, outs: &[Out], phase_before: Phase, phase_after: Phase) -> Result<(), TestCaseError> {
        for o in outs {
            prop_assert!(!self.terminated, "output after Terminate: {o:?}");
            prop_assert!(!self.peer_closed, "output after the peer closed: {o:?}");
            if self.closes > 0 {
                prop_assert!(matches!(o, Out::Terminate), "only Terminate may follow a Close, got {o:?}");
            }
            match o {
                Out::Close(_, reason) => {
                    self.closes += 1;
                    prop_assert!(reason.len() <= 120, "close reason too long: {reason:?}");
                }
                Out::Terminate => self.terminated = true,
                Out::Frame(f) => {
                    let ty = f["type"].as_str().unwrap_or("");
                    prop_assert!(ty == "res" || ty == "event", "bad frame {f}");
                    if ty == "event" {
                        prop_assert_ne!(&f["event"], "connect.challenge");
                        let seq = f["seq"].as_u64();
                        prop_assert!(seq.is_some_and(|s| s > self.last_seq), "seq must increase: {f} after {}", self.last_seq);
                        self.last_seq = seq.unwrap();
                    }
                    if f["payload"]["type"] == "hello-ok" {
                        self.hellos += 1;
                        prop_assert_eq!(self.hellos, 1, "two hellos");
                    }
                }
                Out::Dispatched { .. } => {
                    prop_assert!(phase_before == Phase::Open, "dispatch while {:?}", phase_before);
                }
                Out::Ping | Out::BarrierPing(_) => prop_assert!(phase_before == Phase::Open),
                Out::MaxSize(n) => prop_assert_eq!(*n, MAX_PAYLOAD, "only the post-auth size is set after open"),
            }
        }
        prop_assert!(self.closes <= 1, "more than one Close");
        if self.closes > 0 || self.terminated {
            prop_assert!(matches!(phase_after, Phase::Closing | Phase::Closed), "phase {:?} after close", phase_after);
        }
        Ok(())
    }
}

fn run_sequence(remote: bool, origin: bool, hold: bool, inputs: Vec<Input>) -> Result<(), TestCaseError> {
    let gw = Gw::new();
    let ip: IpAddr = if remote { remote_ip() } else { loopback() };
    let facts = if origin { origin_facts("http://localhost:18789") } else { RequestFacts::default() };
    let mut c = gw.open_from(ip, &facts, gw.t0 + ms(1));
    c.hold_dispatches = hold;
    prop_assert_eq!(&c.opened[0], &Out::MaxSize(MAX_PREAUTH));
    prop_assert_eq!(c.opened.frames()[0]["event"].clone(), json!("connect.challenge"));
    let mut chk = Checker::default();
    for inp in inputs {
        let before = c.phase();
        let prev_deadline = c.sock.conn.poll_timeout();
        let outs = match &inp {
            Input::Text(t) => c.text(t),
            Input::Binary(b) => c.binary(b),
            Input::Pong => c.pong(),
            Input::Advance(d) => {
                let target = c.now + Duration::from_millis(*d);
                // `advance` itself asserts that no deadline is ever found in the past.
                let outs = advance(&mut [&mut c], target);
                if let Some(dl) = c.sock.conn.poll_timeout() {
                    prop_assert!(dl > target, "a deadline <= target survived the advance");
                }
                outs
            }
            Input::Event { name, drop_if_slow, buffered } => {
                let b = Broadcast {
                    event: name.to_string(),
                    payload: Some(r#"{"ts":1}"#.into()),
                    gate: event_gate(name),
                    drop_if_slow: *drop_if_slow,
                    state_version: None,
                };
                c.sock.conn.handle_event(c.now, &Arc::new(b), *buffered);
                c.drain()
            }
            Input::CompleteHeld { index, ok } => {
                if c.held.is_empty() {
                    Vec::new()
                } else {
                    let i = index % c.held.len();
                    if *ok {
                        c.complete_held(i)
                    } else {
                        let d = c.held.remove(i);
                        c.sock.conn.complete(&d.request_id, Reply::err(ErrorShape::unavailable("x")));
                        c.drain()
                    }
                }
            }
            Input::CompleteRandom(id) => {
                c.sock.conn.complete(id, Reply::Ok(None));
                c.drain()
            }
            Input::Shutdown => c.shutdown("gateway stopping"),
            Input::TooLarge => c.too_large(),
            Input::PeerClose => {
                let o = c.peer_close();
                chk.check(&o, before, c.phase())?;
                chk.peer_closed = true;
                continue;
            }
        };
        chk.check(&outs, before, c.phase())?;
        // The next deadline is never in the past: a timer can not be skipped.
        if let Some(dl) = c.sock.conn.poll_timeout() {
            prop_assert!(
                dl > c.now,
                "deadline {:?} not after now {:?} after {inp:?} (was {:?})",
                dl - gw.t0,
                c.now - gw.t0,
                prev_deadline.map(|d| d - gw.t0)
            );
        }
        if matches!(c.phase(), Phase::Closed) {
            prop_assert_eq!(c.sock.conn.poll_timeout(), None);
        }
    }
    // Whatever state we ended in, letting time pass finishes the socket cleanly or keeps it open.
    let end = c.now + secs(200);
    let before = c.phase();
    let outs = advance(&mut [&mut c], end);
    chk.check(&outs, before, c.phase())?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn connection_never_misbehaves(
        remote in any::<bool>(),
        origin in prop::bool::weighted(0.2),
        hold in any::<bool>(),
        inputs in prop::collection::vec(input(), 0..40),
    ) {
        run_sequence(remote, origin, hold, inputs)?;
    }

    #[test]
    fn connection_with_a_random_connect_never_misbehaves(
        remote in any::<bool>(),
        origin in prop::bool::weighted(0.2),
        hold in any::<bool>(),
        // Inputs that do not end a pre-auth socket, then a random (often valid) connect.
        prefix in prop::collection::vec(prop_oneof![
            Just(Input::Pong),
            (0u64..14_000).prop_map(Input::Advance),
            "[a-z0-9]{0,6}".prop_map(Input::CompleteRandom),
        ], 0..3),
        connect in prop::option::weighted(0.9, prop_oneof![3 => good_connect_params(), 1 => connect_params()]),
        rest in prop::collection::vec(input(), 0..40),
    ) {
        let mut all = prefix;
        all.extend(connect.map(|p| Input::Text(connect_frame("c", p))));
        all.extend(rest);
        run_sequence(remote, origin, hold, all)?;
    }

    #[test]
    fn connection_after_a_good_connect_never_misbehaves(
        hold in any::<bool>(),
        inputs in prop::collection::vec(input(), 0..40),
    ) {
        let mut all = vec![Input::Text(cli_connect("first"))];
        all.extend(inputs);
        run_sequence(false, false, hold, all)?;
    }
}

// ---- rate limiter --------------------------------------------------------------------------

fn loopback_subject() -> impl Strategy<Value = LimiterSubject> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| LimiterSubject::Ip(IpAddr::from([127, a, b, c]))),
        Just(LimiterSubject::Ip("::1".parse().unwrap())),
        Just(LimiterSubject::Ip("::ffff:127.0.0.1".parse().unwrap())),
    ]
}

fn remote_subject() -> impl Strategy<Value = LimiterSubject> {
    prop_oneof![
        any::<[u8; 4]>().prop_filter("not loopback", |o| o[0] != 127).prop_map(|o| LimiterSubject::Ip(IpAddr::from(o))),
        any::<[u16; 8]>()
            .prop_filter("not loopback/mapped", |s| *s != [0, 0, 0, 0, 0, 0, 0, 1] && !(s[..5] == [0; 5] && s[5] == 0xffff))
            .prop_map(|s| LimiterSubject::Ip(IpAddr::from(s))),
        "[a-z:/.0-9]{1,24}".prop_map(LimiterSubject::BrowserOrigin),
    ]
}

fn policy() -> impl Strategy<Value = RateLimitPolicy> {
    (1u32..16, 1_000u64..120_000, 1_000u64..600_000).prop_map(|(max, window, lockout)| RateLimitPolicy {
        max_attempts: max,
        window: Duration::from_millis(window),
        lockout: Duration::from_millis(lockout),
        exempt_loopback: true,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn limiter_never_locks_loopback(
        policy in policy(),
        subject in loopback_subject(),
        gaps in prop::collection::vec(0u64..30_000, 1..60),
    ) {
        let t0 = t0();
        let mut l = RateLimiter::new(policy);
        let mut now_ms = 0u64;
        let mut history: Vec<u64> = Vec::new();
        for g in gaps {
            now_ms += g;
            let now = t0 + ms(now_ms);
            prop_assert_eq!(l.check(now, SHARED_SECRET_SCOPE, &subject), LimitCheck::Allowed);
            let delay = l.record_failure(now, SHARED_SECRET_SCOPE, &subject);
            // Model: n = failures within the window (this one included), history capped at 6.
            history.retain(|&t| now_ms - t < policy.window.as_millis() as u64);
            history.push(now_ms);
            if history.len() > 6 {
                history.remove(0);
            }
            let n = history.len() as u32;
            let want = (250u64 << (n - 1)).min(5_000);
            prop_assert_eq!(delay, Some(ms(want)), "failure #{} at {} ms", n, now_ms);
            prop_assert_eq!(l.check(now, SHARED_SECRET_SCOPE, &subject), LimitCheck::Allowed);
        }
    }

    #[test]
    fn limiter_locks_remote_at_exactly_max_attempts(
        policy in policy(),
        subject in remote_subject(),
        spread in prop::collection::vec(0u64..1_000_000, 16),
        start in 0u64..1_000_000,
    ) {
        let t0 = t0();
        let mut l = RateLimiter::new(policy);
        let max = policy.max_attempts as usize;
        let window = policy.window.as_millis() as u64;
        // `max` failures spread inside one window: offsets in [0, window).
        let mut offsets: Vec<u64> = spread[..max].iter().map(|s| s % window).collect();
        offsets.sort_unstable();
        for (i, off) in offsets.iter().enumerate() {
            let now = t0 + ms(start + off);
            prop_assert_eq!(l.check(now, SHARED_SECRET_SCOPE, &subject), LimitCheck::Allowed, "before failure {}", i + 1);
            prop_assert_eq!(l.record_failure(now, SHARED_SECRET_SCOPE, &subject), None, "no delay for non-loopback");
        }
        let last = start + offsets[max - 1];
        let lockout = policy.lockout.as_millis() as u64;
        prop_assert_eq!(l.check(t0 + ms(last), SHARED_SECRET_SCOPE, &subject), LimitCheck::Locked { retry_after_ms: lockout });
        prop_assert_eq!(l.check(t0 + ms(last + lockout - 1), SHARED_SECRET_SCOPE, &subject), LimitCheck::Locked { retry_after_ms: 1 });
        prop_assert_eq!(l.check(t0 + ms(last + lockout), SHARED_SECRET_SCOPE, &subject), LimitCheck::Allowed);
    }

    #[test]
    fn limiter_one_failure_short_of_max_never_locks(
        policy in policy(),
        subject in remote_subject(),
        gaps in prop::collection::vec(0u64..200_000, 1..40),
    ) {
        // Failures that never put `max` of them inside one window never lock.
        let t0 = t0();
        let mut l = RateLimiter::new(policy);
        let window = policy.window.as_millis() as u64;
        let mut now_ms = 0;
        let mut recent: Vec<u64> = Vec::new();
        for g in gaps {
            now_ms += g;
            recent.retain(|&t| now_ms - t < window);
            if recent.len() + 1 >= policy.max_attempts as usize {
                continue; // would reach max: skip this failure
            }
            recent.push(now_ms);
            let now = t0 + ms(now_ms);
            l.record_failure(now, SHARED_SECRET_SCOPE, &subject);
            prop_assert_eq!(l.check(now, SHARED_SECRET_SCOPE, &subject), LimitCheck::Allowed);
        }
    }
}

// ---- schema / frame parsing -------------------------------------------------------------------

fn schema_value() -> impl Strategy<Value = Value> {
    let kw = prop::sample::select(vec![
        "type",
        "required",
        "properties",
        "additionalProperties",
        "patternProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "uniqueItems",
        "pattern",
        "x",
    ]);
    let leaf = prop_oneof![
        json_leaf(),
        prop::sample::select(vec!["object", "array", "string", "integer", "number", "boolean", "null", "^.*$", "^[a-f0-9]{64}$"])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((kw.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_request_never_panics_on_strings(s in any::<String>()) {
        let _ = clawgate_core::wire::parse_request(&s);
    }

    #[test]
    fn parse_request_never_panics_on_json(v in json_value(), wrap in any::<bool>(), method in "[a-z.]{0,8}") {
        let v = if wrap { json!({"type": "req", "id": "x", "method": method, "params": v}) } else { v };
        let text = v.to_string();
        if let Ok(r) = clawgate_core::wire::parse_request(&text) {
            // Whatever parses is a closed request frame with non-empty id and method.
            prop_assert!(!r.id.is_empty() && !r.method.is_empty());
            prop_assert!(clawgate_core::wire::schema::validate(clawgate_core::wire::schema("RequestFrameSchema"), &v).is_ok());
        }
        // Truncated JSON is never a request.
        if text.len() > 1 {
            prop_assert!(clawgate_core::wire::parse_request(&text[..text.len() - 1]).is_err());
        }
    }

    #[test]
    fn protocol_schemas_never_panic(v in json_value(), which in 0usize..12) {
        let schema = clawgate_core::wire::schema(clawgate_core::wire::PROTOCOL_SCHEMA_NAMES[which]);
        prop_assert!(schema.is_object(), "{} missing", clawgate_core::wire::PROTOCOL_SCHEMA_NAMES[which]);
        match clawgate_core::wire::schema::validate(schema, &v) {
            Ok(()) => {}
            Err(msg) => prop_assert!(!msg.is_empty()),
        }
    }

    #[test]
    fn arbitrary_schemas_never_panic(schema in schema_value(), v in json_value()) {
        let _ = clawgate_core::wire::schema::validate(&schema, &v);
        let errors = clawgate_core::wire::schema::collect_errors(&schema, &v);
        prop_assert!(errors.len() <= clawgate_core::wire::schema::MAX_RAW_ERRORS);
    }

    #[test]
    fn connect_params_parsing_never_panics(p in connect_params()) {
        if let Ok(cp) = clawgate_core::connection::handshake::parse_connect_params(Some(&p)) {
            let _ = clawgate_core::connection::handshake::negotiate(&cp);
            let _ = clawgate_core::connection::handshake::resolve_role(&cp);
        }
    }
}
