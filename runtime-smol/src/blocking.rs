//! The lite build's pool for blocking work (store reads and writes, file IO). smol's own pool
//! (`blocking`) wakes each idle thread every 500 ms for as long as the thread lives, and keeps up
//! to hundreds of them after a burst — an idle gateway then woke ~20 000 times a minute after a
//! burst of 10 000 cron writes (BENCHMARKS.md, "What 10 000 cron jobs cost"). Here an idle thread
//! sleeps until work arrives or [`IDLE_EXIT`] passes, then exits; at most [`MAX_THREADS`] run.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use smol::channel::{Sender, bounded};

/// Threads at most, and how long an idle one lives (the same for both shells).
const MAX_THREADS: usize = clawgate_core::limits::MAX_BLOCKING_THREADS;
const IDLE_EXIT: Duration = clawgate_core::limits::BLOCKING_IDLE_EXIT;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool { state: Mutex::new(State::default()), work: Condvar::new() })
}

fn worker(p: &'static Pool) {
    let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            st = p.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (guard, waited) = p.work.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if waited.timed_out() && st.queue.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

fn submit(job: Job) {
    let p = pool();
    let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
    st.queue.push_back(job);
    if st.idle > st.queue.len().saturating_sub(1) {
        p.work.notify_one();
    } else if st.threads < MAX_THREADS {
        st.threads += 1;
        let spawned = std::thread::Builder::new().name("clawgate-blocking".into()).spawn(move || worker(p));
        if spawned.is_err() {
            st.threads -= 1;
        }
    }
    // Else every thread is busy: the job waits its turn in the queue.
}

/// Run `f` on the pool; the future resolves to its result (a panic in `f` resumes here).
pub(crate) async fn unblock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx): (Sender<std::thread::Result<T>>, _) = bounded(1);
    submit(Box::new(move || {
        let _ = tx.try_send(catch_unwind(AssertUnwindSafe(f)));
    }));
    match rx.recv().await {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!("the blocking pool dropped a job"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_in_parallel_and_resumes_panics() {
        smol::block_on(async {
            let jobs: Vec<_> = (0..64u64).map(|i| smol::spawn(unblock(move || i * 2))).collect();
            let mut sum = 0;
            for j in jobs {
                sum += j.await;
            }
            assert_eq!(sum, (0..64u64).map(|i| i * 2).sum::<u64>());
            assert!(pool().state.lock().unwrap().threads <= MAX_THREADS);
            let caught = std::panic::catch_unwind(|| smol::block_on(unblock(|| panic!("boom"))));
            assert!(caught.is_err());
            assert_eq!(unblock(|| 7).await, 7, "the pool still works after a panic");
        });
    }
}
