//! Connections that have not sent a complete request head yet, bounded (issue 11 item 6): idle
//! or trickling sockets must not use up the file descriptors real operators need. Over the cap
//! of its source address, or over the global cap, a new connection makes room by closing the
//! oldest waiting one (of that source, or anywhere): a new client always gets its chance to
//! send a head, and whoever holds idle sockets loses the oldest first. The process's soft
//! descriptor limit is raised to its hard limit at start.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use futures_channel::oneshot;

/// Connections waiting for their first request head, in all.
pub const MAX_PENDING_HEADS: usize = 4096;
/// …and from one source address (every loopback address counts as one).
pub const MAX_PENDING_HEADS_PER_IP: usize = 256;

#[derive(Default)]
struct Inner {
    next: u64,
    /// Oldest first: (id, source, closer).
    waiting: VecDeque<(u64, IpAddr, oneshot::Sender<()>)>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The registry of connections waiting for their first request head.
pub struct PendingHeads {
    inner: Mutex<Inner>,
    global_cap: usize,
}

/// One waiting connection; dropping it (or [`Pending::head_arrived`]) leaves the registry.
pub struct Pending {
    registry: Arc<PendingHeads>,
    id: u64,
    ip: IpAddr,
    done: bool,
}

fn source(ip: IpAddr) -> IpAddr {
    let ip = clawgate_core::auth::ingress::normalize_ip(ip);
    if clawgate_core::auth::is_loopback_ip(&ip) { IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) } else { ip }
}

impl PendingHeads {
    /// A registry whose global cap also leaves half the descriptor limit for everything else.
    pub fn new(fd_limit: Option<u64>) -> Arc<PendingHeads> {
        let by_fds = fd_limit.map_or(MAX_PENDING_HEADS, |n| (n / 2).max(64) as usize);
        Arc::new(PendingHeads { inner: Mutex::new(Inner::default()), global_cap: MAX_PENDING_HEADS.min(by_fds) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit a new connection from `ip`: its registration, and a receiver that fires if the
    /// connection must later make room for newer ones.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> (Pending, oneshot::Receiver<()>) {
        let ip = source(ip);
        let mut i = self.lock();
        if i.per_ip.get(&ip).copied().unwrap_or(0) >= MAX_PENDING_HEADS_PER_IP {
            if let Some(pos) = i.waiting.iter().position(|(_, x, _)| *x == ip) {
                if let Some((_, old_ip, closer)) = i.waiting.remove(pos) {
                    Self::forget_ip(&mut i, old_ip);
                    let _ = closer.send(());
                }
            }
        }
        while i.waiting.len() >= self.global_cap {
            let Some((_, old_ip, closer)) = i.waiting.pop_front() else { break };
            Self::forget_ip(&mut i, old_ip);
            let _ = closer.send(());
        }
        let id = i.next;
        i.next += 1;
        let (tx, rx) = oneshot::channel();
        i.waiting.push_back((id, ip, tx));
        *i.per_ip.entry(ip).or_default() += 1;
        (Pending { registry: self.clone(), id, ip, done: false }, rx)
    }

    fn forget_ip(i: &mut Inner, ip: IpAddr) {
        if let Some(n) = i.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                i.per_ip.remove(&ip);
            }
        }
    }

    fn remove(&self, id: u64, ip: IpAddr) {
        let mut i = self.lock();
        if let Some(pos) = i.waiting.iter().position(|(x, _, _)| *x == id) {
            i.waiting.remove(pos);
            Self::forget_ip(&mut i, ip);
        }
    }

    /// Connections waiting now.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Pending {
    /// The first request head arrived: the connection no longer counts as waiting.
    pub fn head_arrived(&mut self) {
        if !self.done {
            self.done = true;
            self.registry.remove(self.id, self.ip);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.head_arrived();
    }
}

/// Raise the soft limit on open files to the hard limit; returns the limit in force.
#[allow(unsafe_code)]
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim.rlim_cur = lim.rlim_max;
                }
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
        Some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_source_and_globally_by_closing_the_oldest() {
        let r = PendingHeads::new(Some(200)); // global cap 100
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mut held: Vec<_> = (0..100).map(|_| r.admit(a)).collect();
        assert_eq!(r.len(), 100);
        // Over the global cap: the oldest is told to close, the newcomer is admitted.
        let _b = r.admit("10.0.0.2".parse().unwrap());
        assert_eq!(r.len(), 100);
        assert_eq!(futures_util::FutureExt::now_or_never(&mut held[0].1), Some(Ok(())));
        assert_eq!(futures_util::FutureExt::now_or_never(&mut held[1].1), None);
        // A head arriving frees the slot; dropping a registration too.
        held[1].0.head_arrived();
        assert_eq!(r.len(), 99);
        held.truncate(50);
        assert!(r.len() <= 51);
        // Per source (every loopback address is one source): the source's oldest makes room.
        let r = PendingHeads::new(None);
        let mut lo: Vec<_> = (0..MAX_PENDING_HEADS_PER_IP)
            .map(|i| r.admit(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, (i / 250) as u8, (i % 250) as u8 + 1))))
            .collect();
        let other = r.admit("192.0.2.1".parse().unwrap());
        let _new = r.admit("127.9.9.9".parse().unwrap());
        assert_eq!(r.len(), MAX_PENDING_HEADS_PER_IP + 1, "still one per source over the cap");
        assert_eq!(futures_util::FutureExt::now_or_never(&mut lo[0].1), Some(Ok(())), "the oldest loopback one made room");
        let mut other = other;
        assert_eq!(futures_util::FutureExt::now_or_never(&mut other.1), None, "other sources are untouched");
    }
}
