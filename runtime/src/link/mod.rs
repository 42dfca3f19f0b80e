//! The connection between frpc and frps, whichever transport carries it: QUIC (quinn), or
//! HTTP/2 over TLS over TCP ([`h2`](crate::link::h2)) where UDP does not get through.
//!
//! Everything above this module (the control protocol, the splice, vhost backends, the admin
//! views) speaks to [`Link`], [`LinkSend`] and [`LinkRecv`] and never names a transport, so the
//! data path is written once. The contract both transports keep:
//! - frps opens every data stream ([`Link::open_bi`]); frpc accepts them ([`Link::accept_bi`]).
//! - The control stream is the first stream of a connection. On QUIC frpc opens it; on HTTP/2
//!   frpc is the HTTP/2 *server* of the connection it dialled (as cloudflared's HTTP/2
//!   transport), so frps opens it. [`Link::open_control`] (frpc) and [`Link::accept_control`]
//!   (frps) hide that difference.
//! - A stream end is a FIN (QUIC) or `END_STREAM` (HTTP/2); a reset carries a
//!   [`frp_proto::StreamCode`] as the QUIC error code or the HTTP/2 `RST_STREAM` reason.
//! - Closing a connection carries a [`frp_proto::CloseCode`] and a reason to the peer
//!   ([`LinkError::closed_by_peer`]).

pub mod h2;
mod h2_driver;
mod h2_stream;
mod stream;
pub mod tcp;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

pub use self::h2::H2Link;
pub use stream::{LinkRecv, LinkSend};

/// Which transport a [`Link`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// QUIC over UDP.
    Quic,
    /// HTTP/2 over TLS over TCP.
    Tcp,
}

impl Transport {
    /// `quic` or `tcp`, as the config and the APIs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quic => "quic",
            Self::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connection between frpc and frps. Cloning it is cheap and shares the connection.
#[derive(Clone, Debug)]
pub enum Link {
    /// A QUIC connection.
    Quic(quinn::Connection),
    /// HTTP/2 over TLS over TCP.
    H2(H2Link),
}

/// Why a connection ended.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LinkError {
    /// The QUIC connection ended.
    #[error(transparent)]
    Quic(#[from] quinn::ConnectionError),
    /// The peer closed the TCP link with a close code and a reason.
    #[error("closed by peer: {reason}")]
    TcpClosed {
        /// The [`frp_proto::CloseCode`] value.
        code: u32,
        /// The peer's reason.
        reason: String,
    },
    /// We closed the TCP link.
    #[error("closed locally: {0}")]
    TcpLocallyClosed(String),
    /// The peer stopped answering keep-alive pings.
    #[error("timed out")]
    TcpTimedOut,
    /// The TCP or TLS connection or the HTTP/2 session failed.
    #[error("connection lost: {0}")]
    TcpLost(String),
}

impl LinkError {
    /// The close code and reason when the peer closed the connection on purpose.
    pub fn closed_by_peer(&self) -> Option<(u64, String)> {
        match self {
            Self::Quic(quinn::ConnectionError::ApplicationClosed(c)) => Some((
                c.error_code.into_inner(),
                String::from_utf8_lossy(&c.reason).into_owned(),
            )),
            Self::TcpClosed { code, reason } => Some((u64::from(*code), reason.clone())),
            _ => None,
        }
    }
}

/// Path figures of a connection for the admin API and metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PathStats {
    /// The smoothed round-trip time (on TCP: the last keep-alive ping's).
    pub rtt: Duration,
    /// The congestion window in bytes (0 on TCP, where the kernel keeps it).
    pub cwnd: u64,
    /// Packets sent (0 on TCP).
    pub sent_packets: u64,
    /// Packets lost (0 on TCP).
    pub lost_packets: u64,
}

impl Link {
    /// The transport this link runs on.
    pub fn transport(&self) -> Transport {
        match self {
            Self::Quic(_) => Transport::Quic,
            Self::H2(_) => Transport::Tcp,
        }
    }

    /// Opens a data stream toward the peer (frps to frpc).
    ///
    /// # Errors
    /// The connection's end, when it ended.
    pub async fn open_bi(&self) -> Result<(LinkSend, LinkRecv), LinkError> {
        match self {
            Self::Quic(c) => Ok(stream::quic(c.open_bi().await?)),
            Self::H2(c) => c.open().await,
        }
    }

    /// Accepts the next stream the peer opened (frpc, from frps).
    ///
    /// # Errors
    /// The connection's end, when it ended.
    pub async fn accept_bi(&self) -> Result<(LinkSend, LinkRecv), LinkError> {
        match self {
            Self::Quic(c) => Ok(stream::quic(c.accept_bi().await?)),
            Self::H2(c) => c.accept().await,
        }
    }

    /// frpc: the control stream, which it opens on QUIC and frps opens on HTTP/2.
    ///
    /// # Errors
    /// The connection's end, when it ended.
    pub async fn open_control(&self) -> Result<(LinkSend, LinkRecv), LinkError> {
        match self {
            Self::Quic(_) => self.open_bi().await,
            Self::H2(_) => self.accept_bi().await,
        }
    }

    /// frps: the control stream, which frpc opens on QUIC and frps opens on HTTP/2.
    ///
    /// # Errors
    /// The connection's end, when it ended.
    pub async fn accept_control(&self) -> Result<(LinkSend, LinkRecv), LinkError> {
        match self {
            Self::Quic(_) => self.accept_bi().await,
            Self::H2(_) => self.open_bi().await,
        }
    }

    /// Closes the connection with `code` (a [`frp_proto::CloseCode`]) and `reason`; every
    /// stream ends with it.
    pub fn close(&self, code: u32, reason: &[u8]) {
        match self {
            Self::Quic(c) => c.close(quinn::VarInt::from_u32(code), reason),
            Self::H2(c) => c.close(code, &String::from_utf8_lossy(reason)),
        }
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<LinkError> {
        match self {
            Self::Quic(c) => c.close_reason().map(LinkError::Quic),
            Self::H2(c) => c.close_reason(),
        }
    }

    /// Resolves once the connection has ended, with why.
    pub async fn closed(&self) -> LinkError {
        match self {
            Self::Quic(c) => LinkError::Quic(c.closed().await),
            Self::H2(c) => c.closed().await,
        }
    }

    /// The stream credit this connection starts with under `ceiling` (`maxIncomingStreams`,
    /// the value its transport was configured with).
    pub fn stream_credit(&self, ceiling: u32) -> crate::StreamCredit {
        match self {
            Self::Quic(_) => crate::StreamCredit::new(ceiling),
            Self::H2(_) => crate::StreamCredit::full(ceiling),
        }
    }

    /// Lets the peer have up to `count` streams open toward us at once (see [`crate::credit`]).
    ///
    /// On HTTP/2 this does nothing: h2 keeps a stream's state only while the stream is open, so
    /// its fixed limit (`maxIncomingStreams`) costs no memory while unused.
    pub fn set_stream_credit(&self, count: u32) {
        match self {
            Self::Quic(c) => c.set_max_concurrent_bi_streams(quinn::VarInt::from_u32(count)),
            Self::H2(_) => {}
        }
    }

    /// The peer's address as last seen.
    pub fn remote_address(&self) -> SocketAddr {
        match self {
            Self::Quic(c) => c.remote_address(),
            Self::H2(c) => c.remote_address(),
        }
    }

    /// The current round-trip time estimate.
    pub fn rtt(&self) -> Duration {
        match self {
            Self::Quic(c) => c.rtt(),
            Self::H2(c) => c.rtt(),
        }
    }

    /// Path figures, for the admin API and metrics.
    pub fn path_stats(&self) -> PathStats {
        match self {
            Self::Quic(c) => {
                let p = c.stats().path;
                PathStats {
                    rtt: p.rtt,
                    cwnd: p.cwnd,
                    sent_packets: p.sent_packets,
                    lost_packets: p.lost_packets,
                }
            }
            Self::H2(c) => PathStats {
                rtt: c.rtt(),
                ..PathStats::default()
            },
        }
    }

    /// The peer's verified certificate chain, leaf first.
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        match self {
            Self::Quic(c) => c
                .peer_identity()?
                .downcast::<Vec<CertificateDer<'static>>>()
                .ok()
                .map(|b| *b),
            Self::H2(c) => Some(c.peer_certificates().to_vec()),
        }
    }
}

impl From<quinn::Connection> for Link {
    fn from(c: quinn::Connection) -> Self {
        Self::Quic(c)
    }
}
