//! The plain response the HTTP API decision modules return ([`crate::openai::embeddings`],
//! [`crate::tools`], [`crate::http::admin_rpc`], [`crate::http::hooks`]): status, content type, the
//! route-specific headers and the body. The shell adds the baseline security headers
//! (spec http §3), `Content-Length`, `Date` and the keep-alive headers.

use serde_json::Value;

use crate::openai::ApiError;

/// `Content-Type` of JSON bodies.
pub const JSON: &str = "application/json; charset=utf-8";
/// `Content-Type` of plain-text bodies.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// One complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    /// Route-specific headers besides `Content-Type` (`Allow`, `Cache-Control`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Send `Connection: close` and close the connection after this response.
    pub close: bool,
}

impl ApiResponse {
    /// A JSON response from a value.
    pub fn json(status: u16, body: &Value) -> Self {
        Self::json_bytes(status, body.to_string().into_bytes())
    }

    /// A JSON response from already serialized bytes.
    pub fn json_bytes(status: u16, body: Vec<u8>) -> Self {
        ApiResponse { status, content_type: JSON, headers: Vec::new(), body, close: false }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: &str) -> Self {
        ApiResponse { status, content_type: TEXT, headers: Vec::new(), body: body.as_bytes().to_vec(), close: false }
    }

    /// `404 text/plain "Not Found"` (spec http §2 stage 17).
    pub fn not_found() -> Self {
        Self::text(404, "Not Found")
    }

    /// `405 text/plain "Method Not Allowed"` with `Allow: POST` (POST-only API routes, hooks).
    pub fn method_not_allowed() -> Self {
        Self::text(405, "Method Not Allowed").with_header("Allow", "POST")
    }

    /// An OpenAI-family error `{"error":{"message","type"}}`.
    pub fn openai_error(e: &ApiError) -> Self {
        Self::json(e.status, &e.body())
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Mark the response `Connection: close`.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// A route header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (tests and logging).
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why a request body could not be read (the shell's body reader reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the route's limit: a declared `Content-Length` (refused before reading) or counted.
    TooLarge,
    /// The body did not arrive within the read timeout (30 s).
    Timeout,
    /// The client closed the connection mid-body.
    ConnectionClosed,
}

/// The OpenAI-family answer to a body read failure on `/v1/*` and `/tools/invoke` (spec http §8:
/// `413 Payload too large` / `408 Request body timeout`, both with `Connection: close`).
pub fn openai_body_error(e: BodyError) -> ApiResponse {
    let (status, message) = match e {
        BodyError::TooLarge => (413, "Payload too large"),
        BodyError::Timeout => (408, "Request body timeout"),
        BodyError::ConnectionClosed => (400, "Connection closed"),
    };
    ApiResponse::openai_error(&ApiError { status, kind: "invalid_request_error", message: message.into() }).closing()
}

/// The message of a JSON syntax error, worded like the reference's `JSON.parse` where it matters
/// (a truncated body gives `Unexpected end of JSON input`, spec http §3).
pub fn json_error_message(text: &str, e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "Unexpected end of JSON input".into();
    }
    // serde reports 1-based line/column; JS reports a 0-based character position.
    let (line, column) = (e.line(), e.column());
    let mut position = 0usize;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            position += l.chars().take(column.saturating_sub(1)).count();
            break;
        }
        position += l.chars().count() + 1;
    }
    format!("Unexpected token in JSON at position {position} (line {line} column {column})")
}

/// Parse a request body as JSON. `Ok(None)` for an empty or whitespace-only body; `Err` holds
/// the parse message of [`json_error_message`].
pub fn parse_json_body(body: &[u8]) -> Result<Option<Value>, String> {
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str::<Value>(&text).map(Some).map_err(|e| json_error_message(&text, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_parse_messages() {
        assert_eq!(parse_json_body(b"{\"tool\":"), Err("Unexpected end of JSON input".to_string()));
        assert_eq!(parse_json_body(b"  \n"), Ok(None));
        assert_eq!(parse_json_body(b"[1]"), Ok(Some(json!([1]))));
        let e = parse_json_body(b"{x}").unwrap_err();
        assert!(e.starts_with("Unexpected token in JSON at position 1"), "{e}");
        assert!(parse_json_body(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn builders() {
        let r = ApiResponse::method_not_allowed();
        assert_eq!((r.status, r.content_type, r.header("allow")), (405, TEXT, Some("POST")));
        assert_eq!(r.body, b"Method Not Allowed");
        let e = ApiResponse::openai_error(&ApiError::invalid("x"));
        assert_eq!(e.json_body(), Some(json!({"error": {"message": "x", "type": "invalid_request_error"}})));
        assert!(ApiResponse::not_found().closing().close);
        let t = openai_body_error(BodyError::TooLarge);
        assert_eq!((t.status, t.close), (413, true));
        assert_eq!(t.json_body(), Some(json!({"error": {"message": "Payload too large", "type": "invalid_request_error"}})));
        assert_eq!(openai_body_error(BodyError::Timeout).status, 408);
    }
}
