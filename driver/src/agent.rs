//! Executes agent runs for the shells: asks the core for the run's plan and carries it out —
//! an upstream turn whose deltas become `agent`/`chat` events and whose end is the run's final
//! answer. A run can be stopped (`chat.abort`, a session kill): its upstream request is dropped
//! and the run ends as aborted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clawgate_core::agent::{Outcome, Plan, RunControl, RunSpec};
use clawgate_core::methods;
use clawgate_core::turn::{Turn, TurnEvent, TurnPolicy, TurnResult};
use futures_channel::oneshot;

use crate::daemon::Ctx;
use crate::rt::Runtime;
use crate::session::unix_ms;

/// The hub's stop handle on one executing run.
struct Stop {
    fired: AtomicBool,
    tx: Mutex<Option<oneshot::Sender<()>>>,
}

impl RunControl for Stop {
    fn abort(&self) {
        self.fired.store(true, Ordering::SeqCst);
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    }
}

/// Run one agent turn to its end: the session's history in, the exchange recorded after.
pub async fn execute<R: Runtime>(rt: R, ctx: Arc<Ctx>, run: RunSpec) {
    let hub = ctx.hub.clone();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let stop = Arc::new(Stop { fired: AtomicBool::new(false), tx: Mutex::new(Some(stop_tx)) });
    clawgate_core::agent::attach_control(&hub, &run.run_id, stop.clone());
    let mut seed = [0u8; 21];
    let _ = getrandom::fill(&mut seed);
    let history = {
        let (ctx2, key) = (ctx.clone(), run.session_key.clone());
        rt.spawn_blocking(move || ctx2.store().map(|s| crate::persist::history(&s, &key)).unwrap_or_default()).await
    };
    let plan = clawgate_core::agent::plan(&hub.settings(), &run, history, clawgate_core::ids::hex(&seed[..5]));
    let (spec, provider, model) = match plan {
        Plan::Turn { spec, provider, model } => (spec, provider, model),
        Plan::NoProvider { .. } => {
            methods::execute_without_io(&hub, &run, Instant::now(), unix_ms());
            return;
        }
    };
    let started = Instant::now();
    hub.begin_run(&run.run_id, Some(&provider), Some(&model), unix_ms());
    let turn = Turn::new(*spec, TurnPolicy::default(), Instant::now());
    let mut result = None;
    let mut partial = String::new();
    let stopped = async {
        // A dropped sender (never: `stop` lives until the end) would read as a stop; fine.
        let _ = stop_rx.await;
    };
    // Aborted before the turn started: it stops at once.
    crate::runner::drive_until(rt.clone(), turn, stopped, |ev| {
        match ev {
            TurnEvent::Text(t) => {
                hub.run_delta(&run.run_id, &t, unix_ms());
                partial.push_str(&t);
            }
            TurnEvent::Finished(r) => result = Some(Ok(r)),
            TurnEvent::Failed(e) => result = Some(Err(e)),
            TurnEvent::ToolCallStart { .. } | TurnEvent::ToolCallArgs { .. } => {}
        }
        true
    })
    .await;
    let aborted = stop.fired.load(Ordering::SeqCst) && result.is_none();
    let outcome = match &result {
        _ if aborted => Outcome::Aborted { text: partial.clone() },
        Some(Ok(r)) => {
            let text = if r.text.is_empty() { "No response from OpenClaw.".to_string() } else { r.text.clone() };
            let meta = serde_json::json!({
                "durationMs": started.elapsed().as_millis() as u64,
                "agentMeta": {"sessionId": run.session_id, "sessionKey": run.session_key, "provider": provider, "model": model,
                    "usage": {"input": r.prompt_tokens, "output": r.completion_tokens, "total": r.prompt_tokens + r.completion_tokens}},
            });
            Outcome::Ok { text, meta }
        }
        Some(Err(e)) => Outcome::Err { message: e.message.clone() },
        None => Outcome::Err { message: "the run ended without a result".into() },
    };
    let recorded = match result {
        Some(r) => Some(r),
        None if aborted => Some(Ok(TurnResult { text: partial, finish_reason: "aborted".into(), ..Default::default() })),
        None => None,
    };
    // The session keeps the exchange before the final answer goes out, so a client that reads
    // `chat.history` right after the final sees it.
    if let Some(r) = recorded {
        let x = crate::persist::Exchange {
            key: run.session_key.clone(),
            agent_id: run.agent_id.clone(),
            input: vec![serde_json::json!({"role": "user", "content": run.message})],
            outcome: r,
            origin: "agent",
            channel: None,
            provider: Some(provider),
            model: Some(model),
            run_id: Some(run.run_id.clone()),
            response: None,
            now_ms: unix_ms(),
            session_id: clawgate_core::ids::uuid_v4(seed[5..21].try_into().unwrap_or([0; 16])),
            aborted,
        };
        let ctx2 = ctx.clone();
        rt.spawn_blocking(move || {
            if let Some(store) = ctx2.store() {
                crate::persist::record(&store, x);
            }
        })
        .await;
    }
    hub.finish_run(&run.run_id, outcome, Instant::now(), unix_ms());
}
