//! The HTTP client for upstream model providers, on any runtime: TCP from the runtime, HTTP/1.1
//! with hyper's client, TLS with rustls (`https://` base URLs). Connections are kept alive and
//! reused per provider address (a connect, and for TLS a handshake, per request cost more CPU
//! than a whole relayed answer — issue 17's profile): a connection goes back to the pool only
//! once its response was read to the end; a response dropped half-way (a client hung up) still
//! closes its connection, which is how the upstream call is aborted.

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clawgate_core::openai::api_response::BodyError;
use clawgate_core::openai::turn::UpstreamRequest;
use futures_util::future::{Either, select};
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};

use crate::rt::Runtime;

/// Connecting (DNS + TCP + TLS) must finish within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `http(s)://host[:port]/path?query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query (`/` at least).
    pub target: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("unsupported URL scheme in {url} (use http:// or https://)"));
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("invalid IPv6 host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("invalid port in {url}"))?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| format!("invalid port in {url}"))?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in {url}"));
        }
        Ok(Url { tls, host, port, target })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == if self.tls { 443 } else { 80 } { host } else { format!("{host}:{}", self.port) }
    }
}

/// A response head; the body streams from `body`.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Incoming,
}

async fn resolve<R: Runtime>(rt: &R, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = format!("{host}:{port}");
    rt.spawn_blocking(move || name.to_socket_addrs().map(|a| a.collect::<Vec<_>>()).map_err(|e| format!("cannot resolve {name}: {e}")))
        .await
}

async fn with_timeout<R: Runtime, T>(rt: &R, fut: impl std::future::Future<Output = Result<T, String>>, what: &str) -> Result<T, String> {
    let deadline = std::time::Instant::now() + CONNECT_TIMEOUT;
    let fut = std::pin::pin!(fut);
    match select(fut, rt.sleep_until(deadline)).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(format!("{what} timed out after {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// Where a kept-alive connection leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    tls: bool,
    host: String,
    port: u16,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Idle connections per address, newest last. Bounded: past `POOL_MAX_IDLE` per address the
/// oldest is closed; one idle longer than `POOL_IDLE` is not reused (servers close theirs).
type IdleConnections = std::collections::HashMap<PoolKey, Vec<(Sender, std::time::Instant)>>;
static POOL: std::sync::Mutex<Option<IdleConnections>> = std::sync::Mutex::new(None);
const POOL_MAX_IDLE: usize = 256;
const POOL_IDLE: Duration = Duration::from_secs(15);

fn pool_take(key: &PoolKey) -> Option<Sender> {
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let idle = pool.as_mut()?.get_mut(key)?;
    while let Some((sender, since)) = idle.pop() {
        if !sender.is_closed() && since.elapsed() < POOL_IDLE {
            return Some(sender);
        }
    }
    None
}

fn pool_put(key: PoolKey, sender: Sender) {
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let idle = pool.get_or_insert_with(Default::default).entry(key).or_default();
    idle.retain(|(s, since)| !s.is_closed() && since.elapsed() < POOL_IDLE);
    if idle.len() >= POOL_MAX_IDLE {
        idle.remove(0);
    }
    idle.push((sender, std::time::Instant::now()));
}

/// Send `req` and wait for the response head. Errors are short, key-free descriptions.
pub async fn send<R: Runtime>(rt: R, req: UpstreamRequest) -> Result<Response, String> {
    let url = Url::parse(&req.url)?;
    let key = PoolKey { tls: url.tls, host: url.host.clone(), port: url.port };
    let request = |req: &UpstreamRequest| -> Result<hyper::Request<Full<Bytes>>, String> {
        let mut builder = hyper::Request::builder().method(req.method).uri(url.target.as_str()).header("host", url.host_header());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder.body(Full::new(Bytes::from(req.body.clone()))).map_err(|e| format!("bad upstream request: {e}"))
    };
    // A kept-alive connection first. One the server closed meanwhile fails before the request
    // was written (`is_canceled`): only then is it retried on a new connection, so a request
    // the server may have seen is never sent twice.
    if let Some(mut sender) = pool_take(&key) {
        match sender.send_request(request(&req)?).await {
            Ok(response) => return Ok(answered(&rt, key, sender, response)),
            Err(e) if e.is_canceled() => {}
            Err(e) => return Err(format!("upstream request: {e}")),
        }
    }
    let mut sender = connect(&rt, &url).await?;
    let response = sender.send_request(request(&req)?).await.map_err(|e| format!("upstream request: {e}"))?;
    Ok(answered(&rt, key, sender, response))
}

/// The response head; its connection returns to the pool once the body was read to the end.
fn answered<R: Runtime>(rt: &R, key: PoolKey, mut sender: Sender, response: hyper::Response<Incoming>) -> Response {
    rt.spawn(async move {
        if poll_fn(|cx| sender.poll_ready(cx)).await.is_ok() {
            pool_put(key, sender);
        }
    });
    let headers = response.headers().iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string()))).collect();
    Response { status: response.status().as_u16(), headers, body: response.into_body() }
}

/// A new connection to `url`'s host (TLS for `https://`).
async fn connect<R: Runtime>(rt: &R, url: &Url) -> Result<Sender, String> {
    let connect = async {
        let addrs = resolve(rt, &url.host, url.port).await?;
        let mut last = format!("no address for {}", url.host);
        for addr in addrs {
            match rt.connect(addr).await {
                Ok(io) => return Ok(io),
                Err(e) => last = format!("connect {addr}: {e}"),
            }
        }
        Err(last)
    };
    let io = with_timeout(rt, connect, "connect").await?;
    if url.tls {
        let tls = with_timeout(rt, crate::tls::connect(io, &url.host), "TLS handshake").await?;
        handshake(rt, tls).await
    } else {
        handshake(rt, io).await
    }
}

/// Read a whole body (a request's or an upstream response's): at most `limit` bytes, counted as
/// they arrive, until `deadline`.
pub async fn read_to_end<R: Runtime>(rt: &R, mut body: Incoming, limit: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut sleep = rt.sleep_until(deadline);
    let mut out = Vec::new();
    loop {
        let frame = poll_fn(|cx| {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(BodyError::Timeout));
            }
            Pin::new(&mut body).poll_frame(cx).map(Ok)
        })
        .await?;
        match frame {
            None => return Ok(out),
            Some(Err(_)) => return Err(BodyError::ConnectionClosed),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    if out.len() + d.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                    out.extend_from_slice(&d);
                }
            }
        }
    }
}

/// Send `req` and read its whole response (status and a body of at most `limit` bytes) before
/// `deadline`. Errors are short, key-free descriptions.
pub async fn fetch<R: Runtime>(rt: R, req: UpstreamRequest, limit: usize, deadline: Instant) -> Result<(u16, Vec<u8>), String> {
    let head = std::pin::pin!(send(rt.clone(), req));
    let resp = match select(head, rt.sleep_until(deadline)).await {
        Either::Left((r, _)) => r?,
        Either::Right(_) => return Err("no response before the deadline".into()),
    };
    match read_to_end(&rt, resp.body, limit, deadline).await {
        Ok(body) => Ok((resp.status, body)),
        Err(BodyError::TooLarge) => Err(format!("response body over {limit} bytes")),
        Err(BodyError::Timeout) => Err("response body did not arrive before the deadline".into()),
        Err(BodyError::ConnectionClosed) => Err("response body cut off".into()),
    }
}

async fn handshake<R: Runtime, T>(rt: &R, io: T) -> Result<Sender, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("upstream handshake: {e}"))?;
    // The connection task ends when the server closes it, when a response body is dropped
    // before its end, or when the pool drops its sender.
    rt.spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("upstream connection ended: {e}");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:28812/v1/chat/completions").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port, u.target.as_str()), (false, "127.0.0.1", 28812, "/v1/chat/completions"));
        let u = Url::parse("https://api.openai.com/v1/embeddings").unwrap();
        assert_eq!((u.tls, u.port, u.host_header().as_str()), (true, 443, "api.openai.com"));
        let u = Url::parse("http://[::1]:9/x?y=1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str(), u.host_header().as_str()), ("::1", 9, "/x?y=1", "[::1]:9"));
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://user:pw@x/").is_err());
        assert!(Url::parse("http://:80/").is_err());
    }
}
