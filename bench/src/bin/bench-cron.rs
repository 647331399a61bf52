//! What 10 000 cron jobs cost a running gateway (issue 14), measured from outside: two fresh
//! gateways of the same binary, one left empty and one given N jobs over the WebSocket API
//! (`cron.add`, pipelined), then both left idle for a window. Reports the time to add the jobs,
//! RSS before/after, and over the idle window the CPU seconds and the context switches of all
//! the gateway's threads (the wake-ups: an idle gateway must not wake more often than its next
//! due job needs). The jobs' next fires are all past the window (`every` 1 h–24 h anchored in the
//! future, yearly cron expressions in four zones), so nothing fires.
//!
//!   bench-cron --gateway ./target/release/clawgate [--jobs 10000] [--idle-seconds 60]

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use clawgate_bench::procfs;
use clawgate_bench::spawn::{Flavor, SpawnSpec, free_port, spawn};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

#[derive(Parser)]
struct Args {
    /// The gateway binary (clawgate or clawgate-lite).
    #[arg(long)]
    gateway: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

const TOKEN: &str = "bench-cron-token";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn connect(port: u16) -> WebSocket<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("connect: {e}"),
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/"), stream).expect("upgrade");
    let _challenge = ws.read().expect("challenge");
    let connect = json!({"type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 4, "maxProtocol": 4, "client": {"id": "cli", "version": "bench", "platform": "linux", "mode": "cli"},
        "caps": [], "auth": {"token": TOKEN}, "role": "operator", "scopes": ["operator.admin", "operator.read", "operator.write"]}});
    ws.send(Message::text(connect.to_string())).expect("send connect");
    loop {
        let m = ws.read().expect("hello");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
            if v["id"] == "c" {
                assert_eq!(v["ok"], true, "connect refused: {v}");
                return ws;
            }
        }
    }
}

/// Send all requests, then read until every answer arrived; the number that failed.
fn pipeline(ws: &mut WebSocket<TcpStream>, requests: Vec<Value>) -> usize {
    let n = requests.len();
    let mut failed = 0;
    let mut answered = 0;
    // In windows of 256, so neither side's buffers grow without bound.
    for chunk in requests.chunks(256) {
        for r in chunk {
            ws.write(Message::text(r.to_string())).expect("queue");
        }
        ws.flush().expect("flush");
        let want = answered + chunk.len();
        while answered < want {
            if let Message::Text(t) = ws.read().expect("answer") {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if v["type"] == "res" {
                    answered += 1;
                    if v["ok"] != true {
                        failed += 1;
                        if failed <= 3 {
                            eprintln!("refused: {v}");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(answered, n);
    failed
}

/// Voluntary + involuntary context switches of all the process's threads.
fn context_switches(pid: u32) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("status")) {
                for line in s.lines() {
                    if let Some(v) =
                        line.strip_prefix("voluntary_ctxt_switches:").or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                    {
                        total += v.trim().parse::<u64>().unwrap_or(0);
                    }
                }
            }
        }
    }
    total
}

struct Idle {
    cpu_s: f64,
    switches: u64,
}

/// CPU seconds of the whole process, exited threads included (utime + stime, 10 ms steps).
fn cpu_s(pid: u32) -> f64 {
    procfs::cpu_ticks(pid).unwrap_or(0) as f64 / clawgate_bench::sys::clk_tck() as f64
}

fn idle(pid: u32, seconds: u64) -> Idle {
    let (c0, s0) = (cpu_s(pid), context_switches(pid));
    std::thread::sleep(Duration::from_secs(seconds));
    // Context switches are summed over live threads: a thread that exits in the window takes its
    // count along (hence the settle time before the window).
    Idle { cpu_s: cpu_s(pid) - c0, switches: context_switches(pid).saturating_sub(s0) }
}

fn main() {
    let mut a = Args::parse();
    // The gateway runs in its own HOME: a relative path would not resolve there.
    a.gateway = std::fs::canonicalize(&a.gateway).expect("the gateway binary");
    let spec = |name: &str| SpawnSpec { name: name.to_string(), path: a.gateway.clone(), flavor: Flavor::Clawgate };
    let (mut empty, _) = spawn(&spec("cron-empty"), free_port().unwrap(), TOKEN).expect("spawn");
    let (mut full, _) = spawn(&spec("cron-full"), free_port().unwrap(), TOKEN).expect("spawn");
    let mut ws_empty = connect(empty.port);
    let mut ws = connect(full.port);
    std::thread::sleep(Duration::from_secs(2));
    let rss_before = procfs::vm_rss_kb(full.pid).unwrap_or(0);
    let hour = 3_600_000u64;
    let base = now_ms();
    let requests: Vec<Value> = (0..a.jobs)
        .map(|i| {
            let schedule = if i % 2 == 0 {
                json!({"kind": "every", "everyMs": hour * (1 + (i as u64 % 24)), "anchorMs": base + hour + i as u64})
            } else {
                let zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"];
                // Yearly (1 January): parsed and scheduled like any cron job, never due in the window.
                json!({"kind": "cron", "expr": format!("{} {} 1 1 *", i % 60, (i / 60) % 24), "tz": zones[i % zones.len()]})
            };
            json!({"type": "req", "id": format!("a{i}"), "method": "cron.add", "params": {"name": format!("job {i}"), "schedule": schedule,
                "sessionTarget": "isolated", "wakeMode": "now", "payload": {"kind": "agentTurn", "message": format!("job {i}")}}})
        })
        .collect();
    let t0 = Instant::now();
    let failed = pipeline(&mut ws, requests);
    let add_s = t0.elapsed().as_secs_f64();
    // Anything that would fire in the idle window? (A daily cron can land in it: report it.)
    let list = {
        ws.send(Message::text(json!({"type": "req", "id": "s", "method": "cron.status", "params": {}}).to_string())).unwrap();
        loop {
            if let Message::Text(t) = ws.read().unwrap() {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if v["id"] == "s" {
                    break v["payload"].clone();
                }
            }
        }
    };
    let next_in_s = list["nextWakeAtMs"].as_u64().map(|n| n.saturating_sub(now_ms()) as f64 / 1000.0);
    // Blocking-pool threads that wrote the jobs exit after 10 s idle: let them, before the window.
    std::thread::sleep(Duration::from_secs(15));
    let rss_after = procfs::vm_rss_kb(full.pid).unwrap_or(0);
    // Both idle at the same time (same machine noise).
    let (pid, secs) = (empty.pid, a.idle_seconds);
    let e = std::thread::spawn(move || idle(pid, secs));
    let f = idle(full.pid, a.idle_seconds);
    let e = e.join().expect("idle thread");
    let per_min = |x: f64| x * 60.0 / a.idle_seconds as f64;
    let out = json!({
        "gateway": a.gateway.display().to_string(), "jobs": a.jobs, "refused": failed,
        "add_seconds": add_s, "adds_per_second": a.jobs as f64 / add_s,
        "rss_kb_before": rss_before, "rss_kb_after": rss_after, "rss_kb_per_job": (rss_after as f64 - rss_before as f64) / a.jobs as f64,
        "next_fire_in_seconds": next_in_s, "idle_seconds": a.idle_seconds,
        "idle_empty": {"cpu_seconds": e.cpu_s, "context_switches_per_minute": per_min(e.switches as f64)},
        "idle_with_jobs": {"cpu_seconds": f.cpu_s, "context_switches_per_minute": per_min(f.switches as f64)},
        "rss_kb_empty": procfs::vm_rss_kb(empty.pid).unwrap_or(0),
    });
    let _ = ws.close(None);
    let _ = ws_empty.close(None);
    let _ = (ws.flush(), ws_empty.flush());
    empty.stop(Duration::from_secs(5));
    full.stop(Duration::from_secs(5));
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    }
    let _ = std::io::stdout().flush();
}
