//! The gateway's process state as plain `&mut` data: its sub-states (connections and
//! subscriptions, admission, limiters, presence, health, devices, runs, timers) and the
//! operations that span several of them. Nothing here locks, blocks or calls a mailbox: what
//! sockets must be handed goes to `outbox` (in order), performed by the [`super::Hub`] handle
//! once the lock is released.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ServerInfo;
use super::admission::PreauthSlots;
use super::connections::{Audience, Broadcast, ConnAuth, Connections, Delivery, ToConn};
use super::devices::{Devices, PairAttempt, PairEvent};
use super::diagnostics::Diagnostics;
use super::health::Health;
use super::presence::{self, Presence};
use crate::agent::{Outcome, RunSpec, RunState, Runs, Waiter};
use crate::auth::device::DeviceToken;
use crate::auth::scopes::{event_allowed, event_gate};
use crate::auth::{HookAuthLimiter, RateLimitPolicy, RateLimiter};
use crate::config::settings::GatewaySettings;
use crate::wire::{ErrorShape, Reply, StateVersion, close_code};

/// What [`HubState::swap_settings`] did to the connected sockets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SettingsSwap {
    /// Sockets closed (including the deferred one).
    pub closed: usize,
    /// The close owed to the deferred socket, to send after its reply.
    pub deferred_close: Option<(u16, &'static str)>,
}

/// What `hello-ok.snapshot` needs from the hub.
#[derive(Debug, Clone)]
pub struct HelloSnapshot {
    pub presence: Vec<Value>,
    /// The health snapshot serialized (the hub's cached text: `hello-ok.snapshot.health` and the
    /// post-connect `health` event's payload).
    pub health_json: Arc<str>,
    pub state_version: StateVersion,
}

pub(crate) fn browser_policy(p: RateLimitPolicy) -> RateLimitPolicy {
    RateLimitPolicy { exempt_loopback: false, ..p }
}

pub(crate) struct HubState {
    pub(crate) settings: Arc<GatewaySettings>,
    pub(crate) conns: Connections,
    pub(crate) admission: PreauthSlots,
    pub(crate) limiter: RateLimiter,
    pub(crate) browser_limiter: RateLimiter,
    /// The hooks' own failed-auth limiter (spec http §4.6, §6.8).
    pub(crate) hook_limiter: HookAuthLimiter,
    pub(crate) presence: Presence,
    pub(crate) state_version: StateVersion,
    pub(crate) health: Health,
    pub(crate) devices: Devices,
    pub(crate) runs: Runs,
    pub(crate) diagnostics: Diagnostics,
    /// The cron scheduler (operator §6); the shell drives it through [`super::Hub::with_cron`].
    pub(crate) cron: crate::cron::Scheduler,
    next_tick: Instant,
    next_health: Instant,
    /// The last `(now, unix_ms)` pair the shell gave: wall-clock ms for an `Instant`.
    pub(crate) now_unix: (Instant, u64),
    /// What sockets must be handed, in order.
    pub(crate) outbox: Vec<Delivery>,
}

/// The close reason of a device's sockets when its tokens change (4001).
pub(crate) const DEVICE_REMOVED: &str = crate::wire::msg::DEVICE_REMOVED;

impl HubState {
    pub(crate) fn new(settings: Arc<GatewaySettings>, now: Instant, unix_ms: u64) -> HubState {
        let policy = settings.auth.rate_limit;
        let limits = settings.limits;
        HubState {
            conns: Connections::default(),
            admission: PreauthSlots::default(),
            limiter: RateLimiter::new(policy),
            browser_limiter: RateLimiter::new(browser_policy(policy)),
            hook_limiter: HookAuthLimiter::new(),
            presence: Presence::default(),
            state_version: StateVersion { presence: 1, health: 1 },
            health: Health::default(),
            devices: Devices::default(),
            runs: Runs::default(),
            diagnostics: Diagnostics::default(),
            cron: crate::cron::Scheduler::new(),
            next_tick: now + limits.tick_interval,
            next_health: now + limits.health_interval,
            now_unix: (now, unix_ms),
            outbox: Vec::new(),
            settings,
        }
    }

    /// Fan an event out to every authenticated socket allowed to see it (in `audience`).
    pub(crate) fn broadcast(
        &mut self,
        event: &str,
        payload: Option<String>,
        drop_if_slow: bool,
        sv: Option<StateVersion>,
        audience: Audience<'_>,
    ) {
        let b = Broadcast { event: event.to_string(), payload, gate: event_gate(event), drop_if_slow, state_version: sv };
        self.conns.fan_out(&mut self.outbox, b, audience);
    }

    fn pair_event(&mut self, event: Option<PairEvent>) {
        if let Some((name, payload)) = event {
            self.broadcast(name, Some(payload.to_string()), false, None, Audience::Everyone);
        }
    }

    // ---- settings ------------------------------------------------------------------------

    /// Swap the settings and close the sockets they no longer admit (spec §6.4 live-connection
    /// effects): shared-secret sockets after a secret rotation (4001 "gateway auth changed"),
    /// every socket after a change of who may vouch for a client (§4.7, "gateway policy
    /// changed"), browser sockets whose origin is no longer allowed (1008). The socket
    /// `deferred` (the caller of `secrets.reload`) is not closed: its close is returned so the
    /// shell can send the caller its reply first.
    pub(crate) fn swap_settings(&mut self, settings: Arc<GatewaySettings>, deferred: Option<&str>) -> SettingsSwap {
        let old = std::mem::replace(&mut self.settings, settings.clone());
        self.limiter.update_policy(settings.auth.rate_limit);
        self.browser_limiter.update_policy(browser_policy(settings.auth.rate_limit));
        let rotated =
            old.auth.mode != settings.auth.mode || old.auth.token != settings.auth.token || old.auth.password != settings.auth.password;
        let policy_changed = old.trusted_proxies != settings.trusted_proxies
            || old.allow_real_ip_fallback != settings.allow_real_ip_fallback
            || old.trusted_proxy != settings.trusted_proxy;
        let mut swap = SettingsSwap::default();
        let mut closes = Vec::new();
        for (id, a) in self.conns.authenticated() {
            let close = if rotated && matches!(a.method, "token" | "password") {
                Some((close_code::CLIENT_INVALIDATED, "gateway auth changed"))
            } else if policy_changed {
                Some((close_code::CLIENT_INVALIDATED, "gateway policy changed"))
            } else if let Some(origin) = &a.origin {
                let ok = crate::auth::origin::check_origin(
                    origin,
                    a.host.as_deref(),
                    &settings.control_ui_allowed_origins,
                    settings.host_header_origin_fallback,
                    a.local,
                )
                .is_ok();
                (!ok).then_some((close_code::POLICY_VIOLATION, "origin not allowed"))
            } else {
                None
            };
            let Some((code, reason)) = close else { continue };
            swap.closed += 1;
            if deferred == Some(id) {
                swap.deferred_close = Some((code, reason));
            } else {
                closes.push((id.to_string(), ToConn::Close { code, reason }));
            }
        }
        for (id, what) in closes {
            self.conns.to(&mut self.outbox, &id, what);
        }
        swap
    }

    // ---- connections and presence ----------------------------------------------------------

    /// Forget a connection; its presence row (if any) turns into a `disconnect` row.
    pub(crate) fn unregister(&mut self, info: &ServerInfo, conn_id: &str, now: Instant, unix_ms: u64) {
        let was_authenticated = self.conns.remove(conn_id);
        let ttl = self.settings.limits.presence_ttl;
        if was_authenticated && self.presence.disconnect(conn_id, now + ttl, unix_ms) {
            self.broadcast_presence(info, now, unix_ms);
        }
    }

    pub(crate) fn presence_list(&mut self, info: &ServerInfo, now: Instant, unix_ms: u64) -> Vec<Value> {
        self.presence.list(presence::own_row(info, unix_ms), now, self.settings.limits.presence_max)
    }

    fn broadcast_presence(&mut self, info: &ServerInfo, now: Instant, unix_ms: u64) {
        self.state_version.presence += 1;
        let payload = json!({ "presence": self.presence_list(info, now, unix_ms) }).to_string();
        let sv = self.state_version;
        self.broadcast("presence", Some(payload), true, Some(sv), Audience::Everyone);
    }

    /// Mark a socket authenticated; adds its presence row (and broadcasts it) when tracked.
    /// Returns the hello-ok snapshot pieces as seen by this socket.
    pub(crate) fn mark_authenticated(
        &mut self,
        info: &ServerInfo,
        conn_id: &str,
        auth: ConnAuth,
        presence: Option<Value>,
        now: Instant,
        unix_ms: u64,
    ) -> HelloSnapshot {
        self.now_unix = (now, unix_ms);
        let viewer_can_read = event_allowed(auth.role, &auth.scopes, &event_gate("presence"));
        self.conns.authenticate(conn_id, auth);
        if let Some(entry) = presence {
            self.presence.connect(conn_id, entry, unix_ms);
            self.broadcast_presence(info, now, unix_ms);
        }
        let h = self.health.snapshot(&self.settings, now, unix_ms, false);
        let health_json = h.json.clone();
        HelloSnapshot {
            presence: if viewer_can_read { self.presence_list(info, now, unix_ms) } else { Vec::new() },
            health_json,
            state_version: self.state_version,
        }
    }

    // ---- devices ---------------------------------------------------------------------------

    pub(crate) fn pair_device(&mut self, info: &ServerInfo, a: &PairAttempt<'_>, unix_ms: u64) -> Result<DeviceToken, ErrorShape> {
        let (result, event) = self.devices.pair(&info.secret_seed, a, unix_ms);
        self.pair_event(event);
        result
    }

    pub(crate) fn device_pair_approve(
        &mut self,
        info: &ServerInfo,
        request_id: &str,
        caller_scopes: &[String],
        unix_ms: u64,
    ) -> Result<Value, ErrorShape> {
        let (result, event) = self.devices.approve(&info.secret_seed, request_id, caller_scopes, unix_ms)?;
        self.pair_event(Some(event));
        Ok(result)
    }

    pub(crate) fn device_pair_reject(&mut self, request_id: &str, unix_ms: u64) -> Result<Value, ErrorShape> {
        let (result, event) = self.devices.reject(request_id, unix_ms)?;
        self.pair_event(Some(event));
        Ok(result)
    }

    /// `device.pair.remove`; the device's open sockets close with 4001 "device removed".
    pub(crate) fn device_pair_remove(
        &mut self,
        device_id: &str,
        caller_conn: &str,
        caller_scopes: &[String],
    ) -> Result<(Value, bool), ErrorShape> {
        let result = self.devices.remove(device_id, self.conns.auth(caller_conn), caller_scopes)?;
        let close_caller = self.close_device_sockets(device_id, caller_conn);
        Ok((result, close_caller))
    }

    /// Close every socket that proved `device_id` (4001 "device removed"). The caller's own is
    /// left to the caller, which closes it after sending its answer (as the reference does):
    /// `true` when the caller is one of them.
    fn close_device_sockets(&mut self, device_id: &str, caller_conn: &str) -> bool {
        let sockets: Vec<String> =
            self.conns.authenticated().filter(|(_, a)| a.device_id.as_deref() == Some(device_id)).map(|(id, _)| id.to_string()).collect();
        let mut caller = false;
        for id in sockets {
            if id == caller_conn {
                caller = true;
                continue;
            }
            self.conns.to(&mut self.outbox, &id, ToConn::Close { code: close_code::CLIENT_INVALIDATED, reason: DEVICE_REMOVED });
        }
        caller
    }

    pub(crate) fn device_pair_rename(&mut self, device_id: &str, label: &str) -> Result<Value, ErrorShape> {
        let (result, event) = self.devices.rename(device_id, label)?;
        self.pair_event(Some(event));
        Ok(result)
    }

    /// `device.token.rotate`: a new token; the device's sockets close (they hold the old one).
    pub(crate) fn device_token_rotate(
        &mut self,
        info: &ServerInfo,
        device_id: &str,
        role: &str,
        scopes: Option<&[String]>,
        caller_conn: &str,
        unix_ms: u64,
    ) -> Result<(Value, bool), ErrorShape> {
        let caller = self.conns.auth(caller_conn).cloned();
        let result = self.devices.rotate(&info.secret_seed, device_id, role, scopes, caller.as_ref(), unix_ms)?;
        let close_caller = self.close_device_sockets(device_id, caller_conn);
        Ok((result, close_caller))
    }

    /// `device.token.revoke`: the token stops working; the device's sockets close.
    pub(crate) fn device_token_revoke(
        &mut self,
        device_id: &str,
        role: &str,
        caller_conn: &str,
        unix_ms: u64,
    ) -> Result<(Value, bool), ErrorShape> {
        let result = self.devices.revoke(device_id, role, unix_ms)?;
        let close_caller = self.close_device_sockets(device_id, caller_conn);
        Ok((result, close_caller))
    }

    pub(crate) fn device_pair_list(&self) -> Value {
        self.devices.store.list_json(&|id| self.conns.device_connected(id))
    }

    // ---- timers ----------------------------------------------------------------------------

    /// Next global deadline (tick, health refresh, `agent.wait` timeouts).
    pub(crate) fn poll_timeout(&self) -> Instant {
        let waiters = self
            .runs
            .runs
            .values()
            .filter_map(|r| if let RunState::Running { waiters, .. } = &r.state { waiters.iter().map(|w| w.deadline).min() } else { None })
            .min();
        let t = self.next_tick.min(self.next_health);
        waiters.map_or(t, |w| t.min(w))
    }

    /// Fire due global timers: `agent.wait` timeouts, a `health` refresh every 60 s, `tick`
    /// every 30 s.
    pub(crate) fn handle_timeout(&mut self, now: Instant, unix_ms: u64) {
        self.now_unix = (now, unix_ms);
        self.expire_waiters(now);
        let limits = self.settings.limits;
        if now >= self.next_health {
            while self.next_health <= now {
                self.next_health += limits.health_interval;
            }
            let json = self.health.snapshot(&self.settings, now, unix_ms, true).json.to_string();
            self.state_version.health += 1;
            let sv = self.state_version;
            self.broadcast("health", Some(json), true, Some(sv), Audience::Everyone);
        }
        if now >= self.next_tick {
            while self.next_tick <= now {
                self.next_tick += limits.tick_interval;
            }
            self.broadcast("tick", Some(json!({ "ts": unix_ms }).to_string()), true, None, Audience::Everyone);
        }
    }

    pub(crate) fn until_next_tick(&self, now: Instant) -> Duration {
        self.next_tick.saturating_duration_since(now)
    }

    // ---- runs ------------------------------------------------------------------------------

    /// An `agent` event of a run (its per-run `seq` taken); the run's spec, `None` when unknown.
    fn run_event(&mut self, run_id: &str, stream: &str, data: Value, unix_ms: u64) -> Option<RunSpec> {
        let (spec, seq) = self.runs.next_seq(run_id)?;
        let payload = crate::agent::agent_event(&spec, stream, data, seq, unix_ms);
        self.broadcast("agent", Some(payload.to_string()), false, None, Audience::Everyone);
        Some(spec)
    }

    pub(crate) fn run_started(&mut self, run_id: &str, unix_ms: u64) {
        let Some(started_at) = self.runs.runs.get(run_id).map(|r| r.started_at) else { return };
        self.run_event(run_id, "lifecycle", json!({"phase": "start", "startedAt": started_at}), unix_ms);
    }

    pub(crate) fn begin_run(&mut self, run_id: &str, provider: Option<&str>, model: Option<&str>, unix_ms: u64) {
        let spec = self.run_event(run_id, "lifecycle", json!({"phase": "model", "provider": provider, "model": model}), unix_ms);
        if let Some(run) = self.runs.runs.get_mut(run_id) {
            run.model = (provider.map(str::to_string), model.map(str::to_string));
        }
        if let Some(spec) = spec {
            let diag = &mut self.diagnostics;
            diag.record(
                unix_ms,
                "session.state",
                json!({"outcome": "processing", "reason": "run_started", "sessionKey": spec.session_key}),
            );
            if provider.is_some() {
                diag.record(unix_ms, "model.call.started", json!({"provider": provider, "model": model, "runId": run_id}));
            }
        }
    }

    /// Streamed assistant text: an `agent` assistant event and a `chat` delta, each carrying the
    /// text so far (`data.text`, `message`), as the reference's events.
    pub(crate) fn run_delta(&mut self, run_id: &str, delta: &str, unix_ms: u64) {
        let Some(text) = self.runs.runs.get_mut(run_id).map(|r| {
            r.text.push_str(delta);
            r.text.clone()
        }) else {
            return;
        };
        let Some(spec) = self.run_event(run_id, "assistant", json!({"text": text, "delta": delta}), unix_ms) else { return };
        let seq = self.runs.runs.get(run_id).map(|r| r.seq).unwrap_or(0);
        let chat = json!({"runId": spec.run_id, "sessionKey": spec.session_key, "agentId": spec.agent_id, "seq": seq, "state": "delta",
            "deltaText": delta, "message": {"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": unix_ms}});
        self.broadcast("chat", Some(chat.to_string()), true, None, Audience::Everyone);
    }

    /// The model's output token count (`agent` stream `usage`: the UI's "N output tokens").
    pub(crate) fn run_usage(&mut self, run_id: &str, output_tokens: u64, unix_ms: u64) {
        if output_tokens > 0 {
            self.run_event(run_id, "usage", json!({"outputTokens": output_tokens}), unix_ms);
        }
    }

    /// The run ended: lifecycle and `chat` events, the final answer to the caller, `agent.wait`
    /// answers, and the result cached for idempotent replays.
    pub(crate) fn finish_run(&mut self, run_id: &str, outcome: Outcome, now: Instant, unix_ms: u64) {
        let Some(started_at) = self.runs.runs.get(run_id).map(|r| r.started_at) else { return };
        let data = crate::agent::lifecycle_end(&outcome, started_at, unix_ms);
        let Some(spec) = self.run_event(run_id, "lifecycle", data, unix_ms) else { return };
        let seq = self.runs.runs.get(run_id).map(|r| r.seq).unwrap_or(0);
        let chat = crate::agent::chat_end(&spec, seq, &outcome, unix_ms);
        self.broadcast("chat", Some(chat.to_string()), false, None, Audience::Everyone);
        let (reply, status, error) = crate::agent::final_reply(&spec, &outcome);
        let kind = match &outcome {
            Outcome::Ok { .. } => "model.call.completed",
            Outcome::Err { .. } => "model.call.failed",
            Outcome::Aborted { .. } => "run.aborted",
        };
        let (provider, model) = self.runs.runs.get(run_id).map(|r| r.model.clone()).unwrap_or_default();
        let diag = &mut self.diagnostics;
        let mut fields = json!({"provider": provider, "model": model, "runId": run_id, "durationMs": unix_ms.saturating_sub(started_at), "status": status});
        if let Some(e) = &error {
            fields["error"] = json!(e);
        }
        diag.record(unix_ms, kind, fields);
        diag.record(unix_ms, "session.state", json!({"outcome": "idle", "reason": "run_completed", "sessionKey": spec.session_key}));
        *diag.runs_finished.entry(status.to_string()).or_default() += 1;
        let Some(run) = self.runs.runs.get_mut(run_id) else { return };
        // Finished runs stay for idempotent replays; their streamed text is not needed.
        run.text = String::new();
        let previous = std::mem::replace(
            &mut run.state,
            RunState::Finished { reply: Box::new(reply.clone()), status, ended_at: unix_ms, error: error.clone(), at: now },
        );
        if let RunState::Running { owner, waiters } = previous {
            if let Some((conn_id, request_id)) = owner {
                self.conns.to(&mut self.outbox, &conn_id, ToConn::Complete { request_id, reply: Box::new(reply) });
            }
            let waited = wait_result(run_id, status, unix_ms, error.as_deref());
            for w in waiters {
                self.conns.to(&mut self.outbox, &w.conn_id, ToConn::Complete { request_id: w.request_id, reply: Box::new(waited.clone()) });
            }
        }
    }

    /// `agent.wait`: the result now if the run ended, else `None` (the answer comes through
    /// the socket's mailbox when it ends or the timeout passes).
    pub(crate) fn wait_run(&mut self, conn_id: &str, request_id: &str, run_id: String, timeout: Duration, now: Instant) -> Option<Reply> {
        match self.runs.runs.get_mut(&run_id).map(|r| &mut r.state) {
            Some(RunState::Finished { status, ended_at, error, .. }) => Some(wait_result(&run_id, status, *ended_at, error.as_deref())),
            Some(RunState::Running { waiters, .. }) => {
                waiters.push(Waiter { conn_id: conn_id.to_string(), request_id: request_id.to_string(), deadline: now + timeout });
                None
            }
            // Unknown run: nothing will finish it.
            None => Some(Reply::Ok(Some(json!({"runId": run_id, "status": "timeout"})))),
        }
    }

    fn expire_waiters(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for r in self.runs.runs.values_mut() {
            if let RunState::Running { waiters, .. } = &mut r.state {
                waiters.retain(|w| {
                    let due = now >= w.deadline;
                    if due {
                        expired.push((w.clone(), r.spec.run_id.clone()));
                    }
                    !due
                });
            }
        }
        for (w, run_id) in expired {
            let reply = Reply::Ok(Some(json!({"runId": run_id, "status": "timeout"})));
            self.conns.to(&mut self.outbox, &w.conn_id, ToConn::Complete { request_id: w.request_id, reply: Box::new(reply) });
        }
    }
}

fn wait_result(run_id: &str, status: &str, ended_at: u64, error: Option<&str>) -> Reply {
    let mut p = json!({"runId": run_id, "status": status, "endedAt": ended_at});
    if let Some(e) = error {
        p["error"] = json!(e);
    }
    Reply::Ok(Some(p))
}

/// Wall-clock ms at `now`, from a known `(at, unix)` pair.
pub(crate) fn unix_at(at: Instant, unix: u64, now: Instant) -> u64 {
    if now >= at {
        unix + now.duration_since(at).as_millis() as u64
    } else {
        unix.saturating_sub(at.duration_since(now).as_millis() as u64)
    }
}
