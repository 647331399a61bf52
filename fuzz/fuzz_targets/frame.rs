//! Thin wrapper: the body is `clawgate_core::testkit::fuzzing::frame` (also replayed on stable by
//! `core/tests/suites/fuzz_corpus_replay.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| clawgate_core::testkit::fuzzing::frame(data));
