//! Port, bind and auth resolution and the startup gates (config-auth-reload §3, §4.2, §4.3,
//! decision tables A, B, D, E, M). Pure functions over plain data: the shell collects flags,
//! environment and config values and acts on the result.

pub mod api;
pub mod file;
pub mod keys;
pub mod reload;
pub mod schema;
pub mod secrets;
pub mod settings;
pub mod view;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::auth::{AuthMode, Secret};

/// Default gateway port.
pub const DEFAULT_PORT: u16 = 18789;

/// Exit code for configuration errors (`EX_CONFIG`): supervisors must not restart-loop on it.
pub const EXIT_CONFIG: i32 = 78;
/// Exit code for every other startup failure.
pub const EXIT_FAILURE: i32 = 1;

/// A startup failure: the message to print and the exit code (decision table M).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StartupError {
    pub message: String,
    pub exit_code: i32,
}

impl StartupError {
    pub fn config(message: impl Into<String>) -> Self {
        StartupError { message: message.into(), exit_code: EXIT_CONFIG }
    }
    pub fn failure(message: impl Into<String>) -> Self {
        StartupError { message: message.into(), exit_code: EXIT_FAILURE }
    }
}

pub const INVALID_PORT: &str = "Invalid --port. Use a port number from 1 to 65535, for example 18789.";
pub const INVALID_BIND: &str = "Invalid --bind. Use \"loopback\", \"lan\", \"tailnet\", \"auto\", or \"custom\".";
pub const INVALID_AUTH: &str = "Invalid --auth. Use \"none\", \"token\", \"password\", or \"trusted-proxy\".";

fn parse_strict_port(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|p| (1..=65535).contains(p)).map(|p| p as u16)
}

/// `OPENCLAW_GATEWAY_PORT`: `N`, `host:N` or `[v6]:N`; anything else is ignored.
pub fn parse_env_port(s: &str) -> Option<u16> {
    let s = s.trim();
    if let Some(p) = parse_strict_port(s) {
        return Some(p);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (_, tail) = rest.split_once(']')?;
        return parse_strict_port(tail.strip_prefix(':')?);
    }
    let (host, port) = s.split_once(':')?;
    if host.is_empty() || port.contains(':') {
        return None;
    }
    parse_strict_port(port)
}

/// FNV-1a 32-bit (profile-derived ports).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// A profile name (§1.2): `^[a-z0-9][a-z0-9_-]{0,63}$`, case-insensitive. Anything else is no
/// profile (table A row 6).
pub fn valid_profile_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// The refusal of an `OPENCLAW_GATEWAY_PORT` that is not a port.
pub fn invalid_env_port(raw: &str) -> String {
    format!("Invalid OPENCLAW_GATEWAY_PORT \"{}\". Use a port number from 1 to 65535 (or host:port), for example 18789.", raw.trim())
}

/// The host part of an `OPENCLAW_GATEWAY_PORT` written as `host:N` / `[v6]:N`.
pub fn env_port_host(s: &str) -> Option<&str> {
    let s = s.trim();
    parse_strict_port(s).is_none().then_some(())?;
    match s.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(h, _)| h),
        None => s.split_once(':').map(|(h, _)| h),
    }
}

/// Decision table A: `--port` > `OPENCLAW_GATEWAY_PORT` > `gateway.port` > profile > 18789.
/// Unlike the reference, which ignores an unparsable `OPENCLAW_GATEWAY_PORT` and starts on
/// another port without a word, a value that is not a port is refused (exit 78: a restart
/// cannot fix the environment).
pub fn resolve_port(cli: Option<&str>, env: Option<&str>, cfg: Option<i64>, profile: Option<&str>) -> Result<u16, StartupError> {
    if let Some(c) = cli {
        return parse_strict_port(c).ok_or_else(|| StartupError::failure(INVALID_PORT));
    }
    if let Some(e) = env.filter(|e| !e.trim().is_empty()) {
        return parse_env_port(e).ok_or_else(|| StartupError::config(invalid_env_port(e)));
    }
    if let Some(p) = cfg {
        return u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| StartupError::config(format!("Invalid config: gateway.port must be 1-65535 (got {p})")));
    }
    if let Some(name) = profile.filter(|p| !p.eq_ignore_ascii_case("default") && valid_profile_name(p)) {
        return Ok((20_000 + fnv1a32(name.as_bytes()) % 40_000) as u16);
    }
    Ok(DEFAULT_PORT)
}

/// `gateway.bind` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    Loopback,
    Lan,
    Tailnet,
    Auto,
    Custom,
}

impl BindMode {
    pub fn parse(s: &str) -> Option<BindMode> {
        match s {
            "loopback" => Some(BindMode::Loopback),
            "lan" => Some(BindMode::Lan),
            "tailnet" => Some(BindMode::Tailnet),
            "auto" => Some(BindMode::Auto),
            "custom" => Some(BindMode::Custom),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BindMode::Loopback => "loopback",
            BindMode::Lan => "lan",
            BindMode::Tailnet => "tailnet",
            BindMode::Auto => "auto",
            BindMode::Custom => "custom",
        }
    }
}

/// Decision table B. Unlike the reference we do not switch to `auto` (0.0.0.0) inside
/// containers: an unconfigured gateway always starts on loopback.
pub fn resolve_bind_mode(cli: Option<&str>, cfg: Option<&str>) -> Result<BindMode, StartupError> {
    if let Some(c) = cli {
        return BindMode::parse(c).ok_or_else(|| StartupError::failure(INVALID_BIND));
    }
    if let Some(c) = cfg {
        return BindMode::parse(c).ok_or_else(|| StartupError::config(format!("Invalid config: gateway.bind \"{c}\" is not a bind mode")));
    }
    Ok(BindMode::Loopback)
}

/// Where to listen (decision table C, without Tailscale addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindPlan {
    pub mode: BindMode,
    /// The host the gateway reports (`127.0.0.1`, `0.0.0.0`, the custom IP).
    pub host: IpAddr,
    /// Every address to listen on; `optional` ones may fail to bind (e.g. `::1` without IPv6).
    pub listeners: Vec<(IpAddr, bool)>,
}

/// Is this a loopback host (the guard every bind check uses)?
pub fn is_loopback_host(ip: &IpAddr) -> bool {
    crate::auth::is_loopback_ip(ip)
}

/// The second line of every custom-bind refusal.
const CUSTOM_HOST_FIX: &str =
    "Fix: set gateway.customBindHost in the config, or pass --custom-bind-host <IPv4 address> with --bind custom.";

/// Decision table C. `can_bind` answers whether the host has the address.
pub fn resolve_bind_plan(mode: BindMode, custom_host: Option<&str>, can_bind: impl Fn(IpAddr) -> bool) -> Result<BindPlan, StartupError> {
    let v4_lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6_lo = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let loopback = || BindPlan { mode, host: v4_lo, listeners: vec![(v4_lo, false), (v6_lo, true)] };
    match mode {
        BindMode::Loopback | BindMode::Tailnet => Ok(loopback()),
        BindMode::Auto => Ok(if can_bind(v4_lo) { loopback() } else { BindPlan { mode, host: any, listeners: vec![(any, false)] } }),
        BindMode::Lan => Ok(BindPlan { mode, host: any, listeners: vec![(any, false)] }),
        BindMode::Custom => {
            let raw = custom_host
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .ok_or_else(|| StartupError::failure(format!("gateway.bind=custom requires gateway.customBindHost\n{CUSTOM_HOST_FIX}")))?;
            let ip: Ipv4Addr = raw.parse().ok().filter(|ip: &Ipv4Addr| ip.to_string() == raw).ok_or_else(|| {
                StartupError::failure(format!("gateway.bind=custom requires a valid IPv4 customBindHost (got {raw})\n{CUSTOM_HOST_FIX}"))
            })?;
            let ip = IpAddr::V4(ip);
            if ip == any {
                return Ok(BindPlan { mode, host: any, listeners: vec![(any, false)] });
            }
            if ip == v4_lo {
                return Ok(loopback());
            }
            if !can_bind(ip) {
                return Err(StartupError::failure(format!(
                    "gateway bind=custom requested {raw} but resolved 0.0.0.0; refusing fallback\nFix: use an IPv4 address of one of this host's interfaces (`ip -4 addr`), or --bind lan to listen on all of them."
                )));
            }
            Ok(BindPlan { mode, host: ip, listeners: vec![(ip, false), (v4_lo, false)] })
        }
    }
}

/// Auth-related inputs from one source layer.
#[derive(Debug, Clone, Default)]
pub struct AuthInputs {
    pub mode: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
}

/// The outcome of decision table D.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAuth {
    pub mode: AuthMode,
    pub token: Option<Secret>,
    pub password: Option<Secret>,
    /// Whether the secret came from an explicit source (flag, config, env), as opposed to the
    /// token generated and kept in the state dir.
    pub explicit_secret: bool,
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_string)
}

/// Decision table D: flags > config > env (> `gateway.remote.*`) for each value; mode is
/// `--auth` > `gateway.auth.mode` > `password` when a password resolved > `token`.
pub fn resolve_auth(cli: &AuthInputs, cfg: &AuthInputs, env: &AuthInputs, remote: &AuthInputs) -> Result<ResolvedAuth, StartupError> {
    let token =
        non_blank(&cli.token).or_else(|| non_blank(&cfg.token)).or_else(|| non_blank(&env.token)).or_else(|| non_blank(&remote.token));
    let mode_raw = non_blank(&cli.mode).or_else(|| non_blank(&cfg.mode));
    let mode = match &mode_raw {
        Some(m) => match AuthMode::parse(m) {
            Some(m) => Some(m),
            None if non_blank(&cli.mode).is_some() => return Err(StartupError::failure(INVALID_AUTH)),
            None => return Err(StartupError::config(format!("Invalid config: gateway.auth.mode \"{m}\" is not an auth mode"))),
        },
        None => None,
    };
    let remote_pw = if mode == Some(AuthMode::TrustedProxy) { None } else { non_blank(&remote.password) };
    let password = non_blank(&cli.password).or_else(|| non_blank(&cfg.password)).or_else(|| non_blank(&env.password)).or(remote_pw);
    if mode.is_none() && non_blank(&cfg.token).is_some() && non_blank(&cfg.password).is_some() {
        return Err(StartupError::failure(
            "Invalid config: gateway.auth.token and gateway.auth.password are both configured, but gateway.auth.mode is unset. Set gateway.auth.mode to token or password.",
        ));
    }
    let mode = mode.unwrap_or(if password.is_some() { AuthMode::Password } else { AuthMode::Token });
    let explicit_secret = match mode {
        AuthMode::Token => token.is_some(),
        AuthMode::Password => password.is_some(),
        _ => false,
    };
    Ok(ResolvedAuth { mode, token: token.map(Secret::new), password: password.map(Secret::new), explicit_secret })
}

/// Published placeholders that must never work as credentials.
const WEAK_SECRETS: &[&str] = &["undefined", "null", "change-me-to-a-long-random-token", "change-me-now", "change-me-to-a-strong-password"];
const REDACTION_SENTINELS: &[&str] = &[
    "__OPENCLAW_REDACTED__",
    "REDACTED",
    "***",
    "[redacted]",
    "[REDACTED]",
    "<redacted>",
    "xoxb-REDACTED",
    "xapp-REDACTED",
    "[REDACTED_PRIVATE_KEY]",
    "[REDACTED CREDENTIAL]",
];

/// Decision table E (the gates we serve): password mode needs a password; a non-loopback bind
/// needs an explicit shared secret; weak or redacted secrets are refused.
/// Returns whether a token must be generated (token mode without one, loopback only).
pub fn startup_auth_gate(auth: &ResolvedAuth, plan: &BindPlan) -> Result<bool, StartupError> {
    if auth.mode == AuthMode::Password && auth.password.is_none() {
        return Err(StartupError::config(
            "Gateway auth is set to password, but no password is configured.\nSet gateway.auth.password (or OPENCLAW_GATEWAY_PASSWORD), or pass --password.",
        ));
    }
    let loopback = is_loopback_host(&plan.host);
    if auth.mode == AuthMode::None && !loopback {
        // Checked first: the generic hint below would ask for a --token that may have been given.
        return Err(StartupError::config(format!(
            "Refusing to bind gateway to {} without auth.\nAuth mode none (--auth none or gateway.auth.mode: \"none\") is only allowed on a loopback bind. Drop it to use token or password auth (a --token/--password or configured secret is then used), or bind loopback.",
            plan.mode.as_str()
        )));
    }
    if !loopback && auth.mode != AuthMode::TrustedProxy && !auth.explicit_secret {
        return Err(StartupError::config(format!(
            "Refusing to bind gateway to {} without auth.\nSet gateway.auth.token/password (or OPENCLAW_GATEWAY_TOKEN/OPENCLAW_GATEWAY_PASSWORD) or pass --token/--password to start with auth.",
            plan.mode.as_str()
        )));
    }
    for (field, secret) in [("token", &auth.token), ("password", &auth.password)] {
        if let Some(s) = secret {
            let v = s.expose().trim();
            if REDACTION_SENTINELS.contains(&v) {
                return Err(StartupError::failure(format!(
                    "Gateway auth {field} is a known redaction sentinel, not a credential. Set a real value."
                )));
            }
            if WEAK_SECRETS.contains(&v) {
                return Err(StartupError::failure(
                    "Invalid config: gateway auth token is blank, a published example placeholder, or the literal string undefined/null. Set a real secret.",
                ));
            }
        }
    }
    Ok(auth.mode == AuthMode::Token && auth.token.is_none())
}

/// Resolve the state dir from the environment (config-auth-reload §1.1).
/// `exists` reports whether a directory exists.
pub fn resolve_state_dir(env: impl Fn(&str) -> Option<String>, os_home: Option<String>, exists: impl Fn(&str) -> bool) -> String {
    let home = resolve_home(&env, os_home);
    if let Some(sd) = clean_env_value(env("OPENCLAW_STATE_DIR")) {
        return expand_home(&sd, Some(&home));
    }
    let primary = format!("{home}/.openclaw");
    if exists(&primary) {
        return primary;
    }
    let legacy = format!("{home}/.clawdbot");
    if exists(&legacy) {
        return legacy;
    }
    primary
}

/// Blank, `"undefined"` and `"null"` count as unset (§1.1).
fn clean_env_value(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s != "undefined" && s != "null")
}

/// The effective home (§1.1): `OPENCLAW_HOME` → `HOME` → `USERPROFILE` → the OS home → `.`.
pub fn resolve_home(env: impl Fn(&str) -> Option<String>, os_home: Option<String>) -> String {
    // A blank OS home counts as unset too (falls back to the cwd), never as an empty home.
    let os_home = clean_env_value(os_home);
    clean_env_value(env("OPENCLAW_HOME"))
        .map(|h| expand_home(&h, os_home.as_deref()))
        .or_else(|| clean_env_value(env("HOME")))
        .or_else(|| clean_env_value(env("USERPROFILE")))
        .or(os_home)
        .unwrap_or_else(|| ".".into())
}

fn expand_home(p: &str, home: Option<&str>) -> String {
    match (p.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => format!("{h}{rest}"),
        _ => p.to_string(),
    }
}

/// The config path: `OPENCLAW_CONFIG_PATH` or `<stateDir>/openclaw.json`.
pub fn resolve_config_path(env: impl Fn(&str) -> Option<String>, state_dir: &str, home: Option<&str>) -> String {
    match env("OPENCLAW_CONFIG_PATH").map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(p) => expand_home(&p, home),
        None => format!("{state_dir}/openclaw.json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_precedence() {
        assert_eq!(resolve_port(Some("28824"), Some("28825"), Some(28822), None), Ok(28824));
        assert_eq!(resolve_port(None, Some("28825"), Some(28822), None), Ok(28825));
        assert_eq!(resolve_port(None, Some("localhost:28825"), None, None), Ok(28825));
        assert_eq!(resolve_port(None, Some("[::1]:28826"), None, None), Ok(28826));
        assert_eq!(resolve_port(None, Some("junk"), Some(28822), None).unwrap_err().message, invalid_env_port("junk"));
        assert_eq!(resolve_port(None, Some("junk"), Some(28822), None).unwrap_err().exit_code, 78);
        assert_eq!(resolve_port(None, Some("70000"), None, None).unwrap_err().exit_code, 78);
        assert_eq!(
            (env_port_host("10.1.1.1:3335"), env_port_host("[::1]:1"), env_port_host("3335")),
            (Some("10.1.1.1"), Some("::1"), None)
        );
        assert_eq!(resolve_port(None, None, None, None), Ok(18789));
        assert_eq!(resolve_port(None, None, None, Some("p2440")), Ok(28821));
        assert_eq!(resolve_port(Some("99999"), None, None, None).unwrap_err().exit_code, 1);
        assert_eq!(resolve_port(Some("abc"), None, None, None).unwrap_err().message, INVALID_PORT);
    }

    #[test]
    fn auth_precedence() {
        let i = |m: Option<&str>, t: Option<&str>, p: Option<&str>| AuthInputs {
            mode: m.map(Into::into),
            token: t.map(Into::into),
            password: p.map(Into::into),
        };
        let none = AuthInputs::default();
        let r = resolve_auth(&none, &i(None, Some("cfgtoken"), None), &i(None, Some("envtoken"), None), &none).unwrap();
        assert_eq!(r.token.unwrap().expose(), "cfgtoken");
        let r = resolve_auth(&i(None, Some("cli"), None), &i(None, Some("cfg"), None), &none, &none).unwrap();
        assert_eq!(r.token.unwrap().expose(), "cli");
        let r = resolve_auth(&none, &none, &i(None, Some("et"), Some("ep")), &none).unwrap();
        assert_eq!(r.mode, AuthMode::Password);
        let r = resolve_auth(&none, &i(None, Some("ct"), None), &i(None, None, Some("ep")), &none).unwrap();
        assert_eq!((r.mode, r.password.unwrap().expose().to_string()), (AuthMode::Password, "ep".into()));
        let r = resolve_auth(&none, &none, &none, &i(None, Some("remtoken"), None)).unwrap();
        assert_eq!(r.token.unwrap().expose(), "remtoken");
        assert_eq!(resolve_auth(&none, &i(None, Some("a"), Some("b")), &none, &none).unwrap_err().exit_code, 1);
        assert_eq!(resolve_auth(&i(Some("bogus"), None, None), &none, &none, &none).unwrap_err().message, INVALID_AUTH);
    }

    #[test]
    fn gates() {
        let lan = resolve_bind_plan(BindMode::Lan, None, |_| true).unwrap();
        let lo = resolve_bind_plan(BindMode::Loopback, None, |_| true).unwrap();
        let no_secret = ResolvedAuth { mode: AuthMode::Token, token: None, password: None, explicit_secret: false };
        let e = startup_auth_gate(&no_secret, &lan).unwrap_err();
        assert_eq!(e.exit_code, 78);
        assert!(e.message.starts_with("Refusing to bind gateway to lan without auth."));
        assert_eq!(startup_auth_gate(&no_secret, &lo), Ok(true));
        let pw = ResolvedAuth { mode: AuthMode::Password, token: None, password: None, explicit_secret: false };
        assert!(
            startup_auth_gate(&pw, &lo).unwrap_err().message.starts_with("Gateway auth is set to password, but no password is configured.")
        );
        let none = ResolvedAuth { mode: AuthMode::None, token: None, password: None, explicit_secret: false };
        assert_eq!(startup_auth_gate(&none, &lan).unwrap_err().exit_code, 78);
        // --auth none --bind lan --token x: the refusal is about auth none, not a missing --token.
        let none_with_token = ResolvedAuth { mode: AuthMode::None, token: Some(Secret::new("x")), password: None, explicit_secret: false };
        let e = startup_auth_gate(&none_with_token, &lan).unwrap_err().message;
        assert!(e.starts_with("Refusing to bind gateway to lan without auth.\nAuth mode none"), "{e}");
        assert!(!e.contains("pass --token"), "{e}");
    }

    #[test]
    fn custom_bind() {
        let e = resolve_bind_plan(BindMode::Custom, None, |_| true).unwrap_err().message;
        assert_eq!(e, format!("gateway.bind=custom requires gateway.customBindHost\n{CUSTOM_HOST_FIX}"));
        assert!(e.contains("--custom-bind-host"), "the refusal names the flag too: {e}");
        assert!(
            resolve_bind_plan(BindMode::Custom, Some("10.999.1.1"), |_| true)
                .unwrap_err()
                .message
                .starts_with("gateway.bind=custom requires a valid IPv4 customBindHost (got 10.999.1.1)\n")
        );
        assert!(resolve_bind_plan(BindMode::Custom, Some("203.0.113.9"), |_| false).is_err());
        assert_eq!(resolve_bind_plan(BindMode::Custom, Some("192.0.2.2"), |_| true).unwrap().listeners.len(), 2);
    }
}
