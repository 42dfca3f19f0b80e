//! The QUIC endpoint, its accept loop, the TCP transport's listener, and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use frp_proto::CloseCode;
use frp_runtime::link::Link;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::VarInt;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::admin::ServerApi;
use crate::admission::{Admission, HandshakeStats, Slot};
use crate::config::ServerSettings;
use crate::gauges::ServerGauges;
use crate::registry::{Registry, ServerStatus};
use crate::revocation::Revocations;
use crate::session::{close, Session};
use crate::tcp_transport::TcpDoor;
use crate::vhost::{AccessEntry, AccessLog, Listeners};
use frp_runtime::transport::EndpointSecret;

/// How long to wait for peers to acknowledge the close after the grace period.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How often the registry looks for clients whose address changed (quinn has no event for a
/// migration): one pass over all sessions, rather than a timer per session.
const PATH_CHECK: Duration = Duration::from_secs(1);

/// State every session and stream task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The settings in force; a reload swaps them whole (see [`crate::admin::reload`]).
    pub(crate) settings: RwLock<Arc<ServerSettings>>,
    /// When the server was bound.
    pub(crate) started: SystemTime,
    pub(crate) registry: Registry,
    /// Tracks data-stream tasks so shutdown can let them finish.
    pub(crate) streams: TaskTracker,
    /// Tracks client sessions and their handshakes (both transports), closed last.
    pub(crate) sessions: TaskTracker,
    /// Cancelled when the server starts shutting down.
    pub(crate) shutdown: CancellationToken,
    /// Live counts of open resources.
    pub(crate) gauges: ServerGauges,
    /// The revocation list in force; swapped whole on reload.
    pub(crate) revoked: RwLock<Arc<Revocations>>,
    /// Addresses of the bound vhost listeners (http, https).
    pub(crate) vhost_addrs: (Option<SocketAddr>, Option<SocketAddr>),
    /// One entry per HTTP request served on the vhost ports.
    pub(crate) access: AccessLog,
    /// The ACME certificate manager, with `[vhostHTTPS.acme]`.
    pub(crate) acme: Option<Arc<crate::acme::Acme>>,
    /// Where tunnels over the TCP transport are taken on (its port and `vhostHTTPSPort`).
    pub(crate) tcp_door: TcpDoor,
}

impl Shared {
    /// The settings in force.
    pub(crate) fn settings(&self) -> Arc<ServerSettings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The revocation list in force.
    pub(crate) fn revoked(&self) -> Arc<Revocations> {
        Arc::clone(&self.revoked.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `list` in force and closes the connections of clients whose certificate it
    /// lists; returns how many.
    pub(crate) fn apply_revocations(&self, list: &Arc<Revocations>) -> usize {
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(list);
        let revoked = self.registry.sessions_where(|cert| list.is_revoked(cert));
        for (client, conn) in &revoked {
            warn!(%client, "disconnecting a client whose certificate was revoked");
            close(conn, CloseCode::Revoked, "certificate revoked");
        }
        revoked.len()
    }
}

/// A bound frps server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    endpoint: quinn::Endpoint,
    /// `transport.tcpPort`'s listener, until `run` serves it.
    tcp: Option<TcpListener>,
    tcp_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    vhost: Listeners,
    admission: Arc<Admission>,
    handshake_stats: HandshakeStats,
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
        let endpoint =
            frp_runtime::transport::server_endpoint(socket, config, &endpoint_secret(&settings)?)?;
        let handshake_stats = HandshakeStats::default();
        let admission = Admission::new(settings.handshakes, handshake_stats.clone());
        let vhost = Listeners::bind(settings.proxy_bind_ip, &settings.vhost)?;
        let tcp = match settings.tcp_bind.map(bind_tcp) {
            Some(Ok(listener)) => Some(listener),
            Some(Err(e)) if settings.tcp_required => return Err(e),
            Some(Err(e)) => {
                warn!(error = %format!("{e:#}"), "no tcp transport on the default port (set transport.tcpPort)");
                None
            }
            None => None,
        };
        let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
        let tcp_door = TcpDoor::new(&settings);
        let revoked = RwLock::new(Arc::new(settings.revoked.clone()));
        let acme = match settings.vhost.acme.clone() {
            Some(s) => Some(
                crate::acme::Acme::start(s)
                    .map_err(|e| anyhow::anyhow!("[vhostHTTPS.acme]: {e}"))?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared {
            revoked,
            settings: RwLock::new(Arc::new(settings)),
            started: SystemTime::now(),
            registry: Registry::default(),
            streams: TaskTracker::new(),
            sessions: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            gauges: ServerGauges::default(),
            vhost_addrs: vhost.addrs(),
            access: AccessLog::default(),
            acme,
            tcp_door,
        });
        Ok(Self {
            endpoint,
            tcp,
            tcp_addr,
            shared,
            vhost,
            admission: Arc::new(admission),
            handshake_stats,
        })
    }

    /// The address of `vhostHTTPPort`, when configured.
    pub fn vhost_http_addr(&self) -> Option<SocketAddr> {
        self.shared.vhost_addrs.0
    }

    /// The address of `vhostHTTPSPort`, when configured.
    pub fn vhost_https_addr(&self) -> Option<SocketAddr> {
        self.shared.vhost_addrs.1
    }

    /// The address frpc reaches over the TCP transport (`transport.tcpPort`), when bound.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Access-log entries of the HTTP requests served from now on.
    pub fn access_log(&self) -> broadcast::Receiver<AccessEntry> {
        self.shared.access.subscribe()
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

    /// A handle that rereads the revocation list (wire it to SIGHUP).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The admin API of this server; `config` is the file it was started from, which a
    /// reload rereads (`None`: it cannot reload).
    ///
    /// # Errors
    /// When the endpoint's address cannot be read.
    pub fn api(&self, config: Option<PathBuf>) -> std::io::Result<Arc<ServerApi>> {
        let (shared, stats) = (Arc::clone(&self.shared), self.handshake_stats.clone());
        let api = ServerApi::new(shared, stats, self.local_addr()?, config);
        Ok(Arc::new(api))
    }

    /// Live counts of sessions, listeners, public connections and streams.
    pub fn gauges(&self) -> ServerGauges {
        self.shared.gauges.clone()
    }

    /// Counts of connection attempts: handshakes under way, Retries sent, attempts ignored
    /// or refused, and how handshakes ended.
    pub fn handshakes(&self) -> HandshakeStats {
        self.handshake_stats.clone()
    }

    /// Serves clients until `shutdown` is cancelled, then drains and returns `Ok(())`.
    ///
    /// Shutdown stops accepting connections, closes every public listener, tells each client
    /// with a `GoingAway`, lets open streams finish for the grace period, and then closes the
    /// endpoint with [`CloseCode::ServerShutdown`].
    ///
    /// # Errors
    /// None today; the signature leaves room for fatal endpoint errors.
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let addr = self.endpoint.local_addr()?;
        info!(%addr, "frps listening for clients (quic)");
        let sessions = self.shared.sessions.clone();
        crate::vhost::spawn(std::mem::take(&mut self.vhost), &self.shared, &sessions);
        sessions.spawn(watch_paths(Arc::clone(&self.shared)));
        if let Some(listener) = self.tcp.take() {
            let door = self.shared.tcp_door.clone();
            sessions.spawn(door.serve(listener, Arc::clone(&self.shared)));
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                incoming = self.endpoint.accept() => match incoming {
                    Some(incoming) => self.admit(incoming, &sessions),
                    None => break,
                },
            }
        }
        self.drain(sessions).await;
        Ok(())
    }

    /// Starts a handshake task when [`Admission`] takes the attempt on (it answers the others),
    /// so a handshake flood cannot grow tasks or state without bound.
    fn admit(&self, incoming: quinn::Incoming, sessions: &TaskTracker) {
        if let Some((incoming, slot, timeout)) = self.admission.admit(incoming) {
            let handshake = Handshake {
                admission: Arc::clone(&self.admission),
                slot,
                timeout,
            };
            sessions.spawn(accept(incoming, Arc::clone(&self.shared), handshake));
        }
    }

    async fn drain(self, sessions: TaskTracker) {
        let grace = self.shared.settings().grace;
        info!(?grace, "draining");
        self.endpoint.set_server_config(None);
        self.shared.shutdown.cancel();
        let streams = &self.shared.streams;
        streams.close();
        if tokio::time::timeout(grace, streams.wait()).await.is_err() {
            warn!(
                open = streams.len(),
                "grace period over; resetting open streams"
            );
        }
        let code = CloseCode::ServerShutdown;
        self.endpoint
            .close(VarInt::from_u32(code.code()), b"server shutting down");
        // Tunnels over TCP are not the endpoint's: close them one by one.
        for (_, conn) in self.shared.registry.sessions_where(|_| true) {
            close(&conn, code, "server shutting down");
        }
        sessions.close();
        sessions.wait().await;
        let _ = tokio::time::timeout(CLOSE_WAIT, self.endpoint.wait_idle()).await;
        info!("frps stopped");
    }
}

/// Picks up migrated client addresses every [`PATH_CHECK`] until shutdown.
async fn watch_paths(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(PATH_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => shared.registry.check_paths(),
        }
    }
}

/// A handshake admitted: its place in the count and how long it may take.
struct Handshake {
    admission: Arc<Admission>,
    slot: Slot,
    timeout: Duration,
}

/// Completes the handshake, learns the client's identity and runs its session.
async fn accept(incoming: quinn::Incoming, shared: Arc<Shared>, handshake: Handshake) {
    let remote = incoming.remote_address();
    let admission = &handshake.admission;
    let conn = match tokio::time::timeout(handshake.timeout, incoming).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return admission.finished(remote, Some(&e)),
        Err(_) => return admission.finished(remote, None),
    };
    admission.completed();
    drop(handshake.slot);
    admit_link(Link::Quic(conn), shared).await;
}

/// Runs the session of a connection whose handshake completed, over either transport, once
/// its certificate names a usable identity that is not revoked.
pub(crate) async fn admit_link(conn: Link, shared: Arc<Shared>) {
    let remote = conn.remote_address();
    if shared.shutdown.is_cancelled() {
        return close(&conn, CloseCode::ServerShutdown, "server shutting down");
    }
    let (identity, cert) = match identity_of(&conn) {
        Ok(id) => id,
        Err(e) => {
            warn!(%remote, error = %e, "client certificate has no usable identity");
            let reason = "certificate has no usable identity";
            return close(&conn, CloseCode::Unauthorized, reason);
        }
    };
    if shared.revoked().is_revoked(&cert) {
        warn!(client = %identity, %remote, "refused a revoked certificate");
        return close(&conn, CloseCode::Revoked, "certificate revoked");
    }
    info!(client = %identity, %remote, "client connected");
    Session::run(shared, conn, identity, cert).await;
}

/// The client's identity (the common name of its verified certificate) and that certificate.
fn identity_of(conn: &Link) -> anyhow::Result<(String, CertificateDer<'static>)> {
    let certs = conn.peer_certificates().context("no client certificate")?;
    let leaf = certs
        .into_iter()
        .next()
        .context("empty client certificate chain")?;
    let name = frp_certs::peer_identity(&leaf)?;
    frp_certs::validate_identity(&name)?;
    Ok((name, leaf))
}

/// Binds the TCP transport's listener.
fn bind_tcp(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)
        .with_context(|| format!("binding transport.tcpPort {addr}"))?;
    std.set_nonblocking(true)?;
    Ok(TcpListener::from_std(std)?)
}

/// Rereads the revocation list and disconnects clients it now lists (what SIGHUP does).
#[derive(Clone, Debug)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl Reloader {
    /// Rereads `revocationFile`, swaps the list in, and closes the connections of clients
    /// whose certificate it lists. Returns how many were disconnected.
    ///
    /// # Errors
    /// When no file is configured or it cannot be parsed; the old list stays in force.
    pub fn reload(&self) -> Result<usize, String> {
        let settings = self.shared.settings();
        let path = settings.revocation_file.as_deref();
        let path = path.ok_or("no revocationFile is configured")?;
        let list = Arc::new(Revocations::load(path)?);
        let disconnected = self.shared.apply_revocations(&list);
        info!(
            entries = list.len(),
            disconnected, "revocation list reloaded"
        );
        Ok(disconnected)
    }
}

/// The configured endpoint secret, or (for settings made in code) a random one.
fn endpoint_secret(settings: &ServerSettings) -> anyhow::Result<EndpointSecret> {
    match &settings.endpoint_secret {
        Some(secret) => Ok(secret.clone()),
        None => EndpointSecret::random(),
    }
}
