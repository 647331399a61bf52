//! The connected sockets: each one's mailbox (the shell's [`EventSink`]), its auth once
//! `hello-ok` went out, and its session-event subscriptions; and who receives an event (the
//! scope gate of spec §8.1, the audience of a session event). The registry never calls a
//! mailbox: what to deliver is pushed as a [`Delivery`] and performed by the hub's handle after
//! the state's lock is released.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::auth::scopes::{EventGate, Role, event_allowed};
use crate::wire::{Reply, StateVersion};

/// One event to fan out; each connection assigns its own `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub event: String,
    /// Serialized JSON payload.
    pub payload: Option<String>,
    pub gate: EventGate,
    pub drop_if_slow: bool,
    pub state_version: Option<StateVersion>,
}

/// Where the hub delivers to one connection (the shell's mailbox). Called outside the hub's
/// state lock, in the order the state decided; must not block nor call back into the hub.
pub trait EventSink: Send + Sync {
    fn deliver(&self, event: Arc<Broadcast>);
    /// The gateway is stopping: the socket should say goodbye and close.
    fn shutdown(&self, reason: &str);
    /// A later answer to one of this socket's requests (the final of an agent run, an
    /// `agent.wait` result). The shell feeds it to [`crate::connection::ServerConnection::complete`].
    /// The default drops it: only sinks of sockets that never start runs may keep it.
    fn complete(&self, request_id: &str, reply: Reply) {
        let _ = (request_id, reply);
    }
    /// The socket lost its admission (rotated secret, disallowed origin): close it.
    /// The default ignores it: only sinks of sockets that cannot be revoked may keep it.
    fn close(&self, code: u16, reason: &str) {
        let _ = (code, reason);
    }
}

/// What one socket is handed.
#[derive(Debug, Clone)]
pub(crate) enum ToConn {
    Event(Arc<Broadcast>),
    Complete { request_id: String, reply: Box<Reply> },
    Close { code: u16, reason: &'static str },
    Shutdown(String),
}

/// A hand-over to one socket's mailbox, decided under the state lock, performed after it.
pub(crate) struct Delivery {
    pub conn_id: String,
    sink: Arc<dyn EventSink>,
    pub what: ToConn,
}

impl Delivery {
    pub(crate) fn perform(self) {
        match self.what {
            ToConn::Event(b) => self.sink.deliver(b),
            ToConn::Complete { request_id, reply } => self.sink.complete(&request_id, *reply),
            ToConn::Close { code, reason } => self.sink.close(code, reason),
            ToConn::Shutdown(reason) => self.sink.shutdown(&reason),
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("conn_id", &self.conn_id).field("what", &self.what).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnAuth {
    pub role: Role,
    pub scopes: Vec<String>,
    /// `hello-ok.auth.method` (`token`, `password`, `device-token`, `none`).
    pub method: &'static str,
    /// The browser `Origin` of the upgrade, if any, with what the origin check needs.
    pub origin: Option<String>,
    pub host: Option<String>,
    pub local: bool,
    /// The paired device this socket proved (closed when the device is removed).
    pub device_id: Option<String>,
}

/// A socket's session-event subscriptions (the reference delivers `sessions.changed` only to
/// sockets that called `sessions.subscribe`, `session.message` only to sockets subscribed to
/// that session).
#[derive(Debug, Default, Clone)]
struct Subscriptions {
    sessions: bool,
    messages: HashSet<String>,
}

struct ConnRecord {
    sink: Arc<dyn EventSink>,
    auth: Option<ConnAuth>,
    subs: Subscriptions,
}

/// Who, beyond the scope gate, receives a session event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// Every authenticated socket.
    Everyone,
    /// Sockets that called `sessions.subscribe` (`sessions.changed`).
    SessionsSubscribers,
    /// Sockets subscribed to this (canonical) session key (`session.message`).
    SessionMessages(&'a str),
}

/// The registry.
#[derive(Default)]
pub(crate) struct Connections {
    conns: HashMap<String, ConnRecord>,
}

impl Connections {
    pub(crate) fn register(&mut self, conn_id: &str, sink: Arc<dyn EventSink>) {
        self.conns.insert(conn_id.to_string(), ConnRecord { sink, auth: None, subs: Subscriptions::default() });
    }

    /// Forget a socket; `true` when it had authenticated.
    pub(crate) fn remove(&mut self, conn_id: &str) -> bool {
        self.conns.remove(conn_id).is_some_and(|r| r.auth.is_some())
    }

    pub(crate) fn authenticate(&mut self, conn_id: &str, auth: ConnAuth) {
        if let Some(rec) = self.conns.get_mut(conn_id) {
            rec.auth = Some(auth);
        }
    }

    pub(crate) fn auth(&self, conn_id: &str) -> Option<&ConnAuth> {
        self.conns.get(conn_id).and_then(|c| c.auth.as_ref())
    }

    /// The authenticated sockets.
    pub(crate) fn authenticated(&self) -> impl Iterator<Item = (&str, &ConnAuth)> {
        self.conns.iter().filter_map(|(id, c)| c.auth.as_ref().map(|a| (id.as_str(), a)))
    }

    /// Registered sockets, and authenticated ones.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.conns.len(), self.conns.values().filter(|c| c.auth.is_some()).count())
    }

    /// Is a socket connected as this paired device?
    pub(crate) fn device_connected(&self, device_id: &str) -> bool {
        self.authenticated().any(|(_, a)| a.device_id.as_deref() == Some(device_id))
    }

    /// `sessions.subscribe`; `false` when the socket is gone.
    pub(crate) fn subscribe_sessions(&mut self, conn_id: &str) -> bool {
        self.conns.get_mut(conn_id).map(|r| r.subs.sessions = true).is_some()
    }

    /// `sessions.messages.subscribe` / `unsubscribe`; `false` when the socket is gone.
    pub(crate) fn subscribe_messages(&mut self, conn_id: &str, key: &str, on: bool) -> bool {
        let Some(rec) = self.conns.get_mut(conn_id) else { return false };
        if on {
            rec.subs.messages.insert(key.to_string());
        } else {
            rec.subs.messages.remove(key);
        }
        true
    }

    /// Deliver `b` to the authenticated sockets in `audience` whose scopes pass its gate.
    /// Sockets outside never see the event, so it takes no `seq` of theirs.
    pub(crate) fn fan_out(&self, out: &mut Vec<Delivery>, b: Broadcast, audience: Audience<'_>) {
        let b = Arc::new(b);
        for (id, rec) in &self.conns {
            let Some(a) = &rec.auth else { continue };
            let wanted = match audience {
                Audience::Everyone => true,
                Audience::SessionsSubscribers => rec.subs.sessions,
                Audience::SessionMessages(key) => rec.subs.messages.contains(key),
            };
            if wanted && event_allowed(a.role, &a.scopes, &b.gate) {
                out.push(Delivery { conn_id: id.clone(), sink: rec.sink.clone(), what: ToConn::Event(b.clone()) });
            }
        }
    }

    /// Hand `what` to one socket (nothing when it is gone).
    pub(crate) fn to(&self, out: &mut Vec<Delivery>, conn_id: &str, what: ToConn) {
        if let Some(rec) = self.conns.get(conn_id) {
            out.push(Delivery { conn_id: conn_id.to_string(), sink: rec.sink.clone(), what });
        }
    }

    /// Hand `what` to every socket, authenticated or not.
    pub(crate) fn to_all(&self, out: &mut Vec<Delivery>, what: &ToConn) {
        for id in self.conns.keys() {
            self.to(out, id, what.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scopes::event_gate;

    struct Nowhere;
    impl EventSink for Nowhere {
        fn deliver(&self, _: Arc<Broadcast>) {}
        fn shutdown(&self, _: &str) {}
    }

    fn auth(scopes: &[&str]) -> ConnAuth {
        ConnAuth {
            role: Role::Operator,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            method: "token",
            origin: None,
            host: None,
            local: true,
            device_id: None,
        }
    }

    fn event(name: &str) -> Broadcast {
        Broadcast { event: name.into(), payload: None, gate: event_gate(name), drop_if_slow: false, state_version: None }
    }

    fn receivers(c: &Connections, name: &str, audience: Audience<'_>) -> Vec<String> {
        let mut out = Vec::new();
        c.fan_out(&mut out, event(name), audience);
        let mut ids: Vec<String> = out.into_iter().map(|d| d.conn_id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn events_reach_authenticated_sockets_in_scope_and_in_their_audience() {
        let mut c = Connections::default();
        for id in ["admin", "reader", "pending"] {
            c.register(id, Arc::new(Nowhere));
        }
        c.authenticate("admin", auth(&["operator.admin"]));
        c.authenticate("reader", auth(&["operator.read"]));
        assert_eq!(c.counts(), (3, 2));
        assert_eq!(receivers(&c, "tick", Audience::Everyone), ["admin", "reader"], "nothing before hello-ok");
        assert_eq!(receivers(&c, "device.pair.requested", Audience::Everyone), ["admin"], "pairing needs operator.pairing");
        assert!(receivers(&c, "sessions.changed", Audience::SessionsSubscribers).is_empty());
        assert!(c.subscribe_sessions("reader") && !c.subscribe_sessions("gone"));
        assert_eq!(receivers(&c, "sessions.changed", Audience::SessionsSubscribers), ["reader"]);
        assert!(c.subscribe_messages("admin", "agent:main:main", true));
        assert_eq!(receivers(&c, "session.message", Audience::SessionMessages("agent:main:main")), ["admin"]);
        assert!(c.subscribe_messages("admin", "agent:main:main", false));
        assert!(receivers(&c, "session.message", Audience::SessionMessages("agent:main:main")).is_empty());
        let mut out = Vec::new();
        c.to_all(&mut out, &ToConn::Shutdown("bye".into()));
        assert_eq!(out.len(), 3, "shutdown reaches unauthenticated sockets too");
        assert!(c.remove("admin") && !c.remove("pending") && !c.remove("pending"));
    }
}
