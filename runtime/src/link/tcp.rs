//! TLS over TCP for the HTTP/2 link: frpc's dial and frps's side after its TLS accept.
//!
//! The TLS configs are the QUIC ones (the same certificates, verifiers and TLS 1.3) with the
//! TCP transport's own ALPN, so the same identity rules hold on both transports.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::h2::{H2Link, H2Tuning, Peer, ALPN_TCP};
use super::{Link, LinkError};

/// `config` offering the TCP transport's ALPN instead of QUIC's.
pub fn client_config(config: &rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    let mut c = config.clone();
    c.alpn_protocols = vec![ALPN_TCP.to_vec()];
    Arc::new(c)
}

/// `config` accepting the TCP transport's ALPN instead of QUIC's.
pub fn server_config(config: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut c = config.clone();
    c.alpn_protocols = vec![ALPN_TCP.to_vec()];
    Arc::new(c)
}

/// Why a TCP dial failed, sorted for the caller's retry decision.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// No TCP connection (refused, unreachable).
    #[error("tcp connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    /// The TLS handshake failed: the error carries rustls's alert when it was a refusal.
    #[error("tls handshake with {0}: {1}")]
    Tls(SocketAddr, std::io::Error),
    /// HTTP/2 did not start.
    #[error("{0}")]
    Link(LinkError),
}

impl DialError {
    /// The rustls error inside a TLS failure, to tell a certificate refusal from a network
    /// failure.
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        match self {
            Self::Tls(_, e) => e.get_ref()?.downcast_ref::<rustls::Error>(),
            _ => None,
        }
    }
}

/// HTTP/2 did not start. In TLS 1.3 the client finishes its handshake before the server
/// has checked the client's certificate, so a refusal of it arrives here, as an alert read
/// by the first HTTP/2 frame: that is a TLS failure, not a lost connection.
fn h2_failed(addr: SocketAddr, e: h2::Error) -> DialError {
    if !e.is_io() {
        return DialError::Link(LinkError::TcpLost(format!("http/2 handshake: {e}")));
    }
    let Some(io) = e.into_io() else {
        return DialError::Link(LinkError::TcpLost("http/2 handshake failed".into()));
    };
    let tls = io
        .get_ref()
        .and_then(|r| r.downcast_ref::<rustls::Error>())
        .is_some();
    match tls {
        true => DialError::Tls(addr, io),
        false => DialError::Link(LinkError::TcpLost(format!("http/2 handshake: {io}"))),
    }
}

/// frpc: connects to `addr` over TCP, completes TLS (checking frps's certificate as for
/// QUIC) and runs HTTP/2 as the server of the connection.
///
/// # Errors
/// Which step failed.
pub async fn dial(
    addr: SocketAddr,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
    tuning: H2Tuning,
) -> Result<Link, DialError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| DialError::Connect(addr, e))?;
    let _ = tcp.set_nodelay(true);
    let stream = TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| DialError::Tls(addr, e))?;
    let peer = Peer {
        remote: addr,
        certs: verified_chain(stream.get_ref().1),
    };
    let link = H2Link::server(stream, peer, tuning)
        .await
        .map_err(|e| h2_failed(addr, e))?;
    Ok(Link::H2(link))
}

/// frps: completes TLS on an accepted connection from `remote` (a TCP stream, or one that
/// replays a ClientHello already read) whose ClientHello asked for [`ALPN_TCP`], then runs
/// HTTP/2 as the client of the connection.
///
/// # Errors
/// The TLS handshake failed (a client certificate refused, say) or HTTP/2 did not start.
pub async fn accept<T>(
    io: T,
    remote: SocketAddr,
    acceptor: &TlsAcceptor,
    tuning: H2Tuning,
) -> Result<Link, DialError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stream = acceptor
        .accept(io)
        .await
        .map_err(|e| DialError::Tls(remote, e))?;
    let peer = Peer {
        remote,
        certs: verified_chain(stream.get_ref().1),
    };
    let link = H2Link::client(stream, peer, tuning)
        .await
        .map_err(|e| h2_failed(remote, e))?;
    Ok(Link::H2(link))
}

/// The peer's certificate chain the handshake verified, leaf first.
fn verified_chain(tls: &rustls::CommonState) -> Vec<CertificateDer<'static>> {
    tls.peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default()
}
