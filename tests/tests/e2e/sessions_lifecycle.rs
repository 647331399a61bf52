//! Session lifecycle methods against a real gateway and store (operator §5): `sessions.resolve`
//! by key, session id (or its prefix) and after a miss; `sessions.catalog.list` (no catalogs).

use std::time::Duration;

use clawgate_driver::client::Client;
use clawgate_tests::GatewayBuilder;
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{IO_TIMEOUT, connect_cli};
use clawgate_tokio::Tokio;
use serde_json::{Value, json};

/// A gateway on the fake provider, `primary` its default model.
fn start(up: &FakeUpstream, primary: &str) -> clawgate_tests::Gateway {
    let cfg = json!({
        "gateway": {"mode": "local"},
        "models": {"providers": {"fake": up.provider_config("k")}},
        "agents": {"defaults": {"model": {"primary": primary}}},
    });
    GatewayBuilder::new().config(cfg.to_string()).start()
}

async fn call(c: &mut Client<Tokio>, method: &str, params: Value) -> (bool, Value) {
    let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
    (f.ok, if f.ok { f.payload.unwrap_or_default() } else { json!(f.error.map(|e| e.message)) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_finds_sessions_by_key_and_session_id() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-echo");
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write"]).await.expect("connect");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"key": "main"})).await, (false, json!("No session found: agent:main:main")));
    let res = c.request(
        "agent",
        Some(json!({"message": "hi", "idempotencyKey": "r1", "sessionKey": "agent:main:main"})),
        true,
        Duration::from_secs(30),
    );
    assert!(res.await.expect("final").ok);
    let (ok, v) = call(&mut c, "sessions.resolve", json!({"key": "main"})).await;
    assert!(ok, "{v}");
    assert_eq!(v, json!({"ok": true, "key": "agent:main:main", "agentId": "main"}));
    let (_, list) = call(&mut c, "sessions.list", json!({})).await;
    let sid = list["sessions"].as_array().unwrap().iter().find(|s| s["key"] == "agent:main:main").unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(call(&mut c, "sessions.resolve", json!({"sessionId": sid})).await.1["key"], "agent:main:main");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"shortId": &sid[..8]})).await.1["key"], "agent:main:main");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"label": "nothing"})).await, (false, json!("No session found: nothing")));
    assert_eq!(
        call(&mut c, "sessions.resolve", json!({"x": 1})).await.1,
        json!("invalid sessions.resolve params: at root: unexpected property 'x'")
    );
    assert_eq!(call(&mut c, "sessions.catalog.list", json!({})).await, (true, json!({"catalogs": []})));
    assert_eq!(
        call(&mut c, "sessions.catalog.list", json!({"limitPerHost": 0})).await.1,
        json!("invalid sessions.catalog.list params: at /limitPerHost: must be >= 1")
    );
}

/// `sessions.create|patch|reset|delete` on the store: a created session is adopted on a second
/// create; a patched model is the one the session's next run uses; a thinking level the
/// providers cannot take is refused with the reference's wording; reset keeps the key with a new
/// conversation; delete removes it (the main session cannot be deleted); subscribers hear each
/// change; `commands.list` names what works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_patch_reset_delete_change_the_stored_session() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-model");
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write", "operator.admin"]).await.expect("connect");
    let (ok, _) = call(&mut c, "sessions.subscribe", json!({})).await;
    assert!(ok);

    let (ok, created) = call(&mut c, "sessions.create", json!({"key": "op-test", "label": "op test"})).await;
    assert!(ok, "{created}");
    assert_eq!(created["key"], "agent:main:op-test");
    assert_eq!(created["entry"]["label"], "op test");
    assert_eq!(created["resolved"], json!({"modelProvider": "fake", "model": "fake-model"}));
    assert_eq!(created["runStarted"], false);
    let sid = created["sessionId"].as_str().unwrap().to_string();
    let (_, again) = call(&mut c, "sessions.create", json!({"key": "op-test"})).await;
    assert_eq!(again["sessionId"], json!(sid), "an existing key is adopted");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"label": "op test"})).await.1["key"], "agent:main:op-test");

    // Patch: refused values first, then the model override the next run uses.
    let (ok, e) = call(&mut c, "sessions.patch", json!({"key": "agent:main:op-test", "thinkingLevel": "low"})).await;
    assert!(!ok);
    assert_eq!(e, json!("thinkingLevel \"low\" is not supported for fake/fake-model (use off)"));
    assert_eq!(
        call(&mut c, "sessions.patch", json!({"key": "agent:main:op-test", "bogus": 1})).await.1,
        json!("invalid sessions.patch params: at root: unexpected property 'bogus'")
    );
    assert_eq!(
        call(&mut c, "sessions.patch", json!({"label": "x"})).await.1,
        json!("invalid sessions.patch params: must have required property 'key'")
    );
    let (ok, patched) =
        call(&mut c, "sessions.patch", json!({"key": "agent:main:op-test", "model": "fake/fake-echo", "label": "renamed", "pinned": true}))
            .await;
    assert!(ok, "{patched}");
    assert_eq!(patched["resolved"], json!({"modelProvider": "fake", "model": "fake-echo"}));
    assert_eq!(patched["entry"]["label"], "renamed");
    assert_eq!(patched["entry"]["pinned"], true, "preferences are kept");
    let res = c.request(
        "agent",
        Some(json!({"message": "which model", "idempotencyKey": "lc-1", "sessionKey": "agent:main:op-test"})),
        true,
        Duration::from_secs(30),
    );
    let res = res.await.expect("final");
    let text = res.payload.as_ref().unwrap()["result"]["payloads"][0]["text"].as_str().unwrap_or_default().to_string();
    assert!(text.starts_with("echo: which model"), "the patched model (fake-echo) answered: {text}");
    assert!(up.chat_requests().iter().any(|r| r.body["model"] == "fake-echo"));

    // Reset: same key, new conversation, counters cleared.
    let (ok, reset) = call(&mut c, "sessions.reset", json!({"key": "agent:main:op-test", "reason": "reset"})).await;
    assert!(ok, "{reset}");
    // As the reference (op-sessions-lifecycle capture): the session id stays, the lifecycle
    // revision turns over, so only expectedLifecycleRevision tells a reset happened.
    assert_eq!(reset["entry"]["sessionId"], json!(sid), "the session id is kept");
    assert_ne!(reset["entry"]["lifecycleRevision"], patched["entry"]["lifecycleRevision"], "a new lifecycle revision");
    assert!(reset["entry"]["lifecycleRevision"].is_string(), "{reset}");
    assert_eq!((reset["entry"]["inputTokens"].clone(), reset["entry"]["totalTokens"].clone()), (json!(0), json!(0)));
    assert_eq!(reset["resolved"]["model"], "fake-echo", "the override outlives a reset");
    let (_, history) = call(&mut c, "chat.history", json!({"sessionKey": "agent:main:op-test"})).await;
    assert_eq!(history["messages"], json!([]), "{history}");
    assert!(
        call(&mut c, "sessions.reset", json!({"key": "agent:main:op-test", "reason": "wipe"}))
            .await
            .1
            .as_str()
            .unwrap()
            .starts_with("invalid sessions.reset params: at /reason")
    );

    // Delete, twice; the main session stays.
    assert_eq!(call(&mut c, "sessions.delete", json!({"key": "agent:main:op-test"})).await.1["deleted"], true);
    assert_eq!(call(&mut c, "sessions.delete", json!({"key": "agent:main:op-test"})).await.1["deleted"], false);
    assert_eq!(
        call(&mut c, "sessions.delete", json!({"key": "agent:main:main"})).await.1,
        json!("Cannot delete the main session (agent:main:main).")
    );
    assert_eq!(
        call(&mut c, "sessions.resolve", json!({"key": "agent:main:op-test"})).await.1,
        json!("No session found: agent:main:op-test")
    );
    let reasons: Vec<String> = clawgate_tests::ws::events_named(&c.events, "sessions.changed")
        .iter()
        .filter(|e| e["sessionKey"] == "agent:main:op-test")
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect();
    for r in ["create", "patch", "reset", "delete"] {
        assert!(reasons.iter().any(|x| x == r), "sessions.changed {r} missing: {reasons:?}");
    }
    // Cleanup: nothing expires in clawgate's store; the sweep reports and checkpoints.
    let (ok, swept) = call(&mut c, "sessions.cleanup", json!({})).await;
    assert!(ok, "{swept}");
    assert_eq!((swept["agentId"].clone(), swept["mode"].clone(), swept["applied"].clone()), (json!("main"), json!("enforce"), json!(true)));
    assert_eq!(swept["beforeCount"], swept["afterCount"], "{swept}");
    assert!(
        swept["diskBudget"]["totalBytesBefore"].as_u64() > Some(0) && swept["diskBudget"]["totalBytesAfter"].as_u64() > Some(0),
        "{swept}"
    );
    assert!(swept["storePath"].as_str().is_some_and(|p| p.ends_with("sessions.sqlite")), "{swept}");
    assert_eq!(
        call(&mut c, "sessions.cleanup", json!({"x": 1})).await.1,
        json!("invalid sessions.cleanup params: at root: unexpected property 'x'")
    );
    assert_eq!(call(&mut c, "sessions.cleanup", json!({"agent": "nope"})).await.1, json!("Unknown agent id \"nope\""));
    let (_, commands) = call(&mut c, "commands.list", json!({"includeArgs": true})).await;
    let names: Vec<&str> = commands["commands"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["stop", "reset", "new", "model"]);
    let mut readonly = connect_cli(&gw.url(), &gw.token(), &["operator.read"]).await.expect("connect");
    assert_eq!(call(&mut readonly, "sessions.create", json!({})).await.1, json!("missing scope: operator.write"));
    assert_eq!(call(&mut readonly, "sessions.reset", json!({"key": "main"})).await.1, json!("missing scope: operator.admin"));
}

/// `sessions.compact` (`openclaw sessions compact`): without `maxLines` the provider summarises
/// the older turns — the transcript keeps the summary and the newest 8 messages, and the next
/// turn is sent the summary instead of the old messages; with `maxLines` the transcript is
/// truncated to its newest messages, no provider call. Too small a session is refused in the
/// answer (`ok:false`), as the reference does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_summarises_or_truncates_the_stored_transcript() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-echo");
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write", "operator.admin"]).await.expect("connect");
    let key = "agent:main:compact-me";
    turn(&mut c, key, 1).await;
    let (ok, small) = call(&mut c, "sessions.compact", json!({"key": key})).await;
    assert!(ok);
    assert_eq!(small, json!({"ok": false, "key": key, "compacted": false, "reason": "Nothing to compact (session too small)"}));
    for n in 2..=5 {
        turn(&mut c, key, n).await;
    }
    let before = up.chat_requests().len();
    let (ok, done) = call(&mut c, "sessions.compact", json!({"key": key})).await;
    assert!(ok, "{done}");
    assert_eq!(done, json!({"ok": true, "key": key, "compacted": true, "kept": 8}));
    let asked = up.chat_requests()[before..].to_vec();
    assert_eq!(asked.len(), 1, "one summary request");
    let prompt = asked[0].body.to_string();
    assert!(
        prompt.contains("Summarize the conversation") && prompt.contains("fact number 1") && !prompt.contains("fact number 2"),
        "{prompt}"
    );
    let (_, history) = call(&mut c, "chat.history", json!({"sessionKey": key})).await;
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 9, "summary + the 8 newest: {history}");
    assert!(messages[0].to_string().contains("Summary of the earlier conversation"), "{}", messages[0]);
    assert!(messages[1].to_string().contains("fact number 2"));
    // The next turn sees the summary and the kept messages, not the old ones.
    let reply = turn(&mut c, key, 6).await;
    let sent = up.chat_requests().last().unwrap().body.to_string();
    assert!(sent.contains("Summary of the earlier conversation") && !sent.contains("\"fact number 1\""), "{sent}");
    assert!(reply.starts_with("echo: fact number 6"), "{reply}");

    // Truncation: the newest 2 messages stay, nothing is asked of the provider.
    let before = up.chat_requests().len();
    let (ok, cut) = call(&mut c, "sessions.compact", json!({"key": key, "maxLines": 2})).await;
    assert!(ok, "{cut}");
    assert_eq!(cut, json!({"ok": true, "key": key, "compacted": true, "kept": 2}));
    assert_eq!(up.chat_requests().len(), before, "truncation asks no provider");
    let (_, history) = call(&mut c, "chat.history", json!({"sessionKey": key})).await;
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{history}");
    assert!(messages[0].to_string().contains("fact number 6"));

    // The reference's CLI compacts through the same method.
    let (url, token) = (gw.url(), gw.token());
    let out = tokio::task::block_in_place(|| {
        clawgate_tests::openclaw::openclaw(
            &["sessions", "compact", key, "--max-lines", "1", "--json", "--url", &url, "--token", &token],
            Duration::from_secs(90),
        )
    });
    assert!(out.success(), "openclaw sessions compact: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!((v["compacted"].clone(), v["kept"].clone()), (json!(true), json!(1)), "{v}");
    let out = tokio::task::block_in_place(|| {
        clawgate_tests::openclaw::openclaw(
            &["sessions", "delete", key, "--yes", "--json", "--url", &url, "--token", &token],
            Duration::from_secs(90),
        )
    });
    assert!(out.success(), "openclaw sessions delete: {out:?}");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"key": key})).await.1, json!(format!("No session found: {key}")));
}

/// One agent turn on `key` ("fact number <n>"); the reply text.
async fn turn(c: &mut Client<Tokio>, key: &str, n: usize) -> String {
    let params = json!({"message": format!("fact number {n}"), "idempotencyKey": format!("cp-{n}"), "sessionKey": key});
    let res = c.request("agent", Some(params), true, Duration::from_secs(30)).await.expect("final");
    res.payload.unwrap_or_default()["result"]["payloads"][0]["text"].as_str().unwrap_or_default().to_string()
}

/// Archiving (`openclaw sessions archive`, `sessions.patch {archived}`): the session leaves the
/// default `sessions.list`, shows with `archived:true|"all"`, takes no new run until restored,
/// and can then be deleted with write scope (`archivedOnly`). Patch and delete preconditions
/// (`expectedSessionId`, `expectedLifecycleRevision`, `archivedOnly`) are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_hides_a_session_until_restored_and_preconditions_are_checked() {
    let up = FakeUpstream::start();
    let gw = start(&up, "fake/fake-echo");
    let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write", "operator.admin"]).await.expect("connect");
    let key = "agent:main:to-archive";
    turn(&mut c, key, 1).await;
    let keys = |list: &Value| -> Vec<String> {
        list["sessions"].as_array().unwrap().iter().filter_map(|s| s["key"].as_str().map(str::to_string)).collect()
    };
    let (url, token) = (gw.url(), gw.token());
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--json", "--url", &url, "--token", &token]);
        tokio::task::block_in_place(|| clawgate_tests::openclaw::openclaw(&all, Duration::from_secs(90)))
    };
    let out = cli(&["sessions", "archive", key]);
    assert!(out.success(), "openclaw sessions archive: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(v["results"][0]["status"], "archived", "{v}");
    let out = cli(&["sessions", "archive", key]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("already_archived"), "a second archive is a no-op: {}", out.stdout);

    assert!(!keys(&call(&mut c, "sessions.list", json!({})).await.1).contains(&key.to_string()), "hidden by default");
    let (_, only) = call(&mut c, "sessions.list", json!({"archived": true})).await;
    assert_eq!(keys(&only), [key]);
    assert_eq!(only["sessions"][0]["archived"], true);
    assert!(only["sessions"][0]["archivedAt"].as_u64().is_some(), "{only}");
    assert!(keys(&call(&mut c, "sessions.list", json!({"archived": "all"})).await.1).contains(&key.to_string()));

    // No new work in an archived session.
    let before = up.chat_requests().len();
    let params = json!({"message": "still there?", "idempotencyKey": "arch-1", "sessionKey": key});
    let res = c.request("agent", Some(params), true, Duration::from_secs(30)).await.expect("final");
    let text = format!("{:?} {:?}", res.payload, res.error);
    assert!(text.contains("is archived. Restore it before starting new work."), "{text}");
    assert_eq!(up.chat_requests().len(), before, "the provider is not asked");
    assert_eq!(
        call(&mut c, "sessions.patch", json!({"key": "main", "archived": true})).await.1,
        json!("Cannot archive an agent's main session.")
    );

    // Preconditions: a stale session id is refused with the reason clients retry on.
    let (_, resolved) = call(&mut c, "sessions.resolve", json!({"key": key})).await;
    assert_eq!(resolved["key"], key);
    let stale = c
        .request("sessions.patch", Some(json!({"key": key, "archived": false, "expectedSessionId": "not-this-one"})), false, IO_TIMEOUT)
        .await
        .unwrap();
    let err = stale.error.expect("refused");
    assert_eq!(err.message, format!("Session {key} changed before patch. Retry."));
    assert_eq!(err.details, Some(json!({"reason": "session-changed"})));
    // Archive and restore name the session they read (as the CLI and the Control UI do).
    assert_eq!(
        call(&mut c, "sessions.patch", json!({"key": key, "archived": false})).await.1,
        json!(format!("expectedSessionId required for session lifecycle patch: {key}"))
    );
    assert_eq!(
        call(&mut c, "sessions.patch", json!({"key": "agent:main:never-made", "archived": true, "expectedSessionId": "x"})).await.1,
        json!("Session agent:main:never-made changed before patch. Retry.")
    );
    let (_, archived_row) = call(&mut c, "sessions.list", json!({"archived": true})).await;
    let session_id = archived_row["sessions"][0]["sessionId"].as_str().expect("sessionId").to_string();
    let archived_at = archived_row["sessions"][0]["archivedAt"].clone();
    assert_eq!(archived_row["sessions"][0]["archiveReason"], "manual", "{archived_row}");
    let again = json!({"key": key, "archived": true, "expectedSessionId": session_id});
    let (ok, rearchived) = call(&mut c, "sessions.patch", again).await;
    assert!(ok && rearchived["entry"]["archivedAt"] == archived_at, "a second archive keeps the first stamp: {rearchived}");
    assert_eq!(
        call(&mut c, "sessions.patch", json!({"key": key, "pinned": true})).await.1,
        json!("cannot pin an archived session; restore it first")
    );
    assert_eq!(
        call(&mut c, "sessions.reset", json!({"key": key})).await.1,
        json!(format!("Session \"{key}\" is archived. Restore it before starting new work."))
    );
    let (ok, restored) = call(&mut c, "sessions.patch", json!({"key": key, "archived": false, "expectedSessionId": session_id})).await;
    assert!(ok && restored["entry"].get("archivedAt").is_none() && restored["entry"].get("archiveReason").is_none(), "{restored}");
    assert!(keys(&call(&mut c, "sessions.list", json!({})).await.1).contains(&key.to_string()), "restored");
    assert_eq!(
        call(&mut c, "sessions.reset", json!({"key": key, "expectedSessionId": "not-this-one"})).await.1,
        json!(format!("Session {key} changed before reset. Retry."))
    );
    assert!(turn(&mut c, key, 2).await.starts_with("echo: fact number 2"), "a restored session runs again");

    // Deleting: `archivedOnly` needs an archived session, and then write scope suffices.
    let mut writer = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write"]).await.expect("connect");
    let archived_only = json!({"key": key, "archivedOnly": true});
    assert_eq!(call(&mut writer, "sessions.delete", json!({"key": key})).await.1, json!("missing scope: operator.admin"));
    assert_eq!(
        call(&mut writer, "sessions.delete", archived_only.clone()).await.1,
        json!(format!("Session {key} is not archived. Archive it first, then delete it."))
    );
    let (ok, archived) = call(&mut writer, "sessions.patch", json!({"key": key, "archived": true, "expectedSessionId": session_id})).await;
    assert!(ok, "archiving needs write scope only: {archived}");
    assert_eq!(
        call(&mut writer, "sessions.patch", json!({"key": key, "verboseLevel": "on"})).await.1,
        json!("missing scope: operator.admin")
    );
    let (ok, deleted) = call(&mut writer, "sessions.delete", archived_only).await;
    assert!(ok && deleted["deleted"] == true, "{deleted}");
    assert_eq!(call(&mut c, "sessions.resolve", json!({"key": key})).await.1, json!(format!("No session found: {key}")));
}
