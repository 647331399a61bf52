//! SecretRefs (config-auth-reload §7): `{source, provider, id}` references to secrets kept
//! outside the config file, their `${NAME}` shorthand, and resolution. The core decides (ref
//! grammar, provider lookup, file permission policy, JSON-pointer extraction, the exec
//! protocol); the shell does the IO through [`SecretIo`].

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretSource {
    Env,
    File,
    Exec,
    /// The gateway-wide team secret store in the state dir (issue 16).
    Store,
}

impl SecretSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretSource::Env => "env",
            SecretSource::File => "file",
            SecretSource::Exec => "exec",
            SecretSource::Store => "store",
        }
    }
    fn parse(s: &str) -> Option<SecretSource> {
        match s {
            "env" => Some(SecretSource::Env),
            "file" => Some(SecretSource::File),
            "exec" => Some(SecretSource::Exec),
            "store" => Some(SecretSource::Store),
            _ => None,
        }
    }
}

/// A reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    pub source: SecretSource,
    pub provider: String,
    pub id: String,
}

/// The default provider alias of every source.
pub const DEFAULT_PROVIDER: &str = "default";

fn valid_env_id(id: &str) -> bool {
    let mut c = id.chars();
    matches!(c.next(), Some('A'..='Z')) && id.len() <= 128 && c.all(|x| x.is_ascii_uppercase() || x.is_ascii_digit() || x == '_')
}

/// A team secret store name (`^[A-Z][A-Z0-9_]{0,127}$`), which is also a store ref's id.
pub fn valid_store_name(name: &str) -> bool {
    valid_env_id(name)
}

fn valid_provider(p: &str) -> bool {
    let mut c = p.chars();
    matches!(c.next(), Some('a'..='z')) && p.len() <= 64 && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_' || x == '-')
}

fn valid_exec_id(id: &str) -> bool {
    let mut c = id.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphanumeric())
        && id.len() <= 256
        && c.all(|x| x.is_ascii_alphanumeric() || "._:/#-".contains(x))
        && !id.split('/').any(|seg| seg == "." || seg == "..")
}

impl SecretRef {
    pub fn env(name: &str) -> SecretRef {
        SecretRef { source: SecretSource::Env, provider: DEFAULT_PROVIDER.into(), id: name.into() }
    }

    /// `"${NAME}"` or `"$NAME"` (the whole value) on a SecretInput field: an env reference.
    pub fn from_shorthand(s: &str) -> Option<SecretRef> {
        let name = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')).or_else(|| s.strip_prefix('$'))?;
        valid_env_id(name).then(|| SecretRef::env(name))
    }

    /// A `{source, provider, id}` object (a missing provider is legacy input: the default alias).
    pub fn from_object(v: &Value) -> Result<SecretRef, String> {
        let o = v.as_object().ok_or("expected a SecretRef object")?;
        if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "source" | "provider" | "id")) {
            return Err(format!("unexpected key \"{k}\" in SecretRef (allowed: source, provider, id)"));
        }
        let source = o
            .get("source")
            .and_then(Value::as_str)
            .and_then(SecretSource::parse)
            .ok_or("SecretRef source must be \"env\", \"file\", \"exec\" or \"store\"")?;
        let provider = o.get("provider").and_then(Value::as_str).unwrap_or(DEFAULT_PROVIDER).to_string();
        if !valid_provider(&provider) {
            return Err(format!("invalid SecretRef provider \"{provider}\""));
        }
        let id = o.get("id").and_then(Value::as_str).ok_or("SecretRef id must be a string")?.to_string();
        let ok = match source {
            SecretSource::Env => valid_env_id(&id),
            SecretSource::File => id == "value" || id.starts_with('/'),
            SecretSource::Exec => valid_exec_id(&id),
            SecretSource::Store => valid_store_name(&id),
        };
        if !ok {
            return Err(format!("invalid {} SecretRef id \"{id}\"", source.as_str()));
        }
        Ok(SecretRef { source, provider, id })
    }

    /// For logs and errors: names the reference, never the value.
    pub fn describe(&self) -> String {
        format!("{}:{}:{}", self.source.as_str(), self.provider, self.id)
    }
}

/// A config field that holds a secret: plain text or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretInput {
    Plain(String),
    Ref(SecretRef),
}

impl SecretInput {
    pub fn from_value(v: &Value) -> Result<SecretInput, String> {
        match v {
            Value::String(s) => Ok(SecretRef::from_shorthand(s).map(SecretInput::Ref).unwrap_or_else(|| SecretInput::Plain(s.clone()))),
            Value::Object(_) => SecretRef::from_object(v).map(SecretInput::Ref),
            _ => Err("expected a string or a SecretRef {source, provider, id}".into()),
        }
    }

    pub fn is_ref(&self) -> bool {
        matches!(self, SecretInput::Ref(_))
    }
}

/// A configured provider (`secrets.providers.<alias>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    File { path: String, single_value: bool, max_bytes: usize },
    Exec { command: String, args: Vec<String>, timeout: Duration, max_output_bytes: usize },
}

pub const FILE_MAX_BYTES: usize = 1024 * 1024;
pub const EXEC_TIMEOUT: Duration = Duration::from_millis(5_000);
pub const EXEC_MAX_OUTPUT: usize = 1024 * 1024;

/// Read `secrets.providers` from the (resolved) config.
pub fn providers(config: &Value) -> Result<HashMap<String, (SecretSource, Provider)>, String> {
    let mut out = HashMap::new();
    let Some(map) = config.pointer("/secrets/providers").and_then(Value::as_object) else { return Ok(out) };
    for (alias, p) in map {
        let source = p.get("source").and_then(Value::as_str).unwrap_or_default();
        let provider = match source {
            "file" => Provider::File {
                path: p.get("path").and_then(Value::as_str).ok_or(format!("secrets.providers.{alias}.path is required"))?.to_string(),
                single_value: p.get("mode").and_then(Value::as_str) == Some("singleValue"),
                max_bytes: p.get("maxBytes").and_then(Value::as_u64).map_or(FILE_MAX_BYTES, |x| x as usize),
            },
            "exec" => Provider::Exec {
                command: p
                    .get("command")
                    .and_then(Value::as_str)
                    .ok_or(format!("secrets.providers.{alias}.command is required"))?
                    .to_string(),
                args: p
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default(),
                timeout: p.get("timeoutMs").and_then(Value::as_u64).map_or(EXEC_TIMEOUT, Duration::from_millis),
                max_output_bytes: p.get("maxOutputBytes").and_then(Value::as_u64).map_or(EXEC_MAX_OUTPUT, |x| x as usize),
            },
            "env" | "store" => continue,
            other => return Err(format!("secrets.providers.{alias}.source must be \"env\", \"file\" or \"exec\" (got \"{other}\")")),
        };
        out.insert(alias.clone(), (SecretSource::parse(source).unwrap_or(SecretSource::File), provider));
    }
    Ok(out)
}

/// File secrets must not be readable or writable by group or others.
pub fn check_file_mode(path: &str, mode: u32) -> Result<(), String> {
    if mode & 0o077 != 0 {
        return Err(format!("{path} permissions are too open ({:o}); make it private (chmod 600) | insecure-permissions", mode & 0o777));
    }
    Ok(())
}

/// Pick a value out of a file provider's contents: the whole file (`singleValue`) or a JSON
/// pointer into a JSON document.
pub fn extract_file_secret(text: &str, id: &str, single_value: bool) -> Result<String, String> {
    if single_value || id == "value" {
        let v = text.trim_end_matches(['\n', '\r']).to_string();
        return if v.is_empty() { Err("file is empty".into()) } else { Ok(v) };
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("file is not JSON: {e}"))?;
    match doc.pointer(id) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(format!("{id} is not a non-empty string")),
        None => Err(format!("{id} not found")),
    }
}

/// The exec provider's request on stdin.
pub fn exec_request(provider: &str, ids: &[&str]) -> String {
    json!({"protocolVersion": 1, "provider": provider, "ids": ids}).to_string()
}

/// The value for `id` in an exec provider's stdout (`{protocolVersion:1, values, errors?}`).
pub fn parse_exec_response(stdout: &str, id: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(stdout.trim()).map_err(|e| format!("exec output is not JSON: {e}"))?;
    if v.get("protocolVersion").and_then(Value::as_u64) != Some(1) {
        return Err("exec output must have protocolVersion 1".into());
    }
    if let Some(e) = v.pointer(&format!("/errors/{}", id.replace('~', "~0").replace('/', "~1"))) {
        return Err(format!(
            "exec provider reported an error for {id}: {}",
            e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())
        ));
    }
    match v.get("values").and_then(|m| m.get(id)) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(format!("exec provider returned no value for {id}")),
    }
}

/// The IO a resolution needs (implemented by the shell).
pub trait SecretIo {
    fn env(&self, name: &str) -> Option<String>;
    /// Read a private file (mode checked with [`check_file_mode`]) of at most `max` bytes.
    fn read_private_file(&mut self, path: &str, max: usize) -> Result<String, String>;
    /// Run `command args`, write `stdin`, return stdout (bounded by `timeout` and `max`).
    fn run(&mut self, command: &str, args: &[String], stdin: &str, timeout: Duration, max: usize) -> Result<String, String>;
    /// A live entry of the team secret store (`None`: no such entry, or no store).
    fn store(&mut self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
}

/// Why a secret could not be resolved (never contains the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SecretRefResolutionError: {0}")]
pub struct SecretError(pub String);

/// Resolve a SecretInput to its value.
pub fn resolve(
    input: &SecretInput,
    providers: &HashMap<String, (SecretSource, Provider)>,
    io: &mut dyn SecretIo,
) -> Result<Secret, SecretError> {
    let r = match input {
        SecretInput::Plain(s) => return Ok(Secret::new(s.clone())),
        SecretInput::Ref(r) => r,
    };
    let fail = |m: String| SecretError(m);
    match r.source {
        SecretSource::Env => {
            // Env refs use the process environment unless a provider of that name says otherwise.
            io.env(&r.id)
                .filter(|v| !v.is_empty())
                .map(Secret::new)
                .ok_or_else(|| fail(format!("Environment variable \"{}\" is missing or empty.", r.id)))
        }
        SecretSource::Store => {
            io.store(&r.id).map(Secret::new).ok_or_else(|| fail(format!("Secret store entry \"{}\" was not found.", r.id)))
        }
        SecretSource::File | SecretSource::Exec => {
            let (source, provider) = providers
                .get(&r.provider)
                .ok_or_else(|| fail(format!("secret provider \"{}\" is not configured (secrets.providers.{})", r.provider, r.provider)))?;
            if *source != r.source {
                return Err(fail(format!(
                    "secret provider \"{}\" is a {} provider, not {}",
                    r.provider,
                    source.as_str(),
                    r.source.as_str()
                )));
            }
            match provider {
                Provider::File { path, single_value, max_bytes } => {
                    let text =
                        io.read_private_file(path, *max_bytes).map_err(|e| fail(format!("secrets.providers.{}.path {e}", r.provider)))?;
                    extract_file_secret(&text, &r.id, *single_value).map(Secret::new).map_err(|e| fail(format!("{}: {e}", r.describe())))
                }
                Provider::Exec { command, args, timeout, max_output_bytes } => {
                    let out = io
                        .run(command, args, &exec_request(&r.provider, &[&r.id]), *timeout, *max_output_bytes)
                        .map_err(|e| fail(format!("{}: {e}", r.describe())))?;
                    parse_exec_response(&out, &r.id).map(Secret::new).map_err(fail)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_and_object_forms() {
        assert_eq!(SecretRef::from_shorthand("${MY_TOKEN}"), Some(SecretRef::env("MY_TOKEN")));
        assert_eq!(SecretRef::from_shorthand("$MY_TOKEN"), Some(SecretRef::env("MY_TOKEN")));
        assert_eq!(SecretRef::from_shorthand("${lower}"), None);
        assert_eq!(SecretRef::from_shorthand("a${B}"), None);
        let r = SecretRef::from_object(&json!({"source": "file", "provider": "gwfile", "id": "/gateway/token"})).unwrap();
        assert_eq!(r.source, SecretSource::File);
        assert!(SecretRef::from_object(&json!({"source": "env", "provider": "default", "id": "X", "extra": 1})).is_err());
        assert!(SecretRef::from_object(&json!({"source": "exec", "provider": "p", "id": "a/../b"})).is_err());
    }

    #[test]
    fn file_and_exec_contracts() {
        assert!(check_file_mode("/s", 0o600).is_ok());
        assert!(check_file_mode("/s", 0o644).unwrap_err().contains("insecure-permissions"));
        assert_eq!(extract_file_secret("{\"gateway\":{\"token\":\"t1\"}}", "/gateway/token", false).unwrap(), "t1");
        assert_eq!(extract_file_secret("t2\n", "value", true).unwrap(), "t2");
        assert_eq!(parse_exec_response(r#"{"protocolVersion":1,"values":{"k":"v"}}"#, "k").unwrap(), "v");
        assert!(parse_exec_response(r#"{"protocolVersion":1,"values":{},"errors":{"k":"denied"}}"#, "k").unwrap_err().contains("denied"));
    }
}
