//! End-to-end harness: frps and frpc in-process on loopback, certificates made in memory.
//!
//! Every port is bound to `:0` and read back; readiness comes from the status channels the
//! libraries publish, never from sleeps; every wait is under [`TIMEOUT`].

pub mod backends;
pub mod browser;
pub mod deployment;
pub mod flood;
pub mod frpc_admin;
pub mod frps_admin;
pub mod http;
pub mod kube;
pub mod pebble;
pub mod procs;
pub mod prometheus;
pub mod raw;
pub mod rawhttp;
pub mod relay;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use frp_certs::{Ca, Issued};
use frp_proto::{ProxyKind, ProxyName, VhostSpec};
use frpc::{Client, ClientError, ClientSettings, ClientStatus, LocalProxy};
use frps::policy::{PortPolicy, PortSet};
use frps::{Server, ServerSettings, ServerStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound for any single wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Loopback.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Awaits `f` under [`TIMEOUT`], panicking with `what` if it takes longer.
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {TIMEOUT:?}: {what}"),
    }
}

/// Installs a test log subscriber once (honours `RUST_LOG`; silent by default).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A throw-away deployment PKI: a CA and a server certificate for localhost/127.0.0.1.
#[derive(Debug)]
pub struct Pki {
    /// The CA.
    pub ca: Ca,
    /// The server's certificate.
    pub server: Issued,
}

impl Pki {
    /// Makes a fresh CA and server certificate.
    pub fn new() -> Self {
        let ca = Ca::generate("test CA").expect("ca");
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        let server = ca.issue_server(&names).expect("server cert");
        Self { ca, server }
    }

    /// Server TLS presenting `cert`, trusting this CA for clients.
    pub fn server_tls_with(&self, cert: &Issued) -> Arc<rustls::ServerConfig> {
        let cfg = frp_certs::server_tls_config(
            vec![cert.cert_der()],
            cert.key_der(),
            vec![self.ca.cert_der()],
        );
        Arc::new(cfg.expect("server tls"))
    }

    /// Server TLS with the normal server certificate.
    pub fn server_tls(&self) -> Arc<rustls::ServerConfig> {
        self.server_tls_with(&self.server)
    }

    /// Client TLS presenting `cert`, trusting this CA for the server.
    pub fn client_tls_with(&self, cert: &Issued) -> Arc<rustls::ClientConfig> {
        let cfg = frp_certs::client_tls_config(
            vec![cert.cert_der()],
            cert.key_der(),
            vec![self.ca.cert_der()],
        );
        Arc::new(cfg.expect("client tls"))
    }

    /// Client TLS for a fresh certificate of `identity`.
    pub fn client_tls(&self, identity: &str) -> Arc<rustls::ClientConfig> {
        self.client_tls_with(&self.ca.issue_client(identity).expect("client cert"))
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// Server settings on 127.0.0.1:0 allowing `ports` to everyone, with short timeouts.
pub fn server_settings(pki: &Pki, ports: RangeInclusive<u16>) -> ServerSettings {
    let mut s = ServerSettings::new(pki.server_tls());
    s.bind = SocketAddr::new(LOCALHOST, 0);
    s.proxy_bind_ip = LOCALHOST;
    s.policy = PortPolicy {
        global: PortSet::from_ranges([ports]),
        ..Default::default()
    };
    s.grace = Duration::from_secs(5);
    s
}

/// Client settings for `server` with quick reconnects.
pub fn client_settings(
    tls: Arc<rustls::ClientConfig>,
    server: SocketAddr,
    proxies: Vec<LocalProxy>,
) -> ClientSettings {
    let mut s = ClientSettings::new(server.ip().to_string(), server.port(), tls);
    s.server_name = "localhost".into();
    // QUIC only: `auto` would also dial TCP to the same port number whenever the server is
    // down, where another test may listen. The TCP transport's tests set it themselves.
    s.protocol = frpc::config_transport::Protocol::Quic;
    s.proxies = proxies;
    s.backoff.min = Duration::from_millis(50);
    s.backoff.max = Duration::from_millis(500);
    s.connect_timeout = Duration::from_secs(5);
    s.grace = Duration::from_secs(5);
    s
}

/// A TCP proxy to `local` asking for `remote_port` (0: server picks).
pub fn tcp_proxy(name: &str, local: SocketAddr, remote_port: u16) -> LocalProxy {
    LocalProxy {
        name: ProxyName::new(name).expect("name"),
        kind: ProxyKind::Tcp,
        local_host: local.ip().to_string(),
        local_port: local.port(),
        remote_port,
        vhost: Default::default(),
        idle_timeout: None,
    }
}

/// An http proxy to `local` for `domains`, with `vhost` settings beyond the names.
pub fn http_proxy(name: &str, local: SocketAddr, domains: &[&str], vhost: VhostSpec) -> LocalProxy {
    vhost_proxy(ProxyKind::Http, name, local, domains, vhost)
}

/// An https (SNI passthrough) proxy to `local` for `domains`.
pub fn https_proxy(name: &str, local: SocketAddr, domains: &[&str]) -> LocalProxy {
    vhost_proxy(ProxyKind::Https, name, local, domains, VhostSpec::default())
}

fn vhost_proxy(
    kind: ProxyKind,
    name: &str,
    local: SocketAddr,
    domains: &[&str],
    vhost: VhostSpec,
) -> LocalProxy {
    let custom_domains = domains.iter().map(|d| d.to_string()).collect();
    LocalProxy {
        vhost: VhostSpec {
            custom_domains,
            ..vhost
        },
        kind,
        ..tcp_proxy(name, local, 0)
    }
}

/// Server settings with both vhost ports on 127.0.0.1:0 and `allow` as `allowDomains`.
pub fn vhost_settings(pki: &Pki, allow: &[&str]) -> ServerSettings {
    let mut s = server_settings(pki, 1..=1);
    s.vhost.http_port = Some(0);
    s.vhost.https_port = Some(0);
    let allow: Vec<String> = allow.iter().map(|d| d.to_string()).collect();
    s.domains.global = frps::domains::DomainSet::parse(&allow).expect("allowDomains");
    s
}

/// A running in-process frps.
#[derive(Debug)]
pub struct TestServer {
    /// Its QUIC address.
    pub addr: SocketAddr,
    /// Its `transport.tcpPort`, when configured.
    pub tcp: Option<SocketAddr>,
    /// Its `vhostHTTPPort`, when configured.
    pub http: Option<SocketAddr>,
    /// Its `vhostHTTPSPort`, when configured.
    pub https: Option<SocketAddr>,
    /// Its access log, from start.
    pub access: tokio::sync::broadcast::Receiver<frps::AccessEntry>,
    /// Its status channel.
    pub status: watch::Receiver<ServerStatus>,
    /// Its resource counters.
    pub gauges: frps::ServerGauges,
    /// Rereads its revocation list, as SIGHUP does.
    pub reloader: frps::Reloader,
    /// Its admin API, called in process (no listener).
    pub api: Arc<frps::ServerApi>,
    cancel: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Binds and starts a server.
    pub fn start(settings: ServerSettings) -> Self {
        let server = Server::bind(settings).expect("bind server");
        let addr = server.local_addr().expect("server addr");
        let (http, https) = (server.vhost_http_addr(), server.vhost_https_addr());
        let tcp = server.tcp_addr();
        let access = server.access_log();
        let status = server.status();
        let (gauges, reloader) = (server.gauges(), server.reloader());
        let api = server.api(None).expect("server api");
        let cancel = CancellationToken::new();
        let task = tokio::spawn(server.run(cancel.clone()));
        Self {
            addr,
            tcp,
            http,
            https,
            access,
            status,
            gauges,
            reloader,
            api,
            cancel,
            task,
        }
    }

    /// The next access-log entry.
    pub async fn next_access(&mut self) -> frps::AccessEntry {
        within("access log entry", self.access.recv())
            .await
            .expect("access log")
    }

    /// Waits until `pred` holds for the server's status.
    pub async fn wait_for(&mut self, what: &str, pred: impl FnMut(&ServerStatus) -> bool) {
        within(what, self.status.wait_for(pred))
            .await
            .expect("server status channel");
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_stop(&self) {
        self.cancel.cancel();
    }

    /// Shuts down gracefully and returns what `run` returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        within("server shutdown", self.task)
            .await
            .expect("server task panicked")
    }
}

/// A running in-process frpc.
#[derive(Debug)]
pub struct TestClient {
    /// Its status channel.
    pub status: watch::Receiver<ClientStatus>,
    /// Its resource counters.
    pub gauges: frpc::ClientGauges,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), ClientError>>,
}

impl TestClient {
    /// Starts a client.
    pub fn start(settings: ClientSettings) -> Self {
        let client = Client::new(settings).expect("client");
        let status = client.status();
        let gauges = client.gauges();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(client.run(cancel.clone()));
        Self {
            status,
            gauges,
            cancel,
            task,
        }
    }

    /// Starts a client with a fresh certificate for `identity`, connecting to `server` with
    /// [`client_settings`].
    pub fn connect(
        pki: &Pki,
        identity: &str,
        server: SocketAddr,
        proxies: Vec<LocalProxy>,
    ) -> Self {
        Self::start(client_settings(pki.client_tls(identity), server, proxies))
    }

    /// Starts a client with `cert` that, once its session is replaced or lost, waits ten
    /// minutes before reconnecting: it stays away for the rest of a test.
    pub fn start_stale(
        pki: &Pki,
        cert: &Issued,
        server: SocketAddr,
        proxies: Vec<LocalProxy>,
    ) -> Self {
        let mut settings = client_settings(pki.client_tls_with(cert), server, proxies);
        settings.backoff.min = Duration::from_secs(600);
        settings.backoff.max = Duration::from_secs(600);
        Self::start(settings)
    }

    /// Waits until `pred` holds for the client's status.
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl FnMut(&ClientStatus) -> bool,
    ) -> ClientStatus {
        within(what, self.status.wait_for(pred))
            .await
            .expect("client status channel")
            .clone()
    }

    /// Waits until proxy `name` is published and returns its public address.
    pub async fn bound(&mut self, name: &str) -> SocketAddr {
        let s = self
            .wait_for(&format!("proxy {name} bound"), |s| s.bound(name).is_some())
            .await;
        s.bound(name).expect("bound")
    }

    /// Waits until proxy `name` is refused and returns the reason.
    pub async fn refused(&mut self, name: &str) -> String {
        let s = self
            .wait_for(&format!("proxy {name} refused"), |s| {
                s.refused(name).is_some()
            })
            .await;
        s.refused(name).expect("refused").to_string()
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_stop(&self) {
        self.cancel.cancel();
    }

    /// Waits for the client to end by itself (e.g. a permanent refusal).
    pub async fn finished(self) -> Result<(), ClientError> {
        within("client to give up", self.task)
            .await
            .expect("client task panicked")
    }

    /// Shuts down gracefully and returns what `run` returned.
    pub async fn stop(self) -> Result<(), ClientError> {
        self.cancel.cancel();
        self.finished().await
    }
}

/// The path of `program` on `PATH`.
///
/// # Panics
/// When it is not installed, naming `why` a test needs it and how to install it (`install`).
pub fn installed(program: &str, why: &str, install: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not installed: {why} ({install})"))
}

/// A TCP port that was free a moment ago (bound on :0, read back, released).
pub fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind((LOCALHOST, 0)).expect("bind tcp :0");
    l.local_addr().expect("addr").port()
}

/// A UDP address that was free a moment ago (bound on :0, read back, released).
pub fn free_udp_addr() -> SocketAddr {
    let s = std::net::UdpSocket::bind((LOCALHOST, 0)).expect("bind udp :0");
    s.local_addr().expect("addr")
}

/// Whether a TCP port on loopback can be bound now (nothing holds it).
pub fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind((LOCALHOST, port)).is_ok()
}

/// Server settings allowing exactly `ports`.
pub fn server_allowing(pki: &Pki, ports: &[u16]) -> ServerSettings {
    let mut s = server_settings(pki, 1..=1);
    s.policy.global = PortSet::from_ranges(ports.iter().map(|p| *p..=*p));
    s
}

/// Polls `cond` every 20 ms until it holds, panicking with `what` after [`TIMEOUT`].
///
/// For state that has no change notification (counters, the process's file descriptors).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Number of file descriptors this process has open (sockets included).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
