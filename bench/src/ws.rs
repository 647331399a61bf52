//! A lean WebSocket client for load generation: one tokio `TcpStream` with `TCP_NODELAY`, a small
//! growable read buffer parsed in place, requests encoded straight into a write buffer and sent
//! with one `write` per batch. No per-frame allocation on the hot path, no locks, no extra task:
//! the goal is to spend as little of the shared CPU as possible on the client side.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Initial (and idle) read buffer per connection.
pub const READ_BUFFER: usize = 4 * 1024;

/// A fixed `Sec-WebSocket-Key` (RFC 6455's example) and its accept value.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#[derive(Debug)]
pub enum WsError {
    Io(io::Error),
    /// The server answered the upgrade with something other than 101.
    Http(u16, String),
    /// The server sent a close frame.
    Closed(u16, String),
    Timeout,
    Protocol(String),
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Io(e) => write!(f, "io: {e}"),
            WsError::Http(s, b) => write!(f, "http {s}: {}", b.trim()),
            WsError::Closed(c, r) => write!(f, "closed {c} {r}"),
            WsError::Timeout => write!(f, "timeout"),
            WsError::Protocol(p) => write!(f, "protocol: {p}"),
        }
    }
}

impl From<io::Error> for WsError {
    fn from(e: io::Error) -> Self {
        WsError::Io(e)
    }
}

/// Where a received text message is: in the read buffer, or reassembled from fragments.
#[derive(Debug, Clone)]
pub enum Text {
    Buf(Range<usize>),
    Assembled,
}

pub struct WsConn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    start: usize,
    end: usize,
    wbuf: Vec<u8>,
    frag: Vec<u8>,
    fragmenting: bool,
    rng: u32,
    /// Bytes of text payload received (for average frame sizes).
    pub rx_text_bytes: u64,
}

/// Open a TCP connection (optionally from a given source address) with `TCP_NODELAY`.
pub async fn tcp_connect(addr: SocketAddr, src: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = src {
        crate::sys::set_bind_address_no_port(&sock)?;
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

impl WsConn {
    /// HTTP upgrade on a connected stream. Leftover bytes after the 101 head stay buffered.
    pub async fn upgrade(stream: TcpStream, host: &str, path: &str) -> Result<WsConn, WsError> {
        let mut c = WsConn {
            stream,
            rbuf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            wbuf: Vec::with_capacity(512),
            frag: Vec::new(),
            fragmenting: false,
            rng: 0x9E37_79B9,
            rx_text_bytes: 0,
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {WS_KEY}\r\n\r\n"
        );
        c.stream.write_all(req.as_bytes()).await?;
        let head_end = loop {
            if let Some(i) = find(&c.rbuf[..c.end], b"\r\n\r\n") {
                break i + 4;
            }
            if c.fill().await? == 0 {
                return Err(WsError::Protocol("EOF during upgrade".into()));
            }
            if c.end > 64 * 1024 {
                return Err(WsError::Protocol("upgrade response head too large".into()));
            }
        };
        let head = String::from_utf8_lossy(&c.rbuf[..head_end]).into_owned();
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        if status != 101 {
            // Best effort: the body of a short error response.
            let _ = tokio::time::timeout(Duration::from_millis(100), c.fill()).await;
            let body = String::from_utf8_lossy(&c.rbuf[head_end..c.end]).into_owned();
            return Err(WsError::Http(status, body));
        }
        let accept_ok = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("sec-websocket-accept") && v.trim() == WS_ACCEPT)
        });
        if !accept_ok {
            return Err(WsError::Protocol("bad Sec-WebSocket-Accept".into()));
        }
        c.start = head_end;
        Ok(c)
    }

    /// Read more bytes into the buffer. Returns the number read (0 = EOF).
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.rbuf.len() && self.start > 0 {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.rbuf.len() {
            let n = self.rbuf.len() * 2;
            self.rbuf.resize(n, 0);
        }
        let n = self.stream.read(&mut self.rbuf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Fill with a deadline; EOF is an error.
    pub async fn fill_until(&mut self, deadline: Instant) -> Result<(), WsError> {
        match tokio::time::timeout_at(deadline.into(), self.fill()).await {
            Ok(Ok(0)) => Err(WsError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(WsError::Io(e)),
            Err(_) => Err(WsError::Timeout),
        }
    }

    /// Give memory back after a large frame (e.g. a 15 KB hello) once the buffer is empty.
    pub fn shrink(&mut self) {
        if self.start == self.end && self.rbuf.len() > READ_BUFFER {
            self.rbuf.truncate(READ_BUFFER);
            self.rbuf.shrink_to_fit();
            self.start = 0;
            self.end = 0;
        }
        if self.wbuf.capacity() > 4096 && self.wbuf.is_empty() {
            self.wbuf.shrink_to(512);
        }
        self.frag = Vec::new();
    }

    /// The next complete text message already in the buffer, handling control frames (pings
    /// are answered by queueing a pong; close is an error). `Ok(None)`: need more bytes.
    pub fn next_text(&mut self) -> Result<Option<Text>, WsError> {
        loop {
            let avail = &self.rbuf[self.start..self.end];
            if avail.len() < 2 {
                return Ok(None);
            }
            let b0 = avail[0];
            let b1 = avail[1];
            let fin = b0 & 0x80 != 0;
            let opcode = b0 & 0x0f;
            let masked = b1 & 0x80 != 0;
            let (len, mut hdr) = match b1 & 0x7f {
                126 => {
                    if avail.len() < 4 {
                        return Ok(None);
                    }
                    (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4)
                }
                127 => {
                    if avail.len() < 10 {
                        return Ok(None);
                    }
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&avail[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                n => (n as usize, 2),
            };
            let mask = if masked {
                if avail.len() < hdr + 4 {
                    return Ok(None);
                }
                let m = [avail[hdr], avail[hdr + 1], avail[hdr + 2], avail[hdr + 3]];
                hdr += 4;
                Some(m)
            } else {
                None
            };
            if len > 64 << 20 {
                return Err(WsError::Protocol(format!("frame of {len} bytes")));
            }
            if avail.len() < hdr + len {
                // Make room for the whole frame.
                let need = hdr + len;
                if need > self.rbuf.len() - self.start {
                    self.rbuf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                    if need > self.rbuf.len() {
                        self.rbuf.resize(need.next_power_of_two(), 0);
                    }
                }
                return Ok(None);
            }
            let p = self.start + hdr..self.start + hdr + len;
            self.start += hdr + len;
            if let Some(m) = mask {
                for (i, b) in self.rbuf[p.clone()].iter_mut().enumerate() {
                    *b ^= m[i & 3];
                }
            }
            match opcode {
                0x1 | 0x2 if fin && !self.fragmenting => {
                    self.rx_text_bytes += len as u64;
                    return Ok(Some(Text::Buf(p)));
                }
                0x1 | 0x2 => {
                    self.frag.clear();
                    self.frag.extend_from_slice(&self.rbuf[p]);
                    self.fragmenting = true;
                }
                0x0 => {
                    self.frag.extend_from_slice(&self.rbuf[p]);
                    if fin {
                        self.fragmenting = false;
                        self.rx_text_bytes += self.frag.len() as u64;
                        return Ok(Some(Text::Assembled));
                    }
                }
                0x8 => {
                    let body = &self.rbuf[p];
                    let code = if body.len() >= 2 { u16::from_be_bytes([body[0], body[1]]) } else { 1005 };
                    let reason = String::from_utf8_lossy(body.get(2..).unwrap_or(&[])).into_owned();
                    return Err(WsError::Closed(code, reason));
                }
                0x9 => {
                    let body = self.rbuf[p].to_vec();
                    self.queue_frame(0xA, &body);
                }
                _ => {} // pong / reserved: ignore
            }
        }
    }

    /// The bytes of a message returned by [`next_text`].
    pub fn text(&self, t: &Text) -> &[u8] {
        match t {
            Text::Buf(r) => &self.rbuf[r.clone()],
            Text::Assembled => &self.frag,
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift32: masks need not be cryptographic for a loopback benchmark.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x.to_ne_bytes()
    }

    /// Encode one masked frame into the write buffer.
    pub fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = self.next_mask();
        self.wbuf.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            self.wbuf.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            self.wbuf.push(0x80 | 126);
            self.wbuf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.wbuf.push(0x80 | 127);
            self.wbuf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.wbuf.extend_from_slice(&mask);
        let at = self.wbuf.len();
        self.wbuf.extend_from_slice(payload);
        for (i, b) in self.wbuf[at..].iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
    }

    pub fn queue_text(&mut self, payload: &[u8]) {
        self.queue_frame(0x1, payload);
    }

    /// Queue a request frame `{"type":"req","id":"<id>","method":"<method>"}` without allocating.
    pub fn queue_request(&mut self, id: u64, method: &str) {
        let mut tmp = [0u8; 128];
        let mut w = &mut tmp[..];
        use std::io::Write as _;
        let _ = write!(w, r#"{{"type":"req","id":"{id}","method":"{method}"}}"#);
        let n = 128 - w.len();
        self.queue_text(&tmp[..n]);
    }

    pub fn has_pending_writes(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Write out everything queued (one `write` syscall in the common case).
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Send a close frame (1000) and shut the socket down. Does not wait for the server's reply.
    pub async fn close(mut self) {
        self.queue_frame(0x8, &1000u16.to_be_bytes());
        let _ = tokio::time::timeout(Duration::from_millis(200), self.flush()).await;
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---- classifying server frames ---------------------------------------------------------------

/// What a server frame is, as far as the load generator cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// `res` with `ok:true` for a numeric id we sent.
    Ok(u64),
    /// `res` with `ok:false`: the id (if numeric), error code and message.
    Err(Option<u64>, String, String),
    /// `res` with a non-numeric id (e.g. the connect, id "c").
    OkOther(String, bool),
    Event(String),
    Other,
}

#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default, borrow)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    error: Option<ErrShape>,
}

#[derive(serde::Deserialize)]
struct ErrShape {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v = 0u64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    Some(v)
}

/// Classify a server frame. Fast path for `{"type":"res","id":"<n>","ok":true…` (the field order
/// both clawgate and the reference use); anything else goes through serde.
pub fn classify(t: &[u8]) -> Frame {
    const RES: &[u8] = br#"{"type":"res","id":""#;
    if let Some(rest) = t.strip_prefix(RES) {
        if let Some(q) = rest.iter().position(|&c| c == b'"') {
            if rest[q + 1..].starts_with(br#","ok":true"#) {
                if let Some(id) = parse_u64(&rest[..q]) {
                    return Frame::Ok(id);
                }
            }
        }
    }
    let Ok(h) = serde_json::from_slice::<Head<'_>>(t) else { return Frame::Other };
    match h.ty.as_ref() {
        "res" => {
            let id = match &h.id {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let num = parse_u64(id.as_bytes());
            match (h.ok, num) {
                (Some(true), Some(n)) => Frame::Ok(n),
                (Some(true), None) => Frame::OkOther(id, true),
                _ => {
                    let (code, message) = h.error.map(|e| (e.code, e.message)).unwrap_or_default();
                    match num {
                        Some(n) => Frame::Err(Some(n), code, message),
                        None if h.ok == Some(false) && id.is_empty() => Frame::Err(None, code, message),
                        None => Frame::OkOther(id, false),
                    }
                }
            }
        }
        "event" => Frame::Event(h.event.map(|e| e.into_owned()).unwrap_or_default()),
        _ => Frame::Other,
    }
}

/// The gateway's request-start queue overflow answer ("The server is busy...").
pub fn is_busy(code: &str, message: &str) -> bool {
    code == "UNAVAILABLE" || message.contains("busy")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_fast_and_slow() {
        assert_eq!(classify(br#"{"type":"res","id":"42","ok":true,"payload":{}}"#), Frame::Ok(42));
        assert_eq!(classify(br#"{"id":"7","type":"res","ok":true}"#), Frame::Ok(7));
        assert_eq!(
            classify(br#"{"type":"res","id":"9","ok":false,"error":{"code":"UNAVAILABLE","message":"The server is busy."}}"#),
            Frame::Err(Some(9), "UNAVAILABLE".into(), "The server is busy.".into())
        );
        assert_eq!(classify(br#"{"type":"event","event":"tick","seq":3}"#), Frame::Event("tick".into()));
        assert_eq!(classify(br#"{"type":"res","id":"c","ok":true,"payload":{"type":"hello-ok"}}"#), Frame::OkOther("c".into(), true));
        assert_eq!(classify(b"garbage"), Frame::Other);
    }
}
