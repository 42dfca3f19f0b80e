//! The data path: bytes both ways between a TCP socket and a QUIC bidirectional stream.
//!
//! Stream ends mirror TCP: a TCP FIN becomes a QUIC FIN (`finish`) and the reverse becomes a TCP
//! write shutdown. Any error on either side (a TCP RST, a QUIC reset or stop, a lost connection)
//! resets *both* sides: the QUIC stream is reset and stopped, and the TCP socket is closed with
//! `SO_LINGER 0`, which sends an RST. A truncated transfer therefore never looks like a clean end.

use std::time::Duration;

use bytes::BytesMut;
use frp_proto::StreamCode;
use quinn::{RecvStream, SendStream, VarInt};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// Bytes read from TCP per chunk. One buffer per direction is reused across reads.
const CHUNK: usize = 64 * 1024;

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
    /// Reading from the QUIC stream failed (reset by the peer or connection lost).
    #[error("quic read: {0}")]
    QuicRead(#[from] quinn::ReadError),
    /// Writing to the QUIC stream failed (stopped by the peer or connection lost).
    #[error("quic write: {0}")]
    QuicWrite(#[from] quinn::WriteError),
}

/// Splices `tcp` with the QUIC stream (`send`, `recv`) until both directions have ended.
///
/// Returns the byte counts on a clean end (both FINs seen and our FIN acknowledged). On any
/// error both sides are reset: the QUIC stream with `code`, the TCP socket with an RST.
///
/// # Errors
/// Returns the first error seen; the other direction is abandoned.
pub async fn splice(
    mut tcp: TcpStream,
    mut send: SendStream,
    mut recv: RecvStream,
    code: StreamCode,
) -> Result<SpliceStats, SpliceError> {
    let mut stats = SpliceStats::default();
    let outcome = run_both(&mut tcp, &mut send, &mut recv, &mut stats).await;
    match outcome {
        Ok(()) => {
            // Wait until the peer has every byte and our FIN, so that an owner waiting for this
            // task knows the data was delivered. Err/Some mean the peer went away: nothing to do.
            let _ = send.stopped().await;
            Ok(stats)
        }
        Err(e) => {
            abort(tcp, &mut send, &mut recv, code);
            Err(e)
        }
    }
}

/// Resets both sides: QUIC reset + stop with `code`, TCP closed with an RST.
pub fn abort(tcp: TcpStream, send: &mut SendStream, recv: &mut RecvStream, code: StreamCode) {
    let code = VarInt::from_u32(code.code());
    let _ = send.reset(code);
    let _ = recv.stop(code);
    reset_tcp(tcp);
}

/// Closes a TCP socket with an RST instead of a FIN.
pub fn reset_tcp(tcp: TcpStream) {
    let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
    drop(tcp);
}

async fn run_both(
    tcp: &mut TcpStream,
    send: &mut SendStream,
    recv: &mut RecvStream,
    stats: &mut SpliceStats,
) -> Result<(), SpliceError> {
    let (mut rd, mut wr) = tcp.split();
    let up = tcp_to_quic(&mut rd, send);
    let down = quic_to_tcp(recv, &mut wr);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            n = &mut up, if !up_done => { stats.tcp_to_quic = n?; up_done = true; }
            n = &mut down, if !down_done => { stats.quic_to_tcp = n?; down_done = true; }
        }
    }
    Ok(())
}

async fn tcp_to_quic(rd: &mut ReadHalf<'_>, send: &mut SendStream) -> Result<u64, SpliceError> {
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut total = 0u64;
    loop {
        // Reclaims the same allocation once quinn has released the previous chunk.
        buf.reserve(CHUNK);
        let n = rd.read_buf(&mut buf).await.map_err(SpliceError::TcpRead)?;
        if n == 0 {
            // Finishing can only fail if the stream was already reset/stopped: the write
            // side then learns of it from `stopped()` / the peer's own reset.
            let _ = send.finish();
            return Ok(total);
        }
        total += n as u64;
        send.write_chunk(buf.split().freeze()).await?;
    }
}

async fn quic_to_tcp(recv: &mut RecvStream, wr: &mut WriteHalf<'_>) -> Result<u64, SpliceError> {
    let mut total = 0u64;
    while let Some(chunk) = recv.read_chunk(CHUNK, true).await? {
        total += chunk.bytes.len() as u64;
        wr.write_all(&chunk.bytes)
            .await
            .map_err(SpliceError::TcpWrite)?;
    }
    wr.shutdown().await.map_err(SpliceError::TcpWrite)?;
    Ok(total)
}
