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

/// Read buffer per socket. tungstenite allocates it eagerly (default 128 KiB); the control
/// protocol's frames are small, so a small buffer keeps idle sockets cheap.
pub const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Sync adapter over an async hyper IO, valid inside one `poll` call.
pub struct SyncIo<T> {
    io: T,
    waker: Option<Waker>,
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
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let waker = self.waker.as_ref().ok_or(io::ErrorKind::WouldBlock)?;
        let mut cx = Context::from_waker(waker);
        match Pin::new(&mut self.io).poll_write(&mut cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
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

/// A WebSocket to be driven from a `poll` function.
pub struct WsIo<T> {
    ws: WebSocket<SyncIo<T>>,
    closed: bool,
}

/// WebSocket settings for gateway sockets: small read buffer, eager writes, frame limit = message limit.
pub fn ws_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

impl<T: HRead + HWrite + Unpin> WsIo<T> {
    pub fn new(io: T, role: Role, max_message_size: usize) -> Self {
        let sync = SyncIo { io, waker: None };
        WsIo { ws: WebSocket::from_raw_socket(sync, role, Some(ws_config(max_message_size))), closed: false }
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

    /// Read one message, or `Pending` (the waker is registered).
    pub fn poll_read(&mut self) -> Poll<ReadEvent> {
        if self.closed {
            return Poll::Ready(ReadEvent::Closed);
        }
        match self.ws.read() {
            Ok(m) => Poll::Ready(ReadEvent::Message(m)),
            Err(e) if is_would_block(&e) => Poll::Pending,
            Err(WsError::Capacity(_)) => Poll::Ready(ReadEvent::TooLarge),
            Err(_) => {
                self.closed = true;
                Poll::Ready(ReadEvent::Closed)
            }
        }
    }

    /// Queue a message (it is written on the next flush; tungstenite buffers on `WouldBlock`).
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

    /// Push buffered bytes out. `Ready(Ok)` when everything is written.
    pub fn poll_flush(&mut self) -> Poll<Result<(), SocketClosed>> {
        if self.closed {
            return Poll::Ready(Err(SocketClosed));
        }
        match self.ws.flush() {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) if is_would_block(&e) => Poll::Pending,
            Err(_) => {
                self.closed = true;
                Poll::Ready(Err(SocketClosed))
            }
        }
    }
}
