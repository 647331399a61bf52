//! Runtime load figures (our counterpart of Node's event-loop monitor): timer lag of the
//! runtime, process CPU per core, host CPU utilization, RSS. Read from `/proc` on Linux;
//! zeros elsewhere.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawgate_core::gateway::{HostFacts, Hub, RuntimeStats};

use crate::rt::Runtime;
use crate::session::unix_ms;

/// Timer-lag sampling period while clients are connected, and how many samples make the
/// window (1 minute).
const TICK: Duration = Duration::from_millis(100);
const WINDOW: usize = 600;
/// With no client connected the gateway samples once a second: an idle gateway wakes for
/// nothing but its next due cron job and this (issue 14's idle wake-up rule).
const IDLE_TICK: Duration = Duration::from_secs(1);
/// How often the hub gets fresh figures, and host facts.
const PUBLISH: Duration = Duration::from_secs(1);
const HOST_FACTS: Duration = Duration::from_secs(10);

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Process CPU time (user + system), seconds.
fn process_cpu_seconds() -> Option<f64> {
    let stat = read("/proc/self/stat")?;
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 (1-based).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

#[allow(unsafe_code)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

#[allow(unsafe_code)]
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// Host CPU counters: (busy, total) jiffies and CPU count.
fn host_cpu() -> Option<(u64, u64, u32)> {
    let stat = read("/proc/stat")?;
    let mut lines = stat.lines();
    let first = lines.next()?;
    let nums: Vec<u64> = first.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = nums.iter().sum();
    let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
    let cpus = stat.lines().filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)).count() as u32;
    Some((total.saturating_sub(idle), total, cpus.max(1)))
}

/// Give freed heap memory back to the OS (glibc keeps it in its arenas: after 10 000 clients
/// have come and gone RSS would otherwise stay at its peak). Thread-safe; takes the arena locks
/// for the few milliseconds it walks the free lists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// Connections that must have gone (and at least half of the peak) before the heap is trimmed.
const TRIM_AFTER_DROP: usize = 1000;

/// Resident and peak resident set size, bytes.
pub fn memory() -> (u64, u64) {
    let rss = read("/proc/self/statm")
        .and_then(|s| s.split_whitespace().nth(1).and_then(|x| x.parse::<u64>().ok()))
        .map(|pages| pages * page_size())
        .unwrap_or(0);
    let peak = read("/proc/self/status")
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(rss);
    (rss, peak)
}

/// Host facts for `system.info`: names from `/proc/sys/kernel`, memory and load from `/proc`,
/// the state dir's file system from `statvfs`.
pub fn host_facts(state_dir: &str) -> HostFacts {
    let trimmed = |p: &str| read(p).map(|s| s.trim().to_string()).unwrap_or_default();
    let meminfo = read("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| {
        meminfo.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).map(|k| k * 1024)
    };
    let load_average = read("/proc/loadavg").and_then(|s| {
        let v: Vec<f64> = s.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect();
        (v.len() == 3).then(|| [v[0], v[1], v[2]])
    });
    let cpu_model = read("/proc/cpuinfo")
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_string()));
    let (disk_total_bytes, disk_available_bytes) = disk_space(state_dir).unzip();
    HostFacts {
        hostname: trimmed("/proc/sys/kernel/hostname"),
        release: trimmed("/proc/sys/kernel/osrelease"),
        // The reference's (Node's) names.
        arch: match std::env::consts::ARCH {
            "x86_64" => "x64".to_string(),
            "aarch64" => "arm64".to_string(),
            other => other.to_string(),
        },
        platform: std::env::consts::OS.to_string(),
        cpu_count: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        cpu_model,
        memory_total_bytes: kb("MemTotal:").unwrap_or(0),
        memory_free_bytes: kb("MemAvailable:").or_else(|| kb("MemFree:")).unwrap_or(0),
        load_average,
        disk_path: state_dir.to_string(),
        disk_total_bytes,
        disk_available_bytes,
    }
}

/// `(total, available)` bytes of the file system holding `path`.
#[allow(unsafe_code)]
fn disk_space(path: &str) -> Option<(u64, u64)> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: `c` is a valid C string and `st` a writable statvfs the call fills in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let frag = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frag, st.f_bavail as u64 * frag))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Sample forever, publishing to the hub once per second.
pub async fn run<R: Runtime>(rt: R, hub: Arc<Hub>) {
    let mut lags: VecDeque<f64> = VecDeque::with_capacity(WINDOW);
    let mut next = Instant::now() + TICK;
    let mut last_pub = Instant::now();
    let mut last_cpu = process_cpu_seconds().unwrap_or(0.0);
    let mut last_host = host_cpu();
    let mut last_facts: Option<Instant> = None;
    let mut tick = TICK;
    // Most connections open since the last heap trim.
    let mut conn_peak = 0usize;
    loop {
        rt.sleep_until(next).await;
        let woke = Instant::now();
        let lag = woke.saturating_duration_since(next).as_secs_f64() * 1000.0;
        if lags.len() == WINDOW {
            lags.pop_front();
        }
        lags.push_back(lag);
        next = woke + tick;
        if woke.saturating_duration_since(last_pub) + tick / 2 < PUBLISH {
            continue;
        }
        let t0 = Instant::now();
        let wall = t0.saturating_duration_since(last_pub).as_secs_f64().max(1e-6);
        let cpu = process_cpu_seconds().unwrap_or(last_cpu);
        let cpu_ratio = ((cpu - last_cpu) / wall).max(0.0);
        let host = host_cpu();
        let host_util = match (last_host, host) {
            (Some((b0, t0_, _)), Some((b1, t1, _))) if t1 > t0_ => Some((b1 - b0) as f64 / (t1 - t0_) as f64),
            _ => None,
        };
        let (rss, peak) = memory();
        let mut sorted: Vec<f64> = lags.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let workers = rt.worker_threads().max(1);
        let stats = RuntimeStats {
            interval_ms: (wall * 1000.0 * 1000.0).round() / 1000.0,
            delay_p99_ms: percentile(&sorted, 0.99),
            delay_max_ms: sorted.last().copied().unwrap_or(0.0),
            cpu_core_ratio: cpu_ratio,
            utilization: (cpu_ratio / f64::from(workers)).min(1.0),
            host_utilization: host_util,
            host_cpu_count: host.map(|h| h.2).unwrap_or(1),
            worker_threads: workers,
            rss_bytes: rss,
            peak_rss_bytes: peak,
            probe_duration_ms: t0.elapsed().as_millis() as u64,
        };
        hub.set_runtime_stats(stats, unix_ms());
        // Host facts change slowly: every 10 s (and at the first publish).
        if last_facts.is_none_or(|t| t0.saturating_duration_since(t) >= HOST_FACTS) {
            last_facts = Some(t0);
            let state_dir = hub.info().state_dir.clone();
            let facts = rt.spawn_blocking(move || host_facts(&state_dir)).await;
            hub.set_host_facts(facts);
        }
        let (conns, _) = hub.connection_counts();
        tick = if conns == 0 { IDLE_TICK } else { TICK };
        next = next.min(Instant::now() + tick);
        conn_peak = conn_peak.max(conns);
        if conn_peak - conns >= TRIM_AFTER_DROP && conns <= conn_peak / 2 {
            conn_peak = conns;
            let _ = rt.spawn_blocking(trim_heap).await;
        }
        last_pub = t0;
        last_cpu = cpu;
        last_host = host;
    }
}
