//! The real binaries' memory after load: once a burst through the tunnel is over, frps and frpc
//! give the memory back (the allocator returns its freed pages to the OS), and an idle
//! connection that carried a request costs about what one on a fresh tunnel does (no read
//! buffer kept by its splice).
//!
//! Resident memory (VmRSS) is read from /proc; every wait polls under a deadline, none sleeps
//! for readiness. The bounds leave room for what legitimately stays: quinn's receive batch
//! buffer (3 MiB, touched page by page under load) and allocator metadata. Thousands of short
//! connections leave frpc's heap where it was (the stream credit grows only with use).

use std::net::SocketAddr;
use std::time::Duration;

use frp_tests::backends::{echo_hash, echo_once, echo_server, random_bytes, sha256};
use frp_tests::deployment::{free_ports, Deployment};
use frp_tests::procs::{binary, Proc};
use frp_tests::{init_logs, within, LOCALHOST};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Concurrent connections of a burst.
const STREAMS: usize = 8;
/// Bytes each connection of the main burst echoes (128 MiB through the tunnel each way).
const BURST_BYTES: usize = 16 << 20;
/// How far above its pre-burst figure each process may stay once the burst is over.
const RSS_SLACK_KIB: u64 = 4 * 1024;
/// How long the allocator may take to give the memory back (it purges after about a second).
const RETURN_WITHIN: Duration = Duration::from_secs(30);
/// Idle connections held after the burst, each after one 1 KiB exchange: below frps's default
/// `maxConnectionsPerIP` (256), beyond which it resets new visitors.
const HELD: usize = 200;
/// What one of them may cost, frps and frpc together (the project's target is 30 KiB).
const KIB_PER_HELD: f64 = 30.0;

#[tokio::test]
async fn memory_returns_after_a_burst_and_idle_connections_stay_small() {
    init_logs();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let t = Tunnel::start().await;
    let public = t.public;
    let pids = [("frps", t.frps.pid()), ("frpc", t.frpc.pid())];

    // A first, smaller burst: what is allocated once (quinn's receive batch buffer, the
    // allocator's own structures) is then in the baseline.
    burst(public, BURST_BYTES / 4).await;
    let before = pids.map(|(_, pid)| rss_kib(pid));
    burst(public, BURST_BYTES).await;
    let peak = pids.map(|(_, pid)| rss_kib(pid));

    let settled = settle(|| pids.map(|(_, pid)| rss_kib(pid)), before, RSS_SLACK_KIB).await;
    for (i, (name, _)) in pids.iter().enumerate() {
        assert!(
            settled[i] <= before[i] + RSS_SLACK_KIB,
            "{name}: {} KiB before the burst, {} KiB right after, still {} KiB after \
             {RETURN_WITHIN:?} (allowed: {} KiB above the first figure)",
            before[i],
            peak[i],
            settled[i],
            RSS_SLACK_KIB
        );
    }

    let idle = pids.map(|(_, pid)| rss_kib(pid));
    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        held.push(exchange_1k(public).await);
    }
    let with_held = pids.map(|(_, pid)| rss_kib(pid));
    let per_conn =
        (with_held.iter().sum::<u64>() as f64 - idle.iter().sum::<u64>() as f64) / HELD as f64;
    assert!(
        per_conn <= KIB_PER_HELD,
        "{per_conn:.1} KiB per idle connection after the burst (frps+frpc: {idle:?} KiB idle, \
         {with_held:?} KiB with {HELD} held)"
    );
    drop(held);
}

/// Connections opened, used for one echoed byte and closed, after the warm-up: more than
/// frpc's default stream ceiling (`maxIncomingStreams`, 10,000).
const CHURN: usize = 10_500;
/// How many of them are open at once.
const CHURN_AT_ONCE: usize = 8;
/// How much frpc's own memory may grow over the churn: quinn keeps a receive state (about
/// 400 bytes with its reassembly heap) for every stream granted once it has carried one, so a
/// credit granted in full would leave about 4 MiB here.
const CHURN_SLACK_KIB: u64 = 1536;

/// Many short connections one after another leave frpc's heap where it was: the stream credit
/// it grants grows only with the streams open at once (`frp_runtime::credit`), so quinn keeps
/// state for 256 streams, not for the 10,000 frpc could grant.
#[tokio::test]
async fn short_connections_one_after_another_leave_frpc_no_bigger() {
    init_logs();
    let t = Tunnel::start().await;
    let frpc = t.frpc.pid();

    // The warm-up fills the first grant's slots and the allocator's caches.
    churn(t.public, 1_000).await;
    let before = anon_kib(frpc);
    churn(t.public, CHURN).await;
    let [after] = settle(|| [anon_kib(frpc)], [before], CHURN_SLACK_KIB).await;
    assert!(
        after <= before + CHURN_SLACK_KIB,
        "frpc's anonymous memory went from {before} to {after} KiB over {CHURN} connections \
         (allowed: {CHURN_SLACK_KIB} KiB more)"
    );
}

/// `count` connections through `public`, [`CHURN_AT_ONCE`] at a time, each echoing one byte.
async fn churn(public: SocketAddr, count: usize) {
    within("the churn", async {
        for _ in 0..count / CHURN_AT_ONCE {
            let batch = (0..CHURN_AT_ONCE).map(|_| echo_once(public, b"c"));
            for back in futures_util::future::join_all(batch).await {
                assert_eq!(back, b"c");
            }
        }
    })
    .await;
}

/// [`STREAMS`] connections echoing `bytes` each through the tunnel at once, every byte
/// checked.
async fn burst(public: SocketAddr, bytes: usize) {
    let data = random_bytes(bytes);
    let want = sha256(&data);
    let all = (0..STREAMS).map(|_| echo_hash(public, &data));
    for got in futures_util::future::join_all(all).await {
        assert_eq!(got, want, "echoed bytes differ");
    }
}

/// Polls `read` until every figure is within `slack` KiB of `before`, for at most
/// [`RETURN_WITHIN`]; returns the last figures either way.
async fn settle<const N: usize>(
    read: impl Fn() -> [u64; N],
    before: [u64; N],
    slack: u64,
) -> [u64; N] {
    let deadline = tokio::time::Instant::now() + RETURN_WITHIN;
    loop {
        let now = read();
        let back = now.iter().zip(before).all(|(n, b)| *n <= b + slack);
        if back || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// frps and frpc, the real binaries, publishing an echo service at `public`.
struct Tunnel {
    frps: Proc,
    frpc: Proc,
    public: SocketAddr,
    /// Holds the configs and certificates the processes read.
    _dir: Deployment,
    _echo: tokio::task::JoinHandle<()>,
}

impl Tunnel {
    async fn start() -> Self {
        // Builds both binaries if needed, before any timed wait.
        binary("frps");
        let (echo, echo_task) = echo_server().await;
        let ports = free_ports(1);
        let d = Deployment::new(echo, &ports, "", "");
        let (frps, frpc) = d.start_both().await;
        Self {
            frps,
            frpc,
            public: SocketAddr::new(LOCALHOST, ports[0]),
            _dir: d,
            _echo: echo_task,
        }
    }
}

/// A connection that sent 1 KiB and got it back, kept open.
async fn exchange_1k(public: SocketAddr) -> TcpStream {
    let mut tcp = within("connect", TcpStream::connect(public))
        .await
        .expect("connect");
    let msg = [b'r'; 1024];
    within("write", tcp.write_all(&msg)).await.expect("write");
    let mut back = [0u8; 1024];
    within("echo", tcp.read_exact(&mut back))
        .await
        .expect("echo");
    assert_eq!(back, msg);
    tcp
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// RssAnon of `pid` in KiB: its own memory (heap, stacks), without the program's pages.
fn anon_kib(pid: u32) -> u64 {
    status_kib(pid, "RssAnon:")
}

/// The figure after `field` in `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}
