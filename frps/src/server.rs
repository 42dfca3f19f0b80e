//! The QUIC endpoint, its accept loop, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use frp_proto::CloseCode;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::VarInt;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::ServerSettings;
use crate::registry::{Registry, ServerStatus};
use crate::session::{close, Session};

/// How long a QUIC handshake may take before the attempt is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for peers to acknowledge the close after the grace period.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// State every session and stream task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) settings: ServerSettings,
    pub(crate) registry: Registry,
    /// Tracks data-stream tasks so shutdown can let them finish.
    pub(crate) streams: TaskTracker,
    /// Cancelled when the server starts shutting down.
    pub(crate) shutdown: CancellationToken,
}

/// A bound frps server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the QUIC endpoint. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// Fails when the TLS config is unusable for QUIC or the UDP address cannot be bound.
    pub fn bind(settings: ServerSettings) -> anyhow::Result<Self> {
        let crypto = QuicServerConfig::try_from(Arc::clone(&settings.tls))
            .context("tls config is not usable for quic")?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(settings.quic.transport_config()?);
        let socket = frp_runtime::transport::bind_udp(settings.bind)?;
        let endpoint = frp_runtime::transport::endpoint(socket, Some(config))?;
        let shared = Arc::new(Shared {
            settings,
            registry: Registry::default(),
            streams: TaskTracker::new(),
            shutdown: CancellationToken::new(),
        });
        Ok(Self { endpoint, shared })
    }

    /// The bound UDP address (useful with port 0).
    ///
    /// # Errors
    /// Fails if the socket's address cannot be read.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Snapshots of connected clients and their proxies, updated on every change.
    pub fn status(&self) -> watch::Receiver<ServerStatus> {
        self.shared.registry.subscribe()
    }

    /// Serves clients until `shutdown` is cancelled, then drains and returns `Ok(())`.
    ///
    /// Shutdown stops accepting connections, closes every public listener, tells each client
    /// with a `GoingAway`, lets open streams finish for the grace period, and then closes the
    /// endpoint with [`CloseCode::ServerShutdown`].
    ///
    /// # Errors
    /// None today; the signature leaves room for fatal endpoint errors.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let addr = self.endpoint.local_addr()?;
        info!(%addr, "frps listening for clients (quic)");
        let sessions = TaskTracker::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => { sessions.spawn(accept(incoming, Arc::clone(&self.shared))); }
                    None => break,
                },
            }
        }
        self.drain(sessions).await;
        Ok(())
    }

    async fn drain(self, sessions: TaskTracker) {
        info!(grace = ?self.shared.settings.grace, "draining");
        self.endpoint.set_server_config(None);
        self.shared.shutdown.cancel();
        let streams = &self.shared.streams;
        streams.close();
        if tokio::time::timeout(self.shared.settings.grace, streams.wait())
            .await
            .is_err()
        {
            warn!(
                open = streams.len(),
                "grace period over; resetting open streams"
            );
        }
        let code = CloseCode::ServerShutdown;
        self.endpoint
            .close(VarInt::from_u32(code.code()), b"server shutting down");
        sessions.close();
        sessions.wait().await;
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
        info!("frps stopped");
    }
}

/// Completes the handshake, learns the client's identity and runs its session.
async fn accept(incoming: quinn::Incoming, shared: Arc<Shared>) {
    let remote = incoming.remote_address();
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return info!(%remote, error = %e, "client handshake failed"),
        Err(_) => return debug!(%remote, "client handshake timed out"),
    };
    let identity = match identity_of(&conn) {
        Ok(id) => id,
        Err(e) => {
            warn!(%remote, error = %e, "client certificate has no usable identity");
            return close(
                &conn,
                CloseCode::Unauthorized,
                "certificate has no usable identity",
            );
        }
    };
    info!(client = %identity, %remote, "client connected");
    Session::run(shared, conn, identity).await;
}

/// The client's identity: the common name of its verified certificate.
fn identity_of(conn: &quinn::Connection) -> anyhow::Result<String> {
    let certs = conn
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .context("no client certificate")?;
    let leaf = certs.first().context("empty client certificate chain")?;
    let name = frp_certs::peer_identity(leaf)?;
    frp_certs::validate_identity(&name)?;
    Ok(name)
}
