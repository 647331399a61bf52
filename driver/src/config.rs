//! The config file at runtime, for both shells: loading (with `$include`s), SecretRef IO,
//! startup settings, the file watcher, hot reload and restart decisions carried out, config
//! writes and `secrets.reload`. Every decision is the core's (`config_file`, `settings`,
//! `reload`, `secrets`); this module reads and writes files and runs secret commands.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::unix_ms;
use clawgate_core::Reply;
use clawgate_core::auth::Secret;
use clawgate_core::config::StartupError;
use clawgate_core::config::file::{self as config_file, ConfigError, ConfigWrite, IncludeReader, LoadedConfig};
use clawgate_core::config::reload::secrets_reload_reply;
use clawgate_core::config::reload::{self, Debouncer, Due, Fingerprint, Plan};
use clawgate_core::config::secrets::{self, SecretError, SecretInput, SecretIo};
use clawgate_core::config::settings::{self, CliInputs, EnvInputs, Inputs, Resolved, ResolvedSecrets};
use clawgate_core::gateway::Hub;
use serde_json::json;

use crate::rt::Runtime;
use crate::state;

/// How often the watched files are checked.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

fn env_nonblank(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The environment inputs of the settings decisions.
pub fn env_inputs() -> EnvInputs {
    EnvInputs {
        port: env_nonblank("OPENCLAW_GATEWAY_PORT"),
        token: env_nonblank("OPENCLAW_GATEWAY_TOKEN"),
        password: env_nonblank("OPENCLAW_GATEWAY_PASSWORD"),
        profile: env_nonblank("OPENCLAW_PROFILE"),
        limits: clawgate_core::limits::LIMIT_VARIABLES
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_string(), v)))
            .collect(),
    }
}

pub(crate) struct FsIncludes;

impl IncludeReader for FsIncludes {
    fn read(&mut self, path: &Path) -> Result<String, String> {
        let bytes = state::read_regular(path, config_file::MAX_INCLUDE_BYTES).map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
    }
    fn canonical(&mut self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }
}

fn include_roots() -> Vec<PathBuf> {
    env_nonblank("OPENCLAW_INCLUDE_ROOTS").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default()
}

/// Read and load the config file; `Ok(None)` when it does not exist. The hash is of the file's
/// bytes.
pub fn load_file(path: &str) -> Result<Option<(LoadedConfig, String)>, ConfigError> {
    // Only a regular file, at most 2 MiB: a FIFO, a symlink to /dev/zero or a huge file is an
    // error (the reload is skipped, the running config stays), never a hang or a flood.
    let bytes = match state::read_regular(Path::new(path), config_file::MAX_INCLUDE_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::Include { file: path.to_string(), message: format!("cannot read: {e}") }),
    };
    let text = String::from_utf8_lossy(&bytes);
    let env = |n: &str| std::env::var(n).ok();
    let cfg = config_file::load(path, &text, &env, &mut FsIncludes, &include_roots())?;
    Ok(Some((cfg, config_file::file_hash(&bytes))))
}

/// SecretRef IO: process environment, private files, secret commands with a timeout.
pub struct ShellSecretIo;

impl SecretIo for ShellSecretIo {
    /// The process environment, then `<stateDir>/.env` (config-auth-reload §1.3: a lower
    /// source that never overrides the process's).
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty()).or_else(|| {
            let path = Path::new(&state::state_dir()).join(".env");
            let bytes = state::read_regular(&path, 4 * 1024 * 1024).ok()?;
            clawgate_core::secrets::dotenv::parse(&String::from_utf8_lossy(&bytes))
                .into_iter()
                .rev()
                .find(|a| a.name == name)
                .map(|a| a.value)
        })
    }

    fn store(&mut self, name: &str) -> Option<String> {
        crate::secrets::lookup(&state::state_dir(), name)
    }

    fn read_private_file(&mut self, path: &str, max: usize) -> Result<String, String> {
        let md = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
        if !md.is_file() {
            return Err(format!("{path} is not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            secrets::check_file_mode(path, md.mode())?;
        }
        let bytes = state::read_regular(Path::new(path), max).map_err(|e| format!("{path}: {e}"))?;
        String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"))
    }

    fn run(&mut self, command: &str, args: &[String], stdin: &str, timeout: Duration, max: usize) -> Result<String, String> {
        use std::process::{Command, Stdio};
        if !Path::new(command).is_absolute() {
            return Err(format!("exec provider command must be an absolute path (got {command})"));
        }
        let mut child = Command::new(command)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {command}: {e}"))?;
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin.as_bytes());
        }
        let mut out = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(o) = out.as_mut() {
                let _ = o.take(max as u64 + 1).read_to_end(&mut buf);
            }
            buf
        });
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{command} timed out after {} ms", timeout.as_millis()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(e.to_string()),
            }
        };
        let buf = reader.join().unwrap_or_default();
        if buf.len() > max {
            return Err(format!("{command} wrote more than {max} bytes"));
        }
        if !status.success() {
            return Err(format!("{command} exited with {status}"));
        }
        String::from_utf8(buf).map_err(|_| format!("{command} wrote non-UTF-8 output"))
    }
}

/// Resolve the gateway's SecretInputs (strict: any failure fails the whole resolution).
pub fn resolve_secrets(cfg: &LoadedConfig) -> Result<ResolvedSecrets, SecretError> {
    let providers = secrets::providers(&cfg.resolved).map_err(SecretError)?;
    let mut io = ShellSecretIo;
    let mut one = |s: Option<&SecretInput>| s.map(|s| secrets::resolve(s, &providers, &mut io)).transpose();
    let g = &cfg.gateway;
    let mut out = ResolvedSecrets {
        token: one(g.auth_token.as_ref())?,
        password: one(g.auth_password.as_ref())?,
        remote_token: one(g.remote_token.as_ref())?,
        remote_password: one(g.remote_password.as_ref())?,
        api: Default::default(),
        degraded: 0,
    };
    // Provider keys and the hooks token: a failure degrades that feature only (its requests
    // answer a clear error); the gateway keeps its control plane.
    for (ptr, input) in clawgate_core::config::api::secret_fields(&cfg.resolved) {
        match secrets::resolve(&input, &providers, &mut io) {
            Ok(s) => {
                out.api.insert(ptr, s);
            }
            Err(e) => {
                out.degraded += 1;
                tracing::warn!("[SECRETS_DEGRADED] {} unavailable: {e}", ptr.trim_start_matches('/').replace('/', "."));
            }
        }
    }
    Ok(out)
}

fn can_bind(ip: std::net::IpAddr) -> bool {
    std::net::TcpListener::bind(std::net::SocketAddr::new(ip, 0)).is_ok()
}

/// The config-related state of a running gateway.
pub struct ConfigRuntime {
    pub cli: CliInputs,
    pub env: EnvInputs,
    pub state_dir: String,
    pub path: String,
    /// The config the gateway runs with (the diff baseline), and its file hash.
    pub applied: Option<(LoadedConfig, String)>,
    pub kept_token: Option<Secret>,
    /// The address the gateway listens on now.
    pub port: u16,
    pub bind: String,
    /// Fingerprint of the watched files taken *before* `applied` was read: an edit that lands
    /// while a load is in flight differs from it and is evaluated again, never lost (§6.2).
    pub baseline: Fingerprint,
    /// `config validate`: decide without side effects (no kept token created, no temp files
    /// removed).
    pub dry_run: bool,
    /// Unused config keys already reported (each is logged once per process).
    pub unused_reported: std::collections::BTreeSet<String>,
}

impl ConfigRuntime {
    /// Log, once per key and process, the keys of `cfg` that the reference knows and clawgate
    /// does not read: they are kept in the file and have no effect here.
    pub fn report_unused(&mut self, cfg: &LoadedConfig) {
        let new: Vec<&str> = cfg.unused.iter().filter(|k| !self.unused_reported.contains(*k)).map(String::as_str).collect();
        if new.is_empty() || self.dry_run {
            return;
        }
        tracing::info!("config keys that clawgate does not use (kept as they are, no effect here): {}", new.join(", "));
        self.unused_reported.extend(new.into_iter().map(String::from));
    }

    /// Decide settings for `cfg` (`listen_fixed`: keep the current port and bind, as hot reloads
    /// must). Creates the kept token when token auth needs it.
    pub fn decide(
        &mut self,
        cfg: Option<&(LoadedConfig, String)>,
        secrets: ResolvedSecrets,
        listen_fixed: bool,
    ) -> Result<Resolved, StartupError> {
        let mut cli = self.cli.clone();
        if listen_fixed {
            cli.port = Some(self.port.to_string());
            cli.bind = Some(self.bind.clone());
        }
        let mut inputs = Inputs {
            cli,
            env: self.env.clone(),
            config: cfg.map(|(c, _)| c),
            secrets,
            kept_token: self.kept_token.clone(),
            can_bind: Some(can_bind),
            reload: listen_fixed,
        };
        let mut r = settings::resolve(&inputs)?;
        if r.needs_kept_token && self.dry_run {
            // Validation only: an existing kept token is used, a missing one is not created.
            let token = state::read_token(&self.state_dir).ok().flatten().unwrap_or_else(|| "(created on first run)".to_string());
            inputs.kept_token = Some(Secret::new(token));
            r = settings::resolve(&inputs)?;
        } else if r.needs_kept_token {
            let token = state::load_or_create_token(&self.state_dir).map_err(|e| {
                StartupError::failure(format!("Cannot keep the gateway token in {}: {e}", state::token_path(&self.state_dir).display()))
            })?;
            self.kept_token = Some(Secret::new(token));
            inputs.kept_token = self.kept_token.clone();
            r = settings::resolve(&inputs)?;
        }
        if r.settings.auth.mode == clawgate_core::auth::AuthMode::TrustedProxy {
            r.settings.local_interfaces = crate::net::local_interfaces();
        }
        if let Some((c, hash)) = cfg {
            r.settings.config_file_hash = Some(hash.clone());
            r.settings.config_included = c.included.clone();
            r.settings.config_warnings = r.warnings.clone();
        }
        Ok(r)
    }
}

/// Load, resolve secrets and decide, for startup. Errors are the reference's startup failures.
pub fn startup(rt: &mut ConfigRuntime) -> Result<Resolved, StartupError> {
    let main_before = fingerprint(std::slice::from_ref(&rt.path));
    let removed = if rt.dry_run { 0 } else { state::remove_stale_temp_files(Path::new(&rt.path)) };
    if removed > 0 {
        tracing::info!("removed {removed} temp file(s) left by an interrupted config write");
    }
    let cfg = load_file(&rt.path).map_err(|e| StartupError::config(e.to_string()))?;
    let secrets = match &cfg {
        Some((c, _)) => resolve_secrets(c).map_err(|e| {
            tracing::error!("[SECRETS_DEGRADED] gateway auth secret unavailable: {e}");
            StartupError::failure(format!("Gateway failed to start: Startup failed: required secrets are unavailable. ({e})"))
        })?,
        None => ResolvedSecrets::default(),
    };
    let r = rt.decide(cfg.as_ref(), secrets, false)?;
    if let Some((c, _)) = &cfg {
        rt.report_unused(c);
    }
    rt.port = r.port;
    rt.bind = r.plan.mode.as_str().to_string();
    rt.applied = cfg;
    rt.baseline = baseline(&main_before, std::slice::from_ref(&rt.path), &watched_paths_of(rt));
    Ok(r)
}

/// What the watcher asks of the daemon's main loop.
pub enum Control {
    /// Restart into these settings (new listeners if the address changed).
    Restart(Box<Resolved>, Vec<String>),
}

/// Is a supervisor (systemd) going to restart us if we exit?
pub fn supervised(flag: bool) -> bool {
    flag || ["INVOCATION_ID", "OPENCLAW_SYSTEMD_UNIT", "SYSTEMD_EXEC_PID"].iter().any(|k| env_nonblank(k).is_some())
}

fn fingerprint(paths: &[String]) -> Fingerprint {
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        match std::fs::metadata(p) {
            Ok(md) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt;
                    out.extend([md.len(), md.mtime() as u64, md.mtime_nsec() as u64, md.ino()]);
                }
                #[cfg(not(unix))]
                out.push(md.len());
            }
            Err(_) if i == 0 => return None,
            Err(_) => out.push(u64::MAX),
        }
    }
    Some(out)
}

fn watched_paths_of(c: &ConfigRuntime) -> Vec<String> {
    let mut v = vec![c.path.clone()];
    if let Some((l, _)) = &c.applied {
        v.extend(l.included.iter().cloned());
    }
    v
}

fn watched_paths(cfg: &Mutex<ConfigRuntime>) -> Vec<String> {
    watched_paths_of(&cfg.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The fingerprint to compare later edits against, after a load that started when the files
/// looked like `before` (over `old_paths`). If the load changed the set of watched files
/// (includes added or removed), the new files are fingerprinted now but the files that were
/// watched before keep their pre-load values, so an edit made during the load still shows.
fn baseline(before: &Fingerprint, old_paths: &[String], new_paths: &[String]) -> Fingerprint {
    if old_paths == new_paths {
        return before.clone();
    }
    let before = before.as_ref()?;
    let mut now = fingerprint(new_paths)?;
    let per_path = before.len() / old_paths.len().max(1);
    for (i, p) in new_paths.iter().enumerate() {
        if let Some(j) = old_paths.iter().position(|o| o == p) {
            now[i * per_path..(i + 1) * per_path].copy_from_slice(&before[j * per_path..(j + 1) * per_path]);
        }
    }
    Some(now)
}

/// Watch the config file and apply changes (§6.2): poll, settle + debounce, load, plan, act.
pub async fn watch<R: Runtime>(
    rt: R,
    hub: Arc<Hub>,
    cfg: Arc<Mutex<ConfigRuntime>>,
    control: futures_channel::mpsc::UnboundedSender<Control>,
    evaluated: futures_channel::mpsc::UnboundedSender<()>,
) {
    let (mut paths, start) = {
        let c = cfg.lock().unwrap_or_else(|p| p.into_inner());
        (watched_paths_of(&c), c.baseline.clone())
    };
    let mut deb = Debouncer::new(start);
    loop {
        let next = deb.poll_timeout().map_or(Instant::now() + WATCH_INTERVAL, |t| t.min(Instant::now() + WATCH_INTERVAL));
        rt.sleep_until(next).await;
        let now = Instant::now();
        deb.observe(now, fingerprint(&paths));
        match deb.handle_timeout(now) {
            Due::Nothing => {
                if deb.missing_retries() > 0 && deb.poll_timeout().is_some() {
                    tracing::info!("config reload retry ({}/{}): config file not found", deb.missing_retries(), reload::MISSING_RETRIES);
                }
            }
            Due::SkipMissing => tracing::warn!("config reload skipped (config file not found)"),
            Due::Evaluate => {
                let before = fingerprint(&paths);
                let (c2, h2) = (cfg.clone(), hub.clone());
                let action = rt.spawn_blocking(move || evaluate(&h2, &c2)).await;
                if let Some(a) = action {
                    let _ = control.unbounded_send(a);
                }
                // Whoever follows the settings (the cron timer: heartbeats, `cron.enabled`)
                // looks again.
                let _ = evaluated.unbounded_send(());
                let new_paths = watched_paths(&cfg);
                deb = Debouncer::new(baseline(&before, &paths, &new_paths));
                paths = new_paths;
            }
        }
    }
}

/// Evaluate the config file once (blocking: reads files, resolves secrets).
fn evaluate(hub: &Hub, cfg: &Mutex<ConfigRuntime>) -> Option<Control> {
    let path = cfg.lock().unwrap_or_else(|p| p.into_inner()).path.clone();
    let new = match load_file(&path) {
        Ok(Some(n)) => n,
        Ok(None) => {
            tracing::warn!("config reload skipped (config file not found)");
            hub.record_config_reload("skipped", &[], unix_ms());
            return None;
        }
        Err(e) => {
            tracing::warn!("config reload skipped (invalid config): {}", e.one_line());
            hub.record_config_reload("failed", &[], unix_ms());
            return None;
        }
    };
    let mut rt = cfg.lock().unwrap_or_else(|p| p.into_inner());
    rt.report_unused(&new.0);
    let empty = LoadedConfig {
        source: json!({}),
        resolved: json!({}),
        gateway: Default::default(),
        included: Vec::new(),
        warnings: Vec::new(),
        unused: Vec::new(),
    };
    let old = rt.applied.as_ref().map(|(c, _)| c.clone()).unwrap_or(empty);
    let plan = reload::plan(&old, &new.0);
    let changed: Vec<String> = reload::diff_paths(&old.source, &new.0.source);
    if !changed.is_empty() {
        tracing::info!("config change detected; evaluating reload ({})", changed.join(", "));
    }
    match plan {
        Plan::Unchanged => {
            crate::logfile::log_file().retarget(&new.0.resolved, rt.port, rt.env.profile.as_deref());
            rt.applied = Some(new);
            None
        }
        Plan::Disabled { .. } => {
            tracing::info!("config reload disabled (gateway.reload.mode=off)");
            hub.record_config_reload("skipped", &changed, unix_ms());
            None
        }
        Plan::SwapOnly { .. } | Plan::Hot { .. } => {
            let (hot, deferred) = match &plan {
                Plan::Hot { hot, deferred } => (hot.clone(), deferred.clone()),
                _ => (Vec::new(), Vec::new()),
            };
            let secrets = match resolve_secrets(&new.0) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("config reload failed: {e}");
                    hub.record_config_reload("failed", &changed, unix_ms());
                    return None;
                }
            };
            match rt.decide(Some(&new), secrets, true) {
                Ok(r) => {
                    let closed = hub.replace_settings(r.settings);
                    hub.record_config_reload("applied", &changed, unix_ms());
                    crate::logfile::log_file().retarget(&new.0.resolved, rt.port, rt.env.profile.as_deref());
                    rt.applied = Some(new);
                    if !hot.is_empty() {
                        tracing::info!("config hot reload applied ({}); {closed} socket(s) closed", hot.join(", "));
                    }
                    if !deferred.is_empty() {
                        tracing::warn!("config change needs a gateway restart, not applied in reload mode hot ({})", deferred.join(", "));
                    }
                }
                Err(e) => {
                    tracing::warn!("config reload failed: {}", e.message);
                    hub.record_config_reload("failed", &changed, unix_ms());
                }
            }
            None
        }
        Plan::Restart { reasons } => {
            // In process, under a supervisor too: exiting for systemd to restart us would cost
            // its RestartSec of downtime; the new listeners are bound before the old ones close.
            tracing::info!("config change requires gateway restart ({})", reasons.join(", "));
            let secrets = match resolve_secrets(&new.0) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("config reload failed: {e}; keeping the running config");
                    hub.record_config_reload("failed", &changed, unix_ms());
                    return None;
                }
            };
            match rt.decide(Some(&new), secrets, false) {
                Ok(r) => {
                    rt.applied = Some(new);
                    hub.record_config_reload("restart", &reasons, unix_ms());
                    Some(Control::Restart(Box::new(r), reasons))
                }
                Err(e) => {
                    tracing::error!("restart refused: {}; the gateway keeps serving its current config", e.message);
                    hub.record_config_reload("failed", &reasons, unix_ms());
                    None
                }
            }
        }
    }
}

/// `config.get` (blocking file IO): the file as it is on disk now beside the applied config.
pub fn read_config(hub: &Hub) -> Reply {
    let path = hub.info().config_path.clone();
    let settings = hub.settings();
    use clawgate_core::config::view::{FileOnDisk, get_result};
    let v = match state::read_regular(Path::new(&path), config_file::MAX_INCLUDE_BYTES) {
        Ok(bytes) => get_result(&settings, &path, FileOnDisk::Read(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => get_result(&settings, &path, FileOnDisk::Missing),
        Err(e) => {
            let e = clawgate_core::wire::ErrorShape::unavailable(format!("config.get: cannot read {path}: {e}"));
            return Reply::err(e);
        }
    };
    Reply::Ok(Some(v))
}

/// `config.patch` / `config.apply` / `config.set` (blocking file IO): plan the write in the core,
/// then write atomically (temp file in the same dir, fsync, rename; the file's mode is kept),
/// then tell read-scoped clients (`config.changed`, operator §2.4). The watcher applies the new
/// file through the normal reload path.
pub fn write_config(hub: &Hub, cfg: &Mutex<ConfigRuntime>, w: &ConfigWrite) -> Reply {
    // Read → baseHash check → write is one critical section: two writers holding the same
    // baseHash must not both succeed (the second one's hash is stale once the first lands).
    static WRITE_LOCK: Mutex<()> = Mutex::new(());
    let _serial = WRITE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let path = cfg.lock().unwrap_or_else(|p| p.into_inner()).path.clone();
    let current = match state::read_regular(Path::new(&path), config_file::MAX_INCLUDE_BYTES) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return w.io_failed("read", &path, &e),
    };
    let text = match config_file::plan_write(&path, current.as_deref(), w) {
        Ok(t) => t,
        Err(r) => return r.reply(w.kind),
    };
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o600)
    };
    #[cfg(not(unix))]
    let mode = 0o600;
    if let Err(e) = state::write_atomic(Path::new(&path), text.as_bytes(), mode) {
        return w.io_failed("write", &path, &e);
    }
    tracing::info!("config written by {} ({path})", w.method());
    let event = ConfigWrite::changed_event(&path, text.as_bytes(), crate::session::unix_ms());
    hub.broadcast("config.changed", Some(&event), false);
    w.written(&path, text.as_bytes())
}

/// Does the applied config reference the store entry `name`?
pub fn references_store_entry(cfg: &Mutex<ConfigRuntime>, name: &str) -> bool {
    let rt = cfg.lock().unwrap_or_else(|p| p.into_inner());
    rt.applied.as_ref().is_some_and(|(c, _)| clawgate_core::config::settings::references_store_entry(c, name))
}

/// `secrets.reload` (blocking): re-resolve the applied config's secrets; swap only if all
/// resolve. When the swap invalidates the caller's own socket (it rotated the token it connected
/// with), the close is returned instead of sent, so the caller still gets its reply first (§7.3).
pub fn reload_secrets(hub: &Hub, cfg: &Mutex<ConfigRuntime>, caller: &str) -> (Reply, Option<(u16, &'static str)>) {
    let mut rt = cfg.lock().unwrap_or_else(|p| p.into_inner());
    let applied = rt.applied.clone();
    let secrets = match applied.as_ref().map(|(c, _)| resolve_secrets(c)).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            tracing::warn!("secrets.reload failed: {e}");
            return (secrets_reload_reply(Err(e.to_string())), None);
        }
    };
    let degraded = secrets.degraded;
    match rt.decide(applied.as_ref(), secrets, true) {
        Ok(r) => {
            let swap = hub.swap_settings(r.settings, Some(caller));
            (secrets_reload_reply(Ok(r.warnings.len() + degraded)), swap.deferred_close)
        }
        Err(e) => {
            tracing::warn!("secrets.reload failed: {}", e.message);
            (secrets_reload_reply(Err(e.message)), None)
        }
    }
}
