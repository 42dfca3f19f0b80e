//! Public TCP listeners: each accepted connection becomes a server-opened tunnel stream.
//!
//! A connection is admitted only while its source address holds fewer than
//! `maxConnectionsPerIP` connections to this port (an IPv4 address or IPv6 /64, four times
//! that per /48, as on the vhost ports) and the proxy gets a ticket from its client's
//! [`Budget`](crate::budget::Budget) (`maxConnectionsPerProxy`, and its share of
//! `maxConnectionsPerClient`); otherwise it is reset at once rather than left waiting for a
//! stream other proxies hold.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use frp_proto::{encode_data_header, DataHeader, ProxyId, ProxyName, StreamCode};
use frp_runtime::splice::{reset_tcp, splice_with, Options};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::budget::{Share, Ticket};
use crate::gauges::ServerGauges;
use crate::stats::ProxyStats;
use crate::vhost::io::{Admission, Slot};

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
    pub conn: frp_runtime::link::Link,
    /// Where per-connection tasks are tracked, so shutdown can wait for them.
    pub streams: TaskTracker,
    /// How long a visitor waits for a stream in the client's connection.
    pub open_timeout: Duration,
    /// Public connections still waiting for their stream. When it is full the listener stops
    /// accepting until one gets its stream (or times out), so a burst of connections waits in
    /// the kernel's accept queue instead of being reset, and a client that cannot take new
    /// streams costs at most this many tasks.
    pub pending: Arc<Semaphore>,
    /// Public connections per source address (`maxConnectionsPerIP`); more are reset.
    pub admission: Admission,
    /// This proxy's part of its client's connection budget; when it has no ticket left, new
    /// connections are reset, so one busy port cannot starve the client's other proxies.
    pub share: Share,
    /// The server's resource counters.
    pub gauges: ServerGauges,
    /// What this proxy carried, counted live.
    pub stats: Arc<ProxyStats>,
}

impl TcpProxy {
    /// Accepts public connections until the task is aborted (that drops the listener, which
    /// frees the port).
    pub async fn serve(self) {
        let _listening = self.gauges.listeners.enter();
        loop {
            // Backpressure: take a pending slot before accepting, never reset for lack of one.
            let Ok(pending) = Arc::clone(&self.pending).acquire_owned().await else {
                return; // Closed semaphore: the proxy is being withdrawn.
            };
            match self.listener.accept().await {
                Ok((tcp, visitor)) => self.dispatch(tcp, visitor, pending),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(proxy = %self.name, error = %e, "accepting public connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Starts forwarding one connection, or resets it when its source or its proxy has too
    /// many open.
    fn dispatch(&self, tcp: TcpStream, visitor: SocketAddr, permit: OwnedSemaphorePermit) {
        let slot = match self.admission.admit(visitor.ip()) {
            Ok(slot) => slot,
            Err(limit) => {
                debug!(proxy = %self.name, %visitor, ?limit, "too many connections from this source; resetting");
                return reset_tcp(tcp);
            }
        };
        let ticket = match self.share.try_take() {
            Ok(ticket) => ticket,
            Err(e) => {
                debug!(proxy = %self.name, %visitor, reason = %e, "no connection left; resetting");
                return reset_tcp(tcp);
            }
        };
        let open = OpenStream {
            conn: self.conn.clone(),
            id: self.id,
            name: self.name.clone(),
            timeout: self.open_timeout,
            permit: Some(permit),
            _held: (ticket, Some(slot)),
            gauges: self.gauges.clone(),
            stats: Arc::clone(&self.stats),
        };
        self.streams
            .spawn(forward(open, tcp, visitor, Bytes::new()));
    }
}

/// What one public connection needs to get its stream.
pub(crate) struct OpenStream {
    pub(crate) conn: frp_runtime::link::Link,
    pub(crate) id: ProxyId,
    pub(crate) name: ProxyName,
    pub(crate) timeout: Duration,
    /// Held until the stream is open and its header written.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
    /// Its place in the client's budget and its source's count, held until it ends.
    pub(crate) _held: (Ticket, Option<Slot>),
    pub(crate) gauges: ServerGauges,
    /// The proxy's counters: the connection is counted open, and its bytes as they move.
    pub(crate) stats: Arc<ProxyStats>,
}

/// Carries one public connection through a new stream in the client's connection; `prefix`
/// (bytes already read from it, such as a TLS ClientHello) goes first.
pub(crate) async fn forward(open: OpenStream, tcp: TcpStream, visitor: SocketAddr, prefix: Bytes) {
    let _connection = open.gauges.public_connections.enter();
    let _open = open.stats.connections.enter();
    let _ = tcp.set_nodelay(true);
    let name = &open.name;
    let (mut send, recv) = match tokio::time::timeout(open.timeout, open.conn.open_bi()).await {
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
    let _stream = open.gauges.streams.enter();
    let id = open.id;
    // The header and whatever the visitor already sent leave in one write: no round trip.
    let mut first = BytesMut::with_capacity(FIRST_WRITE);
    encode_data_header(&DataHeader { proxy: id, visitor }, &mut first);
    let header = first.len();
    first.extend_from_slice(&prefix);
    if let Err(e) = take_ready_bytes(&tcp, &mut first) {
        debug!(proxy = %name, %visitor, error = %e, "visitor reset before forwarding");
        send.reset(StreamCode::VisitorReset.code());
        return reset_tcp(tcp);
    }
    let first_len = first.len();
    if let Err(e) = send.write_chunk(first.freeze()).await {
        debug!(proxy = %name, %visitor, error = %e, "writing stream header failed");
        send.reset(StreamCode::Internal.code());
        return reset_tcp(tcp);
    }
    drop(open.permit);
    let payload = first_len.saturating_sub(header);
    (open.stats.traffic).add_tcp_to_quic(payload as u64);
    let options = Options {
        idle: None,
        traffic: Some(&open.stats.traffic),
    };
    match splice_with(tcp, send, recv, StreamCode::VisitorReset, options).await {
        Ok(stats) => debug!(
            proxy = %name, %visitor, sent = stats.tcp_to_quic, received = stats.quic_to_tcp,
            "public connection closed"
        ),
        Err(e) => debug!(proxy = %name, %visitor, error = %e, "public connection reset"),
    }
}

/// Appends whatever the visitor has already sent, without waiting for more.
///
/// Reads the socket directly rather than through tokio, whose readiness for a just-accepted
/// socket is not known yet, so bytes that arrived with the handshake really do leave with the
/// stream header. A visitor FIN (a read of 0) is left for the splice to see again.
fn take_ready_bytes(tcp: &TcpStream, first: &mut BytesMut) -> std::io::Result<()> {
    let mut scratch = [0u8; FIRST_WRITE];
    let socket = socket2::SockRef::from(tcp);
    match (&*socket).read(&mut scratch) {
        Ok(n) => first.extend_from_slice(&scratch[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(())
}
