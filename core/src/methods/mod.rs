//! Handlers for the methods whose answer is gateway state: `health`, `status`,
//! `system-presence`, `config.get` (spec §11.1), pure functions over the hub's state; the runs
//! (`agent`, `agent.wait`, `chat.send`, `chat.abort`); and what [`dispatch`] hands to the shell:
//! config writes, secrets reloads and the session-store reads of `sessions.list`,
//! `chat.history` and `tools.invoke` ([`StoreCall`], decided here over
//! [`crate::sessions::SessionStore`]).

pub mod absent;
mod channels;
pub mod cron;
pub mod lifecycle;
pub(crate) mod pairing;
mod run;
pub mod secret_store;
pub mod ui;
pub mod usage;

pub use run::{run_notice, run_without_io};

use std::time::Instant;

use serde_json::{Value, json};

use crate::agent::{ChatSend, RunSpec, Start};
use crate::connection::{Dispatch, Reply, ServerConnection};
use crate::gateway::Hub;
use crate::sessions::{self, HistoryQuery, SessionListQuery, SessionStore};
use crate::tools::{self, StoreHost, ToolsContext};
use crate::wire::{ErrorShape, msg};

pub use crate::connection::handshake::ADVERTISED_METHODS;

pub use crate::config::file::config_hash;

fn status(hub: &Hub, d: &Dispatch, now: Instant) -> Value {
    let info = hub.info();
    let runtime = hub.runtime_stats();
    let (total, authed) = hub.connection_counts();
    let admin = d.caller.is_admin();
    let redact = |p: &str| if admin { json!(p) } else { json!("[redacted]") };
    let mut v = json!({
        "runtimeVersion": info.version,
        "hostDesktop": {"enabled": false, "state": "disabled"},
        "heartbeat": {"defaultAgentId": "main", "agents": [{"agentId": "main", "enabled": false, "every": "disabled", "everyMs": null, "waitingForRoute": false}]},
        "channelSummary": [],
        "queuedSystemEvents": [],
        "degradedSecretOwners": [],
        "degradedPlugins": [],
        "tasks": {
            "total": 0, "active": 0, "terminal": 0, "failures": 0,
            "byStatus": {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "timed_out": 0, "cancelled": 0, "lost": 0},
            "byRuntime": {"subagent": 0, "acp": 0, "cli": 0, "cron": 0},
        },
        "taskAudit": {
            "total": 0, "warnings": 0, "errors": 0,
            "byCode": {"stale_queued": 0, "stale_running": 0, "lost": 0, "delivery_failed": 0, "missing_cleanup": 0, "inconsistent_timestamps": 0},
        },
        "sessions": {
            "paths": [],
            "count": 0,
            "defaults": {"model": null, "contextTokens": null},
            "recent": [],
            "byAgent": [{"agentId": "main", "path": redact(""), "count": 0, "recent": []}],
        },
        "modelRuntime": {"degraded": false, "pendingAgents": []},
        "eventLoop": hub.event_loop_json(),
        "processMemory": {"rssBytes": runtime.rss_bytes, "peakRssBytes": runtime.peak_rss_bytes},
        "workerPools": {"runtime": {"kind": info.runtime, "workerThreads": runtime.worker_threads}},
        "pid": info.pid,
        "shutdownBudget": {
            "timeoutMs": hub.settings().limits.shutdown_drain.as_millis() as u64,
            "reserveMs": 0,
            "nativeStopBudget": true,
            "activeWork": {"rootRequests": hub.pending_requests(), "connections": total},
        },
        "uptimeMs": hub.uptime_ms(now),
        "connections": {"total": total, "authenticated": authed, "pendingRequests": hub.pending_requests()},
        "configPath": redact(&info.config_path),
    });
    if let (Value::Object(activity), Some(o)) = (hub.activity_json(), v.as_object_mut()) {
        o.extend(activity);
    }
    let warnings = hub.store_warnings();
    if !warnings.is_empty() {
        v["storeWarnings"] = json!(warnings);
    }
    v
}

pub(crate) fn validate_params(method: &str, schema: &Value, params: Option<&Value>) -> Result<(), ErrorShape> {
    let empty = json!({});
    crate::wire::schema::validate(schema, params.unwrap_or(&empty))
        .map_err(|d| ErrorShape::invalid_request(format!("invalid {method} params: {d}")))
}

/// What a dispatched request needs from the shell.
#[derive(Debug)]
pub enum Call {
    /// Answer now.
    Reply(Reply),
    /// Answer now with `reply` (`accepted`), then execute the run and report with
    /// [`Hub::finish_run`] (its final answer reaches the socket through its sink).
    StartRun { reply: Reply, run: RunSpec },
    /// Nothing now: the answer comes later through the socket's sink (`agent.wait`).
    Later,
    /// Write the config file (the shell does the IO with [`crate::config::file::plan_write`]).
    ConfigWrite(crate::config::file::ConfigWrite),
    /// `config.get`: read the config file now (the shell reads it off the reactor and answers
    /// with [`crate::config::view::get_result`]).
    ConfigGet,
    /// `sessions.compact`: the shell reads the transcript, asks the provider for a summary of
    /// the older turns ([`crate::methods::lifecycle::Compaction::plan`]) and stores it.
    Compact(crate::methods::lifecycle::Compaction),
    /// Re-resolve SecretRefs and swap them in atomically.
    SecretsReload,
    /// `secrets.store.*`: read or write the team secret store, then (after a write to a name
    /// the active config references) re-resolve the secrets as [`Call::SecretsReload`] does.
    SecretStore(secret_store::SecretStoreCall),
    /// Needs the session store (blocking): the shell runs [`StoreCall::run`] off the reactor.
    Store(StoreCall),
    /// `logs.tail`: read the log file (the shell plans the range with
    /// [`crate::logs::plan_tail`] and answers with [`crate::logs::tail::tail_result`]).
    LogsTail(crate::logs::TailParams),
    /// The paired-device store changed (`device.pair.approve|reject|remove`): the shell saves
    /// it (atomically, off the reactor) before sending this reply, so an answered approval is
    /// never lost to a crash.
    PersistDevices(Reply, crate::methods::pairing::CloseAfter),
    /// `cron.*`: the shell applies it to its scheduler and performs the scheduler's outputs
    /// (persisting before answering), or reads the run history (`cron.runs`).
    Cron(cron::CronCall),
}

impl Call {
    /// The answer of a [`Call::PersistDevices`] once the shell tried to save the device store:
    /// the reply when it was written, else `UNAVAILABLE` (an approval that was not kept must
    /// not look done).
    pub fn devices_persisted(reply: Reply, saved: bool) -> Reply {
        if saved { reply } else { Reply::err(ErrorShape::unavailable(msg::DEVICES_NOT_SAVED)) }
    }

    /// What an IO performer answers for a call that was its caller's to handle inline
    /// (`Reply`, `StartRun`, `Later`): a shell bug, refused rather than lost.
    pub fn answered_by_caller() -> Reply {
        Reply::err(ErrorShape::unavailable(msg::ANSWERED_BY_CALLER))
    }
}

/// A request answered from the session store.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreCall {
    SessionsList(SessionListQuery),
    ChatHistory(HistoryQuery),
    /// `chat.startup`: the history view plus the composer metadata.
    ChatStartup(HistoryQuery),
    /// `sessions.describe`: `(canonical key, agent id)`.
    SessionsDescribe(String, String),
    /// `sessions.subscribe` with list params: `{subscribed:true, list}`.
    SessionsSubscribeList(SessionListQuery),
    /// `tools.invoke` params (validated by the tool engine).
    ToolsInvoke(Option<Value>),
    /// `sessions.resolve`.
    SessionsResolve(crate::methods::lifecycle::Resolve),
    /// `sessions.create|patch|reset|delete`.
    SessionsMutation(crate::methods::lifecycle::Mutation),
    /// `sessions.cleanup`.
    SessionsCleanup(crate::methods::lifecycle::Cleanup),
    /// `usage.cost`, `sessions.usage`, … (the shell resolves the time zone first:
    /// [`StoreCall::resolve_zone`]).
    Usage(usage::UsageCall),
}

fn store_unavailable(e: &str) -> Reply {
    Reply::err(ErrorShape::unavailable(format!("session store unavailable: {e}")))
}

impl StoreCall {
    /// Resolve the time zone a usage call counts days in (`system`: the gateway's zone;
    /// `lookup`: an IANA zone) — IO the shell does before [`StoreCall::run`].
    pub fn resolve_zone(&mut self, system: &jiff::tz::TimeZone, lookup: &dyn Fn(&str) -> Option<jiff::tz::TimeZone>) {
        if let StoreCall::Usage(u) = self {
            u.resolve_zone(system, lookup);
        }
    }

    /// Answer from `store` (`None`: the store could not be opened). Blocking.
    pub fn run(self, hub: &Hub, store: Option<&dyn SessionStore>, now_ms: u64) -> Reply {
        let api = hub.settings().api.clone();
        let defaults = sessions::session_defaults(&api);
        let startup = matches!(self, StoreCall::ChatStartup(_));
        match self {
            StoreCall::Usage(u) => u.run(&api, store, now_ms),
            StoreCall::SessionsResolve(r) => r.run(store),
            StoreCall::SessionsMutation(m) => m.run(hub, store, now_ms),
            StoreCall::SessionsCleanup(c) => c.run(store),
            StoreCall::ToolsInvoke(params) => {
                let version = hub.info().version.clone();
                tools::ws_invoke(params.as_ref(), &ToolsContext::from_api(&api, &version, now_ms), &StoreHost { store, api: &api })
            }
            StoreCall::SessionsList(q) => {
                let Some(store) = store else { return store_unavailable("not open") };
                match store.list(&q) {
                    Ok(page) => Reply::Ok(Some(sessions::sessions_list_payload(&q, &page, &defaults, &store.path(), now_ms))),
                    Err(e) => store_unavailable(&e),
                }
            }
            StoreCall::SessionsSubscribeList(q) => match StoreCall::SessionsList(q).run(hub, store, now_ms) {
                Reply::Ok(list) => Reply::Ok(Some(json!({"subscribed": true, "list": list}))),
                other => other,
            },
            StoreCall::ChatHistory(q) | StoreCall::ChatStartup(q) => {
                // No store (in-memory callers): the answer for an empty store.
                let read = match store {
                    Some(store) => store.session(&q.session_key).and_then(|s| Ok((s, store.history(&q.session_key, q.limit, q.offset)?))),
                    None if startup => Ok((None, Default::default())),
                    None => return store_unavailable("not open"),
                };
                match read {
                    Ok((session, page)) => {
                        let mut p = sessions::chat_history_payload(&q, session.as_ref(), &page, &defaults);
                        let active = hub.active_run_ids(&q.session_key);
                        let row =
                            crate::methods::ui::live_session_row(&q.session_key, &q.agent_id, session.as_ref(), &api, &active, now_ms);
                        crate::methods::ui::complete_chat_view(&mut p, &api, &q.agent_id, row, startup);
                        Reply::Ok(Some(p))
                    }
                    Err(e) => store_unavailable(&e),
                }
            }
            StoreCall::SessionsDescribe(key, agent_id) => {
                let read = match store {
                    Some(store) => store.session(&key),
                    None => Ok(None),
                };
                match read {
                    Ok(Some(s)) => {
                        let active = hub.active_run_ids(&key);
                        let row = crate::methods::ui::live_session_row(&key, &agent_id, Some(&s), &api, &active, now_ms);
                        Reply::Ok(Some(json!({"session": row})))
                    }
                    Ok(None) => Reply::Ok(Some(json!({"session": null}))),
                    Err(e) => store_unavailable(&e),
                }
            }
        }
    }
}

/// `sessions.describe` params (the reference's `SessionsDescribeParamsSchema`): the session's
/// canonical key and agent.
fn sessions_describe_params(hub: &Hub, params: Option<&Value>) -> Result<(String, String), ErrorShape> {
    let ne = json!({"type": "string", "minLength": 1});
    let schema = json!({
        "type": "object",
        "required": ["key"],
        "properties": {"key": ne, "agentId": ne, "includeDerivedTitles": {"type": "boolean"}, "includeLastMessage": {"type": "boolean"}},
        "additionalProperties": false,
    });
    validate_params("sessions.describe", &schema, params)?;
    let p = params.cloned().unwrap_or_default();
    let key = p["key"].as_str().unwrap_or_default();
    sessions::resolve_session_key(key, p.get("agentId").and_then(Value::as_str), &hub.settings().api.agents)
}

/// `chat.send`: start a run on the session, answered at once with `{runId, status:"started"}`
/// (the reply arrives as `chat`/`agent` events); `/stop` aborts the session's runs.
fn chat_send(hub: &Hub, d: &Dispatch, now: Instant, unix_ms: u64) -> Call {
    let agents = hub.settings().api.agents.clone();
    match crate::agent::parse_chat_send_params(d.params.as_ref(), &agents) {
        Err(e) => Call::Reply(Reply::err(e)),
        Ok(ChatSend::Stop { session_key }) => {
            let ids = hub.abort_runs(&session_key, None);
            Call::Reply(Reply::Ok(Some(json!({"ok": true, "aborted": !ids.is_empty(), "runIds": ids}))))
        }
        Ok(ChatSend::Run(spec)) => {
            let run_id = spec.run_id.clone();
            match hub.start_unowned_run(spec, now, unix_ms) {
                Ok(run) => Call::StartRun { reply: Reply::Ok(Some(json!({"runId": run_id, "status": "started"}))), run },
                Err(None) => Call::Reply(Reply::Ok(Some(json!({"runId": run_id, "status": "in_flight"})))),
                Err(Some(status)) => Call::Reply(Reply::Ok(Some(json!({"runId": run_id, "status": status})))),
            }
        }
    }
}

/// `chat.abort`: stop the session's running runs (only `runId` when given):
/// `{ok:true, aborted, runIds}`.
fn chat_abort(hub: &Hub, d: &Dispatch) -> Reply {
    let (key, run_id) = match crate::agent::parse_chat_abort_params(d.params.as_ref()) {
        Ok(p) => p,
        Err(e) => return Reply::err(e),
    };
    if let Some(id) = &run_id {
        let session = hub.with_runs(|runs| runs.running_session(id).map(|s| (s.session_key.clone(), s.agent_id.clone())));
        match session {
            None => return Reply::Ok(Some(json!({"ok": true, "aborted": false, "runIds": []}))),
            Some((k, agent)) if sessions::canonical_session_key(&k, &agent) != sessions::canonical_session_key(&key, &agent) => {
                return Reply::err(ErrorShape::invalid_request("runId does not match sessionKey"));
            }
            Some(_) => {}
        }
    }
    let ids = hub.abort_runs(&key, run_id.as_deref());
    Reply::Ok(Some(json!({"ok": true, "aborted": !ids.is_empty(), "runIds": ids})))
}

fn config_write_params(method: &str, params: Option<&Value>) -> Result<crate::config::file::ConfigWrite, ErrorShape> {
    use crate::config::file::WriteKind;
    let kind = match method {
        "config.patch" => WriteKind::Patch,
        "config.set" => WriteKind::Set,
        _ => WriteKind::Apply,
    };
    // `config.set` is closed to `raw` and `baseHash` (operator §2.4: `note` is rejected).
    let schema = if kind == WriteKind::Set {
        json!({
            "type": "object",
            "required": ["raw"],
            "properties": {"raw": {"type": "string", "minLength": 1}, "baseHash": {"type": "string", "minLength": 1}},
            "additionalProperties": false,
        })
    } else {
        json!({
            "type": "object",
            "required": ["raw"],
            "properties": {"raw": {"type": "string"}, "baseHash": {"type": "string", "minLength": 1}, "note": {"type": "string"}, "sessionKey": {"type": "string"}, "restartDelayMs": {"type": "integer", "minimum": 0}},
            "additionalProperties": false,
        })
    };
    validate_params(method, &schema, params)?;
    let p = params.cloned().unwrap_or_default();
    Ok(crate::config::file::ConfigWrite {
        kind,
        raw: p["raw"].as_str().unwrap_or_default().to_string(),
        base_hash: p.get("baseHash").and_then(Value::as_str).map(str::to_string),
    })
}

/// Route one authorized request (spec §6.3 step 8 for unknown methods).
pub fn dispatch(hub: &Hub, d: &Dispatch, now: Instant, unix_ms: u64) -> Call {
    match d.method.as_str() {
        "agent" => match hub.start_run(&d.caller.conn_id, &d.request_id, d.params.as_ref(), now, unix_ms) {
            Start::Accepted { reply, run } => Call::StartRun { reply, run },
            Start::Answer(reply) => Call::Reply(reply),
        },
        "agent.wait" => match hub.wait_run(&d.caller.conn_id, &d.request_id, d.params.as_ref(), now) {
            Some(reply) => Call::Reply(reply),
            None => Call::Later,
        },
        "config.get" => {
            match validate_params("config.get", &json!({"type":"object","properties":{},"additionalProperties":false}), d.params.as_ref()) {
                Ok(()) => Call::ConfigGet,
                Err(e) => Call::Reply(Reply::err(e)),
            }
        }
        "config.patch" | "config.apply" | "config.set" => match config_write_params(&d.method, d.params.as_ref()) {
            Ok(w) => Call::ConfigWrite(w),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "chat.send" => chat_send(hub, d, now, unix_ms),
        "chat.abort" => Call::Reply(chat_abort(hub, d)),
        "tools.catalog" => Call::Reply(tools::ws_catalog(d.params.as_ref(), &hub.settings().api.agents)),
        "tools.invoke" => Call::Store(StoreCall::ToolsInvoke(d.params.clone())),
        "sessions.cleanup" => match crate::methods::lifecycle::parse_cleanup(d.params.as_ref(), &hub.settings().api.agents) {
            Ok(c) => Call::Store(StoreCall::SessionsCleanup(c)),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "sessions.compact" => match crate::methods::lifecycle::parse_compact(d.params.as_ref(), &hub.settings().api.agents) {
            Ok(c) => Call::Compact(c),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        m @ ("sessions.create" | "sessions.patch" | "sessions.reset" | "sessions.delete") => {
            let api = hub.settings().api.clone();
            match crate::methods::lifecycle::parse_mutation(m, d.params.as_ref(), &api, unix_ms, &mut || hub.random_uuid()) {
                Ok(mutation) => Call::Store(StoreCall::SessionsMutation(mutation)),
                Err(e) => Call::Reply(Reply::err(e)),
            }
        }
        m if m.starts_with("cron.") && ADVERTISED_METHODS.contains(&m) => match cron::parse(m, d.params.as_ref()) {
            Ok(c) => Call::Cron(c),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "sessions.resolve" => match crate::methods::lifecycle::parse_resolve(d.params.as_ref(), &hub.settings().api.agents) {
            Ok(r) => Call::Store(StoreCall::SessionsResolve(r)),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        m @ ("usage.cost" | "sessions.usage" | "sessions.usage.timeseries" | "sessions.usage.logs") => {
            match usage::parse(m, d.params.as_ref()) {
                Some(Ok(u)) => Call::Store(StoreCall::Usage(u)),
                Some(Err(e)) => Call::Reply(Reply::err(e)),
                None => Call::Reply(state_reply(hub, d, now, unix_ms)),
            }
        }
        "logs.tail" => match crate::logs::parse_tail_params(d.params.as_ref()) {
            Ok(p) => Call::LogsTail(p),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "sessions.list" => match sessions::parse_sessions_list_params(d.params.as_ref(), &hub.settings().api.agents, unix_ms) {
            Ok(q) => Call::Store(StoreCall::SessionsList(q)),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "chat.history" => match sessions::parse_chat_history_params(d.params.as_ref(), &hub.settings().api.agents) {
            Ok(q) => Call::Store(StoreCall::ChatHistory(q)),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "chat.startup" => match sessions::parse_chat_startup_params(d.params.as_ref(), &hub.settings().api.agents) {
            Ok(q) => Call::Store(StoreCall::ChatStartup(q)),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "sessions.describe" => match sessions_describe_params(hub, d.params.as_ref()) {
            Ok((key, agent)) => Call::Store(StoreCall::SessionsDescribe(key, agent)),
            Err(e) => Call::Reply(Reply::err(e)),
        },
        "sessions.subscribe" | "sessions.messages.subscribe" | "sessions.messages.unsubscribe" => {
            match crate::methods::ui::subscribe(hub, d, unix_ms) {
                Ok(crate::methods::ui::Subscribe::Done(v)) => Call::Reply(Reply::Ok(Some(v))),
                Ok(crate::methods::ui::Subscribe::WithList(q)) => Call::Store(StoreCall::SessionsSubscribeList(q)),
                Err(e) => Call::Reply(Reply::err(e)),
            }
        }
        "device.pair.approve"
        | "device.pair.reject"
        | "device.pair.remove"
        | "device.pair.rename"
        | "device.token.rotate"
        | "device.token.revoke" => match crate::methods::pairing::call(hub, d, unix_ms) {
            Some((reply, close)) => Call::PersistDevices(reply, close),
            None => Call::Reply(state_reply(hub, d, now, unix_ms)),
        },
        "secrets.reload" => match validate_params(
            "secrets.reload",
            &json!({"type":"object","properties":{},"additionalProperties":false}),
            d.params.as_ref(),
        ) {
            Ok(()) => Call::SecretsReload,
            Err(e) => Call::Reply(Reply::err(e)),
        },
        m @ ("secrets.store.list" | "secrets.store.set" | "secrets.store.delete") => {
            match secret_store::parse(m, d.params.as_ref(), &d.caller) {
                Ok(c) => Call::SecretStore(c),
                Err(e) => Call::Reply(Reply::err(e)),
            }
        }
        _ => Call::Reply(state_reply(hub, d, now, unix_ms)),
    }
}

/// Perform a dispatched request where there is no IO: the in-memory conformance runner, the
/// fuzz targets and core's tests. The same [`dispatch`] the shells call, its IO answered as a
/// process without a store or files would: an empty session store, runs that need a provider
/// never finish, config writes refused. A run's accepted answer raises the run-ack barrier as on
/// a socket ([`ServerConnection::complete_run_start`]); `Later` answers come through the sink.
pub fn perform_without_io(conn: &mut ServerConnection, hub: &Hub, d: &Dispatch, now: Instant, unix_ms: u64) {
    match dispatch(hub, d, now, unix_ms) {
        Call::Reply(reply) => conn.complete(&d.request_id, reply),
        Call::PersistDevices(reply, close) => {
            conn.complete(&d.request_id, reply);
            if let Some((code, reason)) = close {
                conn.handle_mail(now, crate::connection::Mail::Close(code, reason.to_string()), 0);
            }
        }
        Call::StartRun { reply, run } => {
            conn.complete_run_start(now, &d.request_id, reply);
            run_without_io(hub, &run, now, unix_ms);
        }
        Call::Store(job) => conn.complete(&d.request_id, job.run(hub, None, unix_ms)),
        Call::Later => {}
        // No file in memory: the answer for a gateway whose log has no file yet.
        Call::LogsTail(p) => conn.complete(&d.request_id, Reply::Ok(Some(crate::logs::tail::no_file_result(&p, "")))),
        Call::ConfigGet => {
            let s = hub.settings();
            let v = crate::config::view::get_result(&s, &hub.info().config_path, crate::config::view::FileOnDisk::Unread);
            conn.complete(&d.request_id, Reply::Ok(Some(v)));
        }
        // No store in memory: nothing to compact.
        Call::Compact(c) => match c.plan(&hub.settings().api, None, &[], String::new()) {
            crate::methods::lifecycle::CompactPlan::Answer(reply) => conn.complete(&d.request_id, reply),
            crate::methods::lifecycle::CompactPlan::Summarize { .. } | crate::methods::lifecycle::CompactPlan::Truncate { .. } => {}
        },
        // In memory: the hub's scheduler, with no store (nothing survives the process) and no
        // agent runs (a started run ends at once, failed).
        Call::Cron(cron::CronCall::Runs(q)) => conn.complete(&d.request_id, Reply::Ok(Some(cron::runs_result(&q, Vec::new(), 0)))),
        Call::Cron(c) => {
            let boot_id = hub.info().boot_id.clone();
            let (answer, mut outs) = cron::apply_on_hub(hub, c, crate::cron::Zones::utc_only(), unix_ms, &boot_id, "");
            // No agent runs here: a started run ends at once, failed.
            let mut i = 0;
            while i < outs.len() {
                if let crate::cron::CronOutput::Start(r) = &outs[i] {
                    let (job, run) = (r.job.id.clone(), r.run_id.clone());
                    outs.extend(hub.with_cron(|s| {
                        s.handle_finished(&job, &run, crate::cron::RunResult::failed("runs need the gateway process"), unix_ms);
                        s.drain_outputs()
                    }));
                }
                i += 1;
            }
            for o in outs {
                match o {
                    crate::cron::CronOutput::Event(payload) => hub.broadcast_to("cron", &payload, crate::gateway::Audience::Everyone),
                    crate::cron::CronOutput::Heartbeat(payload) => {
                        hub.broadcast_to("heartbeat", &payload, crate::gateway::Audience::Everyone)
                    }
                    _ => {}
                }
            }
            conn.complete(&d.request_id, answer.map_or_else(Reply::err, |v| Reply::Ok(Some(v))));
        }
        // No store file in memory: an empty listing; writes have nowhere to go.
        Call::SecretStore(secret_store::SecretStoreCall::List) => {
            conn.complete(&d.request_id, Reply::Ok(Some(secret_store::list_result(&[]))))
        }
        Call::SecretStore(_) => conn.complete(&d.request_id, secret_store::store_failed(&d.method)),
        Call::ConfigWrite(_) | Call::SecretsReload => {
            let e = ErrorShape::unavailable(format!("{} needs the gateway process", d.method));
            conn.complete(&d.request_id, Reply::err(e));
        }
    }
}

/// The methods answered from the hub's state alone. Unknown methods (reachable only with
/// `operator.admin`) answer `unknown method: <name>` (spec §6.3 step 8).
fn state_reply(hub: &Hub, d: &Dispatch, now: Instant, unix_ms: u64) -> Reply {
    let params = d.params.as_ref();
    match d.method.as_str() {
        m if m.starts_with("device.pair.") || m.starts_with("device.token.") => {
            if let Some((reply, _)) = crate::methods::pairing::call(hub, d, unix_ms) {
                return reply;
            }
        }
        _ => {}
    }
    let result = match d.method.as_str() {
        "health" => {
            // The cached snapshot's text is spliced into the response as is (no tree copy, no
            // second serialization).
            let force = params.and_then(|p| p.get("probe")).and_then(Value::as_bool) == Some(true);
            return Reply::OkJson(hub.health_json(now, unix_ms, force));
        }
        "status" => Ok(status(hub, d, now)),
        "usage.status" => Ok(usage::status(unix_ms)),
        "sessions.catalog.list" => crate::methods::lifecycle::catalog_list(params),
        "commands.list" => crate::methods::lifecycle::commands_list(params),
        // Diagnostics (operator §4): system.info's params are closed, the others ignore theirs.
        "system.info" => validate_params("system.info", &json!({"type":"object","properties":{},"additionalProperties":false}), params)
            .map(|()| hub.system_info(now)),
        "diagnostics.lanes" => Ok(hub.lanes(unix_ms)),
        // The last `heartbeat` event (null before the first, as the reference).
        "last-heartbeat" => Ok(hub.with_cron(|s| s.last_heartbeat().cloned()).unwrap_or(Value::Null)),
        "set-heartbeats" => match params.and_then(|p| p.get("enabled")).and_then(Value::as_bool) {
            Some(enabled) => {
                hub.with_cron(|s| s.set_heartbeats(enabled));
                Ok(json!({"ok": true, "enabled": enabled}))
            }
            None => Err(ErrorShape::invalid_request("invalid set-heartbeats params: enabled (boolean) required")),
        },
        "diagnostics.stability" => Ok(hub.stability(params, unix_ms)),
        "system-presence" => Ok(Value::Array(hub.presence_list(now, unix_ms))),
        "channels.status" => return channels::status(hub, params, unix_ms),
        "channels.pairing.list" => return channels::pairing_list(params),
        "config.schema" => validate_params("config.schema", &json!({"type":"object","properties":{},"additionalProperties":false}), params)
            .map(|()| crate::config::schema::schema_result(&hub.info().version, &crate::logs::line::iso_utc(unix_ms))),
        "config.schema.lookup" => crate::config::schema::parse_lookup_params(params).and_then(|p| crate::config::schema::lookup(&p)),
        "models.list" => Ok(models_list(&hub.settings().api)),
        "connect" => Err(ErrorShape::invalid_request(msg::CONNECT_ONLY_FIRST)),
        // What clawgate does not host, the UI's session views and cheap answers; anything else
        // is unknown.
        m => match crate::methods::absent::call(&hub.settings().api, m, params, unix_ms)
            .or_else(|| crate::methods::ui::call(&hub.settings().api, m, params, unix_ms))
        {
            Some(r) => r,
            None => Err(ErrorShape::invalid_request(format!("unknown method: {m}"))),
        },
    };
    match result {
        Ok(v) => Reply::Ok(Some(v)),
        Err(e) => Reply::err(e),
    }
}

/// `models.list`: the configured providers' models (the Control UI's model picker; admin RPC).
/// Only `openai-completions` providers are served; a model is `available` when its provider's
/// key resolved (or it needs none).
pub fn models_list(api: &crate::config::api::ApiConfig) -> Value {
    let default = api.default_model.clone().unwrap_or_default();
    let mut models = Vec::new();
    for p in api.providers.values().filter(|p| p.api == "openai-completions") {
        for (id, _) in &p.models {
            let mut m = json!({
                "id": id, "name": p.model_names.get(id).cloned().unwrap_or_else(|| id.clone()), "provider": p.id,
                "reasoning": false, "thinkingLevels": [{"id": "off", "label": "off"}], "thinkingDefault": "off",
                "available": p.api_key_error.is_none(),
            });
            if let Some(cw) = p.context_windows.get(id) {
                m["contextWindow"] = json!(cw);
            }
            if default == format!("{}/{id}", p.id) {
                m["tags"] = json!(["default"]);
            }
            models.push(m);
        }
    }
    json!({"models": models, "accountSelection": {"kind": "automatic", "label": "Automatic account selection"}})
}

#[cfg(test)]
mod models_list_tests {
    use super::*;

    #[test]
    fn configured_models_with_the_default_tagged() {
        let cfg = json!({
            "models": {"providers": {"fake": {"baseUrl": "http://x/v1", "apiKey": "k", "api": "openai-completions",
                "models": [{"id": "fake-model", "name": "Fake Model", "contextWindow": 128000}, {"id": "fake-model-2"}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
        });
        let api = crate::config::api::ApiConfig::from_config(&cfg, &Default::default());
        let v = models_list(&api);
        let m = &v["models"];
        assert_eq!(m[0]["id"], "fake-model");
        assert_eq!(
            (m[0]["name"].clone(), m[0]["contextWindow"].clone(), m[0]["tags"].clone()),
            (json!("Fake Model"), json!(128000), json!(["default"]))
        );
        assert_eq!((m[1]["name"].clone(), m[1].get("tags")), (json!("fake-model-2"), None));
        assert_eq!(m[1]["available"], true);
        assert_eq!(v["accountSelection"]["kind"], "automatic");
    }
}
