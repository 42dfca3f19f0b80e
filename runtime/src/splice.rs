//! The data path: bytes both ways between a TCP socket and a tunnel stream (a QUIC or an
//! HTTP/2 stream: [`crate::link`]), written once for both transports.
//!
//! Stream ends mirror TCP: a TCP FIN becomes a stream FIN (`finish`) and the reverse becomes a TCP
//! write shutdown. Any error on either side (a TCP RST, a stream reset or stop, a lost connection)
//! resets *both* sides: the tunnel stream is reset and stopped, and the TCP socket is closed with
//! `SO_LINGER 0`, which sends an RST. The same happens when a splice is dropped before it
//! ended (its task aborted, the runtime shutting down): a truncated transfer never looks like a
//! clean end.
//!
//! [`splice_with`] also ends a splice that moved no byte either way for a given time (a
//! proxy's `idleTimeout`), resetting both sides with [`StreamCode::IdleTimeout`], and counts
//! the bytes into a shared [`Traffic`] as they move. A stream that writes a long burst yields
//! to the connection's other streams until it pauses ([`crate::priority`]). Activity is one relaxed atomic add per
//! chunk, checked by a timer a few times per timeout.

use std::io::{ErrorKind, IoSlice};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes, BytesMut};
use frp_proto::StreamCode;
use tokio::net::TcpStream;

use crate::link::{LinkRecv as RecvStream, LinkSend as SendStream};

use crate::priority::Burst;
use crate::traffic::Traffic;

/// Largest read from TCP. The buffer is reserved only once the socket is readable, so an idle
/// connection holds no read buffer at all.
const CHUNK: usize = 64 * 1024;
/// Chunks taken from QUIC per TCP write: one `writev` of up to this many received frames.
const MAX_CHUNKS: usize = 32;

/// Bytes moved by a splice, in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpliceStats {
    /// Bytes read from TCP and written to QUIC.
    pub tcp_to_quic: u64,
    /// Bytes read from QUIC and written to TCP.
    pub quic_to_tcp: u64,
}

/// Why a splice was torn down instead of ending cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    /// Reading from the TCP socket failed (typically a reset from the TCP peer).
    #[error("tcp read: {0}")]
    TcpRead(std::io::Error),
    /// Writing to the TCP socket failed.
    #[error("tcp write: {0}")]
    TcpWrite(std::io::Error),
    /// Reading from the tunnel stream failed (reset by the peer or connection lost).
    #[error("stream read: {0}")]
    StreamRead(std::io::Error),
    /// Writing to the tunnel stream failed (stopped by the peer or connection lost).
    #[error("stream write: {0}")]
    StreamWrite(std::io::Error),
    /// The peer stopped the stream, or the connection was lost, before it had all our data.
    #[error("peer did not take all data: {0}")]
    NotDelivered(String),
    /// No byte moved either way for the idle timeout.
    #[error("no byte either way for {0:?}")]
    Idle(Duration),
}

/// Owns both sides; resets both when dropped unless [`Armed::disarm`] was called.
struct Armed {
    tcp: TcpStream,
    send: SendStream,
    recv: RecvStream,
    code: StreamCode,
    armed: bool,
}

impl Armed {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if self.armed {
            reset_stream(&mut self.send, &mut self.recv, self.code);
            rst_on_close(&self.tcp);
        }
    }
}

/// Splices `tcp` with the tunnel stream (`send`, `recv`) until both directions have ended.
///
/// Returns the byte counts on a clean end: both FINs seen and everything we sent acknowledged
/// by the peer. On any error, and if this future is dropped early, both sides are reset: the
/// tunnel stream with `code`, the TCP socket with an RST.
///
/// # Errors
/// Returns the first error seen; the other direction is abandoned.
pub async fn splice(
    tcp: TcpStream,
    send: SendStream,
    recv: RecvStream,
    code: StreamCode,
) -> Result<SpliceStats, SpliceError> {
    splice_with(tcp, send, recv, code, Options::default()).await
}

/// [`splice_with`] with only an idle timeout.
///
/// # Errors
/// As [`splice_with`].
pub async fn splice_idle(
    tcp: TcpStream,
    send: SendStream,
    recv: RecvStream,
    code: StreamCode,
    idle: Option<Duration>,
) -> Result<SpliceStats, SpliceError> {
    let options = Options {
        idle,
        ..Options::default()
    };
    splice_with(tcp, send, recv, code, options).await
}

/// What a splice does beyond moving bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Give up once no byte moved either way for this long (none: never).
    pub idle: Option<Duration>,
    /// Count the bytes moved into this, live.
    pub traffic: Option<&'a Traffic>,
}

/// [`splice`] with [`Options`]: once no byte moved either way for `idle`, both sides are
/// reset, the tunnel stream with [`StreamCode::IdleTimeout`]; bytes are counted into `traffic`.
///
/// # Errors
/// As [`splice`]; [`SpliceError::Idle`] when the idle timeout ran out.
pub async fn splice_with(
    tcp: TcpStream,
    send: SendStream,
    recv: RecvStream,
    code: StreamCode,
    options: Options<'_>,
) -> Result<SpliceStats, SpliceError> {
    let mut sides = Armed {
        tcp,
        send,
        recv,
        code,
        armed: true,
    };
    let stats = match run_both(&mut sides, options).await {
        Ok(stats) => stats,
        Err(e @ SpliceError::Idle(_)) => {
            sides.code = StreamCode::IdleTimeout;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    // Wait until the peer has every byte and our FIN, so that an owner waiting for this task
    // knows the data was delivered, and so that a stop or loss now is not taken for success.
    match sides.send.stopped().await {
        Ok(None) => {
            sides.disarm();
            Ok(stats)
        }
        Ok(Some(code)) => Err(SpliceError::NotDelivered(format!(
            "stopped with code {code}"
        ))),
        Err(e) => Err(SpliceError::NotDelivered(e.to_string())),
    }
}

/// Closes a TCP socket with an RST instead of a FIN.
pub fn reset_tcp(tcp: TcpStream) {
    rst_on_close(&tcp);
    drop(tcp);
}

/// Makes closing `tcp` send an RST instead of a FIN (`SO_LINGER 0`), for owners that close
/// it later by dropping it.
pub fn rst_on_close(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
}

/// Resets our sending half and stops the peer's, both with `code`: the stream is abandoned
/// both ways and the peer sees why.
pub fn reset_stream(send: &mut SendStream, recv: &mut RecvStream, code: StreamCode) {
    send.reset(code.code());
    recv.stop(code.code());
}

async fn run_both(sides: &mut Armed, options: Options<'_>) -> Result<SpliceStats, SpliceError> {
    let tcp = &sides.tcp;
    // Chunks read either way so far: the idle watch only looks whether it changed.
    let moved = AtomicU64::new(0);
    let counted = Counted {
        moved: &moved,
        traffic: options.traffic,
    };
    // A peer that resets its end stops ours too: end at once, even with both directions
    // waiting on the TCP socket (a visitor that neither reads nor sends), so that the stream
    // and its credit are given back now rather than when the socket next moves.
    let stopped = sides.send.peer_stop();
    let up = tcp_to_quic(tcp, &mut sides.send, counted);
    let down = quic_to_tcp(&mut sides.recv, tcp, counted);
    let watch = async {
        match options.idle {
            Some(idle) => quiet_for(&moved, idle).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(up, down, watch, stopped);
    let mut stats = SpliceStats::default();
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            n = &mut up, if !up_done => { stats.tcp_to_quic = n?; up_done = true; }
            n = &mut down, if !down_done => { stats.quic_to_tcp = n?; down_done = true; }
            idle = &mut watch => return Err(SpliceError::Idle(idle)),
            why = &mut stopped => return Err(SpliceError::NotDelivered(why)),
        }
    }
    Ok(stats)
}

/// Resolves with `idle` once `moved` has not changed for that long. It looks four times per
/// timeout, so a splice is ended between `idle` and `1.25 × idle` after its last byte.
async fn quiet_for(moved: &AtomicU64, idle: Duration) -> Duration {
    let tick = (idle / 4).max(Duration::from_millis(1));
    let mut seen = moved.load(Ordering::Relaxed);
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = moved.load(Ordering::Relaxed);
        if now != seen {
            (seen, quiet_since) = (now, tokio::time::Instant::now());
        } else if quiet_since.elapsed() >= idle {
            return idle;
        }
    }
}

/// Where a direction reports what it moved: the idle watch's chunk count and the caller's
/// byte counters.
#[derive(Clone, Copy)]
struct Counted<'a> {
    moved: &'a AtomicU64,
    traffic: Option<&'a Traffic>,
}

async fn tcp_to_quic(
    tcp: &TcpStream,
    send: &mut SendStream,
    counted: Counted<'_>,
) -> Result<u64, SpliceError> {
    let mut buf = BytesMut::new();
    let mut total = 0u64;
    let mut burst = Burst::default();
    loop {
        let n = read_some(tcp, &mut buf)
            .await
            .map_err(SpliceError::TcpRead)?;
        if n == 0 {
            // Finishing can only fail if the stream was already reset or stopped; `stopped()`
            // then reports it.
            send.finish();
            return Ok(total);
        }
        counted.moved.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = counted.traffic {
            t.add_tcp_to_quic(n as u64);
        }
        total += n as u64;
        let chunk = crate::chunk::take_chunk(&mut buf);
        if let Some(priority) = burst.wrote(Instant::now(), n as u64) {
            // Fails only on a stream already reset: the write below reports that.
            send.set_priority(priority);
        }
        send.write_chunk(chunk)
            .await
            .map_err(SpliceError::StreamWrite)?;
    }
}

/// Waits until `tcp` is readable, then reads what is there into `buf` (reserving only then).
async fn read_some(tcp: &TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    loop {
        tcp.readable().await?;
        buf.reserve(CHUNK);
        match tcp.try_read_buf(buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn quic_to_tcp(
    recv: &mut RecvStream,
    tcp: &TcpStream,
    counted: Counted<'_>,
) -> Result<u64, SpliceError> {
    // Every chunk is one STREAM frame, at most one packet (~1.4 KB). Writing them one by one
    // was a TCP `send` per packet and the largest cost of the whole data path (perf: 40% of
    // frpc's samples in `sendto`); taking every chunk already received and writing them with
    // one `writev` moves the same bytes in a tenth of the system calls.
    let mut chunks: [Bytes; MAX_CHUNKS] = Default::default();
    let mut total = 0u64;
    while let Some(n) = recv
        .read_chunks(&mut chunks)
        .await
        .map_err(SpliceError::StreamRead)?
    {
        counted.moved.fetch_add(1, Ordering::Relaxed);
        let bytes = chunks[..n].iter().map(|c| c.len() as u64).sum::<u64>();
        if let Some(t) = counted.traffic {
            t.add_quic_to_tcp(bytes);
        }
        total += bytes;
        write_all_vectored(tcp, &mut chunks[..n])
            .await
            .map_err(SpliceError::TcpWrite)?;
    }
    socket2::SockRef::from(tcp)
        .shutdown(Shutdown::Write)
        .map_err(SpliceError::TcpWrite)?;
    Ok(total)
}

/// Writes every byte of `chunks` to `tcp` with vectored writes, leaving the chunks empty
/// (which also releases their memory to quinn's receive buffers at once).
async fn write_all_vectored(tcp: &TcpStream, chunks: &mut [Bytes]) -> std::io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        tcp.writable().await?;
        let mut slices = [IoSlice::new(&[]); MAX_CHUNKS];
        let live = &chunks[first..];
        for (slot, chunk) in slices.iter_mut().zip(live) {
            *slot = IoSlice::new(chunk);
        }
        match tcp.try_write_vectored(&slices[..live.len()]) {
            Ok(mut n) => {
                // Drop what was written: whole chunks, then the front of a partial one.
                while first < chunks.len() && n >= chunks[first].len() {
                    n -= chunks[first].len();
                    chunks[first] = Bytes::new();
                    first += 1;
                }
                if n > 0 {
                    chunks[first].advance(n);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    /// Many chunks of odd sizes, more than a socket buffer holds, so that writes are partial
    /// and end inside a chunk: every byte arrives once, in order.
    #[tokio::test]
    async fn vectored_writes_resume_inside_a_chunk() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let writer = TcpStream::connect(addr).await.expect("connect");
        let (mut reader, _) = listener.accept().await.expect("accept");
        let _ = socket2::SockRef::from(&writer).set_send_buffer_size(4096);
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut chunks: Vec<Bytes> = data.chunks(1_337).map(Bytes::copy_from_slice).collect();
        let write = async {
            for batch in chunks.chunks_mut(MAX_CHUNKS) {
                write_all_vectored(&writer, batch).await.expect("write");
                assert!(
                    batch.iter().all(Bytes::is_empty),
                    "written chunks are released"
                );
            }
            socket2::SockRef::from(&writer)
                .shutdown(Shutdown::Write)
                .expect("shutdown");
        };
        let read = async {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.expect("read");
            got
        };
        let limit = Duration::from_secs(20);
        let ((), got) = tokio::time::timeout(limit, async { tokio::join!(write, read) })
            .await
            .expect("transfer within the time limit");
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes differ");
    }
}
