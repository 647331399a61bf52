//! Drives a core [`Turn`] against the network: sends what it asks, feeds back the response
//! head and body bytes, sleeps until its deadline. The consumer gets each [`TurnEvent`] and says
//! whether it still wants more (false = the client is gone: the turn is aborted and the upstream
//! request dropped). [`drive_until`] also stops the turn when a stop signal fires (`chat.abort`);
//! [`drive_streaming`] reads the upstream only while the client's [`StreamQueue`] has room, and
//! aborts the turn when the client leaves or takes nothing for the slow-client timeout.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use clawgate_core::openai::turn::{Turn, TurnEvent, TurnOutput};
use hyper::body::{Body, Incoming};

use crate::rt::{BoxFuture, Runtime};
use crate::stream::StreamQueue;
use crate::upstream;

enum InFlight {
    None,
    Head(BoxFuture<Result<upstream::Response, String>>),
    Body(Incoming),
}

enum Step {
    Stop,
    Timeout,
    /// The streaming client's queue has been full for a while: check whether it is stalled.
    StallCheck,
    Head(Result<upstream::Response, String>),
    Data(bytes::Bytes),
    End,
    BodyError(String),
}

/// Run `turn` to its end. `on_event` returns false once nobody wants the result any more.
pub async fn drive<R: Runtime>(rt: R, turn: Turn, on_event: impl FnMut(TurnEvent) -> bool) {
    drive_until(rt, turn, std::future::pending::<()>(), on_event).await
}

/// [`drive`], stopping the turn (and dropping its upstream request) when `stop` completes. A
/// stopped turn emits no terminal event.
pub async fn drive_until<R: Runtime>(rt: R, turn: Turn, stop: impl Future<Output = ()>, on_event: impl FnMut(TurnEvent) -> bool) {
    drive_gated(rt, turn, stop, None, on_event).await
}

/// [`drive`] for a streamed HTTP answer: the upstream is read only while `queue` has room (the
/// client's pace sets the provider's); the turn is aborted (upstream request dropped, no
/// terminal event) when the client leaves, or when it has taken nothing for `slow_client`.
pub async fn drive_streaming<R: Runtime>(
    rt: R,
    turn: Turn,
    queue: &StreamQueue,
    slow_client: std::time::Duration,
    on_event: impl FnMut(TurnEvent) -> bool,
) {
    let gone = poll_fn(|cx| queue.poll_gone(cx));
    drive_gated(rt, turn, gone, Some((queue, slow_client)), on_event).await
}

async fn drive_gated<R: Runtime>(
    rt: R,
    mut turn: Turn,
    stop: impl Future<Output = ()>,
    gate: Option<(&StreamQueue, std::time::Duration)>,
    mut on_event: impl FnMut(TurnEvent) -> bool,
) {
    let mut stop = std::pin::pin!(stop);
    let mut stopped = false;
    let mut inflight = InFlight::None;
    loop {
        while let Some(out) = turn.poll_output() {
            match out {
                TurnOutput::Send(req) => {
                    tracing::debug!(url = %req.url, attempt = req.attempt, "upstream request");
                    inflight = InFlight::Head(Box::pin(upstream::send(rt.clone(), req)));
                }
                TurnOutput::Cancel => inflight = InFlight::None,
                TurnOutput::Event(ev) => {
                    if let TurnEvent::Failed(e) = &ev {
                        tracing::warn!(status = e.status, "agent turn failed: {}", e.message);
                    }
                    if !on_event(ev) {
                        turn.abort();
                    }
                }
            }
        }
        if turn.is_done() {
            return;
        }
        let mut sleep: Option<BoxFuture<()>> = turn.poll_timeout().map(|t| rt.sleep_until(t));
        let mut stall: Option<BoxFuture<()>> = gate.and_then(|(q, limit)| q.stalled_since().map(|since| rt.sleep_until(since + limit)));
        let step = poll_fn(|cx| {
            if !stopped && stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Step::Stop);
            }
            if let Some(s) = sleep.as_mut() {
                if s.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Step::Timeout);
                }
            }
            if let Some(s) = stall.as_mut() {
                if s.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Step::StallCheck);
                }
            }
            match &mut inflight {
                InFlight::None => Poll::Pending,
                InFlight::Head(f) => f.as_mut().poll(cx).map(Step::Head),
                // Backpressure: no upstream read while the client's queue is full.
                InFlight::Body(_) if gate.is_some_and(|(q, _)| q.poll_room(cx).is_pending()) => {
                    if stall.is_none() {
                        // Just filled up: come back to arm the slow-client timer.
                        return Poll::Ready(Step::StallCheck);
                    }
                    Poll::Pending
                }
                InFlight::Body(b) => match Pin::new(b).poll_frame(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => Poll::Ready(Step::End),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Step::BodyError(e.to_string())),
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(d) => Poll::Ready(Step::Data(d)),
                        // Trailers: nothing for us; poll again.
                        Err(_) => {
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    },
                },
            }
        })
        .await;
        let now = Instant::now();
        match step {
            Step::Stop => {
                stopped = true;
                turn.abort();
            }
            Step::Timeout => turn.handle_timeout(now),
            Step::StallCheck => {
                if let Some((q, limit)) = gate {
                    if q.stalled_since().is_some_and(|since| now.saturating_duration_since(since) >= limit) {
                        tracing::warn!(
                            queued = q.queued_bytes(),
                            "streaming client took nothing for {} ms; run aborted, upstream request dropped",
                            limit.as_millis()
                        );
                        stopped = true;
                        turn.abort();
                    }
                }
            }
            Step::Head(Ok(resp)) => {
                let headers: Vec<(&str, &str)> = resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                turn.handle_response_head(now, resp.status, &headers);
                inflight = InFlight::Body(resp.body);
            }
            Step::Head(Err(e)) => {
                tracing::warn!("upstream request failed: {e}");
                inflight = InFlight::None;
                turn.handle_transport_error(now, &e);
            }
            Step::Data(d) => turn.handle_body(now, &d),
            Step::End => {
                inflight = InFlight::None;
                turn.handle_body_end(now);
            }
            Step::BodyError(e) => {
                tracing::warn!("upstream body failed: {e}");
                inflight = InFlight::None;
                turn.handle_transport_error(now, &e);
            }
        }
    }
}
