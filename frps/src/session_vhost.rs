//! Registering a session's `http` and `https` proxies: names checked against `allowDomains`,
//! routes claimed in the registry (released with the session's ports).

use std::sync::Arc;

use frp_proto::vhost::path::location_key;
use frp_proto::{ProxyId, ProxyKind, ProxySpec};
use tracing::warn;

use crate::domains::DomainPattern;
use crate::session::Session;
use crate::stats::ProxyStats;
use crate::vhost::backend::{BackendParts, HttpBackend};
use crate::vhost::policy::HttpPolicy;
use crate::vhost::routes::Owner;
use crate::vhost::TlsTarget;

impl Session {
    /// Publishes an http or https proxy on the matching vhost port; returns what it will
    /// count, its public address being that port's.
    pub(crate) fn publish_vhost(
        &self,
        spec: &ProxySpec,
        id: ProxyId,
    ) -> Result<Arc<ProxyStats>, String> {
        let (addr, key) = match spec.kind {
            ProxyKind::Https => (self.shared.vhost_addrs.1, "vhostHTTPSPort"),
            _ => (self.shared.vhost_addrs.0, "vhostHTTPPort"),
        };
        let addr = addr.ok_or_else(|| {
            format!(
                "the server has no {key}, so it serves no {} proxies",
                spec.kind
            )
        })?;
        if spec.remote_port != 0 {
            return Err(format!("a {} proxy has no remotePort", spec.kind));
        }
        frp_proto::vhost::validate_spec(&spec.vhost)?;
        if spec.kind == ProxyKind::Https && spec.vhost.has_http_settings() {
            return Err("an https proxy takes only customDomains and subdomain".into());
        }
        if spec.vhost.redirect_https && self.shared.vhost_addrs.1.is_none() {
            return Err(
                "redirectHTTPS needs the server to serve vhostHTTPSPort, which it does not".into(),
            );
        }
        let hosts = self.hosts(spec)?;
        let owner = Owner {
            identity: self.identity.key().to_string(),
            session: self.id,
            proxy: spec.name.clone(),
        };
        let mut stats = ProxyStats::new(spec.name.clone(), spec.kind, addr);
        stats.hosts = hosts;
        if spec.kind == ProxyKind::Http {
            stats.locations = locations(spec)?;
        }
        let stats = Arc::new(stats);
        let claimed = match spec.kind {
            ProxyKind::Https => self.claim_https(&owner, id, &stats),
            _ => self.claim_http(spec, &owner, id, &stats),
        };
        claimed?;
        Ok(stats)
    }

    /// The names a proxy asks for: its custom domains and `subdomain.<subDomainHost>`, each
    /// allowed for this identity.
    fn hosts(&self, spec: &ProxySpec) -> Result<Vec<DomainPattern>, String> {
        let mut hosts = Vec::new();
        for d in &spec.vhost.custom_domains {
            hosts.push(DomainPattern::parse(d)?);
        }
        if !spec.vhost.subdomain.is_empty() {
            let settings = self.shared.settings();
            let base = settings.vhost.subdomain_host.as_ref().ok_or(
                "subdomain needs the server to set subDomainHost; use customDomains instead",
            )?;
            let name = format!("{}.{base}", spec.vhost.subdomain);
            hosts.push(DomainPattern::parse(&name)?);
        }
        if hosts.is_empty() {
            return Err("an http or https proxy needs customDomains or subdomain".into());
        }
        hosts.sort();
        hosts.dedup();
        let settings = self.shared.settings();
        let policy = &settings.domains;
        hosts
            .iter()
            .try_for_each(|h| policy.check(self.identity.name(), h))?;
        Ok(hosts)
    }

    fn claim_http(
        &self,
        spec: &ProxySpec,
        owner: &Owner,
        id: ProxyId,
        stats: &Arc<ProxyStats>,
    ) -> Result<(), String> {
        let settings = self.shared.settings();
        let parts = BackendParts {
            conn: self.conn.clone(),
            tracker: self.shared.streams.clone(),
            share: self.budget.join(settings.max_connections_per_proxy),
            gauges: self.shared.gauges.clone(),
            stats: Arc::clone(stats),
        };
        let policy = HttpPolicy::new(&spec.vhost)?;
        let backend = Arc::new(HttpBackend::new(spec.name.clone(), id, policy, parts));
        let domains = &settings.domains;
        let shares = |identity: &str, host: &DomainPattern| domains.names_exactly(identity, host);
        let registry = &self.shared.registry;
        registry
            .claim_http(&stats.hosts, &stats.locations, owner, &backend, &shares)
            .map_err(|(why, held)| self.refused(why, &held))
    }

    fn claim_https(
        &self,
        owner: &Owner,
        id: ProxyId,
        stats: &Arc<ProxyStats>,
    ) -> Result<(), String> {
        let max = self.shared.settings().max_connections_per_proxy;
        let target = Arc::new(TlsTarget {
            name: owner.proxy.clone(),
            id,
            conn: self.conn.clone(),
            share: self.budget.join(max),
            stats: Arc::clone(stats),
        });
        let registry = &self.shared.registry;
        registry
            .claim_https(&stats.hosts, owner, &target)
            .map_err(|(why, held)| self.refused(why, &held))
    }

    /// Logs who holds what was asked for (the asking client is told only that someone does).
    fn refused(&self, why: String, held: &Owner) -> String {
        warn!(
            client = %self.identity, holder = %held.identity, holder_proxy = %held.proxy,
            reason = %why, "route already held"
        );
        why
    }
}

/// An http proxy's locations in match form, sorted, `/` when it gives none.
fn locations(spec: &ProxySpec) -> Result<Vec<String>, String> {
    let mut locations = spec
        .vhost
        .locations
        .iter()
        .map(|l| location_key(l))
        .collect::<Result<Vec<_>, _>>()?;
    if locations.is_empty() {
        locations.push("/".into());
    }
    locations.sort();
    locations.dedup();
    Ok(locations)
}
