//! The per-socket task: one future that owns the WebSocket and the core's `ServerConnection`,
//! and loops *read inputs → feed the core → drain outputs (buffered)* until nothing is left to
//! read, then *flush once → sleep until the core's deadline*. Reads and writes happen in the same
//! task, so no lock is shared between halves.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use clawgate_core::connection::{Mail, Output, Phase};
use clawgate_core::gateway::{Admission, Broadcast, EventSink, Hub};
use clawgate_core::methods::{self, Call};
use clawgate_core::{Reply, ServerConnection};
use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::StreamExt;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role};

use crate::daemon::Ctx;
use crate::rt::{BoxFuture, Runtime};
use crate::wsio::{ReadEvent, WsIo};

/// The hub's handle on a socket's task.
struct MailboxSink(UnboundedSender<Mail>);

impl EventSink for MailboxSink {
    fn deliver(&self, event: Arc<Broadcast>) {
        let _ = self.0.unbounded_send(Mail::Event(event));
    }
    fn shutdown(&self, reason: &str) {
        let _ = self.0.unbounded_send(Mail::Shutdown(reason.to_string()));
    }
    fn complete(&self, request_id: &str, reply: Reply) {
        let _ = self.0.unbounded_send(Mail::Complete(request_id.to_string(), Box::new(reply)));
    }
    fn close(&self, code: u16, reason: &str) {
        let _ = self.0.unbounded_send(Mail::Close(code, reason.to_string()));
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The OS has no randomness to give (no entropy source): whatever needed it is refused, never
/// done with predictable bytes (nonces, ids, device tokens).
#[derive(Debug, thiserror::Error)]
#[error("OS randomness unavailable")]
pub struct NoRandomness;

/// `N` random bytes from the OS.
pub fn os_random<const N: usize>() -> Result<[u8; N], NoRandomness> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| NoRandomness)?;
    Ok(b)
}

/// Messages handled per wake-up before yielding to other tasks.
const BUDGET: usize = 64;

/// Run one gateway WebSocket to completion.
pub async fn run<R: Runtime, T>(rt: R, ctx: Arc<Ctx>, io: T, admission: Admission)
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let hub = ctx.hub.clone();
    let (tx, rx) = unbounded();
    let sink: Arc<dyn EventSink> = Arc::new(MailboxSink(tx.clone()));
    // A challenge nonce must be unpredictable: without OS randomness the socket is refused.
    let (Ok(id_bytes), Ok(nonce_bytes)) = (os_random::<16>(), os_random::<16>()) else {
        tracing::error!("WebSocket refused: {NoRandomness}");
        return;
    };
    let conn_id = clawgate_core::ids::uuid_v4(id_bytes);
    let nonce = clawgate_core::ids::uuid_v4(nonce_bytes);
    let limits = hub.settings().limits;
    let conn = ServerConnection::new(admission, conn_id, nonce, sink, Instant::now(), unix_ms());
    let ws = WsIo::new(io, Role::Server, limits.preauth_max_payload);
    let session = Session {
        rt,
        hub,
        ctx,
        conn,
        ws,
        inbox: rx,
        tx,
        timer: None,
        read_pause: limits.max_buffered_bytes,
        done: false,
        saving_devices: None,
        opened: false,
    };
    session.await
}

struct Session<R: Runtime, T> {
    rt: R,
    hub: Arc<Hub>,
    ctx: Arc<Ctx>,
    conn: ServerConnection,
    ws: WsIo<T>,
    inbox: UnboundedReceiver<Mail>,
    /// The mailbox's sender: answers of handlers that run in their own task come back here.
    tx: UnboundedSender<Mail>,
    timer: Option<(Instant, BoxFuture<()>)>,
    /// Above this many unflushed bytes (`ws.buffered()`) the peer is not read from (it is not
    /// reading us either).
    read_pause: usize,
    done: bool,
    /// The handshake changed the paired-device store (a silent local approval, a new pairing
    /// request): it is written before this socket's answer (`hello-ok` with the device token,
    /// or `NOT_PAIRED` with the request id) goes out, so nothing the client was told is lost.
    saving_devices: Option<BoxFuture<()>>,
    /// The socket authenticated (its close is logged too).
    opened: bool,
}

impl<R: Runtime, T: hyper::rt::Read + hyper::rt::Write + Unpin> Session<R, T> {
    /// Act on every pending output of the core. Returns false when the socket must be dropped.
    fn drain(&mut self) -> bool {
        while let Some(out) = self.conn.poll_output() {
            match out {
                Output::Send(text) => {
                    if self.ws.queue_text(text).is_err() {
                        self.conn.handle_transport_closed(Instant::now());
                    }
                }
                Output::Ping(payload) => {
                    let _ = self.ws.queue(Message::Ping(payload.into()));
                }
                Output::SetMaxMessageSize(n) => self.ws.set_max_message_size(n),
                Output::Dispatch(d) => match methods::dispatch(&self.hub, &d, Instant::now(), unix_ms()) {
                    // State methods are pure, bounded-time reads of the hub: answered inline.
                    Call::Reply(reply) => self.conn.complete(&d.request_id, reply),
                    // Runs execute in their own task; the final answer comes back via the mailbox.
                    Call::StartRun { reply, run } => {
                        self.conn.complete_run_start(Instant::now(), &d.request_id, reply);
                        self.rt.spawn(crate::agent::execute(self.rt.clone(), self.ctx.clone(), run));
                    }
                    Call::Later => {}
                    // Config writes, secrets reloads and session-store reads run off the reactor;
                    // the answer (and a secrets reload's close) comes back via the mailbox.
                    call @ (Call::ConfigGet
                    | Call::Compact(_)
                    | Call::ConfigWrite(_)
                    | Call::Cron(_)
                    | Call::SecretsReload
                    | Call::SecretStore(_)
                    | Call::Store(_)
                    | Call::PersistDevices(..)
                    | Call::LogsTail(_)) => {
                        let (ctx, tx, rt, id) = (self.ctx.clone(), self.tx.clone(), self.rt.clone(), d.request_id.clone());
                        let caller = d.caller.conn_id.clone();
                        self.rt.spawn(async move {
                            let (reply, close) = crate::calls::execute(&rt, &ctx, call, &caller).await;
                            let _ = tx.unbounded_send(Mail::Complete(id, Box::new(reply)));
                            if let Some((code, reason)) = close {
                                let _ = tx.unbounded_send(Mail::Close(code, reason.to_string()));
                            }
                        });
                    }
                },
                Output::Close { code, reason } => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    let _ = self.ws.queue(Message::Close(Some(frame)));
                }
                Output::Terminate => return false,
            }
        }
        true
    }

    fn handle_read(&mut self, ev: ReadEvent) {
        let now = Instant::now();
        // Only a `connect` can change the device store from a socket (silent approval, new
        // pairing request); requests on an open socket go through `Call::PersistDevices`.
        let before = matches!(self.conn.phase(), Phase::AwaitingConnect).then(|| self.hub.devices_generation());
        self.handle_read_at(now, ev);
        if before.is_some() && matches!(self.conn.phase(), Phase::Open) {
            if let Some((role, scopes)) = self.conn.principal() {
                tracing::info!(target: "clawgate_driver::ws", "⇄ connected role={} scopes={} conn={}", role.as_str(), scopes.join(","), self.conn.conn_id());
                self.opened = true;
            }
        }
        if let Some(before) = before {
            if self.hub.devices_generation() != before {
                let ctx = self.ctx.clone();
                let save = self.rt.spawn_blocking(move || {
                    if let Err(e) = ctx.save_devices() {
                        tracing::error!("paired devices not saved: {e}");
                    }
                });
                self.saving_devices = Some(save);
            }
        }
    }

    fn handle_read_at(&mut self, now: Instant, ev: ReadEvent) {
        match ev {
            ReadEvent::Message(Message::Text(t)) => self.conn.handle_text(now, unix_ms(), t.as_str()),
            ReadEvent::Message(Message::Binary(b)) => self.conn.handle_binary(now, unix_ms(), &b),
            ReadEvent::Message(Message::Pong(p)) => self.conn.handle_pong(now, &p),
            ReadEvent::Message(Message::Close(_)) => self.conn.handle_peer_close(now),
            ReadEvent::Message(Message::Ping(_) | Message::Frame(_)) => {}
            ReadEvent::TooLarge => self.conn.handle_message_too_large(now),
            ReadEvent::Closed => self.conn.handle_transport_closed(now),
        }
    }

    /// A write failed: the connection is over.
    fn transport_lost(&mut self) -> Poll<()> {
        self.conn.handle_transport_closed(Instant::now());
        self.done = true;
        Poll::Ready(())
    }

    fn handle_inbox(&mut self, mail: Mail) {
        self.conn.handle_mail(Instant::now(), mail, self.ws.buffered());
    }
}

impl<R: Runtime, T> Drop for Session<R, T> {
    /// However the socket's task ends (the peer left, the write failed, the task was dropped at
    /// shutdown), the core hears that the transport is gone once: the hub forgets the socket.
    fn drop(&mut self) {
        if self.opened {
            tracing::info!(target: "clawgate_driver::ws", "⇄ disconnected conn={}", self.conn.conn_id());
        }
        self.conn.handle_transport_closed(Instant::now());
    }
}

impl<R: Runtime, T: hyper::rt::Read + hyper::rt::Write + Unpin> Future for Session<R, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(());
        }
        this.ws.set_waker(cx);
        let mut budget = BUDGET;
        loop {
            // Nothing more goes out (and nothing more is read) until the device store is on
            // disk; the save's completion wakes this task.
            if let Some(save) = this.saving_devices.as_mut() {
                if save.as_mut().poll(cx).is_pending() {
                    if let Poll::Ready(Err(_)) = this.ws.poll_flush() {
                        return this.transport_lost();
                    }
                    return Poll::Pending;
                }
                this.saving_devices = None;
            }
            let mut progressed = false;
            while let Poll::Ready(Some(item)) = this.inbox.poll_next_unpin(cx) {
                this.handle_inbox(item);
                progressed = true;
            }
            let now = Instant::now();
            if this.conn.poll_timeout().is_some_and(|d| now >= d) {
                this.conn.handle_timeout(now, unix_ms());
            }
            // Outputs are only buffered here; they reach the socket in one write when this
            // wake-up has nothing more to do (or a full write buffer's worth is waiting).
            if !this.drain() || this.conn.phase() == Phase::Closed {
                // Terminated, or closed by the peer or the transport: whatever is buffered (a
                // close reply, the last answers) gets one last non-blocking write.
                let _ = this.ws.poll_flush();
                this.done = true;
                return Poll::Ready(());
            }
            // Backpressure: a peer that does not read our output is not read from either.
            if this.ws.buffered() <= this.read_pause {
                if let Poll::Ready(ev) = this.ws.poll_read() {
                    this.handle_read(ev);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
            budget -= 1;
            if budget == 0 {
                // Yielding to other tasks: do not sit on the answers meanwhile.
                if let Poll::Ready(Err(_)) = this.ws.poll_flush() {
                    return this.transport_lost();
                }
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        // About to wait: flush once for everything this wake-up produced. `Pending` leaves the
        // rest buffered with the waker registered for writability.
        if let Poll::Ready(Err(_)) = this.ws.poll_flush() {
            return this.transport_lost();
        }
        // Sleep until the core's next deadline.
        match this.conn.poll_timeout() {
            Some(deadline) => {
                if this.timer.as_ref().is_none_or(|(d, _)| *d != deadline) {
                    this.timer = Some((deadline, this.rt.sleep_until(deadline)));
                }
                if let Some((_, t)) = this.timer.as_mut() {
                    if t.as_mut().poll(cx).is_ready() {
                        this.timer = None;
                        cx.waker().wake_by_ref();
                    }
                }
            }
            None => this.timer = None,
        }
        Poll::Pending
    }
}
