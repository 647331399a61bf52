//! One accepted TCP connection: HTTP/1.1 with hyper, routed by the core; WebSocket upgrades are
//! handed to [`crate::session`] on the same socket, API requests to [`crate::api`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clawgate_core::http::{HttpAction, HttpResponse, RequestHead, route};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

use crate::daemon::Ctx;
use crate::rt::Runtime;
use crate::session::{self, unix_ms};

/// Slowloris guard: a request head must arrive within this (issue 11: short, so idle sockets
/// do not hold descriptors long).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (line and headers) accepted; a larger one is answered 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long an answer that does not read the body waits for the body's first bytes after the
/// `100 Continue` (see [`continue_first`]).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

/// Every response body: complete or streamed.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A core response as a hyper response (for HEAD, hyper sends the headers and the length of
/// this body, without the body).
pub fn to_hyper(r: HttpResponse) -> Response<Body> {
    let mut b = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        b = b.header(*k, v.as_str());
    }
    if r.close {
        b = b.header("Connection", "close");
    }
    b.body(full(r.body)).unwrap_or_else(|_| {
        let mut resp = Response::new(full(&b"Internal Server Error"[..]));
        *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

/// `Expect: 100-continue` is answered with `100 Continue` before anything else, auth included
/// (spec http §1, `tools-invoke-oversized-noauth`: 100, then 401). hyper sends the `100` when the
/// body is first polled and only while no response has started, so an answer that does not read
/// the body first polls it, up to its first frame (or [`CONTINUE_WAIT`]).
async fn continue_first<R: Runtime>(rt: &R, req: &mut Request<Incoming>) {
    let expects = req.headers().get(hyper::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects {
        let frame = std::pin::pin!(req.body_mut().frame());
        let _ = futures_util::future::select(frame, rt.sleep_until(Instant::now() + CONTINUE_WAIT)).await;
    }
}

async fn handle<R: Runtime>(rt: R, ctx: Arc<Ctx>, remote: SocketAddr, mut req: Request<Incoming>) -> Response<Body> {
    let action = {
        let headers: Vec<(&str, &[u8])> = req.headers().iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let head = RequestHead {
            method: req.method().as_str(),
            path: req.uri().path(),
            query: req.uri().query().unwrap_or(""),
            headers: &headers,
            remote: remote.ip(),
        };
        route(&ctx.hub, &head, Instant::now(), unix_ms())
    };
    match action {
        HttpAction::Respond(r) => {
            continue_first(&rt, &mut req).await;
            to_hyper(r)
        }
        HttpAction::RespondAfter(delay, r) => {
            continue_first(&rt, &mut req).await;
            rt.sleep_until(Instant::now() + delay).await;
            to_hyper(r)
        }
        HttpAction::ReadBody { request, limit } => {
            let declared =
                req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit as u64) {
                continue_first(&rt, &mut req).await;
                return to_hyper(request.route.too_large(&ctx.hub));
            }
            match crate::api::read_body(&rt, req.into_body(), limit).await {
                Ok(body) => crate::api::serve(rt, ctx, *request, body).await,
                Err(e) => to_hyper(request.route.body_error(&ctx.hub, e)),
            }
        }
        HttpAction::GetResponse { id, caller } => crate::api::get_response(rt, ctx, id, caller).await,
        HttpAction::Store(job) => to_hyper(crate::api::store_job(&rt, &ctx, *job).await),
        HttpAction::ControlUi(job) => {
            continue_first(&rt, &mut req).await;
            to_hyper(crate::static_files::serve(&rt, *job).await)
        }
        HttpAction::Upgrade { accept_key, admission } => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            let (rt2, ctx2) = (rt.clone(), ctx.clone());
            rt.spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => session::run(rt2, ctx2, upgraded, admission).await,
                    Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
                }
            });
            Response::builder()
                .status(101)
                .header("Upgrade", "websocket")
                .header("Connection", "Upgrade")
                .header("Sec-WebSocket-Accept", accept_key)
                .body(full(Bytes::new()))
                .unwrap_or_else(|_| Response::new(full(Bytes::new())))
        }
    }
}

/// Serve one accepted connection until it ends. Until its first request head arrives it counts
/// as waiting (`pending`), and it is closed if `evicted` fires (newer connections need room).
pub async fn serve_connection<R: Runtime>(
    rt: R,
    ctx: Arc<Ctx>,
    io: R::Io,
    remote: SocketAddr,
    pending: crate::admission::Pending,
    evicted: futures_channel::oneshot::Receiver<()>,
) {
    let rt2 = rt.clone();
    let pending = std::sync::Mutex::new(pending);
    let svc = service_fn(move |req: Request<Incoming>| {
        pending.lock().unwrap_or_else(|p| p.into_inner()).head_arrived();
        let (rt, ctx) = (rt2.clone(), ctx.clone());
        async move { Ok::<_, Infallible>(handle(rt, ctx, remote, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(rt.hyper_timer())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Request heads above 16 KiB are answered 431, as the reference's Node server does.
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true)
        .serve_connection(io, svc)
        .with_upgrades();
    // Once the head arrived the registry drops the sender: the receiver then never closes us.
    let evicted = async {
        if evicted.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let conn = std::pin::pin!(conn);
    let evicted = std::pin::pin!(evicted);
    match futures_util::future::select(conn, evicted).await {
        futures_util::future::Either::Left((Err(e), _)) => tracing::debug!(%remote, "http connection ended: {e}"),
        futures_util::future::Either::Left((Ok(()), _)) => {}
        futures_util::future::Either::Right(_) => tracing::debug!(%remote, "closed a connection that sent no request, to make room"),
    }
}
