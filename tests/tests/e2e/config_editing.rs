//! Config editing from the Control UI and the CLI (operator §2): `config.schema`,
//! `config.schema.lookup` and `config.set` against a real gateway with a real config file — the
//! raw editor's full replace with the `config.get` hash, redacted secrets restored, the file
//! written atomically, `config.changed` told to readers and the edit applied by the reload path.

use std::time::{Duration, Instant};

use clawgate_core::config::file::{file_hash, parse_json5};
use clawgate_driver::client::Client;
use clawgate_tests::cfgfile::RELOAD_TIMEOUT;
use clawgate_tests::ws::{IO_TIMEOUT, call_health, connect_cli, events_named};
use clawgate_tests::{Gateway, GatewayBuilder};
use clawgate_tokio::Tokio;
use serde_json::{Value, json};

const TOKEN: &str = "tok-config-editing-0123456789";
const PROVIDER_KEY: &str = "sk-provider-secret-4242";

fn start() -> Gateway {
    let text = format!(
        "{{\n  // the operator's comment\n  gateway: {{mode: \"local\", port: {{{{PORT}}}}, auth: {{mode: \"token\", token: \"{TOKEN}\"}}}},\n  models: {{providers: {{fake: {{baseUrl: \"http://127.0.0.1:9/v1\", api: \"openai-completions\", apiKey: \"{PROVIDER_KEY}\", models: [{{id: \"echo-1\", name: \"Echo\"}}]}}}}}},\n  channels: {{telegram: {{enabled: false}}}},\n}}\n"
    );
    GatewayBuilder::new().no_token().port_from_config().config(&text).start()
}

async fn connect(gw: &Gateway, scopes: &[&str]) -> Client<Tokio> {
    let mut c = connect_cli(&gw.url(), TOKEN, scopes).await.expect("connect");
    call_health(&mut c).await.expect("health");
    c
}

async fn rpc(c: &mut Client<Tokio>, method: &str, params: Value) -> Value {
    let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
    json!({"ok": f.ok, "payload": f.payload, "error": f.error.map(|e| serde_json::to_value(e).unwrap())})
}

fn error_message(res: &Value) -> &str {
    assert_eq!(res["ok"], false, "{res}");
    res["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_editor_save_writes_the_file_restores_secrets_and_reloads() {
    let gw = start();
    let path = gw.config_path();
    let mut admin = connect(&gw, &["operator.admin"]).await;
    let mut reader = connect(&gw, &["operator.read"]).await;

    // What the raw editor starts from: `raw` and `hash`, secrets redacted.
    let got = rpc(&mut admin, "config.get", json!({})).await;
    let raw = got["payload"]["raw"].as_str().expect("config.get carries raw").to_string();
    let hash = got["payload"]["hash"].as_str().expect("config.get carries hash").to_string();
    assert_eq!(hash, file_hash(&std::fs::read(&path).unwrap()));
    assert!(!raw.contains(PROVIDER_KEY) && !raw.contains(TOKEN), "config.get shows no secret: {raw}");

    // The operator edits one value and saves; the redacted placeholders go back as they came.
    let mut edited = parse_json5("raw", &raw).unwrap();
    edited["gateway"]["http"] = json!({"endpoints": {"chatCompletions": {"enabled": false}}});
    let res = rpc(&mut admin, "config.set", json!({"raw": serde_json::to_string_pretty(&edited).unwrap(), "baseHash": hash})).await;
    assert_eq!(res["ok"], true, "{res}");
    let bytes = std::fs::read(&path).unwrap();
    let on_disk = parse_json5("file", &String::from_utf8_lossy(&bytes)).unwrap();
    assert_eq!(res["payload"]["hash"].as_str(), Some(file_hash(&bytes).as_str()), "the answer names the new file's hash");
    assert_eq!(res["payload"]["path"].as_str(), Some(path.to_str().unwrap()));
    assert_eq!(on_disk["models"]["providers"]["fake"]["apiKey"], PROVIDER_KEY, "the redacted secret is restored, not overwritten");
    assert_eq!(on_disk["gateway"]["auth"]["token"], TOKEN);
    assert_eq!(on_disk["gateway"]["http"]["endpoints"]["chatCompletions"]["enabled"], false);
    assert_eq!(on_disk["channels"], json!({"telegram": {"enabled": false}}), "keys clawgate does not read are kept");
    let answered = res["payload"]["config"].to_string();
    assert!(!answered.contains(PROVIDER_KEY) && !answered.contains(TOKEN), "the answer redacts secrets: {answered}");
    assert_eq!(res["payload"]["config"]["gateway"]["http"]["endpoints"]["chatCompletions"]["enabled"], false);
    let dir = path.parent().unwrap();
    let leftovers: Vec<_> =
        std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp")).collect();
    assert!(leftovers.is_empty(), "the atomic write leaves no temp file: {leftovers:?}");

    // Readers are told.
    call_health(&mut reader).await.unwrap();
    let changed = events_named(&reader.events, "config.changed");
    assert_eq!(changed.len(), 1, "{:?}", reader.events);
    assert_eq!(changed[0]["hash"].as_str(), Some(file_hash(&bytes).as_str()));
    assert_eq!(changed[0]["path"].as_str(), Some(path.to_str().unwrap()));
    assert!(changed[0]["ts"].as_u64().is_some());

    // The reload path applies it: /v1/chat/completions is now off.
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        let got = rpc(&mut admin, "config.get", json!({})).await;
        if got["payload"]["hash"].as_str() != Some(&file_hash(&bytes)) {
            assert!(Instant::now() < deadline, "the saved config was never applied:\n{}", gw.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        break;
    }
    let status = ureq_post(&gw, "/v1/chat/completions");
    assert_eq!(status, 404, "the disabled endpoint is gone after the reload");
    call_health(&mut admin).await.expect("a hot edit keeps the client");
}

/// POST a chat body with the token; the HTTP status.
fn ureq_post(gw: &Gateway, path: &str) -> u16 {
    let body = json!({"model": "fake/echo-1", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let auth = format!("Bearer {TOKEN}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    clawgate_tests::httpc::request(gw.addr(), "POST", path, &headers, body.as_bytes(), IO_TIMEOUT).expect("POST").status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_refuses_bad_writes_with_the_reference_wording_and_writes_nothing() {
    let gw = start();
    let path = gw.config_path();
    let before = std::fs::read(&path).unwrap();
    let mut admin = connect(&gw, &["operator.admin"]).await;
    let hash = file_hash(&before);
    let cases = [
        (json!({"raw": "{ gateway: { mode: \"local\" } }"}), "config base hash required; re-run config.get and retry"),
        (
            json!({"raw": "{ gateway: { mode: \"local\" } }", "baseHash": "deadbeef"}),
            "config changed since last load; re-run config.get and retry",
        ),
        (json!({"raw": ""}), "invalid config.set params: at /raw: must not have fewer than 1 characters"),
        (json!({"raw": "{}", "baseHash": "x", "note": "n"}), "invalid config.set params: at root: unexpected property 'note'"),
    ];
    for (params, want) in cases {
        let res = rpc(&mut admin, "config.set", params.clone()).await;
        assert_eq!(error_message(&res), want, "{params}");
        assert_eq!(res["error"]["code"], "INVALID_REQUEST");
    }
    let res = rpc(&mut admin, "config.set", json!({"raw": "{ gateway: { mode: ", "baseHash": hash})).await;
    assert!(error_message(&res).starts_with("SyntaxError: JSON5: "), "{res}");
    assert!(error_message(&res).ends_with(" at 1:20"), "{res}");
    let res = rpc(&mut admin, "config.set", json!({"raw": "{ gateway: { mode: \"local\", port: \"notaport\" } }", "baseHash": hash})).await;
    assert!(error_message(&res).starts_with("invalid config: gateway.port: "), "{res}");
    assert_eq!(res["error"]["details"]["issues"][0]["path"], "gateway.port", "{res}");
    // A placeholder where no secret is stored cannot be restored.
    let res = rpc(
        &mut admin,
        "config.set",
        json!({"raw": "{ gateway: { mode: \"local\" }, hooks: { token: \"__OPENCLAW_REDACTED__\" } }", "baseHash": hash}),
    )
    .await;
    assert!(error_message(&res).starts_with("invalid config: hooks.token: "), "{res}");
    // Only admins write.
    let mut reader = connect(&gw, &["operator.read", "operator.write"]).await;
    let res = rpc(&mut reader, "config.set", json!({"raw": "{}", "baseHash": hash})).await;
    assert_eq!(error_message(&res), "missing scope: operator.admin");
    assert_eq!(std::fs::read(&path).unwrap(), before, "no refused write touched the file");
    call_health(&mut admin).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_lookup_describe_the_keys_clawgate_reads() {
    let gw = start();
    let mut reader = connect(&gw, &["operator.read"]).await;
    let res = rpc(&mut reader, "config.schema", json!({})).await;
    assert_eq!(res["ok"], true, "{res}");
    let p = &res["payload"];
    assert_eq!(p["schema"]["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(p["schema"]["properties"]["gateway"]["properties"]["port"]["type"], "integer");
    assert!(p["schema"]["properties"]["models"]["properties"]["providers"]["additionalProperties"]["properties"]["baseUrl"].is_object());
    assert_eq!(p["uiHints"]["gateway.auth.token"]["sensitive"], true);
    assert!(p["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(p["generatedAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(p["schema"]["properties"].get("channels").is_none(), "nothing clawgate does not read is described");
    let res = rpc(&mut reader, "config.schema", json!({"path": "gateway"})).await;
    assert_eq!(error_message(&res), "invalid config.schema params: at root: unexpected property 'path'");

    let res = rpc(&mut reader, "config.schema.lookup", json!({"path": "gateway"})).await;
    let p = &res["payload"];
    assert_eq!(p["path"], "gateway");
    assert!(p["schema"].get("properties").is_none(), "children are listed, not nested");
    let port = p["children"].as_array().unwrap().iter().find(|c| c["key"] == "port").expect("gateway.port child");
    assert_eq!(port["path"], "gateway.port");
    assert_eq!(port["type"], "integer");
    assert_eq!(port["required"], false);
    assert_eq!(port["hasChildren"], false);
    assert_eq!(port["reloadKind"], "restart");
    let res = rpc(&mut reader, "config.schema.lookup", json!({"path": "models.providers.*.baseUrl"})).await;
    assert_eq!(res["payload"]["reloadKind"], "hot");
    assert_eq!(res["payload"]["hintPath"], "models.providers.*.baseUrl");
    assert_eq!(res["payload"]["hint"]["label"], "Model Provider Base URL");
    let res = rpc(&mut reader, "config.schema.lookup", json!({"path": "nope.missing"})).await;
    assert_eq!(error_message(&res), "config schema path not found");
    let res = rpc(&mut reader, "config.schema.lookup", json!({"path": "a b"})).await;
    assert_eq!(error_message(&res), "invalid config.schema.lookup params: at /path: must match pattern \"^[A-Za-z0-9_./\\[\\]\\-*]+$\"");
    let res = rpc(&mut reader, "config.schema.lookup", json!({})).await;
    assert_eq!(error_message(&res), "invalid config.schema.lookup params: must have required property 'path'");
}
