//! The interpreter of check scripts, written once over a small [`Transport`] trait. The two
//! runners only provide transports: [`crate::memory`] (the core on virtual time) and
//! [`crate::socket`] (real sockets to any gateway).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::device::{self, DeviceKey, Signed};
use crate::model::*;
use crate::pattern;

/// What the peer did, as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum WireEvent {
    Text(String),
    Binary(Vec<u8>),
    Ping,
    /// A close frame (1005 when it carried no status code).
    Close {
        code: u16,
        reason: String,
    },
    /// The TCP connection ended (without a close frame, unless one came before).
    Ended,
}

/// Result of an upgrade attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenResult {
    Open,
    Rejected { status: u16, body: String },
}

/// How to open a WebSocket.
#[derive(Debug, Clone, Default)]
pub struct OpenOpts {
    /// Extra upgrade request headers.
    pub headers: Vec<(String, String)>,
    /// Answer pings (standard peers do).
    pub auto_pong: bool,
    /// The script sends frames of several MiB on this connection (the socket runner then
    /// writes from another thread while it reads).
    pub big_frames: bool,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Text(String),
    Binary(Vec<u8>),
}

impl Msg {
    pub fn len(&self) -> usize {
        match self {
            Msg::Text(t) => t.len(),
            Msg::Binary(b) => b.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An HTTP request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReq {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Play a non-loopback peer.
    pub remote: bool,
}

/// An HTTP response (101 responses stop after the head).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a runner provides: connections, time, HTTP.
pub trait Transport {
    /// Current time (virtual in memory).
    fn now(&self) -> Instant;
    fn open(&mut self, conn: Conn, opts: &OpenOpts) -> Result<OpenResult, String>;
    fn send(&mut self, conn: Conn, msg: Msg) -> Result<(), String>;
    /// The next thing that happened on `conn`, with the instant it arrived, or `None` at
    /// `deadline`.
    fn recv(&mut self, conn: Conn, deadline: Instant) -> Option<(Instant, WireEvent)>;
    fn client_close(&mut self, conn: Conn, code: Option<u16>, reason: &str) -> Result<(), String>;
    fn drop_conn(&mut self, conn: Conn);
    fn sleep_until(&mut self, t: Instant);
    fn http(&mut self, req: &HttpReq) -> Result<HttpResp, String>;
    /// Can this transport play a non-loopback peer?
    fn remote_peer(&self) -> bool;
}

/// The gateway's shared secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Token(String),
    Password(String),
}

impl Secret {
    pub fn value(&self) -> &str {
        match self {
            Secret::Token(t) | Secret::Password(t) => t,
        }
    }
}

/// Per-run settings.
#[derive(Debug, Clone)]
pub struct Env {
    pub secret: Secret,
    pub skip_slow: bool,
    /// Seeded keys and fixed placeholders (the in-memory runner).
    pub deterministic: bool,
    /// Bound of an expectation without a window.
    pub default_timeout: Duration,
}

/// Fixed WebSocket key of our raw upgrade requests (RFC 6455's example).
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Its `Sec-WebSocket-Accept`.
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Why a check must not run here, if it must not.
pub fn skip_reason(check: &Check, env: &Env, remote_peer: bool) -> Option<String> {
    if let Some(s) = check.skip {
        return Some(s.to_string());
    }
    if check.has(Tag::RemotePeer) && !remote_peer {
        return Some("needs a non-loopback peer (in-memory runner only)".into());
    }
    if check.has(Tag::TokenMode) && matches!(env.secret, Secret::Password(_)) {
        return Some("token-mode check (gateway runs in password mode)".into());
    }
    if check.has(Tag::Slow) && env.skip_slow {
        return Some("slow check (--skip-slow)".into());
    }
    None
}

/// Run one check on a transport.
pub fn run_check<T: Transport>(t: &mut T, check: &Check, env: &Env) -> Outcome {
    if let Some(r) = skip_reason(check, env, t.remote_peer()) {
        return Outcome::Skip(r);
    }
    let mut ex = Exec::new(check, env);
    let mut result = Ok(());
    for (i, step) in check.script.iter().enumerate() {
        if let Err(e) = ex.step(t, step) {
            result = Err(format!("step {} ({}): {e}", i + 1, step_name(step)));
            break;
        }
    }
    for c in ex.conns.keys().copied().collect::<Vec<_>>() {
        t.drop_conn(c);
    }
    match result {
        Ok(()) => Outcome::Pass((!ex.notes.is_empty()).then(|| ex.notes.join("; "))),
        Err(e) => Outcome::Fail(e),
    }
}

pub fn step_name(s: &Step) -> &'static str {
    match s {
        Step::Open { .. } => "open",
        Step::ExpectChallenge { .. } => "expect challenge",
        Step::Send { .. } => "send",
        Step::Connect(_) => "connect",
        Step::ExpectResponse { .. } => "expect response",
        Step::ExpectHello { .. } => "expect hello-ok",
        Step::ExpectEvent { .. } => "expect event",
        Step::ExpectNoFrame { .. } => "expect silence",
        Step::ExpectClose { .. } => "expect close",
        Step::ExpectTerminated { .. } => "expect termination",
        Step::ExpectPing { .. } => "expect ping",
        Step::ClientClose { .. } => "client close",
        Step::Drop { .. } => "drop",
        Step::Wait { .. } => "wait",
        Step::Flood { .. } => "flood",
        Step::HttpRequest(_) => "http",
        Step::UpgradeRejected { .. } => "upgrade rejected",
    }
}

struct EventRules {
    seq_increasing: bool,
    state_version: Option<StateVersionRule>,
    skip_early: bool,
    before: Option<Value>,
}

#[derive(Debug, Clone)]
enum RxEv {
    Frame(Value),
    /// Text that is not JSON.
    Raw,
    Ping,
    Close(u16, String),
    Ended,
}

#[derive(Debug, Clone)]
struct Rx {
    at: Instant,
    ev: RxEv,
}

struct ConnState {
    inbox: VecDeque<Rx>,
    /// No more events will come.
    finished: bool,
    nonce: Option<String>,
    ts: Option<u64>,
    opened_at: Instant,
    hello_at: Option<Instant>,
    last_send: Option<Instant>,
    last_seq: Option<u64>,
    state_version: HashMap<String, i64>,
    previous: HashMap<String, Instant>,
}

struct Exec<'a> {
    check_id: &'static str,
    /// `CONFORMANCE_TRACE=1`: print every received event with its timing to stderr.
    trace: bool,
    env: &'a Env,
    conns: HashMap<Conn, ConnState>,
    vars: HashMap<String, String>,
    keys: Vec<DeviceKey>,
    big: HashSet<Conn>,
    notes: Vec<String>,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    getrandom::fill(&mut b).expect("OS randomness");
    let mut s = device::hex(&b);
    s.truncate(n);
    s
}

fn random_uuid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS randomness");
    clawgate_core::ids::uuid_v4(b)
}

fn frame_type(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

fn pointer_string(v: &Value, ptr: &str) -> Option<String> {
    v.pointer(ptr).map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
}

impl<'a> Exec<'a> {
    fn new(check: &'a Check, env: &'a Env) -> Self {
        let mut vars = HashMap::new();
        vars.insert("TOKEN".to_string(), env.secret.value().to_string());
        let method = match env.secret {
            Secret::Token(_) => "token",
            Secret::Password(_) => "password",
        };
        vars.insert("AUTH_METHOD".to_string(), method.to_string());
        let (origin, run) = if env.deterministic {
            ("http://localhost:5173".to_string(), "mem".to_string())
        } else {
            let mut p = [0u8; 2];
            getrandom::fill(&mut p).expect("OS randomness");
            (format!("http://127.0.0.1:{}", 20_000 + u16::from_le_bytes(p) % 40_000), random_hex(10))
        };
        vars.insert("ORIGIN".into(), origin);
        vars.insert("RUN".into(), run);
        let keys = (0..3)
            .map(|i| {
                if env.deterministic {
                    let seed: [u8; 32] = Sha256::digest(format!("{}#{i}", check.id).as_bytes()).into();
                    DeviceKey::from_seed(seed)
                } else {
                    DeviceKey::random()
                }
            })
            .collect();
        let big = check
            .script
            .iter()
            .filter_map(|s| match s {
                Step::Send { conn, frame: Frame::PaddedRequest { bytes, .. }, .. } if *bytes > 1 << 20 => Some(*conn),
                _ => None,
            })
            .collect();
        let trace = std::env::var_os("CONFORMANCE_TRACE").is_some_and(|v| !v.is_empty() && v != "0");
        Exec { check_id: check.id, trace, env, conns: HashMap::new(), vars, keys, big, notes: Vec::new() }
    }

    // ---- placeholders ------------------------------------------------------------------

    fn subst_str(&self, s: &str, conn: Option<Conn>) -> String {
        if !s.contains('$') {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let n = after.chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').count();
            let name = &after[..n];
            let value = if name == "NONCE" {
                conn.and_then(|c| self.conns.get(&c)).and_then(|st| st.nonce.clone())
            } else {
                self.vars.get(name).cloned()
            };
            match value {
                Some(v) if n > 0 => out.push_str(&v),
                _ => {
                    out.push('$');
                    out.push_str(name);
                }
            }
            rest = &after[n..];
        }
        out.push_str(rest);
        out
    }

    fn subst(&self, v: &Value, conn: Option<Conn>) -> Value {
        match v {
            Value::String(s) => Value::String(self.subst_str(s, conn)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.subst(x, conn)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), self.subst(x, conn))).collect()),
            other => other.clone(),
        }
    }

    fn save(&mut self, frame: &Value, save: &[(&'static str, &'static str)]) -> Result<(), String> {
        for (var, ptr) in save {
            let v = pointer_string(frame, ptr).ok_or_else(|| format!("nothing at {ptr} to save as ${var}"))?;
            self.vars.insert(var.to_string(), v);
        }
        Ok(())
    }

    // ---- connections -------------------------------------------------------------------

    fn st(&mut self, conn: Conn) -> Result<&mut ConnState, String> {
        self.conns.get_mut(&conn).ok_or_else(|| format!("connection {conn} is not open"))
    }

    fn deadline<T: Transport>(&mut self, t: &T, conn: Conn, within: Option<Window>, event: Option<&str>) -> Result<Instant, String> {
        match within {
            None => Ok(t.now() + self.env.default_timeout),
            Some(w) => Ok(self.since(conn, w.since, event)? + Duration::from_millis(w.max_ms)),
        }
    }

    fn since(&mut self, conn: Conn, since: Since, event: Option<&str>) -> Result<Instant, String> {
        let st = self.st(conn)?;
        Ok(match since {
            Since::Open => st.opened_at,
            Since::Hello => st.hello_at.ok_or("no hello-ok yet on this connection")?,
            Since::LastSend => st.last_send.ok_or("nothing sent yet on this connection")?,
            Since::Previous => {
                let key = event.unwrap_or("");
                *st.previous.get(key).ok_or_else(|| format!("no previous {key} on this connection"))?
            }
        })
    }

    fn check_window(&mut self, conn: Conn, within: Option<Window>, at: Instant, event: Option<&str>) -> Result<(), String> {
        let Some(w) = within else { return Ok(()) };
        let from = self.since(conn, w.since, event)?;
        let ms = at.saturating_duration_since(from).as_millis() as u64;
        if ms < w.min_ms || ms > w.max_ms {
            return Err(format!("arrived after {ms} ms ({:?}), expected {}..={} ms", w.since, w.min_ms, w.max_ms));
        }
        Ok(())
    }

    /// Read one more event from the transport into the inbox; false at the deadline or when
    /// the connection is over.
    fn pull<T: Transport>(&mut self, t: &mut T, conn: Conn, deadline: Instant) -> Result<bool, String> {
        if self.st(conn)?.finished {
            return Ok(false);
        }
        let Some((at, ev)) = t.recv(conn, deadline) else { return Ok(false) };
        if self.trace {
            let st = self.st(conn)?;
            let ms = at.saturating_duration_since(st.opened_at).as_millis();
            let since_send = st.last_send.map(|s| at.saturating_duration_since(s).as_millis());
            let text = match &ev {
                WireEvent::Text(s) => truncate(s, 160).to_string(),
                other => format!("{other:?}").chars().take(160).collect(),
            };
            eprintln!("[trace {}] conn {conn} +{ms} ms (send +{since_send:?} ms): {text}", self.check_id);
        }
        let st = self.st(conn)?;
        let ev = match ev {
            WireEvent::Text(s) => match serde_json::from_str::<Value>(&s) {
                Ok(v) => RxEv::Frame(v),
                Err(_) => RxEv::Raw,
            },
            WireEvent::Binary(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(v) => RxEv::Frame(v),
                Err(_) => RxEv::Raw,
            },
            WireEvent::Ping => RxEv::Ping,
            WireEvent::Close { code, reason } => RxEv::Close(code, reason),
            WireEvent::Ended => {
                st.finished = true;
                RxEv::Ended
            }
        };
        st.inbox.push_back(Rx { at, ev });
        Ok(true)
    }

    fn send_msg<T: Transport>(&mut self, t: &mut T, conn: Conn, msg: Msg) -> Result<(), String> {
        self.st(conn)?;
        t.send(conn, msg)?;
        let now = t.now();
        self.st(conn)?.last_send = Some(now);
        Ok(())
    }

    // ---- steps -------------------------------------------------------------------------

    fn step<T: Transport>(&mut self, t: &mut T, step: &Step) -> Result<(), String> {
        match step {
            Step::Open { conn, headers, auto_pong } => {
                let opts = OpenOpts {
                    headers: headers.iter().map(|(k, v)| (k.to_string(), self.subst_str(v, None))).collect(),
                    auto_pong: *auto_pong,
                    big_frames: self.big.contains(conn),
                };
                match t.open(*conn, &opts)? {
                    OpenResult::Open => {
                        let now = t.now();
                        self.conns.insert(
                            *conn,
                            ConnState {
                                inbox: VecDeque::new(),
                                finished: false,
                                nonce: None,
                                ts: None,
                                opened_at: now,
                                hello_at: None,
                                last_send: None,
                                last_seq: None,
                                state_version: HashMap::new(),
                                previous: HashMap::new(),
                            },
                        );
                        Ok(())
                    }
                    OpenResult::Rejected { status, body } => Err(format!("upgrade refused: {status} {body}")),
                }
            }
            Step::ExpectChallenge { conn } => self.expect_challenge(t, *conn),
            Step::Send { conn, frame, times } => {
                let msg = self.build_frame(*conn, frame)?;
                for _ in 0..*times {
                    self.send_msg(t, *conn, msg.clone())?;
                }
                Ok(())
            }
            Step::Connect(c) => {
                let (text, binary) = self.connect_frame(c)?;
                let msg = if binary { Msg::Binary(text.into_bytes()) } else { Msg::Text(text) };
                self.send_msg(t, c.conn, msg)
            }
            Step::ExpectResponse { conn, id, any_of, within, first, save } => {
                self.expect_response(t, *conn, id, any_of, *within, *first, save).map(|_| ())
            }
            Step::ExpectHello { conn, id, role, scopes, payload, within, first, save } => {
                let mut p = json!({"type": "hello-ok", "protocol": 4, "auth": {"role": role}});
                if let Some(s) = scopes {
                    p["auth"]["scopes"] = json!({"$eq": s});
                }
                if let Some(extra) = payload {
                    merge(&mut p, extra);
                }
                let resp = Resp { pattern: json!({"type": "res", "ok": true, "payload": p}) };
                let (frame, at) = self.expect_response(t, *conn, &json!(id), &[resp], *within, *first, save)?;
                let st = self.st(*conn)?;
                st.hello_at = Some(at);
                if let Some(Value::Object(sv)) = frame.pointer("/payload/snapshot/stateVersion") {
                    for (k, v) in sv {
                        if let Some(n) = v.as_i64() {
                            st.state_version.insert(k.clone(), n);
                        }
                    }
                }
                Ok(())
            }
            Step::ExpectEvent { conn, event, pattern, seq_increasing, state_version, skip_early, before, within, save } => {
                let rules = EventRules {
                    seq_increasing: *seq_increasing,
                    state_version: *state_version,
                    skip_early: *skip_early,
                    before: before.clone(),
                };
                self.expect_event(t, *conn, event, pattern.as_ref(), &rules, *within, save)
            }
            Step::ExpectNoFrame { conn, for_ms, quiet } => self.expect_quiet(t, *conn, *for_ms, quiet),
            Step::ExpectClose { conn, code, reason, within } => self.expect_close(t, *conn, *code, reason, *within),
            Step::ExpectTerminated { conn, within } => self.expect_terminated(t, *conn, *within),
            Step::ExpectPing { conn, within } => self.expect_ping(t, *conn, *within),
            Step::ClientClose { conn, code, reason } => {
                self.st(*conn)?;
                t.client_close(*conn, *code, reason)
            }
            Step::Drop { conn } => {
                t.drop_conn(*conn);
                self.conns.remove(conn);
                Ok(())
            }
            Step::Wait { ms } => {
                let until = t.now() + Duration::from_millis(*ms);
                t.sleep_until(until);
                Ok(())
            }
            Step::Flood { conn, method, count } => self.flood(t, *conn, method, *count),
            Step::HttpRequest(h) => self.http(t, h),
            Step::UpgradeRejected { headers, status, body_contains } => {
                let h = Http {
                    method: "GET",
                    path: "/",
                    headers: headers.clone(),
                    upgrade: true,
                    remote: false,
                    status: *status,
                    body: Body::Contains(body_contains),
                    headers_expect: vec![],
                };
                self.http(t, &h)
            }
        }
    }

    fn build_frame(&self, conn: Conn, frame: &Frame) -> Result<Msg, String> {
        Ok(match frame {
            Frame::Json(v) => Msg::Text(self.subst(v, Some(conn)).to_string()),
            Frame::BinaryJson(v) => Msg::Binary(self.subst(v, Some(conn)).to_string().into_bytes()),
            Frame::Text(s) => Msg::Text(s.to_string()),
            Frame::Binary(b) => Msg::Binary(b.to_vec()),
            Frame::PaddedRequest { id, method, bytes } => {
                let empty = json!({"type": "req", "id": id, "method": method, "params": {"pad": ""}}).to_string();
                let n = bytes.checked_sub(empty.len()).ok_or("padded frame smaller than its skeleton")?;
                let mut v = json!({"type": "req", "id": id, "method": method, "params": {"pad": ""}});
                v["params"]["pad"] = Value::String("x".repeat(n));
                let s = v.to_string();
                debug_assert_eq!(s.len(), *bytes);
                Msg::Text(s)
            }
        })
    }

    fn connect_frame(&self, c: &Connect) -> Result<(String, bool), String> {
        let mut client = json!({"id": c.client_id, "version": c.version, "platform": "linux"});
        if let Some(f) = c.device_family {
            client["deviceFamily"] = json!(f);
        }
        client["mode"] = json!(c.mode);
        if let Some(d) = c.display_name {
            client["displayName"] = json!(d);
        }
        if c.instance_id {
            client["instanceId"] =
                json!(if self.env.deterministic { "16e5ad26-0c26-44a9-ad34-6d5d9c78a97e".to_string() } else { random_uuid() });
        }
        let mut params = json!({"minProtocol": c.min_protocol, "maxProtocol": c.max_protocol, "client": client, "caps": []});
        let secret = self.env.secret.value().to_string();
        let auth = match &c.auth {
            Auth::Good => Some(match &self.env.secret {
                Secret::Token(t) => json!({"token": t}),
                Secret::Password(p) => json!({"password": p}),
            }),
            Auth::GoodInPassword => Some(json!({"password": secret})),
            Auth::Wrong => Some(match &self.env.secret {
                Secret::Token(_) => json!({"token": "wrong-token"}),
                Secret::Password(_) => json!({"password": "wrong-password"}),
            }),
            Auth::None => None,
            Auth::DeviceToken(var) => {
                Some(json!({"deviceToken": self.vars.get(*var).ok_or_else(|| format!("variable ${var} was not saved"))?}))
            }
        };
        if let Some(a) = &auth {
            params["auth"] = a.clone();
        }
        if let Some(r) = c.role {
            params["role"] = json!(r);
        }
        params["scopes"] = json!(c.scopes);
        if let Some(extra) = &c.extra_params {
            if let (Value::Object(p), Value::Object(e)) = (&mut params, extra) {
                for (k, v) in e {
                    p.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(spec) = &c.device {
            let st = self.conns.get(&c.conn).ok_or("connection is not open")?;
            let nonce = st.nonce.clone().ok_or("a device proof needs the challenge first (ExpectChallenge)")?;
            let ts = st.ts.ok_or("a device proof needs the challenge ts")?;
            let key = self.keys.get(spec.key).ok_or("no such device key")?;
            let signed_token = auth
                .as_ref()
                .and_then(|a| a.get("token").or_else(|| a.get("deviceToken")).and_then(Value::as_str))
                .unwrap_or("")
                .to_string();
            let nonce_field = match spec.fault {
                Some(DeviceFault::NonceMismatch) => "some-other-nonce".to_string(),
                Some(DeviceFault::NonceMissing) => " ".to_string(),
                _ => nonce,
            };
            let signed_at = if spec.fault == Some(DeviceFault::Stale) { ts.saturating_sub(600_000) } else { ts };
            let id = if spec.fault == Some(DeviceFault::IdMismatch) {
                device::hex(&Sha256::digest(format!("not {}", key.device_id()).as_bytes()))
            } else {
                key.device_id()
            };
            let payload = device::payload(
                spec.version,
                &Signed {
                    device_id: &id,
                    client_id: c.client_id,
                    mode: c.mode,
                    role: c.role.unwrap_or("operator"),
                    scopes: &c.scopes,
                    signed_at,
                    token: &signed_token,
                    nonce: &nonce_field,
                    platform: Some("linux"),
                    device_family: c.device_family,
                },
            );
            let mut sig = key.sign(&payload);
            if spec.fault == Some(DeviceFault::BadSignature) {
                sig[0] ^= 0xff;
            }
            params["device"] = json!({
                "id": id,
                "publicKey": key.public_key(),
                "signature": device::b64url(&sig),
                "signedAt": signed_at,
                "nonce": nonce_field,
            });
        }
        let mut frame = json!({"type": "req", "id": c.id, "method": "connect", "params": params});
        if let Some(total) = c.pad_to {
            frame["params"]["userAgent"] = json!("");
            let n = total.checked_sub(frame.to_string().len()).ok_or("connect frame larger than pad_to")?;
            frame["params"]["userAgent"] = Value::String("x".repeat(n));
        }
        Ok((frame.to_string(), c.binary))
    }

    fn expect_challenge<T: Transport>(&mut self, t: &mut T, conn: Conn) -> Result<(), String> {
        let deadline = t.now() + self.env.default_timeout;
        while self.st(conn)?.inbox.is_empty() {
            if !self.pull(t, conn, deadline)? {
                return Err("no connect.challenge".into());
            }
        }
        let rx = self.st(conn)?.inbox.pop_front().expect("non-empty");
        let RxEv::Frame(f) = rx.ev else { return Err(format!("first thing received is {:?}, not connect.challenge", rx.ev)) };
        let pat = json!({
            "type": "event", "event": "connect.challenge",
            "payload": {"nonce": "$uuid", "ts": "$int", "capabilities": ["model-catalog-snapshot"]},
            "seq": "$absent", "stateVersion": "$absent",
        });
        pattern::check(&pat, Some(&f)).map_err(|e| format!("{e} in {}", short(&f)))?;
        let st = self.st(conn)?;
        st.nonce = f.pointer("/payload/nonce").and_then(Value::as_str).map(str::to_string);
        st.ts = f.pointer("/payload/ts").and_then(Value::as_u64);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn expect_response<T: Transport>(
        &mut self,
        t: &mut T,
        conn: Conn,
        id: &Value,
        any_of: &[Resp],
        within: Option<Window>,
        first: bool,
        save: &[(&'static str, &'static str)],
    ) -> Result<(Value, Instant), String> {
        let deadline = self.deadline(t, conn, within, None)?;
        let id = self.subst(id, Some(conn));
        let (frame, at) = loop {
            let st = self.st(conn)?;
            let mut found = None;
            for (i, rx) in st.inbox.iter().enumerate() {
                match &rx.ev {
                    RxEv::Frame(f) if frame_type(f) == "res" => {
                        if f.get("id") == Some(&id) {
                            found = Some(i);
                            break;
                        } else if first {
                            return Err(format!("response {} arrived before {id}", f.get("id").map(Value::to_string).unwrap_or_default()));
                        }
                    }
                    RxEv::Close(code, reason) => return Err(format!("closed {code} {reason:?} before response {id}")),
                    RxEv::Ended => return Err(format!("connection ended before response {id}")),
                    _ => {}
                }
            }
            if let Some(i) = found {
                let rx = st.inbox.remove(i).expect("index");
                let RxEv::Frame(f) = rx.ev else { unreachable!() };
                break (f, rx.at);
            }
            if !self.pull(t, conn, deadline)? {
                return Err(format!("no response {id}"));
            }
        };
        self.check_window(conn, within, at, None)?;
        let mut errors = Vec::new();
        for r in any_of {
            let p = self.subst(&r.pattern, Some(conn));
            match pattern::check(&p, Some(&frame)) {
                Ok(()) => {
                    self.save(&frame, save)?;
                    return Ok((frame, at));
                }
                Err(e) => errors.push(e),
            }
        }
        Err(format!("{} in {}", errors.join(" | "), short(&frame)))
    }

    #[allow(clippy::too_many_arguments)]
    fn expect_event<T: Transport>(
        &mut self,
        t: &mut T,
        conn: Conn,
        event: &str,
        pat: Option<&Value>,
        rules: &EventRules,
        within: Option<Window>,
        save: &[(&'static str, &'static str)],
    ) -> Result<(), String> {
        let (seq_increasing, sv, skip_early) = (rules.seq_increasing, rules.state_version, rules.skip_early);
        let deadline = self.deadline(t, conn, within, Some(event))?;
        let early_until = match (skip_early, within) {
            (true, Some(w)) => Some(self.since(conn, w.since, Some(event))? + Duration::from_millis(w.min_ms)),
            _ => None,
        };
        let (frame, at) = loop {
            let st = self.st(conn)?;
            let mut found = None;
            let mut skip = Vec::new();
            for (i, rx) in st.inbox.iter().enumerate() {
                match &rx.ev {
                    RxEv::Frame(f) if frame_type(f) == "event" && f.get("event").and_then(Value::as_str) == Some(event) => {
                        if early_until.is_some_and(|e| rx.at < e) {
                            skip.push(i);
                            continue;
                        }
                        found = Some(i);
                        break;
                    }
                    RxEv::Frame(f) if frame_type(f) == "res" && rules.before.as_ref().is_some_and(|id| f.get("id") == Some(id)) => {
                        return Err(format!("response {} arrived before the {event} event", f["id"]));
                    }
                    RxEv::Close(code, reason) => return Err(format!("closed {code} {reason:?} before a {event} event")),
                    RxEv::Ended => return Err(format!("connection ended before a {event} event")),
                    _ => {}
                }
            }
            let found = found.map(|i| st.inbox.remove(i).expect("index"));
            for i in skip.into_iter().rev() {
                st.inbox.remove(i);
            }
            if let Some(rx) = found {
                let RxEv::Frame(f) = rx.ev else { unreachable!() };
                break (f, rx.at);
            }
            if !self.pull(t, conn, deadline)? {
                return Err(format!("no {event} event"));
            }
        };
        self.check_window(conn, within, at, Some(event))?;
        if let Some(p) = pat {
            let p = self.subst(p, Some(conn));
            pattern::check(&p, Some(&frame)).map_err(|e| format!("{e} in {}", short(&frame)))?;
        }
        let seq = frame.get("seq").and_then(Value::as_u64);
        let st = self.st(conn)?;
        if seq_increasing {
            match (seq, st.last_seq) {
                (None, _) => return Err(format!("{event} event without seq: {}", short(&frame))),
                (Some(s), Some(prev)) if s <= prev => return Err(format!("{event} event seq {s} not above {prev}")),
                _ => {}
            }
        }
        if let Some(s) = seq {
            st.last_seq = Some(st.last_seq.map_or(s, |p| p.max(s)));
        }
        let state_version = frame.get("stateVersion");
        match sv {
            None => {}
            Some(StateVersionRule::Absent) if state_version.is_some() => {
                return Err(format!("{event} event carries stateVersion {}", short(state_version.expect("some"))));
            }
            Some(StateVersionRule::Absent) => {}
            Some(StateVersionRule::Present | StateVersionRule::Increases(_)) => {
                let ok = state_version
                    .map(|v| pattern::check(&json!({"presence": "$int", "health": "$int"}), Some(v)))
                    .unwrap_or_else(|| Err("absent".into()));
                ok.map_err(|e| format!("{event} event stateVersion: {e}"))?;
            }
        }
        if let Some(StateVersionRule::Increases(key)) = sv {
            let now = state_version.and_then(|v| v.get(key)).and_then(Value::as_i64).unwrap_or(i64::MIN);
            if let Some(prev) = st.state_version.get(key) {
                if now <= *prev {
                    return Err(format!("{event} event stateVersion.{key} {now} not above {prev}"));
                }
            }
        }
        if let Some(Value::Object(o)) = state_version {
            for (k, v) in o {
                if let Some(n) = v.as_i64() {
                    st.state_version.insert(k.clone(), n);
                }
            }
        }
        st.previous.insert(event.to_string(), at);
        self.save(&frame, save)
    }

    fn expect_quiet<T: Transport>(&mut self, t: &mut T, conn: Conn, for_ms: u64, quiet: &Quiet) -> Result<(), String> {
        let deadline = t.now() + Duration::from_millis(for_ms);
        let quiet = match quiet {
            Quiet::Response(id) => Quiet::Response(self.subst(id, Some(conn))),
            q => q.clone(),
        };
        let bad = |rx: &Rx| -> Option<String> {
            match &rx.ev {
                RxEv::Frame(f) => {
                    let name = f.get("event").and_then(Value::as_str).filter(|_| frame_type(f) == "event");
                    let hit = match &quiet {
                        Quiet::AnyResponse => frame_type(f) == "res",
                        Quiet::Response(id) => frame_type(f) == "res" && f.get("id") == Some(id),
                        Quiet::Event(e) => name == Some(e),
                        Quiet::EventOutside(allowed) => name.is_some_and(|n| n != "connect.challenge" && !allowed.contains(&n)),
                        Quiet::EventWithoutSeq => {
                            name.is_some_and(|n| n != "connect.challenge") && !f.get("seq").is_some_and(|s| s.is_u64())
                        }
                    };
                    hit.then(|| format!("unexpected {}", short(f)))
                }
                RxEv::Close(c, r) => Some(format!("connection closed {c} {r:?}")),
                RxEv::Ended => Some("connection ended".into()),
                _ => None,
            }
        };
        let mut seen = 0;
        loop {
            let st = self.st(conn)?;
            for rx in st.inbox.iter().skip(seen) {
                if let Some(e) = bad(rx) {
                    return Err(e);
                }
            }
            seen = st.inbox.len();
            if st.finished {
                // The connection ended earlier (its end was reported by whoever consumed it).
                return Err("the connection is over".into());
            }
            if !self.pull(t, conn, deadline)? {
                return Ok(());
            }
        }
    }

    fn expect_close<T: Transport>(
        &mut self,
        t: &mut T,
        conn: Conn,
        code: u16,
        reason: &Text,
        within: Option<Window>,
    ) -> Result<(), String> {
        let deadline = self.deadline(t, conn, within, None)?;
        let mut seen = 0;
        loop {
            let st = self.st(conn)?;
            let mut found = None;
            for rx in st.inbox.iter().skip(seen) {
                match &rx.ev {
                    RxEv::Frame(f) if frame_type(f) == "res" => return Err(format!("unexpected response before the close: {}", short(f))),
                    RxEv::Close(c, r) => {
                        found = Some((*c, r.clone(), rx.at));
                        break;
                    }
                    RxEv::Ended => return Err(format!("connection ended without a close frame (1006), expected close {code}")),
                    _ => {}
                }
            }
            seen = st.inbox.len();
            if let Some((c, r, at)) = found {
                if c != code {
                    return Err(format!("close code {c} ({r:?}), expected {code}"));
                }
                reason.check("close reason", &r)?;
                return self.check_window(conn, within, at, None);
            }
            if !self.pull(t, conn, deadline)? {
                return Err(format!("no close frame (expected {code})"));
            }
        }
    }

    fn expect_terminated<T: Transport>(&mut self, t: &mut T, conn: Conn, within: Option<Window>) -> Result<(), String> {
        let deadline = self.deadline(t, conn, within, None)?;
        let mut seen = 0;
        loop {
            let st = self.st(conn)?;
            let mut found = None;
            for rx in st.inbox.iter().skip(seen) {
                match &rx.ev {
                    RxEv::Close(c, r) => return Err(format!("close frame {c} {r:?}, expected the TCP connection to drop without one")),
                    RxEv::Ended => {
                        found = Some(rx.at);
                        break;
                    }
                    _ => {}
                }
            }
            seen = st.inbox.len();
            if let Some(at) = found {
                return self.check_window(conn, within, at, None);
            }
            if !self.pull(t, conn, deadline)? {
                return Err("the connection is still open".into());
            }
        }
    }

    fn expect_ping<T: Transport>(&mut self, t: &mut T, conn: Conn, within: Option<Window>) -> Result<(), String> {
        let deadline = self.deadline(t, conn, within, Some("ping"))?;
        let at = loop {
            let st = self.st(conn)?;
            let mut found = None;
            for (i, rx) in st.inbox.iter().enumerate() {
                match &rx.ev {
                    RxEv::Ping => {
                        found = Some(i);
                        break;
                    }
                    RxEv::Close(c, r) => return Err(format!("closed {c} {r:?} before a ping")),
                    RxEv::Ended => return Err("connection ended before a ping".into()),
                    _ => {}
                }
            }
            if let Some(i) = found {
                break st.inbox.remove(i).expect("index").at;
            }
            if !self.pull(t, conn, deadline)? {
                return Err("no ping".into());
            }
        };
        self.check_window(conn, within, at, Some("ping"))?;
        self.st(conn)?.previous.insert("ping".into(), at);
        Ok(())
    }

    fn flood<T: Transport>(&mut self, t: &mut T, conn: Conn, method: &str, count: usize) -> Result<(), String> {
        let mut pending: HashSet<String> = HashSet::new();
        for i in 0..count {
            let id = format!("flood-{i}");
            let frame = json!({"type": "req", "id": id, "method": method}).to_string();
            self.send_msg(t, conn, Msg::Text(frame))?;
            pending.insert(id);
        }
        let deadline = t.now() + Duration::from_secs(60).max(self.env.default_timeout);
        let busy = json!({"type": "res", "ok": false, "error": {"code": "UNAVAILABLE", "message": "The server is busy. Please try again in a moment.", "retryable": true}});
        let (mut ok, mut busy_n) = (0usize, 0usize);
        while !pending.is_empty() {
            let st = self.st(conn)?;
            let mut keep = VecDeque::new();
            while let Some(rx) = st.inbox.pop_front() {
                match &rx.ev {
                    RxEv::Frame(f)
                        if frame_type(f) == "res" && f.get("id").and_then(Value::as_str).is_some_and(|i| i.starts_with("flood-")) =>
                    {
                        let id = f["id"].as_str().expect("str");
                        if !pending.remove(id) {
                            return Err(format!("second response for {id}"));
                        }
                        if f.get("ok") == Some(&Value::Bool(true)) {
                            ok += 1;
                        } else if pattern::check(&busy, Some(f)).is_ok() {
                            busy_n += 1;
                        } else {
                            return Err(format!("response is neither ok nor busy: {}", short(f)));
                        }
                    }
                    RxEv::Close(c, r) => return Err(format!("closed {c} {r:?} with {} responses missing", pending.len())),
                    RxEv::Ended => return Err(format!("connection ended with {} responses missing", pending.len())),
                    _ => keep.push_back(rx),
                }
            }
            st.inbox = keep;
            if pending.is_empty() {
                break;
            }
            if !self.pull(t, conn, deadline)? {
                return Err(format!("{} of {count} responses missing", pending.len()));
            }
        }
        self.notes.push(format!("{count} pipelined {method}: {ok} ok, {busy_n} busy"));
        Ok(())
    }

    fn http<T: Transport>(&mut self, t: &mut T, h: &Http) -> Result<(), String> {
        let mut headers: Vec<(String, String)> = Vec::new();
        if h.upgrade {
            headers.push(("Connection".into(), "Upgrade".into()));
            headers.push(("Upgrade".into(), "websocket".into()));
            headers.push(("Sec-WebSocket-Version".into(), "13".into()));
            headers.push(("Sec-WebSocket-Key".into(), WS_KEY.into()));
        }
        for (k, v) in &h.headers {
            headers.push((k.to_string(), self.subst_str(v, None)));
        }
        let req = HttpReq { method: h.method.into(), path: h.path.into(), headers, remote: h.remote };
        let resp = t.http(&req)?;
        let body = String::from_utf8_lossy(&resp.body).into_owned();
        if resp.status != h.status {
            return Err(format!("status {} (body {:?}), expected {}", resp.status, truncate(&body, 200), h.status));
        }
        match &h.body {
            Body::Any => {}
            Body::Empty if !resp.body.is_empty() => return Err(format!("body {:?}, expected none", truncate(&body, 200))),
            Body::Empty => {}
            Body::Exact(e) if body != *e => return Err(format!("body {:?}, expected {e:?}", truncate(&body, 200))),
            Body::Exact(_) => {}
            Body::Contains(c) if !body.contains(c) => return Err(format!("body {:?} does not contain {c:?}", truncate(&body, 200))),
            Body::Contains(_) => {}
            Body::Json(p) => {
                let v: Value = serde_json::from_str(&body).map_err(|e| format!("body is not JSON ({e}): {:?}", truncate(&body, 200)))?;
                pattern::check(p, Some(&v)).map_err(|e| format!("{e} in {}", short(&v)))?;
            }
        }
        for rule in &h.headers_expect {
            match rule {
                HeaderRule::Equals(k, v) => match resp.header(k) {
                    Some(a) if a == *v => {}
                    a => return Err(format!("header {k}: {a:?}, expected {v:?}")),
                },
                HeaderRule::Prefix(k, v) => match resp.header(k) {
                    Some(a) if a.starts_with(v) => {}
                    a => return Err(format!("header {k}: {a:?}, expected a prefix {v:?}")),
                },
                HeaderRule::Absent(k) => {
                    if let Some(a) = resp.header(k) {
                        return Err(format!("header {k}: {a:?}, expected none"));
                    }
                }
                HeaderRule::Present(k) => {
                    if resp.header(k).is_none() {
                        return Err(format!("header {k} missing"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Merge pattern `extra` into `base` (objects recursively; anything else replaces).
fn merge(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(k) {
                    Some(slot)
                        if slot.is_object() && v.is_object() && !v.as_object().is_some_and(|o| o.keys().any(|k| k.starts_with('$'))) =>
                    {
                        merge(slot, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, e) => *b = e.clone(),
    }
}
