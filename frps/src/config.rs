//! `frps.toml`: frp's key names, validated into [`ServerSettings`] before anything binds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use frp_runtime::config::{error_chain, load_toml, resolve, QuicSection, TlsSection, Unsupported};
use frp_runtime::handshake::HandshakeLimits;
use frp_runtime::transport::EndpointSecret;
use frp_runtime::{ConfigError, QuicTuning};
use serde::Deserialize;

use crate::config_vhost::{check_subdomain_host, domain_policy, vhost_settings};
pub use crate::config_vhost::{CertEntry, VhostHttpsSection};
use crate::domains::DomainPolicy;
use crate::policy::{PortPolicy, PortRangeEntry, PortSet};
use crate::revocation::Revocations;
use crate::vhost::VhostSettings;

/// Default UDP port for clients, as frp's `bindPort`.
pub const DEFAULT_BIND_PORT: u16 = 7000;
/// Public connections per proxy that may wait for a stream at once.
pub const DEFAULT_MAX_PENDING: usize = 128;
/// Public connections per proxy open at once: half of frpc's default stream limit, so one
/// busy proxy leaves room for the client's others.
pub const DEFAULT_MAX_CONNECTIONS: usize = 5_000;
/// Streams a client may open toward the server: only its control stream.
pub const CLIENT_STREAM_LIMIT: u32 = 1;

/// The file as written, with frp's key names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerFile {
    /// IP address of the QUIC (UDP) endpoint.
    pub bind_addr: Option<IpAddr>,
    /// UDP port of the QUIC endpoint.
    pub bind_port: Option<u16>,
    /// IP address public TCP listeners bind (defaults to `bindAddr`).
    pub proxy_bind_addr: Option<IpAddr>,
    /// Ports any client may publish; none means nothing may be published.
    pub allow_ports: Option<Vec<PortRangeEntry>>,
    /// Seconds open streams may take to finish on shutdown (default 10).
    pub graceful_shutdown_timeout: Option<u64>,
    /// Certificates to refuse: one serial or SHA-256 fingerprint per line; reread on SIGHUP.
    pub revocation_file: Option<PathBuf>,
    /// Proxies one client may publish; 0 or absent means the protocol's limit (256).
    pub max_ports_per_client: Option<usize>,
    /// Public connections per proxy that may wait for their stream at once (default 128).
    pub max_pending_connections_per_proxy: Option<usize>,
    /// Public connections per proxy open at once (default 5000).
    pub max_connections_per_proxy: Option<usize>,
    /// TCP port of the HTTP virtual hosts; 0 or absent: none.
    #[serde(rename = "vhostHTTPPort")]
    pub vhost_http_port: Option<u16>,
    /// TCP port of the HTTPS virtual hosts (SNI passthrough and termination); 0 or absent: none.
    #[serde(rename = "vhostHTTPSPort")]
    pub vhost_https_port: Option<u16>,
    /// Seconds a backend may take to send its response head (default 60).
    #[serde(rename = "vhostHTTPTimeout")]
    pub vhost_http_timeout: Option<u64>,
    /// Seconds a request body may send nothing, and a visitor read nothing (default 60).
    pub vhost_body_idle_timeout: Option<u64>,
    /// Seconds an upgraded (WebSocket) connection may carry nothing either way (default 3600).
    pub vhost_upgrade_idle_timeout: Option<u64>,
    /// Connections open at once on the vhost ports (default 10000).
    #[serde(rename = "vhostMaxConnections")]
    pub vhost_max_connections: Option<usize>,
    /// Of those, from one IPv4 address or IPv6 /64 (default 256).
    #[serde(rename = "vhostMaxConnectionsPerIP")]
    pub vhost_max_connections_per_ip: Option<usize>,
    /// Parent domain of the proxies' `subdomain`s.
    pub sub_domain_host: Option<String>,
    /// Domains any client may claim; none means no http/https proxy may be registered.
    pub allow_domains: Option<Vec<String>>,
    /// `[vhostHTTPS]`: certificates for TLS termination.
    #[serde(rename = "vhostHTTPS")]
    pub vhost_https: Option<VhostHttpsSection>,
    /// `transport.*`.
    #[serde(default)]
    pub transport: ServerTransport,
    /// Per-identity settings.
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
}

/// `transport` in frps.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerTransport {
    /// `transport.tls`.
    #[serde(default)]
    pub tls: TlsSection,
    /// `transport.quic`.
    #[serde(default)]
    pub quic: QuicSection,
}

/// A `[[clients]]` entry: settings for one client identity (its certificate's name).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientEntry {
    /// The identity: the common name in the client's certificate.
    pub name: String,
    /// Narrows the global `allowPorts` for this identity.
    pub allow_ports: Option<Vec<PortRangeEntry>>,
    /// Narrows the global `allowDomains` for this identity.
    pub allow_domains: Option<Vec<String>>,
}

/// frp keys that frps refuses by name, with what to use instead.
pub const UNSUPPORTED: &[Unsupported] = &[
    Unsupported { key: "token", hint: "clients authenticate with certificates (mutual TLS); issue one with `frps ca issue NAME`" },
    Unsupported { key: "auth", hint: "clients authenticate with certificates (mutual TLS); issue one with `frps ca issue NAME`" },
    Unsupported { key: "kcpBindPort", hint: "frp-quic speaks QUIC only, on bindPort (UDP)" },
    Unsupported { key: "quicBindPort", hint: "bindPort already is the QUIC (UDP) port" },
    Unsupported { key: "tcpmuxHTTPConnectPort", hint: "tcpmux is not supported; use tcp proxies" },
    Unsupported { key: "custom404Page", hint: "frps answers unknown hosts with its own short 404 page" },
    Unsupported { key: "webServer", hint: "the dashboard and admin API are not available yet" },
    Unsupported { key: "enablePrometheus", hint: "metrics are not available yet" },
    Unsupported { key: "log", hint: "logs go to stderr; set the level with RUST_LOG and the format with --log-format" },
    Unsupported { key: "httpPlugins", hint: "server plugins are not supported" },
    Unsupported { key: "sshTunnelGateway", hint: "not supported" },
    Unsupported { key: "transport.tcpMux", hint: "QUIC multiplexes natively; remove the key" },
    Unsupported { key: "transport.tcpMuxKeepaliveInterval", hint: "use transport.quic.keepalivePeriod" },
    Unsupported { key: "transport.tcpKeepalive", hint: "use transport.quic.keepalivePeriod" },
    Unsupported { key: "transport.maxPoolCount", hint: "streams are opened on demand; there is no pool" },
    Unsupported { key: "transport.heartbeatTimeout", hint: "use transport.quic.maxIdleTimeout" },
    Unsupported { key: "transport.tls.force", hint: "mutual TLS is always required; remove the key" },
];

/// Everything frps needs to run, validated.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// The QUIC endpoint's address.
    pub bind: SocketAddr,
    /// The IP address public TCP listeners bind.
    pub proxy_bind_ip: IpAddr,
    /// Who may publish which ports.
    pub policy: PortPolicy,
    /// TLS: the server certificate and the CA that client certificates must chain to.
    pub tls: Arc<rustls::ServerConfig>,
    /// QUIC keep-alive, idle timeout and stream limit.
    pub quic: QuicTuning,
    /// Which handshakes are taken on: Retry, per-address limit, timeout (`transport.quic.*`).
    pub handshakes: HandshakeLimits,
    /// What connection IDs and stateless resets are derived from: from the TLS key, so a
    /// restarted frps resets its old clients' connections at once (random by default).
    pub endpoint_secret: EndpointSecret,
    /// How long open streams may take to finish once shutdown starts.
    pub grace: Duration,
    /// How long a new connection may take to send its `Hello`.
    pub hello_timeout: Duration,
    /// How long a public connection waits for a stream in the client's connection.
    pub open_stream_timeout: Duration,
    /// Public connections per proxy that may wait for their stream at once; while full, the
    /// proxy's listener stops accepting.
    pub max_pending_per_proxy: usize,
    /// Public connections per proxy open at once; more are reset.
    pub max_connections_per_proxy: usize,
    /// Proxies one client may publish (`maxPortsPerClient`); at most the wire limit.
    pub max_proxies_per_client: usize,
    /// Where the revocation list is reread from on SIGHUP.
    pub revocation_file: Option<PathBuf>,
    /// The revocation list in force at start.
    pub revoked: Revocations,
    /// The HTTP and HTTPS virtual hosts.
    pub vhost: VhostSettings,
    /// Who may claim which domains.
    pub domains: DomainPolicy,
}

impl ServerSettings {
    /// Settings with frp's defaults around a TLS config: bind 0.0.0.0:7000, no ports allowed.
    pub fn new(tls: Arc<rustls::ServerConfig>) -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_BIND_PORT),
            proxy_bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            policy: PortPolicy::default(),
            tls,
            quic: QuicTuning::with_streams(CLIENT_STREAM_LIMIT),
            handshakes: HandshakeLimits::default(),
            endpoint_secret: EndpointSecret::random(),
            grace: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            open_stream_timeout: Duration::from_secs(10),
            max_pending_per_proxy: DEFAULT_MAX_PENDING,
            max_connections_per_proxy: DEFAULT_MAX_CONNECTIONS,
            max_proxies_per_client: frp_proto::MAX_PROXIES,
            revocation_file: None,
            revoked: Revocations::default(),
            vhost: VhostSettings::default(),
            domains: DomainPolicy::default(),
        }
    }

    /// Loads and validates `path`, including reading the certificates and key.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and what is wrong.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let file: ServerFile = load_toml(path, UNSUPPORTED)?;
        Self::from_parsed(path, file)
    }

    /// Validates an already parsed file (`path` is for messages and relative paths).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and what is wrong.
    pub fn from_parsed(path: &Path, file: ServerFile) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::new(path, m);
        let files = file.transport.tls.files(path)?;
        let tls = frp_certs::load_server_tls(&files.cert, &files.key, &files.ca)
            .map_err(|e| err(format!("transport.tls: {}", error_chain(&e))))?;
        let mut s = Self::new(Arc::new(tls));
        let ip = file.bind_addr.unwrap_or(s.bind.ip());
        s.bind = SocketAddr::new(ip, file.bind_port.unwrap_or(DEFAULT_BIND_PORT));
        s.proxy_bind_ip = file.proxy_bind_addr.unwrap_or(ip);
        s.policy = policy(&file).map_err(err)?;
        s.quic = file.transport.quic.tuning(path, s.quic)?;
        s.handshakes = file.transport.quic.handshake_limits(path)?;
        let key =
            frp_certs::load_key(&files.key).map_err(|e| err(format!("transport.tls: {e}")))?;
        s.endpoint_secret = EndpointSecret::from_key(key.secret_der());
        if let Some(g) = file.graceful_shutdown_timeout {
            s.grace = Duration::from_secs(g);
        }
        apply_limits(&mut s, &file).map_err(err)?;
        s.vhost = vhost_settings(path, &file).map_err(err)?;
        s.domains = domain_policy(&file).map_err(err)?;
        check_subdomain_host(&s.vhost, &s.domains).map_err(err)?;
        if let Some(list) = &file.revocation_file {
            let list = resolve(path, list);
            s.revoked =
                Revocations::load(&list).map_err(|e| err(format!("revocationFile: {e}")))?;
            s.revocation_file = Some(list);
        }
        Ok(s)
    }
}

fn apply_limits(s: &mut ServerSettings, file: &ServerFile) -> Result<(), String> {
    let wire = frp_proto::MAX_PROXIES;
    match file.max_ports_per_client {
        None | Some(0) => {}
        Some(n) if n <= wire => s.max_proxies_per_client = n,
        Some(n) => return Err(format!("`maxPortsPerClient = {n}`: at most {wire}")),
    }
    match file.max_connections_per_proxy {
        None => {}
        Some(n) if (1..=1_000_000).contains(&n) => s.max_connections_per_proxy = n,
        Some(n) => {
            return Err(format!(
                "`maxConnectionsPerProxy = {n}`: must be between 1 and 1000000"
            ))
        }
    }
    match file.max_pending_connections_per_proxy {
        None => {}
        Some(n) if (1..=65_536).contains(&n) => s.max_pending_per_proxy = n,
        Some(n) => {
            return Err(format!(
                "`maxPendingConnectionsPerProxy = {n}`: must be between 1 and 65536"
            ))
        }
    }
    Ok(())
}

fn policy(file: &ServerFile) -> Result<PortPolicy, String> {
    let global = PortSet::from_entries(file.allow_ports.as_deref().unwrap_or_default())
        .map_err(|e| format!("allowPorts: {e}"))?;
    let mut per_client = HashMap::new();
    for (i, c) in file.clients.iter().enumerate() {
        frp_certs::validate_identity(&c.name)
            .map_err(|e| format!("clients[{i}].name = {:?}: {e}", c.name))?;
        if let Some(entries) = &c.allow_ports {
            let set = PortSet::from_entries(entries)
                .map_err(|e| format!("clients[{i}].allowPorts: {e}"))?;
            per_client.insert(c.name.clone(), set);
        }
    }
    let mut names: Vec<&str> = file.clients.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("[[clients]] name {:?} appears twice", w[0]));
    }
    Ok(PortPolicy { global, per_client })
}
