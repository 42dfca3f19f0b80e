//! `frps.toml`: frp's key names, validated into [`ServerSettings`] before anything binds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use frp_admin::{WebServerSection, WebServerSettings};
use frp_runtime::config::{
    error_chain, load_toml, parse_toml, resolve, QuicSection, TlsSection, Unsupported,
};
use frp_runtime::handshake::HandshakeLimits;
use frp_runtime::transport::EndpointSecret;
use frp_runtime::{ConfigError, QuicTuning};
use serde::Deserialize;

use crate::budget::DEFAULT_MAX_CONNECTIONS_PER_CLIENT;
use crate::config_vhost::{check_subdomain_host, domain_policy, vhost_settings};
pub use crate::config_vhost::{CertEntry, VhostHttpsSection};
use crate::domains::DomainPolicy;
use crate::identity::canonical;
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
/// Connections to one public tcp port from one source address, as `vhostMaxConnectionsPerIP`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
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
    /// Connections one client's proxies hold at once, half reserved per proxy (default 8000).
    pub max_connections_per_client: Option<usize>,
    /// Connections to one public tcp port from one IPv4 address or IPv6 /64 (default 256).
    #[serde(rename = "maxConnectionsPerIP")]
    pub max_connections_per_ip: Option<usize>,
    /// Takeovers of one identity's live connection allowed within a minute (default 3).
    pub max_takeovers_per_minute: Option<usize>,
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
    /// Wrong basic-auth passwords from one address before it must wait (default 10).
    pub vhost_auth_max_failures: Option<u32>,
    /// Seconds of the longest such wait (default 600).
    pub vhost_auth_max_backoff: Option<u64>,
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
    /// `webServer.*`: the admin API (off unless `webServer.port` is set).
    #[serde(default)]
    pub web_server: WebServerSection,
    /// Serve Prometheus metrics on the admin server's `/metrics`.
    pub enable_prometheus: Option<bool>,
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
    /// The TCP port for frpc over the TCP transport (default: `bindPort`; 0: none).
    pub tcp_port: Option<u16>,
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
    /// Where frpc connects over the TCP transport (`transport.tcpPort`); `None`: only on
    /// `vhostHTTPSPort`, by ALPN, when that is set.
    pub tcp_bind: Option<SocketAddr>,
    /// Whether failing to bind `tcp_bind` stops frps (`transport.tcpPort` set) or is only
    /// warned about (the default port, which something else may hold).
    pub tcp_required: bool,
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
    /// restarted frps resets its old clients' connections at once (`None`, for settings made
    /// in code: a random one when the server binds).
    pub endpoint_secret: Option<EndpointSecret>,
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
    /// Connections one client's proxies hold at once (`maxConnectionsPerClient`); half of it
    /// is reserved in equal parts for its proxies (see [`crate::budget`]).
    pub max_connections_per_client: usize,
    /// Connections to one public tcp port from one IPv4 address or IPv6 /64
    /// (`maxConnectionsPerIP`), four times that from one IPv6 /48; more are reset.
    pub max_connections_per_ip: usize,
    /// Proxies one client may publish (`maxPortsPerClient`); at most the wire limit.
    pub max_proxies_per_client: usize,
    /// Takeovers of one identity's live connection within a minute before the next is
    /// refused as flapping (`maxTakeoversPerMinute`).
    pub max_takeovers_per_minute: usize,
    /// Where the revocation list is reread from on SIGHUP.
    pub revocation_file: Option<PathBuf>,
    /// The revocation list in force at start.
    pub revoked: Revocations,
    /// The HTTP and HTTPS virtual hosts.
    pub vhost: VhostSettings,
    /// Who may claim which domains.
    pub domains: DomainPolicy,
    /// The admin web server (`[webServer]`), when `webServer.port` is set.
    pub web: Option<WebServerSettings>,
}

impl ServerSettings {
    /// Settings with frp's defaults around a TLS config: bind 0.0.0.0:7000, no ports allowed.
    pub fn new(tls: Arc<rustls::ServerConfig>) -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_BIND_PORT),
            tcp_bind: None,
            tcp_required: true,
            proxy_bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            policy: PortPolicy::default(),
            tls,
            quic: QuicTuning::with_streams(CLIENT_STREAM_LIMIT),
            handshakes: HandshakeLimits::default(),
            endpoint_secret: None,
            grace: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            open_stream_timeout: Duration::from_secs(10),
            max_pending_per_proxy: DEFAULT_MAX_PENDING,
            max_connections_per_proxy: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_proxies_per_client: frp_proto::MAX_PROXIES,
            max_takeovers_per_minute: crate::takeover::DEFAULT_LIMIT,
            revocation_file: None,
            revoked: Revocations::default(),
            vhost: VhostSettings::default(),
            domains: DomainPolicy::default(),
            web: None,
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

    /// Validates `text` as the contents of the file at `path` (a reload reads it once).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and what is wrong.
    pub fn from_text(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file: ServerFile = parse_toml(path, text, UNSUPPORTED)?;
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
        s.tcp_bind = match file.transport.tcp_port.unwrap_or(s.bind.port()) {
            0 => None,
            port => Some(SocketAddr::new(ip, port)),
        };
        s.tcp_required = file.transport.tcp_port.is_some();
        s.policy = policy(&file).map_err(err)?;
        s.quic = file.transport.quic.tuning(path, s.quic)?;
        s.handshakes = file.transport.quic.handshake_limits(path)?;
        let key =
            frp_certs::load_key(&files.key).map_err(|e| err(format!("transport.tls: {e}")))?;
        s.endpoint_secret = Some(EndpointSecret::from_key(key.secret_der()));
        if let Some(g) = file.graceful_shutdown_timeout {
            s.grace = Duration::from_secs(g);
        }
        crate::config_limits::apply_limits(&mut s, &file).map_err(err)?;
        s.vhost = vhost_settings(path, &file).map_err(err)?;
        s.domains = domain_policy(&file).map_err(err)?;
        check_subdomain_host(&s.vhost, &s.domains).map_err(err)?;
        let prometheus = file.enable_prometheus.unwrap_or(false);
        s.web = file.web_server.settings(path, prometheus)?;
        if let Some(list) = &file.revocation_file {
            let list = resolve(path, list);
            s.revoked =
                Revocations::load(&list).map_err(|e| err(format!("revocationFile: {e}")))?;
            s.revocation_file = Some(list);
        }
        Ok(s)
    }
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
            per_client.insert(canonical(&c.name), set);
        }
    }
    let mut names: Vec<&str> = file.clients.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable_by_key(|n| canonical(n));
    match names.windows(2).find(|w| w[0].eq_ignore_ascii_case(w[1])) {
        Some([a, b]) if a == b => Err(format!("[[clients]] name {a:?} appears twice")),
        Some([a, b]) => Err(format!(
            "[[clients]] names {a:?} and {b:?} differ only in case; identities ignore case, \
             so they are one client: merge the two entries"
        )),
        _ => Ok(PortPolicy { global, per_client }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_entry_narrows_its_identity_in_any_case() {
        let text =
            "allowPorts = [{ start = 6000, end = 6100 }]\nallowDomains = [\"*.example.com\"]\n\
                    [[clients]]\nname = \"Narrow\"\nallowPorts = [{ single = 6001 }]\n\
                    allowDomains = [\"n.example.com\"]\n";
        let file: ServerFile = toml::from_str(text).unwrap();
        let ports = policy(&file).unwrap();
        assert!(ports.check("NARROW", 6001).is_ok());
        for who in ["narrow", "NARROW", "Narrow"] {
            assert!(ports.check(who, 6002).is_err(), "{who}");
        }
        let domains = domain_policy(&file).unwrap();
        let wide = crate::domains::DomainPattern::parse("w.example.com").unwrap();
        assert!(domains.check("nARROW", &wide).is_err());
    }
}
