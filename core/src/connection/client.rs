//! `ClientConnection`: the client side of the protocol, sans-IO (used by the CLI, the
//! conformance runner and the benchmarks). Feed it server text frames; it answers the
//! challenge with `connect`, tracks pending calls (including accepted-then-final replies),
//! checks event `seq` for gaps and watches for the tick timeout.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::wire::{EventFrame, PROTOCOL_VERSION, ResponseFrame, ServerFrame};

/// How to identify and authenticate.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub client_id: String,
    pub client_version: String,
    pub platform: String,
    pub mode: String,
    pub display_name: Option<String>,
    pub instance_id: Option<String>,
    pub role: String,
    pub scopes: Vec<String>,
    pub token: Option<String>,
    pub password: Option<String>,
    pub min_protocol: u64,
    pub max_protocol: u64,
    /// Give up if `hello-ok` has not arrived this long after the socket opened.
    pub connect_timeout: Duration,
}

impl ClientOptions {
    /// A `cli`/`cli` operator client, like `openclaw gateway call`.
    pub fn cli(scopes: &[&str]) -> Self {
        ClientOptions {
            client_id: "cli".into(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            platform: std::env::consts::OS.into(),
            mode: "cli".into(),
            display_name: None,
            instance_id: None,
            role: "operator".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            token: None,
            password: None,
            min_protocol: PROTOCOL_VERSION,
            max_protocol: PROTOCOL_VERSION,
            connect_timeout: Duration::from_secs(15),
        }
    }

    /// The local backend helper (`gateway-client`/`backend`), which clawgate's own operator
    /// commands connect as: on a loopback connection the gateway keeps its requested scopes
    /// with a shared secret, and accepts it without one when auth is `none` (config-auth-reload
    /// §4.5, device-less decision) — where a `cli` client without a device identity is refused.
    pub fn backend(scopes: &[&str], display_name: &str) -> Self {
        let mut o = ClientOptions::cli(scopes);
        o.client_id = "gateway-client".into();
        o.mode = "backend".into();
        o.display_name = Some(display_name.into());
        o
    }

    fn connect_params(&self) -> Value {
        let mut client = json!({
            "id": self.client_id,
            "version": self.client_version,
            "platform": self.platform,
            "mode": self.mode,
        });
        if let Some(d) = &self.display_name {
            client["displayName"] = json!(d);
        }
        if let Some(i) = &self.instance_id {
            client["instanceId"] = json!(i);
        }
        let mut p = json!({
            "minProtocol": self.min_protocol,
            "maxProtocol": self.max_protocol,
            "client": client,
            "caps": [],
            "role": self.role,
            "scopes": self.scopes,
        });
        let mut auth = serde_json::Map::new();
        if let Some(t) = &self.token {
            auth.insert("token".into(), json!(t));
        }
        if let Some(pw) = &self.password {
            auth.insert("password".into(), json!(pw));
        }
        if !auth.is_empty() {
            p["auth"] = Value::Object(auth);
        }
        p
    }
}

/// What the client must write.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientOutput {
    Send(String),
    Close { code: u16, reason: String },
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The challenge arrived (nonce, server ts).
    Challenge { nonce: String, ts: u64 },
    /// Handshake done; the full `hello-ok` payload.
    Hello(Value),
    /// The server refused the `connect`.
    ConnectFailed(ResponseFrame),
    /// A response to a call. `interim` is true for an `accepted` ack of an expect-final call.
    Response { id: String, frame: ResponseFrame, interim: bool },
    /// A server event (never the challenge).
    Event(EventFrame),
    /// `seq` jumped: events were lost (e.g. dropped while we were slow).
    Gap { expected: u64, received: u64 },
    /// A frame that is not valid protocol JSON.
    Malformed(String),
    /// No hello within the connect timeout, or no traffic for 2 × tickIntervalMs.
    TimedOut { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    AwaitingChallenge,
    AwaitingHello,
    Open,
    Closed,
}

/// Client side of one gateway WebSocket.
#[derive(Debug)]
pub struct ClientConnection {
    opts: ClientOptions,
    state: ClientState,
    next_id: u64,
    connect_id: String,
    id_prefix: String,
    pending: HashMap<String, bool>,
    out: VecDeque<ClientOutput>,
    /// Calls made before the challenge: written right after the `connect`.
    early: Vec<String>,
    events: VecDeque<ClientEvent>,
    last_seq: Option<u64>,
    deadline: Instant,
    tick_interval: Duration,
}

impl ClientConnection {
    /// `id_prefix` makes request ids unique (the reference CLI uses `<n>:<uuid>`).
    pub fn new(opts: ClientOptions, id_prefix: String, now: Instant) -> Self {
        let deadline = now + opts.connect_timeout;
        ClientConnection {
            opts,
            state: ClientState::AwaitingChallenge,
            next_id: 1,
            connect_id: String::new(),
            id_prefix,
            pending: HashMap::new(),
            out: VecDeque::new(),
            early: Vec::new(),
            events: VecDeque::new(),
            last_seq: None,
            deadline,
            tick_interval: Duration::from_millis(30_000),
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == ClientState::Open
    }

    pub fn is_closed(&self) -> bool {
        self.state == ClientState::Closed
    }

    fn alloc_id(&mut self) -> String {
        let id = format!("{}:{}", self.next_id, self.id_prefix);
        self.next_id += 1;
        id
    }

    /// Queue a request; returns its id. Calls made before `hello-ok` are sent right after the
    /// `connect` (the server queues them behind it).
    pub fn call(&mut self, method: &str, params: Option<Value>, expect_final: bool) -> String {
        let id = self.alloc_id();
        let mut frame = json!({"type": "req", "id": id, "method": method});
        if let Some(p) = params {
            frame["params"] = p;
        }
        self.pending.insert(id.clone(), expect_final);
        if self.state == ClientState::AwaitingChallenge {
            // The first frame on the wire must be the `connect` (spec §3).
            self.early.push(frame.to_string());
        } else {
            self.out.push_back(ClientOutput::Send(frame.to_string()));
        }
        id
    }

    /// Close from our side (1000).
    pub fn close(&mut self, reason: &str) {
        if self.state != ClientState::Closed {
            self.out.push_back(ClientOutput::Close { code: 1000, reason: reason.into() });
            self.state = ClientState::Closed;
        }
    }

    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.state != ClientState::Closed).then_some(self.deadline)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ClientState::Closed || now < self.deadline {
            return;
        }
        let (code, reason) = match self.state {
            ClientState::Open => (4000, "tick timeout"),
            _ => (4000, "connect timeout"),
        };
        self.events.push_back(ClientEvent::TimedOut { reason: reason.into() });
        self.out.push_back(ClientOutput::Close { code, reason: reason.into() });
        self.state = ClientState::Closed;
    }

    /// The server closed the socket.
    pub fn handle_closed(&mut self) {
        self.state = ClientState::Closed;
    }

    /// One text frame from the server.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        if self.state == ClientState::Closed {
            return;
        }
        let frame: ServerFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                self.events.push_back(ClientEvent::Malformed(e.to_string()));
                return;
            }
        };
        if self.state == ClientState::Open {
            self.deadline = now + self.tick_interval * 2;
        }
        match frame {
            ServerFrame::Event(ev) if ev.event == "connect.challenge" => {
                let p = ev.payload.unwrap_or(Value::Null);
                let nonce = p.get("nonce").and_then(Value::as_str).unwrap_or("").to_string();
                let ts = p.get("ts").and_then(Value::as_u64).unwrap_or(0);
                self.events.push_back(ClientEvent::Challenge { nonce, ts });
                if self.state == ClientState::AwaitingChallenge {
                    self.state = ClientState::AwaitingHello;
                    self.connect_id = self.alloc_id();
                    let frame = json!({"type": "req", "id": self.connect_id, "method": "connect", "params": self.opts.connect_params()});
                    // The connect goes before anything the app queued early.
                    self.out.push_front(ClientOutput::Send(frame.to_string()));
                    self.out.extend(self.early.drain(..).map(ClientOutput::Send));
                }
            }
            ServerFrame::Event(ev) => {
                if let Some(seq) = ev.seq {
                    if let Some(last) = self.last_seq {
                        if seq != last + 1 {
                            self.events.push_back(ClientEvent::Gap { expected: last + 1, received: seq });
                        }
                    }
                    self.last_seq = Some(seq);
                }
                self.events.push_back(ClientEvent::Event(ev));
            }
            ServerFrame::Res(res) => {
                let id = res.id.as_str().unwrap_or("").to_string();
                if self.state == ClientState::AwaitingHello && id == self.connect_id {
                    if res.ok {
                        let hello = res.payload.unwrap_or(Value::Null);
                        if let Some(t) = hello.pointer("/policy/tickIntervalMs").and_then(Value::as_u64) {
                            self.tick_interval = Duration::from_millis(t.max(1));
                        }
                        self.state = ClientState::Open;
                        self.deadline = now + self.tick_interval * 2;
                        self.events.push_back(ClientEvent::Hello(hello));
                    } else {
                        self.state = ClientState::Closed;
                        self.events.push_back(ClientEvent::ConnectFailed(res));
                    }
                    return;
                }
                let expect_final = self.pending.get(&id).copied().unwrap_or(false);
                let interim = expect_final
                    && res.ok
                    && res.payload.as_ref().and_then(|p| p.get("status")).and_then(Value::as_str) == Some("accepted");
                if !interim {
                    self.pending.remove(&id);
                }
                self.events.push_back(ClientEvent::Response { id, frame: res, interim });
            }
        }
    }

    /// Calls still waiting for their (final) response.
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }
}
