//! WebSocket agent runs against a real provider (spec protocol §8.3, §10.2, §10.3): `accepted`
//! at once, streamed `agent`/`chat` events, the final answer with the upstream's text, idempotent
//! replay, in-flight dedupe, `agent.wait` — over our client and over the real OpenClaw CLI. The
//! provider is the fake upstream on loopback (the one allowed test double).

use std::time::Duration;

use clawgate_core::connection::client::ClientEvent;
use clawgate_tests::openclaw::openclaw;
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{connect_cli, events_named};
use clawgate_tests::{Gateway, GatewayBuilder};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
const RW: &[&str] = &["operator.read", "operator.write"];

fn start(up: &FakeUpstream, primary: &str) -> Gateway {
    let cfg = json!({
        "gateway": {"mode": "local"},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": primary}}},
    });
    GatewayBuilder::new().config(cfg.to_string()).start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_run_streams_events_and_answers_with_the_upstream_text() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-model");
    let mut c = connect_cli(&gw.url(), &gw.token(), RW).await.expect("connect");
    let params = json!({"message": "Say hello", "idempotencyKey": "run-ws-1"});
    let res = c.request("agent", Some(params.clone()), true, T).await.expect("final");
    assert!(res.ok, "{:?}", res.error);
    let p = res.payload.clone().unwrap();
    assert_eq!((p["runId"].clone(), p["status"].clone()), (json!("run-ws-1"), json!("ok")), "{p}");
    assert_eq!(p["result"]["payloads"][0]["text"], "Hello from fake upstream", "{p}");
    let accepted = c.events.iter().find_map(|e| match e {
        ClientEvent::Response { frame, interim: true, .. } => frame.payload.clone(),
        _ => None,
    });
    let accepted = accepted.expect("an accepted ack before the final");
    assert_eq!((accepted["status"].clone(), accepted["runId"].clone()), (json!("accepted"), json!("run-ws-1")));
    let agent = events_named(&c.events, "agent");
    let streams: Vec<&str> = agent.iter().filter_map(|a| a["stream"].as_str()).collect();
    assert_eq!(streams.first(), Some(&"lifecycle"));
    assert!(streams.contains(&"assistant"), "assistant deltas: {streams:?}");
    let seqs: Vec<u64> = agent.iter().filter_map(|a| a["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "per-run seq: {seqs:?}");
    let deltas: String = agent.iter().filter(|a| a["stream"] == "assistant").filter_map(|a| a["data"]["delta"].as_str()).collect();
    assert_eq!(deltas, "Hello from fake upstream");
    let chat = events_named(&c.events, "chat");
    assert_eq!(chat.last().map(|c| c["state"].clone()), Some(json!("final")), "{chat:?}");
    assert_eq!(up.chat_requests()[0].body["messages"].as_array().unwrap().last().unwrap()["content"], "Say hello");

    // Completed: the same key replays the cached final, without a second upstream call.
    let again = c.request("agent", Some(params), true, T).await.expect("replay");
    assert_eq!(again.payload.as_ref().map(|p| p["result"]["payloads"][0]["text"].clone()), Some(json!("Hello from fake upstream")));
    assert_eq!(up.chat_requests().len(), 1, "a replay does not run again");
    let wait = c.request("agent.wait", Some(json!({"runId": "run-ws-1", "timeoutMs": 1000})), false, T).await.unwrap();
    assert_eq!(wait.payload.unwrap()["status"], "ok");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_key_in_flight_gets_one_in_flight_answer() {
    let up = FakeUpstream::start();
    up.set_slow_ms(1500);
    let gw = start(&up, "fake/fake-slow");
    let (url, token) = (gw.url(), gw.token());
    let mut a = connect_cli(&url, &token, RW).await.expect("connect a");
    let mut b = connect_cli(&url, &token, RW).await.expect("connect b");
    let params = json!({"message": "slow please", "idempotencyKey": "run-ws-slow"});
    let first = tokio::spawn({
        let params = params.clone();
        async move {
            let r = a.request("agent", Some(params), true, T).await;
            (a, r)
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let dup = b.request("agent", Some(params.clone()), false, T).await.expect("dup answered");
    assert_eq!(dup.payload.as_ref().map(|p| p["status"].clone()), Some(json!("in_flight")), "{dup:?}");
    let waited = b.request("agent.wait", Some(json!({"runId": "run-ws-slow", "timeoutMs": 20000})), false, T).await.unwrap();
    assert_eq!(waited.payload.unwrap()["status"], "ok", "agent.wait resolves when the run ends");
    let (a, r) = first.await.unwrap();
    let r = r.expect("final");
    assert_eq!(r.payload.unwrap()["result"]["payloads"][0]["text"], "Slow hello");
    assert_eq!(up.chat_requests().len(), 1, "one run for one key");
    a.close().await;
    b.close().await;
}

/// The real CLI: `gateway call agent --expect-final` exits 0 and prints the upstream's answer.
#[test]
fn openclaw_cli_agent_expect_final_gets_the_upstream_answer() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-model");
    let (url, token) = (gw.url(), gw.token());
    let params = r#"{"message":"hello from the real CLI","idempotencyKey":"cli-agent-0001"}"#;
    let out = openclaw(
        &["gateway", "call", "agent", "--expect-final", "--json", "--params", params, "--url", &url, "--token", &token],
        Duration::from_secs(90),
    );
    assert_eq!(out.code, Some(0), "exit 0 expected:\n{}\n{}\n--- gateway ---\n{}", out.stdout, out.stderr, gw.stderr());
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("JSON ({e}): {}", out.stdout));
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["result"]["payloads"][0]["text"], "Hello from fake upstream", "{v:#}");
    let sent = up.chat_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["messages"].as_array().unwrap().last().unwrap()["content"], "hello from the real CLI");
}

/// A session keeps its conversation: the second run on the same `sessionKey` sends the first
/// exchange upstream, from the session database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_one_session_key_share_the_conversation() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-echo");
    let mut c = connect_cli(&gw.url(), &gw.token(), RW).await.expect("connect");
    for (i, msg) in ["My name is Ada", "What is my name?"].iter().enumerate() {
        let params = json!({"message": msg, "idempotencyKey": format!("conv-{i}"), "sessionKey": "agent:main:conv-test"});
        let r = c.request("agent", Some(params), true, T).await.expect("final");
        assert!(r.ok, "{:?}", r.error);
    }
    let sent = up.chat_requests();
    let msgs = sent[1].body["messages"].as_array().unwrap();
    let texts: Vec<&str> = msgs.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(texts, ["My name is Ada", "echo: My name is Ada (messages: 1)", "What is my name?"], "{msgs:?}");
    c.close().await;
}

/// `openclaw agent --message …` (the everyday CLI command, not `gateway call`): it finds the
/// gateway from `OPENCLAW_GATEWAY_PORT`/`_TOKEN`, runs a turn and prints the reply text from
/// `result.payloads`; with `--json` it prints the final payload.
#[test]
fn openclaw_agent_command_prints_the_reply() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-echo");
    let port = gw.port.to_string();
    let token = gw.token();
    let env = [("OPENCLAW_GATEWAY_PORT", port.as_str()), ("OPENCLAW_GATEWAY_TOKEN", token.as_str())];
    let out = clawgate_tests::openclaw::openclaw_with_env(
        &["agent", "--message", "hello from openclaw agent", "--agent", "main"],
        &env,
        Duration::from_secs(90),
    );
    assert_eq!(out.code, Some(0), "{}\n{}\n--- gateway ---\n{}", out.stdout, out.stderr, gw.stderr());
    assert!(out.stdout.contains("echo: hello from openclaw agent"), "the reply text is printed:\n{}", out.stdout);
    let out = clawgate_tests::openclaw::openclaw_with_env(
        &["agent", "--message", "second", "--agent", "main", "--json"],
        &env,
        Duration::from_secs(90),
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("JSON ({e}): {}", out.stdout));
    assert_eq!(v["status"], "ok", "{v:#}");
    let text = v["result"]["payloads"][0]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("echo: second"), "{v:#}");
    assert_eq!(v["result"]["meta"]["agentMeta"]["provider"], "fake", "{v:#}");
    // Both runs are in the agent's main session, as on the reference (issue 11): the second one
    // continued the conversation (the provider saw three messages).
    assert_eq!(v["result"]["meta"]["agentMeta"]["sessionKey"], "agent:main:main", "{v:#}");
    assert!(text.ends_with("(messages: 3)"), "the conversation continues: {text}");
}
