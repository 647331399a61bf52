//! The systemd unit (config-auth-reload §9): what `install` writes, and what `doctor` reads
//! back to find drift between an installed unit and what the gateway would be started with
//! now (the runbook: "after changing `gateway.port` run `doctor --fix` or `install --force`").

use super::ServiceSpec;

/// Quote one `ExecStart=` word or `Environment=` assignment for systemd: `%` is a specifier
/// there (doubled), and a value with spaces, quotes or backslashes goes in double quotes.
fn systemd_quote(s: &str) -> String {
    let s = s.replace('%', "%%");
    if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'' || c == ';') {
        return s;
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `clawgate.service` / `clawgate-<profile>.service`.
pub fn unit_file_name(profile: Option<&str>) -> String {
    format!("{}.service", super::service_name(profile))
}

/// The unit. The reference's fixed policy (§9): restart always except after exit 78 (a config
/// error a restart cannot fix), ten starts per five minutes, SIGTERM then SIGKILL to the rest
/// of the group (`KillMode=mixed`), 143 (SIGTERM) counts as a clean stop. A user unit waits
/// for nothing (the user manager cannot see `network-online.target`); a system unit does, and
/// runs as `spec.user`.
pub fn systemd_unit(spec: &ServiceSpec) -> String {
    let profile = spec.profile.as_deref().map(|p| format!(", profile {p}")).unwrap_or_default();
    let mut u = String::new();
    u.push_str("[Unit]\n");
    u.push_str(&format!("Description=clawgate gateway (port {}{profile})\n", spec.port));
    if spec.system {
        u.push_str("After=network-online.target\nWants=network-online.target\n");
    }
    u.push_str("StartLimitIntervalSec=300\nStartLimitBurst=10\n\n[Service]\nType=simple\n");
    let mut exec: Vec<String> =
        std::iter::once(spec.exe.as_str()).chain(spec.run_args().iter().map(String::as_str)).map(systemd_quote).collect();
    // A leading `-@+!:` is an ExecStart prefix to systemd, not part of the path: quote it.
    if spec.exe.starts_with(['-', '@', '+', '!', ':']) && !exec[0].starts_with('"') {
        exec[0] = format!("\"{}\"", exec[0]);
    }
    u.push_str(&format!("ExecStart={}\n", exec.join(" ")));
    for (k, v) in spec.environment() {
        u.push_str(&format!("Environment={}\n", systemd_quote(&format!("{k}={v}"))));
    }
    if spec.system {
        if let Some(user) = &spec.user {
            u.push_str(&format!("User={}\n", systemd_quote(user)));
        }
    }
    u.push_str("Restart=always\nRestartSec=5\nRestartPreventExitStatus=78\nSuccessExitStatus=0 143\n");
    u.push_str("TimeoutStartSec=30\nTimeoutStopSec=30\nKillMode=mixed\n\n[Install]\n");
    u.push_str(if spec.system { "WantedBy=multi-user.target\n" } else { "WantedBy=default.target\n" });
    u
}

/// Split a systemd command line / assignment list into words (double and single quotes,
/// backslash escapes, `%%`).
fn systemd_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                in_word = true;
                match chars.next() {
                    Some('n') => cur.push('\n'),
                    Some(n) => cur.push(n),
                    None => {}
                }
            }
            (_, '%') if chars.peek() == Some(&'%') => {
                chars.next();
                in_word = true;
                cur.push('%');
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// What an installed unit records, as far as it can be read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstalledUnit {
    pub exe: Option<String>,
    pub port: Option<u16>,
    pub config_path: Option<String>,
    pub state_dir: Option<String>,
    pub profile: Option<String>,
}

/// Read back a unit file (ours, or one written by an older `install`).
pub fn parse_systemd_unit(text: &str) -> InstalledUnit {
    let mut out = InstalledUnit::default();
    for line in text.lines().map(str::trim) {
        if let Some(cmd) = line.strip_prefix("ExecStart=") {
            // Leading `-`, `@`, `+`, `!` prefixes are systemd's, not the path's.
            let words = systemd_words(cmd.trim_start_matches(['-', '@', '+', '!', ':']));
            out.exe = words.first().cloned();
            out.port = words.iter().position(|w| w == "--port").and_then(|i| words.get(i + 1)).and_then(|p| p.parse().ok());
        } else if let Some(assignments) = line.strip_prefix("Environment=") {
            for w in systemd_words(assignments) {
                match w.split_once('=') {
                    Some(("OPENCLAW_CONFIG_PATH", v)) => out.config_path = Some(v.to_string()),
                    Some(("OPENCLAW_STATE_DIR", v)) => out.state_dir = Some(v.to_string()),
                    Some(("OPENCLAW_PROFILE", v)) => out.profile = Some(v.to_string()),
                    _ => {}
                }
            }
        }
    }
    out
}

/// One difference between an installed unit and the install the current config asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// `port`, `config path`, `binary`, `state dir`.
    pub what: &'static str,
    pub installed: String,
    pub expected: String,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: the unit has {}, the config says {}", self.what, self.installed, self.expected)
    }
}

/// Where an installed unit differs from `expected` (a value the unit does not record counts as
/// drift too: the service would start with whatever its environment defaults to).
pub fn drift(installed: &InstalledUnit, expected: &ServiceSpec) -> Vec<Drift> {
    let none = || "(not recorded)".to_string();
    let mut out = Vec::new();
    let mut check = |what, have: Option<String>, want: String| {
        if have.as_deref() != Some(want.as_str()) {
            out.push(Drift { what, installed: have.unwrap_or_else(none), expected: want });
        }
    };
    check("port", installed.port.map(|p| p.to_string()), expected.port.to_string());
    check("config path", installed.config_path.clone(), expected.config_path.clone());
    check("state dir", installed.state_dir.clone(), expected.state_dir.clone());
    check("binary", installed.exe.clone(), expected.exe.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            profile: None,
            exe: "/usr/local/bin/clawgate".into(),
            port: 18789,
            config_path: "/home/u/.openclaw/openclaw.json".into(),
            state_dir: "/home/u/.openclaw".into(),
            system: false,
            user: None,
            home: "/home/u".into(),
        }
    }

    #[test]
    fn a_unit_reads_back_as_what_it_was_written_from() {
        let mut s = spec();
        s.exe = "/opt/my apps/claw\"gate 100%".into();
        s.config_path = "/home/u/a b/$HOME;x'.json".into();
        s.profile = Some("work".into());
        let back = parse_systemd_unit(&systemd_unit(&s));
        let dash = ServiceSpec { exe: "-x%y".into(), ..spec() };
        assert_eq!(parse_systemd_unit(&systemd_unit(&dash)).exe.as_deref(), Some("-x%y"));
        assert_eq!(back.exe.as_deref(), Some(s.exe.as_str()));
        assert_eq!(back.port, Some(18789));
        assert_eq!(back.config_path.as_deref(), Some(s.config_path.as_str()));
        assert_eq!(back.state_dir.as_deref(), Some(s.state_dir.as_str()));
        assert_eq!(back.profile.as_deref(), Some("work"));
        assert!(drift(&back, &s).is_empty());
    }

    #[test]
    fn the_policy_lines_are_the_runbooks() {
        let u = systemd_unit(&spec());
        for line in [
            "ExecStart=/usr/local/bin/clawgate run --supervised --port 18789",
            "Restart=always",
            "RestartPreventExitStatus=78",
            "SuccessExitStatus=0 143",
            "KillMode=mixed",
            "WantedBy=default.target",
        ] {
            assert!(u.lines().any(|l| l == line), "{line} missing in\n{u}");
        }
        assert!(!u.contains("network-online"), "a user unit cannot order against a system target");
        let mut sys = spec();
        sys.system = true;
        sys.user = Some("gw".into());
        let u = systemd_unit(&sys);
        assert!(u.contains("User=gw\n") && u.contains("WantedBy=multi-user.target\n") && u.contains("After=network-online.target\n"));
    }

    #[test]
    fn a_changed_port_or_path_is_drift() {
        let back = parse_systemd_unit(&systemd_unit(&spec()));
        let mut now = spec();
        now.port = 19999;
        now.config_path = "/elsewhere.json".into();
        let d = drift(&back, &now);
        assert_eq!(d.iter().map(|d| d.what).collect::<Vec<_>>(), vec!["port", "config path"]);
        assert_eq!(d[0].to_string(), "port: the unit has 18789, the config says 19999");
        // An old unit recording nothing but the binary.
        let old = parse_systemd_unit("[Service]\nExecStart=/usr/local/bin/clawgate run --supervised\n");
        assert_eq!(drift(&old, &spec()).len(), 3);
    }
}
