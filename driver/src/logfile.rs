//! The gateway's log file (spec operator §1.1): every `tracing` event the console gets is also
//! appended, as one line in the reference's shape ([`clawgate_core::logs::format_line`]), to the
//! day's file the core names ([`LogTarget`]), rotated by size and pruned by age as the core
//! decides; and `logs.tail` reads it back. Appends are synchronous and short (one `write` of one
//! line, under a mutex); nothing here logs through `tracing` (that would re-enter the layer).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use clawgate_core::Reply;
use clawgate_core::logs::tail::{no_file_result, read_failed, redact_secrets, tail_result};
use clawgate_core::logs::{Level, LogTarget, Record, TailParams, format_line, plan_tail};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

use crate::session::unix_ms;

struct OpenFile {
    path: PathBuf,
    file: File,
    size: u64,
}

#[derive(Default)]
struct Inner {
    target: Option<LogTarget>,
    hostname: String,
    open: Option<OpenFile>,
    /// The file could not be opened or written: said once on stderr, retried on the next day.
    failed: Option<PathBuf>,
}

/// The process's log file.
pub struct LogFile {
    inner: Mutex<Inner>,
    tz: jiff::tz::TimeZone,
}

/// The one log file of this process.
pub fn log_file() -> &'static LogFile {
    static FILE: OnceLock<LogFile> = OnceLock::new();
    FILE.get_or_init(|| LogFile { inner: Mutex::new(Inner::default()), tz: jiff::tz::TimeZone::system() })
}

impl LogFile {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The local UTC offset at `unix_ms` (seconds), from the system time zone.
    pub fn utc_offset(&self, unix_ms: u64) -> i32 {
        i64::try_from(unix_ms)
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map_or(0, |ts| self.tz.to_offset(ts).seconds())
    }

    /// Start (or move) the file: lines before this are on the console only.
    pub fn set_target(&self, target: LogTarget, hostname: &str) {
        let mut inner = self.lock();
        if inner.target.as_ref() != Some(&target) {
            inner.open = None;
            inner.failed = None;
        }
        inner.target = Some(target);
        inner.hostname = hostname.to_string();
    }

    /// Re-derive the target from a reloaded config (`logging.file`, `logging.maxFileBytes`
    /// apply without a restart).
    pub fn retarget(&self, config: &serde_json::Value, port: u16, profile: Option<&str>) {
        let hostname = self.lock().hostname.clone();
        self.set_target(LogTarget::resolve(config, port, profile, &std::env::temp_dir()), &hostname);
    }

    /// The file `logs.tail` reads now (see [`readable_path`]).
    pub fn current_path(&self) -> Option<PathBuf> {
        let target = self.lock().target.clone()?;
        Some(readable_path(&target, self.utc_offset(unix_ms())))
    }

    /// Append one record.
    pub fn append(&self, level: Level, subsystem: &str, message: &str) {
        let now = unix_ms();
        let offset = self.utc_offset(now);
        let mut inner = self.lock();
        let Some(target) = inner.target.clone() else { return };
        let path = target.path_on(&clawgate_core::logs::line::local_date(now, offset));
        let line = format_line(&Record {
            unix_ms: now,
            utc_offset_seconds: offset,
            level,
            subsystem,
            message,
            hostname: &inner.hostname,
            version: clawgate_core::VERSION,
        }) + "\n";
        if inner.open.as_ref().is_none_or(|o| o.path != path) {
            if inner.failed.as_ref() == Some(&path) {
                return;
            }
            inner.open = None;
            match open_append(&path) {
                Ok(o) => {
                    prune(&target, &path, now);
                    inner.open = Some(o);
                }
                Err(e) => {
                    eprintln!("clawgate: log file {} not writable ({e}); logging to the console only", path.display());
                    inner.failed = Some(path);
                    return;
                }
            }
        }
        let Some(open) = inner.open.as_mut() else { return };
        if target.needs_rotation(open.size, line.len() as u64) {
            for (from, to) in clawgate_core::logs::file::rotation(&open.path) {
                let _ = std::fs::rename(&from, &to);
            }
            match open_append(&path) {
                Ok(o) => *open = o,
                Err(_) => {
                    inner.open = None;
                    return;
                }
            }
        }
        if open.file.write_all(line.as_bytes()).is_ok() {
            open.size += line.len() as u64;
        }
    }
}

/// The file of `target` to read now: today's, or (before anything was written today) the
/// newest of the family (spec operator §1.2 step 1).
fn readable_path(target: &LogTarget, utc_offset: i32) -> PathBuf {
    let today = target.path_on(&clawgate_core::logs::line::local_date(unix_ms(), utc_offset));
    if today.exists() || target.fixed.is_some() {
        return today;
    }
    let newest = target.newest(&list_dir(&target.dir));
    newest.map_or(today, |n| target.dir.join(n))
}

/// The log target of the gateway this user would run (its config's `logging.*`, `port`, the
/// profile): where `clawgate logs` reads when that gateway does not answer.
pub fn local_target(port: u16) -> LogTarget {
    let path = crate::state::config_path(&crate::state::state_dir());
    let config = crate::config::load_file(&path).ok().flatten().map(|(c, _)| c.resolved).unwrap_or(serde_json::Value::Null);
    let profile = std::env::var("OPENCLAW_PROFILE").ok();
    LogTarget::resolve(&config, port, profile.as_deref(), &std::env::temp_dir())
}

/// `logs.tail` over the file of `target`, read here (no gateway involved).
pub fn tail_local(target: &LogTarget, p: &TailParams) -> Reply {
    tail_path(Some(readable_path(target, log_file().utc_offset(unix_ms()))), p, &[])
}

fn open_append(path: &Path) -> std::io::Result<OpenFile> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The log names sessions and clients: readable by its owner only.
        opts.mode(0o600);
    }
    let file = opts.open(path)?;
    let size = file.metadata()?.len();
    Ok(OpenFile { path: path.to_path_buf(), file, size })
}

/// `(name, mtime in Unix ms)` of the regular files in `dir`.
fn list_dir(dir: &Path) -> Vec<(String, u64)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64;
            Some((e.file_name().to_string_lossy().into_owned(), mtime))
        })
        .collect()
}

/// Delete the family's files older than a day (when a new file opens).
fn prune(target: &LogTarget, keep: &Path, now: u64) {
    let keep = keep.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for name in target.to_prune(&list_dir(&target.dir), now, &keep) {
        let _ = std::fs::remove_file(target.dir.join(name));
    }
}

/// `logs.tail` (blocking): plan the range in the core, read it, answer; lines pass through the
/// gateway's own secrets' redaction.
pub fn tail(p: &TailParams, secrets: &[String]) -> Reply {
    tail_path(log_file().current_path(), p, secrets)
}

fn tail_path(path: Option<PathBuf>, p: &TailParams, secrets: &[String]) -> Reply {
    let Some(path) = path else {
        return Reply::Ok(Some(no_file_result(p, "")));
    };
    let shown = path.display().to_string();
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Reply::Ok(Some(no_file_result(p, &shown))),
        Err(e) => return Reply::err(read_failed(&e)),
    };
    let read = (|| -> std::io::Result<(clawgate_core::logs::TailPlan, Vec<u8>, bool)> {
        let size = file.metadata()?.len();
        let plan = plan_tail(p, size);
        let from = plan.start.saturating_sub(1);
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        Read::by_ref(&mut file).take(plan.size - from).read_to_end(&mut bytes)?;
        // The byte before `start` says whether the range begins on a line.
        let at_line_start = plan.start == 0 || bytes.first() == Some(&b'\n');
        if plan.start > 0 && !bytes.is_empty() {
            bytes.remove(0);
        }
        Ok((plan, bytes, at_line_start))
    })();
    match read {
        Ok((plan, bytes, at_line_start)) => {
            Reply::Ok(Some(tail_result(p, &plan, &shown, &bytes, at_line_start, &|l| redact_secrets(l, secrets))))
        }
        Err(e) => Reply::err(read_failed(&e)),
    }
}

/// The `tracing` layer that feeds the file.
pub struct FileLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for FileLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::TRACE => Level::Trace,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::ERROR => Level::Error,
        };
        let mut text = Message::default();
        event.record(&mut text);
        log_file().append(level, &subsystem(meta.target()), &text.finish());
    }
}

/// `clawgate_driver::config` → `gateway/config` (the reference's subsystem style); the daemon
/// itself is `gateway`; other crates keep their name.
fn subsystem(target: &str) -> String {
    let mut parts = target.split("::");
    let krate = parts.next().unwrap_or(target);
    let module = parts.next();
    if !krate.starts_with("clawgate") {
        return krate.to_string();
    }
    match module {
        None | Some("daemon") => "gateway".to_string(),
        Some(m) => format!("gateway/{m}"),
    }
}

/// The event's message, then its fields as ` key=value`.
#[derive(Default)]
struct Message {
    message: String,
    fields: String,
}

impl Message {
    fn finish(self) -> String {
        self.message + &self.fields
    }
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields.push_str(&format!(" {}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message.push_str(&format!("{value:?}"));
        } else {
            self.fields.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsystems_read_like_the_references() {
        assert_eq!(subsystem("clawgate_driver::daemon"), "gateway");
        assert_eq!(subsystem("clawgate_driver::config"), "gateway/config");
        assert_eq!(subsystem("clawgate_tokio"), "gateway");
        assert_eq!(subsystem("hyper::proto"), "hyper");
    }
}
