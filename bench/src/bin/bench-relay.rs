//! The model relay path side by side (issue 17): a mock OpenAI-compatible upstream, the load
//! generator talking to it directly (the floor), then each gateway pointed at it, all in one
//! run. Gateways and the mock share one CPU, the load generator has the other (`--gateway-cpu`,
//! `--load-cpu`). For each target and endpoint: requests/s with `--conns` keep-alive
//! connections (closed loop), latency p50/p99 and what the gateway adds over the direct figure,
//! the gateway's CPU per request (from /proc), RSS idle and after the load, threads.
//!
//!   bench-relay --clawgate target/release/clawgate --lite target/release/clawgate-lite \
//!       [--conns 64] [--seconds 5] [--endpoints chat,chat-stream,responses] [--json out.json]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clawgate_bench::relay::{Endpoint, LoadResult, Mock, MockShape, Target, closed_loop, pin_current_thread};
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
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Measured seconds per target and endpoint.
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
    #[arg(long, default_value_t = 0)]
    gateway_cpu: usize,
    #[arg(long, default_value_t = 1)]
    load_cpu: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

struct Row {
    target: String,
    endpoint: Endpoint,
    load: LoadResult,
    cpu_us_per_req: Option<f64>,
    rss_idle_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    threads_after: Option<u64>,
}

fn main() {
    let a = Args::parse();
    let endpoints: Vec<Endpoint> = a
        .endpoints
        .split(',')
        .filter_map(|e| match e.trim() {
            "chat" => Some(Endpoint::Chat),
            "chat-stream" => Some(Endpoint::ChatStream),
            "responses" => Some(Endpoint::Responses),
            _ => None,
        })
        .collect();
    let shape = MockShape { answer_bytes: a.answer_bytes, chunks: a.chunks, chunk_delay: Duration::ZERO };
    let mock = Mock::start(shape, Some(a.gateway_cpu)).expect("mock upstream");
    pin_current_thread(a.load_cpu);
    let (warmup, seconds) = (Duration::from_secs_f64(a.warmup), Duration::from_secs_f64(a.seconds));
    let mut rows: Vec<Row> = Vec::new();
    for &e in &endpoints {
        let load = closed_loop(mock.addr, e, true, a.conns, warmup, seconds);
        rows.push(Row {
            target: "mock (direct)".into(),
            endpoint: e,
            load,
            cpu_us_per_req: None,
            rss_idle_kb: None,
            rss_after_kb: None,
            threads_after: None,
        });
    }
    let mut targets: Vec<(String, PathBuf)> = Vec::new();
    for (name, bin) in [("clawgate", &a.clawgate), ("clawgate-lite", &a.lite)] {
        if let Some(b) = bin {
            targets.push((name.to_string(), b.clone()));
        }
    }
    for spec in &a.also {
        match spec.split_once('=') {
            Some((n, p)) => targets.push((n.to_string(), PathBuf::from(p))),
            None => {
                eprintln!("--also wants NAME=PATH, got {spec}");
                std::process::exit(2);
            }
        }
    }
    for (name, bin) in &targets {
        let name = name.as_str();
        let target = match Target::clawgate(bin, mock.addr, Some(a.gateway_cpu)) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        };
        for &e in &endpoints {
            let rss_idle_kb = target.rss_kb();
            let cpu0 = target.cpu_seconds();
            let load = closed_loop(target.addr, e, false, a.conns, warmup, seconds);
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
            });
        }
    }
    println!(
        "| target | endpoint | req/s | p50 µs | p99 µs | added p50 µs | added p99 µs | CPU µs/req | RSS idle → after KiB | threads | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let direct = |e: Endpoint| rows.iter().find(|r| r.endpoint == e && r.target == "mock (direct)").map(|r| r.load.latency.clone());
    let mut out = Vec::new();
    for r in &rows {
        let d = direct(r.endpoint);
        let added = |v: f64, base: Option<f64>| base.map(|b| format!("{:.0}", v - b)).unwrap_or_else(|| "–".into());
        let (p50, p99) = (r.load.latency.p50_us, r.load.latency.p99_us);
        let is_direct = r.target == "mock (direct)";
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {}{} |",
            r.target,
            r.endpoint.name(),
            r.load.per_second,
            p50,
            p99,
            if is_direct { "–".into() } else { added(p50, d.as_ref().map(|l| l.p50_us)) },
            if is_direct { "–".into() } else { added(p99, d.as_ref().map(|l| l.p99_us)) },
            r.cpu_us_per_req.map(|c| format!("{c:.0}")).unwrap_or_else(|| "–".into()),
            match (r.rss_idle_kb, r.rss_after_kb) {
                (Some(i), Some(af)) => format!("{i} → {af}"),
                _ => "–".into(),
            },
            r.threads_after.map(|t| t.to_string()).unwrap_or_else(|| "–".into()),
            r.load.errors,
            r.load.first_error.as_ref().map(|e| format!(" ({})", e.chars().take(80).collect::<String>())).unwrap_or_default(),
        );
        out.push(json!({"target": r.target, "endpoint": r.endpoint.name(), "load": r.load, "cpuUsPerRequest": r.cpu_us_per_req,
            "rssIdleKb": r.rss_idle_kb, "rssAfterKb": r.rss_after_kb, "threadsAfter": r.threads_after}));
    }
    println!(
        "\n{} connections, {} s measured after {} s warm-up, answer {} chars in {} SSE chunks; gateways and mock on CPU {}, load on CPU {}; loadavg {}",
        a.conns,
        a.seconds,
        a.warmup,
        a.answer_bytes,
        a.chunks,
        a.gateway_cpu,
        a.load_cpu,
        clawgate_bench::procfs::loadavg()
    );
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&json!({"rows": out})).unwrap_or_default()).expect("write JSON");
    }
    let failed = rows.iter().any(|r| r.load.ok == 0);
    std::process::exit(if failed { 1 } else { 0 });
}
