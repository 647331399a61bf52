//! `POST /v1/embeddings` (spec http §5, §6.5): request validation, agent and embedding-model
//! resolution, the upstream `POST {baseUrl}/embeddings` request, and the response built from
//! the upstream answer. Sans-IO: the shell sends [`EmbeddingsCall::upstream`] and feeds the
//! upstream status and body back to [`EmbeddingsCall::respond`].
//!
//! Shell flow (routing stage 8, only when chat completions or responses is enabled):
//! path match → `POST` only ([`crate::openai::api_response::ApiResponse::method_not_allowed`], before
//! auth) → gateway auth → scope `operator.write` (and `operator.admin` for identity-bearing
//! callers that send `x-openclaw-model`) → body read (≤ [`MAX_BODY_BYTES`], 413/408 in the
//! OpenAI family) → [`prepare`] → upstream call → [`EmbeddingsCall::respond`] /
//! [`EmbeddingsCall::transport_failed`].

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::config::api::EmbeddingsConfig;
pub use crate::openai::api_response::BodyError;
use crate::openai::api_response::{ApiResponse, openai_body_error, parse_json_body};
use crate::openai::turn::UpstreamRequest;
use crate::openai::{Agents, ApiError, resolve_agent};

/// Largest request body (spec http §8).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Most inputs per request.
pub const MAX_INPUTS: usize = 128;
/// Longest single input, in UTF-16 code units (JS string length).
pub const MAX_INPUT_CHARS: usize = 8192;
/// Longest total input, in UTF-16 code units.
pub const MAX_TOTAL_CHARS: usize = 65_536;
/// Largest upstream response body the shell should read.
pub const MAX_UPSTREAM_BODY_BYTES: usize = 64 * 1024 * 1024;

pub const MISSING_MODEL: &str = "Missing `model`.";
pub const TOO_MANY_INPUTS: &str = "Too many inputs (max 128).";
pub const INPUT_TOO_LONG: &str = "Input too long (max 8192 chars).";
pub const TOTAL_TOO_LONG: &str = "Total input too long (max 65536 chars).";
pub const EMPTY_INPUT: &str = "`input` must contain at least one non-empty string.";
pub const PROVIDER_NOT_ALLOWED: &str = "This agent does not allow that embedding provider on `/v1/embeddings`.";

/// The answer to a body read failure (413/408, OpenAI family, `Connection: close`).
pub fn body_error(e: BodyError) -> ApiResponse {
    openai_body_error(e)
}

/// `encoding_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// A schema-valid request body.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsRequest {
    /// `model` verbatim (echoed in the response); `None` when absent.
    pub model: Option<String>,
    pub inputs: Vec<String>,
    pub encoding_format: EncodingFormat,
    pub dimensions: Option<u64>,
    pub user: Option<String>,
}

/// A rejected request or a failed call. `log` is a server-side reason for 500s; it is never sent
/// to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsError {
    pub error: ApiError,
    pub log: Option<String>,
}

impl EmbeddingsError {
    fn invalid(message: impl Into<String>) -> Self {
        EmbeddingsError { error: ApiError::invalid(message), log: None }
    }

    /// The reference's opaque 500 (`{"error":{"message":"internal error","type":"api_error"}}`).
    pub fn internal(log: impl Into<String>) -> Self {
        EmbeddingsError { error: ApiError { status: 500, kind: "api_error", message: "internal error".into() }, log: Some(log.into()) }
    }

    pub fn response(&self) -> ApiResponse {
        ApiResponse::openai_error(&self.error)
    }
}

fn zod_type(path: &str, expected: &str, v: &Value) -> EmbeddingsError {
    EmbeddingsError::invalid(crate::wire::zod_invalid_type(path, expected, Some(v)))
}

/// Validate the body against the reference's schema (zod wording, first issue in field order).
/// An empty body is `{}`. Does not check the limits or the model value.
pub fn parse_request(body: &[u8]) -> Result<EmbeddingsRequest, EmbeddingsError> {
    let v = parse_json_body(body).map_err(EmbeddingsError::invalid)?.unwrap_or_else(|| json!({}));
    let Some(o) = v.as_object() else {
        return Err(zod_type("", "object", &v));
    };
    let model = match o.get("model") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(zod_type("model", "string", other)),
    };
    let inputs = match o.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        // Token arrays, missing input and other types: the union fails as a whole.
        _ => return Err(EmbeddingsError::invalid("input: Invalid input")),
    };
    let encoding_format = match o.get("encoding_format") {
        None => EncodingFormat::Float,
        Some(Value::String(s)) if s == "float" => EncodingFormat::Float,
        Some(Value::String(s)) if s == "base64" => EncodingFormat::Base64,
        Some(_) => return Err(EmbeddingsError::invalid("encoding_format: Invalid option: expected one of \"float\"|\"base64\"")),
    };
    let dimensions = match o.get("dimensions") {
        None => None,
        Some(Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() != 0.0 || !f.is_finite() {
                return Err(EmbeddingsError::invalid("dimensions: Invalid input: expected int, received number"));
            }
            match n.as_u64().filter(|d| *d > 0) {
                Some(d) => Some(d),
                None => return Err(EmbeddingsError::invalid("dimensions: Too small: expected number to be >0")),
            }
        }
        Some(other) => return Err(zod_type("dimensions", "number", other)),
    };
    let user = match o.get("user") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(zod_type("user", "string", other)),
    };
    Ok(EmbeddingsRequest { model, inputs, encoding_format, dimensions, user })
}

fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The input limits (spec http §6.5).
pub fn check_limits(inputs: &[String]) -> Result<(), EmbeddingsError> {
    if inputs.len() > MAX_INPUTS {
        return Err(EmbeddingsError::invalid(TOO_MANY_INPUTS));
    }
    if inputs.is_empty() || inputs.iter().any(|s| s.trim().is_empty()) {
        return Err(EmbeddingsError::invalid(EMPTY_INPUT));
    }
    let mut total = 0usize;
    for s in inputs {
        let n = js_len(s);
        if n > MAX_INPUT_CHARS {
            return Err(EmbeddingsError::invalid(INPUT_TOO_LONG));
        }
        total += n;
    }
    if total > MAX_TOTAL_CHARS {
        return Err(EmbeddingsError::invalid(TOTAL_TOO_LONG));
    }
    Ok(())
}

/// The embedding model to call: the `x-openclaw-model` override (a bare id uses the configured
/// provider; `provider/model` must name the configured provider), else the configured model.
pub fn resolve_model(cfg: &EmbeddingsConfig, header_model: Option<&str>) -> Result<String, EmbeddingsError> {
    let Some(raw) = header_model.map(str::trim).filter(|m| !m.is_empty()) else {
        return Ok(cfg.model.clone());
    };
    match raw.split_once('/') {
        None => Ok(raw.to_string()),
        Some((provider, model)) => {
            let configured = if cfg.provider == "auto" { "openai" } else { cfg.provider.as_str() };
            if !provider.trim().eq_ignore_ascii_case(configured) || model.trim().is_empty() {
                return Err(EmbeddingsError::invalid(PROVIDER_NOT_ALLOWED));
            }
            Ok(model.trim().to_string())
        }
    }
}

/// What [`prepare`] needs besides the body.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddingsContext<'a> {
    pub agents: &'a Agents,
    /// `memory.search` (`ApiConfig::embeddings`); `None` → 500 as the reference.
    pub config: Option<&'a EmbeddingsConfig>,
    /// `x-openclaw-agent-id` (or its alias `x-openclaw-agent`).
    pub header_agent: Option<&'a str>,
    /// `x-openclaw-model`.
    pub header_model: Option<&'a str>,
}

/// A validated request ready to go upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsCall {
    pub agent_id: String,
    /// The request's `model`, echoed verbatim.
    pub request_model: String,
    /// The upstream embedding model.
    pub upstream_model: String,
    pub encoding_format: EncodingFormat,
    pub dimensions: Option<u64>,
    pub input_count: usize,
    /// `POST {baseUrl}/embeddings`; header values may hold the provider key: never log them.
    pub upstream: UpstreamRequest,
}

/// Validate a request body and build the upstream call. Order: schema → missing model → model
/// syntax and agent (header wins) → input limits → provider and model override.
pub fn prepare(body: &[u8], ctx: &EmbeddingsContext<'_>) -> Result<EmbeddingsCall, EmbeddingsError> {
    let req = parse_request(body)?;
    let Some(model) = req.model.clone().filter(|m| !m.trim().is_empty()) else {
        return Err(EmbeddingsError::invalid(MISSING_MODEL));
    };
    let agent_id = resolve_agent(ctx.agents, &model, ctx.header_agent).map_err(|error| EmbeddingsError { error, log: None })?;
    check_limits(&req.inputs)?;
    let Some(cfg) = ctx.config else {
        return Err(EmbeddingsError::internal("no memory.search embedding provider is configured"));
    };
    let upstream_model = resolve_model(cfg, ctx.header_model)?;
    let upstream = upstream_request(cfg, &upstream_model, &req.inputs, req.dimensions);
    Ok(EmbeddingsCall {
        agent_id,
        request_model: model,
        upstream_model,
        encoding_format: req.encoding_format,
        dimensions: req.dimensions,
        input_count: req.inputs.len(),
        upstream,
    })
}

/// The upstream request: `{model, input:[…], dimensions?}` (the reference sends no
/// `encoding_format`: `upstream-embeddings-*`).
pub fn upstream_request(cfg: &EmbeddingsConfig, model: &str, inputs: &[String], dimensions: Option<u64>) -> UpstreamRequest {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("input".into(), json!(inputs));
    if let Some(d) = dimensions {
        body.insert("dimensions".into(), json!(d));
    }
    let mut headers =
        vec![("content-type".to_string(), "application/json".to_string()), ("accept".to_string(), "application/json".to_string())];
    if let Some(k) = &cfg.api_key {
        headers.push(("authorization".to_string(), format!("Bearer {}", k.expose())));
    }
    UpstreamRequest {
        method: "POST",
        url: format!("{}/embeddings", cfg.base_url.trim_end_matches('/')),
        headers,
        body: Value::Object(body).to_string().into_bytes(),
        attempt: 1,
    }
}

fn vector(v: &Value) -> Option<Vec<f64>> {
    match v {
        Value::Array(a) => a.iter().map(Value::as_f64).collect(),
        // A provider that answers base64 anyway: little-endian f32.
        Value::String(s) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).ok()?;
            if bytes.len() % 4 != 0 {
                return None;
            }
            Some(bytes.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect())
        }
        _ => None,
    }
}

/// Parse an upstream embeddings body into one vector per input, in input order.
pub fn parse_upstream(body: &[u8], expected: usize) -> Result<Vec<Vec<f64>>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("upstream embeddings body is not JSON: {e}"))?;
    let data = v.get("data").and_then(Value::as_array).ok_or("upstream embeddings body has no `data` array")?;
    if data.len() != expected {
        return Err(format!("upstream returned {} embeddings for {expected} inputs", data.len()));
    }
    let mut out: Vec<Option<Vec<f64>>> = vec![None; expected];
    for (n, item) in data.iter().enumerate() {
        let index = match item.get("index") {
            None | Some(Value::Null) => n,
            Some(i) => i.as_u64().and_then(|i| usize::try_from(i).ok()).ok_or("upstream embedding has a bad `index`")?,
        };
        let vec = item.get("embedding").and_then(vector).ok_or("upstream embedding is not a number array")?;
        let slot = out.get_mut(index).ok_or("upstream embedding `index` out of range")?;
        if slot.replace(vec).is_some() {
            return Err("upstream returned a duplicate embedding `index`".into());
        }
    }
    out.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| "upstream embeddings are missing an index".to_string())
}

/// Little-endian f32 bytes in standard base64 (what the OpenAI SDKs decode).
pub fn encode_base64(v: &[f64]) -> String {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&(*x as f32).to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `/v1/embeddings` response body (`usage` is always zero, spec http §6.5).
pub fn response_body(request_model: &str, vectors: &[Vec<f64>], format: EncodingFormat) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = match format {
                EncodingFormat::Float => json!(v),
                EncodingFormat::Base64 => json!(encode_base64(v)),
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": request_model, "usage": {"prompt_tokens": 0, "total_tokens": 0}})
}

impl EmbeddingsCall {
    /// Build the client response from the upstream status and body. Any upstream failure is the
    /// reference's opaque 500, with the real reason in `log`.
    pub fn respond(&self, status: u16, body: &[u8]) -> Result<ApiResponse, EmbeddingsError> {
        if !(200..300).contains(&status) {
            let detail: String = String::from_utf8_lossy(body).chars().take(300).collect();
            return Err(EmbeddingsError::internal(format!("embedding provider answered HTTP {status}: {detail}")));
        }
        let mut vectors = parse_upstream(body, self.input_count).map_err(EmbeddingsError::internal)?;
        if let Some(d) = self.dimensions.and_then(|d| usize::try_from(d).ok()) {
            for v in &mut vectors {
                v.truncate(d);
            }
        }
        Ok(ApiResponse::json(200, &response_body(&self.request_model, &vectors, self.encoding_format)))
    }

    /// The upstream call failed below HTTP (connect, TLS, timeout).
    pub fn transport_failed(&self, reason: &str) -> EmbeddingsError {
        EmbeddingsError::internal(format!("embedding provider request failed: {reason}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;

    fn fleet() -> Agents {
        Agents { ids: vec!["main".into(), "research".into()], default: None }
    }

    fn cfg() -> EmbeddingsConfig {
        EmbeddingsConfig {
            provider: "openai-compatible".into(),
            model: "fake-embed".into(),
            base_url: "http://127.0.0.1:28812/v1".into(),
            api_key: Some(Secret::new("fake-embed-key")),
        }
    }

    fn ctx<'a>(agents: &'a Agents, c: Option<&'a EmbeddingsConfig>, model: Option<&'a str>) -> EmbeddingsContext<'a> {
        EmbeddingsContext { agents, config: c, header_agent: None, header_model: model }
    }

    fn msg(r: Result<EmbeddingsCall, EmbeddingsError>) -> String {
        r.unwrap_err().error.message
    }

    #[test]
    fn schema_messages() {
        let a = fleet();
        let c = cfg();
        let x = ctx(&a, Some(&c), None);
        assert_eq!(msg(prepare(br#"{"input":"alpha"}"#, &x)), MISSING_MODEL);
        assert_eq!(msg(prepare(b"", &x)), "input: Invalid input");
        assert_eq!(msg(prepare(br#"{"model":"openclaw/main","input":[1,2]}"#, &x)), "input: Invalid input");
        assert_eq!(
            msg(prepare(br#"{"model":"openclaw/main","input":"a","encoding_format":"hex"}"#, &x)),
            "encoding_format: Invalid option: expected one of \"float\"|\"base64\""
        );
        assert_eq!(
            msg(prepare(br#"{"model":"openclaw/main","input":"a","dimensions":0}"#, &x)),
            "dimensions: Too small: expected number to be >0"
        );
        assert_eq!(
            msg(prepare(br#"{"model":"openclaw/main","input":"a","dimensions":1.5}"#, &x)),
            "dimensions: Invalid input: expected int, received number"
        );
        assert_eq!(
            msg(prepare(br#"{"model":"openclaw/main","input":"a","dimensions":"3"}"#, &x)),
            "dimensions: Invalid input: expected number, received string"
        );
        assert_eq!(msg(prepare(br#"{"model":5,"input":"a"}"#, &x)), "model: Invalid input: expected string, received number");
        assert_eq!(msg(prepare(b"[]", &x)), ": Invalid input: expected object, received array");
        assert_eq!(msg(prepare(b"{", &x)), "Unexpected end of JSON input");
        assert_eq!(msg(prepare(br#"{"model":"text-embedding-3-small","input":"a"}"#, &x)), crate::openai::INVALID_MODEL);
        assert_eq!(msg(prepare(br#"{"model":"openclaw","input":"a"}"#, &x)), crate::openai::NO_OWNER);
    }

    #[test]
    fn limits() {
        let a = fleet();
        let c = cfg();
        let x = ctx(&a, Some(&c), None);
        assert_eq!(msg(prepare(br#"{"model":"openclaw/main","input":[]}"#, &x)), EMPTY_INPUT);
        assert_eq!(msg(prepare(br#"{"model":"openclaw/main","input":["a",""]}"#, &x)), EMPTY_INPUT);
        let many = json!({"model": "openclaw/main", "input": vec!["a"; 129]}).to_string();
        assert_eq!(msg(prepare(many.as_bytes(), &x)), TOO_MANY_INPUTS);
        let long = json!({"model": "openclaw/main", "input": "x".repeat(8193)}).to_string();
        assert_eq!(msg(prepare(long.as_bytes(), &x)), INPUT_TOO_LONG);
        let total = json!({"model": "openclaw/main", "input": vec!["x".repeat(8000); 9]}).to_string();
        assert_eq!(msg(prepare(total.as_bytes(), &x)), TOTAL_TOO_LONG);
        // Limits count UTF-16 units, like JS.
        let emoji = json!({"model": "openclaw/main", "input": "😀".repeat(4097)}).to_string();
        assert_eq!(msg(prepare(emoji.as_bytes(), &x)), INPUT_TOO_LONG);
    }

    #[test]
    fn upstream_request_and_model_override() {
        let a = fleet();
        let c = cfg();
        let call = prepare(
            br#"{"model":"openclaw/research","input":"alpha","encoding_format":"base64","dimensions":3}"#,
            &ctx(&a, Some(&c), None),
        )
        .unwrap();
        assert_eq!(call.agent_id, "research");
        assert_eq!(call.upstream.url, "http://127.0.0.1:28812/v1/embeddings");
        assert_eq!(call.upstream.body, br#"{"model":"fake-embed","input":["alpha"],"dimensions":3}"#);
        assert_eq!(call.upstream.body.len(), 55, "content-length of upstream-embeddings-base64-dims");
        assert!(call.upstream.headers.contains(&("authorization".into(), "Bearer fake-embed-key".into())));
        let o = prepare(br#"{"model":"openclaw/main","input":"alpha"}"#, &ctx(&a, Some(&c), Some("other-embed"))).unwrap();
        assert_eq!(o.upstream.body, br#"{"model":"other-embed","input":["alpha"]}"#);
        let p = prepare(br#"{"model":"openclaw/main","input":"alpha"}"#, &ctx(&a, Some(&c), Some("openai-compatible/x"))).unwrap();
        assert_eq!(p.upstream_model, "x");
        assert_eq!(
            msg(prepare(br#"{"model":"openclaw/main","input":"alpha"}"#, &ctx(&a, Some(&c), Some("openai/text-embedding-3-small")))),
            PROVIDER_NOT_ALLOWED
        );
        let mut h = ctx(&a, Some(&c), None);
        h.header_agent = Some("research");
        assert_eq!(prepare(br#"{"model":"openclaw","input":"a"}"#, &h).unwrap().agent_id, "research");
        let none = prepare(br#"{"model":"openclaw/main","input":"a"}"#, &ctx(&a, None, None)).unwrap_err();
        assert_eq!((none.error.status, none.error.kind, none.error.message.as_str()), (500, "api_error", "internal error"));
        assert!(none.log.is_some());
    }

    #[test]
    fn responses() {
        let a = fleet();
        let c = cfg();
        let call = prepare(
            br#"{"model":"openclaw/research","input":"alpha","encoding_format":"base64","dimensions":3}"#,
            &ctx(&a, Some(&c), None),
        )
        .unwrap();
        let r = call.respond(200, br#"{"data":[{"index":0,"embedding":[0.1,0.2,0.3,0.4]}]}"#).unwrap();
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":"zczMPc3MTD6amZk+"}],"model":"openclaw/research","usage":{"prompt_tokens":0,"total_tokens":0}}"#
        );
        let f = prepare(br#"{"model":"openclaw/main","input":["a","b"]}"#, &ctx(&a, Some(&c), None)).unwrap();
        let r = f.respond(200, br#"{"data":[{"index":1,"embedding":[0.3]},{"index":0,"embedding":[0.1,0.2]}]}"#).unwrap();
        assert_eq!(
            r.json_body().unwrap()["data"],
            json!([{"object":"embedding","index":0,"embedding":[0.1,0.2]},{"object":"embedding","index":1,"embedding":[0.3]}])
        );
        for bad in [
            &b"nope"[..],
            br#"{"data":[]}"#,
            br#"{"data":[{"embedding":"x"},{"embedding":[1]}]}"#,
            br#"{"data":[{"index":5,"embedding":[1]},{"embedding":[1]}]}"#,
        ] {
            let e = f.respond(200, bad).unwrap_err();
            assert_eq!(e.error.status, 500);
        }
        assert_eq!(
            f.respond(401, b"{}").unwrap_err().response().json_body().unwrap(),
            json!({"error":{"message":"internal error","type":"api_error"}})
        );
        assert_eq!(f.transport_failed("refused").error.status, 500);
        // Base64 embeddings from upstream are decoded.
        let b = prepare(br#"{"model":"openclaw/main","input":"a"}"#, &ctx(&a, Some(&c), None)).unwrap();
        let r = b.respond(200, br#"{"data":[{"embedding":"AACAPw=="}]}"#).unwrap();
        assert_eq!(r.json_body().unwrap()["data"][0]["embedding"], json!([1.0]));
    }
}
