//! `clawgate run`: resolve settings (core decisions), bind, serve, drain on SIGTERM.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawgate_core::auth::{AuthSettings, RateLimitPolicy, Secret};
use clawgate_core::cli::RunArgs;
use clawgate_core::config::{self, AuthInputs, StartupError};
use clawgate_core::gateway::{GatewaySettings, Hub, ListenInfo, ServerInfo};
use clawgate_core::wire::msg;

use crate::rt::Runtime;
use crate::session::{random16, unix_ms};
use crate::{sampler, service, state};

/// How long a busy port is retried (a restarting predecessor may still hold it).
const BIND_RETRIES: u32 = 4;
const BIND_RETRY_DELAY: Duration = Duration::from_millis(250);

fn env_nonblank(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn can_bind(ip: IpAddr) -> bool {
    StdListener::bind(SocketAddr::new(ip, 0)).is_ok()
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

/// Everything resolved before binding.
pub struct Prepared {
    pub settings: GatewaySettings,
    pub plan: config::BindPlan,
    pub port: u16,
    pub state_dir: String,
    pub config_path: String,
    /// The token came from the state dir (generated once).
    pub token_from_state: bool,
}

/// Resolve port, bind and auth from flags and environment (decision tables A–E).
pub fn prepare(args: &RunArgs) -> Result<Prepared, StartupError> {
    let state_dir = state::state_dir();
    let config_path = state::config_path(&state_dir);
    let port = config::resolve_port(
        args.port.as_deref(),
        env_nonblank("OPENCLAW_GATEWAY_PORT").as_deref(),
        None,
        env_nonblank("OPENCLAW_PROFILE").as_deref(),
    )?;
    let mode = config::resolve_bind_mode(args.bind.as_deref(), None)?;
    let plan = config::resolve_bind_plan(mode, args.custom_bind_host.as_deref(), can_bind)?;
    let password_from_file = match &args.password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| StartupError::failure(format!("Cannot read --password-file {path}: {e}")))?,
        ),
        None => None,
    };
    let cli = AuthInputs { mode: args.auth.clone(), token: args.token.clone(), password: args.password.clone().or(password_from_file) };
    let env = AuthInputs { mode: None, token: env_nonblank("OPENCLAW_GATEWAY_TOKEN"), password: env_nonblank("OPENCLAW_GATEWAY_PASSWORD") };
    let mut auth = config::resolve_auth(&cli, &AuthInputs::default(), &env, &AuthInputs::default())?;
    let mut token_from_state = false;
    if config::startup_auth_gate(&auth, &plan)? {
        let token = state::load_or_create_token(&state_dir).map_err(|e| {
            StartupError::failure(format!("Cannot keep the gateway token in {}: {e}", state::token_path(&state_dir).display()))
        })?;
        auth.token = Some(Secret::new(token));
        token_from_state = true;
    }
    let listen = ListenInfo { bind_mode: plan.mode.as_str().into(), bind_host: plan.host.to_string(), port };
    let settings = GatewaySettings::new(
        AuthSettings { mode: auth.mode, token: auth.token, password: auth.password, rate_limit: RateLimitPolicy::default() },
        listen,
    );
    Ok(Prepared { settings, plan, port, state_dir, config_path, token_from_state })
}

fn is_supervised() -> bool {
    ["INVOCATION_ID", "NOTIFY_SOCKET", "OPENCLAW_SERVICE_MARKER"].iter().any(|k| env_nonblank(k).is_some())
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

async fn bind_all<R: Runtime>(rt: &R, p: &Prepared) -> Result<Vec<R::Listener>, StartupError> {
    let mut listeners = Vec::new();
    for (ip, optional) in &p.plan.listeners {
        let addr = SocketAddr::new(*ip, p.port);
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
                    let url = format!("ws://{}", fmt_host_port(*ip, p.port));
                    let base = format!(
                        "another gateway instance is already listening on {url} | listen EADDRINUSE: address already in use {}",
                        fmt_host_port(*ip, p.port)
                    );
                    if is_supervised() && healthy_incumbent(addr) {
                        return Err(StartupError::config(format!(
                            "Gateway failed to start: gateway already running under a supervisor; existing gateway is healthy, exiting with code 78 to prevent a Restart=always loop | {base}"
                        )));
                    }
                    return Err(StartupError::failure(format!("Gateway failed to start: {base}\nPort {} is already in use.", p.port)));
                }
                Err(e) => {
                    return Err(StartupError::failure(format!(
                        "Gateway failed to start: failed to bind gateway socket on ws://{}: {e}",
                        fmt_host_port(*ip, p.port)
                    )));
                }
            }
        }
    }
    Ok(listeners)
}

fn fmt_host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    }
}

/// Run the gateway until SIGTERM/SIGINT. `ready` is called once listening, with the bound addresses.
pub async fn run<R: Runtime>(rt: R, args: RunArgs) -> Result<(), StartupError> {
    let started_at = Instant::now();
    let started_unix = unix_ms();
    let p = prepare(&args)?;
    let listeners = bind_all(&rt, &p).await?;
    let info = ServerInfo {
        version: clawgate_core::VERSION.to_string(),
        build_id: Some(format!("clawgate-{}-{}", clawgate_core::VERSION, rt.name())),
        boot_id: clawgate_core::ids::uuid_v4(random16()),
        host: hostname(),
        ip: primary_ipv4(),
        platform: platform(),
        device_family: device_family(),
        pid: std::process::id(),
        started_at,
        started_unix_ms: started_unix,
        config_path: p.config_path.clone(),
        state_dir: p.state_dir.clone(),
        runtime: rt.name().to_string(),
        secret_seed: random32(),
    };
    let hub = Hub::new(info, p.settings.clone(), started_at);
    match state::load_devices(&p.state_dir) {
        Ok(store) => hub.load_devices(store),
        Err(e) => tracing::warn!("paired devices not loaded ({}): {e}", state::devices_path(&p.state_dir).display()),
    }
    for l in &listeners {
        if let Ok(addr) = rt.local_addr(l) {
            tracing::info!("listening on ws://{}", fmt_host_port(addr.ip(), addr.port()));
        }
    }
    tracing::info!(
        "gateway ready (auth mode {}, token {}); runtime {}",
        p.settings.auth.mode.as_str(),
        if p.token_from_state {
            format!("kept in {}", state::token_path(&p.state_dir).display())
        } else {
            "from flags/environment".to_string()
        },
        rt.name()
    );
    for l in listeners {
        let (rt2, hub2) = (rt.clone(), hub.clone());
        rt.spawn(async move { accept_loop(rt2, hub2, l).await });
    }
    let (rt2, hub2) = (rt.clone(), hub.clone());
    rt.spawn(async move {
        loop {
            rt2.sleep_until(hub2.poll_timeout()).await;
            hub2.handle_timeout(Instant::now(), unix_ms());
        }
    });
    rt.spawn(sampler::run(rt.clone(), hub.clone()));
    rt.spawn(persist_devices(rt.clone(), hub.clone(), p.state_dir.clone()));

    let signal = rt.shutdown_signal().await;
    tracing::info!("received {signal}; shutting down");
    hub.begin_drain();
    hub.shutdown_all(msg::GATEWAY_STOPPING);
    let deadline = Instant::now() + hub.settings().limits.shutdown_drain;
    while hub.connection_counts().0 > 0 && Instant::now() < deadline {
        rt.sleep_until(Instant::now() + Duration::from_millis(20)).await;
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// Write the paired-device store whenever it changes (checked once a second; the write is
/// atomic and done off the reactor is unnecessary for a few KB).
async fn persist_devices<R: Runtime>(rt: R, hub: Arc<Hub>, state_dir: String) {
    let mut saved = hub.devices_generation();
    loop {
        rt.sleep_until(Instant::now() + Duration::from_secs(1)).await;
        if hub.devices_generation() == saved {
            continue;
        }
        let (generation, store) = hub.devices_snapshot();
        match state::save_devices(&state_dir, &store) {
            Ok(()) => saved = generation,
            Err(e) => tracing::warn!("paired devices not saved: {e}"),
        }
    }
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_err() {
        // Without OS randomness device tokens would be predictable: refuse to run.
        eprintln!("no OS randomness available; refusing to start");
        std::process::exit(1);
    }
    b
}

async fn accept_loop<R: Runtime>(rt: R, hub: Arc<Hub>, listener: R::Listener) {
    loop {
        match rt.accept(&listener).await {
            Ok((io, remote)) => {
                let (rt2, hub2) = (rt.clone(), hub.clone());
                rt.spawn(async move { service::serve_connection(rt2, hub2, io, remote).await });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!("accept failed: {e}");
                rt.sleep_until(Instant::now() + Duration::from_millis(50)).await;
            }
        }
    }
}
