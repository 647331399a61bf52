//! Session persistence around agent turns: history in before a turn, the exchange out after it —
//! one transaction per turn in the session store ([`crate::store`]). Blocking: call through
//! `Runtime::spawn_blocking`. A store failure never fails the client's request (the answer was
//! already produced); it is logged.

pub use clawgate_core::sessions::Exchange;
use clawgate_core::sessions::{self, HistoryBudget};
use serde_json::Value;

use crate::store::Store;

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

/// Store one exchange in one transaction; `Err` (already logged) when it could not be saved.
pub fn record(store: &Store, x: Exchange) -> Result<(), String> {
    let (meta, entries) = x.records();
    store.append_turn_with_response(&meta, &entries, x.response.as_ref()).map(|_| ()).map_err(|e| {
        tracing::error!("session {} not saved: {e}", x.key);
        e.to_string()
    })
}
