//! What a visitor cannot do at the web front door: name another URL than the one frps routed
//! (`X-Original-URL` and its kin are removed), switch a connection to HTTP/2 behind frps's
//! back (`Upgrade: h2c` is refused), or guess passwords quickly (wrong basic-auth passwords
//! back off per address with `429`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use frp_proto::{Secret, VhostSpec};
use frp_tests::http::{client_on, http_backend, request, send, Backend};
use frp_tests::rawhttp::{exchange, resetting_upgrade_backend};
use frp_tests::{http_proxy, init_logs, vhost_settings, within, Pki, TestClient, TestServer};
use tokio::net::TcpSocket;

const ALLOW: &[&str] = &["*.example.com"];
const HOST: &str = "app.example.com";
const OPEN: &str = "open.example.com";
/// `admin:s3cret`, and a wrong password.
const GOOD: (&str, &str) = ("authorization", "Basic YWRtaW46czNjcmV0");
const WRONG: (&str, &str) = ("authorization", "Basic YWRtaW46d3Jvbmc=");

fn protected() -> VhostSpec {
    VhostSpec {
        http_user: "admin".into(),
        http_password: Secret::new("s3cret"),
        ..VhostSpec::default()
    }
}

/// A server with `settings`, and one client publishing `app` (`HOST`, behind `spec`) and
/// `open` (`OPEN`) to `app`'s address; returns them and the vhost address.
async fn start(
    settings: frps::ServerSettings,
    pki: &Pki,
    app: SocketAddr,
    spec: VhostSpec,
) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let server = TestServer::start(settings);
    let proxies = vec![
        http_proxy("app", app, &[HOST], spec),
        http_proxy("open", app, &[OPEN], VhostSpec::default()),
    ];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("app").await;
    c.bound("open").await;
    (server, c, http)
}

#[tokio::test]
async fn url_overriding_headers_do_not_reach_the_service() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = start(
        vhost_settings(&pki, ALLOW),
        &pki,
        app.addr,
        VhostSpec::default(),
    )
    .await;
    let forged = "GET /public HTTP/1.1\r\nHost: app.example.com\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Original-URI: /admin\r\nX-Forwarded-Uri: /admin\r\nConnection: close\r\n\r\n";
    let r = exchange(http, forged).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("path"), Some("/public"));
    for name in [
        "x-original-url",
        "x-rewrite-url",
        "x-original-uri",
        "x-forwarded-uri",
    ] {
        assert_eq!(
            r.field(&format!("header:{name}")),
            None,
            "{name} is removed"
        );
    }
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// An h2c upgrade request, as `curl --http2 http://...` sends it, with `extra` header lines.
fn h2c(host: &str, extra: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n{extra}\r\n")
}

#[tokio::test]
async fn h2c_upgrades_are_refused_and_served_over_http1() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = start(
        vhost_settings(&pki, ALLOW),
        &pki,
        app.addr,
        VhostSpec::default(),
    )
    .await;
    let r = exchange(http, &h2c(HOST, "Connection: close\r\n")).await;
    assert_eq!(r.status, 200, "served over HTTP/1.1: {}", r.body);
    assert_eq!(
        r.field("header:upgrade"),
        None,
        "the service is not asked to switch"
    );
    assert_eq!(r.field("header:http2-settings"), None);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_service_switching_to_h2c_anyway_gets_no_tunnel() {
    let pki = Pki::new();
    // Its 101 was never asked for: the visitor gets 502, not a connection to it.
    let switching = resetting_upgrade_backend(1 << 20).await;
    let (server, c, http) = start(
        vhost_settings(&pki, ALLOW),
        &pki,
        switching.addr,
        VhostSpec::default(),
    )
    .await;
    let mut tcp = frp_tests::rawhttp::connect(http).await;
    frp_tests::rawhttp::write(&mut tcp, h2c(HOST, "").as_bytes()).await;
    let head = frp_tests::rawhttp::read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// A connection to `http` from the loopback address `from`.
async fn client_from(
    from: Ipv4Addr,
    http: SocketAddr,
) -> hyper::client::conn::http1::SendRequest<frp_tests::http::TestBody> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind a loopback address");
    let tcp = within("connect", socket.connect(http))
        .await
        .expect("connect");
    client_on(tcp).await
}

#[tokio::test]
async fn wrong_passwords_back_off_per_address_with_429() {
    let pki = Pki::new();
    let app: Backend = http_backend("app").await;
    let mut settings = vhost_settings(&pki, ALLOW);
    settings.vhost.auth_max_failures = 3;
    let (server, c, http) = start(settings, &pki, app.addr, protected()).await;
    let mut conn = client_from(Ipv4Addr::new(127, 0, 0, 1), http).await;
    for _ in 0..5 {
        let r = send(&mut conn, request("GET", HOST, "/", &[])).await;
        assert_eq!(r.status, 401, "no credentials is no guess: {}", r.body);
    }
    for _ in 0..3 {
        let r = send(&mut conn, request("GET", HOST, "/", &[WRONG])).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = send(&mut conn, request("GET", HOST, "/", &[GOOD])).await;
    assert_eq!(
        r.status, 429,
        "the password is not even checked: {}",
        r.body
    );
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(app.served(), 0);
    let r = send(&mut conn, request("GET", OPEN, "/", &[])).await;
    assert_eq!(
        r.status, 200,
        "what needs no password is served: {}",
        r.body
    );
    let mut other = client_from(Ipv4Addr::new(127, 0, 0, 2), http).await;
    let r = send(&mut other, request("GET", HOST, "/", &[GOOD])).await;
    assert_eq!(r.status, 200, "another address is not held: {}", r.body);
    assert_eq!(app.served(), 2);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
