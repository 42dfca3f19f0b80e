//! The route table: longest location and most specific host, exclusive claims, hosts owned
//! across http and https, shared hosts by opt-in, takeover by a newer session.

#![allow(clippy::unwrap_used)]

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

/// No certificate for any name.
fn none(_: &str) -> bool {
    false
}

/// Nobody shares a host.
fn exclusive(_: &str, _: &DomainPattern) -> bool {
    false
}

/// Everybody may share every host.
fn shared(_: &str, _: &DomainPattern) -> bool {
    true
}

fn http(t: &mut Table, host: &str, loc: &[&str], o: &Owner, target: &'static str) {
    t.claim_http(&hosts(&[host]), &locs(loc), o, &target, &shared)
        .unwrap();
}

#[test]
fn longest_location_and_most_specific_host_win() {
    let mut t = Table::default();
    let (a, b) = (owner("alice", 1, "web"), owner("bob", 2, "api"));
    http(&mut t, "app.example.com", &["/"], &a, "web");
    http(&mut t, "app.example.com", &["/api"], &b, "api");
    http(&mut t, "*.example.com", &["/"], &a, "wild");
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
fn a_host_falls_back_to_a_wildcard_of_its_own_holder_only() {
    let mut t = Table::default();
    let (a, b) = (owner("alice", 1, "p"), owner("bob", 2, "w"));
    http(&mut t, "app.example.com", &["/api"], &a, "api");
    http(&mut t, "*.example.com", &["/"], &a, "wild");
    assert_eq!(
        t.lookup_http("app.example.com", "/other").unwrap().0,
        "wild"
    );
    http(&mut t, "mine.example.org", &["/api"], &a, "mine");
    http(&mut t, "*.example.org", &["/"], &b, "bobs");
    assert!(
        t.lookup_http("mine.example.org", "/.well-known/acme-challenge/x")
            .is_none(),
        "bob's wildcard never answers for alice's name"
    );
    assert_eq!(t.lookup_http("x.example.org", "/").unwrap().0, "bobs");
}

#[test]
fn claims_are_exclusive_and_all_or_nothing() {
    let mut t = Table::default();
    let (a, b) = (owner("alice", 1, "web"), owner("bob", 2, "web"));
    http(&mut t, "a.example.com", &["/"], &a, "a");
    let (why, held) = t
        .claim_http(
            &hosts(&["b.example.com", "a.example.com"]),
            &locs(&["/"]),
            &b,
            &"b",
            &shared,
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
        .claim_http(
            &hosts(&["a.example.com"]),
            &locs(&["/"]),
            &same,
            &"x",
            &shared,
        )
        .unwrap_err();
    assert!(why.contains("proxy 'web' of this client"), "{why}");
}

#[test]
fn other_locations_of_a_held_host_need_both_clients_to_opt_in() {
    let mut t = Table::default();
    let (node1, ci) = (owner("node1", 1, "app"), owner("ci", 2, "acme"));
    http(&mut t, "app.example.com", &["/"], &node1, "app");
    let acme = locs(&["/.well-known/acme-challenge"]);
    let host = hosts(&["app.example.com"]);
    let (why, held) = t
        .claim_http(&host, &acme, &ci, &"acme", &exclusive)
        .unwrap_err();
    assert!(
        why.contains("another client holds app.example.com"),
        "{why}"
    );
    assert_eq!(held.identity, "node1");
    let only_ci = |id: &str, _: &DomainPattern| id == "ci";
    assert!(t.claim_http(&host, &acme, &ci, &"acme", &only_ci).is_err());
    t.claim_http(&host, &acme, &ci, &"acme", &shared).unwrap();
    let path = "/.well-known/acme-challenge/token";
    assert_eq!(t.lookup_http("app.example.com", path).unwrap().0, "acme");
}

#[test]
fn a_host_is_http_or_https_of_one_client() {
    let mut t = Table::default();
    let (node1, ci) = (owner("node1", 1, "app"), owner("ci", 2, "k"));
    http(&mut t, "app.example.com", &["/"], &node1, "app");
    let (why, _) = t
        .claim_https(&hosts(&["app.example.com"]), &ci, &"k")
        .unwrap_err();
    assert!(why.contains("serves as http"), "{why}");
    t.claim_https(&hosts(&["kube.example.com"]), &ci, &"k")
        .unwrap();
    let (why, _) = t
        .claim_http(
            &hosts(&["kube.example.com"]),
            &locs(&["/"]),
            &node1,
            &"x",
            &shared,
        )
        .unwrap_err();
    assert!(why.contains("serves as https"), "{why}");
    // The same client may serve one name both ways; TLS passes through, plain HTTP is served.
    t.claim_https(
        &hosts(&["app.example.com"]),
        &owner("node1", 1, "tls"),
        &"tls",
    )
    .unwrap();
    assert_eq!(
        t.lookup_tls("app.example.com", none),
        TlsRoute::Passthrough("tls")
    );
    assert_eq!(t.lookup_http("app.example.com", "/").unwrap().0, "app");
}

#[test]
fn on_the_tls_port_the_most_specific_name_wins_across_http_and_https() {
    let mut t = Table::default();
    let (node1, ci) = (owner("node1", 1, "app"), owner("ci", 2, "wild"));
    http(&mut t, "app.example.com", &["/"], &node1, "app");
    t.claim_https(&hosts(&["*.example.com"]), &ci, &"wild")
        .unwrap();
    assert_eq!(t.lookup_tls("app.example.com", none), TlsRoute::Terminate);
    assert_eq!(
        t.lookup_tls("x.example.com", none),
        TlsRoute::Passthrough("wild")
    );
    assert_eq!(t.lookup_tls("example.org", none), TlsRoute::Unknown);
    let certified = |key: &str| key == "cert.example.com";
    assert_eq!(
        t.lookup_tls("cert.example.com", certified),
        TlsRoute::Terminate,
        "an exact certificate beats the wildcard passthrough too"
    );
    assert!(
        t.lookup_http("x.example.com", "/").is_none(),
        "a name served as https has no http route"
    );
}

#[test]
fn newer_session_replaces_and_release_frees() {
    let mut t = Table::default();
    let old = owner("alice", 1, "web");
    let new = owner("alice", 5, "web");
    http(&mut t, "a.example.com", &["/"], &old, "old");
    t.claim_https(&hosts(&["k.example.com"]), &old, &"k-old")
        .unwrap();
    http(&mut t, "a.example.com", &["/"], &new, "new");
    t.claim_https(&hosts(&["k.example.com"]), &new, &"k-new")
        .unwrap();
    t.release_identity_up_to("alice", 1);
    assert_eq!(t.lookup_http("a.example.com", "/").unwrap().0, "new");
    assert_eq!(
        t.lookup_tls("k.example.com", none),
        TlsRoute::Passthrough("k-new")
    );
    t.release_identity_up_to("bob", 5);
    assert!(
        t.lookup_http("a.example.com", "/").is_some(),
        "only alice's go"
    );
    t.release_identity_up_to("alice", 5);
    assert!(t.lookup_http("a.example.com", "/").is_none());
    assert_eq!(t.lookup_tls("k.example.com", none), TlsRoute::Unknown);
    assert!(t.http.is_empty() && t.https.is_empty());
    // An older session cannot take back what a newer one holds.
    t.claim_https(&hosts(&["k.example.com"]), &new, &"k-new")
        .unwrap();
    assert!(t
        .claim_https(&hosts(&["k.example.com"]), &old, &"k-old")
        .is_err());
}

#[test]
fn one_proxy_is_released_alone_and_its_names_can_be_claimed_again() {
    let mut t = Table::default();
    let web = owner("alice", 3, "web");
    let api = owner("alice", 3, "api");
    let tls = owner("alice", 3, "tls");
    http(&mut t, "a.example.com", &["/"], &web, "web");
    http(&mut t, "a.example.com", &["/api"], &api, "api");
    t.claim_https(&hosts(&["k.example.com"]), &tls, &"tls")
        .unwrap();
    t.release_proxy("alice", 3, &web.proxy);
    assert_eq!(t.lookup_http("a.example.com", "/api/x").unwrap().0, "api");
    assert!(t.lookup_http("a.example.com", "/").is_none(), "web is gone");
    t.release_proxy("alice", 2, &api.proxy);
    t.release_proxy("bob", 3, &api.proxy);
    assert!(
        t.lookup_http("a.example.com", "/api").is_some(),
        "other owners' stay"
    );
    t.release_proxy("alice", 3, &tls.proxy);
    assert_eq!(t.lookup_tls("k.example.com", none), TlsRoute::Unknown);
    let again = owner("alice", 3, "web2");
    http(&mut t, "a.example.com", &["/"], &again, "web2");
    assert_eq!(t.lookup_http("a.example.com", "/").unwrap().0, "web2");
}

#[test]
fn a_case_folding_lookup_finds_the_location_a_service_would_serve() {
    let mut t = Table::default();
    let o = owner("alice", 1, "web");
    http(&mut t, "a.example.com", &["/"], &o, "open");
    http(&mut t, "a.example.com", &["/admin"], &o, "admin");
    assert_eq!(t.lookup_http("a.example.com", "/ADMIN").unwrap().0, "open");
    assert_eq!(
        t.lookup_http_ci("a.example.com", "/admin").unwrap().0,
        "admin"
    );
    assert_eq!(
        t.lookup_http_ci("a.example.com", "/adminx").unwrap().0,
        "open"
    );
    assert!(t.lookup_http_ci("b.example.com", "/admin").is_none());
}
