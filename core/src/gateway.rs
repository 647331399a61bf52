//! Process-wide gateway state (quinn's `Endpoint` to [`crate::connection::ServerConnection`]'s
//! `Connection`): connections, presence, health, `stateVersion`, broadcast with scope gating,
//! the request-start queue, the failed-auth limiters, upgrade admission and draining.
//!
//! `Hub` is shared (`Arc<Hub>`) by every connection of both shells. Its state sits behind one
//! short-held mutex; nothing in here blocks or does IO. Timers are driven by the shell through
//! [`Hub::poll_timeout`] and [`Hub::handle_timeout`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::agent::{Outcome, RunSpec, RunState, Runs, Start, Waiter};
use crate::auth::device::{DeviceStore, DeviceToken, PairingReason, PairingSubject, TokenCheck, pairing_required};
use crate::auth::ingress::{Attribution, PROXY_ATTRIBUTION_REQUIRED_BODY, RequestFacts, attribute};
use crate::auth::scopes::{EventGate, Role, event_allowed, event_gate};
use crate::auth::{
    AuthMode, AuthSettings, ClientCredentials, LimiterSubject, RateLimitPolicy, RateLimiter, SHARED_SECRET_SCOPE, SharedAuth,
    check_shared_secret,
};
pub use crate::config::settings::{GatewaySettings, ListenInfo};
use crate::wire::ErrorShape;
use crate::wire::Reply;
use crate::wire::StateVersion;

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

/// What [`Hub::swap_settings`] did to the connected sockets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SettingsSwap {
    /// Sockets closed (including the deferred one).
    pub closed: usize,
    /// The close owed to the deferred socket, to send after its reply.
    pub deferred_close: Option<(u16, &'static str)>,
}

/// Runtime load figures measured by the shell (our equivalent of Node's event-loop stats).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeStats {
    /// Sampling interval actually observed.
    pub interval_ms: f64,
    /// Scheduling delay of the runtime's timer: p99 and max over the recent window.
    pub delay_p99_ms: f64,
    pub delay_max_ms: f64,
    /// Share of wall time the process spent on CPU, per core (0..=threads).
    pub cpu_core_ratio: f64,
    /// `cpu_core_ratio / worker_threads`: how busy the runtime's workers are.
    pub utilization: f64,
    pub host_utilization: Option<f64>,
    pub host_cpu_count: u32,
    pub worker_threads: u32,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// How long collecting these figures took.
    pub probe_duration_ms: u64,
}

/// One event to fan out; each connection assigns its own `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub event: String,
    /// Serialized JSON payload.
    pub payload: Option<String>,
    pub gate: EventGate,
    pub drop_if_slow: bool,
    pub state_version: Option<StateVersion>,
}

/// Where the hub delivers broadcasts for one connection (the shell's mailbox).
pub trait EventSink: Send + Sync {
    fn deliver(&self, event: Arc<Broadcast>);
    /// The gateway is stopping: the socket should say goodbye and close.
    fn shutdown(&self, reason: &str);
    /// A later answer to one of this socket's requests (the final of an agent run, an
    /// `agent.wait` result). The shell feeds it to [`crate::connection::ServerConnection::complete`].
    /// The default drops it: only sinks of sockets that never start runs may keep it.
    fn complete(&self, request_id: &str, reply: Reply) {
        let _ = (request_id, reply);
    }
    /// The socket lost its admission (rotated secret, disallowed origin): close it.
    /// The default ignores it: only sinks of sockets that cannot be revoked may keep it.
    fn close(&self, code: u16, reason: &str) {
        let _ = (code, reason);
    }
}

/// Why an upgrade is refused at the HTTP level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReject {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl HttpReject {
    fn text(status: u16, body: &str) -> Self {
        HttpReject { status, content_type: "text/plain; charset=utf-8", body: body.to_string() }
    }
}

/// Process-wide request-start accounting (spec §10.1).
#[derive(Debug, Default)]
struct GateCounters {
    pending: AtomicUsize,
    bytes: AtomicUsize,
}

/// Held while a request runs; dropping it frees its slot in the start queue.
#[derive(Debug)]
pub struct RequestPermit {
    counters: Option<Arc<GateCounters>>,
    bytes: usize,
}

impl RequestPermit {
    /// A permit outside the queue (node requests, tests).
    pub fn unmetered() -> Self {
        RequestPermit { counters: None, bytes: 0 }
    }
}

impl Drop for RequestPermit {
    fn drop(&mut self) {
        if let Some(c) = &self.counters {
            c.pending.fetch_sub(1, Ordering::AcqRel);
            c.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnAuth {
    pub role: Role,
    pub scopes: Vec<String>,
    /// `hello-ok.auth.method` (`token`, `password`, `device-token`, `none`).
    pub method: &'static str,
    /// The browser `Origin` of the upgrade, if any, with what the origin check needs.
    pub origin: Option<String>,
    pub host: Option<String>,
    pub local: bool,
    /// The paired device this socket proved (closed when the device is removed).
    pub device_id: Option<String>,
}

struct ConnRecord {
    sink: Arc<dyn EventSink>,
    auth: Option<ConnAuth>,
    /// `sessions.subscribe` / `sessions.messages.subscribe` of this socket.
    subs: Subscriptions,
}

/// A socket's session-event subscriptions (the reference delivers `sessions.changed` only to
/// sockets that called `sessions.subscribe`, `session.message` only to sockets subscribed to
/// that session).
#[derive(Debug, Default, Clone)]
struct Subscriptions {
    sessions: bool,
    messages: std::collections::HashSet<String>,
}

/// Who, beyond the scope gate, receives a session event ([`Hub::broadcast_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// Sockets that called `sessions.subscribe` (`sessions.changed`).
    SessionsSubscribers,
    /// Sockets subscribed to this (canonical) session key (`session.message`).
    SessionMessages(&'a str),
}

/// The cached health snapshot, as a tree (for `hello-ok`) and as its serialized text (for the
/// `health` method and event), built together.
struct HealthCache {
    at: Instant,
    value: Value,
    json: Arc<str>,
}

impl HealthCache {
    fn new(at: Instant, value: Value) -> Self {
        let json = Arc::from(value.to_string());
        HealthCache { at, value, json }
    }
}

#[derive(Debug, Clone)]
struct PresenceRow {
    entry: Value,
    ts: u64,
    expires: Option<Instant>,
}

struct HubState {
    settings: Arc<GatewaySettings>,
    conns: HashMap<String, ConnRecord>,
    preauth_by_ip: HashMap<IpAddr, usize>,
    limiter: RateLimiter,
    browser_limiter: RateLimiter,
    presence: HashMap<String, PresenceRow>,
    state_version: StateVersion,
    health: Option<HealthCache>,
    runtime: RuntimeStats,
    degraded_since_ms: Option<u64>,
    /// Stores that failed to load and were moved aside or recovered (shown by `health` and
    /// `status` as `storeWarnings`).
    store_warnings: std::collections::BTreeMap<String, Value>,
    draining: bool,
    devices: DeviceStore,
    runs: Runs,
    /// Bumped on every change of `devices`, so the shell knows when to persist them.
    devices_generation: u64,
    /// Counter of the token generator.
    drbg_counter: u64,
    next_tick: Instant,
    next_health: Instant,
    now_unix: (Instant, u64),
}

/// The process-wide gateway.
pub struct Hub {
    info: ServerInfo,
    state: Mutex<HubState>,
    gate: Arc<GateCounters>,
    settings: RwLock<Arc<GatewaySettings>>,
    /// The hooks' own failed-auth limiter (spec http §4.6, §6.8).
    hook_limiter: Mutex<crate::auth::HookAuthLimiter>,
}

fn browser_policy(p: RateLimitPolicy) -> RateLimitPolicy {
    RateLimitPolicy { exempt_loopback: false, ..p }
}

impl Hub {
    pub fn new(info: ServerInfo, settings: GatewaySettings, now: Instant) -> Arc<Hub> {
        let settings = Arc::new(settings);
        let policy = settings.auth.rate_limit;
        let limits = settings.limits;
        let unix = info.started_unix_ms;
        Arc::new(Hub {
            state: Mutex::new(HubState {
                settings: settings.clone(),
                conns: HashMap::new(),
                preauth_by_ip: HashMap::new(),
                limiter: RateLimiter::new(policy),
                browser_limiter: RateLimiter::new(browser_policy(policy)),
                presence: HashMap::new(),
                state_version: StateVersion { presence: 1, health: 1 },
                health: None,
                runtime: RuntimeStats::default(),
                degraded_since_ms: None,
                store_warnings: Default::default(),
                draining: false,
                devices: DeviceStore::default(),
                runs: Runs::default(),
                devices_generation: 0,
                drbg_counter: 0,
                next_tick: now + limits.tick_interval,
                next_health: now + limits.health_interval,
                now_unix: (now, unix),
            }),
            gate: Arc::new(GateCounters::default()),
            settings: RwLock::new(settings),
            hook_limiter: Mutex::new(crate::auth::HookAuthLimiter::new()),
            info,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock must not take the whole gateway down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The current settings snapshot.
    pub fn settings(&self) -> Arc<GatewaySettings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Swap in new settings (atomic snapshot swap; requests in flight keep the snapshot they
    /// started with). Limiter state is kept. Sockets the new settings no longer admit are
    /// closed: shared-secret sockets after a secret rotation with 4001 "gateway auth changed",
    /// browser sockets whose origin is no longer allowed with 1008 "origin not allowed".
    /// Returns how many sockets were closed.
    pub fn replace_settings(&self, settings: GatewaySettings) -> usize {
        self.swap_settings(settings, None).closed
    }

    /// Swap the settings and close the sockets they no longer admit (spec §6.4 live-connection
    /// effects). The socket `deferred` (the caller of `secrets.reload`) is not closed here: its
    /// close is returned so the shell can send the caller its reply first.
    pub fn swap_settings(&self, settings: GatewaySettings, deferred: Option<&str>) -> SettingsSwap {
        let settings = Arc::new(settings);
        let mut st = self.lock();
        let old = st.settings.clone();
        st.limiter.update_policy(settings.auth.rate_limit);
        st.browser_limiter.update_policy(browser_policy(settings.auth.rate_limit));
        st.settings = settings.clone();
        let rotated =
            old.auth.mode != settings.auth.mode || old.auth.token != settings.auth.token || old.auth.password != settings.auth.password;
        // §4.7: a hot change to who may vouch for a client bumps the auth-policy generation.
        let policy_changed = old.trusted_proxies != settings.trusted_proxies
            || old.allow_real_ip_fallback != settings.allow_real_ip_fallback
            || old.trusted_proxy != settings.trusted_proxy;
        let mut swap = SettingsSwap::default();
        for (id, rec) in st.conns.iter() {
            let Some(a) = &rec.auth else { continue };
            let close = if rotated && matches!(a.method, "token" | "password") {
                Some((crate::wire::close_code::CLIENT_INVALIDATED, "gateway auth changed"))
            } else if policy_changed {
                Some((crate::wire::close_code::CLIENT_INVALIDATED, "gateway policy changed"))
            } else if let Some(origin) = &a.origin {
                let ok = crate::auth::origin::check_origin(
                    origin,
                    a.host.as_deref(),
                    &settings.control_ui_allowed_origins,
                    settings.host_header_origin_fallback,
                    a.local,
                )
                .is_ok();
                (!ok).then_some((crate::wire::close_code::POLICY_VIOLATION, "origin not allowed"))
            } else {
                None
            };
            let Some((code, reason)) = close else { continue };
            swap.closed += 1;
            if deferred == Some(id.as_str()) {
                swap.deferred_close = Some((code, reason));
            } else {
                rec.sink.close(code, reason);
            }
        }
        drop(st);
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = settings;
        swap
    }

    /// Wall-clock ms for `now`, derived from the last `unix_ms` the shell gave us.
    pub fn unix_ms_at(&self, now: Instant) -> u64 {
        let st = self.lock();
        let (at, unix) = st.now_unix;
        unix_at(at, unix, now)
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
        let mut st = self.lock();
        if st.draining {
            return Err(HttpReject::text(503, "Gateway websocket admission closed"));
        }
        let held = st.preauth_by_ip.get(&ip).copied().unwrap_or(0);
        if held >= settings.limits.max_preauth_per_ip {
            return Err(HttpReject::text(503, "Too many unauthenticated sockets"));
        }
        *st.preauth_by_ip.entry(ip).or_insert(0) += 1;
        Ok(Admission { hub: self.clone(), attribution, ip, remote, slot_held: true, facts: facts.clone() })
    }

    fn release_preauth(&self, ip: IpAddr) {
        let mut st = self.lock();
        if let Some(n) = st.preauth_by_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.preauth_by_ip.remove(&ip);
            }
        }
    }

    /// Not-yet-authenticated sockets currently held by `ip`.
    pub fn preauth_count(&self, ip: IpAddr) -> usize {
        self.lock().preauth_by_ip.get(&ip).copied().unwrap_or(0)
    }

    // ---- connections -------------------------------------------------------------------

    pub(crate) fn register(&self, conn_id: &str, sink: Arc<dyn EventSink>) {
        self.lock().conns.insert(conn_id.to_string(), ConnRecord { sink, auth: None, subs: Subscriptions::default() });
    }

    /// Forget a connection; its presence row (if any) turns into a `disconnect` row.
    pub(crate) fn unregister(&self, conn_id: &str, now: Instant, unix_ms: u64) {
        let mut st = self.lock();
        let rec = st.conns.remove(conn_id);
        let ttl = st.settings.limits.presence_ttl;
        let tracked = rec.is_some_and(|r| r.auth.is_some()) && st.presence.contains_key(conn_id);
        if tracked {
            if let Some(row) = st.presence.get_mut(conn_id) {
                row.entry["reason"] = json!("disconnect");
                row.entry["ts"] = json!(unix_ms);
                row.ts = unix_ms;
                row.expires = Some(now + ttl);
            }
            self.broadcast_presence_locked(&mut st, now, unix_ms);
        }
    }

    /// Number of registered sockets and of authenticated ones.
    pub fn connection_counts(&self) -> (usize, usize) {
        let st = self.lock();
        (st.conns.len(), st.conns.values().filter(|c| c.auth.is_some()).count())
    }

    /// The shared-secret check of `connect` against the right limiter; a mismatch is not yet
    /// recorded (see [`Hub::record_shared_failure`]).
    pub(crate) fn shared_check(&self, now: Instant, creds: &ClientCredentials, subject: &LimiterSubject, browser: bool) -> SharedAuth {
        let mut st = self.lock();
        let settings = st.settings.clone();
        let limiter = if browser { &mut st.browser_limiter } else { &mut st.limiter };
        check_shared_secret(&settings.auth, creds, limiter, subject, now)
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
        let mut st = self.lock();
        let limiter = if browser { &mut st.browser_limiter } else { &mut st.limiter };
        check_shared_secret(auth, creds, limiter, subject, now)
    }

    /// Is `subject` locked out of shared-secret auth (HTTP: the lock answers 429 to every
    /// request from it, credentials or not; spec http §4.6)?
    pub(crate) fn shared_lock_check(&self, now: Instant, subject: &LimiterSubject) -> crate::auth::LimitCheck {
        self.lock().limiter.check(now, SHARED_SECRET_SCOPE, subject)
    }

    /// Count a failed shared-secret attempt; returns the loopback delay, if any.
    pub(crate) fn record_shared_failure(&self, now: Instant, subject: &LimiterSubject, browser: bool) -> Option<Duration> {
        let mut st = self.lock();
        let limiter = if browser { &mut st.browser_limiter } else { &mut st.limiter };
        limiter.record_failure(now, SHARED_SECRET_SCOPE, subject)
    }

    // ---- devices -----------------------------------------------------------------------

    /// 32 bytes of secret randomness, base64url (43 characters): SHA-256 of the process seed and
    /// a counter (the seed comes from the OS; the core has no RNG).
    fn random_token_locked(&self, st: &mut HubState, label: &str) -> String {
        use base64::Engine as _;
        use sha2::{Digest, Sha256};
        st.drbg_counter += 1;
        let mut h = Sha256::new();
        h.update(self.info.secret_seed);
        h.update(label.as_bytes());
        h.update(st.drbg_counter.to_le_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
    }

    fn random_uuid_locked(&self, st: &mut HubState) -> String {
        use sha2::{Digest, Sha256};
        st.drbg_counter += 1;
        let mut h = Sha256::new();
        h.update(self.info.secret_seed);
        h.update(b"uuid");
        h.update(st.drbg_counter.to_le_bytes());
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        crate::ids::uuid_v4(b)
    }

    pub(crate) fn check_device_token(&self, device_id: &str, role: Role, scopes: &[String], presented: &str) -> TokenCheck {
        self.lock().devices.check_token(device_id, role, scopes, presented)
    }

    /// Pairing for a verified device (spec §5.5): already paired → its token; local and
    /// allowed to pair silently → approved now (and `device.pair.resolved` broadcast);
    /// otherwise a pending request and `NOT_PAIRED pairing required`.
    pub(crate) fn pair_device(&self, now: Instant, unix_ms: u64, a: &PairAttempt<'_>) -> Result<DeviceToken, ErrorShape> {
        let raw = crate::auth::device::decode_public_key(&a.subject.proof.public_key).unwrap_or_default();
        let mut st = self.lock();
        let reason = match st.devices.pairing_state(&a.subject.proof.id, &raw, a.subject.role, a.subject.scopes) {
            Ok(t) => return Ok(t),
            Err(r) => r,
        };
        let existing = st.devices.devices.contains_key(&a.subject.proof.id);
        let silent =
            a.local_silent && !(existing && a.subject.role != Role::Operator) && (reason != PairingReason::ScopeUpgrade || a.shared_secret);
        if silent {
            let token = self.random_token_locked(&mut st, "device-token");
            let request_id = self.random_uuid_locked(&mut st);
            let grant = st.devices.approve(&a.subject, token, unix_ms);
            st.devices_generation += 1;
            let payload = json!({"requestId": request_id, "deviceId": a.subject.proof.id, "decision": "approved", "ts": unix_ms});
            Self::fan_out_locked(&st, "device.pair.resolved", Some(payload.to_string()), false, None);
            let _ = now;
            return Ok(grant);
        }
        let request_id = self.random_uuid_locked(&mut st);
        let req = st.devices.request(&a.subject, reason, request_id, unix_ms);
        st.devices_generation += 1;
        let payload = json!({
            "requestId": req.request_id, "deviceId": req.device_id, "role": req.role, "scopes": req.scopes,
            "clientId": req.client_id, "clientMode": req.client_mode, "reason": req.reason, "ts": req.ts,
        });
        Self::fan_out_locked(&st, "device.pair.requested", Some(payload.to_string()), false, None);
        let approved = st.devices.devices.get(&a.subject.proof.id);
        Err(pairing_required(&req, approved))
    }

    /// `device.pair.list` (spec §5.5): pending requests and paired devices, no tokens.
    pub fn device_pair_list(&self) -> Value {
        let st = self.lock();
        let connected = |id: &str| st.conns.values().any(|c| c.auth.as_ref().and_then(|a| a.device_id.as_deref()) == Some(id));
        st.devices.list_json(&connected)
    }

    /// `device.pair.approve`: grant the pending request (`device.pair.resolved` approved). An
    /// operator without `operator.admin` may approve only operator requests within its own
    /// scopes (docs `devices approve`).
    pub fn device_pair_approve(&self, request_id: &str, caller_scopes: &[String], unix_ms: u64) -> Result<Value, ErrorShape> {
        let mut st = self.lock();
        let Some(req) = st.devices.pending.get(request_id) else {
            return Err(ErrorShape::invalid_request("device pairing approval denied"));
        };
        let admin = caller_scopes.iter().any(|s| s == crate::auth::scopes::ADMIN);
        if !admin {
            if req.role != Role::Operator.as_str() {
                return Err(ErrorShape::invalid_request(
                    "device pairing approval denied: approving a non-operator role requires operator.admin",
                ));
            }
            if let Some(s) = req.scopes.iter().find(|s| !crate::auth::scopes::satisfies(caller_scopes, s)) {
                return Err(ErrorShape::invalid_request(format!("device pairing approval denied: missing scope: {s}")));
            }
        }
        let token = self.random_token_locked(&mut st, "device-token");
        let Some((req, device)) = st.devices.approve_request(request_id, token, unix_ms) else {
            return Err(ErrorShape::invalid_request("device pairing approval denied"));
        };
        st.devices_generation += 1;
        let payload = json!({"requestId": req.request_id, "deviceId": req.device_id, "decision": "approved", "ts": unix_ms});
        Self::fan_out_locked(&st, "device.pair.resolved", Some(payload.to_string()), false, None);
        Ok(json!({"requestId": req.request_id, "device": crate::auth::device::paired_json(&device)}))
    }

    /// `device.pair.reject`: drop the pending request (`device.pair.resolved` rejected).
    pub fn device_pair_reject(&self, request_id: &str, unix_ms: u64) -> Result<Value, ErrorShape> {
        let mut st = self.lock();
        let Some(req) = st.devices.reject_request(request_id) else {
            return Err(ErrorShape::invalid_request("unknown requestId"));
        };
        st.devices_generation += 1;
        let payload = json!({"requestId": req.request_id, "deviceId": req.device_id, "decision": "rejected", "ts": unix_ms});
        Self::fan_out_locked(&st, "device.pair.resolved", Some(payload.to_string()), false, None);
        Ok(json!({"requestId": req.request_id, "deviceId": req.device_id}))
    }

    /// `device.pair.remove`: forget the device and revoke its tokens; its open sockets close
    /// with 4001 "device removed". Without `operator.admin` a caller may remove only the device
    /// it connected with.
    pub fn device_pair_remove(&self, device_id: &str, caller_conn: &str, caller_scopes: &[String]) -> Result<Value, ErrorShape> {
        let mut st = self.lock();
        let admin = caller_scopes.iter().any(|s| s == crate::auth::scopes::ADMIN);
        let own = st.conns.get(caller_conn).and_then(|c| c.auth.as_ref()).and_then(|a| a.device_id.as_deref()) == Some(device_id);
        if !st.devices.devices.contains_key(device_id) {
            return Err(ErrorShape::invalid_request("unknown deviceId"));
        }
        let by_device_token = st.conns.get(caller_conn).and_then(|c| c.auth.as_ref()).is_some_and(|a| a.method == "device-token");
        if by_device_token && !admin && !own {
            return Err(ErrorShape::invalid_request("device removal denied: a device may remove only itself without operator.admin"));
        }
        st.devices.remove_device(device_id);
        st.devices_generation += 1;
        for rec in st.conns.values() {
            if rec.auth.as_ref().and_then(|a| a.device_id.as_deref()) == Some(device_id) {
                rec.sink.close(crate::wire::close_code::CLIENT_INVALIDATED, "device removed");
            }
        }
        Ok(json!({"deviceId": device_id}))
    }

    /// HTTP `Bearer <device token>`: the role and scopes of the paired device holding it.
    pub fn device_token_bearer(&self, presented: &str) -> Option<(String, Vec<String>)> {
        self.lock().devices.find_token(presented).map(|(_, role, scopes)| (role, scopes))
    }

    /// The device store and its generation (the shell persists it when the generation moves).
    pub fn devices_snapshot(&self) -> (u64, DeviceStore) {
        let st = self.lock();
        (st.devices_generation, st.devices.clone())
    }

    /// Current device-store generation.
    pub fn devices_generation(&self) -> u64 {
        self.lock().devices_generation
    }

    /// Load the persisted device store (startup).
    pub fn load_devices(&self, store: DeviceStore) {
        let mut st = self.lock();
        st.devices = store;
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
        let mut st = self.lock();
        st.now_unix = (now, unix_ms);
        let viewer_can_read = event_allowed(auth.role, &auth.scopes, &event_gate("presence"));
        if let Some(rec) = st.conns.get_mut(conn_id) {
            rec.auth = Some(auth);
        }
        if let Some(entry) = presence {
            st.presence.insert(conn_id.to_string(), PresenceRow { entry, ts: unix_ms, expires: None });
            self.broadcast_presence_locked(&mut st, now, unix_ms);
        }
        let h = self.health_locked(&mut st, now, unix_ms, false);
        let (health, health_json) = (h.value.clone(), h.json.clone());
        HelloSnapshot {
            presence: if viewer_can_read { self.presence_list_locked(&mut st, now, unix_ms) } else { Vec::new() },
            health,
            health_json,
            state_version: st.state_version,
        }
    }

    // ---- presence ----------------------------------------------------------------------

    fn self_presence(&self, unix_ms: u64) -> Value {
        let i = &self.info;
        let ip = i.ip.clone().unwrap_or_else(|| "127.0.0.1".into());
        json!({
            "host": i.host,
            "ip": ip,
            "version": i.version,
            "platform": i.platform,
            "deviceFamily": i.device_family,
            "mode": "gateway",
            "reason": "self",
            "instanceId": i.boot_id,
            "text": format!("Gateway: {} ({}) · app {} · mode gateway · reason self", i.host, ip, i.version),
            "ts": unix_ms,
        })
    }

    fn presence_list_locked(&self, st: &mut HubState, now: Instant, unix_ms: u64) -> Vec<Value> {
        st.presence.retain(|_, r| r.expires.is_none_or(|e| now < e));
        let max = st.settings.limits.presence_max;
        let mut rows: Vec<&PresenceRow> = st.presence.values().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.ts));
        let mut out = vec![self.self_presence(unix_ms)];
        out.extend(rows.into_iter().take(max.saturating_sub(1)).map(|r| r.entry.clone()));
        out
    }

    /// `system-presence`: the gateway's own row plus connected/recently disconnected clients.
    pub fn presence_list(&self, now: Instant, unix_ms: u64) -> Vec<Value> {
        let mut st = self.lock();
        self.presence_list_locked(&mut st, now, unix_ms)
    }

    fn broadcast_presence_locked(&self, st: &mut HubState, now: Instant, unix_ms: u64) {
        st.state_version.presence += 1;
        let list = self.presence_list_locked(st, now, unix_ms);
        let payload = json!({ "presence": list }).to_string();
        let sv = st.state_version;
        Self::fan_out_locked(st, "presence", Some(payload), true, Some(sv));
    }

    // ---- health ------------------------------------------------------------------------

    /// Runtime load figures from the shell's sampler.
    pub fn set_runtime_stats(&self, stats: RuntimeStats, unix_ms: u64) {
        let mut st = self.lock();
        let degraded = !degraded_reasons(&stats).is_empty();
        st.degraded_since_ms = match (degraded, st.degraded_since_ms) {
            (true, None) => Some(unix_ms),
            (true, since) => since,
            (false, _) => None,
        };
        st.runtime = stats;
    }

    pub fn runtime_stats(&self) -> RuntimeStats {
        self.lock().runtime.clone()
    }

    /// The `eventLoop` object (health, status, readyz).
    pub fn event_loop_json(&self) -> Value {
        let st = self.lock();
        event_loop_json(&st.runtime, st.degraded_since_ms)
    }

    /// Record that a store failed to load (moved aside, recovered, or left unwritable): it
    /// shows in `health` and `status` until the process ends.
    pub fn report_store_problem(&self, key: &str, warning: Value) {
        let mut st = self.lock();
        st.store_warnings.insert(key.to_string(), warning);
        st.health = None;
    }

    /// The problem recorded under `key` is over (a store that failed to write wrote again).
    pub fn clear_store_problem(&self, key: &str) {
        let mut st = self.lock();
        if st.store_warnings.remove(key).is_some() {
            st.health = None;
        }
    }

    /// What [`Hub::report_store_problem`] recorded.
    pub fn store_warnings(&self) -> Vec<Value> {
        self.lock().store_warnings.values().cloned().collect()
    }

    /// The cached health snapshot, rebuilt when older than `health_interval` or when `force`d.
    fn health_locked<'s>(&self, st: &'s mut HubState, now: Instant, unix_ms: u64, force: bool) -> &'s HealthCache {
        let interval = st.settings.limits.health_interval;
        let fresh = st.health.as_ref().is_some_and(|h| now.saturating_duration_since(h.at) < interval);
        if force || !fresh {
            let warnings: Vec<Value> = st.store_warnings.values().cloned().collect();
            let value = health_snapshot(self, &st.settings, &st.runtime, st.degraded_since_ms, &warnings, unix_ms);
            st.health = Some(HealthCache::new(now, value));
        }
        st.health.as_ref().expect("health snapshot just cached")
    }

    /// The health snapshot (cached for `health_interval` unless `force`).
    pub fn health(&self, now: Instant, unix_ms: u64, force: bool) -> Value {
        let mut st = self.lock();
        self.health_locked(&mut st, now, unix_ms, force).value.clone()
    }

    /// The health snapshot as serialized JSON (the same cache as [`Hub::health`]): what the
    /// `health` method answers with. Holds the hub lock only for an `Arc` clone.
    pub fn health_json(&self, now: Instant, unix_ms: u64, force: bool) -> Arc<str> {
        let mut st = self.lock();
        self.health_locked(&mut st, now, unix_ms, force).json.clone()
    }

    pub fn state_version(&self) -> StateVersion {
        self.lock().state_version
    }

    // ---- broadcast ---------------------------------------------------------------------

    fn fan_out_locked(st: &HubState, event: &str, payload: Option<String>, drop_if_slow: bool, sv: Option<StateVersion>) {
        let gate = event_gate(event);
        let b = Arc::new(Broadcast { event: event.to_string(), payload, gate: gate.clone(), drop_if_slow, state_version: sv });
        for rec in st.conns.values() {
            if let Some(a) = &rec.auth {
                if event_allowed(a.role, &a.scopes, &gate) {
                    rec.sink.deliver(b.clone());
                }
            }
        }
    }

    /// Send an event to every authenticated socket allowed to see it.
    pub fn broadcast(&self, event: &str, payload: Option<&Value>, drop_if_slow: bool) {
        let st = self.lock();
        Self::fan_out_locked(&st, event, payload.map(Value::to_string), drop_if_slow, None);
    }

    // ---- timers ------------------------------------------------------------------------

    /// Next global deadline (tick, health refresh).
    pub fn poll_timeout(&self) -> Instant {
        let st = self.lock();
        let waiters = st
            .runs
            .runs
            .values()
            .filter_map(|r| if let RunState::Running { waiters, .. } = &r.state { waiters.iter().map(|w| w.deadline).min() } else { None })
            .min();
        let t = st.next_tick.min(st.next_health);
        waiters.map_or(t, |w| t.min(w))
    }

    /// Fire due global timers: `tick` every 30 s, a `health` refresh every 60 s, and
    /// `agent.wait` timeouts.
    pub fn handle_timeout(&self, now: Instant, unix_ms: u64) {
        let mut st = self.lock();
        st.now_unix = (now, unix_ms);
        self.expire_waiters_locked(&mut st, now);
        let limits = st.settings.limits;
        if now >= st.next_health {
            while st.next_health <= now {
                st.next_health += limits.health_interval;
            }
            let json = self.health_locked(&mut st, now, unix_ms, true).json.to_string();
            st.state_version.health += 1;
            let sv = st.state_version;
            Self::fan_out_locked(&st, "health", Some(json), true, Some(sv));
        }
        if now >= st.next_tick {
            while st.next_tick <= now {
                st.next_tick += limits.tick_interval;
            }
            Self::fan_out_locked(&st, "tick", Some(json!({ "ts": unix_ms }).to_string()), true, None);
        }
    }

    // ---- agent runs --------------------------------------------------------------------

    /// `agent`: start a run for this socket's request, or answer a duplicate (spec §10.3).
    pub fn start_run(&self, conn_id: &str, request_id: &str, params: Option<&Value>, now: Instant, unix_ms: u64) -> Start {
        let agents = self.settings().api.agents.clone();
        let spec = match crate::agent::parse_agent_params(params, &agents) {
            Ok(s) => s,
            Err(e) => return Start::Answer(Reply::err(e)),
        };
        self.lock().runs.start(spec, (conn_id.to_string(), request_id.to_string()), now, unix_ms)
    }

    fn run_event_locked(st: &mut HubState, run_id: &str, stream: &str, data: Value, unix_ms: u64) -> Option<RunSpec> {
        let (spec, seq) = st.runs.next_seq(run_id)?;
        let payload = crate::agent::agent_event(&spec, stream, data, seq, unix_ms);
        Self::fan_out_locked(st, "agent", Some(payload.to_string()), false, None);
        Some(spec)
    }

    /// The run reached its model (lifecycle `model` event).
    pub fn begin_run(&self, run_id: &str, provider: Option<&str>, model: Option<&str>, unix_ms: u64) {
        let mut st = self.lock();
        Self::run_event_locked(&mut st, run_id, "lifecycle", json!({"phase": "model", "provider": provider, "model": model}), unix_ms);
    }

    /// Streamed assistant text (an `agent` assistant event and a `chat` delta).
    pub fn run_delta(&self, run_id: &str, delta: &str, unix_ms: u64) {
        let mut st = self.lock();
        // The text so far rides along (`data.text`, `message`), as in the reference's events.
        let text = match st.runs.runs.get_mut(run_id) {
            Some(r) => {
                r.text.push_str(delta);
                r.text.clone()
            }
            None => return,
        };
        if let Some(spec) = Self::run_event_locked(&mut st, run_id, "assistant", json!({"text": text, "delta": delta}), unix_ms) {
            let seq = st.runs.runs.get(run_id).map(|r| r.seq).unwrap_or(0);
            let chat = json!({"runId": spec.run_id, "sessionKey": spec.session_key, "agentId": spec.agent_id, "seq": seq, "state": "delta",
                "deltaText": delta, "message": {"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": unix_ms}});
            Self::fan_out_locked(&st, "chat", Some(chat.to_string()), true, None);
        }
    }

    /// The run started executing (lifecycle `start` event).
    /// The model reported its usage (`agent` stream `usage`, `{outputTokens}`: the token count
    /// of the UI's "Done in … · N output tokens" recap).
    /// The run's `usage` event; none for a turn that produced no tokens (as the reference).
    pub fn run_usage(&self, run_id: &str, output_tokens: u64, unix_ms: u64) {
        if output_tokens == 0 {
            return;
        }
        let mut st = self.lock();
        Self::run_event_locked(&mut st, run_id, "usage", json!({"outputTokens": output_tokens}), unix_ms);
    }

    pub fn run_started(&self, run_id: &str, unix_ms: u64) {
        let mut st = self.lock();
        let Some(started_at) = st.runs.runs.get(run_id).map(|r| r.started_at) else { return };
        Self::run_event_locked(&mut st, run_id, "lifecycle", json!({"phase": "start", "startedAt": started_at}), unix_ms);
    }

    // ---- session-event subscriptions ---------------------------------------------------

    /// `sessions.subscribe`: this socket receives `sessions.changed`. `false` when the socket
    /// is gone.
    pub fn subscribe_sessions(&self, conn_id: &str) -> bool {
        self.lock().conns.get_mut(conn_id).map(|r| r.subs.sessions = true).is_some()
    }

    /// `sessions.messages.subscribe` / `unsubscribe` of a canonical session key. `false` when
    /// the socket is gone.
    pub fn subscribe_session_messages(&self, conn_id: &str, key: &str, on: bool) -> bool {
        let mut st = self.lock();
        let Some(rec) = st.conns.get_mut(conn_id) else { return false };
        if on {
            rec.subs.messages.insert(key.to_string());
        } else {
            rec.subs.messages.remove(key);
        }
        true
    }

    /// Send a session event to the authenticated sockets allowed to see it that are in
    /// `audience`. Sockets outside it never see the event, so it takes no `seq` of theirs.
    pub fn broadcast_to(&self, event: &str, payload: &Value, audience: Audience<'_>) {
        let st = self.lock();
        let gate = event_gate(event);
        let b = Arc::new(Broadcast {
            event: event.to_string(),
            payload: Some(payload.to_string()),
            gate: gate.clone(),
            drop_if_slow: false,
            state_version: None,
        });
        for rec in st.conns.values() {
            let wanted = match audience {
                Audience::SessionsSubscribers => rec.subs.sessions,
                Audience::SessionMessages(key) => rec.subs.messages.contains(key),
            };
            if let Some(a) = rec.auth.as_ref().filter(|_| wanted) {
                if event_allowed(a.role, &a.scopes, &gate) {
                    rec.sink.deliver(b.clone());
                }
            }
        }
    }

    /// The run ended: lifecycle and `chat` events, the final answer to the caller, `agent.wait`
    /// answers, and the result cached for idempotent replays.
    pub fn finish_run(&self, run_id: &str, outcome: Outcome, now: Instant, unix_ms: u64) {
        let mut st = self.lock();
        let Some(run) = st.runs.runs.get(run_id) else { return };
        let started_at = run.started_at;
        let data = crate::agent::lifecycle_end(&outcome, started_at, unix_ms);
        let Some(spec) = Self::run_event_locked(&mut st, run_id, "lifecycle", data, unix_ms) else { return };
        let seq = st.runs.runs.get(run_id).map(|r| r.seq).unwrap_or(0);
        let chat = crate::agent::chat_end(&spec, seq, &outcome, unix_ms);
        Self::fan_out_locked(&st, "chat", Some(chat.to_string()), false, None);
        let (reply, status, error) = crate::agent::final_reply(&spec, &outcome);
        let Some(run) = st.runs.runs.get_mut(run_id) else { return };
        // Finished runs stay for idempotent replays; their streamed text is not needed.
        run.text = String::new();
        let previous = std::mem::replace(
            &mut run.state,
            RunState::Finished { reply: Box::new(reply.clone()), status, ended_at: unix_ms, error: error.clone(), at: now },
        );
        if let RunState::Running { owner, waiters } = previous {
            if let Some((conn_id, request_id)) = owner {
                if let Some(rec) = st.conns.get(&conn_id) {
                    rec.sink.complete(&request_id, reply);
                }
            }
            let waited = wait_result(run_id, status, unix_ms, error.as_deref());
            for w in waiters {
                if let Some(rec) = st.conns.get(&w.conn_id) {
                    rec.sink.complete(&w.request_id, waited.clone());
                }
            }
        }
    }

    /// `agent.wait`: the result now if the run ended, else `None` and the answer comes through
    /// the socket's sink when it ends or the timeout passes.
    pub fn wait_run(&self, conn_id: &str, request_id: &str, params: Option<&Value>, now: Instant) -> Option<Reply> {
        let (run_id, timeout) = match crate::agent::parse_wait_params(params) {
            Ok(p) => p,
            Err(e) => return Some(Reply::err(e)),
        };
        let mut st = self.lock();
        match st.runs.runs.get_mut(&run_id).map(|r| &mut r.state) {
            Some(RunState::Finished { status, ended_at, error, .. }) => Some(wait_result(&run_id, status, *ended_at, error.as_deref())),
            Some(RunState::Running { waiters, .. }) => {
                waiters.push(Waiter { conn_id: conn_id.to_string(), request_id: request_id.to_string(), deadline: now + timeout });
                None
            }
            // Unknown run: nothing will finish it.
            None => Some(Reply::Ok(Some(json!({"runId": run_id, "status": "timeout"})))),
        }
    }

    fn expire_waiters_locked(&self, st: &mut HubState, now: Instant) {
        let mut expired = Vec::new();
        for r in st.runs.runs.values_mut() {
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
            if let Some(rec) = st.conns.get(&w.conn_id) {
                rec.sink.complete(&w.request_id, Reply::Ok(Some(json!({"runId": run_id, "status": "timeout"}))));
            }
        }
    }

    // ---- request-start queue -----------------------------------------------------------

    /// Reserve a slot for a request of `bytes` frame bytes; `None` when the queue is full.
    pub fn try_start_request(&self, bytes: usize) -> Option<RequestPermit> {
        let limits = self.settings().limits;
        let pending = self.gate.pending.fetch_add(1, Ordering::AcqRel);
        let total = self.gate.bytes.fetch_add(bytes, Ordering::AcqRel);
        if pending >= limits.request_queue_max || total + bytes > limits.request_queue_max_bytes {
            self.gate.pending.fetch_sub(1, Ordering::AcqRel);
            self.gate.bytes.fetch_sub(bytes, Ordering::AcqRel);
            return None;
        }
        Some(RequestPermit { counters: Some(self.gate.clone()), bytes })
    }

    /// Requests currently holding a start-queue slot.
    pub fn pending_requests(&self) -> usize {
        self.gate.pending.load(Ordering::Acquire)
    }

    // ---- shutdown ----------------------------------------------------------------------

    /// Stop admitting new sockets (new upgrades get 503).
    pub fn begin_drain(&self) {
        self.lock().draining = true;
    }

    /// Tell every socket (authenticated or not) that the gateway is stopping.
    pub fn shutdown_all(&self, reason: &str) {
        let st = self.lock();
        for rec in st.conns.values() {
            rec.sink.shutdown(reason);
        }
    }

    pub fn is_draining(&self) -> bool {
        self.lock().draining
    }

    pub fn auth_mode(&self) -> AuthMode {
        self.settings().auth.mode
    }
}

fn wait_result(run_id: &str, status: &str, ended_at: u64, error: Option<&str>) -> Reply {
    let mut p = json!({"runId": run_id, "status": status, "endedAt": ended_at});
    if let Some(e) = error {
        p["error"] = json!(e);
    }
    Reply::Ok(Some(p))
}

fn unix_at(at: Instant, unix: u64, now: Instant) -> u64 {
    if now >= at {
        unix + now.duration_since(at).as_millis() as u64
    } else {
        unix.saturating_sub(at.duration_since(now).as_millis() as u64)
    }
}

/// Thresholds above which the runtime reports itself degraded.
pub const DEGRADED_DELAY_P99_MS: f64 = 1_000.0;
pub const DEGRADED_UTILIZATION: f64 = 0.9;

fn degraded_reasons(s: &RuntimeStats) -> Vec<&'static str> {
    let mut r = Vec::new();
    if s.delay_p99_ms >= DEGRADED_DELAY_P99_MS {
        r.push("event_loop_delay");
    }
    if s.utilization >= DEGRADED_UTILIZATION {
        r.push("event_loop_utilization");
    }
    if s.host_utilization.is_some_and(|h| h >= 0.98) && s.cpu_core_ratio >= 0.9 {
        r.push("cpu");
    }
    r
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub(crate) fn event_loop_json(s: &RuntimeStats, degraded_since_ms: Option<u64>) -> Value {
    let reasons = degraded_reasons(s);
    json!({
        "degraded": !reasons.is_empty(),
        "degradedSinceMs": degraded_since_ms,
        "reasons": reasons,
        "intervalMs": s.interval_ms,
        "delayP99Ms": round3(s.delay_p99_ms),
        "delayMaxMs": round3(s.delay_max_ms),
        "utilization": round3(s.utilization),
        "cpuCoreRatio": round3(s.cpu_core_ratio),
        "cpuBreakdown": {
            "mainThreadCoreRatio": round3(s.cpu_core_ratio),
            "workerCoreRatio": 0,
            "otherThreadsCoreRatio": 0,
            "hostUtilization": round3(s.host_utilization.unwrap_or(0.0).clamp(0.0, 1.0)),
            "hostCpuCount": s.host_cpu_count.max(1),
        },
    })
}

/// A verified device asking to be paired, and how it connected.
#[derive(Debug)]
pub(crate) struct PairAttempt<'a> {
    pub subject: PairingSubject<'a>,
    /// Direct-local connection whose Origin (if any) belongs to a browser UI.
    pub local_silent: bool,
    /// Authenticated by the shared secret (or auth none): may widen scopes silently.
    pub shared_secret: bool,
}

/// What `hello-ok.snapshot` needs from the hub.
#[derive(Debug, Clone)]
pub struct HelloSnapshot {
    pub presence: Vec<Value>,
    pub health: Value,
    /// `health` serialized (the cached text: the post-connect `health` event's payload).
    pub health_json: Arc<str>,
    pub state_version: StateVersion,
}

/// An admitted upgrade: carries the attribution and holds the per-IP pre-auth slot.
pub struct Admission {
    hub: Arc<Hub>,
    pub attribution: Attribution,
    /// The client's IP (after proxy attribution).
    pub ip: IpAddr,
    /// The socket's peer address.
    pub remote: IpAddr,
    pub facts: RequestFacts,
    slot_held: bool,
}

impl Admission {
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }
    /// Give the pre-auth slot back (the socket authenticated).
    pub(crate) fn release_slot(&mut self) {
        if std::mem::take(&mut self.slot_held) {
            self.hub.release_preauth(self.ip);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.release_slot();
    }
}

// ---- the health snapshot -----------------------------------------------------------------

fn agent_sessions() -> Value {
    json!({"path": "", "count": 0, "recent": []})
}

/// The health snapshot (the `health` method result and `health` event payload).
fn health_snapshot(
    hub: &Hub,
    settings: &GatewaySettings,
    runtime: &RuntimeStats,
    degraded_since: Option<u64>,
    store_warnings: &[Value],
    unix_ms: u64,
) -> Value {
    let _ = hub;
    let mut v = json!({
        "ok": true,
        "ts": unix_ms,
        "durationMs": runtime_probe_ms(runtime),
        "plugins": {"loaded": [], "errors": [], "unavailable": []},
        "configReload": {"hotReloadStatus": if settings.hot_reload_active { "active" } else { "disabled" }},
        "channels": {},
        "channelOrder": [],
        "channelLabels": {},
        "heartbeatSeconds": 0,
        "defaultAgentId": "main",
        "agents": [{
            "agentId": "main",
            "isDefault": true,
            "heartbeat": {"enabled": false, "every": "disabled", "everyMs": null, "prompt": "", "target": "none", "ackMaxChars": 0},
            "sessions": agent_sessions(),
        }],
        "sessions": agent_sessions(),
        "modelRuntime": {"degraded": false, "pendingAgents": []},
        "eventLoop": event_loop_json(runtime, degraded_since),
    });
    // Ours (absent while every store loaded): a store that was damaged, moved aside, recovered.
    if !store_warnings.is_empty() {
        v["storeWarnings"] = json!(store_warnings);
    }
    v
}

fn runtime_probe_ms(r: &RuntimeStats) -> u64 {
    // The sampler's own collection time (reading process and host counters) is the cost of a
    // health probe here.
    r.probe_duration_ms
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("attribution", &self.attribution).field("ip", &self.ip).finish()
    }
}

impl Hub {
    /// Time left before the next tick (for tests and diagnostics).
    pub fn until_next_tick(&self, now: Instant) -> Duration {
        self.lock().next_tick.saturating_duration_since(now)
    }
}

impl Hub {
    /// Start a run without a socket owner (hooks, `chat.send`); see [`Runs::start_unowned`].
    pub fn start_unowned_run(&self, spec: RunSpec, now: Instant, unix_ms: u64) -> Result<RunSpec, Option<&'static str>> {
        self.with_runs(|runs| runs.start_unowned(spec, now, unix_ms))
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
    /// [`Outcome::Aborted`].
    pub fn abort_runs(&self, session_key: &str, run_id: Option<&str>) -> Vec<String> {
        let (ids, controls) = self.with_runs(|runs| runs.request_abort(session_key, run_id));
        for c in controls {
            c.abort();
        }
        ids
    }
}

impl Hub {
    /// Run `f` on the run registry (under the hub's lock: keep it short, never block).
    pub(crate) fn with_runs<T>(&self, f: impl FnOnce(&mut crate::agent::Runs) -> T) -> T {
        f(&mut self.lock().runs)
    }

    /// The hooks' own failed-auth limiter (for [`crate::http::hooks::gate`]; keep the guard short).
    pub fn hook_limiter(&self) -> MutexGuard<'_, crate::auth::HookAuthLimiter> {
        self.hook_limiter.lock().unwrap_or_else(|p| p.into_inner())
    }
}
