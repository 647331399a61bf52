//! Bad input against a fresh `clawgate run`: the reference captures' handshake, auth, limit and
//! dispatch error cases, replayed frame by frame. Our answers must have the same error codes,
//! messages, details, close codes and reasons as the reference gateway. During every scenario a
//! second, already-authenticated client keeps calling `health` and must never fail.

use std::io::ErrorKind;
use std::time::Duration;

use clawgate_driver::client::{ClientError, Headers};
use clawgate_tests::rawws::{self, Frame, RawWs};
use clawgate_tests::vectors::{Capture, compare_challenge, compare_error, expect_close, replay_capture, substitute_token};
use clawgate_tests::ws::{IO_TIMEOUT, call_health, connect_cli, next_json, raw_connect, with_bystander};
use clawgate_tests::{Gateway, vectors};
use serde_json::{Value, json};

/// Fresh gateway + bystander + replay of the whole capture.
async fn scenario(name: &str) {
    let gw = Gateway::start();
    let cap = Capture::load(name);
    let (url, token) = (gw.url(), gw.token());
    let result = with_bystander(&url, &token, replay_capture(&url, &token, &cap)).await;
    if let Err(e) = result {
        panic!("{name}: {e}\n--- gateway stderr ---\n{}", gw.stderr());
    }
}

macro_rules! replay_tests {
    ($($fn_name:ident => $capture:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $fn_name() {
                scenario($capture).await;
            }
        )*
    };
}

replay_tests! {
    edge_bad_binary_garbage => "edge-bad-binary-garbage",
    edge_bad_connect_extra_field => "edge-bad-connect-extra-field",
    edge_bad_connect_mode_operator => "edge-bad-connect-mode-operator",
    edge_bad_connect_role => "edge-bad-connect-role",
    edge_bad_first_frame_health => "edge-bad-first-frame-health",
    edge_bad_json_not_request => "edge-bad-json-not-request",
    edge_bad_non_json_text => "edge-bad-non-json-text",
    edge_auth_wrong_token => "edge-auth-wrong-token",
    edge_auth_wrong_password => "edge-auth-wrong-password",
    edge_auth_none => "edge-auth-none",
    edge_auth_none_test_client => "edge-auth-none-test-client",
    edge_node_no_device => "edge-node-no-device",
    edge_protocol_mismatch_high => "edge-protocol-mismatch-high",
    edge_protocol_mismatch_low => "edge-protocol-mismatch-low",
    edge_protocol_probe_v3 => "edge-protocol-probe-v3",
    edge_preauth_oversize => "edge-preauth-oversize",
    edge_scope_denied => "edge-scope-denied",
    edge_unknown_method_admin => "edge-unknown-method-admin",
    edge_scope_cleared_deviceless_test_client => "edge-scope-cleared-deviceless-test-client",
}

/// Proxy headers from a loopback peer that is not a trusted proxy → HTTP 403 at upgrade, with the
/// reference's JSON body (protocol.md §1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_proxy_headers_unattributable() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let cap = Capture::load("edge-proxy-headers-unattributable");
    let headers = cap.upgrade_headers(None);
    assert!(headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for")), "capture sends X-Forwarded-For");
    with_bystander(&url, &token, async {
        replay_capture(&url, &token, &cap).await.unwrap_or_else(|e| panic!("{e}"));
        match raw_connect(&url, &headers).await {
            Err(ClientError::Http { status: 403, body }) => {
                let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("403 body is not JSON ({e}): {body}"));
                assert_eq!(v["error"]["type"], "proxy_attribution_required", "403 body: {body}");
                let msg = v["error"]["message"].as_str().unwrap_or("");
                assert!(msg.starts_with("Proxy client attribution is required."), "403 body: {body}");
            }
            Err(e) => panic!("expected HTTP 403, got {e}"),
            Ok(_) => panic!("expected HTTP 403, got 101"),
        }
    })
    .await;
}

/// The captured 65 537-byte frame really is that size after token substitution (so the replay
/// above tests the limit, not an approximation of it).
#[test]
fn preauth_oversize_frame_keeps_its_size() {
    let cap = Capture::load("edge-preauth-oversize");
    let frame = substitute_token(&cap.first_client_frame(None), "abcdefabcdef");
    let bytes = serde_json::to_string(&frame).unwrap().len();
    let captured = cap.lines.iter().find(|l| l["dir"] == "c2s").and_then(|l| l["bytes"].as_u64()).unwrap();
    assert_eq!(bytes as u64, captured, "re-serialized frame size differs from the capture");
    assert_eq!(bytes, 65_537);
}

/// The pre-auth cap is inclusive: the same connect shrunk to exactly 65 536 bytes is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preauth_exact_64k_connect_accepted() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let cap = Capture::load("edge-preauth-oversize");
    let mut frame = substitute_token(&cap.first_client_frame(None), &token);
    let ua = frame["params"]["userAgent"].as_str().unwrap().to_string();
    frame["params"]["userAgent"] = json!(ua[..ua.len() - 1]);
    let text = serde_json::to_string(&frame).unwrap();
    assert_eq!(text.len(), 65_536);
    with_bystander(&url, &token, async {
        let mut sock = raw_connect(&url, &Headers::new()).await.expect("upgrade");
        let challenge = next_json(&mut sock, IO_TIMEOUT).await.expect("challenge");
        assert_eq!(challenge["event"], "connect.challenge");
        sock.send_text(text).await.expect("send 64 KiB connect");
        loop {
            let v = next_json(&mut sock, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("65 536-byte connect: {e}\n{}", gw.stderr()));
            if v["type"] == "event" {
                continue;
            }
            assert_eq!(v["id"], "f1");
            assert_eq!(v["ok"], true, "65 536-byte connect refused: {v}");
            assert_eq!(v["payload"]["type"], "hello-ok");
            break;
        }
        sock.close(Some(1000), "").await;
    })
    .await;
}

/// Origin-keyed lockout: attempts 0–9 mismatch, 10–12 AUTH_RATE_LIMITED (retryable,
/// retryAfterMs ≈ 300 000), and the correct token is refused too while locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_auth_wrong_token_repeated_origin() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let cap = Capture::load("edge-auth-wrong-token-repeated-origin");
    let conns = cap.connections();
    assert_eq!(conns.len(), 14, "capture has 14 connections");
    // The last connection uses the correct token: make sure the capture says so.
    let last = cap.first_client_frame(*conns.last().unwrap());
    assert_eq!(last["params"]["auth"]["token"], vectors::CAPTURE_TOKEN);
    let result = with_bystander(&url, &token, replay_capture(&url, &token, &cap)).await;
    if let Err(e) = result {
        panic!("{e}\n--- gateway stderr ---\n{}", gw.stderr());
    }
    // The lockout is keyed per origin: a plain loopback connect (no Origin) still gets in.
    let mut c =
        connect_cli(&url, &token, &["operator.read"]).await.unwrap_or_else(|e| panic!("no-Origin connect after the origin lockout: {e}"));
    call_health(&mut c).await.unwrap();
    c.close().await;
}

/// The 33rd concurrent unauthenticated socket from one IP is refused with HTTP 503; the budget
/// frees up again when sockets go away, and authenticated clients are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_preauth_socket_budget() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let cap = Capture::load("edge-preauth-socket-budget");
    assert_eq!(cap.meta["observed_summary"]["opened"], 32);
    let refused = cap.lines.iter().find(|l| l.get("proxy_event").is_some()).expect("capture has the refusal");
    let want_status = refused["status"].as_u64().unwrap() as u16;
    let challenge = cap.lines_of(Some(1))[0]["frame"].clone();
    with_bystander(&url, &token, async {
        let mut open = Vec::new();
        for i in 0..32 {
            let mut s = raw_connect(&url, &Headers::new()).await.unwrap_or_else(|e| panic!("socket {} refused: {e}", i + 1));
            let c = next_json(&mut s, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("socket {}: {e}", i + 1));
            compare_challenge(&challenge, &c).unwrap();
            open.push(s);
        }
        match raw_connect(&url, &Headers::new()).await {
            Err(ClientError::Http { status, body }) => {
                assert_eq!(status, want_status, "33rd socket: expected HTTP {want_status}, got {status} {body}");
                assert_eq!(body, "Too many unauthenticated sockets");
            }
            Err(e) => panic!("33rd socket: expected HTTP {want_status}, got {e}"),
            Ok(_) => panic!("33rd unauthenticated socket was accepted (expected HTTP {want_status})"),
        }
        // Free one slot: a new socket fits again once the server has seen the close.
        let mut first = open.remove(0);
        first.close(Some(1000), "").await;
        let _ = first.next(Duration::from_secs(2)).await;
        drop(first);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match raw_connect(&url, &Headers::new()).await {
                Ok(s) => {
                    open.push(s);
                    break;
                }
                Err(ClientError::Http { status: 503, .. }) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("after closing one socket a new one is still refused: {e}"),
            }
        }
        for mut s in open {
            s.close(Some(1000), "").await;
        }
    })
    .await;
}

/// What the server did with a big post-auth frame.
#[derive(Debug, PartialEq)]
enum BigFrameOutcome {
    /// A response to the big request (id "big"), whatever it said.
    Answered(Value),
    Closed(u16, String),
}

/// Authenticate with `connect`, then stream one `health` request of exactly `frame_bytes` bytes
/// from a writer thread while reading the server's answer (a response or a close).
fn send_big_frame_after_hello(addr: std::net::SocketAddr, connect: Value, frame_bytes: u64) -> Result<BigFrameOutcome, String> {
    let mut ws = RawWs::connect(addr, "/", &[]).map_err(|e| format!("upgrade: {e}"))?;
    match ws.read_text(IO_TIMEOUT).map_err(|e| format!("challenge: {e}"))? {
        Frame::Text(t) if t.contains("connect.challenge") => {}
        other => return Err(format!("expected the challenge, got {other:?}")),
    }
    ws.send_text(&connect.to_string()).map_err(|e| format!("send connect: {e}"))?;
    loop {
        match ws.read_text(IO_TIMEOUT).map_err(|e| format!("hello: {e}"))? {
            Frame::Text(t) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                if v["type"] == "res" {
                    if v["ok"] != true {
                        return Err(format!("connect refused: {t}"));
                    }
                    break;
                }
            }
            other => return Err(format!("expected hello-ok, got {other:?}")),
        }
    }
    // {"type":"req","id":"big","method":"health","params":{"pad":"xxx…"}} of exactly frame_bytes.
    let prefix = br#"{"type":"req","id":"big","method":"health","params":{"pad":""#.to_vec();
    let suffix = br#""}}"#.to_vec();
    let pad = frame_bytes - (prefix.len() + suffix.len()) as u64;
    let mut writer = ws.try_clone_stream().map_err(|e| e.to_string())?;
    let writer_thread = std::thread::spawn(move || -> std::io::Result<()> {
        use std::io::Write;
        writer.write_all(&rawws::frame_header(0x1, frame_bytes))?;
        let mut offset = 0u64;
        let mut chunk = prefix.clone();
        rawws::mask_chunk(&mut chunk, offset);
        writer.write_all(&chunk)?;
        offset += prefix.len() as u64;
        let mut left = pad;
        while left > 0 {
            let n = left.min(1 << 20);
            let mut chunk = vec![b'x'; n as usize];
            rawws::mask_chunk(&mut chunk, offset);
            writer.write_all(&chunk)?;
            offset += n;
            left -= n;
        }
        let mut chunk = suffix.clone();
        rawws::mask_chunk(&mut chunk, offset);
        writer.write_all(&chunk)?;
        writer.flush()
    });
    let result = loop {
        match ws.read_text(Duration::from_secs(30)) {
            Ok(Frame::Close { code, reason }) => break Ok(BigFrameOutcome::Closed(code, reason)),
            Ok(Frame::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["type"] == "res" && v["id"] == "big" {
                    break Ok(BigFrameOutcome::Answered(v));
                }
                if v["type"] == "event" {
                    continue;
                }
                break Err(format!("unexpected frame: {}", &t[..t.len().min(300)]));
            }
            Ok(other) => break Err(format!("unexpected {other:?}")),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err("no answer and no close within 30 s".into());
            }
            Err(e) => break Err(format!("connection ended without a close frame: {e}")),
        }
    };
    let _ = ws.send_close(1000);
    // Unblock the writer (it fails once the connection is gone; that is expected).
    ws.shutdown();
    let _ = writer_thread.join();
    result
}

/// A frame above `policy.maxPayload` (26 214 400) after hello → close 1009 "" (no response).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_postauth_oversize() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let cap = Capture::load("edge-postauth-oversize.truncated");
    let frame_bytes = cap.meta["observed_summary"]["frameBytes"].as_u64().unwrap();
    assert!(frame_bytes > 26_214_400);
    let close_line = cap.lines.iter().find(|l| l.get("close").is_some()).unwrap().clone();
    let want = BigFrameOutcome::Closed(close_line["close"].as_u64().unwrap() as u16, close_line["reason"].as_str().unwrap().to_string());
    let connect = substitute_token(&cap.first_client_frame(None), &token);
    let addr = gw.addr();
    let run = tokio::task::spawn_blocking(move || send_big_frame_after_hello(addr, connect, frame_bytes));
    let got = with_bystander(&url, &token, async { run.await.expect("oversize task") }).await;
    match got {
        Ok(got) => assert_eq!(got, want, "post-auth oversize ({frame_bytes} bytes)"),
        Err(e) => panic!("post-auth oversize: expected {want:?}: {e}\n--- gateway stderr ---\n{}", gw.stderr()),
    }
}

/// An oversize frame must not make the gateway read on: tungstenite still holds the frame's
/// header, and reading again trips its `in_buffer.capacity() > len` debug assertion (a panic in
/// the socket's task; the tests run debug binaries). After close 1009 the gateway only drains:
/// the connection ends on the peer's EOF or after the close grace, and nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frame_stops_reading_without_panic() {
    let gw = Gateway::start();
    let (url, token, addr) = (gw.url(), gw.token(), gw.addr());
    let connect = substitute_token(&Capture::load("edge-postauth-oversize.truncated").first_client_frame(None), &token);
    let run = tokio::task::spawn_blocking(move || -> Result<(), String> {
        // Pre-auth (limit 65 536) with a peer that goes quiet, then one that answers the close and
        // half-closes; then post-auth (limit 26 214 400) with a frame that keeps streaming.
        for answer_close in [false, true] {
            let mut ws = RawWs::connect(addr, "/", &[]).map_err(|e| format!("upgrade: {e}"))?;
            match ws.read_text(IO_TIMEOUT).map_err(|e| format!("challenge: {e}"))? {
                Frame::Text(t) if t.contains("connect.challenge") => {}
                other => return Err(format!("expected the challenge, got {other:?}")),
            }
            // The server may stop taking bytes before the end of the frame: a failed send is fine.
            let _ = ws.send_text(&"x".repeat(200_000));
            match ws.read_frame(IO_TIMEOUT) {
                Ok(Frame::Close { code: 1009, reason }) if reason.is_empty() => {}
                other => return Err(format!("pre-auth oversize: expected close 1009 \"\", got {other:?}")),
            }
            if answer_close {
                let _ = ws.send_close(1009);
                let _ = ws.try_clone_stream().map(|s| s.shutdown(std::net::Shutdown::Write));
            }
            // Then the server ends the TCP connection (EOF or reset), well within the test's patience.
            match ws.read_frame(Duration::from_secs(10)) {
                Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                other => {
                    return Err(format!("after close 1009 (peer answered: {answer_close}): expected the connection to end, got {other:?}"));
                }
            }
        }
        match send_big_frame_after_hello(addr, connect, 26_214_401 + (4 << 20))? {
            BigFrameOutcome::Closed(1009, r) if r.is_empty() => Ok(()),
            other => Err(format!("post-auth oversize: expected close 1009 \"\", got {other:?}")),
        }
    });
    let got = with_bystander(&url, &token, async { run.await.expect("oversize task") }).await;
    if let Err(e) = got {
        panic!("{e}\n--- gateway stderr ---\n{}", gw.stderr());
    }
    // The connections are gone; a panic in their tasks would have been printed by now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stderr = gw.stderr();
    assert!(!stderr.contains("panicked"), "the gateway panicked on an oversize frame:\n{stderr}");
}

/// Positive control for the above: after hello the limit really is 26 214 400 (inclusive), not
/// the 64 KiB pre-auth cap: a frame of exactly that size is read and answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postauth_max_payload_frame_accepted() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let connect = substitute_token(&Capture::load("edge-postauth-oversize.truncated").first_client_frame(None), &token);
    let addr = gw.addr();
    let run = tokio::task::spawn_blocking(move || send_big_frame_after_hello(addr, connect, 26_214_400));
    let got = with_bystander(&url, &token, async { run.await.expect("big frame task") }).await;
    match got {
        Ok(BigFrameOutcome::Answered(_)) => {}
        other => panic!("a 26 214 400-byte post-auth frame must be accepted and answered, got {other:?}\n{}", gw.stderr()),
    }
}

/// 16 frames queued behind a (held) wrong-token connect → close 1008 "too many pending handshake
/// frames", and the held connect failure is never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_overflow_behind_wrong_token_connect() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let connect = Capture::load("edge-auth-wrong-token").first_client_frame(None);
    assert_eq!(connect["params"]["auth"]["token"], "wrong-token");
    with_bystander(&url, &token, async {
        let mut sock = raw_connect(&url, &Headers::new()).await.expect("upgrade");
        next_json(&mut sock, IO_TIMEOUT).await.expect("challenge");
        sock.send_text(connect.to_string()).await.expect("send connect");
        for i in 0..16 {
            let f = json!({"type": "req", "id": format!("p{i}"), "method": "health", "params": {}});
            if sock.send_text(f.to_string()).await.is_err() {
                break;
            }
        }
        let mut log = vectors::Transcript::default();
        let got = expect_close(&mut sock, &mut log).await.unwrap_or_else(|e| panic!("pipelined overflow: {e}\n{:#?}", log.received));
        assert_eq!(got, (1008, "too many pending handshake frames".to_string()), "pipelined overflow close; frames: {:#?}", log.received);
    })
    .await;
}

/// Boundary of the above: 15 queued frames are tolerated; the held auth failure then arrives
/// (same error as `edge-auth-wrong-token`) and nothing queued is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_fifteen_behind_wrong_token_connect() {
    let gw = Gateway::start();
    let (url, token) = (gw.url(), gw.token());
    let cap = Capture::load("edge-auth-wrong-token");
    let connect = cap.first_client_frame(None);
    let expected_res = cap.lines.iter().find(|l| l["dir"] == "s2c" && l["frame"]["type"] == "res").unwrap()["frame"].clone();
    let close_line = cap.lines.iter().find(|l| l.get("close").is_some()).unwrap().clone();
    with_bystander(&url, &token, async {
        let mut sock = raw_connect(&url, &Headers::new()).await.expect("upgrade");
        next_json(&mut sock, IO_TIMEOUT).await.expect("challenge");
        sock.send_text(connect.to_string()).await.expect("send connect");
        for i in 0..15 {
            let f = json!({"type": "req", "id": format!("p{i}"), "method": "health", "params": {}});
            sock.send_text(f.to_string()).await.expect("send queued frame");
        }
        let res = loop {
            let v = next_json(&mut sock, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("15 queued frames: {e}"));
            if v["type"] != "event" {
                break v;
            }
        };
        assert_eq!(res["id"], expected_res["id"], "first response must answer the connect: {res}");
        compare_error(&expected_res["error"], &res["error"]).unwrap_or_else(|e| panic!("15 queued frames: {e}"));
        let mut log = vectors::Transcript::default();
        let got = expect_close(&mut sock, &mut log).await.unwrap_or_else(|e| panic!("15 queued frames: {e}"));
        assert_eq!(got, (close_line["close"].as_u64().unwrap() as u16, close_line["reason"].as_str().unwrap().to_string()));
    })
    .await;
}

/// Sanity: the replayer itself notices a wrong answer (guards against vacuous passes).
#[test]
fn replayer_detects_mismatches() {
    let expected = json!({"code": "INVALID_REQUEST", "message": "invalid role"});
    assert!(compare_error(&expected, &json!({"code": "INVALID_REQUEST", "message": "invalid role"})).is_ok());
    assert!(compare_error(&expected, &json!({"code": "FORBIDDEN", "message": "invalid role"})).is_err());
    assert!(compare_error(&expected, &json!({"code": "INVALID_REQUEST", "message": "invalid role", "retryable": false})).is_err());
    let with_details = json!({"code": "X", "message": "m", "details": {"code": "A", "requestId": "1"}});
    assert!(compare_error(&with_details, &json!({"code": "X", "message": "m", "details": {"code": "A", "requestId": "2"}})).is_ok());
    assert!(compare_error(&with_details, &json!({"code": "X", "message": "m", "details": {"code": "B", "requestId": "1"}})).is_err());
}
