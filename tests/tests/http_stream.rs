//! Long and large exchanges through `vhostHTTPPort`: a WebSocket echo for seconds, and a
//! 256 MiB upload and a 256 MiB download checked by SHA-256 with the process's peak memory
//! staying far below the size moved (bodies stream, they are never buffered whole). In their
//! own binary so the peak the bulk test reads is not another test's.

use frp_proto::VhostSpec;
use frp_tests::http::{
    client, hash_body, hex, http_backend, pattern, peak_rss, send, stream_body, TestBody, CHUNK,
};
use frp_tests::{http_proxy, init_logs, vhost_settings, within, Pki, TestClient, TestServer};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use sha2::{Digest as _, Sha256};
use std::time::Duration;

const SIZE: usize = 256 << 20;
/// Far below SIZE: what frps, frpc and the test may hold at once. The QUIC receive windows
/// (8 MiB per stream on each side) and hyper's 64 KiB buffers bound it; about 25 MiB is
/// measured, so a body buffered whole (256 MiB) is far over the line.
const MAX_GROWTH: u64 = 48 << 20;

/// Uploads `chunks` pattern chunks; the service hashes what arrives.
async fn upload(conn: &mut SendRequest<TestBody>, chunks: usize, want: &[u8; 32]) {
    let req = Request::post("/upload")
        .header("host", "bulk.example.com")
        .header("content-length", SIZE.to_string())
        .body(stream_body(pattern(chunks)))
        .expect("request");
    let r = within("256 MiB upload", send(conn, req)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("len"), Some(SIZE.to_string().as_str()));
    assert_eq!(
        r.field("sha256"),
        Some(hex(want).as_str()),
        "uploaded bytes differ"
    );
}

/// Downloads `chunks` pattern chunks, hashing them as they arrive.
async fn download(conn: &mut SendRequest<TestBody>, chunks: usize, want: &[u8; 32]) {
    let req = Request::get(format!("/download?n={chunks}"))
        .header("host", "bulk.example.com")
        .body(frp_tests::http::empty())
        .expect("request");
    within("ready", conn.ready()).await.expect("ready");
    let resp = within("download head", conn.send_request(req))
        .await
        .expect("response");
    assert_eq!(resp.status(), 200);
    let (len, digest) = within("256 MiB download", hash_body(resp.into_body())).await;
    assert_eq!(
        (len, &digest),
        (SIZE as u64, want),
        "downloaded bytes differ"
    );
}

#[tokio::test]
async fn two_hundred_fifty_six_mib_up_and_down_stream_with_flat_memory() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("bulk").await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let proxies = vec![http_proxy(
        "bulk",
        app.addr,
        &["bulk.example.com"],
        VhostSpec::default(),
    )];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = c.bound("bulk").await;
    let chunks = SIZE / CHUNK;
    let want: [u8; 32] = {
        let mut h = Sha256::new();
        pattern(chunks).for_each(|b| h.update(&b));
        h.finalize().into()
    };
    let baseline = peak_rss();
    let mut conn = client(http).await;
    upload(&mut conn, chunks, &want).await;
    download(&mut conn, chunks, &want).await;
    let grown = peak_rss().saturating_sub(baseline);
    eprintln!("peak memory grew by {} MiB", grown >> 20);
    assert!(
        grown < MAX_GROWTH,
        "peak memory grew by {} MiB moving 2 x 256 MiB",
        grown >> 20
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

type WebSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Forty text messages 100 ms apart and one of 100 kB, each echoed.
async fn chatter(socket: &mut WebSocket) {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for i in 0..40 {
        tick.tick().await;
        let text = format!("message {i}");
        within("send", socket.send(Message::text(text.clone())))
            .await
            .expect("send");
        let echo = within("echo", socket.next()).await;
        assert_eq!(echo.expect("open").expect("message"), Message::text(text));
    }
    let big = Message::binary(vec![7u8; 100_000]);
    within("send binary", socket.send(big))
        .await
        .expect("send binary");
    let echo = within("echo", socket.next()).await;
    assert_eq!(echo.expect("open").expect("message").len(), 100_000);
}

#[tokio::test]
async fn a_websocket_echo_stays_open_for_seconds() {
    use futures_util::StreamExt as _;
    init_logs();
    let pki = Pki::new();
    let ws = frp_tests::http::ws_echo_backend().await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let proxies = vec![http_proxy(
        "ws",
        ws,
        &["ws.example.com"],
        VhostSpec::default(),
    )];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let http = c.bound("ws").await;
    let tcp = within("connect", tokio::net::TcpStream::connect(http))
        .await
        .expect("connect");
    let (mut socket, resp) = within(
        "websocket handshake",
        tokio_tungstenite::client_async("ws://ws.example.com/socket", tcp),
    )
    .await
    .expect("websocket upgrade through frps");
    assert_eq!(resp.status(), 101);
    // Several seconds of traffic on the one upgraded connection.
    chatter(&mut socket).await;
    within("close", socket.close(None)).await.expect("close");
    // The close handshake completes through the tunnel, then the connection ends.
    while let Some(Ok(_)) = within("close echo", socket.next()).await {}
    drop(socket);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
