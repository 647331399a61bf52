//! The model relay path (issue 17): a fast mock OpenAI-compatible upstream (hyper; answer size,
//! SSE chunk count and inter-chunk delay configurable, plus slow streams held open until
//! released), gateways started pointed at it (ours and peers, [`peers`]), and HTTP/1.1 load
//! generators over keep-alive connections: closed loop ([`closed_loop`]), open loop at a fixed
//! rate ([`open`]), many concurrent slow streams ([`streams`]). Figures: requests per second,
//! added latency, CPU per request of the gateway process (from `/proc`), RSS. The mock talked to
//! directly is the floor.

pub mod open;
pub mod peers;
pub mod streams;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

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
    /// A slow stream (a request carrying [`SLOW_MARKER`]) sends a chunk this often until released
    /// ([`Mock::release_slow_streams`])...
    pub slow_every: Duration,
    /// ...or until it has lasted this long.
    pub slow_max: Duration,
}

/// Text in a streamed request's messages that makes the mock answer with a slow stream.
pub const SLOW_MARKER: &str = "bench-relay-slow-stream";

/// The model name the mock reports (and a peer's config maps to).
pub const MOCK_MODEL: &str = "mock-model";

pub use crate::sys::pin_current_thread;

fn completion(text: &str) -> String {
    json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000, "model": MOCK_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
    .to_string()
}

/// A non-streamed Responses API answer (for gateways that forward `/v1/responses` as it is).
fn response_object(text: &str) -> String {
    json!({"id": "resp_mock", "object": "response", "created_at": 1_700_000_000, "status": "completed", "model": MOCK_MODEL,
        "output": [{"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}})
    .to_string()
}

fn chunk(delta: serde_json::Value, finish: Option<&str>) -> Bytes {
    let v = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": MOCK_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    Bytes::from(format!("data: {v}\n\n"))
}

/// The frames after the last content chunk: finish reason, usage, `[DONE]`.
fn stream_tail() -> Vec<Bytes> {
    let usage = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": MOCK_MODEL,
        "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}});
    vec![chunk(json!({}), Some("stop")), Bytes::from(format!("data: {usage}\n\n")), Bytes::from_static(b"data: [DONE]\n\n")]
}

/// State the mock's connections share with the harness.
struct MockShared {
    shape: MockShape,
    /// Bumped by [`Mock::release_slow_streams`]: a slow stream ends when it differs from the value
    /// it started with.
    release: AtomicU64,
    released: Notify,
    /// Slow streams open now.
    slow_open: AtomicUsize,
}

/// Counts one open slow stream while it lives.
struct SlowOpen(Arc<MockShared>);

impl SlowOpen {
    fn new(shared: Arc<MockShared>) -> SlowOpen {
        shared.slow_open.fetch_add(1, Ordering::Relaxed);
        SlowOpen(shared)
    }
}

impl Drop for SlowOpen {
    fn drop(&mut self) {
        self.0.slow_open.fetch_sub(1, Ordering::Relaxed);
    }
}

type MockBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn json_response(body: String) -> Response<MockBody> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
        .unwrap_or_default()
}

fn sse_response(body: MockBody) -> Response<MockBody> {
    Response::builder().header("content-type", "text/event-stream").body(body).unwrap_or_default()
}

async fn answer(req: Request<Incoming>, shared: Arc<MockShared>) -> Result<Response<MockBody>, Infallible> {
    let shape = shared.shape;
    let responses_api = req.uri().path().ends_with("/responses");
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let streamed =
        serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v.get("stream").and_then(|s| s.as_bool())).unwrap_or(false);
    let text = "x".repeat(shape.answer_bytes);
    if !streamed {
        return Ok(json_response(if responses_api { response_object(&text) } else { completion(&text) }));
    }
    if crate::ws::find(&body, SLOW_MARKER.as_bytes()).is_some() {
        return Ok(sse_response(slow_stream(shared)));
    }
    let n = shape.chunks.max(1);
    let per = text.len().div_ceil(n).max(1);
    let mut frames: Vec<Bytes> = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for part in text.as_bytes().chunks(per) {
        frames.push(chunk(json!({"content": String::from_utf8_lossy(part)}), None));
    }
    frames.extend(stream_tail());
    let delay = shape.chunk_delay;
    let stream = futures_util::stream::unfold((frames.into_iter(), true), move |(mut it, first)| async move {
        let f = it.next()?;
        if !first && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, Infallible>(Frame::data(f)), (it, false)))
    });
    Ok(sse_response(BodyExt::boxed(StreamBody::new(stream))))
}

/// Where a slow stream is.
enum Slow {
    /// The role chunk goes out at once.
    Head,
    /// A content chunk every `slow_every` until released or `slow_max` is over.
    Holding,
    /// Finish reason, usage, `[DONE]`.
    Tail(std::vec::IntoIter<Bytes>),
}

impl MockShared {
    /// The slow stream that started at `generation` is to end: released since, or `end` passed.
    fn over(&self, generation: u64, end: Instant) -> bool {
        self.release.load(Ordering::Acquire) != generation || Instant::now() >= end
    }

    /// Hold a slow stream for one interval (or until released). True while it is to go on.
    async fn hold(&self, generation: u64, end: Instant) -> bool {
        // Created before the check: it sees a release that comes in between.
        let released = self.released.notified();
        if self.over(generation, end) {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(self.shape.slow_every) => {}
            _ = released => {}
        }
        !self.over(generation, end)
    }
}

/// A stream that stays open (a chunk every `slow_every`) until the harness releases it.
fn slow_stream(shared: Arc<MockShared>) -> MockBody {
    let generation = shared.release.load(Ordering::Acquire);
    let end = Instant::now() + shared.shape.slow_max;
    let open = SlowOpen::new(shared);
    let stream = futures_util::stream::unfold((Slow::Head, open), move |(state, open)| async move {
        let (frame, next) = match state {
            Slow::Head => (chunk(json!({"role": "assistant", "content": ""}), None), Slow::Holding),
            Slow::Holding if open.0.hold(generation, end).await => (chunk(json!({"content": "x"}), None), Slow::Holding),
            Slow::Holding => {
                let mut tail = stream_tail().into_iter();
                (tail.next()?, Slow::Tail(tail))
            }
            Slow::Tail(mut tail) => (tail.next()?, Slow::Tail(tail)),
        };
        Some((Ok::<_, Infallible>(Frame::data(frame)), (next, open)))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// A mock upstream on its own thread (a current-thread runtime pinned to `cpu`); stops when
/// dropped.
pub struct Mock {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shared: Arc<MockShared>,
}

impl Mock {
    pub fn start(shape: MockShape, cpu: Option<usize>) -> std::io::Result<Mock> {
        // A deep accept queue: a gateway may open thousands of upstream connections in a burst.
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        sock.set_reuse_address(true)?;
        sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        sock.listen(4096)?;
        sock.set_nonblocking(true)?;
        let std_listener: std::net::TcpListener = sock.into();
        let addr = std_listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let shared = Arc::new(MockShared { shape, release: AtomicU64::new(0), released: Notify::new(), slow_open: AtomicUsize::new(0) });
        let for_conns = shared.clone();
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
                    let shared = for_conns.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| answer(req, shared.clone()));
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await;
                    });
                }
            });
        });
        Ok(Mock { addr, stop, shared })
    }

    /// The mock's base URL as an OpenAI client wants it (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// End every slow stream open now (each sends its tail and `[DONE]`).
    pub fn release_slow_streams(&self) {
        self.shared.release.fetch_add(1, Ordering::AcqRel);
        self.shared.released.notify_waiters();
    }

    /// Slow streams the mock is serving now.
    pub fn slow_streams_open(&self) -> usize {
        self.shared.slow_open.load(Ordering::Relaxed)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.release_slow_streams();
    }
}

pub const TOKEN: &str = "bench-relay-token";

/// How requests to a target are shaped: the `model` they name and the headers they carry.
#[derive(Debug, Clone)]
pub struct Api {
    pub model: String,
    /// Every header besides host and content-type, authorization included.
    pub headers: Vec<(String, String)>,
}

impl Api {
    /// The mock itself, the floor: the same headers as clawgate's requests, so the same bytes.
    pub fn direct() -> Api {
        Api { model: MOCK_MODEL.into(), ..Api::clawgate() }
    }

    /// clawgate: `model: "openclaw"`, the provider model in `x-openclaw-model`, its token.
    pub fn clawgate() -> Api {
        Api {
            model: "openclaw".into(),
            headers: vec![("authorization".into(), format!("Bearer {TOKEN}")), ("x-openclaw-model".into(), "mock/mock-model".into())],
        }
    }

    /// A plain OpenAI-compatible proxy: `model` is the proxy's model name; `headers` are its own
    /// (routing, authorization).
    pub fn openai(model: &str, headers: &[(&str, &str)]) -> Api {
        Api { model: model.into(), headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }
}

/// How to start a gateway under test: the command (program, arguments, environment) and the
/// fresh home it runs in, which [`Target::start`] completes (working directory, log, pinning,
/// dying with the harness) and waits on until `ready_path` answers 200.
pub struct Launch {
    pub name: String,
    pub cmd: Command,
    pub home: PathBuf,
    pub port: u16,
    pub ready_path: &'static str,
    pub ready_timeout: Duration,
    pub api: Api,
    pub cpu: Option<usize>,
}

/// A fresh directory for one gateway process (its HOME), under the temp dir.
pub fn temp_home(label: &str, port: u16) -> Result<PathBuf, String> {
    let home = std::env::temp_dir().join(format!("clawgate-bench-relay-{label}-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    Ok(home)
}

/// A fresh HOME with an OpenClaw config whose provider `mock` is the mock upstream (its model the
/// agents' default, the HTTP chat and responses endpoints on), and a free port.
fn openclaw_home(label: &str, mock: SocketAddr) -> Result<(PathBuf, u16), String> {
    let port = crate::spawn::free_port().map_err(|e| e.to_string())?;
    let home = temp_home(label, port)?;
    let sd = home.join(".openclaw");
    std::fs::create_dir_all(&sd).map_err(|e| e.to_string())?;
    let config = json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
        "models": {"providers": {"mock": {"baseUrl": format!("http://{mock}/v1"), "apiKey": "mock-key", "api": "openai-completions",
            "models": [{"id": MOCK_MODEL, "name": "mock"}]}}},
        "agents": {"defaults": {"model": {"primary": "mock/mock-model"}}},
    });
    std::fs::write(sd.join("openclaw.json"), config.to_string()).map_err(|e| e.to_string())?;
    Ok((home, port))
}

/// Environment that would redirect an OpenClaw gateway's state, config, token or port.
fn scrub_openclaw_env(cmd: &mut Command) {
    for k in [
        "OPENCLAW_STATE_DIR",
        "OPENCLAW_CONFIG_PATH",
        "OPENCLAW_GATEWAY_TOKEN",
        "OPENCLAW_GATEWAY_PORT",
        "OPENCLAW_HOME",
        "OPENCLAW_PROFILE",
    ] {
        cmd.env_remove(k);
    }
}

/// A gateway process under test, pointed at the mock; stopped by PID (its descendants too) and
/// its HOME removed on drop.
pub struct Target {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    home: PathBuf,
    /// How its requests are shaped.
    pub api: Api,
}

impl Target {
    /// Start a clawgate binary with a config whose provider `mock` is the mock upstream,
    /// pinned to `cpu`; waits until `/readyz` answers.
    pub fn clawgate(binary: &Path, mock: SocketAddr, cpu: Option<usize>) -> Result<Target, String> {
        // It runs in its own HOME as working directory: a relative path would not resolve there.
        let binary = &std::fs::canonicalize(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let (home, port) = openclaw_home("clawgate", mock)?;
        let mut cmd = Command::new(binary);
        cmd.args(["run", "--port", &port.to_string(), "--token", TOKEN]).env("RUST_LOG", "warn");
        scrub_openclaw_env(&mut cmd);
        Target::start(Launch {
            name: binary.display().to_string(),
            cmd,
            home,
            port,
            ready_path: "/readyz",
            ready_timeout: Duration::from_secs(30),
            api: Api::clawgate(),
            cpu,
        })
    }

    /// Start the reference OpenClaw gateway (`tools/openclaw-ref`, which installs itself on first
    /// use) with the same config as clawgate, on loopback, pinned to `cpu`; asked as clawgate is.
    pub fn reference(binary: &Path, mock: SocketAddr, cpu: Option<usize>) -> Result<Target, String> {
        let binary = &std::fs::canonicalize(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let (home, port) = openclaw_home("reference", mock)?;
        let mut cmd = Command::new(binary);
        cmd.args(["gateway", "run", "--allow-unconfigured", "--port", &port.to_string(), "--bind", "loopback", "--auth", "token"])
            .args(["--token", TOKEN]);
        scrub_openclaw_env(&mut cmd);
        // Its install is found through the real HOME, which the process does not get.
        if std::env::var_os("OPENCLAW_REF_DIR").is_none() {
            if let Some(h) = std::env::var_os("HOME") {
                cmd.env("OPENCLAW_REF_DIR", Path::new(&h).join(".cache/clawgate/openclaw-ref"));
            }
        }
        Target::start(Launch {
            name: binary.display().to_string(),
            cmd,
            home,
            port,
            ready_path: "/readyz",
            ready_timeout: Duration::from_secs(180),
            api: Api::clawgate(),
            cpu,
        })
    }

    /// Start `l.cmd` in `l.home` (HOME and working directory; stdout and stderr to
    /// `gateway.log` there), pinned to `l.cpu`, and wait until it answers `l.ready_path`.
    pub fn start(l: Launch) -> Result<Target, String> {
        let Launch { name, mut cmd, home, port, ready_path, ready_timeout, api, cpu } = l;
        let log_path = home.join("gateway.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        cmd.env("HOME", &home).current_dir(&home).stdin(Stdio::null()).stdout(log.try_clone().map_err(|e| e.to_string())?).stderr(log);
        sys::die_with_parent(&mut cmd);
        if let Some(c) = cpu {
            sys::pin_child(&mut cmd, c);
        }
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&home);
                return Err(format!("start {name}: {e}"));
            }
        };
        let mut t = Target { pid: child.id(), child, addr: ([127, 0, 0, 1], port).into(), home, api };
        let deadline = Instant::now() + ready_timeout;
        loop {
            if let Ok(Some(st)) = t.child.try_wait() {
                return Err(format!("{name} exited ({st}): {}", log_tail(&log_path, 12)));
            }
            if ready(t.addr, ready_path) {
                return Ok(t);
            }
            if Instant::now() > deadline {
                return Err(format!("{name} not ready within {ready_timeout:?}: {}", log_tail(&log_path, 12)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// RSS of the process and its descendants.
    pub fn rss_kb(&self) -> Option<u64> {
        procfs::tree_rss_kb(self.pid)
    }

    /// CPU seconds of the process and its descendants.
    pub fn cpu_seconds(&self) -> Option<f64> {
        procfs::tree_cpu_seconds(self.pid)
    }

    /// Threads of the process (and its descendants) now.
    pub fn threads(&self) -> Option<u64> {
        procfs::tree_status_sum(self.pid, "Threads")
    }

    /// Open file descriptors of the process (and its descendants) now.
    pub fn fds(&self) -> Option<u64> {
        procfs::tree_fd_count(self.pid)
    }

    /// The soft open-files limit the process runs with.
    pub fn nofile(&self) -> Option<u64> {
        procfs::max_open_files(self.pid)
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.home.join("gateway.log"), lines)
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Target {
    fn drop(&mut self) {
        // By PID: the process, then whatever it started that outlived it.
        let kids = procfs::descendants(self.pid);
        sys::kill(self.pid, sys::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let alive = |p: u32| Path::new(&format!("/proc/{p}")).exists();
        for &k in kids.iter().filter(|&&k| alive(k)) {
            sys::kill(k, sys::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while kids.iter().any(|&k| alive(k)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for &k in kids.iter().filter(|&&k| alive(k)) {
            sys::kill(k, sys::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// `GET path` answers 200.
fn ready(addr: SocketAddr, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).is_err() {
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

    pub fn parse(s: &str) -> Option<Endpoint> {
        [Endpoint::Chat, Endpoint::ChatStream, Endpoint::Responses].into_iter().find(|e| e.name() == s)
    }

    /// The request, shaped for `api`, with `content` as the user's message.
    pub fn request(self, addr: SocketAddr, api: &Api, content: &str) -> Request<Full<Bytes>> {
        let (path, body) = match self {
            Endpoint::Chat | Endpoint::ChatStream => {
                let mut b = json!({"model": api.model, "messages": [{"role": "user", "content": content}]});
                if self == Endpoint::ChatStream {
                    b["stream"] = json!(true);
                }
                ("/v1/chat/completions", b)
            }
            Endpoint::Responses => ("/v1/responses", json!({"model": api.model, "input": content})),
        };
        let mut r = Request::post(path).header("host", addr.to_string()).header("content-type", "application/json");
        for (k, v) in &api.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        r.body(Full::new(Bytes::from(body.to_string()))).unwrap_or_default()
    }

    /// An answer counts when it is 200 and, streamed, ends with `data: [DONE]`.
    pub fn check(self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        if status != StatusCode::OK {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
        }
        if self == Endpoint::ChatStream && !ends_with_done(body) {
            let tail = &body[body.len().saturating_sub(120)..];
            return Err(format!("stream ended without data: [DONE] ({} bytes, ends {:?})", body.len(), String::from_utf8_lossy(tail)));
        }
        Ok(())
    }
}

/// The body's last SSE event is `data: [DONE]`.
pub fn ends_with_done(body: &[u8]) -> bool {
    let trimmed = body.trim_ascii_end();
    trimmed.ends_with(b"data: [DONE]") || trimmed.ends_with(b"data:[DONE]")
}

/// The sending half of one HTTP/1.1 keep-alive client connection.
pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Open a keep-alive connection (no Nagle); its driver runs as a task of the current runtime.
pub async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let (tx, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(tx)
}

/// Send one request on `tx` and read its answer to the end; checked as [`Endpoint::check`].
pub async fn exchange(tx: &mut Sender, endpoint: Endpoint, req: Request<Full<Bytes>>) -> Result<(), String> {
    tx.ready().await.map_err(|e| e.to_string())?;
    let r = tx.send_request(req).await.map_err(|e| e.to_string())?;
    let status = r.status();
    let body = r.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    endpoint.check(status, &body)
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
pub fn closed_loop(addr: SocketAddr, endpoint: Endpoint, api: &Api, conns: usize, warmup: Duration, duration: Duration) -> LoadResult {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("load runtime");
    let api = Arc::new(api.clone());
    rt.block_on(async move {
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + duration;
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None::<String>);
                let mut sender = None;
                while Instant::now() < end {
                    if sender.is_none() {
                        match tokio::time::timeout_at(end.into(), connect(addr)).await {
                            Ok(Ok(tx)) => sender = Some(tx),
                            Ok(Err(e)) => {
                                errors += 1;
                                first_error.get_or_insert(e);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                            Err(_) => break,
                        }
                    }
                    let Some(tx) = sender.as_mut() else { continue };
                    let t0 = Instant::now();
                    // Bounded: an answer that has not come 10 s after the window counts as failed.
                    let res = tokio::time::timeout_at(
                        (end + Duration::from_secs(10)).into(),
                        exchange(tx, endpoint, endpoint.request(addr, &api, "hi")),
                    )
                    .await
                    .unwrap_or_else(|_| Err("no answer within 10 s after the window".into()));
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
