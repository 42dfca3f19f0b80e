//! How failures look to a visitor and in the access log: a kept-alive backend connection the
//! service closed under a GET is retried (not a 502), a POST is not; a visitor that hangs up
//! while waiting is logged as `499`; requests hyper refuses itself are logged too.

use std::sync::atomic::Ordering;

use frp_proto::VhostSpec;
use frp_tests::http::{client, full, get, http_backend, send, Backend};
use frp_tests::rawhttp::{closing_backend, connect, exchange, get_request, write};
use frp_tests::{http_proxy, init_logs, vhost_settings, within, Pki, TestClient, TestServer};
use std::net::SocketAddr;

const HOST: &str = "app.example.com";

async fn publish(pki: &Pki, app: &Backend) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let server = TestServer::start(vhost_settings(pki, &["*.example.com"]));
    let proxies = vec![http_proxy("app", app.addr, &[HOST], VhostSpec::default())];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("app").await;
    (server, c, http)
}

#[tokio::test]
async fn a_get_on_a_connection_the_service_closed_is_retried_and_a_post_is_not() {
    let pki = Pki::new();
    let (app, closed) = closing_backend().await;
    let (server, c, http) = publish(&pki, &app).await;
    // Until one GET lands on a pooled connection the service then closes: each is a 200.
    within("a get on a closed pooled connection", async {
        while closed.load(Ordering::SeqCst) == 0 {
            let r = get(http, HOST, "/", &[]).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    })
    .await;
    // A POST is not repeated: on a closed pooled connection it fails (on a fresh one it works).
    let before = closed.load(Ordering::SeqCst);
    within("a post on a closed pooled connection", async {
        loop {
            let req = hyper::Request::post("/")
                .header("host", HOST)
                .body(full("data"))
                .expect("request");
            let r = send(&mut client(http).await, req).await;
            match r.status.as_u16() {
                200 => continue,
                502 => break,
                other => panic!("unexpected {other}: {}", r.body),
            }
        }
    })
    .await;
    assert_eq!(closed.load(Ordering::SeqCst), before + 1);
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
