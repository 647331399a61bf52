//! The socket runner: real TCP to any gateway URL. WebSockets go through clawgate-driver's
//! [`RawSocket`] on the tokio runtime of clawgate-tokio; a connection whose script plays a
//! pong-less peer, or writes a multi-MiB frame, uses the blocking [`ManualWs`] instead. HTTP
//! steps use a small HTTP/1.1 client over `std::net::TcpStream`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clawgate_driver::client::{ClientError, RawEvent, RawSocket, WsUrl};
use clawgate_tokio::Tokio;
use tungstenite::Message;

use crate::engine::{self, Env, HttpReq, HttpResp, Msg, OpenOpts, OpenResult, Transport, WireEvent};
use crate::httpc::{self, ManualConn, ManualOpen, ManualWs};
use crate::model::{Check, CheckResult, Conn, Outcome, Tag};
use tokio::sync::{mpsc, oneshot};

enum Cmd {
    Send(Message, oneshot::Sender<()>),
    Close(Option<u16>, String, oneshot::Sender<()>),
}

/// A driver socket owned by its own task, which keeps reading (and answering pings) all the
/// time, so every event is stamped when it arrives — not when the script gets to it.
struct DriverConn {
    cmds: mpsc::UnboundedSender<Cmd>,
    events: mpsc::UnboundedReceiver<(Instant, WireEvent)>,
}

async fn drive(mut raw: RawSocket<Tokio>, mut cmds: mpsc::UnboundedReceiver<Cmd>, events: mpsc::UnboundedSender<(Instant, WireEvent)>) {
    enum Next {
        Cmd(Option<Cmd>),
        Ev(Option<RawEvent>),
    }
    loop {
        let next = tokio::select! {
            biased;
            c = cmds.recv() => Next::Cmd(c),
            e = raw.next(Duration::from_secs(3_600)) => Next::Ev(e),
        };
        match next {
            Next::Cmd(None) => return,
            Next::Cmd(Some(Cmd::Send(m, ack))) => {
                let _ = raw.send(m).await;
                let _ = ack.send(());
            }
            Next::Cmd(Some(Cmd::Close(code, reason, ack))) => {
                raw.close(code, &reason).await;
                let _ = ack.send(());
            }
            Next::Ev(None) | Next::Ev(Some(RawEvent::Pong)) => {}
            Next::Ev(Some(ev)) => {
                let w = match ev {
                    RawEvent::Text(t) => WireEvent::Text(t),
                    RawEvent::Binary(b) => WireEvent::Binary(b),
                    RawEvent::Ping => WireEvent::Ping,
                    RawEvent::Close { code, reason } => WireEvent::Close { code, reason },
                    RawEvent::Ended | RawEvent::Pong => WireEvent::Ended,
                };
                let end = w == WireEvent::Ended;
                if events.send((Instant::now(), w)).is_err() || end {
                    return;
                }
            }
        }
    }
}

enum SockConn {
    Driver(DriverConn),
    Manual(ManualConn),
}

/// A transport to one gateway.
pub struct SocketTransport {
    rt: tokio::runtime::Runtime,
    tokio: Tokio,
    url: String,
    target: WsUrl,
    conns: HashMap<Conn, SockConn>,
}

impl SocketTransport {
    pub fn new(url: &str) -> Result<Self, String> {
        let target = WsUrl::parse(url).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())?;
        let tokio = {
            let _g = rt.enter();
            Tokio::current(2)
        };
        Ok(SocketTransport { rt, tokio, url: url.to_string(), target, conns: HashMap::new() })
    }
}

impl Transport for SocketTransport {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn open(&mut self, conn: Conn, opts: &OpenOpts) -> Result<OpenResult, String> {
        self.drop_conn(conn);
        if !opts.auto_pong || opts.big_frames {
            return match ManualWs::connect(&self.target.host, self.target.port, &self.target.path, &opts.headers, opts.auto_pong)? {
                ManualOpen::Open(ws) => {
                    self.conns.insert(conn, SockConn::Manual(ws.spawn()?));
                    Ok(OpenResult::Open)
                }
                ManualOpen::Rejected { status, body } => Ok(OpenResult::Rejected { status, body }),
            };
        }
        let headers = opts.headers.clone();
        let res = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), RawSocket::connect(&self.tokio, &self.url, &headers)).await });
        match res {
            Err(_) => Err("upgrade timed out".into()),
            Ok(Ok(raw)) => {
                let (ctx, crx) = mpsc::unbounded_channel();
                let (etx, erx) = mpsc::unbounded_channel();
                self.rt.spawn(drive(raw, crx, etx));
                self.conns.insert(conn, SockConn::Driver(DriverConn { cmds: ctx, events: erx }));
                Ok(OpenResult::Open)
            }
            Ok(Err(ClientError::Http { status, body })) => Ok(OpenResult::Rejected { status, body }),
            Ok(Err(e)) => Err(e.to_string()),
        }
    }

    fn send(&mut self, conn: Conn, msg: Msg) -> Result<(), String> {
        // A send on a socket the server already closed is not an error of the script: the
        // close is what the next expectation sees.
        match self.conns.get_mut(&conn).ok_or("no such connection")? {
            SockConn::Driver(d) => {
                let m = match msg {
                    Msg::Text(t) => Message::text(t),
                    Msg::Binary(b) => Message::binary(b),
                };
                let (ack, done) = oneshot::channel();
                if d.cmds.send(Cmd::Send(m, ack)).is_ok() {
                    let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(30), done).await });
                }
                Ok(())
            }
            SockConn::Manual(w) => {
                let _ = match msg {
                    Msg::Text(t) => w.send(0x1, t.as_bytes()),
                    Msg::Binary(b) => w.send(0x2, &b),
                };
                Ok(())
            }
        }
    }

    fn recv(&mut self, conn: Conn, deadline: Instant) -> Option<(Instant, WireEvent)> {
        match self.conns.get_mut(&conn)? {
            SockConn::Driver(d) => {
                self.rt.block_on(async { tokio::time::timeout_at(deadline.into(), d.events.recv()).await }).ok().flatten()
            }
            SockConn::Manual(w) => w.events.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok(),
        }
    }

    fn client_close(&mut self, conn: Conn, code: Option<u16>, reason: &str) -> Result<(), String> {
        match self.conns.get_mut(&conn).ok_or("no such connection")? {
            SockConn::Driver(d) => {
                let (ack, done) = oneshot::channel();
                if d.cmds.send(Cmd::Close(code, reason.to_string(), ack)).is_ok() {
                    let _ = self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), done).await });
                }
                Ok(())
            }
            SockConn::Manual(w) => w.close(code, reason).map_err(|e| e.to_string()),
        }
    }

    fn drop_conn(&mut self, conn: Conn) {
        // Dropping the command sender ends the socket's task (and closes the TCP connection).
        self.conns.remove(&conn);
    }

    fn sleep_until(&mut self, t: Instant) {
        let now = Instant::now();
        if t > now {
            std::thread::sleep(t - now);
        }
    }

    fn http(&mut self, req: &HttpReq) -> Result<HttpResp, String> {
        if req.remote {
            return Err("a non-loopback peer cannot be played over sockets".into());
        }
        httpc::request(&self.target.host, self.target.port, req, Duration::from_secs(15))
    }

    fn remote_peer(&self) -> bool {
        false
    }
}

impl Drop for SocketTransport {
    fn drop(&mut self) {
        self.conns.clear();
    }
}

/// How much later than the other slow checks an `Isolated` one starts.
pub const ISOLATED_DELAY: Duration = Duration::from_secs(3);

/// Runs checks against a gateway URL.
pub struct SocketRunner {
    pub url: String,
    pub env: Env,
    /// Slow checks run concurrently (each mostly waits on timers).
    pub parallel_slow: bool,
}

impl SocketRunner {
    pub fn new(url: &str, env: Env) -> Self {
        SocketRunner { url: url.to_string(), env, parallel_slow: true }
    }

    pub fn run(&self, check: &Check) -> Outcome {
        if let Some(r) = engine::skip_reason(check, &self.env, false) {
            return Outcome::Skip(r);
        }
        match SocketTransport::new(&self.url) {
            Ok(mut t) => engine::run_check(&mut t, check, &self.env),
            Err(e) => Outcome::Fail(format!("runner: {e}")),
        }
    }

    fn timed(&self, check: &Check) -> CheckResult {
        #[allow(clippy::disallowed_methods)]
        let started = Instant::now();
        let outcome = self.run(check);
        crate::report::result_of(check, outcome, started.elapsed().as_millis() as u64)
    }

    /// Every check, in suite order: the quick ones one after the other, then the slow ones
    /// side by side (those tagged `Isolated` start [`ISOLATED_DELAY`] later, once the others
    /// have logged in).
    pub fn run_all(&self, checks: &[Check]) -> Vec<CheckResult> {
        let mut results: Vec<Option<CheckResult>> = vec![None; checks.len()];
        let (slow, quick): (Vec<usize>, Vec<usize>) = (0..checks.len()).partition(|&i| checks[i].has(Tag::Slow));
        for i in quick {
            results[i] = Some(self.timed(&checks[i]));
        }
        if self.parallel_slow {
            std::thread::scope(|s| {
                let handles: Vec<_> = slow
                    .iter()
                    .map(|&i| {
                        let check = &checks[i];
                        (
                            i,
                            s.spawn(move || {
                                if check.has(Tag::Isolated) && engine::skip_reason(check, &self.env, false).is_none() {
                                    std::thread::sleep(ISOLATED_DELAY);
                                }
                                self.timed(check)
                            }),
                        )
                    })
                    .collect();
                for (i, h) in handles {
                    results[i] =
                        Some(h.join().unwrap_or_else(|_| crate::report::result_of(&checks[i], Outcome::Fail("runner panicked".into()), 0)));
                }
            });
        } else {
            for i in slow {
                results[i] = Some(self.timed(&checks[i]));
            }
        }
        results.into_iter().map(|r| r.expect("every check ran")).collect()
    }
}
