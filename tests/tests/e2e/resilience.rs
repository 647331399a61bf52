//! Agent runs under stress (issue 5, "done means"): `kill -9` mid-run loses no committed session
//! history; slow upstream runs never hold up the control plane. Real processes, the fake
//! provider on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clawgate_driver::store::{Store, sessions_db_path};
use clawgate_tests::httpc::request;
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{call_health, connect_cli};
use clawgate_tests::{Gateway, GatewayBuilder, TempDir};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

fn config(up: &FakeUpstream, primary: &str) -> String {
    json!({
        "gateway": {"mode": "local", "http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
        "models": {"providers": {"fake": up.provider_config("k")}},
        "agents": {"defaults": {"model": {"primary": primary}}},
    })
    .to_string()
}

fn chat(gw: &Gateway, model_override: Option<&str>, text: &str) -> clawgate_tests::httpc::Resp {
    let auth = format!("Bearer {}", gw.token.clone().unwrap());
    let mut h = vec![("Authorization", auth.as_str())];
    if let Some(m) = model_override {
        h.push(("x-openclaw-model", m));
    }
    let body = json!({"model": "openclaw", "user": "kill-test", "messages": [{"role": "user", "content": text}]});
    request(gw.addr(), "POST", "/v1/chat/completions", &h, body.to_string().as_bytes(), T).expect("chat request")
}

/// Three committed exchanges, then `kill -9` while a fourth is in flight: after a restart on the
/// same state dir the three are intact (six messages, in order) and the database opens clean.
#[test]
fn kill_9_mid_run_keeps_every_committed_exchange() {
    let up = FakeUpstream::start();
    up.set_slow_ms(30_000);
    let home = Arc::new(TempDir::new("kill9-sessions"));
    let mut gw = GatewayBuilder::new().home(home.clone()).config(config(&up, "fake/fake-echo")).start();
    for i in 0..3 {
        let r = chat(&gw, None, &format!("message {i}"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A fourth run, stuck upstream, then the process dies.
    let addr = gw.addr();
    let auth = format!("Bearer {}", gw.token.clone().unwrap());
    let pending = std::thread::spawn(move || {
        let body = json!({"model": "openclaw", "user": "kill-test", "messages": [{"role": "user", "content": "never answered"}]});
        request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[("Authorization", &auth), ("x-openclaw-model", "fake/fake-slow")],
            body.to_string().as_bytes(),
            T,
        )
    });
    let deadline = std::time::Instant::now() + T;
    while up.chat_requests().len() < 4 {
        assert!(std::time::Instant::now() < deadline, "the fourth run never reached the provider");
        std::thread::sleep(Duration::from_millis(20));
    }
    gw.signal(libc::SIGKILL);
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some(), "the gateway did not die");
    assert!(pending.join().unwrap().is_err(), "the in-flight request ends with the process");

    let state = gw.state_dir.to_string_lossy().into_owned();
    let store = Store::open(sessions_db_path(&state)).expect("the store opens after kill -9");
    let history = store.history("agent:main:openai-user:kill-test", 100).expect("history");
    let texts: Vec<String> = history.iter().map(|e| e.text()).collect();
    assert_eq!(
        texts,
        [
            "message 0",
            "echo: message 0 (messages: 1)",
            "message 1",
            "echo: message 1 (messages: 3)",
            "message 2",
            "echo: message 2 (messages: 5)"
        ],
        "committed exchanges survive; the unfinished one left nothing half-written"
    );
    drop(store);
    // And the restarted gateway continues the same conversation.
    let gw2 = GatewayBuilder::new().home(home).config(config(&up, "fake/fake-echo")).start();
    let r = chat(&gw2, None, "after restart");
    assert_eq!(r.json()["choices"][0]["message"]["content"], "echo: after restart (messages: 7)");
}

/// A burst of concurrent turns (16 clients, each its own session, one turn after another),
/// then `kill -9` in the middle of it: after the restart every turn a client saw answered is
/// stored, whole — concurrent turns are committed together (group commit), and none is
/// acknowledged before its batch is durable.
#[test]
fn kill_9_during_a_burst_keeps_every_acknowledged_turn() {
    let up = FakeUpstream::start();
    let home = Arc::new(TempDir::new("kill9-burst"));
    let mut gw = GatewayBuilder::new().home(home.clone()).config(config(&up, "fake/fake-echo")).start();
    let (addr, auth) = (gw.addr(), format!("Bearer {}", gw.token.clone().unwrap()));
    let acked = Arc::new(std::sync::Mutex::new(vec![0usize; 16]));
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (auth, acked) = (auth.clone(), acked.clone());
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    let body = json!({"model": "openclaw", "user": format!("burst-{c}"), "messages": [{"role": "user", "content": format!("turn {i}")}]});
                    match request(addr, "POST", "/v1/chat/completions", &[("Authorization", &auth)], body.to_string().as_bytes(), T) {
                        Ok(r) if r.status == 200 => acked.lock().unwrap()[c] = i + 1,
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + T;
    while acked.lock().unwrap().iter().sum::<usize>() < 200 {
        assert!(std::time::Instant::now() < deadline, "the burst did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    gw.signal(libc::SIGKILL);
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some(), "the gateway did not die");
    for c in clients {
        let _ = c.join();
    }
    let acked = acked.lock().unwrap().clone();
    let state = gw.state_dir.to_string_lossy().into_owned();
    let store = Store::open(sessions_db_path(&state)).expect("the store opens after kill -9");
    for (c, &n) in acked.iter().enumerate() {
        let history = store.history(&format!("agent:main:openai-user:burst-{c}"), 100_000).expect("history");
        let texts: Vec<String> = history.iter().map(|e| e.text()).collect();
        assert!(texts.len() >= 2 * n, "client {c}: {n} turns answered, {} messages stored", texts.len());
        assert_eq!(texts.len() % 2, 0, "client {c}: no half turn");
        for i in 0..n {
            assert_eq!(texts[2 * i], format!("turn {i}"), "client {c}");
            assert!(texts[2 * i + 1].starts_with(&format!("echo: turn {i} ")), "client {c}: {}", texts[2 * i + 1]);
        }
    }
    eprintln!("acknowledged turns per client before kill -9: {acked:?}");
}

/// Upstream connections are kept alive and reused: ten turns one after another use one
/// connection; a client that hangs up mid-answer still drops its upstream connection (the next
/// turn opens a new one).
#[test]
fn upstream_connections_are_reused_but_an_abandoned_answer_closes_its_own() {
    let up = FakeUpstream::start();
    let gw = GatewayBuilder::new().config(config(&up, "fake/fake-echo")).start();
    for i in 0..10 {
        assert_eq!(chat(&gw, None, &format!("turn {i}")).status, 200);
    }
    assert_eq!(up.connections(), 1, "ten sequential turns over one kept-alive connection");
    up.set_slow_ms(30_000);
    let (addr, auth) = (gw.addr(), format!("Bearer {}", gw.token.clone().unwrap()));
    let hung_up = std::thread::spawn(move || {
        let body = json!({"model": "openclaw", "messages": [{"role": "user", "content": "slow"}]});
        let h = [("Authorization", auth.as_str()), ("x-openclaw-model", "fake/fake-slow")];
        request(addr, "POST", "/v1/chat/completions", &h, body.to_string().as_bytes(), Duration::from_millis(800))
    });
    assert!(hung_up.join().unwrap().is_err(), "the client gave up");
    let deadline = std::time::Instant::now() + T;
    while up.abandoned() == 0 {
        assert!(std::time::Instant::now() < deadline, "the upstream answer was never abandoned");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(chat(&gw, None, "after").status, 200);
    assert_eq!(up.connections(), 2, "the abandoned connection was not reused; the idle one was");
}

/// Eight runs held open by a slow provider; meanwhile `/healthz`, `/readyz`, WS `health` and a
/// fast chat run answer — before any of the slow runs has finished (the slow ones are still
/// open when each check returns: no timing threshold, an ordering).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_runs_never_block_the_control_plane() {
    let up = FakeUpstream::start();
    up.set_slow_ms(8_000);
    let gw = GatewayBuilder::new().config(config(&up, "fake/fake-model")).start();
    let done = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    for i in 0..8 {
        let (addr, auth, done) = (gw.addr(), format!("Bearer {}", gw.token.clone().unwrap()), done.clone());
        slow.push(std::thread::spawn(move || {
            let body = json!({"model": "openclaw", "messages": [{"role": "user", "content": format!("slow {i}")}]});
            let r = request(
                addr,
                "POST",
                "/v1/chat/completions",
                &[("Authorization", &auth), ("x-openclaw-model", "fake/fake-slow")],
                body.to_string().as_bytes(),
                T,
            );
            done.fetch_add(1, Ordering::SeqCst);
            r
        }));
    }
    let deadline = std::time::Instant::now() + T;
    while up.chat_requests().len() < 8 {
        assert!(std::time::Instant::now() < deadline, "the slow runs never all reached the provider");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for path in ["/healthz", "/readyz"] {
        let r = tokio::task::block_in_place(|| request(gw.addr(), "GET", path, &[], b"", T)).unwrap();
        assert_eq!(r.status, 200, "{path}");
    }
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read"]).await.expect("connect while runs are open");
    call_health(&mut c).await.expect("WS health while runs are open");
    let fast = tokio::task::block_in_place(|| chat(&gw, None, "fast one"));
    assert_eq!(fast.json()["choices"][0]["message"]["content"], "Hello from fake upstream");
    assert_eq!(done.load(Ordering::SeqCst), 0, "every check above answered while all 8 slow runs were still open");
    for t in slow {
        let r = t.join().unwrap().expect("slow run answered");
        assert_eq!(r.status, 200);
        let v: Value = r.json();
        assert_eq!(v["choices"][0]["message"]["content"], "Slow hello");
    }
    c.close().await;
}

/// A client that hangs up aborts its run and the upstream request, streamed or not — even
/// while the provider has not answered yet (the fake "thinks" for 4 s first, then would answer;
/// it counts answers it had to give up and answers it completed).
#[test]
fn a_client_hanging_up_aborts_the_upstream_request() {
    use std::io::{Read, Write};
    let up = FakeUpstream::start();
    up.set_slow_ms(4_000);
    let gw = GatewayBuilder::new().config(config(&up, "fake/fake-model")).start();
    let auth = format!("Bearer {}", gw.token.clone().unwrap());
    for stream in [true, false] {
        let before = up.chat_requests().len();
        let body = json!({"model": "openclaw", "stream": stream, "messages": [{"role": "user", "content": "hang up on me"}]}).to_string();
        let mut s = std::net::TcpStream::connect(gw.addr()).unwrap();
        write!(
            s,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nx-openclaw-model: fake/fake-slow\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        if stream {
            // Read the head and the role chunk, then go.
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "stream started");
        }
        let deadline = std::time::Instant::now() + T;
        while up.chat_requests().len() == before {
            assert!(std::time::Instant::now() < deadline, "the request never reached the provider");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Counted before the hang-up: the gateway may drop the upstream request within
        // microseconds of it.
        let abandoned_before = up.abandoned();
        drop(s);
        let deadline = std::time::Instant::now() + T;
        while up.abandoned() == abandoned_before {
            assert!(std::time::Instant::now() < deadline, "stream={stream}: the upstream request was not dropped");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(up.completed(), 0, "no answer was produced for a client that had gone");
}
