//! TLS for upstream provider calls: rustls (ring, Mozilla roots from `webpki-roots`, no system
//! dependency) over any runtime's hyper IO. Two small adapters bridge hyper's IO traits and the
//! `futures-io` traits `futures-rustls` speaks; both are safe (one copy on read).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use rustls::pki_types::ServerName;

fn config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            add_extra_roots(&mut roots);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut c = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(c))
        })
        .clone()
}

/// Extra trusted CAs from a PEM file named by `NODE_EXTRA_CA_CERTS` (the variable the reference's
/// Node runtime honours, so existing deployments with a private CA keep working) or
/// `CLAWGATE_EXTRA_CA_CERTS`. A bad file is logged and skipped, never fatal.
fn add_extra_roots(roots: &mut rustls::RootCertStore) {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    for var in ["CLAWGATE_EXTRA_CA_CERTS", "NODE_EXTRA_CA_CERTS"] {
        let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else { continue };
        let certs: Vec<CertificateDer<'static>> = match CertificateDer::pem_file_iter(&path) {
            Ok(it) => it.filter_map(Result::ok).collect(),
            Err(e) => {
                tracing::warn!("{var}={}: cannot read CA certificates: {e}", path.to_string_lossy());
                continue;
            }
        };
        let (added, ignored) = roots.add_parsable_certificates(certs);
        tracing::info!(
            "{var}: {added} extra CA certificate(s) trusted for TLS connections (providers, wss:// gateways) ({ignored} ignored)"
        );
    }
}

/// A TLS connection over hyper IO, usable as hyper IO.
pub type Tls<T> = ToHyper<TlsStream<ToFutures<T>>>;

/// Handshake with `host` (SNI and certificate name) over `io`.
pub async fn connect<T>(io: T, host: &str) -> Result<Tls<T>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let name = ServerName::try_from(host.to_string()).map_err(|_| format!("invalid TLS server name {host}"))?;
    let stream = TlsConnector::from(config()?).connect(name, ToFutures(io)).await.map_err(|e| format!("TLS with {host}: {e}"))?;
    Ok(ToHyper(stream))
}

/// hyper IO as `futures-io`.
pub struct ToFutures<T>(pub T);

impl<T: hyper::rt::Read + Unpin> futures_io::AsyncRead for ToFutures<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = hyper::rt::ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, rb.unfilled()))?;
        Poll::Ready(Ok(rb.filled().len()))
    }
}

impl<T: hyper::rt::Write + Unpin> futures_io::AsyncWrite for ToFutures<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `futures-io` as hyper IO.
pub struct ToHyper<T>(pub T);

impl<T: futures_io::AsyncRead + Unpin> hyper::rt::Read for ToHyper<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, mut buf: hyper::rt::ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        let mut tmp = [0u8; 8192];
        let want = buf.remaining().min(tmp.len());
        let n = ready!(Pin::new(&mut self.0).poll_read(cx, &mut tmp[..want]))?;
        buf.put_slice(&tmp[..n]);
        Poll::Ready(Ok(()))
    }
}

impl<T: futures_io::AsyncWrite + Unpin> hyper::rt::Write for ToHyper<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
