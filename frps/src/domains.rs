//! Domain names and `*.` wildcards, and who may claim which: deny by default, like ports.
//!
//! A name may be routed only when it is covered by the global `allowDomains` **and**, when the
//! identity has a `[[clients]]` entry with its own `allowDomains`, by that list too. A wildcard
//! `*.example.com` matches every name ending in `.example.com` (any depth, as frp does); a
//! more specific entry wins when routing. Identities are matched to `[[clients]]` entries
//! without regard to case.

use std::collections::HashMap;
use std::fmt;

use crate::identity::canonical;

/// The refusal when the server's `allowDomains` is empty.
pub const NO_DOMAINS: &str =
    "the server allows no domains: its allowDomains is empty, so no http or https proxy may be registered";

/// A validated, lowercase domain name or `*.` wildcard.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainPattern(String);

impl DomainPattern {
    /// Parses a name or wildcard (case-insensitive).
    ///
    /// # Errors
    /// Says what is wrong with `s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        frp_proto::vhost::validate_domain(&lower)?;
        Ok(Self(lower))
    }

    /// The pattern as written (lowercase).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a `*.` wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// Whether `host` (a normalized host name) is matched by this pattern.
    pub fn matches(&self, host: &str) -> bool {
        match self.0.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => self.0 == host,
        }
    }

    /// Whether every name `self` matches is also matched by `outer`.
    pub fn within(&self, outer: &DomainPattern) -> bool {
        match self.0.strip_prefix("*.") {
            None => outer.matches(&self.0),
            Some(suffix) => outer.0.strip_prefix("*.").is_some_and(|o| {
                suffix == o || suffix.strip_suffix(o).is_some_and(|h| h.ends_with('.'))
            }),
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The routing keys to try for `host`, most specific first: the name itself, then each
/// wildcard above it (`a.b.example.com`: `*.b.example.com`, `*.example.com`).
pub fn lookup_keys(host: &str) -> impl Iterator<Item = String> + '_ {
    let wildcards = host
        .match_indices('.')
        .map(move |(i, _)| &host[i + 1..])
        .filter(|suffix| suffix.contains('.'))
        .map(|suffix| format!("*.{suffix}"));
    std::iter::once(host.to_string()).chain(wildcards)
}

/// A host as a client sent it (`Host` header, the authority of an absolute URI, or SNI),
/// normalized for routing: lowercase, without port or trailing dot. A bracketed IPv6 literal
/// is kept as it is (it never matches a route). `None` for something that is not a host: an
/// empty label (`a..b`, `.a.b`), a character outside letters, digits, `-` and `.`, a port
/// that is not a number, userinfo.
pub fn normalize_host(raw: &str) -> Option<String> {
    let (host, port) = match raw.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (raw, None),
    };
    if port.is_some_and(|p| !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 5) {
        return None;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|_| host.to_ascii_lowercase());
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let ldh = |c: char| c.is_ascii_alphanumeric() || c == '-';
    let labels_ok = host
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(ldh));
    (labels_ok && host.len() <= 253).then_some(host)
}

/// A list of patterns (`allowDomains`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainSet(Vec<DomainPattern>);

impl DomainSet {
    /// Parses a config list.
    ///
    /// # Errors
    /// Names the first entry that is not a domain or wildcard.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| DomainPattern::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether every name `p` matches is covered by one entry.
    pub fn covers(&self, p: &DomainPattern) -> bool {
        self.0.iter().any(|outer| p.within(outer))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The patterns, in configuration order.
    pub fn patterns(&self) -> &[DomainPattern] {
        &self.0
    }
}

impl fmt::Display for DomainSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(DomainPattern::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

/// The server's authorization policy for domains.
#[derive(Clone, Debug, Default)]
pub struct DomainPolicy {
    /// Global `allowDomains`; empty means no http/https proxy may be registered.
    pub global: DomainSet,
    /// Per-identity `allowDomains` from `[[clients]]` entries that have one, keyed by the
    /// [`canonical`] (lowercase) identity.
    pub per_client: HashMap<String, DomainSet>,
}

impl DomainPolicy {
    /// Checks whether `identity` may claim `name`, with a reason when it may not.
    ///
    /// # Errors
    /// A sentence a client operator can act on.
    pub fn check(&self, identity: &str, name: &DomainPattern) -> Result<(), String> {
        if self.global.is_empty() {
            return Err(NO_DOMAINS.into());
        }
        if !self.global.covers(name) {
            return Err(format!(
                "domain {name} is outside the server's allowDomains ({})",
                self.global
            ));
        }
        match self.own(identity) {
            Some(own) if !own.covers(name) => Err(format!(
                "domain {name} is outside the allowDomains of client '{identity}' ({own})"
            )),
            _ => Ok(()),
        }
    }

    /// Whether `identity`'s own `[[clients]] allowDomains` names `host` exactly (not through
    /// a wildcard). Identities that all do may serve locations of that one host together.
    pub fn names_exactly(&self, identity: &str, host: &DomainPattern) -> bool {
        self.own(identity)
            .is_some_and(|own| own.patterns().contains(host))
    }

    /// The `[[clients]]` narrowing of `identity`, in any case.
    fn own(&self, identity: &str) -> Option<&DomainSet> {
        self.per_client.get(&canonical(identity))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> DomainPattern {
        DomainPattern::parse(s).unwrap()
    }

    #[test]
    fn wildcards_match_any_depth_but_not_the_apex() {
        let w = p("*.example.com");
        assert!(w.matches("a.example.com") && w.matches("a.b.example.com"));
        assert!(!w.matches("example.com") && !w.matches("badexample.com"));
        assert!(!w.matches(".example.com"));
        assert!(p("App.Example.com").matches("app.example.com"));
        assert!(!p("app.example.com").matches("x.app.example.com"));
    }

    #[test]
    fn within_compares_patterns() {
        assert!(p("a.example.com").within(&p("*.example.com")));
        assert!(p("*.a.example.com").within(&p("*.example.com")));
        assert!(p("*.example.com").within(&p("*.example.com")));
        assert!(!p("*.example.com").within(&p("*.a.example.com")));
        assert!(!p("*.example.com").within(&p("x.example.com")));
        assert!(!p("*.badexample.com").within(&p("*.example.com")));
    }

    #[test]
    fn lookup_keys_go_from_specific_to_general() {
        let keys: Vec<String> = lookup_keys("a.b.example.com").collect();
        assert_eq!(
            keys,
            ["a.b.example.com", "*.b.example.com", "*.example.com"]
        );
        assert_eq!(lookup_keys("localhost").count(), 1);
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(
            normalize_host("App.Example.com:8080").unwrap(),
            "app.example.com"
        );
        assert_eq!(
            normalize_host("app.example.com.").unwrap(),
            "app.example.com"
        );
        assert_eq!(normalize_host("[::1]:80").unwrap(), "[::1]");
        assert_eq!(
            normalize_host("App.Example.com:").unwrap(),
            "app.example.com"
        );
        for bad in [
            "",
            "a b",
            "a..example.com",
            ".x.example.com",
            "x.example.com..",
            "user@app.example.com",
            "app.example.com:http",
            "[::1",
            "[zz]:80",
        ] {
            assert_eq!(normalize_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn policy_is_deny_by_default_and_narrowed_per_client() {
        let mut policy = DomainPolicy::default();
        assert!(policy
            .check("bob", &p("a.example.com"))
            .unwrap_err()
            .contains("allows no domains"));
        policy.global =
            DomainSet::parse(&["*.example.com".into(), "app.example.org".into()]).unwrap();
        policy.per_client.insert(
            "alice".into(),
            DomainSet::parse(&["*.a.example.com".into()]).unwrap(),
        );
        assert!(policy.check("bob", &p("x.example.com")).is_ok());
        assert!(policy.check("bob", &p("app.example.org")).is_ok());
        let e = policy.check("bob", &p("other.example.org")).unwrap_err();
        assert!(e.contains("outside the server's allowDomains"), "{e}");
        assert!(policy.check("alice", &p("x.a.example.com")).is_ok());
        let e = policy.check("alice", &p("x.example.com")).unwrap_err();
        assert!(e.contains("client 'alice'"), "{e}");
        let e = policy.check("Alice", &p("x.example.com")).unwrap_err();
        assert!(
            e.contains("client 'Alice'"),
            "case variants are narrowed too: {e}"
        );
        assert!(policy.names_exactly("ALICE", &p("*.a.example.com")));
        assert!(DomainSet::parse(&["bad domain".into()]).is_err());
    }
}
