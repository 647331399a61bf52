//! One benchmark run over several targets: start the spawned ones (timing their starts), then
//! run every phase round-robin over the targets (so slow drifts in background load spread over
//! all of them), `repeat` times.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::bench::{self, Config, Endpoint};
use crate::procfs;
use crate::report::{Report, Role, Run, TargetReport};
use crate::spawn::{self, Flavor, SpawnSpec, Spawned};

/// What the command line asked for, for one target.
#[derive(Debug, Clone)]
pub enum Source {
    /// Already running: `name=ws://host:port[/path][,token=T][,pid=PID]`.
    External { url: String, token: String, pid: Option<u32> },
    /// Started by the harness.
    Spawn(SpawnSpec),
}

#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: String,
    pub source: Source,
}

/// Parse `name=ws://127.0.0.1:P[,token=T][,pid=PID]`.
pub fn parse_target(s: &str, default_token: &str) -> Result<TargetSpec, String> {
    let (name, rest) = s.split_once('=').ok_or_else(|| format!("--target {s}: expected name=ws://host:port[,token=T][,pid=PID]"))?;
    let mut parts = rest.split(',');
    let url = parts.next().unwrap_or_default().to_string();
    if !url.starts_with("ws://") {
        return Err(format!("--target {s}: only ws:// URLs"));
    }
    let (mut token, mut pid) = (default_token.to_string(), None);
    for p in parts {
        match p.split_once('=') {
            Some(("token", v)) => token = v.to_string(),
            Some(("pid", v)) => pid = Some(v.parse().map_err(|_| format!("--target {s}: bad pid {v}"))?),
            _ => return Err(format!("--target {s}: unknown option {p}")),
        }
    }
    Ok(TargetSpec { name: name.to_string(), source: Source::External { url, token, pid } })
}

/// Parse `name=/path/to/binary`.
pub fn parse_spawn(s: &str, flavor: Flavor) -> Result<TargetSpec, String> {
    let (name, path) = s.split_once('=').ok_or_else(|| format!("--spawn {s}: expected name=/path/to/binary"))?;
    let path = std::path::PathBuf::from(path);
    if !path.is_file() {
        return Err(format!("--spawn {s}: {} is not a file", path.display()));
    }
    // The child runs in its own HOME as working directory: resolve relative paths now.
    let path = path.canonicalize().map_err(|e| format!("--spawn {s}: {e}"))?;
    Ok(TargetSpec { name: name.to_string(), source: Source::Spawn(SpawnSpec { name: name.to_string(), path, flavor }) })
}

fn split_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = auth.to_socket_addrs().map_err(|e| format!("{url}: {e}"))?.next().ok_or_else(|| format!("{url}: no address"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{url}: loopback targets only"));
    }
    Ok((addr, path.to_string()))
}

pub struct Options {
    pub config: Config,
    pub token: String,
    pub baseline: String,
    pub reference: String,
    pub phases: Vec<String>,
    pub starts: usize,
    pub ref_starts: usize,
    pub start_timeout: Duration,
    pub repeat: usize,
    pub nofile: (u64, u64),
    pub command: Vec<String>,
    pub quiet: bool,
}

struct Target {
    report: TargetReport,
    ep: Endpoint,
    _spawned: Option<Spawned>,
}

macro_rules! say {
    ($o:expr, $($t:tt)*) => { if !$o.quiet { eprintln!($($t)*); } };
}

/// Start one spawned target `starts` times, timing each start; the last one is kept.
fn start_spawned(spec: &SpawnSpec, token: &str, starts: usize, timeout: Duration, o: &Options) -> Result<(Spawned, Vec<f64>), String> {
    let mut samples = Vec::new();
    let starts = starts.max(1);
    for i in 0..starts {
        let port = spawn::free_port().map_err(|e| format!("no free port: {e}"))?;
        let (mut sp, t0) = spawn::spawn(spec, port, token).map_err(|e| format!("spawn {}: {e}", spec.path.display()))?;
        let t = spawn::wait_for_challenge(&mut sp, t0, timeout)?;
        samples.push(t.as_secs_f64() * 1e3);
        say!(
            o,
            "  {} start {}/{}: first connect.challenge after {:.2} ms (pid {}, port {})",
            spec.name,
            i + 1,
            starts,
            t.as_secs_f64() * 1e3,
            sp.pid,
            port
        );
        if i + 1 == starts {
            return Ok((sp, samples));
        }
        drop(sp);
        // Let the port and the process table settle before the next cold start.
        std::thread::sleep(Duration::from_millis(200));
    }
    unreachable!()
}

/// Build the targets (starting the spawned ones). Runs outside the async runtime (blocking).
fn prepare(specs: &[TargetSpec], o: &Options) -> Result<Vec<Target>, String> {
    let time_starts = o.phases.iter().any(|p| p == "start");
    let mut out = Vec::new();
    for s in specs {
        let role = if s.name == o.baseline {
            Role::Baseline
        } else if s.name == o.reference {
            Role::Reference
        } else {
            Role::Ours
        };
        let mut rep = TargetReport {
            name: s.name.clone(),
            role,
            url: String::new(),
            pid: None,
            spawned: None,
            startup_ms: Vec::new(),
            startup_error: None,
            runs: Vec::new(),
        };
        match &s.source {
            Source::External { url, token, pid } => {
                let (addr, path) = split_url(url)?;
                rep.url = url.clone();
                rep.pid = *pid;
                out.push(Target { report: rep, ep: Endpoint::new(addr, &path, token, *pid), _spawned: None });
            }
            Source::Spawn(spec) => {
                let n = if !time_starts {
                    1
                } else if spec.flavor == Flavor::Reference {
                    o.ref_starts
                } else {
                    o.starts
                };
                say!(o, "starting {} ({}) {n}×", s.name, spec.path.display());
                let (sp, samples) = start_spawned(spec, &o.token, n, o.start_timeout, o)?;
                if time_starts {
                    rep.startup_ms = samples;
                }
                let addr: SocketAddr = ([127, 0, 0, 1], sp.port).into();
                rep.url = format!("ws://{addr}");
                rep.pid = Some(sp.pid);
                rep.spawned = Some(spec.path.display().to_string());
                out.push(Target { report: rep, ep: Endpoint::new(addr, "/", &o.token, Some(sp.pid)), _spawned: Some(sp) });
            }
        }
    }
    // Report order: baseline, ours, reference.
    out.sort_by_key(|t| match t.report.role {
        Role::Baseline => 0,
        Role::Ours => 1,
        Role::Reference => 2,
    });
    Ok(out)
}

/// Wait until a full handshake succeeds (a gateway may accept sockets before it is ready).
async fn wait_ready(ep: &Endpoint, timeout: Duration, op_timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match bench::handshake(ep, None, op_timeout).await {
            Ok(h) => {
                bench::close_and_wait(h.conn, Duration::from_secs(1)).await;
                return Ok(());
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("not ready within {timeout:?}: {last}"))
}

async fn measure(targets: &mut [Target], o: &Options) {
    let cfg = &o.config;
    for t in targets.iter_mut() {
        if let Err(e) = wait_ready(&t.ep, o.start_timeout, cfg.op_timeout()).await {
            say!(o, "{}: {e}", t.report.name);
            t.report.startup_error.get_or_insert(e);
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(cfg.settle_s)).await;
    for t in targets.iter_mut() {
        t.report.runs = vec![Run::default(); o.repeat];
        if let Some(pid) = t.ep.pid {
            let r = &mut t.report.runs[0];
            r.rss_idle_start_kb = procfs::vm_rss_kb(pid);
            r.tree_rss_idle_start_kb = procfs::tree_rss_kb(pid);
            r.rss_anon_idle_start_kb = procfs::status_kb(pid, "RssAnon");
        }
    }
    let has = |p: &str| o.phases.iter().any(|x| x == p);
    for rep in 0..o.repeat {
        let tag = if o.repeat > 1 { format!(" [run {}/{}]", rep + 1, o.repeat) } else { String::new() };
        // Once per gateway process, first: memory per connection from a fresh process (a
        // second pass would reuse the memory the first one left in the allocator).
        if has("idle") && rep == 0 {
            for t in targets.iter_mut() {
                say!(o, "{}: {} idle authenticated clients{tag}", t.report.name, cfg.idle);
                let r = bench::bench_idle(&t.ep, cfg, cfg.idle).await;
                say!(
                    o,
                    "  {}/{} in {:.1} s; RSS {} → {} kB; {} KB/conn",
                    r.established,
                    r.wanted,
                    r.open_s,
                    r.rss_before_kb.map(|v| v.to_string()).unwrap_or("?".into()),
                    r.rss_with_kb.map(|v| v.to_string()).unwrap_or("?".into()),
                    r.kb_per_conn.map(|v| format!("{v:.1}")).unwrap_or("?".into())
                );
                t.report.runs[rep].idle = Some(r);
            }
        }
        if has("hs") {
            for t in targets.iter_mut() {
                say!(o, "{}: {} handshakes{tag}", t.report.name, cfg.handshakes);
                let r = bench::bench_handshakes(&t.ep, cfg).await;
                say!(o, "  p50 {:.0} µs, p99 {:.0} µs ({} errors)", r.to_hello.p50_us, r.to_hello.p99_us, r.errors);
                t.report.runs[rep].handshake = Some(r);
            }
        }
        if has("rtt") {
            for t in targets.iter_mut() {
                say!(o, "{}: {} sequential health round trips{tag}", t.report.name, cfg.rtt);
                let r = bench::bench_rtt(&t.ep, cfg).await;
                say!(o, "  p50 {:.0} µs, p99 {:.0} µs ({} errors)", r.latency.p50_us, r.latency.p99_us, r.errors);
                t.report.runs[rep].rtt = Some(r);
            }
        }
        if has("tput") {
            for n in [1, cfg.conns] {
                for t in targets.iter_mut() {
                    say!(o, "{}: pipelined health over {n} conns × {}{tag}", t.report.name, bench::effective_window(cfg, n));
                    let r = bench::bench_throughput(&t.ep, cfg, n).await;
                    say!(
                        o,
                        "  {:.0} ok/s, {:.0} busy/s, server {} cores, client {:.2} cores, other {:.2} cores",
                        r.ok_per_s,
                        r.busy_per_s,
                        r.server_cores.map(|c| format!("{c:.2}")).unwrap_or("?".into()),
                        r.client_cores,
                        r.other_cores
                    );
                    if n == 1 {
                        t.report.runs[rep].tput_1 = Some(r);
                    } else {
                        t.report.runs[rep].tput_n = Some(r);
                    }
                }
            }
        }
    }
    for t in targets.iter_mut() {
        if let Some(last) = t.report.runs.last_mut() {
            last.rss_idle_end_kb = t.ep.pid.and_then(procfs::vm_rss_kb);
        }
    }
}

/// Run everything. Spawned gateways are stopped before this returns (also on Ctrl-C).
pub fn run(specs: &[TargetSpec], o: Options) -> Result<Report, String> {
    let started = Instant::now();
    let started_unix_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let machine = procfs::machine();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("tokio: {e}"))?;
    let mut targets = prepare(specs, &o)?;
    let interrupted = rt.block_on(async {
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = measure(&mut targets, &o) => false,
            _ = tokio::signal::ctrl_c() => true,
            _ = term => true,
        }
    });
    let reports: Vec<TargetReport> = targets.iter().map(|t| t.report.clone()).collect();
    drop(targets); // stops spawned gateways
    drop(rt);
    if interrupted {
        return Err("interrupted".into());
    }
    let baseline = reports.iter().find(|t| t.role == Role::Baseline).map(|t| t.name.clone());
    let reference = reports.iter().find(|t| t.role == Role::Reference).map(|t| t.name.clone());
    Ok(Report {
        tool: "clawgate-bench".into(),
        merged_runs: 1,
        command: o.command.clone(),
        started_unix_s,
        wall_s: started.elapsed().as_secs_f64(),
        machine,
        loadavg_end: procfs::loadavg(),
        nofile_limit: o.nofile,
        config: o.config.clone(),
        baseline,
        reference,
        targets: reports,
    })
}
