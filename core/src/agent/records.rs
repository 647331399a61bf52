//! What a WebSocket run keeps in the session store and how it ends, decided once: the user turn,
//! the reply entries, the stop reason, the status, the usage, the final's content, an unsaved
//! reply. The run machine ([`super::RunMachine`]) orders the writes around them.

use serde_json::{Value, json};

use super::{Outcome, RunSpec};

/// What a run keeps before the model is asked: the session's meta (created on first use) and the
/// user turn (spec protocol §10.2; the UI reconciles with `chat.history` while the run goes on).
pub fn user_turn(
    run: &RunSpec,
    provider: &str,
    model: &str,
    session_uuid: String,
    now_ms: u64,
) -> (crate::sessions::SessionMeta, crate::sessions::TranscriptEntry) {
    let user = crate::sessions::TranscriptEntry::user(run.message.clone(), now_ms).with_run_id(run.run_id.clone());
    let mut meta = crate::sessions::SessionMeta::new(run.session_key.clone(), run.agent_id.clone(), session_uuid, now_ms);
    meta.origin = Some("agent".into());
    meta.model = Some(model.to_string());
    meta.model_provider = Some(provider.to_string());
    (meta, user)
}

/// How the model turn of a run ended, as its executor saw it.
#[derive(Debug, Clone, Copy)]
pub enum TurnEnd<'a> {
    /// Stopped (`chat.abort`, `/stop`) before a result; `partial` is the text streamed so far.
    Aborted {
        partial: &'a str,
    },
    Finished(&'a crate::openai::turn::TurnResult),
    Failed(&'a crate::openai::ApiError),
    /// The turn stopped without a result or an error.
    NoResult,
}

/// The end of a run: its outcome (the final answer's content), the session meta to store with
/// the reply (status, usage, last run), and the reply entries (none when the turn failed; the
/// partial text when aborted).
pub fn run_end(
    run: &RunSpec,
    mut meta: crate::sessions::SessionMeta,
    end: TurnEnd<'_>,
    started_ms: u64,
    duration_ms: u64,
    now_ms: u64,
) -> (Outcome, crate::sessions::SessionMeta, Vec<crate::sessions::TranscriptEntry>) {
    use crate::sessions::{LastRun, RunStatus, TranscriptEntry, Usage};
    meta.now_ms = now_ms;
    meta.last_run = Some(LastRun { run_id: run.run_id.clone(), started_ms, ended_ms: now_ms });
    let mut entries = Vec::new();
    let outcome = match end {
        TurnEnd::Aborted { partial } => {
            if !partial.is_empty() {
                entries.push(TranscriptEntry::assistant(Value::String(partial.to_string()), None, now_ms));
            }
            meta.status = Some(RunStatus::Killed);
            meta.aborted = true;
            Outcome::Aborted { text: partial.to_string() }
        }
        TurnEnd::Finished(r) => {
            let (input, output) = (r.prompt_tokens, r.completion_tokens);
            let mut reply = TranscriptEntry::assistant(Value::String(r.text.clone()), r.tool_calls_json(), now_ms);
            reply.meta = Some(crate::sessions::reply_meta(meta.model_provider.as_deref(), meta.model.as_deref(), r));
            entries.push(reply);
            meta.usage = Some(Usage { input_tokens: input, output_tokens: output, total_tokens: input + output });
            meta.status = Some(RunStatus::Done);
            let text = if r.text.is_empty() { crate::openai::NO_RESPONSE.to_string() } else { r.text.clone() };
            let final_meta = json!({
                "durationMs": duration_ms,
                "agentMeta": {"sessionId": run.session_id, "sessionKey": run.session_key, "provider": meta.model_provider, "model": meta.model,
                    "usage": {"input": input, "output": output, "total": input + output}},
            });
            Outcome::Ok { text, meta: final_meta }
        }
        TurnEnd::Failed(e) => {
            meta.status = Some(RunStatus::Failed);
            Outcome::Err { message: e.message.clone() }
        }
        TurnEnd::NoResult => {
            meta.status = Some(RunStatus::Failed);
            Outcome::Err { message: "the run ended without a result".into() }
        }
    };
    let entries = entries.into_iter().map(|e| e.with_run_id(run.run_id.clone())).collect();
    (outcome, meta, entries)
}

/// A reply that could not be kept ends the run with an error the client sees (issue 11): the
/// conversation would otherwise silently lose it.
pub fn unsaved_reply(outcome: Outcome, stored: Result<(), &str>) -> Outcome {
    match (stored, outcome) {
        (Err(reason), Outcome::Ok { .. }) => Outcome::Err { message: format!("the reply was not saved: {reason}") },
        (_, o) => o,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_agent_params;
    use super::*;

    fn spec() -> RunSpec {
        parse_agent_params(
            Some(&json!({"message": "hi", "idempotencyKey": "r1", "agentId": "main"})),
            &crate::openai::Agents::from_config(&Value::Null),
        )
        .unwrap()
    }

    #[test]
    fn a_finished_run_keeps_its_reply_with_usage_and_stop_reason() {
        let run = spec();
        let (meta, user) = user_turn(&run, "fake", "fake-model", "sid".into(), 10);
        assert_eq!(
            (meta.origin.as_deref(), meta.model.as_deref(), user.run_id.as_deref()),
            (Some("agent"), Some("fake-model"), Some("r1"))
        );
        let r = crate::openai::turn::TurnResult {
            text: String::new(),
            finish_reason: "length".into(),
            prompt_tokens: 3,
            completion_tokens: 4,
            ..Default::default()
        };
        let (outcome, meta, entries) = run_end(&run, meta, TurnEnd::Finished(&r), 10, 7, 20);
        let Outcome::Ok { text, meta: fin } = outcome else { panic!("{outcome:?}") };
        assert_eq!(text, crate::openai::NO_RESPONSE, "an empty reply reads as the reference's text");
        assert_eq!(fin["durationMs"], 7);
        assert_eq!(fin["agentMeta"]["usage"]["total"], 7);
        assert_eq!(meta.status, Some(crate::sessions::RunStatus::Done));
        assert_eq!(meta.last_run.as_ref().map(|l| (l.started_ms, l.ended_ms)), Some((10, 20)));
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].meta.as_ref().unwrap()["stopReason"], "length");
        assert_eq!(entries[0].run_id.as_deref(), Some("r1"));
    }

    #[test]
    fn aborted_and_failed_runs_and_unsaved_replies() {
        let run = spec();
        let (meta, _) = user_turn(&run, "p", "m", "sid".into(), 1);
        let (o, m, e) = run_end(&run, meta.clone(), TurnEnd::Aborted { partial: "half" }, 1, 1, 2);
        assert_eq!(o, Outcome::Aborted { text: "half".into() });
        assert!(m.aborted && m.status == Some(crate::sessions::RunStatus::Killed) && e.len() == 1);
        let (_, _, e) = run_end(&run, meta.clone(), TurnEnd::Aborted { partial: "" }, 1, 1, 2);
        assert!(e.is_empty(), "nothing streamed, nothing kept");
        let err = crate::openai::ApiError::invalid("boom");
        let (o, m, e) = run_end(&run, meta, TurnEnd::Failed(&err), 1, 1, 2);
        assert_eq!(o, Outcome::Err { message: "boom".into() });
        assert!(m.status == Some(crate::sessions::RunStatus::Failed) && e.is_empty());
        let ok = Outcome::Ok { text: "t".into(), meta: Value::Null };
        assert_eq!(unsaved_reply(ok.clone(), Ok(())), ok);
        assert_eq!(unsaved_reply(ok, Err("disk full")), Outcome::Err { message: "the reply was not saved: disk full".into() });
        assert_eq!(unsaved_reply(Outcome::Err { message: "x".into() }, Err("y")), Outcome::Err { message: "x".into() });
    }
}
