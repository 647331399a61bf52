//! clawgate-tokio: the tokio shell. It only tells the shared driver how to spawn, sleep, bind,
//! accept, connect and catch signals on tokio; everything else is in `clawgate-driver` (IO glue)
//! and `clawgate-core` (protocol).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use clawgate_driver::rt::{AcceptFuture, BoxFuture, Runtime};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

/// The tokio runtime as the driver sees it.
#[derive(Clone)]
pub struct Tokio {
    handle: tokio::runtime::Handle,
    workers: u32,
}

impl Tokio {
    /// Wrap the current runtime.
    pub fn current(workers: u32) -> Self {
        Tokio { handle: tokio::runtime::Handle::current(), workers }
    }
}

impl Runtime for Tokio {
    type Listener = TcpListener;
    type Io = TokioIo<TcpStream>;
    type Timer = TokioTimer;

    fn name(&self) -> &'static str {
        "tokio"
    }

    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.handle.spawn(fut);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let _guard = self.handle.enter();
        TcpListener::from_std(clawgate_driver::net::listen(addr)?)
    }

    fn local_addr(&self, l: &TcpListener) -> io::Result<SocketAddr> {
        l.local_addr()
    }

    fn accept<'a>(&'a self, l: &'a TcpListener) -> AcceptFuture<'a, Self::Io> {
        Box::pin(async move {
            let (s, addr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((TokioIo::new(s), addr))
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Self::Io>> {
        Box::pin(async move {
            let s = TcpStream::connect(addr).await?;
            let _ = s.set_nodelay(true);
            Ok(TokioIo::new(s))
        })
    }

    fn hyper_timer(&self) -> TokioTimer {
        TokioTimer::new()
    }

    fn shutdown_signal(&self) -> BoxFuture<&'static str> {
        Box::pin(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let mut term = match signal(SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        })
    }

    fn worker_threads(&self) -> u32 {
        self.workers
    }

    fn spawn_blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<T> {
        let handle = self.handle.spawn_blocking(f);
        Box::pin(async move {
            match handle.await {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        })
    }
}

/// Parse the command line, run it on a multi-thread tokio runtime, return the exit code.
pub fn main_entry() -> i32 {
    let cli = clawgate_core::cli::Cli::parse_as("clawgate");
    if let Err(code) = clawgate_driver::prepare(&cli) {
        return code;
    }
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(clawgate_core::limits::MAX_BLOCKING_THREADS)
        .thread_keep_alive(clawgate_core::limits::BLOCKING_IDLE_EXIT)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(async move { clawgate_driver::main_with(Tokio::current(workers as u32), cli).await });
    // Dropping the runtime would wait for every blocking task; one stuck in a read (or a slow
    // secret command) must not keep a stopped gateway alive after "shutdown complete".
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
