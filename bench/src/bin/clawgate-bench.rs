//! `clawgate-bench`: the side-by-side benchmark harness. See the crate docs and BENCHMARKS.md.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use clawgate_bench::bench::Config;
use clawgate_bench::run::{self, Options};
use clawgate_bench::spawn::Flavor;
use clawgate_bench::{report, sys};

#[derive(Debug, Parser)]
#[command(
    name = "clawgate-bench",
    about = "Benchmark gateways side by side over loopback: handshake latency, health round trips, pipelined throughput, RSS per idle connection, start-up time",
    after_help = "Example:\n  clawgate-bench --spawn echo=target/release/bench-echo --spawn clawgate=target/release/clawgate \\\n    --spawn clawgate-lite=target/release/clawgate-lite --spawn-ref reference=tools/openclaw-ref --repeat 3"
)]
struct Args {
    /// A running gateway: name=ws://127.0.0.1:PORT[,token=T][,pid=PID] (pid enables RSS/CPU readings). Repeatable.
    #[arg(long = "target", value_name = "SPEC")]
    targets: Vec<String>,
    /// Start a binary with `run --port P --token T` (clawgate, clawgate-lite, bench-echo): name=/path. Repeatable.
    #[arg(long = "spawn", value_name = "NAME=PATH")]
    spawns: Vec<String>,
    /// Start the reference with `gateway run --allow-unconfigured --port P --bind loopback --auth token --token T`: name=/path/to/openclaw-ref.
    #[arg(long = "spawn-ref", value_name = "NAME=PATH")]
    spawn_refs: Vec<String>,
    /// Token for spawned gateways and the default for --target.
    #[arg(long, default_value = "bench-token-0123456789")]
    token: String,
    /// Name of the target that is the physical-limit baseline.
    #[arg(long, default_value = "echo")]
    baseline: String,
    /// Name of the target that is the reference gateway.
    #[arg(long, default_value = "reference")]
    reference: String,
    /// Sequential handshakes measured (after the warm-up).
    #[arg(long, default_value_t = 1000)]
    handshakes: usize,
    #[arg(long, default_value_t = 100)]
    handshake_warmup: usize,
    /// Sequential health round trips on one connection (after the warm-up).
    #[arg(long, default_value_t = 10_000)]
    rtt: usize,
    #[arg(long, default_value_t = 1000)]
    rtt_warmup: usize,
    /// Connections for the multi-connection throughput test.
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Requests in flight per connection in the throughput tests.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Cap on requests in flight over all connections of a throughput test (keep it below the
    /// gateway's request-start queue of 256, or the reference answers mostly "busy").
    #[arg(long, default_value_t = 250)]
    max_inflight: usize,
    /// Measured seconds per throughput test.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured seconds before each throughput test.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Idle authenticated clients for the memory test (default 1000; 10 000 with --big).
    #[arg(long)]
    idle: Option<usize>,
    /// 10 000 idle clients.
    #[arg(long)]
    big: bool,
    /// Handshakes in flight while opening idle clients (the gateway allows 32 unauthenticated sockets per IP).
    #[arg(long, default_value_t = 24)]
    idle_concurrency: usize,
    /// Spread client sockets over 127.0.0.1 … 127.0.0.N (more ephemeral ports).
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// Cold starts timed per spawned binary (the last one is kept for the other measurements).
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// Cold starts timed for --spawn-ref targets (each takes ~10 s).
    #[arg(long, default_value_t = 3)]
    ref_starts: usize,
    /// Seconds a spawned gateway may take to serve its first challenge / a target to become ready.
    #[arg(long, default_value_t = 90.0)]
    start_timeout: f64,
    /// Seconds to wait before RSS readings (after start, after opening/closing idle clients).
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Repeat the measurement phases this many times (round-robin over targets); cells show median (min–max).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Seconds any single operation (connect, handshake, response) may take.
    #[arg(long, default_value_t = 10.0)]
    op_timeout: f64,
    /// Seconds a handshake/round-trip phase or the opening of idle clients may take in total.
    #[arg(long, default_value_t = 180.0)]
    phase_timeout: f64,
    /// Phases to run: start, hs, rtt, tput, idle.
    #[arg(long, value_delimiter = ',', default_value = "start,hs,rtt,tput,idle")]
    phases: Vec<String>,
    /// Write the full results as JSON to this file ("-" for stdout instead of Markdown).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Do not measure: combine the JSON reports of earlier runs into one report (median and
    /// min–max over all their samples) and print it like a run would.
    #[arg(long, num_args = 1.., value_name = "JSON")]
    merge: Vec<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() {
    let args = Args::parse();
    match real_main(args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("clawgate-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn output(a: &Args, rep: &report::Report) -> Result<(), String> {
    let md = report::markdown(rep);
    let json = serde_json::to_string_pretty(rep).map_err(|e| e.to_string())?;
    match &a.json {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            std::fs::write(p, &json).map_err(|e| format!("{}: {e}", p.display()))?;
            println!("{md}");
        }
        None => println!("{md}"),
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

fn real_main(a: Args) -> Result<(), String> {
    if !a.merge.is_empty() {
        let mut reps = Vec::new();
        for p in &a.merge {
            let s = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            reps.push(serde_json::from_str::<report::Report>(&s).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        let rep = report::merge(reps).ok_or("nothing to merge")?;
        return output(&a, &rep);
    }
    for p in &a.phases {
        if !["start", "hs", "rtt", "tput", "idle"].contains(&p.as_str()) {
            return Err(format!("unknown phase {p} (start, hs, rtt, tput, idle)"));
        }
    }
    let mut specs = Vec::new();
    for s in &a.spawns {
        specs.push(run::parse_spawn(s, Flavor::Clawgate)?);
    }
    for s in &a.spawn_refs {
        specs.push(run::parse_spawn(s, Flavor::Reference)?);
    }
    for s in &a.targets {
        specs.push(run::parse_target(s, &a.token)?);
    }
    if specs.is_empty() {
        return Err("nothing to measure: give --target, --spawn or --spawn-ref".into());
    }
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    names.dedup();
    if names.len() != specs.len() {
        return Err("target names must be unique".into());
    }
    let idle = a.idle.unwrap_or(if a.big { 10_000 } else { 1000 });
    let nofile = sys::raise_nofile();
    if (nofile.0 as usize) < idle + 256 {
        eprintln!("warning: RLIMIT_NOFILE is {}; {idle} idle clients need more file descriptors", nofile.0);
    }
    let source_ips: Vec<IpAddr> = (1..=a.source_ips.max(1)).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    let config = Config {
        handshakes: a.handshakes,
        handshake_warmup: a.handshake_warmup,
        rtt: a.rtt,
        rtt_warmup: a.rtt_warmup,
        conns: a.conns.max(1),
        window: a.window.max(1),
        max_inflight: a.max_inflight.max(1),
        duration_s: a.duration,
        warmup_s: a.warmup,
        idle,
        idle_concurrency: a.idle_concurrency.clamp(1, 31),
        source_ips: if a.source_ips > 1 { source_ips } else { Vec::new() },
        op_timeout_s: a.op_timeout,
        phase_timeout_s: a.phase_timeout,
        settle_s: a.settle,
    };
    let opts = Options {
        config,
        token: a.token.clone(),
        baseline: a.baseline.clone(),
        reference: a.reference.clone(),
        phases: a.phases.clone(),
        starts: a.starts,
        ref_starts: a.ref_starts,
        start_timeout: Duration::from_secs_f64(a.start_timeout),
        repeat: a.repeat.max(1),
        nofile,
        command: std::env::args().collect(),
        quiet: a.quiet,
    };
    let rep = run::run(&specs, opts)?;
    output(&a, &rep)
}
