//! Dialling the server: resolve, bind, the QUIC handshake (or TLS over TCP, or both raced
//! for `transport.protocol = "auto"`), and what a failure means in words (which side refused
//! and why, retry or give up).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use frp_proto::CloseCode;
use frp_runtime::handshake::{Problem, RefusedBy, TlsRefusal};
use frp_runtime::link::{Link, LinkError};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{ConnectionError, TransportErrorCode};
use tracing::info;

use crate::config::ClientSettings;
use crate::config_transport::Protocol;
use crate::handle::Shared;
use crate::register::{Established, SessionError};

/// The QUIC client config for `settings`: their TLS identity and transport tuning.
pub(crate) fn quic_config(settings: &ClientSettings) -> anyhow::Result<quinn::ClientConfig> {
    let crypto = QuicClientConfig::try_from(Arc::clone(&settings.tls))
        .context("tls config is not usable for quic")?;
    let mut quic = quinn::ClientConfig::new(Arc::new(crypto));
    quic.transport_config(settings.quic.transport_config()?);
    Ok(quic)
}

impl Shared {
    /// Connects over the transport `settings` ask for (`auto`: QUIC, raced by TCP after a
    /// head start).
    pub(crate) async fn connect(
        &self,
        settings: Arc<ClientSettings>,
    ) -> Result<Established, SessionError> {
        match settings.protocol {
            Protocol::Quic => self.connect_quic(settings).await,
            Protocol::Tcp => self.connect_tcp(settings).await,
            Protocol::Auto => self.connect_auto(settings).await,
        }
    }

    /// The server's address for this attempt on `port`. Each attempt takes the next address,
    /// so one unreachable address (an IPv6 one on an IPv4-only host, say) cannot hide the
    /// others.
    pub(crate) async fn resolve(
        &self,
        s: &ClientSettings,
        port: u16,
    ) -> Result<SocketAddr, SessionError> {
        let transient = |e: anyhow::Error| SessionError::Transient(format!("{e:#}"));
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((s.server_host.as_str(), port))
            .await
            .with_context(|| format!("resolving {}:{port}", s.server_host))
            .map_err(transient)?
            .collect();
        let attempt = self.attempts.fetch_add(1, Ordering::Relaxed);
        addrs
            .get(attempt % addrs.len().max(1))
            .copied()
            .ok_or_else(|| SessionError::Transient(format!("{} has no address", s.server_host)))
    }

    /// Resolves the server, binds a UDP socket of the same family and completes a QUIC
    /// handshake; gives up early when the network answers UDP to the server with "port
    /// unreachable" ([`crate::unreachable`]).
    pub(crate) async fn connect_quic(
        &self,
        settings: Arc<ClientSettings>,
    ) -> Result<Established, SessionError> {
        let s = &settings;
        let transient = |e: anyhow::Error| SessionError::Transient(format!("{e:#}"));
        let quic = quic_config(s).map_err(transient)?;
        let addr = self.resolve(s, s.server_port).await?;
        let socket = frp_runtime::transport::bind_udp(any_local(addr)).map_err(transient)?;
        let endpoint = frp_runtime::transport::endpoint(socket, None).map_err(transient)?;
        let connecting = endpoint
            .connect_with(quic, addr, &s.server_name)
            .map_err(|e| connect_error(addr, e))?;
        let handshake = tokio::time::timeout(s.connect_timeout, connecting);
        let conn = tokio::select! {
            r = handshake => match r {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(classify_quic(&e)),
                Err(_) => return Err(no_answer(addr, s.connect_timeout)),
            },
            () = crate::unreachable::refused(addr) => return Err(udp_refused(addr)),
        };
        info!(server = %addr, transport = "quic", "connected to server");
        Ok(Established {
            settings,
            endpoint: Some(endpoint),
            conn: Link::Quic(conn),
        })
    }
}

/// Any local address of `remote`'s family, port 0: where a UDP socket toward it binds.
pub(crate) fn any_local(remote: SocketAddr) -> SocketAddr {
    match remote {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

fn udp_refused(addr: SocketAddr) -> SessionError {
    SessionError::Transient(format!(
        "{addr} answered with \"port unreachable\": is frps running there, listening on UDP \
         port {} (bindPort), and does no firewall on the way reject UDP?",
        addr.port()
    ))
}

/// The least a client waits after the server refused it because another connection with its
/// certificate is connected ([`CloseCode::IdentityInUse`]); frps stops refusing after two
/// quiet minutes, so clients that keep trying every minute or so stay apart.
pub(crate) const CONTESTED_WAIT: Duration = Duration::from_secs(60);

/// [`CONTESTED_WAIT`] plus up to half of it again, so clients refused together spread out.
pub(crate) fn contested_delay() -> Duration {
    use rand::Rng as _;
    CONTESTED_WAIT.mul_f64(rand::rng().random_range(1.0..=1.5))
}

/// Sorts a connection error into "retry" and "give up", with a reason in words that says
/// which side refused.
///
/// Certificate and version failures and explicit refusals by the server are permanent; other
/// TLS alerts (internal errors, decode errors) and everything else are retried.
pub(crate) fn classify(e: &LinkError) -> SessionError {
    if let Some((code, reason)) = e.closed_by_peer() {
        return closed_by_server(code, &reason);
    }
    match e {
        LinkError::Quic(e) => classify_quic(e),
        LinkError::TcpTimedOut => {
            SessionError::Transient("the server stopped answering (idle timeout)".into())
        }
        other => SessionError::Transient(other.to_string()),
    }
}

/// The server closed the connection on purpose with `code`.
fn closed_by_server(code: u64, reason: &str) -> SessionError {
    match CloseCode::from_code(code) {
        Some(CloseCode::UnsupportedVersion | CloseCode::Unauthorized | CloseCode::Revoked) => {
            SessionError::Permanent(format!("server refused this client: {reason}"))
        }
        Some(CloseCode::IdentityInUse) => {
            SessionError::Contested(format!("server refused this client: {reason}"))
        }
        _ => SessionError::Transient(format!("server closed the connection: {reason}")),
    }
}

/// [`classify`] for a QUIC connection's end.
pub(crate) fn classify_quic(e: &ConnectionError) -> SessionError {
    if let Some(refusal) = TlsRefusal::of(e) {
        return refusal_error(&refusal);
    }
    match e {
        ConnectionError::ApplicationClosed(c) => closed_by_server(
            c.error_code.into_inner(),
            &String::from_utf8_lossy(&c.reason),
        ),
        ConnectionError::VersionMismatch => {
            SessionError::Permanent("server speaks no QUIC version we support".into())
        }
        ConnectionError::ConnectionClosed(c)
            if c.error_code == TransportErrorCode::CONNECTION_REFUSED =>
        {
            SessionError::Transient(
                "the server is busy (too many handshakes under way) and refused the connection"
                    .into(),
            )
        }
        ConnectionError::Reset => SessionError::Transient(
            "the server reset the connection: it restarted, or no longer knows this connection"
                .into(),
        ),
        ConnectionError::TimedOut => {
            SessionError::Transient("the server stopped answering (idle timeout)".into())
        }
        other => SessionError::Transient(other.to_string()),
    }
}

/// A TLS refusal as a session error: permanent when retrying cannot fix it.
pub(crate) fn refusal_error(refusal: &TlsRefusal) -> SessionError {
    let reason = refusal_words(refusal);
    if refusal.is_permanent() {
        SessionError::Permanent(reason)
    } else {
        SessionError::Transient(reason)
    }
}

/// A TLS refusal in words, naming the side that refused and the setting to look at.
fn refusal_words(r: &TlsRefusal) -> String {
    let p = &r.problem;
    match (r.by, p) {
        (RefusedBy::Us, Problem::WrongName { .. }) => format!(
            "this client refused the server's certificate: {p}; set transport.tls.serverName \
             to a name it is valid for"
        ),
        (RefusedBy::Us, Problem::UnknownCa) => format!(
            "this client refused the server's certificate: {p} (transport.tls.trustedCaFile \
             must be the CA that issued the server's certificate)"
        ),
        (RefusedBy::Us, p) if p.about_certificate() => format!(
            "this client refused the server's certificate (checked against \
             transport.tls.trustedCaFile): {p}"
        ),
        (RefusedBy::Peer, Problem::UnknownCa) => format!(
            "the server refused this client's certificate: {p} (transport.tls.certFile must be \
             issued by the CA the server trusts, its trustedCaFile)"
        ),
        (RefusedBy::Peer, p) if p.about_certificate() => {
            format!("the server refused this client's certificate (transport.tls.certFile): {p}")
        }
        (RefusedBy::Us, p) => format!("this client refused the TLS handshake with the server: {p}"),
        (RefusedBy::Peer, p) => format!("the server refused the TLS handshake: {p}"),
    }
}

/// A connection attempt nobody answered, with where to look.
fn no_answer(addr: SocketAddr, waited: Duration) -> SessionError {
    SessionError::Transient(format!(
        "no answer from {addr} within {}s: is frps running there, and does every firewall on \
         the way let UDP port {} through?",
        waited.as_secs_f64(),
        addr.port()
    ))
}

/// A connection that could not even start: a bad server name is permanent, the rest retried.
fn connect_error(addr: SocketAddr, e: quinn::ConnectError) -> SessionError {
    let reason = format!("cannot connect to {addr}: {e}");
    match e {
        quinn::ConnectError::InvalidServerName(_) | quinn::ConnectError::UnsupportedVersion => {
            SessionError::Permanent(reason)
        }
        _ => SessionError::Transient(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(code: u32, reason: &str) -> ConnectionError {
        ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: quinn::VarInt::from_u32(code),
            reason: reason.as_bytes().to_vec().into(),
        })
    }

    #[test]
    fn a_contested_identity_waits_a_minute_and_unknown_codes_are_retried() {
        let code = CloseCode::IdentityInUse.code();
        match classify_quic(&closed(code, "identity x is already connected")) {
            SessionError::Contested(r) => assert!(r.contains("already connected"), "{r}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_quic(&closed(99, "newer")),
            SessionError::Transient(_)
        ));
        let delay = contested_delay();
        assert!(
            delay >= CONTESTED_WAIT && delay <= CONTESTED_WAIT * 3 / 2,
            "{delay:?}"
        );
    }
}
