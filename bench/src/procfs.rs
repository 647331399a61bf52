//! Reading /proc: resident memory and CPU time of the gateways under test, machine facts.

use std::collections::HashMap;
use std::fs;

/// A `kB` field of /proc/PID/status (`VmRSS`, `RssAnon`, `VmHWM`, ...).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            if let Some(v) = rest.strip_prefix(':') {
                return v.trim().trim_end_matches("kB").trim().parse().ok();
            }
        }
    }
    None
}

pub fn vm_rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

/// Fields of /proc/PID/stat after the command name (field 3 = state is index 0).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = s.rfind(')')?;
    Some(s[close + 1..].split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process (all threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(&pid.to_string())?;
    // fields: 3 state, 4 ppid, ... 14 utime, 15 stime → indexes 11, 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU seconds of a process: the sum of its live threads' scheduler run time (ns precision,
/// /proc/PID/task/*/schedstat), or utime+stime in clock ticks (10 ms steps) if unavailable.
/// Threads that exited in between are not counted by the former.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    let mut any = false;
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            if let Ok(s) = fs::read_to_string(e.path().join("schedstat")) {
                if let Some(v) = s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
                    ns += v;
                    any = true;
                }
            }
        }
    }
    if any {
        return Some(ns as f64 / 1e9);
    }
    cpu_ticks(pid).map(|t| t as f64 / crate::sys::clk_tck() as f64)
}

/// CPU seconds of this process.
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Machine-wide busy CPU seconds (all cores) from /proc/stat: total minus idle and iowait.
pub fn machine_busy_seconds() -> f64 {
    let Ok(s) = fs::read_to_string("/proc/stat") else { return 0.0 };
    let Some(line) = s.lines().next() else { return 0.0 };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return 0.0;
    }
    // user nice system idle iowait irq softirq steal (guest* are included in user/nice)
    let total: u64 = v.iter().take(8).sum();
    let busy = total - v[3] - v[4];
    busy as f64 / crate::sys::clk_tck() as f64
}

/// All descendants of `pid` (children, grandchildren, ...).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(p) = name.parse::<u32>() else { continue };
            if let Some(f) = stat_fields(name) {
                if let Some(pp) = f.get(1).and_then(|x| x.parse::<u32>().ok()) {
                    parent.insert(p, pp);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &parent {
            if pp == p && !out.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// VmRSS of `pid` plus all its descendants (the reference gateway runs worker processes).
pub fn tree_rss_kb(pid: u32) -> Option<u64> {
    let own = vm_rss_kb(pid)?;
    Some(own + descendants(pid).into_iter().filter_map(vm_rss_kb).sum::<u64>())
}

/// CPU seconds of `pid` plus all its descendants (a peer gateway may run worker processes).
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let own = cpu_seconds(pid)?;
    Some(own + descendants(pid).into_iter().filter_map(cpu_seconds).sum::<f64>())
}

/// A plain count field of /proc/PID/status (`Threads`) over `pid` and its descendants.
pub fn tree_status_sum(pid: u32, field: &str) -> Option<u64> {
    let own = status_kb(pid, field)?;
    Some(own + descendants(pid).into_iter().filter_map(|p| status_kb(p, field)).sum::<u64>())
}

/// Open file descriptors of `pid` plus its descendants (entries of /proc/PID/fd).
pub fn tree_fd_count(pid: u32) -> Option<u64> {
    let count = |p: u32| fs::read_dir(format!("/proc/{p}/fd")).ok().map(|rd| rd.count() as u64);
    let own = count(pid)?;
    Some(own + descendants(pid).into_iter().filter_map(count).sum::<u64>())
}

/// The soft "Max open files" limit of a process (/proc/PID/limits).
pub fn max_open_files(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// Facts about the machine for the report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub mem_total_mb: u64,
    pub loadavg: String,
}

pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mem_total_mb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("MemTotal:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|kb| kb / 1024)
        .unwrap_or(0);
    Machine {
        cpu_model,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default(),
        mem_total_mb,
        loadavg: loadavg(),
    }
}
