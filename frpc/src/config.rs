//! `frpc.toml`: frp's key names, validated into [`ClientSettings`] before anything connects.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use frp_admin::{WebServerSection, WebServerSettings};
use frp_proto::{ProxyKind, ProxyName, ProxySpec, VhostSpec};
use frp_runtime::config::{
    error_chain, load_toml, parse_toml, QuicSection, TlsSection, Unsupported,
};
use frp_runtime::{ConfigError, QuicTuning};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::backoff::BackoffSettings;
pub use crate::config_http::{CorsSection, HeaderSection, Password};
use crate::config_transport::Protocol;

/// Streams the server may open toward the client at once: one per public connection in flight.
pub const SERVER_STREAM_LIMIT: u32 = 10_000;

/// The file as written, with frp's key names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientFile {
    /// Server host name or IP address.
    pub server_addr: Option<String>,
    /// Server UDP port.
    pub server_port: Option<u16>,
    /// Seconds open streams may take to finish on shutdown (default 10).
    pub graceful_shutdown_timeout: Option<u64>,
    /// `transport.*`.
    #[serde(default)]
    pub transport: ClientTransport,
    /// `webServer.*`: the admin API.
    #[serde(default)]
    pub web_server: WebServerSection,
    /// Serve Prometheus metrics on the admin server's `/metrics`.
    pub enable_prometheus: Option<bool>,
    /// Published services.
    #[serde(default)]
    pub proxies: Vec<ProxyEntry>,
}

/// `transport` in frpc.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientTransport {
    /// Seconds a connection attempt (QUIC handshake) may take (frp default 10).
    pub dial_server_timeout: Option<u64>,
    /// Milliseconds before the first reconnect attempt (default 500).
    pub reconnect_min_delay_ms: Option<u64>,
    /// Largest delay between reconnect attempts, in milliseconds (default 30000).
    pub reconnect_max_delay_ms: Option<u64>,
    /// `transport.tls`.
    #[serde(default)]
    pub tls: TlsSection,
    /// `transport.quic`.
    #[serde(default)]
    pub quic: QuicSection,
    /// `auto` (default), `quic` or `tcp`.
    pub protocol: Option<String>,
    /// frps's TCP port for the TCP transport (default: `serverPort`).
    pub tcp_port: Option<u16>,
}

/// A `[[proxies]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProxyEntry {
    /// Unique name.
    pub name: String,
    /// Proxy type; only "tcp" today.
    #[serde(rename = "type")]
    pub kind: String,
    /// frp's switch to keep an entry without publishing it (default true).
    pub enabled: Option<bool>,
    /// Host of the local service (default 127.0.0.1).
    #[serde(rename = "localIP")]
    pub local_ip: Option<String>,
    /// Port of the local service.
    pub local_port: u16,
    /// Public port asked for; 0 or absent lets the server pick (tcp only).
    pub remote_port: Option<u16>,
    /// Exact names and `*.` wildcards this proxy answers for (http, https).
    pub custom_domains: Option<Vec<String>>,
    /// A label that becomes `LABEL.<subDomainHost>` on the server (http, https).
    pub subdomain: Option<String>,
    /// Path prefixes (http only).
    pub locations: Option<Vec<String>>,
    /// Replaces the `Host` header sent to the local service (http only).
    pub host_header_rewrite: Option<String>,
    /// Headers set on requests (http only).
    pub request_headers: Option<HeaderSection>,
    /// Headers set on responses (http only).
    pub response_headers: Option<HeaderSection>,
    /// Basic-auth user checked by the server (http only).
    pub http_user: Option<String>,
    /// Basic-auth password checked by the server (http only).
    pub http_password: Option<Password>,
    /// CORS policy answered by the server (http only).
    pub cors: Option<CorsSection>,
    /// Redirect plain-HTTP requests to `https://` (http only).
    #[serde(rename = "redirectHTTPS")]
    pub redirect_https: Option<bool>,
    /// http: whether paths may hold `%2F` (forwarded still encoded), for services such as
    /// GitLab and RabbitMQ that tell it from `/`.
    pub allow_encoded_slashes: Option<bool>,
    /// tcp, https: seconds a tunneled connection may carry no byte either way before frpc
    /// resets it; absent: no limit.
    pub idle_timeout: Option<u64>,
}

/// frp keys that frpc refuses by name, with what to use instead.
pub const UNSUPPORTED: &[Unsupported] = &[
    Unsupported {
        key: "token",
        hint: "frpc authenticates with its certificate (transport.tls.certFile / keyFile)",
    },
    Unsupported {
        key: "auth",
        hint: "frpc authenticates with its certificate (transport.tls.certFile / keyFile)",
    },
    Unsupported {
        key: "user",
        hint: "the client's identity is its certificate's name",
    },
    Unsupported {
        key: "loginFailExit",
        hint: "frpc retries while the server is unreachable and exits only on a permanent refusal",
    },
    Unsupported {
        key: "log",
        hint: "logs go to stderr; set the level with RUST_LOG and the format with --log-format",
    },
    Unsupported {
        key: "includes",
        hint: "put every proxy in this file",
    },
    Unsupported {
        key: "start",
        hint: "use `enabled = false` on the proxies to skip",
    },
    Unsupported {
        key: "visitors",
        hint: "visitors (stcp/xtcp) are not supported yet",
    },
    Unsupported {
        key: "transport.tcpMux",
        hint: "QUIC multiplexes natively; remove the key",
    },
    Unsupported {
        key: "transport.tcpMuxKeepaliveInterval",
        hint: "use transport.quic.keepalivePeriod",
    },
    Unsupported {
        key: "transport.poolCount",
        hint: "streams are opened on demand; there is no pool",
    },
    Unsupported {
        key: "transport.heartbeatInterval",
        hint: "use transport.quic.keepalivePeriod",
    },
    Unsupported {
        key: "transport.heartbeatTimeout",
        hint: "use transport.quic.maxIdleTimeout",
    },
    Unsupported {
        key: "transport.proxyURL",
        hint: "QUIC cannot go through an HTTP or SOCKS proxy",
    },
    Unsupported {
        key: "transport.connectServerLocalIP",
        hint: "not supported yet",
    },
    Unsupported {
        key: "proxies[].plugin",
        hint: "plugins are not supported yet",
    },
    Unsupported {
        key: "proxies[].transport",
        hint:
            "encryption is always on (TLS); compression and bandwidth limits are not supported yet",
    },
    Unsupported {
        key: "proxies[].routeByHTTPUser",
        hint: "routing by basic-auth user is not supported; use customDomains or locations",
    },
    Unsupported {
        key: "proxies[].loadBalancer",
        hint: "load balancing groups are not supported yet",
    },
    Unsupported {
        key: "proxies[].healthCheck",
        hint: "health checks are not supported yet",
    },
    Unsupported {
        key: "proxies[].secretKey",
        hint: "stcp/xtcp are not supported yet",
    },
    Unsupported {
        key: "proxies[].annotations",
        hint: "not supported",
    },
    Unsupported {
        key: "proxies[].metadatas",
        hint: "not supported",
    },
];

/// One published local service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalProxy {
    /// Unique name, sent to the server.
    pub name: ProxyName,
    /// What kind of proxy.
    pub kind: ProxyKind,
    /// Host of the local service (IP or name, resolved at each connection).
    pub local_host: String,
    /// Port of the local service.
    pub local_port: u16,
    /// Public port asked for (0 = server picks; always 0 for http and https).
    pub remote_port: u16,
    /// Names and HTTP policy of an http or https proxy (empty for tcp).
    pub vhost: VhostSpec,
    /// How long a tunneled connection may carry no byte either way before frpc resets it
    /// (`idleTimeout`; tcp and https only). Enforced here, so it needs nothing from the server.
    pub idle_timeout: Option<Duration>,
}

impl LocalProxy {
    /// What the `Hello` asks the server for.
    pub fn spec(&self) -> ProxySpec {
        ProxySpec {
            name: self.name.clone(),
            kind: self.kind,
            remote_port: self.remote_port,
            vhost: self.vhost.clone(),
        }
    }
}

/// Everything frpc needs to run, validated.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Server host name or IP address.
    pub server_host: String,
    /// Server UDP port.
    pub server_port: u16,
    /// Which transport to dial (`transport.protocol`).
    pub protocol: Protocol,
    /// Server TCP port for the TCP transport (`transport.tcpPort`); `None`: `server_port`
    /// (so a new `serverPort` moves both).
    pub tcp_port: Option<u16>,
    /// Name expected in the server's certificate.
    pub server_name: String,
    /// TLS: the client certificate and the CA the server certificate must chain to.
    pub tls: Arc<rustls::ClientConfig>,
    /// Published services.
    pub proxies: Vec<LocalProxy>,
    /// QUIC keep-alive, idle timeout and how many streams the server may open at once.
    pub quic: QuicTuning,
    /// Reconnect delays.
    pub backoff: BackoffSettings,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long dialing a local service may take.
    pub local_connect_timeout: Duration,
    /// How long open streams may take to finish on shutdown.
    pub grace: Duration,
    /// The admin web server (`[webServer]`), when `webServer.port` is set.
    pub web: Option<WebServerSettings>,
    /// Proxies in the file with `enabled = false`: kept, not published, shown as disabled.
    pub disabled: Vec<LocalProxy>,
    /// The TLS files and a digest of their contents; `None` for settings made in code.
    pub tls_source: Option<TlsSource>,
}

/// Where the client's TLS identity was loaded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSource {
    /// The certificate, key and CA files.
    pub files: frp_runtime::config::TlsFiles,
    /// SHA-256 over the three files' contents: a reload finds renewed certificates by it.
    pub digest: [u8; 32],
}

impl TlsSource {
    /// The source for `files` whose contents are `pems` (certificate, key, CA).
    pub(crate) fn new(files: frp_runtime::config::TlsFiles, pems: [&[u8]; 3]) -> Self {
        let mut h = Sha256::new();
        for bytes in pems {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        Self {
            files,
            digest: h.finalize().into(),
        }
    }

    fn read(files: frp_runtime::config::TlsFiles) -> Self {
        // A file that cannot be read fails the TLS load with a better message anyway.
        let read = |p: &Path| std::fs::read(p).unwrap_or_default();
        let (cert, key, ca) = (read(&files.cert), read(&files.key), read(&files.ca));
        Self::new(files, [&cert, &key, &ca])
    }
}

impl ClientSettings {
    /// Settings with defaults for a server at `host:port` and no proxies.
    pub fn new(host: impl Into<String>, port: u16, tls: Arc<rustls::ClientConfig>) -> Self {
        let host = host.into();
        Self {
            server_name: host.clone(),
            server_host: host,
            server_port: port,
            protocol: Protocol::Auto,
            tcp_port: None,
            tls,
            proxies: Vec::new(),
            quic: QuicTuning::with_streams(SERVER_STREAM_LIMIT),
            backoff: BackoffSettings::default(),
            connect_timeout: Duration::from_secs(10),
            local_connect_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(10),
            web: None,
            disabled: Vec::new(),
            tls_source: None,
        }
    }

    /// Validates `text` as the contents of `path` (`PUT /api/v1/config`, a proxy added
    /// through the API), exactly as [`ClientSettings::from_file`] would.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and what is wrong.
    pub fn from_text(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file: ClientFile = parse_toml(path, text, UNSUPPORTED)?;
        Self::from_parsed(path, file)
    }

    /// Whether `other` reaches the same server the same way: address, port, name, TLS
    /// identity and QUIC tuning. Anything else can change without a new connection.
    pub fn same_server(&self, other: &ClientSettings) -> bool {
        let same_tls = Arc::ptr_eq(&self.tls, &other.tls)
            || matches!((&self.tls_source, &other.tls_source), (Some(a), Some(b)) if a == b);
        same_tls
            && self.server_host == other.server_host
            && self.server_port == other.server_port
            && self.protocol == other.protocol
            && self.tcp_port() == other.tcp_port()
            && self.server_name == other.server_name
            && self.quic == other.quic
    }

    /// The server's TCP port for the TCP transport.
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port.unwrap_or(self.server_port)
    }

    /// The server as configured, `host:port`.
    pub fn server_display(&self) -> String {
        match self.server_host.contains(':') {
            true => format!("[{}]:{}", self.server_host, self.server_port),
            false => format!("{}:{}", self.server_host, self.server_port),
        }
    }

    /// Loads and validates `path`, including reading the certificates and key.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and what is wrong.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let file: ClientFile = load_toml(path, UNSUPPORTED)?;
        Self::from_parsed(path, file)
    }

    /// Validates an already parsed file (`path` is for messages and relative paths).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and what is wrong.
    pub fn from_parsed(path: &Path, file: ClientFile) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::new(path, m);
        let host = file
            .server_addr
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into());
        let files = file.transport.tls.files(path)?;
        let tls = frp_certs::load_client_tls(&files.cert, &files.key, &files.ca)
            .map_err(|e| err(format!("transport.tls: {}", error_chain(&e))))?;
        let mut s = Self::new(host, file.server_port.unwrap_or(7000), Arc::new(tls));
        if let Some(p) = &file.transport.protocol {
            s.protocol = Protocol::parse(p).map_err(err)?;
        }
        s.tcp_port = file.transport.tcp_port;
        s.tls_source = Some(TlsSource::read(files));
        if let Some(name) = &file.transport.tls.server_name {
            s.server_name = name.clone();
        }
        crate::config_transport::check_server(&s).map_err(err)?;
        let proxies = crate::config_proxies::proxies(&file.proxies).map_err(err)?;
        (s.proxies, s.disabled) = (proxies.enabled, proxies.disabled);
        let prometheus = file.enable_prometheus.unwrap_or(false);
        s.web = file.web_server.settings(path, prometheus)?;
        file.transport.quic.refuse_server_keys(path)?;
        s.quic = file.transport.quic.tuning(path, s.quic)?;
        crate::config_transport::apply_timing(&mut s, &file).map_err(err)?;
        Ok(s)
    }
}
