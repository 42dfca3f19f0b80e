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
mod auth;
pub mod backend;
mod cors;
pub mod policy;
pub mod routes;
mod service;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use frp_proto::{ProxyId, ProxyName};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

pub use access::{AccessEntry, AccessLog};
pub use service::Frontend;
pub use tls::CertStore;

use crate::domains::DomainPattern;
use crate::proxy::{forward, OpenStream};
use crate::server::Shared;
use routes::TlsRoute;

/// Connections open at once on each vhost port; more are reset.
const MAX_CONNECTIONS: usize = 10_000;
/// How long a client may take to send a request's head (and idle between requests).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The virtual-host part of the server settings.
#[derive(Clone, Debug)]
pub struct VhostSettings {
    /// `vhostHTTPPort` (`Some(0)`: any free port, for tests); `None` serves no http proxies.
    pub http_port: Option<u16>,
    /// `vhostHTTPSPort`, likewise for https proxies and TLS termination.
    pub https_port: Option<u16>,
    /// `vhostHTTPTimeout`: how long a backend may take to send its response head.
    pub response_timeout: Duration,
    /// `subDomainHost`: a proxy's `subdomain` becomes `NAME.<this>`.
    pub subdomain_host: Option<DomainPattern>,
    /// Certificates for TLS termination, by name.
    pub certificates: CertStore,
}

impl Default for VhostSettings {
    fn default() -> Self {
        Self {
            http_port: None,
            https_port: None,
            response_timeout: Duration::from_secs(60),
            subdomain_host: None,
            certificates: CertStore::default(),
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
    pub conn: quinn::Connection,
    /// Connections open at once on this proxy.
    pub active: Arc<Semaphore>,
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
    if let Some(l) = listeners.http {
        let front = frontend(shared, "http");
        tasks.spawn(accept_loop(
            l,
            Arc::clone(shared),
            move |tcp, peer, shared| {
                let front = Arc::clone(&front);
                async move { serve_http(TokioIo::new(tcp), peer, front, &shared).await }
            },
        ));
    }
    if let Some(l) = listeners.https {
        let front = frontend(shared, "https");
        tasks.spawn(accept_loop(
            l,
            Arc::clone(shared),
            move |tcp, peer, shared| {
                let front = Arc::clone(&front);
                async move { serve_tls(tcp, peer, front, shared).await }
            },
        ));
    }
}

fn frontend(shared: &Shared, scheme: &'static str) -> Arc<Frontend> {
    Arc::new(Frontend {
        registry: shared.registry.clone(),
        scheme,
        timeout: shared.settings.vhost.response_timeout,
        access: shared.access.clone(),
        tracker: shared.streams.clone(),
    })
}

/// Accepts until shutdown; each connection is served by `serve` in its own tracked task.
async fn accept_loop<F, Fut>(listener: TcpListener, shared: Arc<Shared>, serve: F)
where
    F: Fn(TcpStream, SocketAddr, Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().ok();
    info!(?addr, "vhost listener started");
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
                    debug!(%peer, "too many vhost connections; resetting");
                    frp_runtime::splice::reset_tcp(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let fut = serve(tcp, peer, Arc::clone(&shared));
                shared.streams.spawn(held(permit, fut));
            }
            Err(e) => {
                warn!(error = %e, "accepting vhost connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn held(permit: OwnedSemaphorePermit, fut: impl std::future::Future<Output = ()>) {
    let _permit = permit;
    fut.await;
}

/// Serves HTTP/1.1 on one connection (plain, or TLS terminated) until it closes; on shutdown
/// it finishes the request in flight and closes.
async fn serve_http<I>(io: TokioIo<I>, peer: SocketAddr, front: Arc<Frontend>, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| service::handle(Arc::clone(&front), peer, req));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "http connection ended with an error");
    }
}

/// Reads the ClientHello and passes the connection through, terminates it, or closes it.
async fn serve_tls(
    mut tcp: TcpStream,
    peer: SocketAddr,
    front: Arc<Frontend>,
    shared: Arc<Shared>,
) {
    let hello = match tokio::time::timeout(tls::HELLO_TIMEOUT, tls::read_hello(&mut tcp)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return debug!(%peer, error = %e, "tls connection closed before routing"),
        Err(_) => return debug!(%peer, "no client hello in time; closing"),
    };
    let Some(sni) = hello.sni else {
        return debug!(%peer, "client hello without a server name; closing");
    };
    if let TlsRoute::Passthrough(target) = shared.registry.lookup_tls(&sni) {
        return passthrough(tcp, peer, hello.bytes, &target, &shared).await;
    }
    let Some(config) = shared.settings.vhost.certificates.find(&sni) else {
        return debug!(%peer, %sni, "no https proxy or certificate for this name; closing");
    };
    match tls::terminate(tcp, hello.bytes, config, peer).await {
        Ok(stream) => serve_http(TokioIo::new(stream), peer, front, &shared).await,
        Err(e) => debug!(%peer, %sni, error = %e, "tls handshake failed"),
    }
}

/// Forwards the raw TLS connection, its hello first, to the https proxy's client.
async fn passthrough(
    tcp: TcpStream,
    peer: SocketAddr,
    hello: bytes::Bytes,
    t: &TlsTarget,
    shared: &Shared,
) {
    let Ok(active) = Arc::clone(&t.active).try_acquire_owned() else {
        debug!(proxy = %t.name, %peer, "too many open connections; resetting");
        return frp_runtime::splice::reset_tcp(tcp);
    };
    let open = OpenStream {
        conn: t.conn.clone(),
        id: t.id,
        name: t.name.clone(),
        timeout: shared.settings.open_stream_timeout,
        permit: None,
        _active: active,
        gauges: shared.gauges.clone(),
    };
    forward(open, tcp, peer, hello).await;
}
