//! Service lifecycle on a host (issue 15; config-auth-reload §9): `install`, `uninstall`,
//! `start`, `stop`, `restart` through the supervisor, the service half of `status`, the host
//! scan of `status --deep`, and `doctor [--fix]`. The wording and the decisions are
//! `clawgate_core::service`'s; this module reads files, runs `systemctl` and changes modes.
//!
//! Only systemd is driven here; the launchd plist and the Windows task are generated and
//! written (`install --platform launchd|windows`) for the operator to load.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use clawgate_core::cli::{DoctorArgs, InstallArgs, ServiceArgs, StopArgs};
use clawgate_core::service::report::{self, Finding, RuntimeView, ServiceView};
use clawgate_core::service::{ServiceSpec, platforms, unit};
use serde_json::{Value, json};

use crate::instance::{self, LockState};
use crate::rt::Runtime;
use crate::session::unix_ms;
use crate::state;

/// `systemctl`, or the program named by `CLAWGATE_SYSTEMCTL` (a host whose systemctl lives
/// elsewhere; the tests point it at a recorder, since no systemd runs as PID 1 here).
fn systemctl_program() -> String {
    std::env::var("CLAWGATE_SYSTEMCTL").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "systemctl".into())
}

/// What one `systemctl` call printed.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn systemctl<R: Runtime>(rt: &R, system: bool, args: &[&str]) -> Result<Ran, String> {
    let mut argv: Vec<String> = Vec::new();
    if !system {
        argv.push("--user".into());
    }
    argv.extend(args.iter().map(|s| s.to_string()));
    let program = systemctl_program();
    rt.spawn_blocking(move || {
        std::process::Command::new(&program)
            .args(&argv)
            .stdin(Stdio::null())
            .output()
            .map(|o| Ran {
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
            })
            .map_err(|e| format!("{program}: {e}"))
    })
    .await
}

/// Why the service manager cannot be asked (`None`: it can). "Failed to connect to bus" and
/// "not been booted with systemd" mean there is no systemd to talk to (a container, WSL1).
fn manager_unavailable(r: &Result<Ran, String>) -> Option<String> {
    match r {
        Err(e) => Some(e.clone()),
        Ok(r) if !r.ok && r.stdout.trim().is_empty() => Some(r.stderr.lines().next().unwrap_or("systemctl failed").trim().to_string()),
        Ok(_) => None,
    }
}

fn absolute(p: &str) -> String {
    std::path::absolute(p).map(|p| p.display().to_string()).unwrap_or_else(|_| p.to_string())
}

/// Where the unit of this profile lives: the user's `~/.config/systemd/user` (XDG) or
/// `/etc/systemd/system`.
pub fn unit_path(system: bool) -> PathBuf {
    let profile = std::env::var("OPENCLAW_PROFILE").ok();
    let name = unit::unit_file_name(profile.as_deref());
    if system {
        return Path::new("/etc/systemd/system").join(name);
    }
    let base = std::env::var("XDG_CONFIG_HOME").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| format!("{}/.config", state::home()));
    Path::new(&base).join("systemd/user").join(name)
}

fn unit_name() -> String {
    unit::unit_file_name(std::env::var("OPENCLAW_PROFILE").ok().as_deref())
}

/// The install the current config and environment ask for: the port `run` would resolve (the
/// same startup path, dry), absolute config path and state dir, this binary.
pub fn expected_spec(port_flag: Option<&str>, system: bool, user: Option<String>) -> Result<ServiceSpec, String> {
    let args = clawgate_core::cli::RunArgs { port: port_flag.map(str::to_string), ..Default::default() };
    let mut cfg = crate::daemon::config_runtime(&args).map_err(|e| e.message)?;
    cfg.dry_run = true;
    let resolved = crate::config::startup(&mut cfg).map_err(|e| e.message)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    Ok(ServiceSpec {
        profile: std::env::var("OPENCLAW_PROFILE").ok().filter(|p| !p.is_empty()),
        exe: exe.display().to_string(),
        port: resolved.port,
        config_path: absolute(&cfg.path),
        state_dir: absolute(&cfg.state_dir),
        system,
        user: if system { user.or_else(|| std::env::var("USER").ok()) } else { None },
        home: state::home(),
    })
}

/// Whether the port comes from the environment or the config (rather than the profile's or the
/// default): only then is a unit recording another port drift. A unit installed with
/// `install --port N` on a config that names no port keeps N.
fn config_sets_port() -> bool {
    let env_port = std::env::var("OPENCLAW_GATEWAY_PORT").is_ok_and(|v| !v.trim().is_empty());
    env_port || matches!(crate::config::load_file(&crate::target::config_path()), Ok(Some((c, _))) if c.gateway.port.is_some())
}

/// What an installed unit should say now: `spec`, keeping the unit's port when nothing but the
/// default names one.
fn due_spec(text: &str, spec: &ServiceSpec) -> ServiceSpec {
    let mut spec = spec.clone();
    if let (false, Some(p)) = (config_sets_port(), unit::parse_systemd_unit(text).port) {
        spec.port = p;
    }
    spec
}

/// The differences between an installed unit's text and what it should say now (§9).
fn unit_drift(text: &str, spec: &ServiceSpec) -> Vec<unit::Drift> {
    unit::drift(&unit::parse_systemd_unit(text), &due_spec(text, spec))
}

fn definition(spec: &ServiceSpec, platform: &str) -> String {
    match platform {
        "launchd" => platforms::launchd_plist(spec),
        "windows" => platforms::windows_task_xml(spec),
        _ => unit::systemd_unit(spec),
    }
}

fn default_platform() -> &'static str {
    if cfg!(target_os = "macos") {
        "launchd"
    } else if cfg!(windows) {
        "windows"
    } else {
        "systemd"
    }
}

fn definition_path(spec: &ServiceSpec, platform: &str, system: bool) -> PathBuf {
    match platform {
        "launchd" => {
            let label = platforms::launchd_label(spec.profile.as_deref());
            if system {
                Path::new("/Library/LaunchDaemons").join(format!("{label}.plist"))
            } else {
                Path::new(&spec.home).join("Library/LaunchAgents").join(format!("{label}.plist"))
            }
        }
        "windows" => {
            Path::new(&spec.state_dir).join("clawgate").join(format!("{}.xml", platforms::windows_task_name(spec.profile.as_deref())))
        }
        _ => unit_path(system),
    }
}

/// `install`: write the supervisor definition recording the effective port and config path;
/// with systemd reachable, reload it and enable + start the unit.
pub async fn install<R: Runtime>(rt: R, a: InstallArgs) -> i32 {
    let platform = a.platform.clone().unwrap_or_else(|| default_platform().to_string());
    let spec = match expected_spec(a.port.as_deref(), a.system, a.user.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let text = definition(&spec, &platform);
    if a.print {
        print!("{text}");
        return 0;
    }
    let path = a.unit_path.clone().map(PathBuf::from).unwrap_or_else(|| definition_path(&spec, &platform, a.system));
    let existing = std::fs::read_to_string(&path).ok();
    if existing.as_deref() == Some(text.as_str()) {
        println!("{} is installed and up to date (port {}, config {}).", path.display(), spec.port, spec.config_path);
    } else if existing.is_some() && !a.force {
        let drift = existing.as_deref().map(|t| unit::drift(&unit::parse_systemd_unit(t), &spec)).unwrap_or_default();
        eprintln!("{} already exists{}.", path.display(), if drift.is_empty() { "" } else { " and differs" });
        for d in drift {
            eprintln!("  {d}");
        }
        eprintln!("Replace it with: clawgate install --force");
        return 1;
    } else {
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("cannot create {}: {e}", dir.display());
                return 1;
            }
        }
        if platform == "launchd" {
            // launchd does not create the log file's directory.
            let _ = std::fs::create_dir_all(Path::new(&spec.state_dir).join("logs"));
        }
        if let Err(e) = state::write_atomic(&path, text.as_bytes(), 0o644) {
            eprintln!("cannot write {}: {e}", path.display());
            return 1;
        }
        println!("Wrote {} (port {}, config {}).", path.display(), spec.port, spec.config_path);
    }
    match platform.as_str() {
        "launchd" => {
            let domain = if a.system { "system".to_string() } else { "gui/$(id -u)".to_string() };
            println!("Load it with: launchctl bootstrap {domain} {}", path.display());
            0
        }
        "windows" => {
            println!(
                "Register it with: schtasks /Create /XML \"{}\" /TN \"{}\"",
                path.display(),
                platforms::windows_task_name(spec.profile.as_deref())
            );
            0
        }
        _ => {
            let name = unit_name();
            let scope = if a.system { "" } else { " --user" };
            let reload = systemctl(&rt, a.system, &["daemon-reload"]).await;
            if let Some(why) = manager_unavailable(&reload) {
                println!("systemd is not reachable here ({why}); the unit is written.");
                println!("Where systemd runs: systemctl{scope} daemon-reload && systemctl{scope} enable --now {name}");
                return 0;
            }
            // A replaced unit of a running service takes effect on restart, not on enable.
            let verb: &[&str] = if existing.is_some() { &["enable", &name] } else { &["enable", "--now", &name] };
            match systemctl(&rt, a.system, verb).await {
                Ok(r) if r.ok => {
                    if existing.is_some() {
                        let _ = systemctl(&rt, a.system, &["try-restart", &name]).await;
                    }
                    println!("Enabled and started {name}.");
                    0
                }
                Ok(r) => {
                    eprintln!("systemctl{scope} enable {name} failed: {}", r.stderr);
                    1
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        }
    }
}

fn not_installed(path: &Path, verb: &str) -> i32 {
    eprintln!(
        "{} is not installed ({} does not exist), so there is no service to {verb}.\nInstall it with `clawgate install`, or run the gateway in the foreground with `clawgate run` (a gateway you started by hand stops with Ctrl-C or SIGTERM; config edits restart it in process).",
        unit_name(),
        path.display()
    );
    1
}

/// One `systemctl <verb> <unit>` for `start`/`stop`/`restart`/`uninstall`, with the messages.
async fn control<R: Runtime>(rt: &R, system: bool, verb: &[&str], done: &str) -> i32 {
    let path = unit_path(system);
    if !path.exists() {
        return not_installed(&path, verb[0]);
    }
    let name = unit_name();
    let mut args: Vec<&str> = verb.to_vec();
    args.push(&name);
    let r = systemctl(rt, system, &args).await;
    if let Some(why) = manager_unavailable(&r) {
        eprintln!(
            "systemd is not reachable here ({why}): cannot {} {name}. Where systemd runs: systemctl{} {} {name}",
            verb.join(" "),
            if system { "" } else { " --user" },
            verb.join(" ")
        );
        return 1;
    }
    match r {
        Ok(r) if r.ok => {
            println!("{done} {name}.");
            0
        }
        Ok(r) => {
            eprintln!("systemctl {} {name} failed: {}", verb.join(" "), r.stderr);
            1
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

pub async fn start<R: Runtime>(rt: R, a: ServiceArgs) -> i32 {
    control(&rt, a.system, &["start"], "Started").await
}

pub async fn stop<R: Runtime>(rt: R, a: StopArgs) -> i32 {
    if a.disable {
        control(&rt, a.service.system, &["disable", "--now"], "Stopped and disabled").await
    } else {
        control(&rt, a.service.system, &["stop"], "Stopped").await
    }
}

/// Restart through the supervisor (one operation: the new process starts once the old one has
/// released the state dir; never stop+start by hand).
pub async fn restart<R: Runtime>(rt: R, a: ServiceArgs) -> i32 {
    control(&rt, a.system, &["restart"], "Restarted").await
}

pub async fn uninstall<R: Runtime>(rt: R, a: ServiceArgs) -> i32 {
    let path = unit_path(a.system);
    if !path.exists() {
        println!("{} is not installed (no {}).", unit_name(), path.display());
        return 0;
    }
    let name = unit_name();
    let r = systemctl(&rt, a.system, &["disable", "--now", &name]).await;
    if let Some(why) = manager_unavailable(&r) {
        println!("systemd is not reachable here ({why}); removing the unit file only.");
    }
    if let Err(e) = std::fs::remove_file(&path) {
        eprintln!("cannot remove {}: {e}", path.display());
        return 1;
    }
    let _ = systemctl(&rt, a.system, &["daemon-reload"]).await;
    println!("Removed {} ({}).", name, path.display());
    0
}

/// The service half of `status`: the unit file, what systemd says about it, and its drift
/// from what the config asks for now.
pub async fn inspect_service<R: Runtime>(rt: &R, system: bool) -> ServiceView {
    let path = unit_path(system);
    let name = unit_name();
    let installed_text = std::fs::read_to_string(&path).ok();
    let mut view = ServiceView {
        manager: "systemd".into(),
        scope: if system { "system" } else { "user" }.into(),
        unit: name.clone(),
        unit_path: path.display().to_string(),
        installed: installed_text.is_some(),
        ..Default::default()
    };
    if let (Some(text), Ok(spec)) = (&installed_text, expected_spec(None, system, None)) {
        view.drift = unit_drift(text, &spec).iter().map(|d| d.to_string()).collect();
    }
    let r = systemctl(rt, system, &["show", "-p", "LoadState,ActiveState,SubState,UnitFileState,MainPID", &name]).await;
    if let Some(why) = manager_unavailable(&r) {
        view.unavailable = Some(why);
        return view;
    }
    if let Ok(r) = r {
        let prop = |k: &str| r.stdout.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix('=')).map(str::trim).map(str::to_string);
        view.loaded = prop("LoadState").map(|s| s == "loaded");
        view.enabled = prop("UnitFileState").filter(|s| !s.is_empty()).map(|s| s.starts_with("enabled"));
        view.active = match (prop("ActiveState"), prop("SubState")) {
            (Some(a), Some(s)) => Some(format!("{a} ({s})")),
            (Some(a), None) => Some(a),
            _ => None,
        };
        view.main_pid = prop("MainPID").and_then(|p| p.parse().ok()).filter(|p| *p > 0);
    }
    view
}

/// The gateway that owns `state_dir` right now, from its lock (works with or without a
/// supervisor).
pub fn inspect_runtime(state_dir: &str) -> RuntimeView {
    match instance::lock_state(state_dir) {
        LockState::Held(Some(r)) => RuntimeView {
            status: "running".into(),
            pid: Some(r.pid),
            port: Some(r.port),
            uptime_ms: Some(unix_ms().saturating_sub(r.started_at_ms)),
            listening: Some(r.listening()),
            stale_lock: None,
        },
        LockState::Held(None) => RuntimeView { status: "running".into(), ..Default::default() },
        LockState::Stale(r) => RuntimeView { status: "stopped".into(), stale_lock: r.map(|r| (r.pid, r.port)), ..Default::default() },
        LockState::Absent => RuntimeView { status: "stopped".into(), ..Default::default() },
    }
}

/// Listening TCP sockets on `ports` and the processes that own them (Linux `/proc`; best effort:
/// another user's process shows without a name).
pub fn listeners_on(ports: &[u16]) -> Vec<Value> {
    let mut inodes: Vec<(u16, String, u64)> = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = f[1].rsplit_once(':') else { continue };
            let Ok(port) = u16::from_str_radix(port, 16) else { continue };
            if !ports.contains(&port) {
                continue;
            }
            let host = if v6 {
                if addr == "00000000000000000000000000000000" { "[::]" } else { "[::1]" }
            } else {
                match addr {
                    "0100007F" => "127.0.0.1",
                    "00000000" => "0.0.0.0",
                    _ => "(other)",
                }
            };
            if let Ok(inode) = f[9].parse() {
                inodes.push((port, host.to_string(), inode));
            }
        }
    }
    let mut owners: std::collections::HashMap<u64, (u32, String)> = Default::default();
    if !inodes.is_empty() {
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
                let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else { continue };
                for fd in fds.flatten() {
                    let Ok(target) = std::fs::read_link(fd.path()) else { continue };
                    let t = target.to_string_lossy();
                    if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse::<u64>().ok()) {
                        if inodes.iter().any(|(_, _, i)| *i == inode) {
                            let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default().trim().to_string();
                            owners.insert(inode, (pid, comm));
                        }
                    }
                }
            }
        }
    }
    inodes
        .iter()
        .map(|(port, host, inode)| {
            let owner = owners.get(inode);
            json!({"port": port, "address": format!("{host}:{port}"), "pid": owner.map(|o| o.0), "command": owner.map(|o| o.1.clone())})
        })
        .collect()
}

/// Gateway state dirs under the home (`~/.openclaw`, `~/.openclaw-<profile>`, `~/.clawdbot`),
/// each with who owns it.
pub fn state_dirs() -> Vec<Value> {
    let home = state::home();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&home) else { return out };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_dir() && (n == ".openclaw" || n == ".clawdbot" || n.starts_with(".openclaw-"))
        })
        .collect();
    dirs.sort();
    for d in dirs {
        let sd = d.display().to_string();
        let owner = match instance::lock_state(&sd) {
            LockState::Held(Some(r)) => json!({"status": "running", "pid": r.pid, "port": r.port}),
            LockState::Held(None) => json!({"status": "running"}),
            LockState::Stale(Some(r)) => json!({"status": "stale-lock", "pid": r.pid, "port": r.port}),
            LockState::Stale(None) => json!({"status": "stale-lock"}),
            LockState::Absent => json!({"status": "idle"}),
        };
        out.push(json!({"path": sd, "config": d.join("openclaw.json").exists(), "owner": owner}));
    }
    out
}

/// Unit files of other gateway-like services (ours under another profile, the reference's
/// `openclaw-gateway*`), in the user and system unit dirs.
pub fn other_units(own: &Path) -> Vec<Value> {
    let user_dir = unit_path(false).parent().map(Path::to_path_buf);
    let mut dirs: Vec<(PathBuf, &str)> = Vec::new();
    if let Some(u) = user_dir {
        dirs.push((u, "user"));
    }
    for d in ["/etc/systemd/system", "/etc/systemd/user", "/usr/lib/systemd/system", "/usr/lib/systemd/user", "/lib/systemd/system"] {
        dirs.push((PathBuf::from(d), if d.ends_with("user") { "user" } else { "system" }));
    }
    let mut out = Vec::new();
    for (dir, scope) in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n.ends_with(".service") && (n.starts_with("clawgate") || n.starts_with("openclaw") || n.starts_with("clawdbot"))
            })
            .filter(|p| p != own)
            .collect();
        found.sort();
        for p in found {
            let rec = std::fs::read_to_string(&p).map(|t| unit::parse_systemd_unit(&t)).unwrap_or_default();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            let stale = rec.exe.as_deref().is_some_and(|e| !Path::new(e).exists());
            let system_flag = if scope == "user" { " --user" } else { "" };
            out.push(json!({
                "unit": name, "path": p.display().to_string(), "scope": scope, "port": rec.port,
                "exe": rec.exe, "stateDir": rec.state_dir, "stale": stale,
                "hint": format!("systemctl{system_flag} disable --now {name} && rm {}", p.display()),
            }));
        }
    }
    out
}

/// `status --deep`: other services, listeners on the gateway ports, other state dirs.
pub fn deep_scan(own_unit: &Path, ports: &[u16], own_state_dir: &str) -> Value {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    let dirs: Vec<Value> = state_dirs().into_iter().filter(|d| d["path"].as_str() != Some(own_state_dir)).collect();
    json!({"otherServices": other_units(own_unit), "listeners": listeners_on(&ports), "otherStateDirs": dirs, "scannedPorts": ports})
}

/// The text of a deep scan.
pub fn deep_text(scan: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let services = scan["otherServices"].as_array().cloned().unwrap_or_default();
    if services.is_empty() {
        out.push("Other gateway-like services: none found".to_string());
    } else {
        out.push("Other gateway-like services detected (best effort):".to_string());
        for s in &services {
            let port = s["port"].as_u64().map(|p| format!("port {p}")).unwrap_or_else(|| "port not recorded".into());
            let stale = if s["stale"] == json!(true) { ", stale: its binary is gone" } else { "" };
            out.push(format!(
                "  - {} ({}, {port}{stale}) {}",
                s["unit"].as_str().unwrap_or(""),
                s["scope"].as_str().unwrap_or(""),
                s["path"].as_str().unwrap_or("")
            ));
            out.push(format!("    cleanup: {}", s["hint"].as_str().unwrap_or("")));
        }
    }
    let ports: Vec<String> =
        scan["scannedPorts"].as_array().into_iter().flatten().filter_map(Value::as_u64).map(|p| p.to_string()).collect();
    let listeners = scan["listeners"].as_array().cloned().unwrap_or_default();
    if listeners.is_empty() {
        out.push(format!("Listeners on ports {}: none", ports.join(", ")));
    } else {
        out.push(format!("Listeners on ports {}:", ports.join(", ")));
        for l in &listeners {
            let who = match (l["pid"].as_u64(), l["command"].as_str()) {
                (Some(pid), Some(c)) => format!("pid {pid} {c}"),
                _ => "owner not visible".into(),
            };
            out.push(format!("  - {} ({who})", l["address"].as_str().unwrap_or("")));
        }
    }
    let dirs = scan["otherStateDirs"].as_array().cloned().unwrap_or_default();
    if dirs.is_empty() {
        out.push("Other state dirs: none".to_string());
    } else {
        out.push("Other state dirs:".to_string());
        for d in &dirs {
            let o = &d["owner"];
            let owner = match o["status"].as_str() {
                Some("running") => format!("gateway running (pid {}, port {})", o["pid"], o["port"]),
                Some("stale-lock") => format!("stale lock of pid {} (clear: clawgate doctor --fix with that state dir)", o["pid"]),
                _ => "no gateway".into(),
            };
            out.push(format!("  - {} ({owner})", d["path"].as_str().unwrap_or("")));
        }
    }
    out
}

#[cfg(unix)]
fn mode_of(p: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> Option<u32> {
    None
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// A file or dir that others can read: a finding, fixed by `chmod`.
fn private_check(check: &'static str, path: &Path, want: u32, fix: bool) -> Option<Finding> {
    let mode = mode_of(path)?;
    if !report::too_open(mode) {
        return Some(Finding::ok(check, format!("{} is mode {mode:04o}", path.display())));
    }
    let mut f = Finding::warn(
        check,
        format!("{} is mode {mode:04o}: others can read it", path.display()),
        Some(format!("chmod {want:o} {}", path.display())),
    );
    if fix {
        match set_mode(path, want) {
            Ok(()) => f.fixed = Some(format!("mode set to {want:04o}")),
            Err(e) => f.detail.push_str(&format!(" (chmod failed: {e})")),
        }
    }
    Some(f)
}

fn store_check(state_dir: &str) -> Finding {
    let path = crate::store::sessions_db_path(state_dir);
    if !path.exists() {
        return Finding::ok("session store", "none yet (created on the first session)");
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let checked =
        rusqlite::Connection::open_with_flags(&path, flags).and_then(|c| c.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)));
    match checked {
        Ok(s) if s == "ok" => Finding::ok("session store", format!("{} passes an integrity check", path.display())),
        Ok(s) => Finding::error(
            "session store",
            format!("{} is damaged ({s})", path.display()),
            Some("start the gateway: it moves a damaged store aside and salvages what it can".into()),
        ),
        Err(e) => Finding::error(
            "session store",
            format!("{} cannot be read ({e})", path.display()),
            Some("start the gateway: it moves an unusable store aside and salvages what it can".into()),
        ),
    }
}

/// `doctor [--fix]`.
pub async fn doctor<R: Runtime>(rt: R, a: DoctorArgs) -> i32 {
    let state_dir = state::state_dir();
    let config_path = state::config_path(&state_dir);
    let mut findings = Vec::new();
    // Config validity: the same startup path as `run`, dry.
    let spec = expected_spec(None, a.system, None);
    findings.push(match (&spec, Path::new(&config_path).exists()) {
        (Ok(_), true) => Finding::ok("config", format!("{config_path} is valid")),
        (Ok(_), false) => Finding::ok("config", format!("{config_path} does not exist (defaults apply)")),
        (Err(e), _) => Finding::error(
            "config",
            e.lines().next().unwrap_or(e).to_string(),
            Some(format!("edit {config_path}; `clawgate config validate` says what is wrong")),
        ),
    });
    // State dir, token and config file permissions.
    let sd = Path::new(&state_dir);
    if sd.is_dir() {
        findings.extend(private_check("state dir", sd, 0o700, a.fix));
    } else {
        findings.push(Finding::ok("state dir", format!("{state_dir} does not exist yet (created on the first start)")));
    }
    if let Some(f) = private_check("token file", &state::token_path(&state_dir), 0o600, a.fix) {
        findings.push(f);
    }
    if let Some(f) = private_check("config file", Path::new(&config_path), 0o600, a.fix) {
        findings.push(f);
    }
    // Service drift.
    let upath = unit_path(a.system);
    match (std::fs::read_to_string(&upath), &spec) {
        (Ok(text), Ok(spec)) => {
            let drift = unit_drift(&text, spec);
            if drift.is_empty() {
                findings.push(Finding::ok("service", format!("{} matches the config (port {})", upath.display(), spec.port)));
            } else {
                let detail = format!("{} drifted: {}", upath.display(), drift.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; "));
                let mut f =
                    Finding::warn("service", detail, Some("rewrite the unit from the current config (clawgate install --force)".into()));
                if a.fix {
                    let spec = &due_spec(&text, spec);
                    match state::write_atomic(&upath, unit::systemd_unit(spec).as_bytes(), 0o644) {
                        Ok(()) => {
                            let reloaded = systemctl(&rt, a.system, &["daemon-reload"]).await;
                            let note = match manager_unavailable(&reloaded) {
                                None => {
                                    let _ = systemctl(&rt, a.system, &["try-restart", &unit_name()]).await;
                                    "; systemd reloaded, the service restarted if it was running".to_string()
                                }
                                Some(why) => format!("; systemd not reachable ({why}): reload it where it runs"),
                            };
                            f.fixed =
                                Some(format!("rewrote {} with port {} and config {}{note}", upath.display(), spec.port, spec.config_path));
                        }
                        Err(e) => f.detail.push_str(&format!(" (rewrite failed: {e})")),
                    }
                }
                findings.push(f);
            }
        }
        (Ok(_), Err(_)) => findings.push(Finding::warn(
            "service",
            format!("{} is installed; drift not checked while the config is invalid", upath.display()),
            None,
        )),
        (Err(_), _) => findings.push(Finding::ok("service", format!("not installed ({})", upath.display()))),
    }
    // Stale lock and run record.
    match instance::lock_state(&state_dir) {
        LockState::Stale(r) => {
            let who = r.map(|r| format!(" by pid {} (port {})", r.pid, r.port)).unwrap_or_default();
            let mut f = Finding::warn(
                "lock",
                format!("{} was left{who}, which did not exit cleanly", instance::lock_path(&state_dir).display()),
                Some("remove it (nobody holds it)".into()),
            );
            if a.fix {
                match instance::remove_stale_lock(&state_dir) {
                    Ok(true) => f.fixed = Some("removed".into()),
                    Ok(false) => f.fixed = Some("already gone, or taken by a starting gateway".into()),
                    Err(e) => f.detail.push_str(&format!(" (remove failed: {e})")),
                }
            }
            findings.push(f);
        }
        LockState::Held(Some(r)) => {
            findings.push(Finding::ok("lock", format!("held by the running gateway (pid {}, port {})", r.pid, r.port)))
        }
        LockState::Held(None) => findings.push(Finding::ok("lock", "held by a running gateway")),
        LockState::Absent => findings.push(Finding::ok("lock", "no gateway owns the state dir")),
    }
    let run_file = state::run_file_path(&state_dir);
    if run_file.exists() && state::read_run_file(&state_dir).is_none() {
        let mut f = Finding::warn("run record", format!("{} names a gateway that is gone", run_file.display()), Some("remove it".into()));
        if a.fix && std::fs::remove_file(&run_file).is_ok() {
            f.fixed = Some("removed".into());
        }
        findings.push(f);
    }
    findings.push(store_check(&state_dir));
    let open = findings.iter().filter(|f| f.open()).count();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": open == 0, "stateDir": state_dir, "fix": a.fix, "findings": findings}))
                .unwrap_or_default()
        );
    } else {
        println!("clawgate doctor: state dir {state_dir}, config {config_path}");
        print!("{}", report::doctor_text(&findings, a.fix));
    }
    if open == 0 { 0 } else { 1 }
}
