//! An HTTP/2 stream (the `h2` crate) as the two halves of a tunnel stream: sends wait for
//! flow-control credit (so a slow reader holds back the writer, as on QUIC), received data
//! gives its credit back as it is handed out, and resets carry the stream codes.

use std::future::{poll_fn, Future as _};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt as _;
use h2::client::ResponseFuture;
use h2::Reason;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h2::Alive;

/// The sending half of an HTTP/2 stream.
#[derive(Debug)]
pub struct H2Send {
    inner: h2::SendStream<Bytes>,
    finished: bool,
    _alive: Arc<Alive>,
}

/// Where the receiving half is: frps's half waits for frpc's response headers first.
#[derive(Debug)]
enum State {
    Response(ResponseFuture),
    Body(h2::RecvStream),
    Stopped,
}

/// The receiving half of an HTTP/2 stream.
#[derive(Debug)]
pub struct H2Recv {
    state: State,
    /// Received and not yet handed out (after a short `poll_read`).
    pending: Bytes,
    _alive: Arc<Alive>,
}

/// An h2 error as an I/O error; a reset from the peer names its code.
pub(crate) fn io_error(e: h2::Error) -> io::Error {
    if e.is_io() {
        return e
            .into_io()
            .unwrap_or_else(|| io::Error::other("h2 i/o error"));
    }
    match e.reason() {
        Some(reason) if e.is_reset() => reset_error(reason),
        _ => io::Error::new(io::ErrorKind::ConnectionAborted, e),
    }
}

impl H2Send {
    pub(crate) fn new(inner: h2::SendStream<Bytes>, alive: Arc<Alive>) -> Self {
        Self {
            inner,
            finished: false,
            _alive: alive,
        }
    }

    /// Credit to send up to `want` bytes now, or the stream's failure.
    fn poll_credit(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        loop {
            let have = self.inner.capacity();
            if have > 0 {
                return Poll::Ready(Ok(have.min(want)));
            }
            self.inner.reserve_capacity(want);
            match self.inner.poll_capacity(cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(io_error(e))),
                Poll::Ready(None) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                Poll::Pending => {
                    // A reset by the peer ends the wait for credit that would never come.
                    return match self.inner.poll_reset(cx) {
                        Poll::Ready(Ok(reason)) => Poll::Ready(Err(reset_error(reason))),
                        Poll::Ready(Err(e)) => Poll::Ready(Err(io_error(e))),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }

    pub(crate) async fn write_chunk(&mut self, mut chunk: Bytes) -> io::Result<()> {
        while !chunk.is_empty() {
            let n = poll_fn(|cx| self.poll_credit(cx, chunk.len())).await?;
            let part = chunk.split_to(n);
            self.inner.send_data(part, false).map_err(io_error)?;
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) {
        if !std::mem::replace(&mut self.finished, true) {
            let _ = self.inner.send_data(Bytes::new(), true);
        }
    }

    pub(crate) fn reset(&mut self, code: u32) {
        self.finished = true;
        self.inner.send_reset(Reason::from(code));
    }

    /// A reset the peer sent already; data written before `END_STREAM` is in order on the
    /// connection, so there is nothing further to wait for.
    pub(crate) fn stopped(&mut self) -> io::Result<Option<u64>> {
        match poll_fn(|cx| self.inner.poll_reset(cx)).now_or_never() {
            Some(Ok(reason)) if reason == Reason::NO_ERROR => Ok(None),
            Some(Ok(reason)) => Ok(Some(u64::from(u32::from(reason)))),
            Some(Err(e)) => Err(io_error(e)),
            None => Ok(None),
        }
    }
}

fn reset_error(reason: Reason) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        format!("stream reset by peer with code {}", u32::from(reason)),
    )
}

impl AsyncWrite for H2Send {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = ready!(me.poll_credit(cx, buf.len()))?;
        let data = Bytes::copy_from_slice(&buf[..n]);
        me.inner.send_data(data, false).map_err(io_error)?;
        Poll::Ready(Ok(n))
    }

    /// The connection's driver writes what was sent; there is nothing to flush here.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().finish();
        Poll::Ready(Ok(()))
    }
}

impl H2Recv {
    /// frpc's half: the request body of a stream frps opened.
    pub(crate) fn body(body: h2::RecvStream, alive: Arc<Alive>) -> Self {
        Self {
            state: State::Body(body),
            pending: Bytes::new(),
            _alive: alive,
        }
    }

    /// frps's half: the body of the response frpc sends at once.
    pub(crate) fn response(response: ResponseFuture, alive: Arc<Alive>) -> Self {
        Self {
            state: State::Response(response),
            pending: Bytes::new(),
            _alive: alive,
        }
    }

    /// The next received chunk (its credit already given back), `None` at the end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        if !self.pending.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.pending))));
        }
        loop {
            let body = match &mut self.state {
                State::Response(f) => {
                    let response = ready!(Pin::new(f).poll(cx)).map_err(io_error)?;
                    if !response.status().is_success() {
                        let status = response.status();
                        return Poll::Ready(Err(io::Error::other(format!(
                            "peer answered the stream with {status}"
                        ))));
                    }
                    self.state = State::Body(response.into_body());
                    continue;
                }
                State::Body(body) => body,
                State::Stopped => return Poll::Ready(Ok(None)),
            };
            match ready!(body.poll_data(cx)) {
                Some(Ok(data)) if data.is_empty() => continue,
                Some(Ok(data)) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    return Poll::Ready(Ok(Some(data)));
                }
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                None => return Poll::Ready(Ok(None)),
            }
        }
    }

    pub(crate) async fn read_chunks(&mut self, bufs: &mut [Bytes]) -> io::Result<Option<usize>> {
        if bufs.is_empty() {
            return Ok(Some(0));
        }
        let Some(first) = poll_fn(|cx| self.poll_chunk(cx)).await? else {
            return Ok(None);
        };
        bufs[0] = first;
        let mut n = 1;
        // Whatever else has arrived already, without waiting.
        while n < bufs.len() {
            match poll_fn(|cx| self.poll_chunk(cx)).now_or_never() {
                Some(Ok(Some(chunk))) => {
                    bufs[n] = chunk;
                    n += 1;
                }
                _ => break,
            }
        }
        Ok(Some(n))
    }

    /// Discards the rest; the send half's reset tells the peer.
    pub(crate) fn stop(&mut self) {
        self.state = State::Stopped;
        self.pending = Bytes::new();
    }
}

impl AsyncRead for H2Recv {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let Some(mut chunk) = ready!(me.poll_chunk(cx))? else {
            return Poll::Ready(Ok(()));
        };
        let n = chunk.len().min(buf.remaining());
        buf.put_slice(&chunk.split_to(n));
        me.pending = chunk;
        Poll::Ready(Ok(()))
    }
}
