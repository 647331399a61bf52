//! The official OpenClaw Control UI served from a directory (`gateway.controlUi.root`; spec
//! control-ui.md §6, http.md §2 stage 16, §6.9, §6.10): pure decisions over plain data.
//!
//! * [`classify`]: a request path + method + `Accept` under the base path → not ours, 404,
//!   `302 B → B/`, `/control-ui-config.json`, or a file to serve by a safe relative path
//!   (percent-decoded, dot segments resolved, never escaping the root).
//! * [`FileJob`]: what the shell needs to serve that file (the IO is the shell's: resolve the
//!   path under the root, stat, read), and the responses once it knows the facts: static files
//!   (content types of §6.1, `no-cache`, `Last-Modified`, 304, 406), the index shell
//!   ([`render_index`], rewritten per §6.2, CSP with one hash per inline script of the *served*
//!   HTML), the SPA fallback, and the "not configured" page when there is no UI directory.
//! * [`config_json`]: the `/control-ui-config.json` body (§6.5).

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::HttpResponse;

/// `data-openclaw-control-ui-base-path` on `<html>`.
pub const BASE_PATH_ATTRIBUTE: &str = "data-openclaw-control-ui-base-path";
/// `data-openclaw-terminal-enabled` on `<html>`.
pub const TERMINAL_ENABLED_ATTRIBUTE: &str = "data-openclaw-terminal-enabled";
/// Removed from `<html>` for a configured root (§6.2 item 4).
pub const BUILD_ID_ATTRIBUTE: &str = "data-openclaw-control-ui-build-id";

/// `Permissions-Policy` of every Control UI response (§6.6).
pub const PERMISSIONS_POLICY: &str = "camera=(self), microphone=*, geolocation=*, clipboard-write=*";

pub use crate::config::api::{UiConfig, expand_root, normalize_base_path};

// ---- routing --------------------------------------------------------------------------------

/// Where a request goes (spec http §2 stage 16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Not a Control UI request: the router's plain 404 (baseline headers).
    NotMine,
    /// A Control UI 404 (`text/plain "Not Found"` with the Control UI headers).
    NotFound,
    /// `302` to this location (`B` → `B/`, query kept).
    Redirect(String),
    /// `<B>/control-ui-config.json` (GET/HEAD; gateway auth).
    Config,
    /// A file under the UI root.
    Serve(ServeTarget),
}

/// A file to serve, by a safe relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeTarget {
    /// Relative to the root, `/`-separated, decoded and normalised, never escaping it
    /// (`index.html` for the root and directories).
    pub rel: String,
    /// A missing file without a static-asset extension gets the index shell.
    pub spa_fallback: bool,
}

/// Why a request path cannot name a file under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("malformed percent-encoding")]
    BadEncoding,
    #[error("NUL byte in path")]
    Nul,
    #[error("backslash in path")]
    Backslash,
    #[error("absolute path")]
    Absolute,
    #[error("path escapes the root")]
    Escapes,
}

fn is_read(method: &str) -> bool {
    method == "GET" || method == "HEAD"
}

fn in_namespace(path: &str, root: &str) -> bool {
    path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// Dot segments resolved as a browser URL parser does (`.`/`%2e`, `..`/`%2e%2e` …), clamped at
/// `/`; the rest of the path is left as is (still percent-encoded).
pub fn resolve_dot_segments(path: &str) -> String {
    let body = path.strip_prefix('/').unwrap_or(path);
    let segs: Vec<&str> = body.split('/').collect();
    let single = |s: &str| s == "." || s.eq_ignore_ascii_case("%2e");
    let double = |s: &str| matches!(s.to_ascii_lowercase().as_str(), ".." | ".%2e" | "%2e." | "%2e%2e");
    let mut out: Vec<&str> = Vec::with_capacity(segs.len());
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if single(s) {
            if last {
                out.push("");
            }
        } else if double(s) {
            out.pop();
            if last {
                out.push("");
            }
        } else {
            out.push(s);
        }
    }
    format!("/{}", out.join("/"))
}

/// `decodeURIComponent`: `%XX` sequences to bytes, which must be UTF-8.
pub fn percent_decode(s: &str) -> Result<String, PathError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(PathError::BadEncoding),
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::BadEncoding)
}

/// A decoded relative path made safe: no NUL, no backslash, not absolute (POSIX or a Windows
/// drive), `.`/`..` resolved without ever leaving the root.
pub fn safe_relative_path(decoded: &str) -> Result<String, PathError> {
    if decoded.contains('\0') {
        return Err(PathError::Nul);
    }
    if decoded.contains('\\') {
        return Err(PathError::Backslash);
    }
    let b = decoded.as_bytes();
    if decoded.starts_with('/') || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') {
        return Err(PathError::Absolute);
    }
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = decoded.split('/').collect();
    for (i, s) in segs.iter().enumerate() {
        match *s {
            "" | "." => {
                if i + 1 == segs.len() && !out.is_empty() {
                    out.push("");
                }
            }
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::Escapes);
                }
            }
            s => out.push(s),
        }
    }
    let rel = out.join("/");
    if rel.is_empty() { Err(PathError::Escapes) } else { Ok(rel) }
}

/// Does `Accept` allow an HTML document (spec http §6.9)? Absent or empty: yes; `*/*` counts;
/// the most specific matching range decides, `q=0` refuses.
pub fn accepts_html(accept: Option<&str>) -> bool {
    let Some(a) = accept.map(str::trim).filter(|a| !a.is_empty()) else { return true };
    accepts_media(a, "text", "html", true) || accepts_media(a, "application", "xhtml+xml", false)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

fn valid_q(v: &str) -> Option<f32> {
    let ok = match v.split_once('.') {
        None => v == "0" || v == "1",
        Some((i, f)) => f.len() <= 3 && f.bytes().all(|c| c.is_ascii_digit()) && (i == "0" || (i == "1" && f.bytes().all(|c| c == b'0'))),
    };
    if ok { v.parse().ok() } else { None }
}

/// The reference's `acceptsMediaType` for `type/subtype; charset=utf-8`.
fn accepts_media(accept: &str, ty: &str, sub: &str, wildcards: bool) -> bool {
    let mut best: Option<(u8, usize, f32)> = None;
    'ranges: for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((t, s)) = parts.next().map(|m| m.trim().to_ascii_lowercase()).and_then(|m| {
            let (t, s) = m.split_once('/')?;
            (is_token(t) && is_token(s) && !s.contains('/')).then(|| (t.to_string(), s.to_string()))
        }) else {
            continue;
        };
        let mut q = 1.0f32;
        let mut q_seen = false;
        let mut params = 0usize;
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let Some((name, value)) = p.split_once('=') else { continue 'ranges };
            let name = name.trim().to_ascii_lowercase();
            if name == "q" {
                match (q_seen, valid_q(value.trim())) {
                    (false, Some(v)) => {
                        q = v;
                        q_seen = true;
                    }
                    _ => continue 'ranges,
                }
                continue;
            }
            let value = value.trim().trim_matches('"');
            // The offered representation has only `charset=utf-8`.
            if name != "charset" || !value.eq_ignore_ascii_case("utf-8") {
                continue 'ranges;
            }
            params += 1;
        }
        let exact = t == ty && s == sub;
        let wild = wildcards && s == "*" && (t == "*" || t == ty);
        if !exact && !wild {
            continue;
        }
        let spec = if t == "*" {
            0
        } else if s == "*" {
            1
        } else {
            2
        };
        best = match best {
            Some((bs, bp, bq)) if (spec, params) < (bs, bp) => Some((bs, bp, bq)),
            Some((bs, bp, bq)) if (spec, params) == (bs, bp) => Some((bs, bp, bq.max(q))),
            _ => Some((spec, params, q)),
        };
    }
    best.is_some_and(|(_, _, q)| q > 0.0)
}

/// The probe namespaces and internal namespaces that are never the UI (base path `""`).
fn reserved_for_others(path: &str) -> bool {
    ["/health", "/healthz", "/ready", "/readyz", "/startup", "/startupz", "/api", "/j", "/v1"].iter().any(|r| in_namespace(path, r))
        || is_internal_namespace(path)
}

/// `/__openclaw__/` namespaces owned by other handlers (worker ingress and transfers, MCP apps);
/// the rest of `/__openclaw__/` is the UI's (the SPA shell, as the reference answers).
pub fn is_internal_namespace(path: &str) -> bool {
    [
        "/__openclaw__/worker",
        "/__openclaw__/worker-transfer",
        "/__openclaw__/worker-bundle",
        "/__openclaw__/worker-bootstrap",
        "/__openclaw__/mcp-app",
    ]
    .iter()
    .any(|r| in_namespace(path, r))
}

/// `<B>/control-ui-config.json`, the legacy `<B>/__openclaw/control-ui-config.json`, and (base
/// path `""`) `/__openclaw__/control-ui-config.json`.
fn is_config_path(path: &str, base: &str) -> bool {
    path.strip_prefix(base).is_some_and(|r| r == "/control-ui-config.json" || r == "/__openclaw/control-ui-config.json")
        || (base.is_empty() && path == "/__openclaw__/control-ui-config.json")
}

/// `/approve[/<id>]` and `/focus[/…]`: always the index document.
fn is_standalone_document(ui_path: &str) -> bool {
    let approve = ui_path == "/approve"
        || ui_path == "/approve/"
        || ui_path.strip_prefix("/approve/").is_some_and(|id| !id.is_empty() && !id.contains('/'));
    let trimmed = ui_path.trim_end_matches('/');
    approve || in_namespace(if trimmed.is_empty() { "/" } else { trimmed }, "/focus")
}

/// Classify a request (spec control-ui §6.3, http §6.9): `raw_path` without the query.
pub fn classify(base_path: &str, method: &str, raw_path: &str, query: &str, accept: Option<&str>) -> Route {
    let path = resolve_dot_segments(raw_path);
    let plugin_manager =
        is_read(method) && (path == format!("{base_path}/settings/plugins") || path == format!("{base_path}/settings/plugins/"));
    let spa_fallback = plugin_manager || accepts_html(accept);
    if base_path.is_empty() {
        if in_namespace(&path, "/ui") {
            return Route::NotFound;
        }
        if reserved_for_others(&path) {
            return Route::NotMine;
        }
        if in_namespace(&path, "/plugins") && !((path == "/plugins" || path == "/plugins/") && is_read(method) && spa_fallback) {
            return Route::NotMine;
        }
        if !is_read(method) {
            return Route::NotMine;
        }
    } else {
        if !in_namespace(&path, base_path) {
            return Route::NotMine;
        }
        if !is_read(method) {
            return Route::NotMine;
        }
        if path == base_path {
            let search = if query.is_empty() { String::new() } else { format!("?{query}") };
            return Route::Redirect(format!("{base_path}/{search}"));
        }
    }
    if is_config_path(&path, base_path) {
        return Route::Config;
    }
    let ui_path = &path[base_path.len()..];
    let rel = if ui_path == "/share/card.png" {
        "social-card.png"
    } else if ui_path == "/" {
        ""
    } else if let Some(i) = ui_path.find("/assets/") {
        &ui_path[i + 1..]
    } else {
        &ui_path[1..]
    };
    let requested = if is_standalone_document(ui_path) {
        "index.html".to_string()
    } else if !rel.is_empty() && !rel.ends_with('/') {
        rel.to_string()
    } else {
        format!("{rel}index.html")
    };
    match percent_decode(&requested).and_then(|d| safe_relative_path(&d)) {
        Ok(rel) => Route::Serve(ServeTarget { rel, spa_fallback }),
        Err(_) => Route::NotFound,
    }
}

// ---- content types, headers -----------------------------------------------------------------

fn extension(rel: &str) -> Option<String> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let dot = name.rfind('.').filter(|&i| i > 0)?;
    Some(name[dot..].to_ascii_lowercase())
}

/// `Content-Type` by extension (§6.1), `application/octet-stream` otherwise.
pub fn content_type(rel: &str) -> &'static str {
    match extension(rel).as_deref() {
        Some(".html") => "text/html; charset=utf-8",
        Some(".js") | Some(".mjs") => "application/javascript; charset=utf-8",
        Some(".css") => "text/css; charset=utf-8",
        Some(".json") | Some(".map") => "application/json; charset=utf-8",
        Some(".svg") => "image/svg+xml",
        Some(".png") => "image/png",
        Some(".jpg") | Some(".jpeg") => "image/jpeg",
        Some(".gif") => "image/gif",
        Some(".webp") => "image/webp",
        Some(".ico") => "image/x-icon",
        Some(".txt") => "text/plain; charset=utf-8",
        Some(".wasm") => "application/wasm",
        Some(".webmanifest") => "application/manifest+json; charset=utf-8",
        Some(".woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// A known static type other than HTML: a missing one is a 404, never the SPA shell.
pub fn is_static_asset(rel: &str) -> bool {
    content_type(rel) != "application/octet-stream" && extension(rel).as_deref() != Some(".html")
}

/// The request's `Host` as a CSP source host (`127.0.0.1`, `[::1]`, `gw.example`), if it is a
/// plain host[:port].
fn csp_host(host: Option<&str>) -> Option<String> {
    let h = host?.trim();
    let name = if h.starts_with('[') { &h[..=h.find(']')?] } else { h.rsplit_once(':').map_or(h, |(n, _)| n) };
    let ok = !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:[]_".contains(&c));
    ok.then(|| name.to_ascii_lowercase())
}

/// The Control UI CSP (§6.6): the non-HTML one for `None`; for the HTML document one
/// `'sha256-…'` per inline script, `'wasm-unsafe-eval'` when the terminal is on, and the
/// request host's `http(s)://host:*` in `connect-src`.
pub fn csp(html: Option<(&[String], bool, Option<&str>)>) -> String {
    let mut script = vec!["'self'".to_string()];
    let mut connect = "'self' ws: wss: data: https://api.openai.com https://tweakcn.com".to_string();
    if let Some((hashes, wasm, host)) = html {
        script.extend(hashes.iter().map(|h| format!("'{h}'")));
        if wasm {
            script.push("'wasm-unsafe-eval'".into());
        }
        if let Some(h) = csp_host(host) {
            connect.push_str(&format!(" http://{h}:* https://{h}:*"));
        }
    }
    format!(
        "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; frame-src 'self' http: https:; \
         script-src {}; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; img-src 'self' data: blob: https:; \
         media-src 'self' data: blob:; font-src 'self' https://fonts.gstatic.com; worker-src 'self'; connect-src {connect}",
        script.join(" ")
    )
}

/// A Control UI response: the security headers of §6.6 with `csp`, then `rest`.
pub fn ui_response(status: u16, csp: String, rest: Vec<(&'static str, String)>, body: Vec<u8>) -> HttpResponse {
    let mut headers = vec![
        ("X-Content-Type-Options", "nosniff".to_string()),
        ("Referrer-Policy", "no-referrer".to_string()),
        ("Permissions-Policy", PERMISSIONS_POLICY.to_string()),
        ("X-Frame-Options", "DENY".to_string()),
        ("Content-Security-Policy", csp),
    ];
    headers.extend(rest);
    HttpResponse { status, headers, body, close: false }
}

/// Turn a router response (baseline headers) into a Control UI one (401/429 of the config JSON).
pub fn with_ui_headers(mut r: HttpResponse) -> HttpResponse {
    for (k, v) in r.headers.iter_mut() {
        if *k == "Permissions-Policy" {
            *v = PERMISSIONS_POLICY.into();
        }
    }
    let at = r.headers.iter().position(|(k, _)| *k == "Permissions-Policy").map_or(r.headers.len(), |i| i + 1);
    r.headers.insert(at, ("X-Frame-Options", "DENY".into()));
    r.headers.insert(at + 1, ("Content-Security-Policy", csp(None)));
    r
}

/// `404 text/plain "Not Found"` with the Control UI headers.
pub fn not_found() -> HttpResponse {
    ui_response(404, csp(None), vec![("Content-Type", "text/plain; charset=utf-8".into())], b"Not Found".to_vec())
}

/// `302 Location: …` with the Control UI headers and no body.
pub fn redirect(location: &str) -> HttpResponse {
    ui_response(302, csp(None), vec![("Location", location.to_string())], Vec::new())
}

// ---- HTML -----------------------------------------------------------------------------------

fn find_ci(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    (from..=h.len().saturating_sub(n.len())).find(|&i| h.len() >= i + n.len() && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Does a `<script …>` open tag carry a `src` attribute?
fn has_src_attribute(open_tag: &str) -> bool {
    let inner = open_tag.trim_start_matches('<').trim_end_matches('>');
    let b = inner.as_bytes();
    let mut i = "script".len();
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !b"=/>".contains(&b[i]) {
            i += 1;
        }
        if inner[start..i].eq_ignore_ascii_case("src") {
            return true;
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    i += 1;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                    i += 1;
                }
                _ => {
                    while i < b.len() && !b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                }
            }
        } else if i == start {
            i += 1;
        }
    }
    false
}

/// `sha256-<base64>` of the text of every inline (no `src`), non-empty `<script>` (§6.6).
pub fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = find_ci(html, "<script", at) {
        let after = open + "<script".len();
        let next = html.as_bytes().get(after).copied();
        if !matches!(next, Some(b'>') | Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')) {
            at = after;
            continue;
        }
        let Some(gt) = html[after..].find('>').map(|i| after + i) else { break };
        let Some(close) = find_ci(html, "</script>", gt + 1) else { break };
        let content = &html[gt + 1..close];
        if !has_src_attribute(&html[open..=gt]) && !content.is_empty() {
            out.push(format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(content.as_bytes()))));
        }
        at = close + "</script>".len();
    }
    out
}

/// Remove ` name="…"` attributes from an open tag.
fn strip_attribute(tag: &str, name: &str) -> String {
    let pat = format!(" {name}=\"");
    let mut t = tag.to_string();
    while let Some(i) = t.find(&pat) {
        let Some(end) = t[i + pat.len()..].find('"') else { break };
        t.replace_range(i..i + pat.len() + end + 1, "");
    }
    t
}

/// The served `index.html` of a configured root (§6.2): `href="./…"`/`src="./…"` become
/// `<base>/…`; `<html>` gets the base-path and terminal attributes and loses the build id. No
/// `<base>` is injected (the CSP has `base-uri 'none'`).
pub fn rewrite_index(html: &str, base_path: &str, terminal_enabled: bool) -> String {
    let rewritten = html.replace("src=\"./", &format!("src=\"{base_path}/")).replace("href=\"./", &format!("href=\"{base_path}/"));
    let Some(open) =
        find_ci(&rewritten, "<html", 0).filter(|&i| rewritten.as_bytes().get(i + 5).is_some_and(|c| *c == b'>' || c.is_ascii_whitespace()))
    else {
        return rewritten;
    };
    let Some(gt) = rewritten[open..].find('>').map(|i| open + i) else { return rewritten };
    let tag = strip_attribute(&strip_attribute(&rewritten[open..=gt], BUILD_ID_ATTRIBUTE), BASE_PATH_ATTRIBUTE);
    let tag = strip_attribute(&tag, TERMINAL_ENABLED_ATTRIBUTE);
    let attrs =
        format!(" {BASE_PATH_ATTRIBUTE}=\"{}\" {TERMINAL_ENABLED_ATTRIBUTE}=\"{terminal_enabled}\"", crate::markup::escape(base_path));
    let tag = format!("{}{attrs}{}", &tag[..5], &tag[5..]);
    format!("{}{tag}{}", &rewritten[..open], &rewritten[gt + 1..])
}

/// A rendered index shell: the served bytes and the hashes of their inline scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIndex {
    pub body: Vec<u8>,
    pub script_hashes: Vec<String>,
}

/// [`rewrite_index`] plus the CSP hashes of the result.
pub fn render_index(html: &str, base_path: &str, terminal_enabled: bool) -> RenderedIndex {
    let served = rewrite_index(html, base_path, terminal_enabled);
    RenderedIndex { script_hashes: inline_script_hashes(&served), body: served.into_bytes() }
}

/// Why no UI directory can be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// No `gateway.controlUi.root`.
    #[error("gateway.controlUi.root is not configured")]
    NotConfigured,
    /// The configured root cannot be used.
    #[error("gateway.controlUi.root {root:?}: {reason}")]
    BadRoot { root: String, reason: String },
}

/// The page served where the UI shell would be when there is no usable UI directory.
pub fn unavailable_page(why: &Unavailable, base_path: &str) -> String {
    let (title, detail) = match why {
        Unavailable::NotConfigured => ("The Control UI is not configured", String::from("clawgate does not bundle the Control UI.")),
        Unavailable::BadRoot { .. } => ("The Control UI directory cannot be served", crate::markup::escape(&why.to_string())),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\" {BASE_PATH_ATTRIBUTE}=\"{bp}\">\n<head><meta charset=\"utf-8\"><title>clawgate — {title}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}code,pre{{background:#8881;padding:.1rem .3rem;border-radius:4px}}</style></head>\n\
         <body>\n<h1>{title}</h1>\n<p>{detail}</p>\n\
         <p>Point <code>gateway.controlUi.root</code> at the <code>dist/control-ui</code> directory of an OpenClaw install \
         (the npm package <code>openclaw</code>), for example in <code>~/.openclaw/openclaw.json</code>:</p>\n\
         <pre>{{ gateway: {{ controlUi: {{ root: \"/usr/lib/node_modules/openclaw/dist/control-ui\" }} }} }}</pre>\n\
         <p>Find it with <code>npm root -g</code> (then <code>openclaw/dist/control-ui</code>). \
         Then open this page again with <code>#token=&lt;gateway token&gt;</code> (<code>clawgate auth-token</code> prints it).</p>\n\
         </body>\n</html>\n",
        bp = crate::markup::escape(base_path),
    )
}

// ---- caching --------------------------------------------------------------------------------

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// IMF-fixdate (`Wed, 25 Nov 2026 11:27:14 GMT`) of a Unix time in seconds.
pub fn http_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parse an IMF-fixdate to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let (_, rest) = s.trim().split_once(", ")?;
    let p: Vec<&str> = rest.split(' ').collect();
    let [d, mon, y, t, "GMT"] = p.as_slice() else { return None };
    let m = MONTHS.iter().position(|x| x == mon)? as u32 + 1;
    let (d, y): (u32, i64) = (d.parse().ok()?, y.parse().ok()?);
    let hms: Vec<u64> = t.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [h, mi, se] = hms.as_slice() else { return None };
    if !(1..=31).contains(&d) || *h > 23 || *mi > 59 || *se > 60 || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    u64::try_from(days).ok().map(|days| days * 86_400 + h * 3600 + mi * 60 + se)
}

/// Is the identity encoding acceptable (`Accept-Encoding: identity;q=0` or `*;q=0` refuse it)?
pub fn identity_acceptable(accept_encoding: Option<&str>) -> bool {
    let Some(ae) = accept_encoding.filter(|a| !a.trim().is_empty()) else { return true };
    let mut identity = None;
    let mut wildcard = None;
    for entry in ae.split(',') {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")).map(str::to_string))
            .map_or(Some(1.0), |v| valid_q(&v))
            .unwrap_or(0.0);
        let slot = match name.as_str() {
            "identity" => &mut identity,
            "*" => &mut wildcard,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    identity.unwrap_or(if wildcard == Some(0.0) { 0.0 } else { 1.0 }) > 0.0
}

// ---- serving a file -------------------------------------------------------------------------

/// What the shell learnt about the requested file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub mtime_unix_ms: u64,
    pub len: u64,
}

/// A Control UI file request for the shell: find [`ServeTarget::rel`] under the root (or learn
/// that there is no usable root), then ask this job for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileJob {
    pub target: ServeTarget,
    pub head: bool,
    pub base_path: String,
    /// The configured root as written (see [`expand_root`]).
    pub root: Option<String>,
    pub terminal_enabled: bool,
    pub host: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub accept_encoding: Option<String>,
    pub now_unix_ms: u64,
    /// The configured `Strict-Transport-Security`.
    pub hsts: Option<String>,
}

/// What to do after the lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticPlan {
    Respond(HttpResponse),
    /// Read the file and call [`FileJob::static_body`].
    ReadBody,
}

impl FileJob {
    fn finish(&self, mut r: HttpResponse) -> HttpResponse {
        if let Some(h) = &self.hsts {
            let at = r.headers.iter().position(|(k, _)| *k == "X-Frame-Options").unwrap_or(r.headers.len());
            r.headers.insert(at, ("Strict-Transport-Security", h.clone()));
        }
        r
    }

    /// Is the target an index document (served rewritten, as the shell)?
    pub fn is_index(&self) -> bool {
        self.target.rel == "index.html" || self.target.rel.ends_with("/index.html")
    }

    /// A Control UI 404.
    pub fn not_found(&self) -> HttpResponse {
        self.finish(not_found())
    }

    fn not_acceptable(&self) -> HttpResponse {
        self.finish(ui_response(
            406,
            csp(None),
            vec![
                ("Cache-Control", "no-store".into()),
                ("Vary", "Accept-Encoding".into()),
                ("Content-Type", "text/plain; charset=utf-8".into()),
            ],
            b"Not Acceptable".to_vec(),
        ))
    }

    fn last_modified_secs(&self, meta: FileMeta) -> u64 {
        meta.mtime_unix_ms.min(self.now_unix_ms) / 1000
    }

    /// A static (non-index) file was found: 406, 304, HEAD, or read it.
    pub fn static_file(&self, meta: FileMeta) -> StaticPlan {
        if !identity_acceptable(self.accept_encoding.as_deref()) {
            return StaticPlan::Respond(self.not_acceptable());
        }
        let lm = self.last_modified_secs(meta);
        let unmodified = match &self.if_none_match {
            Some(inm) => inm.trim() == "*",
            None => self.if_modified_since.as_deref().and_then(parse_http_date).is_some_and(|since| lm <= since),
        };
        if unmodified {
            return StaticPlan::Respond(self.finish(ui_response(
                304,
                csp(None),
                vec![("Cache-Control", "no-cache".into()), ("Last-Modified", http_date(lm)), ("Vary", "Accept-Encoding".into())],
                Vec::new(),
            )));
        }
        if self.head {
            let mut r = self.static_headers(meta);
            r.headers.push(("Content-Length", meta.len.to_string()));
            return StaticPlan::Respond(self.finish(r));
        }
        StaticPlan::ReadBody
    }

    fn static_headers(&self, meta: FileMeta) -> HttpResponse {
        ui_response(
            200,
            csp(None),
            vec![
                ("Content-Type", content_type(&self.target.rel).into()),
                ("Cache-Control", "no-cache".into()),
                ("Last-Modified", http_date(self.last_modified_secs(meta))),
                ("Vary", "Accept-Encoding".into()),
            ],
            Vec::new(),
        )
    }

    /// The static file's `200` with its bytes.
    pub fn static_body(&self, meta: FileMeta, body: Vec<u8>) -> HttpResponse {
        let mut r = self.static_headers(meta);
        r.body = body;
        self.finish(r)
    }

    /// The file is not there: the index shell (SPA fallback) or a 404?
    pub fn missing_serves_index(&self) -> bool {
        self.target.spa_fallback && !is_static_asset(&self.target.rel)
    }

    /// Would this request get the shell (the root document, or the SPA fallback)?
    fn wants_shell(&self) -> bool {
        self.target.rel == "index.html" || self.missing_serves_index()
    }

    /// The rewritten shell: `200 text/html`, `no-cache`, its own CSP (HEAD: headers only, with
    /// the non-HTML CSP as the reference sends them).
    pub fn index(&self, rendered: &RenderedIndex) -> HttpResponse {
        if !identity_acceptable(self.accept_encoding.as_deref()) {
            return self.not_acceptable();
        }
        let mut rest = vec![("Content-Type", "text/html; charset=utf-8".to_string()), ("Cache-Control", "no-cache".into())];
        rest.push(("Vary", "Accept-Encoding".into()));
        if self.head {
            return self.finish(ui_response(200, csp(None), rest, Vec::new()));
        }
        let policy = csp(Some((&rendered.script_hashes, self.terminal_enabled, self.host.as_deref())));
        self.finish(ui_response(200, policy, rest, rendered.body.clone()))
    }

    /// No usable UI directory: the explanation page where the shell would be (`200` when none
    /// is configured, `503` when the configured one is broken), a 404 elsewhere.
    pub fn unavailable(&self, why: &Unavailable) -> HttpResponse {
        if !self.wants_shell() {
            return self.not_found();
        }
        let page = unavailable_page(why, &self.base_path);
        let rendered = RenderedIndex { script_hashes: inline_script_hashes(&page), body: page.into_bytes() };
        let mut r = self.index(&rendered);
        if r.status == 200 && matches!(why, Unavailable::BadRoot { .. }) {
            r.status = 503;
        }
        r
    }
}

// ---- /control-ui-config.json ----------------------------------------------------------------

/// Facts the config JSON reports besides [`UiConfig`].
#[derive(Debug, Clone, Copy)]
pub struct ConfigFacts<'a> {
    pub server_version: &'a str,
    pub server_build_id: Option<&'a str>,
    /// The assistant's agent id and configured name.
    pub agent_id: &'a str,
    pub agent_name: Option<&'a str>,
    /// `gateway.auth.mode` is not `none`.
    pub auth_required: bool,
}

/// The `/control-ui-config.json` body (§6.5): with a configured root there is no
/// `serverBuildId`.
pub fn config_json(ui: &UiConfig, f: &ConfigFacts<'_>) -> Value {
    let mut v = json!({
        "basePath": ui.base_path,
        "assistantName": f.agent_name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or("Assistant"),
        "assistantAvatar": "A",
        "assistantAvatarSource": null,
        "assistantAvatarStatus": null,
        "assistantAvatarReason": null,
        "assistantAgentId": f.agent_id,
        "serverVersion": f.server_version,
    });
    let o = v.as_object_mut().expect("an object");
    if ui.root.is_none() {
        if let Some(b) = f.server_build_id {
            o.insert("serverBuildId".into(), json!(b));
        }
    }
    o.insert("embedSandbox".into(), json!(ui.embed_sandbox));
    o.insert("allowExternalEmbedUrls".into(), json!(ui.allow_external_embed_urls));
    o.insert("automaticallyFetchFavicons".into(), json!(ui.automatically_fetch_favicons));
    if let Some(c) = &ui.seam_color {
        o.insert("seamColor".into(), json!(c));
    }
    if let Some(e) = &ui.environment {
        o.insert("environment".into(), e.clone());
    }
    o.insert("communityInvite".into(), json!(ui.community_invite));
    o.insert("terminalEnabled".into(), json!(ui.terminal_enabled));
    o.insert("cliAgentsEnabled".into(), json!(ui.cli_agents_enabled));
    o.insert("pluginAssetsRequireAuth".into(), json!(f.auth_required));
    o.insert("pluginFrameGrants".into(), json!([]));
    v
}

/// The config JSON response (`HEAD`: headers only).
pub fn config_response(body: &Value, head: bool) -> HttpResponse {
    ui_response(
        200,
        csp(None),
        vec![("Content-Type", "application/json; charset=utf-8".into()), ("Cache-Control", "no-cache".into())],
        if head { Vec::new() } else { body.to_string().into_bytes() },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(rel: &str, spa: bool) -> Route {
        Route::Serve(ServeTarget { rel: rel.into(), spa_fallback: spa })
    }

    #[test]
    fn base_path_normalisation() {
        for (raw, want) in [("", ""), ("/", ""), ("  ", ""), ("openclaw", "/openclaw"), ("/openclaw/", "/openclaw"), ("//a/b//", "/a/b")] {
            assert_eq!(normalize_base_path(raw), want, "{raw:?}");
        }
        assert_eq!(expand_root("~/ui", Some("/home/u")), "/home/u/ui");
        assert_eq!(expand_root("~", Some("/home/u")), "/home/u");
        assert_eq!(expand_root("~x/ui", Some("/home/u")), "~x/ui");
        assert_eq!(expand_root("/srv/ui", Some("/home/u")), "/srv/ui");
    }

    #[test]
    fn routing_with_the_root_base_path() {
        let html = Some("text/html");
        let json = Some("application/json");
        let table: &[(&str, &str, Option<&str>, Route)] = &[
            ("GET", "/", json, serve("index.html", false)),
            ("HEAD", "/", None, serve("index.html", true)),
            ("GET", "/index.html", None, serve("index.html", true)),
            ("GET", "/chat/main", html, serve("chat/main", true)),
            ("GET", "/chat/main", json, serve("chat/main", false)),
            ("GET", "/chat/main", Some("text/html;q=0, */*"), serve("chat/main", false)),
            ("GET", "/chat/main", Some("*/*"), serve("chat/main", true)),
            ("GET", "/settings/plugins", json, serve("settings/plugins", true)),
            ("GET", "/approve/abc", json, serve("index.html", false)),
            ("GET", "/focus/terminal", json, serve("index.html", false)),
            ("GET", "/assets/index-x.js", None, serve("assets/index-x.js", true)),
            ("GET", "/chat/assets/index-x.js", None, serve("assets/index-x.js", true)),
            ("GET", "/assets/index%2Dx.js", None, serve("assets/index-x.js", true)),
            ("GET", "/share/card.png", None, serve("social-card.png", true)),
            ("GET", "/fonts/", None, serve("fonts/index.html", true)),
            ("GET", "/__openclaw__/nope", html, serve("__openclaw__/nope", true)),
            ("GET", "/.well-known/openclaw/browser-bootstrap", json, serve(".well-known/openclaw/browser-bootstrap", false)),
            ("GET", "/control-ui-config.json", None, Route::Config),
            ("HEAD", "/control-ui-config.json", None, Route::Config),
            ("GET", "/__openclaw__/control-ui-config.json", None, Route::Config),
            ("POST", "/control-ui-config.json", None, Route::NotMine),
            ("POST", "/", None, Route::NotMine),
            ("POST", "/chat/main", html, Route::NotMine),
            ("OPTIONS", "/", None, Route::NotMine),
            ("GET", "/ui", None, Route::NotFound),
            ("GET", "/ui/x", html, Route::NotFound),
            ("GET", "/uix", html, serve("uix", true)),
            ("GET", "/api/x", html, Route::NotMine),
            ("GET", "/v1/unknown", html, Route::NotMine),
            ("GET", "/v1", html, Route::NotMine),
            ("GET", "/j/abc", html, Route::NotMine),
            ("GET", "/healthz/foo", html, Route::NotMine),
            ("GET", "/__openclaw__/worker/x", html, Route::NotMine),
            ("GET", "/__openclaw__/mcp-app", html, Route::NotMine),
            ("GET", "/plugins/x", html, Route::NotMine),
            ("GET", "/plugins", html, serve("plugins", true)),
        ];
        for (method, path, accept, want) in table {
            assert_eq!(&classify("", method, path, "", *accept), want, "{method} {path} {accept:?}");
        }
    }

    #[test]
    fn routing_under_a_base_path() {
        let b = "/openclaw";
        assert_eq!(classify(b, "GET", "/openclaw", "x=1", None), Route::Redirect("/openclaw/?x=1".into()));
        assert_eq!(classify(b, "HEAD", "/openclaw", "", None), Route::Redirect("/openclaw/".into()));
        assert_eq!(classify(b, "POST", "/openclaw", "", None), Route::NotMine);
        assert_eq!(classify(b, "GET", "/openclaw/", "", None), serve("index.html", true));
        assert_eq!(classify(b, "GET", "/openclaw/chat/main", "", Some("text/html")), serve("chat/main", true));
        assert_eq!(classify(b, "GET", "/openclaw/assets/a.js", "", None), serve("assets/a.js", true));
        assert_eq!(classify(b, "GET", "/openclaw/control-ui-config.json", "", None), Route::Config);
        for outside in ["/", "/assets/a.js", "/control-ui-config.json", "/elsewhere", "/openclawx", "/ui/x"] {
            assert_eq!(classify(b, "GET", outside, "", Some("text/html")), Route::NotMine, "{outside}");
        }
    }

    #[test]
    fn traversal_never_escapes_the_root() {
        let table: &[(&str, Route)] = &[
            // Dot segments are resolved as a browser does, clamped at the root.
            ("/assets/../index.html", serve("index.html", true)),
            ("/assets/%2e%2e/index.html", serve("index.html", true)),
            ("/assets/%2E%2e/%2e/index.html", serve("index.html", true)),
            ("/../../etc/passwd", serve("etc/passwd", true)),
            // Encoded separators are decoded after routing: refused.
            ("/..%2f..%2fetc/passwd", Route::NotFound),
            ("/assets/..%2f..%2f..%2fetc/passwd", Route::NotFound),
            ("/%2e%2e%2fetc%2fpasswd", Route::NotFound),
            ("/%2fetc%2fpasswd", Route::NotFound),
            ("/a%00.js", Route::NotFound),
            ("/a%5c..%5c..%5cx", Route::NotFound),
            ("/c:%2fwindows", Route::NotFound),
            ("/bad%zz", Route::NotFound),
            ("/bad%c3", Route::NotFound),
            ("/x/%2e%2e%2f%2e%2e%2fy", Route::NotFound),
            // Inside the root is fine.
            ("/a/b%2f..%2fc.js", serve("a/c.js", true)),
        ];
        for (path, want) in table {
            assert_eq!(&classify("", "GET", path, "", None), want, "{path}");
        }
        assert_eq!(safe_relative_path("a/../../b"), Err(PathError::Escapes));
        assert_eq!(safe_relative_path("/etc"), Err(PathError::Absolute));
        assert_eq!(safe_relative_path("a\\b"), Err(PathError::Backslash));
        assert_eq!(safe_relative_path("a\0b"), Err(PathError::Nul));
        assert_eq!(safe_relative_path("./a//b/"), Ok("a/b/".into()));
        assert_eq!(percent_decode("%e2%9c%93"), Ok("✓".into()));
        assert_eq!(percent_decode("%"), Err(PathError::BadEncoding));
    }

    #[test]
    fn accept_header_rules() {
        for (accept, html) in [
            (None, true),
            (Some(""), true),
            (Some("*/*"), true),
            (Some("text/*"), true),
            (Some("text/html"), true),
            (Some("text/html; charset=UTF-8"), true),
            (Some("text/html;level=1"), false),
            (Some("application/json"), false),
            (Some("text/html;q=0"), false),
            (Some("text/html;q=0, */*"), false),
            (Some("application/json, */*;q=0.1"), true),
            (Some("application/xhtml+xml"), true),
            (Some("application/*"), false),
            (Some("text/html;q=2"), false),
        ] {
            assert_eq!(accepts_html(accept), html, "{accept:?}");
        }
    }

    #[test]
    fn content_types_of_the_spec() {
        for (f, ct) in [
            ("a.js", "application/javascript; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("index.html", "text/html; charset=utf-8"),
            ("asset-manifest.json", "application/json; charset=utf-8"),
            ("manifest.webmanifest", "application/manifest+json; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
            ("a/b.PNG", "image/png"),
            ("x.webp", "image/webp"),
            ("favicon.ico", "image/x-icon"),
            ("f.woff2", "font/woff2"),
            ("r.txt", "text/plain; charset=utf-8"),
            ("x.br", "application/octet-stream"),
            ("chat/main", "application/octet-stream"),
            (".hidden", "application/octet-stream"),
        ] {
            assert_eq!(content_type(f), ct, "{f}");
        }
        assert!(is_static_asset("a/b.js") && !is_static_asset("a.html") && !is_static_asset("chat/main") && !is_static_asset("x.v2"));
    }

    #[test]
    fn csp_like_the_captures() {
        let plain = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; frame-src 'self' http: https:; script-src 'self'; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; img-src 'self' data: blob: https:; media-src 'self' data: blob:; font-src 'self' https://fonts.gstatic.com; worker-src 'self'; connect-src 'self' ws: wss: data: https://api.openai.com https://tweakcn.com";
        assert_eq!(csp(None), plain);
        let hashes = vec![
            "sha256-g30CWRMlZumMHvjOkMce6NnzY9k1/zZU+9vzyMq8ETQ=".to_string(),
            "sha256-L6xeA4XnuquPxjSq0zkDDAXzWgCngcLdAr9Hgdf/GYU=".into(),
        ];
        // root-get.txt
        assert_eq!(
            csp(Some((&hashes, true, Some("127.0.0.1:28831")))),
            "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; frame-src 'self' http: https:; script-src 'self' 'sha256-g30CWRMlZumMHvjOkMce6NnzY9k1/zZU+9vzyMq8ETQ=' 'sha256-L6xeA4XnuquPxjSq0zkDDAXzWgCngcLdAr9Hgdf/GYU=' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; img-src 'self' data: blob: https:; media-src 'self' data: blob:; font-src 'self' https://fonts.gstatic.com; worker-src 'self'; connect-src 'self' ws: wss: data: https://api.openai.com https://tweakcn.com http://127.0.0.1:* https://127.0.0.1:*"
        );
        assert!(csp(Some((&[], false, Some("[::1]:18789")))).ends_with("http://[::1]:* https://[::1]:*"));
        assert!(csp(Some((&[], false, Some("evil\r\nx: y")))).ends_with("https://tweakcn.com"));
    }

    #[test]
    fn inline_script_hashes_skip_src_and_empty_scripts() {
        let html = "<html><head><script>a()</script><SCRIPT type=\"module\" src=\"/x.js\"></SCRIPT>\
                    <script data-src=\"y\">b()</script><script></script><scripty>no</scripty><script\n>c()</script></head></html>";
        let h = |s: &str| format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes())));
        assert_eq!(inline_script_hashes(html), vec![h("a()"), h("b()"), h("c()")]);
    }

    #[test]
    fn index_rewriting_per_spec() {
        let shipped = "<!doctype html>\n<html data-openclaw-control-ui-build-id=\"2026.9.6-x\" lang=\"en\">\n<head>\
            <link rel=\"icon\" href=\"./favicon.svg\"><script type=\"module\" crossorigin src=\"./assets/index-A.js\"></script>\
            <link rel=\"modulepreload\" href=\"./assets/b.js\"><script>if(x)y(\"./not-an-attribute\")</script></head></html>";
        let out = rewrite_index(shipped, "/openclaw", true);
        assert!(out.starts_with("<!doctype html>\n<html data-openclaw-control-ui-base-path=\"/openclaw\" data-openclaw-terminal-enabled=\"true\" lang=\"en\">"), "{out}");
        assert!(!out.contains("\"./assets/") && !out.contains(BUILD_ID_ATTRIBUTE) && !out.contains("<base"));
        assert!(out.contains("src=\"/openclaw/assets/index-A.js\"") && out.contains("href=\"/openclaw/favicon.svg\""));
        assert!(out.contains("y(\"./not-an-attribute\")"), "only attributes are rewritten");
        let root = rewrite_index(shipped, "", false);
        assert!(root.contains("<html data-openclaw-control-ui-base-path=\"\" data-openclaw-terminal-enabled=\"false\" lang=\"en\">"));
        assert!(root.contains("src=\"/assets/index-A.js\""));
        // Idempotent on the attributes: serving an already-served file does not stack them.
        assert_eq!(rewrite_index(&out, "/openclaw", true), out);
        // Hashes are of the served text.
        let r = render_index(shipped, "/openclaw", true);
        assert_eq!(r.script_hashes, inline_script_hashes(&out));
        assert_eq!(r.script_hashes.len(), 1);
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_598_834), "Wed, 25 Nov 2026 09:27:14 GMT");
        assert_eq!(parse_http_date("Wed, 25 Nov 2026 09:27:14 GMT"), Some(1_795_598_834));
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        for t in [0u64, 68_169_600, 951_782_400, 1_795_598_834, 4_102_444_799] {
            assert_eq!(parse_http_date(&http_date(t)), Some(t));
        }
        for bad in ["", "yesterday", "Wed, 25 Nov 2026 09:27:14 UTC", "Wed, 32 Nov 2026 09:27:14 GMT", "Wed, 25 Foo 2026 09:27:14 GMT"] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn accept_encoding_identity() {
        for (ae, ok) in [
            (None, true),
            (Some("gzip, br"), true),
            (Some("identity;q=0"), false),
            (Some("*;q=0"), false),
            (Some("*;q=0, identity"), true),
            (Some("br;q=1, identity;q=0.5"), true),
            (Some("identity;q=0.000"), false),
        ] {
            assert_eq!(identity_acceptable(ae), ok, "{ae:?}");
        }
    }

    fn job(rel: &str, spa: bool) -> FileJob {
        FileJob {
            target: ServeTarget { rel: rel.into(), spa_fallback: spa },
            head: false,
            base_path: String::new(),
            root: Some("/srv/ui".into()),
            terminal_enabled: true,
            host: Some("127.0.0.1:18789".into()),
            if_none_match: None,
            if_modified_since: None,
            accept_encoding: None,
            now_unix_ms: 1_795_598_900_000,
            hsts: None,
        }
    }

    fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    #[test]
    fn static_file_decisions() {
        let meta = FileMeta { mtime_unix_ms: 1_795_598_834_567, len: 60 };
        let j = job("assets/index-x.js", true);
        assert_eq!(j.static_file(meta), StaticPlan::ReadBody);
        let r = j.static_body(meta, b"x".to_vec());
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "content-type"), Some("application/javascript; charset=utf-8"));
        assert_eq!(header(&r, "cache-control"), Some("no-cache"));
        assert_eq!(header(&r, "last-modified"), Some("Wed, 25 Nov 2026 09:27:14 GMT"));
        assert_eq!(header(&r, "vary"), Some("Accept-Encoding"));
        assert_eq!(header(&r, "permissions-policy"), Some(PERMISSIONS_POLICY));
        assert_eq!(header(&r, "content-security-policy"), Some(csp(None).as_str()));
        let status = |j: FileJob| match j.static_file(meta) {
            StaticPlan::Respond(r) => r.status,
            StaticPlan::ReadBody => 200,
        };
        let with = |f: &dyn Fn(&mut FileJob)| {
            let mut j = job("assets/index-x.js", true);
            f(&mut j);
            j
        };
        assert_eq!(status(with(&|j| j.if_modified_since = Some("Wed, 25 Nov 2026 09:27:14 GMT".into()))), 304);
        assert_eq!(status(with(&|j| j.if_modified_since = Some("Wed, 25 Nov 2026 09:27:13 GMT".into()))), 200);
        assert_eq!(status(with(&|j| j.if_modified_since = Some("garbage".into()))), 200);
        assert_eq!(status(with(&|j| j.if_none_match = Some("*".into()))), 304);
        // If-None-Match (not `*`) takes precedence over If-Modified-Since.
        assert_eq!(
            status(with(&|j| {
                j.if_none_match = Some("\"abc\"".into());
                j.if_modified_since = Some("Wed, 25 Nov 2026 09:27:14 GMT".into());
            })),
            200
        );
        assert_eq!(status(with(&|j| j.accept_encoding = Some("identity;q=0".into()))), 406);
        let StaticPlan::Respond(head) = with(&|j| j.head = true).static_file(meta) else { panic!("HEAD reads nothing") };
        assert_eq!((head.status, header(&head, "content-length"), head.body.len()), (200, Some("60"), 0));
        // A future mtime is reported as now.
        let future = FileMeta { mtime_unix_ms: u64::MAX / 2, len: 1 };
        assert_eq!(header(&j.static_body(future, vec![]), "last-modified").map(str::to_string), Some(http_date(1_795_598_900)));
        let StaticPlan::Respond(nm) = with(&|j| j.if_none_match = Some("*".into())).static_file(meta) else { panic!() };
        assert!(header(&nm, "content-type").is_none() && nm.body.is_empty());
        let StaticPlan::Respond(na) = with(&|j| j.accept_encoding = Some("identity;q=0".into())).static_file(meta) else { panic!() };
        assert_eq!((header(&na, "cache-control"), na.body.as_slice()), (Some("no-store"), &b"Not Acceptable"[..]));
    }

    #[test]
    fn missing_files_and_the_shell() {
        assert!(job("chat/main", true).missing_serves_index());
        assert!(!job("chat/main", false).missing_serves_index());
        assert!(!job("assets/nope.js", true).missing_serves_index());
        assert!(job("foo.html", true).missing_serves_index());
        assert!(!job("fonts/index.html", false).missing_serves_index());
        assert_eq!(job("index.html", false).unavailable(&Unavailable::NotConfigured).status, 200);
        let rendered = render_index("<html><script>a()</script></html>", "", true);
        let r = job("chat/main", true).index(&rendered);
        assert_eq!(
            (r.status, header(&r, "content-type"), header(&r, "cache-control")),
            (200, Some("text/html; charset=utf-8"), Some("no-cache"))
        );
        let policy = header(&r, "content-security-policy").unwrap();
        assert!(policy.contains(&format!("'{}' 'wasm-unsafe-eval'", rendered.script_hashes[0])) && policy.contains("http://127.0.0.1:*"));
        let mut h = job("index.html", true);
        h.head = true;
        let r = h.index(&rendered);
        assert_eq!((r.status, r.body.len(), header(&r, "content-security-policy")), (200, 0, Some(csp(None).as_str())));
        let mut hsts = job("chat/main", true);
        hsts.hsts = Some("max-age=1".into());
        assert_eq!(header(&hsts.not_found(), "strict-transport-security"), Some("max-age=1"));
    }

    #[test]
    fn unavailable_page_where_the_shell_would_be() {
        let j = job("chat/main", true);
        let r = j.unavailable(&Unavailable::NotConfigured);
        assert_eq!((r.status, header(&r, "content-type")), (200, Some("text/html; charset=utf-8")));
        let text = String::from_utf8(r.body.clone()).unwrap();
        assert!(text.contains("gateway.controlUi.root") && text.contains("dist/control-ui"));
        let bad = Unavailable::BadRoot { root: "/nope<x>".into(), reason: "no index.html".into() };
        let r = j.unavailable(&bad);
        let text = String::from_utf8(r.body).unwrap();
        assert_eq!(r.status, 503);
        assert!(text.contains("/nope&lt;x&gt;") && text.contains("no index.html"));
        assert_eq!(job("assets/a.js", true).unavailable(&Unavailable::NotConfigured).status, 404);
        assert_eq!(job("chat/main", false).unavailable(&Unavailable::NotConfigured).status, 404);
    }

    #[test]
    fn config_json_like_the_captures() {
        let ui = UiConfig::default();
        let facts =
            ConfigFacts { server_version: "1.2.3", server_build_id: Some("b1"), agent_id: "main", agent_name: None, auth_required: true };
        let v = config_json(&ui, &facts);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        // controlui-config-auth.txt, in order.
        assert_eq!(
            keys,
            [
                "basePath",
                "assistantName",
                "assistantAvatar",
                "assistantAvatarSource",
                "assistantAvatarStatus",
                "assistantAvatarReason",
                "assistantAgentId",
                "serverVersion",
                "serverBuildId",
                "embedSandbox",
                "allowExternalEmbedUrls",
                "automaticallyFetchFavicons",
                "communityInvite",
                "terminalEnabled",
                "cliAgentsEnabled",
                "pluginAssetsRequireAuth",
                "pluginFrameGrants"
            ]
        );
        assert_eq!((v["basePath"].as_str(), v["assistantName"].as_str()), (Some(""), Some("Assistant")));
        let cfg = json!({"gateway": {"controlUi": {"root": "~/ui", "basePath": "openclaw/", "embedSandbox": "strict", "communityInvite": false}}});
        let ui = UiConfig::from_config(&cfg);
        assert_eq!((ui.root.as_deref(), ui.base_path.as_str(), ui.embed_sandbox), (Some("~/ui"), "/openclaw", "strict"));
        let v = config_json(&ui, &ConfigFacts { agent_name: Some("Molty"), agent_id: "ops", ..facts });
        assert!(v.get("serverBuildId").is_none(), "a configured root has no serverBuildId");
        assert_eq!(
            (v["basePath"].as_str(), v["assistantName"].as_str(), v["assistantAgentId"].as_str()),
            (Some("/openclaw"), Some("Molty"), Some("ops"))
        );
        assert_eq!(v["communityInvite"], false);
        let r = config_response(&v, true);
        assert!(r.body.is_empty() && header(&r, "cache-control") == Some("no-cache"));
    }

    #[test]
    fn ui_headers_on_router_responses() {
        let r = with_ui_headers(HttpResponse::json(401, "{}".into()));
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "X-Content-Type-Options",
                "Referrer-Policy",
                "Permissions-Policy",
                "X-Frame-Options",
                "Content-Security-Policy",
                "Content-Type"
            ]
        );
        assert_eq!(header(&r, "permissions-policy"), Some(PERMISSIONS_POLICY));
        assert_eq!(redirect("/openclaw/?x=1").headers.last().map(|(_, v)| v.as_str()), Some("/openclaw/?x=1"));
    }
}
