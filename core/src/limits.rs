//! Every limit and timer of spec §1.1, in one place.

use std::time::Duration;

/// Threads at most in a shell's pool for blocking work (store reads and writes, file IO).
/// Bounded (tokio's default is 512; under the relay benchmark it grew to ~140), but roomy: a
/// turn waiting for the store's writer joins the next group commit only once it has a thread,
/// and a task queued behind a full pool waits behind every queued store write — at 16, an
/// operator's `cron.update` timed out behind 50 cron runs a second on a slow CI disk.
pub const MAX_BLOCKING_THREADS: usize = 64;
/// An idle blocking thread exits after this long without work.
pub const BLOCKING_IDLE_EXIT: Duration = Duration::from_secs(10);

/// Limits and timers of the server side of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted before `hello-ok` (inclusive).
    pub preauth_max_payload: usize,
    /// Largest message accepted after `hello-ok` (`policy.maxPayload`).
    pub max_payload: usize,
    /// Outbound buffer above which the socket is a slow consumer (`policy.maxBufferedBytes`).
    pub max_buffered_bytes: usize,
    /// No successful `connect` within this → close 1000.
    pub handshake_timeout: Duration,
    /// Frames that may wait behind a pending `connect`.
    pub max_pending_handshake_frames: usize,
    /// WebSocket ping interval after authentication (and the pong window).
    pub ping_interval: Duration,
    /// Time the peer has to finish the closing handshake before the TCP connection is dropped.
    pub close_grace: Duration,
    /// `tick` event period (`policy.tickIntervalMs`).
    pub tick_interval: Duration,
    /// `health` refresh/broadcast period.
    pub health_interval: Duration,
    /// Concurrent not-yet-authenticated sockets per client IP.
    pub max_preauth_per_ip: usize,
    /// Process-wide pending request starts.
    pub request_queue_max: usize,
    /// Process-wide pending request frame bytes.
    pub request_queue_max_bytes: usize,
    /// Consecutive `unauthorized role` answers tolerated before closing 1008.
    pub unauthorized_role_limit: u32,
    /// Non-self presence rows expire after this.
    pub presence_ttl: Duration,
    /// Presence rows kept.
    pub presence_max: usize,
    /// Longest wait on shutdown for sockets to finish their close handshakes.
    pub shutdown_drain: Duration,
    /// Largest model reply (text and tool-call arguments) one turn may accumulate: past it the
    /// turn ends with an error the client sees, and the upstream request is dropped.
    pub max_reply_bytes: usize,
    /// Streamed-answer bytes waiting for a slow HTTP client before the gateway stops reading
    /// the upstream (backpressure).
    pub stream_buffer_bytes: usize,
    /// A streaming client that takes nothing for this long has its run aborted (and the
    /// upstream request dropped).
    pub slow_client_timeout: Duration,
    /// Longest wait for the pong that proves a client read a run's `accepted` answer before the
    /// socket's next frames go out anyway (see `ServerConnection::complete_run_start`).
    pub run_ack_barrier_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            preauth_max_payload: 64 * 1024,
            max_payload: 25 * 1024 * 1024,
            max_buffered_bytes: 50 * 1024 * 1024,
            handshake_timeout: Duration::from_millis(15_000),
            max_pending_handshake_frames: 15,
            ping_interval: Duration::from_millis(25_000),
            close_grace: Duration::from_millis(1_000),
            tick_interval: Duration::from_millis(30_000),
            health_interval: Duration::from_millis(60_000),
            max_preauth_per_ip: 32,
            request_queue_max: 256,
            request_queue_max_bytes: 50 * 1024 * 1024,
            unauthorized_role_limit: 10,
            presence_ttl: Duration::from_millis(300_000),
            presence_max: 200,
            shutdown_drain: Duration::from_millis(5_000),
            max_reply_bytes: 8 * 1024 * 1024,
            stream_buffer_bytes: 256 * 1024,
            slow_client_timeout: Duration::from_secs(30),
            run_ack_barrier_timeout: Duration::from_millis(1_000),
        }
    }
}

/// The limits an operator may change, by environment variable: name, what it sets.
pub const LIMIT_VARIABLES: &[&str] = &["CLAWGATE_MAX_REPLY_BYTES", "CLAWGATE_STREAM_BUFFER_BYTES", "CLAWGATE_SLOW_CLIENT_TIMEOUT_MS"];

impl Limits {
    /// Apply the operator's overrides (`LIMIT_VARIABLES`): a value that is not a positive
    /// integer is refused, naming the variable.
    pub fn with_overrides(mut self, vars: &[(String, String)]) -> Result<Limits, String> {
        for (name, raw) in vars {
            let n = raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("Invalid {name} \"{}\": use a positive whole number (see the README's limits).", raw.trim()))?;
            match name.as_str() {
                "CLAWGATE_MAX_REPLY_BYTES" => self.max_reply_bytes = n as usize,
                "CLAWGATE_STREAM_BUFFER_BYTES" => self.stream_buffer_bytes = n as usize,
                "CLAWGATE_SLOW_CLIENT_TIMEOUT_MS" => self.slow_client_timeout = Duration::from_millis(n),
                _ => {}
            }
        }
        Ok(self)
    }
}
