//! Fuzz target bodies, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`, thin wrappers)
//! and the stable corpus replay test (`core/tests/fuzz_corpus_replay.rs`), so both run exactly
//! the same code on the same inputs.
//!
//! Every target takes arbitrary bytes and must never panic: a panic is either a core bug or a
//! broken invariant asserted here. Targets that need time take a `base: Instant` from the caller
//! and run on virtual time `base + d` (the core never reads the clock).
//!
//! | target | what it exercises |
//! |---|---|
//! | [`frame`] | `wire::parse_request` (lossy UTF-8 text), and on JSON: every protocol schema, `schema::validate` with the input as schema, `handshake::parse_connect_params` / `negotiate` / `resolve_role`, `scopes::authorize`, the client's `ServerFrame` parsing |
//! | [`server_connection`] | a `Hub` and up to two interleaved `ServerConnection`s driven by an op list on virtual time, with the output invariants checked after every op |
//! | [`client_connection`] | `ClientConnection` fed server texts, responses to its own requests and timeouts |
//! | [`config`] | port / bind / auth resolution, the startup auth gate, state dir and config path resolution; the JSON5 config file: `config_file::{parse_json5, load, merge_patch, plan_write}` |
//! | [`http`] | `http::route` on arbitrary request heads, `RequestFacts::from_headers`, `attribute`, `IpNet::parse`, `check_origin` |
//!
//! # Input encodings
//!
//! The encodings are hand-decoded (no `arbitrary` dependency): every byte string is a valid
//! input, reads past the end yield zeros, and `fuzz/make-seeds.py` writes seeds in the same
//! format. Multi-byte integers are little-endian; a *chunk* is a `u16` length followed by that
//! many bytes (cut short at the end of the input).
//!
//! **`server_connection`**: byte 0 configures the gateway and socket A, byte 1 socket B, then
//! ops until the input ends (at most [`MAX_OPS`]):
//!
//! * byte 0: bit 0 A connects from `192.0.2.7` (else `127.0.0.1`); bit 1 A's upgrade carries
//!   `Origin: http://localhost:18789`; bit 2 A's dispatches are held (answered by ops) instead of
//!   answered at once; bit 3 A answers every ping at once; bits 4–5 auth mode (0 token, 1
//!   password, 2 none, 3 token); bit 6 tight limits (request queue 2, 2 pending handshake frames,
//!   1 unauthorized call, 2 pre-auth sockets per IP); bit 7 A comes through a trusted proxy at
//!   `127.0.0.1` with `X-Forwarded-For: 203.0.113.9`;
//! * byte 1: the same bits 0–3 for socket B; bit 4 B's upgrade caps scopes to `operator.read`;
//!   bit 5 the same for A;
//! * op byte: bit 7 selects socket B (A otherwise; a socket is opened on first use), bits 0–6
//!   modulo 19 the op, followed by its arguments:
//!   `0` dictionary text (`u8` index into [`SERVER_TEXTS`]; 0 is a valid `cli` connect),
//!   `1` generated connect (`u8` client/credential/role, `u8` scopes/protocol/extras),
//!   `2` request (`u8` method, `u8` params), `3` text (chunk, lossy UTF-8),
//!   `4` binary (chunk), `5` pong, `6` advance time (`u16` ms, modulo 40 001, firing every
//!   deadline on the way), `7` hub timer tick, `8` deliver pending broadcasts (`u8` outbound
//!   backlog selector), `9` event (`u8` name, `u8` flags: bit 0 drop-if-slow, bit 1 straight to
//!   this socket with backlog selector `flags >> 2`, else through `Hub::broadcast`),
//!   `10` complete a held dispatch (`u8` index, `u8` bit 0 ok), `11` complete an arbitrary id
//!   (`u8`), `12` shutdown, `13` message too large, `14` peer close, `15` transport closed,
//!   `16` drop the socket and open a new one, `17` drain the hub (`begin_drain` + `shutdown_all`),
//!   `18` drop a held dispatch unanswered (`u8` index).
//!
//! **`client_connection`**: byte 0: bit 0 authenticate with a password instead of a token, bits
//! 1–2 calls made before the challenge, bit 3 they expect a final reply; then ops (op byte
//! modulo 7): `0` server text (chunk), `1` dictionary text (`u8`), `2` advance (`u16` ms modulo
//! 40 001), `3` call (`u8` method, `u8` bit 0 expect-final), `4` the server closed,
//! `5` the app closes, `6` answer a request the client sent (`u8` which, `u8` kind).
//!
//! **`config`** and **`http`**: lossy UTF-8 split on `\n` into fields; a field that is exactly
//! `~` (or missing) is `None`. `config` fields: cli port, env port, config port (`i64`), profile,
//! cli bind, config bind, custom bind host, bindable mask (first byte: bit 0 `127.0.0.1`, bit 1
//! the custom host), then mode/token/password for cli, config, env and `gateway.remote`, the OS
//! home, a directory that exists, then `KEY=VALUE` environment lines. After the first NUL byte
//! (if any) comes the text of a JSON5 config file (`$include` of `./a.json5` and `./self.json5`
//! resolve, other files do not; `${VAR}` reads the same environment). `http`: the first byte
//! (before the text) selects peer / trusted proxy / real-IP fallback / draining / auth mode;
//! fields are method, path, then `name: value` headers.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::auth::ingress::{IpNet, RequestFacts};
use crate::auth::scopes::{Role, event_gate};
use crate::auth::{AuthMode, Secret};
use crate::connection::client::{ClientConnection, ClientEvent, ClientOptions, ClientOutput};
use crate::connection::{Dispatch, Output, Phase, Reply, ServerConnection};
use crate::gateway::{Broadcast, EventSink, Hub};
use crate::testkit::{loopback_token_settings, test_server_info};
use crate::wire::{self, ErrorShape, FrameError};

/// The shared secret of every fuzzed gateway (the same as the captures and the test harness).
pub const TOKEN: &str = "testtoken123";
const PORT: u16 = 18789;
/// Wall-clock ms at `base`.
const UNIX0: u64 = 1_795_602_626_311;
/// Ops run per `server_connection` / `client_connection` input.
pub const MAX_OPS: usize = 400;
/// Longest time advance of one op, in ms.
const MAX_ADVANCE_MS: u16 = 40_000;

// ---- byte reader ---------------------------------------------------------------------------

/// Reads an input front to back; past the end every read yields zeros / empty slices.
struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }
    /// A `u16` length, then that many bytes.
    fn chunk(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
    fn ms(&mut self) -> Duration {
        Duration::from_millis(u64::from(self.u16() % (MAX_ADVANCE_MS + 1)))
    }
}

fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[i as usize % list.len()]
}

fn unix_at(base: Instant, now: Instant) -> u64 {
    UNIX0 + now.saturating_duration_since(base).as_millis() as u64
}

// ---- frame -----------------------------------------------------------------------------------

const PROTOCOL_SCHEMAS: [&str; 12] = [
    "HelloOkSchema",
    "GatewayFrameSchema",
    "ErrorShapeSchema",
    "ConnectParamsSchema",
    "EventFrameSchema",
    "SnapshotSchema",
    "RequestFrameSchema",
    "PresenceEntrySchema",
    "ShutdownEventSchema",
    "StateVersionSchema",
    "TickEventSchema",
    "ResponseFrameSchema",
];

/// Frame parsing and validation on arbitrary bytes (as lossy UTF-8 text and as raw JSON).
pub fn frame(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_parse_request(&text);

    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    // The value path agrees with the text path.
    assert_eq!(wire::request_from_value(v.clone()).is_ok(), wire::parse_request(&text).is_ok(), "text and value parsing disagree");
    for name in PROTOCOL_SCHEMAS {
        let schema = wire::schema(name);
        assert!(schema.is_object(), "{name} missing");
        check_validate(schema, &v);
    }
    // The input as a schema, against itself and a few fixed instances.
    check_validate(&v, &v);
    for inst in [json!(null), json!({"type": "req", "id": "1", "method": "health"}), json!([1, "a", {}]), json!("x")] {
        check_validate(&v, &inst);
    }
    // Connect params: the value itself and its `params`.
    for p in [Some(&v), v.get("params")] {
        if let Ok(cp) = crate::connection::handshake::parse_connect_params(p) {
            let _ = crate::connection::handshake::negotiate(&cp);
            let _ = crate::connection::handshake::resolve_role(&cp);
            let _ = crate::connection::handshake::keeps_requested_scopes(&cp.client, false, true);
        }
    }
    // What a client makes of it.
    let _ = serde_json::from_value::<wire::ServerFrame>(v.clone());
    let _ = serde_json::from_value::<wire::ErrorShape>(v.clone());
    if let (Some(method), params) = (v.get("method").and_then(Value::as_str), v.get("params")) {
        let scopes: Vec<String> =
            v.get("scopes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
        for role in [Role::Operator, Role::Node] {
            let _ = crate::auth::scopes::authorize(role, &scopes, method, params);
        }
        let _ = crate::auth::scopes::required_scope(method, params);
        let _ = crate::auth::scopes::event_gate(method);
    }
}

/// JSON equality with numbers compared as `f64` within a relative 1e-12.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w))),
        _ => a == b,
    }
}

fn check_validate(schema: &Value, v: &Value) {
    let errors = crate::wire::schema::collect_errors(schema, v);
    assert!(errors.len() <= crate::wire::schema::MAX_RAW_ERRORS);
    match crate::wire::schema::validate(schema, v) {
        Ok(()) => assert!(errors.is_empty()),
        Err(msg) => assert!(!msg.is_empty() && !errors.is_empty()),
    }
}

/// `parse_request` never panics; what it accepts is a normalized, closed request frame that
/// parses back to itself; what it refuses gets a well-formed error response.
fn check_parse_request(text: &str) {
    match wire::parse_request(text) {
        Ok(r) => {
            assert!(!r.id.is_empty() && !r.method.is_empty(), "empty id/method accepted: {r:?}");
            let mut back = serde_json::to_value(&r).expect("request serializes");
            back["type"] = json!("req");
            assert!(
                crate::wire::schema::validate(wire::schema("RequestFrameSchema"), &back).is_ok(),
                "normalized request fails the schema: {back}"
            );
            let again = wire::parse_request(&back.to_string()).expect("a normalized request parses again");
            // serde_json's float parsing may be one ULP off (no `float_roundtrip`), so numbers
            // compare approximately; everything else exactly.
            assert!(
                again.id == r.id
                    && again.method == r.method
                    && again.traceparent == r.traceparent
                    && again.expected_profile_id == r.expected_profile_id
                    && match (&again.params, &r.params) {
                        (Some(a), Some(b)) => same_json(a, b),
                        (a, b) => a == b,
                    },
                "normalization is not idempotent: {r:?} became {again:?}"
            );
            let ok = wire::response_ok(&r.id, r.params.as_ref());
            assert!(serde_json::from_str::<Value>(&ok).is_ok(), "response_ok is not JSON: {ok}");
        }
        Err(FrameError::NotJson) => assert!(serde_json::from_str::<Value>(text).is_err()),
        Err(FrameError::NotRequest { id, detail }) => {
            assert!(!detail.is_empty());
            let e = ErrorShape::invalid_request(format!("{}: {detail}", wire::msg::INVALID_REQUEST_FRAME));
            let res = wire::response_err(&id.unwrap_or(json!("invalid")), None, &e);
            let parsed: Value = serde_json::from_str(&res).unwrap_or_else(|e| panic!("error response is not JSON ({e}): {res}"));
            assert_eq!(parsed["ok"], json!(false));
        }
    }
}

// ---- server_connection -------------------------------------------------------------------------

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
const METHODS: [&str; 16] = [
    "health",
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

fn params_choice(i: u8) -> Option<Value> {
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

/// Collects what the hub hands one socket.
#[derive(Default)]
struct Sink {
    events: Mutex<Vec<Arc<Broadcast>>>,
    shutdowns: Mutex<Vec<String>>,
}

impl EventSink for Sink {
    fn deliver(&self, event: Arc<Broadcast>) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
    fn shutdown(&self, reason: &str) {
        self.shutdowns.lock().unwrap_or_else(|p| p.into_inner()).push(reason.to_string());
    }
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
    conn: ServerConnection,
    sink: Arc<Sink>,
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
            s.conn.handle_transport_closed(self.now);
        }
    }

    /// Admit and open socket `i` (stays closed when the hub refuses the upgrade).
    fn open(&mut self, i: usize) {
        self.drop_sock(i);
        let spec = self.specs[i].clone();
        let Ok(admission) = self.hub.admit_upgrade(spec.ip, &spec.facts) else { return };
        self.next_conn += 1;
        let n = self.next_conn;
        let sink = Arc::new(Sink::default());
        let conn = ServerConnection::new(
            admission,
            format!("00000000-0000-4000-8000-{n:012}"),
            format!("11111111-1111-4111-8111-{n:012}"),
            sink.clone(),
            self.now,
            self.unix(),
        );
        self.socks[i] = Some(Sock { conn, sink, spec, buffered: 0, held: Vec::new(), last_ping: Vec::new(), check: Checker::default() });
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
        let hub = self.hub.clone();
        let Some(s) = self.socks[i].as_mut() else { return };
        let mut pinged = None;
        while let Some(o) = s.conn.poll_output() {
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
                        crate::methods::perform_without_io(&mut s.conn, &hub, &d, now, unix);
                    }
                }
                _ => {}
            }
        }
        if let Some(payload) = pinged.filter(|_| s.spec.auto_pong) {
            s.conn.handle_pong(now, &payload);
        }
        let phase = s.conn.phase();
        if s.check.closes > 0 || s.check.terminated {
            assert!(matches!(phase, Phase::Closing | Phase::Closed), "phase {phase:?} after close");
        }
        match s.conn.poll_timeout() {
            Some(d) => assert!(d >= now, "deadline {:?} is in the past (now {:?})", d - self.base, now - self.base),
            None => assert_eq!(phase, Phase::Closed, "no deadline while {phase:?}"),
        }
        if phase == Phase::Closed {
            assert_eq!(s.conn.poll_timeout(), None);
        }
    }

    /// Feed the broadcasts and shutdown notices the hub handed socket `i`.
    fn deliver(&mut self, i: usize) {
        let Some(s) = self.socks[i].as_mut() else { return };
        let events = std::mem::take(&mut *s.sink.events.lock().unwrap_or_else(|p| p.into_inner()));
        let shutdowns = std::mem::take(&mut *s.sink.shutdowns.lock().unwrap_or_else(|p| p.into_inner()));
        for ev in events {
            let Some(s) = self.socks[i].as_mut() else { return };
            let before = s.conn.phase();
            s.conn.handle_event(self.now, &ev, s.buffered);
            self.drain(i, before, false);
        }
        for reason in shutdowns {
            let Some(s) = self.socks[i].as_mut() else { return };
            let before = s.conn.phase();
            s.conn.shutdown(self.now, &reason);
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
            let conn_due = self.socks.iter().flatten().filter_map(|s| s.conn.poll_timeout()).min();
            for s in self.socks.iter().flatten() {
                if let Some(d) = s.conn.poll_timeout() {
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
                if s.conn.poll_timeout().is_some_and(|d| d <= next) {
                    let before = s.conn.phase();
                    s.conn.handle_timeout(next, unix);
                    self.drain(i, before, false);
                    let s = self.socks[i].as_ref().expect("socket still there");
                    assert!(s.conn.poll_timeout().is_none_or(|d| d > next), "connection timer did not move forward");
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
        let before = s.conn.phase();
        s.conn.handle_text(now, unix, text);
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
                let before = s.conn.phase();
                s.conn.handle_binary(now, unix, b);
                self.drain(i, before, false);
            }
            5 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.conn.phase();
                // An unsolicited empty pong, or the echo of the last ping (a barrier's token).
                let payload = if r.u8() % 2 == 0 { Vec::new() } else { s.last_ping.clone() };
                s.conn.handle_pong(now, &payload);
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
                    let before = s.conn.phase();
                    s.conn.handle_event(now, &Arc::new(b), buffered);
                    self.drain(i, before, false);
                } else {
                    self.hub.broadcast(event, Some(&json!({"ts": unix})), drop_if_slow);
                }
            }
            10 => {
                let (idx, ok) = (r.u8(), r.u8());
                let hub = self.hub.clone();
                let Some(s) = self.socks[i].as_mut() else { return };
                if s.held.is_empty() {
                    return;
                }
                let d = s.held.remove(idx as usize % s.held.len());
                let before = s.conn.phase();
                if ok & 1 != 0 {
                    crate::methods::perform_without_io(&mut s.conn, &hub, &d, now, unix);
                } else {
                    s.conn.complete(&d.request_id, Reply::err(ErrorShape::unavailable("x")));
                }
                drop(d);
                self.drain(i, before, false);
            }
            11 => {
                let id = format!("r{}", r.u8());
                let Some(s) = self.socks[i].as_mut() else { return };
                let before = s.conn.phase();
                s.conn.complete(&id, Reply::Ok(None));
                self.drain(i, before, false);
            }
            12 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.conn.phase();
                s.conn.shutdown(now, wire::msg::GATEWAY_STOPPING);
                self.drain(i, before, false);
            }
            13 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.conn.phase();
                s.conn.handle_message_too_large(now);
                self.drain(i, before, false);
            }
            14 | 15 => {
                let Some(s) = self.sock(i) else { return };
                let before = s.conn.phase();
                if kind == 14 {
                    s.conn.handle_peer_close(now);
                } else {
                    s.conn.handle_transport_closed(now);
                }
                assert_eq!(s.conn.phase(), Phase::Closed);
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

// ---- client_connection -----------------------------------------------------------------------

/// Server texts for op 1 of [`client_connection`].
const CLIENT_TEXTS: &[&str] = &[
    r#"{"type":"event","event":"connect.challenge","payload":{"nonce":"05ea8d9c-bee5-4a76-b001-903e38d96a29","ts":1795602626311,"capabilities":["model-catalog-snapshot"]}}"#,
    r#"{"type":"event","event":"tick","payload":{"ts":1795602656311},"seq":1}"#,
    r#"{"type":"event","event":"tick","payload":{"ts":1795602656311},"seq":3}"#,
    r#"{"type":"event","event":"health","payload":{},"seq":2,"stateVersion":{"presence":1,"health":2}}"#,
    r#"{"type":"event","event":"shutdown","payload":{"reason":"gateway stopping"}}"#,
    r#"{"type":"res","id":"1:fuzz","ok":true,"payload":{"type":"hello-ok","protocol":4,"policy":{"tickIntervalMs":30000}}}"#,
    r#"{"type":"res","id":"1:fuzz","ok":false,"error":{"code":"INVALID_REQUEST","message":"unauthorized"}}"#,
    r#"{"type":"res","id":"2:fuzz","ok":true,"payload":{"status":"accepted"}}"#,
    r#"{"type":"res","id":"2:fuzz","ok":true,"payload":{"status":"ok"}}"#,
    r#"{"type":"res","id":7,"ok":true}"#,
    r#"{"type":"event","event":"connect.challenge"}"#,
    r#"{"type":"req","id":"1","method":"health"}"#,
    "not json",
    "",
];

const TICKS: [u64; 6] = [30_000, 1, 1_000, 0, 4_294_967_295, u64::MAX];

/// `ClientConnection` fed arbitrary server texts, answers to its own requests and timeouts
/// (encoding in the module docs). Checks: no panic; every frame it sends is a request the
/// server's parser accepts, the first one a `connect`; at most one close and nothing after it;
/// at most one hello; the deadline is never in the past and moves forward when it fires.
pub fn client_connection(base: Instant, data: &[u8]) {
    let mut r = Bytes::new(data);
    let h = r.u8();
    let mut opts = ClientOptions::cli(&["operator.read"]);
    if h & 1 != 0 {
        opts.password = Some(TOKEN.into());
    } else {
        opts.token = Some(TOKEN.into());
    }
    let mut now = base;
    let mut c = ClientConnection::new(opts, "fuzz".into(), now);
    for k in 0..(h >> 1) & 3 {
        c.call(pick(&METHODS, k), None, h & 8 != 0);
    }
    let mut sent: Vec<String> = Vec::new();
    let mut closed_out = false;
    let mut hellos = 0;
    let mut ops = 0;
    while !r.is_empty() && ops < MAX_OPS {
        ops += 1;
        match r.u8() % 7 {
            0 => {
                let t = String::from_utf8_lossy(r.chunk()).into_owned();
                c.handle_text(now, &t);
            }
            1 => c.handle_text(now, pick(CLIENT_TEXTS, r.u8())),
            2 => {
                now += r.ms();
                if c.poll_timeout().is_some_and(|d| d <= now) {
                    c.handle_timeout(now);
                    assert!(c.poll_timeout().is_none_or(|d| d > now), "client timer did not move forward");
                }
            }
            3 => {
                let (m, f) = (r.u8(), r.u8());
                if !c.is_closed() {
                    c.call(pick(&METHODS, m), params_choice(f >> 1), f & 1 != 0);
                }
            }
            4 => c.handle_closed(),
            5 => c.close("bye"),
            _ => {
                let (which, kind) = (r.u8(), r.u8());
                let id = if sent.is_empty() { "1:fuzz".to_string() } else { sent[which as usize % sent.len()].clone() };
                let frame = match kind % 6 {
                    0 => json!({"type": "res", "id": id, "ok": true,
                        "payload": {"type": "hello-ok", "protocol": 4, "policy": {"tickIntervalMs": pick(&TICKS, kind / 6)}}}),
                    1 => json!({"type": "res", "id": id, "ok": true, "payload": {"status": "accepted"}}),
                    2 => json!({"type": "res", "id": id, "ok": true, "payload": {"status": "ok"}}),
                    3 => json!({"type": "res", "id": id, "ok": false, "error": {"code": "INVALID_REQUEST", "message": "no"}}),
                    4 => json!({"type": "event", "event": "tick", "payload": {"ts": 1}, "seq": kind / 6}),
                    _ => json!({"type": "res", "id": id, "ok": true}),
                };
                c.handle_text(now, &frame.to_string());
            }
        }
        while let Some(o) = c.poll_output() {
            assert!(!closed_out, "client output after its close: {o:?}");
            match o {
                ClientOutput::Send(text) => {
                    let req = wire::parse_request(&text).unwrap_or_else(|e| panic!("client sent a frame the server refuses ({e}): {text}"));
                    if sent.is_empty() {
                        assert_eq!(req.method, "connect", "the first frame must be the connect");
                    }
                    sent.push(req.id);
                }
                ClientOutput::Close { .. } => closed_out = true,
            }
        }
        while let Some(e) = c.poll_event() {
            match e {
                ClientEvent::Hello(_) => {
                    hellos += 1;
                    assert_eq!(hellos, 1, "two hellos");
                    assert!(c.is_open() || c.is_closed());
                }
                ClientEvent::ConnectFailed(_) | ClientEvent::TimedOut { .. } => assert!(c.is_closed()),
                _ => {}
            }
        }
        if let Some(d) = c.poll_timeout() {
            assert!(d >= now, "client deadline in the past");
        }
    }
}

// ---- config ------------------------------------------------------------------------------------

fn fields(data: &[u8]) -> Vec<Option<String>> {
    String::from_utf8_lossy(data).split('\n').map(|l| (l != "~").then(|| l.to_string())).collect()
}

/// The config resolvers on arbitrary strings (encoding in the module docs). Checks: resolved
/// ports are 1..=65535 and a valid `--port` wins; bind plans listen on their own host; the auth
/// gate's answers are consistent with the mode and the bind; exit codes are 1 or 78; state dir
/// and config path are never empty.
pub fn config(data: &[u8]) {
    use crate::config::*;
    let (data, file) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(String::from_utf8_lossy(&data[i + 1..]).into_owned())),
        None => (data, None),
    };
    let f = fields(data);
    let get = |i: usize| f.get(i).cloned().flatten();

    let (cli_port, env_port, profile) = (get(0), get(1), get(3));
    let cfg_port = get(2).and_then(|s| s.trim().parse::<i64>().ok());
    if let Some(e) = &env_port {
        if let Some(p) = parse_env_port(e) {
            assert!(p >= 1);
        }
    }
    match resolve_port(cli_port.as_deref(), env_port.as_deref(), cfg_port, profile.as_deref()) {
        Ok(p) => {
            assert!(p >= 1, "port 0 resolved");
            if let Some(c) = &cli_port {
                assert_eq!(c.trim().parse::<u16>().ok(), Some(p), "--port {c:?} did not win");
            }
        }
        Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
    }
    if let Some(p) = &profile {
        let _ = fnv1a32(p.as_bytes());
    }

    let mask = get(7).and_then(|s| s.bytes().next()).unwrap_or(0);
    let custom = get(6);
    let plan = match resolve_bind_mode(get(4).as_deref(), get(5).as_deref()) {
        Ok(mode) => {
            assert_eq!(BindMode::parse(mode.as_str()), Some(mode));
            let loopback = IpAddr::from([127, 0, 0, 1]);
            let plan = resolve_bind_plan(mode, custom.as_deref(), |ip| if ip == loopback { mask & 1 != 0 } else { mask & 2 != 0 });
            match &plan {
                Ok(plan) => {
                    assert_eq!(plan.mode, mode);
                    assert!(
                        plan.listeners.iter().any(|(a, optional)| *a == plan.host && !optional),
                        "plan does not listen on its host: {plan:?}"
                    );
                }
                Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
            }
            plan.ok()
        }
        Err(e) => {
            assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty());
            None
        }
    };

    let inputs = |at: usize| AuthInputs { mode: get(at), token: get(at + 1), password: get(at + 2) };
    let (cli, cfg, env, remote) = (inputs(8), inputs(11), inputs(14), inputs(17));
    match resolve_auth(&cli, &cfg, &env, &remote) {
        Ok(auth) => {
            assert_eq!(AuthMode::parse(auth.mode.as_str()), Some(auth.mode));
            for s in [&auth.token, &auth.password].into_iter().flatten() {
                assert!(!s.expose().trim().is_empty(), "blank secret resolved");
            }
            if auth.explicit_secret {
                assert!(auth.token.is_some() || auth.password.is_some());
            }
            if let Some(plan) = &plan {
                match startup_auth_gate(&auth, plan) {
                    Ok(generate) => {
                        if generate {
                            assert!(auth.mode == AuthMode::Token && auth.token.is_none());
                        }
                        if !is_loopback_host(&plan.host) {
                            assert!(auth.explicit_secret || auth.mode == AuthMode::TrustedProxy, "non-loopback bind without a secret");
                        }
                        if auth.mode == AuthMode::Password {
                            assert!(auth.password.is_some());
                        }
                    }
                    Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
                }
            }
        }
        Err(e) => assert!(matches!(e.exit_code, EXIT_CONFIG | EXIT_FAILURE) && !e.message.is_empty()),
    }

    let os_home = get(20);
    let exists_dir = get(21);
    let env_map: Vec<(String, String)> =
        f.iter().skip(22).flatten().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let env_fn = |k: &str| env_map.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let exists = |p: &str| exists_dir.as_deref().is_some_and(|d| !d.is_empty() && p == d);
    let state_dir = resolve_state_dir(env_fn, os_home.clone(), exists);
    assert!(!state_dir.is_empty(), "empty state dir");
    let config_path = resolve_config_path(env_fn, &state_dir, os_home.as_deref());
    if env_fn("OPENCLAW_CONFIG_PATH").is_none_or(|p| p.trim().is_empty()) {
        assert_eq!(config_path, format!("{state_dir}/openclaw.json"));
    }
    client_target(&get);
    if let Some(text) = file {
        config_file(&text, &env_fn);
    }
}

/// Which gateway a client command goes to, on the same fuzzed fields. Checks: a target is a
/// `ws://`/`wss://` URL, plaintext only to hosts that allow it; credentials are never blank;
/// `--url` never carries implicit credentials; messages are never empty.
fn client_target(get: &dyn Fn(usize) -> Option<String>) {
    use crate::auth::Secret;
    use crate::connection::client_target::*;
    let field = |i: usize| match get(i) {
        None => SecretField::Absent,
        Some(v) if v.starts_with('!') => SecretField::Unresolved(v),
        Some(v) => SecretField::Value(Secret::new(v)),
    };
    let i = ClientInputs {
        url_flag: get(4),
        port_flag: get(0),
        token_flag: get(9),
        password_flag: get(10),
        env_url: get(5),
        env_port: get(1),
        env_token: get(15),
        env_password: get(16),
        env_profile: get(3),
        config_path: "/h/.openclaw/openclaw.json".into(),
        config: get(6).map(|mode| ClientConfig {
            mode: Some(mode),
            port: get(2).and_then(|p| p.trim().parse().ok()),
            auth_mode: get(8).and_then(|m| crate::auth::AuthMode::parse(&m)),
            remote_url: get(7),
            auth_token: field(12),
            auth_password: field(13),
            remote_token: field(18),
            remote_password: field(19),
        }),
        config_error: None,
        running: None,
        kept_token: get(11).map(|t| (Secret::new(t), "/k".to_string())),
        kept_token_path: "/k".into(),
    };
    match resolve(&i) {
        Ok(t) => {
            let (rest, tls) = match (t.url.strip_prefix("ws://"), t.url.strip_prefix("wss://")) {
                (Some(r), _) => (r, false),
                (None, Some(r)) => (r, true),
                _ => panic!("target is not a WebSocket URL: {}", t.url),
            };
            assert!(!rest.is_empty());
            if !tls {
                let authority = rest.split('/').next().unwrap_or_default();
                let host = match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default(),
                    None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
                };
                assert!(plaintext_allowed(host), "plaintext ws:// to {host}");
            }
            for c in [&t.token, &t.password].into_iter().flatten() {
                assert!(!c.secret.expose().trim().is_empty(), "blank credential from {}", c.source);
            }
            if t.source == TargetSource::UrlFlag {
                for c in [&t.token, &t.password].into_iter().flatten() {
                    assert!(c.source.starts_with("--"), "--url with an implicit credential from {}", c.source);
                }
            }
            assert!(!unreachable_message(&t, "ECONNREFUSED", &i.config_path).is_empty());
            assert!(!refusal_message(&t, "INVALID_REQUEST", "m", None).is_empty());
        }
        Err(e) => assert!(!e.message.is_empty() && !e.kind.is_empty()),
    }
}

/// Resolves `$include`s of the fuzzed config file from memory.
struct MemIncludes;

impl crate::config::file::IncludeReader for MemIncludes {
    fn read(&mut self, path: &std::path::Path) -> Result<String, String> {
        match path.file_name().and_then(|n| n.to_str()) {
            Some("a.json5") => Ok("{gateway: {port: 28801, auth: {token: '${TOK}'}}, // included\n}".into()),
            Some("self.json5") => Ok(r#"{"$include": "./self.json5"}"#.into()),
            _ => Err("not found".into()),
        }
    }
}

/// The JSON5 config file: parse, load (includes, `${VAR}`, validation), merge patch, writes.
/// Checks: syntax errors point at a line and column >= 1; merge patches are idempotent; a loaded
/// port resolves; a planned write loads and plans again to the same text.
fn config_file(text: &str, env: &dyn Fn(&str) -> Option<String>) {
    use crate::config::file::{self as cf, ConfigError, ConfigWrite};
    const FILE: &str = "/home/u/.openclaw/openclaw.json";
    match cf::parse_json5(FILE, text) {
        Ok(v) => {
            let mut once = json!({"gateway": {"port": 18789, "auth": {"mode": "token"}}, "x": [1]});
            cf::merge_patch(&mut once, &v);
            let mut twice = once.clone();
            cf::merge_patch(&mut twice, &v);
            assert_eq!(once, twice, "merge patch is not idempotent");
            let _ = cf::hash_value(&v);
        }
        Err(ConfigError::Syntax { line, column, message, .. }) => assert!(line >= 1 && column >= 1 && !message.is_empty()),
        Err(e) => panic!("parse_json5 failed with a non-syntax error: {e}"),
    }
    // The same bytes as a damaged pairing store: every salvaged record is filed under its id.
    let salvaged = crate::auth::device::salvage_store(text.as_bytes());
    assert!(salvaged.store.devices.iter().all(|(k, d)| *k == d.device_id));
    assert!(salvaged.store.pending.iter().all(|(k, r)| *k == r.request_id));
    match cf::load(FILE, text, env, &mut MemIncludes, &[]) {
        Ok(c) => {
            assert!(c.source.is_object() && c.resolved.is_object());
            if let Ok(p) = crate::config::resolve_port(None, None, c.gateway.port, None) {
                assert!(p >= 1);
            }
        }
        Err(e) => assert!(!e.one_line().is_empty()),
    }
    // `config.apply` of the text over itself, and `config.patch` of it onto no file.
    let current = Some(text.as_bytes());
    let apply = ConfigWrite { patch: false, raw: text.to_string(), base_hash: Some(cf::file_hash(text.as_bytes())) };
    let patch = ConfigWrite { patch: true, raw: text.to_string(), base_hash: None };
    for (cur, w) in [(current, &apply), (None, &patch)] {
        if let Ok(new) = cf::plan_write(FILE, cur, w) {
            assert!(cf::parse_json5(FILE, &new).is_ok(), "planned config does not parse: {new}");
            let again = ConfigWrite { patch: false, raw: new.clone(), base_hash: Some(cf::file_hash(new.as_bytes())) };
            assert_eq!(
                cf::plan_write(FILE, Some(new.as_bytes()), &again).as_ref(),
                Ok(&new),
                "writing the planned config again changes it"
            );
        }
    }
}

// ---- http --------------------------------------------------------------------------------------

const PEERS: [[u16; 8]; 4] = [
    [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1],      // ::ffff:127.0.0.1
    [0, 0, 0, 0, 0, 0, 0, 1],                // ::1
    [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0207], // ::ffff:192.0.2.7
    [0x2001, 0xdb8, 0, 0, 0, 0, 0, 7],       // 2001:db8::7
];

/// HTTP routing and ingress on arbitrary request heads (encoding in the module docs). Checks:
/// statuses are valid; an address always belongs to the net parsed from it; refused and dropped
/// upgrades give their pre-auth slot back.
pub fn http(base: Instant, data: &[u8]) {
    let (h, rest) = data.split_first().map_or((0, &[][..]), |(h, r)| (*h, r));
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("GET").trim_end_matches('\r').to_string();
    let path = lines.next().unwrap_or("/").trim_end_matches('\r').to_string();
    let header_lines: Vec<(String, Vec<u8>)> = lines
        .take(32)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim_end_matches('\r').trim_start().as_bytes().to_vec()))
        .collect();
    let headers: Vec<(&str, &[u8])> = header_lines.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();

    let remote = match h & 7 {
        0 => IpAddr::from([127, 0, 0, 1]),
        1 => IpAddr::from([192, 0, 2, 7]),
        2 => IpAddr::from([10, 1, 2, 3]),
        n => IpAddr::from(PEERS[usize::from(n - 3) % PEERS.len()]),
    };
    let mut settings = loopback_token_settings(TOKEN, PORT);
    if h & 8 != 0 {
        settings.trusted_proxies = ["127.0.0.1", "10.0.0.0/8", "::1"].into_iter().filter_map(IpNet::parse).collect();
    }
    settings.allow_real_ip_fallback = h & 16 != 0;
    if h & 32 != 0 {
        settings.auth.mode = AuthMode::Password;
        settings.auth.password = Some(Secret::new(TOKEN));
    }
    settings.control_ui_allowed_origins = vec!["https://control.example".into()];
    settings.host_header_origin_fallback = h & 64 != 0;
    // Every API route on, so their request handlers see the fuzzed bodies.
    let api = serde_json::json!({
        "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
        "models": {"providers": {"p": {"baseUrl": "http://127.0.0.1:9/v1", "apiKey": "k", "api": "openai-completions", "models": [{"id": "m"}]}}},
        "agents": {"defaults": {"model": {"primary": "p/m"}}, "entries": if h & 64 != 0 { serde_json::json!({"main": {}, "research": {}}) } else { serde_json::json!({}) }},
        "memory": {"search": {"provider": "openai-compatible", "model": "e", "remote": {"baseUrl": "http://127.0.0.1:9/v1"}}},
        "plugins": {"entries": {"admin-http-rpc": {"enabled": true}}},
        "hooks": {"enabled": true, "token": "hook-token-0123456789"},
    });
    settings.api = std::sync::Arc::new(crate::config::api::ApiConfig::from_config(&api, &Default::default()));
    let hub = Hub::new(test_server_info(base, UNIX0), settings.clone(), base);
    if h & 128 != 0 {
        hub.begin_drain();
    }

    // Ingress pieces on their own.
    let facts = RequestFacts::from_headers(headers.iter().copied());
    let attribution = crate::auth::ingress::attribute(remote, &facts, &settings.trusted_proxies, settings.allow_real_ip_fallback);
    if let Some(ip) = attribution.client_ip() {
        let _ = crate::auth::is_loopback_ip(&ip);
    }
    for (_, v) in &header_lines {
        let s = String::from_utf8_lossy(v);
        for part in s.split(',') {
            if let Some(net) = IpNet::parse(part) {
                let addr = part.trim().split('/').next().unwrap_or("");
                if let Ok(ip) = addr.parse::<IpAddr>() {
                    assert!(net.contains(ip), "{part:?} does not contain its own address");
                }
            }
        }
    }
    if let Some(origin) = &facts.origin {
        for local in [false, true] {
            let _ = crate::auth::origin::check_origin(
                origin,
                facts.host.as_deref(),
                &settings.control_ui_allowed_origins,
                settings.host_header_origin_fallback,
                local,
            );
        }
    }

    // The router.
    let now = base + Duration::from_millis(5);
    let head = crate::http::RequestHead { method: &method, path: &path, query: "", headers: &headers, remote };
    match crate::http::route(&hub, &head, now, unix_at(base, now)) {
        crate::http::HttpAction::Respond(res) | crate::http::HttpAction::RespondAfter(_, res) => {
            assert!((100..600).contains(&res.status), "status {}", res.status)
        }
        crate::http::HttpAction::GetResponse { id, .. } => {
            let r = crate::http::stored_response_missing(&hub, &id);
            assert_eq!(r.status, 404);
        }
        crate::http::HttpAction::Store(job) => {
            let r = job.run(&hub, None, unix_at(base, now));
            assert!((100..600).contains(&r.status));
        }
        crate::http::HttpAction::ReadBody { request, limit } => {
            assert!(limit > 0);
            // Whatever the body, the answer is a decision, never a panic.
            let env = crate::http::Env { now, unix_ms: unix_at(base, now), random: [7; 32] };
            if let crate::http::ApiAction::Respond(r) = crate::http::handle_body(&hub, &request, data, &env) {
                assert!((100..600).contains(&r.status));
            }
        }
        crate::http::HttpAction::ControlUi(job) => {
            // No UI directory in the fuzzer: the decisions that need no file.
            let r = job.unavailable(&crate::http::control_ui::Unavailable::NotConfigured);
            assert!(matches!(r.status, 200 | 404 | 406), "status {}", r.status);
            assert!(!job.target.rel.starts_with('/') && !job.target.rel.split('/').any(|s| s == ".."), "unsafe {:?}", job.target.rel);
            // A UI directory's files are input too: the fuzzed body as `index.html` and as a
            // static file, with the fuzzed conditional headers of the job.
            let html = String::from_utf8_lossy(data);
            let rendered = crate::http::control_ui::render_index(&html, "/openclaw", h & 1 != 0);
            let served = String::from_utf8_lossy(&rendered.body).into_owned();
            assert_eq!(crate::http::control_ui::inline_script_hashes(&served), rendered.script_hashes, "hashes are of the served HTML");
            assert!(!served.contains("<base ") || html.contains("<base "), "a <base> was injected");
            let r = job.index(&rendered);
            assert!((100..600).contains(&r.status));
            let meta = crate::http::control_ui::FileMeta { len: data.len() as u64, mtime_unix_ms: u64::from(h) * 1_000_003 };
            match job.static_file(meta) {
                crate::http::control_ui::StaticPlan::Respond(r) => assert!((100..600).contains(&r.status)),
                crate::http::control_ui::StaticPlan::ReadBody => {
                    let r = job.static_body(meta, data.to_vec());
                    assert!((100..600).contains(&r.status));
                }
            }
        }
        crate::http::HttpAction::Upgrade { accept_key, admission } => {
            assert!(!hub.is_draining(), "upgrade admitted while draining");
            assert!(!accept_key.is_empty());
            let ip = admission.ip;
            assert_eq!(hub.preauth_count(ip), 1);
            drop(admission);
            assert_eq!(hub.preauth_count(ip), 0, "dropped admission kept its pre-auth slot");
        }
    }
}
