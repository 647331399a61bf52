//! What `status` and `doctor` print, from what the shell found (plain data in, text out), so
//! the wording is one function and golden-testable.

use serde::Serialize;

/// The supervisor's view of the installed service.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    /// `systemd`.
    pub manager: String,
    /// `user` or `system`.
    pub scope: String,
    pub unit: String,
    pub unit_path: String,
    /// The unit file exists.
    pub installed: bool,
    /// The service manager answered (`None`: it could not be asked; `unavailable` says why).
    pub loaded: Option<bool>,
    pub enabled: Option<bool>,
    /// `active (running)`, `inactive (dead)`, `failed (…)`.
    pub active: Option<String>,
    pub main_pid: Option<u32>,
    pub unavailable: Option<String>,
    /// Differences between the installed unit and what the config asks for now.
    pub drift: Vec<String>,
}

/// The gateway process that owns the state dir (from its lock), if any.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeView {
    /// `running`, `stopped`.
    pub status: String,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub uptime_ms: Option<u64>,
    pub listening: Option<String>,
    /// A lock left by a gateway that did not exit cleanly: `(pid, port)`.
    pub stale_lock: Option<(u32, u16)>,
}

/// `2h 3m`, `5m 2s`, `42s`.
pub fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// The `Service:` line (and the unit file line after it).
pub fn service_lines(s: &ServiceView) -> Vec<String> {
    let head = format!("Service: {} ({}) {}", s.manager, s.scope, s.unit);
    let mut out = Vec::new();
    if !s.installed {
        out.push(format!("{head}: not installed"));
    } else {
        let mut parts = vec!["installed".to_string()];
        match s.loaded {
            Some(true) => parts.push("loaded".into()),
            Some(false) => parts.push("not loaded".into()),
            None => {}
        }
        match s.enabled {
            Some(true) => parts.push("enabled".into()),
            Some(false) => parts.push("disabled".into()),
            None => {}
        }
        if let Some(a) = &s.active {
            parts.push(a.clone());
        }
        out.push(format!("{head}: {}", parts.join(", ")));
    }
    out.push(format!("Unit file: {}{}", s.unit_path, if s.installed { "" } else { " (missing)" }));
    if let Some(why) = &s.unavailable {
        out.push(format!("Service manager: unavailable ({why})"));
    }
    for d in &s.drift {
        out.push(format!("Service drift: {d} (fix: clawgate doctor --fix, or clawgate install --force)"));
    }
    out
}

/// The `Runtime:` line.
pub fn runtime_line(r: &RuntimeView) -> String {
    match (r.status.as_str(), r.pid) {
        ("running", Some(pid)) => {
            let mut parts = vec![format!("pid {pid}")];
            if let Some(u) = r.uptime_ms {
                parts.push(format!("up {}", human_duration(u)));
            }
            if let Some(l) = &r.listening {
                parts.push(format!("listening {l}"));
            }
            format!("Runtime: running ({})", parts.join(", "))
        }
        _ => match r.stale_lock {
            Some((pid, port)) => format!(
                "Runtime: stopped (a gateway, pid {pid} on port {port}, did not exit cleanly; its stale lock is cleared by the next start or clawgate doctor --fix)"
            ),
            None => "Runtime: stopped (no gateway owns this state dir)".to_string(),
        },
    }
}

/// How bad a doctor finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Error,
}

/// One `doctor` check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
    /// What `--fix` would do (when it can).
    pub fix: Option<String>,
    /// What `--fix` did.
    pub fixed: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding { check, level: Level::Ok, detail: detail.into(), fix: None, fixed: None }
    }
    pub fn warn(check: &'static str, detail: impl Into<String>, fix: Option<String>) -> Finding {
        Finding { check, level: Level::Warn, detail: detail.into(), fix, fixed: None }
    }
    pub fn error(check: &'static str, detail: impl Into<String>, fix: Option<String>) -> Finding {
        Finding { check, level: Level::Error, detail: detail.into(), fix, fixed: None }
    }
    /// Still a problem after this run.
    pub fn open(&self) -> bool {
        self.level != Level::Ok && self.fixed.is_none()
    }
}

/// A permission mode that lets anyone but the owner read or write (state dir, token, config).
pub fn too_open(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// The doctor's text: one line per check, the fix under it, then the tally.
pub fn doctor_text(findings: &[Finding], fixing: bool) -> String {
    let mut out = String::new();
    for f in findings {
        let tag = match (f.level, &f.fixed) {
            (Level::Ok, _) => "ok   ",
            (_, Some(_)) => "fixed",
            (Level::Warn, None) => "warn ",
            (Level::Error, None) => "error",
        };
        out.push_str(&format!("{tag} {}: {}\n", f.check, f.detail));
        match (&f.fixed, &f.fix) {
            (Some(done), _) => out.push_str(&format!("      {done}\n")),
            (None, Some(fix)) if f.level != Level::Ok => {
                out.push_str(&format!("      {}: {fix}\n", if fixing { "not fixed" } else { "fix (clawgate doctor --fix)" }))
            }
            _ => {}
        }
    }
    let problems = findings.iter().filter(|f| f.level != Level::Ok).count();
    let fixed = findings.iter().filter(|f| f.fixed.is_some()).count();
    let open = findings.iter().filter(|f| f.open()).count();
    out.push_str(&match (problems, open) {
        (0, _) => "No problems found.\n".to_string(),
        (_, 0) => format!("{problems} problem(s), all fixed.\n"),
        _ if fixing => format!("{problems} problem(s), {fixed} fixed, {open} left.\n"),
        _ => format!("{problems} problem(s). Run clawgate doctor --fix to repair what is safe.\n"),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_uptime() {
        assert_eq!(human_duration(42_000), "42s");
        assert_eq!(human_duration(302_000), "5m 2s");
        assert_eq!(human_duration(7_380_000), "2h 3m");
        assert_eq!(human_duration(90_000_000), "1d 1h");
    }

    #[test]
    fn runtime_and_service_lines() {
        let r = RuntimeView {
            status: "running".into(),
            pid: Some(7),
            port: Some(1),
            uptime_ms: Some(5_000),
            listening: Some("ws://127.0.0.1:1".into()),
            stale_lock: None,
        };
        assert_eq!(runtime_line(&r), "Runtime: running (pid 7, up 5s, listening ws://127.0.0.1:1)");
        let stale = RuntimeView { status: "stopped".into(), stale_lock: Some((9, 2)), ..Default::default() };
        assert!(runtime_line(&stale).contains("pid 9 on port 2"));
        let s = ServiceView {
            manager: "systemd".into(),
            scope: "user".into(),
            unit: "clawgate.service".into(),
            unit_path: "/u".into(),
            installed: true,
            loaded: Some(true),
            enabled: Some(false),
            active: Some("inactive (dead)".into()),
            ..Default::default()
        };
        assert_eq!(service_lines(&s)[0], "Service: systemd (user) clawgate.service: installed, loaded, disabled, inactive (dead)");
    }

    #[test]
    fn the_tally_says_what_is_left() {
        let mut f = vec![Finding::ok("config", "valid"), Finding::warn("token file", "mode 0644", Some("chmod 600".into()))];
        assert!(doctor_text(&f, false).ends_with("1 problem(s). Run clawgate doctor --fix to repair what is safe.\n"));
        f[1].fixed = Some("mode set to 0600".into());
        let t = doctor_text(&f, true);
        assert!(t.contains("fixed token file: mode 0644\n      mode set to 0600\n") && t.ends_with("all fixed.\n"), "{t}");
        assert!(too_open(0o644) && too_open(0o750) && !too_open(0o600) && !too_open(0o700));
    }
}
