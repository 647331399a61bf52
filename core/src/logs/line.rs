//! One log line (spec operator §1.1): the reference's positional tslog shape — `"0"` the
//! context as JSON text (`{"subsystem":"gateway/ws"}`), `"1"` the message, `_meta` (runtime,
//! host, ISO-UTC `date`, level id and name, logger name), `time` in local time with its offset,
//! `hostname`, `message` — and the reader's view of a line (`openclaw logs --json`).

use serde_json::{Map, Value, json};

/// Log levels, with the reference's (tslog) ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub fn id(self) -> u8 {
        match self {
            Level::Trace => 1,
            Level::Debug => 2,
            Level::Info => 3,
            Level::Warn => 4,
            Level::Error => 5,
            Level::Fatal => 6,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

/// One record to write.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub unix_ms: u64,
    /// The local UTC offset at `unix_ms`, in seconds (the shell reads the system time zone).
    pub utc_offset_seconds: i32,
    pub level: Level,
    /// `gateway`, `gateway/config`, … (the `subsystem` readers show).
    pub subsystem: &'a str,
    pub message: &'a str,
    pub hostname: &'a str,
    /// Our version (`_meta.runtimeVersion`).
    pub version: &'a str,
}

fn timestamp(unix_ms: u64) -> jiff::Timestamp {
    i64::try_from(unix_ms).ok().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn offset(seconds: i32) -> jiff::tz::Offset {
    jiff::tz::Offset::from_seconds(seconds).unwrap_or(jiff::tz::Offset::UTC)
}

/// `2026-12-06T19:02:11.982Z`.
pub fn iso_utc(unix_ms: u64) -> String {
    timestamp(unix_ms).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `2026-12-06T19:02:11.982+00:00`: local time with its offset.
pub fn iso_local(unix_ms: u64, utc_offset_seconds: i32) -> String {
    timestamp(unix_ms)
        .to_zoned_datetime(jiff::tz::TimeZone::fixed(offset(utc_offset_seconds)))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// The local calendar date (`2026-12-06`) the day's file is named after.
pub fn local_date(unix_ms: u64, utc_offset_seconds: i32) -> String {
    timestamp(unix_ms).to_zoned_datetime(jiff::tz::TimeZone::fixed(offset(utc_offset_seconds))).strftime("%Y-%m-%d").to_string()
}

/// The line (without its newline).
pub fn format_line(r: &Record<'_>) -> String {
    let context = json!({"subsystem": r.subsystem}).to_string();
    let mut o = Map::new();
    o.insert("0".into(), json!(context));
    o.insert("1".into(), json!(r.message));
    o.insert(
        "_meta".into(),
        json!({
            "runtime": "clawgate",
            "runtimeVersion": r.version,
            "hostname": r.hostname,
            "date": iso_utc(r.unix_ms),
            "logLevelId": r.level.id(),
            "logLevelName": r.level.name(),
            "name": context,
            "parentNames": ["openclaw"],
        }),
    );
    o.insert("time".into(), json!(iso_local(r.unix_ms, r.utc_offset_seconds)));
    o.insert("hostname".into(), json!(r.hostname));
    o.insert("message".into(), json!(r.message));
    Value::Object(o).to_string()
}

/// A line as readers show it (`openclaw logs`, `clawgate logs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    pub time: Option<String>,
    /// Lowercase (`info`); none for a line that is not JSON.
    pub level: Option<String>,
    pub subsystem: Option<String>,
    pub module: Option<String>,
    pub message: String,
    pub raw: String,
}

/// Parse a line as the reference's readers do: `time` (else `_meta.date`), the level from
/// `_meta.logLevelName`, subsystem/module from the context JSON in `"0"` (else `_meta.name`),
/// the message from `message` (else the positional values after the context, joined). A line
/// that is not a JSON object is kept as raw text.
pub fn parse_line(raw: &str) -> ParsedLine {
    let plain = || ParsedLine { time: None, level: None, subsystem: None, module: None, message: raw.to_string(), raw: raw.to_string() };
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(raw) else { return plain() };
    let meta = o.get("_meta").and_then(Value::as_object);
    let time = o.get("time").or_else(|| meta.and_then(|m| m.get("date"))).and_then(Value::as_str).map(str::to_string);
    let level = meta.and_then(|m| m.get("logLevelName")).and_then(Value::as_str).map(str::to_ascii_lowercase);
    let context = |v: Option<&Value>| -> Option<Map<String, Value>> {
        match serde_json::from_str::<Value>(v?.as_str()?) {
            Ok(Value::Object(c)) => Some(c),
            _ => None,
        }
    };
    let ctx = context(o.get("0")).or_else(|| context(meta.and_then(|m| m.get("name"))));
    let field = |k: &str| ctx.as_ref().and_then(|c| c.get(k)).and_then(Value::as_str).map(str::to_string);
    let message = match o.get("message").and_then(Value::as_str) {
        Some(m) => m.to_string(),
        None => {
            let skip = usize::from(ctx.is_some());
            let parts: Vec<String> = (skip..)
                .map_while(|i| o.get(&i.to_string()))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            parts.join(" ")
        }
    };
    ParsedLine { time, level, subsystem: field("subsystem"), module: field("module"), message, raw: raw.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_reference_shape_and_reads_back() {
        let r = Record {
            unix_ms: 1_796_583_831_607,
            utc_offset_seconds: 3_600,
            level: Level::Warn,
            subsystem: "gateway/config",
            message: "config reload disabled",
            hostname: "vm",
            version: "0.1.0",
        };
        let line = format_line(&r);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["0"], r#"{"subsystem":"gateway/config"}"#);
        assert_eq!(v["_meta"]["date"], "2026-12-06T19:03:51.607Z");
        assert_eq!(v["time"], "2026-12-06T20:03:51.607+01:00", "local time with its offset");
        assert_eq!((v["_meta"]["logLevelId"].as_u64(), v["_meta"]["logLevelName"].as_str()), (Some(4), Some("WARN")));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["0", "1", "_meta", "time", "hostname", "message"], "the reference's key order");
        let p = parse_line(&line);
        assert_eq!(
            (p.time.as_deref(), p.level.as_deref(), p.subsystem.as_deref(), p.message.as_str()),
            (Some("2026-12-06T20:03:51.607+01:00"), Some("warn"), Some("gateway/config"), "config reload disabled")
        );
        assert_eq!(local_date(r.unix_ms, 3_600), "2026-12-06");
        assert_eq!(local_date(1_796_598_000_000, 3_600), "2026-12-07", "23:00 UTC is tomorrow at +01:00");
    }

    #[test]
    fn reference_lines_and_plain_text_parse_as_the_cli_shows_them() {
        // From `op-logs-cli-json` (reference 2026.9.6): a structured object between context and message.
        let raw = r#"{"0":"{\"subsystem\":\"state/database-verify\"}","1":{"kind":"agent"},"2":"database integrity verification passed","_meta":{"date":"2026-12-06T19:04:56.737Z","logLevelName":"INFO","name":"{\"subsystem\":\"state/database-verify\"}"},"time":"2026-12-06T19:04:56.737+00:00"}"#;
        let p = parse_line(raw);
        assert_eq!(p.subsystem.as_deref(), Some("state/database-verify"));
        assert_eq!(p.message, r#"{"kind":"agent"} database integrity verification passed"#, "positional values joined");
        let m = parse_line(
            r#"{"0":"{\"module\":\"cron\"}","message":"tick","_meta":{"date":"2026-12-06T19:00:00.000Z","logLevelName":"DEBUG"}}"#,
        );
        assert_eq!(
            (m.module.as_deref(), m.time.as_deref(), m.level.as_deref()),
            (Some("cron"), Some("2026-12-06T19:00:00.000Z"), Some("debug"))
        );
        let t = parse_line("not json at all");
        assert_eq!((t.level, t.message.as_str()), (None, "not json at all"));
    }
}
