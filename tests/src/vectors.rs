//! Reference wire captures (`<spec>/vectors/ws/*.jsonl`, format in protocol.md §15) and a
//! replayer that sends their client frames to our gateway and compares what comes back by shape:
//! same response ids, `ok`, `error.code`, `error.message`, `error.details` (minus per-run fields),
//! `retryable`, `retryAfterMs` (within a tolerance), same close code and reason; nonces, timestamps
//! and connection ids are only type-checked.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use clawgate_driver::client::{ClientError, Headers, RawEvent, RawSocket};
use clawgate_tokio::Tokio;
use serde_json::Value;
use tungstenite::Message;

use crate::ws::{IO_TIMEOUT, raw_connect};

/// The shared token used by every capture.
pub const CAPTURE_TOKEN: &str = "testtoken123";

/// `details` fields whose values differ per run (only presence is compared).
const PER_RUN_DETAIL_KEYS: &[&str] = &["requestId", "ts", "deviceId", "connId", "nonce", "issuedAtMs"];

/// Largest accepted |ours − captured| for `retryAfterMs` (the capture's value already counts down).
const RETRY_AFTER_TOLERANCE_MS: i64 = 10_000;

/// `<spec>/vectors/ws`.
pub fn vectors_dir() -> PathBuf {
    crate::testdata_dir().join("vectors").join("ws")
}

/// One capture file.
#[derive(Debug, Clone)]
pub struct Capture {
    pub name: String,
    pub meta: Value,
    /// Every line after the meta line.
    pub lines: Vec<Value>,
}

impl Capture {
    /// Load `<name>.jsonl` (name without extension).
    pub fn load(name: &str) -> Capture {
        let path = vectors_dir().join(format!("{name}.jsonl"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read capture {}: {e}", path.display()));
        let mut meta = Value::Null;
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}.jsonl line {}: {e}", i + 1));
            if i == 0 && v.get("meta").is_some() {
                meta = v["meta"].clone();
            } else {
                lines.push(v);
            }
        }
        Capture { name: name.to_string(), meta, lines }
    }

    /// Connection numbers in order of first appearance (`[None]` for single-connection captures).
    pub fn connections(&self) -> Vec<Option<u64>> {
        let mut seen = Vec::new();
        for l in &self.lines {
            let c = l.get("conn").and_then(Value::as_u64);
            if !seen.contains(&c) {
                seen.push(c);
            }
        }
        seen
    }

    /// The lines of one connection.
    pub fn lines_of(&self, conn: Option<u64>) -> Vec<&Value> {
        self.lines.iter().filter(|l| l.get("conn").and_then(Value::as_u64) == conn).collect()
    }

    /// Non-standard upgrade request headers of a connection (`Origin`, `X-Forwarded-For`, …).
    pub fn upgrade_headers(&self, conn: Option<u64>) -> Headers {
        let up = &self.meta["upgrade"];
        let req = match conn {
            Some(c) => &up[c.to_string()]["request"],
            None => &up["request"],
        };
        let standard = ["host", "connection", "upgrade", "sec-websocket-version", "sec-websocket-key", "sec-websocket-extensions"];
        req["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .filter(|(k, _)| !standard.contains(&k.to_ascii_lowercase().as_str()))
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first client frame of a connection (the `connect` request, usually).
    pub fn first_client_frame(&self, conn: Option<u64>) -> Value {
        self.lines_of(conn)
            .into_iter()
            .find(|l| l["dir"] == "c2s" && l.get("frame").is_some())
            .map(|l| l["frame"].clone())
            .unwrap_or_else(|| panic!("{}: no client frame", self.name))
    }
}

/// The frame with every occurrence of the capture token replaced by `token`.
pub fn substitute_token(frame: &Value, token: &str) -> Value {
    let s = serde_json::to_string(frame).expect("serialize frame").replace(CAPTURE_TOKEN, token);
    serde_json::from_str(&s).expect("re-parse frame")
}

/// JSON type name, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// `connect.challenge`: same event, same capabilities, a UUID nonce, an integer ts, no `seq`.
pub fn compare_challenge(expected: &Value, got: &Value) -> Result<(), String> {
    if got["type"] != "event" || got["event"] != "connect.challenge" {
        return Err(format!("expected the connect.challenge event, got {got}"));
    }
    if got.get("seq").is_some() {
        return Err(format!("connect.challenge must not carry seq: {got}"));
    }
    let p = &got["payload"];
    let nonce = p["nonce"].as_str().unwrap_or("");
    let is_uuid = nonce.len() == 36
        && nonce.chars().enumerate().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    if !is_uuid {
        return Err(format!("challenge nonce is not a UUID: {got}"));
    }
    if !p["ts"].is_u64() {
        return Err(format!("challenge ts is not an integer: {got}"));
    }
    if p["capabilities"] != expected["payload"]["capabilities"] {
        return Err(format!("challenge capabilities: expected {}, got {}", expected["payload"]["capabilities"], p["capabilities"]));
    }
    if keys(p) != keys(&expected["payload"]) {
        return Err(format!("challenge payload keys: expected {:?}, got {:?}", keys(&expected["payload"]), keys(p)));
    }
    Ok(())
}

/// Compare an `error` object by shape and value (per-run fields excepted).
pub fn compare_error(expected: &Value, got: &Value) -> Result<(), String> {
    let mut diffs = Vec::new();
    if keys(expected) != keys(got) {
        diffs.push(format!("error keys: expected {:?}, got {:?}", keys(expected), keys(got)));
    }
    for k in ["code", "message", "retryable"] {
        if expected.get(k) != got.get(k) {
            diffs.push(format!("error.{k}: expected {:?}, got {:?}", expected.get(k), got.get(k)));
        }
    }
    match (expected.get("retryAfterMs").and_then(Value::as_i64), got.get("retryAfterMs")) {
        (None, None) => {}
        (Some(e), Some(g)) => match g.as_i64() {
            Some(g) if (g - e).abs() <= RETRY_AFTER_TOLERANCE_MS => {}
            _ => diffs.push(format!("error.retryAfterMs: expected ≈{e}, got {g}")),
        },
        (e, g) => diffs.push(format!("error.retryAfterMs: expected {e:?}, got {g:?}")),
    }
    let (ed, gd) = (expected.get("details"), got.get("details"));
    match (ed, gd) {
        (None, None) => {}
        (Some(ed), Some(gd)) if ed.is_object() && gd.is_object() => {
            if keys(ed) != keys(gd) {
                diffs.push(format!("error.details keys: expected {:?}, got {:?}", keys(ed), keys(gd)));
            }
            for (k, ev) in ed.as_object().unwrap() {
                if PER_RUN_DETAIL_KEYS.contains(&k.as_str()) {
                    continue;
                }
                if gd.get(k) != Some(ev) {
                    diffs.push(format!("error.details.{k}: expected {ev}, got {:?}", gd.get(k)));
                }
            }
        }
        (e, g) => {
            if e != g {
                diffs.push(format!("error.details: expected {e:?}, got {g:?}"));
            }
        }
    }
    if diffs.is_empty() { Ok(()) } else { Err(diffs.join("; ")) }
}

/// `hello-ok`: type, protocol, auth role/scopes/method, policy limits.
pub fn compare_hello(expected: &Value, got: &Value) -> Result<(), String> {
    let mut diffs = Vec::new();
    for ptr in [
        "/type",
        "/protocol",
        "/auth/role",
        "/auth/scopes",
        "/auth/method",
        "/policy/maxPayload",
        "/policy/maxBufferedBytes",
        "/policy/tickIntervalMs",
    ] {
        let e = expected.pointer(ptr);
        if e.is_some() && got.pointer(ptr) != e {
            diffs.push(format!("hello-ok{ptr}: expected {:?}, got {:?}", e, got.pointer(ptr)));
        }
    }
    for ptr in ["/server/version", "/server/connId"] {
        if !got.pointer(ptr).is_some_and(Value::is_string) {
            diffs.push(format!("hello-ok{ptr} missing"));
        }
    }
    if diffs.is_empty() { Ok(()) } else { Err(diffs.join("; ")) }
}

/// A response frame: same id and ok; errors compared exactly; hello-ok in detail; other ok
/// payloads only by JSON type (their content is checked by [`missing_top_level_keys`] in the
/// tests that are about those methods).
pub fn compare_res(expected: &Value, got: &Value) -> Result<(), String> {
    if got["type"] != "res" {
        return Err(format!("expected a res frame, got {got}"));
    }
    if got["id"] != expected["id"] {
        return Err(format!("res id: expected {}, got {}", expected["id"], got["id"]));
    }
    if got["ok"] != expected["ok"] {
        return Err(format!("res ok: expected {}, got {} (frame {got})", expected["ok"], got["ok"]));
    }
    let mut diffs = Vec::new();
    match (expected.get("error"), got.get("error")) {
        (None, None) => {}
        (Some(e), Some(g)) => {
            if let Err(d) = compare_error(e, g) {
                diffs.push(d);
            }
        }
        (e, g) => diffs.push(format!("error: expected {e:?}, got {g:?}")),
    }
    if expected["ok"] == true {
        let (e, g) = (&expected["payload"], &got["payload"]);
        if e["type"] == "hello-ok" {
            if let Err(d) = compare_hello(e, g) {
                diffs.push(d);
            }
        } else if kind(e) != kind(g) {
            diffs.push(format!("payload type: expected {}, got {}", kind(e), kind(g)));
        }
    } else if expected.get("payload").is_some() != got.get("payload").is_some() {
        diffs.push(format!("payload presence: expected {}, got {}", expected.get("payload").is_some(), got.get("payload").is_some()));
    }
    if diffs.is_empty() { Ok(()) } else { Err(format!("res {}: {}", expected["id"], diffs.join("; "))) }
}

/// Top-level keys of the captured payload that ours lacks (a superset is fine).
pub fn missing_top_level_keys(expected: &Value, got: &Value) -> Vec<String> {
    keys(expected).difference(&keys(got)).cloned().collect()
}

/// What the server said, frame by frame (for failure messages).
#[derive(Debug, Default)]
pub struct Transcript {
    pub received: Vec<String>,
}

impl Transcript {
    fn push(&mut self, ev: &RawEvent) {
        let s = match ev {
            RawEvent::Text(t) if t.len() > 400 => format!("Text({}…[{} bytes])", &t[..400], t.len()),
            other => format!("{other:?}"),
        };
        self.received.push(s);
    }
}

/// Next server frame that is not a ping/pong, recorded in `log`.
async fn next_event(sock: &mut RawSocket<Tokio>, log: &mut Transcript) -> Result<RawEvent, String> {
    match sock.next_frame(IO_TIMEOUT).await {
        Some(ev) => {
            log.push(&ev);
            Ok(ev)
        }
        None => Err(format!("no frame from the server within {IO_TIMEOUT:?}")),
    }
}

fn is_event(v: &Value) -> bool {
    v["type"] == "event"
}

/// Next `res` frame (server events in between are skipped).
async fn next_res(sock: &mut RawSocket<Tokio>, log: &mut Transcript) -> Result<Value, String> {
    loop {
        match next_event(sock, log).await? {
            RawEvent::Text(t) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| format!("non-JSON text from server ({e}): {t}"))?;
                if is_event(&v) {
                    continue;
                }
                return Ok(v);
            }
            other => return Err(format!("expected a response, got {other:?}")),
        }
    }
}

/// Wait for the server's close, skipping events; a response (or anything else) first is an error.
pub async fn expect_close(sock: &mut RawSocket<Tokio>, log: &mut Transcript) -> Result<(u16, String), String> {
    loop {
        match next_event(sock, log).await? {
            RawEvent::Close { code, reason } => return Ok((code, reason)),
            RawEvent::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if is_event(&v) {
                    continue;
                }
                return Err(format!("expected the server to close (no response), got {t}"));
            }
            other => return Err(format!("expected a close frame, got {other:?}")),
        }
    }
}

/// Replay one connection of a capture against `url`: send its client frames (token substituted),
/// check every server response and the close. On mismatch, `Err` explains expected vs got.
pub async fn replay_connection(url: &str, token: &str, cap: &Capture, conn: Option<u64>) -> Result<Transcript, String> {
    let lines = cap.lines_of(conn);
    let headers = cap.upgrade_headers(conn);
    let label = match conn {
        Some(c) => format!("{} conn {c}", cap.name),
        None => cap.name.clone(),
    };
    let mut log = Transcript::default();

    // HTTP-level rejection at upgrade time.
    if let Some(ev) = lines.iter().find(|l| l.get("proxy_event").is_some()) {
        let want = ev["status"].as_u64().unwrap_or(0) as u16;
        return match raw_connect(url, &headers).await {
            Err(ClientError::Http { status, body }) if status == want => {
                log.received.push(format!("HTTP {status} {body}"));
                Ok(log)
            }
            Err(e) => Err(format!("{label}: expected HTTP {want} at upgrade, got error {e}")),
            Ok(_) => Err(format!("{label}: expected HTTP {want} at upgrade, got 101")),
        };
    }

    let mut sock = raw_connect(url, &headers).await.map_err(|e| format!("{label}: upgrade failed: {e}"))?;
    let fail = |msg: String, log: &Transcript| format!("{label}: {msg}\n  server frames so far: {:#?}", log.received);
    for line in lines {
        let dir = line.get("dir").and_then(Value::as_str);
        if let Some(frame) = line.get("frame") {
            match dir {
                Some("s2c") if frame["type"] == "event" && frame["event"] == "connect.challenge" => {
                    let got = match next_event(&mut sock, &mut log).await {
                        Ok(RawEvent::Text(t)) => {
                            serde_json::from_str::<Value>(&t).map_err(|e| fail(format!("challenge not JSON: {e}"), &log))?
                        }
                        Ok(other) => return Err(fail(format!("expected the challenge, got {other:?}"), &log)),
                        Err(e) => return Err(fail(e, &log)),
                    };
                    compare_challenge(frame, &got).map_err(|e| fail(e, &log))?;
                }
                // Server-pushed events are not part of the comparison.
                Some("s2c") if frame["type"] == "event" => {}
                Some("s2c") => {
                    let got = next_res(&mut sock, &mut log).await.map_err(|e| fail(format!("waiting for {}: {e}", frame["id"]), &log))?;
                    compare_res(frame, &got).map_err(|e| fail(e, &log))?;
                }
                Some("c2s") => {
                    let text = serde_json::to_string(&substitute_token(frame, token)).expect("serialize");
                    sock.send_text(text).await.map_err(|e| fail(format!("send failed: {e}"), &log))?;
                }
                _ => {}
            }
        } else if let Some(raw) = line.get("raw").and_then(Value::as_str) {
            if dir == Some("c2s") {
                sock.send_text(raw.replace(CAPTURE_TOKEN, token)).await.map_err(|e| fail(format!("send failed: {e}"), &log))?;
            }
        } else if let Some(b64) = line.get("binary_b64").and_then(Value::as_str) {
            if dir == Some("c2s") {
                let bytes = base64::engine::general_purpose::STANDARD.decode(b64).expect("capture base64");
                sock.send(Message::binary(bytes)).await.map_err(|e| fail(format!("send failed: {e}"), &log))?;
            }
        } else if let Some(code) = line.get("close").and_then(Value::as_u64) {
            let reason = line["reason"].as_str().unwrap_or("");
            if line["initiator"] == "server" {
                let (gc, gr) = expect_close(&mut sock, &mut log).await.map_err(|e| fail(e, &log))?;
                if (gc, gr.as_str()) != (code as u16, reason) {
                    return Err(fail(format!("close: expected {code} {reason:?}, got {gc} {gr:?}"), &log));
                }
            } else {
                let code = if code == 1005 { None } else { Some(code as u16) };
                sock.close(code, reason).await;
                let _ = sock.next(Duration::from_millis(500)).await;
            }
            return Ok(log);
        }
    }
    Ok(log)
}

/// Replay every connection of a capture, one after another.
pub async fn replay_capture(url: &str, token: &str, cap: &Capture) -> Result<(), String> {
    for conn in cap.connections() {
        replay_connection(url, token, cap, conn).await?;
    }
    Ok(())
}
