//! Cron (operator §6): jobs that run agent turns on a schedule, and the scheduler that decides
//! when — on virtual time, with no clock and no I/O of its own. `schedule` parses and searches
//! schedules, `job` is the stored job and its wire shapes, `scheduler` the state machine the
//! shells drive (`handle_timeout`, `poll_timeout`, `poll_output`, `handle_finished`).

pub mod cli;
pub mod heartbeat;
pub mod job;
pub mod run;
pub mod schedule;
pub mod scheduler;

pub use job::{Job, JobState, Overlap, SCRATCH_MAX_BYTES, Scratch};
pub use run::{CronRun, DEFAULT_RUN_TIMEOUT_MS, plan_run, run_result};
pub use schedule::{Schedule, ScheduleError, Zones, parse_at};
pub use scheduler::{CronOutput, RunMode, RunRecord, RunResult, RunStart, RunStatus, Scheduler, WALL_CLOCK_RECHECK_MS};
