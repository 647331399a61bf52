//! One gateway socket driven in memory the way the shells drive it (`driver/src/session.rs`):
//! opened from an [`Admission`] with deterministic ids, its dispatched requests performed by the
//! shells' dispatch path without IO ([`methods::perform_without_io`]), its mailbox fed through
//! [`ServerConnection::handle_mail`], and the transport's end reported when it is let go. Core's
//! test harness, the conformance suite's in-memory runner and the fuzz world build on it; each
//! adds only what it observes (logs, invariants, a peer's codec).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::connection::{Dispatch, Mail, ServerConnection};
use crate::gateway::{Admission, Broadcast, EventSink, Hub};
use crate::methods;
use crate::wire::Reply;

/// A socket's mailbox, kept in delivery order.
#[derive(Default)]
pub struct RecordingSink {
    mail: Mutex<Vec<Mail>>,
}

impl RecordingSink {
    fn lock(&self) -> MutexGuard<'_, Vec<Mail>> {
        self.mail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything delivered since the last take, in order.
    pub fn take(&self) -> Vec<Mail> {
        std::mem::take(&mut *self.lock())
    }

    /// The events delivered since the last take (other mail stays).
    pub fn take_events(&self) -> Vec<Arc<Broadcast>> {
        let mut mail = self.lock();
        let mut events = Vec::new();
        mail.retain(|m| match m {
            Mail::Event(e) => {
                events.push(e.clone());
                false
            }
            _ => true,
        });
        events
    }

    /// The shutdown notices delivered and not yet taken.
    pub fn shutdowns(&self) -> Vec<String> {
        self.lock().iter().filter_map(|m| if let Mail::Shutdown(r) = m { Some(r.clone()) } else { None }).collect()
    }
}

impl EventSink for RecordingSink {
    fn deliver(&self, event: Arc<Broadcast>) {
        self.lock().push(Mail::Event(event));
    }
    fn shutdown(&self, reason: &str) {
        self.lock().push(Mail::Shutdown(reason.to_string()));
    }
    fn complete(&self, request_id: &str, reply: Reply) {
        self.lock().push(Mail::Complete(request_id.to_string(), Box::new(reply)));
    }
    fn close(&self, code: u16, reason: &str) {
        self.lock().push(Mail::Close(code, reason.to_string()));
    }
}

/// One socket of a hub, driven in memory.
pub struct MemorySocket {
    pub conn: ServerConnection,
    pub sink: Arc<RecordingSink>,
    hub: Arc<Hub>,
    /// The latest instant the socket was driven at (the transport's end is reported at it).
    last_now: Instant,
}

impl MemorySocket {
    /// Open socket number `n` of an admitted upgrade (its connection id and challenge nonce are
    /// derived from `n`, so runs replay the same way).
    pub fn open(admission: Admission, n: u64, now: Instant, unix_ms: u64) -> MemorySocket {
        let hub = admission.hub().clone();
        let sink = Arc::new(RecordingSink::default());
        let conn = ServerConnection::new(
            admission,
            format!("00000000-0000-4000-8000-{n:012}"),
            format!("11111111-1111-4111-8111-{n:012}"),
            sink.clone(),
            now,
            unix_ms,
        );
        MemorySocket { conn, sink, hub, last_now: now }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Perform a dispatched request as the shells do, without IO.
    pub fn perform(&mut self, d: &Dispatch, now: Instant, unix_ms: u64) {
        self.last_now = self.last_now.max(now);
        methods::perform_without_io(&mut self.conn, &self.hub, d, now, unix_ms);
    }

    /// Feed the mailbox to the connection, in delivery order, with this outbound backlog.
    /// Returns how many pieces of mail were fed.
    pub fn deliver_mail(&mut self, now: Instant, outbound_buffered: usize) -> usize {
        self.last_now = self.last_now.max(now);
        let mail = self.sink.take();
        let n = mail.len();
        for m in mail {
            self.conn.handle_mail(now, m, outbound_buffered);
        }
        n
    }

    /// Note the instant the socket was last driven at.
    pub fn at(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }
}

impl Drop for MemorySocket {
    /// A harness lets go of a socket as a shell does: the transport's end is reported first.
    fn drop(&mut self) {
        self.conn.handle_transport_closed(self.last_now);
    }
}
