//! Results: the JSON document and the Markdown tables (absolute numbers, ratios to the echo
//! baseline and to the reference, standing against the targets).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::bench::{Config, HandshakeResult, IdleResult, RttResult, ThroughputResult};
use crate::procfs::Machine;
use crate::stats::{Spread, spread};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Baseline,
    Ours,
    Reference,
}

/// One pass of the phases over a target. Readings taken once per gateway process (idle RSS at
/// start and at the end, the idle-clients test) sit in the first/last run of that process, so
/// merged reports from several processes keep one sample per process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    pub rss_idle_start_kb: Option<u64>,
    pub tree_rss_idle_start_kb: Option<u64>,
    pub rss_anon_idle_start_kb: Option<u64>,
    pub rss_idle_end_kb: Option<u64>,
    pub handshake: Option<HandshakeResult>,
    pub rtt: Option<RttResult>,
    pub tput_1: Option<ThroughputResult>,
    pub tput_n: Option<ThroughputResult>,
    pub idle: Option<IdleResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetReport {
    pub name: String,
    pub role: Role,
    pub url: String,
    pub pid: Option<u32>,
    /// The binary, when the harness started it.
    pub spawned: Option<String>,
    /// Process start → first `connect.challenge`, one sample per start, ms.
    pub startup_ms: Vec<f64>,
    pub startup_error: Option<String>,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    /// How many separate runs (processes of the harness) this report combines.
    #[serde(default = "one")]
    pub merged_runs: usize,
    pub command: Vec<String>,
    pub started_unix_s: u64,
    pub wall_s: f64,
    pub machine: Machine,
    pub loadavg_end: String,
    pub nofile_limit: (u64, u64),
    pub config: Config,
    pub baseline: Option<String>,
    pub reference: Option<String>,
    pub targets: Vec<TargetReport>,
}

fn one() -> usize {
    1
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
    Neither,
}

type Getter = Box<dyn Fn(&TargetReport) -> Vec<f64>>;

struct Metric {
    label: String,
    unit: &'static str,
    better: Better,
    decimals: usize,
    get: Getter,
}

fn runs<T>(t: &TargetReport, f: impl Fn(&crate::report::Run) -> Option<T>) -> Vec<T> {
    t.runs.iter().filter_map(f).collect()
}

fn metrics(cfg: &Config) -> Vec<Metric> {
    let n = cfg.conns;
    let idle = cfg.idle;
    let m = |label: String, unit, better, decimals, get: Getter| Metric { label, unit, better, decimals, get };
    vec![
        m("start → first connect.challenge (median of starts)".into(), "ms", Better::Lower, 1, Box::new(|t| t.startup_ms.clone())),
        m("RSS idle, at start".into(), "MB", Better::Lower, 1, Box::new(|t| runs(t, |r| r.rss_idle_start_kb.map(|k| k as f64 / 1024.0)))),
        m(
            "RSS idle incl. child processes".into(),
            "MB",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.tree_rss_idle_start_kb.map(|k| k as f64 / 1024.0))),
        ),
        m(
            "handshake p50 (TCP open → hello-ok)".into(),
            "µs",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.handshake.as_ref().filter(|h| h.to_hello.count > 0).map(|h| h.to_hello.p50_us))),
        ),
        m(
            "handshake p99".into(),
            "µs",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.handshake.as_ref().filter(|h| h.to_hello.count > 0).map(|h| h.to_hello.p99_us))),
        ),
        m(
            "TCP open → connect.challenge p50".into(),
            "µs",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.handshake.as_ref().filter(|h| h.to_challenge.count > 0).map(|h| h.to_challenge.p50_us))),
        ),
        m(
            "  server CPU per handshake (incl. close)".into(),
            "µs",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.handshake.as_ref().and_then(|h| h.server_cpu_us_per_handshake))),
        ),
        m(
            "health round trip p50 (1 conn, sequential)".into(),
            "µs",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.rtt.as_ref().filter(|x| x.latency.count > 0).map(|x| x.latency.p50_us))),
        ),
        m(
            "health round trip p99".into(),
            "µs",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.rtt.as_ref().filter(|x| x.latency.count > 0).map(|x| x.latency.p99_us))),
        ),
        m(
            "  server CPU per sequential health".into(),
            "µs",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.rtt.as_ref().and_then(|x| x.server_cpu_us_per_request))),
        ),
        m(
            "health response frame size".into(),
            "B",
            Better::Neither,
            0,
            Box::new(|t| runs(t, |r| r.rtt.as_ref().filter(|x| x.response_bytes > 0.0).map(|x| x.response_bytes))),
        ),
        m(
            format!("health throughput, 1 conn × {} in flight", crate::bench::effective_window(cfg, 1)),
            "req/s",
            Better::Higher,
            0,
            Box::new(|t| runs(t, |r| r.tput_1.as_ref().map(|x| x.ok_per_s))),
        ),
        m(
            "  busy (UNAVAILABLE) answers, 1 conn".into(),
            "/s",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.tput_1.as_ref().map(|x| x.busy_per_s))),
        ),
        m(
            "  server CPU per ok request, 1 conn".into(),
            "µs",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.tput_1.as_ref().and_then(|x| x.server_cpu_us_per_ok))),
        ),
        m(
            format!("health throughput, {n} conns × {} in flight", crate::bench::effective_window(cfg, n)),
            "req/s",
            Better::Higher,
            0,
            Box::new(|t| runs(t, |r| r.tput_n.as_ref().map(|x| x.ok_per_s))),
        ),
        m(
            format!("  busy (UNAVAILABLE) answers, {n} conns"),
            "/s",
            Better::Lower,
            0,
            Box::new(|t| runs(t, |r| r.tput_n.as_ref().map(|x| x.busy_per_s))),
        ),
        m(
            format!("  server CPU per ok request, {n} conns"),
            "µs",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.tput_n.as_ref().and_then(|x| x.server_cpu_us_per_ok))),
        ),
        m(
            format!("  cores used: server, {n} conns"),
            "cores",
            Better::Neither,
            2,
            Box::new(|t| runs(t, |r| r.tput_n.as_ref().and_then(|x| x.server_cores))),
        ),
        m(
            format!("  cores used: load generator, {n} conns"),
            "cores",
            Better::Neither,
            2,
            Box::new(|t| runs(t, |r| r.tput_n.as_ref().map(|x| x.client_cores))),
        ),
        m(
            format!("  cores used: everything else on the machine, {n} conns"),
            "cores",
            Better::Neither,
            2,
            Box::new(|t| runs(t, |r| r.tput_n.as_ref().map(|x| x.other_cores))),
        ),
        m(
            format!("RSS with {idle} idle authenticated clients"),
            "MB",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.idle.as_ref().and_then(|x| x.rss_with_kb).map(|k| k as f64 / 1024.0))),
        ),
        m(
            format!("RSS per idle connection (Δ over {idle})"),
            "KB",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.idle.as_ref().and_then(|x| x.kb_per_conn))),
        ),
        m(
            format!("time to open {idle} clients (≤{} concurrent handshakes)", cfg.idle_concurrency),
            "s",
            Better::Lower,
            2,
            Box::new(|t| runs(t, |r| r.idle.as_ref().map(|x| x.open_s))),
        ),
        m(
            "RSS after the idle clients closed".into(),
            "MB",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.idle.as_ref().and_then(|x| x.rss_after_close_kb).map(|k| k as f64 / 1024.0))),
        ),
        m(
            "RSS idle, at the end of the run".into(),
            "MB",
            Better::Lower,
            1,
            Box::new(|t| runs(t, |r| r.rss_idle_end_kb.map(|k| k as f64 / 1024.0))),
        ),
    ]
}

fn fmt_num(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let s = format!("{v:.decimals$}");
    // thousands separators for the integer part
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (s.clone(), None),
    };
    let neg = int.starts_with('-');
    let digits: Vec<char> = int.trim_start_matches('-').chars().collect();
    let mut out = String::new();
    for (i, c) in digits.iter().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(*c);
    }
    let mut r = if neg { format!("-{out}") } else { out };
    if let Some(f) = frac {
        r.push('.');
        r.push_str(&f);
    }
    r
}

fn fmt_spread(s: &Spread, decimals: usize) -> String {
    if s.n > 1 && (s.max - s.min).abs() > 0.0 {
        format!("{} ({}–{})", fmt_num(s.median, decimals), fmt_num(s.min, decimals), fmt_num(s.max, decimals))
    } else {
        fmt_num(s.median, decimals)
    }
}

fn ratio_cell(v: Option<Spread>, base: Option<Spread>, better: Better) -> String {
    match (v, base) {
        (Some(v), Some(b)) if b.median != 0.0 && v.median.is_finite() && b.median.is_finite() => {
            let r = v.median / b.median;
            let word = match better {
                Better::Lower if r > 1.0 => " worse",
                Better::Lower if r < 1.0 => " better",
                Better::Higher if r < 1.0 => " worse",
                Better::Higher if r > 1.0 => " better",
                _ => "",
            };
            format!("{}×{}", fmt_ratio(r), word)
        }
        _ => "–".into(),
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else if r >= 0.01 {
        format!("{r:.2}")
    } else {
        format!("{r:.4}")
    }
}

/// The Markdown report: machine, config, absolute table, ratio table, targets.
pub fn markdown(rep: &Report) -> String {
    let mut o = String::new();
    let ms = metrics(&rep.config);
    let ts = &rep.targets;
    let _ = writeln!(o, "## clawgate-bench results\n");
    let _ = writeln!(
        o,
        "Machine: {} cores, {}, kernel {}, {} MB RAM; load average at start {}, at end {}.  ",
        rep.machine.cores, rep.machine.cpu_model, rep.machine.kernel, rep.machine.mem_total_mb, rep.machine.loadavg, rep.loadavg_end
    );
    let c = &rep.config;
    let _ = writeln!(
        o,
        "{}Run: {} handshakes (+{} warm-up), {} sequential health round trips (+{} warm-up), throughput {} s (+{} s warm-up) with ≤ {} in flight per connection and ≤ {} in total over 1 and {} connections, {} idle clients; wall time {:.0} s. Samples per cell: up to {}. Cells with several samples show median (min–max).\n",
        if rep.merged_runs > 1 {
            format!("Combined from {} separate runs of the harness (fresh gateway processes each). ", rep.merged_runs)
        } else {
            String::new()
        },
        c.handshakes,
        c.handshake_warmup,
        c.rtt,
        c.rtt_warmup,
        c.duration_s,
        c.warmup_s,
        c.window,
        c.max_inflight,
        c.conns,
        c.idle,
        rep.wall_s,
        ts.iter().map(|t| t.runs.len()).max().unwrap_or(0)
    );

    // Absolute numbers.
    let _ = write!(o, "| metric | unit |");
    for t in ts {
        let _ = write!(o, " {} |", t.name);
    }
    let _ = write!(o, "\n|---|---|");
    for _ in ts {
        let _ = write!(o, "---:|");
    }
    o.push('\n');
    for m in &ms {
        let cells: Vec<Option<Spread>> = ts.iter().map(|t| spread(&(m.get)(t))).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let arrow = match m.better {
            Better::Lower => " ↓",
            Better::Higher => " ↑",
            Better::Neither => "",
        };
        let _ = write!(o, "| {}{} | {} |", m.label, arrow, m.unit);
        for c in &cells {
            let _ = write!(o, " {} |", c.map(|s| fmt_spread(&s, m.decimals)).unwrap_or_else(|| "–".into()));
        }
        o.push('\n');
    }
    let _ = writeln!(o, "\n↓ lower is better, ↑ higher is better.\n");

    // Ratios.
    let base = rep.baseline.as_ref().and_then(|b| ts.iter().find(|t| &t.name == b));
    let refr = rep.reference.as_ref().and_then(|r| ts.iter().find(|t| &t.name == r));
    let ours: Vec<&TargetReport> = ts.iter().filter(|t| t.role == Role::Ours).collect();
    if !ours.is_empty() && (base.is_some() || refr.is_some()) {
        let _ = write!(o, "Ratios (value ÷ comparison value; \"worse\"/\"better\" from our side):\n\n| metric |");
        for t in &ours {
            if let Some(b) = base {
                let _ = write!(o, " {} ÷ {} |", t.name, b.name);
            }
            if let Some(r) = refr {
                let _ = write!(o, " {} ÷ {} |", t.name, r.name);
            }
        }
        let _ = write!(o, "\n|---|");
        for _ in &ours {
            if base.is_some() {
                o.push_str("---:|");
            }
            if refr.is_some() {
                o.push_str("---:|");
            }
        }
        o.push('\n');
        for m in &ms {
            if m.better == Better::Neither || m.label.starts_with("  busy") {
                continue;
            }
            let bv = base.and_then(|b| spread(&(m.get)(b)));
            let rv = refr.and_then(|r| spread(&(m.get)(r)));
            let row: Vec<String> = ours
                .iter()
                .flat_map(|t| {
                    let v = spread(&(m.get)(t));
                    let mut cells = Vec::new();
                    if base.is_some() {
                        cells.push(ratio_cell(v, bv, m.better));
                    }
                    if refr.is_some() {
                        cells.push(ratio_cell(v, rv, m.better));
                    }
                    cells
                })
                .collect();
            if row.iter().all(|c| c == "–") {
                continue;
            }
            let _ = write!(o, "| {} |", m.label.trim());
            for c in row {
                let _ = write!(o, " {c} |");
            }
            o.push('\n');
        }
        o.push('\n');
    }

    // Targets.
    if !ours.is_empty() {
        let _ = writeln!(o, "Targets:\n\n| target | goal |{}", ours.iter().map(|t| format!(" {} |", t.name)).collect::<String>());
        let _ = writeln!(o, "|---|---|{}", ours.iter().map(|_| "---|").collect::<String>());
        let med = |t: &TargetReport, i: usize| spread(&(ms[i].get)(t)).map(|s| s.median);
        let idx = |prefix: &str| ms.iter().position(|m| m.label.starts_with(prefix));
        let verdict = |v: Option<f64>, ok: bool, shown: String| match v {
            Some(_) => format!("{} {}", if ok { "✅" } else { "❌" }, shown),
            None => "not measured".into(),
        };
        let mut row = |name: &str, goal: &str, f: &dyn Fn(&TargetReport) -> String| {
            let _ = writeln!(o, "| {name} | {goal} |{}", ours.iter().map(|t| format!(" {} |", f(t))).collect::<String>());
        };
        let i_rss = idx("RSS idle, at start");
        row("idle RSS", "≤ 10 MB", &|t| {
            let v = i_rss.and_then(|i| med(t, i));
            verdict(v, v.is_some_and(|v| v <= 10.0), format!("{} MB", fmt_num(v.unwrap_or(f64::NAN), 1)))
        });
        let i_pc = idx("RSS per idle connection");
        let at = if rep.config.idle >= 10_000 { String::new() } else { format!(" (measured at {}, not 10 000)", rep.config.idle) };
        row("RSS per idle authenticated connection", "≤ 20 KB at 10 000 conns", &|t| {
            let v = i_pc.and_then(|i| med(t, i));
            verdict(v, v.is_some_and(|v| v <= 20.0), format!("{} KB{at}", fmt_num(v.unwrap_or(f64::NAN), 1)))
        });
        let i_hs = idx("handshake p50");
        row("handshake p50", "≤ 200 µs", &|t| {
            let v = i_hs.and_then(|i| med(t, i));
            verdict(v, v.is_some_and(|v| v <= 200.0), format!("{} µs", fmt_num(v.unwrap_or(f64::NAN), 0)))
        });
        let i_tp = ms.iter().position(|m| m.label.starts_with(&format!("health throughput, {} conns", rep.config.conns)));
        row("health throughput vs echo", "echo ÷ ours ≤ 1.5", &|t| {
            let v = i_tp.and_then(|i| med(t, i));
            let b = base.and_then(|b| i_tp.and_then(|i| med(b, i)));
            match (v, b) {
                (Some(v), Some(b)) if v > 0.0 => {
                    let r = b / v;
                    verdict(Some(r), r <= 1.5, format!("{}× ({} vs {} req/s)", fmt_ratio(r), fmt_num(v, 0), fmt_num(b, 0)))
                }
                _ => "not measured".into(),
            }
        });
        let i_st = idx("start →");
        row("start → first connect.challenge", "≤ 20 ms", &|t| {
            let v = i_st.and_then(|i| med(t, i));
            verdict(v, v.is_some_and(|v| v <= 20.0), format!("{} ms", fmt_num(v.unwrap_or(f64::NAN), 1)))
        });
        o.push('\n');
    }

    // Problems worth knowing about.
    let mut notes = Vec::new();
    for t in ts {
        if let Some(e) = &t.startup_error {
            notes.push(format!("{}: start: {e}", t.name));
        }
        for (i, r) in t.runs.iter().enumerate() {
            if let Some(h) = &r.handshake {
                if h.errors > 0 || h.truncated_by_time {
                    notes.push(format!(
                        "{} run {}: handshakes: {} errors{} (first: {})",
                        t.name,
                        i + 1,
                        h.errors,
                        if h.truncated_by_time { ", stopped by the phase time limit" } else { "" },
                        h.first_error.as_deref().unwrap_or("-")
                    ));
                }
            }
            if let Some(x) = &r.rtt {
                if x.errors > 0 || x.truncated_by_time {
                    notes.push(format!(
                        "{} run {}: round trips: {} errors{} (first: {})",
                        t.name,
                        i + 1,
                        x.errors,
                        if x.truncated_by_time { ", stopped by the phase time limit" } else { "" },
                        x.first_error.as_deref().unwrap_or("-")
                    ));
                }
            }
            for x in [&r.tput_1, &r.tput_n].into_iter().flatten() {
                if x.errors > 0 || x.conn_failures > 0 || x.first_error.is_some() {
                    notes.push(format!(
                        "{} run {}: throughput over {} conns: {} error answers, {} failed connects (first: {})",
                        t.name,
                        i + 1,
                        x.conns,
                        x.errors,
                        x.conn_failures,
                        x.first_error.as_deref().unwrap_or("-")
                    ));
                }
            }
            if let Some(x) = &r.idle {
                if x.established < x.wanted || x.dropped_while_idle > 0 || x.retries_503 > 0 {
                    notes.push(format!(
                        "{} run {}: idle clients: {}/{} established, {} failures, {} upgrade 503s retried, {} dropped while idle (first error: {})",
                        t.name,
                        i + 1,
                        x.established,
                        x.wanted,
                        x.failures,
                        x.retries_503,
                        x.dropped_while_idle,
                        x.first_error.as_deref().unwrap_or("-")
                    ));
                }
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(o, "Notes:\n");
        for n in notes {
            let _ = writeln!(o, "* {n}");
        }
        o.push('\n');
    }
    o
}

/// Combine reports of separate runs (e.g. three invocations, each with fresh gateway processes):
/// per target (by name), runs and start samples are concatenated.
pub fn merge(mut reports: Vec<Report>) -> Option<Report> {
    if reports.is_empty() {
        return None;
    }
    let mut base = reports.remove(0);
    for r in reports {
        base.merged_runs += r.merged_runs;
        base.wall_s += r.wall_s;
        base.loadavg_end = r.loadavg_end;
        for t in r.targets {
            match base.targets.iter_mut().find(|b| b.name == t.name) {
                Some(b) => {
                    b.runs.extend(t.runs);
                    b.startup_ms.extend(t.startup_ms);
                    if b.startup_error.is_none() {
                        b.startup_error = t.startup_error;
                    }
                }
                None => base.targets.push(t),
            }
        }
    }
    Some(base)
}
