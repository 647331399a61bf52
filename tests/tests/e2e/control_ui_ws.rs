//! The official Control UI's WebSocket traffic (spec control-ui §3–§5, checklist 10–17): a
//! socket that connects exactly like the UI (`openclaw-control-ui`/`webchat`, the six operator
//! scopes, a v2-signed device identity, the shared secret as both token and password), walks the
//! UI's start-up calls, sends a chat message against the fake upstream and checks what the UI
//! relies on: the reply in `session.message` and the `chat` final, `sessions.changed` ending
//! `done` without an active run, contiguous event `seq` from 1, and `chat.history` afterwards
//! returning both messages with the ids the events carried.

use std::time::{Duration, Instant};

use clawgate_conformance::device::DeviceKey;
use clawgate_driver::client::{Headers, RawEvent, RawSocket};
use clawgate_tests::device::{UI_SCOPES, UiAuth, ui_connect_frame};
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::raw_connect;
use clawgate_tests::{Gateway, GatewayBuilder};
use clawgate_tokio::Tokio;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);
const MAIN: &str = "agent:main:main";

fn start(up: &FakeUpstream) -> Gateway {
    let cfg = json!({
        "gateway": {"mode": "local"},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
    });
    GatewayBuilder::new().config(cfg.to_string()).start()
}

/// One Control UI socket: every frame after `hello-ok` is kept in order.
struct Ui {
    sock: RawSocket<Tokio>,
    events: Vec<Value>,
    next: u64,
}

impl Ui {
    async fn connect(gw: &Gateway) -> (Ui, Value) {
        let origin = format!("http://{}", gw.addr());
        let headers: Headers = vec![("Origin".into(), origin)];
        let mut sock = raw_connect(&gw.url(), &headers).await.expect("upgrade");
        let challenge = next_json(&mut sock).await;
        assert_eq!(challenge["event"], "connect.challenge", "{challenge}");
        let nonce = challenge["payload"]["nonce"].as_str().unwrap().to_string();
        let ts = challenge["payload"]["ts"].as_u64().unwrap();
        let connect = ui_connect_frame(&DeviceKey::random(), &nonce, ts, &UiAuth::Secret(gw.token()));
        sock.send_text(connect.to_string()).await.expect("send connect");
        let mut ui = Ui { sock, events: Vec::new(), next: 2 };
        let hello = ui.response("1:connect").await;
        assert_eq!(hello["ok"], true, "connect refused: {hello}");
        (ui, hello["payload"].clone())
    }

    /// Read frames until the response `id` arrives; events meanwhile are kept.
    async fn response(&mut self, id: &str) -> Value {
        let deadline = Instant::now() + T;
        loop {
            assert!(Instant::now() < deadline, "no answer to {id}");
            let f = next_json(&mut self.sock).await;
            match f["type"].as_str() {
                Some("res") if f["id"] == id => return f,
                Some("event") => self.events.push(f),
                _ => {}
            }
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = format!("{}:{method}", self.next);
        self.next += 1;
        let req = json!({"type": "req", "id": id, "method": method, "params": params});
        self.sock.send_text(req.to_string()).await.expect("send");
        self.response(&id).await
    }

    /// `call` that must succeed; its payload.
    async fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params).await;
        assert_eq!(r["ok"], true, "{method} failed: {r}");
        r["payload"].clone()
    }

    /// Read events until one matches.
    async fn wait_event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(e) = self.events.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + T;
        loop {
            assert!(Instant::now() < deadline, "no {what}; events: {:#?}", self.events);
            let f = next_json(&mut self.sock).await;
            if f["type"] == "event" {
                self.events.push(f.clone());
                if pred(&f) {
                    return f;
                }
            }
        }
    }

    fn named(&self, name: &str) -> Vec<Value> {
        self.events.iter().filter(|e| e["event"] == name).map(|e| e["payload"].clone()).collect()
    }
}

async fn next_json(sock: &mut RawSocket<Tokio>) -> Value {
    loop {
        match sock.next_frame(T).await {
            Some(RawEvent::Text(t)) => return serde_json::from_str(&t).expect("JSON frame"),
            Some(RawEvent::Ping | RawEvent::Pong) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_ui_loads_chats_and_reconciles() {
    let up = FakeUpstream::start();
    let gw = start(&up);
    let (mut ui, hello) = Ui::connect(&gw).await;

    // hello-ok: the six scopes, a model configured (no "Models unavailable"), the UI's methods.
    let granted: Vec<&str> = hello["auth"]["scopes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(UI_SCOPES.iter().all(|s| granted.contains(s)), "scopes: {granted:?}");
    let defaults = &hello["snapshot"]["sessionDefaults"];
    assert_eq!((defaults["modelConfigured"].clone(), defaults["mainSessionKey"].clone()), (json!(true), json!(MAIN)), "{defaults}");
    let methods: Vec<&str> = hello["features"]["methods"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for m in ["chat.startup", "sessions.messages.subscribe", "sessions.subscribe", "chat.send", "chat.history", "agents.list"] {
        assert!(methods.contains(&m), "{m} not advertised");
    }

    // The load burst, in the UI's order (control-ui §4.1).
    assert_eq!(ui.ok("sessions.subscribe", json!({})).await, json!({"subscribed": true}));
    let list = ui
        .ok(
            "sessions.list",
            json!({"includeGlobal": true, "includeUnknown": true, "configuredAgentsOnly": true, "limit": 200,
            "includeDerivedTitles": true, "includeLastMessage": true, "ownerFirst": true, "agentId": "main"}),
        )
        .await;
    assert_eq!(list["count"], 0);
    ui.ok("config.get", json!({})).await;
    assert_eq!(ui.ok("update.status", json!({})).await["effectiveChannel"], "stable");
    assert_eq!(ui.ok("agents.list", json!({})).await["defaultId"], "main");
    for m in ["exec.approval.list", "plugin.approval.list", "openclaw.approval.list"] {
        assert_eq!(ui.ok(m, json!({})).await, json!([]));
    }
    assert_eq!(ui.ok("sessions.observer.visibility", json!({"visible": true})).await, json!({"ok": true}));
    let prefs = json!({"keys": ["ui.theme", "ui.themeMode", "ui.accent", "ui.fontUi", "ui.fontChat"]});
    assert_eq!(ui.ok("users.prefs.get", prefs).await, json!({"status": "ok", "entries": {}}));
    assert_eq!(ui.ok("question.list", json!({})).await, json!({"questions": []}));
    assert_eq!(ui.ok("agent.identity.get", json!({"agentId": "main"})).await["name"], "Assistant");
    assert_eq!(ui.ok("models.authStatus", json!({"agentId": "main"})).await["providers"][0]["provider"], "fake");
    assert_eq!(ui.ok("sessions.describe", json!({"key": MAIN})).await, json!({"session": null}));
    let startup = ui.ok("chat.startup", json!({"sessionKey": MAIN, "limit": 80, "maxBytes": 262144})).await;
    assert_eq!(
        (startup["sessionKey"].clone(), startup["messages"].clone(), startup["hasMore"].clone()),
        (json!(MAIN), json!([]), json!(false))
    );
    assert_eq!((startup["defaults"]["model"].clone(), startup["sessionInfo"]["hasActiveRun"].clone()), (json!("fake-model"), json!(false)));
    assert_eq!(startup["metadata"]["models"][0]["id"], "fake-model");
    ui.ok("talk.catalog", json!({})).await;
    let sub = ui.ok("sessions.messages.subscribe", json!({"key": MAIN, "includeApprovals": true})).await;
    assert_eq!(
        (sub["subscribed"].clone(), sub["key"].clone(), sub["approvalReplay"]["approvals"].clone()),
        (json!(true), json!(MAIN), json!([]))
    );
    assert_eq!(ui.ok("progressCard.get", json!({"sessionKey": MAIN})).await, json!({"card": null}));
    assert_eq!(ui.ok("sessions.branches.list", json!({"sessionKey": MAIN})).await, json!({"branches": []}));
    assert_eq!(ui.ok("sessions.companion.state", json!({"sessionKey": MAIN, "agentId": "main"})).await, json!({"exchanges": []}));
    let tasks = json!({"sessionKey": MAIN, "agentId": "main", "status": ["queued", "running"], "limit": 200});
    assert_eq!(ui.ok("tasks.list", tasks).await, json!({"tasks": []}));
    assert_eq!(ui.ok("chat.metadata", json!({"agentId": "main", "sessionKey": MAIN})).await["commands"][0]["name"], "stop");
    // Bad params get the reference's texts.
    let bad = ui.call("chat.startup", json!({"sessionKey": MAIN, "bogus": 1})).await;
    assert_eq!(bad["error"]["code"], "INVALID_REQUEST", "{bad}");

    // Chat send: one `res {runId, status:"started"}`, then the run's events.
    let run = "306ca65e-ab36-4d5d-b648-f3828179f4f8";
    let sent = ui
        .ok(
            "chat.send",
            json!({"sessionKey": MAIN, "message": "hello from the headless browser", "deliver": false, "expectedLeafEntryId": null, "idempotencyKey": run}),
        )
        .await;
    assert_eq!((sent["runId"].clone(), sent["status"].clone()), (json!(run), json!("started")));
    let done = ui
        .wait_event("sessions.changed done", |e| {
            e["event"] == "sessions.changed" && e["payload"]["runId"] == run && e["payload"]["session"]["hasActiveRun"] == false
        })
        .await;
    assert_eq!(done["payload"]["session"]["status"], "done", "{done}");

    // session.message: the user turn, then the reply.
    let messages = ui.named("session.message");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let (user, reply) = (&messages[0]["message"], &messages[1]["message"]);
    assert_eq!((user["role"].clone(), user["content"].clone()), (json!("user"), json!("hello from the headless browser")));
    assert_eq!(user["idempotencyKey"], format!("{run}:user"));
    assert_eq!((reply["role"].clone(), reply["content"][0]["text"].clone()), (json!("assistant"), json!("Hello from fake upstream")));
    assert_eq!(
        (reply["provider"].clone(), reply["model"].clone(), reply["__openclaw"]["runId"].clone()),
        (json!("fake"), json!("fake-model"), json!(run))
    );
    assert_eq!(messages[0]["messageSeq"], 1);
    assert_eq!(messages[1]["messageSeq"], 2);
    assert_eq!(messages[0]["session"]["status"], "running");
    // sessions.changed: running first, done last.
    let changed = ui.named("sessions.changed");
    assert_eq!(changed.first().map(|c| c["session"]["status"].clone()), Some(json!("running")), "{changed:#?}");
    assert_eq!(changed.last().map(|c| c["session"]["hasActiveRun"].clone()), Some(json!(false)));
    let last_message = ui.events.iter().rposition(|e| e["event"] == "session.message").unwrap();
    let last_changed = ui.events.iter().rposition(|e| e["event"] == "sessions.changed").unwrap();
    assert!(last_changed > last_message, "a running row must be followed by sessions.changed done");
    // chat: deltas then the final with the reply; agent lifecycle start … end.
    let chat = ui.named("chat");
    let fin = chat.iter().find(|c| c["state"] == "final").expect("chat final");
    assert_eq!(fin["message"]["content"][0]["text"], "Hello from fake upstream");
    let phases: Vec<Value> = ui.named("agent").iter().filter(|a| a["stream"] == "lifecycle").map(|a| a["data"]["phase"].clone()).collect();
    assert_eq!((phases.first().cloned(), phases.last().cloned()), (Some(json!("start")), Some(json!("end"))), "{phases:?}");

    // chat.history: both messages, the same ids and seqs as the events.
    let h = ui.ok("chat.history", json!({"sessionKey": MAIN, "inputRunIds": [run], "limit": 1000})).await;
    let hm = h["messages"].as_array().unwrap();
    assert_eq!(hm.len(), 2, "{h}");
    for (ev, hist) in messages.iter().zip(hm) {
        assert_eq!(ev["message"]["__openclaw"]["id"], hist["__openclaw"]["id"]);
        assert_eq!(ev["message"]["__openclaw"]["seq"], hist["__openclaw"]["seq"]);
        assert_eq!(&ev["message"], hist);
    }
    assert!(hm[0]["__openclaw"]["id"].as_str().is_some_and(|s| s.len() == 36));
    assert_eq!((h["sessionInfo"]["status"].clone(), h["sessionInfo"]["hasActiveRun"].clone()), (json!("done"), json!(false)));
    let startup = ui.ok("chat.startup", json!({"sessionKey": MAIN, "limit": 80, "maxBytes": 262144})).await;
    assert_eq!(startup["messages"], h["messages"]);
    let d = ui.ok("sessions.describe", json!({"key": MAIN})).await;
    assert_eq!((d["session"]["key"].clone(), d["session"]["status"].clone()), (json!(MAIN), json!("done")));

    // Every event after hello-ok carries a contiguous seq from 1 (a gap makes the UI reconnect).
    let seqs: Vec<u64> = ui.events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs.len(), ui.events.len(), "every event has a seq: {:#?}", ui.events);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // Unsubscribed: no more session.message for this socket; its seqs stay contiguous.
    let un = ui.ok("sessions.messages.unsubscribe", json!({"key": MAIN})).await;
    assert_eq!(un, json!({"subscribed": false, "key": MAIN}));
    ui.ok("chat.send", json!({"sessionKey": MAIN, "message": "again", "idempotencyKey": "second-run"})).await;
    ui.wait_event("second run done", |e| {
        e["event"] == "sessions.changed" && e["payload"]["runId"] == "second-run" && e["payload"]["phase"] == "end"
    })
    .await;
    assert_eq!(ui.named("session.message").len(), 2, "no session.message after unsubscribe");
    let seqs: Vec<u64> = ui.events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let h = ui.ok("chat.history", json!({"sessionKey": MAIN})).await;
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(4));
    ui.sock.close(Some(1001), "").await;
}

/// A socket that never subscribed sees `chat`/`agent` but neither `session.message` nor
/// `sessions.changed` (the reference gates them by subscription), and its seqs stay contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_events_go_only_to_subscribers() {
    let up = FakeUpstream::start();
    let gw = start(&up);
    let (mut quiet, _) = Ui::connect(&gw).await;
    let (mut ui, _) = Ui::connect(&gw).await;
    ui.ok("sessions.subscribe", json!({})).await;
    ui.ok("sessions.messages.subscribe", json!({"key": "main"})).await;
    quiet.ok("chat.send", json!({"sessionKey": "main", "message": "hi", "idempotencyKey": "q-1"})).await;
    quiet.wait_event("chat final", |e| e["event"] == "chat" && e["payload"]["state"] == "final").await;
    ui.wait_event("sessions.changed end", |e| e["event"] == "sessions.changed" && e["payload"]["phase"] == "end").await;
    assert_eq!(ui.named("session.message").len(), 2);
    // Let any stray event reach the quiet socket before looking.
    quiet.ok("health", json!({})).await;
    assert!(quiet.named("session.message").is_empty() && quiet.named("sessions.changed").is_empty(), "{:#?}", quiet.events);
    for s in [&quiet, &ui] {
        let seqs: Vec<u64> = s.events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }
}
