//! A fake OpenAI-compatible model provider on loopback: the one test double the project allows
//! (an upstream we cannot run here). A real HTTP server, driven by the request's `model`:
//!
//! * `fake-model` — streams `Hello from fake upstream` (SSE, usage included);
//! * `fake-echo` — streams `echo: <last user text> (messages: <n>)`, so tests can see the history
//!   the gateway sent;
//! * `fake-tools` — when the request offers tools and the last message is not a tool result,
//!   streams a call of the first tool with `{"city":"Paris"}`; after a tool result, streams
//!   `tool said: <result>`;
//! * `fake-model-2` — an alias of `fake-model` (the captures' second model);
//! * `fake-500`, `fake-429` (`Retry-After: 0`), `fake-401` — fail with that status;
//! * `fake-flaky` — fails with 503 on the first request of each conversation, then answers;
//! * `fake-slow` — waits `slow_ms` before the head, then streams slowly;
//! * `fake-flood` — streams a 1 GB answer (16 KiB deltas) as fast as it is taken.
//!
//! [`FakeUpstream::set_call_tools`] makes `fake-model`/`fake-model-2` behave like the captures'
//! tool-calling upstream: with tools offered and no tool result in the conversation (a `tool`
//! message, or a flattened `Tool:<id>: …` user turn), stream `Checking.` and a call of the first
//! tool with `{"city":"Paris"}`; afterwards they answer as usual.
//!
//! `POST …/embeddings` answers deterministic vectors: `[len(input), 0.5, -1.25]`.
//! Every request is recorded (path, headers, JSON body) for assertions.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct State {
    /// Chat answers started and given up because the client (the gateway) went away before
    /// they were complete; and chat answers sent in full.
    abandoned: AtomicU64,
    completed: AtomicU64,
    requests: Mutex<Vec<Recorded>>,
    slow_ms: AtomicU64,
    flaky_failures: AtomicU64,
    call_tools: std::sync::atomic::AtomicBool,
    /// Bytes the `fake-flood` answers handed to hyper.
    flood_bytes: AtomicU64,
    /// TCP connections accepted.
    connections: AtomicU64,
}

/// A running fake provider on its own thread and runtime (stopped when dropped), so it works
/// from plain and from async tests alike.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    tls: bool,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A private CA and a `localhost` server certificate it signed (for the HTTPS fake).
pub struct TestCa {
    /// PEM of the CA certificate (what a client must trust).
    pub ca_pem: String,
    server: tokio_rustls::rustls::ServerConfig,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf =
            CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params").signed_by(&leaf_key, &issuer).expect("leaf cert");
        let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("leaf key der");
        let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let server = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .expect("server cert");
        TestCa { ca_pem: ca_cert.pem(), server }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeUpstream {
    pub fn start() -> FakeUpstream {
        Self::start_with(None)
    }

    /// The same fake over HTTPS (`https://localhost:PORT/v1`), with a certificate from `ca`.
    pub fn start_tls(ca: &TestCa) -> FakeUpstream {
        let mut up = Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(ca.server.clone()))));
        up.tls = true;
        up
    }

    /// The fake on a fixed loopback port (the README's stand-in for a local model server).
    pub fn start_on_port(port: u16) -> FakeUpstream {
        Self::start_at(None, port)
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> FakeUpstream {
        Self::start_at(tls, 0)
    }

    fn start_at(tls: Option<tokio_rustls::TlsAcceptor>, port: u16) -> FakeUpstream {
        let state = Arc::new(State {
            abandoned: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            slow_ms: AtomicU64::new(3000),
            flaky_failures: AtomicU64::new(0),
            call_tools: Default::default(),
            flood_bytes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("fake upstream runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the fake upstream");
                let _ = addr_tx.send(listener.local_addr().expect("fake upstream address"));
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            st.connections.fetch_add(1, Ordering::SeqCst);
                            let (st, tls) = (st.clone(), tls.clone());
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| handle(st.clone(), req));
                                match tls {
                                    Some(acceptor) => {
                                        if let Ok(s) = acceptor.accept(stream).await {
                                            let _ = http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
                                        }
                                    }
                                    None => {
                                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                                    }
                                }
                            });
                        }
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("the fake upstream started");
        FakeUpstream { addr, state, stop: Some(stop_tx), thread: Some(thread), tls: false }
    }

    /// `http://127.0.0.1:PORT/v1` (`https://localhost:PORT/v1` over TLS).
    pub fn base_url(&self) -> String {
        if self.tls { format!("https://localhost:{}/v1", self.addr.port()) } else { format!("http://{}/v1", self.addr) }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path.ends_with("/chat/completions")).collect()
    }

    /// Chat answers the gateway walked away from before they were complete.
    pub fn abandoned(&self) -> u64 {
        self.state.abandoned.load(Ordering::SeqCst)
    }

    /// TCP connections the gateway opened to the fake.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Chat answers sent in full.
    pub fn completed(&self) -> u64 {
        self.state.completed.load(Ordering::SeqCst)
    }

    /// Bytes of `fake-flood` answers the gateway has taken so far.
    pub fn flood_bytes(&self) -> u64 {
        self.state.flood_bytes.load(Ordering::SeqCst)
    }

    pub fn set_slow_ms(&self, ms: u64) {
        self.state.slow_ms.store(ms, Ordering::SeqCst);
    }

    /// `fake-model`/`fake-model-2` call the first offered tool (see the module docs).
    pub fn set_call_tools(&self, on: bool) {
        self.state.call_tools.store(on, Ordering::SeqCst);
    }

    /// The provider section of a config file for this fake (`models.providers.fake`).
    pub fn provider_config(&self, api_key: &str) -> Value {
        json!({"baseUrl": self.base_url(), "apiKey": api_key, "api": "openai-completions",
            "models": [{"id": "fake-model", "maxTokens": 4096}, {"id": "fake-echo"}, {"id": "fake-tools"}]})
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, ct: &str, body: String) -> Response<Body> {
    Response::builder().status(status).header("content-type", ct).body(Full::new(Bytes::from(body)).boxed()).expect("response")
}

/// Counts an answer as abandoned when dropped before it was disarmed (sent in full).
struct Answering(Arc<State>, bool);

impl Drop for Answering {
    fn drop(&mut self) {
        if !self.1 {
            self.0.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn sse_counted(st: &Arc<State>, chunks: Vec<(u64, String)>) -> Response<Body> {
    sse_stream(st, chunks.into_iter().map(|(delay, c)| (delay, Bytes::from(c))), false)
}

/// An SSE answer from `chunks` (delay before each, in ms), produced as the gateway takes them;
/// `flood` counts the bytes handed over in `flood_bytes`.
fn sse_stream(st: &Arc<State>, chunks: impl Iterator<Item = (u64, Bytes)> + Send + 'static, flood: bool) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    let mut guard = Answering(st.clone(), false);
    tokio::spawn(async move {
        for (delay, c) in chunks {
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let len = c.len() as u64;
            if tx.send(Ok(Frame::data(c))).await.is_err() {
                return;
            }
            if flood {
                guard.0.flood_bytes.fetch_add(len, Ordering::SeqCst);
            }
        }
        guard.1 = true;
        guard.0.completed.fetch_add(1, Ordering::SeqCst);
    });
    let stream = futures_stream(rx);
    Response::builder().status(200).header("content-type", "text/event-stream").body(StreamBody::new(stream).boxed()).expect("sse response")
}

/// `fake-flood`: `chunks` deltas of `size` bytes each, produced as fast as the gateway takes
/// them (generated lazily: a 1 GB answer costs the fake nothing), then the end of the stream.
fn sse_flood(st: &Arc<State>, size: usize, chunks: usize) -> Response<Body> {
    let one = Bytes::from(chunk(json!({"content": "x".repeat(size)}), None));
    let end = [chunk(json!({}), Some("stop")), "data: [DONE]\n\n".to_string()].map(|c| (0, Bytes::from(c)));
    sse_stream(st, std::iter::repeat_n((0, one), chunks).chain(end), true)
}

fn futures_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

fn text_stream(text: &str, gap_ms: u64) -> Vec<(u64, String)> {
    let mut out = vec![(0, chunk(json!({"role": "assistant"}), None))];
    // Split after spaces, like real providers (`"Hello "`, `"from "`, …).
    let mut cur = String::new();
    for ch in text.chars() {
        cur.push(ch);
        if ch == ' ' {
            out.push((gap_ms, chunk(json!({"content": std::mem::take(&mut cur)}), None)));
        }
    }
    if !cur.is_empty() {
        out.push((gap_ms, chunk(json!({"content": cur}), None)));
    }
    out.push((0, chunk(json!({}), Some("stop"))));
    out.push((0, format!("data: {}\n\n", json!({"id": "up-1", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}))));
    out.push((0, "data: [DONE]\n\n".to_string()));
    out
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

async fn handle(st: Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let headers = req.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let bytes = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    st.requests.lock().unwrap_or_else(|p| p.into_inner()).push(Recorded { path: path.clone(), headers, body: body.clone() });
    if path.ends_with("/embeddings") {
        let inputs: Vec<String> = match &body["input"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"object": "embedding", "index": i, "embedding": [s.chars().count() as f64, 0.5, -1.25]}))
            .collect();
        let v = json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}});
        return Ok(full(200, "application/json", v.to_string()));
    }
    if !path.ends_with("/chat/completions") {
        return Ok(full(404, "application/json", json!({"error": {"message": "no such route"}}).to_string()));
    }
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let err = |status: u16, msg: &str| full(status, "application/json", json!({"error": {"message": msg, "type": "fake"}}).to_string());
    Ok(match model.as_str() {
        "fake-500" => err(500, "fake upstream error 500"),
        "fake-401" => err(401, "fake upstream error 401"),
        "fake-429" => {
            let mut r = err(429, "fake upstream error 429");
            r.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("0"));
            r
        }
        "fake-flaky" => {
            if st.flaky_failures.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                err(503, "fake upstream overloaded")
            } else {
                sse_counted(&st, text_stream("Recovered after a retry", 0))
            }
        }
        // 16 KiB deltas, 64 000 of them: a 1 GB answer.
        "fake-flood" => sse_flood(&st, 16 * 1024, 64_000),
        "fake-slow" => {
            let ms = st.slow_ms.load(Ordering::SeqCst);
            // Dropped by hyper if the gateway hangs up while we "think".
            let mut waiting = Answering(st.clone(), false);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            waiting.1 = true;
            sse_counted(&st, text_stream("Slow hello", 50))
        }
        "fake-echo" => {
            let user = messages.iter().rev().find(|m| m["role"] == "user").map(|m| text_of(&m["content"])).unwrap_or_default();
            sse_counted(&st, text_stream(&format!("echo: {user} (messages: {})", messages.len()), 0))
        }
        "fake-tools" if last["role"] == "tool" => sse_counted(&st, text_stream(&format!("tool said: {}", text_of(&last["content"])), 0)),
        "fake-model" | "fake-model-2"
            if st.call_tools.load(Ordering::SeqCst)
                && body["tools"].as_array().is_some_and(|t| !t.is_empty())
                && !messages.iter().any(|m| m["role"] == "tool" || text_of(&m["content"]).starts_with("Tool:")) =>
        {
            let name = body["tools"][0]["function"]["name"].as_str().unwrap_or("tool").to_string();
            let call = json!({"index": 0, "id": "call_up_1", "type": "function", "function": {"name": name, "arguments": ""}});
            let args = json!({"index": 0, "function": {"arguments": "{\"city\":\"Paris\"}"}});
            let usage = json!({"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28});
            let mut out = vec![(0, chunk(json!({"role": "assistant"}), None)), (0, chunk(json!({"content": "Checking."}), None))];
            out.push((0, chunk(json!({"tool_calls": [call]}), None)));
            out.push((0, chunk(json!({"tool_calls": [args]}), None)));
            out.push((0, chunk(json!({}), Some("tool_calls"))));
            out.push((0, format!("data: {}\n\n", json!({"id": "up-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}))));
            out.push((0, "data: [DONE]\n\n".to_string()));
            sse_counted(&st, out)
        }
        "fake-tools" if body["tools"].as_array().is_some_and(|t| !t.is_empty()) => {
            let name = body["tools"][0]["function"]["name"].as_str().unwrap_or("tool").to_string();
            let mut out = vec![(0, chunk(json!({"role": "assistant"}), None))];
            out.push((0, chunk(json!({"tool_calls": [{"index": 0, "id": "call_up_1", "type": "function", "function": {"name": name, "arguments": ""}}]}), None)));
            out.push((0, chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}), None)));
            out.push((0, chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}), None)));
            out.push((0, chunk(json!({}), Some("tool_calls"))));
            out.push((0, "data: [DONE]\n\n".to_string()));
            sse_counted(&st, out)
        }
        _ => sse_counted(&st, text_stream("Hello from fake upstream", 0)),
    })
}

/// A TLS-terminating TCP proxy on loopback: `wss://localhost:PORT` in front of a plain gateway
/// (as a reverse proxy or tunnel would put it), with a certificate from `ca`. Stopped on drop.
pub struct TlsProxy {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsProxy {
    pub fn start(ca: &TestCa, backend: SocketAddr) -> TlsProxy {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server.clone()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the TLS proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("proxy addr").port();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                            });
                        }
                    }
                }
            });
        });
        TlsProxy { port, stop: Some(stop_tx), thread: Some(thread) }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
