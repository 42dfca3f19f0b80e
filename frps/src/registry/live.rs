//! What the admin API and `/metrics` read from the registry, and the orders it carries to a
//! session: the live side of [`Registry`], kept apart from the ownership rules in `mod.rs`.

use std::sync::Arc;
use std::time::SystemTime;

use frp_proto::{ProxyKind, ProxyName};
use tokio::sync::{mpsc, oneshot};

use super::{Registry, MAX_REFUSALS};
use crate::stats::ProxyStats;

/// An order for a running session, sent through the registry.
#[derive(Debug)]
pub enum SessionCommand {
    /// Withdraw these proxies (a reload no longer allows them) and tell the client why;
    /// the sender is dropped once they are withdrawn.
    Withdraw(Vec<(ProxyName, String)>, oneshot::Sender<()>),
    /// A newer connection of the same client took over (for the reason given): withdraw every
    /// proxy at once, and close the connection once its open streams have ended.
    Replaced(String),
}

/// One session as the admin API shows it, copied out under the lock.
#[derive(Clone, Debug)]
pub struct SessionView {
    /// The identity as the client's certificate spells it.
    pub name: String,
    /// The identity's key (lowercase), which the API's paths use.
    pub key: String,
    /// The session number.
    pub session: u64,
    /// The client's connection (its address, RTT and congestion figures are read from it).
    pub conn: frp_runtime::link::Link,
    /// When the session was accepted.
    pub since: SystemTime,
    /// The client's protocol minor and agent (0 and empty until its `Hello`).
    pub minor: u16,
    /// The client's self-description (`frpc/0.1.0`), as it sent it.
    pub agent: String,
    /// Its published proxies.
    pub proxies: Vec<Arc<ProxyStats>>,
    /// Proxies it asked for that are not published: their type, and why.
    pub refused: Vec<(ProxyName, ProxyKind, String)>,
}

impl Registry {
    /// Every session, by identity key.
    pub fn sessions(&self) -> Vec<SessionView> {
        let g = self.lock();
        let mut all: Vec<SessionView> = g
            .sessions
            .iter()
            .map(|(key, e)| SessionView {
                name: e.identity.name().to_string(),
                key: key.clone(),
                session: e.id,
                conn: e.conn.clone(),
                since: e.since,
                minor: e.minor,
                agent: e.agent.clone(),
                proxies: e.proxies.values().cloned().collect(),
                refused: (e.refused.iter())
                    .map(|(n, (k, r))| (n.clone(), *k, r.clone()))
                    .collect(),
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// Records what the client said in its `Hello`.
    pub fn greeted(&self, identity: &str, session: u64, minor: u16, agent: &str) {
        let mut g = self.lock();
        if let Some(e) = g.sessions.get_mut(identity).filter(|e| e.id == session) {
            e.minor = minor;
            e.agent = frp_proto::truncate_text(agent, 64).to_string();
        }
    }

    /// Remembers why a proxy of `session` is not published (refused, or withdrawn by a
    /// reload), for the API; at most [`MAX_REFUSALS`] per session.
    pub fn proxy_refused(
        &self,
        identity: &str,
        session: u64,
        (name, kind): (&ProxyName, ProxyKind),
        reason: &str,
    ) {
        let mut g = self.lock();
        let Some(e) = g.sessions.get_mut(identity).filter(|e| e.id == session) else {
            return;
        };
        if e.refused.len() < MAX_REFUSALS || e.refused.contains_key(name) {
            e.refused.insert(name.clone(), (kind, reason.to_string()));
        }
    }

    /// Forgets a proxy's refusal (its client removed it).
    pub fn refusal_cleared(&self, identity: &str, session: u64, name: &ProxyName) {
        let mut g = self.lock();
        if let Some(e) = g.sessions.get_mut(identity).filter(|e| e.id == session) {
            e.refused.remove(name);
        }
    }

    /// Sends `command` to the live session of `identity`; `false` when there is none or its
    /// queue is full (it is busy with an earlier order).
    pub fn command(&self, identity: &str, session: u64, command: SessionCommand) -> bool {
        let g = self.lock();
        let e = g.sessions.get(identity).filter(|e| e.id == session);
        e.is_some_and(|e| e.commands.try_send(command).is_ok())
    }

    /// The connection of `identity`'s live session (the key ignores case).
    pub fn connection(&self, identity: &str) -> Option<frp_runtime::link::Link> {
        let key = crate::identity::canonical(identity);
        self.lock().sessions.get(&key).map(|e| e.conn.clone())
    }

    /// Calls `f` with every published proxy and its client's key, under the registry's lock:
    /// `f` must be short (the traffic history reads counters with it). Returns the bytes
    /// (in, out) of proxies that went away, read under the same lock, so a proxy that ends
    /// meanwhile is counted once, live or retired.
    pub fn each_proxy(&self, mut f: impl FnMut(&str, &Arc<ProxyStats>)) -> (u64, u64) {
        let g = self.lock();
        for (key, e) in &g.sessions {
            e.proxies.values().for_each(|p| f(key, p));
        }
        (self.retired.tcp_to_quic(), self.retired.quic_to_tcp())
    }

    /// Bytes (in, out) carried by every proxy since the start, ended ones included.
    pub fn traffic(&self) -> (u64, u64) {
        let mut live = (0, 0);
        let (into, out) = self.each_proxy(|_, p| {
            live.0 += p.bytes_in();
            live.1 += p.bytes_out();
        });
        (into + live.0, out + live.1)
    }
}

/// A session's command queue: small, since orders are rare and each is handled at once.
pub fn command_channel() -> (mpsc::Sender<SessionCommand>, mpsc::Receiver<SessionCommand>) {
    mpsc::channel(4)
}
