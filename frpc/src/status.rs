//! What the client reports about itself: the server connection and each proxy's state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use frp_proto::ProxyName;

use crate::config::ClientSettings;

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
    /// The server as configured (`host:port`).
    pub server: String,
    /// The address of the server the current session is connected to.
    pub server_addr: Option<SocketAddr>,
    /// The transport of the current session.
    pub transport: Option<frp_runtime::link::Transport>,
    /// The server's protocol minor in the current session.
    pub server_minor: Option<u16>,
    /// When the current state (connected, or not) began.
    pub since: Option<SystemTime>,
    /// When the next connection attempt starts, while the client waits out its backoff.
    pub next_retry: Option<SystemTime>,
    /// Sessions that ended and connection attempts that failed, since start.
    pub reconnects: u64,
}

/// One proxy's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyState {
    /// Not (yet) registered in a live session.
    Pending,
    /// Published at this public address.
    Bound(SocketAddr),
    /// Refused (or withdrawn) by the server, with its reason.
    Refused(String),
    /// `enabled = false` in the config: kept, not published.
    Disabled,
}

impl ProxyState {
    /// The state's name in the admin API: `pending`, `running`, `refused` or `disabled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Bound(_) => "running",
            Self::Refused(_) => "refused",
            Self::Disabled => "disabled",
        }
    }
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

    /// The connection's state in the admin API: `connected`, `waiting` (between attempts)
    /// or `connecting`.
    pub fn state(&self) -> &'static str {
        match (self.connected, self.next_retry) {
            (true, _) => "connected",
            (false, Some(_)) => "waiting",
            (false, None) => "connecting",
        }
    }

    /// Makes the proxy list that of `settings`: proxies no longer configured are dropped,
    /// new ones are pending, disabled ones disabled; the others keep their state.
    pub(crate) fn follow(&mut self, settings: &ClientSettings) {
        let mut proxies = BTreeMap::new();
        for p in &settings.proxies {
            let state = self.proxies.remove(&p.name).unwrap_or(ProxyState::Pending);
            let state = match state {
                ProxyState::Disabled => ProxyState::Pending,
                s => s,
            };
            proxies.insert(p.name.clone(), state);
        }
        for p in &settings.disabled {
            proxies.insert(p.name.clone(), ProxyState::Disabled);
        }
        self.proxies = proxies;
        self.server = settings.server_display();
    }

    /// The session ended: every published proxy is pending again.
    pub(crate) fn disconnected(&mut self) {
        self.connected = false;
        self.server_addr = None;
        self.transport = None;
        self.server_minor = None;
        self.since = Some(SystemTime::now());
        for state in self.proxies.values_mut() {
            if *state != ProxyState::Disabled {
                *state = ProxyState::Pending;
            }
        }
    }
}
