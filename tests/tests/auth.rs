//! Who may connect and what they may publish: certificates refused in every way the issue
//! names, deny-by-default ports, and ports that belong to someone else.

use frp_tests::backends::{echo_once, echo_server};
use frp_tests::{
    client_settings, free_tcp_port, init_logs, server_allowing, server_settings, tcp_proxy, Pki,
    TestClient, TestServer,
};
use frpc::{ClientError, ClientSettings};

/// Runs a client that must give up with a permanent refusal; returns the reason.
async fn refused_for_good(settings: ClientSettings) -> String {
    let client = TestClient::start(settings);
    match client.finished().await {
        Err(ClientError::Permanent(reason)) => reason,
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}

/// A good client still gets through after the bad attempts (they only ended themselves).
async fn good_client_works(pki: &Pki, server: &TestServer) {
    let (echo, _e) = echo_server().await;
    let proxies = vec![tcp_proxy("echo", echo, 0)];
    let mut good = TestClient::connect(pki, "good", server.addr, proxies);
    assert_eq!(echo_once(good.bound("echo").await, b"ok").await, b"ok");
    good.stop().await.expect("stop");
}

/// A client presenting `cert` is refused for good and never shows up on the server, and a good
/// client still gets through afterwards.
async fn client_certificate_refused(pki: &Pki, cert: &frp_certs::Issued) {
    let server = TestServer::start(server_settings(pki, 1024..=65535));
    let settings = client_settings(pki.client_tls_with(cert), server.addr, vec![]);
    let reason = refused_for_good(settings).await;
    assert!(reason.contains("tls"), "{reason}");
    assert!(server.status.borrow().clients.is_empty());
    good_client_works(pki, &server).await;
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    init_logs();
    let (pki, other) = (Pki::new(), Pki::new());
    let foreign = other.ca.issue_client("mallory").expect("cert");
    client_certificate_refused(&pki, &foreign).await;
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    init_logs();
    let pki = Pki::new();
    let now = time::OffsetDateTime::now_utc();
    let (from, until) = (
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    );
    let old = pki
        .ca
        .issue_client_with_validity("old", from, until)
        .expect("cert");
    client_certificate_refused(&pki, &old).await;
}

#[tokio::test]
async fn server_certificate_with_the_wrong_name_is_refused() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(server_settings(&pki, 1024..=65535));
    let mut settings = client_settings(pki.client_tls("node1"), server.addr, vec![]);
    settings.server_name = "wrong.example.com".into();
    let reason = refused_for_good(settings).await;
    assert!(reason.contains("certificate"), "{reason}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn client_certificate_posing_as_server_is_refused() {
    init_logs();
    let pki = Pki::new();
    let imposter = pki.ca.issue_client("localhost").expect("cert");
    let server = TestServer::start(frps::ServerSettings {
        tls: pki.server_tls_with(&imposter),
        ..server_settings(&pki, 1024..=65535)
    });
    let reason = refused_for_good(client_settings(
        pki.client_tls("node1"),
        server.addr,
        vec![],
    ))
    .await;
    assert!(reason.contains("certificate"), "{reason}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn port_outside_allow_ports_is_refused_and_other_proxy_works() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let allowed = free_tcp_port();
    let outside = if allowed > 2000 {
        allowed - 1
    } else {
        allowed + 1
    };
    let server = TestServer::start(server_allowing(&pki, &[allowed]));
    let proxies = vec![
        tcp_proxy("inside", echo, allowed),
        tcp_proxy("outside", echo, outside),
    ];
    let mut client = TestClient::connect(&pki, "node1", server.addr, proxies);
    let reason = client.refused("outside").await;
    assert!(
        reason.contains(&format!("port {outside} is outside")),
        "{reason}"
    );
    let public = client.bound("inside").await;
    assert_eq!(public.port(), allowed);
    assert_eq!(echo_once(public, b"inside works").await, b"inside works");
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn nothing_may_be_published_without_allow_ports() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let server = TestServer::start(server_allowing(&pki, &[]));
    let proxies = vec![
        tcp_proxy("any", echo, 0),
        tcp_proxy("fixed", echo, free_tcp_port()),
    ];
    let mut client = TestClient::connect(&pki, "node1", server.addr, proxies);
    assert!(client.refused("any").await.contains("allows no ports"));
    assert!(client.refused("fixed").await.contains("allows no ports"));
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn second_client_cannot_take_a_port_in_use() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let port = free_tcp_port();
    let server = TestServer::start(server_allowing(&pki, &[port]));
    let first = vec![tcp_proxy("web", echo, port)];
    let mut alice = TestClient::connect(&pki, "alice", server.addr, first);
    let public = alice.bound("web").await;

    let second = vec![tcp_proxy("web", echo, port)];
    let mut bob = TestClient::connect(&pki, "bob", server.addr, second);
    let reason = bob.refused("web").await;
    assert!(reason.contains("in use by another client"), "{reason}");

    // The first client is untouched: same port, same session, still serving.
    assert_eq!(echo_once(public, b"alice").await, b"alice");
    let status = alice.status.borrow().clone();
    assert_eq!((status.sessions, status.bound("web")), (1, Some(public)));
    bob.stop().await.expect("stop");
    alice.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn same_identity_reconnecting_replaces_its_stale_session() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let port = free_tcp_port();
    let mut server = TestServer::start(server_allowing(&pki, &[port]));
    let cert = pki.ca.issue_client("node1").expect("cert");
    let proxies = vec![tcp_proxy("web", echo, port)];
    let mut stale = TestClient::start_stale(&pki, &cert, server.addr, proxies);
    stale.bound("web").await;

    let fresh_settings = client_settings(
        pki.client_tls_with(&cert),
        server.addr,
        vec![tcp_proxy("web", echo, port)],
    );
    let mut fresh = TestClient::start(fresh_settings);
    assert_eq!(
        fresh.bound("web").await.port(),
        port,
        "the new session gets the port"
    );
    stale.wait_for("old session closed", |s| !s.connected).await;
    server
        .wait_for("one session for node1", |s| s.clients.len() == 1)
        .await;
    assert_eq!(
        echo_once(fresh.bound("web").await, b"fresh").await,
        b"fresh"
    );
    stale.stop().await.expect("stop");
    fresh.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
