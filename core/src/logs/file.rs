//! Where the log goes and when files roll (spec operator §1.1): `openclaw-YYYY-MM-DD.log` (local
//! date) in the OS temp dir's `openclaw/` folder, as the reference — named per gateway
//! (`openclaw-<profile>-…`, `openclaw-<port>-…`) whenever another gateway could share the folder;
//! `logging.file` names one fixed file instead. A file that would pass `logging.maxFileBytes`
//! rotates to `.1.log` … `.5.log`; dated files older than a day are pruned when a new one opens.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `logging.maxFileBytes` when unset (the reference's 100 MiB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;
/// Rotated files kept per day (`.1.log` … `.5.log`).
pub const ROTATED_FILES: u32 = 5;
/// Dated files older than this (by modification time) are pruned.
pub const PRUNE_AGE_MS: u64 = 24 * 60 * 60 * 1000;

/// The log's location and rolling policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub dir: PathBuf,
    /// Dated files are `<prefix>-YYYY-MM-DD.log`; `None` with a fixed `logging.file`.
    pub prefix: Option<String>,
    pub fixed: Option<PathBuf>,
    pub max_file_bytes: u64,
}

impl LogTarget {
    /// From the config (`logging.file`, `logging.maxFileBytes`), the gateway's port and profile,
    /// and the OS temp dir.
    pub fn resolve(config: &Value, port: u16, profile: Option<&str>, temp_dir: &Path) -> LogTarget {
        let max_file_bytes =
            config.pointer("/logging/maxFileBytes").and_then(Value::as_u64).filter(|n| *n > 0).unwrap_or(DEFAULT_MAX_FILE_BYTES);
        if let Some(file) = config.pointer("/logging/file").and_then(Value::as_str).map(str::trim).filter(|f| !f.is_empty()) {
            let fixed = PathBuf::from(file);
            let dir = fixed.parent().map(Path::to_path_buf).unwrap_or_default();
            return LogTarget { dir, prefix: None, fixed: Some(fixed), max_file_bytes };
        }
        let profile = profile.map(str::trim).filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case("default"));
        let prefix = match profile {
            Some(p) => format!("openclaw-{p}"),
            None if port != crate::config::DEFAULT_PORT => format!("openclaw-{port}"),
            None => "openclaw".to_string(),
        };
        LogTarget { dir: temp_dir.join("openclaw"), prefix: Some(prefix), fixed: None, max_file_bytes }
    }

    /// The file to append to on `local_date` (`YYYY-MM-DD`).
    pub fn path_on(&self, local_date: &str) -> PathBuf {
        match (&self.fixed, &self.prefix) {
            (Some(f), _) => f.clone(),
            (None, Some(p)) => self.dir.join(format!("{p}-{local_date}.log")),
            (None, None) => self.dir.join(format!("openclaw-{local_date}.log")),
        }
    }

    /// Whether appending `next` bytes to a file of `size` bytes passes the limit (an empty file
    /// takes any line).
    pub fn needs_rotation(&self, size: u64, next: u64) -> bool {
        size > 0 && size.saturating_add(next) > self.max_file_bytes
    }

    /// Is `name` one of this target's dated files (`<prefix>-YYYY-MM-DD.log`, or rotated
    /// `.N.log`)?
    pub fn is_family(&self, name: &str) -> bool {
        let Some(prefix) = &self.prefix else { return false };
        let Some(rest) = name.strip_prefix(prefix.as_str()).and_then(|r| r.strip_prefix('-')) else { return false };
        let (date, tail) = rest.split_at(rest.len().min(10));
        let b = date.as_bytes();
        let is_date = b.len() == 10 && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
        let rotated = |t: &str| {
            t.strip_prefix('.').and_then(|t| t.strip_suffix(".log")).is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        };
        is_date && (tail == ".log" || rotated(tail))
    }

    /// The files of the family (name, modification time in Unix ms) to delete: older than a day,
    /// never `keep` (the file being opened).
    pub fn to_prune(&self, entries: &[(String, u64)], now_ms: u64, keep: &str) -> Vec<String> {
        entries
            .iter()
            .filter(|(name, mtime)| name != keep && self.is_family(name) && now_ms.saturating_sub(*mtime) > PRUNE_AGE_MS)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The newest dated file of the family (by modification time): what `logs.tail` reads when
    /// today's file does not exist yet. Rotated files are not candidates.
    pub fn newest(&self, entries: &[(String, u64)]) -> Option<String> {
        entries
            .iter()
            .filter(|(name, _)| self.is_family(name) && name.ends_with(".log") && name.matches('.').count() == 1)
            .max_by_key(|(name, mtime)| (*mtime, name.clone()))
            .map(|(name, _)| name.clone())
    }
}

/// `x.log` → `x.<n>.log`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".log").unwrap_or(&name);
    path.with_file_name(format!("{stem}.{n}.log"))
}

/// The renames that rotate `path`, in order: `.4` → `.5` (replacing the oldest), …, `.1` → `.2`,
/// then the file itself → `.1`. Missing sources are skipped by the shell.
pub fn rotation(path: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out: Vec<(PathBuf, PathBuf)> = (1..ROTATED_FILES).rev().map(|n| (rotated(path, n), rotated(path, n + 1))).collect();
    out.push((path.to_path_buf(), rotated(path, 1)));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_reference_location_and_a_name_per_gateway() {
        let tmp = Path::new("/tmp");
        let t = LogTarget::resolve(&json!({}), 18789, None, tmp);
        assert_eq!(t.path_on("2026-12-06"), Path::new("/tmp/openclaw/openclaw-2026-12-06.log"));
        assert_eq!(t.max_file_bytes, DEFAULT_MAX_FILE_BYTES);
        let other_port = LogTarget::resolve(&json!({}), 18800, None, tmp);
        assert_eq!(other_port.path_on("2026-12-06"), Path::new("/tmp/openclaw/openclaw-18800-2026-12-06.log"));
        let profile = LogTarget::resolve(&json!({}), 21000, Some("work"), tmp);
        assert_eq!(profile.path_on("2026-12-06"), Path::new("/tmp/openclaw/openclaw-work-2026-12-06.log"));
        let fixed = LogTarget::resolve(&json!({"logging": {"file": "/var/log/gw.log", "maxFileBytes": 1000}}), 18789, None, tmp);
        assert_eq!((fixed.path_on("2026-12-06"), fixed.max_file_bytes), (PathBuf::from("/var/log/gw.log"), 1000));
        assert!(fixed.to_prune(&[("gw.log".into(), 0)], u64::MAX, "").is_empty(), "a fixed file is never pruned");
    }

    #[test]
    fn families_do_not_mix_and_old_days_are_pruned() {
        let t = LogTarget::resolve(&json!({}), 18789, None, Path::new("/tmp"));
        assert!(t.is_family("openclaw-2026-12-06.log") && t.is_family("openclaw-2026-12-06.3.log"));
        assert!(!t.is_family("openclaw-18800-2026-12-06.log"), "another gateway's file");
        assert!(!t.is_family("openclaw-2026-12-06.log.tmp") && !t.is_family("openclaw-2026-1a-06.log") && !t.is_family("x.log"));
        let day = PRUNE_AGE_MS;
        let now = 10 * day;
        let entries = vec![
            ("openclaw-2026-12-01.log".to_string(), now - 3 * day),
            ("openclaw-2026-12-01.2.log".to_string(), now - 3 * day),
            ("openclaw-2026-12-06.log".to_string(), now - 10),
            ("openclaw-18800-2026-12-01.log".to_string(), now - 3 * day),
            ("notes.txt".to_string(), 0),
        ];
        assert_eq!(t.to_prune(&entries, now, "openclaw-2026-12-06.log"), ["openclaw-2026-12-01.log", "openclaw-2026-12-01.2.log"]);
        assert_eq!(t.newest(&entries).as_deref(), Some("openclaw-2026-12-06.log"));
    }

    #[test]
    fn rotation_shifts_the_numbered_files_and_drops_the_oldest() {
        let t = LogTarget::resolve(&json!({"logging": {"maxFileBytes": 100}}), 18789, None, Path::new("/tmp"));
        assert!(!t.needs_rotation(0, 500), "an empty file takes any line");
        assert!(!t.needs_rotation(60, 40) && t.needs_rotation(61, 40));
        let r = rotation(Path::new("/l/openclaw-2026-12-06.log"));
        assert_eq!(r.len(), 5);
        assert_eq!(r[0], (PathBuf::from("/l/openclaw-2026-12-06.4.log"), PathBuf::from("/l/openclaw-2026-12-06.5.log")));
        assert_eq!(r[4], (PathBuf::from("/l/openclaw-2026-12-06.log"), PathBuf::from("/l/openclaw-2026-12-06.1.log")));
    }
}
