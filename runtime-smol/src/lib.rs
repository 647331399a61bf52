//! clawgate-smol: the smol shell. Like the tokio shell it only tells the shared driver how to
//! spawn, sleep, bind, accept, connect and catch signals — here on smol's executor and
//! `async-io` reactor. No tokio runtime is started (tokio is in the tree only as hyper's
//! runtime-agnostic `sync` primitives).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use clawgate_driver::rt::{AcceptFuture, BoxFuture, Runtime};
use smol::Executor;
use smol::net::{TcpListener, TcpStream};
use smol_hyper::rt::{FuturesIo, SmolTimer};

/// smol as the driver sees it: one shared executor run by `workers` threads.
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
        Box::pin(smol::unblock(f))
    }
}

/// Parse the command line, run it on a smol executor with one thread per core (at most 8),
/// return the exit code.
pub fn main_entry() -> i32 {
    let cli = clawgate_core::cli::Cli::parse_as("clawgate-lite");
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    let ex = Arc::new(Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let mut threads = Vec::new();
    // The calling thread runs the executor too, so `workers - 1` helpers.
    for i in 1..workers {
        let (ex, stopped) = (ex.clone(), stopped.clone());
        let t = std::thread::Builder::new().name(format!("clawgate-smol-{i}")).spawn(move || smol::block_on(ex.run(stopped.recv())));
        match t {
            Ok(t) => threads.push(t),
            Err(e) => eprintln!("cannot start worker thread: {e}"),
        }
    }
    let rt = Smol::new(ex.clone(), workers as u32);
    let code = smol::block_on(ex.run(clawgate_driver::main_with(rt, cli)));
    drop(stop);
    for t in threads {
        let _ = t.join();
    }
    code
}
