//! `logs.tail` (spec operator §1.2): params, the byte range to read, and the answer built from
//! the bytes read. Offsets are bytes of the file; lines are `\n`-separated; only complete lines
//! are returned.

use serde_json::{Value, json};

use crate::wire::ErrorShape;

pub const DEFAULT_LIMIT: usize = 500;
pub const MAX_LIMIT: usize = 5_000;
pub const DEFAULT_MAX_BYTES: u64 = 250_000;
pub const MAX_MAX_BYTES: u64 = 1_000_000;

fn params_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "cursor": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            "maxBytes": {"type": "integer", "minimum": 1, "maximum": MAX_MAX_BYTES},
        },
        "additionalProperties": false,
    })
}

/// Validated `logs.tail` params.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailParams {
    pub cursor: Option<u64>,
    pub limit: usize,
    pub max_bytes: u64,
}

/// Validate `logs.tail` params (closed object; the reference's messages).
pub fn parse_tail_params(params: Option<&Value>) -> Result<TailParams, ErrorShape> {
    let empty = json!({});
    let p = params.unwrap_or(&empty);
    crate::wire::schema::validate(&params_schema(), p)
        .map_err(|d| ErrorShape::invalid_request(format!("invalid logs.tail params: {d}")))?;
    Ok(TailParams {
        cursor: p.get("cursor").and_then(Value::as_u64),
        limit: p.get("limit").and_then(Value::as_u64).map_or(DEFAULT_LIMIT, |l| l as usize),
        max_bytes: p.get("maxBytes").and_then(Value::as_u64).unwrap_or(DEFAULT_MAX_BYTES),
    })
}

/// What to read: bytes `start..size` of the file, and what the answer reports about the jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailPlan {
    pub start: u64,
    pub size: u64,
    pub reset: bool,
    pub truncated: bool,
    pub skipped_bytes: Option<u64>,
}

/// Decide the range for a file of `size` bytes (steps 2–4).
pub fn plan_tail(p: &TailParams, size: u64) -> TailPlan {
    let window_start = size.saturating_sub(p.max_bytes);
    match p.cursor {
        // First read: the newest `maxBytes`.
        None => TailPlan { start: window_start, size, reset: false, truncated: window_start > 0, skipped_bytes: None },
        // The file was rotated or replaced under the cursor.
        Some(c) if c > size => TailPlan { start: window_start, size, reset: true, truncated: window_start > 0, skipped_bytes: None },
        // Further behind than one window: skip ahead.
        Some(c) if size - c > p.max_bytes => {
            TailPlan { start: window_start, size, reset: true, truncated: true, skipped_bytes: Some(window_start - c) }
        }
        Some(c) => TailPlan { start: c, size, reset: false, truncated: false, skipped_bytes: None },
    }
}

/// The answer for the bytes `plan.start..plan.size` (`bytes`) of `file`. `at_line_start`: the
/// byte before `start` is a newline (or `start` is 0); otherwise the partial first line is
/// dropped. The unterminated last fragment is dropped too. Each line passes `redact`.
pub fn tail_result(
    p: &TailParams,
    plan: &TailPlan,
    file: &str,
    bytes: &[u8],
    at_line_start: bool,
    redact: &dyn Fn(&str) -> String,
) -> Value {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<&str> = text.split('\n').collect();
    // The piece after the last `\n` is unterminated (empty when the range ends on a newline).
    lines.pop();
    if !at_line_start && !lines.is_empty() {
        lines.remove(0);
    }
    let mut truncated = plan.truncated;
    if lines.len() > p.limit {
        lines.drain(..lines.len() - p.limit);
        truncated = true;
    }
    let lines: Vec<String> = lines.into_iter().map(|l| redact(l.strip_suffix('\r').unwrap_or(l))).collect();
    let mut v = json!({
        "file": file, "cursor": plan.size, "size": plan.size, "lines": lines, "truncated": truncated, "reset": plan.reset,
    });
    if let Some(s) = plan.skipped_bytes {
        v["skippedBytes"] = json!(s);
    }
    v
}

/// The answer when there is no log file yet (step 1).
pub fn no_file_result(p: &TailParams, file: &str) -> Value {
    json!({"file": file, "cursor": 0, "size": 0, "lines": [], "truncated": false, "reset": p.cursor.is_some_and(|c| c > 0)})
}

/// The error when the file could not be read (step 8).
pub fn read_failed(error: &dyn std::fmt::Display) -> ErrorShape {
    ErrorShape::unavailable(format!("log read failed: {error}"))
}

/// Hide the gateway's own secrets (token, password, provider keys, …) in a line: every
/// occurrence of one of `secrets` (empty and very short values are ignored) becomes `***`.
pub fn redact_secrets(line: &str, secrets: &[String]) -> String {
    let mut out = line.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> TailParams {
        parse_tail_params(Some(&v)).unwrap()
    }

    fn msg(v: Value) -> String {
        parse_tail_params(Some(&v)).unwrap_err().message
    }

    #[test]
    fn params_are_validated_with_the_reference_messages() {
        // `op-logs-tail-invalid` (reference 2026.9.6).
        assert_eq!(msg(json!({"limit": 0})), "invalid logs.tail params: at /limit: must be >= 1");
        assert_eq!(msg(json!({"limit": 5001})), "invalid logs.tail params: at /limit: must be <= 5000");
        assert_eq!(msg(json!({"maxBytes": 1_000_001})), "invalid logs.tail params: at /maxBytes: must be <= 1000000");
        assert_eq!(msg(json!({"cursor": -1})), "invalid logs.tail params: at /cursor: must be >= 0");
        assert_eq!(msg(json!({"cursor": "10"})), "invalid logs.tail params: at /cursor: must be integer");
        assert_eq!(msg(json!({"cursor": 1.5})), "invalid logs.tail params: at /cursor: must be integer");
        assert_eq!(msg(json!({"follow": true})), "invalid logs.tail params: at root: unexpected property 'follow'");
        assert_eq!(parse_tail_params(None).unwrap(), TailParams { cursor: None, limit: 500, max_bytes: 250_000 });
    }

    #[test]
    fn the_range_follows_the_cursor_and_jumps_when_it_must() {
        let size = 22_544_704;
        // `op-logs-tail-window`: `{limit:3}` on a 22 MB file: the newest window, truncated.
        assert_eq!(
            plan_tail(&params(json!({"limit": 3})), size),
            TailPlan { start: size - 250_000, size, reset: false, truncated: true, skipped_bytes: None }
        );
        // Nothing new since the cursor.
        assert_eq!(
            plan_tail(&params(json!({"cursor": size})), size),
            TailPlan { start: size, size, reset: false, truncated: false, skipped_bytes: None }
        );
        // A cursor past the end: the file was replaced.
        let p = plan_tail(&params(json!({"cursor": 999_999_999_999u64, "limit": 2})), size);
        assert!(p.reset && p.truncated && p.skipped_bytes.is_none());
        // Too far behind: skip ahead, say how much (the capture's skippedBytes: 22541704).
        let p = plan_tail(&params(json!({"cursor": 0, "maxBytes": 3000, "limit": 2})), size);
        assert_eq!((p.start, p.reset, p.truncated, p.skipped_bytes), (size - 3000, true, true, Some(22_541_704)));
        // A small file read whole.
        assert_eq!(plan_tail(&params(json!({})), 100).start, 0);
        assert!(!plan_tail(&params(json!({})), 100).truncated);
    }

    #[test]
    fn only_complete_lines_come_back_the_newest_limit_of_them() {
        let p = params(json!({"limit": 2}));
        let plan = TailPlan { start: 4, size: 30, reset: false, truncated: false, skipped_bytes: None };
        let bytes = b"rtial\nline one\nline two\nline three\nfrag";
        let v = tail_result(&p, &plan, "/tmp/x.log", bytes, false, &|l| l.to_string());
        assert_eq!(v["lines"], json!(["line two", "line three"]));
        assert_eq!((v["truncated"].as_bool(), v["cursor"].as_u64(), v.get("skippedBytes")), (Some(true), Some(30), None));
        // Starting on a line boundary keeps the first line.
        let v = tail_result(&params(json!({})), &plan, "/tmp/x.log", b"a\nb\n", true, &|l| l.to_string());
        assert_eq!((v["lines"].clone(), v["truncated"].as_bool()), (json!(["a", "b"]), Some(false)));
        // `{limit:1, maxBytes:10}` on a long-line file: no complete line fits.
        let v = tail_result(&params(json!({"limit": 1})), &plan, "/tmp/x.log", b"0123456789", false, &|l| l.to_string());
        assert_eq!(v["lines"], json!([]));
        assert_eq!(no_file_result(&params(json!({"cursor": 5})), "/tmp/x.log")["reset"], true);
        assert_eq!(read_failed(&"denied").message, "log read failed: denied");
    }

    #[test]
    fn secrets_never_leave_in_a_line() {
        let secrets = vec!["s3cret-token-value".to_string(), "ab".to_string()];
        assert_eq!(redact_secrets("auth with s3cret-token-value ok ab", &secrets), "auth with *** ok ab");
    }
}
