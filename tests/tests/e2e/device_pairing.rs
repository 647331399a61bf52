//! Device pairing end to end (issue 6; spec protocol §5.5, control-ui.md §3.5): a browser-like
//! device that is not auto-approved gets `NOT_PAIRED` with a request id; `clawgate devices
//! list|approve|reject|remove` (and the real OpenClaw CLI) manage it; the device token issued on
//! approval works alone, survives a restart, and stops working — live sockets closed 4001 —
//! when the device is removed.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use clawgate_conformance::device::DeviceKey;
use clawgate_tests::device::{UiAuth, ui_connect, wait_close};
use clawgate_tests::openclaw::openclaw;
use clawgate_tests::process::{TempDir, base_env};
use clawgate_tests::ws::{connect_cli, events_named};
use clawgate_tests::{CmdOutput, Gateway, clawgate_bin, run_command};
use serde_json::{Value, json};

const NO_AUTO_APPROVE: &str = r#"{"gateway": {"mode": "local", "nodes": {"pairing": {"autoApproveLocal": false}}}}"#;

fn devices_cli(gw: &Gateway, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(clawgate_bin());
    base_env(&mut cmd, gw.home_path());
    cmd.arg("devices").args(args).args(["--url", &gw.url(), "--token", &gw.token()]);
    run_command(&mut cmd, Duration::from_secs(30))
}

fn json_out(out: &CmdOutput) -> Value {
    assert!(out.success(), "devices command failed ({:?}):\n{}\n{}", out.code, out.stdout, out.stderr);
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

fn secret(gw: &Gateway) -> UiAuth {
    UiAuth::Secret(gw.token())
}

/// Connect; expect `NOT_PAIRED`; return the request id.
fn pairing_request(gw: &Gateway, key: &DeviceKey) -> String {
    let (error, close) = ui_connect(gw.addr(), "/", key, &secret(gw), None).rejected();
    assert_eq!(error["code"], "NOT_PAIRED", "{error}");
    assert_eq!(error["message"], "pairing required: device is not approved yet");
    let d = &error["details"];
    assert_eq!(d["code"], "PAIRING_REQUIRED", "{error}");
    assert_eq!(d["reason"], "not-paired");
    assert_eq!(d["deviceId"], json!(key.device_id()));
    // The UI keeps retrying while it waits for approval (control-ui.md §3.5).
    assert_eq!(d["pauseReconnect"], false);
    assert_eq!(d["recommendedNextStep"], "wait_then_retry");
    let rid = d["requestId"].as_str().expect("requestId").to_string();
    let (code, reason) = close.expect("close frame after NOT_PAIRED");
    assert_eq!(code, 1008);
    assert_eq!(reason, format!("pairing required: device is not approved yet (requestId: {rid})"));
    rid
}

#[test]
fn not_auto_approved_device_waits_then_cli_approval_lets_it_in() {
    let gw = Gateway::builder().config(NO_AUTO_APPROVE).start();
    // An operator watching with operator.pairing sees the request and its resolution.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let mut watcher = rt.block_on(connect_cli(&gw.url(), &gw.token(), &["operator.pairing"])).expect("watcher connects");
    let key = DeviceKey::random();
    let rid = pairing_request(&gw, &key);
    // Retrying reuses the same request (the UI shows one id to approve).
    assert_eq!(pairing_request(&gw, &key), rid);
    let list = json_out(&devices_cli(&gw, &["list", "--json"]));
    let pending = list["pending"].as_array().expect("pending");
    assert_eq!(pending.len(), 1, "{list:#}");
    assert_eq!(pending[0]["requestId"], json!(rid));
    assert_eq!(pending[0]["deviceId"], json!(key.device_id()));
    assert_eq!(pending[0]["clientId"], "openclaw-control-ui");
    assert_eq!(pending[0]["clientMode"], "webchat");
    assert_eq!(pending[0]["isRepair"], false);
    assert_eq!(list["paired"], json!([]));
    assert!(!list.to_string().contains(&gw.token()), "no secret in the list");

    // Previewing never approves.
    let preview = devices_cli(&gw, &["approve"]);
    assert_eq!(preview.code, Some(1), "{preview:?}");
    assert!(preview.stdout.contains(&rid), "preview names the request: {}", preview.stdout);
    assert_eq!(json_out(&devices_cli(&gw, &["list", "--json"]))["pending"].as_array().map(Vec::len), Some(1));

    let approved = json_out(&devices_cli(&gw, &["approve", &rid, "--json"]));
    assert_eq!(approved["requestId"], json!(rid));
    assert_eq!(approved["device"]["deviceId"], json!(key.device_id()));
    assert_eq!(approved["device"]["approvedVia"], "owner");
    assert!(approved["device"]["tokens"][0].get("token").is_none(), "tokens are never listed: {approved}");
    rt.block_on(watcher.request("health", None, false, Duration::from_secs(5))).expect("watcher health");
    let requested = events_named(&watcher.events, "device.pair.requested");
    assert!(!requested.is_empty() && requested.iter().all(|e| e["requestId"] == json!(rid)), "{requested:?}");
    let resolved = events_named(&watcher.events, "device.pair.resolved");
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["decision"], "approved");
    assert_eq!(resolved[0]["deviceId"], json!(key.device_id()));

    // Now the same device connects and gets a device token …
    let (hello, ws) = ui_connect(gw.addr(), "/", &key, &secret(&gw), None).hello();
    let token = hello["auth"]["deviceToken"].as_str().expect("hello-ok.auth.deviceToken").to_string();
    assert_eq!(hello["auth"]["role"], "operator");
    drop(ws);
    // … which works alone (a second tab without the shared secret).
    let (hello2, _ws2) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(token.clone()), None).hello();
    assert_eq!(hello2["auth"]["deviceToken"], json!(token));
    let scopes: Vec<&str> = hello2["auth"]["scopes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(scopes.contains(&"operator.write") && scopes.contains(&"operator.admin"), "{hello2}");
    // A wrong device token is refused with the reference's code.
    let (err, _) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken("not-the-token".into()), None).rejected();
    assert_eq!(err["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH", "{err}");
}

#[test]
fn reject_drops_the_request_and_unknown_ids_are_named() {
    let gw = Gateway::builder().config(NO_AUTO_APPROVE).start();
    let key = DeviceKey::random();
    let rid = pairing_request(&gw, &key);
    let rejected = json_out(&devices_cli(&gw, &["reject", &rid, "--json"]));
    assert_eq!(rejected, json!({"requestId": rid, "deviceId": key.device_id()}));
    assert_eq!(json_out(&devices_cli(&gw, &["list", "--json"])), json!({"pending": [], "paired": []}));

    let out = devices_cli(&gw, &["reject", &rid, "--json"]);
    assert_eq!(out.code, Some(1));
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON error");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST");
    assert_eq!(v["error"]["message"], "unknown requestId");
    let out = devices_cli(&gw, &["approve", "no-such-request", "--json"]);
    assert_eq!(out.code, Some(1));
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON error");
    assert_eq!(v["error"]["message"], "device pairing approval denied");
    let out = devices_cli(&gw, &["remove", "no-such-device", "--json"]);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("JSON error");
    assert_eq!(v["error"]["message"], "unknown deviceId");
    // A rejected device asks again with a new request.
    assert_ne!(pairing_request(&gw, &key), rid);
}

#[test]
fn device_tokens_survive_a_restart_and_removal_closes_live_sockets_4001() {
    let home = Arc::new(TempDir::new("pairing-home"));
    let gw = Gateway::builder().home(home.clone()).config(NO_AUTO_APPROVE).start();
    let key = DeviceKey::random();
    let rid = pairing_request(&gw, &key);
    json_out(&devices_cli(&gw, &["approve", &rid, "--json"]));
    let (hello, ws) = ui_connect(gw.addr(), "/", &key, &secret(&gw), None).hello();
    let token = hello["auth"]["deviceToken"].as_str().unwrap().to_string();
    drop(ws);
    let token_arg = gw.token();
    drop(gw);

    let gw = Gateway::builder().home(home.clone()).token(token_arg).config(NO_AUTO_APPROVE).start();
    let (_, mut live) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(token.clone()), None).hello();
    let list = json_out(&devices_cli(&gw, &["list", "--json"]));
    assert_eq!(list["paired"][0]["deviceId"], json!(key.device_id()), "{list:#}");
    assert_eq!(list["paired"][0]["connected"], true, "{list:#}");

    let removed = json_out(&devices_cli(&gw, &["remove", &key.device_id(), "--json"]));
    assert_eq!(removed, json!({"deviceId": key.device_id()}));
    assert_eq!(wait_close(&mut live, Duration::from_secs(5)), Some((4001, "device removed".to_string())));
    // The token is gone: the device is a stranger again.
    let (err, _) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(token), None).rejected();
    assert_eq!(err["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH", "{err}");
}

#[test]
fn local_devices_pair_silently_by_default() {
    let gw = Gateway::start();
    let key = DeviceKey::random();
    let (hello, _ws) = ui_connect(gw.addr(), "/", &key, &secret(&gw), None).hello();
    assert!(hello["auth"]["deviceToken"].as_str().is_some_and(|t| t.len() >= 32), "{hello}");
    assert_eq!(hello["auth"]["recoveryMigrationAllowed"], true);
    let list = json_out(&devices_cli(&gw, &["list", "--json"]));
    assert_eq!(list["paired"][0]["deviceId"], json!(key.device_id()), "{list:#}");
    assert_eq!(list["pending"], json!([]));
}

/// The real OpenClaw CLI manages our pairing requests unchanged.
#[test]
fn openclaw_cli_lists_and_approves_our_requests() {
    let gw = Gateway::builder().config(NO_AUTO_APPROVE).start();
    let key = DeviceKey::random();
    let rid = pairing_request(&gw, &key);
    let url = gw.url();
    let token = gw.token();
    let out = openclaw(&["devices", "list", "--json", "--url", &url, "--token", &token], Duration::from_secs(90));
    assert!(out.success(), "openclaw devices list: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("openclaw devices list --json");
    assert_eq!(v["pending"][0]["requestId"], json!(rid), "{v:#}");
    let out = openclaw(&["devices", "approve", &rid, "--json", "--url", &url, "--token", &token], Duration::from_secs(90));
    assert!(out.success(), "openclaw devices approve: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("openclaw devices approve --json");
    assert_eq!(v["device"]["deviceId"], json!(key.device_id()), "{v:#}");
    let (hello, _ws) = ui_connect(gw.addr(), "/", &key, &secret(&gw), None).hello();
    assert!(hello["auth"]["deviceToken"].is_string());
}

/// A silent local approval is on disk before `hello-ok` carries its device token: killed with
/// SIGKILL right after the handshake, the gateway still knows the token when it comes back
/// (so is a pending request before `NOT_PAIRED` names it).
#[test]
fn pairings_made_by_the_handshake_survive_kill_9_right_after_the_answer() {
    let home = Arc::new(TempDir::new("pairing-kill9"));
    let gw = Gateway::builder().home(home.clone()).start();
    let token_arg = gw.token();
    let key = DeviceKey::random();
    let (hello, _ws) = ui_connect(gw.addr(), "/", &key, &secret(&gw), None).hello();
    let device_token = hello["auth"]["deviceToken"].as_str().expect("device token").to_string();
    gw.signal(libc::SIGKILL);
    drop(gw);

    let gw = Gateway::builder().home(home.clone()).token(token_arg.clone()).config(NO_AUTO_APPROVE).start();
    let (hello, _ws) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(device_token.clone()), None).hello();
    assert_eq!(hello["auth"]["deviceToken"], json!(device_token));
    // A request made by the handshake is on disk before NOT_PAIRED names it.
    let stranger = DeviceKey::random();
    let rid = pairing_request(&gw, &stranger);
    gw.signal(libc::SIGKILL);
    drop(gw);
    let gw = Gateway::builder().home(home).token(token_arg).config(NO_AUTO_APPROVE).start();
    let list = json_out(&devices_cli(&gw, &["list", "--json"]));
    assert_eq!(list["pending"][0]["requestId"], json!(rid), "{list:#}");
}

/// Send a request on a raw device socket and read until its response (events skipped).
fn raw_call(ws: &mut clawgate_tests::rawws::RawWs, id: &str, method: &str, params: Value) -> Value {
    ws.send_text(&json!({"type": "req", "id": id, "method": method, "params": params}).to_string()).expect("send");
    loop {
        let f = clawgate_tests::device::next_json(ws, Duration::from_secs(10));
        if f["type"] == "res" && f["id"] == id {
            return f;
        }
    }
}

/// `device.token.rotate|revoke` and `device.pair.rename` (issue 13 item 6; reference captures in
/// testdata/captures/devices-token/): a device rotating its own token gets it in-band and its
/// socket closes after the answer; the old token is refused; a revoke (from `clawgate devices
/// revoke`) closes the live socket and stops the token while the device stays listed; the gateway
/// secret pairs it again with a new token; a cross-device rotate withholds the token; a rename
/// reaches pairing-scoped clients; the real OpenClaw CLI drives the same methods.
#[test]
fn device_tokens_rotate_revoke_and_rename() {
    let gw = Gateway::start();
    let key = DeviceKey::random();
    let id = key.device_id();
    let (hello, ws) = ui_connect(gw.addr(), "/", &key, &secret(&gw), None).hello();
    let t0 = hello["auth"]["deviceToken"].as_str().unwrap().to_string();
    drop(ws);

    // The device rotates its own token while connected with it: the token comes back in-band,
    // then its socket closes (it holds the old one).
    let (_, mut own) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(t0.clone()), None).hello();
    let res = raw_call(&mut own, "r1", "device.token.rotate", json!({"deviceId": id, "role": "operator"}));
    assert_eq!(res["ok"], true, "{res}");
    let p = &res["payload"];
    assert_eq!(p["tokenDelivery"], "in-band", "{p}");
    let t1 = p["token"].as_str().expect("the new token, to the device itself").to_string();
    assert_ne!(t1, t0);
    assert!(p["rotatedAtMs"].as_u64().is_some());
    assert!(p["scopes"].as_array().is_some_and(|s| s.iter().any(|x| x == "operator.read")), "{p}");
    assert_eq!(wait_close(&mut own, Duration::from_secs(5)), Some((4001, "device removed".to_string())));
    let (err, close) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(t0), None).rejected();
    assert_eq!(err["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH", "the old token is refused: {err}");
    assert_eq!(close.map(|c| c.0), Some(1008));

    // An operator revokes it with clawgate's CLI: the live socket closes, the token stops working.
    let (_, mut live) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(t1.clone()), None).hello();
    let revoked = json_out(&devices_cli(&gw, &["revoke", "--device", &id, "--json"]));
    assert_eq!((revoked["deviceId"].clone(), revoked["role"].clone()), (json!(id), json!("operator")), "{revoked}");
    assert_eq!(wait_close(&mut live, Duration::from_secs(5)), Some((4001, "device removed".to_string())));
    let (err, _) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(t1.clone()), None).rejected();
    assert_eq!(err["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH", "{err}");
    let list = json_out(&devices_cli(&gw, &["list", "--json"]));
    let dev = list["paired"].as_array().unwrap().iter().find(|d| d["deviceId"] == json!(id)).expect("still listed").clone();
    assert_eq!(dev["tokens"][0]["revokedAtMs"], revoked["revokedAtMs"], "{dev}");
    // Revoking again is fine (idempotent).
    json_out(&devices_cli(&gw, &["revoke", "--device", &id, "--json"]));

    // The gateway secret pairs it again, with a new token.
    let (hello, ws) = ui_connect(gw.addr(), "/", &key, &secret(&gw), None).hello();
    let t2 = hello["auth"]["deviceToken"].as_str().unwrap().to_string();
    assert!(t2 != t1 && !t2.is_empty());
    drop(ws);

    // Rename, seen by a pairing-scoped watcher and in the list.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let mut watcher = rt.block_on(connect_cli(&gw.url(), &gw.token(), &["operator.pairing"])).expect("watcher");
    let renamed = json_out(&devices_cli(&gw, &["rename", "--device", &id, "--label", "  my laptop  ", "--json"]));
    assert_eq!(renamed, json!({"deviceId": id, "label": "my laptop"}));
    let list = rt.block_on(watcher.request("device.pair.list", Some(json!({})), false, Duration::from_secs(10))).unwrap();
    assert_eq!(events_named(&watcher.events, "device.pair.changed"), vec![json!({})]);
    let dev = list.payload.unwrap()["paired"].as_array().unwrap().iter().find(|d| d["deviceId"] == json!(id)).unwrap().clone();
    assert_eq!(dev["operatorLabel"], "my laptop");
    let out = devices_cli(&gw, &["rename", "--device", &id, "--label", "   "]);
    assert!(!out.success() && out.stderr.contains("label required"), "{out:?}");

    // Another client rotates it (narrowed): the token is withheld; beyond the approval is refused.
    let rotated = json_out(&devices_cli(&gw, &["rotate", "--device", &id, "--scope", "operator.read", "--json"]));
    assert_eq!(rotated["tokenDelivery"], "withheld-cross-device", "{rotated}");
    assert!(rotated.get("token").is_none());
    assert_eq!(rotated["scopes"], json!(["operator.read"]));
    let (err, _) = ui_connect(gw.addr(), "/", &key, &UiAuth::DeviceToken(t2), None).rejected();
    assert_eq!(err["details"]["code"], "AUTH_DEVICE_TOKEN_MISMATCH", "{err}");
    let out = devices_cli(&gw, &["rotate", "--device", &id, "--scope", "operator.bogus"]);
    assert!(!out.success() && out.stderr.contains("device token rotation denied"), "{out:?}");
    let out = devices_cli(&gw, &["revoke", "--device", "0000", "--role", "node"]);
    assert!(!out.success() && out.stderr.contains("device token revocation denied"), "{out:?}");

    // The reference's CLI drives the same methods.
    let (url, token) = (gw.url(), gw.token());
    let out = openclaw(
        &["devices", "rotate", "--device", &id, "--role", "operator", "--json", "--url", &url, "--token", &token],
        Duration::from_secs(90),
    );
    assert!(out.success(), "openclaw devices rotate: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("openclaw devices rotate --json");
    assert_eq!(v["deviceId"], json!(id), "{v}");
    let out = openclaw(
        &["devices", "revoke", "--device", &id, "--role", "operator", "--json", "--url", &url, "--token", &token],
        Duration::from_secs(90),
    );
    assert!(out.success(), "openclaw devices revoke: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("openclaw devices revoke --json");
    assert!(v["revokedAtMs"].as_u64().is_some(), "{v}");
}
