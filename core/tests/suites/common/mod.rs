//! Shared harness of the core's integration tests: everything runs on *virtual* time.
//!
//! [`t0`] is the only place that reads the real clock; every other instant is `t0() + Duration`.
//! A [`Gw`] wraps a hub built from `loopback_token_settings("testtoken123", 18789)`; a [`Conn`]
//! wraps one `ServerConnection` plus its event sink and records everything it emits as [`Out`]s.
//! Every input method returns the outputs that input produced (after answering `Dispatch`es
//! inline with `methods::perform_without_io`, the shells' `methods::dispatch` without IO), and also appends them to
//! [`Conn::log`] with the virtual instant at which they were emitted.

#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clawgate_core::auth::ingress::RequestFacts;
use clawgate_core::connection::{Dispatch, Output, Phase};
use clawgate_core::gateway::{GatewaySettings, Hub};
use clawgate_core::testkit::memory::MemorySocket;
use clawgate_core::testkit::{loopback_token_settings, test_server_info};
use serde_json::{Value, json};

/// The configured shared token of every test gateway.
pub const TOKEN: &str = "testtoken123";
/// Port of the test gateway.
pub const PORT: u16 = 18789;
/// Wall-clock ms that corresponds to [`t0`].
pub const UNIX0: u64 = 1_795_602_626_311;

pub const MAX_PREAUTH: usize = 65_536;
pub const MAX_PAYLOAD: usize = 26_214_400;
pub const MAX_BUFFERED: usize = 52_428_800;

pub const TOKEN_MISMATCH_LOCAL: &str = "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)";
pub const TOKEN_MISMATCH_REMOTE: &str = "unauthorized: gateway token mismatch (set gateway.remote.token to match gateway.auth.token)";
pub const RATE_LIMITED: &str = "unauthorized: too many failed authentication attempts (retry later)";
pub const BUSY: &str = "The server is busy. Please try again in a moment.";

/// THE single read of the real clock in the whole test suite. Everything else is `t0() + d`.
#[allow(clippy::disallowed_methods)]
pub fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn loopback() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// A documentation-range, non-loopback client address.
pub fn remote_ip() -> IpAddr {
    "192.0.2.7".parse().unwrap()
}

/// Upgrade facts carrying a browser `Origin` header.
pub fn origin_facts(origin: &str) -> RequestFacts {
    RequestFacts { origin: Some(origin.to_string()), ..RequestFacts::default() }
}

// ---- frame builders ----------------------------------------------------------------------

/// A request frame.
pub fn req(id: &str, method: &str, params: Option<Value>) -> String {
    let mut f = json!({"type": "req", "id": id, "method": method});
    if let Some(p) = params {
        f["params"] = p;
    }
    f.to_string()
}

/// `connect` params of a client, like the reference CLI sends them.
pub fn client_params(client_id: &str, mode: &str, token: Option<&str>, scopes: &[&str]) -> Value {
    let mut p = json!({
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": {"id": client_id, "version": "2026.9.6", "platform": "linux", "deviceFamily": "Linux", "mode": mode,
                   "instanceId": "16e5ad26-0c26-44a9-ad34-6d5d9c78a97e"},
        "caps": [],
        "role": "operator",
        "scopes": scopes,
    });
    if let Some(t) = token {
        p["auth"] = json!({"token": t});
    }
    p
}

/// `cli`/`cli` connect params with `auth.token`.
pub fn cli_params(token: &str, scopes: &[&str]) -> Value {
    client_params("cli", "cli", Some(token), scopes)
}

/// A whole `connect` request frame.
pub fn connect_frame(id: &str, params: Value) -> String {
    req(id, "connect", Some(params))
}

/// A `cli`/`cli` connect frame with the right token and `operator.read`.
pub fn cli_connect(id: &str) -> String {
    connect_frame(id, cli_params(TOKEN, &["operator.read"]))
}

// ---- event sink --------------------------------------------------------------------------

/// What the hub hands one socket, kept in order (the shared in-memory socket's mailbox).
#[allow(unused_imports)]
pub use clawgate_core::testkit::memory::RecordingSink as Sink;

// ---- outputs -----------------------------------------------------------------------------

/// One recorded output of a `ServerConnection`.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A text frame, parsed.
    Frame(Value),
    /// A keepalive ping (empty payload).
    Ping,
    /// A run-ack barrier ping, with its token.
    BarrierPing(Vec<u8>),
    MaxSize(usize),
    /// A request handed to the shell (answered inline unless the connection holds dispatches).
    Dispatched {
        id: String,
        method: String,
    },
    Close(u16, String),
    Terminate,
}

/// Filters over a batch of outputs.
pub trait Outs {
    fn frames(&self) -> Vec<Value>;
    fn responses(&self) -> Vec<Value>;
    fn events(&self) -> Vec<Value>;
    fn events_named(&self, name: &str) -> Vec<Value>;
    fn response(&self, id: &str) -> Value;
    fn close(&self) -> Option<(u16, String)>;
    fn pings(&self) -> usize;
    fn terminated(&self) -> bool;
}

impl Outs for [Out] {
    fn frames(&self) -> Vec<Value> {
        self.iter().filter_map(|o| if let Out::Frame(v) = o { Some(v.clone()) } else { None }).collect()
    }
    fn responses(&self) -> Vec<Value> {
        self.frames().into_iter().filter(|f| f["type"] == "res").collect()
    }
    fn events(&self) -> Vec<Value> {
        self.frames().into_iter().filter(|f| f["type"] == "event").collect()
    }
    fn events_named(&self, name: &str) -> Vec<Value> {
        self.events().into_iter().filter(|f| f["event"] == name).collect()
    }
    /// The single response with this id (panics if there is not exactly one).
    fn response(&self, id: &str) -> Value {
        let r: Vec<Value> = self.responses().into_iter().filter(|f| f["id"] == id).collect();
        assert_eq!(r.len(), 1, "expected exactly one response with id {id:?} in {self:#?}");
        r.into_iter().next().unwrap()
    }
    fn close(&self) -> Option<(u16, String)> {
        let c: Vec<(u16, String)> =
            self.iter().filter_map(|o| if let Out::Close(c, r) = o { Some((*c, r.clone())) } else { None }).collect();
        assert!(c.len() <= 1, "more than one close: {c:?}");
        c.into_iter().next()
    }
    fn pings(&self) -> usize {
        self.iter().filter(|o| matches!(o, Out::Ping)).count()
    }
    fn terminated(&self) -> bool {
        self.iter().any(|o| matches!(o, Out::Terminate))
    }
}

impl Outs for Vec<Out> {
    fn frames(&self) -> Vec<Value> {
        self.as_slice().frames()
    }
    fn responses(&self) -> Vec<Value> {
        self.as_slice().responses()
    }
    fn events(&self) -> Vec<Value> {
        self.as_slice().events()
    }
    fn events_named(&self, name: &str) -> Vec<Value> {
        self.as_slice().events_named(name)
    }
    fn response(&self, id: &str) -> Value {
        self.as_slice().response(id)
    }
    fn close(&self) -> Option<(u16, String)> {
        self.as_slice().close()
    }
    fn pings(&self) -> usize {
        self.as_slice().pings()
    }
    fn terminated(&self) -> bool {
        self.as_slice().terminated()
    }
}

/// Assert a failed response: `(code, message)`; returns the error object.
pub fn assert_err(res: &Value, code: &str, message: &str) -> Value {
    assert_eq!(res["type"], "res", "{res}");
    assert_eq!(res["ok"], false, "{res}");
    assert_eq!(res["error"]["code"], code, "{res}");
    assert_eq!(res["error"]["message"], message, "{res}");
    res["error"].clone()
}

// ---- gateway -----------------------------------------------------------------------------

/// A test gateway: one hub on virtual time.
pub struct Gw {
    pub hub: Arc<Hub>,
    pub t0: Instant,
    next_conn: std::cell::Cell<u64>,
}

impl Default for Gw {
    fn default() -> Self {
        Self::new()
    }
}

impl Gw {
    /// Token auth (`testtoken123`) on loopback port 18789, default limits, started at `t0`.
    pub fn new() -> Self {
        Self::with_settings(loopback_token_settings(TOKEN, PORT))
    }

    pub fn with_settings(settings: GatewaySettings) -> Self {
        let t0 = t0();
        let hub = Hub::new(test_server_info(t0, UNIX0), settings, t0);
        Gw { hub, t0, next_conn: std::cell::Cell::new(1) }
    }

    /// Wall-clock ms of a virtual instant.
    pub fn unix(&self, now: Instant) -> u64 {
        unix_of(self.t0, now)
    }

    /// A socket from 127.0.0.1 without extra headers, opened at `now`.
    pub fn open(&self, now: Instant) -> Conn {
        self.open_from(loopback(), &RequestFacts::default(), now)
    }

    /// A socket from `ip` with these upgrade facts, opened at `now` (panics if refused).
    pub fn open_from(&self, ip: IpAddr, facts: &RequestFacts, now: Instant) -> Conn {
        let admission = self.hub.admit_upgrade(ip, facts).expect("upgrade admitted");
        let n = self.next_conn.get();
        self.next_conn.set(n + 1);
        let mut c = Conn {
            sock: MemorySocket::open(admission, n, now, self.unix(now)),
            hub: self.hub.clone(),
            t0: self.t0,
            now,
            log: Vec::new(),
            hold_dispatches: false,
            held: Vec::new(),
            opened: Vec::new(),
            auto_pong: false,
            outbound_buffered: 0,
        };
        c.opened = c.drain();
        c
    }

    /// Open a loopback socket and complete a `cli`/`cli` handshake with these scopes.
    pub fn open_cli(&self, now: Instant, scopes: &[&str]) -> (Conn, Value) {
        let mut c = self.open(now);
        let hello = c.connect_ok(cli_params(TOKEN, scopes));
        (c, hello)
    }
}

pub fn unix_of(t0: Instant, now: Instant) -> u64 {
    UNIX0 + now.duration_since(t0).as_millis() as u64
}

/// One server-side socket under test.
pub struct Conn {
    /// The socket, driven as the shells drive it (`conn`, `sink`: its mailbox).
    pub sock: MemorySocket,
    pub hub: Arc<Hub>,
    pub t0: Instant,
    /// The connection's current virtual time.
    pub now: Instant,
    /// Every output so far, with the virtual instant it was emitted at.
    pub log: Vec<(Instant, Out)>,
    /// When true, `Dispatch`es are kept in `held` instead of being answered (their permits stay
    /// taken until they are completed or dropped).
    pub hold_dispatches: bool,
    pub held: Vec<Dispatch>,
    /// What the socket emitted when it was created (max size + challenge).
    pub opened: Vec<Out>,
    /// Answer every ping with a pong right away (like a standard WebSocket peer).
    pub auto_pong: bool,
    /// The outbound backlog reported with every hub event fed by [`Conn::pump`].
    pub outbound_buffered: usize,
}

impl Conn {
    pub fn unix(&self) -> u64 {
        unix_of(self.t0, self.now)
    }

    pub fn phase(&self) -> Phase {
        self.sock.conn.phase()
    }

    /// Drain every pending output, answering `Dispatch`es inline (unless held).
    pub fn drain(&mut self) -> Vec<Out> {
        let mut outs = Vec::new();
        let mut answered = 0;
        loop {
            let from = outs.len();
            self.drain_once(&mut outs);
            if !self.auto_pong {
                break;
            }
            // A standard peer answers every ping; a barrier's pong echoes its token and releases
            // what the barrier held, which is drained too.
            let pings: Vec<Vec<u8>> = outs[from..]
                .iter()
                .filter_map(|o| match o {
                    Out::Ping => Some(Vec::new()),
                    Out::BarrierPing(t) => Some(t.clone()),
                    _ => None,
                })
                .collect();
            if pings.is_empty() || answered > 64 {
                break;
            }
            answered += 1;
            for p in pings {
                self.sock.conn.handle_pong(self.now, &p);
            }
        }
        outs
    }

    fn drain_once(&mut self, outs: &mut Vec<Out>) {
        while let Some(o) = self.sock.conn.poll_output() {
            let out = match o {
                Output::Send(text) => {
                    Out::Frame(serde_json::from_str(&text).unwrap_or_else(|e| panic!("server sent invalid JSON ({e}): {text}")))
                }
                Output::Ping(p) if p.is_empty() => Out::Ping,
                Output::Ping(p) => Out::BarrierPing(p),
                Output::SetMaxMessageSize(n) => Out::MaxSize(n),
                Output::Close { code, reason } => Out::Close(code, reason),
                Output::Terminate => Out::Terminate,
                Output::Dispatch(d) => {
                    let rec = Out::Dispatched { id: d.request_id.clone(), method: d.method.clone() };
                    if self.hold_dispatches {
                        self.held.push(*d);
                    } else {
                        let unix = self.unix();
                        self.sock.perform(&d, self.now, unix);
                        drop(d);
                    }
                    rec
                }
            };
            self.log.push((self.now, out.clone()));
            outs.push(out);
        }
    }

    // ---- inputs (each returns what it produced) ----

    pub fn text(&mut self, text: &str) -> Vec<Out> {
        self.sock.conn.handle_text(self.now, self.unix(), text);
        self.drain()
    }

    pub fn json(&mut self, v: &Value) -> Vec<Out> {
        self.text(&v.to_string())
    }

    pub fn binary(&mut self, data: &[u8]) -> Vec<Out> {
        self.sock.conn.handle_binary(self.now, self.unix(), data);
        self.drain()
    }

    /// Send a request and return everything it produced.
    pub fn request(&mut self, id: &str, method: &str, params: Option<Value>) -> Vec<Out> {
        self.text(&req(id, method, params))
    }

    /// Send a request and return its single response.
    pub fn call(&mut self, id: &str, method: &str, params: Option<Value>) -> Value {
        self.request(id, method, params).response(id)
    }

    /// An empty (keepalive) pong.
    pub fn pong(&mut self) -> Vec<Out> {
        self.pong_with(&[])
    }

    pub fn pong_with(&mut self, payload: &[u8]) -> Vec<Out> {
        self.sock.conn.handle_pong(self.now, payload);
        self.drain()
    }

    pub fn too_large(&mut self) -> Vec<Out> {
        self.sock.conn.handle_message_too_large(self.now);
        self.drain()
    }

    pub fn peer_close(&mut self) -> Vec<Out> {
        self.sock.conn.handle_peer_close(self.now);
        self.drain()
    }

    pub fn shutdown(&mut self, reason: &str) -> Vec<Out> {
        self.sock.conn.shutdown(self.now, reason);
        self.drain()
    }

    /// Complete the `i`-th held dispatch with `methods::perform_without_io` and drop it (frees its permit).
    pub fn complete_held(&mut self, i: usize) -> Vec<Out> {
        let d = self.held.remove(i);
        let unix = self.unix();
        self.sock.perform(&d, self.now, unix);
        drop(d);
        self.drain()
    }

    /// Feed the events the hub delivered to this socket, with this outbound backlog.
    pub fn pump_with(&mut self, outbound_buffered: usize) -> Vec<Out> {
        self.sock.deliver_mail(self.now, outbound_buffered);
        self.drain()
    }

    /// Feed the delivered events with the current `outbound_buffered` (0 unless set).
    pub fn pump(&mut self) -> Vec<Out> {
        self.pump_with(self.outbound_buffered)
    }

    /// Send `connect` with these params; assert `hello-ok` and return its payload.
    pub fn connect_ok(&mut self, params: Value) -> Value {
        let outs = self.text(&connect_frame("c1", params));
        let res = outs.response("c1");
        assert_eq!(res["ok"], true, "connect failed: {res}");
        assert_eq!(res["payload"]["type"], "hello-ok");
        assert_eq!(self.phase(), Phase::Open);
        res["payload"].clone()
    }

    /// Fire this connection's due timers (and the hub's), stepping through every deadline
    /// `<= target` in order, each at its exact instant; then set `now = target`.
    pub fn advance_to(&mut self, target: Instant) -> Vec<Out> {
        advance(&mut [self], target)
    }

    pub fn advance_by(&mut self, d: Duration) -> Vec<Out> {
        let target = self.now + d;
        self.advance_to(target)
    }

    /// Outputs emitted in `[from, to]` (virtual time), from the log.
    pub fn log_between(&self, from: Instant, to: Instant) -> Vec<Out> {
        self.log.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(_, o)| o.clone()).collect()
    }

    /// When the first output matching `f` was emitted.
    pub fn first_time(&self, f: impl Fn(&Out) -> bool) -> Option<Instant> {
        self.log.iter().find(|(_, o)| f(o)).map(|(t, _)| *t)
    }
}

/// Advance several sockets of one hub to `target`, firing every hub and socket deadline
/// `<= target` in chronological order at its exact instant. Hub broadcasts are fed to every
/// socket (with its `outbound_buffered`) as soon as they are produced. Returns all outputs, in order.
pub fn advance(conns: &mut [&mut Conn], target: Instant) -> Vec<Out> {
    assert!(!conns.is_empty());
    let hub = conns[0].hub.clone();
    let mut outs = Vec::new();
    loop {
        // An overdue hub timer (the test created sockets later without advancing the hub)
        // fires late, at the sockets' current time, like a late shell would.
        let floor = conns.iter().map(|c| c.now).max().unwrap();
        let hub_due = hub.poll_timeout().max(floor);
        for c in conns.iter() {
            if let Some(d) = c.sock.conn.poll_timeout() {
                assert!(d >= c.now, "deadline {:?} is already in the past (now {:?}): a timer was skipped", d - c.t0, c.now - c.t0);
            }
        }
        let conn_due = conns.iter().filter_map(|c| c.sock.conn.poll_timeout()).min();
        let next = match conn_due {
            Some(c) if c < hub_due => c,
            _ => hub_due,
        };
        if next > target {
            break;
        }
        for c in conns.iter_mut() {
            c.now = next;
        }
        if hub_due == next {
            let unix = unix_of(conns[0].t0, next);
            hub.handle_timeout(next, unix);
            assert!(hub.poll_timeout() > next, "hub timer did not move forward");
        }
        for c in conns.iter_mut() {
            outs.extend(c.pump());
            if c.sock.conn.poll_timeout().is_some_and(|d| d <= next) {
                let unix = c.unix();
                c.sock.conn.handle_timeout(next, unix);
                outs.extend(c.drain());
                assert!(c.sock.conn.poll_timeout().is_none_or(|d| d > next), "connection timer did not move forward");
            }
        }
    }
    for c in conns.iter_mut() {
        c.now = target;
    }
    outs
}
