//! Connections coming and going: ports freed at once, reconnects after a server restart, and
//! a client started before its server.

use frp_tests::backends::{echo_once, echo_server};
use frp_tests::{
    client_settings, free_tcp_port, free_udp_addr, init_logs, server_allowing, tcp_proxy, Pki,
    TestClient, TestServer, LOCALHOST,
};

#[tokio::test]
async fn disconnect_frees_the_port_and_reconnect_gets_it_back() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let port = free_tcp_port();
    let mut server = TestServer::start(server_allowing(&pki, &[port]));
    let settings = client_settings(
        pki.client_tls("node1"),
        server.addr,
        vec![tcp_proxy("web", echo, port)],
    );

    let mut client = TestClient::start(settings.clone());
    assert_eq!(client.bound("web").await.port(), port);
    client.stop().await.expect("stop");
    server
        .wait_for("client gone", |s| s.clients.is_empty())
        .await;
    // Freed at once: the port can be bound by anyone now.
    drop(std::net::TcpListener::bind((LOCALHOST, port)).expect("port must be free"));

    let mut again = TestClient::start(settings);
    let public = again.bound("web").await;
    assert_eq!(public.port(), port);
    assert_eq!(echo_once(public, b"back").await, b"back");
    again.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn server_restart_client_reconnects_by_itself() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let port = free_tcp_port();
    let mut settings = server_allowing(&pki, &[port]);
    let server = TestServer::start(settings.clone());
    settings.bind = server.addr;
    let proxies = vec![tcp_proxy("web", echo, port)];
    let mut client = TestClient::connect(&pki, "node1", server.addr, proxies);
    assert_eq!(echo_once(client.bound("web").await, b"one").await, b"one");

    server.stop().await.expect("stop");
    client.wait_for("client notices", |s| !s.connected).await;
    let server = TestServer::start(settings);
    client
        .wait_for("second session", |s| {
            s.sessions == 2 && s.bound("web").is_some()
        })
        .await;
    assert_eq!(echo_once(client.bound("web").await, b"two").await, b"two");
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn client_started_before_server_connects_when_it_appears() {
    init_logs();
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let addr = free_udp_addr();
    let proxies = vec![tcp_proxy("web", echo, 0)];
    let mut client = TestClient::connect(&pki, "node1", addr, proxies);
    client
        .wait_for("a failed attempt", |s| s.last_error.is_some())
        .await;

    let mut settings = frp_tests::server_settings(&pki, 1024..=65535);
    settings.bind = addr;
    let server = TestServer::start(settings);
    assert_eq!(echo_once(client.bound("web").await, b"late").await, b"late");
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
