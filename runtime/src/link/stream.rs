//! The two halves of a tunnel stream, whichever transport carries them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h2_stream::{H2Recv, H2Send};

/// The sending half of a tunnel stream.
#[derive(Debug)]
pub enum LinkSend {
    /// A QUIC stream's sending half.
    Quic(quinn::SendStream),
    /// An HTTP/2 stream's sending half.
    H2(H2Send),
}

/// The receiving half of a tunnel stream.
#[derive(Debug)]
pub enum LinkRecv {
    /// A QUIC stream's receiving half.
    Quic(quinn::RecvStream),
    /// An HTTP/2 stream's receiving half.
    H2(H2Recv),
}

pub(super) fn quic((send, recv): (quinn::SendStream, quinn::RecvStream)) -> (LinkSend, LinkRecv) {
    (LinkSend::Quic(send), LinkRecv::Quic(recv))
}

impl LinkSend {
    /// Writes all of `chunk`, waiting for flow-control credit.
    ///
    /// # Errors
    /// The stream was reset or stopped by the peer, or the connection ended.
    pub async fn write_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        match self {
            Self::Quic(s) => s.write_chunk(chunk).await.map_err(io::Error::from),
            Self::H2(s) => s.write_chunk(chunk).await,
        }
    }

    /// Ends the stream cleanly after what was written (a FIN). Fails only on a stream that
    /// already ended; [`Self::stopped`] reports how.
    pub fn finish(&mut self) {
        match self {
            Self::Quic(s) => {
                let _ = s.finish();
            }
            Self::H2(s) => s.finish(),
        }
    }

    /// Abandons the stream with `code` (a [`frp_proto::StreamCode`]). On HTTP/2 this resets
    /// both directions, as `RST_STREAM` does.
    pub fn reset(&mut self, code: u32) {
        match self {
            Self::Quic(s) => {
                let _ = s.reset(quinn::VarInt::from_u32(code));
            }
            Self::H2(s) => s.reset(code),
        }
    }

    /// Sets the stream's send priority among the connection's streams (higher first). HTTP/2
    /// has no usable priorities (RFC 9113 deprecated them): there it does nothing, and a bulk
    /// stream shares the connection in turn with the others.
    pub fn set_priority(&self, priority: i32) {
        if let Self::Quic(s) = self {
            let _ = s.set_priority(priority);
        }
    }

    /// Resolves when the peer stops the stream (QUIC's `STOP_SENDING`, which it sends when it
    /// resets or drops its end) or the connection ends; never after a clean end. It borrows
    /// nothing, so a splice can watch it while both directions are blocked on their TCP
    /// socket. On HTTP/2 it never resolves: a peer's `RST_STREAM` shows in the next read or
    /// write there.
    pub fn peer_stop(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let stopped = match self {
            Self::Quic(s) => Some(quic_stopped(s)),
            Self::H2(_) => None,
        };
        async move {
            match stopped {
                Some(f) => match f.await {
                    Ok(Some(code)) => format!("stopped with code {code}"),
                    Ok(None) => std::future::pending().await,
                    Err(e) => e.to_string(),
                },
                None => std::future::pending().await,
            }
        }
    }

    /// After [`Self::finish`]: waits until the peer has everything (QUIC acknowledges it; on
    /// TCP the bytes are in order on the connection) and returns the peer's stop code if it
    /// refused the rest instead.
    ///
    /// # Errors
    /// The connection ended before the peer had it all.
    pub async fn stopped(&mut self) -> io::Result<Option<u64>> {
        match self {
            Self::Quic(s) => quic_stopped(s).await,
            Self::H2(s) => s.stopped(),
        }
    }
}

/// quinn's `stopped()` in this module's terms: the peer's stop code, `None` once it has
/// everything; an error when the connection ended first. Borrows nothing.
fn quic_stopped(
    s: &quinn::SendStream,
) -> impl std::future::Future<Output = io::Result<Option<u64>>> + Send + 'static {
    let stopped = s.stopped();
    async move {
        match stopped.await {
            Ok(code) => Ok(code.map(quinn::VarInt::into_inner)),
            Err(e) => Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)),
        }
    }
}

impl LinkRecv {
    /// Fills `bufs` with received chunks without copying; `None` at the stream's end.
    ///
    /// # Errors
    /// The stream was reset by the peer, or the connection ended.
    pub async fn read_chunks(&mut self, bufs: &mut [Bytes]) -> io::Result<Option<usize>> {
        match self {
            Self::Quic(r) => r.read_chunks(bufs).await.map_err(io::Error::from),
            Self::H2(r) => r.read_chunks(bufs).await,
        }
    }

    /// Tells the peer to stop sending, with `code`. On HTTP/2 the send half's
    /// [`LinkSend::reset`] does that; here the rest is only discarded.
    pub fn stop(&mut self, code: u32) {
        match self {
            Self::Quic(r) => {
                let _ = r.stop(quinn::VarInt::from_u32(code));
            }
            Self::H2(r) => r.stop(),
        }
    }
}

impl AsyncRead for LinkRecv {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Quic(r) => Pin::new(r).poll_read(cx, buf),
            Self::H2(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for LinkSend {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Quic(s) => AsyncWrite::poll_write(Pin::new(s), cx, buf),
            Self::H2(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Quic(s) => AsyncWrite::poll_flush(Pin::new(s), cx),
            Self::H2(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Quic(s) => AsyncWrite::poll_shutdown(Pin::new(s), cx),
            Self::H2(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
