//! The process-wide request-start queue (spec §10.1): how many requests (and how many frame
//! bytes) may be in progress at once. Lock-free counters: a permit is taken on every request
//! frame, on every socket, without the hub's lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::limits::Limits;

/// Process-wide request-start accounting.
#[derive(Debug, Default)]
pub(crate) struct RequestQueue {
    pending: AtomicUsize,
    bytes: AtomicUsize,
}

/// Held while a request runs; dropping it frees its slot in the start queue.
#[derive(Debug)]
pub struct RequestPermit {
    queue: Option<Arc<RequestQueue>>,
    bytes: usize,
}

impl RequestPermit {
    /// A permit outside the queue (node requests, tests).
    pub fn unmetered() -> Self {
        RequestPermit { queue: None, bytes: 0 }
    }
}

impl Drop for RequestPermit {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            q.pending.fetch_sub(1, Ordering::AcqRel);
            q.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

impl RequestQueue {
    /// Reserve a slot for a request of `bytes` frame bytes; `None` when the queue is full.
    pub(crate) fn try_start(self: &Arc<Self>, bytes: usize, limits: &Limits) -> Option<RequestPermit> {
        let pending = self.pending.fetch_add(1, Ordering::AcqRel);
        let total = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        if pending >= limits.request_queue_max || total + bytes > limits.request_queue_max_bytes {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            self.bytes.fetch_sub(bytes, Ordering::AcqRel);
            return None;
        }
        Some(RequestPermit { queue: Some(self.clone()), bytes })
    }

    /// Requests currently holding a slot.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_caps_requests_and_bytes_and_permits_give_their_slot_back() {
        let limits = Limits { request_queue_max: 2, request_queue_max_bytes: 100, ..Limits::default() };
        let q = Arc::new(RequestQueue::default());
        let a = q.try_start(10, &limits).expect("first");
        let b = q.try_start(10, &limits).expect("second");
        assert!(q.try_start(1, &limits).is_none(), "a third request waits for a slot");
        assert_eq!(q.pending(), 2, "a refused request holds nothing");
        drop(a);
        assert!(q.try_start(91, &limits).is_none(), "10 + 91 bytes exceed the byte budget");
        let c = q.try_start(90, &limits).expect("within both budgets");
        drop((b, c));
        assert_eq!(q.pending(), 0);
        assert!(RequestPermit::unmetered().queue.is_none());
    }
}
