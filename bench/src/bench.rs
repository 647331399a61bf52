//! The measurements. Every phase is bounded in count and in time; a phase that runs out of time
//! reports what it got (and says so) instead of hanging.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use crate::procfs;
use crate::stats::{self, Latency};
use crate::ws::{self, Frame, WsConn, WsError};

/// How to reach one gateway.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    pub path: String,
    /// The `connect` request, pre-rendered with the token.
    pub connect_frame: String,
    pub pid: Option<u32>,
}

impl Endpoint {
    pub fn new(addr: SocketAddr, path: &str, token: &str, pid: Option<u32>) -> Endpoint {
        let connect = serde_json::json!({
            "type": "req", "id": "c", "method": "connect",
            "params": {
                "minProtocol": 4, "maxProtocol": 4,
                "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"},
                "role": "operator", "scopes": ["operator.read"],
                "auth": {"token": token}
            }
        });
        Endpoint { addr, host: addr.to_string(), path: path.to_string(), connect_frame: connect.to_string(), pid }
    }
}

/// Knobs of one run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Config {
    pub handshakes: usize,
    pub handshake_warmup: usize,
    pub rtt: usize,
    pub rtt_warmup: usize,
    pub conns: usize,
    pub window: usize,
    /// Cap on requests in flight over all connections of a throughput test (the gateway's
    /// request-start queue holds 256 per process; above that it answers "busy").
    pub max_inflight: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub idle: usize,
    pub idle_concurrency: usize,
    pub source_ips: Vec<IpAddr>,
    pub op_timeout_s: f64,
    /// Upper bound on the wall time of one latency phase (handshakes, RTT) or of opening the idle clients.
    pub phase_timeout_s: f64,
    pub settle_s: f64,
}

impl Config {
    pub fn op_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.op_timeout_s)
    }
    fn phase_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.phase_timeout_s)
    }
}

// ---- handshake -----------------------------------------------------------------------------

pub struct Handshake {
    pub conn: WsConn,
    /// TCP open → `connect.challenge` read.
    pub to_challenge: Duration,
    /// TCP open → `hello-ok` read.
    pub to_hello: Duration,
}

/// TCP connect, upgrade, challenge, `connect`, `hello-ok`. Timestamps are taken when the bytes
/// have been read, before the client validates them.
pub async fn handshake(ep: &Endpoint, src: Option<IpAddr>, timeout: Duration) -> Result<Handshake, WsError> {
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let stream = match tokio::time::timeout_at(deadline.into(), ws::tcp_connect(ep.addr, src)).await {
        Ok(r) => r?,
        Err(_) => return Err(WsError::Timeout),
    };
    let mut c = match tokio::time::timeout_at(deadline.into(), WsConn::upgrade(stream, &ep.host, &ep.path)).await {
        Ok(r) => r?,
        Err(_) => return Err(WsError::Timeout),
    };
    let mut read_at = Instant::now();
    let to_challenge = loop {
        match c.next_text()? {
            Some(t) => {
                if ws::find(c.text(&t), b"connect.challenge").is_some() {
                    break read_at - t0;
                }
            }
            None => {
                c.fill_until(deadline).await?;
                read_at = Instant::now();
            }
        }
    };
    let frame = ep.connect_frame.clone();
    c.queue_text(frame.as_bytes());
    c.flush().await?;
    loop {
        match c.next_text()? {
            Some(t) => {
                if let Frame::OkOther(id, ok) = ws::classify(c.text(&t)) {
                    if id == "c" {
                        let v: serde_json::Value = serde_json::from_slice(c.text(&t)).unwrap_or_default();
                        if ok && v["payload"]["type"] == "hello-ok" {
                            let to_hello = read_at - t0;
                            c.shrink();
                            return Ok(Handshake { conn: c, to_challenge, to_hello });
                        }
                        let msg = v["error"]["message"].as_str().unwrap_or("connect failed").to_string();
                        return Err(WsError::Protocol(format!("connect rejected: {msg}")));
                    }
                }
            }
            None => {
                c.fill_until(deadline).await?;
                read_at = Instant::now();
            }
        }
    }
}

/// Close politely and wait (bounded) for the server to finish its side, so that the next
/// sequential measurement does not overlap with this socket's teardown.
pub async fn close_and_wait(mut c: WsConn, wait: Duration) {
    c.queue_frame(0x8, &1000u16.to_be_bytes());
    if c.flush().await.is_err() {
        return;
    }
    let deadline = Instant::now() + wait;
    loop {
        match c.next_text() {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(_) => return, // the server's close frame
        }
        if c.fill_until(deadline).await.is_err() {
            return;
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HandshakeResult {
    /// Server CPU per handshake (incl. warm-up ones and closing the socket), µs.
    pub server_cpu_us_per_handshake: Option<f64>,
    pub to_challenge: Latency,
    pub to_hello: Latency,
    pub errors: usize,
    pub first_error: Option<String>,
    pub wall_s: f64,
    pub truncated_by_time: bool,
}

pub async fn bench_handshakes(ep: &Endpoint, cfg: &Config) -> HandshakeResult {
    let start = Instant::now();
    let deadline = start + cfg.phase_timeout();
    let mut ch = Vec::with_capacity(cfg.handshakes);
    let mut hello = Vec::with_capacity(cfg.handshakes);
    let (mut errors, mut first_error) = (0usize, None);
    let total = cfg.handshake_warmup + cfg.handshakes;
    let mut truncated = false;
    let cpu0 = ep.pid.and_then(procfs::cpu_seconds);
    let mut done = 0usize;
    for i in 0..total {
        if Instant::now() >= deadline {
            truncated = true;
            break;
        }
        match handshake(ep, cfg.source_ips.first().copied(), cfg.op_timeout()).await {
            Ok(h) => {
                if i >= cfg.handshake_warmup {
                    ch.push(h.to_challenge);
                    hello.push(h.to_hello);
                }
                close_and_wait(h.conn, Duration::from_secs(1)).await;
                done += 1;
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
                if errors > 50 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let cpu1 = ep.pid.and_then(procfs::cpu_seconds);
    HandshakeResult {
        server_cpu_us_per_handshake: match (cpu0, cpu1) {
            (Some(a), Some(b)) if done > 0 => Some((b - a) * 1e6 / done as f64),
            _ => None,
        },
        to_challenge: stats::latency(&ch),
        to_hello: stats::latency(&hello),
        errors,
        first_error,
        wall_s: start.elapsed().as_secs_f64(),
        truncated_by_time: truncated,
    }
}

// ---- sequential round trips --------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RttResult {
    /// Server CPU per round trip (incl. warm-up), µs.
    pub server_cpu_us_per_request: Option<f64>,
    pub latency: Latency,
    pub errors: usize,
    pub first_error: Option<String>,
    /// Average size of a `health` response frame payload, bytes.
    pub response_bytes: f64,
    pub wall_s: f64,
    pub truncated_by_time: bool,
}

pub async fn bench_rtt(ep: &Endpoint, cfg: &Config) -> RttResult {
    let start = Instant::now();
    let deadline = start + cfg.phase_timeout();
    let mut out = RttResult {
        server_cpu_us_per_request: None,
        latency: Latency::default(),
        errors: 0,
        first_error: None,
        response_bytes: 0.0,
        wall_s: 0.0,
        truncated_by_time: false,
    };
    let mut c = match handshake(ep, cfg.source_ips.first().copied(), cfg.op_timeout()).await {
        Ok(h) => h.conn,
        Err(e) => {
            out.errors = 1;
            out.first_error = Some(e.to_string());
            return out;
        }
    };
    let mut samples = Vec::with_capacity(cfg.rtt);
    let (mut bytes, mut nbytes) = (0u64, 0u64);
    let total = (cfg.rtt_warmup + cfg.rtt) as u64;
    let cpu0 = ep.pid.and_then(procfs::cpu_seconds);
    'outer: for id in 1..=total {
        if Instant::now() >= deadline {
            out.truncated_by_time = true;
            break;
        }
        c.queue_request(id, "health");
        let t0 = Instant::now();
        if let Err(e) = c.flush().await {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| e.to_string());
            break;
        }
        let mut read_at = t0;
        loop {
            match c.next_text() {
                Ok(Some(t)) => match ws::classify(c.text(&t)) {
                    Frame::Ok(rid) if rid == id => {
                        if id > cfg.rtt_warmup as u64 {
                            samples.push(read_at - t0);
                        }
                        bytes += c.text(&t).len() as u64;
                        nbytes += 1;
                        break;
                    }
                    Frame::Err(Some(rid), code, msg) if rid == id => {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| format!("{code}: {msg}"));
                        break;
                    }
                    _ => {}
                },
                Ok(None) => match c.fill_until(Instant::now() + cfg.op_timeout()).await {
                    Ok(()) => read_at = Instant::now(),
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                        break 'outer;
                    }
                },
                Err(e) => {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| e.to_string());
                    break 'outer;
                }
            }
        }
    }
    let cpu1 = ep.pid.and_then(procfs::cpu_seconds);
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        if nbytes > 0 {
            out.server_cpu_us_per_request = Some((b - a) * 1e6 / nbytes as f64);
        }
    }
    close_and_wait(c, Duration::from_secs(1)).await;
    out.latency = stats::latency(&samples);
    out.response_bytes = if nbytes > 0 { bytes as f64 / nbytes as f64 } else { 0.0 };
    out.wall_s = start.elapsed().as_secs_f64();
    out
}

// ---- pipelined throughput --------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ThroughputResult {
    pub conns: usize,
    pub window: usize,
    pub measured_s: f64,
    /// `ok:true` responses in the measured interval.
    pub ok: u64,
    /// `UNAVAILABLE` "busy" answers (request-start queue full): not successes.
    pub busy: u64,
    pub errors: u64,
    pub ok_per_s: f64,
    pub busy_per_s: f64,
    /// CPU the server process used during the measured interval (all threads), seconds.
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    /// Server CPU time per successful request, µs.
    pub server_cpu_us_per_ok: Option<f64>,
    pub client_cores: f64,
    /// Busy cores on the machine not accounted for by the server or this client (other work).
    pub other_cores: f64,
    pub conn_failures: usize,
    pub first_error: Option<String>,
}

const WARM: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

#[derive(Default)]
struct PumpCount {
    ok: u64,
    busy: u64,
    errors: u64,
    error: Option<String>,
}

/// Keep up to `window` `health` requests in flight on one connection until told to stop, then
/// drain. Counts only responses read while the phase is MEASURE.
async fn pump(mut c: WsConn, window: usize, phase: Arc<AtomicU8>, op_timeout: Duration) -> PumpCount {
    let mut n = PumpCount::default();
    let mut next_id = 1u64;
    let mut inflight = 0usize;
    loop {
        let ph = phase.load(Ordering::Relaxed);
        if ph == STOP && inflight == 0 {
            break;
        }
        if ph != STOP {
            while inflight < window {
                c.queue_request(next_id, "health");
                next_id += 1;
                inflight += 1;
            }
        }
        if let Err(e) = c.flush().await {
            n.error = Some(e.to_string());
            return n;
        }
        if let Err(e) = c.fill_until(Instant::now() + op_timeout).await {
            n.error = Some(e.to_string());
            return n;
        }
        let measuring = phase.load(Ordering::Relaxed) == MEASURE;
        loop {
            match c.next_text() {
                Ok(Some(t)) => match ws::classify(c.text(&t)) {
                    Frame::Ok(_) => {
                        inflight = inflight.saturating_sub(1);
                        n.ok += measuring as u64;
                    }
                    Frame::Err(_, code, msg) => {
                        inflight = inflight.saturating_sub(1);
                        if measuring {
                            if ws::is_busy(&code, &msg) {
                                n.busy += 1;
                            } else {
                                n.errors += 1;
                                n.error.get_or_insert_with(|| format!("{code}: {msg}"));
                            }
                        }
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(e) => {
                    n.error = Some(e.to_string());
                    return n;
                }
            }
        }
    }
    close_and_wait(c, Duration::from_millis(500)).await;
    n
}

/// Per-connection window for `conns` connections: `window`, capped so that all connections
/// together stay within `max_inflight`.
pub fn effective_window(cfg: &Config, conns: usize) -> usize {
    cfg.window.min(cfg.max_inflight / conns.max(1)).max(1)
}

pub async fn bench_throughput(ep: &Endpoint, cfg: &Config, conns: usize) -> ThroughputResult {
    let window = effective_window(cfg, conns);
    let mut res = ThroughputResult {
        conns,
        window,
        measured_s: 0.0,
        ok: 0,
        busy: 0,
        errors: 0,
        ok_per_s: 0.0,
        busy_per_s: 0.0,
        server_cpu_s: None,
        server_cores: None,
        server_cpu_us_per_ok: None,
        client_cores: 0.0,
        other_cores: 0.0,
        conn_failures: 0,
        first_error: None,
    };
    // Open the connections first (bounded concurrency below the pre-auth budget).
    let mut opened = Vec::with_capacity(conns);
    let open_deadline = Instant::now() + cfg.phase_timeout();
    for i in 0..conns {
        if Instant::now() >= open_deadline {
            break;
        }
        let src = pick_src(&cfg.source_ips, i);
        match handshake(ep, src, cfg.op_timeout()).await {
            Ok(h) => opened.push(h.conn),
            Err(e) => {
                res.conn_failures += 1;
                res.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if opened.is_empty() {
        return res;
    }
    let phase = Arc::new(AtomicU8::new(WARM));
    let handles: Vec<_> = opened.into_iter().map(|c| tokio::spawn(pump(c, window, phase.clone(), cfg.op_timeout()))).collect();
    tokio::time::sleep(Duration::from_secs_f64(cfg.warmup_s)).await;

    let cpu0 = ep.pid.and_then(procfs::cpu_seconds);
    let self0 = procfs::self_cpu_seconds();
    let busy0 = procfs::machine_busy_seconds();
    let t0 = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(cfg.duration_s)).await;
    phase.store(STOP, Ordering::Relaxed);
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = ep.pid.and_then(procfs::cpu_seconds);
    let self1 = procfs::self_cpu_seconds();
    let busy1 = procfs::machine_busy_seconds();

    let drain_deadline = Instant::now() + cfg.op_timeout() + Duration::from_secs(2);
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(drain_deadline.into(), h).await {
            Ok(Ok(n)) => {
                res.ok += n.ok;
                res.busy += n.busy;
                res.errors += n.errors;
                if let Some(e) = n.error {
                    res.first_error.get_or_insert(e);
                }
            }
            Ok(Err(e)) => {
                res.first_error.get_or_insert_with(|| format!("task: {e}"));
            }
            Err(_) => {
                abort.abort();
                res.first_error.get_or_insert_with(|| "drain timed out".into());
            }
        }
    }
    res.measured_s = wall;
    res.ok_per_s = res.ok as f64 / wall;
    res.busy_per_s = res.busy as f64 / wall;
    let client = self1 - self0;
    res.client_cores = client / wall;
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        let s = b - a;
        res.server_cpu_s = Some(s);
        res.server_cores = Some(s / wall);
        if res.ok > 0 {
            res.server_cpu_us_per_ok = Some(s * 1e6 / res.ok as f64);
        }
        res.other_cores = ((busy1 - busy0) - s - client).max(0.0) / wall;
    } else {
        res.other_cores = ((busy1 - busy0) - client).max(0.0) / wall;
    }
    res
}

fn pick_src(ips: &[IpAddr], i: usize) -> Option<IpAddr> {
    if ips.len() <= 1 { ips.first().copied() } else { Some(ips[i % ips.len()]) }
}

// ---- idle connections ------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct IdleResult {
    pub wanted: usize,
    pub established: usize,
    pub failures: usize,
    /// Upgrades refused with 503 (pre-auth budget) and retried.
    pub retries_503: usize,
    pub first_error: Option<String>,
    pub open_s: f64,
    pub rss_before_kb: Option<u64>,
    pub rss_with_kb: Option<u64>,
    pub rss_after_close_kb: Option<u64>,
    pub tree_rss_before_kb: Option<u64>,
    pub tree_rss_with_kb: Option<u64>,
    /// (RSS with the clients − RSS before) / established, KiB.
    pub kb_per_conn: Option<f64>,
    /// Connections the server dropped while they were held idle.
    pub dropped_while_idle: usize,
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        let v = *stop.borrow_and_update();
        if v || stop.changed().await.is_err() {
            return;
        }
    }
}

/// Hold an authenticated connection open, answering pings, until told to stop.
async fn hold(mut c: WsConn, mut stop: watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            r = c.fill() => {
                match r {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => loop {
                        match c.next_text() {
                            Ok(Some(_)) => continue,
                            Ok(None) => break,
                            Err(_) => return false,
                        }
                    },
                }
                if c.has_pending_writes() && c.flush().await.is_err() {
                    return false;
                }
                c.shrink();
            }
            _ = stopped(&mut stop) => {
                c.close().await;
                return true;
            }
        }
    }
}

pub async fn bench_idle(ep: &Endpoint, cfg: &Config, n: usize) -> IdleResult {
    let rss = || ep.pid.and_then(procfs::vm_rss_kb);
    let tree = || ep.pid.and_then(procfs::tree_rss_kb);
    let mut res = IdleResult {
        wanted: n,
        established: 0,
        failures: 0,
        retries_503: 0,
        first_error: None,
        open_s: 0.0,
        rss_before_kb: rss(),
        rss_with_kb: None,
        rss_after_close_kb: None,
        tree_rss_before_kb: tree(),
        tree_rss_with_kb: None,
        kb_per_conn: None,
        dropped_while_idle: 0,
    };
    let conc = cfg.idle_concurrency.max(1);
    let sem = Arc::new(Semaphore::new(conc));
    let (stop_tx, stop_rx) = watch::channel(false);
    let established = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + cfg.phase_timeout();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        if Instant::now() >= deadline || failures.load(Ordering::Relaxed) > 100 {
            break;
        }
        let Ok(permit) = sem.clone().acquire_owned().await else { break };
        let ep = ep.clone();
        let src = pick_src(&cfg.source_ips, i);
        let (est, fail, retr, ferr, stop) = (established.clone(), failures.clone(), retries.clone(), first_error.clone(), stop_rx.clone());
        let op_timeout = cfg.op_timeout();
        handles.push(tokio::spawn(async move {
            let mut tries = 0;
            let conn = loop {
                match handshake(&ep, src, op_timeout).await {
                    Ok(h) => break h.conn,
                    Err(WsError::Http(503, _)) if tries < 50 && Instant::now() < deadline => {
                        tries += 1;
                        retr.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => {
                        fail.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut g) = ferr.lock() {
                            g.get_or_insert_with(|| e.to_string());
                        }
                        drop(permit);
                        return None;
                    }
                }
            };
            drop(permit);
            est.fetch_add(1, Ordering::Relaxed);
            Some(hold(conn, stop).await)
        }));
    }
    // Wait until no handshake is in flight any more.
    let _all = tokio::time::timeout_at((deadline + cfg.op_timeout()).into(), sem.acquire_many(conc as u32)).await;
    res.open_s = start.elapsed().as_secs_f64();
    res.established = established.load(Ordering::Relaxed);
    res.failures = failures.load(Ordering::Relaxed);
    res.retries_503 = retries.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(cfg.settle_s)).await;
    res.rss_with_kb = rss();
    res.tree_rss_with_kb = tree();
    if let (Some(a), Some(b)) = (res.rss_before_kb, res.rss_with_kb) {
        if res.established > 0 {
            res.kb_per_conn = Some((b as f64 - a as f64) / res.established as f64);
        }
    }
    let _ = stop_tx.send(true);
    let close_deadline = Instant::now() + Duration::from_secs(20);
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(close_deadline.into(), h).await {
            Ok(Ok(Some(false))) => res.dropped_while_idle += 1,
            Ok(_) => {}
            Err(_) => abort.abort(),
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(cfg.settle_s)).await;
    res.rss_after_close_kb = rss();
    res.first_error = first_error.lock().ok().and_then(|g| g.clone());
    res
}
