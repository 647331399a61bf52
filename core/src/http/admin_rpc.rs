//! `POST /api/v1/admin/rpc` — the bundled plugin `admin-http-rpc` (spec http §6.7, default
//! off): a gateway method called over HTTP, limited to an allowlist.
//!
//! Shell flow (routing stage 15, plugin routes; only when `ApiConfig::admin_rpc`, otherwise the
//! path is the plain 404): path match → gateway auth (**before** the method check; the 401 is
//! the OpenAI-family body without `Cache-Control`) → `POST` only ([`method_not_allowed`]) →
//! body read (≤ [`MAX_BODY_BYTES`]; [`body_error`] on 413/408) → [`prepare`] → for
//! [`Step::Call`] run the method (as [`crate::methods::dispatch`] does for WS, with the caller's
//! scopes) → [`respond`]. [`handle`] does the last three steps with a closure.
//!
//! Every response of this module carries `Cache-Control: no-store`.

use serde_json::{Value, json};

use crate::connection::Reply;
use crate::openai::api_response::ApiResponse;
pub use crate::openai::api_response::BodyError;
use crate::wire::{ErrorShape, error_code};

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The methods exposed over HTTP (the plugin's allowlist, in its order).
pub const ALLOWED_METHODS: &[&str] = &[
    // gateway
    "health",
    "status",
    "logs.tail",
    "usage.status",
    "usage.cost",
    "gateway.restart.request",
    "gateway.restore.status",
    "gateway.suspend.prepare",
    "gateway.suspend.status",
    "gateway.suspend.resume",
    // discovery
    "commands.list",
    // config
    "config.get",
    "config.schema",
    "config.schema.lookup",
    "config.set",
    "config.patch",
    "config.apply",
    // channels
    "channels.status",
    "channels.start",
    "channels.stop",
    "channels.logout",
    // web
    "web.login.start",
    "web.login.wait",
    // models
    "models.list",
    "models.authStatus",
    // agents
    "agents.list",
    "agents.create",
    "agents.update",
    "agents.delete",
    // approvals
    "exec.approvals.get",
    "exec.approvals.set",
    "exec.approvals.node.get",
    "exec.approvals.node.set",
    // cron
    "cron.status",
    "cron.list",
    "cron.get",
    "cron.runs",
    "cron.add",
    "cron.update",
    "cron.remove",
    "cron.run",
    // devices
    "device.pair.list",
    "device.pair.approve",
    "device.pair.reject",
    "device.pair.remove",
    // nodes
    "node.list",
    "node.describe",
    "node.pair.list",
    "node.pair.approve",
    "node.pair.reject",
    "node.pair.remove",
    "node.rename",
    // tasks
    "tasks.list",
    "tasks.get",
    "tasks.cancel",
    // diagnostics
    "doctor.memory.status",
    "update.status",
];

/// Is `method` exposed over HTTP?
pub fn is_allowed(method: &str) -> bool {
    ALLOWED_METHODS.contains(&method)
}

fn no_store(r: ApiResponse) -> ApiResponse {
    r.with_header("Cache-Control", "no-store")
}

/// A transport-level error `{"ok":false,"error":{"type","message"}}`.
pub fn transport_error(status: u16, kind: &str, message: &str) -> ApiResponse {
    no_store(ApiResponse::json(status, &json!({"ok": false, "error": {"type": kind, "message": message}})))
}

/// `405` for a non-POST request (after auth), JSON with `Allow: POST`.
pub fn method_not_allowed() -> ApiResponse {
    transport_error(405, "method_not_allowed", "Method Not Allowed").with_header("Allow", "POST")
}

/// The response for a body read failure (`413` closes the connection).
pub fn body_error(e: BodyError) -> ApiResponse {
    match e {
        BodyError::TooLarge => transport_error(413, "invalid_request", "Payload too large").closing(),
        BodyError::Timeout => transport_error(408, "invalid_request", "Request body timeout").closing(),
        BodyError::ConnectionClosed => transport_error(400, "invalid_request", "Connection closed").closing(),
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcRequest {
    /// The trimmed `id`, or the caller's fresh UUID when missing or blank.
    pub id: String,
    /// Trimmed.
    pub method: String,
    /// `params` as sent (`Some(Value::Null)` for an explicit `null`); `None` when absent.
    pub params: Option<Value>,
}

/// Parse a body. `new_id` is a fresh UUID from the caller, used when `id` is missing or blank.
pub fn parse_request(body: &[u8], new_id: &str) -> Result<RpcRequest, ApiResponse> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Err(transport_error(400, "invalid_request", "request body must be JSON"));
    }
    let v: Value = serde_json::from_str(&text).map_err(|_| transport_error(400, "invalid_request", "request body must be valid JSON"))?;
    let Some(o) = v.as_object() else {
        return Err(transport_error(400, "invalid_request", "request body must be an object"));
    };
    let Some(method) = o.get("method").and_then(Value::as_str).map(str::trim).filter(|m| !m.is_empty()) else {
        return Err(transport_error(400, "invalid_request", "method must be a non-empty string"));
    };
    let id = o.get("id").and_then(Value::as_str).map(str::trim).filter(|i| !i.is_empty()).unwrap_or(new_id).to_string();
    Ok(RpcRequest { id, method: method.to_string(), params: o.get("params").cloned() })
}

/// What to do after parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Answer now (body errors, methods outside the allowlist, `commands.list`).
    Respond(ApiResponse),
    /// Call the gateway method and pass its reply to [`respond`].
    Call(RpcRequest),
}

/// Parse, apply the allowlist and answer `commands.list` locally.
pub fn prepare(body: &[u8], new_id: &str) -> Step {
    let req = match parse_request(body, new_id) {
        Ok(r) => r,
        Err(resp) => return Step::Respond(resp),
    };
    if !is_allowed(&req.method) {
        let e = ErrorShape::invalid_request(format!("admin HTTP RPC method is not supported: {}", req.method));
        return Step::Respond(respond(&req.id, Reply::err(e)));
    }
    if req.method == "commands.list" {
        return Step::Respond(respond(&req.id, Reply::Ok(Some(json!({"methods": ALLOWED_METHODS})))));
    }
    Step::Call(req)
}

/// HTTP status of a method error code.
pub fn status_for_code(code: &str) -> u16 {
    match code {
        error_code::INVALID_REQUEST => 400,
        error_code::APPROVAL_NOT_FOUND => 404,
        error_code::NOT_LINKED | error_code::NOT_PAIRED => 409,
        error_code::UNAVAILABLE => 503,
        error_code::AGENT_TIMEOUT => 504,
        _ => 500,
    }
}

/// The envelope for a method's reply: `{"id","ok":true,"payload"[,"meta"]}` (no `payload` key
/// when the method returned none) or `{"id","ok":false,"error":{code,message,…}[,"meta"]}`.
pub fn respond(id: &str, reply: Reply) -> ApiResponse {
    respond_with_meta(id, reply, None)
}

/// [`respond`] with the method's `meta` (e.g. `{"cached":true}` for a cached `health`).
pub fn respond_with_meta(id: &str, reply: Reply, meta: Option<&Value>) -> ApiResponse {
    let id_json = Value::String(id.to_string()).to_string();
    let meta = meta.map(|m| format!(",\"meta\":{m}")).unwrap_or_default();
    let (status, body) = match reply {
        Reply::Ok(Some(payload)) => (200, format!("{{\"id\":{id_json},\"ok\":true,\"payload\":{payload}{meta}}}")),
        Reply::Ok(None) => (200, format!("{{\"id\":{id_json},\"ok\":true{meta}}}")),
        // A cached, already serialized payload is spliced in as is.
        Reply::OkJson(raw) => (200, format!("{{\"id\":{id_json},\"ok\":true,\"payload\":{raw}{meta}}}")),
        Reply::Err { error, .. } => {
            let status = status_for_code(&error.code);
            let e = serde_json::to_string(&error).unwrap_or_else(|_| json!({"code": error.code, "message": error.message}).to_string());
            (status, format!("{{\"id\":{id_json},\"ok\":false,\"error\":{e}{meta}}}"))
        }
    };
    no_store(ApiResponse::json_bytes(status, body.into_bytes()))
}

/// The `meta` the reference attaches to a reply: `{"cached":true}` for a `health` answered from
/// the snapshot cache (our `health` replies with the cached snapshot unless `probe:true`).
pub fn reply_meta(method: &str, params: Option<&Value>, reply: &Reply) -> Option<Value> {
    let probe = params.and_then(|p| p.get("probe")).and_then(Value::as_bool) == Some(true);
    (method == "health" && !probe && matches!(reply, Reply::OkJson(_))).then(|| json!({"cached": true}))
}

/// Body → response, calling `call(method, params)` for allowlisted methods.
pub fn handle(body: &[u8], new_id: &str, call: impl FnOnce(&str, Option<&Value>) -> Reply) -> ApiResponse {
    match prepare(body, new_id) {
        Step::Respond(r) => r,
        Step::Call(req) => {
            let reply = call(&req.method, req.params.as_ref());
            let meta = reply_meta(&req.method, req.params.as_ref(), &reply);
            respond_with_meta(&req.id, reply, meta.as_ref())
        }
    }
}

/// The reply for a method call that failed before answering.
pub fn unavailable() -> Reply {
    Reply::err(ErrorShape::new(error_code::UNAVAILABLE, "gateway method failed before returning a response"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const UUID: &str = "1a7914d4-ca78-4c65-8f70-d956ab5e1a0b";

    fn body(r: &ApiResponse) -> Value {
        r.json_body().unwrap()
    }

    #[test]
    fn body_errors() {
        for (b, m) in [
            (&b"{\"method\":"[..], "request body must be valid JSON"),
            (b"", "request body must be JSON"),
            (b"  ", "request body must be JSON"),
            (b"[]", "request body must be an object"),
            (b"{\"params\":{}}", "method must be a non-empty string"),
            (b"{\"method\":\"  \"}", "method must be a non-empty string"),
        ] {
            let r = handle(b, UUID, |_, _| unreachable!());
            assert_eq!((r.status, body(&r)), (400, json!({"ok": false, "error": {"type": "invalid_request", "message": m}})));
            assert_eq!(r.header("cache-control"), Some("no-store"));
        }
        let r = body_error(BodyError::TooLarge);
        assert_eq!((r.status, r.close), (413, true));
        assert_eq!(body(&r), json!({"ok": false, "error": {"type": "invalid_request", "message": "Payload too large"}}));
        let m = method_not_allowed();
        assert_eq!((m.status, m.header("allow")), (405, Some("POST")));
        assert_eq!(body(&m), json!({"ok": false, "error": {"type": "method_not_allowed", "message": "Method Not Allowed"}}));
    }

    #[test]
    fn allowlist_and_commands_list() {
        let r = handle(br#"{"id":"x","method":"sessions.delete"}"#, UUID, |_, _| unreachable!());
        assert_eq!(
            (r.status, body(&r)),
            (
                400,
                json!({"id": "x", "ok": false, "error": {"code": "INVALID_REQUEST", "message": "admin HTTP RPC method is not supported: sessions.delete"}})
            )
        );
        let r = handle(br#"{"method":" commands.list ","id":"  "}"#, UUID, |_, _| unreachable!());
        let b = body(&r);
        assert_eq!((r.status, b["id"].clone()), (200, json!(UUID)));
        assert_eq!(b["payload"]["methods"].as_array().map(Vec::len), Some(ALLOWED_METHODS.len()));
    }

    #[test]
    fn calls_and_envelopes() {
        let r = handle(br#"{"id":"req-1","method":"health","params":{}}"#, UUID, |m, p| {
            assert_eq!((m, p), ("health", Some(&json!({}))));
            Reply::OkJson(Arc::from(r#"{"ok":true}"#))
        });
        assert_eq!(String::from_utf8(r.body.clone()).unwrap(), r#"{"id":"req-1","ok":true,"payload":{"ok":true},"meta":{"cached":true}}"#);
        let r = handle(br#"{"method":"health","params":{"probe":true}}"#, UUID, |_, _| Reply::OkJson(Arc::from("{}")));
        assert_eq!(body(&r), json!({"id": UUID, "ok": true, "payload": {}}));
        let r = handle(br#"{"method":"models.list"}"#, UUID, |_, p| {
            assert!(p.is_none());
            Reply::Ok(Some(json!({"models": []})))
        });
        assert_eq!(body(&r), json!({"id": UUID, "ok": true, "payload": {"models": []}}));
        let r = handle(br#"{"method":"cron.get","params":{"bogus":1}}"#, UUID, |_, _| {
            Reply::err(ErrorShape::invalid_request("invalid cron.get params: x"))
        });
        assert_eq!((r.status, body(&r)["error"]["code"].clone()), (400, json!("INVALID_REQUEST")));
        let r = handle(br#"{"method":"status"}"#, UUID, |_, _| Reply::err(ErrorShape::unavailable("later").retryable(Some(1000))));
        assert_eq!(body(&r)["error"], json!({"code": "UNAVAILABLE", "message": "later", "retryable": true, "retryAfterMs": 1000}));
        assert_eq!(r.status, 503);
        assert_eq!(handle(br#"{"method":"status"}"#, UUID, |_, _| unavailable()).status, 503);
        for (c, s) in [("APPROVAL_NOT_FOUND", 404), ("NOT_LINKED", 409), ("NOT_PAIRED", 409), ("AGENT_TIMEOUT", 504), ("FORBIDDEN", 500)] {
            assert_eq!(status_for_code(c), s);
        }
        let r = respond("a\"b", Reply::Ok(None));
        assert_eq!(body(&r), json!({"id": "a\"b", "ok": true}));
    }
}
