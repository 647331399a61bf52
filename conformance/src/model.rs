//! The vocabulary of the suite: a [`Check`] is a script of [`Step`]s, interpreted by both runners
//! (in memory on virtual time, and over real sockets). Steps are operations (open, send, wait,
//! HTTP) and expectations (a response, an event, a close, silence). Expectations compare shapes,
//! codes, messages, close codes and reasons — never per-run values (nonces, timestamps, ids).
//!
//! Strings in frames and patterns may carry placeholders, replaced when the step runs:
//! `$TOKEN` (the gateway's shared secret), `$AUTH_METHOD` (`token` or `password`), `$NONCE` (this connection's challenge nonce),
//! `$ORIGIN` (a loopback browser origin unique to this check run), `$RUN` (a unique suffix for
//! idempotency keys) and any variable saved by an earlier expectation (`save`).

use serde_json::Value;

/// A connection of a script (index; scripts name them `A`, `B`, …).
pub type Conn = usize;

/// Properties that decide where and whether a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    /// Needs long real timers (≥ ~15 s): handshake timeout, keepalive, tick/health, lockout
    /// delays. Instant in memory; skipped by `--skip-slow`.
    Slow,
    /// Needs a non-loopback peer: only the in-memory runner can play one.
    RemotePeer,
    /// Expects token-mode messages or the token in another field (skipped in password mode).
    TokenMode,
    /// Uses device identity (Ed25519 proofs, device tokens).
    Device,
    /// Uses the node role.
    Node,
    /// Uses agent runs (accepted-then-final, idempotency).
    Agent,
    /// Must not overlap other checks' successful logins (the loopback failed-auth limiter is
    /// per IP, and a success resets it): the socket runner starts it after the others.
    Isolated,
}

impl Tag {
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Slow => "slow",
            Tag::RemotePeer => "remote-peer",
            Tag::TokenMode => "token-mode",
            Tag::Device => "device",
            Tag::Node => "node",
            Tag::Agent => "agent",
            Tag::Isolated => "isolated",
        }
    }
}

/// One conformance check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Stable id, e.g. `P16.23-auth-wrong-token` (protocol checklist item 23) or `H.01-healthz`.
    pub id: &'static str,
    /// Where the behaviour is specified, e.g. `protocol §5.2 / §16.23`.
    pub section: &'static str,
    pub title: &'static str,
    pub tags: &'static [Tag],
    /// The reference gateway is known to fail the documented behaviour; says what it does.
    pub reference_bug: Option<&'static str>,
    /// Considered but not runnable from a client on loopback (process control, remote peers).
    pub skip: Option<&'static str>,
    pub script: Vec<Step>,
}

impl Check {
    pub fn has(&self, tag: Tag) -> bool {
        self.tags.contains(&tag)
    }
}

/// What a text is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    Exact(&'static str),
    Prefix(&'static str),
    Any,
}

impl Text {
    pub fn check(&self, what: &str, actual: &str) -> Result<(), String> {
        match self {
            Text::Exact(e) if actual != *e => Err(format!("{what} {actual:?}, expected {e:?}")),
            Text::Prefix(p) if !actual.starts_with(p) => Err(format!("{what} {actual:?}, expected a prefix {p:?}")),
            _ => Ok(()),
        }
    }
}

/// The time an expectation is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// The WebSocket opened.
    Open,
    /// `hello-ok` arrived.
    Hello,
    /// The last frame we sent on this connection.
    LastSend,
    /// The previous event of the same name (or the previous ping) on this connection.
    Previous,
}

/// When (relative to `since`) the expected thing must happen; also bounds the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Since,
    pub min_ms: u64,
    pub max_ms: u64,
}

/// Credentials of a `connect`.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// The gateway's shared secret in its mode's field (`auth.token` or `auth.password`).
    Good,
    /// The shared token sent in `auth.password`.
    GoodInPassword,
    /// A wrong secret in the mode's field.
    Wrong,
    /// No `auth` object.
    None,
    /// `auth.deviceToken` = a saved variable.
    DeviceToken(&'static str),
}

/// Signature payload version of a device proof (spec §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigVersion {
    V3,
    V2,
}

/// A deliberate defect in a device proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceFault {
    /// Sign, then corrupt one byte of the signature.
    BadSignature,
    /// `device.nonce` is another value (and is what gets signed).
    NonceMismatch,
    /// `device.nonce` is blank (`" "`).
    NonceMissing,
    /// `signedAt` 10 minutes before the challenge `ts`.
    Stale,
    /// `device.id` is not the SHA-256 of the key.
    IdMismatch,
}

/// A device identity in a `connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Which of the check's keys (fresh Ed25519 keys per check run).
    pub key: usize,
    pub version: SigVersion,
    pub fault: Option<DeviceFault>,
}

/// The `connect` shorthand: builds a request frame like the reference clients do.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    pub conn: Conn,
    pub id: &'static str,
    pub client_id: &'static str,
    pub mode: &'static str,
    pub version: &'static str,
    pub device_family: Option<&'static str>,
    pub display_name: Option<&'static str>,
    pub instance_id: bool,
    /// `None`: no `role` key.
    pub role: Option<&'static str>,
    pub scopes: Vec<&'static str>,
    pub auth: Auth,
    pub min_protocol: u64,
    pub max_protocol: u64,
    pub device: Option<DeviceSpec>,
    /// Merged into `params` (e.g. `{"commands": []}`).
    pub extra_params: Option<Value>,
    /// Send as a binary frame.
    pub binary: bool,
    /// Pad `params.userAgent` so the whole frame is exactly this many bytes.
    pub pad_to: Option<usize>,
}

/// A frame to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// JSON (placeholders substituted), as a text frame.
    Json(Value),
    /// JSON (placeholders substituted), as a binary frame.
    BinaryJson(Value),
    /// Raw text, sent as is.
    Text(&'static str),
    /// Raw bytes, as a binary frame.
    Binary(&'static [u8]),
    /// A request `{type:"req",id,method,params:{pad:"xxx…"}}` of exactly `bytes` bytes.
    PaddedRequest { id: &'static str, method: &'static str, bytes: usize },
}

/// An expected response (a pattern over the whole `res` frame, see [`crate::pattern`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Resp {
    pub pattern: Value,
}

/// What must stay absent during an [`Step::ExpectNoFrame`].
#[derive(Debug, Clone, PartialEq)]
pub enum Quiet {
    /// No response at all.
    AnyResponse,
    /// No response with this id.
    Response(Value),
    /// No event of this name.
    Event(&'static str),
    /// No event outside this set (`connect.challenge` aside).
    EventOutside(Vec<&'static str>),
    /// No event (`connect.challenge` aside) without an integer `seq`.
    EventWithoutSeq,
}

/// Checks on an event's `stateVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateVersionRule {
    Present,
    Absent,
    /// Present, and `stateVersion.<key>` is greater than the last one this connection saw
    /// (in `hello-ok.snapshot` or an earlier event).
    Increases(&'static str),
}

/// An HTTP header expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderRule {
    Equals(&'static str, &'static str),
    Prefix(&'static str, &'static str),
    Absent(&'static str),
    Present(&'static str),
}

/// An HTTP body expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Any,
    Empty,
    Exact(&'static str),
    Contains(&'static str),
    /// JSON matching this pattern.
    Json(Value),
}

/// An HTTP request on the gateway port, over a fresh TCP connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub method: &'static str,
    pub path: &'static str,
    /// Extra request headers (placeholders substituted in values).
    pub headers: Vec<(&'static str, &'static str)>,
    /// Add the WebSocket upgrade headers (`Connection`, `Upgrade`, `Sec-WebSocket-*`).
    pub upgrade: bool,
    /// Play a non-loopback peer (in-memory runner only; the check is tagged `RemotePeer`).
    pub remote: bool,
    pub status: u16,
    pub body: Body,
    pub headers_expect: Vec<HeaderRule>,
}

/// One operation or expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Open a WebSocket on `/` (the upgrade must succeed). `auto_pong: false` plays a peer that
    /// never answers pings.
    Open {
        conn: Conn,
        headers: Vec<(&'static str, &'static str)>,
        auto_pong: bool,
    },
    /// The first frame is `connect.challenge` `{nonce: uuid, ts: int, capabilities}`, without
    /// `seq`; its nonce and ts are kept for device proofs.
    ExpectChallenge {
        conn: Conn,
    },
    Send {
        conn: Conn,
        frame: Frame,
        times: u32,
    },
    Connect(Connect),
    /// A response with this id (responses in between are kept); it must match one of `any_of`.
    /// `first`: it must be the next response that arrives (order checks).
    ExpectResponse {
        conn: Conn,
        id: Value,
        any_of: Vec<Resp>,
        within: Option<Window>,
        first: bool,
        save: Vec<(&'static str, &'static str)>,
    },
    /// A successful `hello-ok` for request `id` with this role and exactly these scopes.
    ExpectHello {
        conn: Conn,
        id: &'static str,
        role: &'static str,
        scopes: Option<Vec<&'static str>>,
        payload: Option<Value>,
        within: Option<Window>,
        /// It must be the first response to arrive.
        first: bool,
        save: Vec<(&'static str, &'static str)>,
    },
    /// The next event of this name (earlier events of other names are kept).
    ExpectEvent {
        conn: Conn,
        event: &'static str,
        pattern: Option<Value>,
        /// `seq` is an integer greater than every `seq` seen before on this connection.
        seq_increasing: bool,
        state_version: Option<StateVersionRule>,
        /// Skip events of this name that arrive earlier than `within.min_ms`.
        skip_early: bool,
        /// It must arrive before the next response with this id.
        before: Option<Value>,
        within: Option<Window>,
        save: Vec<(&'static str, &'static str)>,
    },
    /// Nothing matching `quiet` arrives, and the connection stays open, for `for_ms`.
    ExpectNoFrame {
        conn: Conn,
        for_ms: u64,
        quiet: Quiet,
    },
    /// A close frame with this code and reason; no unanswered response may arrive before it.
    ExpectClose {
        conn: Conn,
        code: u16,
        reason: Text,
        within: Option<Window>,
    },
    /// The TCP connection ends without a close frame (the client sees 1006).
    ExpectTerminated {
        conn: Conn,
        within: Option<Window>,
    },
    /// A WebSocket ping arrives.
    ExpectPing {
        conn: Conn,
        within: Option<Window>,
    },
    /// Send a close frame (`code: None`: a close frame without status code).
    ClientClose {
        conn: Conn,
        code: Option<u16>,
        reason: &'static str,
    },
    /// Drop the TCP connection without a close handshake.
    Drop {
        conn: Conn,
    },
    /// Virtual time jump in memory, real sleep on sockets.
    Wait {
        ms: u64,
    },
    /// Pipeline `count` requests of `method` (ids `flood-0…`), then collect every response:
    /// each must be `ok:true` or `UNAVAILABLE "The server is busy…"` `retryable:true`, and the
    /// connection must stay open.
    Flood {
        conn: Conn,
        method: &'static str,
        count: usize,
    },
    HttpRequest(Http),
    /// A WebSocket upgrade (with these extra headers) refused at the HTTP level.
    UpgradeRejected {
        headers: Vec<(&'static str, &'static str)>,
        status: u16,
        body_contains: &'static str,
    },
}

/// Result of one check in one runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed; with an optional note (e.g. counts).
    Pass(Option<String>),
    Fail(String),
    Skip(String),
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass(n) => n.as_deref().unwrap_or(""),
            Outcome::Fail(r) | Outcome::Skip(r) => r,
        }
    }
    pub fn is_fail(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass(_))
    }
}

/// One row of a report.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub id: String,
    pub section: String,
    pub title: String,
    pub tags: Vec<String>,
    pub reference_bug: Option<String>,
    pub outcome: Outcome,
    pub duration_ms: u64,
}
