//! Which gateway a client command talks to, and with which credentials — the reference CLI's
//! rules (its `docs/gateway/remote.md` "Credential precedence" and `docs/cli/gateway/query.md`,
//! checked against the live `openclaw gateway call`), decided from plain data:
//!
//! Target, first match wins:
//! 1. `--url` (never with `--port`); it never reuses implicit credentials: `--token` or
//!    `--password` must come with it.
//! 2. `--port`: the local loopback gateway on that port, credentials as for the local gateway.
//! 3. `OPENCLAW_GATEWAY_URL`, with credentials from the environment (or flags) only.
//! 4. `gateway.mode: "remote"`: `gateway.remote.url` (an error when missing), remote credentials.
//! 5. The local gateway: `ws://127.0.0.1:<port>`, the port as `clawgate run` resolves it
//!    (`OPENCLAW_GATEWAY_PORT` > `gateway.port` > profile > 18789).
//!
//! Credentials (flags always win):
//! * local: token `gateway.auth.token` > `OPENCLAW_GATEWAY_TOKEN` > `gateway.remote.token` > the
//!   token clawgate keeps in the state dir; password `gateway.auth.password` >
//!   `OPENCLAW_GATEWAY_PASSWORD` > `gateway.remote.password`; which of the two is sent follows
//!   the auth mode the gateway would resolve from the same config and environment.
//! * remote: token `gateway.remote.token` > `OPENCLAW_GATEWAY_TOKEN` > `gateway.auth.token`;
//!   password `OPENCLAW_GATEWAY_PASSWORD` > `gateway.remote.password` > `gateway.auth.password`.
//! * A configured SecretRef that does not resolve fails closed: no later source masks it.

use crate::auth::{AuthMode, Secret};
use crate::config::{self, AuthInputs};

/// A config secret as the shell found it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SecretField {
    #[default]
    Absent,
    Value(Secret),
    /// Configured (a SecretRef) but not resolvable: the reason.
    Unresolved(String),
}

impl SecretField {
    fn value(&self) -> Option<&Secret> {
        match self {
            SecretField::Value(s) if !s.expose().trim().is_empty() => Some(s),
            _ => None,
        }
    }
}

/// The parts of the config file a client reads.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub mode: Option<String>,
    pub port: Option<i64>,
    pub auth_mode: Option<AuthMode>,
    pub remote_url: Option<String>,
    pub auth_token: SecretField,
    pub auth_password: SecretField,
    pub remote_token: SecretField,
    pub remote_password: SecretField,
}

/// Everything the decision reads.
#[derive(Debug, Clone, Default)]
pub struct ClientInputs {
    pub url_flag: Option<String>,
    pub port_flag: Option<String>,
    pub token_flag: Option<String>,
    pub password_flag: Option<String>,
    pub env_url: Option<String>,
    pub env_port: Option<String>,
    pub env_token: Option<String>,
    pub env_password: Option<String>,
    pub env_profile: Option<String>,
    /// The config file's path (for messages) and what it holds; `None` when there is none.
    pub config_path: String,
    pub config: Option<ClientConfig>,
    /// Why the config file could not be read, if it could not.
    pub config_error: Option<String>,
    /// A gateway running from this state dir (`clawgate run` records its pid and port): the
    /// local target's port when neither the environment nor the config names one.
    pub running: Option<RunningGateway>,
    /// The token `clawgate run` keeps in the state dir, and that file's path.
    pub kept_token: Option<(Secret, String)>,
    pub kept_token_path: String,
}

/// The live gateway recorded in the state dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningGateway {
    pub pid: u32,
    pub port: u16,
    /// The record's path (for messages).
    pub path: String,
}

/// Where the target came from (the reference's `urlSource` wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    UrlFlag,
    PortFlag,
    EnvUrl,
    RemoteConfig,
    LocalLoopback,
}

impl TargetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSource::UrlFlag => "cli --url",
            TargetSource::PortFlag => "cli --port",
            TargetSource::EnvUrl => "env OPENCLAW_GATEWAY_URL",
            TargetSource::RemoteConfig => "config gateway.remote.url",
            TargetSource::LocalLoopback => "local loopback",
        }
    }
}

/// One credential and where it came from (`--token`, `OPENCLAW_GATEWAY_TOKEN`,
/// `gateway.auth.token in /path`, `the token kept in /path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub secret: Secret,
    pub source: String,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub source: TargetSource,
    /// For the local loopback target: where the port came from.
    pub port_source: Option<String>,
    pub token: Option<Credential>,
    pub password: Option<Credential>,
    /// The auth mode the local gateway resolves from this config and environment, when known.
    pub expected_mode: Option<AuthMode>,
    /// The credential sources looked at, in order (for "what was tried" messages).
    pub looked_at: Vec<String>,
}

/// Why no target could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    /// The reference's `error.type` (`gateway_credentials_required`, `cli_error`, …).
    pub kind: &'static str,
    pub message: String,
}

fn err(kind: &'static str, message: impl Into<String>) -> TargetError {
    TargetError { kind, message: message.into() }
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::to_string)
}

/// `ws://` or `wss://` with a host; plaintext `ws://` only where the reference allows it
/// (`docs/gateway/remote.md`): loopback, private/LAN (RFC 1918), link-local, CGNAT, `.local`
/// and `.ts.net` hosts — anywhere else the token would cross the network in clear.
fn check_url(url: &str, what: &str) -> Result<String, TargetError> {
    let u = url.trim();
    let (rest, tls) = match (u.strip_prefix("ws://"), u.strip_prefix("wss://")) {
        (Some(r), _) => (r, false),
        (None, Some(r)) => (r, true),
        _ => ("", false),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.is_empty() {
        return Err(err(
            "cli_error",
            format!("Invalid {what} \"{u}\". Use a WebSocket URL such as ws://127.0.0.1:18789 or wss://gateway.example"),
        ));
    }
    if !tls && !plaintext_allowed(host) {
        return Err(err(
            "cli_error",
            format!(
                "SECURITY ERROR: Gateway URL \"{u}\" uses plaintext ws:// to a non-loopback address.\nBoth credentials and chat data would be exposed to network interception.\nSource: {what}\nFix: use wss://, or an SSH tunnel to the gateway host (ssh -N -L 18789:127.0.0.1:18789 HOST) and ws://127.0.0.1:18789."
            ),
        ));
    }
    Ok(u.to_string())
}

/// May credentials go to `host` over plaintext `ws://`?
pub fn plaintext_allowed(host: &str) -> bool {
    use std::net::IpAddr;
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") || h.ends_with(".local") || h.ends_with(".ts.net") {
        return true;
    }
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        Ok(IpAddr::V6(v6)) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xfe00) == 0xfc00 // unique local
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
        Err(_) => false,
    }
}

/// `OPENCLAW_GATEWAY_PORT`, strictly: `N`, `host:N` or `[v6]:N` (an invalid value is an error
/// naming the variable, where the reference silently falls back to the default port).
pub fn env_port(raw: &str) -> Result<u16, TargetError> {
    config::parse_env_port(raw).ok_or_else(|| err("cli_error", config::invalid_env_port(raw)))
}

/// Decide the target and credentials.
pub fn resolve(i: &ClientInputs) -> Result<Target, TargetError> {
    let url_flag = non_blank(&i.url_flag);
    let port_flag = non_blank(&i.port_flag);
    if url_flag.is_some() && port_flag.is_some() {
        return Err(err("cli_error", "Use either --url or --port, not both."));
    }
    let flag_token = non_blank(&i.token_flag).map(|t| Credential { secret: Secret::new(t), source: "--token".into() });
    let flag_password = non_blank(&i.password_flag).map(|p| Credential { secret: Secret::new(p), source: "--password".into() });
    let env_token = || non_blank(&i.env_token).map(|t| Credential { secret: Secret::new(t), source: "OPENCLAW_GATEWAY_TOKEN".into() });
    let env_password =
        || non_blank(&i.env_password).map(|p| Credential { secret: Secret::new(p), source: "OPENCLAW_GATEWAY_PASSWORD".into() });

    // 1. --url: explicit credentials only.
    if let Some(url) = url_flag {
        let url = check_url(&url, "--url")?;
        if flag_token.is_none() && flag_password.is_none() {
            return Err(err(
                "gateway_credentials_required",
                "gateway url override requires explicit credentials\nFix: pass --token or --password with --url.\nFor the local gateway, remove --url (clawgate finds it from --port, OPENCLAW_GATEWAY_PORT, gateway.port and its config's credentials).",
            ));
        }
        return Ok(Target {
            url,
            source: TargetSource::UrlFlag,
            port_source: None,
            token: flag_token,
            password: flag_password,
            expected_mode: None,
            looked_at: vec!["--token".into(), "--password".into()],
        });
    }
    // 3. OPENCLAW_GATEWAY_URL (unless --port picks the local gateway): environment credentials.
    if let (None, Some(url)) = (&port_flag, non_blank(&i.env_url)) {
        let url = check_url(&url, "OPENCLAW_GATEWAY_URL")?;
        let token = flag_token.or_else(env_token);
        let password = flag_password.or_else(env_password);
        if token.is_none() && password.is_none() {
            return Err(err(
                "gateway_credentials_required",
                "gateway url override requires explicit credentials\nFix: set OPENCLAW_GATEWAY_TOKEN or OPENCLAW_GATEWAY_PASSWORD alongside OPENCLAW_GATEWAY_URL (or pass --token/--password); config credentials are intentionally not reused for an override URL.",
            ));
        }
        return Ok(Target {
            url,
            source: TargetSource::EnvUrl,
            port_source: None,
            token,
            password,
            expected_mode: None,
            looked_at: vec!["--token".into(), "--password".into(), "OPENCLAW_GATEWAY_TOKEN".into(), "OPENCLAW_GATEWAY_PASSWORD".into()],
        });
    }
    let cfg = i.config.clone().unwrap_or_default();
    let in_cfg = |key: &str| format!("{key} in {}", i.config_path);
    let from_cfg = |field: &SecretField, key: &str| -> Result<Option<Credential>, TargetError> {
        match field {
            SecretField::Unresolved(why) => Err(err(
                "gateway_credentials_unavailable",
                format!(
                    "{key} is configured as a secret reference that does not resolve: {why}\nFix: make the reference resolvable (or change {key} in {}), or pass --token/--password explicitly.",
                    i.config_path
                ),
            )),
            f => Ok(f.value().map(|s| Credential { secret: s.clone(), source: in_cfg(key) })),
        }
    };
    // 4. Remote mode (not when --port asks for the local gateway).
    if port_flag.is_none() && cfg.mode.as_deref() == Some("remote") {
        let Some(url) = non_blank(&cfg.remote_url) else {
            return Err(err(
                "cli_error",
                format!(
                    "gateway remote mode misconfigured: gateway.remote.url missing\nConfig: {}\nFix: set gateway.remote.url, or set gateway.mode=local.",
                    i.config_path
                ),
            ));
        };
        let url = check_url(&url, "gateway.remote.url")?;
        // Each source is looked at only when the ones before it gave nothing; a configured
        // remote reference that does not resolve stops the search (fail closed).
        let token = match flag_token {
            Some(t) => Some(t),
            None => match from_cfg(&cfg.remote_token, "gateway.remote.token")?.or_else(env_token) {
                Some(t) => Some(t),
                None => from_cfg(&cfg.auth_token, "gateway.auth.token")?,
            },
        };
        let password = match flag_password.or_else(env_password) {
            Some(p) => Some(p),
            None => match from_cfg(&cfg.remote_password, "gateway.remote.password")? {
                Some(p) => Some(p),
                None => from_cfg(&cfg.auth_password, "gateway.auth.password")?,
            },
        };
        return Ok(Target {
            url,
            source: TargetSource::RemoteConfig,
            port_source: None,
            token,
            password,
            expected_mode: None,
            looked_at: vec![
                "--token".into(),
                "--password".into(),
                in_cfg("gateway.remote.token"),
                "OPENCLAW_GATEWAY_TOKEN".into(),
                in_cfg("gateway.auth.token"),
                "OPENCLAW_GATEWAY_PASSWORD".into(),
                in_cfg("gateway.remote.password"),
                in_cfg("gateway.auth.password"),
            ],
        });
    }
    // 2./5. The local gateway.
    if i.config.is_none() {
        if let Some(e) = &i.config_error {
            return Err(err(
                "cli_error",
                format!(
                    "Cannot read the config to find the gateway: {e}\nFix the file, or point the command at the gateway with --url and --token/--password."
                ),
            ));
        }
    }
    let (port, port_source) = match port_flag {
        Some(p) => (config::resolve_port(Some(&p), None, None, None).map_err(|e| err("cli_error", e.message))?, "--port".to_string()),
        None => match non_blank(&i.env_port) {
            Some(raw) => (env_port(&raw)?, "OPENCLAW_GATEWAY_PORT".to_string()),
            None => match cfg.port {
                Some(p) => (
                    u16::try_from(p)
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| err("cli_error", format!("Invalid config: gateway.port must be 1-65535 (got {p})")))?,
                    in_cfg("gateway.port"),
                ),
                None if i.running.is_some() => {
                    let r = i
                        .running
                        .as_ref()
                        .map(|r| (r.port, format!("the gateway running from this state dir (pid {}, {})", r.pid, r.path)));
                    r.unwrap_or_default()
                }
                None => {
                    let port = config::resolve_port(None, None, None, non_blank(&i.env_profile).as_deref())
                        .map_err(|e| err("cli_error", e.message))?;
                    let src = if port == config::DEFAULT_PORT { "the default".to_string() } else { "OPENCLAW_PROFILE".to_string() };
                    (port, src)
                }
            },
        },
    };
    let cfg_token = from_cfg(&cfg.auth_token, "gateway.auth.token")?;
    let cfg_password = from_cfg(&cfg.auth_password, "gateway.auth.password")?;
    let remote_token = from_cfg(&cfg.remote_token, "gateway.remote.token").ok().flatten();
    let remote_password = from_cfg(&cfg.remote_password, "gateway.remote.password").ok().flatten();
    // The mode the gateway resolves from the same sources (decision table D, without its flags).
    let plain = |c: &Option<Credential>| c.as_ref().map(|c| c.secret.expose().to_string());
    let expected_mode = config::resolve_auth(
        &AuthInputs::default(),
        &AuthInputs { mode: cfg.auth_mode.map(|m| m.as_str().to_string()), token: plain(&cfg_token), password: plain(&cfg_password) },
        &AuthInputs { mode: None, token: non_blank(&i.env_token), password: non_blank(&i.env_password) },
        &AuthInputs { mode: None, token: plain(&remote_token), password: plain(&remote_password) },
    )
    .ok()
    .map(|r| r.mode);
    let kept = || {
        i.kept_token
            .as_ref()
            .filter(|(t, _)| !t.expose().trim().is_empty())
            .map(|(t, path)| Credential { secret: t.clone(), source: format!("the token kept in {path}") })
    };
    let implicit_token = || cfg_token.clone().or_else(env_token).or_else(|| remote_token.clone()).or_else(kept);
    let implicit_password = || cfg_password.clone().or_else(env_password).or_else(|| remote_password.clone());
    let (token, password) = match (flag_token, flag_password) {
        (None, None) => match expected_mode {
            Some(AuthMode::Password) => (None, implicit_password()),
            Some(AuthMode::None) => (None, None),
            // Trusted-proxy: a local client may still use the local password.
            Some(AuthMode::TrustedProxy) => (None, implicit_password()),
            _ => (implicit_token(), None),
        },
        (t, p) => (t, p),
    };
    Ok(Target {
        url: format!("ws://127.0.0.1:{port}"),
        source: if port_source == "--port" { TargetSource::PortFlag } else { TargetSource::LocalLoopback },
        port_source: Some(port_source),
        token,
        password,
        expected_mode,
        looked_at: vec![
            "--token".into(),
            "--password".into(),
            in_cfg("gateway.auth.token"),
            "OPENCLAW_GATEWAY_TOKEN".into(),
            in_cfg("gateway.remote.token"),
            format!("the token kept in {}", i.kept_token_path),
            in_cfg("gateway.auth.password"),
            "OPENCLAW_GATEWAY_PASSWORD".into(),
            in_cfg("gateway.remote.password"),
        ],
    })
}

/// What to tell the operator when the target's socket could not be opened.
pub fn unreachable_message(t: &Target, reason: &str, config_path: &str) -> String {
    let mut s = format!("Gateway not reachable at {} ({reason}).\n", t.url);
    match t.source {
        TargetSource::LocalLoopback | TargetSource::PortFlag => {
            s.push_str("Start it with `clawgate run`, or point this command at the running gateway.\n");
        }
        _ => s.push_str("Check that the gateway is running and reachable from here.\n"),
    }
    s.push_str(&format!("Gateway target: {}\nSource: {}", t.url, t.source.as_str()));
    if let Some(p) = &t.port_source {
        s.push_str(&format!(" (port from {p})"));
    }
    s.push_str(&format!("\nConfig: {config_path}\n"));
    s.push_str(
        "Point it elsewhere with --port PORT (a local gateway), --url ws://HOST:PORT with --token/--password, OPENCLAW_GATEWAY_PORT / OPENCLAW_GATEWAY_URL, or gateway.port / gateway.mode=remote + gateway.remote.url in the config.",
    );
    s
}

/// What to tell the operator when the gateway refused `connect` (the server's `error.code`,
/// `error.message` and `details.code`).
pub fn refusal_message(t: &Target, code: &str, message: &str, detail: Option<&str>) -> String {
    let sent: Vec<&str> =
        [t.token.as_ref().map(|c| c.source.as_str()), t.password.as_ref().map(|c| c.source.as_str())].into_iter().flatten().collect();
    let sent_text = if sent.is_empty() { "no credentials".to_string() } else { format!("the credentials from {}", sent.join(" and ")) };
    let tried = t.looked_at.join(", ");
    let head = format!("The gateway at {} refused this command ({message}).", t.url);
    let fix = match detail.unwrap_or(code) {
        "AUTH_TOKEN_MISMATCH" | "AUTH_PASSWORD_MISMATCH" => format!(
            "It does not accept {sent_text}.\nFix: pass the gateway's secret with --token or --password (a gateway started with --token/--password or another config does not share this config's secret); `clawgate auth-token` prints the token this config gives the local gateway."
        ),
        "AUTH_TOKEN_MISSING" | "AUTH_PASSWORD_MISSING" | "DEVICE_IDENTITY_REQUIRED" if sent.is_empty() => format!(
            "It requires authentication and this command found no credentials (looked at: {tried}).\nFix: pass --token or --password, or set OPENCLAW_GATEWAY_TOKEN / OPENCLAW_GATEWAY_PASSWORD."
        ),
        "AUTH_TOKEN_MISSING" => {
            "It expects a token, and this command sent a password.\nFix: pass --token (or set OPENCLAW_GATEWAY_TOKEN).".to_string()
        }
        "AUTH_PASSWORD_MISSING" => {
            "It expects a password, and this command sent a token.\nFix: pass --password (or set OPENCLAW_GATEWAY_PASSWORD).".to_string()
        }
        "AUTH_RATE_LIMITED" => {
            "Too many failed attempts from this address: wait for the lockout to end, then retry with the right secret.".to_string()
        }
        "PAIRING_REQUIRED" | "NOT_PAIRED" => {
            "It requires this client to be paired: approve it with `clawgate devices approve <requestId>` on the gateway host.".to_string()
        }
        _ => format!("This command sent {sent_text}."),
    };
    format!("{head}\n{fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClientInputs {
        ClientInputs {
            config_path: "/h/.openclaw/openclaw.json".into(),
            kept_token_path: "/h/.openclaw/clawgate/gateway.token".into(),
            ..Default::default()
        }
    }

    fn secret(s: &str) -> SecretField {
        SecretField::Value(Secret::new(s))
    }

    #[test]
    fn target_precedence() {
        let mut i = base();
        i.kept_token = Some((Secret::new("kept"), "/k".into()));
        let t = resolve(&i).unwrap();
        assert_eq!((t.url.as_str(), t.source), ("ws://127.0.0.1:18789", TargetSource::LocalLoopback));
        assert_eq!(t.token.unwrap().secret.expose(), "kept");
        i.config = Some(ClientConfig { port: Some(3337), auth_token: secret("cfgtok"), ..Default::default() });
        let t = resolve(&i).unwrap();
        assert_eq!(t.url, "ws://127.0.0.1:3337");
        assert_eq!(t.token.as_ref().unwrap().source, "gateway.auth.token in /h/.openclaw/openclaw.json");
        i.env_port = Some("3335".into());
        assert_eq!(resolve(&i).unwrap().url, "ws://127.0.0.1:3335", "env port beats gateway.port");
        i.env_url = Some("ws://10.0.0.2:4000".into());
        assert_eq!(resolve(&i).unwrap_err().kind, "gateway_credentials_required", "env URL: config credentials are not reused");
        i.env_token = Some("envtok".into());
        let t = resolve(&i).unwrap();
        assert_eq!((t.url.as_str(), t.token.unwrap().secret.expose()), ("ws://10.0.0.2:4000", "envtok"));
        i.port_flag = Some("3336".into());
        let t = resolve(&i).unwrap();
        assert_eq!((t.url.as_str(), t.source), ("ws://127.0.0.1:3336", TargetSource::PortFlag), "--port beats the env URL");
        assert_eq!(t.token.unwrap().secret.expose(), "cfgtok", "--port uses the local credentials");
        i.url_flag = Some("ws://10.0.0.9:1".into());
        assert_eq!(resolve(&i).unwrap_err().message, "Use either --url or --port, not both.");
        i.port_flag = None;
        assert_eq!(resolve(&i).unwrap_err().kind, "gateway_credentials_required", "--url never reuses implicit credentials");
        i.token_flag = Some("flag".into());
        assert_eq!(resolve(&i).unwrap().token.unwrap().secret.expose(), "flag");
    }

    #[test]
    fn a_running_gateway_is_found_when_nothing_names_a_port() {
        let mut i = base();
        i.running = Some(RunningGateway { pid: 42, port: 4242, path: "/h/.openclaw/clawgate/gateway.run.json".into() });
        let t = resolve(&i).unwrap();
        assert_eq!(t.url, "ws://127.0.0.1:4242");
        assert!(t.port_source.unwrap().contains("pid 42"));
        i.config = Some(ClientConfig { port: Some(3337), ..Default::default() });
        assert_eq!(resolve(&i).unwrap().url, "ws://127.0.0.1:3337", "a configured port wins over the record");
        i.config = None;
        i.env_port = Some("3335".into());
        assert_eq!(resolve(&i).unwrap().url, "ws://127.0.0.1:3335", "so does the environment");
    }

    #[test]
    fn remote_mode() {
        let mut i = base();
        i.config = Some(ClientConfig { mode: Some("remote".into()), port: Some(3337), ..Default::default() });
        assert!(resolve(&i).unwrap_err().message.starts_with("gateway remote mode misconfigured: gateway.remote.url missing"));
        i.config = Some(ClientConfig {
            mode: Some("remote".into()),
            remote_url: Some("wss://gw.example".into()),
            remote_token: secret("rem"),
            auth_token: secret("local"),
            ..Default::default()
        });
        i.env_token = Some("env".into());
        i.env_port = Some("3335".into());
        let t = resolve(&i).unwrap();
        assert_eq!((t.url.as_str(), t.source), ("wss://gw.example", TargetSource::RemoteConfig), "env port does not beat remote.url");
        assert_eq!(t.token.unwrap().secret.expose(), "rem");
        i.config.as_mut().unwrap().remote_token = SecretField::Absent;
        assert_eq!(resolve(&i).unwrap().token.unwrap().secret.expose(), "env");
        i.kept_token = Some((Secret::new("kept"), "/k".into()));
        i.env_token = None;
        assert_eq!(resolve(&i).unwrap().token.unwrap().secret.expose(), "local", "the kept token belongs to the local gateway only");
    }

    #[test]
    fn local_credentials_follow_the_auth_mode() {
        let mut i = base();
        i.kept_token = Some((Secret::new("kept"), "/k".into()));
        i.config = Some(ClientConfig { auth_mode: Some(AuthMode::Password), auth_password: secret("pw"), ..Default::default() });
        let t = resolve(&i).unwrap();
        assert_eq!((t.token.is_none(), t.password.unwrap().secret.expose()), (true, "pw"));
        i.config = Some(ClientConfig { auth_mode: Some(AuthMode::None), ..Default::default() });
        let t = resolve(&i).unwrap();
        assert!(t.token.is_none() && t.password.is_none(), "auth none: nothing to send");
        // Env password without a configured mode: the gateway resolves password mode.
        i.config = None;
        i.env_password = Some("envpw".into());
        let t = resolve(&i).unwrap();
        assert_eq!((t.expected_mode, t.password.unwrap().source.as_str()), (Some(AuthMode::Password), "OPENCLAW_GATEWAY_PASSWORD"));
        // Remote token as the local fallback (the gateway accepts it too, §4.2).
        i.env_password = None;
        i.config = Some(ClientConfig { remote_token: secret("rem"), ..Default::default() });
        assert_eq!(resolve(&i).unwrap().token.unwrap().secret.expose(), "rem");
    }

    #[test]
    fn failures_are_specific() {
        let mut i = base();
        i.env_port = Some("abc".into());
        assert_eq!(
            resolve(&i).unwrap_err().message,
            "Invalid OPENCLAW_GATEWAY_PORT \"abc\". Use a port number from 1 to 65535 (or host:port), for example 18789."
        );
        i.env_port = None;
        i.config = Some(ClientConfig {
            auth_token: SecretField::Unresolved("environment variable MYTOK is missing".into()),
            ..Default::default()
        });
        i.env_token = Some("env".into());
        let e = resolve(&i).unwrap_err();
        assert_eq!(e.kind, "gateway_credentials_unavailable", "an unresolvable configured ref fails closed: {e}");
        assert!(e.message.contains("MYTOK"), "{e}");
        i.config = None;
        i.port_flag = Some("99999".into());
        assert_eq!(resolve(&i).unwrap_err().message, config::INVALID_PORT);
        i.port_flag = None;
        i.url_flag = Some("http://x".into());
        i.token_flag = Some("t".into());
        assert!(resolve(&i).unwrap_err().message.starts_with("Invalid --url \"http://x\""));
        // Plaintext ws:// only where the reference allows it.
        for (url, allowed) in [
            ("ws://example.com:1234", false),
            ("ws://8.8.8.8:1234", false),
            ("ws://myhost:1", false),
            ("ws://[2001:db8::1]:1", false),
            ("wss://example.com", true),
            ("ws://127.0.0.1:18789", true),
            ("ws://localhost:1", true),
            ("ws://[::1]:1", true),
            ("ws://10.1.2.3:1", true),
            ("ws://192.168.1.5:1", true),
            ("ws://172.20.0.1:1", true),
            ("ws://100.101.102.103:1", true),
            ("ws://169.254.1.1:1", true),
            ("ws://gw.local:1", true),
            ("ws://box.tail1234.ts.net:1", true),
        ] {
            i.url_flag = Some(url.into());
            let r = resolve(&i);
            assert_eq!(r.is_ok(), allowed, "{url}: {r:?}");
            if !allowed {
                assert!(r.unwrap_err().message.starts_with("SECURITY ERROR: Gateway URL"), "{url}");
            }
        }
    }

    #[test]
    fn messages_name_the_target_and_the_fix() {
        let mut i = base();
        i.env_port = Some("3335".into());
        let t = resolve(&i).unwrap();
        let m = unreachable_message(&t, "ECONNREFUSED", &i.config_path);
        assert!(m.starts_with("Gateway not reachable at ws://127.0.0.1:3335 (ECONNREFUSED)."), "{m}");
        assert!(m.contains("Source: local loopback (port from OPENCLAW_GATEWAY_PORT)") && m.contains("--port"), "{m}");
        let none = refusal_message(&t, "NOT_PAIRED", "device identity required", Some("DEVICE_IDENTITY_REQUIRED"));
        assert!(none.contains("found no credentials") && none.contains("--password"), "{none}");
        i.token_flag = Some("x".into());
        let t = resolve(&i).unwrap();
        let m = refusal_message(&t, "INVALID_REQUEST", "unauthorized: gateway token mismatch", Some("AUTH_TOKEN_MISMATCH"));
        assert!(m.contains("the credentials from --token") && m.contains("clawgate auth-token"), "{m}");
    }
}
