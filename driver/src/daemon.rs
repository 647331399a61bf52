//! `clawgate run`: load the config, decide the settings (core), bind, serve; apply config
//! changes (hot reload, in-process restart onto a new address, or exit 0 under a supervisor);
//! drain on SIGTERM.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawgate_core::cli::RunArgs;
use clawgate_core::config::settings::CliInputs;
use clawgate_core::config::{BindPlan, StartupError};
use clawgate_core::gateway::{Hub, ServerInfo};
use clawgate_core::wire::msg;
use futures_channel::mpsc::unbounded;
use futures_channel::oneshot;
use futures_util::StreamExt;
use futures_util::future::{Either, select};

use crate::config::{self as shellcfg, ConfigRuntime, Control};
use crate::rt::Runtime;
use crate::session::{os_random, unix_ms};
use crate::{sampler, service, state};

/// How long a busy port is retried (a restarting predecessor may still hold it).
const BIND_RETRIES: u32 = 4;
const BIND_RETRY_DELAY: Duration = Duration::from_millis(250);

/// What every connection task shares.
pub struct Ctx {
    pub hub: Arc<Hub>,
    pub config: Arc<Mutex<ConfigRuntime>>,
    /// The session store, opened on first use (off the start-up path); `None` if it cannot be
    /// opened (sessions are then not kept; the gateway still serves).
    store: std::sync::OnceLock<Option<Arc<crate::store::Store>>>,
    /// Callers waiting for the store's first opening ([`crate::persist::open_store`]): one
    /// blocking thread opens it, the rest wait here instead of each holding a thread.
    pub(crate) store_waiters: Mutex<Option<Vec<futures_channel::oneshot::Sender<()>>>>,
    state_dir: String,
    /// The device-store generation last written; held while writing so saves never reorder.
    devices_saved: Mutex<Option<u64>>,
    /// False when the pairing store on disk failed to load and could not be moved aside: it is
    /// never written over (pairing changes then fail instead of wiping it).
    devices_writable: std::sync::atomic::AtomicBool,
    /// Connections that have not sent a request head yet (bounded: [`crate::admission`]).
    pub pending_heads: Arc<crate::admission::PendingHeads>,
    /// The cron scheduler and its shell.
    pub cron: crate::cron::CronService,
}

fn hub_boot_id(hub: &Hub) -> String {
    hub.info().boot_id.clone()
}

impl Ctx {
    pub fn new(hub: Arc<Hub>, config: Arc<Mutex<ConfigRuntime>>, state_dir: String) -> Ctx {
        Ctx {
            pending_heads: crate::admission::PendingHeads::new(None),
            cron: crate::cron::CronService::new(hub_boot_id(&hub)),
            hub,
            config,
            store: std::sync::OnceLock::new(),
            store_waiters: Mutex::new(None),
            state_dir,
            devices_saved: Mutex::new(None),
            devices_writable: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The state dir (where the stores live).
    pub fn state_dir(&self) -> &str {
        &self.state_dir
    }

    /// Note how a session-store write went: a failure shows in `health`/`status` as a degraded
    /// store until a later write succeeds.
    pub fn note_session_write(&self, result: &Result<(), String>) {
        match result {
            Ok(()) => self.hub.clear_store_problem("sessions"),
            Err(e) => self.hub.report_store_problem(
                "sessions",
                serde_json::json!({"store": "sessions", "state": "degraded", "error": e, "ts": crate::session::unix_ms()}),
            ),
        }
    }

    /// Write the paired-device store if it changed since the last write (blocking: call from
    /// `spawn_blocking`). Serialized, and the snapshot is taken under the lock, so an older
    /// store never overwrites a newer one.
    pub fn save_devices(&self) -> std::io::Result<()> {
        if !self.devices_writable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::other(format!(
                "the pairing store {} failed to load and is kept as it is; fix or remove it and restart",
                state::devices_path(&self.state_dir).display()
            )));
        }
        let mut saved = self.devices_saved.lock().unwrap_or_else(|p| p.into_inner());
        let (generation, store) = self.hub.devices_snapshot();
        if *saved == Some(generation) {
            return Ok(());
        }
        state::save_devices(&self.state_dir, &store)?;
        *saved = Some(generation);
        Ok(())
    }

    /// The session store if it was opened already (never blocks).
    pub fn open_store(&self) -> Option<Arc<crate::store::Store>> {
        self.store.get().cloned().flatten()
    }

    /// How the store's opening went, once it was tried: `Some(None)` when it cannot be opened.
    pub(crate) fn store_outcome(&self) -> Option<Option<Arc<crate::store::Store>>> {
        self.store.get().cloned()
    }

    /// The session store (blocking: the first call opens it; call from `spawn_blocking`).
    pub fn store(&self) -> Option<Arc<crate::store::Store>> {
        self.store
            .get_or_init(|| {
                let path = crate::store::sessions_db_path(&self.state_dir);
                match crate::store::Store::open(&path) {
                    Ok(s) => {
                        if let Some(r) = s.recovery() {
                            self.hub.report_store_problem(
                                "sessions-recovered",
                                serde_json::json!({
                                    "store": "sessions", "state": "recovered", "path": path.display().to_string(),
                                    "movedTo": r.moved_to.display().to_string(), "error": r.reason,
                                    "recovered": {"sessions": r.salvaged.sessions, "messages": r.salvaged.messages,
                                                  "responses": r.salvaged.responses, "cronJobs": r.salvaged.cron_jobs,
                                                  "cronRuns": r.salvaged.cron_runs},
                                    "ts": crate::session::unix_ms(),
                                }),
                            );
                        }
                        Some(Arc::new(s))
                    }
                    Err(e) => {
                        tracing::error!("session store unavailable, sessions will not be kept: {e}");
                        None
                    }
                }
            })
            .clone()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The address this host would use to reach the outside (no packet is sent).
fn primary_ipv4() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

fn platform() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    format!("{} {}", std::env::consts::OS, release).trim().to_string()
}

fn device_family() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".into(),
        "macos" => "Mac".into(),
        "windows" => "Windows".into(),
        other => other.to_string(),
    }
}

/// Random bytes for the process's secrets and ids; without OS randomness device tokens would be
/// predictable: refuse to run.
fn startup_random<const N: usize>() -> [u8; N] {
    os_random::<N>().unwrap_or_else(|e| {
        eprintln!("{e}; refusing to start");
        std::process::exit(1);
    })
}

/// The config runtime for these flags (reads `--password-file`).
pub fn config_runtime(args: &RunArgs) -> Result<ConfigRuntime, StartupError> {
    let state_dir = state::state_dir();
    let path = state::config_path(&state_dir);
    let password_from_file = match &args.password_file {
        Some(p) => Some(
            state::read_regular(std::path::Path::new(p), 64 * 1024)
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .map_err(|e| StartupError::failure(format!("Cannot read --password-file {p}: {e}")))?,
        ),
        None => None,
    };
    Ok(ConfigRuntime {
        cli: CliInputs {
            port: args.port.clone(),
            bind: args.bind.clone(),
            custom_bind_host: args.custom_bind_host.clone(),
            auth: args.auth.clone(),
            token: args.token.clone(),
            password: args.password.clone().or(password_from_file),
            allow_unconfigured: args.allow_unconfigured,
        },
        env: shellcfg::env_inputs(),
        state_dir,
        path,
        applied: None,
        kept_token: None,
        port: 0,
        bind: String::new(),
        baseline: None,
        dry_run: false,
        unused_reported: Default::default(),
    })
}

/// Does something already answer `/healthz` like a gateway on this port?
fn healthy_incumbent(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") && buf.contains("\"status\":\"live\"")
}

fn fmt_host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    }
}

async fn bind_all<R: Runtime>(rt: &R, plan: &BindPlan, port: u16, supervised: bool) -> Result<Vec<R::Listener>, StartupError> {
    let mut listeners = Vec::new();
    for (ip, optional) in &plan.listeners {
        let addr = SocketAddr::new(*ip, port);
        let mut attempt = 0;
        loop {
            match rt.bind(addr) {
                Ok(l) => {
                    listeners.push(l);
                    break;
                }
                Err(_) if *optional => break,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < BIND_RETRIES => {
                    attempt += 1;
                    rt.sleep_until(Instant::now() + BIND_RETRY_DELAY).await;
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    let hp = fmt_host_port(*ip, port);
                    let base = format!(
                        "another gateway instance is already listening on ws://{hp} | listen EADDRINUSE: address already in use {hp}"
                    );
                    if supervised && healthy_incumbent(addr) {
                        return Err(StartupError::config(format!(
                            "Gateway failed to start: gateway already running under a supervisor; existing gateway is healthy, exiting with code 78 to prevent a Restart=always loop | {base}"
                        )));
                    }
                    return Err(StartupError::failure(format!(
                        "Gateway failed to start: {base}\nPort {port} is already in use.\nFix: stop the other process (`clawgate status --port {port}` tells whether it is a gateway), or choose another port with --port, OPENCLAW_GATEWAY_PORT or gateway.port."
                    )));
                }
                Err(e) => {
                    return Err(StartupError::failure(format!(
                        "Gateway failed to start: failed to bind gateway socket on ws://{}: {e}",
                        fmt_host_port(*ip, port)
                    )));
                }
            }
        }
    }
    Ok(listeners)
}

/// Running accept loops; dropping it stops them (open connections are unaffected).
struct Listening {
    _stops: Vec<oneshot::Sender<()>>,
}

fn listen<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, listeners: Vec<R::Listener>) -> Listening {
    let mut stops = Vec::new();
    for l in listeners {
        if let Ok(addr) = rt.local_addr(&l) {
            tracing::info!("listening on ws://{}", fmt_host_port(addr.ip(), addr.port()));
        }
        let (tx, rx) = oneshot::channel();
        stops.push(tx);
        let (rt2, ctx2) = (rt.clone(), ctx.clone());
        rt.spawn(async move { accept_loop(rt2, ctx2, l, rx).await });
    }
    Listening { _stops: stops }
}

/// Run the gateway until SIGTERM/SIGINT (or, under a supervisor, until a restart is needed).
pub async fn run<R: Runtime>(rt: R, args: RunArgs) -> Result<(), StartupError> {
    let started_at = Instant::now();
    let started_unix = unix_ms();
    let supervised = shellcfg::supervised(args.supervised);
    let mut cfg_rt = config_runtime(&args)?;
    let resolved = shellcfg::startup(&mut cfg_rt)?;
    // The log file, from here on (spec operator §1.1).
    let no_config = serde_json::Value::Null;
    let logged_config = cfg_rt.applied.as_ref().map_or(&no_config, |(c, _)| &c.resolved);
    let log_target =
        clawgate_core::logs::LogTarget::resolve(logged_config, resolved.port, cfg_rt.env.profile.as_deref(), &std::env::temp_dir());
    crate::logfile::log_file().set_target(log_target, &hostname());
    for w in &resolved.warnings {
        tracing::warn!("{w}");
    }
    // Own the state dir before answering on any port (§8.1): a second gateway is refused here.
    let mut state_lock =
        crate::instance::StateLock::acquire(&rt, &cfg_rt.state_dir, (resolved.port, resolved.plan.mode.as_str()), started_unix, supervised)
            .await?;
    let listeners = bind_all(&rt, &resolved.plan, resolved.port, supervised).await?;
    let info = ServerInfo {
        version: clawgate_core::VERSION.to_string(),
        build_id: Some(format!("clawgate-{}-{}", clawgate_core::VERSION, rt.name())),
        boot_id: clawgate_core::ids::uuid_v4(startup_random()),
        host: hostname(),
        ip: primary_ipv4(),
        platform: platform(),
        device_family: device_family(),
        pid: std::process::id(),
        started_at,
        started_unix_ms: started_unix,
        config_path: cfg_rt.path.clone(),
        state_dir: cfg_rt.state_dir.clone(),
        runtime: rt.name().to_string(),
        secret_seed: startup_random::<32>(),
    };
    let hub = Hub::new(info, resolved.settings.clone(), started_at);
    let devices_load = state::load_devices(&cfg_rt.state_dir, unix_ms());
    let devices_unusable = matches!(devices_load, state::DevicesLoad::Unusable { .. });
    match devices_load {
        state::DevicesLoad::Loaded(store) => hub.load_devices(store),
        state::DevicesLoad::Recovered { salvaged, moved_to } => {
            let (devices, pending) = (salvaged.store.devices.len(), salvaged.store.pending.len());
            let path = state::devices_path(&cfg_rt.state_dir);
            tracing::error!(
                "PAIRING STORE DAMAGED: {} did not load ({}); moved it to {} and recovered {devices} paired device(s) and {pending} pending request(s) from it; anything after the damage is lost unless restored from that copy",
                path.display(),
                salvaged.error,
                moved_to.display()
            );
            hub.report_store_problem(
                "devices",
                serde_json::json!({
                    "store": "devices", "state": "recovered", "path": path.display().to_string(),
                    "movedTo": moved_to.display().to_string(), "error": salvaged.error,
                    "recovered": {"devices": devices, "pending": pending}, "ts": unix_ms(),
                }),
            );
            hub.load_devices(salvaged.store);
        }
        state::DevicesLoad::Unusable { error } => {
            tracing::error!("PAIRING STORE UNUSABLE: {error}; it is left untouched and pairing changes will fail until it is fixed");
            hub.report_store_problem(
                "devices",
                serde_json::json!({
                    "store": "devices", "state": "unusable", "path": state::devices_path(&cfg_rt.state_dir).display().to_string(),
                    "error": error, "ts": unix_ms(),
                }),
            );
        }
    }
    let token_note = if cfg_rt.kept_token.is_some() {
        format!("token kept in {}", state::token_path(&cfg_rt.state_dir).display())
    } else {
        "secret from flags, environment or config".to_string()
    };
    let config_note =
        if cfg_rt.applied.is_some() { format!("config {}", cfg_rt.path) } else { format!("no config file ({})", cfg_rt.path) };
    let state_dir = cfg_rt.state_dir.clone();
    let fd_limit = crate::admission::raise_fd_limit();
    if let Some(n) = fd_limit {
        tracing::debug!("open files limit: {n}");
    }
    let mut ctx = Ctx::new(hub.clone(), Arc::new(Mutex::new(cfg_rt)), state_dir.clone());
    ctx.pending_heads = crate::admission::PendingHeads::new(fd_limit);
    let ctx = Arc::new(ctx);
    if devices_unusable {
        ctx.devices_writable.store(false, std::sync::atomic::Ordering::SeqCst);
    } else if !hub.store_warnings().is_empty() {
        // The recovered records become the store again (the damaged file is kept aside).
        if let Err(e) = ctx.save_devices() {
            tracing::error!("recovered pairing store not saved: {e}");
        }
    }
    // The session store opens on first use: an idle gateway that never runs an agent does not
    // map SQLite's code or caches (idle RSS is a product promise).
    // Recorded before the first connection is accepted: a client that saw this gateway answer
    // finds the record too.
    if let Err(e) = state::write_run_file(&state_dir, resolved.port, resolved.plan.mode.as_str()) {
        tracing::warn!("cannot record the gateway's address in {}: {e}", state::run_file_path(&state_dir).display());
    }
    // A session store that already exists is opened (and checked) now, in the background, so a
    // damaged one is recovered and reported at once; a gateway that never kept a session does
    // not map SQLite at all (idle RSS).
    if crate::store::sessions_db_path(&state_dir).exists() {
        // The same single opener the first requests use (they wait for it instead of racing).
        let (rt2, ctx2) = (rt.clone(), ctx.clone());
        rt.spawn(async move {
            let _ = crate::persist::open_store(&rt2, &ctx2).await;
        });
    }
    let mut listening = listen(&rt, &ctx, listeners);
    let startup_ms = hub.info().started_at.elapsed().as_millis() as u64;
    hub.record_diagnostic(
        "diagnostic.phase.completed",
        serde_json::json!({"phase": "gateway.startup", "durationMs": startup_ms}),
        unix_ms(),
    );
    tracing::info!(
        "gateway ready (auth mode {}, {token_note}; {config_note}); runtime {}",
        resolved.settings.auth.mode.as_str(),
        rt.name()
    );

    let (rt2, hub2) = (rt.clone(), hub.clone());
    rt.spawn(async move {
        loop {
            rt2.sleep_until(hub2.poll_timeout()).await;
            hub2.handle_timeout(Instant::now(), unix_ms());
        }
    });
    rt.spawn(sampler::run(rt.clone(), hub.clone()));
    rt.spawn(crate::cron::run(rt.clone(), ctx.clone()));
    let (control_tx, mut control_rx) = unbounded();
    rt.spawn(shellcfg::watch(rt.clone(), hub.clone(), ctx.config.clone(), control_tx, ctx.cron.waker()));

    let mut signal = rt.shutdown_signal();
    let reason = loop {
        match select(signal, control_rx.next()).await {
            Either::Left((sig, _)) => break format!("received {sig}"),
            Either::Right((None, s)) => {
                signal = s;
            }
            Either::Right((Some(Control::Restart(r, reasons)), s)) => {
                signal = s;
                let (old_port, old_bind) = {
                    let c = ctx.config.lock().unwrap_or_else(|p| p.into_inner());
                    (c.port, c.bind.clone())
                };
                let moved = r.port != old_port || r.plan.mode.as_str() != old_bind;
                if moved {
                    // New listeners first: if they cannot be bound, keep serving on the old ones.
                    match bind_all(&rt, &r.plan, r.port, false).await {
                        Ok(ls) => {
                            let _ = state::write_run_file(&state_dir, r.port, r.plan.mode.as_str());
                            state_lock.set_address(r.port, r.plan.mode.as_str());
                            let fresh = listen(&rt, &ctx, ls);
                            listening = fresh;
                            let mut c = ctx.config.lock().unwrap_or_else(|p| p.into_inner());
                            c.port = r.port;
                            c.bind = r.plan.mode.as_str().to_string();
                        }
                        Err(e) => {
                            tracing::error!("restart refused: {}; the gateway keeps serving on its current address", e.message);
                            continue;
                        }
                    }
                }
                hub.replace_settings(r.settings);
                let _ = ctx.cron.waker().unbounded_send(());
                // Sockets of the previous generation reconnect under the new settings.
                hub.shutdown_all("gateway restarting");
                tracing::info!("gateway restarted in process ({})", reasons.join(", "));
            }
        }
    };
    tracing::info!("{reason}; shutting down");
    drop(listening);
    state::remove_run_file(&state_dir);
    hub.begin_drain();
    hub.shutdown_all(msg::GATEWAY_STOPPING);
    let deadline = Instant::now() + hub.settings().limits.shutdown_drain;
    while hub.connection_counts().0 > 0 && Instant::now() < deadline {
        rt.sleep_until(Instant::now() + Duration::from_millis(20)).await;
    }
    if let Err(e) = ctx.save_devices() {
        tracing::warn!("paired devices not saved: {e}");
    }
    drop(state_lock);
    tracing::info!("shutdown complete");
    Ok(())
}

async fn accept_loop<R: Runtime>(rt: R, ctx: Arc<Ctx>, listener: R::Listener, mut stop: oneshot::Receiver<()>) {
    loop {
        let accepted = {
            let accept = rt.accept(&listener);
            match select(accept, &mut stop).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => return,
            }
        };
        match accepted {
            Ok((io, remote)) => {
                let (pending, evicted) = ctx.pending_heads.admit(remote.ip());
                let (rt2, ctx2) = (rt.clone(), ctx.clone());
                rt.spawn(async move { service::serve_connection(rt2, ctx2, io, remote, pending, evicted).await });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!("accept failed: {e}");
                rt.sleep_until(Instant::now() + Duration::from_millis(50)).await;
            }
        }
    }
}
