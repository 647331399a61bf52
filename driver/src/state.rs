//! Files in the state dir, and the environment lookups the core's resolvers need.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clawgate_core::config;

/// Read a file the operator points us at (config, includes, secrets, stores) without letting it
/// hang or flood the process: opened non-blocking (a FIFO never waits for a writer), only a
/// regular file (after symlinks: `/dev/zero` is refused), at most `cap` bytes (issue 11).
pub fn read_regular(path: &Path, cap: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let f = opts.open(path)?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if md.len() > cap as u64 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {cap} bytes")));
    }
    let mut out = Vec::with_capacity(md.len() as usize);
    f.take(cap as u64 + 1).read_to_end(&mut out)?;
    if out.len() > cap {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {cap} bytes")));
    }
    Ok(out)
}

/// Largest state file read (token, pairing store, run record).
pub const MAX_STATE_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Where our gateway token lives inside the state dir.
pub const TOKEN_FILE: &str = "clawgate/gateway.token";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn os_home() -> Option<String> {
    std::env::var("HOME").ok()
}

/// The effective home (config-auth-reload §1.1: `OPENCLAW_HOME`, `HOME`, …).
pub fn home() -> String {
    config::resolve_home(env, os_home())
}

/// The resolved state dir (`OPENCLAW_STATE_DIR`, else `~/.openclaw`).
pub fn state_dir() -> String {
    config::resolve_state_dir(env, os_home(), |p| Path::new(p).is_dir())
}

/// The resolved config path (`OPENCLAW_CONFIG_PATH`, else `<stateDir>/openclaw.json`).
pub fn config_path(state_dir: &str) -> String {
    config::resolve_config_path(env, state_dir, os_home().as_deref())
}

pub fn token_path(state_dir: &str) -> PathBuf {
    Path::new(state_dir).join(TOKEN_FILE)
}

pub fn devices_path(state_dir: &str) -> PathBuf {
    Path::new(state_dir).join("clawgate/devices.json")
}

/// How the pairing store loaded.
#[derive(Debug)]
pub enum DevicesLoad {
    /// The file (or no file: a fresh store).
    Loaded(clawgate_core::auth::device::DeviceStore),
    /// The file did not parse: it was moved aside and these are the records read from it.
    Recovered { salvaged: clawgate_core::auth::device::SalvagedStore, moved_to: PathBuf },
    /// The file could not be read or moved aside: it must not be written over.
    Unusable { error: String },
}

/// The paired devices kept in the state dir (empty when the file does not exist yet). A file
/// that does not parse is never left to be overwritten: it is renamed to
/// `devices.json.corrupt-<unix ms>` and its intact records are returned.
pub fn load_devices(state_dir: &str, unix_ms: u64) -> DevicesLoad {
    let path = devices_path(state_dir);
    let bytes = match read_regular(&path, MAX_STATE_FILE_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return DevicesLoad::Loaded(Default::default()),
        Err(e) => return DevicesLoad::Unusable { error: format!("cannot read {}: {e}", path.display()) },
    };
    if let Ok(store) = serde_json::from_slice(&bytes) {
        return DevicesLoad::Loaded(store);
    }
    let salvaged = clawgate_core::auth::device::salvage_store(&bytes);
    let mut stamp = unix_ms;
    let moved_to = loop {
        let candidate = path.with_file_name(format!("devices.json.corrupt-{stamp}"));
        if !candidate.exists() {
            break candidate;
        }
        stamp += 1;
    };
    match fs::rename(&path, &moved_to) {
        Ok(()) => DevicesLoad::Recovered { salvaged, moved_to },
        Err(e) => DevicesLoad::Unusable {
            error: format!("{} does not parse ({}) and cannot be moved aside: {e}", path.display(), salvaged.error),
        },
    }
}

/// Save the paired devices (device tokens are secrets: mode 0600, atomic rename).
pub fn save_devices(state_dir: &str, store: &clawgate_core::auth::device::DeviceStore) -> std::io::Result<()> {
    let path = devices_path(state_dir);
    let bytes = serde_json::to_vec_pretty(store).map_err(std::io::Error::other)?;
    write_private_atomic(&path, &bytes)
}

/// Write `bytes` to `path` through a 0600 temp file in the same dir, fsync, rename.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    write_atomic(path, bytes, 0o600)
}

/// Replace `path` atomically: a temp file in the same dir (created with `mode`), fsync, rename,
/// fsync the dir. A crash leaves either the old or the new file, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per write (pid + counter): concurrent writers never share a temp file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let written = (|| {
        let mut f = open_with_mode(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Remove temp files that [`write_atomic`] left beside `path` when a process died mid-write
/// (they may hold a partial copy of a config with plaintext secrets). Files of a live process
/// are left alone.
pub fn remove_stale_temp_files(path: &Path) -> usize {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !process_alive(pid) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a pid is a live process (Linux: `/proc`; elsewhere assumed alive).
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new(&format!("/proc/{pid}")).exists() } else { true }
}

/// Read the kept token, if there is one.
pub fn read_token(state_dir: &str) -> std::io::Result<Option<String>> {
    match read_regular(&token_path(state_dir), 64 * 1024) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The kept token, generated (24 random bytes, hex) and written with mode 0600 on first use.
/// The write is atomic: a temp file in the same dir renamed into place.
pub fn load_or_create_token(state_dir: &str) -> std::io::Result<String> {
    if let Some(t) = read_token(state_dir)? {
        return Ok(t);
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token = clawgate_core::ids::hex(&bytes);
    write_private_atomic(&token_path(state_dir), format!("{token}\n").as_bytes())?;
    Ok(token)
}

#[cfg(unix)]
fn open_with_mode(path: &Path, mode: u32) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path)
}

#[cfg(not(unix))]
fn open_with_mode(path: &Path, _mode: u32) -> std::io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// Where a running gateway records its address (`<stateDir>/clawgate/gateway.run.json`), so
/// that client commands with nothing configured find a gateway started with `run --port N`.
pub fn run_file_path(state_dir: &str) -> PathBuf {
    Path::new(state_dir).join("clawgate/gateway.run.json")
}

/// Record this process as the gateway of `state_dir`, listening on `port` (no secrets inside).
pub fn write_run_file(state_dir: &str, port: u16, bind: &str) -> std::io::Result<()> {
    let v = serde_json::json!({"pid": std::process::id(), "port": port, "bind": bind});
    write_private_atomic(&run_file_path(state_dir), format!("{v}\n").as_bytes())
}

/// Remove the record, if it is ours (a newer gateway may have replaced it).
pub fn remove_run_file(state_dir: &str) {
    if read_run_file(state_dir).is_some_and(|(pid, _)| pid == std::process::id()) {
        let _ = fs::remove_file(run_file_path(state_dir));
    }
}

/// The recorded gateway of `state_dir`: `(pid, port)`, only while that process is alive.
pub fn read_run_file(state_dir: &str) -> Option<(u32, u16)> {
    let text = String::from_utf8(read_regular(&run_file_path(state_dir), 64 * 1024).ok()?).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
    let port = u16::try_from(v.get("port")?.as_u64()?).ok().filter(|p| *p > 0)?;
    (process_alive(pid) && is_clawgate(pid)).then_some((pid, port))
}

/// Is `pid` a clawgate process (not another program that reused a dead gateway's pid)? The
/// record's port must not lead a client, with its token, to whatever listens there now.
fn is_clawgate(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim().starts_with("clawgate"))
    } else {
        true
    }
}
