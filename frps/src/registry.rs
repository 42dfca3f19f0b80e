//! Who holds what: live sessions by identity, public ports and virtual-host routes by owner.
//!
//! One mutex guards both maps; it is never held across an `.await`. Every change republishes
//! a [`ServerStatus`] snapshot on a watch channel, which tests and (later) the admin API read.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use frp_proto::ProxyName;
use rustls::pki_types::CertificateDer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::domains::DomainPattern;
use crate::vhost::backend::{HttpBackend, Routed};
use crate::vhost::routes::{Owner, RouteTable, Shares, TlsRoute};
use crate::vhost::TlsTarget;

/// The routes of both vhost ports.
type Routes = RouteTable<Arc<HttpBackend>, Arc<TlsTarget>>;

/// A snapshot of the server's clients and their published proxies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStatus {
    /// Connected clients by identity.
    pub clients: BTreeMap<String, ClientStatus>,
}

/// One connected client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientStatus {
    /// Session number (grows with each connection the server accepts).
    pub session: u64,
    /// The client's UDP address.
    pub remote: SocketAddr,
    /// Its published proxies and their public addresses.
    pub proxies: BTreeMap<ProxyName, SocketAddr>,
}

/// What a replaced session leaves for its successor to wait on.
#[derive(Debug)]
pub struct Replaced {
    /// The old connection, to be closed.
    pub conn: quinn::Connection,
    /// Cancelled once the old session has released everything it held.
    pub finished: CancellationToken,
}

#[derive(Debug)]
struct SessionEntry {
    id: u64,
    conn: quinn::Connection,
    /// The client's certificate, to recheck against a reloaded revocation list.
    cert: CertificateDer<'static>,
    finished: CancellationToken,
    /// Whether the routes older sessions of this identity left were released.
    predecessors_released: bool,
}

#[derive(Debug, Default)]
struct Inner {
    next_session: u64,
    sessions: HashMap<String, SessionEntry>,
    /// Public port -> (identity, session id).
    ports: HashMap<u16, (String, u64)>,
    /// Virtual-host routes, released with the ports.
    routes: Routes,
    status: ServerStatus,
}

/// Shared registry of sessions and ports.
#[derive(Clone, Debug)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    status: Arc<watch::Sender<ServerStatus>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            status: Arc::new(watch::channel(ServerStatus::default()).0),
        }
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than stopping the server would, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver of status snapshots.
    pub fn subscribe(&self) -> watch::Receiver<ServerStatus> {
        self.status.subscribe()
    }

    /// Registers a new session for `identity`; returns its id and the session it replaces.
    pub fn open_session(
        &self,
        identity: &str,
        conn: &quinn::Connection,
        cert: CertificateDer<'static>,
        finished: CancellationToken,
    ) -> (u64, Option<Replaced>) {
        let mut g = self.lock();
        g.next_session += 1;
        let id = g.next_session;
        let entry = SessionEntry {
            id,
            conn: conn.clone(),
            cert,
            finished,
            predecessors_released: false,
        };
        let old = g.sessions.insert(identity.to_string(), entry);
        g.status.clients.insert(
            identity.to_string(),
            ClientStatus {
                session: id,
                remote: conn.remote_address(),
                proxies: BTreeMap::new(),
            },
        );
        self.publish(&g);
        (
            id,
            old.map(|o| Replaced {
                conn: o.conn,
                finished: o.finished,
            }),
        )
    }

    /// Connections of the sessions whose certificate matches `pred`, with their identities.
    pub fn sessions_where(
        &self,
        pred: impl Fn(&CertificateDer<'static>) -> bool,
    ) -> Vec<(String, quinn::Connection)> {
        let g = self.lock();
        g.sessions
            .iter()
            .filter(|(_, e)| pred(&e.cert))
            .map(|(identity, e)| (identity.clone(), e.conn.clone()))
            .collect()
    }

    /// Claims `port` for a session.
    ///
    /// # Errors
    /// Returns the identity that holds the port already.
    pub fn claim_port(&self, port: u16, identity: &str, session: u64) -> Result<(), String> {
        let mut g = self.lock();
        match g.ports.get(&port) {
            Some((owner, _)) => Err(owner.clone()),
            None => {
                g.ports.insert(port, (identity.to_string(), session));
                Ok(())
            }
        }
    }

    /// Whether `port` is held by any session.
    pub fn port_taken(&self, port: u16) -> bool {
        self.lock().ports.contains_key(&port)
    }

    /// Gives back a port claimed by `session` (when binding it failed).
    pub fn unclaim_port(&self, port: u16, session: u64) {
        let mut g = self.lock();
        if g.ports.get(&port).is_some_and(|(_, s)| *s == session) {
            g.ports.remove(&port);
        }
    }

    /// Records a published proxy in the status snapshot.
    pub fn proxy_published(
        &self,
        identity: &str,
        session: u64,
        name: &ProxyName,
        addr: SocketAddr,
    ) {
        let mut g = self.lock();
        if let Some(c) = g
            .status
            .clients
            .get_mut(identity)
            .filter(|c| c.session == session)
        {
            c.proxies.insert(name.clone(), addr);
            self.publish(&g);
        }
    }

    /// Removes `session` from the session map and the status, unless a newer session of the
    /// same identity has taken its place. Its ports were already released by
    /// [`Registry::proxies_withdrawn`] when its listeners closed.
    pub fn close_session(&self, identity: &str, session: u64) {
        let mut g = self.lock();
        if g.sessions.get(identity).is_some_and(|e| e.id == session) {
            g.sessions.remove(identity);
        }
        if g.status
            .clients
            .get(identity)
            .is_some_and(|c| c.session == session)
        {
            g.status.clients.remove(identity);
        }
        self.publish(&g);
    }

    /// Records a client's current address (it changes when the connection migrates).
    pub fn client_moved(&self, identity: &str, session: u64, remote: SocketAddr) {
        let mut g = self.lock();
        let client = g.status.clients.get_mut(identity);
        if let Some(c) = client.filter(|c| c.session == session && c.remote != remote) {
            tracing::info!(client = %identity, %remote, "client address changed; connection migrated");
            c.remote = remote;
            self.publish(&g);
        }
    }

    /// Claims http routes: every host with every location (keys), or none; `shares` says
    /// which identities may hold locations of one host together.
    ///
    /// # Errors
    /// Who asked for what, and the owner that holds it.
    pub(crate) fn claim_http(
        &self,
        hosts: &[DomainPattern],
        locations: &[String],
        owner: &Owner,
        target: &Arc<HttpBackend>,
        shares: Shares<'_>,
    ) -> Result<(), (String, Owner)> {
        self.lock()
            .routes
            .claim_http(hosts, locations, owner, target, shares)
    }

    /// Claims https routes: every host, or none.
    ///
    /// # Errors
    /// Who asked for what, and the owner that holds it.
    pub(crate) fn claim_https(
        &self,
        hosts: &[DomainPattern],
        owner: &Owner,
        target: &Arc<TlsTarget>,
    ) -> Result<(), (String, Owner)> {
        self.lock().routes.claim_https(hosts, owner, target)
    }

    /// The http proxy serving `host` (normalized) and `path` (in match form), and the
    /// other proxies the `guard_forms` of the path reach when case is ignored: their
    /// passwords are checked too, so no spelling is less protected than the location a
    /// case-folding service would serve it from.
    pub(crate) fn lookup_http(
        &self,
        host: &str,
        path: &str,
        guard_forms: &[String],
    ) -> Option<Routed> {
        let g = self.lock();
        let (backend, _) = g.routes.lookup_http(host, path)?;
        let mut guards: Vec<Arc<HttpBackend>> = Vec::new();
        for form in guard_forms {
            if let Some((other, _)) = g.routes.lookup_http_ci(host, form) {
                let seen = |b: &Arc<HttpBackend>| Arc::ptr_eq(b, &other);
                if !seen(&backend) && !guards.iter().any(seen) {
                    guards.push(other);
                }
            }
        }
        Some(Routed { backend, guards })
    }

    /// How to serve a TLS connection for the SNI `host` (normalized); `certified(key)` says
    /// whether frps has a certificate for `host` configured for exactly `key`.
    pub(crate) fn lookup_tls(
        &self,
        host: &str,
        certified: impl Fn(&str) -> bool,
    ) -> TlsRoute<Arc<TlsTarget>> {
        self.lock().routes.lookup_tls(host, certified)
    }

    /// Releases a session's ports and routes, and drops its proxies from the status (its
    /// listeners were closed early). The one place a session gives back what it held.
    ///
    /// A session replaced by a newer one of the same identity keeps its routes, for that
    /// identity only, until the newer one has claimed its own
    /// ([`Registry::release_predecessors`]): no other client can take a name in between.
    pub fn proxies_withdrawn(&self, identity: &str, session: u64) {
        let mut g = self.lock();
        g.ports.retain(|_, (_, s)| *s != session);
        let successor = g.sessions.get(identity).filter(|e| e.id > session);
        if successor.is_none_or(|e| e.predecessors_released) {
            g.routes.release_identity_up_to(identity, session);
        }
        if let Some(c) = g
            .status
            .clients
            .get_mut(identity)
            .filter(|c| c.session == session)
        {
            c.proxies.clear();
        }
        self.publish(&g);
    }

    /// Releases what one proxy of `session` held (its `port`, if tcp, and its routes) and
    /// drops it from the status: the client removed it (protocol minor 2).
    pub fn proxy_withdrawn(
        &self,
        identity: &str,
        session: u64,
        name: &ProxyName,
        port: Option<u16>,
    ) {
        let mut g = self.lock();
        if let Some(port) = port {
            if g.ports.get(&port).is_some_and(|(_, s)| *s == session) {
                g.ports.remove(&port);
            }
        }
        g.routes.release_proxy(identity, session, name);
        let client = g.status.clients.get_mut(identity);
        if let Some(c) = client.filter(|c| c.session == session) {
            c.proxies.remove(name);
        }
        self.publish(&g);
    }

    /// Releases the routes older sessions of `identity` left reserved for `session`, once it
    /// has claimed its own (or its grace ran out); nothing if a newer session replaced it.
    pub fn release_predecessors(&self, identity: &str, session: u64) {
        let mut g = self.lock();
        let Some(entry) = g.sessions.get_mut(identity).filter(|e| e.id == session) else {
            return;
        };
        entry.predecessors_released = true;
        g.routes.release_identity_up_to(identity, session - 1);
    }

    fn publish(&self, g: &Inner) {
        self.status.send_replace(g.status.clone());
    }
}
