//! A public port under abuse: thousands of connections opened and dropped, a thousand idle
//! ones that never send. Everything else keeps serving, and afterwards every socket, stream
//! and task is given back. One test per file: it counts this process's file descriptors.

use std::net::SocketAddr;

use frp_tests::backends::{echo_once, echo_server};
use frp_tests::{
    eventually, init_logs, open_fds, server_settings, tcp_proxy, within, Pki, TestClient,
    TestServer,
};
use tokio::net::TcpStream;

const CHURN: usize = 5_000;
const WORKERS: usize = 50;
const IDLE: usize = 1_000;

/// Opens and drops `CHURN` connections as fast as `WORKERS` tasks can, half of them with an
/// RST. Refused or reset connects are fine: the point is the load.
async fn churn(public: SocketAddr) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        tasks.spawn(async move {
            for i in 0..CHURN / WORKERS {
                if let Ok(tcp) = TcpStream::connect(public).await {
                    if (w + i) % 2 == 0 {
                        frp_runtime::splice::reset_tcp(tcp);
                    }
                }
            }
        });
    }
    within("connection churn", async {
        while let Some(r) = tasks.join_next().await {
            r.expect("churn task");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abused_port_does_not_hurt_others_and_everything_is_given_back() {
    init_logs();
    let pki = Pki::new();
    // One source address plays every visitor here: lift its cap (256 by default) above all
    // of them, since churned connections may still be closing when the idle ones open.
    let mut settings = server_settings(&pki, 1024..=65535);
    settings.max_connections_per_ip = CHURN + IDLE;
    let server = TestServer::start(settings);
    let (echo, _e) = echo_server().await;
    let proxies = vec![tcp_proxy("target", echo, 0), tcp_proxy("other", echo, 0)];
    let mut a = TestClient::connect(&pki, "a", server.addr, proxies);
    let mut b = TestClient::connect(&pki, "b", server.addr, vec![tcp_proxy("b", echo, 0)]);
    let (target, other, theirs) = (
        a.bound("target").await,
        a.bound("other").await,
        b.bound("b").await,
    );
    for addr in [target, other, theirs] {
        assert_eq!(echo_once(addr, b"warm").await, b"warm");
    }
    // The warm-up connections finish asynchronously: settle before taking the baseline.
    eventually("warm-up connections closed", || {
        server.gauges.public_connections.get() == 0 && a.gauges.local_connections.get() == 0
    })
    .await;
    let baseline = (
        server.gauges.snapshot(),
        a.gauges.streams.get(),
        a.gauges.local_connections.get(),
    );
    assert_eq!(
        baseline.0,
        [2, 3, 0, 0],
        "two sessions, three listeners, nothing open"
    );
    let fds = open_fds();

    churn(target).await;
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(
            within("idle connect", TcpStream::connect(target))
                .await
                .expect("idle connect"),
        );
    }
    eventually("idle connections reach the local service", || {
        a.gauges.local_connections.get() >= IDLE as i64
    })
    .await;
    // Under that load, the client's other proxy and another client serve normally.
    assert_eq!(echo_once(other, b"other proxy").await, b"other proxy");
    assert_eq!(echo_once(theirs, b"other client").await, b"other client");

    drop(idle);
    eventually("server gauges back to baseline", || {
        server.gauges.snapshot() == baseline.0
    })
    .await;
    eventually("client gauges back to baseline", || {
        (a.gauges.streams.get(), a.gauges.local_connections.get()) == (baseline.1, baseline.2)
    })
    .await;
    eventually("file descriptors back to baseline", || open_fds() <= fds).await;
    assert_eq!(
        echo_once(target, b"abused port still works").await,
        b"abused port still works"
    );

    a.stop().await.expect("stop");
    b.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
