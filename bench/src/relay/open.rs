//! Open-loop load at a fixed rate: request `i` is due at `start + i/rate` whatever happened to
//! the requests before it, and goes out over a bounded pool of keep-alive connections that grows
//! only while every open one is busy. Each latency counts from the request's due time, not from
//! when it could be sent, so a stall shows in every request it delayed (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Api, Endpoint, Sender, connect, exchange};
use crate::stats::{Latency, latency};

/// One open-loop run.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    /// Requests per second to send.
    pub rate: f64,
    /// Sent but not counted, first.
    pub warmup: Duration,
    /// Measured: requests due in this window count.
    pub duration: Duration,
    /// At most this many connections open at once.
    pub max_conns: usize,
    /// A request not answered this long after its due time failed; the run also stops sending
    /// this long after the last due time.
    pub timeout: Duration,
}

/// Figures of the requests due in the measured window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenLoopResult {
    /// Target rate.
    pub rate: f64,
    pub seconds: f64,
    /// Requests due in the window.
    pub scheduled: u64,
    pub ok: u64,
    /// Failed or not answered in time.
    pub errors: u64,
    /// Never sent: every connection stayed busy until the run's bound.
    pub not_sent: u64,
    pub first_error: Option<String>,
    /// Answered requests over the window (or over the time until the last was answered, if
    /// later).
    pub achieved_per_second: f64,
    /// From due time to the end of the answer, answered requests.
    pub latency: Latency,
    /// How late the generator sent (send time − due time): its own precision, and the queueing
    /// when every connection was busy.
    pub send_lag: Latency,
    /// Answered requests including the warm-up (for CPU per request over the whole run).
    pub total_ok: u64,
    /// Connections the run opened.
    pub conns_opened: u64,
}

/// What became of request `i`.
struct Outcome {
    i: u64,
    lag: Duration,
    /// Latency from the due time and when the answer ended, or why it failed.
    result: Result<(Duration, Instant), String>,
}

/// The schedule: a thread of its own (it inherits the caller's CPU pinning; timer slack 1 ns)
/// sleeps until each request's due time and hands its index over, so a request goes out within
/// tens of microseconds of its due time without a spinning thread competing for the CPU (the
/// runtime's own timer has millisecond steps). Stops when the receiver is dropped.
fn ticker(start: Instant, rate: f64, total: u64) -> mpsc::UnboundedReceiver<u64> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        crate::sys::set_timer_slack_ns(1);
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send(i).is_err() {
                return;
            }
        }
    });
    rx
}

/// Everything one request task needs besides its connection.
#[derive(Clone)]
struct Shared {
    addr: SocketAddr,
    endpoint: Endpoint,
    api: Arc<Api>,
    timeout: Duration,
    /// Where a request's connection goes when it is done with it.
    back: mpsc::UnboundedSender<Back>,
    done: mpsc::UnboundedSender<Outcome>,
}

/// A connection coming back to the dispatcher, which alone counts them.
enum Back {
    /// Answered: ready for the next request.
    Idle(Sender),
    /// Failed or timed out: closed, its place in the bound free again.
    Gone,
}

/// Send request `i` (due at `due`) on `conn`, or on a new connection; hand the connection back
/// to the pool when the answer has ended, drop it on failure.
async fn one(s: Shared, conn: Option<Sender>, i: u64, due: Instant) {
    let lag = Instant::now().saturating_duration_since(due);
    let work = async {
        let mut tx = match conn {
            Some(tx) => tx,
            None => connect(s.addr).await?,
        };
        exchange(&mut tx, s.endpoint, s.endpoint.request(s.addr, &s.api, "hi")).await?;
        Ok::<_, String>(tx)
    };
    let result = match tokio::time::timeout_at((due + s.timeout).into(), work).await {
        Ok(Ok(tx)) => {
            let done = Instant::now();
            let _ = s.back.send(Back::Idle(tx));
            Ok((done - due, done))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {:?} of its due time", s.timeout)),
    };
    if result.is_err() {
        let _ = s.back.send(Back::Gone);
    }
    let _ = s.done.send(Outcome { i, lag, result });
}

/// Run `cfg` against `addr` on the calling thread (a current-thread runtime; pin it first). Bounded:
/// `warmup + duration` of schedule, then at most `timeout` more for the last answers.
pub fn open_loop(addr: SocketAddr, endpoint: Endpoint, api: &Api, cfg: OpenLoop) -> OpenLoopResult {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("load runtime");
    rt.block_on(async move {
        let rate = cfg.rate.max(0.001);
        let total = ((cfg.warmup + cfg.duration).as_secs_f64() * rate).round() as u64;
        let first_measured = (cfg.warmup.as_secs_f64() * rate).round() as u64;
        let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Back>();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Outcome>();
        let shared = Shared { addr, endpoint, api: Arc::new(api.clone()), timeout: cfg.timeout, back: back_tx, done: done_tx };
        // Connections open or opening.
        let mut live = 0usize;
        let start = Instant::now() + Duration::from_millis(5);
        let measure_from = start + cfg.warmup;
        let give_up = measure_from + cfg.duration + cfg.timeout;
        let (mut sent, mut measured_sent, mut opened) = (0usize, 0u64, 0u64);
        let mut due_now = ticker(start, rate, total);
        'schedule: while let Some(i) = due_now.recv().await {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            // An idle connection, else a new one while under the bound, else whichever comes back
            // first (an idle one, or a place freed by a failed one).
            let conn = loop {
                let back = match back_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) if live < cfg.max_conns => {
                        live += 1;
                        opened += 1;
                        break None;
                    }
                    Err(_) => match tokio::time::timeout_at(give_up.into(), back_rx.recv()).await {
                        Ok(Some(b)) => b,
                        // Busy until the bound: the rest is never sent.
                        _ => break 'schedule,
                    },
                };
                match back {
                    Back::Idle(tx) if !tx.is_closed() => break Some(tx),
                    Back::Idle(_) | Back::Gone => live -= 1,
                }
            };
            sent += 1;
            if i >= first_measured {
                measured_sent += 1;
            }
            tokio::spawn(one(shared.clone(), conn, i, due));
        }
        drop(shared);
        let mut outcomes = Vec::with_capacity(sent);
        while outcomes.len() < sent {
            match tokio::time::timeout_at((give_up + Duration::from_secs(2)).into(), done_rx.recv()).await {
                Ok(Some(o)) => outcomes.push(o),
                _ => break,
            }
        }
        let lost = (sent - outcomes.len()) as u64;
        let (mut samples, mut lags) = (Vec::new(), Vec::new());
        let (mut total_ok, mut errors, mut first_error, mut last_done) = (0u64, lost, None, measure_from);
        for o in outcomes {
            let measured = o.i >= first_measured;
            match o.result {
                Ok((lat, done)) => {
                    total_ok += 1;
                    if measured {
                        samples.push(lat);
                        last_done = last_done.max(done);
                    }
                }
                Err(e) if measured => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
            if measured {
                lags.push(o.lag);
            }
        }
        let scheduled = total - first_measured;
        let ok = samples.len() as u64;
        let window = cfg.duration.as_secs_f64().max((last_done - measure_from).as_secs_f64()).max(1e-9);
        OpenLoopResult {
            rate: cfg.rate,
            seconds: cfg.duration.as_secs_f64(),
            scheduled,
            ok,
            errors,
            not_sent: scheduled - measured_sent,
            first_error,
            achieved_per_second: ok as f64 / window,
            latency: latency(&samples),
            send_lag: latency(&lags),
            total_ok,
            conns_opened: opened,
        }
    })
}
