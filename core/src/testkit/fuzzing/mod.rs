//! Fuzz target bodies, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`, thin wrappers)
//! and the stable corpus replay test (`core/tests/suites/fuzz_corpus_replay.rs`), so both run exactly
//! the same code on the same inputs.
//!
//! Every target takes arbitrary bytes and must never panic: a panic is either a core bug or a
//! broken invariant asserted here. Targets that need time take a `base: Instant` from the caller
//! and run on virtual time `base + d` (the core never reads the clock).
//!
//! | target | what it exercises |
//! |---|---|
//! | [`frame`] | `wire::parse_request` (lossy UTF-8 text), and on JSON: every protocol schema, `schema::validate` with the input as schema, `handshake::parse_connect_params` / `negotiate` / `resolve_role`, `scopes::authorize`, the client's `ServerFrame` parsing |
//! | [`server_connection`] | a `Hub` and up to two interleaved `ServerConnection`s driven by an op list on virtual time, with the output invariants checked after every op |
//! | [`client_connection`] | `ClientConnection` fed server texts, responses to its own requests and timeouts |
//! | [`config`] | port / bind / auth resolution, the startup auth gate, state dir and config path resolution, `--profile`; the JSON5 config file: `config_file::{parse_json5, load, merge_patch, plan_write}`; the service files read back (`service::lock::LockRecord::parse`, `service::unit::parse_systemd_unit`, with a write/read round trip) |
//! | [`cron`] | `cron.*` params parsed and applied to a scheduler, a stored job row deserialised and scheduled; the scheduler then driven through its deadlines |
//! | [`http`] | `http::route` on arbitrary request heads, `RequestFacts::from_headers`, `attribute`, `IpNet::parse`, `check_origin` |
//! | [`upstream`] | one relayed model call (`openai::turn::Turn`, its SSE reading included) fed heads, body bytes in any chunking, ends, transport errors and deadlines on virtual time (encoding in [`upstream`]'s docs) |
//!
//! # Input encodings
//!
//! The encodings are hand-decoded (no `arbitrary` dependency): every byte string is a valid
//! input, reads past the end yield zeros, and `fuzz/make-seeds.py` writes seeds in the same
//! format. Multi-byte integers are little-endian; a *chunk* is a `u16` length followed by that
//! many bytes (cut short at the end of the input).
//!
//! **`server_connection`**: byte 0 configures the gateway and socket A, byte 1 socket B, then
//! ops until the input ends (at most [`MAX_OPS`]):
//!
//! * byte 0: bit 0 A connects from `192.0.2.7` (else `127.0.0.1`); bit 1 A's upgrade carries
//!   `Origin: http://localhost:18789`; bit 2 A's dispatches are held (answered by ops) instead of
//!   answered at once; bit 3 A answers every ping at once; bits 4–5 auth mode (0 token, 1
//!   password, 2 none, 3 token); bit 6 tight limits (request queue 2, 2 pending handshake frames,
//!   1 unauthorized call, 2 pre-auth sockets per IP); bit 7 A comes through a trusted proxy at
//!   `127.0.0.1` with `X-Forwarded-For: 203.0.113.9`;
//! * byte 1: the same bits 0–3 for socket B; bit 4 B's upgrade caps scopes to `operator.read`;
//!   bit 5 the same for A;
//! * op byte: bit 7 selects socket B (A otherwise; a socket is opened on first use), bits 0–6
//!   modulo 19 the op, followed by its arguments:
//!   `0` dictionary text (`u8` index into [`SERVER_TEXTS`]; 0 is a valid `cli` connect),
//!   `1` generated connect (`u8` client/credential/role, `u8` scopes/protocol/extras),
//!   `2` request (`u8` method, `u8` params), `3` text (chunk, lossy UTF-8),
//!   `4` binary (chunk), `5` pong, `6` advance time (`u16` ms, modulo 40 001, firing every
//!   deadline on the way), `7` hub timer tick, `8` deliver pending broadcasts (`u8` outbound
//!   backlog selector), `9` event (`u8` name, `u8` flags: bit 0 drop-if-slow, bit 1 straight to
//!   this socket with backlog selector `flags >> 2`, else through `Hub::broadcast`),
//!   `10` complete a held dispatch (`u8` index, `u8` bit 0 ok), `11` complete an arbitrary id
//!   (`u8`), `12` shutdown, `13` message too large, `14` peer close, `15` transport closed,
//!   `16` drop the socket and open a new one, `17` drain the hub (`begin_drain` + `shutdown_all`),
//!   `18` drop a held dispatch unanswered (`u8` index).
//!
//! **`client_connection`**: byte 0: bit 0 authenticate with a password instead of a token, bits
//! 1–2 calls made before the challenge, bit 3 they expect a final reply; then ops (op byte
//! modulo 7): `0` server text (chunk), `1` dictionary text (`u8`), `2` advance (`u16` ms modulo
//! 40 001), `3` call (`u8` method, `u8` bit 0 expect-final), `4` the server closed,
//! `5` the app closes, `6` answer a request the client sent (`u8` which, `u8` kind).
//!
//! **`config`** and **`http`**: lossy UTF-8 split on `\n` into fields; a field that is exactly
//! `~` (or missing) is `None`. `config` fields: cli port, env port, config port (`i64`), profile,
//! cli bind, config bind, custom bind host, bindable mask (first byte: bit 0 `127.0.0.1`, bit 1
//! the custom host), then mode/token/password for cli, config, env and `gateway.remote`, the OS
//! home, a directory that exists, then `KEY=VALUE` environment lines. After the first NUL byte
//! (if any) comes the text of a JSON5 config file (`$include` of `./a.json5` and `./self.json5`
//! resolve, other files do not; `${VAR}` reads the same environment). `http`: the first byte
//! (before the text) selects peer / trusted proxy / real-IP fallback / draining / auth mode;
//! fields are method, path, then `name: value` headers.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::auth::ingress::{IpNet, RequestFacts};
use crate::auth::scopes::{Role, event_gate};
use crate::auth::{AuthMode, Secret};
use crate::connection::client::{ClientConnection, ClientEvent, ClientOptions, ClientOutput};
use crate::connection::{Dispatch, Output, Phase, Reply};
use crate::gateway::{Broadcast, Hub};
use crate::testkit::memory::MemorySocket;
use crate::testkit::{loopback_token_settings, test_server_info};
use crate::wire::{self, ErrorShape, FrameError};

/// The shared secret of every fuzzed gateway (the same as the captures and the test harness).
pub const TOKEN: &str = "testtoken123";
pub(super) const PORT: u16 = 18789;
/// Wall-clock ms at `base`.
pub(super) const UNIX0: u64 = 1_795_602_626_311;
/// Ops run per `server_connection` / `client_connection` input.
pub const MAX_OPS: usize = 400;
/// Longest time advance of one op, in ms.
pub(super) const MAX_ADVANCE_MS: u16 = 40_000;

// ---- byte reader ---------------------------------------------------------------------------

/// Reads an input front to back; past the end every read yields zeros / empty slices.
pub(super) struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }
    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub(super) fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub(super) fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.data.split_at(n.min(self.data.len()));
        self.data = b;
        a
    }
    /// A `u16` length, then that many bytes.
    pub(super) fn chunk(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
    pub(super) fn ms(&mut self) -> Duration {
        Duration::from_millis(u64::from(self.u16() % (MAX_ADVANCE_MS + 1)))
    }
}

pub(super) fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[i as usize % list.len()]
}

pub(super) fn unix_at(base: Instant, now: Instant) -> u64 {
    UNIX0 + now.saturating_duration_since(base).as_millis() as u64
}

mod client_connection;
mod config;
mod cron;
mod frame;
mod http;
mod server_connection;
mod upstream;

pub use client_connection::client_connection;
pub use config::config;
pub use cron::cron;
pub use frame::frame;
pub use http::http;
use server_connection::{METHODS, params_choice};
pub use server_connection::{SERVER_TEXTS, server_connection};
pub use upstream::upstream;
