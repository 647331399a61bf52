//! Agent runs on virtual time: accepted-then-final, events, idempotency, `agent.wait`
//! (spec §10.2, §10.3; protocol §16 items 47–50).

use crate::common;

use clawgate_core::agent::Outcome;
use clawgate_core::methods::{self, Call};
use common::*;
use serde_json::json;

const WRITE: &[&str] = &["operator.write"];

fn agent_params(key: &str) -> Option<serde_json::Value> {
    Some(json!({"message": "hello", "idempotencyKey": key}))
}

#[test]
fn accepted_then_events_then_a_final_with_payload_and_error() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    c.pump();
    let outs = c.request("a1", "agent", agent_params("run-1"));
    let accepted = outs.response("a1");
    assert_eq!(accepted["ok"], true);
    assert_eq!(accepted["payload"]["runId"], "run-1", "runId is the idempotencyKey");
    assert_eq!(accepted["payload"]["status"], "accepted");
    assert_eq!(accepted["payload"]["agentId"], "main");
    assert!(accepted["payload"]["acceptedAt"].is_u64());
    // Right behind the accepted answer: the run-ack barrier's ping.
    let token = match outs.iter().skip_while(|o| !matches!(o, Out::Frame(f) if f["id"] == "a1")).nth(1) {
        Some(Out::BarrierPing(t)) => t.clone(),
        other => panic!("expected the barrier ping after the accepted answer, got {other:?}"),
    };

    // The run already ended (no provider): its events and final wait for the client to show it
    // read the accepted answer; a keepalive pong is not that proof.
    assert!(c.pump().frames().is_empty(), "nothing may follow the accepted answer before its pong");
    assert!(c.pong().frames().is_empty());
    // Events and the final arrive through the hub (events) and the sink (final answer).
    let outs = c.pong_with(&token);
    let agent_events = outs.events_named("agent");
    assert_eq!(agent_events.len(), 2);
    assert_eq!(agent_events[0]["payload"]["data"]["phase"], "model");
    assert_eq!(agent_events[0]["payload"]["seq"], 1);
    assert_eq!(agent_events[1]["payload"]["data"]["phase"], "error");
    assert_eq!(agent_events[1]["payload"]["seq"], 2);
    assert_eq!(agent_events[1]["payload"]["sessionKey"], "agent:main:explicit:run-1");
    let chat = outs.events_named("chat");
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0]["payload"]["state"], "error");
    // Frame seq keeps increasing across the run's events.
    let seqs: Vec<u64> = outs.events().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    let fin = outs.response("a1");
    assert_eq!(fin["ok"], false);
    assert_eq!(fin["payload"]["runId"], "run-1");
    assert_eq!(fin["payload"]["status"], "error");
    assert_eq!(fin["error"]["code"], "UNAVAILABLE");
    assert_eq!(fin["payload"]["summary"], fin["error"]["message"]);
}

#[test]
fn missing_idempotency_key_is_the_reference_error() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    let outs = c.request("a4", "agent", Some(json!({"message": "no key"})));
    assert_err(&outs.response("a4"), "INVALID_REQUEST", "invalid agent params: must have required property 'idempotencyKey'");
}

#[test]
fn duplicate_in_flight_answers_once_and_completed_runs_replay_the_final() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    c.pump();
    c.hold_dispatches = true;
    c.request("a1", "agent", agent_params("dup"));
    let d1 = c.held.remove(0);
    // The shell starts the run but has not finished it yet.
    let run = match methods::dispatch(&gw.hub, &d1, c.now, c.unix()) {
        Call::StartRun { reply, run } => {
            c.sock.conn.complete(&d1.request_id, reply);
            run
        }
        other => panic!("{other:?}"),
    };
    c.hold_dispatches = false;
    let outs = c.request("a2", "agent", agent_params("dup"));
    let dup = outs.response("a2");
    assert_eq!(dup["payload"], json!({"runId": "dup", "status": "in_flight", "agentId": "main"}));

    methods::run_without_io(&gw.hub, &run, c.now, c.unix());
    let outs = c.pump();
    assert_eq!(outs.response("a1")["ok"], false, "the original request gets the final");
    assert!(outs.responses().iter().all(|r| r["id"] != "a2"), "no later final for the duplicate");

    // After completion the same key replays the cached final, once.
    let outs = c.request("a3", "agent", agent_params("dup"));
    let replay = outs.response("a3");
    assert_eq!(replay["ok"], false);
    assert_eq!(replay["payload"]["runId"], "dup");
    assert_eq!(replay["error"]["code"], "UNAVAILABLE");
    assert!(c.pump().responses().is_empty());
}

#[test]
fn replays_expire_after_five_minutes() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    c.auto_pong = true;
    c.request("a1", "agent", agent_params("ttl"));
    c.pump();
    c.advance_by(secs(299));
    assert_eq!(c.request("a2", "agent", agent_params("ttl")).response("a2")["ok"], false, "still cached");
    c.advance_by(secs(2));
    let outs = c.request("a3", "agent", agent_params("ttl"));
    assert_eq!(outs.response("a3")["payload"]["status"], "accepted", "a new run after the TTL");
}

#[test]
fn agent_wait_answers_when_the_run_ends_or_when_it_times_out() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    let (mut w, _) = gw.open_cli(gw.t0, WRITE);
    c.hold_dispatches = true;
    c.request("a1", "agent", agent_params("waited"));
    let d1 = c.held.remove(0);
    let Call::StartRun { run, .. } = methods::dispatch(&gw.hub, &d1, c.now, c.unix()) else { panic!("not started") };

    // A waiter on another socket, and one with a short timeout.
    w.hold_dispatches = true;
    w.request("w1", "agent.wait", Some(json!({"runId": "waited", "timeoutMs": 60_000})));
    w.request("w2", "agent.wait", Some(json!({"runId": "waited", "timeoutMs": 1_000})));
    for d in std::mem::take(&mut w.held) {
        assert!(matches!(methods::dispatch(&gw.hub, &d, w.now, w.unix()), Call::Later));
    }
    let outs = w.advance_by(secs(1));
    let timed_out = outs.response("w2");
    assert_eq!(timed_out["payload"], json!({"runId": "waited", "status": "timeout"}));

    methods::run_without_io(&gw.hub, &run, w.now, w.unix());
    let outs = w.pump();
    let done = outs.response("w1");
    assert_eq!(done["payload"]["status"], "error");
    assert_eq!(done["payload"]["runId"], "waited");
    assert!(done["payload"]["endedAt"].is_u64());
    assert!(done["payload"]["error"].is_string());

    // Finished runs answer at once; unknown runs time out at once.
    w.hold_dispatches = false;
    let outs = w.request("w3", "agent.wait", Some(json!({"runId": "waited"})));
    assert_eq!(outs.response("w3")["payload"]["status"], "error");
    let outs = w.request("w4", "agent.wait", Some(json!({"runId": "never-started"})));
    assert_eq!(outs.response("w4")["payload"]["status"], "timeout");
}

#[test]
fn a_successful_run_ends_ok_with_the_text() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    c.pump();
    c.hold_dispatches = true;
    c.request("a1", "agent", agent_params("good"));
    let d1 = c.held.remove(0);
    let Call::StartRun { reply, run } = methods::dispatch(&gw.hub, &d1, c.now, c.unix()) else { panic!() };
    c.sock.conn.complete(&d1.request_id, reply);
    assert_eq!(c.drain().response("a1")["payload"]["status"], "accepted");
    gw.hub.begin_run(&run.run_id, Some("fake"), Some("m1"), c.unix());
    gw.hub.run_delta(&run.run_id, "Hel", c.unix());
    gw.hub.run_delta(&run.run_id, "lo", c.unix());
    gw.hub.finish_run(&run.run_id, Outcome::Ok { text: "Hello".into(), meta: serde_json::json!({}) }, c.now, c.unix());
    let outs = c.pump();
    let fin = outs.response("a1");
    assert_eq!(fin["ok"], true);
    assert_eq!(fin["payload"]["status"], "ok");
    let deltas: Vec<String> = outs
        .events_named("chat")
        .iter()
        .filter(|e| e["payload"]["state"] == "delta")
        .map(|e| e["payload"]["deltaText"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, ["Hel", "lo"]);
    let last_chat = outs.events_named("chat").last().cloned().unwrap();
    assert_eq!(last_chat["payload"]["state"], "final");
}

#[test]
fn read_only_operators_see_run_events_but_cannot_start_runs() {
    let gw = Gw::new();
    let (mut reader, _) = gw.open_cli(gw.t0, &["operator.read"]);
    reader.pump();
    let outs = reader.request("a", "agent", agent_params("nope"));
    assert_err(&outs.response("a"), "FORBIDDEN", "missing scope: operator.write");
    let (mut writer, _) = gw.open_cli(gw.t0, WRITE);
    writer.request("a1", "agent", agent_params("seen"));
    let outs = reader.pump();
    assert_eq!(outs.events_named("agent").len(), 2);
    assert!(outs.responses().is_empty(), "the final goes to the caller only");
}

/// `chat.send` runs have no socket owner; `chat.abort` (and `/stop`) reach the executor through
/// its stop handle, also when the abort came before the executor attached.
#[test]
fn chat_send_runs_are_aborted_through_their_control() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use clawgate_core::agent::{self, ChatSend, RunControl};

    struct Count(AtomicUsize);
    impl RunControl for Count {
        fn abort(&self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let gw = Gw::new();
    let agents = gw.hub.settings().api.agents.clone();
    #[allow(clippy::result_large_err)]
    let send = |key: &str, message: &str, id: &str| {
        agent::parse_chat_send_params(Some(&json!({"sessionKey": key, "message": message, "idempotencyKey": id})), &agents)
    };
    let Ok(ChatSend::Run(spec)) = send("main", "hi", "r1") else { panic!("not a run") };
    assert_eq!((spec.session_key.as_str(), spec.agent_id.as_str()), ("agent:main:main", "main"));
    let run = gw.hub.start_unowned_run(spec.clone(), gw.t0, 1).expect("started");
    assert_eq!(gw.hub.start_unowned_run(spec, gw.t0, 1), Err(None), "in flight");
    assert_eq!(gw.hub.abort_runs("main", None), ["r1"], "keys match in canonical form");
    let control = Arc::new(Count(AtomicUsize::new(0)));
    gw.hub.attach_run_control("r1", control.clone());
    assert_eq!(control.0.load(SeqCst), 1, "an abort asked before the executor attached stops it at once");
    gw.hub.finish_run("r1", Outcome::Aborted { text: "par".into() }, gw.t0, 2);
    assert!(gw.hub.abort_runs("agent:main:main", None).is_empty());
    assert_eq!(gw.hub.start_unowned_run(run, gw.t0, 3), Err(Some("aborted")));

    // Over the socket: chat.abort with and without a runId, and `/stop`.
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    let Ok(ChatSend::Run(spec)) = send("agent:main:t2", "hi", "r2") else { panic!("not a run") };
    gw.hub.start_unowned_run(spec, gw.t0, 4).expect("started");
    let control = Arc::new(Count(AtomicUsize::new(0)));
    gw.hub.attach_run_control("r2", control.clone());
    let outs = c.request("x1", "chat.abort", Some(json!({"sessionKey": "agent:main:other", "runId": "r2"})));
    assert_err(&outs.response("x1"), "INVALID_REQUEST", "runId does not match sessionKey");
    let outs = c.request("x2", "chat.send", Some(json!({"sessionKey": "agent:main:t2", "message": "/stop", "idempotencyKey": "s"})));
    assert_eq!(outs.response("x2")["payload"], json!({"ok": true, "aborted": true, "runIds": ["r2"]}));
    assert_eq!(control.0.load(SeqCst), 1);
    let outs = c.request("x3", "chat.abort", Some(json!({"sessionKey": "agent:main:t2", "runId": "nope"})));
    assert_eq!(outs.response("x3")["payload"], json!({"ok": true, "aborted": false, "runIds": []}));
    let outs = c.request("x4", "chat.send", Some(json!({"sessionKey": "main", "message": " ", "idempotencyKey": "e"})));
    assert_err(&outs.response("x4"), "INVALID_REQUEST", "message or attachment required");
    let outs = c.request("x5", "chat.send", Some(json!({"sessionKey": "agent:ghost:x", "message": "m", "idempotencyKey": "g"})));
    assert_err(&outs.response("x5"), "INVALID_REQUEST", "unknown agent id: ghost");
    assert!(matches!(send("main", "m", "k"), Ok(ChatSend::Run(_))));
    let bad = agent::parse_chat_send_params(Some(&json!({"sessionKey": "main", "message": "m"})), &agents).unwrap_err();
    assert_eq!(bad.message, "invalid chat.send params: must have required property 'idempotencyKey'");
}

fn barrier_token(outs: &[Out], id: &str) -> Vec<u8> {
    match outs.iter().skip_while(|o| !matches!(o, Out::Frame(f) if f["id"] == id)).nth(1) {
        Some(Out::BarrierPing(t)) => t.clone(),
        other => panic!("expected the barrier ping right after {id}'s answer, got {other:?}"),
    }
}

fn chat_send(key: &str) -> Option<serde_json::Value> {
    Some(json!({"sessionKey": "main", "message": "hello", "idempotencyKey": key}))
}

/// Issue 11 item 9: a run that ends at once (here: no provider) must not reach the client in
/// the same read as its `chat.send` answer. A client that never answers the barrier's ping gets
/// the run's frames when `run_ack_barrier_timeout` has passed, not before.
#[test]
fn a_fast_run_waits_for_the_barrier_pong_or_its_timeout() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    c.pump();
    let outs = c.request("s1", "chat.send", chat_send("fast-1"));
    assert_eq!(outs.response("s1")["payload"]["status"], "started");
    barrier_token(&outs, "s1");
    // Other requests' answers wait too: nothing may overtake what is held.
    let outs = c.request("h1", "health", None);
    assert!(outs.frames().is_empty(), "{outs:?}");
    assert!(c.pump().frames().is_empty());
    let timeout = clawgate_core::limits::Limits::default().run_ack_barrier_timeout;
    assert!(c.advance_by(timeout - ms(1)).frames().is_empty());
    let outs = c.advance_by(ms(1));
    let frames = outs.frames();
    assert_eq!(frames[0]["id"], "h1", "held frames keep their order");
    let chat = outs.events_named("chat");
    assert_eq!(chat.last().unwrap()["payload"]["state"], "error", "{frames:?}");
    // Released: the next frames go straight out.
    assert_eq!(c.request("h2", "health", None).response("h2")["ok"], true);
}

/// A second run accepted while the first one's barrier stands: its answer is held in order and
/// raises its own barrier when it goes out; its events wait for that barrier's pong.
#[test]
fn each_accepted_run_gets_its_own_barrier() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    c.pump();
    let t1 = barrier_token(&c.request("s1", "chat.send", chat_send("run-a")), "s1");
    assert!(c.pump().frames().is_empty());
    assert!(c.request("s2", "chat.send", chat_send("run-b")).frames().is_empty());
    assert!(c.pump().frames().is_empty());
    let outs = c.pong_with(&t1);
    let run_ids: Vec<_> = outs.events_named("chat").iter().map(|e| e["payload"]["runId"].clone()).collect();
    assert!(run_ids.iter().all(|r| r == "run-a"), "only the first run's events: {run_ids:?}");
    assert!(!run_ids.is_empty());
    assert_eq!(outs.frames().last().unwrap()["id"], "s2", "the second answer ends the released frames");
    let t2 = barrier_token(&outs, "s2");
    assert_ne!(t1, t2);
    // The first barrier's token again changes nothing.
    assert!(c.pong_with(&t1).frames().is_empty());
    let outs = c.pong_with(&t2);
    let chat = outs.events_named("chat");
    assert!(!chat.is_empty() && chat.iter().all(|e| e["payload"]["runId"] == "run-b"), "{chat:?}");
}

/// What the barrier holds was promised to the client: a close (here a shutdown) sends it first.
#[test]
fn closing_sends_what_the_barrier_held_before_the_close_frame() {
    let gw = Gw::new();
    let (mut c, _) = gw.open_cli(gw.t0, WRITE);
    c.pump();
    barrier_token(&c.request("s1", "chat.send", chat_send("run-c")), "s1");
    assert!(c.pump().frames().is_empty());
    let outs = c.shutdown("restart");
    let close_at = outs.iter().position(|o| matches!(o, Out::Close(..))).expect("a close frame");
    let before: Vec<_> = outs[..close_at].to_vec();
    assert_eq!(before.events_named("chat").last().unwrap()["payload"]["state"], "error", "{outs:?}");
    assert_eq!(before.events_named("shutdown").len(), 1);
}
