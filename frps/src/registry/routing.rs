//! The virtual-host side of [`Registry`]: claiming and looking up http and https routes,
//! under the same lock as the ports.

use std::sync::Arc;

use super::Registry;
use crate::domains::DomainPattern;
use crate::vhost::backend::{HttpBackend, Routed};
use crate::vhost::routes::{Owner, Shares, TlsRoute};
use crate::vhost::TlsTarget;

impl Registry {
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

    /// Whether an http proxy of a connected client holds exactly `name`.
    pub(crate) fn holds_http(&self, name: &str) -> bool {
        self.lock().routes.holds_http(name)
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
}
