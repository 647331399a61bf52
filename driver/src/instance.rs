//! One gateway per state dir (config-auth-reload §8.1) and the profile flags (§1.2): the IO
//! half of `clawgate_core::service::{lock, profile}`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clawgate_core::config::StartupError;
use clawgate_core::service::lock::{self, LOCK_POLL, LOCK_WAIT, LockRecord};

use crate::rt::Runtime;

pub fn lock_path(state_dir: &str) -> PathBuf {
    Path::new(state_dir).join(lock::LOCK_FILE)
}

/// Apply `--dev` / `--profile NAME` to this process's environment, before anything reads it.
/// Call it first thing in `main`, while the process has one thread.
#[allow(unsafe_code)]
pub fn apply_profile(dev: bool, profile: Option<&str>) -> Result<(), String> {
    let env = |k: &str| std::env::var(k).ok();
    let home = crate::state::home();
    let vars = clawgate_core::service::profile::profile_env(dev, profile, env, &home).map_err(|e| e.to_string())?;
    for (k, v) in vars {
        // SAFETY: called from `main` before any thread (runtime, logger, pool) is started, so
        // no other thread can be reading the environment.
        unsafe { std::env::set_var(k, v) };
    }
    Ok(())
}

/// The held ownership lock of a state dir. Dropping it (a clean exit) removes the file; a
/// process that dies leaves the file, but the kernel releases the lock with it.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
    record: LockRecord,
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

fn read_record(file: &mut File) -> Option<LockRecord> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64 * 1024).read_to_end(&mut buf).ok()?;
    LockRecord::parse(&buf)
}

/// Is `file` still the file at `path`? A clean exit removes the path: a gateway that opened the
/// old file just before must not believe it owns the state dir.
fn still_linked(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Take an exclusive advisory lock on `file` without waiting: `Ok(false)` when another open
/// file description holds it. (`flock`: released by the kernel when the holder dies; `File::
/// try_lock` does the same but needs Rust 1.89, above this workspace's MSRV.)
#[cfg(unix)]
#[allow(unsafe_code)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: `flock` on a descriptor this `File` owns and keeps open for the call.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock { Ok(false) } else { Err(e) }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

impl StateLock {
    /// Take the state dir's lock for a gateway on `port`, waiting up to [`LOCK_WAIT`] for an
    /// owner to go; refused with the owner's pid and port (exit 78 under a supervisor).
    pub async fn acquire<R: Runtime>(
        rt: &R,
        state_dir: &str,
        (port, bind): (u16, &str),
        started_at_ms: u64,
        supervised: bool,
    ) -> Result<StateLock, StartupError> {
        let path = lock_path(state_dir);
        let began = Instant::now();
        loop {
            let mut file = open_lock_file(&path).map_err(|e| {
                StartupError::failure(format!("Gateway failed to start: cannot open the state dir's lock {}: {e}", path.display()))
            })?;
            match try_lock(&file) {
                Ok(true) if !still_linked(&file, &path) => continue,
                Ok(true) => {
                    let previous = read_record(&mut file);
                    if let Some(note) = lock::takeover_note(previous.as_ref(), crate::state::process_alive) {
                        tracing::warn!("{note}");
                    }
                    let record = LockRecord {
                        pid: std::process::id(),
                        port,
                        bind: bind.to_string(),
                        started_at_ms,
                        state_dir: state_dir.to_string(),
                    };
                    let mut held = StateLock { file, path, record };
                    held.write_record().map_err(|e| {
                        StartupError::failure(format!(
                            "Gateway failed to start: cannot write the state dir's lock {}: {e}",
                            held.path.display()
                        ))
                    })?;
                    return Ok(held);
                }
                Ok(false) => {
                    if began.elapsed() >= LOCK_WAIT {
                        let owner = read_record(&mut file);
                        return Err(lock::refusal(owner.as_ref(), state_dir, LOCK_WAIT, supervised));
                    }
                    drop(file);
                    rt.sleep_until(Instant::now() + LOCK_POLL).await;
                }
                Err(e) => {
                    return Err(StartupError::failure(format!(
                        "Gateway failed to start: cannot lock the state dir ({}): {e}",
                        path.display()
                    )));
                }
            }
        }
    }

    fn write_record(&mut self) -> std::io::Result<()> {
        let text = self.record.to_json();
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }

    /// The gateway moved (an in-process restart onto another port or bind): say so in the record.
    pub fn set_address(&mut self, port: u16, bind: &str) {
        self.record.port = port;
        self.record.bind = bind.to_string();
        if let Err(e) = self.write_record() {
            tracing::warn!("cannot update the state dir's lock {}: {e}", self.path.display());
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        if still_linked(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What the lock file of a state dir says right now (for `status` and `doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// No lock file: no gateway owns the state dir.
    Absent,
    /// A gateway holds it.
    Held(Option<LockRecord>),
    /// A file nobody holds: left by a gateway that did not exit cleanly.
    Stale(Option<LockRecord>),
}

pub fn lock_state(state_dir: &str) -> LockState {
    let path = lock_path(state_dir);
    let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&path) else {
        return if path.exists() { LockState::Held(None) } else { LockState::Absent };
    };
    let record = read_record(&mut file);
    match try_lock(&file) {
        // Closing the file (end of scope) releases the probe's lock.
        Ok(true) => LockState::Stale(record),
        _ => LockState::Held(record),
    }
}

/// Remove a stale lock file (nobody holds it). Taking the lock first makes sure no gateway
/// starts owning it in between.
pub fn remove_stale_lock(state_dir: &str) -> std::io::Result<bool> {
    let path = lock_path(state_dir);
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match try_lock(&file) {
        Ok(true) if still_linked(&file, &path) => {
            fs::remove_file(&path)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
