//! Who may serve which name on the vhost ports: refusals that say who asked for what, names
//! released when their client leaves, a newer session of the same client taking over, and a
//! name owned by one client across http and https (its paths, its TLS, its wildcard's reach).

use frp_proto::VhostSpec;
use std::net::SocketAddr;

use frp_tests::http::{get, http_backend, Backend};
use frp_tests::{http_proxy, https_proxy, init_logs, vhost_settings, Pki, TestClient, TestServer};

const ALLOW: &[&str] = &["*.example.com"];

#[tokio::test]
async fn refused_domains_say_why_and_other_proxies_work() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com", "*.example.net"]);
    settings.vhost.subdomain_host = frps::domains::DomainPattern::parse("example.org").ok();
    let server = TestServer::start(settings);
    let none = VhostSpec::default;
    let alice_proxies = vec![http_proxy("web", app.addr, &["shop.example.com"], none())];
    let mut alice = TestClient::connect(&pki, "alice", server.addr, alice_proxies);
    let http = alice.bound("web").await;

    let sub = VhostSpec {
        subdomain: "c".into(),
        ..none()
    };
    let bob_proxies = vec![
        http_proxy("taken", app.addr, &["shop.example.com"], none()),
        http_proxy("outside", app.addr, &["bank.example.org"], none()),
        http_proxy("sub", app.addr, &[], sub),
        http_proxy("fine", app.addr, &["bob.example.net"], none()),
    ];
    let mut bob = TestClient::connect(&pki, "bob", server.addr, bob_proxies);
    let taken = bob.refused("taken").await;
    let want = "client 'bob' asked for shop.example.com/, which another client holds";
    assert!(taken.contains(want), "{taken}");
    let outside = bob.refused("outside").await;
    let want = "bank.example.org is outside the server's allowDomains";
    assert!(outside.contains(want), "{outside}");
    let sub = bob.refused("sub").await;
    assert!(
        sub.contains("c.example.org is outside"),
        "a subdomain counts in full: {sub}"
    );
    let fine = get(bob.bound("fine").await, "bob.example.net", "/", &[]).await;
    assert_eq!(fine.status, 200);
    let shop = get(http, "shop.example.com", "/", &[]).await;
    assert_eq!(
        shop.field("backend"),
        Some("app"),
        "the holder keeps serving"
    );
    for c in [alice, bob] {
        c.stop().await.expect("stop");
    }
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_clients_own_allow_domains_narrow_the_global_list() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, ALLOW);
    let narrow = frps::domains::DomainSet::parse(&["*.carol.example.com".into()]).expect("set");
    settings.domains.per_client.insert("carol".into(), narrow);
    let server = TestServer::start(settings);
    let proxies = vec![
        http_proxy("c", app.addr, &["x.example.com"], VhostSpec::default()),
        http_proxy(
            "own",
            app.addr,
            &["x.carol.example.com"],
            VhostSpec::default(),
        ),
    ];
    let mut carol = TestClient::connect(&pki, "carol", server.addr, proxies);
    let narrowed = carol.refused("c").await;
    assert!(
        narrowed.contains("allowDomains of client 'carol'"),
        "{narrowed}"
    );
    carol.bound("own").await;
    carol.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn names_are_released_when_their_client_leaves() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut server = TestServer::start(vhost_settings(&pki, ALLOW));
    let proxies = || {
        vec![http_proxy(
            "shop",
            app.addr,
            &["shop.example.com"],
            VhostSpec::default(),
        )]
    };
    let mut alice = TestClient::connect(&pki, "alice", server.addr, proxies());
    let http = alice.bound("shop").await;
    assert_eq!(get(http, "shop.example.com", "/", &[]).await.status, 200);
    alice.stop().await.expect("stop");
    server
        .wait_for("alice gone", |s| !s.clients.contains_key("alice"))
        .await;
    assert_eq!(get(http, "shop.example.com", "/", &[]).await.status, 404);
    let mut dave = TestClient::connect(&pki, "dave", server.addr, proxies());
    dave.bound("shop").await;
    assert_eq!(get(http, "shop.example.com", "/", &[]).await.status, 200);
    dave.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_newer_session_of_the_same_client_takes_over_its_names() {
    init_logs();
    let pki = Pki::new();
    let (old_app, new_app) = (http_backend("old").await, http_backend("new").await);
    let mut server = TestServer::start(vhost_settings(&pki, ALLOW));
    let cert = pki.ca.issue_client("node1").expect("cert");
    let proxies = |b: &Backend| {
        vec![http_proxy(
            "web",
            b.addr,
            &["web.example.com"],
            VhostSpec::default(),
        )]
    };
    let mut stale = TestClient::start_stale(&pki, &cert, server.addr, proxies(&old_app));
    let http = stale.bound("web").await;
    assert_eq!(
        get(http, "web.example.com", "/", &[])
            .await
            .field("backend"),
        Some("old")
    );

    let fresh_settings =
        frp_tests::client_settings(pki.client_tls_with(&cert), server.addr, proxies(&new_app));
    let mut fresh = TestClient::start(fresh_settings);
    fresh.bound("web").await;
    stale.wait_for("old session closed", |s| !s.connected).await;
    server
        .wait_for("one session for node1", |s| s.clients.len() == 1)
        .await;
    assert_eq!(
        get(http, "web.example.com", "/", &[])
            .await
            .field("backend"),
        Some("new")
    );
    stale.stop().await.expect("stop");
    fresh.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// Server settings with frps terminating TLS for `names` with a certificate from `pki`'s CA.
fn terminating(pki: &Pki, names: &[&str]) -> frps::ServerSettings {
    let mut settings = vhost_settings(pki, ALLOW);
    let owned: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = pki.ca.issue_server(&owned).expect("cert");
    let tls =
        frp_certs::public_server_tls_config(vec![cert.cert_der()], cert.key_der()).expect("tls");
    let patterns = frps::domains::DomainSet::parse(&owned).expect("names");
    settings
        .vhost
        .certificates
        .add(patterns.patterns(), std::sync::Arc::new(tls));
    settings
}

#[tokio::test]
async fn an_exact_terminated_name_beats_another_clients_wildcard_passthrough() {
    use frp_tests::http::{client_on, request, send, tls_connect, tls_service};
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(terminating(&pki, &["app.example.com", "bare.example.com"]));
    let web = vec![http_proxy(
        "app",
        app.addr,
        &["app.example.com"],
        VhostSpec::default(),
    )];
    let mut node1 = TestClient::connect(&pki, "node1", server.addr, web);
    node1.bound("app").await;
    let services = Pki::new();
    let wild = tls_service(&services.ca, "other.example.com").await;
    let mut ci = TestClient::connect(
        &pki,
        "ci",
        server.addr,
        vec![https_proxy("wild", wild.addr, &["*.example.com"])],
    );
    ci.bound("wild").await;
    let https = server.https.expect("https port");
    let tls = tls_connect(https, "app.example.com", vec![pki.ca.cert_der()])
        .await
        .expect("frps terminates app.example.com with its certificate");
    let mut conn = client_on(tls).await;
    let r = send(&mut conn, request("GET", "app.example.com", "/", &[])).await;
    assert_eq!(r.field("backend"), Some("app"));
    let other = tls_connect(https, "other.example.com", vec![services.ca.cert_der()]).await;
    assert!(other.is_ok(), "the rest of the wildcard passes through");
    assert_eq!(wild.accepted(), 1);
    // A name frps has a certificate for is terminated even with no http proxy (404).
    let bare = tls_connect(https, "bare.example.com", vec![pki.ca.cert_der()])
        .await
        .expect("frps terminates bare.example.com with its certificate");
    let r = send(
        &mut client_on(bare).await,
        request("GET", "bare.example.com", "/", &[]),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(wild.accepted(), 1, "nothing more reached the wildcard");
    drop((other, conn));
    node1.stop().await.expect("stop");
    ci.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// A server, and node1 serving app.example.com from `app` over http; the vhost address.
async fn node1_serves_app(pki: &Pki, app: &Backend) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let server = TestServer::start(vhost_settings(pki, ALLOW));
    let web = vec![http_proxy(
        "app",
        app.addr,
        &["app.example.com"],
        VhostSpec::default(),
    )];
    let mut node1 = TestClient::connect(pki, "node1", server.addr, web);
    let http = node1.bound("app").await;
    (server, node1, http)
}

#[tokio::test]
async fn a_name_is_served_as_http_or_https_by_one_client() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, node1, _) = node1_serves_app(&pki, &app).await;
    let ci_proxies = vec![
        https_proxy("tls", app.addr, &["app.example.com"]),
        https_proxy("kube", app.addr, &["kube.example.com"]),
    ];
    let mut ci = TestClient::connect(&pki, "ci", server.addr, ci_proxies);
    let tls = ci.refused("tls").await;
    let want = "client 'ci' asked for https app.example.com, which another client serves as http";
    assert!(tls.contains(want), "{tls}");
    ci.bound("kube").await;
    let late = vec![http_proxy(
        "kube",
        app.addr,
        &["kube.example.com"],
        VhostSpec::default(),
    )];
    let mut dave = TestClient::connect(&pki, "dave", server.addr, late);
    let kube = dave.refused("kube").await;
    assert!(kube.contains("serves as https"), "{kube}");
    for c in [node1, ci, dave] {
        c.stop().await.expect("stop");
    }
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn another_client_cannot_take_a_path_under_a_held_name() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, node1, http) = node1_serves_app(&pki, &app).await;
    let acme = VhostSpec {
        locations: vec!["/.well-known/acme-challenge".into()],
        ..VhostSpec::default()
    };
    let ci_proxies = vec![http_proxy("acme", app.addr, &["app.example.com"], acme)];
    let mut ci = TestClient::connect(&pki, "ci", server.addr, ci_proxies);
    let acme = ci.refused("acme").await;
    assert!(
        acme.contains("another client holds app.example.com"),
        "{acme}"
    );
    let r = get(
        http,
        "app.example.com",
        "/.well-known/acme-challenge/t",
        &[],
    )
    .await;
    assert_eq!(r.field("backend"), Some("app"), "node1's own site answers");
    node1.stop().await.expect("stop");
    ci.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_wildcard_of_another_client_never_answers_for_a_held_name() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(vhost_settings(&pki, ALLOW));
    let mut ci = TestClient::connect(
        &pki,
        "ci",
        server.addr,
        vec![https_proxy("kube", app.addr, &["kube.example.com"])],
    );
    ci.bound("kube").await;
    let wild = vec![http_proxy(
        "wild",
        app.addr,
        &["*.example.com"],
        VhostSpec::default(),
    )];
    let mut node1 = TestClient::connect(&pki, "node1", server.addr, wild);
    let http = node1.bound("wild").await;
    assert_eq!(get(http, "www.example.com", "/", &[]).await.status, 200);
    let r = get(
        http,
        "kube.example.com",
        "/.well-known/acme-challenge/t",
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "kube.example.com is ci's: {}", r.body);
    node1.stop().await.expect("stop");
    ci.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_name_stays_reserved_for_its_client_while_a_newer_session_registers() {
    use frp_proto::{AddProxies, ControlMsg, ProxyKind, ProxyOutcome};
    use frp_tests::raw::{encoded, next_msg, spec, RawClient};
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let server = TestServer::start(vhost_settings(&pki, ALLOW));
    let cert = pki.ca.issue_client("node1").expect("cert");
    let proxies = vec![
        http_proxy("web", app.addr, &["web.example.com"], VhostSpec::default()),
        http_proxy("old", app.addr, &["old.example.com"], VhostSpec::default()),
    ];
    let mut stale = TestClient::start_stale(&pki, &cert, server.addr, proxies);
    stale.bound("web").await;
    stale.bound("old").await;
    // A newer session of node1, driven by hand: its Hello is answered, its AddProxies waits.
    let fresh = RawClient::connect(pki.client_tls_with(&cert), server.addr).await;
    let (mut send, mut reader, _) = fresh.welcomed(Vec::new()).await;
    stale.wait_for("old session closed", |s| !s.connected).await;
    let thief = vec![http_proxy(
        "web",
        app.addr,
        &["web.example.com"],
        VhostSpec::default(),
    )];
    let mut ci = TestClient::connect(&pki, "ci", server.addr, thief);
    let why = ci.refused("web").await;
    assert!(why.contains("which another client holds"), "{why}");
    let add = ControlMsg::AddProxies(AddProxies {
        proxies: vec![spec("web", ProxyKind::Http)],
    });
    send.write_all(&encoded(&add)).await.expect("add-proxies");
    let ControlMsg::AddResults(r) = next_msg(&mut reader).await else {
        panic!("expected add-results");
    };
    assert!(
        matches!(r.results[0].outcome, ProxyOutcome::Bound { .. }),
        "{r:?}"
    );
    // What the newer session did not claim again is free once it answered.
    let late = vec![http_proxy(
        "old",
        app.addr,
        &["old.example.com"],
        VhostSpec::default(),
    )];
    let mut dave = TestClient::connect(&pki, "dave", server.addr, late);
    dave.bound("old").await;
    for c in [stale, ci, dave] {
        c.stop().await.expect("stop");
    }
    drop(fresh);
    server.stop().await.expect("stop");
}
