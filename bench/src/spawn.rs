//! Starting gateways under test (fresh HOME, own port, own token), timing process start → first
//! `connect.challenge`, and stopping them again (SIGTERM, then SIGKILL; worker processes too).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::procfs;
use crate::sys;

/// How a binary is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Flavor {
    /// `BIN run --port P --token T` (clawgate, clawgate-lite, bench-echo).
    Clawgate,
    /// `BIN gateway run --allow-unconfigured --port P --bind loopback --auth token --token T`
    /// (the reference via `openclaw-ref`).
    Reference,
}

#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub name: String,
    pub path: PathBuf,
    pub flavor: Flavor,
}

/// A running gateway we started. Stopped (and its HOME removed) on drop.
pub struct Spawned {
    child: Child,
    pub pid: u32,
    pub port: u16,
    pub home: PathBuf,
}

/// A port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn temp_home(label: &str) -> std::io::Result<PathBuf> {
    static N: AtomicU64 = AtomicU64::new(0);
    let safe: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    loop {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("clawgate-bench-{safe}-{}-{n}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Environment that would redirect a gateway's port, token or state: never inherited.
const SCRUB_ENV: &[&str] = &[
    "OPENCLAW_GATEWAY_PORT",
    "OPENCLAW_GATEWAY_TOKEN",
    "OPENCLAW_GATEWAY_PASSWORD",
    "OPENCLAW_STATE_DIR",
    "OPENCLAW_HOME",
    "OPENCLAW_PROFILE",
    "OPENCLAW_CONFIG_PATH",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
];

/// Start `spec` on `port`. Returns the process and the instant just before `spawn`.
pub fn spawn(spec: &SpawnSpec, port: u16, token: &str) -> std::io::Result<(Spawned, Instant)> {
    let home = temp_home(&spec.name)?;
    let log = match std::fs::File::create(home.join("gateway.log")) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&home);
            return Err(e);
        }
    };
    let mut cmd = Command::new(&spec.path);
    for k in SCRUB_ENV {
        cmd.env_remove(k);
    }
    let port_s = port.to_string();
    match spec.flavor {
        Flavor::Clawgate => {
            cmd.args(["run", "--port", &port_s, "--token", token]);
        }
        Flavor::Reference => {
            // The reference installs itself under $HOME/.cache unless told where it already is.
            if std::env::var_os("OPENCLAW_REF_DIR").is_none() {
                if let Some(h) = std::env::var_os("HOME") {
                    cmd.env("OPENCLAW_REF_DIR", Path::new(&h).join(".cache/clawgate/openclaw-ref"));
                }
            }
            cmd.args([
                "gateway",
                "run",
                "--allow-unconfigured",
                "--port",
                &port_s,
                "--bind",
                "loopback",
                "--auth",
                "token",
                "--token",
                token,
            ]);
        }
    }
    sys::die_with_parent(&mut cmd);
    cmd.env("HOME", &home).current_dir(&home).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let t0 = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&home);
            return Err(e);
        }
    };
    let pid = child.id();
    Ok((Spawned { child, pid, port, home }, t0))
}

impl Spawned {
    /// The last lines of the gateway's log (for error messages).
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(self.home.join("gateway.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; descendants (worker processes) likewise.
    pub fn stop(&mut self, grace: Duration) {
        let kids = procfs::descendants(self.pid);
        if self.exited().is_none() {
            sys::kill(self.pid, sys::SIGTERM);
            let deadline = Instant::now() + grace;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if self.exited().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // Workers normally exit with their parent; make sure.
        let alive = |p: u32| Path::new(&format!("/proc/{p}")).exists();
        for &k in &kids {
            if alive(k) {
                sys::kill(k, sys::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while kids.iter().any(|&k| alive(k)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for &k in &kids {
            if alive(k) {
                sys::kill(k, sys::SIGKILL);
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// Poll-connect until the server's first WebSocket frame (`connect.challenge`) arrives; the
/// elapsed time from `t0` is measured when that frame has been read. Blocking, precise sleeps.
pub fn wait_for_challenge(sp: &mut Spawned, t0: Instant, timeout: Duration) -> Result<Duration, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], sp.port).into();
    let deadline = t0 + timeout;
    let mut attempts = 0u64;
    loop {
        if let Some(st) = sp.exited() {
            return Err(format!("exited ({st}) before serving; log:\n{}", sp.log_tail()));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("no connect.challenge within {timeout:?} ({attempts} attempts); log:\n{}", sp.log_tail()));
        }
        attempts += 1;
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => match first_frame(s, deadline.min(Instant::now() + Duration::from_secs(5))) {
                Ok((text, at)) if text.contains("connect.challenge") => return Ok(at - t0),
                Ok(_) | Err(_) => std::thread::sleep(Duration::from_millis(2)),
            },
            Err(_) => {
                // Fine-grained at first (our gateways are up within milliseconds), coarser later.
                let pause = if now - t0 < Duration::from_millis(100) { Duration::from_micros(200) } else { Duration::from_millis(2) };
                std::thread::sleep(pause);
            }
        }
    }
}

/// Upgrade and read the first text frame (blocking). Returns it and when it was complete.
fn first_frame(mut s: TcpStream, deadline: Instant) -> Result<(String, Instant), String> {
    let _ = s.set_nodelay(true);
    let host = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timeout".into());
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("eof".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let at = Instant::now();
        let Some(h) = crate::ws::find(&buf, b"\r\n\r\n") else { continue };
        if !buf.starts_with(b"HTTP/1.1 101") {
            return Err(String::from_utf8_lossy(&buf[..h]).into_owned());
        }
        let f = &buf[h + 4..];
        if f.len() < 2 {
            continue;
        }
        let (len, hdr) = match f[1] & 0x7f {
            126 if f.len() >= 4 => (u16::from_be_bytes([f[2], f[3]]) as usize, 4),
            126 => continue,
            127 => return Err("huge first frame".into()),
            n => (n as usize, 2),
        };
        if f.len() >= hdr + len {
            return Ok((String::from_utf8_lossy(&f[hdr..hdr + len]).into_owned(), at));
        }
    }
}
