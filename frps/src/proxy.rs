//! Public TCP listeners: each accepted connection becomes a server-opened QUIC stream.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use frp_proto::{encode_data_header, DataHeader, ProxyId, ProxyName, StreamCode};
use frp_runtime::splice::{reset_tcp, splice};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// Room for the data header and the visitor's first bytes, sent in one write.
const FIRST_WRITE: usize = 16 * 1024;

/// One published TCP proxy: its listener and where its connections go.
#[derive(Debug)]
pub struct TcpProxy {
    /// The proxy's name, for logs.
    pub name: ProxyName,
    /// The id the client knows it by.
    pub id: ProxyId,
    /// The bound public listener.
    pub listener: TcpListener,
    /// The client's connection.
    pub conn: quinn::Connection,
    /// Where per-connection tasks are tracked, so shutdown can wait for them.
    pub streams: TaskTracker,
    /// How long a visitor waits for a stream in the client's connection.
    pub open_timeout: Duration,
}

impl TcpProxy {
    /// Accepts public connections until the task is aborted (that drops the listener, which
    /// frees the port).
    pub async fn serve(self) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, visitor)) => {
                    let (conn, id, name) = (self.conn.clone(), self.id, self.name.clone());
                    let timeout = self.open_timeout;
                    self.streams
                        .spawn(forward(conn, tcp, visitor, id, name, timeout));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(proxy = %self.name, error = %e, "accepting public connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Carries one public connection through a new stream in the client's connection.
async fn forward(
    conn: quinn::Connection,
    tcp: TcpStream,
    visitor: SocketAddr,
    id: ProxyId,
    name: ProxyName,
    open_timeout: Duration,
) {
    let _ = tcp.set_nodelay(true);
    let (mut send, recv) = match tokio::time::timeout(open_timeout, conn.open_bi()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(proxy = %name, %visitor, error = %e, "client connection gone");
            return reset_tcp(tcp);
        }
        Err(_) => {
            warn!(proxy = %name, %visitor, "no stream available in time; resetting visitor");
            return reset_tcp(tcp);
        }
    };
    // The header and whatever the visitor already sent leave in one write: no round trip.
    let mut first = BytesMut::with_capacity(FIRST_WRITE);
    encode_data_header(&DataHeader { proxy: id, visitor }, &mut first);
    if let Err(e) = tcp.try_read_buf(&mut first) {
        if e.kind() != std::io::ErrorKind::WouldBlock {
            debug!(proxy = %name, %visitor, error = %e, "visitor reset before forwarding");
            let _ = send.reset(quinn::VarInt::from_u32(StreamCode::VisitorReset.code()));
            return reset_tcp(tcp);
        }
    }
    if let Err(e) = send.write_chunk(first.freeze()).await {
        debug!(proxy = %name, %visitor, error = %e, "writing stream header failed");
        let _ = send.reset(quinn::VarInt::from_u32(StreamCode::Internal.code()));
        return reset_tcp(tcp);
    }
    match splice(tcp, send, recv, StreamCode::VisitorReset).await {
        Ok(stats) => debug!(
            proxy = %name, %visitor, sent = stats.tcp_to_quic, received = stats.quic_to_tcp,
            "public connection closed"
        ),
        Err(e) => debug!(proxy = %name, %visitor, error = %e, "public connection reset"),
    }
}
