//! clawgate-core: the sans-IO core of clawgate, a wire-compatible OpenClaw Gateway.
//!
//! Every protocol rule and decision lives here, as state machines that take input plus `now`
//! and return outputs, and as plain functions over plain data. There is no IO, no clock, no
//! runtime: the shells (`clawgate-tokio`, `clawgate-smol`) read sockets and files, feed this
//! crate, write what it says and sleep until its deadlines.

// `ErrorShape` (the wire error) is returned by value from cold validation paths; boxing it
// would only move the allocation.
#![allow(clippy::result_large_err)]
// What is not API is `pub(crate)`, so an item nobody outside can reach shows up (dead twins).
#![warn(unreachable_pub)]

// Floors, bottom first (ARCHITECTURE.md; enforced by tests/floors.rs).
pub mod cli;
pub mod ids;
pub mod limits;
pub mod markup;
pub mod wire;

pub mod agent;
pub mod auth;
pub mod config;
pub mod connection;
pub mod cron;
pub mod gateway;
pub mod http;
pub mod logs;
pub mod methods;
pub mod openai;
pub mod secrets;
pub mod service;
pub mod sessions;
/// Fixtures and the fuzz target bodies (`fuzz/` and the stable corpus replay test).
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tools;

pub use connection::{Dispatch, Output, Reply, ServerConnection};
pub use gateway::{Hub, ServerInfo};

/// Version reported as `hello-ok.server.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
