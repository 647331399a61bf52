//! The cron scheduler on virtual time (issue 14 item 1): schedules across daylight-saving
//! transitions in two zones and leap days; and, as proptests, the scheduler driven by a
//! simulated shell through random time steps (on its deadlines, across long downtimes, with the
//! wall clock set back) — no fire twice, no fire skipped while the shell keeps its deadlines,
//! one catch-up run after downtime.

use std::collections::{BTreeMap, BTreeSet};

use clawgate_core::cron::{CronOutput, Job, RunResult, RunStatus, Scheduler, Zones, parse_at};
use jiff::tz::TimeZone;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn zones() -> Zones<'static> {
    Zones { host: TimeZone::UTC, lookup: &|name| jiff::tz::db().get(name).ok() }
}

fn ms(s: &str) -> u64 {
    parse_at(s).unwrap()
}

fn job(id: &str, schedule: Value, created: u64) -> Job {
    let mut spec = Map::new();
    spec.insert("name".into(), json!(id));
    spec.insert("schedule".into(), schedule);
    spec.insert("sessionTarget".into(), json!("isolated"));
    spec.insert("payload".into(), json!({"kind": "agentTurn", "message": "hi"}));
    Job::new(id.into(), spec, created, &zones()).unwrap()
}

/// Fires of `j` in `(from, to]`, following `next_after` from each fire.
fn fires(j: &Job, from: u64, to: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut t = from;
    while let Some(n) = j.next_after(t) {
        if n > to {
            break;
        }
        assert!(n > t, "next_after went backwards: {n} after {t}");
        out.push(n);
        t = n;
    }
    out
}

/// The local calendar days the fires fall on, in `zone`.
fn local_days(fires: &[u64], zone: &str) -> Vec<String> {
    let tz = jiff::tz::db().get(zone).unwrap();
    fires.iter().map(|f| jiff::Timestamp::from_millisecond(*f as i64).unwrap().to_zoned_datetime(tz.clone()).date().to_string()).collect()
}

#[test]
fn a_daily_job_fires_once_every_local_day_across_dst_in_two_zones() {
    for zone in ["Europe/Paris", "America/New_York"] {
        // 02:30 does not exist on the spring-forward day and 01:30 exists twice on the
        // fall-back day (New York); both fire exactly once that day.
        for expr in ["30 2 * * *", "30 1 * * *", "0 0 * * *"] {
            let j = job("daily", json!({"kind": "cron", "expr": expr, "tz": zone}), 0);
            let f = fires(&j, ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"));
            let days = local_days(&f, zone);
            let unique: BTreeSet<&String> = days.iter().collect();
            assert_eq!(unique.len(), days.len(), "{zone} {expr}: a day fired twice");
            // Every local day of 2026 that the window covers fires (the first and last day may
            // straddle the UTC window's edges).
            assert!((364..=366).contains(&days.len()), "{zone} {expr}: {} fires", days.len());
        }
    }
}

#[test]
fn the_spring_forward_gap_fires_just_after_it_and_the_repeat_fires_once() {
    // Europe/Paris, 2026-03-29: 02:00 → 03:00. A 02:30 job fires at 03:00 local (01:00 UTC).
    let paris = job("p", json!({"kind": "cron", "expr": "30 2 * * *", "tz": "Europe/Paris"}), 0);
    assert_eq!(paris.next_after(ms("2026-03-28T23:00:00Z")), Some(ms("2026-03-29T01:00:00Z")));
    // America/New_York, 2026-11-01: 02:00 EDT → 01:00 EST. A 01:30 job fires at the first
    // 01:30 (05:30 UTC), not again an hour later.
    let ny = job("n", json!({"kind": "cron", "expr": "30 1 * * *", "tz": "America/New_York"}), 0);
    let first = ny.next_after(ms("2026-11-01T04:00:00Z")).unwrap();
    assert_eq!(first, ms("2026-11-01T05:30:00Z"));
    assert_eq!(ny.next_after(first), Some(ms("2026-11-02T06:30:00Z")));
    // An interval job (every 30 min) fires through the repeated hour in real time.
    let half = job("h", json!({"kind": "cron", "expr": "*/30 * * * *", "tz": "America/New_York"}), 0);
    let f = fires(&half, ms("2026-11-01T04:00:00Z"), ms("2026-11-01T08:00:00Z"));
    assert_eq!(f.len(), 8, "every real half hour: {f:?}");
}

#[test]
fn leap_days_fire_only_in_leap_years() {
    let j = job("leap", json!({"kind": "cron", "expr": "0 12 29 2 *", "tz": "Europe/Paris"}), 0);
    let f = fires(&j, ms("2025-01-01T00:00:00Z"), ms("2033-01-01T00:00:00Z"));
    assert_eq!(local_days(&f, "Europe/Paris"), ["2028-02-29", "2032-02-29"]);
    let every = job("e", json!({"kind": "every", "everyMs": 86_400_000, "anchorMs": ms("2028-02-28T12:00:00Z")}), 0);
    assert_eq!(every.next_after(ms("2028-02-28T12:00:00Z")), Some(ms("2028-02-29T12:00:00Z")));
}

/// A simulated shell: performs the scheduler's outputs, finishing runs after `run_ms`.
struct Shell {
    s: Scheduler,
    /// Every started run: `(job, run id, started at)`.
    started: Vec<(String, String, u64)>,
    running: BTreeMap<String, (String, u64)>,
    persisted: BTreeMap<String, Job>,
    records: Vec<Value>,
}

impl Shell {
    fn new() -> Shell {
        Shell { s: Scheduler::new(), started: Vec::new(), running: BTreeMap::new(), persisted: BTreeMap::new(), records: Vec::new() }
    }

    fn drain(&mut self) {
        while let Some(o) = self.s.poll_output() {
            match o {
                CronOutput::Persist(j) => {
                    self.persisted.insert(j.id.clone(), *j);
                }
                CronOutput::Delete(id) | CronOutput::Retire(id) => {
                    self.persisted.remove(&id);
                }
                CronOutput::Start(r) => {
                    assert!(self.persisted[&r.job.id].state.running_run_id.as_deref() == Some(r.run_id.as_str()), "persisted before start");
                    self.started.push((r.job.id.clone(), r.run_id.clone(), r.run_at_ms));
                    self.running.insert(r.job.id.clone(), (r.run_id.clone(), r.run_at_ms));
                }
                CronOutput::Record(r) => self.records.push(r.body),
                CronOutput::Event(_) | CronOutput::Heartbeat(_) => {}
            }
        }
    }

    /// Finish runs that started at least `run_ms` before `now`.
    fn finish(&mut self, now: u64, run_ms: u64) {
        let done: Vec<(String, String)> =
            self.running.iter().filter(|(_, (_, at))| now >= at + run_ms).map(|(j, (r, _))| (j.clone(), r.clone())).collect();
        for (job, run) in done {
            self.running.remove(&job);
            let ok = RunResult { status: RunStatus::Ok, error: None, ..RunResult::failed("") };
            self.s.handle_finished(&job, &run, ok, now);
            self.drain();
        }
    }
}

/// A step of the simulated shell.
#[derive(Debug, Clone)]
enum Step {
    /// Wake at the scheduler's deadline.
    Deadline,
    /// The wall clock moves on by this much before the next wake (a late wake, a suspend).
    Forward(u64),
    /// The wall clock is set back by this much.
    Back(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Deadline),
        2 => (1u64..7_200_000).prop_map(Step::Forward),
        1 => (1u64..3_600_000).prop_map(Step::Back),
    ]
}

fn schedule() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1_000u64..3_600_000).prop_map(|every| json!({"kind": "every", "everyMs": every, "anchorMs": 1_000_000})),
        (0u32..60, prop::sample::select(vec!["Europe/Paris", "America/New_York", "UTC"]))
            .prop_map(|(m, tz)| json!({"kind": "cron", "expr": format!("{m} * * * *"), "tz": tz})),
        (0u32..60).prop_map(|s| json!({"kind": "cron", "expr": format!("{s} * * * * *")})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Waking at every deadline, with runs shorter than the shortest interval: each job fires
    /// exactly at each of its schedule's slots, once.
    #[test]
    fn on_its_deadlines_every_slot_fires_once(schedules in prop::collection::vec(schedule(), 1..6)) {
        let t0 = ms("2026-03-28T22:00:00Z"); // spans Paris's spring-forward night
        let end = t0 + 6 * 3_600_000;
        let mut sh = Shell::new();
        let jobs: Vec<Job> = schedules.iter().enumerate().map(|(i, s)| job(&format!("j{i}"), s.clone(), t0)).collect();
        for j in &jobs {
            sh.s.add(j.clone(), t0);
        }
        sh.drain();
        let mut now = t0;
        while let Some(wake) = sh.s.poll_timeout(now) {
            prop_assert!(wake >= now || sh.s.next_fire().is_some_and(|f| f <= now), "deadline in the past");
            now = wake.max(now);
            if now > end { break; }
            sh.finish(now, 0);
            sh.s.handle_timeout(now);
            sh.drain();
            sh.finish(now, 0);
        }
        for j in &jobs {
            let want = fires(j, t0, end);
            let got: Vec<u64> = sh.started.iter().filter(|(id, _, _)| *id == j.id).map(|(_, _, at)| *at).collect();
            prop_assert_eq!(got, want, "job {} {:?}", j.id, j.spec["schedule"]);
        }
    }

    /// Any mix of deadlines, late wakes and clock set-backs: no slot runs twice, runs never
    /// overlap, every start is persisted first, and after a gap a job runs at most once.
    #[test]
    fn no_slot_fires_twice_whatever_the_clock_does(
        schedules in prop::collection::vec(schedule(), 1..5),
        steps in prop::collection::vec(step(), 1..80),
        run_ms in 0u64..120_000,
    ) {
        let t0 = ms("2026-10-31T20:00:00Z"); // spans New York's fall-back night
        let mut sh = Shell::new();
        for (i, s) in schedules.iter().enumerate() {
            let mut j = job(&format!("j{i}"), s.clone(), t0);
            if i % 2 == 1 {
                j.spec.insert("overlap".into(), json!("queue"));
            }
            sh.s.add(j, t0);
        }
        sh.drain();
        let mut now = t0;
        for st in steps {
            let before = sh.started.len();
            let gap = match st {
                Step::Deadline => {
                    let Some(w) = sh.s.poll_timeout(now) else { break };
                    let g = w.saturating_sub(now);
                    now = now.max(w);
                    g
                }
                Step::Forward(d) => { now += d; d }
                Step::Back(d) => { now = now.saturating_sub(d); 0 }
            };
            sh.finish(now, run_ms);
            sh.s.handle_timeout(now);
            sh.drain();
            // One wake starts at most one scheduled run per job, however long the gap.
            let mut per_job = BTreeMap::new();
            for (id, run, _) in &sh.started[before..] {
                if !run.ends_with(":queued") {
                    *per_job.entry(id.clone()).or_insert(0) += 1;
                }
            }
            prop_assert!(per_job.values().all(|n| *n <= 1), "gap {gap}: {per_job:?}");
        }
        let runs: Vec<&String> = sh.started.iter().map(|(_, r, _)| r).filter(|r| !r.ends_with(":queued")).collect();
        let unique: BTreeSet<&&String> = runs.iter().collect();
        prop_assert_eq!(unique.len(), runs.len(), "a slot ran twice");
        for (id, j) in &sh.persisted {
            prop_assert_eq!(sh.s.job(id).map(|x| &x.state), Some(&j.state), "store and scheduler agree");
        }
    }
}

#[test]
fn a_restart_records_the_interrupted_run_and_catches_up_once() {
    let t0 = ms("2026-12-07T09:00:00Z");
    let mut sh = Shell::new();
    sh.s.add(job("every-min", json!({"kind": "every", "everyMs": 60_000, "anchorMs": t0}), t0), t0);
    sh.s.add(job("hourly", json!({"kind": "cron", "expr": "0 * * * *"}), t0), t0);
    let mut stale = job("stale", json!({"kind": "every", "everyMs": 60_000, "anchorMs": t0}), t0);
    stale.spec.insert("staleAfterMs".into(), json!(600_000));
    sh.s.add(stale, t0);
    sh.drain();
    sh.s.handle_timeout(t0 + 60_000);
    sh.drain();
    assert_eq!(sh.started.len(), 2, "every-min and stale started at 09:01");
    // The gateway dies mid-run; it comes back at 11:30. The store has what was persisted.
    let stored: Vec<Job> = sh.persisted.values().cloned().collect();
    let mut after = Shell::new();
    let back = ms("2026-12-07T11:30:00Z");
    after.s.load(stored, back);
    after.drain();
    let interrupted: Vec<&Value> = after.records.iter().filter(|r| r["status"] == "error").collect();
    assert_eq!(interrupted.len(), 2, "{:?}", after.records);
    assert!(interrupted[0]["error"].as_str().unwrap().starts_with("interrupted"));
    let skipped: Vec<&Value> = after.records.iter().filter(|r| r["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "the stale job's missed fire is skipped: {:?}", after.records);
    assert_eq!(skipped[0]["jobId"], "stale");
    after.s.handle_timeout(back);
    after.drain();
    let ids: Vec<&str> = after.started.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids, ["every-min", "hourly"], "each missed job runs once");
    after.s.handle_timeout(back);
    after.drain();
    assert_eq!(after.started.len(), 2, "and not again");
    assert_eq!(after.s.job("hourly").unwrap().state.next_run_at_ms, Some(ms("2026-12-07T12:00:00Z")));
}

#[test]
fn an_idle_scheduler_asks_for_no_wake_and_a_far_job_for_few() {
    let mut s = Scheduler::new();
    assert_eq!(s.poll_timeout(0), None, "no job: no wake-up at all");
    let t0 = ms("2026-12-07T09:00:00Z");
    s.add(job("weekly", json!({"kind": "cron", "expr": "0 9 * * 1"}), t0), t0);
    let mut now = t0;
    let mut wakes = 0;
    while now < t0 + 7 * 86_400_000 {
        now = s.poll_timeout(now).unwrap();
        s.handle_timeout(now);
        while s.poll_output().is_some() {}
        wakes += 1;
    }
    // One wake per WALL_CLOCK_RECHECK_MS (10 min) at most: ≤ 6 an hour.
    assert!(wakes <= 7 * 24 * 6 + 1, "{wakes}");
}

#[test]
fn a_one_shot_disables_after_its_run_or_goes_keeping_its_history() {
    let t0 = ms("2026-12-07T09:00:00Z");
    let mut s = Scheduler::new();
    let keep = job("keep", json!({"kind": "at", "at": "2026-12-07T09:00:05Z"}), t0);
    let mut gone = job("gone", json!({"kind": "at", "at": "2026-12-07T09:00:05Z"}), t0);
    gone.spec.insert("deleteAfterRun".into(), json!(true));
    s.add(keep, t0);
    s.add(gone, t0);
    while s.poll_output().is_some() {}
    s.handle_timeout(t0 + 5_000);
    let mut started = Vec::new();
    while let Some(o) = s.poll_output() {
        if let CronOutput::Start(r) = o {
            started.push((r.job.id.clone(), r.run_id.clone()));
        }
    }
    assert_eq!(started.len(), 2);
    let mut outs = Vec::new();
    for (id, run) in started {
        s.handle_finished(&id, &run, RunResult { status: RunStatus::Ok, ..RunResult::failed("") }, t0 + 6_000);
        while let Some(o) = s.poll_output() {
            outs.push(o);
        }
    }
    assert!(outs.iter().any(|o| matches!(o, CronOutput::Retire(id) if id == "gone")), "retired, its history kept");
    assert!(!outs.iter().any(|o| matches!(o, CronOutput::Delete(_))));
    assert!(outs.iter().filter(|o| matches!(o, CronOutput::Record(_))).count() == 2, "both runs recorded");
    let kept = s.job("keep").unwrap();
    assert!(!kept.enabled() && kept.state.next_run_at_ms.is_none(), "a spent one-shot is disabled");
    assert!(s.job("gone").is_none());
    assert_eq!(s.poll_timeout(t0 + 6_000), None, "nothing left to wake for");
}
