//! Hostile and careless clients (issue 11): memory per open stream stays bounded whatever the
//! client and the upstream do. Real processes, raw sockets, the fake provider on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use clawgate_tests::httpc::request;
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::{Gateway, GatewayBuilder};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn config(up: &FakeUpstream, primary: &str) -> String {
    json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}, "responses": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("k")}},
        "agents": {"defaults": {"model": {"primary": primary}}},
    })
    .to_string()
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Send a streamed request and read only the response head; the socket stays open, unread.
fn open_unread_stream(gw: &Gateway, path: &str, body: &serde_json::Value) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        gw.token(),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200", "the stream starts");
    s
}

/// (1) A client that stops reading a streamed answer while the upstream keeps streaming (a
/// 1 GB answer): the gateway stops reading the upstream (backpressure), stays small, and after
/// the slow-client timeout aborts the run and drops the upstream request. Both endpoints.
#[test]
fn a_client_that_stops_reading_costs_a_bounded_amount_of_memory() {
    let up = FakeUpstream::start();
    let gw = GatewayBuilder::new().config(config(&up, "fake/fake-flood")).env("CLAWGATE_SLOW_CLIENT_TIMEOUT_MS", "3000").start();
    let idle_rss = rss_bytes(gw.pid());
    for (n, (path, body)) in [
        ("/v1/chat/completions", json!({"model": "openclaw", "stream": true, "messages": [{"role": "user", "content": "flood me"}]})),
        ("/v1/responses", json!({"model": "openclaw", "stream": true, "input": "flood me"})),
    ]
    .into_iter()
    .enumerate()
    {
        let client = open_unread_stream(&gw, path, &body);
        std::thread::sleep(Duration::from_millis(1500));
        let taken = up.flood_bytes();
        let rss = rss_bytes(gw.pid());
        // Unbounded, a second and a half of loopback streaming is hundreds of megabytes.
        assert!(taken < 96 << 20, "{path}: the gateway kept reading the upstream: {} MB", taken >> 20);
        assert!(rss < idle_rss + (64 << 20), "{path}: RSS {} MB (idle {} MB)", rss >> 20, idle_rss >> 20);
        // After the slow-client timeout the run is aborted and the upstream request dropped.
        let deadline = Instant::now() + Duration::from_secs(20);
        while up.abandoned() < n as u64 + 1 {
            assert!(Instant::now() < deadline, "{path}: the stalled run was never aborted:\n{}", gw.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        let later = up.flood_bytes();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(up.flood_bytes(), later, "{path}: nothing more is read from the upstream");
        assert!(gw.stderr().contains("streaming client took nothing for 3000 ms"), "{}", gw.stderr());
        drop(client);
    }
    assert!(rss_bytes(gw.pid()) < idle_rss + (64 << 20), "memory is given back");
    // The gateway serves others all along.
    let r = request(gw.addr(), "GET", "/healthz", &[], b"", T).unwrap();
    assert_eq!(r.status, 200);
}

/// (1) A reply past the reply cap ends the turn cleanly: a streaming client sees the error in
/// the stream and the stream ends; a non-streaming client gets a 502 naming the limit; the
/// upstream request is dropped either way.
#[test]
fn a_reply_past_the_cap_ends_with_an_error_the_client_sees() {
    let up = FakeUpstream::start();
    let gw = GatewayBuilder::new().config(config(&up, "fake/fake-flood")).env("CLAWGATE_MAX_REPLY_BYTES", "1000000").start();
    let auth = format!("Bearer {}", gw.token());
    let h = [("Authorization", auth.as_str())];
    let body = json!({"model": "openclaw", "stream": true, "messages": [{"role": "user", "content": "flood me"}]});
    let r = request(gw.addr(), "POST", "/v1/chat/completions", &h, body.to_string().as_bytes(), T).unwrap();
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("exceeded the gateway's limit of 1000000 bytes"),
        "the error is in the stream: …{}",
        &text[text.len().saturating_sub(600)..]
    );
    assert!(text.len() < 2_000_000, "the stream stops at the cap: {} bytes", text.len());
    let body = json!({"model": "openclaw", "messages": [{"role": "user", "content": "flood me"}]});
    let r = request(gw.addr(), "POST", "/v1/chat/completions", &h, body.to_string().as_bytes(), T).unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("CLAWGATE_MAX_REPLY_BYTES"), "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.abandoned() < 2 {
        assert!(Instant::now() < deadline, "the upstream requests were not dropped");
        std::thread::sleep(Duration::from_millis(50));
    }
    // An invalid limit is refused at start, naming the variable.
    let out = clawgate_tests::process::run_clawgate(
        gw.home_path(),
        &["run", "--port", &clawgate_tests::process::free_port().to_string()],
        &[("CLAWGATE_MAX_REPLY_BYTES", "lots")],
    );
    assert_eq!(out.code, Some(78), "{out:?}");
    assert!(out.stderr.contains("Invalid CLAWGATE_MAX_REPLY_BYTES \"lots\""), "{}", out.stderr);
}

/// Connect over WebSocket with this `Origin` and a wrong token; the refusal's error.
fn refused_with_origin(gw: &Gateway, origin: &str) -> serde_json::Value {
    use clawgate_tests::rawws::{Frame, RawWs};
    let mut ws = RawWs::connect(gw.addr(), "/", &[("Origin", origin)]).expect("upgrade");
    let _challenge = ws.read_text(T).expect("challenge");
    let connect = json!({"type": "req", "id": "c1", "method": "connect", "params": {
        "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": ["operator.read"],
        "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"},
        "auth": {"token": "not-the-token"}}});
    ws.send_text(&connect.to_string()).unwrap();
    match ws.read_text(T) {
        Ok(Frame::Text(t)) => serde_json::from_str::<serde_json::Value>(&t).unwrap()["error"].clone(),
        other => panic!("expected the connect answer, got {other:?}"),
    }
}

/// (2) Junk `Origin` values are not origins (a URL parser's rules, the reference's answer), so
/// they never reach the failed-auth limiter: a flood of distinct ones costs nothing; a request
/// head over 16 KiB is answered 431.
#[test]
fn junk_origins_and_huge_heads_cost_nothing() {
    let gw = Gateway::start();
    for junk in ["http://127.0.0.1:43691.evil.example", "http://localhost:99999", "http://localhost:1x"] {
        let e = refused_with_origin(&gw, junk);
        assert_eq!(e["details"]["code"], "CONTROL_UI_ORIGIN_NOT_ALLOWED", "{junk}: {e}");
    }
    // A real loopback origin with a wrong token is an auth failure, as before.
    let e = refused_with_origin(&gw, "http://localhost:5173");
    assert_eq!(e["details"]["code"], "AUTH_TOKEN_MISMATCH", "{e}");

    let before = rss_bytes(gw.pid());
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let addr = gw.addr();
            let token = gw.token();
            std::thread::spawn(move || {
                for i in 0..150 {
                    // 12 KB of digits: distinct, under the head cap, far from a port.
                    let origin = format!("http://localhost:{w}{i:04}{}", "7".repeat(12_000));
                    let mut ws = clawgate_tests::rawws::RawWs::connect(addr, "/", &[("Origin", &origin)]).expect("upgrade");
                    let _ = ws.read_text(T);
                    let connect = json!({"type": "req", "id": "c", "method": "connect", "params": {
                        "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": [],
                        "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"},
                        "auth": {"token": format!("{token}-wrong")}}});
                    let _ = ws.send_text(&connect.to_string());
                    let _ = ws.read_text(T);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let grown = rss_bytes(gw.pid()).saturating_sub(before);
    // Keyed by the whole string, 1 200 such origins held ≥ 14 MB of keys alone.
    assert!(grown < 8 << 20, "RSS grew {} KB during the origin flood", grown >> 10);

    // A head over 16 KiB: 431, on plain HTTP and on the upgrade.
    let big = "a".repeat(20_000);
    let r = request(gw.addr(), "GET", "/healthz", &[("X-Big", big.as_str())], b"", T).unwrap();
    assert_eq!(r.status, 431, "{}", r.text());
    let huge_origin = format!("http://localhost:{}", "9".repeat(300_000));
    match clawgate_tests::rawws::RawWs::connect(gw.addr(), "/", &[("Origin", &huge_origin)]) {
        Err(e) => assert!(e.to_string().contains("431") || e.kind() != std::io::ErrorKind::Other, "{e}"),
        Ok(_) => panic!("a 300 KB Origin was accepted"),
    }
    let r = request(gw.addr(), "GET", "/healthz", &[], b"", T).unwrap();
    assert_eq!(r.status, 200, "the gateway serves on");
}

/// An authenticated raw WebSocket (the gateway's token, `operator.read`).
fn raw_session(gw: &Gateway) -> clawgate_tests::rawws::RawWs {
    let mut ws = clawgate_tests::rawws::RawWs::connect(gw.addr(), "/", &[]).expect("upgrade");
    let _ = ws.read_text(T).expect("challenge");
    let connect = json!({"type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": ["operator.read"],
        "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"}, "auth": {"token": gw.token()}}});
    ws.send_text(&connect.to_string()).unwrap();
    match ws.read_text(T) {
        Ok(clawgate_tests::rawws::Frame::Text(t)) => assert!(t.contains("hello-ok"), "{t}"),
        other => panic!("{other:?}"),
    }
    ws
}

/// (8) At any log level, no secret reaches the log: tokens, wrong guesses, passwords, Bearer
/// headers (the WebSocket and HTTP libraries' own trace output is held at info).
#[test]
fn trace_logging_never_shows_a_secret() {
    for filter in ["trace", "tungstenite=trace,hyper=trace,clawgate=trace"] {
        let gw = GatewayBuilder::new().env("RUST_LOG", filter).start();
        let _ok = raw_session(&gw);
        let guess = format!("guess-{}", clawgate_tests::random_hex(16));
        let mut ws = clawgate_tests::rawws::RawWs::connect(gw.addr(), "/", &[]).unwrap();
        let _ = ws.read_text(T);
        let bad = json!({"type": "req", "id": "c", "method": "connect", "params": {
            "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": [],
            "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"}, "auth": {"password": guess}}});
        ws.send_text(&bad.to_string()).unwrap();
        let _ = ws.read_text(T);
        let bearer = format!("Bearer {}", gw.token());
        let _ = request(gw.addr(), "GET", "/v1/models", &[("Authorization", bearer.as_str())], b"", T);
        std::thread::sleep(Duration::from_millis(300));
        let log = gw.stderr();
        assert!(log.len() > 200, "{filter}: the gateway logged at that level:\n{log}");
        assert!(!log.contains(&gw.token()), "{filter}: the token is in the log");
        assert!(!log.contains(&guess), "{filter}: a guessed password is in the log");
    }
}

/// (8) A request nested deeper than the parser goes is answered `INVALID_REQUEST` with its id,
/// not left without an answer; the socket stays usable.
#[test]
fn a_request_nested_too_deep_gets_an_answer() {
    let gw = Gateway::start();
    let mut ws = raw_session(&gw);
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    ws.send_text(&format!(r#"{{"type":"req","id":"deep-1","method":"health","params":{{"x":{deep}}}}}"#)).unwrap();
    let answer = response(&mut ws);
    assert_eq!((answer["id"].as_str(), answer["ok"].as_bool()), (Some("deep-1"), Some(false)), "{answer}");
    assert_eq!(answer["error"]["code"], "INVALID_REQUEST");
    ws.send_text(r#"{"type":"req","id":"h","method":"health","params":{}}"#).unwrap();
    let h = response(&mut ws);
    assert_eq!((h["id"].as_str(), h["ok"].as_bool()), (Some("h"), Some(true)), "{h}");
}

/// The next response frame (events skipped).
fn response(ws: &mut clawgate_tests::rawws::RawWs) -> serde_json::Value {
    loop {
        match ws.read_text(T) {
            Ok(clawgate_tests::rawws::Frame::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "res" {
                    return v;
                }
            }
            other => panic!("no response: {other:?}"),
        }
    }
}

/// (8) WebSocket protocol violations are closed with a close frame (RFC 6455 §7.4.1): 1002 for
/// an unmasked client frame, a reserved opcode, reserved bits or an oversized control frame;
/// 1007 for invalid UTF-8 in a text message.
#[test]
fn protocol_violations_are_closed_with_the_rfc_codes() {
    use clawgate_tests::rawws::{Frame, frame_header, mask_chunk};
    let gw = Gateway::start();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked text frame", vec![0x81, 2, b'h', b'i'], 1002),
        (
            "reserved opcode",
            {
                let mut f = frame_header(0x3, 0);
                f[0] = 0x83;
                f
            },
            1002,
        ),
        (
            "reserved bit",
            {
                let mut f = frame_header(0x1, 0);
                f[0] |= 0x40;
                f
            },
            1002,
        ),
        (
            "ping with 126 bytes",
            {
                let mut f = frame_header(0x9, 126);
                let mut p = vec![0u8; 126];
                mask_chunk(&mut p, 0);
                f.extend(p);
                f
            },
            1002,
        ),
        (
            "invalid UTF-8",
            {
                let mut f = frame_header(0x1, 2);
                let mut p = vec![0xc3, 0x28];
                mask_chunk(&mut p, 0);
                f.extend(p);
                f
            },
            1007,
        ),
    ];
    for (what, bytes, code) in cases {
        for authenticated in [false, true] {
            let mut ws = if authenticated {
                raw_session(&gw)
            } else {
                let mut ws = clawgate_tests::rawws::RawWs::connect(gw.addr(), "/", &[]).unwrap();
                let _ = ws.read_text(T);
                ws
            };
            let mut s = ws.try_clone_stream().unwrap();
            s.write_all(&bytes).unwrap();
            let got = loop {
                match ws.read_frame(T) {
                    Ok(Frame::Close { code, .. }) => break Some(code),
                    Ok(Frame::Ping(_) | Frame::Pong(_) | Frame::Text(_)) => continue,
                    other => break other.ok().map(|_| 0),
                }
            };
            assert_eq!(got, Some(code), "{what} (authenticated {authenticated})");
        }
    }
    let r = request(gw.addr(), "GET", "/healthz", &[], b"", T).unwrap();
    assert_eq!(r.status, 200);
}

/// (4) Config files that are not regular files never wedge the gateway: a symlink to
/// `/dev/zero` or a FIFO is refused at start (exit 78) and skipped on reload (the running config
/// stays, memory stays small, a later valid edit still applies); an `$include` fan-out is
/// bounded; SIGTERM ends the process even while a reload is stuck in a slow secret command.
#[test]
fn odd_config_files_never_wedge_the_gateway() {
    use clawgate_tests::cfgfile::{log_mark, wait_log_since, write_config};
    use clawgate_tests::process::{free_port, run_clawgate};
    // At start.
    let home = clawgate_tests::TempDir::new("odd-config");
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::symlink("/dev/zero", state.join("openclaw.json")).unwrap();
    let out = run_clawgate(home.path(), &["run", "--port", &free_port().to_string()], &[]);
    assert_eq!(out.code, Some(78), "{out:?}");
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    std::fs::remove_file(state.join("openclaw.json")).unwrap();
    // An include graph that fans out (8 siblings, 8 levels: 16 million loads unbounded).
    for level in 0..8 {
        let next: Vec<String> = (0..8).map(|_| format!("\"./l{}.json5\"", level + 1)).collect();
        std::fs::write(state.join(format!("l{level}.json5")), format!("{{\"$include\": [{}]}}", next.join(", "))).unwrap();
    }
    std::fs::write(state.join("l8.json5"), "{gateway: {port: 1}}").unwrap();
    std::fs::write(state.join("openclaw.json"), r#"{"$include": "./l0.json5", gateway: {mode: "local"}}"#).unwrap();
    let out = run_clawgate(home.path(), &["config", "validate"], &[]);
    assert_eq!(out.code, Some(78), "{out:?}");
    assert!(out.stderr.contains("Too many $include loads"), "{}", out.stderr);

    // While running: /dev/zero, then a FIFO, then a valid edit that must still apply.
    let token = "odd-config-token-123";
    let cfg = |origins: &str| {
        format!(
            r#"{{gateway: {{mode: "local", port: {{{{PORT}}}}, auth: {{token: "{token}"}}, controlUi: {{allowedOrigins: [{origins}]}}}}}}"#
        )
    };
    let mut gw = GatewayBuilder::new().no_token().port_from_config().config(cfg("")).start();
    let path = gw.config_path();
    let port = gw.port.to_string();
    let idle = rss_bytes(gw.pid());
    let mark = log_mark(&gw);
    let tmp = path.with_extension("tmp");
    std::os::unix::fs::symlink("/dev/zero", &tmp).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let line = wait_log_since(&gw, mark, "config reload skipped");
    assert!(line.contains("not a regular file"), "{line}");
    assert!(rss_bytes(gw.pid()) < idle + (32 << 20), "reading /dev/zero grew the gateway");
    let mark = log_mark(&gw);
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    let line = wait_log_since(&gw, mark, "config reload skipped");
    assert!(line.contains("not a regular file"), "{line}");
    let mark = log_mark(&gw);
    std::fs::remove_file(&path).unwrap();
    write_config(&path, &cfg("\"https://ops.example\"").replace("{{PORT}}", &port));
    wait_log_since(&gw, mark, "config hot reload applied");

    // A reload stuck in a slow secret command (2 minutes), then SIGTERM: the process ends.
    let slow = home.path().join("slow-secret.sh");
    std::fs::write(&slow, "#!/bin/sh\nsleep 120\n").unwrap();
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mark = log_mark(&gw);
    write_config(
        &path,
        &format!(
            r#"{{gateway: {{mode: "local", port: {port}, auth: {{token: "{token}"}}}},
               secrets: {{providers: {{slow: {{source: "exec", command: "{}", timeoutMs: 120000}}}}}},
               models: {{providers: {{p: {{baseUrl: "http://127.0.0.1:9/v1", apiKey: {{source: "exec", provider: "slow", id: "k"}}}}}}}}}}"#,
            slow.display()
        ),
    );
    wait_log_since(&gw, mark, "config change detected");
    std::thread::sleep(Duration::from_millis(500));
    gw.signal(libc::SIGTERM);
    let status = gw.wait_exit(Duration::from_secs(30));
    assert!(status.is_some(), "still running 30 s after SIGTERM while a reload waits for a secret command:\n{}", gw.stderr());
}

/// (6) Idle sockets cannot lock operators out: started with a soft limit of 1 024 open files
/// (hard limit higher), the gateway raises it, and 1 500 connections that never send a byte
/// neither exhaust it nor keep a real client from `/healthz` and a WebSocket login; the idle
/// ones beyond the per-source cap are closed, oldest first.
#[test]
fn idle_sockets_cannot_lock_operators_out() {
    let gw = GatewayBuilder::new().wrapper(["prlimit", "--nofile=1024:"]).start();
    let mut idle = Vec::new();
    for _ in 0..1500 {
        match TcpStream::connect(gw.addr()) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect {}: {e}", idle.len()),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let r = request(gw.addr(), "GET", "/healthz", &[], b"", Duration::from_secs(10)).expect("an operator's /healthz");
    assert_eq!(r.status, 200);
    let _ws = raw_session(&gw);
    eprintln!("healthz + login with 1500 idle sockets open: {:?}", t.elapsed());
    // The idle sockets beyond the per-source cap were closed by the gateway (EOF to them).
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let mut b = [0u8; 1];
        if matches!(s.read(&mut b), Ok(0)) {
            closed += 1;
        }
    }
    assert!(closed >= 1500 - 400, "only {closed} of 1500 idle sockets were closed");
}

/// (7) A full disk is never acknowledged as success: on a 192 KiB tmpfs (a private mount
/// namespace), a turn too big to store gets its answer with a `Warning` header (HTTP), a
/// warning comment before the end of a stream (SSE), or an error as the final answer
/// (WebSocket run); `health` shows the session store degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_cannot_be_saved_is_not_acknowledged_as_saved() {
    let up = FakeUpstream::start();
    let home = std::sync::Arc::new(clawgate_tests::TempDir::new("disk-full"));
    let store_dir = home.path().join("state/clawgate");
    std::fs::create_dir_all(&store_dir).unwrap();
    let mount = "mount -t tmpfs -o size=192k none \"$0\" && exec \"$@\"";
    let gw = GatewayBuilder::new()
        .home(home.clone())
        .config(config(&up, "fake/fake-echo"))
        .wrapper(["unshare", "-rm", "sh", "-c", mount, store_dir.to_str().unwrap()])
        .start();
    let big = "z".repeat(300_000);
    let auth = format!("Bearer {}", gw.token());
    let h = [("Authorization", auth.as_str())];
    // A small turn is saved: no warning.
    let body = json!({"model": "openclaw", "user": "u1", "messages": [{"role": "user", "content": "small"}]});
    let r = request(gw.addr(), "POST", "/v1/chat/completions", &h, body.to_string().as_bytes(), T).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("warning").is_none(), "a saved turn has no warning");
    // A turn too big for the disk: the answer, and the warning.
    let body = json!({"model": "openclaw", "user": "u1", "messages": [{"role": "user", "content": big}]});
    let r = request(gw.addr(), "POST", "/v1/chat/completions", &h, body.to_string().as_bytes(), T).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let warning = r.header("warning").unwrap_or_else(|| panic!("no Warning header: {:?}", r.headers));
    assert!(warning.starts_with("199 clawgate \"the exchange was not saved:"), "{warning}");
    // Streamed: the warning comes as an SSE comment before the end.
    let body = json!({"model": "openclaw", "user": "u1", "stream": true, "messages": [{"role": "user", "content": big}]});
    let r = request(gw.addr(), "POST", "/v1/chat/completions", &h, body.to_string().as_bytes(), T).unwrap();
    let text = r.text();
    let at = text.find(": clawgate-warning: 199 clawgate \"the exchange was not saved").expect("a warning comment in the stream");
    assert!(text[at..].contains("[DONE]"), "the warning comes before the end of the stream");
    // A WebSocket run: the final answer is an error naming the cause.
    let mut c = clawgate_tests::ws::connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write"]).await.expect("connect");
    let res = c.request("agent", Some(json!({"message": big, "idempotencyKey": "disk-full-1"})), true, T).await.expect("final");
    assert!(!res.ok, "{:?}", res.payload);
    let e = res.error.expect("an error");
    assert!(e.message.contains("not saved"), "{}", e.message);
    // health shows the store degraded.
    let health = c.request("health", None, false, T).await.expect("health").payload.unwrap();
    let w = &health["storeWarnings"][0];
    assert_eq!((w["store"].as_str(), w["state"].as_str()), (Some("sessions"), Some("degraded")), "{health}");
    assert!(w["error"].as_str().unwrap_or_default().contains("full"), "{w}");
}

/// (9) A run that ends within a millisecond (the fake upstream answers at once) never reaches
/// the client before the client has read the `chat.send` answer: right behind the answer comes a
/// ping, and the run's frames wait for its pong (the openclaw TUI, on Node `ws`, handles all the
/// messages of one socket read before the answer's continuation, and stayed "busy" for good when
/// they shared one). A client that never answers gets them after the barrier timeout (1 s).
#[test]
fn a_fast_run_waits_until_the_client_read_the_chat_send_answer() {
    use clawgate_tests::rawws::Frame;
    let up = FakeUpstream::start();
    let gw = GatewayBuilder::new().config(config(&up, "fake/fake-model")).start();
    let mut ws = clawgate_tests::rawws::RawWs::connect(gw.addr(), "/", &[]).expect("upgrade");
    let _ = ws.read_text(T).expect("challenge");
    let connect = json!({"type": "req", "id": "c", "method": "connect", "params": {
        "minProtocol": 4, "maxProtocol": 4, "role": "operator", "scopes": ["operator.read", "operator.write"],
        "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"}, "auth": {"token": gw.token()}}});
    ws.send_text(&connect.to_string()).unwrap();
    assert!(matches!(ws.read_text(T), Ok(Frame::Text(t)) if t.contains("hello-ok")));
    let parse = |f: Frame| -> serde_json::Value {
        match f {
            Frame::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    };
    // Text frames up to (and including) the answer to `id`; pings are not answered here.
    let until_answer = |ws: &mut clawgate_tests::rawws::RawWs, id: &str| loop {
        let v = parse(ws.read_frame(T).expect("a frame"));
        if v["type"] == "res" && v["id"] == id {
            return v;
        }
    };
    let chat_send = |key: &str| {
        json!({"type": "req", "id": key, "method": "chat.send", "params": {"sessionKey": "main", "message": "hi", "idempotencyKey": key}})
            .to_string()
    };

    // 1. The client answers the ping: the run's events follow, in order, ending with the final.
    ws.send_text(&chat_send("fast-1")).unwrap();
    let ack = until_answer(&mut ws, "fast-1");
    assert_eq!(ack["payload"]["status"], "started", "{ack}");
    let token = match ws.read_frame(T).expect("the frame after the answer") {
        Frame::Ping(p) if !p.is_empty() => p,
        other => panic!("the chat.send answer must be followed by the barrier ping, got {other:?}"),
    };
    ws.send_pong(&token).unwrap();
    let mut text = String::new();
    loop {
        let v = parse(ws.read_text(T).expect("run events"));
        if v["event"] == "chat" && v["payload"]["runId"] == "fast-1" {
            if let Some(d) = v["payload"]["deltaText"].as_str().or(v["payload"]["delta"].as_str()) {
                text.push_str(d);
            }
            if v["payload"]["state"] == "final" {
                let m = v["payload"]["message"].to_string();
                assert!(m.contains("Hello from fake upstream"), "{v}");
                break;
            }
        }
    }

    // 2. A client that never answers pings gets the run's frames, but not before the barrier's
    //    timeout (measured from the request: the answer cannot have left before it arrived).
    let sent = Instant::now();
    ws.send_text(&chat_send("fast-2")).unwrap();
    let mut after_answer = Vec::new();
    let mut answered = false;
    loop {
        match ws.read_frame(T).expect("a frame") {
            Frame::Ping(_) => {}
            f => {
                let v = parse(f);
                if v["type"] == "res" && v["id"] == "fast-2" {
                    answered = true;
                } else if answered {
                    after_answer.push((sent.elapsed(), v.clone()));
                    if v["event"] == "chat" && v["payload"]["state"] == "final" {
                        break;
                    }
                }
            }
        }
    }
    let (first_at, first) = &after_answer[0];
    assert!(*first_at >= Duration::from_millis(1000), "the run's first frame came {first_at:?} after the request: {first}");
    assert_eq!(up.chat_requests().len(), 2, "both runs reached the upstream");
}
