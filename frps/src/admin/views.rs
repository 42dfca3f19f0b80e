//! The JSON the admin API answers with, built from the registry's copies.

use std::collections::BTreeMap;
use std::time::Duration;

use frp_admin::rfc3339;
use frp_proto::{ProxyKind, ProxyName};
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use super::ServerApi;
use crate::registry::SessionView;
use crate::stats::ProxyStats;

/// `GET /api/v1/serverinfo`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// frps's version.
    pub version: String,
    /// When it started (RFC 3339) and for how long it has run.
    pub started_at: Option<String>,
    /// Seconds since the start.
    pub uptime_seconds: u64,
    /// The QUIC (UDP) endpoint clients connect to.
    pub bind_addr: String,
    /// The address public tcp listeners bind.
    pub proxy_bind_addr: String,
    /// `vhostHTTPPort`'s address, when served.
    #[serde(rename = "vhostHTTPAddr")]
    pub vhost_http_addr: Option<String>,
    /// `vhostHTTPSPort`'s address, when served.
    #[serde(rename = "vhostHTTPSAddr")]
    pub vhost_https_addr: Option<String>,
    /// Clients connected.
    pub client_counts: usize,
    /// Proxies published, by type (`tcp`, `http`, `https`, all present).
    pub proxy_counts: BTreeMap<String, usize>,
    /// Public connections open now.
    pub connections: i64,
    /// Bytes from visitors to services since the start.
    pub bytes_in: u64,
    /// Bytes from services to visitors since the start.
    pub bytes_out: u64,
    /// Entries in the revocation list in force.
    pub revoked_certificates: usize,
    /// Requests answered on the vhost ports since the start, by status class (`1xx`..`5xx`,
    /// all present).
    pub vhost_requests: BTreeMap<String, u64>,
    /// What happened to connection attempts (QUIC handshakes) since the start.
    pub handshakes: Handshakes,
}

/// Handshake counts, as in [`crate::HandshakeCounts`].
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshakes {
    /// Under way now.
    pub under_way: u64,
    /// Completed.
    pub completed: u64,
    /// Retries sent (address validation).
    pub retried: u64,
    /// Refused or ignored for lack of room (all slots, or the source's share, taken).
    pub refused: u64,
    /// Ended in a TLS refusal (no or a bad certificate).
    pub tls_refused: u64,
    /// Took too long, or failed otherwise.
    pub failed: u64,
}

impl ServerInfo {
    pub(crate) fn of(api: &ServerApi) -> Self {
        Self::from_sessions(api, &api.shared.registry.sessions())
    }

    /// The figures from `sessions`, copied out of the registry by the caller.
    pub(crate) fn from_sessions(api: &ServerApi, sessions: &[SessionView]) -> Self {
        let shared = &api.shared;
        let proxies: Vec<_> = sessions.iter().flat_map(|s| &s.proxies).collect();
        let mut proxy_counts: BTreeMap<String, usize> = ["tcp", "http", "https"]
            .into_iter()
            .map(|k| (k.to_string(), 0))
            .collect();
        for p in &proxies {
            *proxy_counts.entry(p.kind.as_str().to_string()).or_default() += 1;
        }
        let (bytes_in, bytes_out) = shared.registry.traffic();
        let h = api.handshakes.snapshot();
        let settings = shared.settings();
        let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string());
        Self {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: rfc3339(shared.started),
            uptime_seconds: shared.started.elapsed().map_or(0, |d| d.as_secs()),
            bind_addr: api.bind.to_string(),
            proxy_bind_addr: settings.proxy_bind_ip.to_string(),
            vhost_http_addr: addr(shared.vhost_addrs.0),
            vhost_https_addr: addr(shared.vhost_addrs.1),
            client_counts: sessions.len(),
            proxy_counts,
            connections: shared.gauges.public_connections.get(),
            bytes_in,
            bytes_out,
            revoked_certificates: shared.revoked().len(),
            vhost_requests: requests_by_class(shared),
            handshakes: Handshakes {
                under_way: h.under_way,
                completed: h.completed,
                retried: h.retried,
                refused: h.refused + h.ignored,
                tls_refused: h.tls_refused,
                failed: h.timed_out + h.failed,
            },
        }
    }
}

/// Requests on the vhost ports by status class, both schemes together.
fn requests_by_class(shared: &crate::server::Shared) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (_, class, n) in shared.access.counts() {
        *out.entry(class).or_default() += n;
    }
    out
}

/// The certificate a client connected with, as a revocation would name it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    /// Its subject (`CN=node1`).
    pub subject: String,
    /// Its serial number, hex bytes separated by colons (`2a:8d:70`).
    pub serial: String,
    /// Its SHA-256 fingerprint, lowercase hex (what `POST /api/v1/revocations` takes).
    pub fingerprint: String,
    /// When it expires (RFC 3339).
    pub not_after: Option<String>,
}

impl CertificateView {
    /// The verified leaf certificate of `conn`'s peer, read when asked (parsing it costs
    /// microseconds; keeping it would cost every session memory).
    fn of(conn: &frp_runtime::link::Link) -> Option<Self> {
        let chain: Vec<CertificateDer<'static>> = conn.peer_certificates()?;
        let leaf = chain.first()?;
        let serial = frp_certs::serial_hex(leaf).ok()?;
        let pairs: Vec<&str> = (0..serial.len())
            .step_by(2)
            .filter_map(|i| serial.get(i..i + 2))
            .collect();
        Some(Self {
            subject: frp_certs::subject(leaf).ok()?,
            serial: pairs.join(":"),
            fingerprint: frp_certs::fingerprint(leaf),
            not_after: frp_certs::not_after(leaf).ok().and_then(rfc3339),
        })
    }
}

/// One connected client (`GET /api/v1/clients`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    /// The identity as its certificate spells it.
    pub identity: String,
    /// The identity in lowercase: identities ignore case, and the API's paths take either.
    pub key: String,
    /// Its current UDP address (it changes when the connection migrates).
    pub addr: String,
    /// When this connection was accepted (RFC 3339).
    pub connected_since: Option<String>,
    /// The client's protocol minor.
    pub protocol_minor: u16,
    /// What the client says it is (`frpc/0.1.0`).
    pub agent: String,
    /// `quic`, or `tcp` for a client on the TCP transport.
    #[serde(default)]
    pub transport: String,
    /// Round-trip time, milliseconds (quinn's estimate).
    pub rtt_ms: f64,
    /// Congestion window, bytes.
    pub congestion_window: u64,
    /// Packets sent and lost on the connection.
    pub sent_packets: u64,
    /// Of those, lost.
    pub lost_packets: u64,
    /// Its published proxies.
    pub proxies: Vec<String>,
    /// Public connections its proxies hold open now.
    pub connections: i64,
    /// Bytes its published proxies carried from visitors.
    pub bytes_in: u64,
    /// Bytes its published proxies carried back to visitors.
    pub bytes_out: u64,
    /// The certificate it connected with.
    pub certificate: Option<CertificateView>,
}

impl ClientView {
    /// Every connected client, by identity.
    pub(crate) fn all(api: &ServerApi) -> Vec<Self> {
        api.shared
            .registry
            .sessions()
            .iter()
            .map(Self::of)
            .collect()
    }

    /// The connected client `key` (lowercase identity), if any.
    pub(crate) fn one(api: &ServerApi, key: &str) -> Option<Self> {
        let sessions = api.shared.registry.sessions();
        sessions.iter().find(|s| s.key == key).map(Self::of)
    }

    fn of(s: &SessionView) -> Self {
        let stats = s.conn.path_stats();
        let ps = &s.proxies;
        Self {
            identity: s.name.clone(),
            key: s.key.clone(),
            addr: s.conn.remote_address().to_string(),
            connected_since: rfc3339(s.since),
            protocol_minor: s.minor,
            agent: s.agent.clone(),
            transport: s.conn.transport().as_str().to_string(),
            rtt_ms: millis(stats.rtt),
            congestion_window: stats.cwnd,
            sent_packets: stats.sent_packets,
            lost_packets: stats.lost_packets,
            proxies: ps.iter().map(|p| p.name.to_string()).collect(),
            connections: ps.iter().map(|p| p.connections.get()).sum(),
            bytes_in: ps.iter().map(|p| p.bytes_in()).sum(),
            bytes_out: ps.iter().map(|p| p.bytes_out()).sum(),
            certificate: CertificateView::of(&s.conn),
        }
    }
}

/// One proxy (`GET /api/v1/proxies`): published (`running`) or asked for and not published
/// (`refused`, with the reason: refused at registration or withdrawn by a reload).
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyView {
    /// Its name (unique within its client).
    pub name: String,
    /// The client that owns it, as its certificate spells it.
    pub client: String,
    /// That client's identity key (lowercase).
    pub client_key: String,
    /// `tcp`, `http` or `https`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `running` or `refused`.
    pub status: String,
    /// Its public address: a tcp proxy's port, or the vhost port.
    pub remote_addr: Option<String>,
    /// A tcp proxy's public port.
    pub remote_port: Option<u16>,
    /// The names an http/https proxy answers for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// An http proxy's locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// Public connections open now.
    pub connections: i64,
    /// Bytes carried from visitors since it was published.
    pub bytes_in: u64,
    /// Bytes carried back to visitors.
    pub bytes_out: u64,
    /// When it was published (RFC 3339).
    pub started_at: Option<String>,
    /// Why it is not published.
    pub last_error: Option<String>,
}

impl ProxyView {
    /// Every proxy of every client, running ones first within a client.
    pub(crate) fn all(api: &ServerApi) -> Vec<Self> {
        let mut out = Vec::new();
        for s in api.shared.registry.sessions() {
            out.extend(s.proxies.iter().map(|p| Self::running(&s, p)));
            out.extend(s.refused.iter().map(|r| Self::refused(&s, r)));
        }
        out
    }

    fn running(s: &SessionView, p: &ProxyStats) -> Self {
        Self {
            name: p.name.to_string(),
            client: s.name.clone(),
            client_key: s.key.clone(),
            kind: p.kind.as_str().to_string(),
            status: "running".into(),
            remote_addr: Some(p.remote.to_string()),
            remote_port: (p.kind == ProxyKind::Tcp).then_some(p.remote.port()),
            domains: p.hosts.iter().map(ToString::to_string).collect(),
            locations: p.locations.clone(),
            connections: p.connections.get(),
            bytes_in: p.bytes_in(),
            bytes_out: p.bytes_out(),
            started_at: rfc3339(p.started),
            last_error: None,
        }
    }

    fn refused(s: &SessionView, (name, kind, why): &(ProxyName, ProxyKind, String)) -> Self {
        Self {
            name: name.to_string(),
            client: s.name.clone(),
            client_key: s.key.clone(),
            kind: kind.as_str().to_string(),
            status: "refused".into(),
            remote_addr: None,
            remote_port: None,
            domains: Vec::new(),
            locations: Vec::new(),
            connections: 0,
            bytes_in: 0,
            bytes_out: 0,
            started_at: None,
            last_error: Some(why.to_string()),
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
