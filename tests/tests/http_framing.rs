//! What frps says itself and how it frames what it passes on: the https redirect keeps a
//! non-default `vhostHTTPSPort`, transfer codings are refused (requests) or kept
//! (responses) rather than dropped, a malformed chunked body is the visitor's `400`,
//! `X-Forwarded-Host` carries no port the visitor made up, and `responseHeaders.set`
//! reaches frps's own answers.

use std::net::SocketAddr;

use frp_proto::{HeaderPair, Secret, VhostSpec};
use frp_tests::http::{backend, get, http_backend};
use frp_tests::rawhttp::{exchange, get_request, read_request};
use frp_tests::{http_proxy, init_logs, vhost_settings, Pki, TestClient, TestServer};
use tokio::io::AsyncWriteExt as _;

const ALLOW: &[&str] = &["*.example.com"];
const HOST: &str = "app.example.com";

/// A server and one client publishing `app` for `HOST` to `local` with `spec`.
async fn start(
    pki: &Pki,
    local: SocketAddr,
    spec: VhostSpec,
) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let server = TestServer::start(vhost_settings(pki, ALLOW));
    let proxies = vec![http_proxy("app", local, &[HOST], spec)];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("app").await;
    (server, c, http)
}

#[tokio::test]
async fn the_https_redirect_keeps_a_non_default_port() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let spec = VhostSpec {
        redirect_https: true,
        ..VhostSpec::default()
    };
    let (server, c, http) = start(&pki, app.addr, spec).await;
    let https_port = server.https.expect("https port").port();
    assert_ne!(https_port, 443);
    let r = get(http, &format!("{HOST}:{}", http.port()), "/a?b=c", &[]).await;
    assert_eq!(r.status, 308);
    let want = format!("https://{HOST}:{https_port}/a?b=c");
    assert_eq!(r.header("location"), Some(want.as_str()));
    assert_eq!(app.served(), 0);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn request_codings_other_than_chunked_get_501() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = start(&pki, app.addr, VhostSpec::default()).await;
    let gzip = format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n4\r\ngzip\r\n0\r\n\r\n");
    let r = exchange(http, &gzip).await;
    assert_eq!(r.status, 501, "as nginx answers: {}", r.body);
    let chunked = gzip.replace("gzip, chunked", "chunked");
    let r = exchange(http, &chunked).await;
    assert_eq!(r.status, 200, "plain chunked passes: {}", r.body);
    assert_eq!(r.field("len"), Some("4"));
    assert_eq!(app.served(), 1);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_response_coding_reaches_the_visitor() {
    let pki = Pki::new();
    let coding = backend(|mut tcp| async move {
        if read_request(&mut tcp).await.is_some() {
            let answer = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nGZIP!\r\n0\r\n\r\n";
            let _ = tcp.write_all(answer.as_bytes()).await;
        }
    })
    .await;
    let (server, c, http) = start(&pki, coding.addr, VhostSpec::default()).await;
    let r = exchange(http, &get_request(HOST, "/")).await;
    assert_eq!(r.status, 200, "{}", r.head);
    let te = r.head.to_ascii_lowercase();
    assert!(
        te.contains("transfer-encoding: gzip, chunked"),
        "{}",
        r.head
    );
    assert_eq!(r.body, "5\r\nGZIP!\r\n0\r\n\r\n");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_visitors_400() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (mut server, c, http) = start(&pki, app.addr, VhostSpec::default()).await;
    let bad = format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\nzz\r\n");
    let r = exchange(http, &bad).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let logged = server.next_access().await;
    assert_eq!((logged.status, logged.path.as_str()), (400, "/upload"));
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn x_forwarded_host_keeps_only_the_port_frps_listens_on() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = start(&pki, app.addr, VhostSpec::default()).await;
    let listening = format!("{HOST}:{}", http.port());
    for (host, want) in [
        ("app.example.com:666", HOST),
        ("App.Example.COM.", HOST),
        (listening.as_str(), listening.as_str()),
    ] {
        let r = exchange(http, &get_request(host, "/")).await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
        assert_eq!(
            r.field("header:host"),
            Some(host),
            "Host itself is left alone"
        );
        assert_eq!(r.field("header:x-forwarded-host"), Some(want), "{host}");
    }
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn response_headers_reach_frps_own_answers() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let header = |n: &str, v: &str| HeaderPair {
        name: n.into(),
        value: v.into(),
    };
    let spec = VhostSpec {
        http_user: "admin".into(),
        http_password: Secret::new("s3cret"),
        response_headers: vec![
            header("x-frame-options", "DENY"),
            header("www-authenticate", "Bearer"),
        ],
        ..VhostSpec::default()
    };
    let (server, c, http) = start(&pki, app.addr, spec).await;
    let r = get(http, HOST, "/", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("x-frame-options"),
        Some("DENY"),
        "on frps's own 401"
    );
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Basic realm="),
        "the answer's own header stays: {challenge}"
    );
    let r = get(
        http,
        HOST,
        "/",
        &[("authorization", "Basic YWRtaW46czNjcmV0")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer"),
        "set on the service's answers"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
