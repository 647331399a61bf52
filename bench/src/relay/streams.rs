//! Many concurrent slow streams: `n` streamed chat requests held open at once through a target
//! (the mock sends a chunk every interval until released), the gateway's RSS before and with all
//! of them open → memory per open stream; how many were open at once, how many the mock saw open
//! upstream, and how many then ended with `data: [DONE]`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use super::{Api, Endpoint, Mock, SLOW_MARKER, Target, connect, ends_with_done};

/// One run of many concurrent streams.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    pub n: usize,
    /// Streams being opened at once (connect, request, first chunk): a ramp, kept under the
    /// gateway's per-source cap of connections that have not sent a head yet.
    pub opening: usize,
    /// Bound on getting all `n` open.
    pub open_timeout: Duration,
    /// Bound on their ends after the release.
    pub end_timeout: Duration,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StreamsResult {
    pub wanted: usize,
    /// Open at the client (first chunk read, not ended) when measured.
    pub open: usize,
    /// Slow streams the mock was serving when measured (the gateway's upstream side).
    pub upstream_open: usize,
    /// Ended with `data: [DONE]` after the release.
    pub answered: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// From the first connect until all were open (or the bound, or the stall).
    pub open_seconds: f64,
    /// Opening stopped early: no stream opened or failed for [`STALL`].
    pub stalled: bool,
    pub rss_before_kb: Option<u64>,
    pub rss_with_kb: Option<u64>,
    pub rss_after_kb: Option<u64>,
    /// (RSS with − before) / streams open.
    pub kib_per_stream: Option<f64>,
    pub fds_before: Option<u64>,
    pub fds_with: Option<u64>,
    pub threads_with: Option<u64>,
    /// The gateway's soft open-files limit.
    pub nofile: Option<u64>,
}

/// Opening stops when no stream has opened or failed for this long.
pub const STALL: Duration = Duration::from_secs(15);

/// Counters the stream tasks share.
#[derive(Default)]
struct Progress {
    /// Measured: a stream opening from now on is not counted and is closed.
    measured: AtomicBool,
    /// Open now.
    open: AtomicUsize,
    /// Ever opened.
    opened: AtomicUsize,
    /// Failed before they were open.
    failed_early: AtomicUsize,
    errors: AtomicUsize,
    first_error: Mutex<Option<String>>,
}

impl Progress {
    fn fail(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut f = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(e);
    }
}

/// One stream: connect, request, read the first chunk (now open; frees its opening slot), read
/// to the end. True if it ended with `[DONE]`.
async fn one(addr: SocketAddr, api: Arc<Api>, gate: Arc<Semaphore>, p: Arc<Progress>) -> bool {
    let mut open = false;
    let res = async {
        let permit = gate.acquire_owned().await.map_err(|_| "not opened before the bound".to_string())?;
        let mut tx = connect(addr).await?;
        tx.ready().await.map_err(|e| e.to_string())?;
        let r = tx.send_request(Endpoint::ChatStream.request(addr, &api, SLOW_MARKER)).await.map_err(|e| e.to_string())?;
        let status = r.status();
        let mut body = r.into_body();
        if status != 200 {
            let b = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&b[..b.len().min(200)])));
        }
        // The first chunk: the stream is open.
        let first = loop {
            let Some(frame) = body.frame().await else { return Err("ended before its first chunk".to_string()) };
            let frame = frame.map_err(|e| e.to_string())?;
            if let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) {
                break data.to_vec();
            }
        };
        if p.measured.load(Ordering::Relaxed) {
            return Err("opened only after the measurement".to_string());
        }
        open = true;
        p.open.fetch_add(1, Ordering::Relaxed);
        p.opened.fetch_add(1, Ordering::Relaxed);
        drop(permit);
        read_rest(body, first).await
    }
    .await;
    if open {
        p.open.fetch_sub(1, Ordering::Relaxed);
    } else if res.is_err() {
        p.failed_early.fetch_add(1, Ordering::Relaxed);
    }
    match res {
        Ok(()) => true,
        Err(e) => {
            p.fail(e);
            false
        }
    }
}

/// Read an open stream to its end; it must end with `[DONE]`.
async fn read_rest(mut body: hyper::body::Incoming, mut tail: Vec<u8>) -> Result<(), String> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            tail.extend_from_slice(data);
            if tail.len() > 512 {
                tail.drain(..tail.len() - 128);
            }
        }
    }
    if ends_with_done(&tail) {
        Ok(())
    } else {
        Err(format!("stream ended without data: [DONE] (ends {:?})", String::from_utf8_lossy(&tail)))
    }
}

/// Open `cfg.n` slow streams through `addr` (the mock itself if `target` is `None`), measure,
/// release them at the mock, wait for their ends. Runs on the calling thread (a current-thread
/// runtime; pin it first). Bounded by `open_timeout + end_timeout` and a little.
pub fn streams(addr: SocketAddr, api: &Api, mock: &Mock, target: Option<&Target>, cfg: Streams) -> StreamsResult {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("streams runtime");
    let api = Arc::new(api.clone());
    rt.block_on(async move {
        let mut r = StreamsResult {
            wanted: cfg.n,
            rss_before_kb: target.and_then(Target::rss_kb),
            fds_before: target.and_then(Target::fds),
            nofile: target.and_then(Target::nofile),
            ..StreamsResult::default()
        };
        let upstream_before = mock.slow_streams_open();
        let p = Arc::new(Progress::default());
        let gate = Arc::new(Semaphore::new(cfg.opening.max(1)));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..cfg.n).map(|_| tokio::spawn(one(addr, api.clone(), gate.clone(), p.clone()))).collect();
        let open_deadline = t0 + cfg.open_timeout;
        let (mut seen, mut progress_at) = (0, Instant::now());
        loop {
            let done = p.opened.load(Ordering::Relaxed) + p.failed_early.load(Ordering::Relaxed);
            if done != seen {
                (seen, progress_at) = (done, Instant::now());
            }
            r.stalled = progress_at.elapsed() >= STALL;
            if done >= cfg.n || Instant::now() >= open_deadline || r.stalled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        r.open_seconds = t0.elapsed().as_secs_f64();
        p.measured.store(true, Ordering::Relaxed);
        // Streams not open by now are not waited for: close the gate behind the last.
        gate.close();
        // Let the last opened ones settle in the gateway (its upstream side is open already).
        tokio::time::sleep(Duration::from_millis(300)).await;
        r.open = p.open.load(Ordering::Relaxed);
        r.upstream_open = mock.slow_streams_open().saturating_sub(upstream_before);
        r.rss_with_kb = target.and_then(Target::rss_kb);
        r.fds_with = target.and_then(Target::fds);
        r.threads_with = target.and_then(Target::threads);
        if let (Some(b), Some(w)) = (r.rss_before_kb, r.rss_with_kb) {
            if r.open > 0 {
                r.kib_per_stream = Some((w as f64 - b as f64) / r.open as f64);
            }
        }
        mock.release_slow_streams();
        let end_deadline = Instant::now() + cfg.end_timeout;
        for t in tasks {
            let abort = t.abort_handle();
            match tokio::time::timeout_at(end_deadline.into(), t).await {
                Ok(Ok(true)) => r.answered += 1,
                Ok(_) => {}
                Err(_) => {
                    abort.abort();
                    p.fail(format!("not ended within {:?} of the release", cfg.end_timeout));
                }
            }
        }
        r.errors = p.errors.load(Ordering::Relaxed);
        r.first_error = p.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Give the gateway a moment to drop what the streams held.
        tokio::time::sleep(Duration::from_millis(500)).await;
        r.rss_after_kb = target.and_then(Target::rss_kb);
        r
    })
}
