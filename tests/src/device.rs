//! Signed connections as the official Control UI makes them (control-ui.md §3.2–3.3): an
//! Ed25519 device key, the v2 signature payload over the challenge, client
//! `openclaw-control-ui`/`webchat`, the six operator scopes. Blocking, on [`RawWs`].

use std::net::SocketAddr;
use std::time::Duration;

use clawgate_conformance::device::{DeviceKey, Signed, b64url, payload};
use clawgate_conformance::model::SigVersion;
use serde_json::{Value, json};

use crate::rawws::{Frame, RawWs};

/// The scopes the official UI asks for.
pub const UI_SCOPES: [&str; 6] =
    ["operator.admin", "operator.read", "operator.write", "operator.approvals", "operator.questions", "operator.pairing"];

/// What the UI authenticates with (control-ui.md §2.2).
#[derive(Debug, Clone)]
pub enum UiAuth {
    /// A typed or `#token=` secret: sent as both `auth.token` and `auth.password`.
    Secret(String),
    /// The stored `hello-ok.auth.deviceToken`, alone.
    DeviceToken(String),
    None,
}

/// The end of a UI handshake.
pub enum UiConnect {
    /// `hello-ok` and the open socket.
    Open { hello: Value, ws: Box<RawWs> },
    /// The `connect` error, then the close code and reason.
    Rejected { error: Value, close: Option<(u16, String)> },
}

impl UiConnect {
    pub fn hello(self) -> (Value, RawWs) {
        match self {
            UiConnect::Open { hello, ws } => (hello, *ws),
            UiConnect::Rejected { error, close } => panic!("connect rejected: {error} (close {close:?})"),
        }
    }
    pub fn rejected(self) -> (Value, Option<(u16, String)>) {
        match self {
            UiConnect::Rejected { error, close } => (error, close),
            UiConnect::Open { hello, .. } => panic!("expected a rejection, got hello-ok {hello}"),
        }
    }
}

/// Next JSON text frame (panics on close or timeout: callers expect one).
pub fn next_json(ws: &mut RawWs, timeout: Duration) -> Value {
    match ws.read_text(timeout) {
        Ok(Frame::Text(t)) => serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}")),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The `connect` request (id `1:connect`) the official UI sends for this challenge: client
/// `openclaw-control-ui`/`webchat`, the six scopes, the device proof signed with the v2 payload
/// (the UI never signs v3), and `auth` as the UI fills it.
pub fn ui_connect_frame(key: &DeviceKey, nonce: &str, ts: u64, auth: &UiAuth) -> Value {
    let signed_token = match auth {
        UiAuth::Secret(s) | UiAuth::DeviceToken(s) => s.as_str(),
        UiAuth::None => "",
    };
    let device_id = key.device_id();
    let signed = Signed {
        device_id: &device_id,
        client_id: "openclaw-control-ui",
        mode: "webchat",
        role: "operator",
        scopes: &UI_SCOPES,
        signed_at: ts,
        token: signed_token,
        nonce,
        platform: Some("Linux x86_64"),
        device_family: None,
    };
    let signature = b64url(&key.sign(&payload(SigVersion::V2, &signed)));
    let mut params = json!({
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "openclaw-control-ui", "version": "2026.9.6", "buildId": "2026.9.6-release-eb377ac59e6c-2026-09-23T16-33-12.144Z",
                   "platform": "Linux x86_64", "mode": "webchat", "instanceId": crate::random_hex(16), "timeZone": "UTC"},
        "role": "operator",
        "scopes": UI_SCOPES,
        "device": {"id": device_id, "publicKey": key.public_key(), "signature": signature, "signedAt": ts, "nonce": nonce},
        "modelCatalog": {"sessionKey": "main"},
        "caps": ["agent-kind", "approvals", "task-suggestions", "tool-events", "ui-commands", "model-catalog-snapshot"],
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156.0.0.0 clawgate-tests",
        "locale": "en-US",
    });
    match auth {
        UiAuth::Secret(s) => params["auth"] = json!({"token": s, "password": s}),
        UiAuth::DeviceToken(t) => params["auth"] = json!({"deviceToken": t}),
        UiAuth::None => {}
    }
    json!({"type": "req", "id": "1:connect", "method": "connect", "params": params})
}

/// Connect like the official UI from `origin` (same-origin by default) with device `key`.
pub fn ui_connect(addr: SocketAddr, path: &str, key: &DeviceKey, auth: &UiAuth, origin: Option<&str>) -> UiConnect {
    let default_origin = format!("http://{addr}");
    let origin = origin.unwrap_or(&default_origin);
    let mut ws = RawWs::connect(addr, path, &[("Origin", origin)]).expect("websocket upgrade");
    let challenge = next_json(&mut ws, Duration::from_secs(5));
    assert_eq!(challenge["event"], "connect.challenge", "first frame: {challenge}");
    let nonce = challenge["payload"]["nonce"].as_str().expect("nonce").to_string();
    let ts = challenge["payload"]["ts"].as_u64().expect("ts");
    let frame = ui_connect_frame(key, &nonce, ts, auth);
    ws.send_text(&frame.to_string()).expect("send connect");
    let res = next_json(&mut ws, Duration::from_secs(10));
    assert_eq!(res["type"], "res", "connect answer: {res}");
    if res["ok"] == json!(true) {
        return UiConnect::Open { hello: res["payload"].clone(), ws: Box::new(ws) };
    }
    let close = match ws.read_text(Duration::from_secs(5)) {
        Ok(Frame::Close { code, reason }) => Some((code, reason)),
        _ => None,
    };
    UiConnect::Rejected { error: res["error"].clone(), close }
}

/// Wait for the socket's close frame (skipping events); `None` on timeout or a bare EOF.
pub fn wait_close(ws: &mut RawWs, timeout: Duration) -> Option<(u16, String)> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        match ws.read_text(left) {
            Ok(Frame::Close { code, reason }) => return Some((code, reason)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
