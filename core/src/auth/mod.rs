//! Shared-secret authentication, the failed-auth rate limiter and the wire shape of auth
//! failures (spec protocol §5, config-auth-reload §4).

pub mod device;
pub mod ingress;
pub mod origin;
pub mod scopes;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::wire::{ErrorShape, details_code, error_code, msg};

/// `gateway.auth.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Token,
    Password,
    TrustedProxy,
}

impl AuthMode {
    pub fn parse(s: &str) -> Option<AuthMode> {
        match s {
            "none" => Some(AuthMode::None),
            "token" => Some(AuthMode::Token),
            "password" => Some(AuthMode::Password),
            "trusted-proxy" => Some(AuthMode::TrustedProxy),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Token => "token",
            AuthMode::Password => "password",
            AuthMode::TrustedProxy => "trusted-proxy",
        }
    }
}

/// A secret value. Its `Debug`/`Display` never show the content, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call sites are the places that compare or persist it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Constant-time comparison: both inputs are zero-padded to the longer length and compared
/// without early exit; the lengths must also match (config-auth-reload §4.4).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff: u8 = 0;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    // Fold the length check in without branching on content.
    let len_diff = (a.len() ^ b.len()) as u64;
    diff == 0 && len_diff == 0
}

/// Resolved authentication settings of the running gateway.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub mode: AuthMode,
    pub token: Option<Secret>,
    pub password: Option<Secret>,
    pub rate_limit: RateLimitPolicy,
}

/// What the client put in `connect.params.auth` (only the shared-secret fields matter here).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub token: Option<String>,
    pub password: Option<String>,
}

impl ClientCredentials {
    pub fn any(&self) -> bool {
        self.token.is_some() || self.password.is_some()
    }
}

/// Internal failure reason (`details.authReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthReason {
    TokenMissing,
    TokenMismatch,
    TokenMissingConfig,
    PasswordMissing,
    PasswordMismatch,
    PasswordMissingConfig,
    RateLimited,
    DeviceTokenMismatch,
    ScopeMismatch,
    /// The trusted-proxy identity check failed (the precise reason is in the failure's detail).
    TrustedProxy,
    Unauthorized,
}

impl AuthReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthReason::TokenMissing => "token_missing",
            AuthReason::TokenMismatch => "token_mismatch",
            AuthReason::TokenMissingConfig => "token_missing_config",
            AuthReason::PasswordMissing => "password_missing",
            AuthReason::PasswordMismatch => "password_mismatch",
            AuthReason::PasswordMissingConfig => "password_missing_config",
            AuthReason::RateLimited => "rate_limited",
            AuthReason::DeviceTokenMismatch => "device_token_mismatch",
            AuthReason::ScopeMismatch => "scope_mismatch",
            AuthReason::TrustedProxy => "trusted_proxy",
            AuthReason::Unauthorized => "unauthorized",
        }
    }
    pub fn details_code(self) -> &'static str {
        match self {
            AuthReason::TokenMissing => details_code::AUTH_TOKEN_MISSING,
            AuthReason::TokenMismatch => details_code::AUTH_TOKEN_MISMATCH,
            AuthReason::TokenMissingConfig => details_code::AUTH_TOKEN_NOT_CONFIGURED,
            AuthReason::PasswordMissing => details_code::AUTH_PASSWORD_MISSING,
            AuthReason::PasswordMismatch => details_code::AUTH_PASSWORD_MISMATCH,
            AuthReason::PasswordMissingConfig => details_code::AUTH_PASSWORD_NOT_CONFIGURED,
            AuthReason::RateLimited => details_code::AUTH_RATE_LIMITED,
            AuthReason::DeviceTokenMismatch => details_code::AUTH_DEVICE_TOKEN_MISMATCH,
            AuthReason::ScopeMismatch => details_code::AUTH_SCOPE_MISMATCH,
            AuthReason::TrustedProxy | AuthReason::Unauthorized => details_code::AUTH_UNAUTHORIZED,
        }
    }
    fn next_step(self) -> &'static str {
        match self {
            AuthReason::TokenMismatch | AuthReason::PasswordMismatch | AuthReason::DeviceTokenMismatch => "update_auth_credentials",
            AuthReason::TokenMissing | AuthReason::PasswordMissing | AuthReason::TokenMissingConfig | AuthReason::PasswordMissingConfig => {
                "update_auth_configuration"
            }
            AuthReason::RateLimited => "wait_then_retry",
            AuthReason::ScopeMismatch | AuthReason::TrustedProxy | AuthReason::Unauthorized => "review_auth_configuration",
        }
    }
}

/// How a socket authenticated (`hello-ok.auth.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    None,
    Token,
    Password,
    DeviceToken,
    TrustedProxy,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Token => "token",
            AuthMethod::Password => "password",
            AuthMethod::DeviceToken => "device-token",
            AuthMethod::TrustedProxy => "trusted-proxy",
        }
    }
}

/// Which kind of client is failing: the hint in the message depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKind {
    /// `client.mode == "cli"`.
    pub cli: bool,
    /// Control UI, browser copilot or TUI.
    pub operator_ui: bool,
    /// `mode == "webchat"` or `id == "webchat-ui"`.
    pub webchat: bool,
    /// Direct loopback connection without proxy headers.
    pub local: bool,
}

/// The user-facing failure message (the reference varies the hint by client kind).
pub fn failure_message(reason: AuthReason, kind: ClientKind) -> String {
    let ui = kind.operator_ui || kind.webchat;
    let token_hint = if kind.cli {
        if kind.local {
            "use this gateway's gateway.auth.token or pair the device"
        } else {
            "set gateway.remote.token to match gateway.auth.token"
        }
    } else if ui {
        "open the dashboard URL and paste the token in Control UI settings"
    } else {
        "provide gateway auth token"
    };
    let password_hint = if kind.cli {
        if kind.local { "use this gateway's gateway.auth.password" } else { "set gateway.remote.password to match gateway.auth.password" }
    } else if ui {
        "enter the password in Control UI settings"
    } else {
        "provide gateway auth password"
    };
    match reason {
        AuthReason::TokenMissing => {
            let hint = if ui { "paste in Control UI settings or openclaw doctor --generate-gateway-token; restart" } else { token_hint };
            format!("unauthorized: gateway token missing ({hint})")
        }
        AuthReason::TokenMismatch => format!("unauthorized: gateway token mismatch ({token_hint})"),
        AuthReason::TokenMissingConfig => "unauthorized: gateway token not configured on gateway (set gateway.auth.token)".into(),
        AuthReason::PasswordMissing => format!("unauthorized: gateway password missing ({password_hint})"),
        AuthReason::PasswordMismatch => format!("unauthorized: gateway password mismatch ({password_hint})"),
        AuthReason::PasswordMissingConfig => "unauthorized: gateway password not configured on gateway (set gateway.auth.password)".into(),
        AuthReason::RateLimited => msg::RATE_LIMITED.into(),
        AuthReason::DeviceTokenMismatch => "unauthorized: device token mismatch (rotate/reissue device token)".into(),
        AuthReason::ScopeMismatch => "unauthorized: device token scope mismatch (re-pair or approve scope upgrade)".into(),
        AuthReason::TrustedProxy | AuthReason::Unauthorized => "unauthorized".into(),
    }
}

/// A failed shared-secret attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthFailure {
    pub reason: AuthReason,
    pub retry_after_ms: Option<u64>,
    /// Loopback clients are slowed down instead of locked out (spec §5.3).
    pub delay: Option<Duration>,
    /// A token mismatch from a client with a device identity that sent no device token: it may
    /// retry with one (`recommendedNextStep: retry_with_device_token`).
    pub can_retry_with_device_token: bool,
    /// The precise `authReason` when it is not the reason's own (trusted-proxy failures).
    pub detail: Option<String>,
}

impl AuthFailure {
    pub fn new(reason: AuthReason) -> Self {
        AuthFailure { reason, retry_after_ms: None, delay: None, can_retry_with_device_token: false, detail: None }
    }

    fn retry_after(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// A wrong secret (as opposed to missing config or a lockout): counts as a failure.
    pub fn is_mismatch(&self) -> bool {
        matches!(self.reason, AuthReason::TokenMismatch | AuthReason::PasswordMismatch)
    }

    /// The `res` error for this failure (spec §5.2).
    pub fn to_error(&self, kind: ClientKind) -> ErrorShape {
        let auth_reason = self.detail.clone().unwrap_or_else(|| self.reason.as_str().to_string());
        let code = if auth_reason.starts_with("trusted_proxy_missing_header_") {
            details_code::AUTH_IDENTITY_HEADER_REQUIRED
        } else {
            self.reason.details_code()
        };
        let mut e = ErrorShape::new(error_code::INVALID_REQUEST, failure_message(self.reason, kind)).with_details(json!({
            "code": code,
            "authReason": auth_reason,
            "canRetryWithDeviceToken": self.can_retry_with_device_token,
            "recommendedNextStep": if self.can_retry_with_device_token { "retry_with_device_token" } else { self.reason.next_step() },
        }));
        if self.reason == AuthReason::RateLimited {
            e.retryable = Some(true);
            e.retry_after_ms = self.retry_after_ms;
        }
        e
    }
}

/// Result of the shared-secret step of `connect`.
#[derive(Debug, Clone, PartialEq)]
pub enum SharedAuth {
    Ok(AuthMethod),
    /// The client sent neither `auth.token` nor `auth.password`; nothing is recorded.
    NoCredentials(AuthReason),
    Failed(AuthFailure),
}

/// The rate-limiter key of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimiterSubject {
    Ip(IpAddr),
    /// A browser-origin attempt from loopback is keyed by its (lower-cased) origin.
    BrowserOrigin(String),
}

impl LimiterSubject {
    /// The subject of a client address. Every loopback address is one subject: 127/8 holds
    /// millions of source addresses, and the loopback login delay must not be dodged by
    /// changing the source (issue 11).
    pub fn ip(ip: IpAddr) -> LimiterSubject {
        let ip = crate::auth::ingress::normalize_ip(ip);
        if is_loopback_ip(&ip) { LimiterSubject::Ip(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)) } else { LimiterSubject::Ip(ip) }
    }

    fn is_loopback(&self) -> bool {
        matches!(self, LimiterSubject::Ip(ip) if is_loopback_ip(ip))
    }
}

pub fn is_loopback_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Run the shared-secret check of spec §4.4 steps 7–9 against the limiter: a match resets the
/// subject's entry, a mismatch is recorded (with the loopback delay).
pub fn authorize_shared_secret(
    settings: &AuthSettings,
    creds: &ClientCredentials,
    limiter: &mut RateLimiter,
    subject: &LimiterSubject,
    now: Instant,
) -> SharedAuth {
    match check_shared_secret(settings, creds, limiter, subject, now) {
        SharedAuth::Failed(mut f) if f.is_mismatch() => {
            f.delay = limiter.record_failure(now, SHARED_SECRET_SCOPE, subject);
            SharedAuth::Failed(f)
        }
        other => other,
    }
}

/// Like [`authorize_shared_secret`] but a mismatch is *not* recorded yet: a client that also
/// carries a device credential gets its device token tried first (spec §4.9), and the caller
/// records the deferred failure with [`RateLimiter::record_failure`] only if that fails too.
pub fn check_shared_secret(
    settings: &AuthSettings,
    creds: &ClientCredentials,
    limiter: &mut RateLimiter,
    subject: &LimiterSubject,
    now: Instant,
) -> SharedAuth {
    let (configured, missing, missing_config, mismatch, method, presented) = match settings.mode {
        AuthMode::None => return SharedAuth::Ok(AuthMethod::None),
        AuthMode::Token | AuthMode::TrustedProxy => (
            settings.token.as_ref(),
            AuthReason::TokenMissing,
            AuthReason::TokenMissingConfig,
            AuthReason::TokenMismatch,
            AuthMethod::Token,
            creds.token.as_deref().or(creds.password.as_deref()),
        ),
        AuthMode::Password => (
            settings.password.as_ref(),
            AuthReason::PasswordMissing,
            AuthReason::PasswordMissingConfig,
            AuthReason::PasswordMismatch,
            AuthMethod::Password,
            creds.password.as_deref().or(creds.token.as_deref()),
        ),
    };
    let Some(presented) = presented else {
        return SharedAuth::NoCredentials(missing);
    };
    if let LimitCheck::Locked { retry_after_ms } = limiter.check(now, SHARED_SECRET_SCOPE, subject) {
        return SharedAuth::Failed(AuthFailure::new(AuthReason::RateLimited).retry_after(retry_after_ms));
    }
    let Some(configured) = configured else {
        return SharedAuth::Failed(AuthFailure::new(missing_config));
    };
    if constant_time_eq(presented.as_bytes(), configured.expose().as_bytes()) {
        limiter.reset(SHARED_SECRET_SCOPE, subject);
        SharedAuth::Ok(method)
    } else {
        SharedAuth::Failed(AuthFailure::new(mismatch))
    }
}

/// Limiter scope of token/password failures.
pub const SHARED_SECRET_SCOPE: &str = "shared-secret";

/// `gateway.auth.rateLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    pub max_attempts: u32,
    pub window: Duration,
    pub lockout: Duration,
    pub exempt_loopback: bool,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        RateLimitPolicy {
            max_attempts: 10,
            window: Duration::from_millis(60_000),
            lockout: Duration::from_millis(300_000),
            exempt_loopback: true,
        }
    }
}

/// Loopback delay: `min(250 ms · 2^(n−1), 5 000 ms)`.
pub const LOOPBACK_BASE_DELAY: Duration = Duration::from_millis(250);
pub const LOOPBACK_MAX_DELAY: Duration = Duration::from_millis(5_000);
/// Exempt subjects keep at most this many failures.
pub const LOOPBACK_HISTORY: usize = 6;
/// Entries kept before pruning/eviction.
pub const MAX_LIMITER_ENTRIES: usize = 10_000;
const PRUNE_INTERVAL: Duration = Duration::from_millis(60_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitCheck {
    Allowed,
    Locked { retry_after_ms: u64 },
}

#[derive(Debug, Default, Clone)]
struct LimiterEntry {
    attempts: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

/// The failed-auth rate limiter: a pure state machine over `now` (decision table K).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    policy: RateLimitPolicy,
    entries: HashMap<(String, LimiterSubject), LimiterEntry>,
    last_prune: Option<Instant>,
}

impl RateLimiter {
    pub fn new(policy: RateLimitPolicy) -> Self {
        RateLimiter { policy, entries: HashMap::new(), last_prune: None }
    }

    pub fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    /// Replace the policy (hot reload); entries and locks are kept.
    pub fn update_policy(&mut self, policy: RateLimitPolicy) {
        self.policy = policy;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn exempt(&self, subject: &LimiterSubject) -> bool {
        self.policy.exempt_loopback && subject.is_loopback()
    }

    fn refresh(policy: &RateLimitPolicy, e: &mut LimiterEntry, now: Instant) {
        if let Some(until) = e.locked_until {
            if now >= until {
                e.locked_until = None;
                e.attempts.clear();
            }
        }
        while let Some(&t) = e.attempts.front() {
            if now.saturating_duration_since(t) >= policy.window {
                e.attempts.pop_front();
            } else {
                break;
            }
        }
    }

    /// May this subject try again now?
    pub fn check(&mut self, now: Instant, scope: &str, subject: &LimiterSubject) -> LimitCheck {
        if self.exempt(subject) {
            return LimitCheck::Allowed;
        }
        self.maybe_prune(now);
        let policy = self.policy;
        let Some(e) = self.entries.get_mut(&(scope.to_string(), subject.clone())) else {
            return LimitCheck::Allowed;
        };
        Self::refresh(&policy, e, now);
        if e.locked_until.is_none() && e.attempts.len() >= policy.max_attempts as usize {
            e.locked_until = Some(now + policy.lockout);
        }
        match e.locked_until {
            Some(until) => LimitCheck::Locked { retry_after_ms: until.saturating_duration_since(now).as_millis() as u64 },
            None => LimitCheck::Allowed,
        }
    }

    /// Record a failure; returns the delay to apply for exempt (loopback) subjects.
    pub fn record_failure(&mut self, now: Instant, scope: &str, subject: &LimiterSubject) -> Option<Duration> {
        let exempt = self.exempt(subject);
        let policy = self.policy;
        self.maybe_prune(now);
        let key = (scope.to_string(), subject.clone());
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_LIMITER_ENTRIES {
            self.evict_one(now);
        }
        let e = self.entries.entry(key).or_default();
        if !exempt && e.locked_until.is_some_and(|u| now < u) {
            return None;
        }
        Self::refresh(&policy, e, now);
        e.attempts.push_back(now);
        if exempt {
            while e.attempts.len() > LOOPBACK_HISTORY {
                e.attempts.pop_front();
            }
            let n = e.attempts.len() as u32;
            let delay = LOOPBACK_BASE_DELAY.saturating_mul(1u32 << (n.saturating_sub(1)).min(16));
            return Some(delay.min(LOOPBACK_MAX_DELAY));
        }
        if e.attempts.len() >= policy.max_attempts as usize {
            e.locked_until = Some(now + policy.lockout);
        }
        None
    }

    /// A success clears the subject's entry for this scope.
    pub fn reset(&mut self, scope: &str, subject: &LimiterSubject) {
        self.entries.remove(&(scope.to_string(), subject.clone()));
    }

    fn maybe_prune(&mut self, now: Instant) {
        let due = self.last_prune.is_none_or(|t| now.saturating_duration_since(t) >= PRUNE_INTERVAL);
        if !due {
            return;
        }
        self.last_prune = Some(now);
        let policy = self.policy;
        self.entries.retain(|_, e| {
            Self::refresh(&policy, e, now);
            e.locked_until.is_some() || !e.attempts.is_empty()
        });
    }

    fn evict_one(&mut self, now: Instant) {
        let policy = self.policy;
        self.entries.retain(|_, e| {
            Self::refresh(&policy, e, now);
            e.locked_until.is_some() || !e.attempts.is_empty()
        });
        if self.entries.len() < MAX_LIMITER_ENTRIES {
            return;
        }
        // Evict the unlocked entry whose newest failure is oldest; when every entry is locked,
        // the one whose lock ends first: the cap holds whatever an attacker does.
        let victim = self
            .entries
            .iter()
            .filter(|(_, e)| e.locked_until.is_none())
            .min_by_key(|(_, e)| e.attempts.back().copied())
            .or_else(|| self.entries.iter().min_by_key(|(_, e)| e.locked_until))
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.entries.remove(&k);
        }
    }
}

/// The trusted-proxy identity check of config-auth-reload §4.7, after attribution. `Ok(user)`
/// or the failure reason (`trusted_proxy_*`).
pub fn trusted_proxy_check(
    remote: IpAddr,
    attribution: &crate::auth::ingress::Attribution,
    facts: &crate::auth::ingress::RequestFacts,
    cfg: &TrustedProxyConfig,
    trusted: &[crate::auth::ingress::IpNet],
    local_interfaces: Option<&[IpAddr]>,
) -> Result<String, String> {
    let remote = crate::auth::ingress::normalize_ip(remote);
    if !trusted.iter().any(|n| n.contains(remote)) {
        return Err("trusted_proxy_untrusted_source".into());
    }
    if is_loopback_ip(&remote) {
        if !cfg.allow_loopback {
            return Err("trusted_proxy_loopback_source".into());
        }
    } else {
        // A "proxy" at one of our own addresses is a local process skipping the proxy.
        match local_interfaces {
            None => return Err("trusted_proxy_local_interface_check_failed".into()),
            Some(addrs) if addrs.iter().any(|a| crate::auth::ingress::normalize_ip(*a) == remote) => {
                return Err("trusted_proxy_local_interface_source".into());
            }
            Some(_) => {}
        }
    }
    if !matches!(attribution, crate::auth::ingress::Attribution::TrustedProxy { .. }) {
        return Err("trusted_proxy_untrusted_source".into());
    }
    for h in &cfg.required_headers {
        if facts.header(h).is_none_or(|v| v.trim().is_empty()) {
            return Err(format!("trusted_proxy_missing_header_{h}"));
        }
    }
    let user = facts.header(&cfg.user_header).map(str::trim).filter(|u| !u.is_empty()).ok_or("trusted_proxy_user_missing")?;
    if !cfg.allow_users.is_empty() && !cfg.allow_users.iter().any(|u| u.trim() == user) {
        return Err("trusted_proxy_user_not_allowed".into());
    }
    Ok(user.to_string())
}

// The rate-limiter tests run on virtual time in `core/tests/suites/rate_limit.rs`.
/// `gateway.auth.trustedProxy`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustedProxyConfig {
    pub user_header: String,
    pub required_headers: Vec<String>,
    pub allow_users: Vec<String>,
    pub allow_loopback: bool,
}

// ---- the hooks' own failed-auth limiter ------------------------------------------------------

/// Failed hook authentications allowed per window (spec http §6.8).
pub const HOOK_AUTH_MAX_FAILURES: u32 = 20;
pub const HOOK_AUTH_WINDOW: Duration = Duration::from_secs(60);
/// The hook failed-auth limiter: 20 failures per 60 s per client, loopback **not** exempt,
/// separate from the gateway's.
#[derive(Debug, Clone)]
pub struct HookAuthLimiter {
    pub(crate) limiter: RateLimiter,
}

impl Default for HookAuthLimiter {
    fn default() -> Self {
        HookAuthLimiter {
            limiter: RateLimiter::new(RateLimitPolicy {
                max_attempts: HOOK_AUTH_MAX_FAILURES,
                window: HOOK_AUTH_WINDOW,
                lockout: HOOK_AUTH_WINDOW,
                exempt_loopback: false,
            }),
        }
    }
}

impl HookAuthLimiter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.limiter.len()
    }
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(constant_time_eq(b"", b""));
    }
}
