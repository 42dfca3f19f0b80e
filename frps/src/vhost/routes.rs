//! The routing table of the virtual hosts: host -> (longest-prefix location -> http proxy) for
//! `vhostHTTPPort`, and host -> https proxy for `vhostHTTPSPort`.
//!
//! Each entry remembers who holds it (identity and session). A newer session of the same
//! identity replaces an older one's entries; a session's entries go in one call when it ends;
//! claims for one proxy are all-or-nothing.
//!
//! A host key (an exact name or a `*.` wildcard, as claimed) belongs to the identities holding
//! entries under it, across http and https:
//! - another identity cannot claim an https entry where one holds http, nor the reverse;
//! - locations of one host can belong to several identities only when each of them has the
//!   host named exactly in its own `[[clients]] allowDomains` (the operator's opt-in); never
//!   the same location twice.
//!
//! Lookups take the most specific key that has any entry, http or https, and serve the
//! request only from the identities holding that key: a wildcard owned by someone else never
//! answers for a name another identity holds (so it cannot, say, answer an ACME challenge for
//! it), and on the TLS port an exact http name or certificate (terminated by frps) beats a
//! wildcard passthrough.

use std::collections::HashMap;

use frp_proto::vhost::guard::{self, guard_key};
use frp_proto::vhost::path::location_covers;
use frp_proto::ProxyName;

use crate::domains::{lookup_keys, DomainPattern};

/// Who holds an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The client identity.
    pub identity: String,
    /// Its session.
    pub session: u64,
    /// The proxy the entry routes to.
    pub proxy: ProxyName,
}

#[derive(Clone, Debug)]
struct Entry<T> {
    owner: Owner,
    target: T,
    /// The location's [`guard_key`] (http entries; empty for https).
    guard: String,
}

/// Http and https routes to targets of type `H` and `S`.
#[derive(Debug)]
pub struct RouteTable<H, S> {
    /// Host pattern -> locations, longest first.
    http: HashMap<String, Vec<(String, Entry<H>)>>,
    https: HashMap<String, Entry<S>>,
}

impl<H, S> Default for RouteTable<H, S> {
    fn default() -> Self {
        Self {
            http: HashMap::new(),
            https: HashMap::new(),
        }
    }
}

/// How a TLS connection for a name is to be served.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsRoute<S> {
    /// Passed through untouched to this https proxy.
    Passthrough(S),
    /// Terminated by frps (the most specific holder serves http), if it has a certificate.
    Terminate,
    /// No proxy holds the name.
    Unknown,
}

/// Decides whether two identities may hold locations of one host.
pub type Shares<'a> = &'a dyn Fn(&str, &DomainPattern) -> bool;

/// Why a claim was refused: the entry is held by someone else.
fn conflict(held: &Owner, new: &Owner, what: &str) -> Option<String> {
    if held.session == new.session {
        return Some(format!(
            "{what} is already used by proxy '{}' of this client",
            held.proxy
        ));
    }
    if held.identity == new.identity && held.session < new.session {
        return None; // a newer connection of the same client takes over
    }
    Some(format!(
        "client '{}' asked for {what}, which another client holds",
        new.identity
    ))
}

impl<H: Clone, S: Clone> RouteTable<H, S> {
    /// Claims every `host` x `location` pair for `target`, or nothing. `locations` are
    /// location keys; `shares` says whether an identity may share a host.
    ///
    /// # Errors
    /// Says who asked for what and that it is held, for the first pair held by another.
    pub fn claim_http(
        &mut self,
        hosts: &[DomainPattern],
        locations: &[String],
        owner: &Owner,
        target: &H,
        shares: Shares<'_>,
    ) -> Result<(), (String, Owner)> {
        for host in hosts {
            self.check_http(host, locations, owner, shares)?;
        }
        for host in hosts {
            let locs = self.http.entry(host.as_str().to_string()).or_default();
            for loc in locations {
                locs.retain(|(l, _)| l != loc);
                let entry = Entry {
                    owner: owner.clone(),
                    target: target.clone(),
                    guard: guard_key(loc),
                };
                locs.push((loc.clone(), entry));
            }
            locs.sort_by_key(|(loc, _)| std::cmp::Reverse(loc.len()));
        }
        Ok(())
    }

    fn check_http(
        &self,
        host: &DomainPattern,
        locations: &[String],
        owner: &Owner,
        shares: Shares<'_>,
    ) -> Result<(), (String, Owner)> {
        let who = &owner.identity;
        if let Some(e) = self.https.get(host.as_str()) {
            if e.owner.identity != *who {
                let why = format!(
                    "client '{who}' asked for http {host}, which another client serves as https"
                );
                return Err((why, e.owner.clone()));
            }
        }
        let Some(locs) = self.http.get(host.as_str()) else {
            return Ok(());
        };
        for (loc, entry) in locs.iter().filter(|(l, _)| locations.contains(l)) {
            if let Some(why) = conflict(&entry.owner, owner, &format!("{host}{loc}")) {
                return Err((why, entry.owner.clone()));
            }
        }
        match entry_owner_other(locs, who) {
            Some(other) if !(shares(who, host) && shares(&other.identity, host)) => {
                let loc = locations.first().map_or("", String::as_str);
                let why = format!(
                    "client '{who}' asked for {host}{loc}; another client holds {host} (to share a host, name it in both clients' allowDomains)"
                );
                Err((why, other))
            }
            _ => Ok(()),
        }
    }

    /// Claims every `host` for the https `target`, or nothing.
    ///
    /// # Errors
    /// As [`RouteTable::claim_http`].
    pub fn claim_https(
        &mut self,
        hosts: &[DomainPattern],
        owner: &Owner,
        target: &S,
    ) -> Result<(), (String, Owner)> {
        for host in hosts {
            if let Some(entry) = self.https.get(host.as_str()) {
                if let Some(why) = conflict(&entry.owner, owner, host.as_str()) {
                    return Err((why, entry.owner.clone()));
                }
            }
            let http = self.http.get(host.as_str());
            if let Some(other) = http.and_then(|locs| entry_owner_other(locs, &owner.identity)) {
                let why = format!(
                    "client '{}' asked for https {host}, which another client serves as http",
                    owner.identity
                );
                return Err((why, other));
            }
        }
        for host in hosts {
            let entry = Entry {
                owner: owner.clone(),
                target: target.clone(),
                guard: String::new(),
            };
            self.https.insert(host.as_str().to_string(), entry);
        }
        Ok(())
    }

    /// Drops every entry `identity` holds from sessions up to `session`.
    pub fn release_identity_up_to(&mut self, identity: &str, session: u64) {
        let gone = |o: &Owner| o.identity == identity && o.session <= session;
        self.http.retain(|_, locs| {
            locs.retain(|(_, e)| !gone(&e.owner));
            !locs.is_empty()
        });
        self.https.retain(|_, e| !gone(&e.owner));
    }

    /// Drops every entry of proxy `proxy` of `identity`'s `session`.
    pub fn release_proxy(&mut self, identity: &str, session: u64, proxy: &ProxyName) {
        let gone = |o: &Owner| o.session == session && o.identity == identity && o.proxy == *proxy;
        self.http.retain(|_, locs| {
            locs.retain(|(_, e)| !gone(&e.owner));
            !locs.is_empty()
        });
        self.https.retain(|_, e| !gone(&e.owner));
    }

    /// The identities holding entries under `key`, http or https.
    fn holders(&self, key: &str) -> Vec<&str> {
        let http = self.http.get(key).into_iter().flatten();
        let mut ids: Vec<&str> = http.map(|(_, e)| e.owner.identity.as_str()).collect();
        ids.extend(self.https.get(key).map(|e| e.owner.identity.as_str()));
        ids
    }

    /// Whether an http proxy holds exactly `name` (not through a wildcard).
    pub fn holds_http(&self, name: &str) -> bool {
        self.http.contains_key(name)
    }

    /// The http target for a request to `host` (normalized) and `path` (in
    /// [`match_form`](frp_proto::vhost::path::match_form)): the longest matching location
    /// under the most specific key that has entries, or under a less specific one of the same
    /// holders.
    pub fn lookup_http(&self, host: &str, path: &str) -> Option<(H, Owner)> {
        self.lookup_by(host, |loc, _| location_covers(loc, path))
    }

    /// The http target a lenient service would serve a request from: as
    /// [`RouteTable::lookup_http`], with each location's guard key compared to `form` (one of
    /// the [`guard_forms`](frp_proto::vhost::guard::guard_forms)).
    pub fn lookup_http_ci(&self, host: &str, form: &str) -> Option<(H, Owner)> {
        self.lookup_by(host, |_, e| guard::covers(&e.guard, form))
    }

    fn lookup_by(
        &self,
        host: &str,
        covers: impl Fn(&str, &Entry<H>) -> bool,
    ) -> Option<(H, Owner)> {
        let mut holders: Option<Vec<&str>> = None;
        for key in lookup_keys(host) {
            if !self.http.contains_key(&key) && !self.https.contains_key(&key) {
                continue;
            }
            let holders = holders.get_or_insert_with(|| self.holders(&key));
            let Some(locs) = self.http.get(&key) else {
                continue;
            };
            let found = locs
                .iter()
                .find(|(loc, e)| holders.contains(&e.owner.identity.as_str()) && covers(loc, e));
            if let Some((_, e)) = found {
                return Some((e.target.clone(), e.owner.clone()));
            }
        }
        None
    }

    /// How to serve a TLS connection for the SNI `host` (normalized): by the most specific
    /// key with an entry or a certificate (`certified(key)`: frps terminates TLS for `host`
    /// with a certificate configured for exactly `key`); at one key an https proxy wins.
    pub fn lookup_tls(&self, host: &str, certified: impl Fn(&str) -> bool) -> TlsRoute<S> {
        for key in lookup_keys(host) {
            if let Some(e) = self.https.get(&key) {
                return TlsRoute::Passthrough(e.target.clone());
            }
            if self.http.contains_key(&key) || certified(&key) {
                return TlsRoute::Terminate;
            }
        }
        TlsRoute::Unknown
    }
}

/// An owner of one of `locs` that is not `identity`.
fn entry_owner_other<H>(locs: &[(String, Entry<H>)], identity: &str) -> Option<Owner> {
    locs.iter()
        .find(|(_, e)| e.owner.identity != identity)
        .map(|(_, e)| e.owner.clone())
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
