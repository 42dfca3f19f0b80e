//! One visitor starving a client of streams: two of a client's tcp ports flooded with idle
//! connections leave its other proxies their share of `maxConnectionsPerClient`, connections
//! beyond a proxy's share are reset at once, the vhost port answers `503` at once when a
//! proxy has no connection or its client no stream left, `maxConnectionsPerIP` caps one
//! source on a tcp port, and a proxy's `idleTimeout` closes idle tunnels only.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use frp_proto::VhostSpec;
use frp_tests::backends::{echo_hash, echo_server, random_bytes, sha256};
use frp_tests::http::http_backend;
use frp_tests::rawhttp::{exchange, get_request, until_status, upgrade, RawReply};
use frp_tests::{
    client_settings, http_proxy, init_logs, server_settings, tcp_proxy, vhost_settings, within,
    Pki, TestClient, TestServer, TIMEOUT,
};
use frps::policy::PortSet;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

const HOST: &str = "web.example.com";
/// The defaults scaled down 40 times: 8,000 connections per client, 5,000 per proxy, and
/// frpc's stream credit of 10,000.
const BUDGET: usize = 200;
const PER_PROXY: usize = 125;
const CREDIT: u32 = 250;
/// What each of the four proxies of the flooded client may always hold: half the budget
/// over four.
const SHARE: usize = BUDGET / 8;
/// How long a visitor may wait for a stream; far longer than [`AT_ONCE`].
const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// What "at once" means here: well before [`OPEN_STREAM_TIMEOUT`].
const AT_ONCE: Duration = Duration::from_secs(10);

/// Connects to `public` from `source`, then sends a byte and reads it back through the echo
/// service: `Some` when it went through, `None` when the connection was reset or closed.
/// Panics when neither happens within [`AT_ONCE`] (the connection waited for a stream).
async fn try_echo_from(source: IpAddr, public: SocketAddr) -> Option<TcpStream> {
    let attempt = async {
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind(SocketAddr::new(source, 0)).ok()?;
        let mut tcp = socket.connect(public).await.ok()?;
        tcp.write_all(b"x").await.ok()?;
        let mut back = [0u8; 1];
        tcp.read_exact(&mut back).await.ok()?;
        Some(tcp)
    };
    match tokio::time::timeout(AT_ONCE, attempt).await {
        Ok(through) => through,
        Err(_) => panic!("a connection to {public} was neither served nor refused at once"),
    }
}

async fn try_echo(public: SocketAddr) -> Option<TcpStream> {
    try_echo_from(frp_tests::LOCALHOST, public).await
}

/// Opens `n` connections to `public`, one after another; returns those that went through
/// (left open and idle).
async fn flood(public: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::new();
    for _ in 0..n {
        open.extend(try_echo(public).await);
    }
    open
}

/// `GET /` for [`HOST`], which must be answered within [`AT_ONCE`].
async fn get_at_once(http: SocketAddr) -> RawReply {
    let started = Instant::now();
    let reply = match tokio::time::timeout(AT_ONCE, exchange(http, &get_request(HOST, "/"))).await {
        Ok(reply) => reply,
        Err(_) => panic!("no answer within {AT_ONCE:?}"),
    };
    assert!(started.elapsed() < AT_ONCE);
    reply
}

/// A server for the flooded client: the budget, limit and stream timeout above.
fn budget_settings(pki: &Pki) -> frps::ServerSettings {
    let mut s = vhost_settings(pki, &["*.example.com"]);
    s.policy.global = PortSet::from_ranges([1024..=65535]);
    s.max_connections_per_client = BUDGET;
    s.max_connections_per_proxy = PER_PROXY;
    s.max_connections_per_ip = 10 * PER_PROXY; // one source floods here; its cap is tested below
    s.open_stream_timeout = OPEN_STREAM_TIMEOUT;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooded_ports_leave_the_clients_other_proxies_their_share() {
    init_logs();
    // Each open connection is four sockets in this process.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let pki = Pki::new();
    let server = TestServer::start(budget_settings(&pki));
    let (echo, _e) = echo_server().await;
    let web = http_backend("web").await;
    let proxies = vec![
        tcp_proxy("flood-a", echo, 0),
        tcp_proxy("flood-b", echo, 0),
        http_proxy("web", web.addr, &[HOST], VhostSpec::default()),
        tcp_proxy("other", echo, 0),
    ];
    let mut settings = client_settings(pki.client_tls("node1"), server.addr, proxies);
    settings.quic.max_incoming_streams = CREDIT;
    let mut c = TestClient::start(settings);
    let (a, b) = (c.bound("flood-a").await, c.bound("flood-b").await);
    let (http, other) = (c.bound("web").await, c.bound("other").await);

    let held_a = flood(a, PER_PROXY + 25).await;
    assert_eq!(
        held_a.len(),
        PER_PROXY,
        "flood-a: its share and the shared half, up to maxConnectionsPerProxy; the rest reset"
    );
    let held_b = flood(b, PER_PROXY + 25).await;
    assert_eq!(
        held_b.len(),
        SHARE,
        "flood-b: its share only, the shared half being used up; the rest reset"
    );

    let reply = get_at_once(http).await;
    assert_eq!(reply.status, 200, "the http proxy answers: {}", reply.body);
    let data = random_bytes(256 * 1024);
    let echoed = within("the other tcp proxy", echo_hash(other, &data)).await;
    assert_eq!(echoed, sha256(&data), "the other tcp proxy carries data");

    // Upgraded connections keep their backend connection: the http proxy's whole share.
    let mut tunnels = Vec::new();
    for _ in 0..SHARE {
        tunnels.push(upgrade(http, HOST).await);
    }
    let reply = get_at_once(http).await;
    assert_eq!(reply.status, 503, "no connection left: {}", reply.body);
    drop(tunnels.pop());
    until_status(http, HOST, 200).await;

    drop((held_a, held_b, tunnels));
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_client_out_of_stream_credit_gets_503_at_once() {
    init_logs();
    let pki = Pki::new();
    let mut s = vhost_settings(&pki, &["*.example.com"]);
    s.policy.global = PortSet::from_ranges([1024..=65535]);
    s.open_stream_timeout = OPEN_STREAM_TIMEOUT;
    let server = TestServer::start(s);
    let (echo, _e) = echo_server().await;
    let web = http_backend("web").await;
    let proxies = vec![
        tcp_proxy("busy", echo, 0),
        http_proxy("web", web.addr, &[HOST], VhostSpec::default()),
    ];
    // A client granting fewer streams than the server's budget: the credit runs out first.
    const SMALL_CREDIT: u32 = 20;
    let mut settings = client_settings(pki.client_tls("node1"), server.addr, proxies);
    settings.quic.max_incoming_streams = SMALL_CREDIT;
    let mut c = TestClient::start(settings);
    let (busy, http) = (c.bound("busy").await, c.bound("web").await);
    let held = flood(busy, SMALL_CREDIT as usize).await;
    assert_eq!(held.len(), SMALL_CREDIT as usize);

    let reply = get_at_once(http).await;
    assert_eq!(reply.status, 503, "no stream to be had: {}", reply.body);
    assert!(reply.body.contains("no free stream"), "{}", reply.body);
    drop(held);
    until_status(http, HOST, 200).await;
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn one_source_gets_max_connections_per_ip_on_a_tcp_port() {
    init_logs();
    let pki = Pki::new();
    let mut s = server_settings(&pki, 1024..=65535);
    s.max_connections_per_ip = 3;
    let server = TestServer::start(s);
    let (echo, _e) = echo_server().await;
    let mut c = TestClient::connect(&pki, "node1", server.addr, vec![tcp_proxy("e", echo, 0)]);
    let public = c.bound("e").await;
    let mut held = flood(public, 3).await;
    assert_eq!(held.len(), 3);
    assert!(
        try_echo(public).await.is_none(),
        "a fourth connection from 127.0.0.1 is reset"
    );
    let elsewhere: IpAddr = "127.0.0.2".parse().expect("ip");
    let other = try_echo_from(elsewhere, public).await;
    assert!(other.is_some(), "another source address still gets through");
    // A connection that ends gives its place back (its task ends a moment later).
    held.pop();
    within("a place given back", async {
        while try_echo(public).await.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn idle_timeout_closes_idle_tunnels_and_only_those() {
    init_logs();
    const IDLE: Duration = Duration::from_secs(1);
    let pki = Pki::new();
    let server = TestServer::start(server_settings(&pki, 1024..=65535));
    let (echo, _e) = echo_server().await;
    let mut proxy = tcp_proxy("ssh", echo, 0);
    proxy.idle_timeout = Some(IDLE);
    let mut c = TestClient::connect(&pki, "node1", server.addr, vec![proxy]);
    let public = c.bound("ssh").await;

    let idle = async {
        let mut tcp = try_echo(public).await.expect("connects");
        let quiet_from = Instant::now();
        let mut buf = [0u8; 1];
        let read = within("the idle connection is closed", tcp.read(&mut buf)).await;
        assert!(read.is_err(), "reset, not a clean end: {read:?}");
        let waited = quiet_from.elapsed();
        assert!(waited >= IDLE.mul_f32(0.8), "closed after {waited:?}");
        assert!(waited < TIMEOUT);
    };
    let active = async {
        let mut tcp = try_echo(public).await.expect("connects");
        // Three times the timeout, a byte every quarter of it.
        for _ in 0..12 {
            tokio::time::sleep(IDLE / 4).await;
            within("write", tcp.write_all(b"y"))
                .await
                .expect("still open");
            let mut back = [0u8; 1];
            within("echo", tcp.read_exact(&mut back))
                .await
                .expect("still open");
        }
    };
    tokio::join!(idle, active);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
