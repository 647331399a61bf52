//! The queue between a streamed answer's producer (the turn runner) and the HTTP body that
//! writes it to the client, bounded in bytes: when the client does not read, the queue fills,
//! the runner stops reading the upstream (so TCP pushes back on the provider), and a client
//! that takes nothing for the slow-client timeout has its run aborted (issue 11 item 1). Memory
//! per open stream is the queue's bound plus one upstream read, whatever either side does.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;

struct Inner {
    items: VecDeque<Bytes>,
    bytes: usize,
    /// The body was dropped: the client is gone (or hyper gave up on it).
    receiver_gone: bool,
    /// The producer is finished: the body ends once drained.
    sender_done: bool,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
    /// When the consumer last took something (or the queue last had room).
    last_progress: Instant,
}

/// The producer's side.
pub struct StreamQueue {
    inner: Mutex<Inner>,
    limit: usize,
}

/// The consumer's side: the HTTP body's frames. Dropping it tells the producer the client left.
pub struct QueueBody(Arc<StreamQueue>);

/// A queue holding at most about `limit` bytes (one push may overshoot it).
pub fn stream_queue(limit: usize) -> (Arc<StreamQueue>, QueueBody) {
    let q = Arc::new(StreamQueue {
        inner: Mutex::new(Inner {
            items: VecDeque::new(),
            bytes: 0,
            receiver_gone: false,
            sender_done: false,
            rx_waker: None,
            tx_waker: None,
            last_progress: Instant::now(),
        }),
        limit: limit.max(1),
    });
    (q.clone(), QueueBody(q))
}

impl StreamQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue `b` for the client; false once the client is gone.
    pub fn push(&self, b: Bytes) -> bool {
        let mut i = self.lock();
        if i.receiver_gone {
            return false;
        }
        if b.is_empty() {
            return true;
        }
        if i.bytes < self.limit {
            i.last_progress = Instant::now();
        }
        i.bytes += b.len();
        i.items.push_back(b);
        if let Some(w) = i.rx_waker.take() {
            w.wake();
        }
        true
    }

    /// No more bytes will come: the body ends after what is queued.
    pub fn finish(&self) {
        let mut i = self.lock();
        i.sender_done = true;
        if let Some(w) = i.rx_waker.take() {
            w.wake();
        }
    }

    pub fn is_receiver_gone(&self) -> bool {
        self.lock().receiver_gone
    }

    /// Ready(true) when there is room for more, Ready(false) when the client is gone; Pending
    /// (woken by the consumer's progress) while the queue is full.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut i = self.lock();
        if i.receiver_gone {
            return Poll::Ready(false);
        }
        if i.bytes < self.limit {
            return Poll::Ready(true);
        }
        i.tx_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Resolves when the client is gone.
    pub fn poll_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut i = self.lock();
        if i.receiver_gone {
            return Poll::Ready(());
        }
        i.tx_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// While the queue is full: since when the client has taken nothing.
    pub fn stalled_since(&self) -> Option<Instant> {
        let i = self.lock();
        (i.bytes >= self.limit && !i.receiver_gone).then_some(i.last_progress)
    }

    /// Bytes waiting for the client.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl futures_util::Stream for QueueBody {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let q = &self.0;
        let mut i = q.lock();
        match i.items.pop_front() {
            Some(b) => {
                i.bytes -= b.len();
                i.last_progress = Instant::now();
                if let Some(w) = i.tx_waker.take() {
                    w.wake();
                }
                Poll::Ready(Some(b))
            }
            None if i.sender_done => Poll::Ready(None),
            None => {
                i.rx_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for QueueBody {
    fn drop(&mut self) {
        let mut i = self.0.lock();
        i.receiver_gone = true;
        i.items.clear();
        i.bytes = 0;
        if let Some(w) = i.tx_waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn fills_drains_and_reports_the_client_leaving() {
        let (q, mut body) = stream_queue(10);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(q.poll_room(&mut cx), Poll::Ready(true));
        assert!(q.push(Bytes::from_static(b"0123456789ab")));
        assert_eq!(q.poll_room(&mut cx), Poll::Pending, "full: the producer waits");
        assert!(q.stalled_since().is_some());
        assert_eq!(futures_util::FutureExt::now_or_never(body.next()), Some(Some(Bytes::from_static(b"0123456789ab"))));
        assert_eq!(q.poll_room(&mut cx), Poll::Ready(true));
        assert!(q.stalled_since().is_none());
        q.push(Bytes::from_static(b"x"));
        q.finish();
        assert_eq!(futures_util::FutureExt::now_or_never(body.next()), Some(Some(Bytes::from_static(b"x"))));
        assert_eq!(futures_util::FutureExt::now_or_never(body.next()), Some(None), "ends after the queued bytes");
        drop(body);
        assert!(!q.push(Bytes::from_static(b"late")), "nobody to read it");
        assert_eq!(q.poll_room(&mut cx), Poll::Ready(false));
        assert_eq!(q.queued_bytes(), 0);
    }
}
