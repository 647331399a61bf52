//! Running the gateway as a service on a host: profiles (config-auth-reload §1.2), the
//! one-gateway-per-state-dir ownership lock (§8.1), the supervisor definitions (systemd units,
//! a launchd plist, a Windows scheduled task; §9) and what `status`/`doctor` conclude from what
//! the shell found on the host. Plain functions over plain data: the shell reads the files,
//! runs `systemctl`, takes the lock; this module decides and words.

pub mod lock;
pub mod platforms;
pub mod profile;
pub mod report;
pub mod unit;

/// Everything a supervisor definition records about one gateway install (§9: the runbook's
/// "records the effective port and config path").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The profile (`None`: the default one). Names the unit, label and task.
    pub profile: Option<String>,
    /// Absolute path of the gateway binary.
    pub exe: String,
    /// The port the service is started on (`run --port`).
    pub port: u16,
    /// Absolute config path (`OPENCLAW_CONFIG_PATH`).
    pub config_path: String,
    /// Absolute state dir (`OPENCLAW_STATE_DIR`).
    pub state_dir: String,
    /// A system-wide service (systemd system unit / LaunchDaemon / task run at boot) rather than
    /// one in the user's session.
    pub system: bool,
    /// The account a system service runs as (`User=`, `UserName`); `None` for user services.
    pub user: Option<String>,
    /// The user's home (`HOME` for the service; launchd and systemd system units do not set it).
    pub home: String,
}

impl ServiceSpec {
    /// The arguments after the binary: `run --supervised --port N`.
    pub fn run_args(&self) -> Vec<String> {
        vec!["run".into(), "--supervised".into(), "--port".into(), self.port.to_string()]
    }

    /// The environment the service is started with (only paths and the profile: never a
    /// secret — the token stays in the state dir or the config).
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("HOME", self.home.clone()),
            ("OPENCLAW_STATE_DIR", self.state_dir.clone()),
            ("OPENCLAW_CONFIG_PATH", self.config_path.clone()),
        ];
        if let Some(p) = &self.profile {
            env.push(("OPENCLAW_PROFILE", p.clone()));
        }
        env
    }
}

/// `clawgate` or `clawgate-<profile>`: the systemd unit's base name, and the stem of the other
/// platforms' names.
pub fn service_name(profile: Option<&str>) -> String {
    match profile {
        Some(p) => format!("clawgate-{p}"),
        None => "clawgate".into(),
    }
}
