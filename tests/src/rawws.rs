//! A minimal blocking WebSocket client on `std::net::TcpStream` (RFC 6455 framing by hand).
//! Used where the async client cannot help: streaming a huge frame from one thread while another
//! reads the server's close.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One message (or control frame) from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close { code: u16, reason: String },
}

pub struct RawWs {
    stream: TcpStream,
    /// Bytes read past the HTTP response.
    pending: Vec<u8>,
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

impl RawWs {
    /// TCP connect + upgrade; `Err` carries the HTTP status line when the upgrade is refused.
    pub fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> io::Result<RawWs> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes())?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed during upgrade"));
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(io::Error::other(head.lines().next().unwrap_or("").to_string()));
        }
        Ok(RawWs { stream, pending: buf[end..].to_vec() })
    }

    /// Shut the TCP connection down both ways (unblocks a writer thread).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// A second handle on the same socket (for a writer thread).
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    fn read_exact_buf(&mut self, out: &mut [u8]) -> io::Result<()> {
        let from_pending = out.len().min(self.pending.len());
        out[..from_pending].copy_from_slice(&self.pending[..from_pending]);
        self.pending.drain(..from_pending);
        self.stream.read_exact(&mut out[from_pending..])
    }

    /// Next complete message; `Err` on timeout/EOF/reset.
    pub fn read_frame(&mut self, timeout: Duration) -> io::Result<Frame> {
        self.stream.set_read_timeout(Some(timeout))?;
        let mut message: Vec<u8> = Vec::new();
        let mut message_op = 0u8;
        loop {
            let mut h = [0u8; 2];
            self.read_exact_buf(&mut h)?;
            let fin = h[0] & 0x80 != 0;
            let op = h[0] & 0x0f;
            let masked = h[1] & 0x80 != 0;
            let mut len = (h[1] & 0x7f) as u64;
            if len == 126 {
                let mut b = [0u8; 2];
                self.read_exact_buf(&mut b)?;
                len = u16::from_be_bytes(b) as u64;
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.read_exact_buf(&mut b)?;
                len = u64::from_be_bytes(b);
            }
            let mut mask = [0u8; 4];
            if masked {
                self.read_exact_buf(&mut mask)?;
            }
            let mut payload = vec![0u8; len as usize];
            self.read_exact_buf(&mut payload)?;
            if masked {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            match op {
                0x8 => {
                    let code = if payload.len() >= 2 { u16::from_be_bytes([payload[0], payload[1]]) } else { 1005 };
                    let reason = if payload.len() > 2 { String::from_utf8_lossy(&payload[2..]).into_owned() } else { String::new() };
                    return Ok(Frame::Close { code, reason });
                }
                0x9 => return Ok(Frame::Ping(payload)),
                0xA => return Ok(Frame::Pong(payload)),
                0x0 => message.extend_from_slice(&payload),
                op => {
                    message_op = op;
                    message = payload;
                }
            }
            if fin {
                return Ok(match message_op {
                    0x2 => Frame::Binary(message),
                    _ => Frame::Text(String::from_utf8_lossy(&message).into_owned()),
                });
            }
        }
    }

    /// Next text frame, skipping control frames (answering pings).
    pub fn read_text(&mut self, timeout: Duration) -> io::Result<Frame> {
        loop {
            match self.read_frame(timeout)? {
                Frame::Ping(p) => write_frame(&mut self.stream, 0xA, &p)?,
                Frame::Pong(_) => {}
                other => return Ok(other),
            }
        }
    }

    pub fn send_text(&mut self, text: &str) -> io::Result<()> {
        write_frame(&mut self.stream, 0x1, text.as_bytes())
    }

    pub fn send_pong(&mut self, payload: &[u8]) -> io::Result<()> {
        write_frame(&mut self.stream, 0xA, payload)
    }

    pub fn send_close(&mut self, code: u16) -> io::Result<()> {
        write_frame(&mut self.stream, 0x8, &code.to_be_bytes())
    }
}

/// The header of a masked client frame (FIN set) with `len` payload bytes.
pub fn frame_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u16::MAX as u64 {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&MASK);
    h
}

/// Mask `chunk`, which starts at payload offset `offset`, in place.
pub fn mask_chunk(chunk: &mut [u8], offset: u64) {
    for (i, b) in chunk.iter_mut().enumerate() {
        *b ^= MASK[((offset + i as u64) % 4) as usize];
    }
}

/// Write one complete masked frame.
pub fn write_frame(w: &mut impl Write, opcode: u8, payload: &[u8]) -> io::Result<()> {
    let mut out = frame_header(opcode, payload.len() as u64);
    let start = out.len();
    out.extend_from_slice(payload);
    mask_chunk(&mut out[start..], 0);
    w.write_all(&out)?;
    w.flush()
}
