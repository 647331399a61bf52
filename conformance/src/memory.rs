//! The in-memory runner: `clawgate_core` driven directly on virtual time, exactly like a shell
//! drives it but without IO. One fresh [`Hub`] per check (`loopback_token_settings` +
//! `test_server_info`); upgrades and HTTP requests go through `http::route`; dispatched requests
//! are answered with `methods::perform_without_io` (the shells' `methods::dispatch`, without IO); hub and connection timers fire in chronological order at
//! their exact virtual instants, so slow checks (75 s of keepalive) take microseconds.
//!
//! What a WebSocket codec would do is modelled here: the message size limit the core sets
//! (`SetMaxMessageSize`), answering pings (unless the script plays a pong-less peer), replying
//! to the server's close frame, and echoing a client close.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawgate_core::connection::Output;
use clawgate_core::gateway::Hub;
use clawgate_core::http::{HttpAction, RequestHead, route};
use clawgate_core::testkit::memory::MemorySocket;
use clawgate_core::testkit::{loopback_token_settings, test_server_info};

use crate::engine::{self, Env, HttpReq, HttpResp, Msg, OpenOpts, OpenResult, Secret, Transport, WireEvent};
use crate::model::{Check, CheckResult, Conn, Outcome};

/// The token of the in-memory gateway.
pub const TOKEN: &str = "testtoken123";
/// Its (nominal) port.
pub const PORT: u16 = 18789;
/// Wall-clock ms at virtual time zero.
pub const UNIX0: u64 = 1_795_602_626_311;

struct MemConn {
    /// The socket, driven as the shells drive it.
    sock: MemorySocket,
    queue: VecDeque<(Instant, WireEvent)>,
    max_size: usize,
    auto_pong: bool,
    /// The TCP connection is over (nothing more will be queued).
    done: bool,
}

/// A transport over one in-memory hub.
pub struct MemoryTransport {
    hub: Arc<Hub>,
    t0: Instant,
    now: Instant,
    conns: HashMap<Conn, MemConn>,
    next_n: u64,
}

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// A documentation-range address for the non-loopback peer.
fn remote() -> IpAddr {
    IpAddr::from([192, 0, 2, 7])
}

impl MemoryTransport {
    pub fn new() -> Self {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let hub = Hub::new(test_server_info(t0, UNIX0), loopback_token_settings(TOKEN, PORT), t0);
        MemoryTransport { hub, t0, now: t0, conns: HashMap::new(), next_n: 1 }
    }

    fn unix(&self) -> u64 {
        UNIX0 + self.now.duration_since(self.t0).as_millis() as u64
    }

    /// Act on every pending output of one connection.
    fn drain(&mut self, id: Conn) {
        let now = self.now;
        let unix = self.unix();
        let Some(c) = self.conns.get_mut(&id) else { return };
        let mut pings = Vec::new();
        let mut server_closed = false;
        while let Some(o) = c.sock.conn.poll_output() {
            if c.done {
                continue;
            }
            match o {
                Output::Send(text) => c.queue.push_back((now, WireEvent::Text(text))),
                Output::Ping(payload) => {
                    c.queue.push_back((now, WireEvent::Ping));
                    pings.push(payload);
                }
                Output::SetMaxMessageSize(n) => c.max_size = n,
                Output::Dispatch(d) => {
                    c.sock.perform(&d, now, unix);
                    drop(d);
                }
                Output::Close { code, reason } => {
                    c.queue.push_back((now, WireEvent::Close { code, reason }));
                    server_closed = true;
                }
                Output::Terminate => {
                    c.queue.push_back((now, WireEvent::Ended));
                    c.done = true;
                }
            }
        }
        if c.auto_pong && !c.done && !pings.is_empty() {
            for p in &pings {
                c.sock.conn.handle_pong(now, p);
            }
            // A run-ack barrier's pong releases what it held.
            if pings.iter().any(|p| !p.is_empty()) {
                return self.drain(id);
            }
        }
        if server_closed && !c.done {
            // A standard peer answers the close frame; the TCP connection then ends.
            c.sock.conn.handle_peer_close(now);
            c.queue.push_back((now, WireEvent::Ended));
            c.done = true;
        }
    }

    /// Feed every connection what the hub delivered to it, until nothing moves.
    fn pump_all(&mut self) {
        loop {
            let mut moved = false;
            let ids: Vec<Conn> = self.conns.keys().copied().collect();
            for id in ids {
                let now = self.now;
                let Some(c) = self.conns.get_mut(&id) else { continue };
                if c.sock.deliver_mail(now, 0) > 0 {
                    moved = true;
                }
                self.drain(id);
            }
            if !moved {
                break;
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let conns = self.conns.values().filter(|c| !c.done).filter_map(|c| c.sock.conn.poll_timeout()).min();
        let hub = self.hub.poll_timeout();
        conns.map_or(hub, |c| c.min(hub))
    }

    /// Move virtual time to `t` (not backwards) and fire everything due.
    fn fire(&mut self, t: Instant) {
        self.now = self.now.max(t);
        let now = self.now;
        let unix = self.unix();
        if self.hub.poll_timeout() <= now {
            self.hub.handle_timeout(now, unix);
        }
        self.pump_all();
        let ids: Vec<Conn> = self.conns.keys().copied().collect();
        for id in ids {
            if let Some(c) = self.conns.get_mut(&id) {
                if !c.done && c.sock.conn.poll_timeout().is_some_and(|d| d <= now) {
                    c.sock.conn.handle_timeout(now, unix);
                }
            }
            self.drain(id);
        }
        self.pump_all();
    }

    /// Fire every timer up to `t`, in order, then set the clock to `t`.
    fn advance_to(&mut self, t: Instant) {
        for _ in 0..100_000 {
            self.pump_all();
            let next = self.next_deadline();
            if next > t {
                break;
            }
            self.fire(next);
        }
        self.now = self.now.max(t);
    }

    fn head_headers(req_headers: &[(String, String)], upgrade: bool) -> Vec<(String, String)> {
        let mut h = vec![("Host".to_string(), format!("127.0.0.1:{PORT}"))];
        if upgrade {
            h.push(("Connection".into(), "Upgrade".into()));
            h.push(("Upgrade".into(), "websocket".into()));
            h.push(("Sec-WebSocket-Version".into(), "13".into()));
            h.push(("Sec-WebSocket-Key".into(), engine::WS_KEY.into()));
        }
        for (k, v) in req_headers {
            h.retain(|(x, _)| !x.eq_ignore_ascii_case(k));
            h.push((k.clone(), v.clone()));
        }
        h
    }
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for MemoryTransport {
    fn now(&self) -> Instant {
        self.now
    }

    fn open(&mut self, conn: Conn, opts: &OpenOpts) -> Result<OpenResult, String> {
        let headers = Self::head_headers(&opts.headers, true);
        let hv: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let head = RequestHead { method: "GET", path: "/", query: "", headers: &hv, remote: loopback() };
        let unix = self.unix();
        match route(&self.hub, &head, self.now, unix) {
            HttpAction::Respond(r) | HttpAction::RespondAfter(_, r) => {
                Ok(OpenResult::Rejected { status: r.status, body: String::from_utf8_lossy(&r.body).into_owned() })
            }
            HttpAction::ReadBody { .. } | HttpAction::GetResponse { .. } | HttpAction::Store(_) | HttpAction::ControlUi(_) => {
                Err("an upgrade request was routed to an API route".into())
            }
            HttpAction::Upgrade { admission, .. } => {
                let n = self.next_n;
                self.next_n += 1;
                let sock = MemorySocket::open(admission, n, self.now, unix);
                self.conns
                    .insert(conn, MemConn { sock, queue: VecDeque::new(), max_size: usize::MAX, auto_pong: opts.auto_pong, done: false });
                self.drain(conn);
                self.pump_all();
                Ok(OpenResult::Open)
            }
        }
    }

    fn send(&mut self, conn: Conn, msg: Msg) -> Result<(), String> {
        let now = self.now;
        let unix = self.unix();
        let c = self.conns.get_mut(&conn).ok_or("no such connection")?;
        if c.done {
            return Ok(());
        }
        if msg.len() > c.max_size {
            // What the codec does with a message above its limit.
            c.sock.conn.handle_message_too_large(now);
        } else {
            match msg {
                Msg::Text(t) => c.sock.conn.handle_text(now, unix, &t),
                Msg::Binary(b) => c.sock.conn.handle_binary(now, unix, &b),
            }
        }
        self.drain(conn);
        self.pump_all();
        Ok(())
    }

    fn recv(&mut self, conn: Conn, deadline: Instant) -> Option<(Instant, WireEvent)> {
        for _ in 0..100_000 {
            self.pump_all();
            let c = self.conns.get_mut(&conn)?;
            if let Some(ev) = c.queue.pop_front() {
                return Some(ev);
            }
            let next = self.next_deadline();
            if next > deadline {
                self.now = self.now.max(deadline);
                return None;
            }
            self.fire(next);
        }
        None
    }

    fn client_close(&mut self, conn: Conn, code: Option<u16>, reason: &str) -> Result<(), String> {
        let now = self.now;
        let c = self.conns.get_mut(&conn).ok_or("no such connection")?;
        if !c.done {
            c.sock.conn.handle_peer_close(now);
            // The codec answers a close frame with the same code and reason.
            c.queue.push_back((now, WireEvent::Close { code: code.unwrap_or(1005), reason: reason.to_string() }));
            c.queue.push_back((now, WireEvent::Ended));
            c.done = true;
        }
        self.drain(conn);
        self.pump_all();
        Ok(())
    }

    fn drop_conn(&mut self, conn: Conn) {
        let now = self.now;
        // The socket reports the transport's end when it is dropped (`MemorySocket`).
        if let Some(mut c) = self.conns.remove(&conn) {
            c.sock.at(now);
        }
        self.pump_all();
    }

    fn sleep_until(&mut self, t: Instant) {
        self.advance_to(t);
    }

    fn http(&mut self, req: &HttpReq) -> Result<HttpResp, String> {
        let upgrade = false;
        let headers = Self::head_headers(&req.headers, upgrade);
        let hv: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let path = req.path.split('?').next().unwrap_or("/");
        let head =
            RequestHead { method: &req.method, path, query: "", headers: &hv, remote: if req.remote { remote() } else { loopback() } };
        let unix = self.unix();
        Ok(match route(&self.hub, &head, self.now, unix) {
            HttpAction::ReadBody { .. } | HttpAction::GetResponse { .. } | HttpAction::Store(_) | HttpAction::ControlUi(_) => {
                return Err("API routes backed by IO are not driven in memory".into());
            }
            HttpAction::Respond(r) | HttpAction::RespondAfter(_, r) => {
                // What the shell adds: Content-Length of the body (also for HEAD), Connection.
                let mut headers: Vec<(String, String)> = r.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                headers.push(("Content-Length".into(), r.body.len().to_string()));
                if r.close {
                    headers.push(("Connection".into(), "close".into()));
                }
                let body = if req.method == "HEAD" { Vec::new() } else { r.body };
                HttpResp { status: r.status, headers, body }
            }
            HttpAction::Upgrade { accept_key, admission } => {
                drop(admission);
                HttpResp {
                    status: 101,
                    headers: vec![
                        ("Upgrade".into(), "websocket".into()),
                        ("Connection".into(), "Upgrade".into()),
                        ("Sec-WebSocket-Accept".into(), accept_key),
                    ],
                    body: Vec::new(),
                }
            }
        })
    }

    fn remote_peer(&self) -> bool {
        true
    }
}

/// Runs checks in memory, each on a fresh hub.
pub struct InMemoryRunner {
    pub env: Env,
}

impl Default for InMemoryRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryRunner {
    pub fn new() -> Self {
        InMemoryRunner {
            env: Env {
                secret: Secret::Token(TOKEN.into()),
                skip_slow: false,
                deterministic: true,
                default_timeout: Duration::from_secs(10),
            },
        }
    }

    pub fn run(&self, check: &Check) -> Outcome {
        let mut t = MemoryTransport::new();
        engine::run_check(&mut t, check, &self.env)
    }

    pub fn run_all(&self, checks: &[Check]) -> Vec<CheckResult> {
        checks.iter().map(|c| crate::report::result_of(c, self.run(c), 0)).collect()
    }
}
