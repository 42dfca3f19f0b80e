//! The routing table of the virtual hosts: host -> (longest-prefix location -> http proxy) for
//! `vhostHTTPPort`, and host -> https proxy for `vhostHTTPSPort`.
//!
//! Each entry remembers who holds it (identity and session). Another identity can never take
//! an entry; a newer session of the same identity replaces an older one's; a session's entries
//! go in one call when it ends. Claims for one proxy are all-or-nothing.

use std::collections::HashMap;

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

/// Whether `location` (a path prefix) covers `path`, on a segment boundary: `/api` covers
/// `/api`, `/api/` and `/api/v1` but not `/apix`.
pub fn location_matches(location: &str, path: &str) -> bool {
    match path.strip_prefix(location) {
        Some(rest) => location.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

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
    /// Claims every `host` x `location` pair for `target`, or nothing.
    ///
    /// # Errors
    /// Says who asked for what and that it is held, for the first pair held by another.
    pub fn claim_http(
        &mut self,
        hosts: &[DomainPattern],
        locations: &[String],
        owner: &Owner,
        target: &H,
    ) -> Result<(), (String, Owner)> {
        for host in hosts {
            let Some(locs) = self.http.get(host.as_str()) else {
                continue;
            };
            for (loc, entry) in locs.iter().filter(|(l, _)| locations.contains(l)) {
                let what = format!("{host}{loc}");
                if let Some(why) = conflict(&entry.owner, owner, &what) {
                    return Err((why, entry.owner.clone()));
                }
            }
        }
        for host in hosts {
            let locs = self.http.entry(host.as_str().to_string()).or_default();
            for loc in locations {
                locs.retain(|(l, _)| l != loc);
                let entry = Entry {
                    owner: owner.clone(),
                    target: target.clone(),
                };
                locs.push((loc.clone(), entry));
            }
            locs.sort_by_key(|(loc, _)| std::cmp::Reverse(loc.len()));
        }
        Ok(())
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
        }
        for host in hosts {
            let entry = Entry {
                owner: owner.clone(),
                target: target.clone(),
            };
            self.https.insert(host.as_str().to_string(), entry);
        }
        Ok(())
    }

    /// Drops every entry held by `session`.
    pub fn release_session(&mut self, session: u64) {
        self.http.retain(|_, locs| {
            locs.retain(|(_, e)| e.owner.session != session);
            !locs.is_empty()
        });
        self.https.retain(|_, e| e.owner.session != session);
    }

    /// The http target for a request to `host` (normalized) and `path`: the most specific host
    /// entry that has a matching location, and in it the longest location.
    pub fn lookup_http(&self, host: &str, path: &str) -> Option<(H, Owner)> {
        lookup_keys(host).find_map(|key| {
            let locs = self.http.get(&key)?;
            let (_, e) = locs.iter().find(|(loc, _)| location_matches(loc, path))?;
            Some((e.target.clone(), e.owner.clone()))
        })
    }

    /// The https target for an SNI `host` (normalized), most specific entry first.
    pub fn lookup_https(&self, host: &str) -> Option<S> {
        lookup_keys(host).find_map(|key| self.https.get(&key).map(|e| e.target.clone()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    type Table = RouteTable<&'static str, &'static str>;

    fn owner(identity: &str, session: u64, proxy: &str) -> Owner {
        Owner {
            identity: identity.into(),
            session,
            proxy: ProxyName::new(proxy).unwrap(),
        }
    }

    fn hosts(names: &[&str]) -> Vec<DomainPattern> {
        names
            .iter()
            .map(|n| DomainPattern::parse(n).unwrap())
            .collect()
    }

    fn locs(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn locations_match_on_segment_boundaries() {
        assert!(location_matches("/", "/anything"));
        assert!(location_matches("/api", "/api"));
        assert!(location_matches("/api", "/api/v1"));
        assert!(!location_matches("/api", "/apix"));
        assert!(location_matches("/api/", "/api/x"));
        assert!(!location_matches("/api", "/"));
    }

    #[test]
    fn longest_location_and_most_specific_host_win() {
        let mut t = Table::default();
        let (a, b) = (owner("alice", 1, "web"), owner("bob", 2, "api"));
        t.claim_http(&hosts(&["app.example.com"]), &locs(&["/"]), &a, &"web")
            .unwrap();
        t.claim_http(&hosts(&["app.example.com"]), &locs(&["/api"]), &b, &"api")
            .unwrap();
        t.claim_http(&hosts(&["*.example.com"]), &locs(&["/"]), &a, &"wild")
            .unwrap();
        assert_eq!(t.lookup_http("app.example.com", "/api/x").unwrap().0, "api");
        assert_eq!(t.lookup_http("app.example.com", "/apix").unwrap().0, "web");
        assert_eq!(
            t.lookup_http("other.example.com", "/api").unwrap().0,
            "wild"
        );
        assert!(t.lookup_http("example.com", "/").is_none());
        assert!(t.lookup_http("app.example.org", "/").is_none());
    }

    #[test]
    fn a_host_falls_back_to_a_wildcard_when_no_location_matches() {
        let mut t = Table::default();
        let a = owner("alice", 1, "p");
        t.claim_http(&hosts(&["app.example.com"]), &locs(&["/api"]), &a, &"api")
            .unwrap();
        t.claim_http(&hosts(&["*.example.com"]), &locs(&["/"]), &a, &"wild")
            .unwrap();
        assert_eq!(
            t.lookup_http("app.example.com", "/other").unwrap().0,
            "wild"
        );
    }

    #[test]
    fn claims_are_exclusive_and_all_or_nothing() {
        let mut t = Table::default();
        let (a, b) = (owner("alice", 1, "web"), owner("bob", 2, "web"));
        t.claim_http(&hosts(&["a.example.com"]), &locs(&["/"]), &a, &"a")
            .unwrap();
        let (why, held) = t
            .claim_http(
                &hosts(&["b.example.com", "a.example.com"]),
                &locs(&["/"]),
                &b,
                &"b",
            )
            .unwrap_err();
        assert!(
            why.contains("client 'bob' asked for a.example.com/"),
            "{why}"
        );
        assert_eq!(held.identity, "alice");
        assert!(
            t.lookup_http("b.example.com", "/").is_none(),
            "nothing was claimed"
        );
        let same = owner("alice", 1, "other");
        let (why, _) = t
            .claim_http(&hosts(&["a.example.com"]), &locs(&["/"]), &same, &"x")
            .unwrap_err();
        assert!(why.contains("proxy 'web' of this client"), "{why}");
    }

    #[test]
    fn newer_session_replaces_and_release_frees() {
        let mut t = Table::default();
        let old = owner("alice", 1, "web");
        let new = owner("alice", 5, "web");
        t.claim_http(&hosts(&["a.example.com"]), &locs(&["/"]), &old, &"old")
            .unwrap();
        t.claim_https(&hosts(&["k.example.com"]), &old, &"k-old")
            .unwrap();
        t.claim_http(&hosts(&["a.example.com"]), &locs(&["/"]), &new, &"new")
            .unwrap();
        t.claim_https(&hosts(&["k.example.com"]), &new, &"k-new")
            .unwrap();
        t.release_session(1);
        assert_eq!(t.lookup_http("a.example.com", "/").unwrap().0, "new");
        assert_eq!(t.lookup_https("k.example.com").unwrap(), "k-new");
        t.release_session(5);
        assert!(t.lookup_http("a.example.com", "/").is_none());
        assert!(t.lookup_https("k.example.com").is_none());
        assert!(t.http.is_empty() && t.https.is_empty());
        // An older session cannot take back what a newer one holds.
        t.claim_https(&hosts(&["k.example.com"]), &new, &"k-new")
            .unwrap();
        assert!(t
            .claim_https(&hosts(&["k.example.com"]), &old, &"k-old")
            .is_err());
    }
}
