//! Stable replay of the fuzz corpora: every file of `fuzz/corpus/<target>/` (the committed seeds)
//! and `fuzz/regressions/<target>/` (crashes found by fuzzing, kept once fixed) is run through the
//! same `clawgate_core::testkit::fuzzing` function the cargo-fuzz target calls. No nightly, no libFuzzer.

// A test harness (not the core): it may read the clock to seed the virtual time it feeds in.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use clawgate_core::testkit::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz")
}

/// Input files of one directory, sorted; `README*` and dotfiles are not inputs.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.is_file())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && !n.starts_with("README")))
        .collect();
    files.sort();
    files
}

/// Run every corpus and regression input of `target` through `body`; report every failing file.
fn replay(target: &str, body: impl Fn(&[u8])) {
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ is empty: run `python3 fuzz/make-seeds.py`");
    let regressions = inputs(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: {} of {} inputs failed:\n{}", failed.len(), corpus.len() + regressions.len(), failed.join("\n"));
}

#[test]
fn frame_corpus() {
    replay("frame", fuzzing::frame);
}

#[test]
fn server_connection_corpus() {
    let base = Instant::now();
    replay("server_connection", |d| fuzzing::server_connection(base, d));
}

#[test]
fn client_connection_corpus() {
    let base = Instant::now();
    replay("client_connection", |d| fuzzing::client_connection(base, d));
}

#[test]
fn config_corpus() {
    replay("config", fuzzing::config);
}

#[test]
fn cron_corpus() {
    replay("cron", fuzzing::cron);
}

#[test]
fn http_corpus() {
    let base = Instant::now();
    replay("http", |d| fuzzing::http(base, d));
}

#[test]
fn upstream_corpus() {
    let base = Instant::now();
    replay("upstream", |d| fuzzing::upstream(base, d));
}
