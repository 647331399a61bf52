//! The official OpenClaw Control UI, unchanged, in headless Chromium against clawgate (issue 6;
//! control-ui.md §2.3 and its checklist). clawgate serves the UI from the reference package's
//! `dist/control-ui` (`gateway.controlUi.root`), with device signature checking on; the chat
//! goes to the loopback fake upstream (`fake-echo` answers `echo: <message> …`). Screenshots land
//! in `target/ui-screenshots/<binary>/<scenario>/`.

use std::time::Duration;

use clawgate_tests::browser::{control_ui_dir, run_ui, screenshot_dir};
use clawgate_tests::proxy::ForwardingProxy;
use clawgate_tests::upstream::FakeUpstream;
use clawgate_tests::ws::{IO_TIMEOUT, connect_cli};
use clawgate_tests::{Gateway, GatewayBuilder, clawgate_bin};
use serde_json::{Value, json};

const UI_TIMEOUT: Duration = Duration::from_secs(300);

fn gateway(up: &FakeUpstream, extra_gateway: Value) -> Gateway {
    let mut gw = json!({"mode": "local", "controlUi": {"root": control_ui_dir()}});
    if let (Some(g), Some(extra)) = (gw.as_object_mut(), extra_gateway.as_object()) {
        for (k, v) in extra {
            g.insert(k.clone(), v.clone());
        }
    }
    let cfg = json!({
        "gateway": gw,
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    });
    GatewayBuilder::new().config(cfg.to_string()).start()
}

/// Where the browser opens the UI.
struct Page {
    base: String,
    host_rules: Option<String>,
}

const REMOTE_NAME: &str = "gateway.example.test";

impl Page {
    /// The gateway itself, on loopback.
    fn direct(gw: &Gateway) -> Page {
        Page { base: format!("http://{}", gw.addr()), host_rules: None }
    }
    /// A public-looking name (mapped to 127.0.0.1 inside Chromium) and this port.
    fn remote(port: u16) -> Page {
        Page { base: format!("http://{REMOTE_NAME}:{port}"), host_rules: Some(format!("MAP {REMOTE_NAME} 127.0.0.1")) }
    }
    fn origin(&self) -> String {
        self.base.clone()
    }
    fn env<const N: usize>(&self, more: [(&'static str, String); N]) -> Vec<(&'static str, String)> {
        let mut env = vec![("GATEWAY_HTTP", self.base.clone())];
        if let Some(r) = &self.host_rules {
            env.push(("HOST_RESOLVER_RULES", r.clone()));
        }
        env.extend(more);
        env
    }
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Facts every scenario must show: no page errors, no CSP violations, contiguous event seqs.
fn assert_clean(r: &Value, log: &str, gw: &Gateway) {
    let ctx = format!("{r:#}\n--- ui.mjs log ---\n{log}\n--- gateway stderr ---\n{}", gw.stderr());
    assert_eq!(r["errors"], json!([]), "the browser run failed:\n{ctx}");
    assert_eq!(r["cspViolations"], json!([]), "CSP violations:\n{ctx}");
    for p in r["pages"].as_array().expect("pages") {
        assert_eq!(p["seqGaps"], 0, "an event seq gap makes the UI reconnect:\n{ctx}");
    }
}

#[test]
fn official_ui_connects_chats_and_a_second_tab_reconnects_with_the_device_token() {
    let up = FakeUpstream::start();
    let gw = gateway(&up, json!({}));
    let message = format!("hello from chromium {}", clawgate_tests::random_hex(4));
    let expect = format!("echo: {message}");
    let shots = screenshot_dir("chat");
    let (r, log) = run_ui(
        &[
            ("GATEWAY_HTTP", format!("http://{}", gw.addr())),
            ("GATEWAY_TOKEN", gw.token()),
            ("SCENARIO", "chat".into()),
            ("SCREENSHOTS", shots.display().to_string()),
            ("MESSAGE", message.clone()),
            ("EXPECT_REPLY", expect.clone()),
            // One turn of the fake provider: 11 prompt + 5 completion tokens.
            ("EXPECT_USAGE_TOKENS", "16".into()),
        ],
        UI_TIMEOUT,
    );
    assert_clean(&r, &log, &gw);
    assert_eq!(r["connected"], true, "{r:#}");
    assert_eq!(r["replyShown"], true, "the upstream's reply is on the page: {r:#}");
    assert_eq!(r["outputTokensShown"], true, "the recap counts the provider's output tokens: {r:#}");
    assert_eq!(r["stillWorking"], false, "\"Assistant is working...\" must go away after the run: {r:#}");
    assert_eq!(r["secondPageShowsHistory"], true, "{r:#}");
    let text = r["firstPageText"].as_str().unwrap_or_default();
    assert!(!text.contains("unknown method"), "no unknown-method banner on /chat/main: {text}");
    assert!(!text.contains("Models unavailable"), "hello-ok.snapshot.sessionDefaults reaches the model picker: {text}");

    // First tab: the `#token=` secret, sent as token and password, with a signed device.
    let first = &r["pages"][0];
    let c0 = &first["connects"][0];
    assert_eq!(strs(&c0["authKeys"]), ["password", "token"], "{first:#}");
    assert_eq!(
        (c0["client"].as_str(), c0["mode"].as_str(), c0["device"].as_bool()),
        (Some("openclaw-control-ui"), Some("webchat"), Some(true))
    );
    assert_eq!(first["sockets"], 1, "one socket for the whole first visit (no reconnects): {first:#}");
    // Second tab: no secret anywhere, only the device token stored from hello-ok.
    let second = &r["pages"][1];
    assert!(second["helloOk"].as_u64() >= Some(1), "{second:#}");
    for c in second["connects"].as_array().unwrap() {
        assert_eq!(strs(&c["authKeys"]), ["deviceToken"], "the second tab authenticates with the device token alone: {second:#}");
    }

    // The reply came from the upstream through the production gateway code.
    let asked = up.chat_requests().iter().any(|r| r.body.to_string().contains(&message));
    assert!(asked, "the upstream saw the browser's message");
    assert_eq!(r["logsLive"], true, "the Logs view shows a line written while it is open: {r:#}");
    let logs = r["logsText"].as_str().unwrap_or_default();
    assert!(!logs.contains("unknown method"), "no unknown-method banner on /logs: {logs}");
    let usage = r["usageText"].as_str().unwrap_or_default();
    assert_eq!(r["usageShown"], true, "the Usage view shows the turn's 16 tokens: {usage}");
    assert!(!usage.contains("unknown method"), "no unknown-method banner on /usage: {usage}");
    // The Debug view renders the gateway's own figures (status, health, lanes).
    let debug = r["debugText"].as_str().unwrap_or_default();
    assert!(!debug.contains("unknown method") && !debug.contains("Failed"), "the Debug view's snapshots load: {debug}");
    for figure in ["\"uptimeMs\"", "\"rssBytes\"", &format!("\"pid\": {}", gw.pid())] {
        assert!(debug.contains(figure), "the Debug view shows {figure}: {debug}");
    }
    for f in
        ["chat-1-connected.png", "chat-2-reply.png", "chat-3-second-tab.png", "chat-4-logs.png", "chat-5-usage.png", "chat-6-debug.png"]
    {
        assert!(shots.join(f).metadata().is_ok_and(|m| m.len() > 10_000), "screenshot {f} saved in {}", shots.display());
    }
}

/// The approve-this-browser flow: the page shows the request id, `clawgate devices approve`
/// runs, and the same page connects on its next retry (no reload). The page is opened at
/// `page` (the gateway, or a proxy in front of it).
fn pairing_flow(gw: &Gateway, page: &Page, scenario: &str) {
    let shots = screenshot_dir(scenario);
    let approve = json!([clawgate_bin(), "devices", "approve", "{id}", "--url", gw.url(), "--token", gw.token()]);
    let env = page.env([
        ("GATEWAY_TOKEN", gw.token()),
        ("SCENARIO", "pairing".to_string()),
        ("SCREENSHOTS", shots.display().to_string()),
        ("APPROVE_CMD", approve.to_string()),
    ]);
    let (r, log) = run_ui(&env, UI_TIMEOUT);
    assert_clean(&r, &log, gw);
    let text = r["approveScreenText"].as_str().unwrap_or_default();
    let rid = r["requestId"].as_str().expect("request id on the approve screen");
    assert!(text.contains(&format!("openclaw devices approve {rid}")), "the approve screen names the request: {text}");
    assert!(r["approveOutput"].as_str().unwrap_or_default().contains(rid), "{r:#}");
    assert_eq!(r["connected"], true, "{r:#}");
    let page = &r["pages"][0];
    assert_eq!(page["loads"], 1, "connected without a page reload: {page:#}");
    assert!(strs(&page["connectErrors"]).iter().all(|c| c == "PAIRING_REQUIRED"), "{page:#}");
    assert!(!strs(&page["connectErrors"]).is_empty(), "{page:#}");
    assert!(page["helloOk"].as_u64() >= Some(1), "{page:#}");
    for f in ["pairing-1-approve-this-browser.png", "pairing-2-connected-after-approval.png"] {
        assert!(shots.join(f).metadata().is_ok_and(|m| m.len() > 10_000), "screenshot {f} saved in {}", shots.display());
    }
}

#[test]
fn a_browser_that_is_not_auto_approved_waits_and_cli_approval_lets_it_in_without_a_reload() {
    let up = FakeUpstream::start();
    // The reference's own scenario 06: a loopback browser with local auto-approval turned off.
    let gw = gateway(&up, json!({"nodes": {"pairing": {"autoApproveLocal": false}}}));
    pairing_flow(&gw, &Page::direct(&gw), "pairing");
}

/// A browser on another machine, behind a trusted reverse proxy. Tests bind loopback only, so:
/// the page is opened as `http://gateway.example.test:<proxy port>` (Chromium maps the name to
/// 127.0.0.1, no DNS) and a real proxy on loopback adds `X-Forwarded-For: 203.0.113.7`. Such a
/// browser is never auto-approved (whatever `autoApproveLocal` says) and its origin must be
/// allowlisted.
#[test]
fn a_remote_browser_behind_a_trusted_proxy_needs_approval() {
    let up = FakeUpstream::start();
    let listener = ForwardingProxy::bind();
    let page = Page::remote(listener.local_addr().unwrap().port());
    let cfg = json!({
        "gateway": {"mode": "local", "trustedProxies": ["127.0.0.1"],
                    "controlUi": {"root": control_ui_dir(), "allowedOrigins": [page.origin()]}},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
        "agents": {"defaults": {"model": {"primary": "fake/fake-echo"}}},
    });
    let gw = GatewayBuilder::new().config(cfg.to_string()).start();
    let _proxy = ForwardingProxy::start(listener, gw.addr(), "203.0.113.7");
    pairing_flow(&gw, &page, "pairing-remote");
}

/// The refusals the UI turns into screens (control-ui.md checklist 19): no secret → the login
/// gate; a remote page whose origin is not allowlisted → "Browser origin not allowed".
#[test]
fn refusals_reach_the_right_screens() {
    let up = FakeUpstream::start();
    let shown = |page: &Page, token: String, expect: &str, scenario: &str| {
        let shots = screenshot_dir(scenario);
        let env = page.env([
            ("GATEWAY_TOKEN", token),
            ("SCENARIO", "screen".to_string()),
            ("SCREENSHOTS", shots.display().to_string()),
            ("EXPECT_TEXT", expect.to_string()),
        ]);
        let (r, log) = run_ui(&env, UI_TIMEOUT);
        assert_eq!(r["errors"], json!([]), "{expect}: {r:#}\n{log}");
        assert_eq!(r["shown"], true, "{r:#}");
        r
    };
    let gw = gateway(&up, json!({}));
    let r = shown(&Page::direct(&gw), String::new(), "This Gateway expects its token", "login-gate");
    assert!(strs(&r["pages"][0]["connectErrors"]).contains(&"AUTH_TOKEN_MISSING".to_string()), "{r:#}");

    // The same remote browser, its origin not allowlisted.
    let listener = ForwardingProxy::bind();
    let cfg = json!({
        "gateway": {"mode": "local", "trustedProxies": ["127.0.0.1"], "controlUi": {"root": control_ui_dir()}},
        "models": {"providers": {"fake": up.provider_config("fake-upstream-key")}},
    });
    let gw = GatewayBuilder::new().config(cfg.to_string()).start();
    let page = Page::remote(listener.local_addr().unwrap().port());
    let _proxy = ForwardingProxy::start(listener, gw.addr(), "203.0.113.7");
    let r = shown(&page, gw.token(), "Browser origin not allowed", "origin-not-allowed");
    assert!(strs(&r["pages"][0]["connectErrors"]).contains(&"CONTROL_UI_ORIGIN_NOT_ALLOWED".to_string()), "{r:#}");
}

/// Config editing in the official UI (issue 13 item 2): on Settings → Advanced the form renders
/// from clawgate's `config.schema`, a field edit auto-saves (`config.set`), the raw editor
/// (revealed) saves a hand edit; the file changes, secrets stay, and the gateway applies it.
#[test]
fn official_ui_edits_the_config_with_its_form_and_raw_editor() {
    let up = FakeUpstream::start();
    let gw = gateway(&up, json!({}));
    let shots = screenshot_dir("config");
    let renamed = format!("Renamed by the form {}", clawgate_tests::random_hex(3));
    let (r, log) = run_ui(
        &[
            ("GATEWAY_HTTP", format!("http://{}", gw.addr())),
            ("GATEWAY_TOKEN", gw.token()),
            ("SCENARIO", "config".into()),
            ("SCREENSHOTS", shots.display().to_string()),
            ("FORM_MODEL_NAME", renamed.clone()),
            ("RAW_FIND", "\"mode\": \"local\"".into()),
            ("RAW_REPLACE", "\"mode\": \"local\",\n    \"http\": {\"endpoints\": {\"chatCompletions\": {\"enabled\": false}}}".into()),
        ],
        UI_TIMEOUT,
    );
    assert_clean(&r, &log, &gw);
    assert_eq!(r["formSaved"], true, "the form's edit was saved with config.set: {r:#}");
    assert_eq!(r["rawSaved"], true, "the raw editor's save was accepted: {r:#}");
    assert_eq!(r["rawShowsFormEdit"], true, "the raw editor reads the file as saved by the form: {r:#}");
    assert_eq!(r["rawHadPlaceholder"], true, "the raw editor shows the provider key redacted: {r:#}");
    let form = r["formText"].as_str().unwrap_or_default();
    assert!(!form.contains("Schema unavailable") && !form.contains("unknown method"), "{form}");

    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    let on_disk = clawgate_core::config::file::parse_json5("cfg", &text).unwrap();
    assert_eq!(on_disk["models"]["providers"]["fake"]["models"][0]["name"], json!(renamed), "{text}");
    assert_eq!(on_disk["gateway"]["http"]["endpoints"]["chatCompletions"]["enabled"], false, "{text}");
    assert_eq!(on_disk["models"]["providers"]["fake"]["apiKey"], "fake-upstream-key", "the redacted key was restored: {text}");
    // The running gateway applied both saves through its reload path.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !gw.stderr().contains("chatCompletions") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = gw.stderr();
    assert!(err.contains("config hot reload applied") && err.contains("gateway.http.endpoints"), "{err}");
    let body = json!({"model": "fake/fake-echo", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let auth = format!("Bearer {}", gw.token());
    let resp = clawgate_tests::httpc::request(
        gw.addr(),
        "POST",
        "/v1/chat/completions",
        &[("Authorization", auth.as_str()), ("Content-Type", "application/json")],
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(resp.status, 404, "the raw editor's edit is live: chat completions are off");
    for f in ["config-1-form-saved.png", "config-2-raw-saved.png"] {
        assert!(shots.join(f).metadata().is_ok_and(|m| m.len() > 10_000), "screenshot {f} saved in {}", shots.display());
    }
}

/// Every view of the official UI's sidebar and Settings, against clawgate: no view gets an
/// "unknown method" answer or banner (issue 13 item 7; screenshots of each view are kept).
#[test]
fn every_sidebar_and_settings_view_loads_without_unknown_methods() {
    let up = FakeUpstream::start();
    let gw = gateway(&up, json!({}));
    let shots = screenshot_dir("walk");
    let (r, log) = run_ui(
        &[
            ("GATEWAY_HTTP", format!("http://{}", gw.addr())),
            ("GATEWAY_TOKEN", gw.token()),
            ("SCENARIO", "walk".into()),
            ("SCREENSHOTS", shots.display().to_string()),
        ],
        UI_TIMEOUT,
    );
    assert_clean(&r, &log, &gw);
    let views = r["views"].as_array().cloned().unwrap_or_default();
    assert!(views.len() >= 20, "the walk found the sidebar and settings views: {r:#}");
    let failing: Vec<&Value> = views
        .iter()
        .filter(|v| {
            v["unknownMethods"].as_array().is_some_and(|a| !a.is_empty()) || v["unknownBanner"] == true || !v["malformed"].is_null()
        })
        .collect();
    assert!(failing.is_empty(), "views with unknown methods: {failing:#?}");
}

/// One call on a fresh operator (admin) connection: the answer's payload.
fn rpc(gw: &Gateway, method: &str, params: Value) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let mut c = connect_cli(&gw.url(), &gw.token(), &["operator.read", "operator.write", "operator.admin"]).await.expect("connect");
        let f = c.request(method, Some(params), false, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("{method}: {e}"));
        assert!(f.ok, "{method}: {:?}", f.error);
        f.payload.unwrap_or_default()
    })
}

/// The Automations view (cron, issue 14): it lists a job made over RPC, creates one from its
/// own form (an agent turn in an isolated session every 3 s), and shows that job's runs — which
/// really ran on the gateway, against the provider.
#[test]
fn the_automations_view_lists_creates_and_shows_runs_of_jobs() {
    let up = FakeUpstream::start();
    let gw = gateway(&up, json!({}));
    let nightly = rpc(
        &gw,
        "cron.add",
        json!({"name": "nightly report", "schedule": {"kind": "cron", "expr": "0 3 * * *"}, "sessionTarget": "isolated",
            "wakeMode": "now", "payload": {"kind": "agentTurn", "message": "report"}}),
    );
    let tag = clawgate_tests::random_hex(3);
    let name = format!("form job {tag}");
    let message = format!("ping from the automations form {tag}");
    let shots = screenshot_dir("automations");
    let (r, log) = run_ui(
        &[
            ("GATEWAY_HTTP", format!("http://{}", gw.addr())),
            ("GATEWAY_TOKEN", gw.token()),
            ("SCENARIO", "automations".into()),
            ("SCREENSHOTS", shots.display().to_string()),
            ("EXPECT_JOB", "nightly report".into()),
            ("NEW_JOB", name.clone()),
            ("JOB_MESSAGE", message.clone()),
            ("EVERY_SECONDS", "3".into()),
            // fake-echo answers `echo: <message> (messages: 1)`: the run's summary.
            ("EXPECT_SUMMARY", format!("echo: {message}")),
        ],
        UI_TIMEOUT,
    );
    assert_clean(&r, &log, &gw);
    for page in r["pages"].as_array().expect("pages") {
        assert_eq!(page["unknownMethods"], json!([]), "{page:#}");
        let failed: Vec<(&String, &Value)> = page["calls"]
            .as_object()
            .map(|calls| calls.iter().filter(|(_, c)| c["failed"].as_array().is_some_and(|f| !f.is_empty())).collect())
            .unwrap_or_default();
        assert!(failed.is_empty(), "calls the gateway refused: {failed:#?}");
    }
    assert!(r["pages"][0]["calls"]["cron.runs"]["ok"].as_u64() >= Some(1), "the view read the runs: {r:#}");
    assert_eq!(r["connected"], true, "{r:#}");
    assert_eq!(r["jobListed"], true, "the job made over RPC is listed: {r:#}");
    assert_eq!(r["formSummaryShown"], true, "the form reads back the 3 s interval: {r:#}");
    assert_eq!(r["created"], true, "the form's cron.add was accepted: {r:#}");
    assert_eq!(r["newJobListed"], true, "{r:#}");
    assert_eq!(r["lastRunShown"], true, "the list shows the new job's last run as OK: {r:#}");
    assert_eq!(r["runsShown"], true, "Run history shows an OK run with the reply: {r:#}");
    assert_eq!(r["jobPageShowsSchedule"], true, "the job's page shows `Every 3s`: {r:#}");
    assert_eq!(r["jobPromptValue"], json!(message), "the job's page shows its prompt: {r:#}");
    assert_eq!(r["jobRunsShown"], true, "the job's own Run history shows the run: {r:#}");
    let list = r["listText"].as_str().unwrap_or_default();
    assert!(list.contains("Cron 0 3 * * *") && !list.contains("unknown method"), "{list}");

    // On the gateway: the job as the form made it, and its runs.
    let jobs = rpc(&gw, "cron.list", json!({"includeDisabled": true}))["jobs"].as_array().cloned().unwrap_or_default();
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    let job = jobs.iter().find(|j| j["name"] == name.as_str()).unwrap_or_else(|| panic!("no job {name}: {jobs:#?}"));
    assert_eq!(job["schedule"]["kind"], "every", "{job:#}");
    assert_eq!(job["schedule"]["everyMs"], 3_000, "{job:#}");
    assert_eq!(job["sessionTarget"], "isolated", "{job:#}");
    assert_eq!(job["payload"], json!({"kind": "agentTurn", "message": message}), "{job:#}");
    assert_eq!((job["enabled"].clone(), job["agentId"].clone()), (json!(true), json!("main")), "{job:#}");
    assert_eq!(job["delivery"]["mode"], "none", "{job:#}");
    let id = job["id"].as_str().expect("job id");
    let runs = rpc(&gw, "cron.runs", json!({"id": id, "limit": 200}))["entries"].as_array().cloned().unwrap_or_default();
    let ok = runs.iter().find(|e| e["status"] == "ok").unwrap_or_else(|| panic!("no ok run: {runs:#?}"));
    assert!(ok["summary"].as_str().unwrap_or_default().contains(&format!("echo: {message}")), "{ok:#}");
    assert!(ok["sessionKey"].as_str().unwrap_or_default().starts_with(&format!("agent:main:cron:{id}:run:")), "{ok:#}");
    assert!(up.chat_requests().iter().any(|q| q.body.to_string().contains(&message)), "the provider got the job's message");
    let nightly_id = nightly["id"].as_str().expect("nightly id");
    let nightly_runs = rpc(&gw, "cron.runs", json!({"id": nightly_id}))["entries"].clone();
    assert_eq!(nightly_runs, json!([]), "the nightly job did not run");
    for f in [
        "automations-1-list.png",
        "automations-2-form.png",
        "automations-3-created.png",
        "automations-4-list-last-run.png",
        "automations-5-run-history.png",
        "automations-6-job-settings.png",
        "automations-7-job-run-history.png",
    ] {
        assert!(shots.join(f).metadata().is_ok_and(|m| m.len() > 10_000), "screenshot {f} saved in {}", shots.display());
    }
}

/// Settings › Secrets (issue 16, the team secret store): the page lists an entry set over RPC,
/// adds a credential from its own dialog as a protected secret, and never shows its value; the
/// store (read by `clawgate secrets store list`) holds it as a secret.
#[test]
fn the_secrets_view_lists_and_adds_store_entries() {
    let up = FakeUpstream::start();
    let gw = gateway(&up, json!({}));
    rpc(&gw, "secrets.store.set", json!({"name": "PRESET_URL", "value": "https://preset.example.test", "kind": "env"}));
    let shots = screenshot_dir("secrets");
    let value = format!("sk-from-the-ui-{}", clawgate_tests::random_hex(8));
    let (r, log) = run_ui(
        &[
            ("GATEWAY_HTTP", format!("http://{}", gw.addr())),
            ("GATEWAY_TOKEN", gw.token()),
            ("SCENARIO", "secrets".into()),
            ("SCREENSHOTS", shots.display().to_string()),
            ("EXPECT_ENTRY", "PRESET_URL".into()),
            ("NEW_SECRET", "UI_ADDED_API_KEY".into()),
            ("SECRET_VALUE", value.clone()),
        ],
        UI_TIMEOUT,
    );
    assert_clean(&r, &log, &gw);
    assert_eq!(r["entryListed"], true, "{r:#}");
    assert_eq!(r["setAnswered"], true, "{r:#}");
    assert_eq!(r["savedNotice"], true, "{r:#}");
    assert_eq!(r["valueShown"], false, "the page never shows a secret's value: {r:#}");
    let list = rpc(&gw, "secrets.store.list", json!({}));
    let added = list["entries"].as_array().unwrap().iter().find(|e| e["name"] == "UI_ADDED_API_KEY").cloned();
    assert_eq!(added.as_ref().map(|e| e["kind"].clone()), Some(json!("secret")), "{list}");
    let out = clawgate_tests::run_command(
        std::process::Command::new(clawgate_bin())
            .args(["secrets", "store", "list", "--plain"])
            .env("OPENCLAW_STATE_DIR", gw.home_path().join("state"))
            .env("HOME", gw.home_path()),
        Duration::from_secs(30),
    );
    assert!(out.stdout.contains("UI_ADDED_API_KEY\tsecret\t"), "{out:?}");
    assert!(!gw.stderr().contains(&value), "a secret reached the log");
    for f in ["secrets-1-listed.png", "secrets-3-saved.png"] {
        assert!(shots.join(f).metadata().is_ok_and(|m| m.len() > 10_000), "screenshot {f} saved in {}", shots.display());
    }
}
