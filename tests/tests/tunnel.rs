//! The data path end to end: round trips, concurrency, big transfers, half-close, refusals
//! by the local target, and graceful shutdown with a stream in flight.

use frp_tests::backends::{
    closed_port, digest_server, echo_hash, echo_once, echo_server, random_bytes, read_to_end,
    sha256,
};
use frp_tests::{init_logs, server_settings, tcp_proxy, within, Pki, TestClient, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// Starts a server and a client publishing `proxies`; returns them once all are bound.
async fn tunnel(pki: &Pki, proxies: Vec<frpc::LocalProxy>) -> (TestServer, TestClient) {
    init_logs();
    let server = TestServer::start(server_settings(pki, PORTS));
    let names: Vec<String> = proxies.iter().map(|p| p.name.to_string()).collect();
    let mut client = TestClient::connect(pki, "node1", server.addr, proxies);
    for n in &names {
        client.bound(n).await;
    }
    (server, client)
}

#[tokio::test]
async fn round_trip_and_100_parallel_connections() {
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let (server, mut client) = tunnel(&pki, vec![tcp_proxy("echo", echo, 0)]).await;
    let public = client.bound("echo").await;

    assert_eq!(
        echo_once(public, b"hello through the tunnel").await,
        b"hello through the tunnel"
    );

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100u32 {
        tasks.spawn(async move {
            let msg = format!("connection {i}: {}", "x".repeat(i as usize * 37));
            assert_eq!(echo_once(public, msg.as_bytes()).await, msg.as_bytes());
        });
    }
    within("100 parallel echoes", async {
        while let Some(r) = tasks.join_next().await {
            r.expect("echo task");
        }
    })
    .await;
    client.stop().await.expect("client stop");
    server.stop().await.expect("server stop");
}

#[tokio::test]
async fn sixty_four_mib_each_way_arrive_intact() {
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let (digest, _d) = digest_server().await;
    let proxies = vec![tcp_proxy("echo", echo, 0), tcp_proxy("digest", digest, 0)];
    let (server, mut client) = tunnel(&pki, proxies).await;
    let data = random_bytes(64 << 20);
    let want = sha256(&data);

    // Both directions at once through an echo service.
    let echo_public = client.bound("echo").await;
    assert_eq!(
        echo_hash(echo_public, &data).await,
        want,
        "echoed 64 MiB differ"
    );

    // Upload only, checked by the service itself.
    let mut tcp = TcpStream::connect(client.bound("digest").await)
        .await
        .expect("connect");
    within("upload 64 MiB", tcp.write_all(&data))
        .await
        .expect("upload");
    tcp.shutdown().await.expect("shutdown");
    assert_eq!(
        read_to_end(&mut tcp).await.expect("digest"),
        want,
        "uploaded 64 MiB differ"
    );

    client.stop().await.expect("client stop");
    server.stop().await.expect("server stop");
}

#[tokio::test]
async fn half_close_still_receives_the_whole_response() {
    let pki = Pki::new();
    let (digest, _d) = digest_server().await;
    let (server, mut client) = tunnel(&pki, vec![tcp_proxy("digest", digest, 0)]).await;
    let mut tcp = TcpStream::connect(client.bound("digest").await)
        .await
        .expect("connect");
    let body = random_bytes(300_000);
    tcp.write_all(&body).await.expect("write");
    // The service answers only after it sees our FIN: the FIN must cross the tunnel, and the
    // answer must still come back over our half-open connection.
    tcp.shutdown().await.expect("shutdown write side");
    assert_eq!(
        read_to_end(&mut tcp).await.expect("response"),
        sha256(&body)
    );
    client.stop().await.expect("client stop");
    server.stop().await.expect("server stop");
}

#[tokio::test]
async fn refusing_local_target_closes_public_connection_and_client_keeps_working() {
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let dead = closed_port().await;
    let proxies = vec![tcp_proxy("dead", dead, 0), tcp_proxy("echo", echo, 0)];
    let (server, mut client) = tunnel(&pki, proxies).await;

    for _ in 0..3 {
        let mut tcp = TcpStream::connect(client.bound("dead").await)
            .await
            .expect("connect");
        let mut buf = [0u8; 16];
        // A reset or an EOF, promptly, never data and never a hang.
        match within("public connection to close", tcp.read(&mut buf)).await {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("got {n} bytes from a dead target"),
        }
    }
    assert_eq!(
        echo_once(client.bound("echo").await, b"still alive").await,
        b"still alive"
    );
    assert_eq!(
        client.status.borrow().sessions,
        1,
        "the client must not have reconnected"
    );
    client.stop().await.expect("client stop");
    server.stop().await.expect("server stop");
}

/// Writes `first`, begins a shutdown with `stop`, then shows the stream still carries data
/// both ways until the visitor closes it, and that everything returns `Ok(())`.
async fn shutdown_with_stream_in_flight(stop_server_first: bool) {
    let pki = Pki::new();
    let (echo, _e) = echo_server().await;
    let (server, mut client) = tunnel(&pki, vec![tcp_proxy("echo", echo, 0)]).await;
    let mut tcp = frp_tests::backends::open_echo(client.bound("echo").await).await;
    let mut buf = [0u8; 6];

    if stop_server_first {
        server.begin_stop();
    } else {
        client.begin_stop();
    }
    // In flight: the open stream keeps working during the grace period.
    tcp.write_all(b"during").await.expect("write during drain");
    within("echo during drain", tcp.read_exact(&mut buf))
        .await
        .expect("read during drain");
    assert_eq!(&buf, b"during");
    tcp.shutdown().await.expect("shutdown");
    assert!(read_to_end(&mut tcp).await.expect("clean end").is_empty());

    if stop_server_first {
        server.stop().await.expect("server run() returns Ok");
        client.stop().await.expect("client run() returns Ok");
    } else {
        client.stop().await.expect("client run() returns Ok");
        server.stop().await.expect("server run() returns Ok");
    }
}

#[tokio::test]
async fn graceful_server_shutdown_lets_open_stream_finish() {
    shutdown_with_stream_in_flight(true).await;
}

#[tokio::test]
async fn graceful_client_shutdown_lets_open_stream_finish() {
    shutdown_with_stream_in_flight(false).await;
}

#[tokio::test]
async fn resets_cross_the_tunnel_in_both_directions() {
    use frp_tests::backends::{ending_server, resetting_server, Ending};
    let pki = Pki::new();
    let (ending, mut endings) = ending_server().await;
    let resetting = resetting_server(1000).await;
    let proxies = vec![
        tcp_proxy("ending", ending, 0),
        tcp_proxy("resetting", resetting, 0),
    ];
    let (server, mut client) = tunnel(&pki, proxies).await;

    // Local service resets mid-stream: the visitor gets the bytes sent before, then a reset.
    let mut tcp = TcpStream::connect(client.bound("resetting").await)
        .await
        .expect("connect");
    tcp.write_all(&[7u8; 1000]).await.expect("write");
    let mut got = Vec::new();
    let end = within("visitor sees the reset", tcp.read_to_end(&mut got)).await;
    assert!(
        end.is_err(),
        "a reset must not look like a clean end (got {} bytes, Ok)",
        got.len()
    );

    // Visitor resets: the local service sees a reset too; a visitor FIN is a clean EOF.
    let mut tcp = ready(client.bound("ending").await).await;
    tcp.write_all(b"some bytes").await.expect("write");
    frp_runtime::splice::reset_tcp(tcp);
    assert_eq!(
        within("service sees reset", endings.recv()).await,
        Some(Ending::Reset)
    );
    let mut tcp = ready(client.bound("ending").await).await;
    tcp.write_all(b"some bytes").await.expect("write");
    tcp.shutdown().await.expect("fin");
    assert_eq!(
        within("service sees eof", endings.recv()).await,
        Some(Ending::Eof)
    );

    client.stop().await.expect("client stop");
    server.stop().await.expect("server stop");
}

/// Connects and waits for the service's `ready`, so the tunnel is established end to end.
async fn ready(public: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(public).await.expect("connect");
    let mut greeting = [0u8; 5];
    within("service greeting", tcp.read_exact(&mut greeting))
        .await
        .expect("greeting");
    assert_eq!(&greeting, b"ready");
    tcp
}
