//! How failures look to a visitor and in the access log: a kept-alive backend connection the
//! service closed under a GET is retried (not a 502, nor a 503 with one connection per
//! proxy), a POST or DELETE is not; a visitor that hangs up
//! while waiting is logged as `499`; requests hyper refuses itself are logged too.

use std::sync::atomic::Ordering;

use frp_proto::VhostSpec;
use frp_tests::http::{client, full, http_backend, send, Backend};
use frp_tests::rawhttp::{closing_backend, connect, exchange, get_request, write};
use frp_tests::{http_proxy, init_logs, vhost_settings, within, Pki, TestClient, TestServer};
use std::net::SocketAddr;

const HOST: &str = "app.example.com";

async fn publish(pki: &Pki, app: &Backend) -> (TestServer, TestClient, SocketAddr) {
    publish_limited(pki, app, 5000).await
}

/// [`publish`] with `maxConnectionsPerProxy` at `max`.
async fn publish_limited(
    pki: &Pki,
    app: &Backend,
    max: usize,
) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let mut settings = vhost_settings(pki, &["*.example.com"]);
    settings.max_connections_per_proxy = max;
    let server = TestServer::start(settings);
    let proxies = vec![http_proxy("app", app.addr, &[HOST], VhostSpec::default())];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("app").await;
    (server, c, http)
}

/// Sends `method /` with `headers` on fresh visitor connections until one lands on a pooled
/// connection the service closes under it; returns that one's status.
async fn on_a_closed_connection(
    http: SocketAddr,
    closed: &std::sync::atomic::AtomicUsize,
    method: &str,
    headers: &[(&str, &str)],
) -> u16 {
    let before = closed.load(Ordering::SeqCst);
    within(
        &format!("a {method} on a closed pooled connection"),
        async {
            loop {
                let mut req = hyper::Request::builder()
                    .method(method)
                    .uri("/")
                    .header("host", HOST);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let body = match method {
                    "POST" => full("data"),
                    _ => frp_tests::http::empty(),
                };
                let r = send(&mut client(http).await, req.body(body).expect("request")).await;
                if closed.load(Ordering::SeqCst) > before {
                    return r.status.as_u16();
                }
                assert_eq!(r.status, 200, "on a fresh connection: {}", r.body);
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_get_on_a_connection_the_service_closed_is_retried_and_a_post_is_not() {
    let pki = Pki::new();
    let (app, closed) = closing_backend().await;
    // One connection per proxy: the retry must wait for the closed one's permit, not 503.
    let (server, c, http) = publish_limited(&pki, &app, 1).await;
    assert_eq!(on_a_closed_connection(http, &closed, "GET", &[]).await, 200);
    assert_eq!(
        on_a_closed_connection(http, &closed, "POST", &[]).await,
        502
    );
    let delete = on_a_closed_connection(http, &closed, "DELETE", &[]).await;
    assert_eq!(delete, 502, "a DELETE is not sent twice");
    let keyed = [("idempotency-key", "k1")];
    let delete = on_a_closed_connection(http, &closed, "DELETE", &keyed).await;
    assert_eq!(delete, 200, "unless it carries an Idempotency-Key");
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_visitor_that_hangs_up_while_waiting_is_logged_as_499() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (mut server, c, http) = publish(&pki, &app).await;
    let mut tcp = connect(http).await;
    let req = format!("GET /slow HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    write(&mut tcp, req.as_bytes()).await;
    frp_tests::eventually("the request reaches the service", || app.accepted() == 1).await;
    drop(tcp);
    let e = server.next_access().await;
    assert_eq!(
        (e.status, e.path.as_str(), e.proxy.as_str()),
        (499, "/slow", "app")
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn requests_hyper_refuses_are_logged() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (mut server, c, http) = publish(&pki, &app).await;
    let garbage = exchange(http, "NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    let e = server.next_access().await;
    assert_eq!(
        (e.status, e.method.as_str(), e.path.as_str()),
        (400, "-", "-")
    );
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(80 * 1024)
    );
    let r = exchange(http, &huge).await;
    assert_eq!(r.status, 431, "{} {}", r.head, r.body.len());
    assert_eq!(server.next_access().await.status, 431);
    assert_eq!(
        exchange(http, &get_request(HOST, "/fine")).await.status,
        200
    );
    let e = server.next_access().await;
    assert_eq!((e.status, e.path.as_str()), (200, "/fine"));
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
