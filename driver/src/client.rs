//! A WebSocket client for the gateway protocol, on any runtime: TCP from the runtime, the HTTP
//! upgrade with hyper's client, frames with tungstenite, protocol state with the core's
//! `ClientConnection`. Used by the CLI subcommands, the conformance runner and the benchmarks.

use std::future::poll_fn;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::Poll;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use clawgate_core::connection::client::{ClientConnection, ClientEvent, ClientOptions, ClientOutput};
use clawgate_core::wire::ResponseFrame;
use futures_util::future::{Either, select};
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::Upgraded;
use serde_json::Value;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role};

use crate::rt::Runtime;
use crate::session::os_random;
use crate::wsio::{ReadEvent, WsIo};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid gateway url {0}: {1}")]
    Url(String, String),
    #[error("{0}")]
    Connect(String),
    /// The server refused the upgrade with this HTTP status and body.
    #[error("unexpected server response: {status} {body}")]
    Http { status: u16, body: String },
    /// The server refused `connect`.
    #[error("{}", .0.error.as_ref().map(|e| e.message.clone()).unwrap_or_default())]
    Rejected(Box<ResponseFrame>),
    #[error("gateway closed the connection ({code}): {reason}")]
    Closed { code: u16, reason: String },
    #[error("timed out after {0} ms")]
    Timeout(u64),
}

/// A parsed `ws://host:port/path` or `wss://…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `wss://`: TLS (rustls, the Mozilla roots plus `CLAWGATE_EXTRA_CA_CERTS` /
    /// `NODE_EXTRA_CA_CERTS`).
    pub tls: bool,
}

impl WsUrl {
    pub fn parse(url: &str) -> Result<WsUrl, ClientError> {
        let bad = |why: &str| ClientError::Url(url.to_string(), why.to_string());
        let (rest, tls) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(r), _) => (r, false),
            (None, Some(r)) => (r, true),
            _ => return Err(bad("use a ws:// or wss:// URL")),
        };
        let default_port = if tls { 443 } else { 80 };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, tail) = r.split_once(']').ok_or_else(|| bad("unterminated IPv6 host"))?;
            (
                h.to_string(),
                tail.strip_prefix(':').map(|p| p.parse::<u16>()).transpose().map_err(|_| bad("bad port"))?.unwrap_or(default_port),
            )
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse::<u16>().map_err(|_| bad("bad port"))?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        Ok(WsUrl { host, port, path: path.to_string(), tls })
    }

    fn addrs(&self) -> Result<Vec<SocketAddr>, ClientError> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .map_err(|e| ClientError::Connect(format!("cannot resolve {}: {e}", self.host)))
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }
}

/// Node-style error names (`ECONNREFUSED`), as the reference CLI prints them.
fn io_error_code(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "ECONNREFUSED".into(),
        ConnectionReset => "ECONNRESET".into(),
        TimedOut => "ETIMEDOUT".into(),
        AddrNotAvailable => "EADDRNOTAVAIL".into(),
        _ => e.to_string(),
    }
}

/// Raw events of a socket (conformance checks look at frames below the protocol).
#[derive(Debug, Clone, PartialEq)]
pub enum RawEvent {
    Text(String),
    Binary(Vec<u8>),
    Ping,
    Pong,
    /// Close frame from the server (code 1005 when it carried none).
    Close {
        code: u16,
        reason: String,
    },
    /// The TCP connection ended without (further) close frame.
    Ended,
}

/// Extra request headers for the upgrade (e.g. `Origin`).
pub type Headers = Vec<(String, String)>;

/// An open WebSocket to a gateway, below the protocol layer.
pub struct RawSocket<R: Runtime> {
    rt: R,
    ws: WsIo<Upgraded>,
}

impl<R: Runtime> RawSocket<R> {
    /// TCP connect + HTTP upgrade.
    pub async fn connect(rt: &R, url: &str, headers: &Headers) -> Result<Self, ClientError> {
        let u = WsUrl::parse(url)?;
        let mut last = String::from("no address");
        let mut io = None;
        for addr in u.addrs()? {
            match rt.connect(addr).await {
                Ok(s) => {
                    io = Some(s);
                    break;
                }
                Err(e) => last = format!("connect {} {addr}", io_error_code(&e)),
            }
        }
        let io = io.ok_or(ClientError::Connect(last))?;
        let upgraded = if u.tls {
            let tls = crate::tls::connect(io, &u.host).await.map_err(ClientError::Connect)?;
            Self::upgrade(rt, tls, &u, headers).await?
        } else {
            Self::upgrade(rt, io, &u, headers).await?
        };
        Ok(RawSocket { rt: rt.clone(), ws: WsIo::new(upgraded, Role::Client, 64 << 20) })
    }

    /// The HTTP/1.1 upgrade to a WebSocket over an open connection.
    async fn upgrade<T>(rt: &R, io: T, u: &WsUrl, headers: &Headers) -> Result<Upgraded, ClientError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
            .await
            .map_err(|e| ClientError::Connect(format!("handshake: {e}")))?;
        rt.spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let key = base64::engine::general_purpose::STANDARD.encode(os_random::<16>().map_err(|e| ClientError::Connect(e.to_string()))?);
        let mut b = hyper::Request::builder()
            .method("GET")
            .uri(u.path.as_str())
            .header("Host", u.host_header())
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", key.as_str());
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let req = b.body(Empty::<Bytes>::new()).map_err(|e| ClientError::Connect(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| ClientError::Connect(format!("upgrade request: {e}")))?;
        if resp.status() != 101 {
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned()).unwrap_or_default();
            return Err(ClientError::Http { status, body });
        }
        let expected = clawgate_core::http::websocket_accept_key(&key);
        let got = resp.headers().get("sec-websocket-accept").and_then(|v| v.to_str().ok()).unwrap_or("");
        if got != expected {
            return Err(ClientError::Connect("bad Sec-WebSocket-Accept".into()));
        }
        hyper::upgrade::on(resp).await.map_err(|e| ClientError::Connect(format!("upgrade: {e}")))
    }

    /// Send one message and flush it.
    pub async fn send(&mut self, msg: Message) -> Result<(), ClientError> {
        let closed = || ClientError::Closed { code: 1006, reason: String::new() };
        poll_fn(|cx| {
            self.ws.set_waker(cx);
            Poll::Ready(())
        })
        .await;
        self.ws.queue(msg).map_err(|_| closed())?;
        self.flush().await
    }

    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.send(Message::text(text.into())).await
    }

    pub async fn flush(&mut self) -> Result<(), ClientError> {
        poll_fn(|cx| {
            self.ws.set_waker(cx);
            self.ws.poll_flush()
        })
        .await
        .map_err(|_| ClientError::Closed { code: 1006, reason: String::new() })
    }

    /// Close from our side with a code (or none) and flush.
    pub async fn close(&mut self, code: Option<u16>, reason: &str) {
        let frame = code.map(|c| CloseFrame { code: CloseCode::from(c), reason: reason.to_string().into() });
        let _ = self.send(Message::Close(frame)).await;
    }

    /// Next raw event, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<RawEvent> {
        let read = poll_fn(|cx| {
            self.ws.set_waker(cx);
            // Keep automatic pong/close replies flowing.
            let _ = self.ws.poll_flush();
            match self.ws.poll_read() {
                Poll::Ready(ReadEvent::Message(m)) => Poll::Ready(match m {
                    Message::Text(t) => RawEvent::Text(t.as_str().to_string()),
                    Message::Binary(b) => RawEvent::Binary(b.to_vec()),
                    Message::Ping(_) => RawEvent::Ping,
                    Message::Pong(_) => RawEvent::Pong,
                    Message::Close(f) => match f {
                        Some(f) => RawEvent::Close { code: u16::from(f.code), reason: f.reason.as_str().to_string() },
                        None => RawEvent::Close { code: 1005, reason: String::new() },
                    },
                    Message::Frame(_) => RawEvent::Ended,
                }),
                Poll::Ready(ReadEvent::TooLarge) => Poll::Ready(RawEvent::Ended),
                Poll::Ready(ReadEvent::Closed) => Poll::Ready(RawEvent::Ended),
                Poll::Pending => Poll::Pending,
            }
        });
        let sleep = self.rt.sleep_until(Instant::now() + timeout);
        let read = std::pin::pin!(read);
        match select(read, sleep).await {
            Either::Left((ev, _)) => {
                // Push a queued close reply out before the caller drops us.
                let _ = poll_fn(|cx| {
                    self.ws.set_waker(cx);
                    Poll::Ready(self.ws.poll_flush())
                })
                .await;
                Some(ev)
            }
            Either::Right(_) => None,
        }
    }

    /// Answer pings automatically but report everything else; skip pings and pongs.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<RawEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await? {
                RawEvent::Ping | RawEvent::Pong => continue,
                other => return Some(other),
            }
        }
    }
}

/// A gateway protocol client: handshake, calls, events.
pub struct Client<R: Runtime> {
    pub raw: RawSocket<R>,
    conn: ClientConnection,
    pub hello: Value,
    /// Events received while waiting for responses.
    pub events: Vec<ClientEvent>,
}

impl<R: Runtime> Client<R> {
    /// Connect and complete the handshake.
    pub async fn connect(rt: &R, url: &str, opts: ClientOptions, headers: &Headers) -> Result<Self, ClientError> {
        let timeout = opts.connect_timeout;
        let mut raw = RawSocket::connect(rt, url, headers).await?;
        let prefix = clawgate_core::ids::uuid_v4(os_random::<16>().map_err(|e| ClientError::Connect(e.to_string()))?);
        let mut conn = ClientConnection::new(opts, prefix, Instant::now());
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            Self::flush_outputs(&mut raw, &mut conn).await?;
            while let Some(ev) = conn.poll_event() {
                match ev {
                    ClientEvent::Hello(hello) => return Ok(Client { raw, conn, hello, events }),
                    ClientEvent::ConnectFailed(res) => return Err(ClientError::Rejected(Box::new(res))),
                    other => events.push(other),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match raw.next_frame(left).await {
                Some(RawEvent::Text(t)) => conn.handle_text(Instant::now(), &t),
                Some(RawEvent::Binary(b)) => conn.handle_text(Instant::now(), &String::from_utf8_lossy(&b)),
                Some(RawEvent::Close { code, reason }) => return Err(ClientError::Closed { code, reason }),
                Some(RawEvent::Ended) => return Err(ClientError::Closed { code: 1006, reason: String::new() }),
                Some(RawEvent::Ping | RawEvent::Pong) => {}
                None => return Err(ClientError::Timeout(timeout.as_millis() as u64)),
            }
        }
    }

    async fn flush_outputs(raw: &mut RawSocket<R>, conn: &mut ClientConnection) -> Result<(), ClientError> {
        while let Some(o) = conn.poll_output() {
            match o {
                ClientOutput::Send(t) => raw.send_text(t).await?,
                ClientOutput::Close { code, reason } => raw.close(Some(code), &reason).await,
            }
        }
        Ok(())
    }

    /// Send a request and wait for its (final) response.
    pub async fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
        expect_final: bool,
        timeout: Duration,
    ) -> Result<ResponseFrame, ClientError> {
        let id = self.conn.call(method, params, expect_final);
        let deadline = Instant::now() + timeout;
        loop {
            Self::flush_outputs(&mut self.raw, &mut self.conn).await?;
            while let Some(ev) = self.conn.poll_event() {
                match ev {
                    ClientEvent::Response { id: rid, frame, interim } if rid == id && !interim => return Ok(frame),
                    other => self.events.push(other),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.raw.next_frame(left).await {
                Some(RawEvent::Text(t)) => self.conn.handle_text(Instant::now(), &t),
                Some(RawEvent::Binary(b)) => self.conn.handle_text(Instant::now(), &String::from_utf8_lossy(&b)),
                Some(RawEvent::Close { code, reason }) => return Err(ClientError::Closed { code, reason }),
                Some(RawEvent::Ended) => return Err(ClientError::Closed { code: 1006, reason: String::new() }),
                Some(_) => {}
                None => return Err(ClientError::Timeout(timeout.as_millis() as u64)),
            }
        }
    }

    /// Close politely.
    pub async fn close(mut self) {
        self.conn.close("");
        let _ = Self::flush_outputs(&mut self.raw, &mut self.conn).await;
        let _ = self.raw.next(Duration::from_millis(200)).await;
    }
}
