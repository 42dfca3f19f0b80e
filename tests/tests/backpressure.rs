//! A local service that never reads: the tunnel must stop taking bytes from the visitor once
//! the QUIC flow-control windows and the kernels' socket buffers are full, so frps and frpc
//! memory stays bounded. One test per file: it reads this process's RSS.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use frp_runtime::transport::STREAM_RECEIVE_WINDOW;
use frp_tests::{
    init_logs, server_settings, tcp_proxy, within, Pki, TestClient, TestServer, LOCALHOST,
};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};

/// What the visitor tries to push: far more than any buffer on the way may hold.
const ATTEMPT: u64 = 512 << 20;
/// Room for kernel socket buffers on the four sockets of the path (autotuned, a few MiB each).
const KERNEL_SLACK: u64 = 32 << 20;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Waits until `counter` has not moved for a second (the writer is blocked).
async fn stalled(counter: &AtomicU64) -> u64 {
    within("writer to stall", async {
        let (mut last, mut still) = (u64::MAX, 0);
        loop {
            let now = counter.load(Ordering::Relaxed);
            still = if now == last { still + 1 } else { 0 };
            if still >= 10 {
                return now;
            }
            last = now;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_reads_bounds_memory() {
    init_logs();
    let pki = Pki::new();
    let deaf = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let deaf_addr = deaf.local_addr().expect("addr");
    let held = tokio::spawn(async move { deaf.accept().await.map(|(tcp, _)| tcp) });
    let server = TestServer::start(server_settings(&pki, 1024..=65535));
    let mut client = TestClient::connect(
        &pki,
        "node1",
        server.addr,
        vec![tcp_proxy("deaf", deaf_addr, 0)],
    );
    let public = client.bound("deaf").await;
    let before = rss_bytes();

    let written = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&written);
    let writer = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(public).await.expect("connect");
        let block = vec![0x5au8; 1 << 20];
        while count.load(Ordering::Relaxed) < ATTEMPT {
            if tcp.write_all(&block).await.is_err() {
                break;
            }
            count.fetch_add(block.len() as u64, Ordering::Relaxed);
        }
        tcp
    });
    let accepted = stalled(&written).await;
    let grown = rss_bytes().saturating_sub(before);
    println!(
        "visitor got {} MiB in before stalling; RSS grew {} MiB",
        accepted >> 20,
        grown >> 20
    );

    let window = u64::from(STREAM_RECEIVE_WINDOW);
    assert!(
        accepted < ATTEMPT,
        "the tunnel took everything: no backpressure"
    );
    assert!(
        accepted <= window + KERNEL_SLACK,
        "{accepted} bytes accepted, more than the window allows"
    );
    // frps holds at most one stream window of unacknowledged data, frpc at most one window of
    // received data it cannot write; the rest is the writer's own block and allocator slack.
    assert!(grown <= 2 * window + (16 << 20), "RSS grew {grown} bytes");

    writer.abort();
    held.abort();
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
