//! The model relay path (issue 17): a fast mock OpenAI-compatible upstream (hyper; answer size,
//! SSE chunk count and inter-chunk delay configurable), gateways started pointed at it, and a
//! closed-loop HTTP/1.1 load generator over keep-alive connections. Figures: requests per
//! second, added latency (p50/p99), CPU per request of the gateway process (from `/proc`),
//! RSS. The mock talked to directly is the floor.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::procfs;
use crate::stats::{Latency, latency};
use crate::sys;

/// What the mock answers.
#[derive(Debug, Clone, Copy)]
pub struct MockShape {
    /// Characters of answer text.
    pub answer_bytes: usize,
    /// SSE content chunks of a streamed answer.
    pub chunks: usize,
    /// Delay between SSE chunks.
    pub chunk_delay: Duration,
}

pub use crate::sys::pin_current_thread;

fn completion(text: &str) -> String {
    json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000, "model": "mock-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
    .to_string()
}

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> Bytes {
    let v = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "mock-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    Bytes::from(format!("data: {v}\n\n"))
}

async fn answer(
    req: Request<Incoming>,
    shape: MockShape,
) -> Result<Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>, Infallible> {
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let streamed =
        serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v.get("stream").and_then(|s| s.as_bool())).unwrap_or(false);
    let text = "x".repeat(shape.answer_bytes);
    if !streamed {
        let r = Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(completion(&text))).map_err(|e| match e {}).boxed())
            .unwrap_or_default();
        return Ok(r);
    }
    let n = shape.chunks.max(1);
    let per = text.len().div_ceil(n).max(1);
    let mut frames: Vec<Bytes> = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for part in text.as_bytes().chunks(per) {
        frames.push(chunk(json!({"content": String::from_utf8_lossy(part)}), None));
    }
    frames.push(chunk(json!({}), Some("stop")));
    let usage = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "mock-model",
        "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}});
    frames.push(Bytes::from(format!("data: {usage}\n\n")));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let delay = shape.chunk_delay;
    let stream = futures_util::stream::unfold((frames.into_iter(), true), move |(mut it, first)| async move {
        let f = it.next()?;
        if !first && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, Infallible>(Frame::data(f)), (it, false)))
    });
    let r =
        Response::builder().header("content-type", "text/event-stream").body(BodyExt::boxed(StreamBody::new(stream))).unwrap_or_default();
    Ok(r)
}

/// A mock upstream on its own thread (a current-thread runtime pinned to `cpu`); stops when
/// dropped.
pub struct Mock {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Mock {
    pub fn start(shape: MockShape, cpu: Option<usize>) -> std::io::Result<Mock> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            if let Some(c) = cpu {
                pin_current_thread(c);
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("mock runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("mock listener");
                while !stopped.load(Ordering::Relaxed) {
                    let Ok(Ok((sock, _))) = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await else { continue };
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| answer(req, shape));
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await;
                    });
                }
            });
        });
        Ok(Mock { addr, stop })
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A gateway process under test, pointed at the mock; killed and its HOME removed on drop.
pub struct Target {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    home: PathBuf,
}

pub const TOKEN: &str = "bench-relay-token";

impl Target {
    /// Start a clawgate binary with a config whose provider `mock` is the mock upstream,
    /// pinned to `cpu`; waits until `/readyz` answers.
    pub fn clawgate(binary: &Path, mock: SocketAddr, cpu: Option<usize>) -> Result<Target, String> {
        // It runs in its own HOME as working directory: a relative path would not resolve there.
        let binary = &std::fs::canonicalize(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let port = crate::spawn::free_port().map_err(|e| e.to_string())?;
        let home = std::env::temp_dir().join(format!("clawgate-bench-relay-{}-{port}", std::process::id()));
        let sd = home.join(".openclaw");
        std::fs::create_dir_all(&sd).map_err(|e| e.to_string())?;
        let config = json!({
            "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
            "models": {"providers": {"mock": {"baseUrl": format!("http://{mock}/v1"), "apiKey": "mock-key", "api": "openai-completions",
                "models": [{"id": "mock-model", "name": "mock"}]}}},
            "agents": {"defaults": {"model": {"primary": "mock/mock-model"}}},
        });
        std::fs::write(sd.join("openclaw.json"), config.to_string()).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(home.join("gateway.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(binary);
        cmd.args(["run", "--port", &port.to_string(), "--token", TOKEN])
            .env("HOME", &home)
            .env_remove("OPENCLAW_STATE_DIR")
            .env_remove("OPENCLAW_CONFIG_PATH")
            .env_remove("OPENCLAW_GATEWAY_TOKEN")
            .env_remove("OPENCLAW_GATEWAY_PORT")
            .env("RUST_LOG", "warn")
            .current_dir(&home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        sys::die_with_parent(&mut cmd);
        if let Some(c) = cpu {
            sys::pin_child(&mut cmd, c);
        }
        let child = cmd.spawn().map_err(|e| format!("start {}: {e}", binary.display()))?;
        let mut t = Target { pid: child.id(), child, addr: ([127, 0, 0, 1], port).into(), home };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = t.child.try_wait() {
                return Err(format!(
                    "{} exited ({st}): {}",
                    binary.display(),
                    std::fs::read_to_string(t.home.join("gateway.log")).unwrap_or_default()
                ));
            }
            if ready(t.addr) {
                return Ok(t);
            }
            if Instant::now() > deadline {
                t.child.kill().ok();
                return Err(format!("{} not ready within 30 s", binary.display()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn rss_kb(&self) -> Option<u64> {
        procfs::vm_rss_kb(self.pid)
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        procfs::cpu_seconds(self.pid)
    }

    /// Threads of the process now.
    pub fn threads(&self) -> Option<u64> {
        procfs::status_kb(self.pid, "Threads")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        sys::kill(self.pid, sys::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn ready(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.ends_with(b"200")
}

/// Which request the load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`, not streamed.
    Chat,
    /// `/v1/chat/completions` with `stream: true`.
    ChatStream,
    /// `/v1/responses`, not streamed.
    Responses,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::ChatStream => "chat-stream",
            Endpoint::Responses => "responses",
        }
    }

    fn request(self, addr: SocketAddr, direct: bool) -> Request<Full<Bytes>> {
        let (path, body) = match self {
            Endpoint::Chat | Endpoint::ChatStream => {
                let mut b =
                    json!({"model": if direct { "mock-model" } else { "openclaw" }, "messages": [{"role": "user", "content": "hi"}]});
                if self == Endpoint::ChatStream {
                    b["stream"] = json!(true);
                }
                ("/v1/chat/completions", b)
            }
            Endpoint::Responses => ("/v1/responses", json!({"model": if direct { "mock-model" } else { "openclaw" }, "input": "hi"})),
        };
        // The mock answers every path with a chat completion: direct, it is the floor.
        Request::post(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("x-openclaw-model", "mock/mock-model")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap_or_default()
    }
}

/// One closed-loop run's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub per_second: f64,
    pub latency: Latency,
}

/// `conns` keep-alive connections, each sending its next request when the last answer's body
/// ended, for `duration` (after `warmup`). Runs on the calling thread (a current-thread
/// runtime), so pin it first.
pub fn closed_loop(addr: SocketAddr, endpoint: Endpoint, direct: bool, conns: usize, warmup: Duration, duration: Duration) -> LoadResult {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("load runtime");
    rt.block_on(async move {
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + duration;
        let mut tasks = Vec::new();
        for _ in 0..conns {
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None::<String>);
                let mut sender = None;
                while Instant::now() < end {
                    if sender.is_none() {
                        match TcpStream::connect(addr).await {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s)).await {
                                    Ok((tx, conn)) => {
                                        tokio::spawn(conn);
                                        sender = Some(tx);
                                    }
                                    Err(e) => {
                                        errors += 1;
                                        first_error.get_or_insert(e.to_string());
                                        continue;
                                    }
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert(e.to_string());
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        }
                    }
                    let Some(tx) = sender.as_mut() else { continue };
                    let t0 = Instant::now();
                    let res = async {
                        tx.ready().await.map_err(|e| e.to_string())?;
                        let r = tx.send_request(endpoint.request(addr, direct)).await.map_err(|e| e.to_string())?;
                        let status = r.status();
                        let body = r.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                        if status != 200 {
                            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
                        }
                        Ok(())
                    }
                    .await;
                    let measured = t0 >= measure_from && Instant::now() <= end;
                    match res {
                        Ok(()) if measured => {
                            ok += 1;
                            samples.push(t0.elapsed());
                        }
                        Ok(()) => {}
                        Err(e) => {
                            if measured {
                                errors += 1;
                            }
                            first_error.get_or_insert(e);
                            sender = None;
                        }
                    }
                }
                (samples, ok, errors, first_error)
            }));
        }
        let mut all = Vec::new();
        let (mut ok, mut errors, mut first_error) = (0, 0, None);
        for t in tasks {
            if let Ok((s, o, e, f)) = t.await {
                all.extend(s);
                ok += o;
                errors += e;
                if first_error.is_none() {
                    first_error = f;
                }
            }
        }
        let seconds = duration.as_secs_f64();
        LoadResult { ok, errors, first_error, seconds, per_second: ok as f64 / seconds, latency: latency(&all) }
    })
}
