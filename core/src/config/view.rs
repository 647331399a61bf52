//! The `config.get` answer (operator §2.1): the file as it is on disk now (`raw`, `parsed`,
//! `hash`) beside the config the gateway runs (`config`, `runtimeConfig`), secrets redacted.
//!
//! The raw editor and the forms save with the `hash` they read, so it must be the hash of the
//! bytes on disk at the moment of the read — not of the last applied snapshot, which lags a
//! save by the reload's settle time (a second save in that window would be refused as stale).

use serde_json::{Value, json};

use crate::config::file::{file_hash, parse_json5};
use crate::config::settings::{GatewaySettings, REDACTED, redact, sensitive_values};

/// What the shell found at the config path.
#[derive(Debug, Clone, Copy)]
pub enum FileOnDisk<'a> {
    /// Not read (no IO: in-memory runs); the applied snapshot answers.
    Unread,
    Missing,
    Read(&'a [u8]),
}

/// The authored text with every plaintext secret replaced by the redaction sentinel, comments
/// and layout kept. `None` when the text cannot be scrubbed safely (the caller shows the
/// redacted object instead).
pub fn scrub_raw(text: &str, parsed: &Value, extra_secrets: &[String]) -> Option<String> {
    let mut secrets = sensitive_values(parsed);
    secrets.extend(extra_secrets.iter().filter(|s| !s.is_empty()).cloned());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let mut raw = text.to_string();
    for s in &secrets {
        raw = raw.replace(s.as_str(), REDACTED);
    }
    // The scrubbed text must mean exactly the redacted config (a secret that also occurs in a
    // key or another value would change it) and show no secret.
    let reparsed = parse_json5("raw", &raw).ok()?;
    (reparsed == redact(parsed) && !secrets.iter().any(|s| raw.contains(s.as_str()))).then_some(raw)
}

/// The `config.get` result.
pub fn get_result(s: &GatewaySettings, path: &str, disk: FileOnDisk<'_>) -> Value {
    let applied = s.applied_config_hash().to_string();
    let mut v = json!({
        "path": path,
        "includedPaths": s.config_included,
        "includeProvenance": [],
        "agentRosterIncludeOwned": false,
        "bindingsIncludeOwned": false,
        "valid": true,
        "runtimeConfig": s.config_redacted,
        "config": s.config_redacted,
        "resolved": s.config_redacted,
        "issues": [],
        "warnings": s.config_warnings,
        "legacyIssues": [],
        "appliedConfigHash": applied,
    });
    let (exists, raw, parsed, hash) = match disk {
        FileOnDisk::Unread => {
            let parsed = if s.config_exists { s.config_redacted.clone() } else { json!({}) };
            let raw = s.config_exists.then(|| serde_json::to_string_pretty(&s.config_redacted).unwrap_or_default());
            (
                s.config_exists,
                raw.map(Value::String).unwrap_or(Value::Null),
                parsed,
                s.config_file_hash.clone().unwrap_or_else(|| applied.clone()),
            )
        }
        FileOnDisk::Missing => (false, Value::Null, json!({}), applied.clone()),
        FileOnDisk::Read(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let known = s.secret_values();
            match parse_json5(path, &text) {
                Ok(parsed) => {
                    let shown = redact(&parsed);
                    let raw = scrub_raw(&text, &parsed, &known)
                        .unwrap_or_else(|| serde_json::to_string_pretty(&shown).unwrap_or_default() + "\n");
                    (true, Value::String(raw), shown, file_hash(bytes))
                }
                Err(e) => {
                    // An unparseable file: shown only with the secrets we know scrubbed.
                    let mut raw = text.into_owned();
                    for k in known.iter().filter(|k| !k.is_empty()) {
                        raw = raw.replace(k.as_str(), REDACTED);
                    }
                    v["valid"] = json!(false);
                    v["issues"] = json!([{"path": "", "message": e.to_string()}]);
                    (true, Value::String(raw), Value::Null, file_hash(bytes))
                }
            }
        }
    };
    v["exists"] = json!(exists);
    v["raw"] = raw;
    v["sourceConfig"] = if parsed.is_null() { s.config_redacted.clone() } else { parsed.clone() };
    v["parsed"] = parsed;
    v["hash"] = json!(hash);
    v["configRevisionHash"] = json!(hash);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_keeps_comments_and_hides_every_secret() {
        let text = "{\n  // my gateway\n  gateway: {auth: {token: 'tok-secret-1'}},\n  models: {providers: {p: {apiKey: \"sk-2\", headers: {X: 'hdr-3'}}}},\n}\n";
        let parsed = parse_json5("f", text).unwrap();
        let raw = scrub_raw(text, &parsed, &[]).unwrap();
        assert!(raw.contains("// my gateway"));
        for s in ["tok-secret-1", "sk-2", "hdr-3"] {
            assert!(!raw.contains(s), "{raw}");
        }
        assert_eq!(parse_json5("f", &raw).unwrap(), redact(&parsed));
    }

    #[test]
    fn a_secret_that_is_also_a_key_falls_back_to_the_object() {
        let text = "{gateway: {mode: 'local', auth: {token: 'mode'}}}";
        let parsed = parse_json5("f", text).unwrap();
        assert_eq!(scrub_raw(text, &parsed, &[]), None);
    }
}
