//! Protocol clients (tokio + `clawgate-driver`) and the bystander health loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clawgate_core::connection::client::ClientOptions;
use clawgate_driver::client::{Client, ClientError, Headers, RawEvent, RawSocket};
use clawgate_tokio::Tokio;
use serde_json::Value;

/// Generous guard for a single protocol round trip.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// The runtime handle the driver needs (call inside a tokio runtime).
pub fn rt() -> Tokio {
    Tokio::current(2)
}

/// `cli`/`cli` operator options with a token.
pub fn cli_options(token: Option<&str>, scopes: &[&str]) -> ClientOptions {
    let mut o = ClientOptions::cli(scopes);
    o.token = token.map(str::to_string);
    o.connect_timeout = IO_TIMEOUT;
    o
}

/// Connect with the CLI identity and a token.
pub async fn connect_cli(url: &str, token: &str, scopes: &[&str]) -> Result<Client<Tokio>, ClientError> {
    Client::connect(&rt(), url, cli_options(Some(token), scopes), &Headers::new()).await
}

/// Connect with arbitrary options.
pub async fn connect_with(url: &str, opts: ClientOptions, headers: &Headers) -> Result<Client<Tokio>, ClientError> {
    Client::connect(&rt(), url, opts, headers).await
}

/// Open a raw socket (upgrade only).
pub async fn raw_connect(url: &str, headers: &Headers) -> Result<RawSocket<Tokio>, ClientError> {
    RawSocket::connect(&rt(), url, headers).await
}

/// Call `health` and require `ok:true` with a payload whose `ok` is true.
pub async fn call_health(client: &mut Client<Tokio>) -> Result<(), String> {
    let res = client.request("health", None, false, IO_TIMEOUT).await.map_err(|e| format!("health call failed: {e}"))?;
    if !res.ok {
        return Err(format!("health answered ok:false: {:?}", res.error));
    }
    match res.payload.as_ref().and_then(|p| p.get("ok")).and_then(Value::as_bool) {
        Some(true) => Ok(()),
        _ => Err(format!("health payload without ok:true: {:?}", res.payload)),
    }
}

/// Read the next text frame as JSON, skipping pings/pongs; `Err` describes what came instead.
pub async fn next_json(sock: &mut RawSocket<Tokio>, timeout: Duration) -> Result<Value, String> {
    match sock.next_frame(timeout).await {
        Some(RawEvent::Text(t)) => serde_json::from_str(&t).map_err(|e| format!("server sent non-JSON text ({e}): {t}")),
        other => Err(format!("expected a text frame, got {other:?}")),
    }
}

/// A second, already-authenticated client that calls `health` in a loop while a scenario runs;
/// every call must succeed.
pub struct HealthLoop {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Result<u64, String>>,
}

impl HealthLoop {
    /// Connect, make one successful call, then keep calling in the background.
    pub async fn start(url: &str, token: &str) -> HealthLoop {
        let mut client =
            connect_cli(url, token, &["operator.read"]).await.unwrap_or_else(|e| panic!("bystander cannot connect to {url}: {e}"));
        call_health(&mut client).await.unwrap_or_else(|e| panic!("bystander: first call: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = tokio::spawn(async move {
            let mut calls = 1u64;
            loop {
                let last = stop2.load(Ordering::SeqCst);
                call_health(&mut client).await.map_err(|e| format!("bystander call #{}: {e}", calls + 1))?;
                client.events.clear();
                calls += 1;
                if last {
                    break;
                }
                // Pacing only (keeps the loop from monopolising a 2-CPU box); not an assertion.
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            client.close().await;
            Ok(calls)
        });
        HealthLoop { stop, handle }
    }

    /// Stop after one more call and assert every call succeeded; returns the number of calls.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let r = tokio::time::timeout(Duration::from_secs(60), self.handle).await;
        match r {
            Ok(Ok(Ok(n))) => n,
            Ok(Ok(Err(e))) => panic!("another client was affected: {e}"),
            Ok(Err(join)) => panic!("bystander task failed: {join}"),
            Err(_) => panic!("bystander did not finish within 60 s"),
        }
    }
}

/// Run `scenario` while a bystander keeps calling `health` on the same gateway.
pub async fn with_bystander<F: std::future::Future<Output = T>, T>(url: &str, token: &str, scenario: F) -> T {
    let bystander = HealthLoop::start(url, token).await;
    let out = scenario.await;
    let calls = bystander.finish().await;
    assert!(calls >= 2, "bystander made only {calls} calls");
    out
}

/// The payloads of the events named `name` a client collected, in order.
pub fn events_named(events: &[clawgate_core::connection::client::ClientEvent], name: &str) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            clawgate_core::connection::client::ClientEvent::Event(f) if f.event == name => f.payload.clone(),
            _ => None,
        })
        .collect()
}
