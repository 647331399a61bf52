//! Peer gateways the harness installs and starts for comparison, each on 127.0.0.1 on its own
//! port, in its own temp home, routed to the mock:
//!
//! * the LiteLLM proxy (PyPI `litellm[proxy]`), in a venv created once under the cache directory;
//! * the Portkey gateway (npm `@portkey-ai/gateway`), installed once with npm into the cache
//!   directory and run with `node`.
//!
//! Versions are pinned; an install is reused when it has the pinned version. Installs happen only
//! when asked for (`bench-relay --litellm/--portkey`) and reach only the package registries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Api, Launch, MOCK_MODEL, Mock, Target, temp_home};

pub const LITELLM_VERSION: &str = "1.106.12";
pub const PORTKEY_VERSION: &str = "1.15.2";

/// The model name LiteLLM is asked for; its config maps it to `openai/mock-model` at the mock.
pub const LITELLM_MODEL: &str = "bench-model";

/// LiteLLM's master key (it refuses to start without one).
const LITELLM_KEY: &str = "sk-bench-relay";

/// Where installs are kept: `$CLAWGATE_BENCH_PEERS`, else `$XDG_CACHE_HOME/clawgate/bench-peers`,
/// else `~/.cache/clawgate/bench-peers`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CLAWGATE_BENCH_PEERS").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache"));
    base.join("clawgate/bench-peers")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    LiteLlm,
    Portkey,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::LiteLlm => "litellm",
            Peer::Portkey => "portkey",
        }
    }

    /// The package and pinned version, as its registry names it.
    pub fn package(self) -> String {
        match self {
            Peer::LiteLlm => format!("litellm[proxy]=={LITELLM_VERSION} (PyPI)"),
            Peer::Portkey => format!("@portkey-ai/gateway@{PORTKEY_VERSION} (npm)"),
        }
    }

    fn dir(self, cache: &Path) -> PathBuf {
        match self {
            Peer::LiteLlm => cache.join("litellm-venv"),
            Peer::Portkey => cache.join("portkey"),
        }
    }

    /// The version installed under `cache`, if any.
    pub fn installed_version(self, cache: &Path) -> Option<String> {
        let dir = self.dir(cache);
        match self {
            Peer::LiteLlm => {
                let out = Command::new(dir.join("bin/python"))
                    .args(["-c", "import importlib.metadata as m; print(m.version('litellm'))"])
                    .stderr(Stdio::null())
                    .output()
                    .ok()?;
                let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
                (out.status.success() && dir.join("bin/litellm").is_file() && !v.is_empty()).then_some(v)
            }
            Peer::Portkey => {
                let pkg = std::fs::read_to_string(dir.join("node_modules/@portkey-ai/gateway/package.json")).ok()?;
                let v: serde_json::Value = serde_json::from_str(&pkg).ok()?;
                v["version"].as_str().map(str::to_string)
            }
        }
    }

    /// Install the pinned version under `cache` unless it is there already (a venv with pip for
    /// LiteLLM, npm for Portkey; output in `cache/NAME-install.log`). Returns the version.
    pub fn install(self, cache: &Path) -> Result<String, String> {
        let pinned = match self {
            Peer::LiteLlm => LITELLM_VERSION,
            Peer::Portkey => PORTKEY_VERSION,
        };
        if self.installed_version(cache).as_deref() == Some(pinned) {
            return Ok(pinned.to_string());
        }
        std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        let dir = self.dir(cache);
        let log = cache.join(format!("{}-install.log", self.name()));
        eprintln!("installing {} into {} (log {})", self.package(), dir.display(), log.display());
        match self {
            Peer::LiteLlm => {
                if !dir.join("bin/pip").is_file() {
                    let mut venv = Command::new("python3");
                    venv.arg("-m").arg("venv").arg(&dir);
                    run_bounded(venv, &log, Duration::from_secs(300))?;
                }
                let mut pip = Command::new(dir.join("bin/pip"));
                pip.args(["install", "--no-cache-dir", "--disable-pip-version-check", &format!("litellm[proxy]=={LITELLM_VERSION}")]);
                run_bounded(pip, &log, Duration::from_secs(1200))?;
            }
            Peer::Portkey => {
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                let mut npm = Command::new("npm");
                npm.arg("install").arg("--prefix").arg(&dir).args([
                    "--no-audit",
                    "--no-fund",
                    "--no-update-notifier",
                    &format!("@portkey-ai/gateway@{PORTKEY_VERSION}"),
                ]);
                run_bounded(npm, &log, Duration::from_secs(600))?;
            }
        }
        match self.installed_version(cache) {
            Some(v) if v == pinned => Ok(v),
            other => Err(format!("after the install the version is {other:?}, not {pinned}; see {}", log.display())),
        }
    }

    /// Start it (installed under `cache`) pointed at `mock`, pinned to `cpu`; waits until it
    /// answers.
    pub fn start(self, cache: &Path, mock: &Mock, cpu: Option<usize>) -> Result<Target, String> {
        let dir = self.dir(cache);
        let port = crate::spawn::free_port().map_err(|e| e.to_string())?;
        let home = temp_home(self.name(), port)?;
        let mut cmd;
        let (ready_path, api) = match self {
            Peer::LiteLlm => {
                // YAML is a superset of JSON. No database (so no spend logs, no key table): the
                // master key, which it insists on, is the only key it checks.
                let config = json!({
                    "model_list": [{"model_name": LITELLM_MODEL, "litellm_params": {
                        "model": format!("openai/{MOCK_MODEL}"), "api_base": mock.base_url(), "api_key": "dummy"}}],
                    "litellm_settings": {"telemetry": false},
                    "general_settings": {"master_key": LITELLM_KEY},
                });
                let path = home.join("config.yaml");
                std::fs::write(&path, config.to_string()).map_err(|e| e.to_string())?;
                cmd = Command::new(dir.join("bin/litellm"));
                cmd.arg("--config")
                    .arg(&path)
                    .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--num_workers", "1"])
                    .env("LITELLM_TELEMETRY", "False")
                    .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                    .env_remove("DATABASE_URL")
                    .env_remove("LITELLM_MASTER_KEY")
                    .env_remove("OPENAI_API_KEY")
                    .env_remove("OPENAI_BASE_URL");
                ("/health/liveliness", Api::openai(LITELLM_MODEL, &[("authorization", &format!("Bearer {LITELLM_KEY}"))]))
            }
            Peer::Portkey => {
                // Its server listens on every interface and has no host option: a preload makes
                // every listen() in the process bind 127.0.0.1.
                let preload = home.join("loopback.cjs");
                std::fs::write(&preload, LOOPBACK_PRELOAD).map_err(|e| e.to_string())?;
                cmd = Command::new("node");
                cmd.arg("--require")
                    .arg(&preload)
                    .arg(dir.join("node_modules/@portkey-ai/gateway/build/start-server.js"))
                    .arg(format!("--port={port}"))
                    .arg("--headless")
                    .env_remove("PORT")
                    .env_remove("NODE_OPTIONS");
                let base = mock.base_url();
                let headers =
                    [("authorization", "Bearer dummy"), ("x-portkey-provider", "openai"), ("x-portkey-custom-host", base.as_str())];
                ("/", Api::openai(MOCK_MODEL, &headers))
            }
        };
        Target::start(Launch {
            name: self.name().to_string(),
            cmd,
            home,
            port,
            ready_path,
            ready_timeout: Duration::from_secs(120),
            api,
            cpu,
        })
    }
}

/// Node preload: every `server.listen(port[, host], ...)` / `listen({port, host})` binds 127.0.0.1.
const LOOPBACK_PRELOAD: &str = r#"'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === 'object') {
    args[0] = Object.assign({}, args[0], { host: '127.0.0.1' });
  } else if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] === 'string') args[1] = '127.0.0.1'; else args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
"#;

/// Run `cmd` to its end with output appended to `log`, killed after `timeout`.
fn run_bounded(mut cmd: Command, log: &Path, timeout: Duration) -> Result<(), String> {
    let f = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(f.try_clone().map_err(|e| e.to_string())?).stderr(f);
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("{what} failed ({st}): {}", super::log_tail(log, 6))),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}
