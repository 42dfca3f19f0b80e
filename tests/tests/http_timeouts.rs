//! The clocks of one exchange: `vhostHTTPTimeout` counts from the end of the request body,
//! so a slow upload is not cut off; a visitor that stops sending its body gets `408`, one that
//! stops reading its answer is dropped, and either way the proxy's connection is given back.

use std::time::Duration;

use bytes::Bytes;
use frp_proto::VhostSpec;
use frp_tests::http::{client, http_backend, send, Backend, TestBody, CHUNK};
use frp_tests::rawhttp::{connect, get_request, read_head, until_status, write};
use frp_tests::{http_proxy, init_logs, vhost_settings, within, Pki, TestClient, TestServer};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use std::net::SocketAddr;
use tokio::io::AsyncReadExt as _;

const HOST: &str = "up.example.com";
const TICK: Duration = Duration::from_millis(300);

/// A server with these clocks, one client publishing `app` on [`HOST`] with one connection at
/// most; the vhost address.
async fn publish(
    pki: &Pki,
    app: &Backend,
    response: Duration,
    body_idle: Duration,
) -> (TestServer, TestClient, SocketAddr) {
    init_logs();
    let mut settings = vhost_settings(pki, &["*.example.com"]);
    settings.vhost.response_timeout = response;
    settings.vhost.body_idle_timeout = body_idle;
    settings.max_connections_per_proxy = 1;
    let server = TestServer::start(settings);
    let proxies = vec![http_proxy("up", app.addr, &[HOST], VhostSpec::default())];
    let mut c = TestClient::connect(pki, "node1", server.addr, proxies);
    let http = c.bound("up").await;
    (server, c, http)
}

/// `count` chunks of 1 KiB, one every `every`.
fn paced(count: usize, every: Duration) -> TestBody {
    let chunks = futures_util::stream::unfold(0, move |i| async move {
        if i == count {
            return None;
        }
        tokio::time::sleep(every).await;
        Some((Ok(Frame::data(Bytes::from(vec![b'x'; 1024]))), i + 1))
    });
    StreamBody::new(chunks).boxed()
}

#[tokio::test]
async fn an_upload_slower_than_the_response_timeout_is_not_cut_off() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = publish(&pki, &app, TICK, Duration::from_secs(5)).await;
    // Ten chunks, each well within the body's idle time, the whole beyond vhostHTTPTimeout.
    let req = hyper::Request::post("/upload")
        .header("host", HOST)
        .body(paced(10, TICK / 3))
        .expect("request");
    let r = send(&mut client(http).await, req).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("len"), Some("10240"));
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_frees_the_connection() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (mut server, c, http) = publish(&pki, &app, Duration::from_secs(60), TICK).await;
    let mut tcp = connect(http).await;
    let head = format!("POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100\r\n\r\n");
    write(&mut tcp, head.as_bytes()).await;
    write(&mut tcp, &[b'x'; 10]).await;
    let answer = read_head(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let e = server.next_access().await;
    assert_eq!((e.status, e.path.as_str()), (408, "/upload"));
    until_status(http, HOST, 200).await;
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_visitor_that_stops_reading_is_dropped_and_frees_the_connection() {
    let pki = Pki::new();
    let app = http_backend("app").await;
    let (server, c, http) = publish(&pki, &app, Duration::from_secs(60), TICK).await;
    let chunks = 1024; // 64 MiB: far more than the socket buffers and QUIC windows hold
    let mut tcp = connect(http).await;
    let req = get_request(HOST, &format!("/download?n={chunks}"));
    write(&mut tcp, req.as_bytes()).await;
    until_status(http, HOST, 200).await;
    let mut got = Vec::new();
    let _ = within("the stalled answer ends", tcp.read_to_end(&mut got)).await;
    assert!(
        got.len() < chunks * CHUNK,
        "the answer was cut off, not completed"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// An event stream: one event, silence until `go` is notified, a second event, the end.
async fn event_stream(go: std::sync::Arc<tokio::sync::Notify>) -> Backend {
    use tokio::io::AsyncWriteExt as _;
    frp_tests::http::backend(move |mut tcp| {
        let go = std::sync::Arc::clone(&go);
        async move {
            if frp_tests::rawhttp::read_request(&mut tcp).await.is_none() {
                return;
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            let event = |n: u8| format!("9\r\ndata: {}\n\n\r\n", char::from(n));
            let first = format!("{head}{}", event(b'1'));
            let _ = tcp.write_all(first.as_bytes()).await;
            go.notified().await;
            let rest = format!("{}0\r\n\r\n", event(b'2'));
            let _ = tcp.write_all(rest.as_bytes()).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_response_silent_longer_than_the_body_idle_time_survives() {
    let pki = Pki::new();
    let go = std::sync::Arc::new(tokio::sync::Notify::new());
    let app = event_stream(std::sync::Arc::clone(&go)).await;
    let (server, c, http) = publish(&pki, &app, TICK, TICK).await;
    let mut sender = client(http).await;
    let req = frp_tests::http::request("GET", HOST, "/events", &[]);
    let resp = within("response head", sender.send_request(req))
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = within("first event", body.frame()).await;
    let first = first
        .expect("a frame")
        .expect("data")
        .into_data()
        .expect("data");
    assert_eq!(&first[..], b"data: 1\n\n");
    // Silent for several body idle times (and vhostHTTPTimeout): a stream, not a stall.
    tokio::time::sleep(TICK * 4).await;
    go.notify_one();
    let rest = within("the rest", body.collect()).await.expect("body");
    assert_eq!(&rest.to_bytes()[..], b"data: 2\n\n");
    drop(sender);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
