//! The suite: protocol.md §16 (items 1–71) and the HTTP probe items of http.md's checklist
//! (1–9, 12, 27, 28), each written once as a script. Ids are `P16.<item>-<slug>` and
//! `H.<item>-<slug>`; an item may have several checks (`P16.57a…`).
//!
//! Expected strings are copied from the spec and the reference captures, never from clawgate.

use serde_json::{Value, json};

use crate::engine::WS_ACCEPT;
use crate::model::*;

// ---- vocabulary ---------------------------------------------------------------------------

pub const A: Conn = 0;
pub const B: Conn = 1;
pub const C: Conn = 2;

pub const READ: &str = "operator.read";
pub const WRITE: &str = "operator.write";
pub const ADMIN: &str = "operator.admin";
pub const APPROVALS: &str = "operator.approvals";
pub const PAIRING: &str = "operator.pairing";

/// Events every authenticated socket may receive, nodes included (protocol §6.4).
const UNRESTRICTED: [&str; 6] = ["tick", "health", "heartbeat", "shutdown", "gateway.suspension", "update.available"];

const TOKEN_MISMATCH: &str = "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)";
const RATE_LIMITED: &str = "unauthorized: too many failed authentication attempts (retry later)";
const PROXY_BODY: &str = "Proxy client attribution is required. Configure gateway.trustedProxies narrowly and make the proxy overwrite or safely rebuild forwarded client headers.";

fn check(id: &'static str, section: &'static str, title: &'static str, tags: &'static [Tag], script: Vec<Step>) -> Check {
    Check { id, section, title, tags, reference_bug: None, skip: None, script }
}

impl Check {
    /// The reference is known to fail this documented behaviour; say what it does.
    pub fn reference_bug(mut self, what: &'static str) -> Self {
        self.reference_bug = Some(what);
        self
    }
    fn skipped(mut self, why: &'static str) -> Self {
        self.skip = Some(why);
        self
    }
}

impl Step {
    /// Bound an expectation in time.
    pub fn within(mut self, since: Since, min_ms: u64, max_ms: u64) -> Self {
        let w = Some(Window { since, min_ms, max_ms });
        match &mut self {
            Step::ExpectResponse { within, .. }
            | Step::ExpectHello { within, .. }
            | Step::ExpectEvent { within, .. }
            | Step::ExpectClose { within, .. }
            | Step::ExpectTerminated { within, .. }
            | Step::ExpectPing { within, .. } => *within = w,
            other => panic!("within() on {other:?}"),
        }
        self
    }
    /// Save the string at a JSON pointer of the matched frame as `$var`.
    pub fn save(mut self, var: &'static str, pointer: &'static str) -> Self {
        match &mut self {
            Step::ExpectResponse { save, .. } | Step::ExpectHello { save, .. } | Step::ExpectEvent { save, .. } => {
                save.push((var, pointer))
            }
            other => panic!("save() on {other:?}"),
        }
        self
    }
    /// The response must be the next one to arrive.
    pub fn first(mut self) -> Self {
        match &mut self {
            Step::ExpectResponse { first, .. } | Step::ExpectHello { first, .. } => *first = true,
            other => panic!("first() on {other:?}"),
        }
        self
    }
    /// Extra pattern for a `hello-ok` payload or an event frame.
    pub fn with(mut self, p: Value) -> Self {
        match &mut self {
            Step::ExpectHello { payload, .. } => *payload = Some(p),
            Step::ExpectEvent { pattern, .. } => *pattern = Some(p),
            other => panic!("with() on {other:?}"),
        }
        self
    }
    /// Event `seq` must exceed every earlier `seq` on the connection.
    pub fn seq(mut self) -> Self {
        match &mut self {
            Step::ExpectEvent { seq_increasing, .. } => *seq_increasing = true,
            other => panic!("seq() on {other:?}"),
        }
        self
    }
    pub fn state_version(mut self, rule: StateVersionRule) -> Self {
        match &mut self {
            Step::ExpectEvent { state_version, .. } => *state_version = Some(rule),
            other => panic!("state_version() on {other:?}"),
        }
        self
    }
    /// The event must arrive before the (next) response with this id.
    pub fn before(mut self, id: &str) -> Self {
        match &mut self {
            Step::ExpectEvent { before, .. } => *before = Some(json!(id)),
            other => panic!("before() on {other:?}"),
        }
        self
    }
    /// Ignore events of this name that arrive before the window opens.
    pub fn skip_early(mut self) -> Self {
        match &mut self {
            Step::ExpectEvent { skip_early, .. } => *skip_early = true,
            other => panic!("skip_early() on {other:?}"),
        }
        self
    }
}

pub fn open(conn: Conn) -> Step {
    Step::Open { conn, headers: vec![], auto_pong: true }
}

pub fn open_with(conn: Conn, headers: Vec<(&'static str, &'static str)>) -> Step {
    Step::Open { conn, headers, auto_pong: true }
}

pub fn challenge(conn: Conn) -> Step {
    Step::ExpectChallenge { conn }
}

pub fn send(conn: Conn, v: Value) -> Step {
    Step::Send { conn, frame: Frame::Json(v), times: 1 }
}

pub fn send_frame(conn: Conn, frame: Frame) -> Step {
    Step::Send { conn, frame, times: 1 }
}

/// A request frame.
pub fn req(id: &str, method: &str, params: Option<Value>) -> Value {
    let mut f = json!({"type": "req", "id": id, "method": method});
    if let Some(p) = params {
        f["params"] = p;
    }
    f
}

/// Send a request.
pub fn call(conn: Conn, id: &str, method: &str, params: Option<Value>) -> Step {
    send(conn, req(id, method, params))
}

/// `connect` params of a `cli`/`cli` token client (for hand-built frames).
pub fn cli_params(scopes: &[&str]) -> Value {
    json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "deviceFamily": "Linux", "mode": "cli",
                   "instanceId": "16e5ad26-0c26-44a9-ad34-6d5d9c78a97e"},
        "caps": [], "auth": {"token": "$TOKEN"}, "role": "operator", "scopes": scopes,
    })
}

/// A `cli`/`cli` connect like the reference CLI's, protocol 4–4, with the shared secret.
pub fn cli(conn: Conn, id: &'static str, scopes: &[&'static str]) -> Connect {
    Connect {
        conn,
        id,
        client_id: "cli",
        mode: "cli",
        version: "2026.9.6",
        device_family: Some("Linux"),
        display_name: None,
        instance_id: true,
        role: Some("operator"),
        scopes: scopes.to_vec(),
        auth: Auth::Good,
        min_protocol: 4,
        max_protocol: 4,
        device: None,
        extra_params: None,
        binary: false,
        pad_to: None,
    }
}

impl Connect {
    pub fn client(mut self, id: &'static str, mode: &'static str) -> Self {
        self.client_id = id;
        self.mode = mode;
        self
    }
    pub fn version(mut self, v: &'static str) -> Self {
        self.version = v;
        self
    }
    pub fn family(mut self, f: Option<&'static str>) -> Self {
        self.device_family = f;
        self
    }
    pub fn display(mut self, name: &'static str) -> Self {
        self.display_name = Some(name);
        self
    }
    pub fn no_instance(mut self) -> Self {
        self.instance_id = false;
        self
    }
    pub fn role(mut self, r: &'static str) -> Self {
        self.role = Some(r);
        self
    }
    pub fn auth(mut self, a: Auth) -> Self {
        self.auth = a;
        self
    }
    pub fn protocol(mut self, min: u64, max: u64) -> Self {
        self.min_protocol = min;
        self.max_protocol = max;
        self
    }
    pub fn device(mut self, key: usize, version: SigVersion) -> Self {
        self.device = Some(DeviceSpec { key, version, fault: None });
        self
    }
    pub fn fault(mut self, f: DeviceFault) -> Self {
        if let Some(d) = &mut self.device {
            d.fault = Some(f);
        }
        self
    }
    pub fn extra(mut self, v: Value) -> Self {
        self.extra_params = Some(v);
        self
    }
    pub fn binary(mut self) -> Self {
        self.binary = true;
        self
    }
    pub fn pad_to(mut self, bytes: usize) -> Self {
        self.pad_to = Some(bytes);
        self
    }
    pub fn step(self) -> Step {
        Step::Connect(self)
    }
}

impl From<Connect> for Step {
    fn from(c: Connect) -> Step {
        Step::Connect(c)
    }
}

/// A successful `hello-ok` with exactly these scopes.
pub fn hello(conn: Conn, id: &'static str, role: &'static str, scopes: &[&'static str]) -> Step {
    Step::ExpectHello { conn, id, role, scopes: Some(scopes.to_vec()), payload: None, within: None, first: false, save: vec![] }
}

/// A response matching `pattern` (over the whole frame).
pub fn resp(conn: Conn, id: impl Into<Value>, pattern: Value) -> Step {
    Step::ExpectResponse { conn, id: id.into(), any_of: vec![Resp { pattern }], within: None, first: false, save: vec![] }
}

/// A response matching one of several patterns.
pub fn resp_any(conn: Conn, id: impl Into<Value>, patterns: Vec<Value>) -> Step {
    let any_of = patterns.into_iter().map(|pattern| Resp { pattern }).collect();
    Step::ExpectResponse { conn, id: id.into(), any_of, within: None, first: false, save: vec![] }
}

pub fn ok(conn: Conn, id: &str) -> Step {
    resp(conn, id, json!({"type": "res", "ok": true, "error": "$absent"}))
}

pub fn ok_payload(conn: Conn, id: &str, payload: Value) -> Step {
    resp(conn, id, json!({"type": "res", "ok": true, "payload": payload}))
}

pub fn err(conn: Conn, id: impl Into<Value>, code: &str, message: &str) -> Step {
    resp(conn, id, json!({"type": "res", "ok": false, "error": {"code": code, "message": message}}))
}

pub fn err_details(conn: Conn, id: impl Into<Value>, code: &str, message: &str, details: Value) -> Step {
    resp(conn, id, json!({"type": "res", "ok": false, "error": {"code": code, "message": message, "details": details}}))
}

/// `FORBIDDEN missing scope: <scope>` with its details.
pub fn missing_scope(conn: Conn, id: &str, scope: &str) -> Step {
    err_details(
        conn,
        id,
        "FORBIDDEN",
        &format!("missing scope: {scope}"),
        json!({"code": "MISSING_SCOPE", "missingScope": scope, "requiredScopes": [scope]}),
    )
}

pub fn close(conn: Conn, code: u16, reason: &'static str) -> Step {
    Step::ExpectClose { conn, code, reason: Text::Exact(reason), within: None }
}

pub fn event(conn: Conn, name: &'static str) -> Step {
    Step::ExpectEvent {
        conn,
        event: name,
        pattern: None,
        seq_increasing: false,
        state_version: None,
        skip_early: false,
        before: None,
        within: None,
        save: vec![],
    }
}

pub fn quiet(conn: Conn, for_ms: u64, q: Quiet) -> Step {
    Step::ExpectNoFrame { conn, for_ms, quiet: q }
}

pub fn ping(conn: Conn) -> Step {
    Step::ExpectPing { conn, within: None }
}

/// Open, challenge, `cli` connect with these scopes, `hello-ok` keeping them.
pub fn connected(conn: Conn, scopes: &[&'static str]) -> Vec<Step> {
    vec![open(conn), challenge(conn), cli(conn, "c1", scopes).step(), hello(conn, "c1", "operator", scopes)]
}

/// Open, challenge, `cli`/`probe` connect (protocol 3–4): `hello-ok` with `scopes:[]`.
pub fn connected_probe(conn: Conn) -> Vec<Step> {
    vec![
        open(conn),
        challenge(conn),
        cli(conn, "c1", &[READ]).client("cli", "probe").version("dev").protocol(3, 4).step(),
        hello(conn, "c1", "operator", &[]),
    ]
}

/// The node of `edge-node-device-protocol-v3.jsonl`: `node-host`/`node`, protocol 3–3, signed.
pub fn node_connect(conn: Conn, id: &'static str) -> Connect {
    cli(conn, id, &[])
        .client("node-host", "node")
        .role("node")
        .protocol(3, 3)
        .no_instance()
        .extra(json!({"commands": []}))
        .device(0, SigVersion::V3)
}

fn http(method: &'static str, path: &'static str, status: u16, body: Body) -> Http {
    Http { method, path, headers: vec![], upgrade: false, remote: false, status, body, headers_expect: vec![] }
}

impl Http {
    fn header(mut self, k: &'static str, v: &'static str) -> Self {
        self.headers.push((k, v));
        self
    }
    fn expect(mut self, rule: HeaderRule) -> Self {
        self.headers_expect.push(rule);
        self
    }
    fn remote(mut self) -> Self {
        self.remote = true;
        self
    }
    fn upgrade(mut self) -> Self {
        self.upgrade = true;
        self
    }
    fn step(self) -> Step {
        Step::HttpRequest(self)
    }
}

fn cat(parts: Vec<Vec<Step>>) -> Vec<Step> {
    parts.into_iter().flatten().collect()
}

fn baseline(h: Http) -> Http {
    h.expect(HeaderRule::Equals("X-Content-Type-Options", "nosniff"))
        .expect(HeaderRule::Equals("Referrer-Policy", "no-referrer"))
        .expect(HeaderRule::Equals("Permissions-Policy", "camera=(), microphone=(self), geolocation=()"))
}

fn device_failure(
    id: &'static str,
    title: &'static str,
    fault: DeviceFault,
    message: &'static str,
    code: &'static str,
    reason: &'static str,
) -> Check {
    check(
        id,
        "protocol §4.5 / §16.57",
        title,
        &[Tag::Device],
        vec![
            open(A),
            challenge(A),
            cli(A, "df", &[READ]).no_instance().device(0, SigVersion::V3).fault(fault).step(),
            err_details(A, "df", "INVALID_REQUEST", message, json!({"code": code, "reason": reason})),
            close(A, 1008, message),
        ],
    )
}

// ---- the suite ----------------------------------------------------------------------------

/// Every check, in checklist order.
pub fn all() -> Vec<Check> {
    let mut v = Vec::new();

    // §1 transport, §4 handshake ---------------------------------------------------------
    v.push(check(
        "P16.01-no-ws-extensions",
        "protocol §1 / §16.1",
        "101 without Sec-WebSocket-Extensions although permessage-deflate is offered",
        &[],
        vec![
            http("GET", "/", 101, Body::Any)
                .upgrade()
                .header("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
                .expect(HeaderRule::Absent("Sec-WebSocket-Extensions"))
                .expect(HeaderRule::Absent("Sec-WebSocket-Protocol"))
                .expect(HeaderRule::Equals("Sec-WebSocket-Accept", WS_ACCEPT))
                .step(),
        ],
    ));
    v.push(check(
        "P16.02-challenge",
        "protocol §4.1 / §16.2",
        "connect.challenge {nonce: uuid, ts, capabilities:[model-catalog-snapshot]} at once, without seq",
        &[],
        vec![open(A), challenge(A)],
    ));
    v.push(check(
        "P16.03-cli-connect",
        "protocol §4.2 / §16.3",
        "a CLI connect (cli/cli, 4–4, auth.token, [operator.read]) gets hello-ok protocol 4 with the same id",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "1:c958b10f-ddf3-4f49-aeea-fa8426747af6", &[READ]).step(),
            hello(A, "1:c958b10f-ddf3-4f49-aeea-fa8426747af6", "operator", &[READ]),
        ],
    ));
    v.push(check(
        "P16.04-hello-shape",
        "protocol §4.6 / §16.4",
        "hello-ok carries server, features, snapshot, auth and policy (25 MiB / 50 MiB / 30 s)",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "c1", &[READ]).step(),
            hello(A, "c1", "operator", &[READ]).with(json!({
                "server": {"version": "$nonempty", "connId": "$nonempty"},
                "features": {"methods": "$array", "events": "$array"},
                "snapshot": {"presence": "$array", "health": "$object", "stateVersion": {"presence": "$int", "health": "$int"}, "uptimeMs": "$int"},
                "auth": {"role": "operator", "scopes": "$array"},
                "policy": {"maxPayload": 26_214_400, "maxBufferedBytes": 52_428_800, "tickIntervalMs": 30_000},
            })),
        ],
    ));
    let five = [ADMIN, READ, WRITE, APPROVALS, PAIRING];
    v.push(check(
        "P16.05-cli-keeps-scopes",
        "protocol §5.4 / §16.5",
        "a loopback device-less cli/cli token client keeps exactly the scopes it asked for",
        &[],
        vec![open(A), challenge(A), cli(A, "c1", &five).step(), hello(A, "c1", "operator", &five)],
    ));
    v.push(check(
        "P16.06-probe-scopes-cleared",
        "protocol §5.4 / §16.6",
        "a device-less probe-mode client gets scopes []",
        &[],
        connected_probe(A),
    ));
    v.push(check(
        "P16.07-test-client-scopes-cleared",
        "protocol §5.4 / §16.7",
        "a device-less client.id test gets scopes [] and status is FORBIDDEN missing operator.read",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "c1", &[READ, WRITE]).client("test", "test").version("1.0.0").family(None).no_instance().step(),
            hello(A, "c1", "operator", &[]),
            call(A, "s1", "status", Some(json!({}))),
            missing_scope(A, "s1", READ),
        ],
    ));
    v.push(check(
        "P16.08-health-without-scopes",
        "protocol §6.3 / §16.8",
        "health succeeds for a socket with scopes []",
        &[],
        cat(vec![connected_probe(A), vec![call(A, "h1", "health", None), ok(A, "h1")]]),
    ));
    v.push(check(
        "P16.09-read-methods-need-read",
        "protocol §6.3 / §16.9",
        "status, system-presence, config.get are FORBIDDEN missing operator.read (with details) for scopes []",
        &[],
        cat(vec![
            connected_probe(A),
            vec![
                call(A, "s1", "status", None),
                call(A, "s2", "system-presence", None),
                call(A, "s3", "config.get", Some(json!({}))),
                missing_scope(A, "s1", READ),
                missing_scope(A, "s2", READ),
                missing_scope(A, "s3", READ),
            ],
        ]),
    ));
    v.push(check(
        "P16.10-backend-keeps-read",
        "protocol §5.4 / §16.10",
        "gateway-client/backend keeps [operator.read]; status without a params key succeeds",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "c1", &[READ]).client("gateway-client", "backend").display("gateway:status").step(),
            hello(A, "c1", "operator", &[READ]),
            call(A, "s1", "status", None),
            ok_payload(A, "s1", json!("$object")),
        ],
    ));
    v.push(check(
        "P16.11-health-duration",
        "protocol §11.1 / §16.11",
        "health without params answers a payload with numeric durationMs",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![call(A, "h1", "health", None), ok_payload(A, "h1", json!({"ok": true, "durationMs": "$number"}))],
        ]),
    ));
    v.push(check(
        "P16.12-system-presence-self",
        "protocol §8.4 / §16.12",
        "system-presence is an array with the gateway's own row (mode gateway, reason self)",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "p1", "system-presence", Some(json!({}))),
                ok_payload(A, "p1", json!({"$contains": {"mode": "gateway", "reason": "self"}})),
            ],
        ]),
    ));
    v.push(check(
        "P16.13-config-get-shape",
        "protocol §11.1 / §16.13",
        "config.get {} answers an object with path, exists, hash, config, valid",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "g1", "config.get", Some(json!({}))),
                ok_payload(
                    A,
                    "g1",
                    json!({"path": "$string", "exists": "$bool", "hash": "$string", "config": "$object", "valid": "$bool"}),
                ),
            ],
        ]),
    ));
    v.push(check(
        "P16.14-params-optional",
        "protocol §2.1 / §16.14",
        "params:{} and an absent params key are both accepted",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![call(A, "s1", "status", Some(json!({}))), ok(A, "s1"), call(A, "s2", "status", None), ok(A, "s2")],
        ]),
    ));
    v.push(check(
        "P16.15-first-frame-not-connect",
        "protocol §4.4 / §16.15",
        "a first request for another method: INVALID_REQUEST then close 1008 with the same reason",
        &[],
        vec![
            open(A),
            challenge(A),
            call(A, "a1", "health", Some(json!({}))),
            err(A, "a1", "INVALID_REQUEST", "invalid handshake: first request must be connect"),
            close(A, 1008, "invalid handshake: first request must be connect"),
        ],
    ));
    v.push(check(
        "P16.16-first-frame-non-json",
        "protocol §4.4 / §16.16",
        "non-JSON text as the first frame: no response, close 1000 \"\"",
        &[],
        vec![open(A), challenge(A), send_frame(A, Frame::Text("this is not json {")), close(A, 1000, "")],
    ));
    v.push(check(
        "P16.17-first-frame-not-request",
        "protocol §4.4 / §16.17",
        "valid JSON that is not a request frame first: no response, close 1008 \"invalid request frame\"",
        &[],
        vec![open(A), challenge(A), send(A, json!({"hello": "world"})), close(A, 1008, "invalid request frame")],
    ));
    v.push(check(
        "P16.18-connect-extra-key",
        "protocol §2.1 / §16.18",
        "a connect frame with an extra top-level key is not a request frame: close 1008",
        &[],
        vec![
            open(A),
            challenge(A),
            send(A, json!({"type": "req", "id": "x1", "method": "connect", "params": cli_params(&[READ]), "extra": true})),
            close(A, 1008, "invalid request frame"),
        ],
    ));
    v.push(check(
        "P16.19-binary-garbage",
        "protocol §1 / §16.19",
        "binary garbage before connect: close 1000 \"\"",
        &[],
        vec![open(A), challenge(A), send_frame(A, Frame::Binary(&[0x00, 0xff, 0x10, 0x80, 0x7b])), close(A, 1000, "")],
    ));
    v.push(check(
        "P16.20-binary-connect",
        "protocol §1 / §16.20",
        "a connect in a binary frame succeeds, and binary requests work afterwards",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "c1", &[READ]).binary().step(),
            hello(A, "c1", "operator", &[READ]),
            send_frame(A, Frame::BinaryJson(req("h1", "health", Some(json!({}))))),
            ok(A, "h1"),
        ],
    ));
    let bad_mode = "invalid connect params: at /client/mode: must be equal to one of the allowed values";
    v.push(check(
        "P16.21-mode-operator",
        "protocol §4.2 / §16.21",
        "client.mode \"operator\" is invalid connect params, close 1008 with the message",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "m1", &[READ]).client("cli", "operator").step(),
            err(A, "m1", "INVALID_REQUEST", bad_mode),
            close(A, 1008, bad_mode),
        ],
    ));
    {
        // The close reason is the message cut to 120 bytes (protocol §1.1, §12).
        let prop = "z".repeat(200);
        let message: &'static str = Box::leak(format!("invalid connect params: at /client: unexpected property '{prop}'").into_boxed_str());
        let reason: &'static str = &message[..120];
        let mut params = cli_params(&[READ]);
        params["client"][prop.as_str()] = json!(true);
        v.push(check(
            "P16.21b-close-reason-truncated",
            "protocol §1.1, §12 / §16.21",
            "a failure message above 120 bytes is sent whole in the res, and cut to 120 bytes as the close reason",
            &[],
            vec![
                open(A),
                challenge(A),
                send(A, json!({"type": "req", "id": "m2", "method": "connect", "params": params})),
                err(A, "m2", "INVALID_REQUEST", message),
                close(A, 1008, reason),
            ],
        ));
    }
    v.push(check(
        "P16.22-role-admin",
        "protocol §4.4 / §16.22",
        "role \"admin\": INVALID_REQUEST \"invalid role\", close 1008",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "r1", &[READ]).role("admin").step(),
            err(A, "r1", "INVALID_REQUEST", "invalid role"),
            close(A, 1008, "invalid role"),
        ],
    ));

    // §5 authentication -------------------------------------------------------------------
    let mismatch_details = json!({"code": "AUTH_TOKEN_MISMATCH", "authReason": "token_mismatch", "canRetryWithDeviceToken": false, "recommendedNextStep": "update_auth_credentials"});
    v.push(check(
        "P16.23-auth-wrong-token",
        "protocol §5.2 / §16.23",
        "a wrong token: INVALID_REQUEST with AUTH_TOKEN_MISMATCH details, close 1008 with the message",
        &[Tag::TokenMode],
        vec![
            open(A),
            challenge(A),
            cli(A, "d1", &[READ]).auth(Auth::Wrong).step(),
            err_details(A, "d1", "INVALID_REQUEST", TOKEN_MISMATCH, mismatch_details.clone()),
            close(A, 1008, TOKEN_MISMATCH),
        ],
    ));
    v.push(check(
        "P16.24-token-in-password-field",
        "protocol §5.1 / §16.24",
        "in token mode the shared token is also accepted in auth.password (auth.method token)",
        &[Tag::TokenMode],
        vec![
            open(A),
            challenge(A),
            cli(A, "c1", &[READ]).auth(Auth::GoodInPassword).step(),
            hello(A, "c1", "operator", &[READ]).with(json!({"auth": {"method": "token"}})),
        ],
    ));
    v.push(check(
        "P16.25-no-auth-no-device",
        "protocol §5.4 / §16.25",
        "no auth and no device: NOT_PAIRED \"device identity required\", close 1008",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "e1", &[READ]).auth(Auth::None).step(),
            err_details(A, "e1", "NOT_PAIRED", "device identity required", json!({"code": "DEVICE_IDENTITY_REQUIRED"})),
            close(A, 1008, "device identity required"),
        ],
    ));
    {
        // 250 · 2^(n−1) ms, capped at 5 s; earlier failures from this IP within 60 s only make
        // the delays longer, so the lower bounds hold on a shared gateway too.
        let nominal = [250u64, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000, 5000];
        let mut s = Vec::new();
        for (i, d) in nominal.iter().enumerate() {
            s.push(open(i));
            s.push(challenge(i));
            s.push(cli(i, "d1", &[READ]).auth(Auth::Wrong).step());
            s.push(err_details(i, "d1", "INVALID_REQUEST", TOKEN_MISMATCH, mismatch_details.clone()).within(
                Since::LastSend,
                d - 10,
                6_000,
            ));
            s.push(close(i, 1008, TOKEN_MISMATCH));
            s.push(Step::Drop { conn: i });
        }
        let last = nominal.len();
        s.extend([
            open(last),
            challenge(last),
            cli(last, "ok", &[READ]).step(),
            hello(last, "ok", "operator", &[READ]).within(Since::LastSend, 0, 1_500),
        ]);
        v.push(check(
            "P16.26-loopback-delay-no-lockout",
            "protocol §5.3 / §16.26",
            "wrong tokens from plain loopback are delayed 250 ms doubling to a 5 s cap, never locked out; the right token works right after",
            &[Tag::Slow, Tag::TokenMode, Tag::Isolated],
            s,
        ));
    }
    {
        let mut s = Vec::new();
        for i in 0..10 {
            s.push(open_with(i, vec![("Origin", "$ORIGIN")]));
            s.push(challenge(i));
            s.push(cli(i, "o1", &[READ]).auth(Auth::Wrong).step());
            s.push(err_details(i, "o1", "INVALID_REQUEST", TOKEN_MISMATCH, json!({"code": "AUTH_TOKEN_MISMATCH"})));
            s.push(close(i, 1008, TOKEN_MISMATCH));
            s.push(Step::Drop { conn: i });
        }
        let limited = json!({
            "type": "res", "ok": false,
            "error": {"code": "INVALID_REQUEST", "message": RATE_LIMITED, "retryable": true, "retryAfterMs": {"$range": [280_000, 300_000]},
                      "details": {"code": "AUTH_RATE_LIMITED", "authReason": "rate_limited", "canRetryWithDeviceToken": false, "recommendedNextStep": "wait_then_retry"}},
        });
        for (i, auth) in [(10, Auth::Wrong), (11, Auth::Good)] {
            s.push(open_with(i, vec![("Origin", "$ORIGIN")]));
            s.push(challenge(i));
            s.push(cli(i, "o2", &[READ]).auth(auth).step());
            s.push(resp(i, "o2", limited.clone()));
            s.push(close(i, 1008, RATE_LIMITED));
        }
        v.push(check(
            "P16.27-origin-lockout",
            "protocol §5.3 / §16.27",
            "with an Origin header the 11th failure within 60 s is AUTH_RATE_LIMITED (retryable, ~300 s), and the right token is refused too",
            &[Tag::TokenMode],
            s,
        ));
    }

    // §1.1 limits ---------------------------------------------------------------------------
    v.push(check(
        "P16.28-preauth-oversize",
        "protocol §1.1 / §16.28",
        "a 65 537-byte frame before auth: close 1009 with an empty reason, no response",
        &[],
        vec![open(A), challenge(A), cli(A, "f1", &[READ]).pad_to(65_537).step(), close(A, 1009, "")],
    ));
    v.push(check(
        "P16.29-preauth-exact-64k",
        "protocol §1.1 / §16.29",
        "a 65 536-byte connect frame is accepted",
        &[],
        vec![open(A), challenge(A), cli(A, "f1", &[READ]).pad_to(65_536).step(), hello(A, "f1", "operator", &[READ])],
    ));
    v.push(check(
        "P16.30-postauth-oversize",
        "protocol §1.1 / §16.30",
        "a frame above 26 214 400 bytes after auth: close 1009 \"\"",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            vec![send_frame(A, Frame::PaddedRequest { id: "big", method: "health", bytes: 26_214_401 }), close(A, 1009, "")],
        ]),
    ));

    // §4.3 protocol negotiation --------------------------------------------------------------
    for (id, title, min, max, item) in [
        (
            "P16.31-protocol-mismatch-high",
            "minProtocol 5, maxProtocol 6: protocol mismatch, close 1002",
            5u64,
            6u64,
            "protocol §4.3 / §16.31",
        ),
        ("P16.32-protocol-mismatch-low", "cli with [1,3]: protocol mismatch, close 1002", 1, 3, "protocol §4.3 / §16.32"),
    ] {
        v.push(check(
            id,
            item,
            title,
            &[],
            vec![
                open(A),
                challenge(A),
                cli(A, "g1", &[READ]).protocol(min, max).step(),
                err_details(
                    A,
                    "g1",
                    "INVALID_REQUEST",
                    "protocol mismatch",
                    json!({"code": "PROTOCOL_MISMATCH", "clientMinProtocol": min, "clientMaxProtocol": max, "expectedProtocol": 4, "minimumProbeProtocol": 3}),
                ),
                close(A, 1002, "protocol mismatch"),
            ],
        ));
    }
    v.push(check(
        "P16.31b-negotiation-before-auth",
        "protocol §4.4 / §16.31",
        "connect checks run in order: a protocol mismatch wins over a wrong token, an invalid role over a wrong token",
        &[Tag::TokenMode],
        vec![
            open(A),
            challenge(A),
            cli(A, "g1", &[READ]).protocol(5, 6).auth(Auth::Wrong).step(),
            err(A, "g1", "INVALID_REQUEST", "protocol mismatch"),
            close(A, 1002, "protocol mismatch"),
            open(B),
            challenge(B),
            cli(B, "r1", &[READ]).role("admin").auth(Auth::Wrong).step(),
            err(B, "r1", "INVALID_REQUEST", "invalid role"),
            close(B, 1008, "invalid role"),
        ],
    ));
    v.push(check(
        "P16.33-probe-v3",
        "protocol §4.3 / §16.33",
        "a probe with [3,3] is accepted; hello-ok protocol 4",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "g3", &[READ]).client("cli", "probe").family(None).no_instance().protocol(3, 3).step(),
            hello(A, "g3", "operator", &[]),
        ],
    ));
    v.push(check(
        "P16.34-wide-range",
        "protocol §4.3 / §16.34",
        "[1,99] is accepted with protocol 4",
        &[],
        vec![open(A), challenge(A), cli(A, "g4", &[READ]).protocol(1, 99).step(), hello(A, "g4", "operator", &[READ])],
    ));
    v.push(check(
        "P16.35-node-v3-device",
        "protocol §4.3 / §16.35",
        "a signed node-host/node with [3,3] is accepted: protocol 4, role node, deviceToken issued",
        &[Tag::Node, Tag::Device],
        vec![
            open(A),
            challenge(A),
            node_connect(A, "n2").step(),
            hello(A, "n2", "node", &[]).with(json!({"auth": {"deviceToken": "$nonempty", "issuedAtMs": "$int"}})),
        ],
    ));
    v.push(
        check(
            "P16.35b-node-event-gating",
            "protocol §2.3, §6.4 / §16.35",
            "a node socket receives only the unrestricted events (tick, health, heartbeat, shutdown, …), each with a seq",
            &[Tag::Node, Tag::Device],
            vec![
                open(A),
                challenge(A),
                node_connect(A, "n2").step(),
                hello(A, "n2", "node", &[]),
                quiet(A, 1_500, Quiet::EventOutside(UNRESTRICTED.to_vec())),
                quiet(A, 0, Quiet::EventWithoutSeq),
            ],
        )
        .reference_bug(
            "sends operator.read-gated voicewake.changed and voicewake.routing.changed events to a node socket right after hello-ok, \
         without seq (as in edge-node-device-protocol-v3.jsonl)",
        ),
    );
    v.push(check(
        "P16.36-handshake-timeout",
        "protocol §1.1 / §16.36",
        "no connect within 15 s: close 1000 \"\" at ~15 000 ms",
        &[Tag::Slow],
        vec![open(A), challenge(A), close(A, 1000, "").within(Since::Open, 14_500, 16_500)],
    ));

    // §6 / §10 requests after hello -------------------------------------------------------------
    v.push(check(
        "P16.37-second-connect-read",
        "protocol §10.1 / §16.37",
        "a second connect with read scope is FORBIDDEN missing operator.admin; the connection stays usable",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "c2", "connect", Some(cli_params(&[READ]))),
                missing_scope(A, "c2", ADMIN),
                call(A, "h1", "health", None),
                ok(A, "h1"),
            ],
        ]),
    ));
    v.push(check(
        "P16.38-second-connect-admin",
        "protocol §10.1 / §16.38",
        "a second connect with admin: INVALID_REQUEST \"connect is only valid as the first request\"",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            vec![
                call(A, "c2", "connect", Some(cli_params(&[ADMIN]))),
                err(A, "c2", "INVALID_REQUEST", "connect is only valid as the first request"),
                call(A, "h1", "health", None),
                ok(A, "h1"),
            ],
        ]),
    ));
    v.push(check(
        "P16.39-unknown-method-read",
        "protocol §6.3 / §16.39",
        "an unknown method with read scope is FORBIDDEN missing operator.admin",
        &[],
        cat(vec![connected(A, &[READ]), vec![call(A, "j1", "no.such.method", Some(json!({}))), missing_scope(A, "j1", ADMIN)]]),
    ));
    v.push(check(
        "P16.40-unknown-method-admin",
        "protocol §6.3 / §16.40",
        "an unknown method with admin: INVALID_REQUEST \"unknown method: no.such.method\"",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            vec![call(A, "j1", "no.such.method", Some(json!({}))), err(A, "j1", "INVALID_REQUEST", "unknown method: no.such.method")],
        ]),
    ));
    v.push(check(
        "P16.41-request-without-id",
        "protocol §2.2 / §16.41",
        "a request without id: res id \"invalid\", INVALID_REQUEST; the connection stays open",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                send(A, json!({"type": "req", "method": "health"})),
                err(A, "invalid", "INVALID_REQUEST", "invalid request frame: must have required property 'id'"),
                call(A, "h1", "health", None),
                ok(A, "h1"),
            ],
        ]),
    ));
    v.push(check(
        "P16.41b-invalid-frame-echoes-id",
        "protocol §2.2, §14.11 / §16.41",
        "an invalid post-auth frame is answered with whatever id it carried, even a number or \"\"",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                send(A, json!({"type": "req", "id": 7, "method": "health"})),
                resp(
                    A,
                    7,
                    json!({"type": "res", "ok": false, "error": {"code": "INVALID_REQUEST", "message": "$prefix:invalid request frame: "}}),
                ),
                send(A, json!({"type": "req", "id": "", "method": "health"})),
                resp(
                    A,
                    "",
                    json!({"type": "res", "ok": false, "error": {"code": "INVALID_REQUEST", "message": "$prefix:invalid request frame: "}}),
                ),
                call(A, "h1", "health", None),
                ok(A, "h1"),
            ],
        ]),
    ));
    v.push(check(
        "P16.42-request-extra-key",
        "protocol §2.1 / §16.42",
        "a request with an extra top-level key: invalid request frame with the request's id",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                send(A, json!({"type": "req", "id": "x2", "method": "health", "bogus": 1})),
                err(A, "x2", "INVALID_REQUEST", "invalid request frame: at root: unexpected property 'bogus'"),
            ],
        ]),
    ));
    v.push(check(
        "P16.43-postauth-non-json",
        "protocol §10.1 / §16.43",
        "non-JSON text after hello: no response, no close",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                send_frame(A, Frame::Text("definitely not json")),
                quiet(A, 500, Quiet::AnyResponse),
                call(A, "h1", "health", None),
                ok(A, "h1"),
            ],
        ]),
    ));
    {
        let long_tp: &'static str = Box::leak(format!("00-{}-{}-01", "a".repeat(64), "b".repeat(62)).into_boxed_str());
        v.push(check(
            "P16.44-traceparent",
            "protocol §2.1 / §16.44",
            "a traceparent above 128 chars makes the frame invalid; a short malformed one is ignored",
            &[],
            cat(vec![
                connected(A, &[READ]),
                vec![
                    send(A, json!({"type": "req", "id": "t1", "method": "health", "traceparent": long_tp})),
                    err(A, "t1", "INVALID_REQUEST", "invalid request frame: at /traceparent: must not have more than 128 characters"),
                    send(A, json!({"type": "req", "id": "t2", "method": "health", "traceparent": "garbage"})),
                    ok(A, "t2"),
                ],
            ]),
        ));
    }
    v.push(check(
        "P16.45-param-validation",
        "protocol §6.3 / §16.45",
        "config.get {nope:true}: INVALID_REQUEST \"invalid config.get params: at root: unexpected property 'nope'\"",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "g1", "config.get", Some(json!({"nope": true}))),
                err(A, "g1", "INVALID_REQUEST", "invalid config.get params: at root: unexpected property 'nope'"),
            ],
        ]),
    ));
    v.push(check(
        "P16.46-scope-denied",
        "protocol §6.3 / §16.46",
        "read-only: config.patch needs admin, agent needs write, device.pair.list needs pairing",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "m1", "config.patch", Some(json!({"raw": "{}", "baseHash": "x"}))),
                missing_scope(A, "m1", ADMIN),
                call(A, "m2", "agent", Some(json!({"message": "hi", "idempotencyKey": "scope-denied-$RUN"}))),
                missing_scope(A, "m2", WRITE),
                call(A, "m3", "device.pair.list", Some(json!({}))),
                missing_scope(A, "m3", PAIRING),
                call(A, "m4", "status", Some(json!({}))),
                ok(A, "m4"),
            ],
        ]),
    ));

    // §10.2 accepted-then-final, §10.3 idempotency ---------------------------------------------
    let final_error = |key: &str| {
        json!({"type": "res", "ok": false,
               "payload": {"runId": key, "status": "error", "summary": "$string"},
               "error": {"code": "UNAVAILABLE", "message": "$string"}})
    };
    v.push(check(
        "P16.47-agent-accepted-then-final",
        "protocol §10.2 / §16.47",
        "agent answers ok {runId, agentId, status accepted, acceptedAt}, then a second res with the same id (ok:false, payload + UNAVAILABLE)",
        &[Tag::Agent],
        cat(vec![
            connected(A, &[WRITE]),
            vec![
                call(A, "a1", "agent", Some(json!({"message": "hello from the conformance suite", "idempotencyKey": "conf-agent-$RUN"}))),
                ok_payload(A, "a1", json!({"runId": "conf-agent-$RUN", "agentId": "$string", "status": "accepted", "acceptedAt": "$int"})),
                resp(A, "a1", final_error("conf-agent-$RUN")),
            ],
        ]),
    ));
    v.push(check(
        "P16.48-agent-runid-events",
        "protocol §10.2 / §16.48",
        "runId equals the idempotencyKey; the run's agent and chat events stream between the two responses, with increasing frame seq",
        &[Tag::Agent],
        cat(vec![
            connected(A, &[READ, WRITE]),
            vec![
                call(A, "a1", "agent", Some(json!({"message": "events please", "idempotencyKey": "conf-events-$RUN"}))),
                ok_payload(A, "a1", json!({"runId": "conf-events-$RUN", "status": "accepted"})),
                event(A, "agent")
                    .with(json!({"payload": {"runId": "conf-events-$RUN", "stream": "lifecycle", "seq": 1, "sessionKey": "agent:main:explicit:conf-events-$RUN"}}))
                    .seq()
                    .before("a1"),
                event(A, "agent").with(json!({"payload": {"runId": "conf-events-$RUN", "stream": "lifecycle", "seq": 2}})).seq().before("a1"),
                event(A, "chat").with(json!({"payload": {"runId": "conf-events-$RUN", "state": "$string"}})).seq().before("a1"),
                resp(A, "a1", final_error("conf-events-$RUN")),
            ],
        ]),
    ));
    v.push(check(
        "P16.49-agent-idempotency",
        "protocol §10.3 / §16.49",
        "a duplicate idempotencyKey in flight gets one ok {status in_flight} (or the final if the run already ended); after completion the cached final is replayed",
        &[Tag::Agent],
        cat(vec![
            connected(A, &[READ, WRITE]),
            vec![
                call(A, "a1", "agent", Some(json!({"message": "first", "idempotencyKey": "conf-idem-$RUN"}))),
                ok_payload(A, "a1", json!({"runId": "conf-idem-$RUN", "status": "accepted"})),
                call(A, "a2", "agent", Some(json!({"message": "first", "idempotencyKey": "conf-idem-$RUN"}))),
                resp_any(
                    A,
                    "a2",
                    vec![json!({"type": "res", "ok": true, "payload": {"runId": "conf-idem-$RUN", "status": "in_flight"}}), final_error("conf-idem-$RUN")],
                ),
                resp(A, "a1", final_error("conf-idem-$RUN")),
                quiet(A, 300, Quiet::Response(json!("a2"))),
                call(A, "a3", "agent", Some(json!({"message": "first", "idempotencyKey": "conf-idem-$RUN"}))),
                resp(A, "a3", final_error("conf-idem-$RUN")),
                quiet(A, 300, Quiet::Response(json!("a3"))),
            ],
        ]),
    ));
    v.push(check(
        "P16.50-agent-missing-idempotency-key",
        "protocol §10.3 / §16.50",
        "agent without idempotencyKey: INVALID_REQUEST \"invalid agent params: must have required property 'idempotencyKey'\"",
        &[Tag::Agent],
        cat(vec![
            connected(A, &[WRITE]),
            vec![
                call(A, "a4", "agent", Some(json!({"message": "no key"}))),
                err(A, "a4", "INVALID_REQUEST", "invalid agent params: must have required property 'idempotencyKey'"),
            ],
        ]),
    ));
    v.push(check(
        "P16.51-request-flood",
        "protocol §10.1 / §16.51",
        "3 000 pipelined requests: each is answered once, ok or UNAVAILABLE busy (retryable); the connection stays open",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![Step::Flood { conn: A, method: "health", count: 3_000 }, call(A, "h1", "health", None), ok(A, "h1")],
        ]),
    ));
    v.push(check(
        "P16.52-pipelined-after-connect",
        "protocol §3 / §16.52",
        "requests pipelined right after connect are answered after hello-ok, in order",
        &[],
        vec![
            open(A),
            challenge(A),
            cli(A, "c1", &[READ]).step(),
            call(A, "p1", "health", None),
            call(A, "p2", "health", Some(json!({}))),
            call(A, "p3", "health", None),
            hello(A, "c1", "operator", &[READ]).first(),
            ok(A, "p1").first(),
            ok(A, "p2").first(),
            ok(A, "p3").first(),
        ],
    ));
    v.push(check(
        "P16.53-pending-connect-overflow",
        "protocol §1.1 / §16.53",
        "more than 15 frames behind a pending (delayed) connect: close 1008 \"too many pending handshake frames\", no response",
        &[Tag::TokenMode],
        vec![
            open(A),
            challenge(A),
            cli(A, "c1", &[READ]).auth(Auth::Wrong).step(),
            Step::Send { conn: A, frame: Frame::Json(req("q", "health", None)), times: 16 },
            close(A, 1008, "too many pending handshake frames"),
        ],
    ));

    // §4.5 device identity ------------------------------------------------------------------------
    v.push(check(
        "P16.54-device-v3",
        "protocol §4.5 / §16.54",
        "a valid v3 Ed25519 signature with the shared token on loopback: hello-ok with auth.deviceToken and issuedAtMs",
        &[Tag::Device],
        vec![
            open(A),
            challenge(A),
            cli(A, "v1", &[READ, WRITE]).no_instance().device(0, SigVersion::V3).step(),
            hello(A, "v1", "operator", &[READ, WRITE])
                .with(json!({"auth": {"method": "$AUTH_METHOD", "deviceToken": "$nonempty", "issuedAtMs": "$int"}})),
        ],
    ));
    v.push(check(
        "P16.55-device-v2",
        "protocol §4.5 / §16.55",
        "a legacy v2 signature is accepted",
        &[Tag::Device],
        vec![
            open(A),
            challenge(A),
            cli(A, "w1", &[READ]).no_instance().device(0, SigVersion::V2).step(),
            hello(A, "w1", "operator", &[READ]).with(json!({"auth": {"deviceToken": "$nonempty", "issuedAtMs": "$int"}})),
        ],
    ));
    v.push(check(
        "P16.56-device-token-reconnect",
        "protocol §5.5 / §16.56",
        "reconnecting with auth.deviceToken only: hello-ok auth.method device-token, the same token",
        &[Tag::Device],
        vec![
            open(A),
            challenge(A),
            cli(A, "v1", &[READ, WRITE]).no_instance().device(0, SigVersion::V3).step(),
            hello(A, "v1", "operator", &[READ, WRITE])
                .with(json!({"auth": {"deviceToken": "$nonempty"}}))
                .save("DT", "/payload/auth/deviceToken"),
            Step::ClientClose { conn: A, code: Some(1000), reason: "" },
            open(B),
            challenge(B),
            cli(B, "v2", &[READ, WRITE]).no_instance().auth(Auth::DeviceToken("DT")).device(0, SigVersion::V3).step(),
            hello(B, "v2", "operator", &[READ, WRITE]).with(json!({"auth": {"method": "device-token", "deviceToken": "$DT"}})),
        ],
    ));
    v.push(device_failure(
        "P16.57a-device-signature-invalid",
        "a bad signature: DEVICE_AUTH_SIGNATURE_INVALID, close 1008",
        DeviceFault::BadSignature,
        "device signature invalid",
        "DEVICE_AUTH_SIGNATURE_INVALID",
        "device-signature",
    ));
    v.push(device_failure(
        "P16.57b-device-nonce-mismatch",
        "a signed nonce other than the challenge's: DEVICE_AUTH_NONCE_MISMATCH, close 1008",
        DeviceFault::NonceMismatch,
        "device nonce mismatch",
        "DEVICE_AUTH_NONCE_MISMATCH",
        "device-nonce-mismatch",
    ));
    v.push(device_failure(
        "P16.57c-device-nonce-missing",
        "a blank device nonce: DEVICE_AUTH_NONCE_REQUIRED, close 1008",
        DeviceFault::NonceMissing,
        "device nonce required",
        "DEVICE_AUTH_NONCE_REQUIRED",
        "device-nonce-missing",
    ));
    v.push(device_failure(
        "P16.57d-device-signature-expired",
        "signedAt 10 minutes off: DEVICE_AUTH_SIGNATURE_EXPIRED, close 1008",
        DeviceFault::Stale,
        "device signature expired",
        "DEVICE_AUTH_SIGNATURE_EXPIRED",
        "device-signature-stale",
    ));
    v.push(device_failure(
        "P16.57e-device-id-mismatch",
        "device.id not the SHA-256 of the key: DEVICE_AUTH_DEVICE_ID_MISMATCH, close 1008",
        DeviceFault::IdMismatch,
        "device identity mismatch",
        "DEVICE_AUTH_DEVICE_ID_MISMATCH",
        "device-id-mismatch",
    ));

    // §6.1 node role ------------------------------------------------------------------------------
    v.push(check(
        "P16.58-node-no-device",
        "protocol §5.4 / §16.58",
        "the node role without a device: NOT_PAIRED DEVICE_IDENTITY_REQUIRED, close 1008",
        &[Tag::Node],
        vec![
            open(A),
            challenge(A),
            cli(A, "n1", &[]).client("node-host", "node").role("node").no_instance().step(),
            err_details(A, "n1", "NOT_PAIRED", "device identity required", json!({"code": "DEVICE_IDENTITY_REQUIRED"})),
            close(A, 1008, "device identity required"),
        ],
    ));
    {
        let mut s = vec![
            open(A),
            challenge(A),
            node_connect(A, "n2").step(),
            hello(A, "n2", "node", &[]),
            call(A, "h", "health", None),
            ok(A, "h"),
        ];
        const IDS: [&str; 11] = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "u11"];
        for id in IDS {
            s.push(call(A, id, "status", Some(json!({}))));
            s.push(err(A, id, "INVALID_REQUEST", "unauthorized role: node"));
        }
        s.push(close(A, 1008, "repeated unauthorized calls"));
        v.push(check(
            "P16.59-node-unauthorized-flood",
            "protocol §6.1 / §16.59",
            "a node calling an operator method: \"unauthorized role: node\"; the 11th in a row is followed by close 1008 \"repeated unauthorized calls\"",
            &[Tag::Node, Tag::Device],
            s,
        ));
    }

    // §8 events, §9 keepalive -------------------------------------------------------------------
    v.push(check(
        "P16.59b-node-only-method-operator",
        "protocol §6.1 / §16.59",
        "an operator (even admin) calling a node-only method: INVALID_REQUEST \"unauthorized role: operator\"",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            vec![
                call(A, "e1", "node.event", Some(json!({"event": "x"}))),
                err(A, "e1", "INVALID_REQUEST", "unauthorized role: operator"),
                call(A, "e2", "skills.bins", Some(json!({}))),
                err(A, "e2", "INVALID_REQUEST", "unauthorized role: operator"),
            ],
        ]),
    ));
    v.push(check(
        "P16.60-tick",
        "protocol §8.3 / §16.60",
        "tick events {ts} every 30 000 ms with per-connection seq and no stateVersion",
        &[Tag::Slow],
        cat(vec![
            connected(A, &[READ]),
            vec![
                event(A, "tick").with(json!({"payload": {"ts": "$int"}})).seq().state_version(StateVersionRule::Absent).within(
                    Since::Hello,
                    0,
                    31_000,
                ),
                event(A, "tick").with(json!({"payload": {"ts": "$int"}})).seq().state_version(StateVersionRule::Absent).within(
                    Since::Previous,
                    28_500,
                    31_500,
                ),
            ],
        ]),
    ));
    v.push(check(
        "P16.61-health-event",
        "protocol §8.3 / §16.61, §16.63",
        "a periodic health event with a newer stateVersion within ~60 s, to a read client and to a scope-less one alike",
        &[Tag::Slow],
        cat(vec![
            connected(A, &[READ]),
            connected_probe(B),
            vec![
                event(A, "health").seq().state_version(StateVersionRule::Increases("health")).skip_early().within(
                    Since::Hello,
                    2_000,
                    62_000,
                ),
                event(B, "health").seq().state_version(StateVersionRule::Increases("health")).skip_early().within(
                    Since::Hello,
                    2_000,
                    62_000,
                ),
            ],
        ]),
    ));
    v.push(check(
        "P16.62-presence-connect-disconnect",
        "protocol §8.1 / §16.62",
        "a presence event {presence:[…]} with stateVersion.presence incremented when a tracked client connects, and again when it leaves",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                open(B),
                challenge(B),
                cli(B, "peer", &[READ]).client("test", "test").version("1.0.0").display("conformance-peer").step(),
                hello(B, "peer", "operator", &[]),
                event(A, "presence")
                    .with(json!({"payload": {"presence": "$array"}}))
                    .seq()
                    .state_version(StateVersionRule::Increases("presence")),
                Step::ClientClose { conn: B, code: Some(1000), reason: "peer done" },
                event(A, "presence")
                    .with(json!({"payload": {"presence": "$array"}}))
                    .seq()
                    .state_version(StateVersionRule::Increases("presence")),
            ],
        ]),
    ));
    v.push(check(
        "P16.63-presence-scope-gating",
        "protocol §6.4 / §16.63",
        "presence is not delivered to a scopes:[] client while a read client gets it (health to both: P16.61)",
        &[],
        cat(vec![
            connected_probe(A),
            connected(B, &[READ]),
            vec![
                open(C),
                challenge(C),
                cli(C, "peer", &[READ]).client("test", "test").version("1.0.0").display("conformance-peer").step(),
                hello(C, "peer", "operator", &[]),
                event(B, "presence"),
                Step::ClientClose { conn: C, code: Some(1000), reason: "peer done" },
                event(B, "presence"),
                quiet(A, 300, Quiet::Event("presence")),
            ],
        ]),
    ));
    v.push(check(
        "P16.63b-scopeless-event-gating",
        "protocol §6.4 / §16.63",
        "a scopes:[] operator receives only the unrestricted events, each with a seq",
        &[],
        cat(vec![
            connected_probe(A),
            vec![quiet(A, 1_500, Quiet::EventOutside(UNRESTRICTED.to_vec())), quiet(A, 0, Quiet::EventWithoutSeq)],
        ]),
    ));
    v.push(check(
        "P16.63c-events-carry-seq",
        "protocol §2.3, §8.1 / §16.60",
        "every event to an admin operator after hello-ok carries a seq (only connect.challenge has none)",
        &[],
        cat(vec![connected(A, &[ADMIN, READ, WRITE, APPROVALS, PAIRING]), vec![quiet(A, 1_500, Quiet::EventWithoutSeq)]]),
    ));
    v.push(check(
        "P16.64-ping-pong",
        "protocol §9 / §16.64",
        "a WebSocket ping every 25 s after auth; pongs keep the connection",
        &[Tag::Slow],
        cat(vec![
            connected(A, &[READ]),
            vec![
                ping(A).within(Since::Hello, 24_000, 26_500),
                ping(A).within(Since::Previous, 24_000, 26_500),
                call(A, "h1", "health", None),
                ok(A, "h1"),
            ],
        ]),
    ));
    v.push(check(
        "P16.65-no-pong-terminated",
        "protocol §9 / §16.65",
        "a client that never pongs is dropped without a close frame (1006) ~75 s after auth",
        &[Tag::Slow],
        vec![
            Step::Open { conn: A, headers: vec![], auto_pong: false },
            challenge(A),
            cli(A, "c1", &[READ]).step(),
            hello(A, "c1", "operator", &[READ]),
            ping(A).within(Since::Hello, 24_000, 26_500),
            Step::ExpectTerminated { conn: A, within: None }.within(Since::Hello, 70_000, 80_000),
        ],
    ));

    // §13 lifecycle: needs process control ----------------------------------------------------------
    v.push(
        check(
            "P16.66-sigterm-shutdown",
            "protocol §13 / §16.66",
            "on SIGTERM: shutdown event {reason:\"gateway stopping\"}, then close 1012 \"service restart\"",
            &[],
            vec![],
        )
        .skipped("item 66 needs process control (SIGTERM to the gateway): covered by the end-to-end suite"),
    );
    v.push(
        check(
            "P16.67-startup-race",
            "protocol §13 / §16.67",
            "a connect during startup: UNAVAILABLE \"gateway starting; retry shortly\", close 1013 \"gateway starting\"",
            &[],
            vec![],
        )
        .skipped("item 67 needs process control (a connect while the gateway starts)"),
    );

    // §1 upgrade-time rejections, close echoes ---------------------------------------------------------
    v.push(check(
        "P16.68-upgrade-forwarded-403",
        "protocol §1 / §16.68",
        "a loopback upgrade with X-Forwarded-For and no trusted proxies: HTTP 403 proxy_attribution_required before any frame",
        &[],
        vec![Step::UpgradeRejected {
            headers: vec![("X-Forwarded-For", "203.0.113.9")],
            status: 403,
            body_contains: "proxy_attribution_required",
        }],
    ));
    {
        let mut s = vec![Step::Wait { ms: 300 }];
        for i in 0..32 {
            s.push(open(i));
            s.push(challenge(i));
        }
        s.push(Step::UpgradeRejected { headers: vec![], status: 503, body_contains: "Too many unauthenticated sockets" });
        // Give the budget back before the next check opens a socket from the same address: the
        // gateway frees a slot when it sees the socket close, not when the runner drops it.
        for i in 0..32 {
            s.push(Step::Drop { conn: i });
        }
        s.push(Step::Wait { ms: 500 });
        v.push(check(
            "P16.69-preauth-socket-budget",
            "protocol §1 / §16.69",
            "the 33rd concurrent unauthenticated socket from one IP: HTTP 503 \"Too many unauthenticated sockets\"",
            &[],
            s,
        ));
    }
    v.push(check(
        "P16.70-client-close-4000",
        "protocol §9 / §16.70",
        "a client close 4000 \"tick timeout\" is echoed",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![Step::ClientClose { conn: A, code: Some(4000), reason: "tick timeout" }, close(A, 4000, "tick timeout")],
        ]),
    ));
    v.push(check(
        "P16.71-client-close-no-status",
        "protocol §3 / §16.71",
        "a client close frame without status code (1005) is echoed cleanly",
        &[],
        cat(vec![connected(A, &[READ]), vec![Step::ClientClose { conn: A, code: None, reason: "" }, close(A, 1005, "")]]),
    ));

    // http.md probes -------------------------------------------------------------------------------
    let live = || Body::Json(json!({"$eq": {"ok": true, "status": "live"}}));
    v.push(check(
        "H.01-healthz",
        "http §6.1 / checklist 1",
        "GET /healthz: 200 {\"ok\":true,\"status\":\"live\"}, Cache-Control no-store, no auth",
        &[],
        vec![
            http("GET", "/healthz", 200, live())
                .expect(HeaderRule::Equals("Cache-Control", "no-store"))
                .expect(HeaderRule::Equals("Content-Type", "application/json; charset=utf-8"))
                .expect(HeaderRule::Equals("Content-Length", "27"))
                .step(),
        ],
    ));
    v.push(check(
        "H.02-health",
        "http §6.1 / checklist 2",
        "/health is identical to /healthz",
        &[],
        vec![
            http("GET", "/health", 200, live())
                .expect(HeaderRule::Equals("Cache-Control", "no-store"))
                .expect(HeaderRule::Equals("Content-Type", "application/json; charset=utf-8"))
                .expect(HeaderRule::Equals("Content-Length", "27"))
                .step(),
        ],
    ));
    v.push(check(
        "H.03-head-health",
        "http §6.1 / checklist 3",
        "HEAD /health: 200, headers only, Content-Length 27",
        &[],
        vec![http("HEAD", "/health", 200, Body::Empty).expect(HeaderRule::Equals("Content-Length", "27")).step()],
    ));
    v.push(check(
        "H.04-post-health",
        "http §6.1 / checklist 4",
        "POST /health: 405 text/plain with Allow: GET, HEAD",
        &[],
        vec![
            http("POST", "/health", 405, Body::Exact("Method Not Allowed"))
                .expect(HeaderRule::Equals("Content-Type", "text/plain; charset=utf-8"))
                .expect(HeaderRule::Equals("Allow", "GET, HEAD"))
                .step(),
        ],
    ));
    v.push(check(
        "H.05-healthz-subpath",
        "http §6.1 / checklist 5",
        "/healthz/foo: 404 text/plain",
        &[],
        vec![
            http("GET", "/healthz/foo", 404, Body::Exact("Not Found"))
                .expect(HeaderRule::Equals("Content-Type", "text/plain; charset=utf-8"))
                .step(),
        ],
    ));
    let ready_detailed = || Body::Json(json!({"ready": true, "failing": "$array", "uptimeMs": "$int", "eventLoop": "$object"}));
    v.push(check(
        "H.06-readyz-local",
        "http §6.1 / checklist 6",
        "/readyz from loopback without auth: detailed {ready, failing, uptimeMs, eventLoop}",
        &[],
        vec![
            http("GET", "/readyz", 200, ready_detailed()).expect(HeaderRule::Equals("Cache-Control", "no-store")).step(),
            http("GET", "/ready", 200, ready_detailed()).expect(HeaderRule::Equals("Cache-Control", "no-store")).step(),
        ],
    ));
    v.push(check(
        "H.07-readyz-remote",
        "http §6.1 / checklist 7",
        "/readyz from a non-loopback peer without auth: exactly {\"ready\":true}",
        &[Tag::RemotePeer],
        vec![http("GET", "/readyz", 200, Body::Json(json!({"$eq": {"ready": true}}))).remote().step()],
    ));
    v.push(check(
        "H.08-readyz-remote-bearer",
        "http §6.1 / checklist 8",
        "/readyz from a non-loopback peer with a valid Bearer: detailed",
        &[Tag::RemotePeer],
        vec![http("GET", "/readyz", 200, ready_detailed()).remote().header("Authorization", "Bearer $TOKEN").step()],
    ));
    v.push(check(
        "H.09a-startupz-local",
        "http §6.1 / checklist 9",
        "/startupz from loopback: {ok:true, status:started} plus version and uptimeMs",
        &[],
        vec![
            http("GET", "/startupz", 200, Body::Json(json!({"ok": true, "status": "started", "version": "$string", "uptimeMs": "$int"})))
                .step(),
            http("GET", "/startup", 200, Body::Json(json!({"ok": true, "status": "started", "version": "$string", "uptimeMs": "$int"})))
                .step(),
        ],
    ));
    v.push(check(
        "H.09b-startupz-remote",
        "http §6.1 / checklist 9",
        "/startupz from a non-loopback peer without auth: exactly {\"ok\":true,\"status\":\"started\"}",
        &[Tag::RemotePeer],
        vec![http("GET", "/startupz", 200, Body::Json(json!({"$eq": {"ok": true, "status": "started"}}))).remote().step()],
    ));
    v.push(check(
        "H.12-baseline-headers",
        "http §3 / checklist 12",
        "every router response carries nosniff, no-referrer and the baseline Permissions-Policy",
        &[],
        vec![
            baseline(http("GET", "/healthz", 200, Body::Any)).step(),
            baseline(http("GET", "/readyz", 200, Body::Any)).step(),
            baseline(http("GET", "/startupz", 200, Body::Any)).step(),
            baseline(http("POST", "/healthz", 405, Body::Any)).step(),
            baseline(http("GET", "/v1/no-such-path", 404, Body::Any)).step(),
        ],
    ));
    v.push(check(
        "H.27-forwarded-untrusted",
        "http §4.5 / checklist 27",
        "forwarded headers from a non-trusted peer: 403 proxy_attribution_required, even with a valid token",
        &[],
        vec![
            http(
                "GET",
                "/readyz",
                403,
                Body::Json(json!({"$eq": {"error": {"message": PROXY_BODY, "type": "proxy_attribution_required"}}})),
            )
            .header("X-Forwarded-For", "203.0.113.9")
            .header("Authorization", "Bearer $TOKEN")
            .step(),
        ],
    ));
    v.push(check(
        "H.28-healthz-forwarded-exempt",
        "http §2 / checklist 28",
        "/healthz is exempt from proxy attribution",
        &[],
        vec![http("GET", "/healthz", 200, live()).header("X-Forwarded-For", "203.0.113.9").step()],
    ));

    // ---- operator surface (spec operator.md) ------------------------------------------------
    v.push(check(
        "O1.2-logs-tail-params",
        "operator §1.2 (op-logs-tail-invalid)",
        "logs.tail params are closed: limit 1–5000, maxBytes ≤ 1000000, cursor an integer ≥ 0, the reference's messages",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "l1", "logs.tail", Some(json!({"limit": 0}))),
                err(A, "l1", "INVALID_REQUEST", "invalid logs.tail params: at /limit: must be >= 1"),
                call(A, "l2", "logs.tail", Some(json!({"limit": 5001}))),
                err(A, "l2", "INVALID_REQUEST", "invalid logs.tail params: at /limit: must be <= 5000"),
                call(A, "l3", "logs.tail", Some(json!({"maxBytes": 1_000_001}))),
                err(A, "l3", "INVALID_REQUEST", "invalid logs.tail params: at /maxBytes: must be <= 1000000"),
                call(A, "l4", "logs.tail", Some(json!({"cursor": -1}))),
                err(A, "l4", "INVALID_REQUEST", "invalid logs.tail params: at /cursor: must be >= 0"),
                call(A, "l5", "logs.tail", Some(json!({"cursor": "10"}))),
                err(A, "l5", "INVALID_REQUEST", "invalid logs.tail params: at /cursor: must be integer"),
                call(A, "l6", "logs.tail", Some(json!({"cursor": 1.5}))),
                err(A, "l6", "INVALID_REQUEST", "invalid logs.tail params: at /cursor: must be integer"),
                call(A, "l7", "logs.tail", Some(json!({"follow": true}))),
                err(A, "l7", "INVALID_REQUEST", "invalid logs.tail params: at root: unexpected property 'follow'"),
            ],
        ]),
    ));
    v.push(check(
        "O1.2-logs-tail-shape",
        "operator §1.2 (op-logs-tail-window)",
        "logs.tail {limit:1} answers {file, cursor, size, lines, truncated, reset}; read scope suffices",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "l1", "logs.tail", Some(json!({"limit": 1}))),
                ok_payload(
                    A,
                    "l1",
                    json!({"file": "$string", "cursor": "$int", "size": "$int", "lines": "$array", "truncated": "$bool", "reset": "$bool"}),
                ),
            ],
        ]),
    ));
    v.push(check(
        "O1.2-logs-tail-scope",
        "operator §1.2 (op-logs-tail-scope)",
        "logs.tail needs operator.read: FORBIDDEN with no scopes; operator.write implies it",
        &[],
        cat(vec![
            connected_probe(A),
            vec![call(A, "l1", "logs.tail", Some(json!({"limit": 1}))), missing_scope(A, "l1", READ)],
            connected(B, &[WRITE]),
            vec![call(B, "l2", "logs.tail", Some(json!({"limit": 1}))), ok(B, "l2")],
        ]),
    ));

    v.push(check(
        "O8-channels-status-empty",
        "operator §8 (op-channels-status)",
        "without channel plugins: channels.status answers the empty shape, a named channel is unknown, params are closed",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "c1", "channels.status", Some(json!({"probe": true, "timeoutMs": 1000}))),
                ok_payload(
                    A,
                    "c1",
                    json!({"ts": "$int", "channelOrder": [], "channelLabels": {}, "channelMeta": [], "eventLoop": "$object", "channels": {},
                        "channelAccounts": {}, "channelDefaultAccountId": {}, "statusIssues": []}),
                ),
                call(A, "c2", "channels.status", Some(json!({"channel": "telegram"}))),
                err(A, "c2", "INVALID_REQUEST", "unknown channel: telegram"),
                call(A, "c3", "channels.status", Some(json!({"x": 1}))),
                err(A, "c3", "INVALID_REQUEST", "invalid channels.status params: at root: unexpected property 'x'"),
            ],
        ]),
    ));
    v.push(check(
        "O8-channels-pairing-list-empty",
        "operator §8 (op-channels-pairing-approvals)",
        "without channel plugins: channels.pairing.list answers no accounts and no requests; named channel unknown",
        &[],
        cat(vec![
            connected(A, &["operator.pairing"]),
            vec![
                call(A, "p1", "channels.pairing.list", Some(json!({}))),
                ok_payload(
                    A,
                    "p1",
                    json!({"accounts": [], "requests": [], "commandOwnerConfigured": false, "limits": {"pendingPerAccount": 3, "ttlMs": 3_600_000}}),
                ),
                call(A, "p2", "channels.pairing.list", Some(json!({"channel": "telegram"}))),
                err(A, "p2", "INVALID_REQUEST", "Error: unknown pairing channel: telegram"),
                call(A, "p3", "channels.pairing.list", Some(json!({"channel": ""}))),
                err(A, "p3", "INVALID_REQUEST", "invalid channels.pairing.list params: at /channel: must not have fewer than 1 characters"),
            ],
        ]),
    ));

    v.push(check(
        "O2.2-config-schema-shape",
        "operator §2.2 (op-config-schema)",
        "config.schema answers {schema, uiHints, version, generatedAt} (a draft-07 object schema); params are closed",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "s1", "config.schema", Some(json!({}))),
                ok_payload(
                    A,
                    "s1",
                    json!({"schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": "$object"},
                        "uiHints": "$object", "version": "$string", "generatedAt": "$string"}),
                ),
                call(A, "s2", "config.schema", Some(json!({"path": "gateway"}))),
                err(A, "s2", "INVALID_REQUEST", "invalid config.schema params: at root: unexpected property 'path'"),
            ],
        ]),
    ));
    v.push(check(
        "O2.3-config-schema-lookup",
        "operator §2.3 (op-config-schema-lookup)",
        "config.schema.lookup: a key's node, reload kind, hint and children (map keys as `*`); unknown path and bad params refused",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "l1", "config.schema.lookup", Some(json!({"path": "gateway.port"}))),
                ok_payload(
                    A,
                    "l1",
                    json!({"path": "gateway.port", "schema": {"type": "integer", "minimum": 1, "maximum": 65535}, "reloadKind": "restart",
                        "hint": {"label": "Gateway Port"}, "hintPath": "gateway.port", "children": []}),
                ),
                call(A, "l2", "config.schema.lookup", Some(json!({"path": "models.providers.*.baseUrl"}))),
                ok_payload(
                    A,
                    "l2",
                    json!({"path": "models.providers.*.baseUrl", "schema": {"type": "string"}, "reloadKind": "hot", "hintPath": "models.providers.*.baseUrl", "children": []}),
                ),
                call(A, "l3", "config.schema.lookup", Some(json!({"path": "nope.missing"}))),
                err(A, "l3", "INVALID_REQUEST", "config schema path not found"),
                call(A, "l4", "config.schema.lookup", Some(json!({"path": "a b"}))),
                err(A, "l4", "INVALID_REQUEST", "invalid config.schema.lookup params: at /path: must match pattern \"^[A-Za-z0-9_./\\[\\]\\-*]+$\""),
                call(A, "l5", "config.schema.lookup", Some(json!({}))),
                err(A, "l5", "INVALID_REQUEST", "invalid config.schema.lookup params: must have required property 'path'"),
                call(A, "l6", "config.schema.lookup", Some(json!({"path": "gateway", "x": 1}))),
                err(A, "l6", "INVALID_REQUEST", "invalid config.schema.lookup params: at root: unexpected property 'x'"),
            ],
        ]),
    ));
    v.push(check(
        "O2.4-config-set-params",
        "operator §2.4 (op-config-set)",
        "config.set takes only {raw (≥1 char), baseHash}: an empty raw and a note are refused; it needs operator.admin",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            connected(B, &[READ, WRITE]),
            vec![
                call(A, "w1", "config.set", Some(json!({"raw": ""}))),
                err(A, "w1", "INVALID_REQUEST", "invalid config.set params: at /raw: must not have fewer than 1 characters"),
                call(A, "w2", "config.set", Some(json!({"raw": "{}", "baseHash": "x", "note": "n"}))),
                err(A, "w2", "INVALID_REQUEST", "invalid config.set params: at root: unexpected property 'note'"),
                call(B, "w3", "config.set", Some(json!({"raw": "{}", "baseHash": "x"}))),
                missing_scope(B, "w3", "operator.admin"),
            ],
        ]),
    ));

    v.push(check(
        "O3-usage-status-cost",
        "operator §3 (op-usage-status-cost)",
        "usage.status answers {updatedAt, providers}; usage.cost answers one entry per day and totals, with the reference's refusals",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "u1", "usage.status", Some(json!({}))),
                ok_payload(A, "u1", json!({"updatedAt": "$int", "providers": "$array"})),
                call(A, "u2", "usage.cost", Some(json!({"startDate": "2026-12-01", "endDate": "2026-12-06"}))),
                ok_payload(
                    A,
                    "u2",
                    json!({"updatedAt": "$int", "days": 6, "daily": "$array", "totals": {"input": "$int", "output": "$int", "cacheRead": "$int",
                        "cacheWrite": "$int", "totalTokens": "$int", "missingCostEntries": "$int"}}),
                ),
                call(A, "u3", "usage.cost", Some(json!({"startDate": "2026-12-01"}))),
                err(A, "u3", "INVALID_REQUEST", "startDate and endDate must be provided together"),
                call(A, "u4", "usage.cost", Some(json!({"startDate": "2026-12-09", "endDate": "2026-12-01"}))),
                err(A, "u4", "INVALID_REQUEST", "startDate must not be after endDate"),
                call(A, "u5", "usage.cost", Some(json!({"startDate": "2026-02-30", "endDate": "2026-03-01"}))),
                err(A, "u5", "INVALID_REQUEST", "invalid startDate: expected a valid YYYY-MM-DD calendar date"),
                call(A, "u6", "usage.cost", Some(json!({"agentScope": "all", "agentId": "main"}))),
                err(A, "u6", "INVALID_REQUEST", "agentScope=all cannot be combined with agentId"),
                call(A, "u7", "usage.cost", Some(json!({"days": 7, "bogus": 1}))),
                ok_payload(A, "u7", json!({"days": 7, "daily": "$array"})),
            ],
        ]),
    ));
    v.push(check(
        "O3-sessions-usage",
        "operator §3 (op-usage-sessions-usage)",
        "sessions.usage: closed params, the agentScope conflict, the result's shape",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "s1", "sessions.usage", Some(json!({"range": "7d"}))),
                ok_payload(
                    A,
                    "s1",
                    json!({"updatedAt": "$int", "startDate": "$string", "endDate": "$string", "sessions": "$array", "totals": "$object",
                        "aggregates": {"sessionCount": "$int", "messages": "$object", "byModel": "$array"}, "cacheStatus": {"status": "$string"}}),
                ),
                call(A, "s2", "sessions.usage", Some(json!({"range": "2d"}))),
                err(A, "s2", "INVALID_REQUEST", "invalid sessions.usage params: at /range: must be equal to constant; at /range: must match a schema in anyOf"),
                call(A, "s3", "sessions.usage", Some(json!({"agentScope": "all", "key": "main"}))),
                err(A, "s3", "INVALID_REQUEST", "agentScope=all cannot be combined with key or agentId"),
            ],
        ]),
    ));

    v.push(check(
        "O4-diagnostics",
        "operator §4 (op-liveness-system-info, op-liveness-diagnostics)",
        "system.info (closed params) answers host and process figures; diagnostics.lanes and diagnostics.stability answer their shapes; read scope suffices",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "d1", "system.info", Some(json!({}))),
                ok_payload(
                    A,
                    "d1",
                    json!({"hostname": "$string", "platform": "$string", "arch": "$string", "pid": "$int", "uptimeMs": "$int", "cpuCount": "$int",
                        "memoryTotalBytes": "$int", "memoryFreeBytes": "$int"}),
                ),
                call(A, "d2", "system.info", Some(json!({"x": 1}))),
                err(A, "d2", "INVALID_REQUEST", "invalid system.info params: at root: unexpected property 'x'"),
                call(A, "d3", "diagnostics.lanes", Some(json!({"x": 1}))),
                ok_payload(A, "d3", json!({"ts": "$int", "lanes": "$array"})),
                call(A, "d4", "diagnostics.stability", Some(json!({"limit": 5}))),
                ok_payload(A, "d4", json!({"generatedAt": "$string", "capacity": 1000, "count": "$int", "dropped": "$int", "events": "$array"})),
                call(A, "d5", "last-heartbeat", Some(json!({}))),
                ok_payload(A, "d5", Value::Null),
            ],
        ]),
    ));

    v.push(check(
        "O8-device-token-params",
        "operator §8 (op-devices-token-rename)",
        "device.token.rotate|revoke and device.pair.rename: unknown devices refused with the reference's words, closed params, label 1–64",
        &[],
        cat(vec![
            connected(A, &[PAIRING]),
            vec![
                call(A, "t1", "device.token.rotate", Some(json!({"deviceId": "nope", "role": "operator"}))),
                err(A, "t1", "INVALID_REQUEST", "device token rotation denied"),
                call(A, "t2", "device.token.revoke", Some(json!({"deviceId": "nope", "role": "operator"}))),
                err(A, "t2", "INVALID_REQUEST", "device token revocation denied"),
                call(A, "t3", "device.pair.rename", Some(json!({"deviceId": "nope", "label": "x"}))),
                err(A, "t3", "INVALID_REQUEST", "unknown deviceId"),
                call(A, "t4", "device.token.rotate", Some(json!({"deviceId": "nope"}))),
                err(A, "t4", "INVALID_REQUEST", "invalid device.token.rotate params: must have required property 'role'"),
                call(A, "t5", "device.pair.rename", Some(json!({"deviceId": "nope", "label": "x".repeat(65)}))),
                err(A, "t5", "INVALID_REQUEST", "invalid device.pair.rename params: at /label: must not have more than 64 characters"),
                call(A, "t6", "device.token.revoke", Some(json!({"deviceId": "nope", "role": "operator", "scopes": []}))),
                err(A, "t6", "INVALID_REQUEST", "invalid device.token.revoke params: at root: unexpected property 'scopes'"),
            ],
        ]),
    ));

    v.push(check(
        "O5-sessions-resolve-catalog",
        "operator §5 (op-sessions-lifecycle, op-sessions-cleanup-catalog)",
        "sessions.resolve misses with the reference's words and closed params; sessions.catalog.list answers its shape",
        &[],
        cat(vec![
            connected(A, &[READ]),
            vec![
                call(A, "r1", "sessions.resolve", Some(json!({"key": "agent:main:nope"}))),
                err(A, "r1", "INVALID_REQUEST", "No session found: agent:main:nope"),
                call(A, "r2", "sessions.resolve", Some(json!({"key": "agent:main:main", "x": 1}))),
                err(A, "r2", "INVALID_REQUEST", "invalid sessions.resolve params: at root: unexpected property 'x'"),
                call(A, "c1", "sessions.catalog.list", Some(json!({}))),
                ok_payload(A, "c1", json!({"catalogs": "$array"})),
                call(A, "c2", "sessions.catalog.list", Some(json!({"limitPerHost": 0}))),
                err(A, "c2", "INVALID_REQUEST", "invalid sessions.catalog.list params: at /limitPerHost: must be >= 1"),
            ],
        ]),
    ));

    v.push(check(
        "O7-absent-subsystems",
        "operator §6–§8 (reference answers for plugins, skills, themes, approvals, memory, nodes, cron)",
        "views of subsystems a gateway may lack answer their shapes and check params as the reference does",
        &[],
        cat(vec![
            connected(A, &[READ, ADMIN, APPROVALS]),
            vec![
                call(A, "a1", "plugins.list", Some(json!({}))),
                ok_payload(A, "a1", json!({"plugins": "$array", "diagnostics": "$array", "mutationAllowed": "$bool", "generation": "$int"})),
                call(A, "a2", "plugins.list", Some(json!({"zzz": 1}))),
                err(A, "a2", "INVALID_REQUEST", "invalid plugins.list params: at root: unexpected property 'zzz'"),
                call(A, "a3", "tools.github.status", Some(json!({"agentId": "main"}))),
                err(A, "a3", "INVALID_REQUEST", "invalid tools.github.status params: must have required property 'selectedScope'"),
                call(A, "a4", "skills.status", Some(json!({"agentId": "nope"}))),
                err(A, "a4", "INVALID_REQUEST", "unknown agent id \"nope\""),
                call(A, "a5", "node.list", Some(json!({}))),
                ok_payload(A, "a5", json!({"ts": "$int", "nodes": "$array"})),
                call(A, "a6", "cron.runs", Some(json!({"limit": 50}))),
                ok_payload(A, "a6", json!({"entries": "$array", "total": "$int", "offset": 0, "limit": 50, "hasMore": "$bool"})),
                call(A, "a7", "cron.status", Some(json!({"zzz": 1}))),
                err(A, "a7", "INVALID_REQUEST", "invalid cron.status params: at root: unexpected property 'zzz'"),
                call(A, "a8", "approval.history", Some(json!({"zzz": 1}))),
                err(A, "a8", "INVALID_REQUEST", "invalid approval.history params"),
                call(A, "a9", "exec.approval.grants.list", Some(json!({}))),
                ok_payload(A, "a9", json!({"grants": "$array"})),
                call(A, "a10", "environments.list", Some(json!({"projection": "profiles"}))),
                ok_payload(A, "a10", json!({"environments": []})),
                call(A, "a11", "skills.library.list", Some(json!({"zzz": 1}))),
                err(A, "a11", "INVALID_REQUEST", "invalid skills.library.list params: at root: unexpected property 'zzz'"),
                call(A, "a12", "themes.list", Some(json!({}))),
                ok_payload(A, "a12", json!({"current": {"id": "$string", "mode": "$string"}, "theme": {"id": "$string", "source": "$string"}, "themes": "$array"})),
            ],
        ]),
    ));

    v.push(check(
        "O5-sessions-mutation-params",
        "operator §5 (op-sessions-lifecycle, op-sessions-scope)",
        "sessions.patch|reset|delete check params with the reference's messages; the main session cannot be deleted; scopes as the reference's",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            connected(B, &[READ]),
            vec![
                call(A, "m1", "sessions.patch", Some(json!({"key": "agent:main:main", "bogus": 1}))),
                err(A, "m1", "INVALID_REQUEST", "invalid sessions.patch params: at root: unexpected property 'bogus'"),
                call(A, "m2", "sessions.patch", Some(json!({"label": "x"}))),
                err(A, "m2", "INVALID_REQUEST", "invalid sessions.patch params: must have required property 'key'"),
                call(A, "m3", "sessions.reset", Some(json!({"key": "agent:main:main", "reason": "wipe"}))),
                err(A, "m3", "INVALID_REQUEST", "invalid sessions.reset params: at /reason: must be equal to constant; at /reason: must match a schema in anyOf"),
                call(A, "m4", "sessions.delete", Some(json!({}))),
                err(A, "m4", "INVALID_REQUEST", "invalid sessions.delete params: must have required property 'key'"),
                call(A, "m5", "sessions.delete", Some(json!({"key": "agent:main:main"}))),
                err(A, "m5", "INVALID_REQUEST", "Cannot delete the main session (agent:main:main)."),
                call(B, "m6", "sessions.create", Some(json!({}))),
                missing_scope(B, "m6", "operator.write"),
                call(B, "m7", "sessions.reset", Some(json!({"key": "agent:main:main"}))),
                missing_scope(B, "m7", "operator.admin"),
                call(B, "m8", "commands.list", Some(json!({}))),
                ok_payload(B, "m8", json!({"commands": "$array"})),
                call(A, "m9", "sessions.compact", Some(json!({}))),
                err(A, "m9", "INVALID_REQUEST", "invalid sessions.compact params: must have required property 'key'"),
                call(A, "m10", "sessions.compact", Some(json!({"key": "agent:main:main", "maxLines": 0}))),
                err(A, "m10", "INVALID_REQUEST", "invalid sessions.compact params: at /maxLines: must be >= 1"),
                call(B, "m11", "sessions.compact", Some(json!({"key": "agent:main:main"}))),
                missing_scope(B, "m11", "operator.admin"),
                call(A, "m12", "sessions.cleanup", Some(json!({"x": 1}))),
                err(A, "m12", "INVALID_REQUEST", "invalid sessions.cleanup params: at root: unexpected property 'x'"),
                call(B, "m13", "sessions.cleanup", Some(json!({}))),
                missing_scope(B, "m13", "operator.admin"),
            ],
        ]),
    ));

    v.push(check(
        "O5-sessions-archive",
        "operator §5 (sessions archive; the reference's session mutation scope policy)",
        "the main session cannot be archived; archivedOnly deletes need an archived session and then only write scope; patching beyond the write fields needs admin",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            connected(B, &[READ, WRITE]),
            vec![
                call(A, "r1", "sessions.patch", Some(json!({"key": "agent:main:main", "archived": true}))),
                err(A, "r1", "INVALID_REQUEST", "Cannot archive an agent's main session."),
                call(B, "r2", "sessions.delete", Some(json!({"key": "agent:main:conformance-none", "archivedOnly": true}))),
                err(B, "r2", "INVALID_REQUEST", "Session agent:main:conformance-none is not archived. Archive it first, then delete it."),
                call(B, "r3", "sessions.delete", Some(json!({"key": "agent:main:conformance-none"}))),
                missing_scope(B, "r3", "operator.admin"),
                call(B, "r4", "sessions.patch", Some(json!({"key": "agent:main:conformance-none", "verboseLevel": "on"}))),
                missing_scope(B, "r4", "operator.admin"),
            ],
        ]),
    ));

    v.push(check(
        "O9-secrets-store-params",
        "operator (secrets.store.*, the Control UI's Settings › Secrets; captured from the reference)",
        "the team store's methods need operator.admin (checked before params) and refuse bad params and placeholder values in the reference's words; an empty store lists no entries",
        &[],
        cat(vec![
            connected(A, &[ADMIN]),
            connected(B, &[READ, WRITE]),
            vec![
                call(B, "s1", "secrets.store.list", Some(json!({}))),
                missing_scope(B, "s1", "operator.admin"),
                call(B, "s2", "secrets.store.set", Some(json!({"bogus": 1}))),
                missing_scope(B, "s2", "operator.admin"),
                call(A, "s3", "secrets.store.list", Some(json!({"x": 1}))),
                err(A, "s3", "INVALID_REQUEST", "invalid secrets.store.list params: at root: unexpected property 'x'"),
                call(A, "s4", "secrets.store.set", Some(json!({"name": "X", "value": "v"}))),
                err(A, "s4", "INVALID_REQUEST", "invalid secrets.store.set params: must have required property 'kind'"),
                call(A, "s5", "secrets.store.set", Some(json!({"name": "X", "value": "v", "kind": "foo"}))),
                err(
                    A,
                    "s5",
                    "INVALID_REQUEST",
                    "invalid secrets.store.set params: at /kind: must be equal to constant; at /kind: must match a schema in anyOf",
                ),
                call(A, "s6", "secrets.store.set", Some(json!({"name": "X", "value": "v", "kind": "env", "allowedHosts": []}))),
                err(A, "s6", "INVALID_REQUEST", "Allowed hosts apply only to secret entries."),
                call(A, "s7", "secrets.store.delete", Some(json!({}))),
                err(A, "s7", "INVALID_REQUEST", "invalid secrets.store.delete params: must have required property 'name'"),
                call(A, "s8", "secrets.store.list", Some(json!({}))),
                ok_payload(A, "s8", json!({"entries": []})),
            ],
        ]),
    ));

    let main_every = json!({"name": "op every", "schedule": {"kind": "every", "everyMs": 3_600_000}, "sessionTarget": "main",
        "wakeMode": "next-heartbeat", "payload": {"kind": "systemEvent", "text": "tick from cron"}});
    let with = |k: &str, val: Value| {
        let mut p = main_every.clone();
        p[k] = val;
        p
    };
    v.push(check(
        "O6-cron-params",
        "operator §6.1–6.2 (op-cron-add-invalid, op-cron-scope)",
        "cron.* check params, schedules and payload rules with the reference's messages; unknown jobs answer CRON_JOB_NOT_FOUND; writes need admin",
        &[],
        cat(vec![
            connected(A, &[READ, WRITE, ADMIN]),
            connected(B, &[READ]),
            vec![
                call(A, "c1", "cron.add", Some(json!({"name": "x"}))),
                err(A, "c1", "INVALID_REQUEST", "invalid cron.add params: must have required property 'schedule'"),
                call(A, "c2", "cron.add", Some(with("schedule", json!({"kind": "cron", "expr": "not a cron"})))),
                err(A, "c2", "INVALID_REQUEST", "invalid cron.add params: CronPattern: invalid configuration format ('not a cron'), exactly five, six, or seven space separated parts are required."),
                call(A, "c3", "cron.add", Some(with("schedule", json!({"kind": "cron", "expr": "0 9 * * *", "tz": "Mars/Base"})))),
                err(A, "c3", "INVALID_REQUEST", "invalid cron.add params: CronDate: Failed to convert date to timezone 'Mars/Base'. This may happen with invalid timezone names or dates. Original error: toTZ: Invalid timezone 'Mars/Base' or date. Please provide a valid IANA timezone (e.g., 'America/New_York', 'Europe/Stockholm'). Original error: Invalid time zone specified: Mars/Base"),
                call(A, "c4", "cron.add", Some(with("schedule", json!({"kind": "at", "at": "tomorrow-ish"})))),
                err(A, "c4", "INVALID_REQUEST", "Invalid schedule.at: expected ISO-8601 timestamp (got tomorrow-ish)"),
                call(A, "c5", "cron.add", Some(with("payload", json!({"kind": "agentTurn", "message": "x"})))),
                err(A, "c5", "INVALID_REQUEST", "invalid cron.add params: main cron jobs require payload.kind=\"systemEvent\" or \"script\""),
                call(A, "c6", "cron.add", Some(with("extra", json!(1)))),
                err(A, "c6", "INVALID_REQUEST", "invalid cron.add params: at root: unexpected property 'extra'"),
                call(A, "c7", "cron.update", Some(json!({"id": "nope", "patch": {"enabled": true}}))),
                err(A, "c7", "INVALID_REQUEST", "Automation not found: nope. List automations and retry with a current job id. For cross-session management, use a fresh authenticated configured channel owner or Control UI administrator turn or the Automations page."),
                call(A, "c8", "cron.run", Some(json!({"id": "nope"}))),
                err(A, "c8", "INVALID_REQUEST", "Automation not found: nope. List automations and retry with a current job id. For cross-session management, use a fresh authenticated configured channel owner or Control UI administrator turn or the Automations page."),
                call(A, "c9", "cron.get", Some(json!({"id": "nope"}))),
                err(A, "c9", "INVALID_REQUEST", "cron job not found: nope. List automations and retry with a current job id. For cross-session management, use a fresh authenticated configured channel owner or Control UI administrator turn or the Automations page."),
                call(A, "c10", "cron.runs", Some(json!({"id": "a/b"}))),
                err(A, "c10", "INVALID_REQUEST", "invalid cron.runs params: at /id: must match pattern \"^[^/\\\\]+$\""),
                call(A, "c11", "cron.list", Some(json!({"limit": 500}))),
                err(A, "c11", "INVALID_REQUEST", "invalid cron.list params: at /limit: must be <= 200"),
                call(B, "c12", "cron.add", Some(main_every.clone())),
                missing_scope(B, "c12", "operator.admin"),
                call(B, "c13", "cron.scratch.get", Some(json!({"id": "x"}))),
                missing_scope(B, "c13", "operator.admin"),
                call(B, "c14", "cron.status", Some(json!({}))),
                ok_payload(B, "c14", json!({"enabled": "$bool", "storage": "sqlite", "jobs": "$int"})),
            ],
        ]),
    ));

    v.push(check(
        "O6-cron-crud",
        "operator §6.2 (op-cron-crud, op-cron-run-agentturn)",
        "cron.add answers the job (anchor, next run, revision, delivery preview) and emits `cron` added; get/update/scratch/run due/remove behave as the reference's",
        &[],
        cat(vec![
            connected(A, &[READ, WRITE, ADMIN]),
            vec![
                call(A, "d1", "cron.add", Some(main_every.clone())),
                ok_payload(A, "d1", json!({"id": "$string", "name": "op every", "enabled": true, "createdAtMs": "$int",
                    "schedule": {"kind": "every", "everyMs": 3_600_000, "anchorMs": "$int"}, "sessionTarget": "main",
                    "payload": {"kind": "systemEvent", "text": "tick from cron"}, "state": {"nextRunAtMs": "$int"},
                    "configRevision": "$string", "nextRunAtMs": "$int", "deliveryPreview": {"label": "not requested", "detail": "not requested"}}))
                .save("JOB", "/payload/id"),
                event(A, "cron").with(json!({"payload": {"jobId": "$JOB", "action": "added", "job": {"name": "op every"}}})),
                call(A, "d2", "cron.get", Some(json!({"jobId": "$JOB"}))),
                ok_payload(A, "d2", json!({"id": "$JOB", "name": "op every", "configRevision": "$string"})),
                call(A, "d3", "cron.update", Some(json!({"id": "$JOB", "patch": {"enabled": false, "description": "paused"}}))),
                ok_payload(A, "d3", json!({"id": "$JOB", "enabled": false, "description": "paused", "state": {"scheduleActivatedAtMs": "$int"}})),
                call(A, "d4", "cron.scratch.set", Some(json!({"id": "$JOB", "content": "notes"}))),
                ok_payload(A, "d4", json!({"ok": true, "scratch": {"content": "notes", "revision": 1, "updatedAtMs": "$int"}, "currentRevision": 1, "maxBytes": 262144})),
                call(A, "d5", "cron.scratch.set", Some(json!({"id": "$JOB", "content": "notes2", "expectedRevision": 0}))),
                ok_payload(A, "d5", json!({"ok": false, "reason": "revision-conflict", "currentRevision": 1})),
                call(A, "d6", "cron.run", Some(json!({"id": "$JOB", "mode": "due"}))),
                ok_payload(A, "d6", json!({"ok": true, "ran": false, "processInstanceId": "$string"})),
                call(A, "d7", "cron.remove", Some(json!({"id": "$JOB"}))),
                ok_payload(A, "d7", json!({"ok": true, "removed": true})),
                call(A, "d8", "cron.remove", Some(json!({"jobId": "$JOB"}))),
                err(A, "d8", "INVALID_REQUEST", "Automation not found: $JOB. List automations and retry with a current job id. For cross-session management, use a fresh authenticated configured channel owner or Control UI administrator turn or the Automations page."),
            ],
        ]),
    ));

    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_protocol_item_is_listed() {
        let checks = all();
        let mut ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate check ids");
        for item in 1..=71 {
            let prefix = format!("P16.{item:02}");
            assert!(checks.iter().any(|c| c.id.starts_with(&prefix)), "protocol §16 item {item} has no check");
        }
        for item in [1, 2, 3, 4, 5, 6, 7, 9, 12, 27, 28] {
            let prefix = format!("H.{item:02}");
            assert!(checks.iter().any(|c| c.id.starts_with(&prefix)), "http checklist item {item} has no check");
        }
    }
}
