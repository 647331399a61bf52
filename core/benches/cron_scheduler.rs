//! The cron scheduler's own cost, in process, on virtual time (issue 14; `cargo bench -p
//! clawgate-core --bench cron_scheduler`): heap held by 10 000 jobs, the time to add them, the
//! time of a `handle_timeout` with nothing due (what each wake costs), the time per fire, and how
//! many wakes a day of those jobs asks for. Numbers go to BENCHMARKS.md.

// A benchmark measures wall time (the core itself never reads the clock).
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use clawgate_core::cron::{CronOutput, Job, RunResult, RunStatus, Scheduler, Zones};
use serde_json::json;

/// Counts the bytes live on the heap.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const JOBS: usize = 10_000;
const T0: u64 = 1_796_637_600_000; // 2026-12-07T10:00:00Z

fn job(i: usize) -> Job {
    let zones_list = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"];
    let schedule = if i % 2 == 0 {
        json!({"kind": "every", "everyMs": 60_000 * (1 + (i as u64 % 1440)), "anchorMs": T0 + i as u64})
    } else {
        json!({"kind": "cron", "expr": format!("{} {} * * *", i % 60, (i / 60) % 24), "tz": zones_list[i % zones_list.len()]})
    };
    let spec = json!({"name": format!("job {i}"), "schedule": schedule, "sessionTarget": "isolated", "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": format!("job {i}")}});
    let zones = Zones { host: jiff::tz::TimeZone::UTC, lookup: &|n| jiff::tz::db().get(n).ok() };
    Job::new(format!("{i:08}"), spec.as_object().cloned().unwrap_or_default(), T0, &zones).expect("job")
}

fn main() {
    let before = LIVE.load(Ordering::Relaxed);
    let jobs: Vec<Job> = (0..JOBS).map(job).collect();
    let mut s = Scheduler::new();
    let t = Instant::now();
    for j in jobs {
        s.add(j, T0);
        while s.poll_output().is_some() {}
    }
    let add = t.elapsed();
    // Everything the scheduler holds for its jobs (the jobs moved into it, its due index).
    let held = LIVE.load(Ordering::Relaxed) - before;
    let per_job_total = held as f64 / JOBS as f64;

    // A wake with nothing due.
    let first = s.next_fire().expect("scheduled");
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        s.handle_timeout(black_box(first - 1));
        black_box(s.poll_timeout(first - 1));
    }
    let idle_ns = t.elapsed().as_nanos() as f64 / n as f64;

    // A simulated day: wake at each deadline, fire what is due, every run ends at once.
    let mut now = T0;
    let (mut wakes, mut fires) = (0u64, 0u64);
    let t = Instant::now();
    while let Some(at) = s.poll_timeout(now) {
        if at > T0 + 86_400_000 {
            break;
        }
        now = at;
        wakes += 1;
        s.handle_timeout(now);
        let mut started = Vec::new();
        while let Some(o) = s.poll_output() {
            if let CronOutput::Start(r) = o {
                started.push((r.job.id.clone(), r.run_id.clone()));
            }
        }
        for (job, run) in started {
            fires += 1;
            s.handle_finished(&job, &run, RunResult { status: RunStatus::Ok, ..RunResult::failed("") }, now);
            while s.poll_output().is_some() {}
        }
    }
    let day = t.elapsed();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "jobs": JOBS,
            "add_ms": add.as_secs_f64() * 1000.0,
            "add_us_per_job": add.as_secs_f64() * 1e6 / JOBS as f64,
            "heap_bytes_in_scheduler": held,
            "heap_bytes_per_job": per_job_total,
            "idle_wake_ns": idle_ns,
            "day_wakes": wakes,
            "day_fires": fires,
            "day_cpu_ms": day.as_secs_f64() * 1000.0,
            "us_per_fire": day.as_secs_f64() * 1e6 / fires.max(1) as f64,
        }))
        .unwrap_or_default()
    );
}
