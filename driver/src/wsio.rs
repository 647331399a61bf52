//! A tungstenite WebSocket driven from `poll` context over any hyper IO (`hyper::rt::Read +
//! Write`): the upgraded server socket or a client connection, on either runtime.
//!
//! tungstenite is synchronous over `std::io::{Read, Write}`; [`SyncIo`] maps `Poll::Pending` to
//! `WouldBlock` using the waker of the task that owns the socket (one task per socket does both
//! reading and writing, so one waker suffices). We use tungstenite directly rather than an async
//! wrapper because the gateway changes the incoming size limit at `hello-ok` (64 KiB → 25 MiB),
//! which needs `WebSocket::set_config`.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use hyper::rt::{Read as HRead, ReadBuf, Write as HWrite};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

/// Read buffer per socket. tungstenite allocates it eagerly (default 128 KiB) and keeps it for
/// the socket's life; the control protocol's frames are small, so a small buffer keeps idle
/// sockets cheap (2 KiB: 6.5 KB of RSS per idle authenticated socket, issue 17). A larger frame
/// is still read whole (tungstenite reserves its length), 2 KiB per read call.
pub const READ_BUFFER_SIZE: usize = 2 * 1024;

/// Outgoing bytes are collected (see [`SyncIo`]) and written to the socket on a flush, or as soon
/// as this many are waiting.
pub const WRITE_BUFFER_SIZE: usize = 64 * 1024;

/// First allocation of the write buffer (it grows by doubling up to a burst's size).
const WRITE_BUFFER_INITIAL: usize = 8 * 1024;

/// Sync adapter over an async hyper IO, valid inside one `poll` call.
///
/// Writes are collected in `wbuf` and reach the socket only on `flush` (or once
/// [`WRITE_BUFFER_SIZE`] bytes are waiting), so the answers to a burst of requests leave in one
/// `write` syscall. tungstenite is configured without a write buffer of its own
/// (`write_buffer_size(0)`): every frame it formats is handed to `write` at once, which never
/// blocks, so all unsent bytes are here ([`WsIo::buffered`]) and nothing is stranded inside
/// tungstenite when it reports the connection closed. The buffer is freed whenever it has been
/// written out completely, so idle sockets do not keep a burst-sized allocation.
pub struct SyncIo<T> {
    io: T,
    waker: Option<Waker>,
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` already written to the socket.
    wpos: usize,
}

impl<T: HWrite + Unpin> SyncIo<T> {
    fn buffered(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Buffer one whole frame (header and payload) with a single reservation (also every
    /// [`Write::write`], as a frame without payload).
    fn write_frame(&mut self, head: &[u8], payload: &[u8]) {
        if self.wbuf.capacity() == 0 {
            self.wbuf.reserve((head.len() + payload.len()).max(WRITE_BUFFER_INITIAL));
        }
        self.wbuf.extend_from_slice(head);
        self.wbuf.extend_from_slice(payload);
        if self.buffered() >= WRITE_BUFFER_SIZE {
            let _ = self.push();
        }
    }

    /// Write `wbuf` to the socket until it is empty (`Ok`) or the socket would block.
    fn push(&mut self) -> io::Result<()> {
        while self.wpos < self.wbuf.len() {
            let waker = self.waker.as_ref().ok_or(io::ErrorKind::WouldBlock)?;
            let mut cx = Context::from_waker(waker);
            match Pin::new(&mut self.io).poll_write(&mut cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => self.wpos += n,
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        self.wbuf = Vec::new();
        self.wpos = 0;
        Ok(())
    }
}

impl<T: HRead + Unpin> Read for SyncIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let waker = self.waker.as_ref().ok_or(io::ErrorKind::WouldBlock)?;
        let mut cx = Context::from_waker(waker);
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.io).poll_read(&mut cx, rb.unfilled()) {
            Poll::Ready(Ok(())) => Ok(rb.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<T: HWrite + Unpin> Write for SyncIo<T> {
    /// Buffer `buf` (never blocks, never fails: a socket error shows on the next flush).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_frame(buf, &[]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()?;
        let waker = self.waker.as_ref().ok_or(io::ErrorKind::WouldBlock)?;
        let mut cx = Context::from_waker(waker);
        match Pin::new(&mut self.io).poll_flush(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// The socket is gone (write failure or already closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketClosed;

/// What a read produced.
#[derive(Debug)]
pub enum ReadEvent {
    Message(Message),
    /// The incoming message exceeded the configured maximum size.
    TooLarge,
    /// The connection is over (close handshake finished, EOF, or a fatal error).
    Closed,
}

fn is_would_block(e: &WsError) -> bool {
    matches!(e, WsError::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

/// The header of an unmasked, final frame of `opcode` carrying `len` bytes (RFC 6455 §5.2):
/// its bytes in `out`, returns how many.
pub fn server_frame_header(opcode: u8, len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A WebSocket to be driven from a `poll` function.
pub struct WsIo<T> {
    ws: WebSocket<SyncIo<T>>,
    role: Role,
    closed: bool,
    /// A message was too large: tungstenite still holds the oversize frame's header and must not
    /// read again (its reader would assert in debug builds and misreport EOF in release). From
    /// then on incoming bytes are read and thrown away, only to notice the peer's EOF.
    discarding: bool,
}

/// WebSocket settings for gateway sockets: small read buffer, no tungstenite write buffer (the
/// buffering is [`SyncIo`]'s), frame limit = message limit.
pub fn ws_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

impl<T: HRead + HWrite + Unpin> WsIo<T> {
    pub fn new(io: T, role: Role, max_message_size: usize) -> Self {
        let sync = SyncIo { io, waker: None, wbuf: Vec::new(), wpos: 0 };
        WsIo { ws: WebSocket::from_raw_socket(sync, role, Some(ws_config(max_message_size))), role, closed: false, discarding: false }
    }

    /// Remember the task's waker for this poll.
    pub fn set_waker(&mut self, cx: &Context<'_>) {
        let io = self.ws.get_mut();
        match &io.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => io.waker = Some(cx.waker().clone()),
        }
    }

    pub fn set_max_message_size(&mut self, n: usize) {
        self.ws.set_config(|c| {
            c.max_message_size = Some(n);
            c.max_frame_size = Some(n);
        });
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes handed to the socket object but not yet written to the OS.
    pub fn buffered(&self) -> usize {
        self.ws.get_ref().buffered()
    }

    /// Read one message, or `Pending` (the waker is registered).
    ///
    /// After [`ReadEvent::TooLarge`] no message is ever returned again: the rest of the input is
    /// discarded until EOF or an error ([`ReadEvent::Closed`]).
    pub fn poll_read(&mut self) -> Poll<ReadEvent> {
        if self.closed {
            return Poll::Ready(ReadEvent::Closed);
        }
        if self.discarding {
            return self.poll_discard();
        }
        match self.ws.read() {
            Ok(m) => Poll::Ready(ReadEvent::Message(m)),
            Err(e) if is_would_block(&e) => Poll::Pending,
            Err(WsError::Capacity(_)) => {
                self.discarding = true;
                Poll::Ready(ReadEvent::TooLarge)
            }
            // RFC 6455 §7.4.1: a protocol violation (unmasked or reserved frame, oversized or
            // fragmented control frame, …) is closed with 1002, invalid UTF-8 in a text
            // message with 1007 — with a close frame, not a silent TCP drop.
            Err(WsError::Protocol(e)) => {
                tracing::debug!("websocket protocol violation: {e}");
                self.close_after_violation(1002);
                Poll::Ready(ReadEvent::Closed)
            }
            Err(WsError::Utf8(_)) => {
                self.close_after_violation(1007);
                Poll::Ready(ReadEvent::Closed)
            }
            Err(_) => {
                self.closed = true;
                Poll::Ready(ReadEvent::Closed)
            }
        }
    }

    /// Write a close frame with `code` straight to the socket (tungstenite will not send one
    /// after a read error) and stop using the connection.
    fn close_after_violation(&mut self, code: u16) {
        let [hi, lo] = code.to_be_bytes();
        let io = self.ws.get_mut();
        let _ = io.write(&[0x88, 2, hi, lo]);
        let _ = io.push();
        self.closed = true;
    }

    /// Read and drop whatever the peer sends, bypassing tungstenite; `Ready(Closed)` at EOF.
    fn poll_discard(&mut self) -> Poll<ReadEvent> {
        let mut scratch = [0u8; 4096];
        // Bounded per call so a fast sender cannot keep the task busy; the task is woken again.
        for _ in 0..16 {
            match self.ws.get_mut().read(&mut scratch) {
                Ok(0) => {
                    self.closed = true;
                    return Poll::Ready(ReadEvent::Closed);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(_) => {
                    self.closed = true;
                    return Poll::Ready(ReadEvent::Closed);
                }
            }
        }
        if let Some(w) = &self.ws.get_ref().waker {
            w.wake_by_ref();
        }
        Poll::Pending
    }

    /// Queue a message (it is written on the next flush or once [`WRITE_BUFFER_SIZE`] bytes wait).
    pub fn queue(&mut self, msg: Message) -> Result<(), SocketClosed> {
        if self.closed {
            return Err(SocketClosed);
        }
        match self.ws.write(msg) {
            Ok(()) => Ok(()),
            Err(e) if is_would_block(&e) => Ok(()),
            Err(_) => {
                self.closed = true;
                Err(SocketClosed)
            }
        }
    }

    /// Queue a text message. A server's frames are unmasked, so its frame goes straight into the
    /// socket's write buffer: through tungstenite it would be formatted in tungstenite's own
    /// out-buffer first, one more copy, and that buffer keeps the largest frame's capacity for
    /// the socket's life — the `hello-ok` frame left ≈ 3.8 KB on every idle connection (issue
    /// 17). A client's frames are masked: tungstenite writes those. Once tungstenite no longer
    /// sends data (a close frame went or came), it decides as before (the send fails).
    pub fn queue_text(&mut self, text: String) -> Result<(), SocketClosed> {
        if self.closed {
            return Err(SocketClosed);
        }
        if self.role != Role::Server || !self.ws.can_write() {
            return self.queue(Message::text(text));
        }
        let mut head = [0u8; 10];
        let n = server_frame_header(0x1, text.len(), &mut head);
        self.ws.get_mut().write_frame(&head[..n], text.as_bytes());
        Ok(())
    }

    /// Push buffered bytes out. `Ready(Ok)` when everything is written.
    ///
    /// Once the WebSocket is over (tungstenite reports the close handshake done, e.g. after it
    /// queued the reply to the peer's close frame, or a failure) this still makes one
    /// non-blocking attempt to write what is buffered, then reports `Err(SocketClosed)`.
    pub fn poll_flush(&mut self) -> Poll<Result<(), SocketClosed>> {
        if !self.closed {
            match self.ws.flush() {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(e) if is_would_block(&e) => return Poll::Pending,
                Err(_) => self.closed = true,
            }
        }
        let _ = self.ws.get_mut().push();
        Poll::Ready(Err(SocketClosed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::Frame;
    use tungstenite::protocol::frame::coding::{Data, OpCode};

    #[test]
    fn a_server_frame_is_the_frame_tungstenite_formats() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![b'x'; len];
            let mut theirs = Vec::new();
            Frame::message(payload.clone(), OpCode::Data(Data::Text), true).format(&mut theirs).unwrap();
            let mut head = [0u8; 10];
            let n = server_frame_header(0x1, len, &mut head);
            let ours = [&head[..n], &payload[..]].concat();
            assert_eq!(ours, theirs, "payload of {len} bytes");
        }
    }
}
