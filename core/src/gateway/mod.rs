//! Process-wide gateway state (quinn's `Endpoint` to [`crate::connection::ServerConnection`]'s
//! `Connection`): connections, presence, health, `stateVersion`, broadcast with scope gating,
//! the request-start queue, the failed-auth limiters, upgrade admission and draining.
//!
//! The state is plain `&mut` data in sub-states with their own tests ([`state::HubState`]:
//! `connections`, `admission`, `presence`, `health`, `devices`, the runs of
//! [`crate::agent`], `queue`). [`Hub`] is the shared handle every socket of both shells holds:
//! it owns the one lock around that state, runs each operation under it, and hands what the
//! operation decided for other sockets (events, late answers, closes) to their mailboxes after
//! the lock is released — in the order decided, so `stateVersion`s never arrive out of order.
//! Nothing in here blocks or does IO. Timers are driven by the shell through
//! [`Hub::poll_timeout`] and [`Hub::handle_timeout`].

mod admission;
mod connections;
mod devices;
mod diagnostics;
mod health;
mod presence;
mod queue;
mod state;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use self::admission::{Admission, HttpReject};
pub(crate) use self::connections::ConnAuth;
pub use self::connections::{Audience, Broadcast, EventSink};
pub(crate) use self::devices::PairAttempt;
pub use self::diagnostics::{HostFacts, STABILITY_CAPACITY, STABILITY_DEFAULT_LIMIT, stability_params};
pub use self::health::{DEGRADED_DELAY_P99_MS, DEGRADED_UTILIZATION, RuntimeStats};
pub use self::queue::RequestPermit;
use self::queue::RequestQueue;
use self::state::HubState;
pub use self::state::{HelloSnapshot, SettingsSwap};
use crate::agent::{Outcome, RunSpec, Start};
use crate::auth::device::{DeviceStore, DeviceToken, TokenCheck};
use crate::auth::ingress::{Attribution, PROXY_ATTRIBUTION_REQUIRED_BODY, RequestFacts, attribute};
use crate::auth::scopes::Role;
use crate::auth::{AuthMode, AuthSettings, ClientCredentials, LimiterSubject, SHARED_SECRET_SCOPE, SharedAuth, check_shared_secret};
pub use crate::config::settings::{GatewaySettings, ListenInfo};
use crate::wire::{ErrorShape, Reply, StateVersion};

/// Facts about this process and host, collected once by the shell at startup.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Our version (`hello-ok.server.version`).
    pub version: String,
    pub build_id: Option<String>,
    /// Random UUID per process.
    pub boot_id: String,
    pub host: String,
    /// Primary non-loopback IPv4, if any.
    pub ip: Option<String>,
    /// e.g. `linux 6.1.0-18-amd64`.
    pub platform: String,
    /// e.g. `Linux`.
    pub device_family: String,
    pub pid: u32,
    pub started_at: Instant,
    pub started_unix_ms: u64,
    /// Resolved config file path and state dir (shown to admins only).
    pub config_path: String,
    pub state_dir: String,
    /// `"tokio"` or `"smol"`.
    pub runtime: String,
    /// Secret random bytes from the OS: the core derives device tokens and request ids from them
    /// (it has no RNG of its own).
    pub secret_seed: [u8; 32],
}

/// The figures `/metrics` exports (operator §4), read from the hub in one go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsFigures {
    pub uptime_ms: u64,
    pub connections: u64,
    pub authenticated: u64,
    pub pending_requests: u64,
    pub runs_active: u64,
    /// Finished agent runs by status.
    pub runs_finished: std::collections::BTreeMap<String, u64>,
    /// Config reloads `(applied, failed or skipped)`.
    pub config_reloads: (u64, u64),
    pub store_problems: u64,
    pub stability_dropped: u64,
    pub draining: bool,
    pub runtime: RuntimeStats,
}

/// The process-wide gateway: the handle on its state.
pub struct Hub {
    info: ServerInfo,
    state: Mutex<HubState>,
    /// Taken before the state lock is released and held while the deliveries are performed:
    /// the next operation's deliveries wait for this one's (order kept, state lock free).
    delivering: Mutex<()>,
    /// The settings snapshot, read on every request without the state lock (swapped whole).
    settings: RwLock<Arc<GatewaySettings>>,
    queue: Arc<RequestQueue>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock must not take the whole gateway down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    pub fn new(info: ServerInfo, settings: GatewaySettings, now: Instant) -> Arc<Hub> {
        let settings = Arc::new(settings);
        let state = HubState::new(settings.clone(), now, info.started_unix_ms);
        Arc::new(Hub {
            state: Mutex::new(state),
            delivering: Mutex::new(()),
            settings: RwLock::new(settings),
            queue: Arc::new(RequestQueue::default()),
            info,
        })
    }

    /// Run `op` on the state under the lock, then perform what it decided for the sockets.
    fn with<T>(&self, op: impl FnOnce(&mut HubState, &ServerInfo) -> T) -> T {
        let mut st = relock(&self.state);
        let result = op(&mut st, &self.info);
        if st.outbox.is_empty() {
            return result;
        }
        let deliveries = std::mem::take(&mut st.outbox);
        let turn = relock(&self.delivering);
        drop(st);
        for d in deliveries {
            d.perform();
        }
        drop(turn);
        result
    }

    /// Read the state (no deliveries).
    fn read<T>(&self, op: impl FnOnce(&HubState) -> T) -> T {
        op(&relock(&self.state))
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The current settings snapshot.
    pub fn settings(&self) -> Arc<GatewaySettings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Swap in new settings (atomic snapshot swap; requests in flight keep the snapshot they
    /// started with); limiter state is kept. Returns how many sockets were closed
    /// ([`HubState::swap_settings`]).
    pub fn replace_settings(&self, settings: GatewaySettings) -> usize {
        self.swap_settings(settings, None).closed
    }

    /// Swap the settings and close the sockets they no longer admit; the close owed to
    /// `deferred` (the caller of `secrets.reload`) is returned instead, to follow its reply.
    pub fn swap_settings(&self, settings: GatewaySettings, deferred: Option<&str>) -> SettingsSwap {
        let settings = Arc::new(settings);
        self.with(|st, _| {
            let swap = st.swap_settings(settings.clone(), deferred);
            *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
            swap
        })
    }

    /// Wall-clock ms for `now`, derived from the last `unix_ms` the shell gave us.
    pub fn unix_ms_at(&self, now: Instant) -> u64 {
        self.read(|st| state::unix_at(st.now_unix.0, st.now_unix.1, now))
    }

    pub fn uptime_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.info.started_at).as_millis() as u64
    }

    // ---- upgrade admission -------------------------------------------------------------

    /// Decide whether a WebSocket upgrade from `remote` may proceed (spec §1 upgrade-time
    /// rejections). On success the socket holds a pre-auth slot until it authenticates or closes.
    pub fn admit_upgrade(self: &Arc<Self>, remote: IpAddr, facts: &RequestFacts) -> Result<Admission, HttpReject> {
        let settings = self.settings();
        let attribution = attribute(remote, facts, &settings.trusted_proxies, settings.allow_real_ip_fallback);
        if attribution == Attribution::Unattributable {
            return Err(HttpReject {
                status: 403,
                content_type: "application/json; charset=utf-8",
                body: PROXY_ATTRIBUTION_REQUIRED_BODY.to_string(),
            });
        }
        let ip = attribution.client_ip().unwrap_or(remote);
        self.with(|st, _| st.admission.take(ip, settings.limits.max_preauth_per_ip))?;
        Ok(Admission { hub: self.clone(), attribution, ip, remote, slot_held: true, facts: facts.clone() })
    }

    pub(crate) fn release_preauth(&self, ip: IpAddr) {
        self.with(|st, _| st.admission.release(ip));
    }

    /// Not-yet-authenticated sockets currently held by `ip`.
    pub fn preauth_count(&self, ip: IpAddr) -> usize {
        self.read(|st| st.admission.count(ip))
    }

    // ---- connections -------------------------------------------------------------------

    pub(crate) fn register(&self, conn_id: &str, sink: Arc<dyn EventSink>) {
        self.with(|st, _| st.conns.register(conn_id, sink));
    }

    /// Forget a connection; its presence row (if any) turns into a `disconnect` row.
    pub(crate) fn unregister(&self, conn_id: &str, now: Instant, unix_ms: u64) {
        self.with(|st, info| st.unregister(info, conn_id, now, unix_ms));
    }

    /// Number of registered sockets and of authenticated ones.
    pub fn connection_counts(&self) -> (usize, usize) {
        self.read(|st| st.conns.counts())
    }

    /// The shared-secret check of `connect` against the right limiter; a mismatch is not yet
    /// recorded (see [`Hub::record_shared_failure`]).
    pub(crate) fn shared_check(&self, now: Instant, creds: &ClientCredentials, subject: &LimiterSubject, browser: bool) -> SharedAuth {
        self.with(|st, _| {
            let settings = st.settings.clone();
            let limiter = if browser { &mut st.browser_limiter } else { &mut st.limiter };
            check_shared_secret(&settings.auth, creds, limiter, subject, now)
        })
    }

    /// [`Hub::shared_check`] against other auth settings (the trusted-proxy password fallback).
    pub(crate) fn shared_check_with(
        &self,
        auth: &AuthSettings,
        now: Instant,
        creds: &ClientCredentials,
        subject: &LimiterSubject,
        browser: bool,
    ) -> SharedAuth {
        self.with(|st, _| {
            let limiter = if browser { &mut st.browser_limiter } else { &mut st.limiter };
            check_shared_secret(auth, creds, limiter, subject, now)
        })
    }

    /// Is `subject` locked out of shared-secret auth (HTTP: the lock answers 429 to every
    /// request from it, credentials or not; spec http §4.6)?
    pub(crate) fn shared_lock_check(&self, now: Instant, subject: &LimiterSubject) -> crate::auth::LimitCheck {
        self.with(|st, _| st.limiter.check(now, SHARED_SECRET_SCOPE, subject))
    }

    /// Count a failed shared-secret attempt; returns the loopback delay, if any.
    pub(crate) fn record_shared_failure(&self, now: Instant, subject: &LimiterSubject, browser: bool) -> Option<Duration> {
        self.with(|st, _| {
            let limiter = if browser { &mut st.browser_limiter } else { &mut st.limiter };
            limiter.record_failure(now, SHARED_SECRET_SCOPE, subject)
        })
    }

    /// Run `f` on the hooks' own failed-auth limiter (for [`crate::http::hooks::gate`]).
    pub fn with_hook_limiter<T>(&self, f: impl FnOnce(&mut crate::auth::HookAuthLimiter) -> T) -> T {
        self.with(|st, _| f(&mut st.hook_limiter))
    }

    // ---- devices -----------------------------------------------------------------------

    pub(crate) fn check_device_token(&self, device_id: &str, role: Role, scopes: &[String], presented: &str) -> TokenCheck {
        self.read(|st| st.devices.check_token(device_id, role, scopes, presented))
    }

    /// Pairing for a verified device (spec §5.5), see [`HubState::pair_device`].
    pub(crate) fn pair_device(&self, unix_ms: u64, a: &PairAttempt<'_>) -> Result<DeviceToken, ErrorShape> {
        self.with(|st, info| st.pair_device(info, a, unix_ms))
    }

    /// `device.pair.list` (spec §5.5): pending requests and paired devices, no tokens.
    pub fn device_pair_list(&self) -> Value {
        self.read(|st| st.device_pair_list())
    }

    /// `device.pair.approve`: grant the pending request (`device.pair.resolved` approved).
    pub fn device_pair_approve(&self, request_id: &str, caller_scopes: &[String], unix_ms: u64) -> Result<Value, ErrorShape> {
        self.with(|st, info| st.device_pair_approve(info, request_id, caller_scopes, unix_ms))
    }

    /// `device.pair.reject`: drop the pending request (`device.pair.resolved` rejected).
    pub fn device_pair_reject(&self, request_id: &str, unix_ms: u64) -> Result<Value, ErrorShape> {
        self.with(|st, _| st.device_pair_reject(request_id, unix_ms))
    }

    /// `device.pair.remove`: forget the device and revoke its tokens; its open sockets close
    /// with 4001 "device removed".
    /// `true` with the answer: the caller's own socket is the device's and closes after it.
    pub fn device_pair_remove(&self, device_id: &str, caller_conn: &str, caller_scopes: &[String]) -> Result<(Value, bool), ErrorShape> {
        self.with(|st, _| st.device_pair_remove(device_id, caller_conn, caller_scopes))
    }

    /// A fresh random UUID (v4) from the process seed (the core has no RNG of its own).
    pub fn random_uuid(&self) -> String {
        self.with(|st, info| st.devices.random_uuid(&info.secret_seed))
    }

    /// `device.pair.rename` (`device.pair.changed` to pairing-scoped sockets).
    pub fn device_pair_rename(&self, device_id: &str, label: &str) -> Result<Value, ErrorShape> {
        self.with(|st, _| st.device_pair_rename(device_id, label))
    }

    /// `device.token.rotate`: the device's open sockets close with 4001 "device removed".
    pub fn device_token_rotate(
        &self,
        device_id: &str,
        role: &str,
        scopes: Option<&[String]>,
        caller_conn: &str,
        unix_ms: u64,
    ) -> Result<(Value, bool), ErrorShape> {
        self.with(|st, info| st.device_token_rotate(info, device_id, role, scopes, caller_conn, unix_ms))
    }

    /// `device.token.revoke`: the device's open sockets close with 4001 "device removed".
    pub fn device_token_revoke(&self, device_id: &str, role: &str, caller_conn: &str, unix_ms: u64) -> Result<(Value, bool), ErrorShape> {
        self.with(|st, _| st.device_token_revoke(device_id, role, caller_conn, unix_ms))
    }

    /// HTTP `Bearer <device token>`: the role and scopes of the paired device holding it.
    pub fn device_token_bearer(&self, presented: &str) -> Option<(String, Vec<String>)> {
        self.read(|st| st.devices.store.find_token(presented).map(|(_, role, scopes)| (role, scopes)))
    }

    /// The device store and its generation (the shell persists it when the generation moves).
    pub fn devices_snapshot(&self) -> (u64, DeviceStore) {
        self.read(|st| (st.devices.generation, st.devices.store.clone()))
    }

    /// Current device-store generation.
    pub fn devices_generation(&self) -> u64 {
        self.read(|st| st.devices.generation)
    }

    /// Load the persisted device store (startup).
    pub fn load_devices(&self, store: DeviceStore) {
        self.with(|st, _| st.devices.store = store);
    }

    /// Mark a socket authenticated; adds its presence row (and broadcasts it) when tracked.
    /// Returns the hello-ok snapshot pieces as seen by this socket.
    pub(crate) fn mark_authenticated(
        &self,
        conn_id: &str,
        auth: ConnAuth,
        presence: Option<Value>,
        now: Instant,
        unix_ms: u64,
    ) -> HelloSnapshot {
        self.with(|st, info| st.mark_authenticated(info, conn_id, auth, presence, now, unix_ms))
    }

    // ---- presence and health -------------------------------------------------------------

    /// `system-presence`: the gateway's own row plus connected/recently disconnected clients.
    pub fn presence_list(&self, now: Instant, unix_ms: u64) -> Vec<Value> {
        self.with(|st, info| st.presence_list(info, now, unix_ms))
    }

    /// Runtime load figures from the shell's sampler.
    pub fn set_runtime_stats(&self, stats: RuntimeStats, unix_ms: u64) {
        self.with(|st, _| st.health.set_runtime(stats, unix_ms));
    }

    pub fn runtime_stats(&self) -> RuntimeStats {
        self.read(|st| st.health.runtime().clone())
    }

    // ---- diagnostics (operator §4) ---------------------------------------------------------

    /// Keep a typed diagnostic event in the stability ring.
    pub fn record_diagnostic(&self, kind: &str, fields: Value, unix_ms: u64) {
        self.with(|st, _| st.diagnostics.record(unix_ms, kind, fields));
    }

    /// A config reload's outcome (`applied`, `restart`, `skipped`, `failed`) and its paths.
    pub fn record_config_reload(&self, outcome: &str, paths: &[String], unix_ms: u64) {
        self.with(|st, _| st.diagnostics.record_reload(unix_ms, outcome, paths));
    }

    /// Host facts from the shell's sampler (`system.info`).
    pub fn set_host_facts(&self, facts: HostFacts) {
        self.with(|st, _| st.diagnostics.host = Some(facts));
    }

    /// `diagnostics.stability`.
    pub fn stability(&self, params: Option<&Value>, unix_ms: u64) -> Value {
        let (limit, kind) = stability_params(params);
        let at = crate::logs::line::iso_utc(unix_ms);
        self.read(|st| st.diagnostics.stability(limit, kind.as_deref(), &at))
    }

    /// `diagnostics.lanes`: the gateway's one execution lane (agent runs). Runs start at once
    /// (no lane queue, no concurrency cap), so nothing is ever queued behind them.
    pub fn lanes(&self, unix_ms: u64) -> Value {
        self.read(|st| {
            json!({"ts": unix_ms, "lanes": [{"lane": "main", "queuedCount": 0, "activeCount": st.runs.running(), "maxConcurrent": null,
                "draining": st.admission.is_draining(), "generation": 0, "blockedBy": null}], "dynamic": null})
        })
    }

    /// `system.info` (operator §4): host facts from the shell's sampler, process figures, the
    /// runtime's load.
    pub fn system_info(&self, now: Instant) -> Value {
        let info = &self.info;
        let uptime = self.uptime_ms(now);
        self.read(|st| {
            let h = st.diagnostics.host.clone().unwrap_or_default();
            let rt = st.health.runtime();
            let os_label = match h.platform.as_str() {
                "linux" => format!("Linux {}", h.release),
                "darwin" => format!("macOS {}", h.release),
                other => format!("{other} {}", h.release),
            };
            let mut v = json!({
                "machineName": h.hostname, "hostname": h.hostname, "platform": h.platform, "release": h.release, "arch": h.arch,
                "osLabel": os_label, "port": st.settings.listen.port,
                "nodeVersion": format!("clawgate {} ({})", info.version, info.runtime),
                "pid": info.pid, "processInstanceId": info.boot_id, "uptimeMs": uptime, "cpuCount": h.cpu_count,
                "memoryTotalBytes": h.memory_total_bytes, "memoryFreeBytes": h.memory_free_bytes,
                "eventLoop": st.health.event_loop_json(),
                "processMemory": {"rssBytes": rt.rss_bytes, "peakRssBytes": rt.peak_rss_bytes},
                "defaultAgentUtilityModel": {"status": "unavailable"},
            });
            if let Some(m) = &h.cpu_model {
                v["cpuModel"] = json!(m);
            }
            if let Some(l) = h.load_average {
                v["loadAverage"] = json!(l);
            }
            if let (Some(total), Some(avail)) = (h.disk_total_bytes, h.disk_available_bytes) {
                v["disks"] = json!([{"path": h.disk_path, "totalBytes": total, "availableBytes": avail}]);
                v["diskTotalBytes"] = json!(total);
                v["diskAvailableBytes"] = json!(avail);
                v["diskPath"] = json!(h.disk_path);
            }
            v
        })
    }

    /// clawgate's own activity figures for `status`: runs in flight and finished, config
    /// reloads and the last one.
    pub fn activity_json(&self) -> Value {
        self.read(|st| {
            let d = &st.diagnostics;
            json!({
                "runs": {"active": st.runs.running(), "finished": d.runs_finished},
                "configReloads": {"applied": d.reloads.0, "failed": d.reloads.1, "last": d.last_reload},
            })
        })
    }

    /// The figures `/metrics` exports.
    pub fn metrics_figures(&self, now: Instant) -> MetricsFigures {
        let uptime_ms = self.uptime_ms(now);
        let pending = self.pending_requests();
        self.read(|st| {
            let (total, authed) = st.conns.counts();
            let rt = st.health.runtime().clone();
            MetricsFigures {
                uptime_ms,
                connections: total as u64,
                authenticated: authed as u64,
                pending_requests: pending as u64,
                runs_active: st.runs.running() as u64,
                runs_finished: st.diagnostics.runs_finished.clone(),
                config_reloads: st.diagnostics.reloads,
                store_problems: st.health.store_warnings().len() as u64,
                stability_dropped: st.diagnostics.dropped(),
                draining: st.admission.is_draining(),
                runtime: rt,
            }
        })
    }

    /// The `eventLoop` object (health, status, readyz).
    pub fn event_loop_json(&self) -> Value {
        self.read(|st| st.health.event_loop_json())
    }

    /// Record that a store failed to load (moved aside, recovered, or left unwritable): it
    /// shows in `health` and `status` until cleared.
    pub fn report_store_problem(&self, key: &str, warning: Value) {
        self.with(|st, _| st.health.report_store_problem(key, warning));
    }

    /// The problem recorded under `key` is over (a store that failed to write wrote again).
    pub fn clear_store_problem(&self, key: &str) {
        self.with(|st, _| st.health.clear_store_problem(key));
    }

    /// What [`Hub::report_store_problem`] recorded.
    pub fn store_warnings(&self) -> Vec<Value> {
        self.read(|st| st.health.store_warnings())
    }

    /// The health snapshot (cached for `health_interval` unless `force`).
    pub fn health(&self, now: Instant, unix_ms: u64, force: bool) -> Value {
        self.with(|st, _| st.health.snapshot(&st.settings.clone(), now, unix_ms, force).value.clone())
    }

    /// The health snapshot as serialized JSON (the same cache as [`Hub::health`]): what the
    /// `health` method answers with. Holds the lock only for an `Arc` clone.
    pub fn health_json(&self, now: Instant, unix_ms: u64, force: bool) -> Arc<str> {
        self.with(|st, _| st.health.snapshot(&st.settings.clone(), now, unix_ms, force).json.clone())
    }

    pub fn state_version(&self) -> StateVersion {
        self.read(|st| st.state_version)
    }

    // ---- broadcast and timers ----------------------------------------------------------

    /// Send an event to every authenticated socket allowed to see it.
    pub fn broadcast(&self, event: &str, payload: Option<&Value>, drop_if_slow: bool) {
        let payload = payload.map(Value::to_string);
        self.with(|st, _| st.broadcast(event, payload, drop_if_slow, None, Audience::Everyone));
    }

    /// Send a session event to the authenticated sockets in `audience` allowed to see it.
    /// Sockets outside never see the event, so it takes no `seq` of theirs.
    pub fn broadcast_to(&self, event: &str, payload: &Value, audience: Audience<'_>) {
        let payload = Some(payload.to_string());
        self.with(|st, _| st.broadcast(event, payload, false, None, audience));
    }

    /// Next global deadline (tick, health refresh, `agent.wait` timeouts).
    pub fn poll_timeout(&self) -> Instant {
        self.read(|st| st.poll_timeout())
    }

    /// Fire due global timers: `tick` every 30 s, a `health` refresh every 60 s, and
    /// `agent.wait` timeouts.
    pub fn handle_timeout(&self, now: Instant, unix_ms: u64) {
        self.with(|st, _| st.handle_timeout(now, unix_ms));
    }

    /// Time left before the next tick (for tests and diagnostics).
    pub fn until_next_tick(&self, now: Instant) -> Duration {
        self.read(|st| st.until_next_tick(now))
    }

    // ---- agent runs --------------------------------------------------------------------

    /// `agent`: start a run for this socket's request, or answer a duplicate (spec §10.3).
    pub fn start_run(&self, conn_id: &str, request_id: &str, params: Option<&Value>, now: Instant, unix_ms: u64) -> Start {
        let agents = self.settings().api.agents.clone();
        let spec = match crate::agent::parse_agent_params(params, &agents) {
            Ok(s) => s,
            Err(e) => return Start::Answer(Reply::err(e)),
        };
        self.with(|st, _| st.runs.start(spec, (conn_id.to_string(), request_id.to_string()), now, unix_ms))
    }

    /// Start a run without a socket owner (hooks, `chat.send`); see `Runs::start_unowned`.
    pub fn start_unowned_run(&self, spec: RunSpec, now: Instant, unix_ms: u64) -> Result<RunSpec, Option<&'static str>> {
        self.with_runs(|runs| runs.start_unowned(spec, now, unix_ms))
    }

    /// The run started executing (lifecycle `start` event).
    pub fn run_started(&self, run_id: &str, unix_ms: u64) {
        self.with(|st, _| st.run_started(run_id, unix_ms));
    }

    /// The run reached its model (lifecycle `model` event).
    pub fn begin_run(&self, run_id: &str, provider: Option<&str>, model: Option<&str>, unix_ms: u64) {
        self.with(|st, _| st.begin_run(run_id, provider, model, unix_ms));
    }

    /// Streamed assistant text (an `agent` assistant event and a `chat` delta).
    pub fn run_delta(&self, run_id: &str, delta: &str, unix_ms: u64) {
        self.with(|st, _| st.run_delta(run_id, delta, unix_ms));
    }

    /// The run's `usage` event; none for a turn that produced no tokens (as the reference).
    pub fn run_usage(&self, run_id: &str, output_tokens: u64, unix_ms: u64) {
        self.with(|st, _| st.run_usage(run_id, output_tokens, unix_ms));
    }

    /// The run ended: lifecycle and `chat` events, the final answer to the caller, `agent.wait`
    /// answers, and the result cached for idempotent replays.
    pub fn finish_run(&self, run_id: &str, outcome: Outcome, now: Instant, unix_ms: u64) {
        self.with(|st, _| st.finish_run(run_id, outcome, now, unix_ms));
    }

    /// `agent.wait`: the result now if the run ended, else `None` and the answer comes through
    /// the socket's sink when it ends or the timeout passes.
    pub fn wait_run(&self, conn_id: &str, request_id: &str, params: Option<&Value>, now: Instant) -> Option<Reply> {
        let (run_id, timeout) = match crate::agent::parse_wait_params(params) {
            Ok(p) => p,
            Err(e) => return Some(Reply::err(e)),
        };
        self.with(|st, _| st.wait_run(conn_id, request_id, run_id, timeout, now))
    }

    /// Attach an executor's stop handle to its run (and stop it at once when an abort came first).
    pub fn attach_run_control(&self, run_id: &str, control: Arc<dyn crate::agent::RunControl>) {
        if self.with_runs(|runs| runs.attach(run_id, control.clone())) {
            control.abort();
        }
    }

    /// The ids of the running runs of a session (`hasActiveRun`/`activeRunIds` of its row).
    pub fn active_run_ids(&self, session_key: &str) -> Vec<String> {
        self.with_runs(|runs| runs.active_for(session_key))
    }

    /// Abort the running runs of a session (only `run_id` when given). Returns the aborted run
    /// ids; each executor stops its upstream request and finishes its run as
    /// [`Outcome::Aborted`]. The stop handles are called outside the lock.
    pub fn abort_runs(&self, session_key: &str, run_id: Option<&str>) -> Vec<String> {
        let (ids, controls) = self.with_runs(|runs| runs.request_abort(session_key, run_id));
        for c in controls {
            c.abort();
        }
        ids
    }

    /// Run `f` on the run registry (under the lock: keep it short, never block).
    pub(crate) fn with_runs<T>(&self, f: impl FnOnce(&mut crate::agent::Runs) -> T) -> T {
        self.with(|st, _| f(&mut st.runs))
    }

    /// The cron scheduler, under the hub's lock (quick, in-memory operations only: the shell
    /// drains its outputs here and performs them outside).
    pub fn with_cron<T>(&self, f: impl FnOnce(&mut crate::cron::Scheduler) -> T) -> T {
        self.with(|st, _| f(&mut st.cron))
    }

    // ---- session-event subscriptions ---------------------------------------------------

    /// `sessions.subscribe`: this socket receives `sessions.changed`. `false` when the socket
    /// is gone.
    pub fn subscribe_sessions(&self, conn_id: &str) -> bool {
        self.with(|st, _| st.conns.subscribe_sessions(conn_id))
    }

    /// `sessions.messages.subscribe` / `unsubscribe` of a canonical session key. `false` when
    /// the socket is gone.
    pub fn subscribe_session_messages(&self, conn_id: &str, key: &str, on: bool) -> bool {
        self.with(|st, _| st.conns.subscribe_messages(conn_id, key, on))
    }

    // ---- request-start queue -----------------------------------------------------------

    /// Reserve a slot for a request of `bytes` frame bytes; `None` when the queue is full.
    pub fn try_start_request(&self, bytes: usize) -> Option<RequestPermit> {
        self.queue.try_start(bytes, &self.settings().limits)
    }

    /// Requests currently holding a start-queue slot.
    pub fn pending_requests(&self) -> usize {
        self.queue.pending()
    }

    // ---- shutdown ----------------------------------------------------------------------

    /// Stop admitting new sockets (new upgrades get 503).
    pub fn begin_drain(&self) {
        self.with(|st, _| st.admission.drain());
    }

    /// Tell every socket (authenticated or not) that the gateway is stopping.
    pub fn shutdown_all(&self, reason: &str) {
        self.with(|st, _| st.conns.to_all(&mut st.outbox, &connections::ToConn::Shutdown(reason.to_string())));
    }

    pub fn is_draining(&self) -> bool {
        self.read(|st| st.admission.is_draining())
    }

    pub fn auth_mode(&self) -> AuthMode {
        self.settings().auth.mode
    }
}
