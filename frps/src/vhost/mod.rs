//! HTTP and HTTPS virtual hosts: many proxies on the server's `vhostHTTPPort` and
//! `vhostHTTPSPort`, chosen by name.
//!
//! - `vhostHTTPPort`: an HTTP/1.1 reverse proxy (hyper). Each request is routed by `Host` and
//!   the longest matching location to an `http` proxy ([`routes`]), passes that proxy's policy
//!   (redirect, CORS preflight, basic auth), and is forwarded over a pooled backend connection
//!   ([`backend`]) with its body streamed both ways. Upgrades (WebSocket) become a tunnel.
//! - `vhostHTTPSPort`: by the ClientHello's SNI, passed through untouched to an `https` proxy,
//!   or terminated with a certificate frps holds and then served like the HTTP port ([`tls`]).
//!
//! Every connection runs in a task of the server's stream tracker, so shutdown lets requests
//! in flight finish within the grace period; the accept loops stop at once.

mod access;
mod acme_tls;
mod auth;
pub mod backend;
mod body;
mod cors;
mod gate;
pub mod io;
pub mod policy;
mod quic_io;
pub mod routes;
mod service;
mod target;
mod throttle;
pub mod tls;
mod tls_front;
mod tunnel;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use frp_proto::{ProxyId, ProxyName};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

pub use access::{AccessEntry, AccessLog};
pub use service::{Conn, Frontend};
pub use tls::CertStore;

use crate::budget::Share;
use crate::domains::DomainPattern;
use crate::server::Shared;
use io::{Admission, ConnState, Slot, VisitorIo};

/// How long a client may take to send a request's head (and idle between requests).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest buffer hyper keeps for one visitor connection, and largest request head (larger
/// ones get `431`).
const MAX_BUF: usize = 64 * 1024;
/// Most header lines in a request head.
const MAX_HEADERS: usize = 64;

/// The virtual-host part of the server settings.
#[derive(Clone, Debug)]
pub struct VhostSettings {
    /// `vhostHTTPPort` (`Some(0)`: any free port, for tests); `None` serves no http proxies.
    pub http_port: Option<u16>,
    /// `vhostHTTPSPort`, likewise for https proxies and TLS termination.
    pub https_port: Option<u16>,
    /// `vhostHTTPTimeout`: how long a backend may take to send its response head once the
    /// request has been sent.
    pub response_timeout: Duration,
    /// `subDomainHost`: a proxy's `subdomain` becomes `NAME.<this>`.
    pub subdomain_host: Option<DomainPattern>,
    /// Certificates for TLS termination, by name.
    pub certificates: CertStore,
    /// `[vhostHTTPS.acme]`: certificates obtained automatically (restart to change).
    pub acme: Option<crate::acme::AcmeSettings>,
    /// `vhostMaxConnections`: connections open at once on the vhost ports; more are reset.
    pub max_connections: usize,
    /// `vhostMaxConnectionsPerIP`: of those, from one IPv4 address or IPv6 /64.
    pub max_connections_per_ip: usize,
    /// `vhostBodyIdleTimeout`: how long a request body may make no progress, and a write to
    /// a visitor stall (60 s). A response that is silent (an event stream) is not cut.
    pub body_idle_timeout: Duration,
    /// `vhostUpgradeIdleTimeout`: how long an upgraded (WebSocket) connection may carry no
    /// bytes either way (1 hour).
    pub upgrade_idle_timeout: Duration,
    /// `vhostAuthMaxFailures`: wrong basic-auth passwords from one address (IPv4, IPv6 /64)
    /// before it must wait (10).
    pub auth_max_failures: u32,
    /// `vhostAuthMaxBackoff`: the longest such wait (10 minutes).
    pub auth_max_backoff: Duration,
}

impl Default for VhostSettings {
    fn default() -> Self {
        Self {
            http_port: None,
            https_port: None,
            response_timeout: Duration::from_secs(60),
            subdomain_host: None,
            certificates: CertStore::default(),
            acme: None,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            body_idle_timeout: Duration::from_secs(60),
            upgrade_idle_timeout: Duration::from_secs(3600),
            auth_max_failures: 10,
            auth_max_backoff: Duration::from_secs(600),
        }
    }
}

/// Where an `https` proxy's connections go.
#[derive(Debug)]
pub struct TlsTarget {
    /// The proxy's name, for logs.
    pub name: ProxyName,
    /// The id the client knows it by.
    pub id: ProxyId,
    /// The client's connection.
    pub conn: frp_runtime::link::Link,
    /// The proxy's part of its client's connection budget.
    pub share: Share,
    /// What the proxy carried.
    pub stats: Arc<crate::stats::ProxyStats>,
}

/// The bound vhost listeners (bound before `run`, so their addresses are known).
#[derive(Debug, Default)]
pub struct Listeners {
    http: Option<TcpListener>,
    https: Option<TcpListener>,
}

impl Listeners {
    /// Binds the configured ports on `ip`.
    ///
    /// # Errors
    /// When a port cannot be bound.
    pub fn bind(ip: IpAddr, s: &VhostSettings) -> anyhow::Result<Self> {
        let bind = |port: Option<u16>, key: &str| -> anyhow::Result<Option<TcpListener>> {
            let Some(port) = port else { return Ok(None) };
            let addr = SocketAddr::new(ip, port);
            let std = std::net::TcpListener::bind(addr)
                .with_context(|| format!("binding {key} {addr}"))?;
            std.set_nonblocking(true)?;
            Ok(Some(TcpListener::from_std(std)?))
        };
        Ok(Self {
            http: bind(s.http_port, "vhostHTTPPort")?,
            https: bind(s.https_port, "vhostHTTPSPort")?,
        })
    }

    /// The bound addresses (http, https).
    pub fn addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        let addr = |l: &Option<TcpListener>| l.as_ref().and_then(|l| l.local_addr().ok());
        (addr(&self.http), addr(&self.https))
    }
}

/// Starts the accept loops on `tasks`; they end when the server shuts down.
pub(crate) fn spawn(listeners: Listeners, shared: &Arc<Shared>, tasks: &TaskTracker) {
    let settings = shared.settings();
    let s = &settings.vhost;
    let admission = Admission::new(s.max_connections, s.max_connections_per_ip);
    let throttle = Arc::new(throttle::AuthThrottle::new(
        s.auth_max_failures,
        s.auth_max_backoff,
    ));
    if let Some(acme) = &shared.acme {
        let registry = shared.registry.clone();
        let holds = move |name: &str| registry.holds_http(name);
        tasks.spawn(Arc::clone(acme).renew_loop(holds, shared.shutdown.clone()));
    }
    if let Some(l) = listeners.http {
        let front = frontend(shared, "http", &throttle);
        let serve = move |tcp, peer, slot, shared: Arc<Shared>| {
            let front = Arc::clone(&front);
            async move {
                let io = VisitorIo::new(tcp, slot, front.body_idle);
                let conn = Conn {
                    peer,
                    state: io.state(),
                    sni: None,
                };
                serve_http(io, conn, front, &shared).await;
            }
        };
        tasks.spawn(accept_loop(l, Arc::clone(shared), admission.clone(), serve));
    }
    if let Some(l) = listeners.https {
        let front = frontend(shared, "https", &throttle);
        let serve = move |tcp, peer, slot, shared| {
            let front = Arc::clone(&front);
            async move { tls_front::serve_tls(tcp, peer, slot, front, shared).await }
        };
        tasks.spawn(accept_loop(l, Arc::clone(shared), admission, serve));
    }
}

fn frontend(
    shared: &Shared,
    scheme: &'static str,
    throttle: &Arc<throttle::AuthThrottle>,
) -> Arc<Frontend> {
    let settings = shared.settings();
    let s = &settings.vhost;
    let (http, https) = shared.vhost_addrs;
    let bound = if scheme == "http" { http } else { https };
    Arc::new(Frontend {
        registry: shared.registry.clone(),
        scheme,
        port: bound.map_or(0, |a| a.port()),
        https_port: https.map(|a| a.port()),
        throttle: Arc::clone(throttle),
        timeout: s.response_timeout,
        body_idle: s.body_idle_timeout,
        upgrade_idle: s.upgrade_idle_timeout,
        access: shared.access.clone(),
        tracker: shared.streams.clone(),
        acme: shared.acme.clone(),
    })
}

/// Accepts until shutdown; each admitted connection is served by `serve` in its own tracked
/// task, and holds its [`Slot`] for as long as its socket lives.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shared: Arc<Shared>,
    admission: Admission,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, Slot, Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().ok();
    info!(?addr, "vhost listener started");
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let slot = match admission.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(limit) => {
                        debug!(%peer, ?limit, "too many vhost connections; resetting");
                        frp_runtime::splice::reset_tcp(tcp);
                        continue;
                    }
                };
                io::tune(&tcp);
                shared
                    .streams
                    .spawn(serve(tcp, peer, slot, Arc::clone(&shared)));
            }
            Err(e) => {
                warn!(error = %e, "accepting vhost connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves HTTP/1.1 on one connection (plain, or TLS terminated) until it closes; on shutdown
/// it finishes the request in flight and closes.
async fn serve_http<I>(io: I, conn: Conn, front: Arc<Frontend>, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    let for_service = Arc::clone(&conn);
    let access = front.access.clone();
    let scheme = front.scheme;
    let service =
        service_fn(move |req| service::handle(Arc::clone(&front), Arc::clone(&for_service), req));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUF)
        .max_header_size(MAX_BUF)
        .max_headers(MAX_HEADERS);
    let served = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(served);
    let result = tokio::select! {
        r = served.as_mut() => r,
        _ = shared.shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        debug!(peer = %conn.peer, error = %e, "http connection ended with an error");
        log_refused(&e, &conn, scheme, &access);
    }
}

/// An access line for a request hyper answered (or dropped) itself: an unparsable head
/// (`400`), one too large (`431`), or a head that did not arrive in time (`408`, logged only
/// when it had started: a connection that sent nothing, or idled after its requests, is
/// not a request).
fn log_refused(e: &hyper::Error, conn: &Conn, scheme: &'static str, access: &AccessLog) {
    let state: &ConnState = &conn.state;
    let started =
        state.bytes_in.load(Ordering::Relaxed) > 0 && state.requests.load(Ordering::Relaxed) == 0;
    let status = match () {
        () if e.is_parse_too_large() => 431,
        () if e.is_parse() => 400,
        () if e.is_timeout() && started => 408,
        () => return,
    };
    access.write(AccessEntry {
        client: conn.peer,
        scheme,
        status,
        ..AccessEntry::placeholder()
    });
}
