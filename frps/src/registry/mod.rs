//! Who holds what: live sessions by identity, public ports and virtual-host routes by owner.
//!
//! One mutex guards both maps; it is never held across an `.await`. Every change updates the
//! [`ServerStatus`] on a watch channel in place, one entry at a time (never a copy of the whole
//! map, so a connect or disconnect costs the same with 10 clients or 10,000); tests read it.
//!
//! Identities are keyed by their [`ClientId::key`], so case variants are one client. A newer
//! session of an identity replaces the older one (unless [`crate::takeover`] finds it
//! flapping); what the older one held, ports and routes, stays reserved for that identity
//! until the newer one has claimed its own ([`Registry::release_predecessors`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use frp_proto::ProxyName;
use rustls::pki_types::CertificateDer;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::identity::ClientId;
use crate::stats::ProxyStats;
use crate::takeover::{Contested, Takeovers, Verdict};
use crate::vhost::backend::HttpBackend;
use crate::vhost::routes::RouteTable;
use crate::vhost::TlsTarget;
use frp_runtime::Traffic;

/// The routes of both vhost ports.
type Routes = RouteTable<Arc<HttpBackend>, Arc<TlsTarget>>;

mod live;
mod routing;
pub use live::{command_channel, SessionCommand, SessionView};

/// Refusals remembered per session for the admin API, at most (the protocol's proxy limit).
const MAX_REFUSALS: usize = frp_proto::MAX_PROXIES;

/// A snapshot of the server's clients and their published proxies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStatus {
    /// Connected clients by identity, in lowercase (identities ignore case).
    pub clients: BTreeMap<String, ClientStatus>,
}

/// One connected client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientStatus {
    /// The identity as the client's certificate spells it.
    pub name: String,
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
    pub conn: frp_runtime::link::Link,
    /// Cancelled once the old session has released everything it held.
    pub finished: CancellationToken,
    /// Where the old session takes orders ([`SessionCommand::Replaced`]).
    pub commands: mpsc::Sender<SessionCommand>,
}

#[derive(Debug)]
struct SessionEntry {
    id: u64,
    identity: ClientId,
    conn: frp_runtime::link::Link,
    /// The client's certificate, to recheck against a reloaded revocation list.
    cert: CertificateDer<'static>,
    finished: CancellationToken,
    /// Whether the routes older sessions of this identity left were released.
    predecessors_released: bool,
    /// The client's address as last seen (it changes when the connection migrates).
    remote: SocketAddr,
    /// When the session was accepted.
    since: SystemTime,
    /// The client's protocol minor and agent, from its `Hello` (0 and empty before it).
    minor: u16,
    agent: String,
    /// Its published proxies and what they carried.
    proxies: BTreeMap<ProxyName, Arc<ProxyStats>>,
    /// Proxies it asked for that were refused or withdrawn, and why (bounded).
    refused: BTreeMap<ProxyName, (frp_proto::ProxyKind, String)>,
    /// Where the server sends the session orders (a reload withdrawing proxies).
    commands: mpsc::Sender<SessionCommand>,
}

impl SessionEntry {
    /// Moves every proxy's bytes into `retired` and forgets the proxies.
    fn retire_proxies(&mut self, retired: &Traffic) {
        for (_, p) in std::mem::take(&mut self.proxies) {
            p.retire_into(retired);
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_session: u64,
    sessions: HashMap<String, SessionEntry>,
    /// Public port -> (identity key, session id).
    ports: HashMap<u16, (String, u64)>,
    /// Virtual-host routes, released with the ports.
    routes: Routes,
    /// Recent takeovers, to tell a reconnect from two clients sharing a certificate.
    takeovers: Takeovers,
}

impl Inner {
    /// Releases the ports and routes `identity` holds from sessions up to `session`.
    fn release_up_to(&mut self, identity: &str, session: u64) {
        self.ports
            .retain(|_, (owner, s)| !(owner == identity && *s <= session));
        self.routes.release_identity_up_to(identity, session);
    }
}

/// Shared registry of sessions and ports.
#[derive(Clone, Debug)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    status: Arc<watch::Sender<ServerStatus>>,
    /// Bytes of proxies that went away.
    retired: Arc<Traffic>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            status: Arc::new(watch::channel(ServerStatus::default()).0),
            retired: Arc::default(),
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

    /// Registers a new session for `identity`, which takes orders on `commands`; returns its
    /// id and the session it replaces.
    ///
    /// # Errors
    /// [`Contested`] when the identity's live connection may not be taken over: more than
    /// `takeover_limit` takeovers within a minute (see [`crate::takeover`]).
    pub fn open_session(
        &self,
        identity: &ClientId,
        conn: &frp_runtime::link::Link,
        cert: CertificateDer<'static>,
        finished: CancellationToken,
        takeover_limit: usize,
        commands: mpsc::Sender<SessionCommand>,
    ) -> Result<(u64, Option<Replaced>), Contested> {
        let mut g = self.lock();
        let remote = conn.remote_address();
        check_takeover(&mut g, identity.key(), remote, takeover_limit)?;
        g.next_session += 1;
        let id = g.next_session;
        let entry = SessionEntry {
            id,
            identity: identity.clone(),
            conn: conn.clone(),
            cert,
            finished,
            predecessors_released: false,
            remote,
            since: SystemTime::now(),
            minor: 0,
            agent: String::new(),
            proxies: BTreeMap::new(),
            refused: BTreeMap::new(),
            commands,
        };
        let mut old = g.sessions.insert(identity.key().to_string(), entry);
        if let Some(o) = old.as_mut() {
            o.retire_proxies(&self.retired);
        }
        let client = ClientStatus {
            name: identity.name().to_string(),
            session: id,
            remote,
            proxies: BTreeMap::new(),
        };
        self.status.send_modify(|s| {
            s.clients.insert(identity.key().to_string(), client);
        });
        let replaced = old.map(|o| Replaced {
            conn: o.conn,
            finished: o.finished,
            commands: o.commands,
        });
        Ok((id, replaced))
    }

    /// Connections of the sessions whose certificate matches `pred`, with their identities.
    pub fn sessions_where(
        &self,
        pred: impl Fn(&CertificateDer<'static>) -> bool,
    ) -> Vec<(String, frp_runtime::link::Link)> {
        let g = self.lock();
        g.sessions
            .values()
            .filter(|e| pred(&e.cert))
            .map(|e| (e.identity.name().to_string(), e.conn.clone()))
            .collect()
    }

    /// Claims `port` for a session: a free port, or one an older session of the same
    /// identity left reserved for it.
    ///
    /// # Errors
    /// Returns the identity key that holds the port already.
    pub fn claim_port(&self, port: u16, identity: &ClientId, session: u64) -> Result<(), String> {
        let mut g = self.lock();
        match g.ports.get(&port) {
            Some((owner, s)) if !reserved_for(owner, *s, identity, session) => Err(owner.clone()),
            _ => {
                g.ports.insert(port, (identity.key().to_string(), session));
                Ok(())
            }
        }
    }

    /// Whether `port` is held by a session other than `session`'s predecessors.
    pub fn port_taken(&self, port: u16, identity: &ClientId, session: u64) -> bool {
        let g = self.lock();
        g.ports
            .get(&port)
            .is_some_and(|(owner, s)| !reserved_for(owner, *s, identity, session))
    }

    /// Gives back a port claimed by `session` (when binding it failed).
    pub fn unclaim_port(&self, port: u16, session: u64) {
        let mut g = self.lock();
        if g.ports.get(&port).is_some_and(|(_, s)| *s == session) {
            g.ports.remove(&port);
        }
    }

    /// Records a published proxy in the status snapshot, with what it will count.
    pub fn proxy_published(&self, identity: &str, session: u64, stats: &Arc<ProxyStats>) {
        let (name, addr) = (&stats.name, stats.remote);
        let mut g = self.lock();
        if let Some(e) = g.sessions.get_mut(identity).filter(|e| e.id == session) {
            e.refused.remove(name);
            e.proxies.insert(name.clone(), Arc::clone(stats));
        }
        self.update_client(identity, session, |c| {
            c.proxies.insert(name.clone(), addr);
        });
    }

    /// Removes `session` from the session map and the status, unless a newer session of the
    /// same identity has taken its place. Its ports were already released by
    /// [`Registry::proxies_withdrawn`] when its listeners closed.
    pub fn close_session(&self, identity: &str, session: u64) {
        let mut g = self.lock();
        if g.sessions.get(identity).is_some_and(|e| e.id == session) {
            if let Some(mut e) = g.sessions.remove(identity) {
                e.retire_proxies(&self.retired);
            }
        }
        self.status.send_if_modified(|s| {
            let current = s
                .clients
                .get(identity)
                .is_some_and(|c| c.session == session);
            current && s.clients.remove(identity).is_some()
        });
    }

    /// Records the current address of every client whose connection migrated since the last
    /// look. quinn has no event for it, so the server calls this now and then: one pass over
    /// the sessions, instead of a timer in each.
    pub fn check_paths(&self) {
        let mut g = self.lock();
        for (key, e) in &mut g.sessions {
            let remote = e.conn.remote_address();
            if remote == e.remote {
                continue;
            }
            e.remote = remote;
            tracing::info!(client = %key, %remote, "client address changed; connection migrated");
            self.update_client(key, e.id, |c| c.remote = remote);
        }
    }

    /// Applies `f` to the published status of `session` of `identity`, if it is the
    /// current one: one entry changes, the snapshot is never copied whole.
    fn update_client(&self, identity: &str, session: u64, f: impl FnOnce(&mut ClientStatus)) {
        self.status.send_if_modified(|s| {
            let client = s.clients.get_mut(identity).filter(|c| c.session == session);
            client.map(f).is_some()
        });
    }

    /// Releases a session's ports and routes, and drops its proxies from the status (its
    /// listeners were closed early). The one place a session gives back what it held.
    ///
    /// A session replaced by a newer one of the same identity keeps its ports and routes, for
    /// that identity only, until the newer one has claimed its own
    /// ([`Registry::release_predecessors`]): no other client can take one in between.
    pub fn proxies_withdrawn(&self, identity: &str, session: u64) {
        let mut g = self.lock();
        let successor = g.sessions.get(identity).filter(|e| e.id > session);
        if successor.is_none_or(|e| e.predecessors_released) {
            g.release_up_to(identity, session);
        }
        if let Some(e) = g.sessions.get_mut(identity).filter(|e| e.id == session) {
            e.retire_proxies(&self.retired);
        }
        drop(g);
        self.update_client(identity, session, |c| c.proxies.clear());
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
        if let Some(e) = g.sessions.get_mut(identity).filter(|e| e.id == session) {
            if let Some(p) = e.proxies.remove(name) {
                p.retire_into(&self.retired);
            }
        }
        drop(g);
        self.update_client(identity, session, |c| {
            c.proxies.remove(name);
        });
    }

    /// Releases the ports and routes older sessions of `identity` left reserved for
    /// `session`, once it has claimed its own (or its grace ran out); nothing if a newer
    /// session replaced it.
    pub fn release_predecessors(&self, identity: &str, session: u64) {
        let mut g = self.lock();
        let Some(entry) = g.sessions.get_mut(identity).filter(|e| e.id == session) else {
            return;
        };
        entry.predecessors_released = true;
        g.release_up_to(identity, session - 1);
    }
}

/// Whether a port held by `(owner, held_by)` is reserved for `session` of `identity`: held
/// by an older session of that identity, which it replaced.
fn reserved_for(owner: &str, held_by: u64, identity: &ClientId, session: u64) -> bool {
    owner == identity.key() && held_by < session
}

/// Lets a connection from `remote` replace `identity`'s live one, unless that is flapping.
fn check_takeover(
    g: &mut Inner,
    identity: &str,
    remote: SocketAddr,
    limit: usize,
) -> Result<(), Contested> {
    let live = g.sessions.get(identity).map(|e| &e.conn);
    let Some(holder) = live.filter(|c| c.close_reason().is_none()) else {
        return Ok(());
    };
    let holder = holder.remote_address();
    if holder == remote {
        return Ok(());
    }
    match g.takeovers.attempt(identity, Instant::now(), limit) {
        Verdict::Allow => Ok(()),
        v => Err(Contested {
            holder,
            tripped: v == Verdict::Tripped,
        }),
    }
}
