//! HTTP on the gateway port (spec http §1–§8): routing in the reference's order, WebSocket
//! upgrade validation and admission, probes, authentication and scopes, body limits, and the
//! API routes. Request head in, a decision out ([`HttpAction`]): respond, upgrade, or read the
//! body and come back with it ([`handle_body`] → [`ApiAction`]). The shell does the IO.

pub mod admin_rpc;
pub mod control_ui;
pub mod hooks;
pub mod metrics;

mod auth;
pub mod chat;
pub mod responses;
pub(crate) mod routes;

pub use auth::HttpCaller;
pub use routes::{MethodCall, StoreJob, finish_embeddings, method_reply};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use serde_json::json;
use sha1::{Digest, Sha1};

use crate::auth::ingress::{Attribution, PROXY_ATTRIBUTION_REQUIRED_BODY, RequestFacts, attribute};
use crate::auth::{AuthMode, constant_time_eq};
use crate::gateway::{Admission, Hub};
use crate::openai::ApiError;
use crate::openai::api_response::{ApiResponse, BodyError};

/// A request head as the shell sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// The query string (without `?`), empty when there is none.
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub remote: IpAddr,
}

impl RequestHead<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
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
    pub fn routed(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
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

    pub fn json(status: u16, body: String) -> Self {
        Self::routed(status, "application/json; charset=utf-8", body)
    }

    /// An OpenAI-style error `{"error":{"message","type"}}`, with the configured HSTS header.
    pub fn api_error(hub: &Hub, e: &ApiError) -> Self {
        Self::json(e.status, e.body().to_string()).secured(hub)
    }

    /// Add the configured `Strict-Transport-Security` (spec http §3).
    pub fn secured(mut self, hub: &Hub) -> Self {
        if let Some(h) = &hub.settings().api.hsts {
            if !self.headers.iter().any(|(k, _)| *k == "Strict-Transport-Security") {
                self.headers.push(("Strict-Transport-Security", h.clone()));
            }
        }
        self
    }

    fn method_not_allowed(allow: &str) -> Self {
        let mut r = HttpResponse::text(405, "Method Not Allowed");
        r.headers.push(("Allow", allow.into()));
        r
    }

    fn probe(status: u16, body: serde_json::Value) -> Self {
        let mut r = Self::json(status, body.to_string());
        r.headers.push(("Cache-Control", "no-store".into()));
        r
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self::routed(status, "text/plain; charset=utf-8", body)
    }

    /// `503 gateway_unavailable` while the gateway drains (spec http §1).
    fn draining() -> Self {
        let mut r = HttpResponse::json(
            503,
            json!({"error": {"message": "Gateway is temporarily unavailable while suspending or restarting", "type": "service_unavailable", "code": "gateway_unavailable"}}).to_string(),
        );
        r.headers.push(("Retry-After", "1".into()));
        r.headers.push(("Cache-Control", "no-store".into()));
        r
    }

    /// Raw handshake rejections (as the reference's WebSocket library writes them).
    fn raw(status: u16, content_type: &str, body: &str) -> Self {
        HttpResponse { status, headers: vec![("Content-Type", content_type.into())], body: body.as_bytes().to_vec(), close: true }
    }
}

/// The one conversion of the pure API modules' responses: the baseline security headers, the
/// route headers (`Allow`, `Cache-Control`, `Retry-After`) and `Connection: close`. The caller
/// adds the configured HSTS with [`HttpResponse::secured`].
impl From<ApiResponse> for HttpResponse {
    fn from(a: ApiResponse) -> Self {
        let mut r = HttpResponse::routed(a.status, a.content_type, a.body);
        // Route headers go before `Content-Type`, where the reference writes them.
        let at = r.headers.len().saturating_sub(1);
        for (i, h) in a.headers.into_iter().enumerate() {
            r.headers.insert(at + i, h);
        }
        r.close = a.close;
        r
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum HttpAction {
    Respond(HttpResponse),
    /// Answer after this delay (the loopback failed-auth back-off, spec http §4.6).
    RespondAfter(std::time::Duration, HttpResponse),
    /// Answer `101 Switching Protocols` with this `Sec-WebSocket-Accept` and hand the socket to
    /// a [`crate::connection::ServerConnection`] built from the admission.
    Upgrade {
        accept_key: String,
        admission: Admission,
    },
    /// `GET /v1/responses/{id}`: look the response up in the session store (owner `caller`);
    /// answer with [`stored_response_found`] or [`stored_response_missing`].
    GetResponse {
        id: String,
        caller: HttpCaller,
    },
    /// The caller is authorized: read the body (refuse a declared `Content-Length` over `limit`
    /// up front; count streamed bytes; give up after [`BODY_TIMEOUT`]), then call
    /// [`handle_body`] — or [`ApiRoute::body_error`].
    ReadBody {
        request: Box<ApiRequest>,
        limit: usize,
    },
    /// Answer from the session store (blocking): run [`StoreJob::run`] off the reactor.
    Store(Box<StoreJob>),
    /// A Control UI file (spec http §2 stage 16): find it under the UI root and answer with the
    /// job's responses ([`crate::http::control_ui::FileJob`]).
    ControlUi(Box<crate::http::control_ui::FileJob>),
}

/// A stalled request body is answered 408 after this (spec http §8).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The API routes that take a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoute {
    ChatCompletions,
    Responses,
    Embeddings,
    ToolsInvoke,
    /// `POST /api/v1/admin/rpc`.
    AdminRpc,
    /// `POST <hooks.path>/<name>`.
    Hook(String),
}

impl ApiRoute {
    /// Body limit (spec http §8).
    pub fn body_limit(&self) -> usize {
        const MIB: usize = 1024 * 1024;
        match self {
            ApiRoute::ChatCompletions | ApiRoute::Responses => 20 * MIB,
            ApiRoute::Embeddings => crate::openai::embeddings::MAX_BODY_BYTES,
            ApiRoute::ToolsInvoke => crate::tools::MAX_BODY_BYTES,
            ApiRoute::AdminRpc => crate::http::admin_rpc::MAX_BODY_BYTES,
            ApiRoute::Hook(_) => crate::http::hooks::MAX_BODY_BYTES,
        }
    }

    /// A body that could not be read (413 over the limit, 408 stalled, 400 cut off), in the
    /// route's error family, with `Connection: close` (the rest of the body is not read).
    pub fn body_error(&self, hub: &Hub, e: BodyError) -> HttpResponse {
        let r = match self {
            ApiRoute::AdminRpc => crate::http::admin_rpc::body_error(e),
            ApiRoute::Hook(_) => crate::http::hooks::body_error(e),
            ApiRoute::ChatCompletions | ApiRoute::Responses | ApiRoute::Embeddings | ApiRoute::ToolsInvoke => {
                crate::openai::api_response::openai_body_error(e)
            }
        };
        HttpResponse::from(r).secured(hub)
    }

    /// 413 in the route's error family.
    pub fn too_large(&self, hub: &Hub) -> HttpResponse {
        self.body_error(hub, BodyError::TooLarge)
    }

    /// 408 for a body that stopped arriving.
    pub fn body_timeout(&self, hub: &Hub) -> HttpResponse {
        self.body_error(hub, BodyError::Timeout)
    }
}

/// `x-openclaw-*` request headers of the API routes (spec http §5.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiHeaders {
    /// `x-openclaw-agent-id` (alias `x-openclaw-agent`).
    pub agent_id: Option<String>,
    pub model: Option<String>,
    pub session_key: Option<String>,
    pub message_channel: Option<String>,
}

/// An authorized API request waiting for its body.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub route: ApiRoute,
    pub caller: HttpCaller,
    pub headers: ApiHeaders,
    /// The path (e.g. for `GET /v1/responses/{id}`-style routes).
    pub path: String,
}

/// Per-request inputs the core cannot produce: time and randomness.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    pub now: Instant,
    pub unix_ms: u64,
    /// Fresh random bytes (ids).
    pub random: [u8; 32],
}

impl Env {
    /// A UUID v4 from bytes `[offset..offset+16]` of the randomness (offset 0 or 16).
    pub fn uuid(&self, offset: usize) -> String {
        crate::ids::uuid_v4(self.random16(offset))
    }

    /// A UUID v7 (time-ordered, 74 random bits from `[offset..offset+16]`) for the key of a
    /// session created by this request: the store appends such keys at the end of its index.
    pub fn session_uuid(&self, offset: usize) -> String {
        crate::ids::uuid_v7(self.unix_ms, self.random16(offset))
    }

    /// Bytes `[offset..offset+16]` of the randomness (offset 0 or 16; past that, zeros).
    fn random16(&self, offset: usize) -> [u8; 16] {
        let mut b = [0u8; 16];
        if let Some(r) = self.random.get(offset..offset + 16) {
            b.copy_from_slice(r);
        }
        b
    }
}

/// What to do with a request whose body was read.
#[derive(Debug)]
pub enum ApiAction {
    Respond(HttpResponse),
    /// Answer with `response`; log `log` (the server-side reason of a 500, never sent).
    Fail {
        response: HttpResponse,
        log: String,
    },
    /// Run an agent turn and render it as a chat completion.
    Chat(Box<chat::ChatJob>),
    /// Look up the `previous_response_id` history (if any), then plan and run the turn.
    Responses(Box<responses::ResponsesJob>),
    /// Send the upstream embeddings request; answer with [`finish_embeddings`].
    Embeddings(Box<crate::openai::embeddings::EmbeddingsCall>),
    /// Answer from the session store (blocking): run [`StoreJob::run`] off the reactor.
    Store(Box<StoreJob>),
    /// An admin RPC method the shell carries out; answer with [`method_reply`].
    Method(Box<MethodCall>),
    /// Answer with `response`, then execute the run (hooks `/agent`) like a WS `agent` run.
    StartRun {
        response: HttpResponse,
        run: crate::agent::RunSpec,
    },
    /// A hooks `/wake` event: log it, answer with `response`.
    Wake {
        response: HttpResponse,
        wake: crate::http::hooks::WakeRequest,
    },
}

impl ApiAction {
    /// Add the configured HSTS to the responses this action carries.
    fn secured(self, hub: &Hub) -> ApiAction {
        match self {
            ApiAction::Respond(r) => ApiAction::Respond(r.secured(hub)),
            ApiAction::Fail { response, log } => ApiAction::Fail { response: response.secured(hub), log },
            ApiAction::StartRun { response, run } => ApiAction::StartRun { response: response.secured(hub), run },
            ApiAction::Wake { response, wake } => ApiAction::Wake { response: response.secured(hub), wake },
            other => other,
        }
    }
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

/// Route one HTTP request (spec http §2: first match wins).
pub fn route(hub: &Arc<Hub>, head: &RequestHead<'_>, now: Instant, unix_ms: u64) -> HttpAction {
    if let Some(upgrade) = head.header("upgrade") {
        return HttpAction::from_upgrade(hub, head, upgrade);
    }
    // Only `100-continue` is an expectation we meet (hyper sends the 100 when the body is read).
    if head.header("expect").is_some_and(|e| !e.eq_ignore_ascii_case("100-continue")) {
        return HttpAction::Respond(HttpResponse { status: 417, headers: Vec::new(), body: Vec::new(), close: false });
    }
    route_inner(hub, head, now, unix_ms).secured(hub)
}

impl HttpAction {
    fn secured(self, hub: &Hub) -> HttpAction {
        match self {
            HttpAction::Respond(r) => HttpAction::Respond(r.secured(hub)),
            HttpAction::RespondAfter(d, r) => HttpAction::RespondAfter(d, r.secured(hub)),
            other => other,
        }
    }
}

fn respond(r: HttpResponse) -> HttpAction {
    HttpAction::Respond(r)
}

fn route_inner(hub: &Arc<Hub>, head: &RequestHead<'_>, now: Instant, unix_ms: u64) -> HttpAction {
    // Liveness answers before anything else, proxy attribution included.
    if matches!(head.path, "/health" | "/healthz") {
        return respond(probe_route(head, || HttpResponse::probe(200, json!({"ok": true, "status": "live"}))));
    }
    let facts = RequestFacts::from_headers(head.headers.iter().copied());
    let settings = hub.settings();
    let attribution = attribute(head.remote, &facts, &settings.trusted_proxies, settings.allow_real_ip_fallback);
    if attribution == Attribution::Unattributable {
        return respond(HttpResponse::json(403, PROXY_ATTRIBUTION_REQUIRED_BODY.to_string()));
    }
    let api = settings.api.clone();
    match head.path {
        "/ready" | "/readyz" | "/startup" | "/startupz" => {
            let detailed = attribution.is_direct_local() || bearer_valid(hub, head);
            return respond(probe(hub, head, detailed, now));
        }
        // The worker/transfer and MCP-app namespaces; the rest of `/__openclaw__/` is the Control
        // UI's (the SPA shell, spec control-ui §6.3).
        p if crate::http::control_ui::is_internal_namespace(p) => return respond(HttpResponse::text(404, "Not Found")),
        _ => {}
    }
    // Stage 6: hooks, with their own token and limiter; a disabled hooks path falls through.
    if api.hooks.is_some() {
        let client = attribution.client_ip().unwrap_or(head.remote);
        let hook_head = crate::http::hooks::HookHead {
            method: head.method,
            path: head.path,
            query: (!head.query.is_empty()).then_some(head.query),
            authorization: head.header("authorization"),
            token_header: head.header("x-openclaw-token"),
            client,
        };
        let hooks = hub.settings().api.hooks.clone();
        match hub.with_hook_limiter(|limiter| crate::http::hooks::gate(hooks.as_ref(), &hook_head, limiter, now)) {
            crate::http::hooks::Gate::NotMine => {}
            crate::http::hooks::Gate::Respond(r) => return respond(r.into()),
            crate::http::hooks::Gate::Authorized { .. } if hub.is_draining() => return respond(HttpResponse::draining()),
            crate::http::hooks::Gate::Authorized { hook } => {
                let caller = HttpCaller { scopes: Vec::new(), owner: false, client_ip: client, subject: "hook".into() };
                let request = ApiRequest { route: ApiRoute::Hook(hook), caller, headers: api_headers(head), path: head.path.to_string() };
                return HttpAction::ReadBody { limit: request.route.body_limit(), request: Box::new(request) };
            }
        }
    }
    // The API routes, in the reference's order; a disabled endpoint does not exist (plain 404).
    let path = head.path;
    enum Target {
        Models(Option<String>),
        Body(ApiRoute, &'static str),
        StoredResponse(String),
        /// `/sessions/<key>/history` (GET) or `/kill` (POST); `None`: a key that does not decode.
        Session {
            key: Option<String>,
            kill: bool,
        },
        AdminRpc,
        /// `GET /metrics` (operator §4).
        Metrics,
    }
    let target = if path == "/metrics" {
        Some(Target::Metrics)
    } else if api.openai_enabled() && (path == "/v1/models" || path.starts_with("/v1/models/")) {
        Some(Target::Models(path.strip_prefix("/v1/models/").map(str::to_string)))
    } else if api.openai_enabled() && path == "/v1/embeddings" {
        Some(Target::Body(ApiRoute::Embeddings, "POST"))
    } else if path == "/tools/invoke" {
        Some(Target::Body(ApiRoute::ToolsInvoke, "POST"))
    } else if let Some((key, kill)) = routes::session_path(path) {
        Some(Target::Session { key, kill })
    } else if api.responses && path == "/v1/responses" {
        Some(Target::Body(ApiRoute::Responses, "POST"))
    } else if api.responses && path.starts_with("/v1/responses/") {
        // Retrieval of stored responses: beyond the reference (which answers 404).
        Some(Target::StoredResponse(path["/v1/responses/".len()..].to_string()))
    } else if api.chat_completions && path == "/v1/chat/completions" {
        Some(Target::Body(ApiRoute::ChatCompletions, "POST"))
    } else if api.admin_rpc && path == "/api/v1/admin/rpc" {
        Some(Target::AdminRpc)
    } else {
        None
    };
    let Some(target) = target else {
        return control_ui_stage(hub, head, &facts, &attribution, now, unix_ms);
    };
    if let Target::AdminRpc = target {
        // A plugin route: gateway auth before the method check (spec http §4.2, §6.7); a paired
        // operator's device token is accepted too (§4.1).
        let caller = match auth::authorize_with_device_token(hub, head, &facts, &attribution, now) {
            Ok(c) => c,
            Err(action) => return action,
        };
        if head.method != "POST" {
            return respond(crate::http::admin_rpc::method_not_allowed().into());
        }
        if hub.is_draining() {
            return respond(HttpResponse::draining());
        }
        let request = ApiRequest { route: ApiRoute::AdminRpc, caller, headers: api_headers(head), path: path.to_string() };
        return HttpAction::ReadBody { limit: request.route.body_limit(), request: Box::new(request) };
    }
    if let Target::Session { key: None, .. } = target {
        return respond(HttpResponse::api_error(hub, &ApiError::invalid("invalid session key")));
    }
    // Method before auth (spec http §4.2).
    let allowed = match &target {
        Target::Models(_) | Target::StoredResponse(_) | Target::Session { kill: false, .. } | Target::Metrics => "GET",
        Target::Session { kill: true, .. } | Target::AdminRpc => "POST",
        Target::Body(_, m) => m,
    };
    if head.method != allowed {
        return respond(HttpResponse::method_not_allowed(allowed));
    }
    if hub.is_draining() {
        return respond(HttpResponse::draining());
    }
    let caller = match auth::authorize(hub, head, &facts, &attribution, now) {
        Ok(c) => c,
        Err(action) => return action,
    };
    let required = match &target {
        Target::Models(_) | Target::StoredResponse(_) | Target::Session { kill: false, .. } | Target::Metrics => crate::auth::scopes::READ,
        Target::Body(..) => crate::auth::scopes::WRITE,
        // The reference's kill route needs admin.
        Target::Session { kill: true, .. } | Target::AdminRpc => crate::auth::scopes::ADMIN,
    };
    if let Err(r) = caller.require(required) {
        return respond(r);
    }
    let headers = api_headers(head);
    match target {
        Target::Metrics => {
            let body = crate::http::metrics::render(&hub.metrics_figures(now)).into_bytes();
            let headers = vec![("content-type", crate::http::metrics::CONTENT_TYPE.to_string())];
            respond(HttpResponse { status: 200, headers, body, close: false })
        }
        Target::Models(None) => respond(HttpResponse::json(200, crate::openai::models_list(&api.agents).to_string())),
        Target::Models(Some(id)) => match crate::openai::model_get(&api.agents, &id) {
            Ok(v) => respond(HttpResponse::json(200, v.to_string())),
            Err(e) => respond(HttpResponse::json(e.status, e.body().to_string())),
        },
        Target::StoredResponse(id) => HttpAction::GetResponse { id, caller },
        Target::Session { key: Some(key), kill } => HttpAction::Store(Box::new(if kill {
            StoreJob::SessionKill { key }
        } else {
            StoreJob::SessionHistory { key, limit: routes::history_limit(head.query) }
        })),
        Target::Session { key: None, .. } | Target::AdminRpc => respond(HttpResponse::text(404, "Not Found")),
        Target::Body(route, _) => {
            // `x-openclaw-model` picks the backend model: owners only (spec http §4.3).
            if headers.model.is_some() {
                if let Err(r) = caller.require(crate::auth::scopes::ADMIN) {
                    return respond(r);
                }
            }
            let limit = route.body_limit();
            HttpAction::ReadBody { request: Box::new(ApiRequest { route, caller, headers, path: path.to_string() }), limit }
        }
    }
}

/// Stage 16: the Control UI (spec http §6.9, §6.10; control-ui §6), then the plain 404.
fn control_ui_stage(
    hub: &Arc<Hub>,
    head: &RequestHead<'_>,
    facts: &RequestFacts,
    attribution: &Attribution,
    now: Instant,
    unix_ms: u64,
) -> HttpAction {
    use crate::http::control_ui::{self as ui, Route};
    let settings = hub.settings();
    let cfg = &settings.api.control_ui;
    if !cfg.enabled {
        return respond(HttpResponse::text(404, "Not Found"));
    }
    match ui::classify(&cfg.base_path, head.method, head.path, head.query, head.header("accept")) {
        Route::NotMine => respond(HttpResponse::text(404, "Not Found")),
        Route::NotFound => respond(ui::not_found()),
        Route::Redirect(location) => respond(ui::redirect(&location)),
        Route::Config => {
            // A Control UI read endpoint: gateway auth, or a paired operator's device token.
            match auth::authorize_with_device_token(hub, head, facts, attribution, now) {
                Ok(_) => {}
                Err(HttpAction::Respond(r)) => return respond(ui::with_ui_headers(r)),
                Err(HttpAction::RespondAfter(d, r)) => return HttpAction::RespondAfter(d, ui::with_ui_headers(r)),
                Err(other) => return other,
            }
            let agent_id =
                settings.api.agents.default.clone().or_else(|| settings.api.agents.ids.first().cloned()).unwrap_or_else(|| "main".into());
            let facts = ui::ConfigFacts {
                server_version: &hub.info().version,
                server_build_id: hub.info().build_id.as_deref(),
                agent_id: &agent_id,
                agent_name: settings.api.agent_configs.get(&agent_id).and_then(|a| a.name.as_deref()),
                auth_required: settings.auth.mode != AuthMode::None,
            };
            respond(ui::config_response(&ui::config_json(cfg, &facts), head.method == "HEAD"))
        }
        Route::Serve(target) => HttpAction::ControlUi(Box::new(ui::FileJob {
            target,
            head: head.method == "HEAD",
            base_path: cfg.base_path.clone(),
            root: cfg.root.clone(),
            terminal_enabled: cfg.terminal_enabled,
            host: head.header("host").map(str::to_string),
            if_none_match: head.header("if-none-match").map(str::to_string),
            if_modified_since: head.header("if-modified-since").map(str::to_string),
            accept_encoding: head.header("accept-encoding").map(str::to_string),
            now_unix_ms: unix_ms,
            hsts: settings.api.hsts.clone(),
        })),
    }
}

fn api_headers(head: &RequestHead<'_>) -> ApiHeaders {
    let get = |n: &str| head.header(n).map(str::to_string).filter(|v| !v.is_empty());
    ApiHeaders {
        agent_id: get("x-openclaw-agent-id").or_else(|| get("x-openclaw-agent")),
        model: get("x-openclaw-model"),
        session_key: get("x-openclaw-session-key"),
        message_channel: get("x-openclaw-message-channel"),
    }
}

/// `/ready(z)` and `/startup(z)` (spec http §6.1).
fn probe(hub: &Hub, head: &RequestHead<'_>, detailed: bool, now: Instant) -> HttpResponse {
    match head.path {
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
        _ => probe_route(head, || {
            let draining = hub.is_draining();
            let (status, mut body) =
                if draining { (503, json!({"ok": false, "status": "draining"})) } else { (200, json!({"ok": true, "status": "started"})) };
            if detailed {
                body["version"] = json!(hub.info().version);
                body["uptimeMs"] = json!(hub.uptime_ms(now));
            }
            HttpResponse::probe(status, body)
        }),
    }
}

/// `GET /v1/responses/{id}` found: the stored response object.
pub fn stored_response_found(hub: &Hub, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::json(200, body.to_string()).secured(hub)
}

/// `GET /v1/responses/{id}` for an unknown (or someone else's) response: 404 in the OpenAI shape.
pub fn stored_response_missing(hub: &Hub, id: &str) -> HttpResponse {
    let e = ApiError { status: 404, kind: "invalid_request_error", message: format!("Response with id '{id}' not found.") };
    HttpResponse::api_error(hub, &e)
}

/// Answer an API request whose body has been read.
pub fn handle_body(hub: &Arc<Hub>, request: &ApiRequest, body: &[u8], env: &Env) -> ApiAction {
    let action = match &request.route {
        ApiRoute::ChatCompletions => chat::handle(hub, request, body, env),
        ApiRoute::Responses => responses::handle(hub, request, body, env),
        ApiRoute::Embeddings => routes::embeddings(hub, request, body),
        ApiRoute::ToolsInvoke => routes::tools_invoke(body),
        ApiRoute::AdminRpc => routes::admin_rpc(hub, request, body, env),
        ApiRoute::Hook(name) => routes::hook(hub, name, body, env),
    };
    action.secured(hub)
}

fn probe_route(head: &RequestHead<'_>, ok: impl FnOnce() -> HttpResponse) -> HttpResponse {
    match head.method {
        "GET" => ok(),
        "HEAD" => {
            // HEAD keeps the headers (Content-Length of the GET body is set by the shell).
            ok()
        }
        _ => HttpResponse::method_not_allowed("GET, HEAD"),
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
