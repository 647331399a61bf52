//! The config file (config-auth-reload §1.3, §2): JSON5 text in, a typed view of the keys the
//! gateway uses out — with every other key kept untouched, so a config written for the
//! reference gateway is read as-is and round-trips through `config.patch`.
//!
//! Pipeline: parse JSON5 → resolve `$include` (files read by the shell through a callback) →
//! substitute `${VAR}` in strings (SecretInput fields excepted: there `"${NAME}"` is an env
//! SecretRef) → validate the keys we use. Errors name the file, the key path and the problem;
//! JSON5 syntax errors carry line and column.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::auth::ingress::IpNet;
use crate::auth::{AuthMode, RateLimitPolicy};
use crate::config::BindMode;
use crate::config::secrets::{SecretInput, SecretRef};

/// Largest included file.
pub const MAX_INCLUDE_BYTES: usize = 2 * 1024 * 1024;
/// Deepest `$include` nesting.
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// One problem with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key path (`gateway.port`); empty for the whole file.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Why a config file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("JSON5 syntax error in {file} at line {line} column {column}: {message}")]
    Syntax { file: String, line: usize, column: usize, message: String },
    #[error("{file}: {message}")]
    Include { file: String, message: String },
    #[error("{}", format_issues(.file, .issues))]
    Invalid { file: String, issues: Vec<ConfigIssue> },
}

fn format_issues(file: &str, issues: &[ConfigIssue]) -> String {
    let mut s = format!("Invalid config at {file}:");
    for i in issues {
        s.push_str("\n  ");
        s.push_str(&i.to_string());
    }
    s
}

impl ConfigError {
    /// One line for logs (`config reload skipped (invalid config): …`).
    pub fn one_line(&self) -> String {
        self.to_string().replace(":\n  ", ": ").replace("\n  ", " | ")
    }
}

/// Deepest array/object nesting accepted: the json5 crate recurses without a limit, so a
/// deeply nested text (a `config.patch` `raw`) would overflow the stack and abort the process.
pub const MAX_JSON5_DEPTH: usize = 128;

/// Byte offset of the first `[`/`{` nested deeper than [`MAX_JSON5_DEPTH`] (strings and
/// comments skipped).
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON5_DEPTH {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parse JSON5 text into a JSON value, with 1-based line/column on errors (the json5 crate
/// reports end-of-input errors at 1:1; we point at the end of the text instead).
pub fn parse_json5(file: &str, text: &str) -> Result<Value, ConfigError> {
    if let Some(at) = too_deep(text) {
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let message = format!("nesting deeper than {MAX_JSON5_DEPTH} levels");
        return Err(ConfigError::Syntax { file: file.to_string(), line, column, message });
    }
    json5::from_str::<Value>(text).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        let (line, column) =
            if msg.contains("EOF") { end_position(text) } else { e.position().map(|p| (p.line + 1, p.column + 1)).unwrap_or((1, 1)) };
        ConfigError::Syntax { file: file.to_string(), line, column, message: msg }
    })
}

fn end_position(text: &str) -> (usize, usize) {
    let line = text.lines().count().max(1);
    let last = text.rsplit('\n').next().unwrap_or("");
    if text.ends_with('\n') { (line + 1, 1) } else { (line, last.chars().count() + 1) }
}

/// Reads an included file for the loader (the shell does the IO).
pub trait IncludeReader {
    /// The file's text, or an error message. `path` is absolute and already confined.
    fn read(&mut self, path: &Path) -> Result<String, String>;
    /// The canonical (symlink-resolved) path, when the shell can tell.
    fn canonical(&mut self, path: &Path) -> Option<PathBuf> {
        Some(path.to_path_buf())
    }
}

/// Lexically normalize a path (`.`/`..` removed).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Deep merge `over` into `base` (objects merge key by key; anything else replaces).
pub fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

struct Includes<'a> {
    root_dir: PathBuf,
    extra_roots: Vec<PathBuf>,
    reader: &'a mut dyn IncludeReader,
    files: Vec<String>,
    /// Bytes of every included file read so far (a fan-out of includes is bounded in total,
    /// not only in depth).
    bytes: usize,
}

/// Most `$include` loads one config may make (8 siblings × 8 levels would be 16 million).
pub const MAX_INCLUDE_LOADS: usize = 64;
/// Most bytes all of one config's includes may add up to.
pub const MAX_INCLUDE_TOTAL_BYTES: usize = 8 * 1024 * 1024;

impl Includes<'_> {
    fn confined(&self, p: &Path) -> bool {
        p.starts_with(&self.root_dir) || self.extra_roots.iter().any(|r| p.starts_with(r))
    }

    fn resolve(&mut self, v: Value, dir: &Path, depth: usize, stack: &mut Vec<PathBuf>) -> Result<Value, ConfigError> {
        match v {
            Value::Object(mut map) => {
                let include = map.remove("$include");
                let mut resolved = Map::new();
                for (k, v) in map {
                    resolved.insert(k, self.resolve(v, dir, depth, stack)?);
                }
                let Some(inc) = include else { return Ok(Value::Object(resolved)) };
                let list: Vec<String> = match inc {
                    Value::String(s) => vec![s],
                    Value::Array(a) if a.iter().all(Value::is_string) => {
                        a.into_iter().filter_map(|x| x.as_str().map(str::to_string)).collect()
                    }
                    other => {
                        return Err(ConfigError::Include {
                            file: stack.last().map(|p| p.display().to_string()).unwrap_or_default(),
                            message: format!(
                                "Invalid $include value: expected string or array of strings, got {}",
                                crate::wire::json_kind(&other)
                            ),
                        });
                    }
                };
                let mut merged = Value::Object(Map::new());
                for rel in list {
                    let included = self.load(&rel, dir, depth + 1, stack)?;
                    deep_merge(&mut merged, included);
                }
                if !resolved.is_empty() {
                    if !merged.is_object() {
                        return Err(ConfigError::Include {
                            file: stack.last().map(|p| p.display().to_string()).unwrap_or_default(),
                            message: "sibling keys next to $include need the included value to be an object".into(),
                        });
                    }
                    deep_merge(&mut merged, Value::Object(resolved));
                }
                Ok(merged)
            }
            Value::Array(a) => Ok(Value::Array(a.into_iter().map(|x| self.resolve(x, dir, depth, stack)).collect::<Result<_, _>>()?)),
            other => Ok(other),
        }
    }

    fn load(&mut self, rel: &str, dir: &Path, depth: usize, stack: &mut Vec<PathBuf>) -> Result<Value, ConfigError> {
        let from = stack.last().map(|p| p.display().to_string()).unwrap_or_default();
        let err = |message: String| ConfigError::Include { file: from.clone(), message };
        if depth > MAX_INCLUDE_DEPTH {
            return Err(err(format!("Maximum include depth ({MAX_INCLUDE_DEPTH}) exceeded at: {rel}")));
        }
        if rel.contains('\0') || rel.len() >= 4096 {
            return Err(err(format!("Invalid include path: {rel}")));
        }
        let path = normalize(&dir.join(rel));
        if !self.confined(&path) {
            return Err(err(format!("Include path escapes config directory: {}", path.display())));
        }
        let real = self.reader.canonical(&path).unwrap_or_else(|| path.clone());
        if !self.confined(&real) {
            return Err(err(format!("Include path resolves outside config directory (symlink): {}", path.display())));
        }
        if stack.contains(&real) {
            return Err(err(format!("Include cycle: {}", path.display())));
        }
        if self.files.len() >= MAX_INCLUDE_LOADS {
            return Err(err(format!("Too many $include loads (more than {MAX_INCLUDE_LOADS}) at: {}", path.display())));
        }
        let text = self.reader.read(&path).map_err(|e| err(format!("Cannot read include {}: {e}", path.display())))?;
        if text.len() > MAX_INCLUDE_BYTES {
            return Err(err(format!("Include file too large (> {MAX_INCLUDE_BYTES} bytes): {}", path.display())));
        }
        self.bytes += text.len();
        if self.bytes > MAX_INCLUDE_TOTAL_BYTES {
            return Err(err(format!("Included files add up to more than {MAX_INCLUDE_TOTAL_BYTES} bytes at: {}", path.display())));
        }
        let file = path.display().to_string();
        self.files.push(file.clone());
        let v = parse_json5(&file, &text)?;
        stack.push(real);
        let child_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let out = self.resolve(v, &child_dir, depth, stack);
        stack.pop();
        out
    }
}

/// Key paths holding a SecretInput: a string, a `${NAME}` env shorthand, or a SecretRef.
pub fn is_secret_input_path(path: &[&str]) -> bool {
    matches!(path, ["gateway", "auth", "token" | "password"] | ["gateway", "remote", "token" | "password"])
        || matches!(path, ["models", "providers", _, "apiKey"])
        || matches!(path, ["memory", "search", "remote", "apiKey"])
}

/// `${VAR}` substitution in one string (`$${VAR}` is a literal `${VAR}`); unresolved names
/// are kept as written and reported.
pub fn substitute(s: &str, env: &dyn Fn(&str) -> Option<String>, missing: &mut BTreeSet<String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && b.get(i + 1) == Some(&b'$') && b.get(i + 2) == Some(&b'{') {
            // Escaped: `$${NAME}` → `${NAME}`.
            if let Some(end) = s[i + 3..].find('}') {
                let name = &s[i + 3..i + 3 + end];
                if is_env_name(name) {
                    out.push_str(&s[i + 1..i + 4 + end]);
                    i += 4 + end;
                    continue;
                }
            }
        }
        if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
            if let Some(end) = s[i + 2..].find('}') {
                let name = &s[i + 2..i + 2 + end];
                if is_env_name(name) {
                    match env(name).filter(|v| !v.is_empty()) {
                        Some(v) => out.push_str(&v),
                        None => {
                            missing.insert(name.to_string());
                            out.push_str(&s[i..i + 3 + end]);
                        }
                    }
                    i += 3 + end;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    out
}

fn is_env_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some('A'..='Z' | '_')) && c.all(|x| x.is_ascii_uppercase() || x.is_ascii_digit() || x == '_')
}

fn substitute_tree(v: &mut Value, path: &mut Vec<String>, env: &dyn Fn(&str) -> Option<String>, missing: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            let p: Vec<&str> = path.iter().map(String::as_str).collect();
            // A SecretInput that is exactly a shorthand is an env SecretRef, resolved strictly later.
            if is_secret_input_path(&p) && SecretRef::from_shorthand(s).is_some() {
                return;
            }
            *s = substitute(s, env, missing);
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                path.push(i.to_string());
                substitute_tree(x, path, env, missing);
                path.pop();
            }
        }
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                path.push(k.clone());
                substitute_tree(x, path, env, missing);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `gateway.reload.mode`: the four modes the product keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReloadMode {
    Off,
    Hot,
    Restart,
    #[default]
    Hybrid,
}

impl ReloadMode {
    pub fn parse(s: &str) -> Option<ReloadMode> {
        match s {
            "off" => Some(ReloadMode::Off),
            "hot" => Some(ReloadMode::Hot),
            "restart" => Some(ReloadMode::Restart),
            "hybrid" => Some(ReloadMode::Hybrid),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadMode::Off => "off",
            ReloadMode::Hot => "hot",
            ReloadMode::Restart => "restart",
            ReloadMode::Hybrid => "hybrid",
        }
    }
}

pub use crate::auth::TrustedProxyConfig;

/// The keys of `gateway.*` the gateway acts on (all optional: flags, env and defaults fill in).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GatewayConfig {
    pub mode: Option<String>,
    pub port: Option<i64>,
    pub bind: Option<BindMode>,
    pub custom_bind_host: Option<String>,
    pub auth_mode: Option<AuthMode>,
    pub auth_token: Option<SecretInput>,
    pub auth_password: Option<SecretInput>,
    pub rate_limit: RateLimitPolicy,
    pub trusted_proxy: Option<TrustedProxyConfig>,
    pub trusted_proxies: Vec<IpNet>,
    pub allow_real_ip_fallback: bool,
    pub control_ui_enabled: bool,
    pub allowed_origins: Vec<String>,
    pub host_header_origin_fallback: bool,
    /// `gateway.nodes.pairing.autoApproveLocal` (default true).
    pub pairing_auto_approve_local: Option<bool>,
    pub reload_mode: ReloadMode,
    pub remote_token: Option<SecretInput>,
    pub remote_password: Option<SecretInput>,
    pub chat_completions_enabled: bool,
    pub responses_enabled: bool,
    pub strict_transport_security: Option<String>,
}

/// A loaded, validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The file as parsed, `$include`s resolved, before `${VAR}` substitution (what the
    /// operator wrote; diffed for reloads and patched by `config.patch`).
    pub source: Value,
    /// After substitution: what the gateway reads.
    pub resolved: Value,
    pub gateway: GatewayConfig,
    /// Included files (watched too).
    pub included: Vec<String>,
    /// Non-fatal problems (unresolved `${VAR}`s, …).
    pub warnings: Vec<String>,
    /// Keys the reference knows that clawgate does not read (kept as they are; see
    /// [`crate::config::keys::unused_keys`]).
    pub unused: Vec<String>,
}

/// Load a config from its text. `includes` reads `$include`d files; `extra_roots` are
/// `OPENCLAW_INCLUDE_ROOTS`.
pub fn load(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    includes: &mut dyn IncludeReader,
    extra_roots: &[PathBuf],
) -> Result<LoadedConfig, ConfigError> {
    let raw = parse_json5(file, text)?;
    let path = normalize(Path::new(file));
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut inc = Includes { root_dir: dir.clone(), extra_roots: extra_roots.to_vec(), reader: includes, files: Vec::new(), bytes: 0 };
    let mut stack = vec![path.clone()];
    let source = inc.resolve(raw, &dir, 0, &mut stack)?;
    if !source.is_object() {
        return Err(ConfigError::Invalid {
            file: file.to_string(),
            issues: vec![ConfigIssue {
                path: String::new(),
                message: format!("expected an object at the top level, got {}", crate::wire::json_kind(&source)),
            }],
        });
    }
    let mut resolved = source.clone();
    let mut missing = BTreeSet::new();
    substitute_tree(&mut resolved, &mut Vec::new(), env, &mut missing);
    let mut warnings: Vec<String> =
        missing.into_iter().map(|n| format!("environment variable {n} is missing or empty; ${{{n}}} left unresolved")).collect();
    // Keys the reference's schema does not know are errors there, so they are here (§1).
    let mut issues: Vec<ConfigIssue> = crate::config::keys::unknown_keys(&resolved)
        .into_iter()
        .map(|k| ConfigIssue { path: if k.parent.is_empty() { "<root>".into() } else { k.parent.clone() }, message: k.message() })
        .collect();
    let gateway = match validate(&resolved, &mut warnings) {
        Ok(g) if issues.is_empty() => g,
        Ok(_) => return Err(ConfigError::Invalid { file: file.to_string(), issues }),
        Err(more) => {
            issues.extend(more);
            return Err(ConfigError::Invalid { file: file.to_string(), issues });
        }
    };
    let unused = crate::config::keys::unused_keys(&resolved);
    Ok(LoadedConfig { source, resolved, gateway, included: inc.files, warnings, unused })
}

struct V<'a> {
    issues: Vec<ConfigIssue>,
    root: &'a Value,
}

impl<'a> V<'a> {
    fn get(&self, path: &str) -> Option<&'a Value> {
        let mut cur = self.root;
        for seg in path.split('.') {
            cur = cur.as_object()?.get(seg)?;
        }
        Some(cur)
    }
    fn bad(&mut self, path: &str, msg: String) {
        self.issues.push(ConfigIssue { path: path.to_string(), message: msg });
    }
    fn expected(&mut self, path: &str, what: &str, got: &Value) {
        self.bad(path, format!("expected {what}, got {}", describe(got)));
    }
    fn object(&mut self, path: &str) -> bool {
        match self.get(path) {
            None => false,
            Some(Value::Object(_)) => true,
            Some(other) => {
                self.expected(path, "an object", other);
                false
            }
        }
    }
    fn string(&mut self, path: &str) -> Option<String> {
        match self.get(path)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.expected(path, "a string", other);
                None
            }
        }
    }
    fn boolean(&mut self, path: &str) -> Option<bool> {
        match self.get(path)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.expected(path, "true or false", other);
                None
            }
        }
    }
    fn integer(&mut self, path: &str, min: i64, max: i64) -> Option<i64> {
        match self.get(path)? {
            Value::Number(n) if n.as_i64().is_some_and(|x| (min..=max).contains(&x)) => n.as_i64(),
            other => {
                self.expected(path, &format!("an integer from {min} to {max}"), other);
                None
            }
        }
    }
    fn strings(&mut self, path: &str) -> Vec<String> {
        match self.get(path) {
            None => Vec::new(),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(other) => {
                self.expected(path, "an array of strings", other);
                Vec::new()
            }
        }
    }
    fn one_of<T>(&mut self, path: &str, parse: impl Fn(&str) -> Option<T>, allowed: &str) -> Option<T> {
        let s = self.string(path)?;
        match parse(&s) {
            Some(t) => Some(t),
            None => {
                self.bad(path, format!("expected one of {allowed}, got \"{s}\""));
                None
            }
        }
    }
    fn secret(&mut self, path: &str) -> Option<SecretInput> {
        let v = self.get(path)?;
        match SecretInput::from_value(v) {
            Ok(s) => Some(s),
            Err(e) => {
                self.bad(path, e);
                None
            }
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", s.chars().take(40).collect::<String>()),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Validate the keys the gateway uses; unknown keys are left alone.
fn validate(root: &Value, warnings: &mut Vec<String>) -> Result<GatewayConfig, Vec<ConfigIssue>> {
    let _ = warnings;
    let mut v = V { issues: Vec::new(), root };
    let mut g = GatewayConfig { control_ui_enabled: true, ..Default::default() };
    if v.object("gateway") {
        g.mode = v.one_of("gateway.mode", |s| matches!(s, "local" | "remote").then(|| s.to_string()), "\"local\", \"remote\"");
        g.port = v.integer("gateway.port", 1, 65_535);
        g.bind = v.one_of("gateway.bind", BindMode::parse, "\"loopback\", \"lan\", \"tailnet\", \"auto\", \"custom\"");
        g.custom_bind_host = v.string("gateway.customBindHost");
        if v.object("gateway.auth") {
            g.auth_mode = v.one_of("gateway.auth.mode", AuthMode::parse, "\"none\", \"token\", \"password\", \"trusted-proxy\"");
            g.auth_token = v.secret("gateway.auth.token");
            g.auth_password = v.secret("gateway.auth.password");
            if v.object("gateway.auth.rateLimit") {
                let d = RateLimitPolicy::default();
                g.rate_limit = RateLimitPolicy {
                    max_attempts: v.integer("gateway.auth.rateLimit.maxAttempts", 0, 1_000_000).map_or(d.max_attempts, |x| x as u32),
                    window: v
                        .integer("gateway.auth.rateLimit.windowMs", 0, 2_147_000_000)
                        .map_or(d.window, |x| std::time::Duration::from_millis(x as u64)),
                    lockout: v
                        .integer("gateway.auth.rateLimit.lockoutMs", 0, 2_147_000_000)
                        .map_or(d.lockout, |x| std::time::Duration::from_millis(x as u64)),
                    exempt_loopback: v.boolean("gateway.auth.rateLimit.exemptLoopback").unwrap_or(d.exempt_loopback),
                };
            }
            if v.object("gateway.auth.trustedProxy") {
                g.trusted_proxy = Some(TrustedProxyConfig {
                    user_header: v.string("gateway.auth.trustedProxy.userHeader").unwrap_or_default(),
                    required_headers: v.strings("gateway.auth.trustedProxy.requiredHeaders"),
                    allow_users: v.strings("gateway.auth.trustedProxy.allowUsers"),
                    allow_loopback: v.boolean("gateway.auth.trustedProxy.allowLoopback").unwrap_or(false),
                });
            }
        }
        for (i, entry) in v.strings("gateway.trustedProxies").iter().enumerate() {
            match IpNet::parse(entry) {
                Some(n) => g.trusted_proxies.push(n),
                None => v.bad(&format!("gateway.trustedProxies.{i}"), format!("expected an IP address or CIDR, got \"{entry}\"")),
            }
        }
        g.allow_real_ip_fallback = v.boolean("gateway.allowRealIpFallback").unwrap_or(false);
        if v.object("gateway.controlUi") {
            g.control_ui_enabled = v.boolean("gateway.controlUi.enabled").unwrap_or(true);
            g.allowed_origins = v.strings("gateway.controlUi.allowedOrigins");
            g.host_header_origin_fallback = v.boolean("gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback").unwrap_or(false);
            // Read by the Control UI config (`control_ui::UiConfig`); checked here so a wrong
            // type is a config error (last-known-good kept), not a silently absent UI.
            let _ = v.string("gateway.controlUi.root");
            let _ = v.string("gateway.controlUi.basePath");
        }
        if v.object("gateway.nodes") && v.object("gateway.nodes.pairing") {
            g.pairing_auto_approve_local = v.boolean("gateway.nodes.pairing.autoApproveLocal");
        }
        if v.object("gateway.reload") {
            g.reload_mode =
                v.one_of("gateway.reload.mode", ReloadMode::parse, "\"off\", \"hot\", \"restart\", \"hybrid\"").unwrap_or_default();
        }
        if v.object("gateway.remote") {
            g.remote_token = v.secret("gateway.remote.token");
            g.remote_password = v.secret("gateway.remote.password");
        }
        if v.object("gateway.http") {
            g.chat_completions_enabled = v.boolean("gateway.http.endpoints.chatCompletions.enabled").unwrap_or(false);
            g.responses_enabled = v.boolean("gateway.http.endpoints.responses.enabled").unwrap_or(false);
            if let Some(val) = v.get("gateway.http.securityHeaders.strictTransportSecurity") {
                match val {
                    Value::String(s) if !s.trim().is_empty() => g.strict_transport_security = Some(s.clone()),
                    Value::String(_) | Value::Bool(false) => {}
                    other => v.expected("gateway.http.securityHeaders.strictTransportSecurity", "a string or false", other),
                }
            }
        }
    }
    if v.issues.is_empty() { Ok(g) } else { Err(v.issues) }
}

/// A stable hash of a JSON value (`sha256:v1:<base64url>`).
pub fn hash_value(v: &Value) -> String {
    config_hash(v)
}

/// Opaque content hash of a (redacted) config: `sha256:v1:<base64url>`.
pub fn config_hash(config: &Value) -> String {
    file_hash(config.to_string().as_bytes())
}

/// The hash of the authored file bytes (`config.get.hash`, the `baseHash` of writes).
pub fn file_hash(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    format!("sha256:v1:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)))
}

/// RFC 7396 merge patch (`null` deletes a key).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("made an object above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Which method writes the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// `config.patch`: merge-patch `raw` into the file.
    Patch,
    /// `config.apply`: `raw` replaces the file.
    Apply,
    /// `config.set` (operator §2.4): `raw` replaces the file; the reference's error wording and
    /// the written config in the answer (the Control UI's raw editor and forms save with it).
    Set,
}

/// A config write (`config.patch` / `config.apply` / `config.set`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWrite {
    pub kind: WriteKind,
    pub raw: String,
    pub base_hash: Option<String>,
}

impl ConfigWrite {
    /// The method that asked for the write.
    pub fn method(&self) -> &'static str {
        match self.kind {
            WriteKind::Patch => "config.patch",
            WriteKind::Apply => "config.apply",
            WriteKind::Set => "config.set",
        }
    }

    /// The answer once `text` is on disk at `path`: `{ok, path, hash}` (the hash the next
    /// write's `baseHash` names); `config.set` adds the written config, secrets redacted.
    pub fn written(&self, path: &str, text: &[u8]) -> crate::wire::Reply {
        let mut v = serde_json::json!({"ok": true, "path": path, "hash": file_hash(text)});
        if self.kind == WriteKind::Set {
            let written = serde_json::from_slice::<Value>(text).unwrap_or_default();
            v["config"] = crate::config::settings::redact(&written);
        }
        crate::wire::Reply::Ok(Some(v))
    }

    /// The `config.changed` event payload after a write (operator §2.4): `{path, hash, ts}`.
    pub fn changed_event(path: &str, text: &[u8], unix_ms: u64) -> Value {
        serde_json::json!({"path": path, "hash": file_hash(text), "ts": unix_ms})
    }

    /// The answer when the file could not be read or written (`action`): `UNAVAILABLE`, nothing
    /// changed.
    pub fn io_failed(&self, action: &str, path: &str, error: &dyn std::fmt::Display) -> crate::wire::Reply {
        let e = crate::wire::ErrorShape::unavailable(format!("{}: cannot {action} {path}: {error}", self.method()));
        crate::wire::Reply::err(e)
    }
}

/// Why a write was refused (nothing is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRefused {
    /// The file changed since the caller read it.
    StaleHash { current: String },
    /// The file exists and the caller did not say which version it edits.
    MissingHash { current: String },
    /// `raw` is not JSON5.
    Syntax { line: usize, column: usize, message: String },
    /// The result is not a valid config (each issue at its dotted path).
    Invalid(Vec<ConfigIssue>),
}

impl WriteRefused {
    fn invalid(path: &str, message: impl Into<String>) -> Self {
        WriteRefused::Invalid(vec![ConfigIssue { path: path.to_string(), message: message.into() }])
    }
}

/// Put the current secrets back where a write carries the redaction sentinel `config.get`
/// showed in their place (operator §2.4): a form or raw-editor save sends the sentinel back.
fn restore_redacted(next: &mut Value, current: Option<&Value>, path: &mut Vec<String>) -> Result<(), WriteRefused> {
    match next {
        Value::String(s) if s == crate::config::settings::REDACTED => {
            match current.filter(|c| c.as_str().is_some_and(|c| c != crate::config::settings::REDACTED)) {
                Some(c) => *next = c.clone(),
                None => {
                    return Err(WriteRefused::invalid(
                        &path.join("."),
                        "redacted placeholder has no stored secret to restore; enter the value",
                    ));
                }
            }
        }
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                path.push(k.clone());
                restore_redacted(v, current.and_then(|c| c.get(k)), path)?;
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                path.push(i.to_string());
                restore_redacted(v, current.and_then(|c| c.get(i)), path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Compute the new file text for a write against the current file (`None`: no file yet).
/// Pure: the shell reads the file, calls this, and writes the result atomically.
pub fn plan_write(file: &str, current: Option<&[u8]>, w: &ConfigWrite) -> Result<String, WriteRefused> {
    if let Some(bytes) = current {
        let current_hash = file_hash(bytes);
        match &w.base_hash {
            None => return Err(WriteRefused::MissingHash { current: current_hash }),
            Some(h) if *h != current_hash => return Err(WriteRefused::StaleHash { current: current_hash }),
            Some(_) => {}
        }
    }
    let incoming = parse_json5("raw", &w.raw).map_err(|e| match e {
        ConfigError::Syntax { line, column, message, .. } => WriteRefused::Syntax { line, column, message },
        other => WriteRefused::invalid("", other.to_string()),
    })?;
    let current_value = match current {
        Some(b) => {
            Some(parse_json5(file, &String::from_utf8_lossy(b)).map_err(|e| WriteRefused::invalid("", format!("current file: {e}")))?)
        }
        None => None,
    };
    let mut next = if w.kind == WriteKind::Patch {
        let mut base = current_value.clone().unwrap_or_else(|| Value::Object(Map::new()));
        merge_patch(&mut base, &incoming);
        base
    } else {
        incoming
    };
    if !next.is_object() {
        return Err(WriteRefused::invalid("", "the config must be an object"));
    }
    restore_redacted(&mut next, current_value.as_ref(), &mut Vec::new())?;
    let text = serde_json::to_string_pretty(&next).map_err(|e| WriteRefused::invalid("", e.to_string()))? + "\n";
    // The result must load (our keys valid); includes and env are checked again on reload.
    struct NoRead;
    impl IncludeReader for NoRead {
        fn read(&mut self, _: &Path) -> Result<String, String> {
            Err("skipped".into())
        }
    }
    let mut skip = NoRead;
    match load(file, &text, &|_| None, &mut skip, &[]) {
        Ok(_) | Err(ConfigError::Include { .. }) => Ok(text),
        Err(ConfigError::Invalid { issues, .. }) => Err(WriteRefused::Invalid(issues)),
        Err(e) => Err(WriteRefused::invalid("", e.one_line())),
    }
}

impl WriteRefused {
    /// The answer to a refused write.
    pub fn reply(self, kind: WriteKind) -> crate::wire::Reply {
        use crate::wire::{ErrorShape, details_code};
        let method = ConfigWrite { kind, raw: String::new(), base_hash: None }.method();
        let set = kind == WriteKind::Set;
        let e = match self {
            WriteRefused::StaleHash { current } => ErrorShape::invalid_request(if set {
                "config changed since last load; re-run config.get and retry".to_string()
            } else {
                format!("{method}: the config changed since it was read (baseHash mismatch); read it again with config.get and retry")
            })
            .with_details(serde_json::json!({"code": details_code::CONFIG_CONFLICT, "currentHash": current})),
            WriteRefused::MissingHash { current } => ErrorShape::invalid_request(if set {
                "config base hash required; re-run config.get and retry".to_string()
            } else {
                format!("{method}: baseHash is required (take it from config.get)")
            })
            .with_details(serde_json::json!({"code": details_code::CONFIG_BASE_HASH_REQUIRED, "currentHash": current})),
            WriteRefused::Syntax { line, column, message } if set => {
                ErrorShape::invalid_request(format!("SyntaxError: JSON5: {message} at {line}:{column}"))
            }
            WriteRefused::Syntax { line, column, message } => ErrorShape::invalid_request(format!(
                "{method}: invalid config: JSON5 syntax error in raw at line {line} column {column}: {message}"
            )),
            WriteRefused::Invalid(issues) => {
                let first = issues.first().map(ToString::to_string).unwrap_or_default();
                let text = if set { format!("invalid config: {first}") } else { format!("{method}: invalid config: {first}") };
                let listed: Vec<Value> = issues.iter().map(|i| serde_json::json!({"path": i.path, "message": i.message})).collect();
                ErrorShape::invalid_request(text).with_details(serde_json::json!({"issues": listed}))
            }
        };
        crate::wire::Reply::err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Files(HashMap<PathBuf, String>);
    impl IncludeReader for Files {
        fn read(&mut self, path: &Path) -> Result<String, String> {
            self.0.get(path).cloned().ok_or_else(|| "not found".into())
        }
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "TOK" => Some("from-env".into()),
            "BASE" => Some("http://x".into()),
            _ => None,
        }
    }

    fn load_text(text: &str) -> Result<LoadedConfig, ConfigError> {
        load("/cfg/openclaw.json", text, &env, &mut Files(HashMap::new()), &[])
    }

    #[test]
    fn json5_syntax_errors_point_at_the_right_place() {
        match load_text("{\n  gateway: {port: 1,}\n  bad\n}") {
            Err(ConfigError::Syntax { line, file, .. }) => {
                assert_eq!(line, 3);
                assert_eq!(file, "/cfg/openclaw.json");
            }
            other => panic!("{other:?}"),
        }
        match load_text("{\n  gateway: {") {
            Err(ConfigError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 13)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reference_keys_are_kept_unknown_keys_refused_and_known_keys_validated() {
        let c =
            load_text("{gateway: {port: 28822, bind: 'lan', tailscale: {mode: 'off'}}, agents: {entries: {main: {}}}, // c\n}").unwrap();
        assert_eq!(c.gateway.port, Some(28822));
        assert_eq!(c.gateway.bind, Some(BindMode::Lan));
        assert_eq!(c.source["gateway"]["tailscale"]["mode"], "off");
        assert_eq!(c.unused, ["gateway.tailscale"]);
        let e = load_text("{gateway: {prot: 1, futureKey: {a: 1}}}").unwrap_err().to_string();
        assert_eq!(
            e,
            "Invalid config at /cfg/openclaw.json:\n  gateway: Unrecognized key: \"prot\" (did you mean \"port\"?)\n  gateway: Unrecognized key: \"futureKey\""
        );
        let e = load_text("{gateway: {port: 'abc', bind: 'bogus'}}").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("Invalid config at /cfg/openclaw.json:"), "{msg}");
        assert!(msg.contains("gateway.port: expected an integer from 1 to 65535, got \"abc\""), "{msg}");
        assert!(msg.contains("gateway.bind: expected one of"), "{msg}");
    }

    #[test]
    fn env_substitution_and_secret_shorthand() {
        let c = load_text(r#"{gateway: {auth: {token: "${TOK}"}, remote: {url: "${BASE}/v1"}}, logging: {file: "$${TOK} ${MISSING}"}}"#)
            .unwrap();
        assert_eq!(c.resolved["gateway"]["remote"]["url"], "http://x/v1");
        assert_eq!(c.resolved["logging"]["file"], "${TOK} ${MISSING}");
        // The token stays a reference (resolved strictly later), not substituted text.
        assert_eq!(c.gateway.auth_token, Some(SecretInput::Ref(SecretRef::env("TOK"))));
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn includes_merge_and_stay_confined() {
        let mut files = HashMap::new();
        files.insert(PathBuf::from("/cfg/base.json5"), "{gateway: {port: 1000, bind: 'loopback'}}".to_string());
        files.insert(PathBuf::from("/cfg/sub/auth.json5"), "{gateway: {auth: {mode: 'token'}}}".to_string());
        let text = r#"{"$include": ["./base.json5", "sub/auth.json5"], gateway: {port: 2000}}"#;
        let c = load("/cfg/openclaw.json", text, &env, &mut Files(files.clone()), &[]).unwrap();
        assert_eq!(c.gateway.port, Some(2000), "siblings override the include");
        assert_eq!(c.gateway.auth_mode, Some(AuthMode::Token));
        assert_eq!(c.included.len(), 2);
        let e = load("/cfg/openclaw.json", r#"{"$include": "../etc/passwd"}"#, &env, &mut Files(files), &[]).unwrap_err();
        assert!(e.to_string().contains("escapes config directory"), "{e}");
    }
}
