//! The `server_connection` target: a hub and two sockets on virtual time.

use super::*;

/// Texts for op 0 of [`server_connection`]. Append only: seeds refer to entries by index.
pub const SERVER_TEXTS: &[&str] = &[
    // 0: the reference CLI's connect, right token.
    r#"{"type":"req","id":"c1","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"2026.9.6","platform":"linux","deviceFamily":"Linux","mode":"cli","instanceId":"be1d1092-b5c3-4a92-abeb-985bf74d39f5"},"caps":[],"auth":{"token":"testtoken123"},"role":"operator","scopes":["operator.read"]}}"#,
    // 1: admin CLI.
    r#"{"type":"req","id":"c2","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},"auth":{"token":"testtoken123"},"role":"operator","scopes":["operator.admin","operator.read","operator.write","operator.pairing"]}}"#,
    // 2: wrong token.
    r#"{"type":"req","id":"c3","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},"auth":{"token":"wrong-token"},"scopes":["operator.read"]}}"#,
    // 3: no credentials.
    r#"{"type":"req","id":"c4","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"}}}"#,
    // 4: the secret as a password.
    r#"{"type":"req","id":"c5","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"test","version":"1","platform":"linux","mode":"test"},"auth":{"password":"testtoken123"},"scopes":["operator.read"]}}"#,
    // 5: probe on protocol 3.
    r#"{"type":"req","id":"c6","method":"connect","params":{"minProtocol":3,"maxProtocol":3,"client":{"id":"cli","version":"1","platform":"linux","mode":"probe"},"auth":{"token":"testtoken123"}}}"#,
    // 6: the local backend helper.
    r#"{"type":"req","id":"c7","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"gateway-client","version":"1","platform":"linux","mode":"backend"},"auth":{"token":"testtoken123"},"scopes":["operator.admin"]}}"#,
    // 7: TUI (operator UI without device).
    r#"{"type":"req","id":"c8","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"openclaw-tui","version":"1","platform":"linux","mode":"ui"},"auth":{"token":"testtoken123"}}}"#,
    // 8: webchat.
    r#"{"type":"req","id":"c9","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"webchat-ui","version":"1","platform":"web","mode":"webchat"},"auth":{"token":"testtoken123"}}}"#,
    // 9: node.
    r#"{"type":"req","id":"c10","method":"connect","params":{"minProtocol":3,"maxProtocol":3,"client":{"id":"node-host","version":"1","platform":"linux","mode":"node"},"role":"node","auth":{"token":"testtoken123"}}}"#,
    // 10: invalid role.
    r#"{"type":"req","id":"c11","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},"role":"admin","auth":{"token":"testtoken123"}}}"#,
    // 11: protocol mismatch.
    r#"{"type":"req","id":"c12","method":"connect","params":{"minProtocol":5,"maxProtocol":6,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},"auth":{"token":"testtoken123"}}}"#,
    // 12: extra field.
    r#"{"type":"req","id":"c13","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},"auth":{"token":"testtoken123"},"bogus":1}}"#,
    // 13: bogus device proof.
    r#"{"type":"req","id":"c14","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"openclaw-control-ui","version":"1","platform":"web","mode":"webchat"},"auth":{"token":"testtoken123"},"device":{"id":"abc","publicKey":"AAAA","signature":"AAAA","signedAt":1795602626311,"nonce":"n"}}}"#,
    // 14..: requests.
    r#"{"type":"req","id":"h1","method":"health"}"#,
    r#"{"type":"req","id":"h2","method":"health","params":{"probe":true}}"#,
    r#"{"type":"req","id":"s1","method":"status"}"#,
    r#"{"type":"req","id":"p1","method":"system-presence"}"#,
    r#"{"type":"req","id":"g1","method":"config.get","params":{}}"#,
    r#"{"type":"req","id":"g2","method":"config.get","params":{"x":1}}"#,
    r#"{"type":"req","id":"m1","method":"config.patch","params":{"raw":"{}","baseHash":"x"}}"#,
    r#"{"type":"req","id":"c2","method":"config.schema.lookup","params":{"path":"models.providers.*.models[].cost"}}"#,
    r#"{"type":"req","id":"u1","method":"usage.cost","params":{"mode":"specific","utcOffset":"UTC+5:30","days":"3"}}"#,
    r#"{"type":"req","id":"u2","method":"sessions.usage","params":{"range":"all","key":"main"}}"#,
    r#"{"type":"req","id":"d1","method":"diagnostics.stability","params":{"limit":2,"type":"x"}}"#,
    r#"{"type":"req","id":"t1","method":"device.token.rotate","params":{"deviceId":"d","role":"operator","scopes":[]}}"#,
    r#"{"type":"req","id":"a1","method":"agent","params":{"message":"hi","idempotencyKey":"k1"}}"#,
    r#"{"type":"req","id":"n1","method":"no.such.method"}"#,
    r#"{"type":"req","id":"c99","method":"connect","params":{}}"#,
    r#"{"type":"req","id":"t1","method":"health","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#,
    r#"{"type":"req","id":"t2","method":"health","traceparent":"zz"}"#,
    r#"{"type":"req","id":"e1","method":"health","expectedProfileId":"p"}"#,
    r#"{"type":"req","id":"x1","method":"node.invoke.result","params":{}}"#,
    r#"{"type":"req","id":"x2","method":"chat.send","params":{}}"#,
    r#"{"type":"req","id":"x3","method":"config.set","params":{}}"#,
    // 30..: broken frames.
    "{",
    "",
    "null",
    "[]",
    r#"{"type":"req"}"#,
    r#"{"type":"event","event":"tick"}"#,
    r#"{"type":"req","id":"","method":"health"}"#,
    r#"{"type":"req","id":5,"method":"health"}"#,
    r#"{"type":"req","id":"b1","method":"health","bogus":true}"#,
    "\u{0}",
    "this is not json {",
    r#"{"type":"req","id":"l1","method":"health","traceparent":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
];

const CLIENTS: [(&str, &str); 8] = [
    ("cli", "cli"),
    ("cli", "probe"),
    ("gateway-client", "backend"),
    ("test", "test"),
    ("openclaw-macos", "ui"),
    ("openclaw-control-ui", "webchat"),
    ("node-host", "node"),
    ("webchat-ui", "webchat"),
];
const ROLES: [Option<&str>; 4] = [None, Some("operator"), Some("node"), Some("admin")];
const SCOPES: [&str; 4] = ["operator.read", "operator.write", "operator.admin", "operator.pairing"];
const PROTOCOLS: [(u64, u64); 4] = [(4, 4), (3, 3), (1, 99), (5, 6)];
pub(super) const METHODS: [&str; 26] = [
    "health",
    "config.schema.lookup",
    "usage.cost",
    "sessions.usage",
    "system.info",
    "diagnostics.stability",
    "diagnostics.lanes",
    "device.token.rotate",
    "device.token.revoke",
    "device.pair.rename",
    "last-heartbeat",
    "status",
    "system-presence",
    "config.get",
    "config.set",
    "config.patch",
    "agent",
    "chat.send",
    "sessions.list",
    "node.invoke.result",
    "exec.approval.resolve",
    "talk.config",
    "device.pair.list",
    "connect",
    "no.such",
    "x",
];
const EVENTS: [&str; 14] = [
    "tick",
    "health",
    "presence",
    "heartbeat",
    "shutdown",
    "update.available",
    "device.pair.requested",
    "chat.metadata.changed",
    "exec.approval.requested",
    "question.asked",
    "terminal.output",
    "plugin.x",
    "session.message",
    "zzz",
];

pub(super) fn params_choice(i: u8) -> Option<Value> {
    match i % 11 {
        0 => None,
        1 => Some(json!({})),
        2 => Some(json!({"probe": true})),
        3 => Some(json!({"x": 1})),
        4 => Some(json!([])),
        5 => Some(Value::Null),
        6 => Some(json!("s")),
        7 => Some(json!({"includeSecrets": true})),
        8 => Some(json!({"nodeId": "n"})),
        9 => Some(json!({"raw": "{}", "baseHash": "x"})),
        _ => Some(json!({"message": "hi", "idempotencyKey": "k"})),
    }
}

/// Op 1: a connect frame built from two bytes.
fn generated_connect(a: u8, b: u8) -> String {
    let (id, mode) = pick(&CLIENTS, a & 7);
    let mut p = json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": id, "version": "1", "platform": "linux", "mode": mode},
    });
    match (a >> 3) & 3 {
        0 => p["auth"] = json!({"token": TOKEN}),
        1 => p["auth"] = json!({"password": TOKEN}),
        2 => p["auth"] = json!({"token": "wrong-token"}),
        _ => {}
    }
    if let Some(r) = pick(&ROLES, a >> 5) {
        p["role"] = json!(r);
    }
    let scopes: Vec<&str> = SCOPES.iter().enumerate().filter(|(i, _)| b & (1 << i) != 0).map(|(_, s)| *s).collect();
    p["scopes"] = json!(scopes);
    let (min, max) = pick(&PROTOCOLS, (b >> 4) & 3);
    p["minProtocol"] = json!(min);
    p["maxProtocol"] = json!(max);
    if b & 0x40 != 0 {
        p["caps"] = json!([]);
        p["client"]["displayName"] = json!("host");
        p["client"]["instanceId"] = json!("16e5ad26-0c26-44a9-ad34-6d5d9c78a97e");
    }
    if b & 0x80 != 0 {
        p["device"] = json!({"id": "d", "publicKey": "AAAA", "signature": "AAAA", "signedAt": UNIX0, "nonce": "n"});
    }
    json!({"type": "req", "id": "gc", "method": "connect", "params": p}).to_string()
}

/// How a socket is opened and driven.
#[derive(Clone)]
struct SockSpec {
    ip: IpAddr,
    facts: RequestFacts,
    hold: bool,
    auto_pong: bool,
}

impl SockSpec {
    fn from_bits(bits: u8, scope_cap: bool, proxied: bool) -> Self {
        let mut facts = RequestFacts::default();
        if bits & 2 != 0 {
            facts.origin = Some("http://localhost:18789".into());
            facts.host = Some("127.0.0.1:18789".into());
        }
        if scope_cap {
            facts.scope_cap = Some(vec!["operator.read".into()]);
        }
        if proxied {
            facts.forwarded = true;
            facts.x_forwarded_for = Some("203.0.113.9".into());
        }
        let ip = if bits & 1 != 0 { IpAddr::from([192, 0, 2, 7]) } else { IpAddr::from([127, 0, 0, 1]) };
        SockSpec { ip, facts, hold: bits & 4 != 0, auto_pong: bits & 8 != 0 }
    }
}

/// Output invariants of one socket.
#[derive(Default)]
struct Checker {
    closes: u32,
    terminated: bool,
    /// The peer closed or the transport ended: nothing may follow.
    ended: bool,
    last_seq: u64,
    hellos: u32,
}

impl Checker {
    fn output(&mut self, o: &Output, phase_before: Phase, opening: bool) {
        assert!(!self.terminated, "output after Terminate: {o:?}");
        assert!(!self.ended, "output after the transport ended: {o:?}");
        if self.closes > 0 {
            assert!(matches!(o, Output::Terminate), "only Terminate may follow a Close, got {o:?}");
        }
        match o {
            Output::Close { reason, .. } => {
                self.closes += 1;
                assert_eq!(self.closes, 1, "more than one Close");
                assert!(reason.len() <= wire::CLOSE_REASON_MAX_BYTES, "close reason too long: {reason:?}");
            }
            Output::Terminate => self.terminated = true,
            Output::Send(text) => {
                let f: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("server sent invalid JSON ({e}): {text}"));
                let ty = f["type"].as_str().unwrap_or("");
                assert!(ty == "res" || ty == "event", "bad frame {f}");
                if ty == "event" {
                    if f["event"] == "connect.challenge" {
                        assert!(opening, "challenge after opening: {f}");
                    } else {
                        let seq = f["seq"].as_u64();
                        assert!(seq.is_some_and(|s| s > self.last_seq), "seq must increase: {f} after {}", self.last_seq);
                        self.last_seq = seq.unwrap_or(self.last_seq);
                    }
                }
                if f["payload"]["type"] == "hello-ok" {
                    self.hellos += 1;
                    assert_eq!(self.hellos, 1, "two hellos");
                }
            }
            Output::Dispatch(_) => assert_eq!(phase_before, Phase::Open, "dispatch while not open"),
            Output::Ping(_) => assert_eq!(phase_before, Phase::Open, "ping while not open"),
            Output::SetMaxMessageSize(n) => assert!(*n > 0),
        }
    }
}

struct Sock {
    /// The socket, driven as the shells drive it.
    sock: MemorySocket,
    spec: SockSpec,
    buffered: usize,
    held: Vec<Dispatch>,
    /// Payload of the last ping the connection asked for.
    last_ping: Vec<u8>,
    check: Checker,
}

struct World {
    base: Instant,
    now: Instant,
    hub: Arc<Hub>,
    socks: [Option<Sock>; 2],
    specs: [SockSpec; 2],
    next_conn: u64,
    next_req: u64,
}

impl Drop for World {
    fn drop(&mut self) {
        for i in 0..self.socks.len() {
            self.drop_sock(i);
        }
    }
}

impl World {
    fn unix(&self) -> u64 {
        unix_at(self.base, self.now)
    }

    /// The shell lets go of socket `i`: as the shells do, it reports the transport's end first
    /// (a dropped `ServerConnection` changes no shared state).
    fn drop_sock(&mut self, i: usize) {
        if let Some(mut s) = self.socks[i].take() {
            s.sock.at(self.now);
        }
    }

    /// Admit and open socket `i` (stays closed when the hub refuses the upgrade).
    fn open(&mut self, i: usize) {
        self.drop_sock(i);
        let spec = self.specs[i].clone();
        let Ok(admission) = self.hub.admit_upgrade(spec.ip, &spec.facts) else { return };
        self.next_conn += 1;
        let n = self.next_conn;
        let sock = MemorySocket::open(admission, n, self.now, self.unix());
        self.socks[i] = Some(Sock { sock, spec, buffered: 0, held: Vec::new(), last_ping: Vec::new(), check: Checker::default() });
        self.drain(i, Phase::AwaitingConnect, true);
    }

    fn sock(&mut self, i: usize) -> Option<&mut Sock> {
        if self.socks[i].is_none() {
            self.open(i);
        }
        self.socks[i].as_mut()
    }

    /// Drain socket `i`, answering dispatches inline unless they are held; check every output.
    fn drain(&mut self, i: usize, phase_before: Phase, opening: bool) {
        let (now, unix) = (self.now, self.unix());
        let Some(s) = self.socks[i].as_mut() else { return };
        let mut pinged = None;
        while let Some(o) = s.sock.conn.poll_output() {
            s.check.output(&o, phase_before, opening);
            match o {
                Output::Ping(payload) => {
                    s.last_ping = payload.clone();
                    pinged = Some(payload);
                }
                Output::Dispatch(d) => {
                    if s.spec.hold {
                        s.held.push(*d);
                    } else {
                        s.sock.perform(&d, now, unix);
                    }
                }
                _ => {}
            }
        }
        if let Some(payload) = pinged.filter(|_| s.spec.auto_pong) {
            s.sock.conn.handle_pong(now, &payload);
        }
        let phase = s.sock.conn.phase();
        if s.check.closes > 0 || s.check.terminated {
            assert!(matches!(phase, Phase::Closing | Phase::Closed), "phase {phase:?} after close");
        }
        match s.sock.conn.poll_timeout() {
            Some(d) => assert!(d >= now, "deadline {:?} is in the past (now {:?})", d - self.base, now - self.base),
            None => assert_eq!(phase, Phase::Closed, "no deadline while {phase:?}"),
        }
        if phase == Phase::Closed {
            assert_eq!(s.sock.conn.poll_timeout(), None);
        }
    }

    /// Feed the broadcasts and shutdown notices the hub handed socket `i`.
    fn deliver(&mut self, i: usize) {
        let Some(s) = self.socks[i].as_mut() else { return };
        let before = s.sock.conn.phase();
        let buffered = s.buffered;
        if s.sock.deliver_mail(self.now, buffered) > 0 {
            self.drain(i, before, false);
        }
    }

    fn deliver_all(&mut self) {
        self.deliver(0);
        self.deliver(1);
    }

    /// Move virtual time to `target`, firing every hub and socket deadline on the way in
    /// order, each at its exact instant; broadcasts are delivered as soon as they exist.
    fn advance(&mut self, target: Instant) {
        loop {
            let hub_due = self.hub.poll_timeout().max(self.now);
            let conn_due = self.socks.iter().flatten().filter_map(|s| s.sock.conn.poll_timeout()).min();
            for s in self.socks.iter().flatten() {
                if let Some(d) = s.sock.conn.poll_timeout() {
                    assert!(d >= self.now, "a deadline fell into the past: a timer was skipped");
                }
            }
            let next = conn_due.map_or(hub_due, |c| c.min(hub_due));
            if next > target {
                break;
            }
            self.now = next;
            if hub_due == next {
                self.hub.handle_timeout(next, self.unix());
                assert!(self.hub.poll_timeout() > next, "hub timer did not move forward");
            }
            for i in 0..2 {
                self.deliver(i);
                let unix = self.unix();
                let Some(s) = self.socks[i].as_mut() else { continue };
                if s.sock.conn.poll_timeout().is_some_and(|d| d <= next) {
                    let before = s.sock.conn.phase();
                    s.sock.conn.handle_timeout(next, unix);
                    self.drain(i, before, false);
                    let s = self.socks[i].as_ref().expect("socket still there");
                    assert!(s.sock.conn.poll_timeout().is_none_or(|d| d > next), "connection timer did not move forward");
                }
            }
        }
        self.now = target;
        self.deliver_all();
    }

    fn text(&mut self, i: usize, text: &str) {
        let unix = self.unix();
        let now = self.now;
        let Some(s) = self.sock(i) else { return };
        let before = s.sock.conn.phase();
        s.sock.conn.handle_text(now, unix, text);
        self.drain(i, before, false);
    }

    /// Run one op on socket `i`.
    fn op(&mut self, i: usize, kind: u8, r: &mut Bytes<'_>) {
        let now = self.now;
        let unix = self.unix();
        match kind {
            0 => {
                let t = pick(SERVER_TEXTS, r.u8());
                self.text(i, t);
            }
            1 => {
                let (a, b) = (r.u8(), r.u8());
                self.text(i, &generated_connect(a, b));
            }
            2 => {
                let (m, p) = (r.u8(), r.u8());
                self.next_req += 1;
                let mut f = json!({"type": "req", "id": format!("r{}", self.next_req), "method": pick(&METHODS, m)});
                if let Some(p) = params_choice(p) {
                    f["params"] = p;
                }
                self.text(i, &f.to_string());
            }
            3 => {
                let t = String::from_utf8_lossy(r.chunk()).into_owned();
                self.text(i, &t);
            }
            4 => {
                let b = r.chunk();
                let Some(s) = self.sock(i) else { return };
                let before = s.sock.conn.phase();
                s.sock.conn.handle_binary(now, unix, b);
                self.drain(i, before, false);
            }
            5 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.sock.conn.phase();
                // An unsolicited empty pong, or the echo of the last ping (a barrier's token).
                let payload = if r.u8() % 2 == 0 { Vec::new() } else { s.last_ping.clone() };
                s.sock.conn.handle_pong(now, &payload);
                self.drain(i, before, false);
            }
            6 => {
                let d = r.ms();
                self.advance(now + d);
            }
            7 => {
                self.hub.handle_timeout(now, unix);
                assert!(self.hub.poll_timeout() > now, "hub deadline not after a timer tick");
                self.deliver_all();
            }
            8 => {
                let sel = r.u8();
                let max = self.hub.settings().limits.max_buffered_bytes;
                if let Some(s) = self.socks[i].as_mut() {
                    s.buffered = pick(&[0, 1024, max - 1, max, max + 1, usize::MAX], sel);
                }
                self.deliver(i);
            }
            9 => {
                let (name, flags) = (r.u8(), r.u8());
                let event = pick(&EVENTS, name);
                let drop_if_slow = flags & 1 != 0;
                if flags & 2 != 0 {
                    let max = self.hub.settings().limits.max_buffered_bytes;
                    let buffered = pick(&[0, max, max + 1, usize::MAX], flags >> 2);
                    let b = Broadcast {
                        event: event.to_string(),
                        payload: Some(r#"{"ts":1}"#.into()),
                        gate: event_gate(event),
                        drop_if_slow,
                        state_version: (flags & 4 != 0).then(|| self.hub.state_version()),
                    };
                    let Some(s) = self.sock(i) else { return };
                    let before = s.sock.conn.phase();
                    s.sock.conn.handle_event(now, &Arc::new(b), buffered);
                    self.drain(i, before, false);
                } else {
                    self.hub.broadcast(event, Some(&json!({"ts": unix})), drop_if_slow);
                }
            }
            10 => {
                let (idx, ok) = (r.u8(), r.u8());
                let Some(s) = self.socks[i].as_mut() else { return };
                if s.held.is_empty() {
                    return;
                }
                let d = s.held.remove(idx as usize % s.held.len());
                let before = s.sock.conn.phase();
                if ok & 1 != 0 {
                    s.sock.perform(&d, now, unix);
                } else {
                    s.sock.conn.complete(&d.request_id, Reply::err(ErrorShape::unavailable("x")));
                }
                drop(d);
                self.drain(i, before, false);
            }
            11 => {
                let id = format!("r{}", r.u8());
                let Some(s) = self.socks[i].as_mut() else { return };
                let before = s.sock.conn.phase();
                s.sock.conn.complete(&id, Reply::Ok(None));
                self.drain(i, before, false);
            }
            12 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.sock.conn.phase();
                s.sock.conn.shutdown(now, wire::msg::GATEWAY_STOPPING);
                self.drain(i, before, false);
            }
            13 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.sock.conn.phase();
                s.sock.conn.handle_message_too_large(now);
                self.drain(i, before, false);
            }
            14 | 15 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.sock.conn.phase();
                if kind == 14 {
                    s.sock.conn.handle_peer_close(now);
                } else {
                    s.sock.conn.handle_transport_closed(now);
                }
                assert_eq!(s.sock.conn.phase(), Phase::Closed);
                self.drain(i, before, false);
                if let Some(s) = self.socks[i].as_mut() {
                    s.check.ended = true;
                }
            }
            16 => {
                // The shell drops the socket (held dispatches included) and a new one comes in.
                self.drop_sock(i);
                self.open(i);
            }
            17 => {
                self.hub.begin_drain();
                self.hub.shutdown_all(wire::msg::GATEWAY_STOPPING);
                self.deliver_all();
            }
            18 => {
                let idx = r.u8();
                if let Some(s) = self.socks[i].as_mut() {
                    if !s.held.is_empty() {
                        s.held.remove(idx as usize % s.held.len());
                    }
                }
            }
            _ => unreachable!("op kinds are taken modulo 19"),
        }
    }
}

/// A hub and up to two interleaved server connections driven by an op list on virtual time
/// (encoding in the module docs). Checks: no panic; nothing but `Terminate` after `Close`; at
/// most one `Close`; nothing after `Terminate` or the end of the transport; only valid JSON
/// `res`/`event` frames with increasing `seq`; at most one `hello-ok`; dispatches and pings only
/// while open; after every drain the next deadline is not in the past, and every timer moves
/// forward when it fires; when everything is dropped the hub holds no socket, pre-auth slot or
/// request permit.
pub fn server_connection(base: Instant, data: &[u8]) {
    let mut r = Bytes::new(data);
    let (h0, h1) = (r.u8(), r.u8());
    let mut settings = loopback_token_settings(TOKEN, PORT);
    match (h0 >> 4) & 3 {
        1 => {
            settings.auth.mode = AuthMode::Password;
            settings.auth.password = Some(Secret::new(TOKEN));
            settings.auth.token = None;
        }
        2 => {
            settings.auth.mode = AuthMode::None;
            settings.auth.token = None;
        }
        _ => {}
    }
    if h0 & 0x40 != 0 {
        settings.limits.request_queue_max = 2;
        settings.limits.max_pending_handshake_frames = 2;
        settings.limits.unauthorized_role_limit = 1;
        settings.limits.max_preauth_per_ip = 2;
    }
    let proxied = h0 & 0x80 != 0;
    if proxied {
        settings.trusted_proxies = IpNet::parse("127.0.0.1").into_iter().collect();
    }
    let hub = Hub::new(test_server_info(base, UNIX0), settings, base);
    let specs = [SockSpec::from_bits(h0, h1 & 0x20 != 0, proxied), SockSpec::from_bits(h1, h1 & 0x10 != 0, false)];
    let ips = [specs[0].ip, specs[1].ip];
    let mut w =
        World { base, now: base + Duration::from_millis(1), hub: hub.clone(), socks: [None, None], specs, next_conn: 0, next_req: 0 };
    let mut ops = 0;
    while !r.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = r.u8();
        w.op(usize::from(op >> 7), (op & 0x7f) % 19, &mut r);
    }
    // Whatever state we ended in, letting time pass finishes the sockets or keeps them open.
    let end = w.now + Duration::from_secs(200);
    w.advance(end);
    drop(w);
    assert_eq!(hub.connection_counts(), (0, 0), "sockets left registered in the hub");
    assert_eq!(hub.pending_requests(), 0, "request permits leaked");
    for ip in ips {
        assert_eq!(hub.preauth_count(ip), 0, "pre-auth slots leaked for {ip}");
    }
}
