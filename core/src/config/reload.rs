//! Hot reload, decided here and executed by the shells (config-auth-reload §6; decision table L):
//! when to evaluate a changed file (settle + debounce on virtual time), which key paths changed,
//! how each path is classified (rule table, longest prefix wins, unmatched ⇒ restart), and the
//! plan for each mode.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::auth::AuthMode;
use crate::config::file::{LoadedConfig, ReloadMode};
use crate::config::secrets::SecretInput;

/// The file must stay unchanged this long before it is read (writers finish).
pub const SETTLE: Duration = Duration::from_millis(200);
/// And then no newer change for this long (coalesces bursts of writes).
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// A missing file is retried this many times, this far apart, before the reload is skipped.
pub const MISSING_RETRIES: u32 = 2;
pub const MISSING_RETRY_DELAY: Duration = Duration::from_millis(150);

/// What the shell observed about the watched files (any value that changes when they do:
/// size, mtime, inode of each file; `None` when the main file is missing).
pub type Fingerprint = Option<Vec<u64>>;

/// Decides when a watched config should be evaluated.
#[derive(Debug, Clone)]
pub struct Debouncer {
    last: Fingerprint,
    changed_at: Option<Instant>,
    missing_retries: u32,
    retry_at: Option<Instant>,
}

/// What the shell should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Nothing,
    /// Read, validate and plan.
    Evaluate,
    /// The file is gone for good: log `config reload skipped (config file not found)`.
    SkipMissing,
}

impl Debouncer {
    /// Start from the fingerprint of the config that is running.
    pub fn new(initial: Fingerprint) -> Self {
        Debouncer { last: initial, changed_at: None, missing_retries: 0, retry_at: None }
    }

    /// A fresh observation (the shell polls).
    pub fn observe(&mut self, now: Instant, fp: Fingerprint) {
        if fp != self.last {
            self.last = fp;
            self.changed_at = Some(now);
            self.missing_retries = 0;
            self.retry_at = None;
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let settled = self.changed_at.map(|t| t + SETTLE + DEBOUNCE);
        match (settled, self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Is an evaluation due?
    pub fn handle_timeout(&mut self, now: Instant) -> Due {
        let settled = self.changed_at.is_some_and(|t| now >= t + SETTLE + DEBOUNCE);
        let retry = self.retry_at.is_some_and(|t| now >= t);
        if !settled && !retry {
            return Due::Nothing;
        }
        self.changed_at = None;
        self.retry_at = None;
        if self.last.is_none() {
            if self.missing_retries < MISSING_RETRIES {
                self.missing_retries += 1;
                self.retry_at = Some(now + MISSING_RETRY_DELAY);
                return Due::Nothing;
            }
            self.missing_retries = 0;
            return Due::SkipMissing;
        }
        Due::Evaluate
    }

    /// Retries done for the current missing file (for the `retry (n/2)` log line).
    pub fn missing_retries(&self) -> u32 {
        self.missing_retries
    }
}

/// Changed key paths between two configs (§6.3): recurse through objects, report arrays and
/// scalars at their path; `<root>` for a changed root.
pub fn diff_paths(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(Some(old), Some(new), "", &mut out);
    out
}

/// Does some rule prefix lie strictly below `path`?
fn rule_below(path: &str) -> bool {
    RULES.iter().any(|(p, _)| p.len() > path.len() && p.starts_with(path) && p.as_bytes()[path.len()] == b'.')
}

fn diff_into(old: Option<&Value>, new: Option<&Value>, path: &str, out: &mut Vec<String>) {
    // A side that is absent counts as an empty object when a rule lies below this path, so adding
    // or removing a whole `gateway.controlUi` reports `gateway.controlUi.allowedOrigins` (hot),
    // not `gateway.controlUi` (which only the catch-all `gateway` rule would match).
    fn as_object<'a>(v: Option<&'a Value>, path: &str) -> Option<&'a serde_json::Map<String, Value>> {
        static EMPTY: std::sync::LazyLock<serde_json::Map<String, Value>> = std::sync::LazyLock::new(serde_json::Map::new);
        match v {
            Some(Value::Object(m)) => Some(m),
            None if !path.is_empty() && rule_below(path) => Some(&*EMPTY),
            _ => None,
        }
    }
    match (as_object(old, path), as_object(new, path)) {
        (Some(a), Some(b)) if old.is_some() && new.is_some() || rule_below(path) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).collect();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (a.get(k), b.get(k)) {
                    (x @ Some(_), y @ Some(_)) => diff_into(x, y, &p, out),
                    (x, y) if rule_below(&p) => diff_into(x, y, &p, out),
                    _ => out.push(p),
                }
            }
        }
        _ if old == new => {}
        _ => out.push(if path.is_empty() { "<root>".into() } else { path.to_string() }),
    }
}

/// How a change is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing to do beyond swapping the snapshot.
    None,
    /// Applied in the running process.
    Hot,
    /// Needs a restart.
    Restart,
}

/// The rule table (our subset of §6.4: the keys clawgate serves, plus the reference's none-kind
/// roots so their edits never restart us).
const RULES: &[(&str, Kind)] = &[
    ("gateway.remote", Kind::None),
    ("gateway.reload", Kind::None),
    ("gateway.mode", Kind::None),
    ("gateway.auth.token", Kind::Restart),
    ("gateway.auth.password", Kind::Restart),
    ("gateway.auth.rateLimit", Kind::Hot),
    ("gateway.auth.trustedProxy", Kind::Hot),
    ("gateway.auth.allowTailscale", Kind::Hot),
    ("gateway.auth.identityScopes", Kind::Hot),
    ("gateway.trustedProxies", Kind::Hot),
    ("gateway.allowRealIpFallback", Kind::Hot),
    ("gateway.controlUi.enabled", Kind::Hot),
    ("gateway.controlUi.allowedOrigins", Kind::Hot),
    ("gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback", Kind::Hot),
    // The reference restarts for these (spec config-auth-reload §6.4: `gateway.controlUi.basePath`,
    // `.root` restart); the in-process restart applies them.
    ("gateway.controlUi.basePath", Kind::Restart),
    ("gateway.controlUi.root", Kind::Restart),
    ("gateway.http.endpoints", Kind::Hot),
    ("gateway.http.securityHeaders.strictTransportSecurity", Kind::Hot),
    ("gateway.tools", Kind::Hot),
    ("gateway.roles", Kind::Hot),
    // Observed on the reference: "config hot reload applied (gateway.nodes.pairing)".
    ("gateway.nodes.pairing", Kind::Hot),
    ("gateway", Kind::Restart),
    ("meta", Kind::None),
    ("identity", Kind::None),
    ("wizard", Kind::None),
    ("logging", Kind::None),
    ("bindings", Kind::None),
    ("audio", Kind::None),
    ("agent", Kind::None),
    ("routing", Kind::None),
    ("messages", Kind::None),
    ("session", Kind::None),
    ("talk", Kind::None),
    ("skills", Kind::None),
    ("secrets", Kind::None),
    ("tui", Kind::None),
    ("ui", Kind::None),
    ("commands", Kind::None),
    ("tts", Kind::None),
    ("agents", Kind::Hot),
    ("models", Kind::Hot),
    ("memory", Kind::Hot),
    ("tools", Kind::Hot),
    ("hooks", Kind::Hot),
    ("plugins", Kind::Hot),
];

fn prefix_matches(prefix: &str, path: &str) -> bool {
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

/// Classify one changed path: the most specific (most segments) matching rule; none ⇒ restart.
pub fn classify(path: &str) -> (Kind, Option<&'static str>) {
    RULES
        .iter()
        .filter(|(p, _)| prefix_matches(p, path))
        .max_by_key(|(p, _)| p.split('.').count())
        .map(|(p, k)| (*k, Some(*p)))
        .unwrap_or((Kind::Restart, None))
}

/// The effective auth mode of a config for the credential-rotation exception: `None` (unknown)
/// when the mode is unset and the secret is a reference.
fn effective_mode(c: &LoadedConfig) -> Option<AuthMode> {
    if let Some(m) = c.gateway.auth_mode {
        return Some(m);
    }
    let is_ref = |s: &Option<SecretInput>| s.as_ref().is_some_and(SecretInput::is_ref);
    if is_ref(&c.gateway.auth_token) || is_ref(&c.gateway.auth_password) {
        return None;
    }
    Some(if c.gateway.auth_password.is_some() { AuthMode::Password } else { AuthMode::Token })
}

/// One classified change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: Kind,
}

/// Classify every changed path, with the credential-rotation exception of §6.3.
pub fn classify_changes(old: &LoadedConfig, new: &LoadedConfig) -> Vec<Change> {
    let same_secret_mode = {
        let (a, b) = (effective_mode(old), effective_mode(new));
        a.is_some() && a == b && matches!(a, Some(AuthMode::Token | AuthMode::Password))
    };
    diff_paths(&old.source, &new.source)
        .into_iter()
        .map(|path| {
            let (mut kind, prefix) = classify(&path);
            if matches!(prefix, Some("gateway.auth.token" | "gateway.auth.password")) && same_secret_mode {
                kind = Kind::Hot;
            }
            Change { path, kind }
        })
        .collect()
}

/// What to do with a valid new config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing changed: keep everything.
    Unchanged,
    /// `off`: log and keep the running config (the diff baseline stays where it is).
    Disabled { paths: Vec<String> },
    /// Only none-kind paths: swap the snapshot, nothing else.
    SwapOnly { paths: Vec<String> },
    /// Apply these hot paths in process; `deferred` still need a restart (mode `hot`).
    Hot { hot: Vec<String>, deferred: Vec<String> },
    /// Restart because of these paths.
    Restart { reasons: Vec<String> },
}

/// Decision table L, with the product's four modes. The mode comes from the candidate itself.
pub fn plan(old: &LoadedConfig, new: &LoadedConfig) -> Plan {
    let changes = classify_changes(old, new);
    if changes.is_empty() {
        return Plan::Unchanged;
    }
    let of = |k: Kind| changes.iter().filter(|c| c.kind == k).map(|c| c.path.clone()).collect::<Vec<_>>();
    let (hot, restart, none) = (of(Kind::Hot), of(Kind::Restart), of(Kind::None));
    match new.gateway.reload_mode {
        ReloadMode::Off => Plan::Disabled { paths: changes.into_iter().map(|c| c.path).collect() },
        ReloadMode::Hybrid if !restart.is_empty() => Plan::Restart { reasons: restart },
        ReloadMode::Restart if !restart.is_empty() || !hot.is_empty() => Plan::Restart { reasons: [restart, hot].concat() },
        ReloadMode::Hot | ReloadMode::Hybrid if !hot.is_empty() || !restart.is_empty() => Plan::Hot { hot, deferred: restart },
        _ => Plan::SwapOnly { paths: none },
    }
}

/// The answer of `secrets.reload` (spec config §7.3): `{ok, warningCount}` once the new secrets
/// are swapped in, `UNAVAILABLE` with why when they are not (the old ones stay).
pub fn secrets_reload_reply(outcome: Result<usize, String>) -> crate::wire::Reply {
    match outcome {
        Ok(warnings) => crate::wire::Reply::Ok(Some(serde_json::json!({"ok": true, "warningCount": warnings}))),
        Err(e) => crate::wire::Reply::err(crate::wire::ErrorShape::unavailable(format!("secrets.reload failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_reports_leaves_and_whole_new_objects() {
        let a = json!({"gateway": {"port": 1, "auth": {"token": "a"}}, "arr": [1, 2]});
        let b = json!({"gateway": {"port": 1, "auth": {"token": "b"}, "remote": {"url": "x"}}, "arr": [1, 3]});
        assert_eq!(diff_paths(&a, &b), vec!["gateway.auth.token", "gateway.remote", "arr"]);
        assert!(diff_paths(&a, &a).is_empty());
    }

    #[test]
    fn longest_prefix_wins_and_unmatched_restarts() {
        assert_eq!(classify("gateway.port").0, Kind::Restart);
        assert_eq!(classify("gateway.controlUi.allowedOrigins").0, Kind::Hot);
        assert_eq!(classify("gateway.controlUi.root").0, Kind::Restart);
        assert_eq!(classify("gateway.controlUi.basePath").0, Kind::Restart);
        assert_eq!(classify("gateway.remote.url").0, Kind::None);
        assert_eq!(classify("gateway.nodes.pairing.autoApproveLocal").0, Kind::Hot);
        assert_eq!(classify("gateway.reload.mode").0, Kind::None);
        assert_eq!(classify("logging.level").0, Kind::None);
        assert_eq!(classify("env.vars.X").0, Kind::Restart);
        assert_eq!(classify("gateway.auth.rateLimit.maxAttempts").0, Kind::Hot);
        assert_eq!(classify("gatewayx").0, Kind::Restart);
    }
}
