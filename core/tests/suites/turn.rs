//! `Turn` on virtual time: a reply that grows past the cap ends the turn with an error the
//! client sees and drops the upstream request; an upstream event that never ends is refused
//! once it passes its cap; a normal stream finishes with the whole text (issue 11 item 1).

use crate::common;

use std::time::{Duration, Instant};

use clawgate_core::openai::turn::{Turn, TurnEvent, TurnOutput, TurnPolicy, TurnSpec, Upstream};

fn spec() -> TurnSpec {
    TurnSpec {
        upstream: Upstream { provider_id: "p".into(), base_url: "http://127.0.0.1:9/v1".into(), api_key: None, headers: Vec::new() },
        model: "m".into(),
        messages: vec![serde_json::json!({"role": "user", "content": "hi"})],
        tools: None,
        tool_choice: None,
        sampling: Default::default(),
        id_seed: "abc".into(),
    }
}

fn chunk(text: &str) -> Vec<u8> {
    format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]})).into_bytes()
}

/// Start a turn and answer its request with a 200 event-stream head.
fn streaming(policy: TurnPolicy, now: Instant) -> Turn {
    let mut t = Turn::new(spec(), policy, now);
    assert!(matches!(t.poll_output(), Some(TurnOutput::Send(_))));
    t.handle_response_head(now, 200, &[("content-type", "text/event-stream")]);
    t
}

fn drain(t: &mut Turn) -> (Vec<TurnEvent>, usize) {
    let (mut events, mut cancels) = (Vec::new(), 0);
    while let Some(o) = t.poll_output() {
        match o {
            TurnOutput::Event(e) => events.push(e),
            TurnOutput::Cancel => cancels += 1,
            TurnOutput::Send(_) => panic!("no retry expected"),
        }
    }
    (events, cancels)
}

#[test]
fn a_reply_past_the_cap_fails_cleanly_and_drops_the_upstream() {
    let now = common::t0();
    let mut t = streaming(TurnPolicy { max_reply_bytes: 1000, ..TurnPolicy::default() }, now);
    for i in 0..9 {
        t.handle_body(now + Duration::from_millis(i), &chunk(&"x".repeat(100)));
    }
    let (events, cancels) = drain(&mut t);
    assert_eq!(events.len(), 9, "900 bytes stream through");
    assert_eq!(cancels, 0);
    t.handle_body(now, &chunk(&"y".repeat(200)));
    let (events, cancels) = drain(&mut t);
    assert_eq!(cancels, 1, "the upstream request is dropped");
    match events.as_slice() {
        [TurnEvent::Failed(e)] => {
            assert_eq!(e.status, 502);
            assert!(e.message.contains("limit of 1000 bytes") && e.message.contains("CLAWGATE_MAX_REPLY_BYTES"), "{}", e.message);
        }
        other => panic!("expected one Failed event, got {other:?}"),
    }
    assert!(t.is_done());
    // Nothing more comes out of a done turn, whatever the upstream still sends.
    t.handle_body(now, &chunk("z"));
    assert_eq!(drain(&mut t).0.len(), 0);
}

#[test]
fn an_upstream_event_without_end_is_refused_past_its_cap() {
    let now = common::t0();
    let mut t = streaming(TurnPolicy::default(), now);
    let piece = vec![b'a'; 64 * 1024];
    let mut failed = None;
    for _ in 0..(clawgate_core::openai::MAX_SSE_EVENT_BYTES / piece.len() + 2) {
        t.handle_body(now, b"data: ");
        t.handle_body(now, &piece);
        let (events, _) = drain(&mut t);
        if let Some(TurnEvent::Failed(e)) = events.into_iter().next() {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the endless event is refused");
    assert!(e.message.contains("larger than"), "{}", e.message);
}

#[test]
fn a_normal_stream_finishes_with_the_whole_text() {
    let now = common::t0();
    let mut t = streaming(TurnPolicy::default(), now);
    // One event split across reads, its terminator split too.
    let mut bytes = chunk("Hello, ");
    bytes.extend(chunk("world"));
    bytes.extend(b"data: [DONE]\n\n");
    for part in bytes.chunks(7) {
        t.handle_body(now, part);
    }
    let (events, _) = drain(&mut t);
    match events.last() {
        Some(TurnEvent::Finished(r)) => assert_eq!(r.text, "Hello, world"),
        other => panic!("{other:?}"),
    }
}
