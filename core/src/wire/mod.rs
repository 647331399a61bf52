//! Frame types, error shapes, error codes and close codes of the Gateway protocol (spec §2, §7, §12).
//!
//! Every code and fixed message the reference puts on the wire is a constant here, so the
//! rest of the crate (and the conformance suite) never spells them twice.

pub mod schema;

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Wire protocol version served (spec §4.3).
pub const PROTOCOL_VERSION: u64 = 4;
/// Oldest protocol a `mode:"probe"` client may ask for.
pub const MIN_PROBE_PROTOCOL: u64 = 3;
/// Oldest protocol a node (`role:"node"`, `mode:"node"`) may ask for.
pub const MIN_NODE_PROTOCOL: u64 = 3;

/// Top-level `error.code` values (spec §7.1).
pub mod error_code {
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_PAIRED: &str = "NOT_PAIRED";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const APPROVAL_NOT_FOUND: &str = "APPROVAL_NOT_FOUND";
    pub const NOT_LINKED: &str = "NOT_LINKED";
    pub const AGENT_TIMEOUT: &str = "AGENT_TIMEOUT";
}

/// `error.details.code` values (spec §7.2).
pub mod details_code {
    pub const MISSING_SCOPE: &str = "MISSING_SCOPE";
    pub const AUTH_REQUIRED: &str = "AUTH_REQUIRED";
    pub const AUTH_UNAUTHORIZED: &str = "AUTH_UNAUTHORIZED";
    pub const AUTH_TOKEN_MISSING: &str = "AUTH_TOKEN_MISSING";
    pub const AUTH_TOKEN_MISMATCH: &str = "AUTH_TOKEN_MISMATCH";
    pub const AUTH_TOKEN_NOT_CONFIGURED: &str = "AUTH_TOKEN_NOT_CONFIGURED";
    pub const AUTH_PASSWORD_MISSING: &str = "AUTH_PASSWORD_MISSING";
    pub const AUTH_PASSWORD_MISMATCH: &str = "AUTH_PASSWORD_MISMATCH";
    pub const AUTH_PASSWORD_NOT_CONFIGURED: &str = "AUTH_PASSWORD_NOT_CONFIGURED";
    pub const AUTH_BOOTSTRAP_TOKEN_INVALID: &str = "AUTH_BOOTSTRAP_TOKEN_INVALID";
    pub const AUTH_DEVICE_TOKEN_MISMATCH: &str = "AUTH_DEVICE_TOKEN_MISMATCH";
    pub const AUTH_SCOPE_MISMATCH: &str = "AUTH_SCOPE_MISMATCH";
    pub const AUTH_RATE_LIMITED: &str = "AUTH_RATE_LIMITED";
    pub const AUTH_TAILSCALE_IDENTITY_MISSING: &str = "AUTH_TAILSCALE_IDENTITY_MISSING";
    pub const AUTH_TAILSCALE_PROXY_MISSING: &str = "AUTH_TAILSCALE_PROXY_MISSING";
    pub const AUTH_TAILSCALE_WHOIS_FAILED: &str = "AUTH_TAILSCALE_WHOIS_FAILED";
    pub const AUTH_TAILSCALE_IDENTITY_MISMATCH: &str = "AUTH_TAILSCALE_IDENTITY_MISMATCH";
    pub const AUTH_IDENTITY_HEADER_REQUIRED: &str = "AUTH_IDENTITY_HEADER_REQUIRED";
    pub const CONTROL_UI_ORIGIN_NOT_ALLOWED: &str = "CONTROL_UI_ORIGIN_NOT_ALLOWED";
    pub const CONTROL_UI_DEVICE_IDENTITY_REQUIRED: &str = "CONTROL_UI_DEVICE_IDENTITY_REQUIRED";
    pub const PROTOCOL_MISMATCH: &str = "PROTOCOL_MISMATCH";
    pub const DEVICE_IDENTITY_REQUIRED: &str = "DEVICE_IDENTITY_REQUIRED";
    pub const DEVICE_AUTH_INVALID: &str = "DEVICE_AUTH_INVALID";
    pub const DEVICE_AUTH_DEVICE_ID_MISMATCH: &str = "DEVICE_AUTH_DEVICE_ID_MISMATCH";
    pub const DEVICE_AUTH_SIGNATURE_EXPIRED: &str = "DEVICE_AUTH_SIGNATURE_EXPIRED";
    pub const DEVICE_AUTH_NONCE_REQUIRED: &str = "DEVICE_AUTH_NONCE_REQUIRED";
    pub const DEVICE_AUTH_NONCE_MISMATCH: &str = "DEVICE_AUTH_NONCE_MISMATCH";
    pub const DEVICE_AUTH_SIGNATURE_INVALID: &str = "DEVICE_AUTH_SIGNATURE_INVALID";
    pub const DEVICE_AUTH_PUBLIC_KEY_INVALID: &str = "DEVICE_AUTH_PUBLIC_KEY_INVALID";
    pub const PAIRING_REQUIRED: &str = "PAIRING_REQUIRED";
    pub const CLIENT_VERSION_MISMATCH: &str = "CLIENT_VERSION_MISMATCH";
    pub const UNKNOWN_AGENT_ID: &str = "UNKNOWN_AGENT_ID";
    /// `config.patch|apply` with a stale `baseHash`.
    pub const CONFIG_CONFLICT: &str = "CONFIG_CONFLICT";
    /// `config.patch|apply` over an existing file without `baseHash`.
    pub const CONFIG_BASE_HASH_REQUIRED: &str = "CONFIG_BASE_HASH_REQUIRED";
}

/// WebSocket close codes the server uses (spec §12).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Never sent: what a peer observes when the TCP connection ends without a close frame.
    pub const ABNORMAL: u16 = 1006;
    pub const POLICY_VIOLATION: u16 = 1008;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INTERNAL_ERROR: u16 = 1011;
    pub const SERVICE_RESTART: u16 = 1012;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const CLIENT_INVALIDATED: u16 = 4001;
}

/// Fixed messages and close reasons the reference puts on the wire (spec §7.3, §12).
pub mod msg {
    /// The close reason of a device's sockets when its tokens change or it is removed (4001).
    pub const DEVICE_REMOVED: &str = "device removed";
    /// A `device.pair.*` change could not be written: not acknowledged.
    pub const DEVICES_NOT_SAVED: &str = "paired devices could not be saved; try again";
    /// A `Call` that the dispatcher's caller answers itself was handed to the IO performer.
    pub const ANSWERED_BY_CALLER: &str = "this call is answered by its caller";
    pub const INVALID_REQUEST_FRAME: &str = "invalid request frame";
    pub const FIRST_REQUEST_MUST_BE_CONNECT: &str = "invalid handshake: first request must be connect";
    pub const PROTOCOL_MISMATCH: &str = "protocol mismatch";
    pub const INVALID_ROLE: &str = "invalid role";
    pub const DEVICE_IDENTITY_REQUIRED: &str = "device identity required";
    pub const TOO_MANY_PENDING_HANDSHAKE_FRAMES: &str = "too many pending handshake frames";
    pub const REPEATED_UNAUTHORIZED_CALLS: &str = "repeated unauthorized calls";
    pub const SLOW_CONSUMER: &str = "slow consumer";
    pub const SERVICE_RESTART: &str = "service restart";
    pub const GATEWAY_STOPPING: &str = "gateway stopping";
    pub const SERVER_BUSY: &str = "The server is busy. Please try again in a moment.";
    pub const CONNECT_ONLY_FIRST: &str = "connect is only valid as the first request";
    pub const RATE_LIMITED: &str = "unauthorized: too many failed authentication attempts (retry later)";
    pub const ORIGIN_NOT_ALLOWED: &str =
        "origin not allowed (open the Control UI from the gateway host or allow it in gateway.controlUi.allowedOrigins)";
    pub const CONTROL_UI_DEVICE_IDENTITY_REQUIRED: &str = "control ui requires device identity (use HTTPS or localhost secure context)";
    pub const HANDLER_UNAVAILABLE: &str = "gateway message handler unavailable";
    pub const SHUTTING_DOWN: &str = "gateway is shutting down";
}

/// Longest close reason the reference sends, in UTF-8 bytes.
pub const CLOSE_REASON_MAX_BYTES: usize = 120;

/// Truncate a close reason to [`CLOSE_REASON_MAX_BYTES`] on a character boundary.
pub fn truncate_close_reason(reason: &str) -> String {
    if reason.len() <= CLOSE_REASON_MAX_BYTES {
        return reason.to_string();
    }
    let mut end = CLOSE_REASON_MAX_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_string()
}

/// The `error` object of a failed response (closed object, spec §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorShape {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorShape {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorShape { code: code.to_string(), message: message.into(), details: None, retryable: None, retry_after_ms: None }
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(error_code::INVALID_REQUEST, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(error_code::UNAVAILABLE, message)
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn retryable(mut self, retry_after_ms: Option<u64>) -> Self {
        self.retryable = Some(true);
        self.retry_after_ms = retry_after_ms;
        self
    }
    /// `FORBIDDEN missing scope: <scope>` with `MISSING_SCOPE` details (spec §6.3).
    pub fn missing_scope(scope: &str) -> Self {
        Self::new(error_code::FORBIDDEN, format!("missing scope: {scope}")).with_details(serde_json::json!({
            "code": details_code::MISSING_SCOPE,
            "missingScope": scope,
            "requiredScopes": [scope],
        }))
    }
    /// The retryable "server is busy" answer of the request-start queue (spec §10.1).
    pub fn busy() -> Self {
        Self::unavailable(msg::SERVER_BUSY).retryable(None)
    }
}

/// A validated request frame (spec §2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFrame {
    pub id: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_profile_id: Option<String>,
}

/// Why an incoming text is not a usable request frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON at all.
    #[error("frame is not valid JSON")]
    NotJson,
    /// JSON, but not a valid request frame. `id` is whatever `id` value the frame carried
    /// (echoed in the post-handshake error response), `detail` the validator text.
    #[error("invalid request frame: {detail}")]
    NotRequest { id: Option<Value>, detail: String },
}

pub(crate) fn schemas() -> &'static Value {
    static SCHEMAS: OnceLock<Value> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| serde_json::from_str(include_str!("../../data/schemas-extracted.json")).expect("embedded schemas are valid JSON"))
}

/// The embedded schemas of the frames and payloads of the protocol (spec §2, §3).
pub const PROTOCOL_SCHEMA_NAMES: [&str; 12] = [
    "HelloOkSchema",
    "GatewayFrameSchema",
    "ErrorShapeSchema",
    "ConnectParamsSchema",
    "EventFrameSchema",
    "SnapshotSchema",
    "RequestFrameSchema",
    "PresenceEntrySchema",
    "ShutdownEventSchema",
    "StateVersionSchema",
    "TickEventSchema",
    "ResponseFrameSchema",
];

/// Look up one of the embedded protocol schemas by name (e.g. `"ConnectParamsSchema"`).
pub fn schema(name: &str) -> &'static Value {
    &schemas()[name]
}

/// Parse and validate one text frame as a request (closed object, spec §2.1).
pub fn parse_request(text: &str) -> Result<RequestFrame, FrameError> {
    if let Some(req) = parse_request_fast(text) {
        return Ok(req);
    }
    // Not a well-formed request (or an unusual spelling of one, e.g. escapes in `type` or a
    // duplicate key): the generic path decides, with the validator's exact error text.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // JSON nested deeper than the parser goes is still a frame: answer it when its `id` can
        // be read (issue 11), rather than leave the request without an answer.
        if e.to_string().starts_with("recursion limit exceeded") {
            FrameError::NotRequest { id: top_level_id(text), detail: "nested deeper than 128 levels".into() }
        } else {
            FrameError::NotJson
        }
    })?;
    request_from_value(value)
}

/// The top-level `"id"` of a JSON object text when it is a string or a number, read without
/// parsing the (possibly too deeply nested) rest: a single pass over the bytes.
pub fn top_level_id(text: &str) -> Option<Value> {
    let b = text.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    // Index of the closing quote of the string starting at `i`.
    let string_end = |mut i: usize| {
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return Some(i),
                _ => i += 1,
            }
        }
        None
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let (mut depth, mut expect_key) = (1usize, true);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let end = string_end(i)?;
                if depth == 1 && expect_key {
                    let key = &text[i..=end];
                    let colon = ws(end + 1);
                    if b.get(colon) != Some(&b':') {
                        return None;
                    }
                    let v = ws(colon + 1);
                    if key == "\"id\"" {
                        let token_end = match b.get(v)? {
                            b'"' => string_end(v)? + 1,
                            c if c.is_ascii_digit() || *c == b'-' => {
                                v + b[v..].iter().take_while(|c| c.is_ascii_digit() || b"-+.eE".contains(c)).count()
                            }
                            _ => return None,
                        };
                        return serde_json::from_str(&text[v..token_end]).ok();
                    }
                    expect_key = false;
                    i = v;
                    continue;
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return None;
                }
            }
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// A request frame as the schema allows it, deserialized straight from the text (no `Value` tree
/// for the frame itself). Anything this rejects goes through the generic path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastRequest<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    id: String,
    method: String,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present_string")]
    traceparent: Option<String>,
    #[serde(default, rename = "expectedProfileId", deserialize_with = "present_string")]
    expected_profile_id: Option<String>,
}

/// A field that, when present, must be a string (`null` is a schema error, not "absent").
fn present_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// `Some` only for a frame `RequestFrameSchema` accepts; the result is what the generic path
/// would produce for it.
fn parse_request_fast(text: &str) -> Option<RequestFrame> {
    // serde also fills a struct from a JSON array (by position): a frame must be an object.
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let r: FastRequest<'_> = serde_json::from_str(text).ok()?;
    // `maxLength: 128` counts characters, as the validator does.
    let short = |s: &str| s.len() <= 128 || s.chars().count() <= 128;
    let ok = r.ty == "req"
        && !r.id.is_empty()
        && !r.method.is_empty()
        && r.traceparent.as_deref().is_none_or(short)
        && r.expected_profile_id.as_deref().is_none_or(|p| !p.is_empty() && short(p));
    if !ok {
        return None;
    }
    Some(RequestFrame {
        id: r.id,
        method: r.method,
        params: r.params,
        // A syntactically bad (but short enough) traceparent is ignored, not an error (spec §2.1).
        traceparent: r.traceparent.filter(|t| is_valid_traceparent(t)),
        expected_profile_id: r.expected_profile_id,
    })
}

/// Validate an already-parsed JSON value as a request frame.
pub fn request_from_value(mut value: Value) -> Result<RequestFrame, FrameError> {
    if let Err(detail) = crate::wire::schema::validate(schema("RequestFrameSchema"), &value) {
        let id = value.get("id").cloned();
        return Err(FrameError::NotRequest { id, detail });
    }
    // A syntactically bad (but short enough) traceparent is ignored, not an error (spec §2.1).
    if let Some(obj) = value.as_object_mut() {
        if obj.get("traceparent").and_then(Value::as_str).is_some_and(|t| !is_valid_traceparent(t)) {
            obj.remove("traceparent");
        }
        obj.remove("type");
    }
    serde_json::from_value(value).map_err(|e| FrameError::NotRequest { id: None, detail: e.to_string() })
}

/// W3C trace-context `traceparent`: `vv-<32 hex>-<16 hex>-<2 hex>`.
fn is_valid_traceparent(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    parts.len() == 4 && hex(parts[0], 2) && hex(parts[1], 32) && hex(parts[2], 16) && hex(parts[3], 2)
}

/// Serialize a successful response.
pub fn response_ok(id: &str, payload: Option<&Value>) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("{\"type\":\"res\",\"id\":");
    push_json_str(&mut out, id);
    out.push_str(",\"ok\":true");
    if let Some(p) = payload {
        out.push_str(",\"payload\":");
        push_json(&mut out, p);
    }
    out.push('}');
    out
}

/// Serialize a successful response whose payload is already serialized JSON text.
pub fn response_ok_json(id: &str, payload_json: &str) -> String {
    let mut out = String::with_capacity(40 + id.len() + payload_json.len());
    out.push_str("{\"type\":\"res\",\"id\":");
    push_json_str(&mut out, id);
    out.push_str(",\"ok\":true,\"payload\":");
    out.push_str(payload_json);
    out.push('}');
    out
}

/// Serialize a failed response; `id` may be any JSON value (echoed from a broken frame).
pub fn response_err(id: &Value, payload: Option<&Value>, error: &ErrorShape) -> String {
    let mut out = String::with_capacity(128);
    out.push_str("{\"type\":\"res\",\"id\":");
    push_json(&mut out, id);
    out.push_str(",\"ok\":false");
    if let Some(p) = payload {
        out.push_str(",\"payload\":");
        push_json(&mut out, p);
    }
    out.push_str(",\"error\":");
    out.push_str(&serde_json::to_string(error).unwrap_or_else(|_| "{}".into()));
    out.push('}');
    out
}

/// Serialize an event frame from an already-serialized payload.
pub fn event_frame(event: &str, payload_json: Option<&str>, seq: Option<u64>, state_version: Option<StateVersion>) -> String {
    let mut out = String::with_capacity(48 + event.len() + payload_json.map_or(0, str::len));
    out.push_str("{\"type\":\"event\",\"event\":");
    push_json_str(&mut out, event);
    if let Some(p) = payload_json {
        out.push_str(",\"payload\":");
        out.push_str(p);
    }
    if let Some(s) = seq {
        out.push_str(",\"seq\":");
        out.push_str(&s.to_string());
    }
    if let Some(sv) = state_version {
        out.push_str(&format!(",\"stateVersion\":{{\"presence\":{},\"health\":{}}}", sv.presence, sv.health));
    }
    out.push('}');
    out
}

fn push_json(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => push_json_str(out, s),
        v => out.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "null".into())),
    }
}

/// Append `s` as a JSON string literal, escaped exactly like `serde_json` does.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "null".into()));
    }
}

/// Global monotonic counters carried by `presence`/`health` events (spec §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StateVersion {
    pub presence: u64,
    pub health: u64,
}

/// Any frame a server may send, as seen by a client.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    Res(ResponseFrame),
    Event(EventFrame),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseFrame {
    pub id: Value,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorShape>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFrame {
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_version: Option<StateVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_profile_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_array_is_never_a_request() {
        // Found by proptest: serde fills a struct from an array by position.
        assert!(parse_request(r#"["req","1","health"]"#).is_err());
        assert!(parse_request(r#" ["req","1","health",null]"#).is_err());
    }

    #[test]
    fn request_frame_closed_object() {
        let err = parse_request(r#"{"type":"req","id":"1","method":"health","bogus":1}"#).unwrap_err();
        assert_eq!(err, FrameError::NotRequest { id: Some(json!("1")), detail: "at root: unexpected property 'bogus'".into() });
        let err = parse_request(r#"{"type":"req","method":"health"}"#).unwrap_err();
        assert_eq!(err, FrameError::NotRequest { id: None, detail: "must have required property 'id'".into() });
        assert_eq!(parse_request("nope {").unwrap_err(), FrameError::NotJson);
        let ok = parse_request(r#"{"type":"req","id":"1","method":"health","traceparent":"zz"}"#).unwrap();
        assert_eq!(ok.traceparent, None);
        let long = format!(r#"{{"type":"req","id":"1","method":"health","traceparent":"{}"}}"#, "a".repeat(129));
        assert!(matches!(parse_request(&long), Err(FrameError::NotRequest { .. })));
    }

    /// The generic path only (what `parse_request` did before the typed fast path).
    fn parse_request_generic(text: &str) -> Result<RequestFrame, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|_| FrameError::NotJson)?;
        request_from_value(value)
    }

    #[test]
    fn fast_path_agrees_with_the_validator() {
        let long = "é".repeat(128);
        let too_long = "é".repeat(129);
        let frames = [
            r#"{"type":"req","id":"1","method":"health"}"#.to_string(),
            r#"{"type":"req","id":"1","method":"health","params":{}}"#.into(),
            r#"{"type":"req","id":"1","method":"health","params":null}"#.into(),
            r#"{"type":"req","id":"1","method":"health","params":{"probe":true,"x":[1,2.5,-3,1e400]}}"#.into(),
            r#"{"type":"req","id":"1","method":"health","params":[1,"a",null]}"#.into(),
            r#"{"type":"req","id":"1","method":"health","params":"s"}"#.into(),
            r#" {"method":"health","id":"1","type":"req"} "#.into(),
            r#"{"type":"req","id":"1","method":"health"}"#.into(),
            r#"{"type":"req","id":"1","method":"health","id":"2"}"#.into(),
            r#"{"type":"req","id":"","method":"health"}"#.into(),
            r#"{"type":"req","id":"1","method":""}"#.into(),
            r#"{"type":"req","id":1,"method":"health"}"#.into(),
            r#"{"type":"req","id":null,"method":"health"}"#.into(),
            r#"{"type":"res","id":"1","method":"health"}"#.into(),
            r#"{"type":"req","id":"1"}"#.into(),
            r#"{"id":"1","method":"health"}"#.into(),
            r#"{"type":"req","id":"1","method":"health","extra":1}"#.into(),
            r#"{"type":"req","id":"1","method":"health","traceparent":null}"#.into(),
            r#"{"type":"req","id":"1","method":"health","traceparent":5}"#.into(),
            r#"{"type":"req","id":"1","method":"health","traceparent":"zz"}"#.into(),
            r#"{"type":"req","id":"1","method":"health","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#.into(),
            format!(r#"{{"type":"req","id":"1","method":"health","traceparent":"{long}"}}"#),
            format!(r#"{{"type":"req","id":"1","method":"health","traceparent":"{too_long}"}}"#),
            r#"{"type":"req","id":"1","method":"health","expectedProfileId":"p"}"#.into(),
            r#"{"type":"req","id":"1","method":"health","expectedProfileId":""}"#.into(),
            r#"{"type":"req","id":"1","method":"health","expectedProfileId":null}"#.into(),
            format!(r#"{{"type":"req","id":"1","method":"health","expectedProfileId":"{long}"}}"#),
            format!(r#"{{"type":"req","id":"1","method":"health","expectedProfileId":"{too_long}"}}"#),
            r#"{"type":"req","id":"1","method":"health"} x"#.into(),
            r#"[1,2]"#.into(),
            r#""req""#.into(),
            r#"null"#.into(),
            r#"{"type":"req","id":"1","method":"health","params":{"a":"#.into(),
        ];
        for f in &frames {
            assert_eq!(parse_request(f), parse_request_generic(f), "{f}");
        }
    }

    #[test]
    fn well_formed_requests_take_the_fast_path() {
        for f in [
            r#"{"type":"req","id":"1","method":"health"}"#,
            r#"{"type":"req","id":"h-17","method":"health","params":{}}"#,
            r#"{"type":"req","id":"c","method":"connect","params":{"minProtocol":4,"client":{"id":"cli"}}}"#,
        ] {
            assert!(parse_request_fast(f).is_some(), "{f}");
        }
    }

    proptest::proptest! {
        /// Frames built from the schema's keys (plus strangers) with values of every kind: the
        /// fast path never disagrees with the validator.
        #[test]
        fn fast_path_agrees_on_generated_frames(
            fields in proptest::collection::vec((0usize..8, 0usize..12), 0..7),
        ) {
            const KEYS: [&str; 8] = ["type", "id", "method", "params", "traceparent", "expectedProfileId", "bogus", "ID"];
            let values = [
                r#""req""#.to_string(), r#""res""#.into(), r#""""#.into(), r#""health""#.into(), "null".into(), "1".into(),
                "{}".into(), r#"{"probe":true}"#.into(), "[]".into(), r#""r\u0065q""#.into(),
                format!("\"{}\"", "a".repeat(129)),
                r#""00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01""#.into(),
            ];
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{}\":{}", KEYS[*k], values[*v])).collect();
            let text = format!("{{{}}}", body.join(","));
            proptest::prop_assert_eq!(parse_request(&text), parse_request_generic(&text), "{}", text);
        }
    }

    #[test]
    fn response_ok_json_matches_response_ok() {
        let payload = json!({"ok": true, "ts": 1, "nested": {"a": [1, "x\"y"]}});
        for id in ["a", "with \"quote\"", "back\\slash", "ctl\u{1}", "ünï", ""] {
            assert_eq!(response_ok_json(id, &payload.to_string()), response_ok(id, Some(&payload)), "{id:?}");
            let mut fast = String::new();
            push_json_str(&mut fast, id);
            assert_eq!(fast, serde_json::to_string(id).unwrap());
        }
    }

    #[test]
    fn responses_serialize_like_the_reference() {
        assert_eq!(response_ok("a", Some(&json!({"x":1}))), r#"{"type":"res","id":"a","ok":true,"payload":{"x":1}}"#);
        let e = ErrorShape::missing_scope("operator.admin");
        assert_eq!(
            response_err(&json!("m1"), None, &e),
            r#"{"type":"res","id":"m1","ok":false,"error":{"code":"FORBIDDEN","message":"missing scope: operator.admin","details":{"code":"MISSING_SCOPE","missingScope":"operator.admin","requiredScopes":["operator.admin"]}}}"#
        );
        assert_eq!(
            event_frame("tick", Some(r#"{"ts":1}"#), Some(5), None),
            r#"{"type":"event","event":"tick","payload":{"ts":1},"seq":5}"#
        );
    }

    #[test]
    fn close_reason_truncation_respects_utf8() {
        let s = "é".repeat(100);
        let t = truncate_close_reason(&s);
        assert!(t.len() <= CLOSE_REASON_MAX_BYTES);
        assert!(s.starts_with(&t));
    }
}

#[cfg(test)]
mod deep_frames {
    use super::*;

    #[test]
    fn a_frame_nested_too_deep_keeps_its_id() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let text = format!(r#"{{"type":"req","params":{{"a":{deep},"id":"inner"}},"id":"r-7","method":"health"}}"#);
        match parse_request(&text) {
            Err(FrameError::NotRequest { id, detail }) => {
                assert_eq!(id, Some(Value::String("r-7".into())));
                assert!(detail.contains("nested deeper"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(top_level_id(r#"{"a": "x\"id\": 1", "id": 42}"#), Some(serde_json::json!(42)));
        assert_eq!(top_level_id(r#"{"a": {"id": "nested"}}"#), None);
        assert_eq!(top_level_id("[1]"), None);
        assert_eq!(top_level_id(r#"{"id": {"x": 1}}"#), None);
        assert!(matches!(parse_request("{not json"), Err(FrameError::NotJson)));
    }
}

/// The answer to a dispatched request. A failure may also carry a payload (final `agent` reply).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok(Option<Value>),
    /// Success with a payload that is already serialized JSON (a cached snapshot, e.g. `health`).
    OkJson(Arc<str>),
    Err {
        error: ErrorShape,
        payload: Option<Value>,
    },
}

impl Reply {
    pub fn err(error: ErrorShape) -> Reply {
        Reply::Err { error, payload: None }
    }
}

/// `connect.params.client`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientInfo {
    pub id: String,
    pub version: String,
    pub platform: String,
    pub mode: String,
    pub display_name: Option<String>,
    pub device_family: Option<String>,
    pub model_identifier: Option<String>,
    pub time_zone: Option<String>,
    pub instance_id: Option<String>,
}

impl ClientInfo {
    /// `client.mode == "cli"`.
    pub fn is_cli(&self) -> bool {
        self.mode == "cli"
    }
    /// Control UI, browser copilot or TUI.
    pub fn is_operator_ui(&self) -> bool {
        matches!(self.id.as_str(), "openclaw-control-ui" | "openclaw-browser-copilot" | "openclaw-tui")
    }
    /// Control UI or browser copilot (a browser page).
    pub fn is_browser_operator_ui(&self) -> bool {
        matches!(self.id.as_str(), "openclaw-control-ui" | "openclaw-browser-copilot")
    }
    pub fn is_webchat(&self) -> bool {
        self.mode == "webchat" || self.id == "webchat-ui"
    }
    /// Short-lived control-plane clients do not appear in presence (spec §8.3).
    pub fn is_presence_tracked(&self) -> bool {
        !matches!(self.mode.as_str(), "cli" | "backend" | "probe")
    }
}

/// The `type` word of a JSON value as zod and the reference's validators name it.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What the reference's validator (zod) says of a value of the wrong type: `Invalid input:
/// expected <type>, received <kind>` (`undefined` for a missing value). The OpenAI-compatible
/// endpoints (chat, responses, embeddings) all word their type errors with it.
pub fn zod_type_issue(expected: &str, v: Option<&Value>) -> String {
    format!("Invalid input: expected {expected}, received {}", v.map_or("undefined", json_kind))
}

/// [`zod_type_issue`] at `path` (`<path>: Invalid input: …`; the root's path is empty).
pub fn zod_invalid_type(path: &str, expected: &str, v: Option<&Value>) -> String {
    format!("{path}: {}", zod_type_issue(expected, v))
}
