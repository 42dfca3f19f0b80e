//! What one visitor or one proxy can hold on the vhost ports: upgraded (WebSocket)
//! connections keep their proxy's connection permit and their vhost connection slot until
//! they end, idle ones are closed, a source address has a cap of its own, and a backend that
//! resets an upgraded connection resets the visitor too.

use std::time::Duration;

use frp_proto::VhostSpec;
use frp_tests::http::{http_backend, Backend};
use frp_tests::rawhttp::{
    echo, ends, exchange, get_request, resetting_upgrade_backend, turned_away, until_status,
    upgrade, write,
};
use frp_tests::{http_proxy, init_logs, vhost_settings, within, Pki, TestClient, TestServer};
use std::net::SocketAddr;
use tokio::io::AsyncReadExt as _;

const HOST: &str = "ws.example.com";

/// A server with `settings`, one client publishing `app` on [`HOST`]; the vhost address.
async fn publish(
    settings: frps::ServerSettings,
    pki: &Pki,
    app: &Backend,
) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let server = TestServer::start(settings);
    let proxies = vec![http_proxy("ws", app.addr, &[HOST], VhostSpec::default())];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("ws").await;
    (server, c, http)
}

#[tokio::test]
async fn upgraded_connections_count_against_max_connections_per_proxy() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    settings.max_connections_per_proxy = 1;
    let (server, c, http) = publish(settings, &pki, &app).await;
    let mut tunnel = upgrade(http, HOST).await;
    echo(&mut tunnel, b"ping").await;
    let r = exchange(http, &get_request(HOST, "/")).await;
    assert_eq!(
        r.status, 503,
        "the tunnel holds the proxy's one connection: {}",
        r.body
    );
    echo(&mut tunnel, b"still open").await;
    drop(tunnel);
    until_status(http, HOST, 200).await;
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn upgraded_connections_keep_their_vhost_connection_slot() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    settings.vhost.max_connections = 1;
    let (server, c, http) = publish(settings, &pki, &app).await;
    let mut tunnel = upgrade(http, HOST).await;
    echo(&mut tunnel, b"ping").await;
    assert!(
        turned_away(http, HOST).await,
        "no slot left for a second connection"
    );
    echo(&mut tunnel, b"still open").await;
    drop(tunnel);
    until_status(http, HOST, 200).await;
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn one_source_address_gets_at_most_its_share_of_connections() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    settings.vhost.max_connections_per_ip = 2;
    let (server, c, http) = publish(settings, &pki, &app).await;
    let (mut one, mut two) = (upgrade(http, HOST).await, upgrade(http, HOST).await);
    echo(&mut one, b"1").await;
    echo(&mut two, b"2").await;
    assert!(
        turned_away(http, HOST).await,
        "a third connection from 127.0.0.1 is refused"
    );
    drop(one);
    until_status(http, HOST, 200).await;
    drop(two);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn an_idle_upgraded_connection_is_closed_and_logged_with_its_duration() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    settings.vhost.upgrade_idle_timeout = Duration::from_millis(300);
    let (mut server, c, http) = publish(settings, &pki, &app).await;
    let mut tunnel = upgrade(http, HOST).await;
    echo(&mut tunnel, b"ping").await;
    assert!(ends(&mut tunnel).await, "closed once idle");
    let e = server.next_access().await;
    assert_eq!(
        (e.status, e.path.as_str(), e.proxy.as_str()),
        (101, "/echo", "ws")
    );
    assert!(
        e.duration >= Duration::from_millis(300),
        "logged at close: {:?}",
        e.duration
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_backend_reset_of_an_upgraded_connection_resets_the_visitor() {
    let pki = Pki::new();
    let app = resetting_upgrade_backend(4).await;
    let settings = vhost_settings(&pki, &["*.example.com"]);
    let (server, c, http) = publish(settings, &pki, &app).await;
    let mut tunnel = upgrade(http, HOST).await;
    write(&mut tunnel, b"four").await;
    let mut rest = Vec::new();
    let ended = within("the visitor sees the end", tunnel.read_to_end(&mut rest)).await;
    let err = ended.expect_err("a reset, not a clean end");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
