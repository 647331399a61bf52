//! clawgate-core: the sans-IO core of clawgate, a wire-compatible OpenClaw Gateway.
//!
//! Every protocol rule and decision lives here, as state machines that take input plus `now`
//! and return outputs, and as plain functions over plain data. There is no IO, no clock, no
//! runtime: the shells (`clawgate-tokio`, `clawgate-smol`) read sockets and files, feed this
//! crate, write what it says and sleep until its deadlines.

// `ErrorShape` (the wire error) is returned by value from cold validation paths; boxing it
// would only move the allocation.
#![allow(clippy::result_large_err)]

pub mod admin_rpc;
pub mod agent;
pub mod api_response;
pub mod apiconfig;
pub mod auth;
pub mod cli;
pub mod client;
pub mod client_target;
pub mod config;
pub mod config_file;
pub mod config_keys;
pub mod connection;
pub mod control_ui;
pub mod device;
pub mod embeddings;
/// Fuzz target bodies over `&[u8]`, shared by `fuzz/` (cargo-fuzz) and the stable corpus replay test.
#[cfg(feature = "testkit")]
pub mod fuzzing;
pub mod gateway;
pub mod handshake;
pub mod hooks;
pub mod http;
pub mod ids;
pub mod ingress;
pub mod limits;
pub mod methods;
pub mod openai;
pub mod origin;
pub mod pairing;
pub mod reload;
pub mod responses;
pub mod schema;
pub mod scopes;
pub mod secrets;
pub mod sessions;
pub mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tools;
pub mod turn;
pub mod ui_methods;
pub mod wire;

pub use connection::{Dispatch, Output, Reply, ServerConnection};
pub use gateway::{Hub, ServerInfo};

/// Version reported as `hello-ok.server.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
