//! A small blocking HTTP/1.1 client over `std::net::TcpStream` (one request per connection,
//! `Connection: close`), plus a minimal RFC 6455 client for the cases the driver's async client
//! cannot express: a peer that never answers pings, and a multi-MiB frame written while the
//! server's close is read.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::engine::{HttpReq, HttpResp, WireEvent};

pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    (host, port).to_socket_addrs().map(|a| a.collect()).map_err(|e| format!("cannot resolve {host}: {e}"))
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for a in resolve(host, port)? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    Err(last)
}

fn host_header(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// A response head: status, headers, and the bytes read past it.
type Head = (u16, Vec<(String, String)>, Vec<u8>);

/// Read until the end of the response head.
fn read_head(s: &mut TcpStream) -> Result<Head, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            let rest = buf[i + 4..].to_vec();
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let status = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad status line {status_line:?}"))?;
            let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
            return Ok((status, headers, rest));
        }
        let n = s.read(&mut chunk).map_err(|e| format!("reading the response head: {e}"))?;
        if n == 0 {
            return Err(format!("connection closed after {} bytes of response head", buf.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let i = data.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size_line = String::from_utf8_lossy(&data[..i]).into_owned();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        data = &data[i + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One request on a fresh connection. A `101` response is returned right after its head.
pub fn request(host: &str, port: u16, req: &HttpReq, timeout: Duration) -> Result<HttpResp, String> {
    let mut s = connect(host, port, timeout)?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut text = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    let has = |n: &str| req.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        text.push_str(&format!("Host: {}\r\n", host_header(host, port)));
    }
    if !has("connection") {
        text.push_str("Connection: close\r\n");
    }
    for (k, v) in &req.headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") && !has("content-length") {
        text.push_str("Content-Length: 0\r\n");
    }
    text.push_str("\r\n");
    s.write_all(text.as_bytes()).map_err(|e| format!("writing the request: {e}"))?;
    let (status, headers, mut rest) = read_head(&mut s)?;
    let header = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    if status == 101 || req.method == "HEAD" || status == 204 || status == 304 {
        return Ok(HttpResp { status, headers, body: Vec::new() });
    }
    let body = if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut chunk = [0u8; 8192];
        while rest.len() < len {
            let n = s.read(&mut chunk).map_err(|e| format!("reading the body: {e}"))?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else {
        let _ = s.read_to_end(&mut rest);
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) { dechunk(&rest)? } else { rest }
    };
    Ok(HttpResp { status, headers, body })
}

// ---- a minimal WebSocket client ---------------------------------------------------------------

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame (FIN set).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u64;
    let mut out = vec![0x80 | opcode];
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as u64 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= MASK[i % 4];
    }
    out
}

/// Outcome of [`ManualWs::connect`].
pub enum ManualOpen {
    Open(ManualWs),
    Rejected { status: u16, body: String },
}

/// A blocking WebSocket client that answers pings only if told to. Reading happens on its own
/// thread ([`ManualWs::spawn`]); writes share one lock, and a multi-MiB frame is written from a
/// separate thread so the server's close can be read meanwhile.
pub struct ManualWs {
    reader: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    buf: Vec<u8>,
    message: Vec<u8>,
    message_op: u8,
    eof: bool,
    auto_pong: bool,
}

/// A running [`ManualWs`]: events (with their arrival instant) come from the reader thread.
pub struct ManualConn {
    writer: Arc<Mutex<TcpStream>>,
    control: TcpStream,
    pub events: mpsc::Receiver<(Instant, WireEvent)>,
}

fn write_locked(w: &Mutex<TcpStream>, frame: &[u8]) -> io::Result<()> {
    let mut s = w.lock().unwrap_or_else(|p| p.into_inner());
    s.write_all(frame)
}

impl ManualConn {
    pub fn send(&self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let frame = client_frame(opcode, payload);
        if frame.len() > 1 << 20 {
            let w = self.writer.clone();
            std::thread::spawn(move || {
                let _ = write_locked(&w, &frame);
            });
            Ok(())
        } else {
            write_locked(&self.writer, &frame)
        }
    }

    pub fn close(&self, code: Option<u16>, reason: &str) -> io::Result<()> {
        let mut p = Vec::new();
        if let Some(c) = code {
            p.extend_from_slice(&c.to_be_bytes());
            p.extend_from_slice(reason.as_bytes());
        }
        self.send(0x8, &p)
    }
}

impl Drop for ManualConn {
    fn drop(&mut self) {
        let _ = self.control.shutdown(std::net::Shutdown::Both);
    }
}

impl ManualWs {
    pub fn connect(host: &str, port: u16, path: &str, headers: &[(String, String)], auto_pong: bool) -> Result<ManualOpen, String> {
        let mut s = connect(host, port, Duration::from_secs(5))?;
        let mut text = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {}\r\n",
            host_header(host, port),
            crate::engine::WS_KEY
        );
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        s.write_all(text.as_bytes()).map_err(|e| format!("writing the upgrade: {e}"))?;
        let (status, _headers, rest) = read_head(&mut s)?;
        if status != 101 {
            let mut body = rest;
            let _ = s.read_to_end(&mut body);
            return Ok(ManualOpen::Rejected { status, body: String::from_utf8_lossy(&body).into_owned() });
        }
        let _ = s.set_read_timeout(None);
        let writer = Arc::new(Mutex::new(s.try_clone().map_err(|e| e.to_string())?));
        Ok(ManualOpen::Open(ManualWs { reader: s, writer, buf: rest, message: Vec::new(), message_op: 0, eof: false, auto_pong }))
    }

    /// Start the reader thread.
    pub fn spawn(self) -> Result<ManualConn, String> {
        let writer = self.writer.clone();
        let control = self.reader.try_clone().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel();
        let mut ws = self;
        std::thread::spawn(move || {
            while let Some(ev) = ws.next_event() {
                let end = ev == WireEvent::Ended;
                #[allow(clippy::disallowed_methods)]
                let at = Instant::now();
                if tx.send((at, ev)).is_err() || end {
                    break;
                }
            }
        });
        Ok(ManualConn { writer, control, events: rx })
    }

    /// One complete frame from the buffer, if there is one: (fin, opcode, payload).
    fn parse(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let fin = b[0] & 0x80 != 0;
        let op = b[0] & 0x0f;
        let masked = b[1] & 0x80 != 0;
        let mut len = (b[1] & 0x7f) as usize;
        let mut i = 2;
        if len == 126 {
            if b.len() < 4 {
                return None;
            }
            len = u16::from_be_bytes([b[2], b[3]]) as usize;
            i = 4;
        } else if len == 127 {
            if b.len() < 10 {
                return None;
            }
            len = u64::from_be_bytes(b[2..10].try_into().ok()?) as usize;
            i = 10;
        }
        let mask = if masked {
            if b.len() < i + 4 {
                return None;
            }
            let m = [b[i], b[i + 1], b[i + 2], b[i + 3]];
            i += 4;
            Some(m)
        } else {
            None
        };
        if b.len() < i + len {
            return None;
        }
        let mut payload = b[i..i + len].to_vec();
        if let Some(m) = mask {
            for (j, x) in payload.iter_mut().enumerate() {
                *x ^= m[j % 4];
            }
        }
        self.buf.drain(..i + len);
        Some((fin, op, payload))
    }

    /// The next event (blocking); `None` once the connection is over.
    fn next_event(&mut self) -> Option<WireEvent> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            while let Some((fin, op, payload)) = self.parse() {
                match op {
                    0x9 => {
                        if self.auto_pong {
                            let _ = write_locked(&self.writer, &client_frame(0xA, &payload));
                        }
                        return Some(WireEvent::Ping);
                    }
                    0xA => continue,
                    0x8 => {
                        let code = if payload.len() >= 2 { u16::from_be_bytes([payload[0], payload[1]]) } else { 1005 };
                        let reason = if payload.len() > 2 { String::from_utf8_lossy(&payload[2..]).into_owned() } else { String::new() };
                        // Answer the close like a standard peer, unless a big write holds the socket.
                        if let Ok(mut w) = self.writer.try_lock() {
                            let _ = w.write_all(&client_frame(0x8, &payload));
                        }
                        return Some(WireEvent::Close { code, reason });
                    }
                    0x0 => self.message.extend_from_slice(&payload),
                    op => {
                        self.message_op = op;
                        self.message = payload;
                    }
                }
                if fin && (op == 0x0 || op == 0x1 || op == 0x2) {
                    let m = std::mem::take(&mut self.message);
                    return Some(if self.message_op == 0x2 {
                        WireEvent::Binary(m)
                    } else {
                        WireEvent::Text(String::from_utf8_lossy(&m).into_owned())
                    });
                }
            }
            if self.eof {
                return None;
            }
            match self.reader.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Some(WireEvent::Ended);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    return Some(WireEvent::Ended);
                }
            }
        }
    }
}
