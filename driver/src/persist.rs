//! Session persistence around agent turns: history in before a turn, the exchange out after it —
//! one transaction per turn in the session store ([`crate::store`]). [`history`] blocks (call it
//! through `Runtime::spawn_blocking`); [`record`] waits for the store's group commit without
//! holding a thread. A store failure never fails the client's request (the answer was already
//! produced); it is logged.

pub use clawgate_core::sessions::Exchange;
use std::sync::Arc;

use clawgate_core::sessions::{self, HistoryBudget, SessionMeta, StoredResponse, TranscriptEntry};
use serde_json::Value;

use crate::daemon::Ctx;
use crate::rt::Runtime;
use crate::store::{AppendOutcome, Store};

/// The stored conversation of `key` as upstream messages (bounded by the default budget).
pub fn history(store: &Store, key: &str) -> Vec<Value> {
    match store.history(key, HistoryBudget::default().max_entries) {
        Ok(entries) => sessions::to_openai_messages(&entries, &HistoryBudget::default()),
        Err(e) => {
            tracing::warn!("session history of {key} unavailable: {e}");
            Vec::new()
        }
    }
}

/// Store one exchange in one transaction; resolves once it is durable, `Err` (already logged)
/// when it could not be saved.
pub async fn record(store: &Store, x: Exchange) -> Result<(), String> {
    let (meta, entries) = x.records();
    append(store, meta, entries, x.response).await.map(|_| ())
}

/// Append one turn through the store's group commit without holding a thread while it waits;
/// resolves once the turn is durable, `Err` (already logged) when it could not be saved.
pub async fn append(
    store: &Store,
    meta: SessionMeta,
    entries: Vec<TranscriptEntry>,
    response: Option<StoredResponse>,
) -> Result<AppendOutcome, String> {
    let key = meta.key.clone();
    let (tx, rx) = futures_channel::oneshot::channel();
    store.submit_turn(
        meta,
        entries,
        response,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    let result = match rx.await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("the session store's committer stopped".to_string()),
    };
    result.inspect_err(|e| tracing::error!("session {key} not saved: {e}"))
}

/// The session store: a lookup once it is open; its first opening (which blocks) off the
/// reactor, on one blocking thread however many requests arrive meanwhile (a burst of first
/// requests would otherwise park one pool thread each). `None` when it cannot be opened.
pub async fn open_store<R: Runtime>(rt: &R, ctx: &Arc<Ctx>) -> Option<Arc<Store>> {
    if let Some(outcome) = ctx.store_outcome() {
        return outcome;
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    let first = {
        let mut waiters = ctx.store_waiters.lock().unwrap_or_else(|e| e.into_inner());
        let first = waiters.is_none();
        waiters.get_or_insert_with(Vec::new).push(tx);
        first
    };
    if first {
        let ctx2 = ctx.clone();
        rt.spawn(rt.spawn_blocking(move || {
            // The waiters are released however the opening ends (a panic included).
            struct Release(Arc<Ctx>);
            impl Drop for Release {
                fn drop(&mut self) {
                    let waiters = self.0.store_waiters.lock().unwrap_or_else(|e| e.into_inner()).take();
                    for w in waiters.into_iter().flatten() {
                        let _ = w.send(());
                    }
                }
            }
            let release = Release(ctx2);
            let _ = release.0.store();
        }));
    }
    // The opener always answers (or is gone with the runtime: then there is nothing to serve).
    let _ = rx.await;
    ctx.open_store()
}
