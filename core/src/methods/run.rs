//! Performing an agent run's notices on the hub ([`crate::agent::RunMachine`] decides them and
//! their order): run events, the session rows and messages the Control UI follows, the final.
//! The shells call [`run_notice`] for each `RunAction::Notify`; [`run_without_io`] performs a
//! whole run where there is no IO (the in-memory conformance runner, fuzz targets, core's tests).

use std::time::Instant;

use serde_json::Value;

use crate::agent::{RunAction, RunChange, RunMachine, RunNotice, RunSpec};
use crate::gateway::{Audience, Hub};
use crate::methods::ui::{self, Change};
use crate::sessions::{self, SessionSummary};

/// Tell the hub one thing a run did.
pub fn run_notice(hub: &Hub, run: &RunSpec, notice: RunNotice, now: Instant, unix_ms: u64) {
    match notice {
        RunNotice::Started => hub.run_started(&run.run_id, unix_ms),
        RunNotice::Model { provider, model } => hub.begin_run(&run.run_id, provider.as_deref(), model.as_deref(), unix_ms),
        RunNotice::Delta(text) => hub.run_delta(&run.run_id, &text, unix_ms),
        RunNotice::Usage { output_tokens } => hub.run_usage(&run.run_id, output_tokens, unix_ms),
        RunNotice::Finish(outcome) => hub.finish_run(&run.run_id, outcome, now, unix_ms),
        RunNotice::SessionsChanged { change, session } => {
            let row = live_row(hub, run, session.as_ref(), unix_ms);
            let change = match change {
                RunChange::Start => Change::RunStart(&run.run_id),
                RunChange::End => Change::RunEnd(&run.run_id),
            };
            let changed = ui::sessions_changed(&run.session_key, &run.agent_id, change, &row, unix_ms);
            hub.broadcast_to("sessions.changed", &changed, Audience::SessionsSubscribers);
        }
        RunNotice::Messages { entries, session } => {
            let row = live_row(hub, run, session.as_ref(), unix_ms);
            for m in sessions::display_messages(&entries, None) {
                let ev = ui::session_message(&run.session_key, &run.agent_id, &m, &row);
                hub.broadcast_to("session.message", &ev, Audience::SessionMessages(&run.session_key));
            }
        }
    }
}

/// The session's row as the UI shows it while (or after) a run: the stored row with the
/// session's running runs.
fn live_row(hub: &Hub, run: &RunSpec, session: Option<&SessionSummary>, unix_ms: u64) -> Value {
    let active = hub.active_run_ids(&run.session_key);
    ui::live_session_row(&run.session_key, &run.agent_id, session, &hub.settings().api, &active, unix_ms)
}

/// Perform a run where there is no IO, as a process without a session store or network would:
/// no history, nothing kept, and a run that needs its provider never gets an answer (it stays
/// running until aborted). A run without a usable provider fails at once, as on a socket.
pub fn run_without_io(hub: &Hub, run: &RunSpec, now: Instant, unix_ms: u64) {
    // Deterministic ids: nothing here is kept, and in-memory runs must replay the same way.
    let seed = {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(run.run_id.as_bytes());
        let mut s = [0u8; 21];
        s.copy_from_slice(&d[..21]);
        s
    };
    let mut machine = RunMachine::new(run.clone(), seed);
    while let Some(action) = machine.poll_action() {
        match action {
            RunAction::LoadHistory { .. } => machine.handle_history(&hub.settings(), Vec::new(), now, unix_ms),
            RunAction::Store { .. } => machine.handle_stored(Err("the session store is not available".into()), now, unix_ms),
            RunAction::ReadSession { .. } => machine.handle_session(None),
            RunAction::Notify(n) => run_notice(hub, run, n, now, unix_ms),
            // The upstream is never answered here.
            RunAction::StartTurn(_) => return,
        }
    }
}
