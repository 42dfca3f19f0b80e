//! A server-opened QUIC stream as the IO of a backend HTTP connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use frp_proto::StreamCode;
use frp_runtime::gauge::GaugeGuard;
use frp_runtime::splice::reset_stream;
use quinn::{RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::budget::Ticket;

/// A quinn bidirectional stream as one tokio IO. Dropped before a clean shutdown (an error,
/// an abandoned exchange), it resets the stream, so a truncated request never looks complete.
#[derive(Debug)]
pub struct QuicIo {
    send: SendStream,
    recv: RecvStream,
    finished: bool,
    /// The proxy's connection ticket and the stream gauge, released with the stream.
    _held: (Ticket, GaugeGuard),
}

impl QuicIo {
    /// Joins the two halves of a stream, holding `ticket` and `gauge` until it is dropped.
    pub(crate) fn new(
        send: SendStream,
        recv: RecvStream,
        ticket: Ticket,
        gauge: GaugeGuard,
    ) -> Self {
        Self {
            send,
            recv,
            finished: false,
            _held: (ticket, gauge),
        }
    }
}

impl Drop for QuicIo {
    fn drop(&mut self) {
        if !self.finished {
            reset_stream(&mut self.send, &mut self.recv, StreamCode::VisitorReset);
        }
    }
}

impl AsyncRead for QuicIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        AsyncRead::poll_read(Pin::new(&mut self.recv), cx, buf)
    }
}

impl AsyncWrite for QuicIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.finished = true;
        }
        r
    }
}
