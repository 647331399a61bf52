//! Method calls the core hands to the shell ([`clawgate_core::methods::Call`]): config writes,
//! secrets reloads and session-store reads, carried out off the reactor. Shared by the WebSocket
//! session and the admin HTTP RPC.

use std::sync::Arc;

use clawgate_core::Reply;
use clawgate_core::methods::Call;

use crate::daemon::Ctx;
use crate::rt::Runtime;
use crate::session::unix_ms;

/// Carry out `call` for the caller `conn_id`. Returns the reply and, after a secrets reload,
/// the close owed to the caller's socket (sent after the reply). Calls answered inline
/// (`Reply`, `StartRun`, `Later`) are the caller's to handle; given here they are refused.
pub async fn execute<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, call: Call, conn_id: &str) -> (Reply, Option<(u16, &'static str)>) {
    let ctx = ctx.clone();
    match call {
        Call::ConfigGet => (rt.spawn_blocking(move || crate::config::read_config(&ctx.hub)).await, None),
        Call::ConfigWrite(w) => (rt.spawn_blocking(move || crate::config::write_config(&ctx.hub, &ctx.config, &w)).await, None),
        Call::SecretsReload => {
            let caller = conn_id.to_string();
            rt.spawn_blocking(move || crate::config::reload_secrets(&ctx.hub, &ctx.config, &caller)).await
        }
        Call::Store(mut job) => {
            let reply = rt
                .spawn_blocking(move || {
                    // Usage counts days in a time zone: the system's, or one looked up (IO).
                    job.resolve_zone(&jiff::tz::TimeZone::system(), &|name| jiff::tz::db().get(name).ok());
                    let store = ctx.store();
                    job.run(&ctx.hub, store.as_deref().map(|s| s as &dyn clawgate_core::sessions::SessionStore), unix_ms())
                })
                .await;
            (reply, None)
        }
        Call::PersistDevices(reply, close) => {
            let saved = rt.spawn_blocking(move || ctx.save_devices()).await;
            if let Err(e) = &saved {
                tracing::error!("paired devices not saved: {e}");
            }
            (Call::devices_persisted(reply, saved.is_ok()), close)
        }
        Call::LogsTail(p) => {
            let secrets = ctx.hub.settings().secret_values();
            (rt.spawn_blocking(move || crate::logfile::tail(&p, &secrets)).await, None)
        }
        Call::Reply(_) | Call::StartRun { .. } | Call::Later => (Call::answered_by_caller(), None),
    }
}
