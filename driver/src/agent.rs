//! Executes agent runs for the shells: performs what the core's run machine
//! ([`clawgate_core::agent::RunMachine`], which decides the order of everything a run does)
//! asks — the session's history, the store writes, the upstream turn — and hands its notices to
//! the hub ([`clawgate_core::methods::run_notice`]). A run can be stopped (`chat.abort`, a session
//! kill): its upstream request is dropped and the machine ends it as aborted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clawgate_core::agent::{RunAction, RunControl, RunMachine, RunSpec};
use clawgate_core::methods;
use clawgate_core::sessions::{SessionMeta, Stored, TranscriptEntry};
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

/// Run one agent run to its end.
pub async fn execute<R: Runtime>(rt: R, ctx: Arc<Ctx>, run: RunSpec) {
    execute_for_outcome(rt, ctx, run).await;
}

/// Run one agent run to its end; how it ended (`None` only if the machine stopped without
/// saying, which it does not).
pub async fn execute_for_outcome<R: Runtime>(rt: R, ctx: Arc<Ctx>, run: RunSpec) -> Option<clawgate_core::agent::Outcome> {
    let mut ended = None;
    let hub = ctx.hub.clone();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let stop = Arc::new(Stop { fired: AtomicBool::new(false), tx: Mutex::new(Some(stop_tx)) });
    hub.attach_run_control(&run.run_id, stop.clone());
    let mut machine = match crate::session::os_random::<21>() {
        Ok(seed) => RunMachine::new(run.clone(), seed),
        Err(e) => RunMachine::refused(run.clone(), e.to_string()),
    };
    let mut stop_rx = Some(stop_rx);
    while let Some(action) = machine.poll_action() {
        match action {
            RunAction::Notify(n) => {
                if let clawgate_core::agent::RunNotice::Finish(outcome) = &n {
                    ended = Some(outcome.clone());
                    let status = match outcome {
                        clawgate_core::agent::Outcome::Ok { .. } => "ok",
                        clawgate_core::agent::Outcome::Err { .. } => "error",
                        clawgate_core::agent::Outcome::Aborted { .. } => "aborted",
                    };
                    tracing::info!("agent run {} ended ({status}) session={}", run.run_id, run.session_key);
                }
                methods::run_notice(&hub, &run, n, Instant::now(), unix_ms())
            }
            RunAction::LoadHistory { session_key } => {
                let ctx2 = ctx.clone();
                let (history, session_settings) = rt
                    .spawn_blocking(move || {
                        let Some(s) = ctx2.store() else { return (Vec::new(), None) };
                        let settings = s.get_session(&session_key).ok().flatten().and_then(|x| x.settings);
                        (crate::persist::history(&s, &session_key), settings)
                    })
                    .await;
                machine.handle_session_settings(session_settings.as_ref());
                machine.handle_history(&hub.settings(), history, Instant::now(), unix_ms());
            }
            RunAction::Store { meta, entries } => {
                let stored = store_entries(&rt, &ctx, meta, entries).await;
                machine.handle_stored(stored, Instant::now(), unix_ms());
            }
            RunAction::ReadSession { session_key } => {
                let ctx2 = ctx.clone();
                let session = rt.spawn_blocking(move || ctx2.store().and_then(|s| s.get_session(&session_key).ok().flatten())).await;
                machine.handle_session(session);
            }
            RunAction::StartTurn(turn) => {
                // A dropped sender (never: `stop` lives until the end) would read as a stop; fine.
                let stopped = stop_rx.take().map(|rx| async move {
                    let _ = rx.await;
                });
                let stopped = async move {
                    if let Some(s) = stopped {
                        s.await
                    }
                };
                // Aborted before the turn started: it stops at once.
                crate::runner::drive_until(rt.clone(), *turn, stopped, |ev| {
                    machine.handle_turn_event(ev);
                    // Only notices (deltas) come out while the turn runs.
                    while let Some(RunAction::Notify(n)) = machine.poll_action() {
                        methods::run_notice(&hub, &run, n, Instant::now(), unix_ms());
                    }
                    true
                })
                .await;
                machine.handle_turn_end(stop.fired.load(Ordering::SeqCst), Instant::now(), unix_ms());
            }
        }
    }
    ended
}

/// Append `entries` to the run's session in one transaction (the store's group commit, no
/// thread held while it waits); `Err` (why) when they could not be saved — the store is
/// unavailable or refused the write (disk full): `health` shows the store degraded.
async fn store_entries<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, meta: SessionMeta, entries: Vec<TranscriptEntry>) -> Result<Stored, String> {
    let written = match crate::persist::open_store(rt, ctx).await {
        None => Err("the session store is not available".to_string()),
        Some(store) => crate::persist::append(&store, meta.clone(), entries.clone(), None).await.map(|o| (store, o)),
    };
    ctx.note_session_write(&written.as_ref().map(|_| ()).map_err(Clone::clone));
    let (store, out) = written?;
    let key = meta.key.clone();
    let session = rt.spawn_blocking(move || store.get_session(&key).ok().flatten()).await;
    Ok(Stored::stamped(entries, out.first_seq, &meta.session_id, session))
}
