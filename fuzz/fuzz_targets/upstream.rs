//! Thin wrapper: the body is `clawgate_core::testkit::fuzzing::upstream` (also replayed on stable
//! by `core/tests/suites/fuzz_corpus_replay.rs`).
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;

static BASE: OnceLock<Instant> = OnceLock::new();

fuzz_target!(|data: &[u8]| clawgate_core::testkit::fuzzing::upstream(*BASE.get_or_init(Instant::now), data));
