//! Who may serve which name on the vhost ports: refusals that say who asked for what, names
//! released when their client leaves, and a newer session of the same client taking over.

use frp_proto::VhostSpec;
use frp_tests::http::{get, http_backend, Backend};
use frp_tests::{http_proxy, init_logs, vhost_settings, Pki, TestClient, TestServer};

const ALLOW: &[&str] = &["*.example.com"];

#[tokio::test]
async fn refused_domains_say_why_and_other_proxies_work() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com", "*.example.net"]);
    settings.vhost.subdomain_host = frps::domains::DomainPattern::parse("example.org").ok();
    let narrow = frps::domains::DomainSet::parse(&["*.carol.example.com".into()]).expect("set");
    settings.domains.per_client.insert("carol".into(), narrow);
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

    let carol_proxies = vec![http_proxy("c", app.addr, &["x.example.com"], none())];
    let mut carol = TestClient::connect(&pki, "carol", server.addr, carol_proxies);
    let narrowed = carol.refused("c").await;
    assert!(
        narrowed.contains("allowDomains of client 'carol'"),
        "{narrowed}"
    );
    for c in [alice, bob, carol] {
        c.stop().await.expect("stop");
    }
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
