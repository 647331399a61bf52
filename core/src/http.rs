//! HTTP routing decisions on the gateway port (spec http §1, §2, §6.1, §6.10): WebSocket upgrade
//! validation and admission, the probe routes, and the fallbacks. Request head in, response (or
//! "upgrade this socket") out; the shell does the IO.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use serde_json::json;
use sha1::{Digest, Sha1};

use crate::auth::{AuthMode, constant_time_eq};
use crate::gateway::{Admission, Hub};
use crate::ingress::{Attribution, PROXY_ATTRIBUTION_REQUIRED_BODY, RequestFacts, attribute};

/// A request head as the shell sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub remote: IpAddr,
}

impl RequestHead<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| std::str::from_utf8(v).ok()).map(str::trim)
    }
}

/// A complete response for the shell to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// `Connection: close` after this response.
    pub close: bool,
}

impl HttpResponse {
    /// A response with the baseline security headers every router response carries.
    fn routed(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: vec![
                ("X-Content-Type-Options", "nosniff".into()),
                ("Referrer-Policy", "no-referrer".into()),
                ("Permissions-Policy", "camera=(), microphone=(self), geolocation=()".into()),
                ("Content-Type", content_type.into()),
            ],
            body: body.into(),
            close: false,
        }
    }

    fn json(status: u16, body: String) -> Self {
        Self::routed(status, "application/json; charset=utf-8", body)
    }

    fn probe(status: u16, body: serde_json::Value) -> Self {
        let mut r = Self::json(status, body.to_string());
        r.headers.push(("Cache-Control", "no-store".into()));
        r
    }

    fn text(status: u16, body: &str) -> Self {
        Self::routed(status, "text/plain; charset=utf-8", body)
    }

    /// Raw handshake rejections (as the reference's WebSocket library writes them).
    fn raw(status: u16, content_type: &str, body: &str) -> Self {
        HttpResponse { status, headers: vec![("Content-Type", content_type.into())], body: body.as_bytes().to_vec(), close: true }
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum HttpAction {
    Respond(HttpResponse),
    /// Answer `101 Switching Protocols` with this `Sec-WebSocket-Accept` and hand the socket to
    /// a [`crate::connection::ServerConnection`] built from the admission.
    Upgrade {
        accept_key: String,
        admission: Admission,
    },
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn websocket_accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

fn valid_ws_key(key: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(key.trim()).is_ok_and(|b| b.len() == 16)
}

fn bearer(head: &RequestHead<'_>) -> Option<String> {
    let v = head.header("authorization")?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_string()).filter(|s| !s.is_empty())
}

/// Route one HTTP request (spec http §2, the parts served so far).
pub fn route(hub: &Arc<Hub>, head: &RequestHead<'_>, now: Instant, unix_ms: u64) -> HttpAction {
    if let Some(upgrade) = head.header("upgrade") {
        return HttpAction::from_upgrade(hub, head, upgrade);
    }
    // Liveness answers before anything else, proxy attribution included.
    if matches!(head.path, "/health" | "/healthz") {
        return HttpAction::Respond(probe_route(head, || HttpResponse::probe(200, json!({"ok": true, "status": "live"}))));
    }
    let facts = RequestFacts::from_headers(head.headers.iter().copied());
    let settings = hub.settings();
    let attribution = attribute(head.remote, &facts, &settings.trusted_proxies, settings.allow_real_ip_fallback);
    if attribution == Attribution::Unattributable {
        return HttpAction::Respond(HttpResponse::json(403, PROXY_ATTRIBUTION_REQUIRED_BODY.to_string()));
    }
    let detailed = attribution.is_direct_local() || bearer_valid(hub, head);
    let action = match head.path {
        "/ready" | "/readyz" => probe_route(head, || {
            let draining = hub.is_draining();
            let failing: Vec<&str> = if draining { vec!["gateway-draining"] } else { vec![] };
            let status = if draining { 503 } else { 200 };
            if detailed {
                HttpResponse::probe(
                    status,
                    json!({"ready": !draining, "failing": failing, "uptimeMs": hub.uptime_ms(now), "eventLoop": hub.event_loop_json()}),
                )
            } else {
                HttpResponse::probe(status, json!({"ready": !draining}))
            }
        }),
        "/startup" | "/startupz" => probe_route(head, || {
            let draining = hub.is_draining();
            let (status, body) =
                if draining { (503, json!({"ok": false, "status": "draining"})) } else { (200, json!({"ok": true, "status": "started"})) };
            let mut body = body;
            if detailed {
                body["version"] = json!(hub.info().version);
                body["uptimeMs"] = json!(hub.uptime_ms(now));
            }
            HttpResponse::probe(status, body)
        }),
        _ => HttpResponse::text(404, "Not Found"),
    };
    let _ = unix_ms;
    HttpAction::Respond(action)
}

fn probe_route(head: &RequestHead<'_>, ok: impl FnOnce() -> HttpResponse) -> HttpResponse {
    match head.method {
        "GET" => ok(),
        "HEAD" => {
            // HEAD keeps the headers (Content-Length of the GET body is set by the shell).
            ok()
        }
        _ => {
            let mut r = HttpResponse::text(405, "Method Not Allowed");
            r.headers.push(("Allow", "GET, HEAD".into()));
            r
        }
    }
}

fn bearer_valid(hub: &Hub, head: &RequestHead<'_>) -> bool {
    let Some(presented) = bearer(head) else { return false };
    let s = hub.settings();
    let secret = match s.auth.mode {
        AuthMode::None => return false,
        AuthMode::Token | AuthMode::TrustedProxy => s.auth.token.as_ref(),
        AuthMode::Password => s.auth.password.as_ref(),
    };
    secret.is_some_and(|sec| constant_time_eq(presented.as_bytes(), sec.expose().as_bytes()))
}

impl HttpAction {
    fn from_upgrade(hub: &Arc<Hub>, head: &RequestHead<'_>, upgrade: &str) -> HttpAction {
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return HttpAction::Respond(HttpResponse::raw(400, "text/html", "Invalid Upgrade header"));
        }
        if head.method != "GET" {
            return HttpAction::Respond(HttpResponse::raw(405, "text/html", "Invalid HTTP method"));
        }
        let Some(key) = head.header("sec-websocket-key").filter(|k| valid_ws_key(k)) else {
            return HttpAction::Respond(HttpResponse::raw(400, "text/html", "Missing or invalid Sec-WebSocket-Key header"));
        };
        if !matches!(head.header("sec-websocket-version"), Some("13" | "8")) {
            return HttpAction::Respond(HttpResponse::raw(400, "text/html", "Missing or invalid Sec-WebSocket-Version header"));
        }
        let facts = RequestFacts::from_headers(head.headers.iter().copied());
        match hub.admit_upgrade(head.remote, &facts) {
            Ok(admission) => HttpAction::Upgrade { accept_key: websocket_accept_key(key), admission },
            Err(rej) => HttpAction::Respond(HttpResponse::raw(rej.status, rej.content_type, &rej.body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
