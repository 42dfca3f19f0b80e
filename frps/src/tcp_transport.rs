//! The TCP transport's front door: frpc that cannot reach the QUIC port (UDP blocked) connects
//! over TLS on TCP and runs HTTP/2 in it ([`frp_runtime::link::h2`]).
//!
//! Tunnels arrive two ways: on `transport.tcpPort` (by default the TCP port with the number
//! of `bindPort`), and on `vhostHTTPSPort`, where a ClientHello offering the TCP transport's
//! ALPN ([`ALPN_TCP`]) is a tunnel and any other is an HTTPS visitor, so one public 443 serves
//! both. Either way the TLS handshake checks the client certificate exactly as QUIC's does
//! (the same verifier, TLS 1.3 only), and the session that follows is the QUIC one.
//!
//! TCP handshakes are bounded like QUIC's: at most [`MAX_HANDSHAKES`] under way, and
//! `transport.quic.maxHandshakesPerIP` from one address; the others are closed at once. A TCP
//! handshake already proves the address, so there is no Retry.

use std::net::SocketAddr;
use std::sync::Arc;

use frp_runtime::link::h2::H2Tuning;
use frp_runtime::link::tcp::{self, DialError};
use frp_runtime::per_source::Admission;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

pub use frp_runtime::link::h2::ALPN_TCP;

use crate::admission::MAX_HANDSHAKES;
use crate::server::{admit_link, Shared};

/// What accepting a TCP tunnel needs: the TLS config with [`ALPN_TCP`], the HTTP/2 tuning
/// and the handshake limits. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct TcpDoor {
    tls: Arc<rustls::ServerConfig>,
    tuning: H2Tuning,
    handshakes: Admission,
    timeout: std::time::Duration,
}

impl TcpDoor {
    /// The door for `settings`.
    pub(crate) fn new(settings: &crate::config::ServerSettings) -> Self {
        let tls = tcp::server_config(&settings.tls);
        Self {
            tls,
            // The stream limit is frpc's alone: frpc opens no streams toward frps.
            tuning: H2Tuning::from(&settings.quic),
            handshakes: Admission::new(MAX_HANDSHAKES, settings.handshakes.per_ip as usize),
            timeout: settings.handshakes.unvalidated_timeout,
        }
    }

    /// Accepts tunnels on `listener` until shutdown; each handshake and session is a task of
    /// the server's sessions.
    pub(crate) async fn serve(self, listener: TcpListener, shared: Arc<Shared>) {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "frps listening for clients (tcp)");
        }
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, remote)) => {
                        // HTTP/2 frames are small and latency-bound: no Nagle delay on them.
                        let _ = tcp.set_nodelay(true);
                        let door = self.clone();
                        shared.sessions.spawn(door.admit(tcp, remote, Arc::clone(&shared)));
                    }
                    Err(e) => {
                        warn!(error = %e, "accepting a tcp tunnel failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Completes TLS and HTTP/2 on `io` (from `remote`) within the handshake timeout, then
    /// runs the client's session. `io` may replay a ClientHello already read.
    pub(crate) async fn admit<T>(self, io: T, remote: SocketAddr, shared: Arc<Shared>)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Ok(slot) = self.handshakes.admit(remote.ip()) else {
            debug!(%remote, "too many tcp handshakes under way; closing");
            return;
        };
        let acceptor = TlsAcceptor::from(Arc::clone(&self.tls));
        let accept = tcp::accept(io, remote, &acceptor, self.tuning);
        let link = match tokio::time::timeout(self.timeout, accept).await {
            Ok(Ok(link)) => link,
            Ok(Err(e)) => return refused(remote, &e),
            Err(_) => return debug!(%remote, "tcp tunnel handshake timed out"),
        };
        drop(slot);
        admit_link(link, shared).await;
    }
}

fn refused(remote: SocketAddr, e: &DialError) {
    match e.tls_error() {
        Some(tls) => info!(%remote, error = %tls, "tcp tunnel handshake refused"),
        None => debug!(%remote, error = %e, "tcp tunnel handshake failed"),
    }
}
