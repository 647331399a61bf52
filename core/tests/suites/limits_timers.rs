//! Limits and timers of protocol.md §1.1 / §9 on virtual time: handshake timeout, keepalive
//! pings, missed-pong termination, frames queued behind a held connect, close grace and the
//! message-size limits.

use crate::common;

use clawgate_core::auth::ingress::RequestFacts;
use clawgate_core::connection::Phase;
use common::*;
use serde_json::json;

#[test]
fn handshake_timeout_closes_1000_at_exactly_15s() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    assert_eq!(c.sock.conn.poll_timeout(), Some(gw.t0 + secs(15)));
    // Some harmless waiting: nothing happens before the deadline.
    assert!(c.advance_to(gw.t0 + ms(14_999)).is_empty());
    assert_eq!(c.phase(), Phase::AwaitingConnect);
    let outs = c.advance_to(gw.t0 + secs(15));
    assert_eq!(outs, vec![Out::Close(1000, String::new())]);
    assert_eq!(c.first_time(|o| matches!(o, Out::Close(..))), Some(gw.t0 + secs(15)));
    // A connect arriving after the timeout is ignored.
    assert!(c.text(&cli_connect("late")).is_empty());
    // Close grace: the TCP connection is dropped 1 s later.
    assert!(c.advance_to(gw.t0 + ms(15_999)).is_empty());
    assert_eq!(c.advance_to(gw.t0 + secs(16)), vec![Out::Terminate]);
    assert_eq!(c.sock.conn.poll_timeout(), None);
    // The pre-auth slot is freed when the socket goes away.
    drop(c);
    assert_eq!(gw.hub.preauth_count(loopback()), 0);
}

#[test]
fn handshake_timeout_counts_from_socket_open() {
    let gw = Gw::new();
    let open = gw.t0 + ms(7_321);
    let mut c = gw.open(open);
    let outs = c.advance_to(open + secs(20));
    assert_eq!(outs.close(), Some((1000, String::new())));
    assert_eq!(c.first_time(|o| matches!(o, Out::Close(..))), Some(open + secs(15)));
}

#[test]
fn connect_just_before_the_deadline_cancels_the_timeout() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    c.advance_to(gw.t0 + ms(14_999));
    c.connect_ok(cli_params(TOKEN, &["operator.read"]));
    let outs = c.advance_to(gw.t0 + secs(20));
    assert_eq!(outs.close(), None, "{outs:?}");
    assert_eq!(c.phase(), Phase::Open);
}

#[test]
fn pre_auth_pongs_and_events_do_not_extend_the_handshake_deadline() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    // (A wrong-token connect held back by the loopback delay does not extend the deadline
    // either: see `held_failure_does_not_outlive_the_handshake_timeout`.)
    c.advance_to(gw.t0 + secs(10));
    assert!(c.pong().is_empty());
    gw.hub.broadcast("heartbeat", Some(&serde_json::json!({})), true);
    assert!(c.pump().is_empty());
    assert_eq!(c.sock.conn.poll_timeout(), Some(gw.t0 + secs(15)));
    assert_eq!(c.advance_to(gw.t0 + secs(15)), vec![Out::Close(1000, String::new())]);
}

/// Open a cli socket authenticated at `auth_at`.
fn authed(gw: &Gw, auth_at: std::time::Instant) -> Conn {
    let mut c = gw.open(auth_at - ms(3));
    c.advance_to(auth_at);
    c.connect_ok(cli_params(TOKEN, &["operator.read"]));
    c
}

#[test]
fn no_pings_before_auth() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let outs = c.advance_to(gw.t0 + ms(14_999));
    assert_eq!(outs.pings(), 0);
}

#[test]
fn pings_every_25s_after_auth_and_a_ponging_client_lives_forever() {
    let gw = Gw::new();
    let auth = gw.t0 + ms(3_456);
    let mut c = authed(&gw, auth);
    assert_eq!(c.sock.conn.poll_timeout(), Some(auth + secs(25)));
    assert_eq!(c.advance_to(auth + ms(24_999)).pings(), 0);
    for k in 1..=20u64 {
        let at = auth + secs(25 * k);
        let outs = c.advance_to(at);
        assert_eq!(outs.pings(), 1, "ping #{k} at auth+{}s: {outs:?}", 25 * k);
        assert_eq!(c.first_time(|o| matches!(o, Out::Ping)).unwrap() + secs(25 * (k - 1)), at);
        assert_eq!(c.log.iter().filter(|(t, o)| *t == at && matches!(o, Out::Ping)).count(), 1);
        // Answer a little later, well within the pong window.
        c.advance_to(at + ms(2));
        assert!(c.pong().is_empty());
    }
    let outs = c.advance_to(auth + secs(25 * 20 + 24));
    assert!(!outs.terminated());
    assert!(!c.log.iter().any(|(_, o)| matches!(o, Out::Terminate | Out::Close(..))));
    assert_eq!(c.phase(), Phase::Open);
}

#[test]
fn client_that_never_pongs_is_terminated_75s_after_auth() {
    let gw = Gw::new();
    let auth = gw.t0 + ms(10);
    let mut c = authed(&gw, auth);
    let outs = c.advance_to(auth + secs(25));
    assert_eq!(outs.pings(), 1);
    // No further pings while the first one is unanswered.
    let outs = c.advance_to(auth + ms(74_999));
    assert_eq!(outs.pings(), 0, "{outs:?}");
    assert!(!outs.terminated());
    assert_eq!(c.phase(), Phase::Open);
    let outs = c.advance_to(auth + secs(75));
    // Terminated without a close frame (the peer sees 1006).
    assert!(outs.terminated(), "{outs:?}");
    assert_eq!(outs.close(), None);
    assert_eq!(c.first_time(|o| matches!(o, Out::Terminate)), Some(auth + secs(75)));
    assert_eq!(c.phase(), Phase::Closed);
    assert_eq!(c.sock.conn.poll_timeout(), None);
    // The hub forgot the socket.
    assert_eq!(gw.hub.connection_counts(), (0, 0));
    // Nothing is emitted afterwards, whatever comes in.
    assert!(c.request("x", "health", None).is_empty());
    assert!(c.advance_to(auth + secs(300)).is_empty());
}

#[test]
fn a_late_pong_saves_the_socket() {
    let gw = Gw::new();
    let auth = gw.t0 + ms(5);
    let mut c = authed(&gw, auth);
    assert_eq!(c.advance_to(auth + secs(25)).pings(), 1);
    // The check at 50 s finds no pong (no ping is sent) ...
    assert_eq!(c.advance_to(auth + secs(50)).pings(), 0);
    // ... but a pong arrives before the next check, which then pings again.
    c.advance_to(auth + secs(60));
    c.pong();
    let outs = c.advance_to(auth + secs(75));
    assert_eq!(outs.pings(), 1);
    assert!(!outs.terminated());
    // The same rule applies to the new ping.
    let outs = c.advance_to(auth + secs(125));
    assert!(outs.terminated());
    assert_eq!(c.first_time(|o| matches!(o, Out::Terminate)), Some(auth + secs(125)));
}

/// A loopback socket whose wrong-token connect is being held back.
fn held_connect(gw: &Gw) -> Conn {
    let mut c = gw.open(gw.t0);
    let outs = c.text(&connect_frame("slow", cli_params("wrong-token", &["operator.read"])));
    assert!(outs.is_empty(), "{outs:?}");
    assert_eq!(c.phase(), Phase::ConnectPending);
    assert_eq!(c.sock.conn.poll_timeout(), Some(gw.t0 + ms(250)));
    c
}

#[test]
fn sixteen_frames_behind_a_held_connect_close_1008() {
    let gw = Gw::new();
    let mut c = held_connect(&gw);
    for i in 0..15 {
        let outs = if i % 2 == 0 {
            c.request(&format!("p{i}"), "health", None)
        } else {
            c.binary(b"{\"type\":\"req\",\"id\":\"b\",\"method\":\"health\"}")
        };
        assert!(outs.is_empty(), "frame {i}: {outs:?}");
    }
    // The 16th queued frame (17th overall) overflows.
    let outs = c.request("p15", "health", None);
    assert_eq!(outs, vec![Out::Close(1008, "too many pending handshake frames".into())]);
    // The held connect failure is never sent, and the queued frames are never answered.
    let rest = c.advance_to(gw.t0 + secs(10));
    assert_eq!(rest, vec![Out::Terminate]);
    assert!(c.log.iter().all(|(_, o)| !matches!(o, Out::Frame(f) if f["type"] == "res")));
    assert_eq!(c.first_time(|o| matches!(o, Out::Terminate)), Some(gw.t0 + secs(1)));
}

#[test]
fn fifteen_frames_behind_a_held_connect_are_tolerated() {
    let gw = Gw::new();
    let mut c = held_connect(&gw);
    for i in 0..15 {
        assert!(c.request(&format!("p{i}"), "health", None).is_empty());
    }
    assert!(c.advance_to(gw.t0 + ms(249)).is_empty());
    let outs = c.advance_to(gw.t0 + ms(250));
    let res = outs.responses();
    assert_eq!(res.len(), 1, "only the connect is answered: {res:#?}");
    assert_err(&res[0], "INVALID_REQUEST", TOKEN_MISMATCH_LOCAL);
    assert_eq!(res[0]["id"], "slow");
    assert_eq!(outs.close(), Some((1008, TOKEN_MISMATCH_LOCAL.into())));
}

#[test]
fn held_failure_does_not_outlive_the_handshake_timeout() {
    // §1.1: no *successful* connect within 15 s of the socket opening → close 1000 "".
    // Push the loopback delay to its 5 s cap, then send a wrong token at 12 s.
    let gw = Gw::new();
    let mut now = gw.t0;
    for _ in 0..6 {
        let mut c = gw.open(now);
        c.text(&connect_frame("w", cli_params("wrong", &[])));
        let until = c.sock.conn.poll_timeout().unwrap();
        c.advance_to(until);
        now = until;
    }
    let open = now;
    let mut c = gw.open(open);
    c.advance_to(open + secs(12));
    assert!(c.text(&connect_frame("late", cli_params("wrong", &[]))).is_empty());
    assert_eq!(c.phase(), Phase::ConnectPending);
    assert!(c.advance_to(open + ms(14_999)).is_empty());
    let outs = c.advance_to(open + secs(15));
    assert_eq!(outs, vec![Out::Close(1000, String::new())]);
    // The held response is never sent.
    let outs = c.advance_to(open + secs(30));
    assert_eq!(outs, vec![Out::Terminate]);
    assert!(c.log.iter().all(|(_, o)| !matches!(o, Out::Frame(f) if f["type"] == "res")));
}

#[test]
fn close_grace_terminates_after_1s_unless_the_peer_closes() {
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    c.advance_to(gw.t0 + ms(2_000));
    let outs = c.text("not json");
    assert_eq!(outs, vec![Out::Close(1000, String::new())]);
    assert_eq!(c.sock.conn.poll_timeout(), Some(gw.t0 + ms(3_000)));
    assert!(c.advance_to(gw.t0 + ms(2_999)).is_empty());
    assert_eq!(c.advance_to(gw.t0 + ms(3_000)), vec![Out::Terminate]);

    // The peer finishing the closing handshake in time: no terminate.
    let mut c = gw.open(gw.t0);
    c.text("not json");
    c.advance_to(gw.t0 + ms(500));
    assert!(c.peer_close().is_empty());
    assert_eq!(c.phase(), Phase::Closed);
    assert_eq!(c.sock.conn.poll_timeout(), None);
    assert!(c.advance_to(gw.t0 + secs(5)).is_empty());
}

#[test]
fn message_too_large_closes_1009_before_and_after_auth() {
    let gw = Gw::new();
    // Pre-auth (the codec enforces 64 KiB).
    let mut c = gw.open(gw.t0);
    assert_eq!(c.too_large(), vec![Out::Close(1009, String::new())]);
    assert_eq!(c.advance_to(gw.t0 + secs(1)), vec![Out::Terminate]);
    // Post-auth (25 MiB).
    let mut c = authed(&gw, gw.t0 + secs(1));
    c.advance_to(gw.t0 + secs(2));
    assert_eq!(c.too_large(), vec![Out::Close(1009, String::new())]);
    // No keepalive once closing; terminate after the grace.
    let outs = c.advance_to(gw.t0 + secs(60));
    assert_eq!(outs, vec![Out::Terminate]);
    assert_eq!(c.first_time(|o| matches!(o, Out::Terminate)), Some(gw.t0 + secs(3)));
}

#[test]
fn a_64k_connect_is_handled_like_any_other() {
    // The size limit is enforced by the codec; the core accepts whatever it is handed.
    let gw = Gw::new();
    let mut c = gw.open(gw.t0);
    let mut p = cli_params(TOKEN, &["operator.read"]);
    let base = connect_frame("c1", p.clone()).len();
    p["client"]["displayName"] = json!("x".repeat(MAX_PREAUTH - base - r#","displayName":"""#.len()));
    let frame = connect_frame("c1", p);
    assert_eq!(frame.len(), MAX_PREAUTH);
    let outs = c.text(&frame);
    assert_eq!(outs.response("c1")["ok"], true);
}

#[test]
fn at_most_32_unauthenticated_sockets_per_ip() {
    // Checklist 69: the 33rd concurrent pre-auth socket from one IP is refused with 503.
    let gw = Gw::new();
    let mut socks: Vec<Conn> = (0..32).map(|_| gw.open(gw.t0)).collect();
    assert_eq!(gw.hub.preauth_count(loopback()), 32);
    let r = gw.hub.admit_upgrade(loopback(), &Default::default()).unwrap_err();
    assert_eq!((r.status, r.body.as_str()), (503, "Too many unauthenticated sockets"));
    // Another IP is not affected.
    assert!(gw.hub.admit_upgrade(remote_ip(), &Default::default()).is_ok());
    // Authenticating one socket frees its slot ...
    socks[0].connect_ok(cli_params(TOKEN, &[]));
    assert_eq!(gw.hub.preauth_count(loopback()), 31);
    let extra = gw.open(gw.t0);
    assert!(gw.hub.admit_upgrade(loopback(), &Default::default()).is_err());
    // ... and so does a socket that goes away (here: timed out and dropped).
    drop(extra);
    socks[1].advance_to(gw.t0 + secs(16));
    socks.remove(1);
    assert_eq!(gw.hub.preauth_count(loopback()), 30);
    assert!(gw.hub.admit_upgrade(loopback(), &Default::default()).is_ok());
}

#[test]
fn unattributable_proxy_headers_are_refused_with_403() {
    // Checklist 68: loopback + X-Forwarded-For and no trusted proxies.
    let gw = Gw::new();
    let facts = RequestFacts::from_headers([("X-Forwarded-For", "203.0.113.7".as_bytes())]);
    let r = gw.hub.admit_upgrade(loopback(), &facts).unwrap_err();
    assert_eq!(r.status, 403);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["error"]["type"], "proxy_attribution_required");
    assert_eq!(gw.hub.preauth_count(loopback()), 0);
}

#[test]
fn a_late_timer_neither_shortens_nor_extends_the_pong_window() {
    let gw = Gw::new();
    let auth = gw.t0 + ms(10);
    let mut c = authed(&gw, auth);
    let outs = c.advance_to(auth + secs(25));
    assert_eq!(outs.pings(), 1);
    // The shell oversleeps: the next wake-up comes at 60 s, well past the 50 s check. The ping
    // went out at 25 s, so the pong window (until 75 s) is still open.
    let t = auth + secs(60);
    c.now = t;
    c.sock.conn.handle_timeout(t, c.unix());
    let outs = c.drain();
    assert!(!outs.terminated(), "{outs:?}");
    assert_eq!(outs.pings(), 0);
    assert_eq!(c.sock.conn.poll_timeout(), Some(auth + secs(75)));
    // Oversleeping past the window ends the socket at the first wake-up after it.
    let t = auth + secs(90);
    c.now = t;
    c.sock.conn.handle_timeout(t, c.unix());
    assert!(c.drain().terminated());
    assert_eq!(c.phase(), Phase::Closed);
}
