//! From flags, environment and the config file to the running gateway's settings: the startup
//! decisions of config-auth-reload §3–§5 (tables A–G) as one pure function, used at startup, on
//! every hot reload and on in-process restarts, so all three apply the same rules.

use serde_json::{Value, json};

use crate::auth::ingress::IpNet;
use crate::auth::{AuthMode, AuthSettings, Secret};
use crate::config::file::LoadedConfig;
use crate::config::secrets::SecretInput;
use crate::config::{self, AuthInputs, BindMode, BindPlan, StartupError};
use crate::limits::Limits;
use std::net::IpAddr;
use std::sync::Arc;

/// Listener-level facts used by status and probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenInfo {
    pub bind_mode: String,
    pub bind_host: String,
    pub port: u16,
}

/// The effective settings of the running gateway (swapped atomically on reload).
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub auth: AuthSettings,
    pub limits: Limits,
    pub trusted_proxies: Vec<IpNet>,
    pub allow_real_ip_fallback: bool,
    pub listen: ListenInfo,
    /// The effective config as JSON, secrets redacted (for `config.get`).
    pub config_redacted: Value,
    /// Whether a config file exists at `ServerInfo::config_path`.
    pub config_exists: bool,
    pub hot_reload_active: bool,
    /// `gateway.controlUi.allowedOrigins`.
    pub control_ui_allowed_origins: Vec<String>,
    /// `gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback`.
    pub host_header_origin_fallback: bool,
    /// `gateway.nodes.pairing.autoApproveLocal`: devices on the gateway host pair silently.
    pub pairing_auto_approve_local: bool,
    /// `gateway.auth.trustedProxy` (trusted-proxy auth mode).
    pub trusted_proxy: Option<crate::config::file::TrustedProxyConfig>,
    /// The HTTP API and agent configuration (agents, providers, endpoints, …).
    pub api: Arc<crate::config::api::ApiConfig>,
    /// The host's own interface addresses (§4.7 step 3), filled in by the shell; `None` when
    /// they could not be enumerated.
    pub local_interfaces: Option<Vec<IpAddr>>,
    /// Hash of the authored config file bytes (`config.get.hash`, the `baseHash` of writes).
    pub config_file_hash: Option<String>,
    /// Files `$include`d by the config.
    pub config_included: Vec<String>,
    /// Non-fatal config problems (`config.get.warnings`).
    pub config_warnings: Vec<String>,
    /// [`GatewaySettings::applied_config_hash`], computed on first use.
    applied_hash: AppliedHash,
}

/// The cached hash of `config_redacted`. A clone starts empty: a cloned settings value may have
/// its config changed before its first use.
#[derive(Debug, Default)]
struct AppliedHash(std::sync::OnceLock<String>);

impl Clone for AppliedHash {
    fn clone(&self) -> Self {
        AppliedHash::default()
    }
}

impl GatewaySettings {
    /// The hash of the applied config (`hello-ok.snapshot.appliedConfigHash`, `config.get`):
    /// computed once per settings value instead of serializing the config on every handshake.
    /// `config_redacted` is not changed once settings are in use (they are swapped whole).
    pub fn applied_config_hash(&self) -> &str {
        self.applied_hash.0.get_or_init(|| crate::config::file::config_hash(&self.config_redacted))
    }

    /// Every secret value the gateway holds (shared token and password, hooks token, provider
    /// and embeddings keys): what must never leave in a log line (`logs.tail`).
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> =
            [self.auth.token.as_ref(), self.auth.password.as_ref()].into_iter().flatten().map(|s| s.expose().to_string()).collect();
        out.extend(self.api.hooks.as_ref().map(|h| h.token.expose().to_string()));
        out.extend(self.api.providers.values().filter_map(|p| p.api_key.as_ref()).map(|k| k.expose().to_string()));
        out.extend(self.api.embeddings.as_ref().and_then(|e| e.api_key.as_ref()).map(|k| k.expose().to_string()));
        out
    }

    /// Settings for `auth` with default limits, loopback listener and no config file.
    pub fn new(auth: AuthSettings, listen: ListenInfo) -> Self {
        let config_redacted = json!({"gateway": {"port": listen.port, "bind": listen.bind_mode, "auth": {"mode": auth.mode.as_str()}}});
        GatewaySettings {
            auth,
            limits: Limits::default(),
            trusted_proxies: Vec::new(),
            allow_real_ip_fallback: false,
            listen,
            config_redacted,
            config_exists: false,
            hot_reload_active: false,
            control_ui_allowed_origins: Vec::new(),
            host_header_origin_fallback: false,
            pairing_auto_approve_local: true,
            trusted_proxy: None,
            local_interfaces: Some(Vec::new()),
            api: Arc::new(crate::config::api::ApiConfig::default()),
            config_file_hash: None,
            config_included: Vec::new(),
            config_warnings: Vec::new(),
            applied_hash: AppliedHash::default(),
        }
    }
}

/// Flags of `clawgate run` that feed the decisions.
#[derive(Debug, Clone, Default)]
pub struct CliInputs {
    pub port: Option<String>,
    pub bind: Option<String>,
    pub custom_bind_host: Option<String>,
    pub auth: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
    pub allow_unconfigured: bool,
}

/// Environment variables that feed the decisions.
#[derive(Debug, Clone, Default)]
pub struct EnvInputs {
    pub port: Option<String>,
    pub token: Option<String>,
    pub password: Option<String>,
    pub profile: Option<String>,
    /// The limit overrides that are set ([`crate::limits::LIMIT_VARIABLES`]), name and value.
    pub limits: Vec<(String, String)>,
}

/// The config file's secrets, already resolved by the shell (SecretRefs need IO).
#[derive(Debug, Clone, Default)]
pub struct ResolvedSecrets {
    pub token: Option<Secret>,
    pub password: Option<Secret>,
    pub remote_token: Option<Secret>,
    pub remote_password: Option<Secret>,
    /// The API's secrets (provider keys, hooks token) by JSON pointer
    /// ([`crate::config::api::secret_fields`]); a failed one is left out.
    pub api: std::collections::BTreeMap<String, Secret>,
    /// How many of those failed (that feature degrades; each counts as a reload warning).
    pub degraded: usize,
}

/// Everything the decisions read.
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    pub cli: CliInputs,
    pub env: EnvInputs,
    pub config: Option<&'a LoadedConfig>,
    pub secrets: ResolvedSecrets,
    /// A token kept in the state dir, used when token auth has no configured token.
    pub kept_token: Option<Secret>,
    /// Does the host have this address (custom binds)?
    pub can_bind: Option<fn(std::net::IpAddr) -> bool>,
    /// A reload of a running gateway, not a startup: origins are seeded only when the config
    /// leaves `allowedOrigins` out, so an explicit `allowedOrigins: []` on a non-loopback bind
    /// is refused and the running list stays (§5.2).
    pub reload: bool,
}

/// The outcome: settings plus what the shell must do.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub settings: GatewaySettings,
    pub plan: BindPlan,
    pub port: u16,
    /// Token auth without a configured token: the shell must provide the kept token (and call
    /// again with `kept_token`).
    pub needs_kept_token: bool,
    /// Origins seeded for a non-loopback bind (runtime only, never written).
    pub seeded_origins: Option<Vec<String>>,
    pub warnings: Vec<String>,
}

/// Blocked by the mode guard (§4.3 step 2): an existing config must say `gateway.mode: local`.
fn mode_guard(cfg: &LoadedConfig, allow_unconfigured: bool) -> Result<(), StartupError> {
    if allow_unconfigured {
        return Ok(());
    }
    match cfg.gateway.mode.as_deref() {
        Some("local") => Ok(()),
        Some(other) => Err(StartupError::config(format!(
            "Gateway start blocked: set gateway.mode=local (current: {other}) or pass --allow-unconfigured."
        ))),
        None => Err(StartupError::config(
            "Gateway start blocked: existing config is missing gateway.mode. Treat this as suspicious or clobbered config. Set gateway.mode=local, or pass --allow-unconfigured.",
        )),
    }
}

fn plain(s: &Option<Secret>) -> Option<String> {
    s.as_ref().map(|x| x.expose().to_string())
}

/// Decision table G: seed `allowedOrigins` for non-loopback binds.
pub fn seed_origins(mode: BindMode, port: u16, custom_host: Option<&str>, origins: &[String], host_fallback: bool) -> Option<Vec<String>> {
    let needs = matches!(mode, BindMode::Lan | BindMode::Tailnet | BindMode::Custom | BindMode::Auto);
    let has = origins.iter().any(|o| !o.trim().is_empty());
    if !needs || has || host_fallback {
        return None;
    }
    let mut out = vec![format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}")];
    if mode == BindMode::Custom {
        if let Some(h) = custom_host.map(str::trim).filter(|h| !h.is_empty()) {
            let o = format!("http://{h}:{port}");
            if !out.contains(&o) {
                out.push(o);
            }
        }
    }
    Some(out)
}

/// The config as `config.get` shows it: every plaintext string at a path the schema marks
/// `sensitive` replaced by the redaction sentinel (references stay: they are not secrets).
pub fn redact(config: &Value) -> Value {
    let mut v = config.clone();
    at_sensitive_paths(&mut v, &mut |slot| *slot = json!(REDACTED));
    v
}

/// The plaintext secrets of a config (the strings [`redact`] hides).
pub fn sensitive_values(config: &Value) -> Vec<String> {
    let mut v = config.clone();
    let mut out = Vec::new();
    at_sensitive_paths(&mut v, &mut |slot| {
        if let Some(s) = slot.as_str().filter(|s| !s.is_empty() && *s != REDACTED) {
            out.push(s.to_string());
        }
    });
    out
}

/// Call `f` on every string at a path the schema marks `sensitive`.
fn at_sensitive_paths(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    for path in crate::config::schema::sensitive_paths() {
        let segs: Vec<&str> = path.split('.').collect();
        visit_at(v, &segs, f);
    }
}

/// Visit the strings at `segs` below `v` (`*`: every key of a map; `key[]`: every item).
fn visit_at(v: &mut Value, segs: &[&str], f: &mut dyn FnMut(&mut Value)) {
    let Some((first, rest)) = segs.split_first() else {
        if v.is_string() {
            f(v);
        }
        return;
    };
    let (key, items) = match first.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (*first, false),
    };
    let Value::Object(o) = v else { return };
    let children: Vec<&mut Value> = if key == "*" { o.values_mut().collect() } else { o.get_mut(key).into_iter().collect() };
    for child in children {
        match (items, child) {
            (true, Value::Array(a)) => a.iter_mut().for_each(|item| visit_at(item, rest, f)),
            (true, _) => {}
            (false, c) => visit_at(c, rest, f),
        }
    }
}

/// What `config.get` puts in place of a plaintext secret.
pub const REDACTED: &str = "__OPENCLAW_REDACTED__";

/// Decide the settings (startup gates E, security assertion F, seeding G).
/// §4.3 step 1: malformed flag values fail (exit 1) before the mode guard looks at the config.
fn check_flag_values(cli: &CliInputs) -> Result<(), StartupError> {
    if cli.port.is_some() {
        config::resolve_port(cli.port.as_deref(), None, None, None)?;
    }
    if cli.bind.is_some() {
        config::resolve_bind_mode(cli.bind.as_deref(), None)?;
    }
    if let Some(m) = cli.auth.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        crate::auth::AuthMode::parse(m).ok_or_else(|| StartupError::failure(config::INVALID_AUTH))?;
    }
    Ok(())
}

pub fn resolve(inputs: &Inputs<'_>) -> Result<Resolved, StartupError> {
    let cfg = inputs.config;
    check_flag_values(&inputs.cli)?;
    if let Some(c) = cfg {
        mode_guard(c, inputs.cli.allow_unconfigured)?;
    }
    let g = cfg.map(|c| c.gateway.clone()).unwrap_or_default();
    let port = config::resolve_port(inputs.cli.port.as_deref(), inputs.env.port.as_deref(), g.port, inputs.env.profile.as_deref())?;
    let limits = Limits::default().with_overrides(&inputs.env.limits).map_err(StartupError::config)?;
    let mode = config::resolve_bind_mode(inputs.cli.bind.as_deref(), g.bind.map(BindMode::as_str))?;
    let custom = inputs.cli.custom_bind_host.clone().or(g.custom_bind_host.clone());
    let can_bind = inputs.can_bind.unwrap_or(|_| true);
    let plan = config::resolve_bind_plan(mode, custom.as_deref(), can_bind)?;

    let cfg_auth = AuthInputs {
        mode: g.auth_mode.map(|m| m.as_str().to_string()),
        token: plain(&inputs.secrets.token),
        password: plain(&inputs.secrets.password),
    };
    let cli_auth = AuthInputs { mode: inputs.cli.auth.clone(), token: inputs.cli.token.clone(), password: inputs.cli.password.clone() };
    let env_auth = AuthInputs { mode: None, token: inputs.env.token.clone(), password: inputs.env.password.clone() };
    let remote = AuthInputs { mode: None, token: plain(&inputs.secrets.remote_token), password: plain(&inputs.secrets.remote_password) };
    let mut auth = config::resolve_auth(&cli_auth, &cfg_auth, &env_auth, &remote)?;
    // A configured SecretInput counts as configured even before it resolves (table E row 2).
    let needs_kept = config::startup_auth_gate(&auth, &plan)?;
    let mut warnings = cfg.map(|c| c.warnings.clone()).unwrap_or_default();
    if let Some(w) = env_port_host_warning(&inputs.cli, &inputs.env, &plan, port) {
        warnings.push(w);
    }
    if needs_kept {
        match &inputs.kept_token {
            Some(t) => auth.token = Some(t.clone()),
            None => {
                let mut settings = GatewaySettings::new(
                    AuthSettings { mode: auth.mode, token: None, password: None, rate_limit: g.rate_limit },
                    ListenInfo { bind_mode: plan.mode.as_str().into(), bind_host: plan.host.to_string(), port },
                );
                settings.limits = limits;
                return Ok(Resolved { settings, plan, port, needs_kept_token: true, seeded_origins: None, warnings });
            }
        }
    }
    // Table F (the rows that apply without Tailscale).
    if auth.mode == AuthMode::TrustedProxy {
        let tp = g.trusted_proxy.as_ref().ok_or_else(|| {
            StartupError::failure(
                "gateway auth mode is trusted-proxy, but no trustedProxy config was provided (set gateway.auth.trustedProxy)",
            )
        })?;
        if tp.user_header.trim().is_empty() {
            return Err(StartupError::failure(
                "gateway auth mode is trusted-proxy, but trustedProxy.userHeader is empty (set gateway.auth.trustedProxy.userHeader)",
            ));
        }
        if auth.token.is_some() {
            return Err(StartupError::failure(
                "gateway auth mode is trusted-proxy, but a shared token is also configured; remove gateway.auth.token / OPENCLAW_GATEWAY_TOKEN because trusted-proxy and token auth are mutually exclusive",
            ));
        }
        if g.trusted_proxies.is_empty() {
            return Err(StartupError::config(
                "gateway auth mode=trusted-proxy requires gateway.trustedProxies to be configured with at least one proxy IP",
            ));
        }
    }
    let origins_authored = cfg.is_some_and(|c| c.resolved.pointer("/gateway/controlUi/allowedOrigins").is_some());
    let seeded = if inputs.reload && origins_authored {
        None
    } else {
        seed_origins(plan.mode, port, custom.as_deref(), &g.allowed_origins, g.host_header_origin_fallback)
    };
    let origins = seeded.clone().unwrap_or_else(|| g.allowed_origins.clone());
    if g.control_ui_enabled
        && !config::is_loopback_host(&plan.host)
        && origins.iter().all(|o| o.trim().is_empty())
        && !g.host_header_origin_fallback
    {
        return Err(StartupError::config(
            "non-loopback Control UI requires gateway.controlUi.allowedOrigins (set explicit origins), or set gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback=true to use Host-header origin fallback mode",
        ));
    }
    if let Some(s) = &seeded {
        warnings.push(format!(
            "seeded gateway.controlUi.allowedOrigins {s:?} for bind={}; applied for this runtime without writing config; add other origins to gateway.controlUi.allowedOrigins if needed",
            plan.mode.as_str()
        ));
    }
    let listen = ListenInfo { bind_mode: plan.mode.as_str().into(), bind_host: plan.host.to_string(), port };
    let mut settings = GatewaySettings::new(
        AuthSettings { mode: auth.mode, token: auth.token, password: auth.password, rate_limit: g.rate_limit },
        listen,
    );
    settings.limits = limits;
    settings.trusted_proxies = g.trusted_proxies.clone();
    settings.allow_real_ip_fallback = g.allow_real_ip_fallback;
    settings.control_ui_allowed_origins = origins;
    settings.host_header_origin_fallback = g.host_header_origin_fallback;
    settings.pairing_auto_approve_local = g.pairing_auto_approve_local.unwrap_or(true);
    settings.trusted_proxy = g.trusted_proxy.clone();
    let api = crate::config::api::ApiConfig::from_config(cfg.map_or(&Value::Null, |c| &c.resolved), &inputs.secrets.api);
    warnings.extend(api.warnings.iter().cloned());
    settings.api = std::sync::Arc::new(api);
    if let Some(c) = cfg {
        settings.config_redacted = redact(&c.resolved);
        settings.config_exists = true;
        settings.hot_reload_active = c.gateway.reload_mode != crate::config::file::ReloadMode::Off;
    }
    Ok(Resolved { settings, plan, port, needs_kept_token: false, seeded_origins: seeded, warnings })
}

/// `OPENCLAW_GATEWAY_PORT=host:N` sets the port only: the listen address comes from `--bind` /
/// `gateway.bind`. Say so when the host part names another address than the one we listen on.
fn env_port_host_warning(cli: &CliInputs, env: &EnvInputs, plan: &BindPlan, port: u16) -> Option<String> {
    if cli.port.is_some() {
        return None;
    }
    let raw = env.port.as_deref()?;
    let host = config::env_port_host(raw)?;
    let host_is_loopback = host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| config::is_loopback_host(&ip));
    let plan_is_loopback = config::is_loopback_host(&plan.host);
    let same = host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip == plan.host) || (host_is_loopback && plan_is_loopback);
    (!same).then(|| {
        format!(
            "OPENCLAW_GATEWAY_PORT=\"{raw}\": listening on port {port} of {} (bind {}); the host part \"{host}\" is ignored: the listen address comes from --bind / gateway.bind",
            plan.host,
            plan.mode.as_str()
        )
    })
}

/// Does a `{source: "store"}` ref of this config use the store entry `name` (any provider
/// alias)? A store write to such a name re-resolves the secrets (`secrets.store.set|delete`).
pub fn references_store_entry(cfg: &LoadedConfig, name: &str) -> bool {
    let uses =
        |i: &SecretInput| matches!(i, SecretInput::Ref(r) if r.source == crate::config::secrets::SecretSource::Store && r.id == name);
    secret_inputs(cfg).iter().any(|(_, i)| i.is_some_and(uses))
        || crate::config::api::secret_fields(&cfg.resolved).iter().any(|(_, i)| uses(i))
}

/// The SecretInputs of a config that the gateway resolves (token/password/remote).
pub fn secret_inputs(cfg: &LoadedConfig) -> [(&'static str, Option<&SecretInput>); 4] {
    let g = &cfg.gateway;
    [
        ("gateway.auth.token", g.auth_token.as_ref()),
        ("gateway.auth.password", g.auth_password.as_ref()),
        ("gateway.remote.token", g.remote_token.as_ref()),
        ("gateway.remote.password", g.remote_password.as_ref()),
    ]
}
