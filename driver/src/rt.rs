//! The few things a shell must provide: spawning, timers, TCP, signals. Everything else in the
//! driver is written once against this trait (quinn's `Runtime` trait, same idea).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What [`Runtime::accept`] returns: the stream and the peer address.
pub type AcceptFuture<'a, Io> = Pin<Box<dyn Future<Output = io::Result<(Io, SocketAddr)>> + Send + 'a>>;

/// An async runtime as the driver needs it.
pub trait Runtime: Clone + Send + Sync + Unpin + 'static {
    /// A bound TCP listener.
    type Listener: Send + Sync + 'static;
    /// A TCP stream, as hyper IO.
    type Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;
    /// hyper's timer (header-read timeout, keep-alive).
    type Timer: hyper::rt::Timer + Clone + Send + Sync + 'static;

    /// `"tokio"` or `"smol"`.
    fn name(&self) -> &'static str;
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F);
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;
    /// Bind a listener (with `SO_REUSEADDR`, without `SO_REUSEPORT`).
    fn bind(&self, addr: SocketAddr) -> io::Result<Self::Listener>;
    fn local_addr(&self, listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// Accept one connection; `TCP_NODELAY` is set on it.
    fn accept<'a>(&'a self, listener: &'a Self::Listener) -> AcceptFuture<'a, Self::Io>;
    /// Connect to `addr`; `TCP_NODELAY` is set.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Self::Io>>;
    fn hyper_timer(&self) -> Self::Timer;
    /// Resolves with the signal name on SIGTERM or SIGINT.
    fn shutdown_signal(&self) -> BoxFuture<&'static str>;
    /// Worker threads serving tasks.
    fn worker_threads(&self) -> u32;
    /// Run blocking work (file IO, child processes) off the reactor threads.
    fn spawn_blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<T>;
}
