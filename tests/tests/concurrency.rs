//! Many tunneled connections open at once through one client, all carrying data at the same
//! time: the stream credit the client grants (`transport.quic.maxIncomingStreams`), the
//! per-proxy connection cap and the finite connection window must let well over a thousand
//! concurrent connections through one QUIC connection without refusing or stalling any, the
//! credit growing from its first grant as the connections open.
//! One test per file: it holds thousands of sockets.

use std::net::SocketAddr;

use frp_tests::backends::{open_echo, random_bytes, sha256};
use frp_tests::{init_logs, server_settings, tcp_proxy, within, Pki, TestClient, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Concurrent tunneled connections: more than a thousand, within the default limits but
/// `maxConnectionsPerIP` (256), which this test, a single source, lifts.
const CONNECTIONS: usize = 1_500;
/// What each connection sends and reads back once all of them are open.
const PAYLOAD: usize = 64 * 1024;

/// Opens one connection, waits until every other one is open too, then echoes `PAYLOAD`
/// bytes and checks what comes back. Returns the connection, still open.
async fn open_then_echo(public: SocketAddr, all_open: &Barrier) -> TcpStream {
    let mut tcp = open_echo(public).await;
    all_open.wait().await;
    let data = random_bytes(PAYLOAD);
    let (mut r, mut w) = tcp.split();
    let write = async { w.write_all(&data).await.expect("write") };
    let read = async {
        let mut back = vec![0u8; PAYLOAD];
        r.read_exact(&mut back).await.expect("read echo");
        back
    };
    let ((), back) = tokio::join!(write, read);
    assert_eq!(sha256(&back), sha256(&data), "echo differs");
    tcp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_connections_at_once_through_one_client() {
    init_logs();
    // Each connection is four sockets in this process (visitor, public, local, echo side).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let pki = Pki::new();
    let mut settings = server_settings(&pki, 1024..=65535);
    settings.max_connections_per_ip = CONNECTIONS;
    let server = TestServer::start(settings);
    let (echo, _e) = frp_tests::backends::echo_server().await;
    let mut client =
        TestClient::connect(&pki, "busy", server.addr, vec![tcp_proxy("echo", echo, 0)]);
    let public = client.bound("echo").await;
    // The credit starts small and grows with the streams open (frp_runtime::credit).
    assert_eq!(
        client.gauges.stream_credit.get(),
        i64::from(frp_runtime::credit::INITIAL_STREAM_CREDIT)
    );

    let all_open = std::sync::Arc::new(Barrier::new(CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let all_open = all_open.clone();
        tasks.spawn(async move { open_then_echo(public, &all_open).await });
    }
    let mut open = Vec::with_capacity(CONNECTIONS);
    within("all connections echo", async {
        while let Some(tcp) = tasks.join_next().await {
            open.push(tcp.expect("connection task"));
        }
    })
    .await;
    assert_eq!(open.len(), CONNECTIONS);
    // Every one of them is still a live stream and a live local connection.
    assert!(client.gauges.streams.get() >= CONNECTIONS as i64);
    assert!(client.gauges.local_connections.get() >= CONNECTIONS as i64);
    assert!(server.gauges.public_connections.get() >= CONNECTIONS as i64);
    // The grant grew past the streams open, but only by doubling, not to the ceiling (10,000):
    // quinn keeps memory for every stream granted.
    let credit = client.gauges.stream_credit.get();
    assert!(
        (CONNECTIONS as i64..=2 * CONNECTIONS as i64).contains(&credit),
        "stream credit {credit} for {CONNECTIONS} open streams"
    );

    drop(open);
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
