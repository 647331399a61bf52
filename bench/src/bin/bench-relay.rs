//! The model relay path side by side (issue 17): a mock OpenAI-compatible upstream, the load
//! generator talking to it directly (the floor), then each gateway pointed at it, all in one
//! run. Gateways and the mock share one CPU, the load generator has the other (`--gateway-cpu`,
//! `--load-cpu`). Three kinds of load, each bounded in time and count:
//!
//! * closed loop, per endpoint: `--conns` keep-alive connections each sending its next request
//!   when the last answer ended; requests/s, latency p50/p99 and what the gateway adds over the
//!   direct figure, the gateway's CPU per request (from /proc), RSS idle and after, threads;
//! * open loop (`--rates 500,1000,2000`; none by default): chat requests due on a fixed schedule
//!   over at most `--open-conns` keep-alive connections, latency counted from each request's due
//!   time (no coordinated omission); achieved rate, p50/p99/p99.9, added p50/p99 over the mock
//!   at the same rate, CPU per request, errors;
//! * many slow streams (`--streams N`; off by default): N streamed chat requests held open at
//!   once (the mock sends a chunk every `--stream-every` seconds until released), on a freshly
//!   started gateway: its RSS before and with all open → KiB per open stream, fds, how many were
//!   open at once and answered. The open-files limit is raised for the harness and its children.
//!
//! Targets: `--clawgate`, `--lite`, `--also NAME=PATH` (clawgate-flavoured builds), and peers the
//! harness installs once into a cache directory (`--peers-dir`, default
//! ~/.cache/clawgate/bench-peers) and starts on loopback: `--litellm` (PyPI litellm[proxy] in a
//! venv) and `--portkey` (npm @portkey-ai/gateway, run with node); and `--reference BIN` (the
//! OpenClaw reference via tools/openclaw-ref, configured and asked as clawgate is). Peers are
//! asked plain OpenAI `/v1/chat/completions` with their own model name and headers; a peer or the
//! reference failing to install or start is reported as such and the run goes on.
//!
//!   bench-relay --clawgate target/release/clawgate --lite target/release/clawgate-lite \
//!       [--litellm] [--portkey] [--reference tools/openclaw-ref] \
//!       [--conns 64] [--seconds 5] [--warmup 1] [--endpoints chat,chat-stream,responses] \
//!       [--rates 500,1000,2000 [--open-seconds S] [--open-conns 256]] \
//!       [--streams 9000 [--stream-every 1]] [--json out.json] [--markdown out.md]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clawgate_bench::relay::open::{OpenLoop, OpenLoopResult, open_loop};
use clawgate_bench::relay::peers::{self, Peer};
use clawgate_bench::relay::streams::{Streams, StreamsResult, streams};
use clawgate_bench::relay::{Api, Endpoint, LoadResult, Mock, MockShape, Target, closed_loop, pin_current_thread};
use clawgate_bench::{procfs, sys};
use serde_json::json;

#[derive(Parser)]
#[command(about = "The model relay path: mock upstream direct vs gateways in front of it, one run")]
struct Args {
    /// clawgate (tokio) binary.
    #[arg(long)]
    clawgate: Option<PathBuf>,
    /// clawgate-lite (smol) binary.
    #[arg(long)]
    lite: Option<PathBuf>,
    /// More clawgate-flavoured binaries as NAME=PATH (e.g. a build from before a change), run
    /// in the same run after the others.
    #[arg(long = "also", value_name = "NAME=PATH")]
    also: Vec<String>,
    /// Also the LiteLLM proxy (installed into --peers-dir on first use).
    #[arg(long)]
    litellm: bool,
    /// Also the Portkey gateway (installed into --peers-dir on first use; needs node).
    #[arg(long)]
    portkey: bool,
    /// Also the reference OpenClaw gateway: `tools/openclaw-ref` (installs itself on first use),
    /// with the same config as clawgate, asked as clawgate is.
    #[arg(long, value_name = "BIN")]
    reference: Option<PathBuf>,
    /// Where peer installs are kept [default: $XDG_CACHE_HOME or ~/.cache, /clawgate/bench-peers].
    #[arg(long)]
    peers_dir: Option<PathBuf>,
    /// Closed loop: keep-alive connections.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Measured seconds per target and endpoint (closed loop), and per rate (open loop) unless
    /// --open-seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Characters of the mock's answer.
    #[arg(long, default_value_t = 64)]
    answer_bytes: usize,
    /// SSE chunks of a streamed answer.
    #[arg(long, default_value_t = 8)]
    chunks: usize,
    #[arg(long, default_value = "chat,chat-stream,responses")]
    endpoints: String,
    /// Open loop: request rates (req/s) to run, comma-separated; none = no open loop.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Open loop: measured seconds per rate [default: --seconds].
    #[arg(long)]
    open_seconds: Option<f64>,
    /// Open loop: at most this many keep-alive connections (opened only as needed).
    #[arg(long, default_value_t = 256)]
    open_conns: usize,
    /// Open loop: a request not answered this many seconds after its due time failed.
    #[arg(long, default_value_t = 5.0)]
    open_timeout: f64,
    /// Slow streams held open at once per target; 0 = none.
    #[arg(long, default_value_t = 0)]
    streams: usize,
    /// Slow streams: seconds between the mock's chunks.
    #[arg(long, default_value_t = 1.0)]
    stream_every: f64,
    /// Slow streams: streams being opened at once (the ramp).
    #[arg(long, default_value_t = 128)]
    streams_opening: usize,
    /// Slow streams: seconds allowed for opening all of them.
    #[arg(long, default_value_t = 120.0)]
    streams_timeout: f64,
    #[arg(long, default_value_t = 0)]
    gateway_cpu: usize,
    #[arg(long, default_value_t = 1)]
    load_cpu: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown tables (also printed) here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

const DIRECT: &str = "mock (direct)";

/// The first figure of /proc/loadavg, noted with every measurement.
fn load1() -> String {
    procfs::loadavg().split_whitespace().next().unwrap_or("?").to_string()
}

/// Starts a gateway pointed at the mock.
type Starter = Box<dyn Fn(&Mock) -> Result<Target, String>>;

/// A gateway under test and how to start it (again, for the streams phase).
struct Subject {
    name: String,
    /// Its entry in the targets list.
    info: usize,
    start: Starter,
}

/// What the targets were and what became of them.
#[derive(serde::Serialize)]
struct TargetInfo {
    name: String,
    kind: &'static str,
    version: Option<String>,
    /// The soft open-files limit the gateway process ran with.
    nofile: Option<u64>,
    pid: Option<u32>,
    /// Why it did not run, or a phase failed to start.
    problems: Vec<String>,
    /// The end of its log when some of its requests failed.
    #[serde(rename = "logTail", skip_serializing_if = "Option::is_none")]
    log_tail: Option<String>,
}

struct Row {
    target: String,
    endpoint: Endpoint,
    load: LoadResult,
    cpu_us_per_req: Option<f64>,
    rss_idle_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    threads_after: Option<u64>,
    load1: String,
}

#[derive(serde::Serialize)]
struct OpenRow {
    target: String,
    result: OpenLoopResult,
    #[serde(rename = "cpuUsPerRequest")]
    cpu_us_per_req: Option<f64>,
    #[serde(rename = "rssAfterKb")]
    rss_after_kb: Option<u64>,
    loadavg: String,
}

#[derive(serde::Serialize)]
struct StreamRow {
    target: String,
    result: StreamsResult,
    loadavg: String,
}

fn main() {
    let a = Args::parse();
    let endpoints: Vec<Endpoint> = a.endpoints.split(',').filter_map(|e| Endpoint::parse(e.trim())).collect();
    // Slow streams: the harness holds a client and a mock socket per stream, a relaying gateway
    // two; children inherit the limits set here (clawgate raises its soft limit itself too).
    let (soft, hard) = if a.streams > 0 { sys::raise_nofile_to(2 * a.streams as u64 + 4096) } else { sys::raise_nofile() };
    eprintln!("open files: soft {soft}, hard {hard} (inherited by the gateways)");
    if a.streams > 0 && 2 * a.streams as u64 + 256 > soft {
        eprintln!(
            "warning: {} streams need about {} descriptors in the harness and in a relaying gateway; expect failures past ~{}",
            a.streams,
            2 * a.streams + 256,
            soft.saturating_sub(256) / 2
        );
    }
    let every = Duration::from_secs_f64(a.stream_every);
    let streams_cfg = Streams {
        n: a.streams,
        opening: a.streams_opening,
        open_timeout: Duration::from_secs_f64(a.streams_timeout),
        // After the release every stream's tail goes through at once: time for a slow relay too.
        end_timeout: every * 2 + Duration::from_secs(15) + Duration::from_millis(5 * a.streams as u64),
    };
    let shape = MockShape {
        answer_bytes: a.answer_bytes,
        chunks: a.chunks,
        chunk_delay: Duration::ZERO,
        slow_every: every,
        slow_max: streams_cfg.open_timeout + streams_cfg.end_timeout + Duration::from_secs(30),
    };
    let mock = Mock::start(shape, Some(a.gateway_cpu)).expect("mock upstream");
    // Before pinning: afterwards this thread sees one CPU.
    let mut machine = procfs::machine();
    pin_current_thread(a.load_cpu);
    let (warmup, seconds) = (Duration::from_secs_f64(a.warmup), Duration::from_secs_f64(a.seconds));
    let open_cfg = |rate: f64| OpenLoop {
        rate,
        warmup,
        duration: Duration::from_secs_f64(a.open_seconds.unwrap_or(a.seconds)),
        max_conns: a.open_conns,
        timeout: Duration::from_secs_f64(a.open_timeout),
    };

    let (subjects, mut infos) = subjects(&a);
    let mut rows: Vec<Row> = Vec::new();
    let mut open_rows: Vec<OpenRow> = Vec::new();
    let mut stream_rows: Vec<StreamRow> = Vec::new();

    // The floor: the mock directly.
    let direct = Api::direct();
    for &e in &endpoints {
        eprintln!("{DIRECT}: {} closed loop", e.name());
        let load = closed_loop(mock.addr, e, &direct, a.conns, warmup, seconds);
        rows.push(Row {
            target: DIRECT.into(),
            endpoint: e,
            load,
            cpu_us_per_req: None,
            rss_idle_kb: None,
            rss_after_kb: None,
            threads_after: None,
            load1: load1(),
        });
    }
    for &rate in &a.rates {
        eprintln!("{DIRECT}: open loop at {rate} req/s");
        let result = open_loop(mock.addr, Endpoint::Chat, &direct, open_cfg(rate));
        open_rows.push(OpenRow { target: DIRECT.into(), result, cpu_us_per_req: None, rss_after_kb: None, loadavg: procfs::loadavg() });
    }
    if a.streams > 0 {
        eprintln!("{DIRECT}: {} slow streams", a.streams);
        let result = streams(mock.addr, &direct, &mock, None, streams_cfg);
        stream_rows.push(StreamRow { target: DIRECT.into(), result, loadavg: procfs::loadavg() });
    }

    for s in &subjects {
        let (name, info) = (s.name.as_str(), &mut infos[s.info]);
        eprintln!("{name}: starting");
        let target = match (s.start)(&mock) {
            Ok(t) => t,
            Err(e) => {
                info.problems.push(format!("failed to start: {e}"));
                continue;
            }
        };
        info.nofile = target.nofile();
        info.pid = Some(target.pid);
        for &e in &endpoints {
            eprintln!("{name}: {} closed loop", e.name());
            let rss_idle_kb = target.rss_kb();
            let cpu0 = target.cpu_seconds();
            let load = closed_loop(target.addr, e, &target.api, a.conns, warmup, seconds);
            let cpu1 = target.cpu_seconds();
            // CPU over warm-up and measurement, per request answered in the measured window,
            // scaled by the share of time measured.
            let share = a.seconds / (a.seconds + a.warmup);
            let cpu_us_per_req = match (cpu0, cpu1) {
                (Some(c0), Some(c1)) if load.ok > 0 => Some((c1 - c0) * share * 1e6 / load.ok as f64),
                _ => None,
            };
            rows.push(Row {
                target: name.to_string(),
                endpoint: e,
                load,
                cpu_us_per_req,
                rss_idle_kb,
                rss_after_kb: target.rss_kb(),
                threads_after: target.threads(),
                load1: load1(),
            });
        }
        for &rate in &a.rates {
            eprintln!("{name}: open loop at {rate} req/s");
            let cpu0 = target.cpu_seconds();
            let result = open_loop(target.addr, Endpoint::Chat, &target.api, open_cfg(rate));
            let cpu1 = target.cpu_seconds();
            // All the run's CPU over all its answers, warm-up included.
            let cpu_us_per_req = match (cpu0, cpu1) {
                (Some(c0), Some(c1)) if result.total_ok > 0 => Some((c1 - c0) * 1e6 / result.total_ok as f64),
                _ => None,
            };
            open_rows.push(OpenRow {
                target: name.to_string(),
                result,
                cpu_us_per_req,
                rss_after_kb: target.rss_kb(),
                loadavg: procfs::loadavg(),
            });
        }
        let failed_some = rows.iter().any(|r| r.target == name && r.load.errors > 0)
            || open_rows.iter().any(|r| r.target == name && r.result.errors + r.result.not_sent > 0);
        if failed_some {
            info.log_tail = Some(target.log_tail(30));
        }
        drop(target);
        if a.streams > 0 {
            // A fresh process: memory per stream is not hidden in what earlier load left behind.
            eprintln!("{name}: {} slow streams (fresh start)", a.streams);
            match (s.start)(&mock) {
                Ok(t) => {
                    // A few streamed requests first, so one-time set-up is not counted per stream.
                    let _ = closed_loop(t.addr, Endpoint::ChatStream, &t.api, 4, Duration::ZERO, Duration::from_millis(200));
                    let result = streams(t.addr, &t.api, &mock, Some(&t), streams_cfg);
                    if result.errors > 0 && info.log_tail.is_none() {
                        info.log_tail = Some(t.log_tail(30));
                    }
                    stream_rows.push(StreamRow { target: name.to_string(), result, loadavg: procfs::loadavg() });
                }
                Err(e) => info.problems.push(format!("failed to start for the streams: {e}")),
            }
        }
    }

    let md = report(&a, &rows, &open_rows, &stream_rows, &infos, soft);
    print!("{md}");
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md).expect("write Markdown");
    }
    machine.loadavg = procfs::loadavg();
    if let Some(p) = &a.json {
        let closed: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"target": r.target, "endpoint": r.endpoint.name(), "load": r.load, "cpuUsPerRequest": r.cpu_us_per_req,
                "rssIdleKb": r.rss_idle_kb, "rssAfterKb": r.rss_after_kb, "threadsAfter": r.threads_after, "loadavg1": r.load1})
            })
            .collect();
        let out = json!({
            "rows": closed,
            "openLoop": open_rows,
            "streams": stream_rows,
            "targets": infos,
            "settings": {"conns": a.conns, "seconds": a.seconds, "warmup": a.warmup, "answerBytes": a.answer_bytes, "chunks": a.chunks,
                "rates": a.rates, "openSeconds": a.open_seconds.unwrap_or(a.seconds), "openConns": a.open_conns, "openTimeout": a.open_timeout,
                "streams": a.streams, "streamEvery": a.stream_every, "streamsOpening": a.streams_opening,
                "gatewayCpu": a.gateway_cpu, "loadCpu": a.load_cpu, "harnessNofile": soft},
            "machine": machine,
        });
        std::fs::write(p, serde_json::to_string_pretty(&out).unwrap_or_default()).expect("write JSON");
    }
    // Only the floor and our own gateways decide the exit status; peers and the reference are
    // reported, not judged.
    let ours = |t: &str| !infos.iter().any(|i| i.name == t && i.kind != "clawgate");
    let failed = rows.iter().any(|r| ours(&r.target) && r.load.ok == 0)
        || open_rows.iter().any(|r| ours(&r.target) && r.result.ok == 0)
        || stream_rows.iter().any(|r| ours(&r.target) && r.result.answered == 0)
        || infos.iter().any(|i| i.kind == "clawgate" && !i.problems.is_empty());
    std::process::exit(if failed { 1 } else { 0 });
}

/// The targets in run order: ours, the reference, then peers (installed here if asked for and
/// missing).
fn subjects(a: &Args) -> (Vec<Subject>, Vec<TargetInfo>) {
    let mut ours: Vec<(String, PathBuf)> = Vec::new();
    for (name, bin) in [("clawgate", &a.clawgate), ("clawgate-lite", &a.lite)] {
        if let Some(b) = bin {
            ours.push((name.to_string(), b.clone()));
        }
    }
    for spec in &a.also {
        match spec.split_once('=') {
            Some((n, p)) => ours.push((n.to_string(), PathBuf::from(p))),
            None => {
                eprintln!("--also wants NAME=PATH, got {spec}");
                std::process::exit(2);
            }
        }
    }
    let gateway_cpu = a.gateway_cpu;
    let mut subjects = Vec::new();
    let mut infos = Vec::new();
    for (name, bin) in ours {
        subjects.push(Subject {
            name: name.clone(),
            info: infos.len(),
            start: Box::new(move |m: &Mock| Target::clawgate(&bin, m.addr, Some(gateway_cpu))),
        });
        infos.push(TargetInfo { name, kind: "clawgate", version: None, nofile: None, pid: None, problems: Vec::new(), log_tail: None });
    }
    if let Some(bin) = a.reference.clone() {
        let name = "reference".to_string();
        subjects.push(Subject {
            name: name.clone(),
            info: infos.len(),
            start: Box::new(move |m: &Mock| Target::reference(&bin, m.addr, Some(gateway_cpu))),
        });
        infos.push(TargetInfo { name, kind: "reference", version: None, nofile: None, pid: None, problems: Vec::new(), log_tail: None });
    }
    let cache = a.peers_dir.clone().unwrap_or_else(peers::cache_dir);
    for (wanted, peer) in [(a.litellm, Peer::LiteLlm), (a.portkey, Peer::Portkey)] {
        if !wanted {
            continue;
        }
        let mut info = TargetInfo {
            name: peer.name().into(),
            kind: "peer",
            version: None,
            nofile: None,
            pid: None,
            problems: Vec::new(),
            log_tail: None,
        };
        match peer.install(&cache) {
            Ok(v) => {
                eprintln!("{}: {} installed at {}", peer.name(), peer.package(), cache.display());
                info.version = Some(v);
                let cache = cache.clone();
                subjects.push(Subject {
                    name: peer.name().into(),
                    info: infos.len(),
                    start: Box::new(move |m: &Mock| peer.start(&cache, m, Some(gateway_cpu))),
                });
            }
            Err(e) => {
                eprintln!("{}: install failed: {e}", peer.name());
                info.problems.push(format!("install of {} failed: {e}", peer.package()));
            }
        }
        infos.push(info);
    }
    (subjects, infos)
}

/// One line of a table cell: no pipes, no newlines, bounded.
fn cell(s: &str, max: usize) -> String {
    let one: String = s.chars().map(|c| if c == '|' || c == '\n' || c == '\r' { ' ' } else { c }).collect();
    let mut out: String = one.chars().take(max).collect();
    if one.chars().count() > max {
        out.push('…');
    }
    out
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "–".into())
}

fn opt0(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "–".into())
}

fn err_note(first: &Option<String>) -> String {
    first.as_ref().map(|e| format!(" ({})", cell(e, 80))).unwrap_or_default()
}

/// Rows for targets that did not run (a phase of them), with the reason.
fn not_run(out: &mut String, infos: &[TargetInfo], cols: usize, has_rows: impl Fn(&str) -> bool) {
    for i in infos.iter().filter(|i| !has_rows(&i.name)) {
        let Some(why) = i.problems.first().map(|p| cell(p, 200)) else { continue };
        let _ = writeln!(out, "| {} | not run: {why} |{}", i.name, " |".repeat(cols.saturating_sub(2)));
    }
}

fn report(a: &Args, rows: &[Row], open_rows: &[OpenRow], stream_rows: &[StreamRow], infos: &[TargetInfo], nofile: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Closed loop ({} keep-alive connections)\n", a.conns);
    let _ = writeln!(
        out,
        "| target | endpoint | req/s | p50 µs | p99 µs | added p50 µs | added p99 µs | CPU µs/req | RSS idle → after KiB | threads | errors | load |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let direct = |e: Endpoint| rows.iter().find(|r| r.endpoint == e && r.target == DIRECT).map(|r| r.load.latency.clone());
    for r in rows {
        let d = direct(r.endpoint);
        let is_direct = r.target == DIRECT;
        let added = |v: f64, base: Option<f64>| if is_direct || r.load.ok == 0 { "–".into() } else { opt0(base.map(|b| v - b)) };
        let (p50, p99) = (r.load.latency.p50_us, r.load.latency.p99_us);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {}{} | {} |",
            r.target,
            r.endpoint.name(),
            r.load.per_second,
            p50,
            p99,
            added(p50, d.as_ref().map(|l| l.p50_us)),
            added(p99, d.as_ref().map(|l| l.p99_us)),
            opt0(r.cpu_us_per_req),
            match (r.rss_idle_kb, r.rss_after_kb) {
                (Some(i), Some(af)) => format!("{i} → {af}"),
                _ => "–".into(),
            },
            opt(r.threads_after),
            r.load.errors,
            err_note(&r.load.first_error),
            r.load1,
        );
    }
    not_run(&mut out, infos, 12, |n| rows.iter().any(|r| r.target == n));
    let _ = writeln!(
        out,
        "\n{} connections, {} s measured after {} s warm-up, answer {} chars in {} SSE chunks; gateways and mock on CPU {}, load on CPU {}; load = 1-min load average after each row",
        a.conns, a.seconds, a.warmup, a.answer_bytes, a.chunks, a.gateway_cpu, a.load_cpu
    );

    if !a.rates.is_empty() {
        let _ = writeln!(out, "\n### Open loop, chat, fixed rates (latency from each request's due time)\n");
        let _ = writeln!(
            out,
            "| target | rate req/s | achieved req/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | CPU µs/req | conns opened | sent late p99 µs | errors | load |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let direct = |rate: f64| open_rows.iter().find(|r| r.target == DIRECT && r.result.rate == rate).map(|r| r.result.latency.clone());
        for r in open_rows {
            let x = &r.result;
            let is_direct = r.target == DIRECT;
            let d = direct(x.rate);
            let added = |v: f64, base: Option<f64>| if is_direct || x.ok == 0 { "–".into() } else { opt0(base.map(|b| v - b)) };
            let errors = if x.not_sent > 0 { format!("{} + {} not sent", x.errors, x.not_sent) } else { x.errors.to_string() };
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {:.0} | {}{} | {} |",
                r.target,
                x.rate,
                x.achieved_per_second,
                x.latency.p50_us,
                x.latency.p99_us,
                x.latency.p999_us,
                added(x.latency.p50_us, d.as_ref().map(|l| l.p50_us)),
                added(x.latency.p99_us, d.as_ref().map(|l| l.p99_us)),
                opt0(r.cpu_us_per_req),
                x.conns_opened,
                x.send_lag.p99_us,
                errors,
                err_note(&x.first_error),
                r.loadavg.split_whitespace().next().unwrap_or("?"),
            );
        }
        not_run(&mut out, infos, 13, |n| open_rows.iter().any(|r| r.target == n));
        let _ = writeln!(
            out,
            "\n{} s measured per rate after {} s warm-up, at most {} connections, {} s answer bound; \"sent late\" = the generator's own send lag behind the schedule (queueing when every connection was busy included)",
            a.open_seconds.unwrap_or(a.seconds),
            a.warmup,
            a.open_conns,
            a.open_timeout
        );
        let _ = writeln!(out, "\nTarget (issue 17): added latency p50 ≤ 100 µs and p99 ≤ 1 ms at 2000 req/s.");
        for r in open_rows.iter().filter(|r| r.target != DIRECT && r.result.rate == 2000.0) {
            let (x, d) = (&r.result, direct(2000.0));
            if let (Some(d), true) = (d, x.ok > 0) {
                let (a50, a99) = (x.latency.p50_us - d.p50_us, x.latency.p99_us - d.p99_us);
                let met = a50 <= 100.0 && a99 <= 1000.0 && x.errors + x.not_sent == 0;
                let _ = writeln!(
                    out,
                    "- {}: added p50 {a50:.0} µs, p99 {a99:.0} µs, {} errors → {}",
                    r.target,
                    x.errors + x.not_sent,
                    if met { "met" } else { "not met" }
                );
            } else {
                let _ = writeln!(out, "- {}: no answers at 2000 req/s → not met", r.target);
            }
        }
    }

    if a.streams > 0 {
        let _ = writeln!(out, "\n### {} concurrent slow streams (chat, a chunk every {} s until released)\n", a.streams, a.stream_every);
        let _ = writeln!(
            out,
            "| target | open at once | upstream open | answered | errors | s to open | RSS before → with → after KiB | KiB/stream | fds before → with | nofile | threads | load |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in stream_rows {
            let x = &r.result;
            let _ = writeln!(
                out,
                "| {} | {} / {} | {} | {} | {}{} | {:.1}{} | {} | {} | {} | {} | {} | {} |",
                r.target,
                x.open,
                x.wanted,
                x.upstream_open,
                x.answered,
                x.errors,
                err_note(&x.first_error),
                x.open_seconds,
                if x.stalled { " (stalled)" } else { "" },
                match (x.rss_before_kb, x.rss_with_kb, x.rss_after_kb) {
                    (Some(b), Some(w), Some(af)) => format!("{b} → {w} → {af}"),
                    _ => "–".into(),
                },
                x.kib_per_stream.map(|k| format!("{k:.1}")).unwrap_or_else(|| "–".into()),
                match (x.fds_before, x.fds_with) {
                    (Some(b), Some(w)) => format!("{b} → {w}"),
                    _ => "–".into(),
                },
                opt(x.nofile),
                opt(x.threads_with),
                r.loadavg.split_whitespace().next().unwrap_or("?"),
            );
        }
        not_run(&mut out, infos, 12, |n| stream_rows.iter().any(|r| r.target == n));
        let _ = writeln!(
            out,
            "\nEach target freshly started for this phase; at most {} streams being opened at once; opening ends when all are open, after {} s, or after {} s without progress (stalled); streams not open by then count as errors. \"upstream open\" = slow streams the mock was serving at the measurement. Harness open-files limit {nofile}. RSS is user-space memory (socket buffers are kernel memory, not in it).",
            a.streams_opening,
            a.streams_timeout,
            clawgate_bench::relay::streams::STALL.as_secs()
        );
        let _ = writeln!(out, "\nTarget (issue 17): ≤ 20 KB per open stream at 9000 streams.");
        for r in stream_rows.iter().filter(|r| r.target != DIRECT) {
            let x = &r.result;
            match x.kib_per_stream {
                Some(k) => {
                    let kb = k * 1.024;
                    let met = kb <= 20.0 && x.open >= 9000;
                    let _ = writeln!(
                        out,
                        "- {}: {k:.1} KiB = {kb:.1} kB per stream with {} open → {}",
                        r.target,
                        x.open,
                        if met {
                            "met"
                        } else if x.open < 9000 {
                            "not met (fewer than 9000 open)"
                        } else {
                            "not met"
                        }
                    );
                }
                None => {
                    let _ = writeln!(out, "- {}: no stream open → not met", r.target);
                }
            }
        }
    }

    let _ = writeln!(out, "\n### Targets\n");
    let _ = writeln!(out, "| target | kind | version | gateway nofile (soft) | problems |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for i in infos {
        let problems =
            if i.problems.is_empty() { "none".to_string() } else { i.problems.iter().map(|p| cell(p, 300)).collect::<Vec<_>>().join("; ") };
        let version = match (i.kind, &i.version) {
            ("peer", Some(v)) => format!("{v} (pinned)"),
            (_, Some(v)) => v.clone(),
            _ => "–".into(),
        };
        let _ = writeln!(out, "| {} | {} | {version} | {} | {problems} |", i.name, i.kind, opt(i.nofile));
    }
    let _ = writeln!(out, "\nloadavg at the end: {}", procfs::loadavg());
    out
}
