//! The `client_connection` target.

use super::*;

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
