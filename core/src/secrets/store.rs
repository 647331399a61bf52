//! The team secret store's rules (the reference's `secrets store` contract): names, kinds,
//! value limits, redaction placeholders, allowed hosts, and the words of every refusal. The
//! shell keeps the rows (`<stateDir>/clawgate/secrets.sqlite`) and reads the input.

use serde::Serialize;
use thiserror::Error;

use crate::config::secrets::valid_store_name;
use crate::config::settings::REDACTED;

/// Largest value, in UTF-8 bytes.
pub const MAX_VALUE_BYTES: usize = 65_536;

/// Exit codes of the store commands: validation and disclosure refusals, a missing name.
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_MISSING: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A credential: write-only (never printed, `get` refuses it), never empty.
    Secret,
    /// A plain environment value: readable, may be empty.
    Env,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Env => "env",
        }
    }

    pub fn parse(s: &str) -> Result<Kind, StoreError> {
        match s {
            "secret" => Ok(Kind::Secret),
            "env" => Ok(Kind::Env),
            other => Err(StoreError::BadKind(other.to_string())),
        }
    }

    /// The kind a name gets unless `--kind` says otherwise: a credential suffix makes a secret.
    pub fn detect(name: &str) -> Kind {
        let upper = name.to_ascii_uppercase();
        if ["API_KEY", "TOKEN", "PASSWORD", "PRIVATE_KEY", "SECRET"].iter().any(|s| upper.ends_with(s)) { Kind::Secret } else { Kind::Env }
    }
}

/// Why a store operation is refused (the reference's words).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    #[error("Name must match /^[A-Z][A-Z0-9_]{{0,127}}$/.")]
    BadName,
    #[error("Invalid kind \"{0}\"; use \"secret\" or \"env\".")]
    BadKind(String),
    #[error("Identity scope is not supported yet; use --scope team.")]
    IdentityScope,
    #[error("Secret store value exceeds 65536 UTF-8 bytes.")]
    TooLarge,
    #[error("Stdin input exceeds 65536 bytes.")]
    StdinTooLarge,
    #[error("Secret store value is empty. Secret entries require a value; check the command that produced it.")]
    EmptySecret,
    #[error("--value is refused for secret entries. Use a stdin pipe, --value-file, or the interactive no-echo prompt.")]
    ValueFlagForSecret,
    #[error(
        "Secret store entry \"{0}\" contains a redaction placeholder. Supply a real value or leave the field unchanged. Run clawgate doctor --fix to repair a store-backed Gateway token."
    )]
    Placeholder(String),
    #[error("Secret store entry \"{0}\" is write-only by design. Reference it from config with a store SecretRef.")]
    WriteOnly(String),
    #[error("Secret store entry \"{0}\" was not found.")]
    NotFound(String),
    #[error("Allowed host \"{0}\" must be a hostname without a scheme, path, wildcard, or port.")]
    BadHost(String),
    #[error("Allowed host \"{0}\" cannot contain a wildcard; use one exact hostname.")]
    WildcardHost(String),
    #[error("Allowed host \"{0}\" is not a valid hostname.")]
    InvalidHost(String),
    #[error("Allowed hosts apply only to secret entries.")]
    HostsOnEnv,
    #[error("Import input contains no dotenv assignments.")]
    EmptyImport,
}

impl StoreError {
    pub fn exit_code(&self) -> i32 {
        if matches!(self, StoreError::NotFound(_)) { EXIT_MISSING } else { EXIT_INVALID }
    }
}

pub fn check_name(name: &str) -> Result<(), StoreError> {
    if valid_store_name(name) { Ok(()) } else { Err(StoreError::BadName) }
}

pub fn check_scope(scope: &str) -> Result<(), StoreError> {
    if scope == "team" { Ok(()) } else { Err(StoreError::IdentityScope) }
}

/// What to do with an incoming value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Store(String),
    /// A redaction placeholder for an entry that already has a usable value: keep that one.
    KeepExisting,
}

/// Check a value for `name` of `kind`; `existing_usable`: the entry exists with a real value.
pub fn check_value(name: &str, kind: Kind, value: String, existing_usable: bool) -> Result<Incoming, StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge);
    }
    if value.contains(REDACTED) {
        return if existing_usable { Ok(Incoming::KeepExisting) } else { Err(StoreError::Placeholder(name.to_string())) };
    }
    if kind == Kind::Secret && value.is_empty() {
        return Err(StoreError::EmptySecret);
    }
    Ok(Incoming::Store(value))
}

/// Stdin as a value: at most 64 KiB read, one trailing line break dropped.
pub fn stdin_value(bytes: &[u8]) -> Result<String, StoreError> {
    if bytes.len() > MAX_VALUE_BYTES + 2 {
        return Err(StoreError::StdinTooLarge);
    }
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    if s.len() > MAX_VALUE_BYTES {
        return Err(StoreError::StdinTooLarge);
    }
    Ok(s)
}

/// An allowed host: lowercase ASCII, no scheme, path, port or wildcard (each refused in the
/// reference's words). Internationalised names are refused rather than converted to punycode.
pub fn normalize_host(h: &str) -> Result<String, StoreError> {
    let t = h.trim().to_ascii_lowercase();
    if t.is_empty() || t.contains(['/', ':', '?', '#', '@', ' ']) {
        return Err(StoreError::BadHost(h.to_string()));
    }
    if t.contains('*') {
        return Err(StoreError::WildcardHost(h.to_string()));
    }
    let ok = t.len() <= 253
        && t.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && !t.starts_with('-');
    if ok { Ok(t) } else { Err(StoreError::InvalidHost(h.to_string())) }
}

/// Allowed hosts as stored: normalised, duplicates dropped, sorted.
pub fn normalize_hosts(hosts: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out = hosts.iter().map(|h| normalize_host(h)).collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Values the gateway's store methods refuse as redaction placeholders (after trimming): what
/// redacting UIs and logs put in place of a secret, never a real one.
const PLACEHOLDERS: &[&str] = &[
    REDACTED,
    "REDACTED",
    "xoxb-REDACTED",
    "xapp-REDACTED",
    "***",
    "[redacted]",
    "[REDACTED]",
    "<redacted>",
    "[REDACTED_PRIVATE_KEY]",
    "[REDACTED CREDENTIAL]",
];

pub fn is_placeholder(value: &str) -> bool {
    PLACEHOLDERS.contains(&value.trim())
}

/// Names the Control UI's GitHub setup keeps in the store: writable by the store methods, never
/// listed.
pub fn is_hidden_name(name: &str) -> bool {
    name.strip_prefix("github-setup-").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// One row as listings show it (never a secret's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub value: String,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub updated_by: String,
    pub allowed_hosts: Vec<String>,
}

/// `store list` (human).
pub fn list_text(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "No team secret store entries.\n".into();
    }
    let mut out = String::new();
    for e in entries {
        match e.kind {
            Kind::Env => out.push_str(&format!("{} [env] = {}\n", e.name, e.value)),
            Kind::Secret => {
                let hosts = if e.allowed_hosts.is_empty() { "none".to_string() } else { e.allowed_hosts.join(", ") };
                out.push_str(&format!("{} [secret] (write-only); allowed hosts: {hosts}\n", e.name));
            }
        }
    }
    out
}

/// `store list --plain`: `NAME\tkind\tenvValue\thosts`.
pub fn list_plain(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| {
            let value = if e.kind == Kind::Env { e.value.as_str() } else { "" };
            format!("{}\t{}\t{value}\t{}\n", e.name, e.kind.as_str(), e.allowed_hosts.join(","))
        })
        .collect()
}

/// `store list --json`.
pub fn list_json(entries: &[Entry]) -> serde_json::Value {
    serde_json::Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut o = serde_json::json!({
                    "name": e.name, "kind": e.kind.as_str(), "scopeKind": "team", "scopeId": "",
                    "updatedAtMs": e.updated_at_ms, "createdAtMs": e.created_at_ms, "updatedBy": e.updated_by,
                });
                match e.kind {
                    Kind::Env => o["valuePreview"] = e.value.clone().into(),
                    Kind::Secret => o["allowedHosts"] = serde_json::json!(e.allowed_hosts),
                }
                o
            })
            .collect(),
    )
}

/// "1 team store entry" / "2 team store entries".
pub fn entries_word(n: usize) -> String {
    if n == 1 { "1 team store entry".into() } else { format!("{n} team store entries") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_names_values() {
        assert_eq!(Kind::detect("OPENAI_API_KEY"), Kind::Secret);
        assert_eq!(Kind::detect("GH_TOKEN"), Kind::Secret);
        assert_eq!(Kind::detect("MYSECRET"), Kind::Secret);
        assert_eq!(Kind::detect("LOG_LEVEL"), Kind::Env);
        assert!(check_name("A_1").is_ok());
        assert_eq!(check_name("lower").unwrap_err().to_string(), "Name must match /^[A-Z][A-Z0-9_]{0,127}$/.");
        assert_eq!(check_value("X", Kind::Env, String::new(), false), Ok(Incoming::Store(String::new())));
        assert_eq!(check_value("X_TOKEN", Kind::Secret, String::new(), false), Err(StoreError::EmptySecret));
        assert_eq!(check_value("X", Kind::Env, "a".repeat(65_536), false), Ok(Incoming::Store("a".repeat(65_536))));
        assert_eq!(check_value("X", Kind::Env, "a".repeat(65_537), false), Err(StoreError::TooLarge));
        assert_eq!(check_value("X", Kind::Secret, REDACTED.into(), true), Ok(Incoming::KeepExisting));
        assert_eq!(check_value("X", Kind::Secret, REDACTED.into(), false).unwrap_err().exit_code(), 2);
        assert_eq!(StoreError::NotFound("X".into()).exit_code(), 3);
        assert_eq!(stdin_value(b"line1\r\n"), Ok("line1".into()));
        assert_eq!(stdin_value(b"a\n\n"), Ok("a\n".into()));
        assert_eq!(normalize_host("API.OpenAI.com"), Ok("api.openai.com".into()));
        for bad in ["https://x.com", "x.com:443", "*.x.com", "x.com/p", ""] {
            assert!(normalize_host(bad).is_err(), "{bad}");
        }
    }
}
