//! Socket setup both shells share.

use std::io;
use std::net::SocketAddr;

/// A non-blocking listening socket with `SO_REUSEADDR` (restart without waiting for TIME_WAIT)
/// and without `SO_REUSEPORT` (a second gateway on the same port must fail, not share it).
/// IPv6 sockets are v6-only, so `127.0.0.1` and `::1` are separate listeners.
pub fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let domain = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(domain, Type::STREAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// The host's own interface addresses (trusted-proxy §4.7 step 3); `None` if they cannot be listed.
pub fn local_interfaces() -> Option<Vec<std::net::IpAddr>> {
    match if_addrs::get_if_addrs() {
        Ok(list) => Some(list.into_iter().map(|i| i.ip()).collect()),
        Err(e) => {
            tracing::warn!("cannot list the host's interface addresses: {e}");
            None
        }
    }
}
