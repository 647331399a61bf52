//! A minimal reverse proxy on loopback that says who the client is: it adds
//! `X-Forwarded-For: <client>` to the first request of every connection (a browser opens a
//! fresh connection for each WebSocket, so the upgrade always carries it) and then relays bytes
//! both ways. With `gateway.trustedProxies: ["127.0.0.1"]` the gateway sees that client instead
//! of loopback: how a browser on another machine is tested while binding loopback only.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

pub struct ForwardingProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl ForwardingProxy {
    /// Listen on `127.0.0.1:0` now (so the address can go into the gateway's config); relay to
    /// `upstream` once [`ForwardingProxy::start`] is called.
    pub fn bind() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("bind the proxy")
    }

    pub fn start(listener: TcpListener, upstream: SocketAddr, forwarded_for: &str) -> ForwardingProxy {
        let addr = listener.local_addr().expect("proxy address");
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, xff) = (stop.clone(), forwarded_for.to_string());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let xff = xff.clone();
                thread::spawn(move || {
                    let _ = relay(client, upstream, &xff);
                });
            }
        });
        ForwardingProxy { addr, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ForwardingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(mut client: TcpStream, upstream: SocketAddr, xff: &str) -> io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let first_line = head.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(head.len() + 64);
    out.extend_from_slice(&head[..first_line]);
    out.extend_from_slice(format!("X-Forwarded-For: {xff}\r\n").as_bytes());
    out.extend_from_slice(&head[first_line..end]);
    out.extend_from_slice(&head[end..]);
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(&out)?;
    let (mut c2, mut s2) = (client.try_clone()?, server.try_clone()?);
    let back = thread::spawn(move || {
        let _ = io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut client, &mut server);
    let _ = server.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}
