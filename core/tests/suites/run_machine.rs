//! The agent run machine (`agent::RunMachine`) on virtual time: the order of everything a run
//! does, store failures, aborts, failed turns, no provider, no OS randomness.

use crate::common;

use std::time::{Duration, Instant};

use clawgate_core::agent::{Outcome, RunAction, RunChange, RunMachine, RunNotice, RunSpec};
use clawgate_core::gateway::GatewaySettings;
use clawgate_core::openai::ApiError;
use clawgate_core::openai::turn::{TurnEvent, TurnResult};
use clawgate_core::sessions::{Stored, TranscriptEntry};
use serde_json::{Value, json};
fn run() -> RunSpec {
    let agents = clawgate_core::openai::Agents::from_config(&Value::Null);
    clawgate_core::agent::parse_agent_params(Some(&json!({"message": "hi", "idempotencyKey": "r1"})), &agents).unwrap()
}

fn settings(with_provider: bool) -> GatewaySettings {
    let mut s = clawgate_core::testkit::loopback_token_settings("t", 18789);
    if with_provider {
        let cfg = json!({"models": {"providers": {"fake": {"baseUrl": "http://127.0.0.1:9/v1", "api": "openai-completions",
            "models": [{"id": "m1"}]}}}, "agents": {"defaults": {"model": {"primary": "fake/m1"}}}});
        s.api = std::sync::Arc::new(clawgate_core::config::api::ApiConfig::from_config(&cfg, &Default::default()));
    }
    s
}

fn stored(entries: Vec<TranscriptEntry>, first_seq: u64) -> Stored {
    Stored::stamped(entries, first_seq, "sid", None)
}

/// The notices at the head of the queue.
fn notices(m: &mut RunMachine) -> Vec<RunNotice> {
    let mut out = Vec::new();
    while let Some(RunAction::Notify(n)) = m.poll_action() {
        out.push(n);
    }
    out
}

fn kinds(ns: &[RunNotice]) -> Vec<&'static str> {
    ns.iter()
        .map(|n| match n {
            RunNotice::SessionsChanged { change: RunChange::Start, .. } => "changed:start",
            RunNotice::SessionsChanged { change: RunChange::End, .. } => "changed:end",
            RunNotice::Messages { .. } => "messages",
            RunNotice::Started => "start",
            RunNotice::Model { .. } => "model",
            RunNotice::Delta(_) => "delta",
            RunNotice::Usage { .. } => "usage",
            RunNotice::Finish(_) => "finish",
        })
        .collect()
}

/// Up to the turn: history asked, the user turn stored, its notices out, the turn handed over.
fn to_turn(m: &mut RunMachine, t0: Instant, store_ok: bool) -> Vec<RunNotice> {
    assert!(matches!(m.poll_action(), Some(RunAction::LoadHistory { session_key }) if session_key == "agent:main:explicit:r1"));
    m.handle_history(&settings(true), vec![json!({"role": "user", "content": "earlier"})], t0, 1_000);
    let Some(RunAction::Store { meta, entries }) = m.poll_action() else { panic!("the user turn is stored first") };
    assert_eq!((meta.model.as_deref(), entries.len(), entries[0].run_id.as_deref()), (Some("m1"), 1, Some("r1")));
    assert!(m.poll_action().is_none(), "nothing happens before the user turn is kept");
    m.handle_stored(if store_ok { Ok(stored(entries, 3)) } else { Err("disk full".into()) }, t0, 1_000);
    let mut ns = Vec::new();
    loop {
        match m.poll_action() {
            Some(RunAction::Notify(n)) => ns.push(n),
            Some(RunAction::StartTurn(_)) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    ns
}

#[test]
fn a_finished_run_keeps_both_turns_and_announces_them_in_order() {
    let t0 = common::t0();
    let mut m = RunMachine::new(run(), [7; 21]);
    let ns = to_turn(&mut m, t0, true);
    assert_eq!(kinds(&ns), ["changed:start", "messages", "start", "model"]);
    let RunNotice::Messages { entries, .. } = &ns[1] else { unreachable!() };
    assert_eq!(entries[0].seq, 3, "announced with the seq the store gave it");
    assert_eq!(ns[3], RunNotice::Model { provider: Some("fake".into()), model: Some("m1".into()) });
    m.handle_turn_event(TurnEvent::Text("he".into()));
    m.handle_turn_event(TurnEvent::Text("llo".into()));
    assert_eq!(notices(&mut m), [RunNotice::Delta("he".into()), RunNotice::Delta("llo".into())]);
    let r = TurnResult { text: "hello".into(), finish_reason: "stop".into(), completion_tokens: 2, ..Default::default() };
    m.handle_turn_event(TurnEvent::Finished(r));
    m.handle_turn_end(false, t0 + Duration::from_millis(40), 1_040);
    assert_eq!(m.poll_action().map(|a| matches!(a, RunAction::Notify(RunNotice::Usage { output_tokens: 2 }))), Some(true));
    let Some(RunAction::Store { meta, entries }) = m.poll_action() else { panic!("the reply is stored") };
    assert_eq!(meta.status, Some(clawgate_core::sessions::RunStatus::Done));
    assert_eq!(entries[0].content, json!("hello"));
    m.handle_stored(Ok(stored(entries, 4)), t0, 1_041);
    let ns = notices(&mut m);
    assert_eq!(kinds(&ns), ["messages", "finish"]);
    let RunNotice::Finish(Outcome::Ok { text, meta }) = &ns[1] else { panic!("{ns:?}") };
    assert_eq!((text.as_str(), meta["durationMs"].as_u64()), ("hello", Some(40)));
    assert!(!m.is_done(), "the closing row is still to come");
    m.handle_session(None);
    assert_eq!(kinds(&notices(&mut m)), ["changed:end"]);
    assert!(m.is_done());
}

#[test]
fn an_unavailable_store_announces_nothing_as_stored_and_fails_the_reply() {
    let t0 = common::t0();
    let mut m = RunMachine::new(run(), [1; 21]);
    let ns = to_turn(&mut m, t0, false);
    assert_eq!(kinds(&ns), ["changed:start", "start", "model"], "no session.message for a turn that was not kept");
    m.handle_turn_event(TurnEvent::Finished(TurnResult { text: "ok".into(), ..Default::default() }));
    m.handle_turn_end(false, t0, 1_001);
    let Some(RunAction::Store { .. }) = m.poll_action() else { panic!("no usage for 0 tokens; the reply store is next") };
    m.handle_stored(Err("disk full".into()), t0, 1_002);
    let ns = notices(&mut m);
    assert_eq!(ns, [RunNotice::Finish(Outcome::Err { message: "the reply was not saved: disk full".into() })]);
}

#[test]
fn a_stopped_run_keeps_its_partial_text_and_ends_aborted() {
    let t0 = common::t0();
    let mut m = RunMachine::new(run(), [2; 21]);
    to_turn(&mut m, t0, true);
    m.handle_turn_event(TurnEvent::Text("half".into()));
    notices(&mut m);
    m.handle_turn_end(true, t0, 1_005);
    let Some(RunAction::Store { meta, entries }) = m.poll_action() else { panic!() };
    assert!(meta.aborted && entries[0].content == json!("half"));
    m.handle_stored(Ok(stored(entries, 5)), t0, 1_006);
    let ns = notices(&mut m);
    assert_eq!(ns.last(), Some(&RunNotice::Finish(Outcome::Aborted { text: "half".into() })));
    // A failed turn ends with its error and keeps no reply.
    let mut m = RunMachine::new(run(), [3; 21]);
    to_turn(&mut m, t0, true);
    m.handle_turn_event(TurnEvent::Failed(ApiError::invalid("upstream said no")));
    m.handle_turn_end(false, t0, 1_007);
    let Some(RunAction::Store { entries, .. }) = m.poll_action() else { panic!() };
    assert!(entries.is_empty());
}

#[test]
fn without_a_provider_or_randomness_the_run_fails_at_once() {
    let mut m = RunMachine::new(run(), [0; 21]);
    m.poll_action();
    m.handle_history(&settings(false), Vec::new(), common::t0(), 5);
    let ns = notices(&mut m);
    assert_eq!(kinds(&ns), ["model", "finish"]);
    assert_eq!(ns[0], RunNotice::Model { provider: None, model: None });
    assert!(m.is_done());
    let mut m = RunMachine::refused(run(), "no randomness".into());
    assert_eq!(
        notices(&mut m),
        [RunNotice::Model { provider: None, model: None }, RunNotice::Finish(Outcome::Err { message: "no randomness".into() })]
    );
    // Answers that come in the wrong phase change nothing.
    m.handle_turn_end(false, common::t0(), 6);
    m.handle_session(None);
    assert!(m.poll_action().is_none() && m.is_done());
}
