//! Processes: the gateway binary, a running gateway, short-lived commands with a timeout.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::workspace_root;

// ---- temp dirs ------------------------------------------------------------------------------

/// A directory removed (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A fresh, empty directory under the system temp dir.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("clawgate-e2e-{label}-{}-{n}-{}", std::process::id(), crate::random_hex(6)));
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create temp dir {}: {e}", path.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("CLAWGATE_KEEP_TEMP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---- the binary ---------------------------------------------------------------------------

/// The target profile dir this test executable lives in (`target/debug` for `target/debug/deps/x-hash`).
fn target_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") { dir.parent().map(Path::to_path_buf) } else { Some(dir.to_path_buf()) }
}

fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Newest modification time among the sources that go into the `clawgate` binary.
fn newest_source_mtime() -> Option<std::time::SystemTime> {
    fn walk(p: &Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(md) = fs::metadata(p) else { return };
        if md.is_dir() {
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), newest);
                }
            }
        } else if let Ok(m) = md.modified() {
            if newest.is_none_or(|n| m > n) {
                *newest = Some(m);
            }
        }
    }
    let root = workspace_root();
    let mut newest = None;
    for p in [
        "core/src",
        "core/Cargo.toml",
        "driver/src",
        "runtime-smol/src",
        "driver/Cargo.toml",
        "runtime-tokio/src",
        "runtime-tokio/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        walk(&root.join(p), &mut newest);
    }
    newest
}

/// The gateway binary under test: `$CLAWGATE_BIN` (used as is), else
/// `<target>/<profile>/clawgate` next to this test executable. That one is built once per test
/// process with `cargo build -p clawgate-tokio --bin clawgate` when it is missing or older than
/// its sources (so a stale binary is never tested); `CLAWGATE_NO_BUILD=1` disables the rebuild of
/// an existing binary.
/// Which binary a test executable exercises: the `lite_e2e` test target (the `e2e` suites,
/// included with `#[path]`) runs against `clawgate-lite` (smol), all others against `clawgate`
/// (tokio).
pub fn runtime_under_test() -> (&'static str, &'static str) {
    let exe = std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default();
    if exe.starts_with("lite_") { ("clawgate-lite", "clawgate-smol") } else { ("clawgate", "clawgate-tokio") }
}

pub fn clawgate_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    static BUILD_LOCK: Mutex<()> = Mutex::new(());
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CLAWGATE_BIN").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "CLAWGATE_BIN={} does not exist", p.display());
            return p;
        }
        let dir = target_profile_dir().unwrap_or_else(|| workspace_root().join("target").join("debug"));
        let (name, package) = runtime_under_test();
        let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let stale = || {
            let built = fs::metadata(&bin).and_then(|m| m.modified()).ok();
            match (built, newest_source_mtime()) {
                (None, _) => true,
                (Some(_), _) if std::env::var_os("CLAWGATE_NO_BUILD").is_some_and(|v| !v.is_empty() && v != "0") => false,
                (Some(b), Some(src)) => src > b,
                (Some(_), None) => false,
            }
        };
        if stale() {
            let mut cmd = Command::new(cargo());
            cmd.current_dir(workspace_root()).args(["build", "-p", package, "--bin", name]);
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build");
            assert!(status.success(), "cargo build -p {package} --bin {name} failed: {status}");
        }
        assert!(bin.is_file(), "{} is missing", bin.display());
        bin
    })
    .clone()
}

/// The version the binary reports (last word of `clawgate --version`, e.g. `0.1.0`).
pub fn clawgate_version() -> String {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let out = run_command(Command::new(clawgate_bin()).arg("--version"), Duration::from_secs(30));
        assert_eq!(out.code, Some(0), "clawgate --version failed: {out:?}");
        out.stdout.split_whitespace().last().unwrap_or_else(|| panic!("empty --version output: {out:?}")).to_string()
    })
    .clone()
}

// ---- short-lived commands -----------------------------------------------------------------

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Exit code; `None` when killed by a signal (or on timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// Run `cmd` to completion (stdin closed, output captured in temp files), killing it after `timeout`.
pub fn run_command(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    run_command_with_stdin(cmd, Stdio::null(), timeout)
}

/// [`run_command`] with `stdin` (e.g. a file) as the child's standard input.
pub fn run_command_with_stdin(cmd: &mut Command, stdin: Stdio, timeout: Duration) -> CmdOutput {
    let dir = TempDir::new("cmd");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let started = Instant::now();
    let mut child = cmd
        .stdin(stdin)
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    let deadline = started + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("wait for {cmd:?}: {e}"),
        }
    };
    CmdOutput {
        code: if timed_out { None } else { status.and_then(|s| s.code()) },
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
        timed_out,
        elapsed: started.elapsed(),
    }
}

/// Run `clawgate <args>` as the user in another shell: HOME `home`, state dir `<home>/state`,
/// plus `env`. It must exit by itself within a minute.
pub fn run_clawgate(home: &Path, args: &[&str], env: &[(&str, &str)]) -> CmdOutput {
    let mut cmd = Command::new(clawgate_bin());
    base_env(&mut cmd, home);
    cmd.env("OPENCLAW_STATE_DIR", home.join("state"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    let out = run_command(&mut cmd, Duration::from_secs(60));
    assert!(!out.timed_out, "`clawgate {}` did not exit within a minute:\n{}", args.join(" "), out.stderr);
    out
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// Can this host bind `[::1]`?
pub fn ipv6_loopback_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// `GET <path>` over plain HTTP/1.1; returns (status, body) or `None` if nothing answered.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1)?.parse::<u16>().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// The minimal environment every child gets (nothing inherited that could configure the gateway).
pub fn base_env(cmd: &mut Command, home: &Path) {
    cmd.env_clear();
    for key in ["PATH", "LANG", "SystemRoot"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("HOME", home);
    // Each test's own temp dir: the gateway's log file (`$TMPDIR/openclaw/…`, where the
    // reference keeps it) stays with the test instead of piling up in the machine's /tmp.
    let tmp = home.join("tmp");
    let _ = fs::create_dir_all(&tmp);
    cmd.env("TMPDIR", tmp);
}

// ---- a running gateway --------------------------------------------------------------------

/// How to start a gateway.
#[derive(Debug, Clone)]
pub struct GatewayBuilder {
    token: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    home: Option<Arc<TempDir>>,
    port: Option<u16>,
    port_via_env: bool,
    /// Pass no port at all (it comes from the config file).
    port_from_config: bool,
    /// Written to `<home>/state/openclaw.json` before the start (`{{PORT}}` becomes the port).
    config: Option<String>,
    log_name: String,
    /// A command the gateway is started through (e.g. `prlimit --nofile=1024:`), which must exec it.
    wrapper: Vec<String>,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        GatewayBuilder::new()
    }
}

impl GatewayBuilder {
    /// Token auth with a fresh random 12-char token (same length as the captures' `testtoken123`,
    /// so replayed frames keep their exact byte size after substitution).
    pub fn new() -> Self {
        GatewayBuilder {
            token: Some(crate::random_hex(12)),
            args: Vec::new(),
            env: Vec::new(),
            home: None,
            port: None,
            port_via_env: false,
            port_from_config: false,
            config: None,
            log_name: "gateway".into(),
            wrapper: Vec::new(),
        }
    }

    /// Start the gateway through this command (it must exec the gateway, keeping the pid).
    pub fn wrapper<I: IntoIterator<Item = S>, S: Into<String>>(mut self, w: I) -> Self {
        self.wrapper = w.into_iter().map(Into::into).collect();
        self
    }

    /// Pass no `--token` (the gateway resolves auth from the environment or the state dir).
    pub fn no_token(mut self) -> Self {
        self.token = None;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Reuse a HOME (and therefore the state dir `<home>/state`), e.g. for a restart.
    pub fn home(mut self, home: Arc<TempDir>) -> Self {
        self.home = Some(home);
        self
    }

    /// Use this port (no retry on collision).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Pass the port as `OPENCLAW_GATEWAY_PORT` instead of `--port`.
    pub fn port_via_env(mut self) -> Self {
        self.port_via_env = true;
        self
    }

    /// Write this config file to `<home>/state/openclaw.json` before starting (every `{{PORT}}`
    /// is replaced by the port the gateway is started on).
    pub fn config(mut self, text: impl Into<String>) -> Self {
        self.config = Some(text.into());
        self
    }

    /// Pass the port neither as `--port` nor in the environment: the config file must hold it
    /// (`gateway.port: {{PORT}}`), so config edits can move it.
    pub fn port_from_config(mut self) -> Self {
        self.port_from_config = true;
        self
    }

    /// File name stem for stdout/stderr in HOME (distinguish restarts).
    pub fn log_name(mut self, name: impl Into<String>) -> Self {
        self.log_name = name.into();
        self
    }

    /// The command line, without spawning (for tests that expect the start to fail).
    pub fn command(&self, home: &Path, port: u16) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(clawgate_bin());
                c
            }
            None => Command::new(clawgate_bin()),
        };
        base_env(&mut cmd, home);
        cmd.env("OPENCLAW_STATE_DIR", home.join("state"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.arg("run");
        if self.port_from_config {
            // The port is in the config file.
        } else if self.port_via_env {
            cmd.env("OPENCLAW_GATEWAY_PORT", port.to_string());
        } else {
            cmd.arg("--port").arg(port.to_string());
        }
        if let Some(t) = &self.token {
            cmd.arg("--token").arg(t);
        }
        cmd.args(&self.args);
        cmd
    }

    /// Start and wait until `GET /healthz` answers 200. Panics (with the gateway's stderr) if it
    /// does not come up.
    pub fn start(self) -> Gateway {
        let home = self.home.clone().unwrap_or_else(|| Arc::new(TempDir::new("home")));
        let attempts = if self.port.is_some() { 1 } else { 5 };
        let mut last_err = String::new();
        for attempt in 0..attempts {
            let port = self.port.unwrap_or_else(free_port);
            let stdout_path = home.path().join(format!("{}.{attempt}.stdout.log", self.log_name));
            let stderr_path = home.path().join(format!("{}.{attempt}.stderr.log", self.log_name));
            if let Some(text) = &self.config {
                let path = home.path().join("state").join("openclaw.json");
                fs::create_dir_all(home.path().join("state")).expect("create the state dir");
                fs::write(&path, text.replace("{{PORT}}", &port.to_string())).expect("write the config file");
            }
            let child = self
                .command(home.path(), port)
                .stdin(Stdio::null())
                .stdout(fs::File::create(&stdout_path).expect("gateway stdout file"))
                .stderr(fs::File::create(&stderr_path).expect("gateway stderr file"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", clawgate_bin().display()));
            let mut gw = Gateway {
                child: Some(child),
                port,
                token: self.token.clone(),
                state_dir: home.path().join("state"),
                home: home.clone(),
                stdout_path,
                stderr_path,
            };
            match gw.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return gw,
                Err(e) => {
                    let stderr = gw.stderr();
                    drop(gw);
                    let collision = stderr.contains("EADDRINUSE") || stderr.contains("already listening") || stderr.contains("in use");
                    last_err = format!("{e}\n--- gateway stderr ---\n{stderr}");
                    if !collision {
                        break;
                    }
                }
            }
        }
        panic!("gateway did not start: {last_err}");
    }
}

/// A `clawgate run` child process; SIGTERM (then SIGKILL) on drop.
#[derive(Debug)]
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
    /// The token passed with `--token` (None when the gateway resolved its own).
    pub token: Option<String>,
    /// `OPENCLAW_STATE_DIR` given to the process (`<home>/state`).
    pub state_dir: PathBuf,
    pub home: Arc<TempDir>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Gateway {
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::new()
    }

    /// Default: token auth with a random token.
    pub fn start() -> Gateway {
        GatewayBuilder::new().start()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `ws://127.0.0.1:<port>` (path `/`, as the CLI uses).
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The token clients should use (panics if the gateway was started without `--token`).
    pub fn token(&self) -> String {
        self.token.clone().expect("gateway started without --token; read the token from the state dir")
    }

    /// The config file the gateway reads (`<state>/openclaw.json`).
    /// The HOME this gateway runs with.
    pub fn home_path(&self) -> &Path {
        self.home.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.state_dir.join("openclaw.json")
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("gateway exited during startup: {status}"));
                }
            }
            if let Some((200, _)) = http_get(self.addr(), "/healthz", Duration::from_millis(500)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("no 200 from GET /healthz on {} within {timeout:?}", self.addr()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal to the process.
    #[allow(unsafe_code)]
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// Has the process exited? (non-blocking)
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait for the process to exit, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_exit_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL. Returns the exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        if let Ok(Some(s)) = child.try_wait() {
            self.child = None;
            return Some(s);
        }
        self.signal(libc::SIGTERM);
        let status = match self.wait_exit(Duration::from_secs(5)) {
            Some(s) => Some(s),
            None => {
                let child = self.child.as_mut().expect("child");
                let _ = child.kill();
                child.wait().ok()
            }
        };
        self.child = None;
        status
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Make sure `path` exists, installing Debian's `package` when it does not and we may (root, or
/// password-less sudo): once per process, under a file lock shared by every test process, so
/// `cargo test --workspace` also works on a fresh machine (`.ci/run` installs them up front).
pub fn ensure_debian_package(path: &str, package: &str) {
    static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|p| p == package) {
        return;
    }
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(format!("clawgate-{package}-install.lock")))
        .expect("open the package install lock");
    crate::openclaw::flock(&lock, libc::LOCK_EX).expect("lock the package install");
    if !Path::new(path).exists() {
        // SAFETY: getuid(2) has no preconditions.
        #[allow(unsafe_code)]
        let root = unsafe { libc::getuid() } == 0;
        let apt = |args: &[&str]| {
            let mut cmd = if root { Command::new("apt-get") } else { Command::new("sudo") };
            if !root {
                cmd.args(["-n", "apt-get"]);
            }
            cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            run_command(&mut cmd, Duration::from_secs(900))
        };
        if !apt(&["install", "-y", "-qq", package]).success() {
            let _ = apt(&["update", "-qq"]);
            let out = apt(&["install", "-y", "-qq", package]);
            assert!(out.success(), "could not install {package} (apt-get install {package}): {out:?}");
        }
    }
    let _ = crate::openclaw::flock(&lock, libc::LOCK_UN);
    assert!(Path::new(path).exists(), "{path} is missing: install Debian's {package} (.ci/run does)");
    done.push(package.to_string());
}
