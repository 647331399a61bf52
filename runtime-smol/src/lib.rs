//! clawgate-smol: the smol shell. Like the tokio shell it only tells the shared driver how to
//! spawn, sleep, bind, accept, connect and catch signals — here on smol's executor and
//! `async-io` reactor. No tokio runtime is started (tokio is in the tree only as hyper's
//! runtime-agnostic `sync` primitives).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

mod blocking;

use clawgate_driver::rt::{AcceptFuture, BoxFuture, Runtime};
use smol::Executor;
use smol::net::{TcpListener, TcpStream};
use smol_hyper::rt::{FuturesIo, SmolTimer};

/// smol as the driver sees it: an executor run by `workers` threads (the binary uses one).
#[derive(Clone)]
pub struct Smol {
    ex: Arc<Executor<'static>>,
    workers: u32,
}

impl Smol {
    pub fn new(ex: Arc<Executor<'static>>, workers: u32) -> Self {
        Smol { ex, workers }
    }
}

impl Runtime for Smol {
    type Listener = TcpListener;
    type Io = FuturesIo<TcpStream>;
    type Timer = SmolTimer;

    fn name(&self) -> &'static str {
        "smol"
    }

    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.ex.spawn(fut).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }

    fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let std = clawgate_driver::net::listen(addr)?;
        TcpListener::try_from(std)
    }

    fn local_addr(&self, l: &TcpListener) -> io::Result<SocketAddr> {
        l.local_addr()
    }

    fn accept<'a>(&'a self, l: &'a TcpListener) -> AcceptFuture<'a, Self::Io> {
        Box::pin(async move {
            let (s, addr) = l.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((FuturesIo::new(s), addr))
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Self::Io>> {
        Box::pin(async move {
            let s = TcpStream::connect(addr).await?;
            let _ = s.set_nodelay(true);
            Ok(FuturesIo::new(s))
        })
    }

    fn hyper_timer(&self) -> SmolTimer {
        SmolTimer::new()
    }

    fn shutdown_signal(&self) -> BoxFuture<&'static str> {
        Box::pin(async {
            use async_signal::{Signal, Signals};
            use smol::stream::StreamExt;
            let Ok(mut signals) = Signals::new([Signal::Term, Signal::Int]) else {
                return std::future::pending().await;
            };
            match signals.next().await {
                Some(Ok(Signal::Int)) => "SIGINT",
                _ => "SIGTERM",
            }
        })
    }

    fn worker_threads(&self) -> u32 {
        self.workers
    }

    fn spawn_blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> BoxFuture<T> {
        Box::pin(blocking::unblock(f))
    }
}

/// Parse the command line, run it on a single-threaded smol executor, return the exit code.
///
/// One thread serves every socket (blocking work goes to [`blocking`]'s pool): the light
/// variant trades multi-core throughput for fewer threads and no cross-thread hops. With the
/// executor shared by several threads, async-io's reactor is driven by whichever thread is idle,
/// so accept → upgrade → session and every wake-up hopped between threads (5.5 context switches
/// and 0.3 CPU migrations per handshake vs 2.3 and 0.01 for the tokio shell; see BENCHMARKS.md).
pub fn main_entry() -> i32 {
    let cli = clawgate_core::cli::Cli::parse_as("clawgate-lite");
    if let Err(code) = clawgate_driver::prepare(&cli) {
        return code;
    }
    let ex = Arc::new(Executor::new());
    let rt = Smol::new(ex.clone(), 1);
    smol::block_on(ex.run(clawgate_driver::main_with(rt, cli)))
}
