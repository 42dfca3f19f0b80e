//! Publishing a session's proxies, and withdrawing one (the client's `RemoveProxies`, or a
//! reload that no longer allows it): each is checked against the policy in force, bound (tcp)
//! or routed (http/https, [`crate::session_vhost`]), and given a [`ProxyStats`] that its data
//! path counts into.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use frp_proto::{
    truncate_text, ControlMsg, ProxiesClosed, ProxyClosed, ProxyId, ProxyName, ProxyOutcome,
    ProxyResult, ProxySpec, MAX_SAFE_REASON_LEN,
};
use futures_util::SinkExt as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::policy::NO_PORTS;
use crate::proxy::TcpProxy;
use crate::session::{Published, Session, Writer};
use crate::stats::ProxyStats;
use crate::vhost::io::Admission;

impl Session {
    /// Authorizes and binds each requested proxy; one refusal never affects the others.
    ///
    /// A name counts against `maxPortsPerClient` from the first time it is asked for, refused
    /// or not, so one message cannot make the server try more than that; a refused name may be
    /// asked for again (a client's reload retries it) without counting twice.
    pub(crate) async fn publish_all(&mut self, specs: &[ProxySpec]) -> Vec<ProxyResult> {
        let mut results = Vec::with_capacity(specs.len());
        let mut batch = HashSet::with_capacity(specs.len());
        for spec in specs {
            let id = ProxyId(self.last_id.saturating_add(1));
            let max = self.shared.settings().max_proxies_per_client;
            let known = self.asked.contains(&spec.name);
            let twice = !batch.insert(&spec.name) || self.published.contains_key(&spec.name);
            let outcome = if twice {
                Err(format!("proxy name '{}' appears twice", spec.name))
            } else if !known && self.asked.len() >= max {
                Err(format!(
                    "this server allows at most {max} proxies per client"
                ))
            } else {
                self.asked.insert(spec.name.clone());
                self.last_id = id.0;
                self.publish(spec, id).await
            };
            results.push(self.outcome(spec, id, outcome));
        }
        results
    }

    fn outcome(
        &self,
        spec: &ProxySpec,
        id: ProxyId,
        r: Result<Arc<ProxyStats>, String>,
    ) -> ProxyResult {
        let (client, proxy) = (&self.identity, &spec.name);
        let registry = &self.shared.registry;
        let outcome = match r {
            Ok(stats) => {
                let remote_addr = stats.remote;
                info!(%client, %proxy, %remote_addr, kind = spec.kind.as_str(), "proxy published");
                registry.proxy_published(client.key(), self.id, &stats);
                ProxyOutcome::Bound { id, remote_addr }
            }
            Err(reason) => {
                warn!(%client, %proxy, remote_port = spec.remote_port, %reason, "proxy refused");
                // Short enough that a Welcome refusing every proxy still fits in one frame.
                let reason = truncate_text(&reason, MAX_SAFE_REASON_LEN).to_string();
                registry.proxy_refused(client.key(), self.id, (proxy, spec.kind), &reason);
                ProxyOutcome::Refused { reason }
            }
        };
        ProxyResult {
            name: spec.name.clone(),
            outcome,
        }
    }

    async fn publish(&mut self, spec: &ProxySpec, id: ProxyId) -> Result<Arc<ProxyStats>, String> {
        if spec.kind.is_vhost() {
            let stats = self.publish_vhost(spec, id)?;
            let held = Published {
                kind: spec.kind,
                listener: None,
            };
            self.published.insert(spec.name.clone(), held);
            return Ok(stats);
        }
        let listener = self.bind_port(spec.remote_port).await?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let stats = Arc::new(ProxyStats::new(spec.name.clone(), spec.kind, addr));
        let settings = self.shared.settings();
        let proxy = TcpProxy {
            name: spec.name.clone(),
            id,
            listener,
            conn: self.conn.clone(),
            streams: self.shared.streams.clone(),
            open_timeout: settings.open_stream_timeout,
            pending: Arc::new(Semaphore::new(settings.max_pending_per_proxy)),
            admission: Admission::new(Semaphore::MAX_PERMITS, settings.max_connections_per_ip),
            share: self.budget.join(settings.max_connections_per_proxy),
            gauges: self.shared.gauges.clone(),
            stats: Arc::clone(&stats),
        };
        let handle = self.listeners.spawn(proxy.serve());
        let held = Published {
            kind: spec.kind,
            listener: Some((addr.port(), handle)),
        };
        self.published.insert(spec.name.clone(), held);
        Ok(stats)
    }

    /// Binds `port`, or with 0 the first free port this identity may use.
    async fn bind_port(&self, port: u16) -> Result<TcpListener, String> {
        let settings = self.shared.settings();
        let policy = &settings.policy;
        if port != 0 {
            policy.check(self.identity.name(), port)?;
            return self.claim_and_bind(port).await;
        }
        if policy.global.is_empty() {
            return Err(NO_PORTS.into());
        }
        let registry = &self.shared.registry;
        for candidate in policy.candidates(self.identity.name()) {
            if registry.port_taken(candidate, &self.identity, self.id) {
                continue;
            }
            if let Ok(l) = self.claim_and_bind(candidate).await {
                return Ok(l);
            }
        }
        Err("no free port left in the ports this client may use".into())
    }

    async fn claim_and_bind(&self, port: u16) -> Result<TcpListener, String> {
        let registry = &self.shared.registry;
        if let Err(owner) = registry.claim_port(port, &self.identity, self.id) {
            debug!(client = %self.identity, port, %owner, "port already claimed");
            return Err(match owner == self.identity.key() {
                true => format!("port {port} is already used by another proxy of this client"),
                false => format!("port {port} is already in use by another client"),
            });
        }
        let addr = SocketAddr::new(self.shared.settings().proxy_bind_ip, port);
        TcpListener::bind(addr).await.map_err(|e| {
            registry.unclaim_port(port, self.id);
            format!("cannot bind {addr}: {e}")
        })
    }

    /// Withdraws proxies a reload no longer allows and tells a client of minor 2 or later
    /// which and why (an older one cannot be told: its proxies just stop).
    ///
    /// # Errors
    /// Why the session ends: the notice could not be sent.
    pub(crate) async fn withdraw_ordered(
        &mut self,
        names: Vec<(ProxyName, String)>,
        writer: &mut Writer,
    ) -> Result<(), String> {
        let mut closed = Vec::with_capacity(names.len());
        for (name, why) in names {
            if self.published.contains_key(&name) {
                let reason = self.withdraw_one(&name, Some(&why)).await;
                closed.push(ProxyClosed { name, reason });
            }
        }
        if closed.is_empty() || self.client_minor < 2 {
            return Ok(());
        }
        let notice = ControlMsg::ProxiesClosed(ProxiesClosed { closed });
        (writer.send(notice).await).map_err(|e| format!("sending proxies-closed: {e}"))
    }

    /// Withdraws one proxy: its listener closes and its port and routes are released before
    /// this returns; connections already open go on. `why` is the server's reason (a reload),
    /// or `None` for the client's own `RemoveProxies` (minor 2). Returns the reason for the
    /// client's `ProxiesClosed`.
    pub(crate) async fn withdraw_one(&mut self, name: &ProxyName, why: Option<&str>) -> String {
        // Withdrawn either way: the client may ask for the name again.
        let asked = self.asked.remove(name);
        let (client, session) = (&self.identity, self.id);
        let registry = &self.shared.registry;
        if why.is_none() {
            registry.refusal_cleared(client.key(), session, name);
        }
        let Some(published) = self.published.remove(name) else {
            return match asked {
                true => "removed by the client (it was not published)".into(),
                false => "no proxy of that name in this session".into(),
            };
        };
        let port = match published.listener {
            Some((port, handle)) => {
                handle.abort();
                // The port is free once the aborted task (which owns the listener) is reaped.
                while let Some(done) = self.listeners.join_next_with_id().await {
                    let id = done.map_or_else(|e| e.id(), |(id, ())| id);
                    if id == handle.id() {
                        break;
                    }
                }
                Some(port)
            }
            None => None,
        };
        let (client, session) = (&self.identity, self.id);
        let registry = &self.shared.registry;
        registry.proxy_withdrawn(client.key(), session, name, port);
        if let Some(why) = why {
            warn!(%client, proxy = %name, reason = %why, "proxy withdrawn");
            let proxy = (name, published.kind);
            registry.proxy_refused(client.key(), session, proxy, why);
            return why.to_string();
        }
        info!(%client, proxy = %name, "proxy removed by the client");
        "removed by the client".into()
    }
}
