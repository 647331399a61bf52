//! The `upstream` target: one relayed model call (`openai::turn::Turn`) fed an upstream's
//! answer — heads, body bytes in any chunking, ends, transport failures and deadlines — on
//! virtual time (issue 17 moved the SSE reading onto borrowed typed fields; this target holds it
//! to the no-panic rule with everything around it).

use super::*;
use crate::openai::turn::{Turn, TurnEvent, TurnOutput, TurnPolicy, TurnSpec, Upstream};

const STATUSES: [u16; 8] = [200, 200, 200, 429, 500, 401, 404, 503];
const CONTENT_TYPES: [&str; 3] = ["text/event-stream", "application/json", "text/event-stream; charset=utf-8"];

/// Byte 0: bit 0 a tight reply cap (64 bytes), bit 1 a short idle timeout. Then ops (op byte
/// modulo 6): `0` body bytes (chunk), `1` a response head (`u8` status, `u8` content type and
/// `Retry-After`), `2` body end, `3` transport error, `4` advance time (`u16` ms) and fire the
/// turn's deadline if passed, `5` a well-formed SSE event (`u8` kind, chunk of text). Checks:
/// nothing is emitted after the turn's final event; a done turn stays done; the deadline never
/// lies in the past after a timeout was handled; the text of `Finished` is the text streamed.
pub fn upstream(base: Instant, data: &[u8]) {
    let mut b = Bytes::new(data);
    let flags = b.u8();
    let policy = TurnPolicy {
        max_reply_bytes: if flags & 1 != 0 { 64 } else { TurnPolicy::default().max_reply_bytes },
        idle_timeout: if flags & 2 != 0 { Duration::from_millis(50) } else { TurnPolicy::default().idle_timeout },
        ..TurnPolicy::default()
    };
    let spec = TurnSpec {
        upstream: Upstream { provider_id: "p".into(), base_url: "http://127.0.0.1:9/v1".into(), api_key: None, headers: Vec::new() },
        model: "m".into(),
        messages: vec![json!({"role": "user", "content": "hi"})],
        tools: None,
        tool_choice: None,
        sampling: Default::default(),
        id_seed: "seed".into(),
    };
    let mut now = base;
    let mut turn = Turn::new(spec, policy, now);
    let (mut finished, mut streamed) = (false, String::new());
    let mut ops = 0;
    while !b.is_empty() && ops < MAX_OPS {
        ops += 1;
        match b.u8() % 6 {
            0 => turn.handle_body(now, b.chunk()),
            1 => {
                let status = pick(&STATUSES, b.u8());
                let h = b.u8();
                let retry = (h >> 2).to_string();
                let mut headers = vec![("content-type", pick(&CONTENT_TYPES, h))];
                if h & 0x80 != 0 {
                    headers.push(("retry-after", retry.as_str()));
                }
                turn.handle_response_head(now, status, &headers);
            }
            2 => turn.handle_body_end(now),
            3 => turn.handle_transport_error(now, "reset"),
            4 => {
                now += b.ms();
                if turn.poll_timeout().is_some_and(|d| d <= now) {
                    turn.handle_timeout(now);
                    if let Some(d) = turn.poll_timeout() {
                        assert!(d > now, "a handled deadline is still in the past");
                    }
                }
            }
            _ => {
                let kind = b.u8();
                let text = String::from_utf8_lossy(b.chunk()).into_owned();
                let event = match kind % 4 {
                    0 => json!({"choices": [{"index": 0, "delta": {"content": text}}]}),
                    1 => {
                        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": kind >> 2, "id": "c", "function": {"name": text, "arguments": "{}"}}]}}]})
                    }
                    2 => {
                        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": text}], "usage": {"prompt_tokens": kind, "completion_tokens": 1}})
                    }
                    _ => json!({"error": {"message": text}}),
                };
                turn.handle_body(now, format!("data: {event}\n\n").as_bytes());
            }
        }
        while let Some(out) = turn.poll_output() {
            match out {
                TurnOutput::Event(e) => {
                    assert!(!finished, "an event after the turn's final one: {e:?}");
                    match e {
                        TurnEvent::Text(t) => streamed.push_str(&t),
                        TurnEvent::Finished(r) => {
                            assert_eq!(r.text, streamed, "the final text is the text streamed");
                            finished = true;
                        }
                        TurnEvent::Failed(_) => finished = true,
                        _ => {}
                    }
                }
                // A retry starts the answer over: the text streamed so far was not shown as
                // final (a retry only happens before anything was emitted).
                TurnOutput::Send(_) => streamed.clear(),
                TurnOutput::Cancel => {}
            }
        }
        if finished {
            assert!(turn.is_done(), "a turn that gave its final event is done");
        }
    }
}
