//! The origin of virtual time for core's unit tests (`#[cfg(test)]` only: never in the library).
//! Any instant will do — the machines only measure from it — but `std` makes one only by reading
//! the clock, so this is the one place under `core/src` that does (`tests/tests/core_purity.rs`
//! allows exactly this file, and only while `lib.rs` declares it under `#[cfg(test)]`).

use std::time::Instant;

/// An instant to start virtual time at.
#[allow(clippy::disallowed_methods)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}
