//! The TCP transport: with every UDP datagram to frps dropped (the impairment relay as a
//! blackhole in front of its QUIC port), frpc on `transport.protocol = "auto"` connects over
//! TLS on TCP, every proxy type works through it with data intact, and once UDP gets
//! through again new connections go over QUIC while the open ones finish on TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use frp_admin::{ApiRequest, Handler as _};
use frp_proto::VhostSpec;
use frp_runtime::link::Transport;
use frp_tests::backends::{echo_hash, echo_server, random_bytes, sha256};
use frp_tests::http::{client, client_on, http_backend, request, send, tls_connect, tls_service};
use frp_tests::relay::Relay;
use frp_tests::{
    client_settings, free_tcp_port, free_udp_addr, http_proxy, https_proxy, init_logs, tcp_proxy,
    vhost_settings, within, Pki, TestClient, TestServer,
};
use frpc::config_transport::{Protocol, QUIC_HEAD_START};
use frpc::LocalProxy;
use frps::ServerSettings;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use bytes::Bytes;
use hyper::{HeaderMap, Method};

/// How long `auto` may take to connect with UDP dropped (the bound).
const TCP_WITHIN: Duration = Duration::from_secs(5);
/// How long it may take to be back on QUIC once UDP gets through (the bound).
const QUIC_WITHIN: Duration = Duration::from_secs(60);

/// A server with vhost ports, its TCP transport on 127.0.0.1:0 and `tcp_port` allowed.
fn settings(pki: &Pki, tcp_port: u16) -> ServerSettings {
    let mut s = vhost_settings(pki, &["*.example.com"]);
    s.policy.global = frps::policy::PortSet::from_ranges([tcp_port..=tcp_port]);
    s.tcp_bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    s
}

/// A client of `server` on `auto`, dialling QUIC at `quic` (a relay or a closed port) and
/// TCP at the server's TCP transport.
fn auto_client(
    pki: &Pki,
    server: &TestServer,
    quic: SocketAddr,
    proxies: Vec<LocalProxy>,
) -> TestClient {
    let mut s = client_settings(pki.client_tls("node1"), quic, proxies);
    s.protocol = Protocol::Auto;
    s.tcp_port = Some(server.tcp.expect("tcp transport bound").port());
    TestClient::start(s)
}

/// Waits until the client's status says it is connected over `transport`.
async fn on(c: &mut TestClient, transport: Transport, limit: Duration) {
    let wait = c
        .status
        .wait_for(|s| s.connected && s.transport == Some(transport));
    match tokio::time::timeout(limit, wait).await {
        Ok(r) => drop(r.expect("status")),
        Err(_) => panic!("not connected over {transport} within {limit:?}"),
    }
}

#[tokio::test]
async fn with_udp_blocked_auto_connects_over_tcp_and_every_proxy_type_works() {
    init_logs();
    let pki = Pki::new();
    let services = Pki::new();
    let port = free_tcp_port();
    let server = TestServer::start(settings(&pki, port));
    let relay = Relay::start(server.addr).expect("relay");
    relay.handle().blackhole(true);
    let (echo, _echo) = echo_server().await;
    let web = http_backend("web").await;
    let kube = tls_service(&services.ca, "k1.example.com").await;
    let proxies = vec![
        tcp_proxy("echo", echo, port),
        http_proxy("web", web.addr, &["web.example.com"], VhostSpec::default()),
        https_proxy("kube", kube.addr, &["k1.example.com"]),
    ];
    let started = Instant::now();
    let mut c = auto_client(&pki, &server, relay.addr(), proxies);
    on(&mut c, Transport::Tcp, TCP_WITHIN).await;
    eprintln!("connected over tcp after {:?}", started.elapsed());
    let public = c.bound("echo").await;
    c.bound("web").await;
    c.bound("kube").await;

    // tcp: 4 MiB each way, compared by digest.
    let data = random_bytes(4 * 1024 * 1024);
    assert_eq!(echo_hash(public, &data).await, sha256(&data));
    // http, through the vhost port.
    let mut http = client(server.http.expect("http port")).await;
    let r = send(&mut http, request("GET", "web.example.com", "/", &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("backend"), Some("web"));
    // https, passed through by SNI with TLS end to end.
    let https = server.https.expect("https port");
    let tls = tls_connect(https, "k1.example.com", vec![services.ca.cert_der()])
        .await
        .expect("tls through the tunnel");
    let mut kube_client = client_on(tls).await;
    let r = send(&mut kube_client, request("GET", "k1.example.com", "/", &[])).await;
    assert_eq!(r.field("backend"), Some("k1.example.com"));
    assert_eq!(forwarded(&relay), 0, "no datagram got through");

    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn the_https_port_takes_tunnels_by_alpn_beside_visitors() {
    init_logs();
    let pki = Pki::new();
    let mut settings = settings(&pki, 1);
    settings.tcp_bind = None;
    let server = TestServer::start(settings);
    let relay = Relay::start(server.addr).expect("relay");
    relay.handle().blackhole(true);
    let web = http_backend("web").await;
    let proxies = vec![http_proxy(
        "web",
        web.addr,
        &["web.example.com"],
        VhostSpec::default(),
    )];
    let mut s = client_settings(pki.client_tls("node1"), relay.addr(), proxies);
    s.protocol = Protocol::Tcp;
    s.tcp_port = Some(server.https.expect("https port").port());
    let mut c = TestClient::start(s);
    on(&mut c, Transport::Tcp, TCP_WITHIN).await;
    c.bound("web").await;
    let mut http = client(server.http.expect("http port")).await;
    let r = send(&mut http, request("GET", "web.example.com", "/", &[])).await;
    assert_eq!(r.field("backend"), Some("web"), "{}", r.body);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_client_the_server_does_not_trust_is_refused_over_tcp_too() {
    init_logs();
    let pki = Pki::new();
    let strangers = Pki::new();
    let server = TestServer::start(settings(&pki, 1));
    let mut s = client_settings(strangers.client_tls("node1"), server.addr, Vec::new());
    s.protocol = Protocol::Tcp;
    s.tcp_port = Some(server.tcp.expect("tcp").port());
    // The stranger's CA is not the server's either: set the server's, so only the client
    // certificate is wrong.
    let mut tls = (*pki.client_tls("node1")).clone();
    tls.client_auth_cert_resolver = strangers
        .client_tls("node1")
        .client_auth_cert_resolver
        .clone();
    s.tls = std::sync::Arc::new(tls);
    let c = TestClient::start(s);
    let end = c.finished().await.expect_err("gives up");
    let text = end.to_string();
    assert!(
        text.contains("the server refused this client's certificate"),
        "{text}"
    );
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn udp_answered_with_port_unreachable_goes_to_tcp_without_waiting() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(settings(&pki, free_tcp_port()));
    // Nothing listens on this UDP port: the kernel answers QUIC with "port unreachable".
    let closed = free_udp_addr();
    let mut c = auto_client(&pki, &server, closed, vec![]);
    on(&mut c, Transport::Tcp, QUIC_HEAD_START).await;
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_reconnect_behind_a_udp_block_does_not_wait_for_quic_again() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(settings(&pki, free_tcp_port()));
    let relay = Relay::start(server.addr).expect("relay");
    relay.handle().blackhole(true);
    let mut c = auto_client(&pki, &server, relay.addr(), vec![]);
    on(&mut c, Transport::Tcp, TCP_WITHIN).await;
    assert_eq!(c.status.borrow().sessions, 1);

    // The server's operator disconnects it: it dials TCP at once, not after QUIC's head start.
    let gone = Instant::now();
    let request = ApiRequest {
        method: Method::DELETE,
        path: "/api/v1/clients/node1".into(),
        query: None,
        headers: HeaderMap::new(),
        body: Bytes::new(),
        peer: SocketAddr::from(([127, 0, 0, 1], 1)),
    };
    assert_eq!(server.api.handle(request).await.status, 204);
    let back = c
        .status
        .wait_for(|s| s.connected && s.sessions == 2 && s.transport == Some(Transport::Tcp));
    match tokio::time::timeout(QUIC_HEAD_START, back).await {
        Ok(r) => drop(r.expect("status")),
        Err(_) => panic!("not back over TCP within QUIC's head start ({QUIC_HEAD_START:?})"),
    }
    eprintln!("back over tcp after {:?}", gone.elapsed());
    assert_eq!(
        forwarded(&relay),
        0,
        "no datagram got through the blackhole"
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn once_udp_gets_through_new_connections_use_quic_and_open_ones_finish() {
    init_logs();
    let pki = Pki::new();
    let port = free_tcp_port();
    let server = TestServer::start(settings(&pki, port));
    let relay = Relay::start(server.addr).expect("relay");
    relay.handle().blackhole(true);
    let (echo, _echo) = echo_server().await;
    let mut c = auto_client(
        &pki,
        &server,
        relay.addr(),
        vec![tcp_proxy("echo", echo, port)],
    );
    on(&mut c, Transport::Tcp, TCP_WITHIN).await;
    // HTTP/2 grants its whole stream limit at once (h2 keeps nothing for unused streams).
    assert_eq!(c.gauges.stream_credit.get(), 10_000);
    let public = c.bound("echo").await;
    // A connection opened over TCP, kept open across the move.
    let mut open = within("connect", TcpStream::connect(public))
        .await
        .expect("connect");
    let first = random_bytes(64 * 1024);
    roundtrip(&mut open, &first).await;

    relay.handle().blackhole(false);
    on(&mut c, Transport::Quic, QUIC_WITHIN).await;
    // QUIC grants as streams are used, from the first grant.
    let first = frp_runtime::credit::INITIAL_STREAM_CREDIT;
    assert_eq!(c.gauges.stream_credit.get(), i64::from(first));
    let public = c.bound("echo").await;
    assert!(forwarded(&relay) > 0, "QUIC went through the relay");
    // New connections go over QUIC (through the relay), intact.
    let before = forwarded(&relay);
    let data = random_bytes(1024 * 1024);
    assert_eq!(echo_hash(public, &data).await, sha256(&data));
    assert!(
        forwarded(&relay) > before + 100,
        "the new connection used QUIC"
    );
    // The old one still works on TCP, and ends cleanly.
    let more = random_bytes(256 * 1024);
    roundtrip(&mut open, &more).await;
    open.shutdown().await.expect("fin");
    let mut rest = Vec::new();
    within("echo fin", open.read_to_end(&mut rest))
        .await
        .expect("clean end");
    assert!(rest.is_empty());
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// Datagrams the relay let through, both ways.
fn forwarded(relay: &Relay) -> u64 {
    let s = relay.handle().stats();
    s.up.forwarded + s.down.forwarded
}

/// Writes `data` and reads the echo back, under the test timeout.
async fn roundtrip(tcp: &mut TcpStream, data: &[u8]) {
    let (mut r, mut w) = tcp.split();
    let write = async {
        w.write_all(data).await.expect("write");
    };
    let read = async {
        let mut got = vec![0; data.len()];
        r.read_exact(&mut got).await.expect("echo");
        got
    };
    let ((), got) = within("echo round trip", async { tokio::join!(write, read) }).await;
    assert!(got == data, "echoed bytes differ");
}
