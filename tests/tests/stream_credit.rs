//! The stream credit frpc grants frps (`transport.quic.maxIncomingStreams` is its ceiling):
//! it starts at 256 and grows only when that many streams are in use at once, because quinn
//! keeps memory for every stream granted once streams have come and gone. Thousands of
//! connections one after another (a `Connection: close` workload) leave it where it started;
//! the thousands-at-once case is `concurrency.rs`.

use frp_runtime::credit::INITIAL_STREAM_CREDIT;
use frp_tests::backends::{echo_once, echo_server};
use frp_tests::{client_settings, init_logs, tcp_proxy, within, Pki, TestClient, TestServer};

/// Connections opened, used and closed: more than the initial grant many times over.
const CHURN: usize = 3_000;
/// How many of them are open at once. Streams accepted within the last two round trips count
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
