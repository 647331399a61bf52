//! Upgrade admission (spec §1 upgrade-time rejections): the per-IP budget of sockets that have
//! not authenticated yet, and draining (no new sockets while the gateway stops).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::ingress::{Attribution, RequestFacts};

use super::Hub;

/// Why an upgrade is refused at the HTTP level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReject {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl HttpReject {
    pub(crate) fn text(status: u16, body: &str) -> Self {
        HttpReject { status, content_type: "text/plain; charset=utf-8", body: body.to_string() }
    }
}

/// Unauthenticated sockets per client IP, and whether new sockets are still admitted.
#[derive(Debug, Default)]
pub(crate) struct PreauthSlots {
    by_ip: HashMap<IpAddr, usize>,
    draining: bool,
}

impl PreauthSlots {
    /// Take a pre-auth slot for `ip`, or say why the upgrade is refused.
    pub(crate) fn take(&mut self, ip: IpAddr, max_per_ip: usize) -> Result<(), HttpReject> {
        if self.draining {
            return Err(HttpReject::text(503, "Gateway websocket admission closed"));
        }
        let held = self.by_ip.entry(ip).or_insert(0);
        if *held >= max_per_ip {
            if *held == 0 {
                self.by_ip.remove(&ip);
            }
            return Err(HttpReject::text(503, "Too many unauthenticated sockets"));
        }
        *held += 1;
        Ok(())
    }

    pub(crate) fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.by_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
    }

    pub(crate) fn count(&self, ip: IpAddr) -> usize {
        self.by_ip.get(&ip).copied().unwrap_or(0)
    }

    pub(crate) fn drain(&mut self) {
        self.draining = true;
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining
    }
}

/// An admitted upgrade: carries the attribution and holds the per-IP pre-auth slot until the
/// socket authenticates or the admission is dropped (a permit, like [`super::RequestPermit`]).
pub struct Admission {
    pub(crate) hub: Arc<Hub>,
    pub attribution: Attribution,
    /// The client's IP (after proxy attribution).
    pub ip: IpAddr,
    /// The socket's peer address.
    pub remote: IpAddr,
    pub facts: RequestFacts,
    pub(crate) slot_held: bool,
}

impl Admission {
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Give the pre-auth slot back (the socket authenticated).
    pub(crate) fn release_slot(&mut self) {
        if std::mem::take(&mut self.slot_held) {
            self.hub.release_preauth(self.ip);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.release_slot();
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("attribution", &self.attribution).field("ip", &self.ip).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ip_has_its_own_budget_and_draining_refuses_everyone() {
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let mut slots = PreauthSlots::default();
        assert!(slots.take(a, 2).is_ok() && slots.take(a, 2).is_ok());
        let full = slots.take(a, 2).unwrap_err();
        assert_eq!((full.status, full.body.as_str()), (503, "Too many unauthenticated sockets"));
        assert!(slots.take(b, 2).is_ok(), "another client is not affected");
        slots.release(a);
        assert_eq!(slots.count(a), 1);
        slots.release(a);
        slots.release(a);
        assert_eq!((slots.count(a), slots.by_ip.len()), (0, 1), "an IP with no slot is forgotten");
        assert!(slots.take(a, 0).is_err() && slots.count(a) == 0 && !slots.by_ip.contains_key(&a));
        slots.drain();
        assert_eq!(slots.take(a, 9).unwrap_err().body, "Gateway websocket admission closed");
        assert!(slots.is_draining());
    }
}
