//! Protocol message types (their wire encodings live in `wire.rs`).

use std::fmt;
use std::net::SocketAddr;

use crate::{ProxyName, VhostSpec};

/// Kind of service a proxy publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// A TCP listener on the server, spliced to a TCP service behind the client.
    Tcp,
    /// HTTP requests on the server's `vhostHTTPPort`, routed by `Host` and path.
    Http,
    /// TLS connections on the server's `vhostHTTPSPort`, routed by SNI and passed through.
    Https,
}

impl ProxyKind {
    /// Returns the lowercase name of the kind, as used in configuration files ("tcp").
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// Whether proxies of this kind are routed by name and carry a [`VhostSpec`].
    pub fn is_vhost(&self) -> bool {
        matches!(self, Self::Http | Self::Https)
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Server-assigned id of a bound proxy, unique within one client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProxyId(pub u32);

impl fmt::Display for ProxyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One proxy a client asks the server to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    /// Name of the proxy, unique within the client.
    pub name: ProxyName,
    /// Kind of service published.
    pub kind: ProxyKind,
    /// Public port wanted on the server; 0 lets the server pick one (0 for http/https).
    pub remote_port: u16,
    /// Names and HTTP policy of an http/https proxy; sent only for those kinds (since minor
    /// version 1, in [`AddProxies`]), so it is empty for tcp.
    pub vhost: VhostSpec,
}

/// What the server did with one requested proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// The proxy is live: visitors connecting to `remote_addr` arrive on data streams tagged `id`.
    Bound {
        /// Id the server will put in each [`DataHeader`] of this proxy.
        id: ProxyId,
        /// Public address the server actually bound.
        remote_addr: SocketAddr,
    },
    /// The proxy was not published.
    Refused {
        /// Human-readable reason, at most [`MAX_TEXT_LEN`](crate::MAX_TEXT_LEN) bytes.
        reason: String,
    },
}

/// The server's answer for one requested proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyResult {
    /// Name of the requested proxy.
    pub name: ProxyName,
    /// Whether it was bound or refused.
    pub outcome: ProxyOutcome,
}

/// First control frame, client to server: version, agent and requested proxies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Client's minor protocol version.
    pub minor: u16,
    /// Free-form client description (e.g. "frpc/0.1.0"), at most `MAX_TEXT_LEN` bytes.
    pub agent: String,
    /// Proxies the client wants published, at most `MAX_PROXIES`.
    pub proxies: Vec<ProxySpec>,
}

/// Server to client answer to [`Hello`], with one result per requested proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// Server's minor protocol version.
    pub minor: u16,
    /// One result per proxy of the [`Hello`], at most `MAX_PROXIES`.
    pub results: Vec<ProxyResult>,
}

/// Client to server, after a [`Welcome`] whose minor version is at least 1: more proxies to
/// publish. With a minor-1 server, once per session and http and https proxies only (a
/// minor-0 server cannot decode them, so they never travel in [`Hello`]); since minor 2, any
/// kind, as often as the client reloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddProxies {
    /// Proxies the client wants published, at most `MAX_PROXIES`.
    pub proxies: Vec<ProxySpec>,
}

/// Server to client answer to [`AddProxies`], with one result per proxy, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddResults {
    /// One result per proxy of the [`AddProxies`], at most `MAX_PROXIES`.
    pub results: Vec<ProxyResult>,
}

/// Client to server, since minor version 2: withdraw these proxies (a reload removed or
/// changed them). The server closes their listeners and routes, frees their ports and names,
/// and answers with [`ProxiesClosed`] listing them; connections already open go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveProxies {
    /// Names of proxies of this client, at most `MAX_PROXIES`.
    pub names: Vec<ProxyName>,
}

/// One proxy the server no longer serves, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyClosed {
    /// The proxy's name.
    pub name: ProxyName,
    /// Why: "removed by the client", or the server's reason (its reloaded policy forbids it).
    pub reason: String,
}

/// Server to client, since minor version 2: proxies that are no longer published. The
/// answer to a [`RemoveProxies`] (its names, in order), and sent unprompted when a server
/// reload withdraws proxies its new policy forbids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiesClosed {
    /// The proxies, at most `MAX_PROXIES`.
    pub closed: Vec<ProxyClosed>,
}

/// Graceful shutdown notice, sent by either side before closing the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoingAway {
    /// Human-readable reason, at most `MAX_TEXT_LEN` bytes.
    pub reason: String,
}

/// Any message of the control stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlMsg {
    /// Client greeting, the first control frame.
    Hello(Hello),
    /// Server answer to the greeting.
    Welcome(Welcome),
    /// Shutdown notice from either side.
    GoingAway(GoingAway),
    /// More proxies from the client (since minor version 1).
    AddProxies(AddProxies),
    /// The server's answer to [`AddProxies`].
    AddResults(AddResults),
    /// Proxies the client withdraws (since minor version 2).
    RemoveProxies(RemoveProxies),
    /// Proxies the server no longer serves (since minor version 2).
    ProxiesClosed(ProxiesClosed),
}

impl ControlMsg {
    /// Returns the message's name for logs ("hello", "welcome", "going-away", ...).
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Welcome(_) => "welcome",
            Self::GoingAway(_) => "going-away",
            Self::AddProxies(_) => "add-proxies",
            Self::AddResults(_) => "add-results",
            Self::RemoveProxies(_) => "remove-proxies",
            Self::ProxiesClosed(_) => "proxies-closed",
        }
    }
}

impl From<Hello> for ControlMsg {
    fn from(m: Hello) -> Self {
        Self::Hello(m)
    }
}

impl From<Welcome> for ControlMsg {
    fn from(m: Welcome) -> Self {
        Self::Welcome(m)
    }
}

impl From<GoingAway> for ControlMsg {
    fn from(m: GoingAway) -> Self {
        Self::GoingAway(m)
    }
}

impl From<AddProxies> for ControlMsg {
    fn from(m: AddProxies) -> Self {
        Self::AddProxies(m)
    }
}

impl From<AddResults> for ControlMsg {
    fn from(m: AddResults) -> Self {
        Self::AddResults(m)
    }
}

impl From<RemoveProxies> for ControlMsg {
    fn from(m: RemoveProxies) -> Self {
        Self::RemoveProxies(m)
    }
}

impl From<ProxiesClosed> for ControlMsg {
    fn from(m: ProxiesClosed) -> Self {
        Self::ProxiesClosed(m)
    }
}

/// First frame of each server-opened data stream: which proxy, and who is visiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHeader {
    /// Proxy the visitor connected to.
    pub proxy: ProxyId,
    /// Address of the visitor as seen by the server.
    pub visitor: SocketAddr,
}
