//! Reloading a running client: what changed between two settings, and how the change is
//! asked for and answered.
//!
//! A reload never restarts what did not change. Proxies are compared by name: a proxy whose
//! registration (type, remote port, names, HTTP policy) is the same keeps its registration
//! and its open connections, and a new local service (`localIP`, `localPort`) takes effect
//! for the next connection; a proxy whose registration changed is removed and added again.
//! Against a server of protocol minor 2 or later that happens inside the session
//! (`RemoveProxies`, `AddProxies`); an older server gets a new session at once. A change of
//! the server settings (address, port, name, TLS, QUIC tuning) moves the connection: the
//! new one is made and registered first, and only then is the old one let go; if the new
//! one fails, the old one stays and the reload reports why.

use std::sync::Arc;

use frp_proto::ProxyName;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::config::{ClientSettings, LocalProxy};

/// A change for the running client, and where to send its outcome.
#[derive(Debug)]
pub(crate) struct Apply {
    pub(crate) settings: Arc<ClientSettings>,
    pub(crate) origin: Origin,
    pub(crate) reply: Reply,
}

/// Where the answer of an [`Apply`] goes.
pub(crate) type Reply = oneshot::Sender<Result<ReloadReport, ReloadError>>;

/// Who asked for a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A reload of the config file: while disconnected it is adopted as it is.
    Reload,
    /// New server settings (`PUT /api/v1/server`): adopted only once a connection with them
    /// is registered, also while disconnected.
    Server,
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    /// Proxies registered for the first time.
    pub added: Vec<String>,
    /// Proxies withdrawn.
    pub removed: Vec<String>,
    /// Proxies whose registration changed: withdrawn and registered again.
    pub changed: Vec<String>,
    /// Proxies whose local service changed only: their registration stays.
    pub retargeted: Vec<String>,
    /// Whether the connection moved to new server settings.
    pub server_moved: bool,
    /// Whether the change needed a new session (a server older than protocol minor 2).
    pub reconnected: bool,
    /// Whether the client was connected when the change was applied; if not, the proxies
    /// register at the next connection.
    pub connected: bool,
    /// Settings that take effect only after a restart (`webServer`).
    pub restart_needed: Vec<String>,
}

/// Why a change was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The new server settings did not give a working session; the old one stays.
    #[error("the new server settings do not work: {0}")]
    Server(String),
    /// The client is not running (it stopped or gave up).
    #[error("the client is not running")]
    NotRunning,
}

/// How the proxies of two settings differ, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProxyDiff {
    /// In the old settings only.
    pub(crate) removed: Vec<ProxyName>,
    /// In the new settings only.
    pub(crate) added: Vec<LocalProxy>,
    /// In both, registered differently (the new version).
    pub(crate) changed: Vec<LocalProxy>,
    /// In both, registered the same, with another local service (the new version).
    pub(crate) retargeted: Vec<LocalProxy>,
}

impl ProxyDiff {
    /// Compares the proxies a session registered with those of new settings.
    pub(crate) fn between(old: &[LocalProxy], new: &[LocalProxy]) -> Self {
        let mut d = Self::default();
        for o in old {
            if !new.iter().any(|n| n.name == o.name) {
                d.removed.push(o.name.clone());
            }
        }
        for n in new {
            match old.iter().find(|o| o.name == n.name) {
                None => d.added.push(n.clone()),
                Some(o) if o.spec() != n.spec() => d.changed.push(n.clone()),
                Some(o) if o != n => d.retargeted.push(n.clone()),
                Some(_) => {}
            }
        }
        d
    }

    /// Adds to `added` the proxies of `new` that are unchanged but not registered (the
    /// server refused or withdrew them): a reload asks for them again.
    pub(crate) fn retry_unregistered(
        &mut self,
        new: &[LocalProxy],
        registered: impl Fn(&ProxyName) -> bool,
    ) {
        let listed = |d: &Self, n: &ProxyName| {
            let mut all = d.added.iter().chain(&d.changed);
            all.any(|p| p.name == *n)
        };
        for p in new {
            if !registered(&p.name) && !listed(self, &p.name) {
                self.added.push(p.clone());
            }
        }
    }

    /// Whether the server must be told: something is added, removed or registered anew.
    pub(crate) fn registers(&self) -> bool {
        !(self.removed.is_empty() && self.added.is_empty() && self.changed.is_empty())
    }

    /// The names to withdraw: the removed and the changed proxies.
    pub(crate) fn to_remove(&self) -> Vec<ProxyName> {
        let changed = self.changed.iter().map(|p| p.name.clone());
        self.removed.iter().cloned().chain(changed).collect()
    }

    /// The proxies to register: the added and the changed ones.
    pub(crate) fn to_add(&self) -> Vec<LocalProxy> {
        self.added.iter().chain(&self.changed).cloned().collect()
    }

    /// The report of this change (the caller fills in how it was applied).
    pub(crate) fn report(&self) -> ReloadReport {
        let names = |v: &[LocalProxy]| v.iter().map(|p| p.name.to_string()).collect();
        ReloadReport {
            added: names(&self.added),
            removed: self.removed.iter().map(ToString::to_string).collect(),
            changed: names(&self.changed),
            retargeted: names(&self.retargeted),
            ..ReloadReport::default()
        }
    }
}

/// The settings that a running client cannot change: named in
/// [`ReloadReport::restart_needed`].
pub(crate) fn restart_needed(old: &ClientSettings, new: &ClientSettings) -> Vec<String> {
    let addr = |s: &ClientSettings| s.web.as_ref().map(|w| w.addr);
    let creds = |s: &ClientSettings| s.web.as_ref().and_then(|w| w.credentials.clone());
    let prom = |s: &ClientSettings| s.web.as_ref().is_some_and(|w| w.prometheus);
    let tls = |s: &ClientSettings| s.web.as_ref().and_then(|w| w.tls_cert_file.clone());
    let same = addr(old) == addr(new)
        && creds(old) == creds(new)
        && prom(old) == prom(new)
        && tls(old) == tls(new);
    match same {
        true => Vec::new(),
        false => vec!["webServer".to_string()],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use frp_proto::{ProxyKind, VhostSpec};

    fn tcp(name: &str, local: u16, remote: u16) -> LocalProxy {
        LocalProxy {
            name: ProxyName::new(name).unwrap(),
            kind: ProxyKind::Tcp,
            local_host: "127.0.0.1".into(),
            local_port: local,
            remote_port: remote,
            vhost: VhostSpec::default(),
            idle_timeout: None,
        }
    }

    #[test]
    fn proxies_are_compared_by_name_and_registration() {
        let old = [
            tcp("keep", 1, 6000),
            tcp("gone", 2, 6001),
            tcp("moved", 3, 6002),
            tcp("re", 4, 6003),
        ];
        let new = [
            tcp("keep", 1, 6000),
            tcp("moved", 3, 6012),
            tcp("re", 14, 6003),
            tcp("new", 5, 0),
        ];
        let d = ProxyDiff::between(&old, &new);
        let names = |v: &[LocalProxy]| v.iter().map(|p| p.name.to_string()).collect::<Vec<_>>();
        assert_eq!(d.removed, [ProxyName::new("gone").unwrap()]);
        assert_eq!(names(&d.added), ["new"]);
        assert_eq!(names(&d.changed), ["moved"]);
        assert_eq!(names(&d.retargeted), ["re"]);
        assert!(d.registers());
        let remove: Vec<String> = d.to_remove().iter().map(ToString::to_string).collect();
        assert_eq!(remove, ["gone", "moved"]);
        assert_eq!(names(&d.to_add()), ["new", "moved"]);
        let only_local = ProxyDiff::between(&old, &[tcp("keep", 9, 6000)]);
        assert_eq!(only_local.removed.len(), 3);
        let same = ProxyDiff::between(&old, &old);
        assert!(!same.registers() && same.retargeted.is_empty());
        let r = ProxyDiff::between(&old[..1], &[tcp("keep", 9, 6000)]);
        assert!(!r.registers());
        assert_eq!(r.report().retargeted, ["keep"]);
    }
}
