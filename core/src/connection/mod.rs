//! `ServerConnection`: the state machine of one gateway WebSocket (spec §3–§10).
//!
//! Shape (quinn-proto / str0m): the shell feeds complete WebSocket messages, pongs, peer closes,
//! hub broadcasts and request completions, each with `now`; after every input it drains
//! [`ServerConnection::poll_output`] until `None`, writes what it got, then sleeps until
//! [`ServerConnection::poll_timeout`] and calls [`ServerConnection::handle_timeout`].
//!
//! Invariants: nothing is emitted after `Output::Close` except (after the close grace)
//! `Output::Terminate`; inputs after close are ignored; protocol failures are outputs, never panics.

pub mod client;
pub mod client_target;
pub mod handshake;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::auth::device::{DeviceProof, DeviceToken, PairingSubject, SignedFields, TokenCheck};
use crate::auth::scopes::{self, Authorization, Role};
use crate::auth::{AuthFailure, AuthMethod, AuthReason, ClientCredentials, ClientKind, LimiterSubject, SharedAuth};
use crate::connection::handshake::{CHALLENGE_CAPABILITIES, ClientInfo, ConnectParams, Policy};
use crate::gateway::PairAttempt;
use crate::gateway::{Admission, Broadcast, ConnAuth, EventSink, GatewaySettings, Hub, RequestPermit};
use crate::limits::Limits;
pub use crate::wire::Reply;
use crate::wire::{self, ErrorShape, FrameError, PROTOCOL_VERSION, close_code, msg};

/// What the shell must do next.
#[derive(Debug)]
pub enum Output {
    /// Send one text frame.
    Send(String),
    /// Send a WebSocket ping with this payload (empty for the keepalive; a run-ack barrier
    /// token otherwise, echoed back in the pong).
    Ping(Vec<u8>),
    /// Apply a new maximum incoming message size to the WebSocket codec.
    SetMaxMessageSize(usize),
    /// Run a request and feed the result back with [`ServerConnection::complete`].
    Dispatch(Box<Dispatch>),
    /// Send a close frame with this code and reason; the connection is closing.
    Close { code: u16, reason: String },
    /// Drop the TCP connection now, without (further) close handshake.
    Terminate,
}

/// Who is calling a method.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub conn_id: String,
    pub role: Role,
    pub scopes: Vec<String>,
    pub client: ClientInfo,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| s == scopes::ADMIN)
    }
}

/// An authorized request for the shell to run.
#[derive(Debug)]
pub struct Dispatch {
    pub request_id: String,
    pub method: String,
    pub params: Option<Value>,
    pub caller: Caller,
    /// Holds the request's slot in the process-wide start queue until dropped.
    pub permit: RequestPermit,
}

/// Connection phase, for getters and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Challenge sent, waiting for `connect`.
    AwaitingConnect,
    /// A failed `connect` is being held back (loopback auth delay).
    ConnectPending,
    /// `hello-ok` sent.
    Open,
    /// Close frame sent; waiting for the peer or the close grace.
    Closing,
    /// Done; the shell should drop the socket.
    Closed,
}

struct PendingFailure {
    until: Instant,
    response: String,
    close_reason: String,
    queued_frames: usize,
}

struct Session {
    role: Role,
    scopes: Vec<String>,
    client: ClientInfo,
    seq: u64,
    next_ping: Instant,
    /// When the outstanding ping was sent (`None`: no ping awaiting its pong).
    ping_sent_at: Option<Instant>,
    unauthorized_role_streak: u32,
    /// The run-ack barrier being waited on, if any (see [`ServerConnection::complete_run_start`]).
    barrier: Option<AckBarrier>,
    /// Frames waiting behind the barrier, in order; `Held::Barrier` marks a later run's ack.
    held: VecDeque<Held>,
    /// Bytes in `held`, counted against the slow-consumer limit.
    held_bytes: usize,
    /// Last barrier token issued.
    barrier_tokens: u64,
}

/// A ping sent right behind a run's `accepted` answer; its pong proves the client has read
/// (and, being a later frame of the same or a later read, finished handling) that answer.
struct AckBarrier {
    token: u64,
    /// Past this the held frames go out without the pong (a client that does not answer pings).
    deadline: Instant,
}

enum Held {
    Frame(String),
    /// The frame before this was a run's answer: raise a new barrier here.
    Barrier,
}

impl Session {
    fn barrier_payload(token: u64) -> Vec<u8> {
        token.to_be_bytes().to_vec()
    }

    /// Raise a barrier right behind the frames already in `out`.
    fn raise_barrier(&mut self, out: &mut VecDeque<Output>, now: Instant, timeout: Duration) {
        self.barrier_tokens += 1;
        out.push_back(Output::Ping(Self::barrier_payload(self.barrier_tokens)));
        self.barrier = Some(AckBarrier { token: self.barrier_tokens, deadline: now + timeout });
    }

    /// The barrier fell: held frames go out, up to the next run's answer (which raises its own).
    fn release(&mut self, out: &mut VecDeque<Output>, now: Instant, timeout: Duration) {
        self.barrier = None;
        while let Some(h) = self.held.pop_front() {
            match h {
                Held::Frame(f) => {
                    self.held_bytes -= f.len();
                    out.push_back(Output::Send(f));
                }
                Held::Barrier => {
                    self.raise_barrier(out, now, timeout);
                    return;
                }
            }
        }
    }

    /// Everything held goes out now (the socket is closing).
    fn release_all(&mut self, out: &mut VecDeque<Output>) {
        self.barrier = None;
        self.held_bytes = 0;
        out.extend(self.held.drain(..).filter_map(|h| match h {
            Held::Frame(f) => Some(Output::Send(f)),
            Held::Barrier => None,
        }));
    }
}

enum State {
    AwaitingConnect,
    ConnectPending(PendingFailure),
    Open(Box<Session>),
    Closing { terminate_at: Instant },
    Closed,
}

/// The server side of one gateway WebSocket.
pub struct ServerConnection {
    hub: Arc<Hub>,
    admission: Admission,
    conn_id: String,
    limits: Limits,
    state: State,
    out: VecDeque<Output>,
    handshake_deadline: Instant,
    registered: bool,
    /// The challenge nonce device proofs must sign.
    nonce: String,
}

impl ServerConnection {
    /// Open a connection: queues `connect.challenge` and arms the handshake timeout.
    /// `nonce` and `conn_id` are random UUIDs supplied by the shell; `sink` receives broadcasts.
    pub fn new(admission: Admission, conn_id: String, nonce: String, sink: Arc<dyn EventSink>, now: Instant, unix_ms: u64) -> Self {
        let hub = admission.hub().clone();
        let limits = hub.settings().limits;
        hub.register(&conn_id, sink);
        let mut c = ServerConnection {
            hub,
            admission,
            conn_id,
            limits,
            state: State::AwaitingConnect,
            out: VecDeque::new(),
            handshake_deadline: now + limits.handshake_timeout,
            registered: true,
            nonce: nonce.clone(),
        };
        let payload = json!({"nonce": nonce, "ts": unix_ms, "capabilities": CHALLENGE_CAPABILITIES});
        c.out.push_back(Output::SetMaxMessageSize(limits.preauth_max_payload));
        c.out.push_back(Output::Send(wire::event_frame("connect.challenge", Some(&payload.to_string()), None, None)));
        c
    }

    pub fn conn_id(&self) -> &str {
        &self.conn_id
    }

    pub fn phase(&self) -> Phase {
        match self.state {
            State::AwaitingConnect => Phase::AwaitingConnect,
            State::ConnectPending(_) => Phase::ConnectPending,
            State::Open(_) => Phase::Open,
            State::Closing { .. } => Phase::Closing,
            State::Closed => Phase::Closed,
        }
    }

    /// Effective role and scopes once open.
    pub fn principal(&self) -> Option<(Role, &[String])> {
        match &self.state {
            State::Open(s) => Some((s.role, &s.scopes)),
            _ => None,
        }
    }

    /// Next output to act on.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest instant at which [`Self::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::AwaitingConnect => Some(self.handshake_deadline),
            // The handshake timeout still applies while a failed connect is held back.
            State::ConnectPending(p) => Some(p.until.min(self.handshake_deadline)),
            State::Open(s) => Some(s.barrier.as_ref().map_or(s.next_ping, |b| b.deadline.min(s.next_ping))),
            State::Closing { terminate_at } => Some(*terminate_at),
            State::Closed => None,
        }
    }

    fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing { .. } | State::Closed)
    }

    fn close(&mut self, now: Instant, code: u16, reason: &str) {
        if self.is_closing() {
            return;
        }
        // What the barrier held was already promised to the client (answers, events): it goes
        // out before the close frame.
        if let State::Open(s) = &mut self.state {
            s.release_all(&mut self.out);
        }
        self.out.push_back(Output::Close { code, reason: wire::truncate_close_reason(reason) });
        self.state = State::Closing { terminate_at: now + self.limits.close_grace };
        self.unregister(now);
    }

    fn unregister(&mut self, now: Instant) {
        if std::mem::take(&mut self.registered) {
            let unix = self.hub.unix_ms_at(now);
            self.hub.unregister(&self.conn_id, now, unix);
        }
    }

    fn send(&mut self, frame: String) {
        match &mut self.state {
            State::Closing { .. } | State::Closed => {}
            State::Open(s) if s.barrier.is_some() => {
                s.held_bytes += frame.len();
                s.held.push_back(Held::Frame(frame));
            }
            _ => self.out.push_back(Output::Send(frame)),
        }
    }

    // ---- inputs ------------------------------------------------------------------------

    /// One complete text message.
    pub fn handle_text(&mut self, now: Instant, unix_ms: u64, text: &str) {
        match &mut self.state {
            State::Closing { .. } | State::Closed => {}
            State::ConnectPending(p) => {
                p.queued_frames += 1;
                if p.queued_frames > self.limits.max_pending_handshake_frames {
                    // The held connect failure is never sent.
                    self.close(now, close_code::POLICY_VIOLATION, msg::TOO_MANY_PENDING_HANDSHAKE_FRAMES);
                }
            }
            State::AwaitingConnect => self.handle_first_frame(now, unix_ms, text),
            State::Open(_) => self.handle_request_text(now, text),
        }
    }

    /// One complete binary message: decoded as UTF-8 and handled like text (spec §1).
    pub fn handle_binary(&mut self, now: Instant, unix_ms: u64, data: &[u8]) {
        match std::str::from_utf8(data) {
            Ok(text) => self.handle_text(now, unix_ms, text),
            // Undecodable bytes are "not JSON": fatal before the handshake, ignored after.
            Err(_) => self.handle_text(now, unix_ms, "\u{0}"),
        }
    }

    /// The codec refused a message above the current maximum size: close 1009 with no reason.
    pub fn handle_message_too_large(&mut self, now: Instant) {
        self.close(now, close_code::MESSAGE_TOO_BIG, "");
    }

    /// A pong arrived with this payload.
    pub fn handle_pong(&mut self, now: Instant, payload: &[u8]) {
        if let State::Open(s) = &mut self.state {
            // Any pong shows the peer alive (keepalive, spec §1.1).
            s.ping_sent_at = None;
            if s.barrier.as_ref().is_some_and(|b| payload == Session::barrier_payload(b.token).as_slice()) {
                s.release(&mut self.out, now, self.limits.run_ack_barrier_timeout);
            }
        }
    }

    /// The peer sent a close frame (the codec answers it); the connection is over.
    pub fn handle_peer_close(&mut self, now: Instant) {
        self.unregister(now);
        self.state = State::Closed;
    }

    /// The transport ended (EOF, reset, write failure). The shell reports it exactly once per
    /// socket, also when it drops the socket for any other reason: the hub forgets the socket
    /// here (a dropped `ServerConnection` changes no shared state).
    pub fn handle_transport_closed(&mut self, now: Instant) {
        self.unregister(now);
        self.state = State::Closed;
    }

    /// Fire due timers.
    pub fn handle_timeout(&mut self, now: Instant, unix_ms: u64) {
        let _ = unix_ms;
        match &mut self.state {
            State::AwaitingConnect => {
                if now >= self.handshake_deadline {
                    self.close(now, close_code::NORMAL, "");
                }
            }
            State::ConnectPending(p) => {
                if now >= self.handshake_deadline && self.handshake_deadline < p.until {
                    // No successful connect within the handshake timeout (spec §1.1): the held
                    // failure, due later, is never sent.
                    self.close(now, close_code::NORMAL, "");
                } else if now >= p.until {
                    let response = std::mem::take(&mut p.response);
                    let reason = std::mem::take(&mut p.close_reason);
                    self.out.push_back(Output::Send(response));
                    self.close(now, close_code::POLICY_VIOLATION, &reason);
                }
            }
            State::Open(s) => {
                if s.barrier.as_ref().is_some_and(|b| now >= b.deadline) {
                    s.release(&mut self.out, now, self.limits.run_ack_barrier_timeout);
                }
                if now >= s.next_ping {
                    let interval = self.limits.ping_interval;
                    match s.ping_sent_at {
                        // Unanswered for two intervals (the reference's check after the pong
                        // window): end the socket without a close frame; the peer sees 1006,
                        // 75 s after auth. Measured from the ping, so a late timer cannot
                        // shorten the pong window.
                        Some(sent) if now >= sent + interval * 2 => {
                            self.out.push_back(Output::Terminate);
                            self.unregister(now);
                            self.state = State::Closed;
                        }
                        // Still waiting: no further pings; check again when the window ends.
                        Some(sent) => s.next_ping = (now + interval).min(sent + interval * 2),
                        None => {
                            s.ping_sent_at = Some(now);
                            s.next_ping = now + interval;
                            self.out.push_back(Output::Ping(Vec::new()));
                        }
                    }
                }
            }
            State::Closing { terminate_at } => {
                if now >= *terminate_at {
                    self.out.push_back(Output::Terminate);
                    self.state = State::Closed;
                }
            }
            State::Closed => {}
        }
    }

    /// A hub broadcast arrived; `outbound_buffered` is what the shell has not yet written.
    pub fn handle_event(&mut self, now: Instant, event: &Broadcast, outbound_buffered: usize) {
        let State::Open(s) = &mut self.state else { return };
        if !scopes::event_allowed(s.role, &s.scopes, &event.gate) {
            return;
        }
        s.seq += 1;
        let seq = s.seq;
        if outbound_buffered.saturating_add(s.held_bytes) > self.limits.max_buffered_bytes {
            if event.drop_if_slow {
                // The skipped event still consumed its seq: the client sees the gap.
                return;
            }
            self.close(now, close_code::POLICY_VIOLATION, msg::SLOW_CONSUMER);
            return;
        }
        let frame = wire::event_frame(&event.event, event.payload.as_deref(), Some(seq), event.state_version);
        self.send(frame);
    }

    /// Send an event to this socket only (e.g. the post-connect health snapshot).
    pub fn send_event(&mut self, event: &str, payload: &Value, state_version: Option<wire::StateVersion>) {
        let State::Open(s) = &mut self.state else { return };
        s.seq += 1;
        let frame = wire::event_frame(event, Some(&payload.to_string()), Some(s.seq), state_version);
        self.send(frame);
    }

    /// The result of a dispatched request.
    pub fn complete(&mut self, request_id: &str, reply: Reply) {
        // Only an open socket has dispatched requests to answer.
        if !matches!(self.state, State::Open(_)) {
            return;
        }
        self.send(response_frame(request_id, reply));
    }

    /// The `accepted` answer of a run this socket started (`chat.send`, `agent`).
    ///
    /// Everything this socket sends next (the run's events, its final answer, anything else)
    /// waits until the client has read this answer: a ping goes out right behind it and its pong
    /// releases them (after `run_ack_barrier_timeout` they go anyway). A run can finish within a
    /// millisecond (a fast upstream, an error); without the barrier its events share the answer's
    /// TCP read and a client that handles a read's messages before the answer's continuation
    /// (the openclaw TUI on Node `ws`) sees the run end before it started and stays "busy".
    /// The reference's answer always arrives alone, its first event >= 75 ms later (capture in
    /// `testdata/captures/fast-run-order/`).
    pub fn complete_run_start(&mut self, now: Instant, request_id: &str, reply: Reply) {
        let State::Open(s) = &mut self.state else { return };
        let frame = response_frame(request_id, reply);
        if s.barrier.is_some() {
            s.held_bytes += frame.len();
            s.held.push_back(Held::Frame(frame));
            s.held.push_back(Held::Barrier);
        } else {
            self.out.push_back(Output::Send(frame));
            s.raise_barrier(&mut self.out, now, self.limits.run_ack_barrier_timeout);
        }
    }

    /// One piece of the socket's mail (what the hub handed its [`EventSink`], in order): an
    /// event (with the socket's unflushed outbound bytes, for the slow-consumer rule), a late
    /// answer, a revocation, the gateway's shutdown. Every shell and harness feeds its mailbox
    /// through here.
    pub fn handle_mail(&mut self, now: Instant, mail: Mail, outbound_buffered: usize) {
        match mail {
            Mail::Event(ev) => self.handle_event(now, &ev, outbound_buffered),
            Mail::Complete(id, reply) => self.complete(&id, *reply),
            Mail::Close(code, reason) => self.revoke(now, code, &reason),
            Mail::Shutdown(reason) => self.shutdown(now, &reason),
        }
    }

    /// The socket lost its admission (e.g. the shared secret was rotated): close it.
    pub fn revoke(&mut self, now: Instant, code: u16, reason: &str) {
        self.close(now, code, reason);
    }

    /// Graceful shutdown: `shutdown` event to an authenticated socket, then close 1012.
    pub fn shutdown(&mut self, now: Instant, reason: &str) {
        if self.is_closing() {
            return;
        }
        if let State::Open(_) = self.state {
            self.send_event("shutdown", &json!({ "reason": reason }), None);
        }
        self.close(now, close_code::SERVICE_RESTART, msg::SERVICE_RESTART);
    }

    // ---- handshake ---------------------------------------------------------------------

    fn client_kind(&self, client: &ClientInfo) -> ClientKind {
        ClientKind {
            cli: client.is_cli(),
            operator_ui: client.is_operator_ui(),
            webchat: client.is_webchat(),
            local: self.admission.attribution.is_direct_local(),
        }
    }

    fn fail_connect(&mut self, now: Instant, id: &str, error: ErrorShape, close: u16) {
        // The reference names the pairing request in the close reason, so a client that only
        // sees the close can still show the id to approve.
        let request_id = error.details.as_ref().and_then(|d| d.get("requestId")).and_then(Value::as_str);
        let reason = match request_id {
            Some(rid) if error.code == crate::wire::error_code::NOT_PAIRED => format!("{} (requestId: {rid})", error.message),
            _ => error.message.clone(),
        };
        self.send(wire::response_err(&Value::String(id.to_string()), None, &error));
        self.close(now, close, &reason);
    }

    fn handle_first_frame(&mut self, now: Instant, unix_ms: u64, text: &str) {
        let req = match wire::parse_request(text) {
            Ok(r) => r,
            Err(FrameError::NotJson) => return self.close(now, close_code::NORMAL, ""),
            Err(FrameError::NotRequest { .. }) => return self.close(now, close_code::POLICY_VIOLATION, msg::INVALID_REQUEST_FRAME),
        };
        if req.method != "connect" {
            return self.fail_connect(
                now,
                &req.id,
                ErrorShape::invalid_request(msg::FIRST_REQUEST_MUST_BE_CONNECT),
                close_code::POLICY_VIOLATION,
            );
        }
        let params = match handshake::parse_connect_params(req.params.as_ref()) {
            Ok(p) => p,
            Err(e) => return self.fail_connect(now, &req.id, e, close_code::POLICY_VIOLATION),
        };
        if let Err(e) = handshake::negotiate(&params) {
            return self.fail_connect(now, &req.id, e, close_code::PROTOCOL_ERROR);
        }
        let role = match handshake::resolve_role(&params) {
            Ok(r) => r,
            Err(e) => return self.fail_connect(now, &req.id, e, close_code::POLICY_VIOLATION),
        };
        // Browser clients must present an acceptable Origin; anyone who sends one is checked.
        let browser_client = params.client.is_browser_operator_ui() || params.client.is_webchat();
        let origin = self.admission.facts.origin.clone();
        if origin.is_some() || browser_client {
            let verdict = match &origin {
                Some(o) => origin_verdict(o, &self.admission, &self.hub.settings()),
                None => Err(crate::auth::origin::OriginDeny::MissingOrInvalid),
            };
            if let Err(deny) = verdict {
                let e = ErrorShape::invalid_request(msg::ORIGIN_NOT_ALLOWED).with_details(json!({
                    "code": wire::details_code::CONTROL_UI_ORIGIN_NOT_ALLOWED,
                    "reason": deny.as_str(),
                }));
                return self.fail_connect(now, &req.id, e, close_code::POLICY_VIOLATION);
            }
        }
        self.authenticate(now, unix_ms, &req.id, params, role);
    }

    fn limiter_subject(&self) -> (LimiterSubject, bool) {
        let browser = self.admission.facts.origin.is_some();
        let subject = match (&self.admission.facts.origin, self.admission.attribution.is_direct_local()) {
            // Keyed by the parsed, bounded origin: junk values never grow the limiter map.
            (Some(origin), true) => match crate::auth::origin::limiter_key(origin) {
                Some(key) => LimiterSubject::BrowserOrigin(key),
                None => LimiterSubject::ip(self.admission.ip),
            },
            _ => LimiterSubject::ip(self.admission.ip),
        };
        (subject, browser)
    }

    /// Answer a failed authentication: at once, or held back for the loopback delay.
    fn fail_auth(&mut self, now: Instant, id: &str, failure: AuthFailure, kind: ClientKind) {
        let error = failure.to_error(kind);
        match failure.delay {
            Some(delay) if delay > Duration::ZERO => {
                let reason = error.message.clone();
                let response = wire::response_err(&Value::String(id.to_string()), None, &error);
                self.state = State::ConnectPending(PendingFailure { until: now + delay, response, close_reason: reason, queued_frames: 0 });
            }
            _ => self.fail_connect(now, id, error, close_code::POLICY_VIOLATION),
        }
    }

    fn authenticate(&mut self, now: Instant, unix_ms: u64, id: &str, params: ConnectParams, role: Role) {
        let kind = self.client_kind(&params.client);
        let device = params.device.as_ref().and_then(DeviceProof::from_value);
        // Operator UIs (Control UI, browser copilot, TUI) never connect without a device.
        if device.is_none() && kind.operator_ui {
            let e = ErrorShape::invalid_request(msg::CONTROL_UI_DEVICE_IDENTITY_REQUIRED)
                .with_details(json!({"code": wire::details_code::CONTROL_UI_DEVICE_IDENTITY_REQUIRED}));
            return self.fail_connect(now, id, e, close_code::POLICY_VIOLATION);
        }
        let creds = ClientCredentials { token: params.auth_token.clone(), password: params.auth_password.clone() };
        let (subject, browser) = self.limiter_subject();
        let is_local = self.admission.attribution.is_direct_local();
        let has_origin = self.admission.facts.origin.is_some();

        // 1. The shared secret; a mismatch is recorded only after the device token is tried.
        let mut method = None;
        let mut failure = None;
        let mut missing = None;
        let settings = self.hub.settings();
        let proxy = match (&settings.auth.mode, &settings.trusted_proxy) {
            (crate::auth::AuthMode::TrustedProxy, Some(tp)) => Some(crate::auth::trusted_proxy_check(
                self.admission.remote,
                &self.admission.attribution,
                &self.admission.facts,
                tp,
                &settings.trusted_proxies,
                settings.local_interfaces.as_deref(),
            )),
            _ => None,
        };
        match proxy {
            Some(Ok(_user)) => method = Some(AuthMethod::TrustedProxy),
            // The proxy check failed: a direct-local client may still use the local password
            // (auth.password only); otherwise the proxy's reason — unless nothing was sent.
            Some(Err(reason)) => {
                let local_password = is_local && settings.auth.password.is_some() && params.auth_password.is_some();
                if local_password {
                    let pw = ClientCredentials { token: None, password: params.auth_password.clone() };
                    let mut pw_settings = (*settings).clone();
                    pw_settings.auth.mode = crate::auth::AuthMode::Password;
                    match self.hub.shared_check_with(&pw_settings.auth, now, &pw, &subject, browser) {
                        SharedAuth::Ok(m) => method = Some(m),
                        SharedAuth::Failed(f) => failure = Some(f),
                        SharedAuth::NoCredentials(r) => missing = Some(r),
                    }
                } else if creds.any() {
                    let mut f = AuthFailure::new(AuthReason::TrustedProxy);
                    f.detail = Some(reason);
                    failure = Some(f);
                }
            }
            None => match self.hub.shared_check(now, &creds, &subject, browser) {
                SharedAuth::Ok(m) => method = Some(m),
                SharedAuth::Failed(f) => failure = Some(f),
                SharedAuth::NoCredentials(reason) => missing = Some(reason),
            },
        }
        // 2. The device token (spec §4.9): only with a device identity, while unauthenticated.
        let mut grant = None;
        if let (None, Some(d)) = (method, &device) {
            let locked = failure.as_ref().is_some_and(|f: &AuthFailure| f.reason == AuthReason::RateLimited);
            let candidate = params.auth_device_token.as_deref().or(params.auth_token.as_deref());
            if let (false, Some(candidate)) = (locked, candidate) {
                match self.hub.check_device_token(&d.id, role, &params.scopes, candidate) {
                    TokenCheck::Ok(t) => {
                        method = Some(AuthMethod::DeviceToken);
                        failure = None;
                        grant = Some(t);
                    }
                    TokenCheck::ScopeMismatch => failure = Some(AuthFailure::new(AuthReason::ScopeMismatch)),
                    TokenCheck::Mismatch if params.auth_device_token.is_some() => {
                        failure = Some(AuthFailure::new(AuthReason::DeviceTokenMismatch))
                    }
                    TokenCheck::Mismatch => {}
                }
            }
        }
        // 3. Still unauthenticated: the (deferred) failure now counts.
        if method.is_none() {
            if let Some(mut f) = failure {
                if f.is_mismatch() {
                    f.delay = self.hub.record_shared_failure(now, &subject, browser);
                    f.can_retry_with_device_token = f.reason == AuthReason::TokenMismatch
                        && device.is_some()
                        && params.auth_token.is_some()
                        && params.auth_device_token.is_none();
                }
                return self.fail_auth(now, id, f, kind);
            }
        }
        let Some(d) = device else {
            return self.open_deviceless(now, unix_ms, id, params, role, method, is_local, has_origin);
        };
        // A device alone does not authenticate: the gateway's secret (or a device token) must
        // come with it.
        let Some(method) = method else {
            return self.fail_auth(now, id, AuthFailure::new(missing.unwrap_or(AuthReason::TokenMissing)), kind);
        };
        // 4. The device proof over this socket's challenge (spec §4.5).
        let signed_token = params.auth_token.as_deref().or(params.auth_device_token.as_deref()).or(params.auth_bootstrap_token.as_deref());
        let fields = SignedFields {
            client_id: &params.client.id,
            client_mode: &params.client.mode,
            role: role.as_str(),
            scopes: &params.scopes,
            token: signed_token.unwrap_or(""),
            platform: Some(params.client.platform.as_str()),
            device_family: params.client.device_family.as_deref(),
        };
        if let Err(e) = crate::auth::device::verify_proof(&d, &fields, &self.nonce, unix_ms) {
            return self.fail_connect(now, id, e.to_error(), close_code::POLICY_VIOLATION);
        }
        // 5. Pairing (spec §5.5): a device token proves it; local devices are approved silently.
        let mut scopes = if role == Role::Node { Vec::new() } else { params.scopes.clone() };
        if let Some(cap) = &self.admission.facts.scope_cap {
            scopes.retain(|s| cap.contains(s));
        }
        let grant = match grant {
            Some(g) => g,
            None => {
                let browser_ok = !has_origin || params.client.is_browser_operator_ui() || params.client.is_webchat();
                let attempt = PairAttempt {
                    subject: PairingSubject { proof: &d, role, scopes: &scopes, client: &params.client },
                    local_silent: is_local && browser_ok && self.hub.settings().pairing_auto_approve_local,
                    shared_secret: matches!(method, AuthMethod::None | AuthMethod::Token | AuthMethod::Password | AuthMethod::TrustedProxy),
                };
                match self.hub.pair_device(unix_ms, &attempt) {
                    Ok(g) => g,
                    Err(e) => return self.fail_connect(now, id, e, close_code::POLICY_VIOLATION),
                }
            }
        };
        self.open(now, unix_ms, id, params, role, scopes, method.as_str(), Some((d.id.as_str(), &grant)));
    }

    /// Device-less decision (spec §5.4): an operator that passed the shared secret, or the local
    /// backend helper when auth mode is `none`; everything else needs a device identity.
    #[allow(clippy::too_many_arguments)]
    fn open_deviceless(
        &mut self,
        now: Instant,
        unix_ms: u64,
        id: &str,
        params: ConnectParams,
        role: Role,
        method: Option<AuthMethod>,
        is_local: bool,
        has_origin: bool,
    ) {
        let backend_helper = params.client.id == "gateway-client" && params.client.mode == "backend" && is_local;
        let allowed = role == Role::Operator
            && match method {
                Some(AuthMethod::Token | AuthMethod::Password | AuthMethod::TrustedProxy) => true,
                Some(AuthMethod::None) => backend_helper,
                Some(AuthMethod::DeviceToken) | None => false,
            };
        if !allowed {
            return self.fail_connect(now, id, handshake::device_identity_required(), close_code::POLICY_VIOLATION);
        }
        let auth_method = method.unwrap_or(AuthMethod::None);
        let mut scopes =
            if handshake::keeps_requested_scopes(&params.client, has_origin, is_local) { params.scopes.clone() } else { Vec::new() };
        if let Some(cap) = &self.admission.facts.scope_cap {
            scopes.retain(|s| cap.contains(s));
        }
        self.open(now, unix_ms, id, params, role, scopes, auth_method.as_str(), None);
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        now: Instant,
        unix_ms: u64,
        id: &str,
        params: ConnectParams,
        role: Role,
        scopes: Vec<String>,
        auth_method: &'static str,
        device: Option<(&str, &DeviceToken)>,
    ) {
        self.admission.release_slot();
        // The upgrade's headers are not needed past the handshake.
        self.admission.facts.all = Vec::new();
        let presence = params.client.is_presence_tracked().then(|| {
            let mut e = self.presence_entry(&params, role, &scopes, unix_ms);
            if let Some((device_id, _)) = device {
                e["deviceId"] = json!(device_id);
            }
            e
        });
        let conn_auth = ConnAuth {
            role,
            scopes: scopes.clone(),
            method: auth_method,
            origin: self.admission.facts.origin.clone(),
            host: self.admission.facts.host.clone(),
            local: self.admission.attribution.is_direct_local(),
            device_id: device.map(|(id, _)| id.to_string()),
        };
        let snap = self.hub.mark_authenticated(&self.conn_id, conn_auth, presence, now, unix_ms);
        let hello = self.hello_ok_json(now, &scopes, role, auth_method, &snap, device.map(|(_, grant)| grant));
        self.out.push_back(Output::SetMaxMessageSize(self.limits.max_payload));
        self.send(wire::response_ok_json(id, &hello));
        self.state = State::Open(Box::new(Session {
            role,
            scopes,
            client: params.client,
            seq: 0,
            next_ping: now + self.limits.ping_interval,
            ping_sent_at: None,
            unauthorized_role_streak: 0,
            barrier: None,
            held: VecDeque::new(),
            held_bytes: 0,
            barrier_tokens: 0,
        }));
        // Post-connect health snapshot for this socket (the reference refreshes after connect).
        if let State::Open(s) = &mut self.state {
            s.seq += 1;
            let frame = wire::event_frame("health", Some(&snap.health_json), Some(s.seq), Some(snap.state_version));
            self.send(frame);
        }
    }

    fn presence_entry(&self, p: &ConnectParams, role: Role, scopes: &[String], unix_ms: u64) -> Value {
        let c = &p.client;
        let mut e = json!({
            "clientId": c.id,
            "ip": self.admission.ip.to_string(),
            "version": c.version,
            "platform": c.platform,
            "mode": c.mode,
            "reason": "connect",
            "ts": unix_ms,
            "onlineSince": unix_ms,
            "roles": [role.as_str()],
            "scopes": scopes,
        });
        let obj = e.as_object_mut().expect("object literal");
        if let Some(v) = &c.display_name {
            obj.insert("host".into(), json!(v));
            obj.insert("text".into(), json!(format!("{} · {} · mode {}", v, c.platform, c.mode)));
        }
        if let Some(v) = &c.device_family {
            obj.insert("deviceFamily".into(), json!(v));
        }
        if let Some(v) = &c.model_identifier {
            obj.insert("modelIdentifier".into(), json!(v));
        }
        if let Some(v) = &c.time_zone {
            obj.insert("timeZone".into(), json!(v));
        }
        if let Some(v) = &c.instance_id {
            obj.insert("instanceId".into(), json!(v));
        }
        e
    }

    /// `hello-ok`'s payload, serialized straight from typed parts (spec protocol §4, the
    /// reference's key order): the snapshot's health is the hub's cached text spliced in, never
    /// a tree copied and serialized again per handshake (issue 17).
    fn hello_ok_json(
        &self,
        now: Instant,
        scopes: &[String],
        role: Role,
        auth_method: &str,
        snap: &crate::gateway::HelloSnapshot,
        device: Option<&DeviceToken>,
    ) -> String {
        let hub = &self.hub;
        let info = hub.info();
        let settings = hub.settings();
        let is_admin = scopes.iter().any(|s| s == scopes::ADMIN);
        let server = HelloServer {
            version: &info.version,
            boot_id: &info.boot_id,
            conn_id: &self.conn_id,
            build_id: info.build_id.as_deref(),
            // The UI we serve comes from a directory the user configured (we bundle none): the
            // official UI then skips its "server updated, refresh" build comparison
            // (control-ui.md §3.6), which would otherwise compare its own version with ours
            // forever.
            control_ui_build_source: settings.api.control_ui.root.is_some().then_some("configured"),
        };
        let features = HelloFeatures {
            methods: crate::connection::handshake::ADVERTISED_METHODS,
            events: handshake::ADVERTISED_EVENTS,
            capabilities: [],
        };
        // The snapshot's fields after `health`; its opening brace is dropped where it is spliced.
        let tail = HelloSnapshotTail {
            state_version: snap.state_version,
            uptime_ms: hub.uptime_ms(now),
            applied_config_hash: settings.applied_config_hash(),
            session_defaults: crate::sessions::hello_session_defaults(&settings.api),
            config_path: is_admin.then_some(info.config_path.as_str()),
            state_dir: is_admin.then_some(info.state_dir.as_str()),
            auth_mode: is_admin.then_some(settings.auth.mode.as_str()),
        };
        let auth = HelloAuth {
            role: role.as_str(),
            scopes,
            method: auth_method,
            recovery_migration_allowed: (device.is_some() && role == Role::Operator).then_some(true),
            device_token: device.map(|d| d.token.as_str()),
            issued_at_ms: device.map(|d| d.issued_at_ms),
        };
        let policy = Policy {
            max_payload: self.limits.max_payload,
            max_buffered_bytes: self.limits.max_buffered_bytes,
            tick_interval_ms: self.limits.tick_interval.as_millis() as u64,
        };
        let tail_json = json_text(&tail);
        let mut out = String::with_capacity(4096 + snap.health_json.len());
        out.push_str("{\"type\":\"hello-ok\",\"protocol\":");
        out.push_str(&PROTOCOL_VERSION.to_string());
        out.push_str(",\"server\":");
        out.push_str(&json_text(&server));
        out.push_str(",\"features\":");
        out.push_str(&json_text(&features));
        out.push_str(",\"snapshot\":{\"suspension\":{\"phase\":\"accepting\"},\"presence\":");
        out.push_str(&json_text(&snap.presence));
        out.push_str(",\"health\":");
        out.push_str(&snap.health_json);
        out.push(',');
        out.push_str(tail_json.strip_prefix('{').unwrap_or(&tail_json));
        out.push_str(",\"auth\":");
        out.push_str(&json_text(&auth));
        out.push_str(",\"policy\":");
        out.push_str(&json_text(&policy.to_json()));
        out.push('}');
        out
    }

    // ---- requests after hello ----------------------------------------------------------

    fn handle_request_text(&mut self, now: Instant, text: &str) {
        let req = match wire::parse_request(text) {
            Ok(r) => r,
            // Non-JSON after the handshake is silently ignored (spec §10.1).
            Err(FrameError::NotJson) => return,
            Err(FrameError::NotRequest { id, detail }) => {
                let id = id.unwrap_or_else(|| Value::String("invalid".into()));
                let e = ErrorShape::invalid_request(format!("{}: {detail}", msg::INVALID_REQUEST_FRAME));
                return self.send(wire::response_err(&id, None, &e));
            }
        };
        let State::Open(s) = &mut self.state else { return };
        match scopes::authorize(s.role, &s.scopes, &req.method, req.params.as_ref()) {
            Authorization::Denied { error, unauthorized_role } => {
                let flood = if unauthorized_role {
                    s.unauthorized_role_streak += 1;
                    s.unauthorized_role_streak > self.limits.unauthorized_role_limit
                } else {
                    false
                };
                self.send(wire::response_err(&Value::String(req.id.clone()), None, &error));
                if flood {
                    self.close(now, close_code::POLICY_VIOLATION, msg::REPEATED_UNAUTHORIZED_CALLS);
                }
            }
            Authorization::Allowed => {
                s.unauthorized_role_streak = 0;
                let caller = Caller { conn_id: self.conn_id.clone(), role: s.role, scopes: s.scopes.clone(), client: s.client.clone() };
                let permit = if s.role == Role::Operator {
                    match self.hub.try_start_request(text.len()) {
                        Some(p) => p,
                        None => return self.send(wire::response_err(&Value::String(req.id), None, &ErrorShape::busy())),
                    }
                } else {
                    RequestPermit::unmetered()
                };
                let d = Dispatch { request_id: req.id, method: req.method, params: req.params, caller, permit };
                self.out.push_back(Output::Dispatch(Box::new(d)));
            }
        }
    }
}

/// What the hub hands one socket, as its mailbox keeps it (see [`ServerConnection::handle_mail`]).
#[derive(Debug, Clone)]
pub enum Mail {
    Event(Arc<Broadcast>),
    /// A later answer to one of the socket's requests.
    Complete(String, Box<Reply>),
    /// The socket lost its admission: close with this code and reason.
    Close(u16, String),
    /// The gateway is stopping.
    Shutdown(String),
}

/// Is this socket's `Origin` acceptable?
fn origin_verdict(
    origin: &str,
    admission: &Admission,
    settings: &GatewaySettings,
) -> Result<crate::auth::origin::OriginAllow, crate::auth::origin::OriginDeny> {
    crate::auth::origin::check_origin(
        origin,
        admission.facts.host.as_deref(),
        &settings.control_ui_allowed_origins,
        settings.host_header_origin_fallback,
        admission.attribution.is_direct_local(),
    )
}

fn response_frame(request_id: &str, reply: Reply) -> String {
    match reply {
        Reply::Ok(payload) => wire::response_ok(request_id, payload.as_ref()),
        Reply::OkJson(payload) => wire::response_ok_json(request_id, &payload),
        Reply::Err { error, payload } => wire::response_err(&Value::String(request_id.to_string()), payload.as_ref(), &error),
    }
}

// The parts' fields are in the order the reference writes them (captured `hello-ok` frames,
// `testdata/vectors/ws/`), so the bytes read the same side by side.

/// `hello-ok.server`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloServer<'a> {
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    build_id: Option<&'a str>,
    boot_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    control_ui_build_source: Option<&'static str>,
    conn_id: &'a str,
}

/// `hello-ok.features`.
#[derive(serde::Serialize)]
struct HelloFeatures {
    methods: &'static [&'static str],
    events: &'static [&'static str],
    capabilities: [&'static str; 0],
}

/// `hello-ok.snapshot` after its `health` (spliced in as text before these).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloSnapshotTail<'a> {
    state_version: wire::StateVersion,
    uptime_ms: u64,
    applied_config_hash: &'a str,
    session_defaults: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_mode: Option<&'a str>,
}

/// `hello-ok.auth`; the device fields when the handshake paired or recognised a device.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HelloAuth<'a> {
    method: &'a str,
    role: &'a str,
    scopes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_migration_allowed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at_ms: Option<u64>,
}

/// A `hello-ok` part as JSON text (it cannot fail: plain structs, string keys).
fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
