//! Events on virtual time (protocol.md §8, §6.4, §13, checklist 60–63, 66): per-connection
//! `seq`, the hub's `tick`/`health` timers, presence broadcasts and their scope gating, slow
//! consumers, and graceful shutdown.

use crate::common;

use std::sync::Arc;

use clawgate_core::auth::scopes::{EventGate, PAIRING};
use clawgate_core::connection::Phase;
use clawgate_core::gateway::Broadcast;
use common::*;
use serde_json::{Value, json};

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().expect("seq")).collect()
}

#[test]
fn seq_starts_at_1_and_ticks_every_30s_from_the_hub() {
    let gw = Gw::new();
    // Connect at 17 s: the tick phase belongs to the hub (started at t0), not to the socket.
    let (mut c, hello) = gw.open_cli(gw.t0 + secs(17), &["operator.read"]);
    let first = c
        .log
        .iter()
        .filter_map(|(_, o)| if let Out::Frame(f) = o { Some(f.clone()) } else { None })
        .filter(|f| f["type"] == "event" && f["event"] != "connect.challenge")
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["event"], "health");
    assert_eq!(first[0]["seq"], 1, "the post-connect health event is seq 1");
    assert_eq!(first[0]["stateVersion"], hello["snapshot"]["stateVersion"]);

    let outs = c.advance_to(gw.t0 + ms(29_999));
    assert!(outs.events().is_empty(), "{outs:?}");
    let outs = c.advance_to(gw.t0 + secs(30));
    let ticks = outs.events_named("tick");
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0], json!({"type": "event", "event": "tick", "payload": {"ts": UNIX0 + 30_000}, "seq": 2}));

    // Ticks at 30, 60, 90, 120 s; health refreshes at 60 and 120 s (health first).
    c.auto_pong = true;
    let outs = c.advance_to(gw.t0 + secs(125));
    let events = outs.events();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["health", "tick", "tick", "health", "tick"]);
    assert_eq!(seqs(&events), [3, 4, 5, 6, 7], "consecutive per-connection seq");
    let tick_times: Vec<_> =
        c.log.iter().filter(|(_, o)| matches!(o, Out::Frame(f) if f["event"] == "tick")).map(|(t, _)| *t - gw.t0).collect();
    assert_eq!(tick_times, [secs(30), secs(60), secs(90), secs(120)]);
    for t in events.iter().filter(|e| e["event"] == "tick") {
        assert!(t.get("stateVersion").is_none(), "tick carries only seq: {t}");
        assert!(t.get("recipientProfileId").is_none());
    }
}

#[test]
fn health_every_60s_with_increasing_state_version() {
    let gw = Gw::new();
    let (mut c, hello) = gw.open_cli(gw.t0 + secs(1), &["operator.read"]);
    c.auto_pong = true;
    let base = hello["snapshot"]["stateVersion"]["health"].as_u64().unwrap();
    let mut last_seq = 1;
    for k in 1..=4u64 {
        let at = gw.t0 + secs(60 * k);
        assert!(c.advance_to(at - ms(1)).events_named("health").is_empty());
        let outs = c.advance_to(at);
        let h = outs.events_named("health");
        assert_eq!(h.len(), 1, "health at {k} min: {outs:?}");
        assert_eq!(h[0]["stateVersion"]["health"], base + k);
        assert_eq!(h[0]["payload"]["ok"], true);
        assert_eq!(h[0]["payload"]["ts"], UNIX0 + 60_000 * k);
        assert!(h[0]["seq"].as_u64().unwrap() > last_seq);
        last_seq = h[0]["seq"].as_u64().unwrap();
    }
    assert_eq!(gw.hub.state_version().health, base + 4);
}

fn test_peer(gw: &Gw, at: std::time::Instant) -> (Conn, Value) {
    let mut p = gw.open(at);
    let mut params = client_params("test", "test", Some(TOKEN), &["operator.read"]);
    params["client"]["displayName"] = json!("watch-peer");
    params["client"]["instanceId"] = json!("watch-peer-instance");
    let hello = p.connect_ok(params);
    (p, hello)
}

#[test]
fn presence_broadcast_on_connect_and_disconnect_of_tracked_clients() {
    let gw = Gw::new();
    let (mut watch, hello) = gw.open_cli(gw.t0 + ms(6), &["operator.admin", "operator.read"]);
    watch.auto_pong = true;
    let pv0 = hello["snapshot"]["stateVersion"]["presence"].as_u64().unwrap();
    watch.advance_to(gw.t0 + secs(8));

    // A cli client is not presence-tracked: no broadcast.
    let (_cli, _) = gw.open_cli(gw.t0 + secs(8), &["operator.read"]);
    assert!(watch.pump().is_empty());

    // A `mode:"test"` client is.
    let (mut peer, peer_hello) = test_peer(&gw, gw.t0 + secs(8));
    assert_eq!(peer_hello["auth"]["scopes"], json!([]));
    let outs = watch.pump();
    let p = outs.events_named("presence");
    assert_eq!(p.len(), 1, "{outs:?}");
    assert_eq!(p[0]["stateVersion"]["presence"], pv0 + 1);
    assert_eq!(p[0]["seq"], 2);
    let rows = p[0]["payload"]["presence"].as_array().unwrap();
    assert_eq!(rows[0]["reason"], "self");
    let row = rows.iter().find(|r| r["clientId"] == "test").expect("peer row");
    assert_eq!(row["reason"], "connect");
    assert_eq!(row["mode"], "test");
    assert_eq!(row["instanceId"], "watch-peer-instance");
    assert_eq!(row["ts"], UNIX0 + 8_000);
    // The scope-less peer does not get presence (not even its own), but does get health.
    assert!(peer.pump().events_named("presence").is_empty());
    assert_eq!(peer_hello["snapshot"]["presence"], json!([]));

    // Disconnect at 14 s: another presence broadcast, the row now says "disconnect".
    watch.advance_to(gw.t0 + secs(14));
    peer.advance_to(gw.t0 + secs(14));
    peer.peer_close();
    let outs = watch.pump();
    let p = outs.events_named("presence");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0]["stateVersion"]["presence"], pv0 + 2);
    assert_eq!(p[0]["seq"], 3);
    let row = p[0]["payload"]["presence"].as_array().unwrap().iter().find(|r| r["clientId"] == "test").cloned().unwrap();
    assert_eq!(row["reason"], "disconnect");
    assert_eq!(row["ts"], UNIX0 + 14_000);
    // Dropping the (already closed) peer does not broadcast again.
    drop(peer);
    assert!(watch.pump().is_empty());

    // Disconnected rows expire after the 5-minute presence TTL.
    let sp = watch.call("sp", "system-presence", None);
    assert!(sp["payload"].as_array().unwrap().iter().any(|r| r["clientId"] == "test"));
    let mut both = [&mut watch];
    advance(&mut both, gw.t0 + secs(14 + 300));
    let sp = watch.call("sp2", "system-presence", None);
    assert!(!sp["payload"].as_array().unwrap().iter().any(|r| r["clientId"] == "test"), "{sp}");
}

#[test]
fn presence_is_gated_by_read_scope_but_health_is_not() {
    let gw = Gw::new();
    // A device-less probe client: scopes [].
    let mut probe = gw.open(gw.t0);
    let mut params = client_params("cli", "probe", Some(TOKEN), &["operator.read"]);
    params["minProtocol"] = json!(3);
    assert_eq!(probe.connect_ok(params)["auth"]["scopes"], json!([]));
    let (mut reader, _) = gw.open_cli(gw.t0, &["operator.read"]);
    // A presence-tracked "ui" app connects and leaves.
    let mut app = gw.open(gw.t0 + secs(1));
    app.connect_ok(client_params("openclaw-macos", "ui", Some(TOKEN), &[]));
    app.peer_close();
    drop(app);
    assert_eq!(reader.pump().events_named("presence").len(), 2);
    assert!(probe.pump().is_empty(), "no presence for scopes:[]");
    // Both get the health refresh and the ticks.
    let out = advance(&mut [&mut probe, &mut reader], gw.t0 + secs(60));
    let _ = out;
    let probe_events: Vec<Value> = probe
        .log
        .iter()
        .filter_map(|(_, o)| if let Out::Frame(f) = o { Some(f.clone()) } else { None })
        .filter(|f| f["type"] == "event")
        .collect();
    let names: Vec<&str> = probe_events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["connect.challenge", "health", "tick", "health", "tick"]);
    assert_eq!(seqs(&probe_events[1..]), [1, 2, 3, 4]);
}

#[test]
fn slow_consumer_skips_droppable_events_but_consumes_their_seq() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    // Exactly at the limit is fine.
    gw.hub.handle_timeout(gw.t0 + secs(30), gw.unix(gw.t0 + secs(30)));
    c.now = gw.t0 + secs(30);
    let outs = c.pump_with(MAX_BUFFERED);
    assert_eq!(seqs(&outs.events_named("tick")), [2]);
    // Above the limit, a drop-if-slow tick is skipped ...
    gw.hub.handle_timeout(gw.t0 + secs(60), gw.unix(gw.t0 + secs(60)));
    c.now = gw.t0 + secs(60);
    let evs = c.sock.sink.take_events();
    assert_eq!(evs.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(), ["health", "tick"]);
    assert!(evs.iter().all(|e| e.drop_if_slow));
    for e in &evs {
        c.sock.conn.handle_event(c.now, e, MAX_BUFFERED + 1);
    }
    assert!(c.drain().is_empty(), "skipped while slow");
    assert_eq!(c.phase(), Phase::Open);
    // ... and the next event shows the gap (seq 3 and 4 were consumed).
    gw.hub.handle_timeout(gw.t0 + secs(90), gw.unix(gw.t0 + secs(90)));
    c.now = gw.t0 + secs(90);
    let outs = c.pump();
    assert_eq!(seqs(&outs.events_named("tick")), [5]);
}

#[test]
fn slow_consumer_closes_on_a_non_droppable_event() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    c.advance_to(gw.t0 + secs(5));
    gw.hub.broadcast("update.available", Some(&json!({"version": "9"})), false);
    let outs = c.pump_with(MAX_BUFFERED + 1);
    assert_eq!(outs, vec![Out::Close(1008, "slow consumer".into())]);
    assert_eq!(c.phase(), Phase::Closing);
    // Nothing more is sent; terminate after the close grace.
    gw.hub.broadcast("update.available", Some(&json!({"version": "10"})), false);
    assert!(c.pump().is_empty());
    assert!(c.request("h", "health", None).is_empty());
    let outs = c.advance_to(gw.t0 + secs(10));
    assert_eq!(outs, vec![Out::Terminate]);
    assert_eq!(c.first_time(|o| matches!(o, Out::Terminate)), Some(gw.t0 + secs(6)));
    // The same event with room in the buffer is delivered.
    let (mut d, _) = gw.open_cli(gw.t0 + secs(10), &["operator.read"]);
    gw.hub.broadcast("update.available", Some(&json!({"version": "11"})), false);
    let outs = d.pump_with(MAX_BUFFERED);
    assert_eq!(outs.events_named("update.available")[0]["payload"]["version"], "11");
}

#[test]
fn events_outside_the_socket_scopes_are_not_delivered_and_take_no_seq() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, &["operator.read"]);
    // The hub does not even deliver it ...
    gw.hub.broadcast("device.pair.requested", Some(&json!({})), false);
    assert!(c.sock.sink.take_events().is_empty());
    // ... and a gated broadcast fed directly is ignored without consuming a seq.
    let b = Broadcast {
        event: "device.pair.requested".into(),
        payload: Some("{}".into()),
        gate: EventGate::AnyOf(&[PAIRING]),
        drop_if_slow: false,
        state_version: None,
    };
    c.sock.conn.handle_event(c.now, &Arc::new(b), usize::MAX);
    assert!(c.drain().is_empty());
    assert_eq!(c.phase(), Phase::Open);
    gw.hub.broadcast("heartbeat", Some(&json!({"ts": 1})), true);
    assert_eq!(seqs(&c.pump().events_named("heartbeat")), [2]);
    // An admin socket gets the pairing event.
    let (mut a, _) = gw.open_cli(gw.t0, &["operator.admin"]);
    gw.hub.broadcast("device.pair.requested", Some(&json!({})), false);
    assert_eq!(a.pump().events_named("device.pair.requested").len(), 1);
}

#[test]
fn events_are_not_delivered_before_hello() {
    let gw = Gw::new();
    let mut pre = gw.open(gw.t0);
    gw.hub.broadcast("heartbeat", Some(&json!({})), true);
    assert!(pre.sock.sink.take_events().is_empty());
    // Even if a shell feeds one, a pre-auth socket ignores it.
    let b = Broadcast {
        event: "tick".into(),
        payload: Some("{}".into()),
        gate: EventGate::Unrestricted,
        drop_if_slow: true,
        state_version: None,
    };
    pre.sock.conn.handle_event(pre.now, &Arc::new(b), 0);
    assert!(pre.drain().is_empty());
}

#[test]
fn shutdown_of_an_open_socket_sends_the_event_then_1012() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0 + ms(15), &["operator.admin"]);
    c.advance_to(gw.t0 + ms(1_168));
    // The hub tells every socket (authenticated or not) ...
    let mut pre = gw.open(gw.t0 + ms(1_168));
    gw.hub.begin_drain();
    gw.hub.shutdown_all("gateway stopping");
    assert_eq!(c.sock.sink.shutdowns(), ["gateway stopping"]);
    assert_eq!(pre.sock.sink.shutdowns(), ["gateway stopping"]);
    // ... and new upgrades are refused.
    let refused = gw.hub.admit_upgrade(loopback(), &Default::default()).unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (503, "Gateway websocket admission closed"));

    let outs = c.shutdown("gateway stopping");
    assert_eq!(outs.len(), 2, "{outs:?}");
    assert_eq!(outs[0], Out::Frame(json!({"type": "event", "event": "shutdown", "payload": {"reason": "gateway stopping"}, "seq": 2})));
    assert_eq!(outs[1], Out::Close(1012, "service restart".into()));
    // Idempotent.
    assert!(c.shutdown("gateway stopping").is_empty());
    assert_eq!(c.advance_to(gw.t0 + ms(2_168)), vec![Out::Terminate]);

    // A pre-auth socket just gets the close.
    assert_eq!(pre.shutdown("gateway stopping"), vec![Out::Close(1012, "service restart".into())]);
}
