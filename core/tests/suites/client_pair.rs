//! `ClientConnection` against a real `ServerConnection`, in memory, on virtual time: the
//! handshake, call/response matching (including accepted-then-final), `Gap` detection and the
//! client's tick timeout (protocol.md §3, §8.1, §9, §10.2).

use crate::common;

use std::time::Instant;

use clawgate_core::connection::client::{ClientConnection, ClientEvent, ClientOptions, ClientOutput};
use clawgate_core::connection::{Phase, Reply};
use common::*;
use serde_json::json;

/// A client wired to a server socket. Server frames go to the client, client frames to the
/// server; pings are answered by the (simulated) WebSocket library of the client.
struct Pair {
    client: ClientConnection,
    server: Conn,
    /// Everything the client reported, with the virtual instant.
    events: Vec<(Instant, ClientEvent)>,
    /// Every text frame the client wrote, in order.
    client_frames: Vec<String>,
    client_close: Option<(u16, String)>,
    /// Simulate a stalled server/network: nothing from the server reaches the client.
    blackhole: bool,
}

impl Pair {
    fn new(gw: &Gw, opts: ClientOptions, at: Instant) -> Pair {
        let client = ClientConnection::new(opts, "00000000-aaaa-4aaa-8aaa-000000000000".into(), at);
        let server = gw.open(at);
        let mut p = Pair { client, server, events: Vec::new(), client_frames: Vec::new(), client_close: None, blackhole: false };
        let opened = p.server.opened.clone();
        p.deliver(opened);
        p
    }

    fn cli(gw: &Gw, at: Instant) -> Pair {
        let mut opts = ClientOptions::cli(&["operator.read"]);
        opts.token = Some(TOKEN.into());
        Pair::new(gw, opts, at)
    }

    /// Deliver server outputs to the client, then flush the client, until both are quiet.
    fn deliver(&mut self, outs: Vec<Out>) {
        let mut pending = outs;
        loop {
            let now = self.server.now;
            for o in std::mem::take(&mut pending) {
                if self.blackhole {
                    continue;
                }
                match o {
                    Out::Frame(f) => self.client.handle_text(now, &f.to_string()),
                    Out::Ping => pending.extend(self.server.pong()),
                    Out::BarrierPing(t) => pending.extend(self.server.pong_with(&t)),
                    Out::Close(..) | Out::Terminate => self.client.handle_closed(),
                    Out::MaxSize(_) | Out::Dispatched { .. } => {}
                }
            }
            while let Some(ev) = self.client.poll_event() {
                self.events.push((now, ev));
            }
            while let Some(o) = self.client.poll_output() {
                match o {
                    ClientOutput::Send(t) => {
                        self.client_frames.push(t.clone());
                        pending.extend(self.server.text(&t));
                    }
                    ClientOutput::Close { code, reason } => {
                        self.client_close = Some((code, reason));
                        pending.extend(self.server.peer_close());
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
        }
    }

    /// Flush what the application queued on the client.
    fn flush(&mut self) {
        self.deliver(Vec::new());
    }

    /// Advance the whole system to `target`, firing server, hub and client deadlines in order.
    fn advance_to(&mut self, target: Instant) {
        loop {
            let hub_due = self.server.hub.poll_timeout().max(self.server.now);
            let server_due = self.server.sock.conn.poll_timeout().map_or(hub_due, |d| d.min(hub_due));
            let client_due = self.client.poll_timeout();
            let next = client_due.map_or(server_due, |c| c.min(server_due));
            if next > target {
                break;
            }
            if server_due <= next {
                let outs = self.server.advance_to(next);
                self.deliver(outs);
            } else {
                self.server.advance_to(next);
            }
            if self.client.poll_timeout().is_some_and(|d| d <= next) {
                self.client.handle_timeout(next);
                self.flush();
            }
        }
        let outs = self.server.advance_to(target);
        self.deliver(outs);
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events).into_iter().map(|(_, e)| e).collect()
    }

    fn responses(&mut self) -> Vec<(String, bool, bool)> {
        self.take_events()
            .into_iter()
            .filter_map(|e| if let ClientEvent::Response { id, frame, interim } = e { Some((id, frame.ok, interim)) } else { None })
            .collect()
    }
}

#[test]
fn client_completes_the_handshake_with_a_real_server() {
    let gw = Gw::new();
    let p = Pair::cli(&gw, gw.t0 + ms(3));
    assert!(p.client.is_open());
    assert_eq!(p.server.phase(), Phase::Open);
    let evs: Vec<&ClientEvent> = p.events.iter().map(|(_, e)| e).collect();
    match evs[0] {
        ClientEvent::Challenge { nonce, ts } => {
            assert_eq!(nonce, "11111111-1111-4111-8111-000000000001");
            assert_eq!(*ts, UNIX0 + 3);
        }
        other => panic!("first event must be the challenge: {other:?}"),
    }
    match evs[1] {
        ClientEvent::Hello(h) => {
            assert_eq!(h["type"], "hello-ok");
            assert_eq!(h["auth"]["scopes"], json!(["operator.read"]));
        }
        other => panic!("{other:?}"),
    }
    // The post-connect health event reaches the app.
    assert!(matches!(evs[2], ClientEvent::Event(e) if e.event == "health" && e.seq == Some(1)));
    // The connect was the client's first frame.
    let first: serde_json::Value = serde_json::from_str(&p.client_frames[0]).unwrap();
    assert_eq!(first["method"], "connect");
    assert_eq!(first["params"]["client"]["id"], "cli");
    assert_eq!(p.client_frames.len(), 1);
}

#[test]
fn calls_queued_before_the_challenge_go_after_the_connect() {
    // A shell writes whatever the client queued as soon as the socket is open; calls made
    // that early must still follow the connect (the first frame must be `connect`, §3).
    let gw = Gw::new();
    let mut opts = ClientOptions::cli(&["operator.read"]);
    opts.token = Some(TOKEN.into());
    let mut client = ClientConnection::new(opts, "p".into(), gw.t0);
    let early = client.call("health", None, false);
    let mut server = gw.open(gw.t0);
    // The shell flushes the client before anything was received ...
    let mut sent = Vec::new();
    while let Some(ClientOutput::Send(t)) = client.poll_output() {
        sent.push(t);
    }
    // ... then delivers the challenge and flushes again.
    for f in server.opened.frames() {
        client.handle_text(gw.t0, &f.to_string());
    }
    while let Some(ClientOutput::Send(t)) = client.poll_output() {
        sent.push(t);
    }
    let methods: Vec<String> =
        sent.iter().map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap()["method"].as_str().unwrap().to_string()).collect();
    assert_eq!(methods, ["connect", "health"]);
    let mut outs = Vec::new();
    for t in &sent {
        outs.extend(server.text(t));
    }
    assert_eq!(outs.response(&early)["ok"], true);
    for f in outs.frames() {
        client.handle_text(gw.t0, &f.to_string());
    }
    let mut got = false;
    while let Some(ev) = client.poll_event() {
        if let ClientEvent::Response { id, frame, .. } = ev {
            assert_eq!(id, early);
            assert!(frame.ok);
            got = true;
        }
    }
    assert!(got);
    assert_eq!(client.pending_calls(), 0);
}

#[test]
fn responses_are_matched_to_calls_even_out_of_order() {
    let gw = Gw::new();
    let mut p = Pair::cli(&gw, gw.t0);
    p.take_events();
    let a = p.client.call("health", None, false);
    let b = p.client.call("config.get", Some(json!({"nope": true})), false);
    let c = p.client.call("config.patch", Some(json!({})), false);
    p.flush();
    let r = p.responses();
    assert_eq!(r, vec![(a, true, false), (b, false, false), (c, false, false)]);
    assert_eq!(p.client.pending_calls(), 0);

    // Held by the server and completed in reverse order.
    p.server.hold_dispatches = true;
    let ids: Vec<String> = (0..3).map(|_| p.client.call("status", None, false)).collect();
    p.flush();
    assert_eq!(p.client.pending_calls(), 3);
    assert!(p.responses().is_empty());
    for i in (0..3).rev() {
        let outs = p.server.complete_held(i);
        p.deliver(outs);
    }
    let got: Vec<String> = p
        .responses()
        .into_iter()
        .map(|(id, ok, _)| {
            assert!(ok);
            id
        })
        .collect();
    assert_eq!(got, vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    assert_eq!(p.client.pending_calls(), 0);
}

#[test]
fn accepted_then_final_replies() {
    let gw = Gw::new();
    let mut p = Pair::cli(&gw, gw.t0);
    p.take_events();
    p.server.hold_dispatches = true;
    let id = p.client.call("status", None, true);
    p.flush();
    let d = p.server.held.remove(0);
    p.server.sock.conn.complete(&d.request_id, Reply::Ok(Some(json!({"runId": "r1", "status": "accepted"}))));
    let outs = p.server.drain();
    p.deliver(outs);
    assert_eq!(p.responses(), vec![(id.clone(), true, true)]);
    assert_eq!(p.client.pending_calls(), 1, "still waiting for the final");
    p.server.sock.conn.complete(&d.request_id, Reply::Ok(Some(json!({"runId": "r1", "status": "ok"}))));
    drop(d);
    let outs = p.server.drain();
    p.deliver(outs);
    assert_eq!(p.responses(), vec![(id, true, false)]);
    assert_eq!(p.client.pending_calls(), 0);
}

#[test]
fn client_reports_a_gap_when_the_server_skips_events() {
    let gw = Gw::new();
    let mut p = Pair::cli(&gw, gw.t0 + ms(1));
    p.take_events();
    // The tick at 30 s is skipped because the socket is backed up: seq 2 is consumed.
    p.server.outbound_buffered = MAX_BUFFERED + 1;
    p.advance_to(gw.t0 + secs(30));
    assert!(p.take_events().is_empty());
    // Back to normal: health (seq 3) and tick (seq 4) at 60 s.
    p.server.outbound_buffered = 0;
    p.advance_to(gw.t0 + secs(60));
    let evs = p.take_events();
    assert_eq!(evs[0], ClientEvent::Gap { expected: 2, received: 3 }, "{evs:#?}");
    let seqs: Vec<u64> = evs.iter().filter_map(|e| if let ClientEvent::Event(f) = e { f.seq } else { None }).collect();
    assert_eq!(seqs, [3, 4]);
    assert_eq!(evs.iter().filter(|e| matches!(e, ClientEvent::Gap { .. })).count(), 1);
}

#[test]
fn ticks_keep_the_client_alive() {
    let gw = Gw::new();
    let mut p = Pair::cli(&gw, gw.t0 + ms(1));
    p.advance_to(gw.t0 + secs(300));
    assert!(p.client.is_open());
    assert_eq!(p.server.phase(), Phase::Open);
    assert!(!p.events.iter().any(|(_, e)| matches!(e, ClientEvent::TimedOut { .. })));
    let ticks = p.events.iter().filter(|(_, e)| matches!(e, ClientEvent::Event(f) if f.event == "tick")).count();
    assert_eq!(ticks, 10);
    assert!(p.client_close.is_none());
}

#[test]
fn client_times_out_after_two_tick_intervals_of_silence() {
    let gw = Gw::new();
    let hello_at = gw.t0 + ms(1);
    let mut p = Pair::cli(&gw, hello_at);
    p.take_events();
    p.blackhole = true;
    p.advance_to(hello_at + ms(59_999));
    assert!(p.client.is_open());
    assert!(p.client_close.is_none());
    p.advance_to(hello_at + secs(60));
    let evs = p.take_events();
    assert_eq!(evs, vec![ClientEvent::TimedOut { reason: "tick timeout".into() }]);
    assert_eq!(p.client_close, Some((4000, "tick timeout".into())));
    assert!(p.client.is_closed());
    assert_eq!(p.client.poll_timeout(), None);
    // The server saw the peer close.
    assert_eq!(p.server.phase(), Phase::Closed);
}

#[test]
fn client_connect_timeout_and_connect_failure() {
    let gw = Gw::new();
    // No challenge ever arrives.
    let mut opts = ClientOptions::cli(&[]);
    opts.token = Some(TOKEN.into());
    let mut client = ClientConnection::new(opts, "x".into(), gw.t0);
    assert_eq!(client.poll_timeout(), Some(gw.t0 + secs(15)));
    client.handle_timeout(gw.t0 + ms(14_999));
    assert!(client.poll_event().is_none());
    client.handle_timeout(gw.t0 + secs(15));
    assert_eq!(client.poll_event(), Some(ClientEvent::TimedOut { reason: "connect timeout".into() }));
    assert_eq!(client.poll_output(), Some(ClientOutput::Close { code: 4000, reason: "connect timeout".into() }));

    // A wrong token: the failure arrives after the loopback delay.
    let mut opts = ClientOptions::cli(&["operator.read"]);
    opts.token = Some("wrong".into());
    let mut p = Pair::new(&gw, opts, gw.t0);
    assert!(!p.client.is_open());
    p.advance_to(gw.t0 + ms(250));
    let failed: Vec<_> =
        p.events.iter().filter_map(|(t, e)| if let ClientEvent::ConnectFailed(r) = e { Some((*t, r.clone())) } else { None }).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, gw.t0 + ms(250));
    let err = failed[0].1.error.clone().unwrap();
    assert_eq!(err.details.unwrap()["code"], "AUTH_TOKEN_MISMATCH");
    assert!(p.client.is_closed());
}
