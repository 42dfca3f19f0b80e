//! The stream credit frpc grants frps (`transport.quic.maxIncomingStreams` is its ceiling):
//! it starts at 256 and grows only when that many streams are in use at once, because quinn
//! keeps memory for every stream granted once streams have come and gone. Thousands of
//! connections one after another (a `Connection: close` workload) leave it where it started;
//! the thousands-at-once case is `concurrency.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use frp_proto::VhostSpec;
use frp_runtime::credit::INITIAL_STREAM_CREDIT;
use frp_tests::backends::{echo_once, echo_server};
use frp_tests::http::{backend, full, get};
use frp_tests::{
    client_settings, http_proxy, init_logs, tcp_proxy, vhost_settings, within, Pki, TestClient,
    TestServer,
};
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// Connections opened, used and closed: more than the initial grant many times over.
const CHURN: usize = 3_000;
/// How many of them are open at once. Streams ended within the last two round trips count
/// as in use too (they may still hold credit), and each connection takes at least a round
/// trip, so at most about `2 × AT_ONCE` count: far below the 192 that would grow the grant
/// even when quinn's smoothed RTT lags behind a stalled CI machine.
const AT_ONCE: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_one_after_another_leave_the_credit_where_it_started() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(frp_tests::server_settings(&pki, 1024..=65535));
    let (echo, _e) = echo_server().await;
    let settings = client_settings(
        pki.client_tls("node1"),
        server.addr,
        vec![tcp_proxy("echo", echo, 0)],
    );
    assert_eq!(
        settings.quic.max_incoming_streams, 10_000,
        "the default ceiling"
    );
    let mut client = TestClient::start(settings);
    let public = client.bound("echo").await;
    let first = i64::from(INITIAL_STREAM_CREDIT);
    assert_eq!(client.gauges.stream_credit.get(), first);

    within("the churn", async {
        for _ in 0..CHURN / AT_ONCE {
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..AT_ONCE {
                batch.spawn(echo_once(public, b"x"));
            }
            while let Some(back) = batch.join_next().await {
                assert_eq!(back.expect("echo task"), b"x");
            }
        }
    })
    .await;
    assert_eq!(
        client.gauges.stream_credit.get(),
        first,
        "{CHURN} connections, {AT_ONCE} at a time, need no more than the first grant"
    );

    let gauges = client.gauges.clone();
    client.stop().await.expect("stop");
    assert_eq!(gauges.stream_credit.get(), 0, "no session, no credit");
    server.stop().await.expect("stop");
}

/// The vhost name of the http proxy.
const HOST: &str = "web.example.com";

/// A local service that sends without end to whoever connects, until the connection fails.
async fn firehose() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let chunk = vec![7u8; 64 * 1024];
                while tcp.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    addr
}

/// When frpc resets a stream, frps ends its side at once even while its splice waits on a
/// visitor that neither reads nor sends: otherwise quinn would keep the stream, and the credit
/// it holds, as long as that visitor stays, and frpc no longer counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reset_by_frpc_is_freed_while_its_visitor_reads_nothing() {
    init_logs();
    let pki = Pki::new();
    let server = TestServer::start(frp_tests::server_settings(&pki, 1024..=65535));
    let service = firehose().await;
    let mut proxy = tcp_proxy("dump", service, 0);
    // frpc resets the stream once nothing has moved for this long: the visitor's socket, the
    // stream's window and the service's socket are then all full.
    proxy.idle_timeout = Some(Duration::from_secs(1));
    let mut client = TestClient::connect(&pki, "node1", server.addr, vec![proxy]);
    let public = client.bound("dump").await;

    let visitor = within("connect", TcpStream::connect(public))
        .await
        .expect("connect");
    within("the stream opens", async {
        while server.gauges.streams.get() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    within("frps frees the stream frpc reset", async {
        while server.gauges.streams.get() > 0 || client.gauges.streams.get() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(visitor);
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// Requests held at once through the vhost port: more than the first grant, so the client
/// must grow it while frps opens their backend connections.
const HELD_REQUESTS: usize = 400;

/// A service that answers no request until `HELD_REQUESTS` are waiting, so each needs a
/// backend connection (a stream) of its own at the same time.
async fn answers_when_all_are_in() -> SocketAddr {
    let all_in = Arc::new(Barrier::new(HELD_REQUESTS));
    let b = backend(move |tcp| {
        let all_in = Arc::clone(&all_in);
        async move {
            let service = service_fn(move |_req| {
                let all_in = Arc::clone(&all_in);
                async move {
                    all_in.wait().await;
                    Ok::<_, std::convert::Infallible>(Response::new(full("ok")))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        }
    })
    .await;
    b.addr
}

/// A burst of requests through the vhost port beyond the first grant all get answers: the
/// backend waits the round trip the client takes to grant more instead of answering 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_http_requests_beyond_the_first_grant_is_served() {
    init_logs();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let pki = Pki::new();
    let mut s = vhost_settings(&pki, &["*.example.com"]);
    s.vhost.max_connections_per_ip = HELD_REQUESTS;
    let server = TestServer::start(s);
    let web = answers_when_all_are_in().await;
    let proxy = http_proxy("web", web, &[HOST], VhostSpec::default());
    let mut client = TestClient::connect(&pki, "node1", server.addr, vec![proxy]);
    let http = client.bound("web").await;

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..HELD_REQUESTS {
        requests.spawn(async move { get(http, HOST, "/", &[]).await });
    }
    within("every request answered", async {
        while let Some(reply) = requests.join_next().await {
            let reply = reply.expect("request task");
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    })
    .await;
    let credit = client.gauges.stream_credit.get();
    assert!(credit >= HELD_REQUESTS as i64, "grant {credit}");
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
