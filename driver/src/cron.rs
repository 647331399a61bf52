//! The cron shell (operator §6): holds the core's [`Scheduler`], loads its jobs from the store,
//! sleeps until its deadline, and performs what it says — persisting job rows and run history
//! in one transaction *before* starting the runs that follow (so a crash can neither fire a slot
//! twice nor lose a run), starting agent runs, broadcasting `cron` events. `cron.*` calls are
//! applied here too, and answered once their writes are durable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawgate_core::Reply;
use clawgate_core::cron::{CronOutput, Job, RunStart, Zones, plan_run, run_result};
use clawgate_core::gateway::Audience;
use clawgate_core::methods::cron::{CronCall, apply_on_hub, runs_result};
use clawgate_core::wire::ErrorShape;
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::StreamExt;
use futures_util::future::{Either, select};

use crate::daemon::Ctx;
use crate::rt::Runtime;
use crate::session::unix_ms;
use crate::store::CronWrite;

/// What the shell keeps beside the hub's scheduler.
pub struct CronService {
    /// Jobs loaded from the store (once, before the first call or fire).
    loaded: Mutex<bool>,
    /// Nudges the timer task when a call changed the schedule.
    wake: UnboundedSender<()>,
    wake_rx: Mutex<Option<UnboundedReceiver<()>>>,
    /// `processInstanceId`: this process's id (a `cron.run` for another is refused).
    pub process_id: String,
}

fn zones() -> Zones<'static> {
    Zones { host: jiff::tz::TimeZone::system(), lookup: &|name| jiff::tz::db().get(name).ok() }
}

impl CronService {
    /// Wakes the cron timer (after a config reload: heartbeats and `cron.enabled` follow it).
    pub fn waker(&self) -> UnboundedSender<()> {
        self.wake.clone()
    }

    pub fn new(process_id: String) -> CronService {
        let (wake, rx) = unbounded();
        CronService { loaded: Mutex::new(false), wake, wake_rx: Mutex::new(Some(rx)), process_id }
    }
}

/// Load the stored jobs into the scheduler once (blocking). A store that does not exist yet
/// has no jobs and is not created; a job row that does not parse is skipped (and kept).
fn ensure_loaded(ctx: &Ctx) {
    let svc = &ctx.cron;
    let mut loaded = svc.loaded.lock().unwrap_or_else(|p| p.into_inner());
    if *loaded {
        return;
    }
    let settings = ctx.hub.settings();
    let mut jobs = Vec::new();
    if crate::store::sessions_db_path(ctx.state_dir()).exists() {
        if let Some(store) = ctx.store() {
            match store.cron_jobs() {
                Ok(rows) => {
                    // The host's zone is read once, not once per job.
                    let zones = zones();
                    for (id, body) in rows {
                        match serde_json::from_str::<Job>(&body).map_err(|e| e.to_string()).and_then(|mut j| {
                            j.compile(&zones).map_err(|e| e.to_string())?;
                            Ok(j)
                        }) {
                            Ok(j) => jobs.push(j),
                            Err(e) => tracing::error!(job = %id, "cron job not loaded (its row is kept): {e}"),
                        }
                    }
                }
                Err(e) => tracing::error!("cron jobs not loaded: {e}"),
            }
        }
    }
    if !jobs.is_empty() {
        tracing::info!(jobs = jobs.len(), "cron jobs loaded");
    }
    let cfg = settings.api.cron;
    ctx.hub.with_cron(|s| {
        s.configure(cfg.enabled, cfg.skip_missed_jobs);
        s.load(jobs, unix_ms());
    });
    *loaded = true;
}

/// Perform the scheduler's outputs: the writes first (one transaction), then the events and the
/// runs. Runs are not started when their rows could not be written (each is recorded as not
/// started instead). `Err` when the writes failed.
fn perform<R: Runtime>(
    rt: &R,
    ctx: &Arc<Ctx>,
    outs: Vec<CronOutput>,
) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
    let (rt, ctx) = (rt.clone(), ctx.clone());
    async move {
        let mut writes = Vec::new();
        for o in &outs {
            match o {
                CronOutput::Persist(j) => match serde_json::to_string(j) {
                    Ok(body) => writes.push(CronWrite::Job { id: j.id.clone(), body, updated_ms: j.updated_at_ms }),
                    Err(e) => tracing::error!(job = %j.id, "cron job not serialised: {e}"),
                },
                CronOutput::Delete(id) => writes.push(CronWrite::Delete(id.clone())),
                CronOutput::Retire(id) => writes.push(CronWrite::Retire(id.clone())),
                CronOutput::Record(r) => writes.push(CronWrite::Run {
                    job_id: r.job_id.clone(),
                    ts_ms: r.ts,
                    status: r.status.as_str().to_string(),
                    body: r.body.to_string(),
                }),
                CronOutput::Start(_) | CronOutput::Event(_) | CronOutput::Heartbeat(_) => {}
            }
        }
        let written = if writes.is_empty() {
            Ok(())
        } else {
            let ctx2 = ctx.clone();
            rt.spawn_blocking(move || match ctx2.store() {
                Some(store) => store.cron_write(&writes).map_err(|e| e.to_string()),
                None => Err("the store is not available".to_string()),
            })
            .await
        };
        if let Err(e) = &written {
            tracing::error!("cron store not written: {e}");
        }
        let mut refused = Vec::new();
        for o in outs {
            match o {
                CronOutput::Event(payload) => ctx.hub.broadcast_to("cron", &payload, Audience::Everyone),
                CronOutput::Heartbeat(payload) => ctx.hub.broadcast_to("heartbeat", &payload, Audience::Everyone),
                CronOutput::Start(start) if written.is_ok() => {
                    rt.spawn(execute(rt.clone(), ctx.clone(), *start));
                }
                CronOutput::Start(start) => refused.push(start),
                _ => {}
            }
        }
        if !refused.is_empty() {
            let why = format!("not started: the cron store could not be written ({})", written.as_ref().err().cloned().unwrap_or_default());
            let more = ctx.hub.with_cron(|s| {
                for r in &refused {
                    s.handle_finished(&r.job.id, &r.run_id, clawgate_core::cron::RunResult::failed(why.clone()), unix_ms());
                }
                s.drain_outputs()
            });
            // Best effort: the next write may work; never loop on a failing store.
            let _ = Box::pin(perform(&rt, &ctx, more.into_iter().filter(|o| !matches!(o, CronOutput::Start(_))).collect())).await;
        }
        written
    }
}

/// The minute of the day now in `zone` (else the host's zone).
fn local_minute(zone: Option<&str>) -> Option<u32> {
    let tz = match zone {
        Some(z) => jiff::tz::db().get(z).ok()?,
        None => jiff::tz::TimeZone::system(),
    };
    let now = jiff::Timestamp::now().to_zoned_datetime(tz);
    Some(now.hour() as u32 * 60 + now.minute() as u32)
}

/// Execute one run as an agent run, with the job's timeout; report its end to the scheduler.
async fn execute<R: Runtime>(rt: R, ctx: Arc<Ctx>, start: RunStart) {
    if start.job.payload().get("kind").and_then(serde_json::Value::as_str) == Some("heartbeat") {
        return heartbeat(rt, ctx, start).await;
    }
    let agents = ctx.hub.settings().api.agents.clone();
    let plan = plan_run(&start, &agents, ctx.hub.random_uuid());
    tracing::info!(job = %start.job.id, run = %start.run_id, session = %plan.spec.session_key, "cron run started");
    let (outcome, timed_out) = agent_turn(&rt, &ctx, &plan).await;
    let result = run_result(&plan, outcome.as_ref(), timed_out);
    finish(&rt, &ctx, &start, result, None).await;
}

/// Run the planned agent turn, stopped after its timeout: how it ended, and whether it timed out.
async fn agent_turn<R: Runtime>(
    rt: &R,
    ctx: &Arc<Ctx>,
    plan: &clawgate_core::cron::CronRun,
) -> (Option<clawgate_core::agent::Outcome>, bool) {
    match ctx.hub.start_unowned_run(plan.spec.clone(), Instant::now(), unix_ms()) {
        Ok(run) => {
            let deadline = Instant::now() + Duration::from_millis(plan.timeout_ms);
            let runner = Box::pin(crate::agent::execute_for_outcome(rt.clone(), ctx.clone(), run));
            match select(runner, rt.sleep_until(deadline)).await {
                Either::Left((o, _)) => (o, false),
                Either::Right((_, runner)) => {
                    // Stop it and wait for it to end as aborted.
                    ctx.hub.abort_runs(&plan.spec.session_key, Some(&plan.spec.run_id));
                    (runner.await, true)
                }
            }
        }
        Err(_) => (Some(clawgate_core::agent::Outcome::Err { message: "a run with this id is already in flight".into() }), false),
    }
}

/// Report a run's end to the scheduler (and a heartbeat's event), perform what follows.
async fn finish<R: Runtime>(
    rt: &R,
    ctx: &Arc<Ctx>,
    start: &RunStart,
    result: clawgate_core::cron::RunResult,
    heartbeat: Option<serde_json::Value>,
) {
    tracing::info!(job = %start.job.id, run = %start.run_id, status = result.status.as_str(), "cron run ended");
    let outs = ctx.hub.with_cron(|s| {
        s.handle_finished(&start.job.id, &start.run_id, result, unix_ms());
        if let Some(event) = heartbeat {
            s.record_heartbeat(event);
        }
        s.drain_outputs()
    });
    let _ = perform(rt, ctx, outs).await;
    let _ = ctx.cron.wake.unbounded_send(());
}

/// A due heartbeat: skipped (disabled, quiet hours, no route) or a turn in its session.
async fn heartbeat<R: Runtime>(rt: R, ctx: Arc<Ctx>, start: RunStart) {
    use clawgate_core::cron::heartbeat::{HeartbeatPlan, outcome, plan};
    let settings = ctx.hub.settings();
    let enabled = ctx.hub.with_cron(|s| s.heartbeats_enabled());
    match plan(&start, &settings.api, enabled, unix_ms(), ctx.hub.random_uuid(), &local_minute) {
        HeartbeatPlan::Skip { result, event } => finish(&rt, &ctx, &start, result, Some(event)).await,
        HeartbeatPlan::Run(run) => {
            let began = Instant::now();
            let (ended, _) = agent_turn(&rt, &ctx, &run).await;
            let (result, event) = outcome(&run, ended.as_ref(), began.elapsed().as_millis() as u64, unix_ms());
            finish(&rt, &ctx, &start, result, Some(event)).await;
        }
    }
}

/// Keep the managed heartbeat jobs in step with the config (at start and after a reload).
async fn sync_heartbeats<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, synced: &mut Option<Vec<(String, u64)>>) {
    let desired: Vec<(String, u64)> = ctx.hub.settings().api.heartbeats.iter().map(|(a, h)| (a.clone(), h.every_ms)).collect();
    if synced.as_ref() == Some(&desired) {
        return;
    }
    let fresh: Vec<String> = desired.iter().map(|_| ctx.hub.random_uuid()).collect();
    let outs = ctx.hub.with_cron(|s| {
        s.sync_heartbeats(&desired, fresh, unix_ms());
        s.drain_outputs()
    });
    if perform(rt, ctx, outs).await.is_ok() {
        *synced = Some(desired);
    }
}

/// The timer: sleep until the scheduler's deadline (or a change), fire what is due.
pub async fn run<R: Runtime>(rt: R, ctx: Arc<Ctx>) {
    let Some(mut wake) = ctx.cron.wake_rx.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
    let ctx2 = ctx.clone();
    rt.spawn_blocking(move || ensure_loaded(&ctx2)).await;
    let mut synced = None;
    loop {
        sync_heartbeats(&rt, &ctx, &mut synced).await;
        let cfg = ctx.hub.settings().api.cron;
        let outs = ctx.hub.with_cron(|s| {
            s.configure(cfg.enabled, cfg.skip_missed_jobs);
            s.handle_timeout(unix_ms());
            s.drain_outputs()
        });
        if !outs.is_empty() {
            let _ = perform(&rt, &ctx, outs).await;
        }
        let deadline = ctx.hub.with_cron(|s| s.poll_timeout(unix_ms()));
        match deadline {
            // The wall clock says when; the monotonic clock sleeps (re-checked on waking).
            Some(at) => {
                let sleep = rt.sleep_until(Instant::now() + Duration::from_millis(at.saturating_sub(unix_ms())));
                if let Either::Left((None, _)) = select(wake.next(), sleep).await {
                    return;
                }
            }
            None => {
                if wake.next().await.is_none() {
                    return;
                }
            }
        }
    }
}

/// Carry out a `cron.*` call.
pub async fn call<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, call: CronCall) -> Reply {
    let ctx2 = ctx.clone();
    rt.spawn_blocking(move || ensure_loaded(&ctx2)).await;
    if let CronCall::Runs(q) = call {
        let ctx2 = ctx.clone();
        return rt
            .spawn_blocking(move || {
                if !crate::store::sessions_db_path(ctx2.state_dir()).exists() {
                    return Reply::Ok(Some(runs_result(&q, Vec::new(), 0)));
                }
                match ctx2.store().map(|s| s.cron_runs(&q)) {
                    Some(Ok((bodies, total))) => {
                        let entries = bodies.iter().filter_map(|b| serde_json::from_str(b).ok()).collect();
                        Reply::Ok(Some(runs_result(&q, entries, total)))
                    }
                    Some(Err(e)) => Reply::err(ErrorShape::unavailable(format!("cron store unavailable: {e}"))),
                    None => Reply::err(ErrorShape::unavailable("cron store unavailable: not open")),
                }
            })
            .await;
    }
    let store_path = crate::store::sessions_db_path(ctx.state_dir()).display().to_string();
    let (answer, outs) = apply_on_hub(&ctx.hub, call, zones(), unix_ms(), &ctx.cron.process_id, &store_path);
    let changed = !outs.is_empty();
    let written = perform(rt, ctx, outs).await;
    if changed {
        let _ = ctx.cron.wake.unbounded_send(());
    }
    match (answer, written) {
        (Err(e), _) => Reply::err(e),
        (Ok(v), Ok(())) => Reply::Ok(Some(v)),
        (Ok(_), Err(e)) => {
            // The change is not durable: go back to what the store has.
            let ctx2 = ctx.clone();
            rt.spawn_blocking(move || {
                *ctx2.cron.loaded.lock().unwrap_or_else(|p| p.into_inner()) = false;
                ensure_loaded(&ctx2);
            })
            .await;
            Reply::err(ErrorShape::unavailable(format!("cron store unavailable: {e}")))
        }
    }
}
