//! The visitor side of a vhost connection: who may connect ([`Admission`]: connections open
//! at once on the vhost ports, in total and per source address), and the socket wrapper
//! ([`VisitorIo`]) that holds that admission for as long as the socket lives, upgraded
//! (WebSocket) tunnels included.
//!
//! [`VisitorIo`] also bounds how long a write may stall on a visitor that stops reading (like
//! nginx's `send_timeout`), counts what the visitor sent, and resets the socket instead of
//! closing it cleanly when [`ConnState::reset_on_close`] was set (a backend that reset), so a
//! truncated transfer never looks like a clean end.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// TCP keep-alive on visitor sockets: a peer that vanished is noticed within about two
/// minutes (60 s idle, then 4 probes 15 s apart) instead of holding its slot forever.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_RETRIES: u32 = 4;

/// Turns TCP keep-alive on and Nagle off for an accepted visitor socket.
pub fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive);
}

pub use frp_runtime::per_source::{Admission, Refused, Slot};

/// What the request handlers of one connection share with its socket.
#[derive(Debug, Default)]
pub struct ConnState {
    /// Reset the socket (RST) instead of closing it cleanly when it is dropped.
    pub reset_on_close: AtomicBool,
    /// Bytes the visitor sent so far.
    pub bytes_in: AtomicU64,
    /// Requests that reached the handler so far.
    pub requests: AtomicU64,
}

/// An admitted visitor socket; see the module docs.
#[derive(Debug)]
pub struct VisitorIo {
    tcp: TcpStream,
    _slot: Slot,
    state: Arc<ConnState>,
    send_timeout: Duration,
    stall: Option<Pin<Box<Sleep>>>,
}

impl VisitorIo {
    /// Wraps `tcp`, holding `slot`; a write that makes no progress for `send_timeout` fails.
    pub fn new(tcp: TcpStream, slot: Slot, send_timeout: Duration) -> Self {
        Self {
            tcp,
            _slot: slot,
            state: Arc::default(),
            send_timeout,
            stall: None,
        }
    }

    /// The state shared with this connection's request handlers.
    pub fn state(&self) -> Arc<ConnState> {
        Arc::clone(&self.state)
    }

    /// Tracks a write's progress: `Pending` starts (or checks) the stall timer.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let timeout = self.send_timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the visitor stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for VisitorIo {
    fn drop(&mut self) {
        if self.state.reset_on_close.load(Ordering::Relaxed) {
            frp_runtime::splice::rst_on_close(&self.tcp);
        }
    }
}

impl AsyncRead for VisitorIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.state.bytes_in.fetch_add(n, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for VisitorIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
