//! The failed-auth rate limiter (protocol.md §5.3, config-auth-reload.md §4.8 / table K) on
//! virtual time: through whole connections, and as a unit (`RateLimiter`). The unit tests were
//! moved here from `core/src/auth.rs` so that no code under `core/src` reads the clock.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};

use clawgate_core::auth::ingress::RequestFacts;
use clawgate_core::auth::{
    AuthMode, AuthSettings, ClientCredentials, LimitCheck, LimiterSubject, RateLimitPolicy, RateLimiter, SHARED_SECRET_SCOPE, Secret,
    SharedAuth, authorize_shared_secret,
};
use clawgate_core::connection::Phase;
use common::*;
use serde_json::{Value, json};

// ---- through connections -----------------------------------------------------------------

/// One wrong-token attempt from a fresh socket opened at `at`; returns the socket (already
/// advanced past its response) and when the response came out.
fn wrong_token(gw: &Gw, ip: IpAddr, facts: &RequestFacts, at: std::time::Instant) -> (Conn, std::time::Instant, Value) {
    let mut c = gw.open_from(ip, facts, at);
    let mut outs = c.text(&connect_frame("bad", cli_params("wrong-token", &["operator.read"])));
    if outs.responses().is_empty() {
        assert_eq!(c.phase(), Phase::ConnectPending);
        let until = c.sock.conn.poll_timeout().unwrap();
        outs = c.advance_to(until);
    }
    let res = outs.response("bad");
    let at = c.first_time(|o| matches!(o, Out::Frame(f) if f["type"] == "res")).unwrap();
    assert_eq!(outs.close().map(|c| c.0), Some(1008));
    (c, at, res)
}

#[test]
fn loopback_failures_are_delayed_exponentially_and_never_locked() {
    let gw = Gw::new();
    let expected = [250u64, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000, 5000, 5000];
    let mut now = gw.t0 + ms(10);
    for (i, delay) in expected.iter().enumerate() {
        let mut c = gw.open(now);
        let outs = c.text(&connect_frame("bad", cli_params("wrong-token", &["operator.read"])));
        assert!(outs.is_empty(), "attempt {i}: the failure must be held back: {outs:?}");
        assert_eq!(c.sock.conn.poll_timeout(), Some(now + ms(*delay)), "attempt {i}");
        // Not a millisecond early ...
        let early = c.advance_to(now + ms(delay - 1));
        assert!(early.is_empty(), "attempt {i}: emitted before {delay} ms: {early:?}");
        // ... and exactly on time.
        let outs = c.advance_to(now + ms(*delay));
        let res = outs.response("bad");
        let e = assert_err(&res, "INVALID_REQUEST", TOKEN_MISMATCH_LOCAL);
        assert_eq!(e["details"]["code"], "AUTH_TOKEN_MISMATCH", "attempt {i}: never rate limited on loopback");
        assert!(e.get("retryable").is_none());
        assert_eq!(outs.close(), Some((1008, TOKEN_MISMATCH_LOCAL.into())));
        now += ms(*delay);
    }
    // The correct token works right away, without any delay.
    let mut c = gw.open(now);
    let outs = c.text(&cli_connect("ok"));
    assert_eq!(outs.response("ok")["ok"], true);
    assert_eq!(c.sock.conn.principal().unwrap().1, &["operator.read".to_string()]);
}

#[test]
fn loopback_delay_history_expires_with_the_window() {
    let gw = Gw::new();
    let (_, t1, _) = wrong_token(&gw, loopback(), &RequestFacts::default(), gw.t0);
    let (_, t2, _) = wrong_token(&gw, loopback(), &RequestFacts::default(), t1);
    assert_eq!(t2 - t1, ms(500));
    // 60 s after those failures they no longer count: back to 250 ms.
    let later = gw.t0 + secs(61);
    let (_, t3, _) = wrong_token(&gw, loopback(), &RequestFacts::default(), later);
    assert_eq!(t3 - later, ms(250));
}

#[test]
fn a_success_resets_the_loopback_delay() {
    let gw = Gw::new();
    let (_, t1, _) = wrong_token(&gw, loopback(), &RequestFacts::default(), gw.t0);
    let (_, t2, _) = wrong_token(&gw, loopback(), &RequestFacts::default(), t1);
    let (_c, _) = gw.open_cli(t2, &["operator.read"]);
    let (_, t3, _) = wrong_token(&gw, loopback(), &RequestFacts::default(), t2);
    assert_eq!(t3 - t2, ms(250));
}

fn assert_rate_limited(res: &Value, retry_after_ms: u64) {
    let e = assert_err(res, "INVALID_REQUEST", RATE_LIMITED);
    assert_eq!(e["retryable"], true);
    assert_eq!(e["retryAfterMs"], retry_after_ms, "{e}");
    assert_eq!(
        e["details"],
        json!({"code": "AUTH_RATE_LIMITED", "authReason": "rate_limited", "canRetryWithDeviceToken": false, "recommendedNextStep": "wait_then_retry"})
    );
}

/// Ten immediate failures, then a lockout of 300 s counted from the 10th failure.
fn lockout_scenario(ip: IpAddr, facts: RequestFacts, mismatch_message: &str) {
    let gw = Gw::new();
    let mut now = gw.t0 + ms(40);
    let mut tenth = now;
    for i in 0..10 {
        let mut c = gw.open_from(ip, &facts, now);
        let outs = c.text(&connect_frame(&format!("o{i}"), cli_params("wrong-token", &["operator.read"])));
        // Immediate: no loopback delay for these subjects.
        let res = outs.response(&format!("o{i}"));
        let e = assert_err(&res, "INVALID_REQUEST", mismatch_message);
        assert_eq!(e["details"]["code"], "AUTH_TOKEN_MISMATCH", "attempt {i}");
        assert_eq!(outs.close(), Some((1008, mismatch_message.to_string())));
        tenth = now;
        now += ms(11);
    }
    // The 11th attempt (10 ms after the 10th) is refused as rate limited, immediately.
    let eleventh = tenth + ms(10);
    let mut c = gw.open_from(ip, &facts, eleventh);
    let outs = c.text(&connect_frame("o10", cli_params("wrong-token", &["operator.read"])));
    assert_rate_limited(&outs.response("o10"), 299_990);
    assert_eq!(outs.close(), Some((1008, RATE_LIMITED.into())));
    // So is the correct token while the lock holds (and it does not extend the lock).
    let mut c = gw.open_from(ip, &facts, eleventh + secs(100));
    let outs = c.text(&cli_connect("ok"));
    assert_rate_limited(&outs.response("ok"), 199_990);
    let mut c = gw.open_from(ip, &facts, tenth + ms(299_999));
    let outs = c.text(&cli_connect("ok"));
    assert_rate_limited(&outs.response("ok"), 1);
    // The lock ends exactly 300 s after the 10th failure: the correct token works.
    let mut c = gw.open_from(ip, &facts, tenth + secs(300));
    let outs = c.text(&cli_connect("ok"));
    let res = outs.response("ok");
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["payload"]["auth"]["scopes"], json!([]), "not local-cli: scopes cleared");
}

#[test]
fn non_loopback_is_locked_after_ten_failures() {
    lockout_scenario(remote_ip(), RequestFacts::default(), TOKEN_MISMATCH_REMOTE);
}

#[test]
fn origin_header_removes_the_loopback_exemption() {
    lockout_scenario(loopback(), origin_facts("http://localhost:28821"), TOKEN_MISMATCH_LOCAL);
}

#[test]
fn browser_origins_are_separate_buckets_and_do_not_lock_plain_loopback() {
    let gw = Gw::new();
    let a = origin_facts("http://localhost:28821");
    for i in 0..10 {
        wrong_token(&gw, loopback(), &a, gw.t0 + ms(i));
    }
    let (_, _, res) = wrong_token(&gw, loopback(), &a, gw.t0 + ms(20));
    assert_eq!(res["error"]["details"]["code"], "AUTH_RATE_LIMITED");
    // The same origin spelled in upper case is the same bucket.
    let (_, _, res) = wrong_token(&gw, loopback(), &origin_facts("HTTP://LOCALHOST:28821"), gw.t0 + ms(21));
    assert_eq!(res["error"]["details"]["code"], "AUTH_RATE_LIMITED");
    // Another origin is another bucket.
    let (_, _, res) = wrong_token(&gw, loopback(), &origin_facts("http://127.0.0.1:28821"), gw.t0 + ms(22));
    assert_eq!(res["error"]["details"]["code"], "AUTH_TOKEN_MISMATCH");
    // Plain loopback (no Origin) is unaffected: the correct token works.
    let (_c, hello) = gw.open_cli(gw.t0 + ms(23), &["operator.read"]);
    assert_eq!(hello["auth"]["scopes"], json!(["operator.read"]));
}

#[test]
fn missing_credentials_are_not_counted() {
    let gw = Gw::new();
    for i in 0..20 {
        let mut c = gw.open_from(remote_ip(), &RequestFacts::default(), gw.t0 + ms(i));
        let outs = c.text(&connect_frame("n", client_params("cli", "cli", None, &[])));
        assert_err(&outs.response("n"), "NOT_PAIRED", "device identity required");
    }
    let mut c = gw.open_from(remote_ip(), &RequestFacts::default(), gw.t0 + ms(30));
    assert_eq!(c.text(&cli_connect("ok")).response("ok")["ok"], true);
}

// ---- the RateLimiter state machine (decision table K) -----------------------------------

fn lo() -> LimiterSubject {
    LimiterSubject::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn remote() -> LimiterSubject {
    LimiterSubject::Ip("192.0.2.7".parse().unwrap())
}

#[test]
fn unit_loopback_delays_escalate_and_never_lock() {
    let t0 = t0();
    let mut l = RateLimiter::new(RateLimitPolicy::default());
    let s = lo();
    let mut got = vec![];
    for i in 0..12 {
        let now = t0 + ms(i * 100);
        assert_eq!(l.check(now, SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
        got.push(l.record_failure(now, SHARED_SECRET_SCOPE, &s).unwrap().as_millis());
    }
    assert_eq!(got, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000, 5000, 5000]);
    // IPv4-mapped and IPv6 loopback are exempt too.
    for ip in ["::1", "::ffff:127.0.0.1", "127.3.2.1"] {
        let s = LimiterSubject::Ip(ip.parse().unwrap());
        for i in 0..20 {
            assert!(l.record_failure(t0 + ms(i), SHARED_SECRET_SCOPE, &s).is_some(), "{ip}");
        }
        assert_eq!(l.check(t0 + ms(20), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed, "{ip}");
    }
}

#[test]
fn unit_remote_locks_after_ten_for_five_minutes() {
    let t0 = t0();
    let mut l = RateLimiter::new(RateLimitPolicy::default());
    let s = remote();
    for i in 0..10 {
        assert_eq!(l.check(t0 + ms(i), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
        assert_eq!(l.record_failure(t0 + ms(i), SHARED_SECRET_SCOPE, &s), None);
    }
    // Locked from the 10th failure (at 9 ms) for 300 000 ms.
    assert_eq!(l.check(t0 + ms(10), SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { retry_after_ms: 300_000 - 1 });
    // Failures while locked are no-ops (they do not extend the lock).
    assert_eq!(l.record_failure(t0 + ms(200_000), SHARED_SECRET_SCOPE, &s), None);
    assert_eq!(l.check(t0 + ms(300_008), SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { retry_after_ms: 1 });
    assert_eq!(l.check(t0 + ms(300_009), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
    // After the lock expired the attempts are cleared: one failure does not re-lock.
    l.record_failure(t0 + ms(300_010), SHARED_SECRET_SCOPE, &s);
    assert_eq!(l.check(t0 + ms(300_011), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
}

#[test]
fn unit_window_expiry_forgets_old_failures() {
    let t0 = t0();
    let mut l = RateLimiter::new(RateLimitPolicy::default());
    let s = LimiterSubject::BrowserOrigin("http://localhost:1".into());
    for i in 0..9 {
        l.record_failure(t0 + ms(i), SHARED_SECRET_SCOPE, &s);
    }
    // 60 s later the nine failures are outside the window.
    l.record_failure(t0 + ms(60_010), SHARED_SECRET_SCOPE, &s);
    assert_eq!(l.check(t0 + ms(60_011), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
}

#[test]
fn unit_window_boundary_is_exclusive() {
    // Attempts at or before `now − window` no longer count (table K: "drop attempts ≤ now−window").
    let t0 = t0();
    let mut l = RateLimiter::new(RateLimitPolicy::default());
    let s = remote();
    l.record_failure(t0, SHARED_SECRET_SCOPE, &s);
    for i in 1..10 {
        l.record_failure(t0 + ms(59_990 + i), SHARED_SECRET_SCOPE, &s);
    }
    // The 10th failure at 59 999 ms still sees the first one (59 999 < 60 000): locked.
    assert!(matches!(l.check(t0 + ms(59_999), SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { .. }));

    let mut l = RateLimiter::new(RateLimitPolicy::default());
    l.record_failure(t0, SHARED_SECRET_SCOPE, &s);
    for i in 1..10 {
        l.record_failure(t0 + ms(59_991 + i), SHARED_SECRET_SCOPE, &s);
    }
    // Now the 10th failure lands at exactly 60 000 ms: the first one has expired.
    assert_eq!(l.check(t0 + ms(60_000), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
}

#[test]
fn unit_reset_on_success_clears_the_subject() {
    let t0 = t0();
    let mut l = RateLimiter::new(RateLimitPolicy::default());
    let s = remote();
    for i in 0..9 {
        l.record_failure(t0 + ms(i), SHARED_SECRET_SCOPE, &s);
    }
    l.reset(SHARED_SECRET_SCOPE, &s);
    assert!(l.is_empty());
    for i in 0..9 {
        l.record_failure(t0 + ms(100 + i), SHARED_SECRET_SCOPE, &s);
        assert_eq!(l.check(t0 + ms(100 + i), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
    }
    l.record_failure(t0 + ms(200), SHARED_SECRET_SCOPE, &s);
    assert!(matches!(l.check(t0 + ms(200), SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { .. }));
    // Scopes are independent: a reset of another scope leaves this one locked.
    l.reset("device-token", &s);
    assert!(matches!(l.check(t0 + ms(201), SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { .. }));
    assert_eq!(l.check(t0 + ms(201), "device-token", &s), LimitCheck::Allowed);
}

#[test]
fn unit_browser_origin_subjects_are_never_exempt() {
    let t0 = t0();
    // Even with exemptLoopback on, and even for a loopback origin.
    let mut l = RateLimiter::new(RateLimitPolicy { exempt_loopback: true, ..RateLimitPolicy::default() });
    for origin in ["http://localhost:18789", "http://127.0.0.1:18789", "http://[::1]:1"] {
        let s = LimiterSubject::BrowserOrigin(origin.into());
        for i in 0..10 {
            assert_eq!(l.record_failure(t0 + ms(i), SHARED_SECRET_SCOPE, &s), None, "no delay: {origin}");
        }
        assert_eq!(l.check(t0 + ms(10), SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { retry_after_ms: 299_999 }, "{origin}");
    }
}

#[test]
fn unit_exempt_loopback_off_locks_loopback() {
    let t0 = t0();
    let mut l =
        RateLimiter::new(RateLimitPolicy { max_attempts: 3, lockout: secs(20), exempt_loopback: false, ..RateLimitPolicy::default() });
    for i in 0..3 {
        assert_eq!(l.record_failure(t0 + ms(i), SHARED_SECRET_SCOPE, &lo()), None);
    }
    assert_eq!(l.check(t0 + ms(74), SHARED_SECRET_SCOPE, &lo()), LimitCheck::Locked { retry_after_ms: 19_928 });
    assert_eq!(l.check(t0 + ms(20_002), SHARED_SECRET_SCOPE, &lo()), LimitCheck::Allowed);
}

#[test]
fn unit_policy_update_keeps_entries_and_applies_new_max() {
    let t0 = t0();
    let mut l = RateLimiter::new(RateLimitPolicy::default());
    let s = remote();
    for i in 0..4 {
        l.record_failure(t0 + ms(i), SHARED_SECRET_SCOPE, &s);
    }
    assert_eq!(l.check(t0 + ms(5), SHARED_SECRET_SCOPE, &s), LimitCheck::Allowed);
    l.update_policy(RateLimitPolicy { max_attempts: 3, lockout: secs(20), ..RateLimitPolicy::default() });
    // Table K: on check, attempts ≥ max lock the key from now.
    assert_eq!(l.check(t0 + ms(6), SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { retry_after_ms: 20_000 });
}

#[test]
fn unit_authorize_shared_secret_steps() {
    let t0 = t0();
    let settings =
        AuthSettings { mode: AuthMode::Token, token: Some(Secret::new(TOKEN)), password: None, rate_limit: RateLimitPolicy::default() };
    let mut l = RateLimiter::new(settings.rate_limit);
    let s = remote();
    let creds = |t: Option<&str>| ClientCredentials { token: t.map(str::to_string), password: None };
    // No credentials: nothing is recorded.
    assert!(matches!(authorize_shared_secret(&settings, &creds(None), &mut l, &s, t0), SharedAuth::NoCredentials(_)));
    assert!(l.is_empty());
    for i in 0..10 {
        let r = authorize_shared_secret(&settings, &creds(Some("nope")), &mut l, &s, t0 + ms(i));
        assert!(matches!(r, SharedAuth::Failed(ref f) if f.delay.is_none() && f.retry_after_ms.is_none()), "{r:?}");
    }
    match authorize_shared_secret(&settings, &creds(Some(TOKEN)), &mut l, &s, t0 + ms(10)) {
        SharedAuth::Failed(f) => assert_eq!(f.retry_after_ms, Some(299_999)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(authorize_shared_secret(&settings, &creds(Some(TOKEN)), &mut l, &s, t0 + ms(300_009)), SharedAuth::Ok(_)));
    assert!(l.is_empty(), "success resets the entry");
}

/// The entry cap holds even when every entry is locked (issue 11): an attacker who locks out
/// more subjects than the cap cannot grow the map.
#[test]
fn the_entry_cap_holds_when_every_entry_is_locked() {
    use clawgate_core::auth::MAX_LIMITER_ENTRIES;
    let policy = RateLimitPolicy { max_attempts: 1, window: ms(60_000), lockout: ms(600_000), exempt_loopback: true };
    let mut l = RateLimiter::new(policy);
    let t = t0();
    for i in 0..(MAX_LIMITER_ENTRIES + 500) as u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        let s = LimiterSubject::Ip(ip);
        l.record_failure(t, SHARED_SECRET_SCOPE, &s);
        assert!(matches!(l.check(t, SHARED_SECRET_SCOPE, &s), LimitCheck::Locked { .. }), "locked after one failure");
        assert!(l.len() <= MAX_LIMITER_ENTRIES, "{} entries after {i} subjects", l.len());
    }
}

/// Every loopback source is one subject for the login delay (issue 11): 127/8 holds millions of
/// addresses, and changing the source must not reset the delay.
#[test]
fn the_loopback_delay_does_not_restart_from_another_loopback_source() {
    let gw = Gw::new();
    let mut now = gw.t0;
    for (i, want) in [250u64, 500, 1000, 2000].into_iter().enumerate() {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8));
        let (_, at, _) = wrong_token(&gw, ip, &RequestFacts::default(), now);
        assert_eq!(at - now, ms(want), "attempt {i} from {ip}");
        now = at;
    }
    // IPv6 loopback (and the IPv4-mapped form) too.
    let (_, at, _) = wrong_token(&gw, "::1".parse().unwrap(), &RequestFacts::default(), now);
    assert_eq!(at - now, ms(4000));
}
