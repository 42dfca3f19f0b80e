//! The TCP transport: HTTP/2 (the `h2` crate) over TLS over TCP, for networks that block UDP.
//!
//! frpc dials and is the HTTP/2 **server** of that connection; frps is its client, so frps
//! opens streams (the control stream first, then one per public connection) and frpc accepts
//! them, as on QUIC. Each stream is a `POST` whose request body carries frps's bytes and whose
//! response body carries frpc's; frpc answers `200` at once, so neither side waits a round
//! trip before writing. h2 is the established multiplexer hyper is built on: flow control per
//! stream and per connection, `RST_STREAM` codes, `GOAWAY`, `PING`, and limits against
//! reset and header floods. Chosen over yamux because frps must open streams on a connection
//! frpc dialled, which HTTP/2 does with frpc as the server, and because `RST_STREAM` carries
//! the stream codes that yamux's bare reset flag cannot.
//!
//! Closing carries a close code: frpc (the server) sends it as the `GOAWAY` error code; frps
//! (the client, which HTTP/2 gives no `GOAWAY` of its own in h2) opens a last stream to
//! `/close` with the code and reason in its headers, and frpc closes the connection on it.
//! Both ends ping every keep-alive interval and declare the link dead when a ping is not
//! answered within the idle timeout, as QUIC's idle timeout does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::Request;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use super::h2_driver::{self, Driver, State};
use super::h2_stream::{H2Recv, H2Send};
use super::{LinkError, LinkRecv, LinkSend};
use crate::transport::{CONNECTION_RECEIVE_WINDOW, STREAM_RECEIVE_WINDOW};

/// The ALPN protocol of the TCP transport, so one TLS port (frps's `vhostHTTPSPort`) can tell
/// tunnels from HTTPS visitors by the ClientHello alone.
pub const ALPN_TCP: &[u8] = b"frp-quic-h2/1";
/// Largest HTTP/2 frame either side sends: larger than h2's 16 KiB default to cut per-frame
/// work on bulk streams, small enough that a bulk frame delays an interactive one by little.
const MAX_FRAME: u32 = 64 * 1024;
/// Data a stream may have queued for sending beyond its flow-control credit.
const SEND_BUFFER: usize = 1024 * 1024;

/// Keep-alive and limits of an HTTP/2 link.
#[derive(Clone, Copy, Debug)]
pub struct H2Tuning {
    /// How often to ping when nothing else is sent.
    pub keepalive: Duration,
    /// A ping unanswered this long ends the link.
    pub idle_timeout: Duration,
    /// Streams the peer may have open toward us at once.
    pub max_incoming_streams: u32,
}

impl From<&crate::transport::QuicTuning> for H2Tuning {
    /// The QUIC settings' keep-alive, idle timeout and stream limit, which the TCP transport
    /// keeps the same (`transport.quic.*` configures both).
    fn from(q: &crate::transport::QuicTuning) -> Self {
        Self {
            keepalive: q.keepalive,
            idle_timeout: q.idle_timeout,
            max_incoming_streams: q.max_incoming_streams,
        }
    }
}

/// What the TLS handshake told about the peer.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Its address.
    pub remote: SocketAddr,
    /// Its verified certificate chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
}

/// An HTTP/2 link: cheap to clone, shared by the session and its streams.
#[derive(Clone, Debug)]
pub struct H2Link {
    inner: Arc<Inner>,
}

/// The sender of local closes. The connection lives while the link or one of its streams
/// holds it; once all are dropped, the driver closes the connection.
#[derive(Debug)]
pub(crate) struct Alive(pub(crate) mpsc::UnboundedSender<(u32, String)>);

#[derive(Debug)]
struct Inner {
    state: Arc<State>,
    /// frps: opens streams. frpc: none.
    opener: Option<SendRequest<Bytes>>,
    /// frpc: the streams frps opened. frps: none.
    incoming: Option<tokio::sync::Mutex<mpsc::UnboundedReceiver<(LinkSend, LinkRecv)>>>,
    alive: Arc<Alive>,
}

impl H2Link {
    /// frps: runs the client side of HTTP/2 over `io` (TLS already done), and its driver task.
    ///
    /// # Errors
    /// The HTTP/2 preface could not be sent.
    pub async fn client<T>(io: T, peer: Peer, tuning: H2Tuning) -> Result<Self, h2::Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (opener, conn) = h2::client::Builder::new()
            .initial_window_size(STREAM_RECEIVE_WINDOW)
            .initial_connection_window_size(CONNECTION_RECEIVE_WINDOW)
            .max_frame_size(MAX_FRAME)
            .max_send_buffer_size(SEND_BUFFER)
            .max_header_list_size(16 * 1024)
            .enable_push(false)
            .handshake::<_, Bytes>(io)
            .await?;
        let (link, driver) = Self::new(peer, Some(opener.clone()), None, tuning);
        tokio::spawn(driver.client(conn, opener));
        Ok(link)
    }

    /// frpc: runs the server side of HTTP/2 over `io` (TLS already done), and its driver task.
    ///
    /// # Errors
    /// frps did not complete the HTTP/2 handshake.
    pub async fn server<T>(io: T, peer: Peer, tuning: H2Tuning) -> Result<Self, h2::Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn = h2::server::Builder::new()
            .initial_window_size(STREAM_RECEIVE_WINDOW)
            .initial_connection_window_size(CONNECTION_RECEIVE_WINDOW)
            .max_frame_size(MAX_FRAME)
            .max_send_buffer_size(SEND_BUFFER)
            .max_header_list_size(16 * 1024)
            .max_concurrent_streams(tuning.max_incoming_streams)
            .handshake::<_, Bytes>(io)
            .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (link, driver) = Self::new(peer, None, Some(rx), tuning);
        tokio::spawn(driver.server(conn, tx));
        Ok(link)
    }

    fn new(
        peer: Peer,
        opener: Option<SendRequest<Bytes>>,
        incoming: Option<mpsc::UnboundedReceiver<(LinkSend, LinkRecv)>>,
        tuning: H2Tuning,
    ) -> (Self, Driver) {
        let (close, close_rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            peer,
            ended: watch::channel(None).0,
            rtt_us: AtomicU64::new(0),
        });
        let alive = Arc::new(Alive(close));
        let driver = Driver {
            state: Arc::clone(&state),
            alive: Arc::downgrade(&alive),
            close_rx,
            tuning,
        };
        let inner = Inner {
            state,
            opener,
            incoming: incoming.map(tokio::sync::Mutex::new),
            alive,
        };
        let link = Self {
            inner: Arc::new(inner),
        };
        (link, driver)
    }

    /// Opens a stream (frps).
    pub(crate) async fn open(&self) -> Result<(LinkSend, LinkRecv), LinkError> {
        let Some(opener) = self.inner.opener.clone() else {
            return Err(LinkError::TcpLost("frpc does not open streams".into()));
        };
        let mut ready = opener.ready().await.map_err(|e| self.failed(e))?;
        let request = Request::post("https://frp/s")
            .body(())
            .map_err(|e| LinkError::TcpLost(e.to_string()))?;
        let (response, send) = ready
            .send_request(request, false)
            .map_err(|e| self.failed(e))?;
        let alive = &self.inner.alive;
        Ok((
            LinkSend::H2(H2Send::new(send, Arc::clone(alive))),
            LinkRecv::H2(H2Recv::response(response, Arc::clone(alive))),
        ))
    }

    /// Accepts a stream frps opened (frpc).
    pub(crate) async fn accept(&self) -> Result<(LinkSend, LinkRecv), LinkError> {
        let Some(incoming) = &self.inner.incoming else {
            return Err(LinkError::TcpLost("frps accepts no streams".into()));
        };
        match incoming.lock().await.recv().await {
            Some(stream) => Ok(stream),
            None => Err(self.closed().await),
        }
    }

    /// The link's end when it ended, else `e` as a lost connection.
    fn failed(&self, e: h2::Error) -> LinkError {
        self.close_reason()
            .unwrap_or_else(|| h2_driver::ended_by(Some(e)))
    }

    pub(crate) fn close(&self, code: u32, reason: &str) {
        self.inner
            .state
            .end(LinkError::TcpLocallyClosed(reason.to_string()));
        let _ = self.inner.alive.0.send((code, reason.to_string()));
    }

    pub(crate) fn close_reason(&self) -> Option<LinkError> {
        self.inner.state.ended.borrow().clone()
    }

    pub(crate) async fn closed(&self) -> LinkError {
        let mut rx = self.inner.state.ended.subscribe();
        let ended = match rx.wait_for(Option::is_some).await {
            Ok(e) => e.clone(),
            Err(_) => None,
        };
        ended.unwrap_or_else(|| LinkError::TcpLost("ended".into()))
    }

    pub(crate) fn remote_address(&self) -> SocketAddr {
        self.inner.state.peer.remote
    }

    pub(crate) fn rtt(&self) -> Duration {
        Duration::from_micros(self.inner.state.rtt_us.load(Ordering::Relaxed))
    }

    pub(crate) fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        &self.inner.state.peer.certs
    }
}
