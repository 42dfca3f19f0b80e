//! A server-opened QUIC stream as the IO of a backend HTTP connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use frp_proto::StreamCode;
use frp_runtime::gauge::GaugeGuard;
use frp_runtime::link::{LinkRecv as RecvStream, LinkSend as SendStream};
use frp_runtime::priority::Burst;
use frp_runtime::splice::reset_stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::budget::Ticket;
use crate::stats::ProxyStats;

/// A tunnel stream (QUIC or HTTP/2) as one tokio IO, counting the bytes it moves into its
/// proxy's [`ProxyStats`] (written: the request, "in"; read: the response, "out").
/// A long upload is demoted below interactive streams as the splice's writes are
/// ([`Burst`]).
/// Dropped before a clean shutdown (an error,
/// an abandoned exchange), it resets the stream, so a truncated request never looks complete.
#[derive(Debug)]
pub struct QuicIo {
    send: SendStream,
    recv: RecvStream,
    finished: bool,
    burst: Burst,
    /// The proxy's connection ticket and the stream and connection gauges, released with
    /// the stream.
    _held: (Ticket, (GaugeGuard, GaugeGuard)),
    stats: Arc<ProxyStats>,
}

impl QuicIo {
    /// Joins the two halves of a stream, holding `ticket` and `gauges` until it is dropped.
    pub(crate) fn new(
        send: SendStream,
        recv: RecvStream,
        ticket: Ticket,
        gauges: (GaugeGuard, GaugeGuard),
        stats: Arc<ProxyStats>,
    ) -> Self {
        Self {
            send,
            recv,
            finished: false,
            burst: Burst::default(),
            _held: (ticket, gauges),
            stats,
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
        let before = buf.filled().len();
        let r = AsyncRead::poll_read(Pin::new(&mut self.recv), cx, buf);
        let n = buf.filled().len() - before;
        self.stats.traffic.add_quic_to_tcp(n as u64);
        r
    }
}

impl AsyncWrite for QuicIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.stats.traffic.add_tcp_to_quic(n as u64);
            if let Some(priority) = self.burst.wrote(std::time::Instant::now(), n as u64) {
                self.send.set_priority(priority);
            }
        }
        r
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
