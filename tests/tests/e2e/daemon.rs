//! Process behaviour of `clawgate run`: graceful shutdown, startup failures and their exit codes
//! and messages, the kept token, dual-stack loopback, and flag/env precedence.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawgate_driver::client::{ClientError, Headers, RawEvent};
use clawgate_tests::process::{free_port, ipv6_loopback_available, run_clawgate};
use clawgate_tests::ws::{IO_TIMEOUT, call_health, cli_options, connect_cli, connect_with};
use clawgate_tests::{Gateway, GatewayBuilder, TempDir, clawgate_bin, run_command};
use serde_json::Value;

async fn assert_authenticates(url: &str, token: &str) {
    let mut c = connect_cli(url, token, &["operator.read"]).await.unwrap_or_else(|e| panic!("token {token} refused on {url}: {e}"));
    call_health(&mut c).await.unwrap();
    c.close().await;
}

async fn assert_refused(url: &str, token: &str) {
    match connect_cli(url, token, &["operator.read"]).await {
        Err(ClientError::Rejected(res)) => {
            let e = res.error.expect("error");
            assert_eq!(e.code, "INVALID_REQUEST", "{e:?}");
            assert!(e.message.contains("mismatch"), "{e:?}");
        }
        Err(e) => panic!("expected an auth refusal for {token}, got {e}"),
        Ok(_) => panic!("token {token} must be refused on {url}"),
    }
}

/// (a) SIGTERM with a connected client: `shutdown` event {reason:"gateway stopping"} with a seq,
/// then close 1012 "service restart"; the process exits 0 promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_shutdown_then_1012_and_exits_zero() {
    let mut gw = Gateway::start();
    let mut client = connect_cli(&gw.url(), &gw.token(), &["operator.read"]).await.expect("connect");
    call_health(&mut client).await.unwrap();
    let signalled = Instant::now();
    gw.signal(libc::SIGTERM);
    let mut shutdown: Option<Value> = None;
    let close = loop {
        match client.raw.next_frame(IO_TIMEOUT).await {
            Some(RawEvent::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v["type"] == "event" && v["event"] == "shutdown" {
                    assert!(shutdown.is_none(), "two shutdown events");
                    shutdown = Some(v);
                }
            }
            Some(RawEvent::Close { code, reason }) => break (code, reason),
            other => panic!("expected shutdown event and close 1012, got {other:?}\n{}", gw.stderr()),
        }
    };
    let ev = shutdown.unwrap_or_else(|| panic!("no shutdown event before the close {close:?}"));
    assert_eq!(ev["payload"], serde_json::json!({"reason": "gateway stopping"}), "shutdown payload: {ev}");
    assert!(ev["seq"].as_u64().is_some_and(|s| s >= 1), "shutdown event needs a seq: {ev}");
    assert_eq!(close, (1012, "service restart".to_string()));
    let status = gw.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| panic!("gateway still running 10 s after SIGTERM"));
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}\n{}", gw.stderr());
    assert!(signalled.elapsed() < Duration::from_secs(6), "shutdown took {:?}", signalled.elapsed());
}

/// (b) Port already bound → exit 1 with the reference's message.
#[test]
fn port_in_use_exits_1() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().unwrap().port();
    let home = TempDir::new("port-in-use");
    let out = run_clawgate(home.path(), &["run", "--port", &port.to_string(), "--token", "abcdefabcdef"], &[]);
    assert_eq!(out.code, Some(1), "exit code with the port taken; stderr:\n{}", out.stderr);
    let want = format!("another gateway instance is already listening on ws://127.0.0.1:{port}");
    assert!(out.stderr.contains(&want), "stderr should contain {want:?}:\n{}", out.stderr);
    drop(holder);
}

/// (c) `--bind lan` without any shared secret → exit 78, stderr starts with the refusal.
#[test]
fn bind_lan_without_auth_exits_78() {
    let home = TempDir::new("lan-noauth");
    let port = free_port().to_string();
    let out = run_clawgate(home.path(), &["run", "--port", &port, "--bind", "lan"], &[]);
    assert_eq!(out.code, Some(78), "exit code; stderr:\n{}", out.stderr);
    assert!(
        out.stderr.starts_with("Refusing to bind gateway to lan without auth."),
        "stderr should start with \"Refusing to bind gateway to lan without auth.\", got:\n{:?}",
        out.stderr
    );
    assert!(!home.path().join("state/clawgate/gateway.token").exists(), "no token may be generated for a refused lan bind");
}

/// (d) `--port 99999` → exit 1 with the reference's message.
#[test]
fn invalid_port_exits_1() {
    let home = TempDir::new("bad-port");
    let out = run_clawgate(home.path(), &["run", "--port", "99999"], &[]);
    assert_eq!(out.code, Some(1), "exit code; stderr:\n{}", out.stderr);
    assert!(out.stderr.contains("Invalid --port. Use a port number from 1 to 65535, for example 18789."), "stderr:\n{}", out.stderr);
}

/// (e) Nothing configured: the token is generated once into <state>/clawgate/gateway.token (0600),
/// `clawgate auth-token` prints it, a restart keeps it, and it authenticates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_token_is_kept_and_printed() {
    use std::os::unix::fs::PermissionsExt;
    let home = Arc::new(TempDir::new("kept-token"));
    let token_path = home.path().join("state/clawgate/gateway.token");
    let mut gw = GatewayBuilder::new().no_token().home(home.clone()).log_name("first").start();
    assert!(token_path.is_file(), "token file {} not created\n{}", token_path.display(), gw.stderr());
    let mode = std::fs::metadata(&token_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file mode is {mode:o}");
    let token = std::fs::read_to_string(&token_path).unwrap().trim().to_string();
    assert!(!token.is_empty());

    let printed = run_clawgate(home.path(), &["auth-token"], &[]);
    assert_eq!(printed.code, Some(0), "auth-token failed: {}", printed.stderr);
    assert_eq!(printed.stdout.trim_end_matches('\n'), token, "`clawgate auth-token` must print exactly the kept token");

    assert_authenticates(&gw.url(), &token).await;
    assert_refused(&gw.url(), "definitely-not-it").await;
    let port = gw.port;
    let status = gw.stop();
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    drop(gw);

    let gw2 = GatewayBuilder::new().no_token().home(home.clone()).port(port).log_name("second").start();
    let again = std::fs::read_to_string(&token_path).unwrap().trim().to_string();
    assert_eq!(again, token, "a restart must keep the same token");
    assert_authenticates(&gw2.url(), &token).await;
}

/// (f) Loopback binds both 127.0.0.1 and ::1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_listens_on_ipv4_and_ipv6() {
    let gw = Gateway::start();
    assert_authenticates(&gw.url(), &gw.token()).await;
    if !ipv6_loopback_available() {
        eprintln!("note: [::1] is not bindable on this host; skipping the IPv6 half");
        return;
    }
    let v6: SocketAddr = format!("[::1]:{}", gw.port).parse().unwrap();
    assert!(TcpStream::connect_timeout(&v6, Duration::from_secs(2)).is_ok(), "nothing listens on {v6}\n{}", gw.stderr());
    assert_authenticates(&format!("ws://[::1]:{}", gw.port), &gw.token()).await;
}

/// (g1) `--port` beats OPENCLAW_GATEWAY_PORT.
#[test]
fn port_flag_beats_env() {
    let env_port = free_port();
    let gw = GatewayBuilder::new().env("OPENCLAW_GATEWAY_PORT", env_port.to_string()).start();
    assert_ne!(gw.port, env_port);
    let env_addr = SocketAddr::from(([127, 0, 0, 1], env_port));
    assert!(TcpStream::connect_timeout(&env_addr, Duration::from_millis(500)).is_err(), "the env port {env_port} must not be listened on");
}

/// (g1b) OPENCLAW_GATEWAY_PORT is used when there is no --port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_from_env() {
    let gw = GatewayBuilder::new().port_via_env().start();
    assert_authenticates(&gw.url(), &gw.token()).await;
}

/// (g2) OPENCLAW_GATEWAY_TOKEN is accepted when no --token is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_token_accepted() {
    let env_token = "envtoken-0123456789";
    let gw = GatewayBuilder::new().no_token().env("OPENCLAW_GATEWAY_TOKEN", env_token).start();
    assert_authenticates(&gw.url(), env_token).await;
    assert_refused(&gw.url(), "something-else").await;
}

/// (g3) --token beats OPENCLAW_GATEWAY_TOKEN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_flag_beats_env_token() {
    let gw = GatewayBuilder::new().token("flagtoken-abc").env("OPENCLAW_GATEWAY_TOKEN", "envtoken-xyz").start();
    assert_authenticates(&gw.url(), "flagtoken-abc").await;
    assert_refused(&gw.url(), "envtoken-xyz").await;
}

/// (g4) `--auth password --password-file F`: that password works in auth.password and auth.token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_file_accepted_in_password_and_token_fields() {
    let home = Arc::new(TempDir::new("pwfile"));
    let pw_path = home.path().join("gateway.password");
    let password = "s3cret-from-file";
    std::fs::write(&pw_path, format!("{password}\n")).unwrap();
    let gw = GatewayBuilder::new()
        .no_token()
        .home(home.clone())
        .args(["--auth", "password", "--password-file", pw_path.to_str().unwrap()])
        .start();
    let url = gw.url();

    let mut opts = cli_options(None, &["operator.read"]);
    opts.password = Some(password.to_string());
    let mut c = connect_with(&url, opts, &Headers::new()).await.unwrap_or_else(|e| panic!("password in auth.password refused: {e}"));
    assert_eq!(c.hello["auth"]["method"], "password", "hello-ok.auth.method: {}", c.hello["auth"]);
    call_health(&mut c).await.unwrap();
    c.close().await;

    let mut c = connect_cli(&url, password, &["operator.read"]).await.unwrap_or_else(|e| panic!("password in auth.token refused: {e}"));
    call_health(&mut c).await.unwrap();
    c.close().await;

    let mut opts = cli_options(None, &["operator.read"]);
    opts.password = Some("wrong-password".into());
    match connect_with(&url, opts, &Headers::new()).await {
        Err(ClientError::Rejected(res)) => {
            let e = res.error.expect("error");
            assert_eq!(e.details.as_ref().and_then(|d| d.get("code")).and_then(Value::as_str), Some("AUTH_PASSWORD_MISMATCH"), "{e:?}");
        }
        Err(e) => panic!("wrong password: expected a refusal, got {e}"),
        Ok(_) => panic!("wrong password accepted"),
    }
}

/// The suite runs the binary its test target names (`lite_*` → `clawgate-lite`), and that binary
/// really serves on the runtime it claims (`hello-ok.server.buildId` names it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_the_binary_and_runtime_this_target_names() {
    let (name, _) = clawgate_tests::process::runtime_under_test();
    let out = run_command(Command::new(clawgate_bin()).arg("--version"), Duration::from_secs(30));
    assert!(out.stdout.starts_with(&format!("{name} ")), "{out:?}");
    let gw = Gateway::start();
    let client = connect_cli(&gw.url(), &gw.token(), &["operator.read"]).await.expect("connect");
    let runtime = if name == "clawgate-lite" { "smol" } else { "tokio" };
    let build = client.hello["server"]["buildId"].as_str().unwrap_or_default().to_string();
    assert!(build.ends_with(runtime), "buildId {build:?} should name the {runtime} runtime");
}
