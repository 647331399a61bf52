//! The official OpenClaw Control UI served from `gateway.controlUi.root` (spec control-ui.md §6,
//! checklist items 1–8 and 13; http.md §6.9, §6.10), end to end: a real gateway process, raw
//! HTTP requests, and a browser-style device paired over the WebSocket (on the base path).
//!
//! Two roots: the real `dist/control-ui` of the reference package (installed by
//! `tools/openclaw-ref`, from npm), and a small synthetic root in a temp dir for the
//! deterministic edge cases (missing files, traversal, a symlink out of the root, 304, 406, HEAD,
//! re-rendering after an edit).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use clawgate_conformance::device::{DeviceKey, Signed, payload};
use clawgate_conformance::model::SigVersion;
use clawgate_driver::client::Headers;
use clawgate_tests::httpc::{Resp, request};
use clawgate_tests::ws::{IO_TIMEOUT, next_json, raw_connect};
use clawgate_tests::{Gateway, GatewayBuilder, TempDir};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const T: Duration = Duration::from_secs(30);
const UI_PERMISSIONS: &str = "camera=(self), microphone=*, geolocation=*, clipboard-write=*";
const BASELINE_PERMISSIONS: &str = "camera=(), microphone=(self), geolocation=()";
const JS: &str = "application/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const HSTS: &str = "max-age=63072000";

/// The reference package's Control UI directory (installed on first use).
fn reference_ui_dir() -> PathBuf {
    clawgate_tests::openclaw::ensure_installed();
    let dir = clawgate_tests::openclaw::openclaw_ref_dir().join("node_modules/openclaw/dist/control-ui");
    assert!(dir.join("index.html").is_file(), "{} has no index.html", dir.display());
    dir
}

fn start(control_ui: Value, extra: Value) -> Gateway {
    let mut cfg = json!({"gateway": {"mode": "local", "controlUi": control_ui}});
    if let (Some(c), Value::Object(e)) = (cfg.as_object_mut(), extra) {
        for (k, v) in e {
            if k == "gateway" {
                if let (Some(g), Value::Object(ge)) = (c.get_mut("gateway").and_then(Value::as_object_mut), v) {
                    g.extend(ge);
                }
            } else {
                c.insert(k, v);
            }
        }
    }
    GatewayBuilder::new().config(serde_json::to_string_pretty(&cfg).unwrap()).start()
}

fn send(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(gw.addr(), method, path, headers, b"", T).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// `HEAD`: status and headers only (the response has no body, whatever its Content-Length).
fn head(gw: &Gateway, path: &str) -> Resp {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect_timeout(&gw.addr(), T).expect("connect");
    s.set_read_timeout(Some(T)).unwrap();
    write!(s, "HEAD {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", gw.addr()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).and_then(|x| x.parse().ok()).expect("status");
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let Some((k, v)) = h.trim_end().split_once(':') else { break };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut r, &mut rest);
    Resp { status, headers, body: rest }
}

fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Resp {
    send(gw, "GET", path, headers)
}

/// The Control UI security headers (§6.6).
fn ui_headers(r: &Resp, what: &str) {
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(r.header("permissions-policy"), Some(UI_PERMISSIONS), "{what}: {:?}", r.headers);
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    let csp = r.header("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.starts_with("default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none';"), "{what}: {csp}");
    assert!(csp.contains("connect-src 'self' ws: wss:"), "{what}: {csp}");
}

/// A router 404 (baseline headers, no Control UI headers).
fn plain_404(r: &Resp, what: &str) {
    assert_eq!((r.status, r.text().as_str(), r.header("content-type")), (404, "Not Found", Some(TEXT)), "{what}");
    assert_eq!(r.header("permissions-policy"), Some(BASELINE_PERMISSIONS), "{what}");
    assert!(r.header("content-security-policy").is_none(), "{what}");
}

/// A Control UI 404.
fn ui_404(r: &Resp, what: &str) {
    assert_eq!((r.status, r.text().as_str(), r.header("content-type")), (404, "Not Found", Some(TEXT)), "{what}");
    ui_headers(r, what);
}

/// `sha256-…` of every inline, non-empty `<script>` of `html` (independent of the gateway's code).
fn inline_hashes(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<script").map(|i| at + i) {
        let gt = i + lower[i..].find('>').expect("open tag end");
        let end = gt + lower[gt..].find("</script>").expect("close tag");
        let open = &lower[i..=gt];
        let content = &html[gt + 1..end];
        if !open.contains(" src=") && !content.is_empty() {
            out.push(format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(content.as_bytes()))));
        }
        at = end + "</script>".len();
    }
    out
}

/// The `'sha256-…'` sources of the CSP's `script-src`.
fn csp_hashes(r: &Resp) -> Vec<String> {
    let csp = r.header("content-security-policy").expect("CSP");
    let script = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src")).expect("script-src");
    script.split_whitespace().filter_map(|s| s.strip_prefix("'sha256-").map(|h| format!("sha256-{}", h.trim_end_matches('\'')))).collect()
}

/// The served shell: 200 HTML, rewritten (§6.2), CSP hashes of the served body (§6.6).
fn assert_shell(r: &Resp, base: &str, what: &str) -> String {
    assert_eq!((r.status, r.header("content-type"), r.header("cache-control")), (200, Some(HTML), Some("no-cache")), "{what}");
    ui_headers(r, what);
    let html = r.text();
    assert!(!html.contains("\"./assets/") && !html.contains("=\"./"), "{what}: relative URLs left");
    let html_tag = &html[html.find("<html").expect("<html")..][..=html[html.find("<html").unwrap()..].find('>').unwrap()];
    assert!(!html_tag.contains("data-openclaw-control-ui-build-id"), "{what}: {html_tag}");
    assert!(!html.to_ascii_lowercase().contains("<base "), "{what}: no <base> element");
    assert!(html.contains(&format!("data-openclaw-control-ui-base-path=\"{base}\"")), "{what}: no base path attribute");
    assert!(html.contains(&format!("src=\"{base}/assets/")), "{what}: module script not rewritten");
    let hashes = inline_hashes(&html);
    assert!(!hashes.is_empty(), "{what}: the shell has inline scripts");
    assert_eq!(csp_hashes(r), hashes, "{what}: CSP hashes are of the served HTML");
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("'wasm-unsafe-eval'") && csp.contains("http://127.0.0.1:* https://127.0.0.1:*"), "{what}: {csp}");
    html
}

/// The first `src="<base>/assets/index-*.js"` of the shell.
fn entry_script(html: &str, base: &str) -> String {
    let needle = format!("src=\"{base}/assets/index-");
    let i = html.find(&needle).expect("entry module script") + "src=\"".len();
    let end = i + html[i..].find('"').unwrap();
    html[i..end].to_string()
}

/// Pair a browser-style device the way the Control UI does (v2 signature, `openclaw-control-ui`
/// / `webchat`, same-origin `Origin`) over `ws://<addr><path>`, and return its device token.
async fn pair_control_ui_device(gw: &Gateway, path: &str) -> String {
    let url = format!("ws://{}{path}", gw.addr());
    let headers: Headers = vec![("Origin".into(), format!("http://{}", gw.addr()))];
    let mut sock = raw_connect(&url, &headers).await.unwrap_or_else(|e| panic!("upgrade on {path}: {e}"));
    let challenge = next_json(&mut sock, IO_TIMEOUT).await.expect("connect.challenge");
    assert_eq!(challenge["event"], "connect.challenge", "{challenge}");
    let nonce = challenge["payload"]["nonce"].as_str().expect("nonce").to_string();
    let ts = challenge["payload"]["ts"].as_u64().expect("ts");
    let key = DeviceKey::random();
    let scopes = ["operator.admin", "operator.read", "operator.write", "operator.approvals", "operator.questions", "operator.pairing"];
    let token = gw.token();
    let signed = Signed {
        device_id: &key.device_id(),
        client_id: "openclaw-control-ui",
        mode: "webchat",
        role: "operator",
        scopes: &scopes,
        signed_at: ts,
        token: &token,
        nonce: &nonce,
        platform: Some("Linux x86_64"),
        device_family: None,
    };
    let signature = clawgate_conformance::device::b64url(&key.sign(&payload(SigVersion::V2, &signed)));
    let connect = json!({"type": "req", "id": "1:connect", "method": "connect", "params": {
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "openclaw-control-ui", "version": "2026.9.6", "platform": "Linux x86_64", "mode": "webchat",
                   "instanceId": "0b7e1d2c-6a55-4f0e-9a39-3c1b5b0f6d11"},
        "role": "operator", "scopes": scopes,
        "device": {"id": key.device_id(), "publicKey": key.public_key(), "signature": signature, "signedAt": ts, "nonce": nonce},
        "caps": [], "auth": {"token": token, "password": token}, "locale": "en-US", "userAgent": "clawgate-tests",
    }});
    sock.send_text(connect.to_string()).await.expect("send connect");
    loop {
        let v = next_json(&mut sock, IO_TIMEOUT).await.unwrap_or_else(|e| panic!("hello-ok: {e}\n{}", gw.stderr()));
        if v["type"] == "res" {
            assert_eq!(v["ok"], true, "connect refused: {v}");
            let dt = v["payload"]["auth"]["deviceToken"].as_str().unwrap_or_else(|| panic!("no deviceToken in {v}")).to_string();
            sock.close(Some(1000), "bye").await;
            return dt;
        }
    }
}

fn config_json(gw: &Gateway, path: &str, bearer: Option<&str>) -> Resp {
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    get(gw, path, &headers)
}

fn assert_config(r: &Resp, base: &str, what: &str) {
    assert_eq!(
        (r.status, r.header("content-type"), r.header("cache-control")),
        (200, Some("application/json; charset=utf-8"), Some("no-cache")),
        "{what}: {}",
        r.text()
    );
    ui_headers(r, what);
    let v = r.json();
    assert_eq!(v["basePath"], base, "{what}");
    assert_eq!((v["assistantName"].as_str(), v["assistantAgentId"].as_str()), (Some("Assistant"), Some("main")), "{what}");
    assert!(v.get("serverBuildId").is_none(), "{what}: a configured root has no serverBuildId");
    for k in ["serverVersion", "embedSandbox", "terminalEnabled", "pluginAssetsRequireAuth", "pluginFrameGrants"] {
        assert!(v.get(k).is_some(), "{what}: {k} missing in {v}");
    }
}

fn assert_unauthorized(r: &Resp, what: &str) {
    assert_eq!(r.status, 401, "{what}");
    assert_eq!(r.json(), json!({"error": {"message": "Unauthorized", "type": "unauthorized"}}), "{what}");
    assert!(r.header("www-authenticate").is_none());
    ui_headers(r, what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_ui_at_the_root() {
    let ui = reference_ui_dir();
    let gw = start(json!({"root": ui}), json!({"plugins": {"entries": {"admin-http-rpc": {"enabled": true}}}}));
    let token = gw.token();

    // `GET /` is the shell whatever Accept says; deep links are the same shell (SPA fallback).
    let root = get(&gw, "/", &[("Accept", "application/json")]);
    let shell = assert_shell(&root, "", "GET /");
    for path in ["/chat/main", "/settings/agents", "/__openclaw__/nope", "/index.html", "/assets/../index.html"] {
        let r = get(&gw, path, &[("Accept", "text/html")]);
        assert_eq!(assert_shell(&r, "", path), shell, "{path}");
    }
    // Not HTML-acceptable: no fallback.
    ui_404(&get(&gw, "/chat/main", &[("Accept", "application/json")]), "/chat/main as JSON");

    // The entry module, as JavaScript (Chrome refuses module scripts of other types).
    let entry = entry_script(&shell, "");
    let js = get(&gw, &entry, &[]);
    assert_eq!((js.status, js.header("content-type"), js.header("cache-control")), (200, Some(JS), Some("no-cache")), "{entry}");
    assert!(js.header("last-modified").is_some() && js.header("content-encoding").is_none());
    assert_eq!(js.body, std::fs::read(ui.join(entry.trim_start_matches('/'))).unwrap(), "{entry}: the file's bytes");
    ui_headers(&js, &entry);
    let css = get(&gw, "/fonts/instrument-sans.css", &[]);
    if css.status == 200 {
        assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    }
    let manifest = get(&gw, "/manifest.webmanifest", &[]);
    assert_eq!((manifest.status, manifest.header("content-type")), (200, Some("application/manifest+json; charset=utf-8")));

    // 404s: a missing file with an extension (no HTML fallback), reserved prefixes, non-GET.
    ui_404(&get(&gw, "/assets/nope.js", &[("Accept", "text/html")]), "/assets/nope.js");
    ui_404(&get(&gw, "/foo.js", &[("Accept", "text/html")]), "/foo.js");
    ui_404(&get(&gw, "/ui/x", &[("Accept", "text/html")]), "/ui/x");
    plain_404(&get(&gw, "/api/x", &[("Accept", "text/html")]), "/api/x");
    plain_404(&get(&gw, "/v1/x", &[("Accept", "text/html")]), "/v1/x");
    plain_404(&send(&gw, "POST", "/", &[]), "POST /");
    plain_404(&send(&gw, "POST", "/chat/main", &[("Accept", "text/html")]), "POST /chat/main");

    // /control-ui-config.json: 401 without / with a wrong credential, 200 with the shared token
    // or a paired device's token; GET/HEAD only.
    assert_unauthorized(&config_json(&gw, "/control-ui-config.json", None), "config without auth");
    assert_unauthorized(&config_json(&gw, "/control-ui-config.json", Some("nope")), "config with a wrong token");
    assert_config(&config_json(&gw, "/control-ui-config.json", Some(&token)), "", "config with the token");
    let head = send(&gw, "HEAD", "/control-ui-config.json", &[("Authorization", &format!("Bearer {token}"))]);
    assert_eq!((head.status, head.body.len()), (200, 0));
    plain_404(&send(&gw, "POST", "/control-ui-config.json", &[("Authorization", &format!("Bearer {token}"))]), "POST config");

    let device_token = pair_control_ui_device(&gw, "/").await;
    assert_ne!(device_token, token);
    assert_config(&config_json(&gw, "/control-ui-config.json", Some(&device_token)), "", "config with the device token");
    // The admin RPC plugin route takes an operator device token too (spec http §4.1).
    let rpc = request(
        gw.addr(),
        "POST",
        "/api/v1/admin/rpc",
        &[("Authorization", &format!("Bearer {device_token}")), ("Content-Type", "application/json")],
        br#"{"id":"h","method":"health","params":{}}"#,
        T,
    )
    .unwrap();
    assert_eq!((rpc.status, rpc.json()["ok"].clone()), (200, json!(true)), "{}", rpc.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_ui_under_a_base_path() {
    let ui = reference_ui_dir();
    let gw = start(json!({"root": ui, "basePath": "openclaw/"}), json!({}));

    let r = get(&gw, "/openclaw?x=1", &[("Accept", "text/html")]);
    assert_eq!((r.status, r.header("location"), r.body.len()), (302, Some("/openclaw/?x=1"), 0));
    ui_headers(&r, "302");
    assert_eq!(get(&gw, "/openclaw", &[]).header("location"), Some("/openclaw/"));
    for outside in ["/", "/chat/main", "/assets/x.js", "/control-ui-config.json", "/elsewhere"] {
        plain_404(&get(&gw, outside, &[("Accept", "text/html"), ("Authorization", &format!("Bearer {}", gw.token()))]), outside);
    }
    let slash = get(&gw, "/openclaw/", &[("Accept", "text/html")]);
    let shell = assert_shell(&slash, "/openclaw", "/openclaw/");
    assert_eq!(assert_shell(&get(&gw, "/openclaw/chat/main", &[("Accept", "text/html")]), "/openclaw", "deep link"), shell);
    let entry = entry_script(&shell, "/openclaw");
    assert_eq!(get(&gw, &entry, &[]).header("content-type"), Some(JS), "{entry}");

    // The same reference build as the captures: the served bytes are the reference's
    // (bp-slash.txt: 17 902 bytes, the same two inline-script hashes).
    let capture = clawgate_tests::testdata_dir().join("vectors/control-ui/http-captures/bp-slash.txt");
    let captured = std::fs::read_to_string(&capture).unwrap_or_default();
    let shipped = std::fs::read_to_string(ui.join("index.html")).unwrap();
    if shipped.contains("2026.9.6-release-eb377ac59e6c-2026-09-23T16-33-12.144Z") && captured.contains("Content-Length: 17902") {
        assert_eq!(slash.body.len(), 17902, "the reference serves 17 902 bytes for this root and base path");
        for h in csp_hashes(&slash) {
            assert!(captured.contains(&format!("'{h}'")), "{h} is not among the reference's hashes");
        }
    }

    assert_config(&config_json(&gw, "/openclaw/control-ui-config.json", Some(&gw.token())), "/openclaw", "config");
    // The UI opens its WebSocket at ws://host<basePath>.
    let device_token = pair_control_ui_device(&gw, "/openclaw").await;
    assert_config(&config_json(&gw, "/openclaw/control-ui-config.json", Some(&device_token)), "/openclaw", "device token");
}

/// A small root: an index with inline scripts and relative URLs, one asset, a symlink out of
/// the root, and a file beside the root.
fn synthetic_root(tmp: &TempDir) -> PathBuf {
    let root = tmp.path().join("ui");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html>\n<html data-openclaw-control-ui-build-id=\"x\" lang=\"en\"><head>\
         <script>window.a = 1;</script><link rel=\"stylesheet\" href=\"./assets/app.css\">\
         <script type=\"module\" src=\"./assets/app.js\"></script></head>\
         <body><script>window.b = 2;</script></body></html>\n",
    )
    .unwrap();
    std::fs::write(root.join("assets/app.js"), "export const x = 1;\n").unwrap();
    std::fs::write(root.join("assets/app.css"), "body{}\n").unwrap();
    std::fs::write(tmp.path().join("secret.js"), "secret\n").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret.js"), root.join("assets/leak.js")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();
    root
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn synthetic_root_edge_cases() {
    let tmp = TempDir::new("control-ui-root");
    let root = synthetic_root(&tmp);
    let gw = start(json!({"root": root}), json!({"gateway": {"http": {"securityHeaders": {"strictTransportSecurity": HSTS}}}}));

    let shell = get(&gw, "/", &[]);
    let html = assert_shell(&shell, "", "GET /");
    assert_eq!(csp_hashes(&shell).len(), 2);
    assert!(html.contains("href=\"/assets/app.css\"") && html.contains("data-openclaw-terminal-enabled=\"true\""));
    assert_eq!(shell.header("strict-transport-security"), Some(HSTS));

    let js = get(&gw, "/assets/app.js", &[]);
    assert_eq!((js.status, js.header("content-type"), js.text().as_str()), (200, Some(JS), "export const x = 1;\n"));
    assert_eq!((js.header("vary"), js.header("strict-transport-security")), (Some("Accept-Encoding"), Some(HSTS)));
    let last_modified = js.header("last-modified").expect("Last-Modified").to_string();
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");
    assert_eq!(get(&gw, "/assets/app%2Ejs", &[]).text(), "export const x = 1;\n", "percent-decoded");
    assert_eq!(get(&gw, "/chat/assets/app.js", &[]).header("content-type"), Some(JS), "assets of a deep link");
    assert_eq!(get(&gw, "/assets/app.css", &[]).header("content-type"), Some("text/css; charset=utf-8"));

    // Conditionals and encodings (configured root: no-cache, identity only).
    let r = get(&gw, "/assets/app.js", &[("If-Modified-Since", &last_modified)]);
    assert_eq!(
        (r.status, r.body.len(), r.header("cache-control"), r.header("last-modified")),
        (304, 0, Some("no-cache"), Some(last_modified.as_str()))
    );
    ui_headers(&r, "304");
    assert_eq!(get(&gw, "/assets/app.js", &[("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")]).status, 200);
    assert_eq!(get(&gw, "/assets/app.js", &[("If-None-Match", "*")]).status, 304);
    let r = get(&gw, "/assets/app.js", &[("Accept-Encoding", "identity;q=0")]);
    assert_eq!((r.status, r.header("cache-control"), r.text().as_str()), (406, Some("no-store"), "Not Acceptable"));
    let r = get(&gw, "/assets/app.js", &[("Accept-Encoding", "br, gzip")]);
    assert_eq!((r.status, r.header("content-encoding")), (200, None), "identity even to br/gzip clients");
    let r = head(&gw, "/assets/app.js");
    assert_eq!((r.status, r.header("content-length"), r.body.len()), (200, Some("20"), 0));
    assert_eq!(r.header("content-type"), Some(JS));
    let r = head(&gw, "/chat/main");
    assert_eq!((r.status, r.header("content-type"), r.body.len()), (200, Some(HTML), 0));

    // Missing files with an extension, traversal, a symlink out of the root: 404, never the file.
    for path in [
        "/assets/missing.js",
        "/..%2f..%2fetc/passwd",
        "/assets/..%2f..%2fsecret.js",
        "/%2e%2e%2fsecret.js",
        "/assets/leak.js",
        "/up/secret.js",
        "/assets/a%00.js",
        "/assets/%5c..%5csecret.js",
        "/bad%zz.js",
    ] {
        let r = get(&gw, path, &[("Accept", "text/html")]);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("secret"), "{path}");
    }
    // Dot segments resolve inside the root (a browser does the same before sending).
    let r = get(&gw, "/assets/../../../../index.html", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), html);
    let r = get(&gw, "/../../etc/passwd", &[("Accept", "text/html")]);
    assert_eq!(r.text(), html, "an extension-less path clamped at the root is the shell");

    // An edit of index.html is served at once (the rendering is cached per path/mtime/length).
    let new_index = "<!doctype html>\n<html><head><script>window.c = 3;</script>\
                     <script type=\"module\" src=\"./assets/app.js\"></script></head><body>v2</body></html>\n";
    std::fs::write(root.join("index.html"), new_index).unwrap();
    wait_until("the edited index.html is served", || get(&gw, "/", &[]).text().contains("v2"));
    let r = get(&gw, "/settings", &[]);
    assert_shell(&r, "", "edited");
    assert_eq!(csp_hashes(&r).len(), 1);
    assert!(gw.stderr().lines().all(|l| !l.contains("control ui")), "no warning about a good root:\n{}", gw.stderr());
}

#[test]
fn without_a_root_an_explanation_page_is_served() {
    let gw = GatewayBuilder::new().start();
    for path in ["/", "/chat/main"] {
        let r = get(&gw, path, &[("Accept", "text/html")]);
        assert_eq!((r.status, r.header("content-type")), (200, Some(HTML)), "{path}");
        ui_headers(&r, path);
        let text = r.text();
        assert!(text.contains("gateway.controlUi.root") && text.contains("dist/control-ui"), "{path}: {text}");
    }
    ui_404(&get(&gw, "/assets/index-x.js", &[]), "asset without a root");
    plain_404(&send(&gw, "POST", "/", &[]), "POST /");
    // The config JSON still answers (with auth): no root, so the server build id is reported.
    assert_unauthorized(&config_json(&gw, "/control-ui-config.json", None), "config without auth");
    let r = config_json(&gw, "/control-ui-config.json", Some(&gw.token()));
    assert_eq!((r.status, r.json()["basePath"].as_str()), (200, Some("")));
    assert!(r.json()["serverBuildId"].is_string(), "{}", r.text());
}

#[test]
fn a_broken_root_is_reported_once() {
    let tmp = TempDir::new("control-ui-broken");
    let missing = tmp.path().join("nowhere");
    let gw = start(json!({"root": missing}), json!({}));
    for _ in 0..3 {
        let r = get(&gw, "/", &[]);
        assert_eq!((r.status, r.header("content-type")), (503, Some(HTML)));
        assert!(r.text().contains("nowhere"), "{}", r.text());
    }
    ui_404(&get(&gw, "/assets/a.js", &[]), "asset of a broken root");
    let warnings = gw.stderr().lines().filter(|l| l.contains("control ui") && l.contains("nowhere")).count();
    assert_eq!(warnings, 1, "one warning, not one per request:\n{}", gw.stderr());
    // A directory without index.html.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let gw = start(json!({"root": empty}), json!({}));
    let r = get(&gw, "/chat/main", &[]);
    assert_eq!(r.status, 503);
    assert!(r.text().contains("index.html"), "{}", r.text());
}
