//! `bench-echo`: the physical-limit baseline for clawgate-bench.
//!
//! A bare hyper 1.x (http1 + upgrades) server with tungstenite WebSockets on one port, set up like
//! clawgate's sockets — multi-thread tokio with as many workers as cores (max 8), `TCP_NODELAY`,
//! a 4 KiB tungstenite read buffer, one task per socket that reads and writes — but with no
//! protocol behind it: it sends a fake `connect.challenge`, answers the first frame (a `connect`)
//! with a tiny `hello-ok`, and answers every later request frame with a `res` carrying the same
//! id (and `--pad` bytes of payload, so frames are about the size of clawgate's `health` answer).
//! `GET /healthz` answers over plain HTTP. The token is accepted and not checked.
//!
//! With `--async-tungstenite` each socket is an async-tungstenite `WebSocketStream` in a task
//! (`next().await`, `send().await`) instead: the comparison behind clawgate's transport decision.
//!
//! `bench-echo [run] --port P [--token T] [--pad BYTES] [--eager-writes] [--async-tungstenite]`

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::rt::{Read as HRead, ReadBuf, Write as HWrite};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha1::{Digest, Sha1};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

#[derive(Debug, Parser)]
#[command(name = "bench-echo", about = "WebSocket echo baseline for clawgate-bench (hyper + tungstenite, no protocol)")]
struct Args {
    /// Accepted for command-line compatibility with `clawgate run` (ignored).
    #[arg(hide = true)]
    command: Option<String>,
    #[arg(long, default_value_t = 18790)]
    port: u16,
    /// Accepted for compatibility; not checked.
    #[arg(long)]
    token: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Padding bytes in every echo response payload (768 ≈ the size of clawgate's health answer).
    #[arg(long, default_value_t = 768)]
    pad: usize,
    /// Write every response with its own syscall, as clawgate does (tungstenite write_buffer_size 0),
    /// instead of batching the responses of one read burst into one write.
    #[arg(long)]
    eager_writes: bool,
    /// Drive each socket with async-tungstenite's `WebSocketStream` (a task awaiting `next()` and
    /// `send()`, one write per answer) instead of the poll loop over tungstenite that clawgate's
    /// `driver/src/wsio.rs` uses: the measurement behind ARCHITECTURE.md's transport decision.
    #[arg(long)]
    async_tungstenite: bool,
    /// Worker threads (default: cores, max 8 — like clawgate).
    #[arg(long)]
    threads: Option<usize>,
}

/// Same as clawgate's `READ_BUFFER_SIZE`.
const READ_BUFFER_SIZE: usize = 2 * 1024;
/// Messages handled per wake-up before yielding (same as clawgate's session BUDGET).
const BUDGET: usize = 64;

struct Ctx {
    pad: String,
    eager: bool,
    async_ws: bool,
    conn_counter: AtomicU64,
}

fn main() {
    let a = Args::parse();
    let workers = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8));
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-echo: tokio: {e}");
            std::process::exit(1);
        }
    };
    let ctx =
        Arc::new(Ctx { pad: "x".repeat(a.pad), eager: a.eager_writes, async_ws: a.async_tungstenite, conn_counter: AtomicU64::new(0) });
    let addr = SocketAddr::new(a.bind, a.port);
    let code = rt.block_on(async move {
        let listener = match listen(addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bench-echo: cannot listen on {addr}: {e}");
                return 1;
            }
        };
        eprintln!(
            "bench-echo listening on ws://{addr} ({workers} workers, pad {} B, eager writes {}, async-tungstenite {})",
            a.pad, a.eager_writes, a.async_tungstenite
        );
        let accept = async {
            loop {
                match listener.accept().await {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        let ctx = ctx.clone();
                        tokio::spawn(serve(s, ctx));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        };
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bench-echo: signal: {e}");
                return 1;
            }
        };
        tokio::select! {
            _ = accept => {}
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        0
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}

fn listen(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 }, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(s.into())
}

async fn serve(s: tokio::net::TcpStream, ctx: Arc<Ctx>) {
    let svc = service_fn(move |req: Request<Incoming>| {
        let resp = handle(req, &ctx);
        async move { Ok::<_, Infallible>(resp) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive(true)
        .serve_connection(TokioIo::new(s), svc)
        .with_upgrades()
        .await;
}

fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

fn respond(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json; charset=utf-8"));
    r
}

fn handle(mut req: Request<Incoming>, ctx: &Arc<Ctx>) -> Response<Full<Bytes>> {
    let upgrade = req.headers().get("upgrade").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        return match req.uri().path() {
            "/healthz" | "/health" => respond(200, r#"{"ok":true,"status":"live"}"#),
            "/readyz" | "/ready" => respond(200, r#"{"ready":true}"#),
            _ => respond(404, r#"{"error":"not found"}"#),
        };
    }
    let Some(key) = req.headers().get("sec-websocket-key").map(|k| accept_key(k.as_bytes())) else {
        return respond(400, r#"{"error":"missing Sec-WebSocket-Key"}"#);
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Ok(up) = on_upgrade.await {
            if ctx.async_ws {
                echo_async(up, ctx).await;
            } else {
                Echo::new(up, ctx).await;
            }
        }
    });
    Response::builder()
        .status(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", key)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Sync adapter over an async hyper IO, valid inside one `poll` (the same technique as clawgate's wsio).
struct SyncIo<T> {
    io: T,
    waker: Option<Waker>,
}

impl<T: HRead + Unpin> Read for SyncIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let waker = self.waker.as_ref().ok_or(io::ErrorKind::WouldBlock)?;
        let mut cx = Context::from_waker(waker);
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.io).poll_read(&mut cx, rb.unfilled()) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<T: HWrite + Unpin> Write for SyncIo<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let waker = self.waker.as_ref().ok_or(io::ErrorKind::WouldBlock)?;
        let mut cx = Context::from_waker(waker);
        match Pin::new(&mut self.io).poll_write(&mut cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        let waker = self.waker.as_ref().ok_or(io::ErrorKind::WouldBlock)?;
        let mut cx = Context::from_waker(waker);
        match Pin::new(&mut self.io).poll_flush(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

#[derive(serde::Deserialize)]
struct Req<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    method: Cow<'a, str>,
}

/// One WebSocket over async-tungstenite: `next().await` → answer → `send().await`, in one task.
async fn echo_async(up: hyper::upgrade::Upgraded, ctx: Arc<Ctx>) {
    use futures_util::StreamExt;
    let cfg = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let io = async_tungstenite::tokio::TokioAdapter::new(TokioIo::new(up));
    let mut ws = async_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, Some(cfg)).await;
    let conn = ctx.conn_counter.fetch_add(1, Ordering::Relaxed);
    let mut state = Greeting { ctx, conn, greeted: false };
    if ws.send(Message::text(state.challenge())).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = ws.next().await {
        let text = match &msg {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(b) => std::str::from_utf8(b).ok(),
            _ => None,
        };
        if let Some(r) = text.and_then(|t| state.reply(t)) {
            if ws.send(Message::text(r)).await.is_err() {
                return;
            }
        }
    }
}

/// The fake protocol both echo loops speak.
struct Greeting {
    ctx: Arc<Ctx>,
    conn: u64,
    greeted: bool,
}

impl Greeting {
    fn challenge(&self) -> String {
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        format!(
            r#"{{"type":"event","event":"connect.challenge","payload":{{"nonce":"00000000-0000-4000-8000-{:012x}","ts":{ts},"capabilities":[]}}}}"#,
            self.conn
        )
    }

    fn reply(&mut self, text: &str) -> Option<String> {
        let req: Req<'_> = serde_json::from_str(text).ok()?;
        let id = serde_json::to_string(&req.id).ok()?;
        if !self.greeted {
            self.greeted = true;
            if req.method == "connect" {
                return Some(format!(
                    r#"{{"type":"res","id":{id},"ok":true,"payload":{{"type":"hello-ok","protocol":4,"server":{{"version":"bench-echo","connId":"echo-{}"}},"policy":{{"maxPayload":26214400,"maxBufferedBytes":52428800,"tickIntervalMs":30000}}}}}}"#,
                    self.conn
                ));
            }
        }
        let method = serde_json::to_string(&req.method).ok()?;
        Some(format!(r#"{{"type":"res","id":{id},"ok":true,"payload":{{"method":{method},"pad":"{}"}}}}"#, self.ctx.pad))
    }
}

/// One WebSocket: read → answer → flush, in one task.
struct Echo<T> {
    ws: WebSocket<SyncIo<T>>,
    greeting: Greeting,
    challenged: bool,
}

fn would_block(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

impl<T: HRead + HWrite + Unpin> Echo<T> {
    fn new(io: T, ctx: Arc<Ctx>) -> Self {
        let cfg = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            .write_buffer_size(if ctx.eager { 0 } else { 64 * 1024 })
            .max_message_size(Some(64 << 20))
            .max_frame_size(Some(64 << 20));
        let conn = ctx.conn_counter.fetch_add(1, Ordering::Relaxed);
        Echo {
            ws: WebSocket::from_raw_socket(SyncIo { io, waker: None }, Role::Server, Some(cfg)),
            greeting: Greeting { ctx, conn, greeted: false },
            challenged: false,
        }
    }

    fn reply(&mut self, text: &str) -> Option<String> {
        self.greeting.reply(text)
    }

    /// Queue a message; false when the socket is gone.
    fn send(&mut self, text: String) -> bool {
        match self.ws.write(Message::text(text)) {
            Ok(()) => true,
            Err(e) => would_block(&e),
        }
    }
}

impl<T: HRead + HWrite + Unpin> Future for Echo<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let io = this.ws.get_mut();
        if !io.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            io.waker = Some(cx.waker().clone());
        }
        if !this.challenged {
            this.challenged = true;
            let ch = this.greeting.challenge();
            if !this.send(ch) {
                return Poll::Ready(());
            }
        }
        let mut budget = BUDGET;
        loop {
            match this.ws.read() {
                Ok(Message::Text(t)) => {
                    if let Some(r) = this.reply(t.as_str()) {
                        if !this.send(r) {
                            return Poll::Ready(());
                        }
                    }
                }
                Ok(Message::Binary(b)) => {
                    if let Some(r) = std::str::from_utf8(&b).ok().and_then(|t| this.reply(t)) {
                        if !this.send(r) {
                            return Poll::Ready(());
                        }
                    }
                }
                Ok(_) => {} // ping/pong/close: tungstenite queues the replies
                Err(e) if would_block(&e) => break,
                Err(_) => return Poll::Ready(()),
            }
            budget -= 1;
            if budget == 0 {
                match this.ws.flush() {
                    Ok(()) => {}
                    Err(e) if would_block(&e) => {}
                    Err(_) => return Poll::Ready(()),
                }
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        match this.ws.flush() {
            Ok(()) => Poll::Pending,
            Err(e) if would_block(&e) => Poll::Pending,
            Err(_) => Poll::Ready(()),
        }
    }
}
