//! Executes agent runs for the shells: asks the core for the run's plan and carries it out —
//! an upstream turn whose deltas become `agent`/`chat` events and whose end is the run's final
//! answer. The session keeps the user turn when the run starts and the reply when it ends; each
//! is announced with `session.message` (same id and `seq` as `chat.history` shows later), framed
//! by `sessions.changed` `running` → `done` (control-ui §5.1). A run can be stopped (`chat.abort`, a session kill): its upstream request is dropped
//! and the run ends as aborted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clawgate_core::agent::{Plan, RunControl, RunSpec, TurnEnd};
use clawgate_core::gateway::{Audience, Hub};
use clawgate_core::methods;
use clawgate_core::methods::ui::{self as ui_methods, Change};
use clawgate_core::openai::turn::{Turn, TurnEvent, TurnPolicy};
use clawgate_core::sessions::{self, SessionMeta, SessionSummary, TranscriptEntry};
use futures_channel::oneshot;
use serde_json::Value;

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
    hub.attach_run_control(&run.run_id, stop.clone());
    // The transcript's session id must be unpredictable: without OS randomness the run fails.
    let Ok(seed) = crate::session::os_random::<21>() else {
        let message = crate::session::NoRandomness.to_string();
        hub.begin_run(&run.run_id, None, None, unix_ms());
        hub.finish_run(&run.run_id, clawgate_core::agent::Outcome::Err { message }, Instant::now(), unix_ms());
        return;
    };
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
    // The user turn is kept and announced before the model is asked (the UI reconciles with
    // `chat.history` while the run is going and expects it there).
    let session_uuid = clawgate_core::ids::uuid_v4(seed[5..21].try_into().unwrap_or([0; 16]));
    let (meta, user) = clawgate_core::agent::user_turn(&run, &provider, &model, session_uuid, unix_ms());
    let stored = store_entries(&rt, &ctx, meta.clone(), vec![user]).await;
    announce_start(&hub, &run, stored.as_ref().ok());
    let started = Instant::now();
    let started_ms = unix_ms();
    hub.run_started(&run.run_id, started_ms);
    hub.begin_run(&run.run_id, Some(&provider), Some(&model), unix_ms());
    let turn = Turn::new(*spec, TurnPolicy::for_limits(&hub.settings().limits), Instant::now());
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
    if let Some(Ok(r)) = &result {
        hub.run_usage(&run.run_id, r.completion_tokens, unix_ms());
    }
    let end = match &result {
        _ if aborted => TurnEnd::Aborted { partial: &partial },
        Some(Ok(r)) => TurnEnd::Finished(r),
        Some(Err(e)) => TurnEnd::Failed(e),
        None => TurnEnd::NoResult,
    };
    // The reply is kept in a second transaction (with its usage and the run's status), then
    // announced; the run's final answer and `sessions.changed` (done) follow.
    let (outcome, end_meta, entries) =
        clawgate_core::agent::run_end(&run, meta, end, started_ms, started.elapsed().as_millis() as u64, unix_ms());
    let stored = store_entries(&rt, &ctx, end_meta, entries).await;
    let outcome = clawgate_core::agent::unsaved_reply(outcome, stored.as_ref().map(|_| ()).map_err(String::as_str));
    announce_messages(&hub, &run, stored.as_ref().ok());
    hub.finish_run(&run.run_id, outcome, Instant::now(), unix_ms());
    announce_end(&hub, &run, &rt, &ctx).await;
}

/// What a store write gave back: the entries as stored (with `seq` and id) and the session row.
struct Stored {
    entries: Vec<TranscriptEntry>,
    session: Option<SessionSummary>,
}

/// Append `entries` to the run's session in one transaction; `Err` (why) when they could not be
/// saved — the store is unavailable or refused the write (disk full): the run goes on, nothing
/// is announced as stored, `health` shows the store degraded.
async fn store_entries<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, meta: SessionMeta, entries: Vec<TranscriptEntry>) -> Result<Stored, String> {
    let ctx = ctx.clone();
    rt.spawn_blocking(move || {
        let written = match ctx.store() {
            None => Err("the session store is not available".to_string()),
            Some(store) => store.append_turn(&meta, &entries).map(|o| (store, o)).map_err(|e| {
                tracing::error!("session {} not saved: {e}", meta.key);
                e.to_string()
            }),
        };
        ctx.note_session_write(&written.as_ref().map(|_| ()).map_err(Clone::clone));
        let (store, out) = written?;
        let session = store.get_session(&meta.key).ok().flatten();
        let sid = session.as_ref().map_or(meta.session_id.clone(), |s| s.session_id.clone());
        let entries = entries
            .into_iter()
            .zip(out.first_seq..)
            .map(|(mut e, seq)| {
                e.seq = seq;
                e.id = Some(sessions::message_id(&sid, seq));
                e
            })
            .collect();
        Ok(Stored { entries, session })
    })
    .await
}

fn live_row(hub: &Hub, run: &RunSpec, session: Option<&SessionSummary>) -> Value {
    let active = hub.active_run_ids(&run.session_key);
    ui_methods::live_session_row(&run.session_key, &run.agent_id, session, &hub.settings().api, &active, unix_ms())
}

/// `sessions.changed` (the run started: `running`) and `session.message` for the user turn.
fn announce_start(hub: &Hub, run: &RunSpec, stored: Option<&Stored>) {
    let row = live_row(hub, run, stored.and_then(|s| s.session.as_ref()));
    let changed = ui_methods::sessions_changed(&run.session_key, &run.agent_id, Change::RunStart(&run.run_id), &row, unix_ms());
    hub.broadcast_to("sessions.changed", &changed, Audience::SessionsSubscribers);
    announce_messages(hub, run, stored);
}

/// `session.message` for each stored entry, to the sockets subscribed to the session.
fn announce_messages(hub: &Hub, run: &RunSpec, stored: Option<&Stored>) {
    let Some(stored) = stored else { return };
    let row = live_row(hub, run, stored.session.as_ref());
    for m in sessions::display_messages(&stored.entries, None) {
        let ev = ui_methods::session_message(&run.session_key, &run.agent_id, &m, &row);
        hub.broadcast_to("session.message", &ev, Audience::SessionMessages(&run.session_key));
    }
}

/// `sessions.changed` after the run ended: the row is `done` (or failed/killed) with no
/// active run, so no client is left showing the stale `running` of `session.message`.
async fn announce_end<R: Runtime>(hub: &Hub, run: &RunSpec, rt: &R, ctx: &Arc<Ctx>) {
    let (ctx2, key) = (ctx.clone(), run.session_key.clone());
    let session = rt.spawn_blocking(move || ctx2.store().and_then(|s| s.get_session(&key).ok().flatten())).await;
    let row = live_row(hub, run, session.as_ref());
    let changed = ui_methods::sessions_changed(&run.session_key, &run.agent_id, Change::RunEnd(&run.run_id), &row, unix_ms());
    hub.broadcast_to("sessions.changed", &changed, Audience::SessionsSubscribers);
}
