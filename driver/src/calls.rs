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
        Call::Compact(c) => (compact(rt, &ctx, c).await, None),
        Call::ConfigGet => (rt.spawn_blocking(move || crate::config::read_config(&ctx.hub)).await, None),
        Call::ConfigWrite(w) => (rt.spawn_blocking(move || crate::config::write_config(&ctx.hub, &ctx.config, &w)).await, None),
        Call::SecretsReload => {
            let caller = conn_id.to_string();
            rt.spawn_blocking(move || crate::config::reload_secrets(&ctx.hub, &ctx.config, &caller)).await
        }
        Call::SecretStore(c) => {
            let caller = conn_id.to_string();
            rt.spawn_blocking(move || crate::secrets::store_call(&ctx.hub, &ctx.config, c, &caller)).await
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
        Call::Cron(c) => (crate::cron::call(rt, &ctx, c).await, None),
        Call::Reply(_) | Call::StartRun { .. } | Call::Later => (Call::answered_by_caller(), None),
    }
}

/// `sessions.compact`: read the transcript, let the core plan, ask the provider for the summary
/// (a turn like any other), store it in place of the older messages.
async fn compact<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, c: clawgate_core::methods::lifecycle::Compaction) -> Reply {
    use clawgate_core::methods::lifecycle::{CompactPlan, Compaction};
    use clawgate_core::openai::turn::{Turn, TurnEvent, TurnPolicy};
    let settings = ctx.hub.settings();
    let (ctx2, key) = (ctx.clone(), c.key.clone());
    let read = rt
        .spawn_blocking(move || {
            let store = ctx2.store()?;
            let session = store.get_session(&key).ok().flatten();
            let entries = store.history_page(&key, 100_000, 0).map(|p| p.entries).unwrap_or_default();
            Some((session, entries))
        })
        .await;
    let Some((session, entries)) = read else {
        return Reply::err(clawgate_core::wire::ErrorShape::unavailable("session store unavailable: not open"));
    };
    let seed = crate::session::os_random::<5>().map(|b| clawgate_core::ids::hex(&b)).unwrap_or_default();
    let (summary, keep_from_seq, kept) = match c.plan(&settings.api, session.as_ref(), &entries, seed) {
        CompactPlan::Answer(reply) => return reply,
        CompactPlan::Truncate { keep_from_seq, kept } => (None, keep_from_seq, kept),
        CompactPlan::Summarize { spec, keep_from_seq, kept } => {
            let turn = Turn::new(*spec, TurnPolicy::for_limits(&settings.limits), std::time::Instant::now());
            let mut outcome: Option<Result<String, String>> = None;
            crate::runner::drive(rt.clone(), turn, |ev| {
                match ev {
                    TurnEvent::Finished(r) => outcome = Some(Ok(r.text)),
                    TurnEvent::Failed(e) => outcome = Some(Err(e.message)),
                    _ => {}
                }
                true
            })
            .await;
            match outcome {
                Some(Ok(text)) if !text.trim().is_empty() => (Some(Compaction::summary_entry(&text, unix_ms())), keep_from_seq, kept),
                Some(Err(e)) => return Reply::err(clawgate_core::wire::ErrorShape::unavailable(format!("compaction failed: {e}"))),
                _ => {
                    return Reply::err(clawgate_core::wire::ErrorShape::unavailable("compaction failed: the provider returned no summary"));
                }
            }
        }
    };
    let (ctx2, key) = (ctx.clone(), c.key.clone());
    let stored = rt.spawn_blocking(move || ctx2.store().map(|s| s.compact_session(&key, keep_from_seq, summary.as_ref()))).await;
    match stored {
        Some(Ok(Some(row))) => {
            tracing::info!("session {} compacted ({kept} messages kept)", c.key);
            let defaults = clawgate_core::sessions::session_defaults(&settings.api);
            let changed =
                clawgate_core::sessions::sessions_changed_payload(&c.key, &c.agent_id, "compact", Some(&row), &defaults, unix_ms());
            ctx.hub.broadcast_to("sessions.changed", &changed, clawgate_core::gateway::Audience::SessionsSubscribers);
            c.compacted(kept)
        }
        Some(Ok(None)) => Reply::err(clawgate_core::wire::ErrorShape::invalid_request(format!("No session found: {}", c.key))),
        Some(Err(e)) => Reply::err(clawgate_core::wire::ErrorShape::unavailable(format!("session store unavailable: {e}"))),
        None => Reply::err(clawgate_core::wire::ErrorShape::unavailable("session store unavailable: not open")),
    }
}
