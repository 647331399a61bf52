//! One accepted TCP connection: HTTP/1.1 with hyper, routed by the core; WebSocket upgrades are
//! handed to [`crate::session`] on the same socket.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clawgate_core::http::{HttpAction, HttpResponse, RequestHead, route};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

use crate::daemon::Ctx;
use crate::rt::Runtime;
use crate::session::{self, unix_ms};

/// Slowloris guard: the request head must arrive within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

fn to_hyper(r: HttpResponse) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        b = b.header(*k, v.as_str());
    }
    if r.close {
        b = b.header("Connection", "close");
    }
    b.body(Full::new(Bytes::from(r.body))).unwrap_or_else(|_| {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"Internal Server Error")));
        *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

fn handle<R: Runtime>(rt: &R, ctx: &Arc<Ctx>, remote: SocketAddr, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let headers: Vec<(&str, &[u8])> = req.headers().iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    let head = RequestHead { method: req.method().as_str(), path: req.uri().path(), headers: &headers, remote: remote.ip() };
    match route(&ctx.hub, &head, Instant::now(), unix_ms()) {
        HttpAction::Respond(r) => to_hyper(r),
        HttpAction::Upgrade { accept_key, admission } => {
            drop(headers);
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
                .body(Full::new(Bytes::new()))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
        }
    }
}

/// Serve one accepted connection until it ends.
pub async fn serve_connection<R: Runtime>(rt: R, ctx: Arc<Ctx>, io: R::Io, remote: SocketAddr) {
    let rt2 = rt.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let resp = handle(&rt2, &ctx, remote, req);
        async move { Ok::<_, Infallible>(resp) }
    });
    let conn = http1::Builder::new()
        .timer(rt.hyper_timer())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%remote, "http connection ended: {e}");
    }
}
