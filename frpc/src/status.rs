//! What the client reports about itself: connection state and each proxy's outcome.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use frp_proto::ProxyName;

/// A snapshot of the client, published on every change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStatus {
    /// Whether a session with the server is up (its `Welcome` received).
    pub connected: bool,
    /// How many sessions have been established since start.
    pub sessions: u64,
    /// Each configured proxy's state in the current (or last) session.
    pub proxies: BTreeMap<ProxyName, ProxyState>,
    /// The last connection error, if the client is between attempts.
    pub last_error: Option<String>,
}

/// One proxy's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyState {
    /// Not (yet) registered in a live session.
    Pending,
    /// Published at this public address.
    Bound(SocketAddr),
    /// Refused by the server, with its reason.
    Refused(String),
}

impl ClientStatus {
    /// The public address of `name`, when it is published.
    pub fn bound(&self, name: &str) -> Option<SocketAddr> {
        self.proxies.iter().find_map(|(n, s)| match s {
            ProxyState::Bound(a) if n.as_str() == name => Some(*a),
            _ => None,
        })
    }

    /// The refusal reason for `name`, when it was refused.
    pub fn refused(&self, name: &str) -> Option<&str> {
        self.proxies.iter().find_map(|(n, s)| match s {
            ProxyState::Refused(r) if n.as_str() == name => Some(r.as_str()),
            _ => None,
        })
    }
}
