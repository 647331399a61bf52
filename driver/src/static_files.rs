//! The file IO of the Control UI (`gateway.controlUi.root`): the core decided which relative
//! path to serve ([`clawgate_core::http::control_ui::FileJob`]); this module resolves it under the
//! root (canonicalized: a symlink leading out of the root is a 404), stats and reads it off the
//! reactor, and keeps the rewritten `index.html` per (path, mtime, length, base path) so it is
//! not rewritten on every request.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use clawgate_core::http::HttpResponse;
use clawgate_core::http::control_ui::{FileJob, FileMeta, RenderedIndex, StaticPlan, Unavailable, expand_root, render_index};

use crate::rt::Runtime;

/// Serve one Control UI file request.
pub async fn serve<R: Runtime>(rt: &R, job: FileJob) -> HttpResponse {
    if job.root.is_none() {
        return job.unavailable(&Unavailable::NotConfigured);
    }
    rt.spawn_blocking(move || serve_blocking(&job)).await
}

/// A found file: its canonical path and facts.
struct Found {
    path: PathBuf,
    meta: FileMeta,
}

fn serve_blocking(job: &FileJob) -> HttpResponse {
    let raw = job.root.as_deref().unwrap_or_default();
    let root = match usable_root(raw) {
        Ok(r) => r,
        Err(reason) => {
            let why = Unavailable::BadRoot { root: raw.to_string(), reason };
            warn_once(&why.to_string());
            return job.unavailable(&why);
        }
    };
    let index = match (lookup(&root, &job.target.rel), job.is_index()) {
        (Some(f), false) => {
            return match job.static_file(f.meta) {
                StaticPlan::Respond(r) => r,
                StaticPlan::ReadBody => match std::fs::read(&f.path) {
                    Ok(body) => job.static_body(f.meta, body),
                    Err(e) => {
                        tracing::debug!(path = %f.path.display(), "control ui: read failed: {e}");
                        job.not_found()
                    }
                },
            };
        }
        // An index document is served as the shell.
        (Some(f), true) => f,
        // Missing: the root's shell (SPA fallback), or a 404.
        (None, _) if job.missing_serves_index() => match lookup(&root, "index.html") {
            Some(f) => f,
            None => {
                let why = Unavailable::BadRoot { root: raw.to_string(), reason: "it has no index.html".into() };
                warn_once(&why.to_string());
                return job.unavailable(&why);
            }
        },
        (None, _) => return job.not_found(),
    };
    match rendered_index(&index, &job.base_path, job.terminal_enabled) {
        Ok(r) => job.index(&r),
        Err(e) => {
            tracing::warn!(path = %index.path.display(), "control ui: cannot read index.html: {e}");
            job.not_found()
        }
    }
}

/// The canonical root, if it is a directory holding an `index.html`.
fn usable_root(raw: &str) -> Result<PathBuf, String> {
    let home = std::env::var("HOME").ok();
    let expanded = expand_root(raw, home.as_deref());
    let root = std::fs::canonicalize(&expanded).map_err(|e| format!("cannot open it ({e})"))?;
    if !root.is_dir() {
        return Err("it is not a directory".into());
    }
    if !root.join("index.html").is_file() {
        return Err("it has no index.html (point it at the dist/control-ui directory of an OpenClaw install)".into());
    }
    Ok(root)
}

/// `rel` under `root`, following symlinks only as long as they stay inside the root.
fn lookup(root: &Path, rel: &str) -> Option<Found> {
    let path = std::fs::canonicalize(root.join(rel)).ok()?;
    if !path.starts_with(root) {
        tracing::debug!(rel, "control ui: refused a path leading out of the root");
        return None;
    }
    let md = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
    let mtime_unix_ms = md.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as u64);
    Some(Found { path, meta: FileMeta { mtime_unix_ms, len: md.len() } })
}

/// What identifies one rendering of an index file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IndexKey {
    path: PathBuf,
    mtime_unix_ms: u64,
    len: u64,
    base_path: String,
    terminal_enabled: bool,
}

/// The last few renderings (one per index file and base path in practice).
static INDEX_CACHE: Mutex<Vec<(IndexKey, Arc<RenderedIndex>)>> = Mutex::new(Vec::new());
const INDEX_CACHE_ENTRIES: usize = 4;

fn rendered_index(index: &Found, base_path: &str, terminal_enabled: bool) -> std::io::Result<Arc<RenderedIndex>> {
    let key = IndexKey {
        path: index.path.clone(),
        mtime_unix_ms: index.meta.mtime_unix_ms,
        len: index.meta.len,
        base_path: base_path.to_string(),
        terminal_enabled,
    };
    if let Some((_, r)) = INDEX_CACHE.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(k, _)| *k == key) {
        return Ok(r.clone());
    }
    let bytes = std::fs::read(&index.path)?;
    let rendered = Arc::new(render_index(&String::from_utf8_lossy(&bytes), base_path, terminal_enabled));
    let mut cache = INDEX_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|(k, _)| !(k.path == key.path && k.base_path == key.base_path && k.terminal_enabled == key.terminal_enabled));
    cache.insert(0, (key, rendered.clone()));
    cache.truncate(INDEX_CACHE_ENTRIES);
    Ok(rendered)
}

/// Log a problem with the configured root once per distinct message (not on every request).
fn warn_once(message: &str) {
    static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut w = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if w.get_or_insert_with(HashSet::new).insert(message.to_string()) {
        tracing::warn!("control ui: {message}; serving an explanation page instead of the UI");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_stays_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("clawgate-static-{}", std::process::id()));
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(root.join("index.html"), "<html></html>").unwrap();
        std::fs::write(root.join("assets/a.js"), "x").unwrap();
        std::fs::write(dir.join("secret.txt"), "s").unwrap();
        #[cfg(unix)]
        {
            let _ = std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("leak.txt"));
            let _ = std::os::unix::fs::symlink(root.join("assets/a.js"), root.join("alias.js"));
        }
        let root = usable_root(root.to_str().unwrap()).unwrap();
        assert_eq!(lookup(&root, "assets/a.js").map(|f| f.meta.len), Some(1));
        assert!(lookup(&root, "assets").is_none(), "a directory is not a file");
        assert!(lookup(&root, "nope.js").is_none());
        #[cfg(unix)]
        {
            assert!(lookup(&root, "leak.txt").is_none(), "a symlink out of the root");
            assert!(lookup(&root, "alias.js").is_some(), "a symlink inside the root");
        }
        assert!(usable_root(dir.join("missing").to_str().unwrap()).is_err());
        assert!(usable_root(root.join("assets").to_str().unwrap()).unwrap_err().contains("index.html"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
