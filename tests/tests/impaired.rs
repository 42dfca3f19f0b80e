//! A bad network between frpc and frps, through the impairment relay: loss, delay, reordering
//! and duplication; a NAT rebinding mid-transfer; blackholes shorter and longer than the idle
//! timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use frp_runtime::congestion::CongestionControl;
use frp_runtime::QuicTuning;
use frp_tests::backends::{echo_once, echo_server, open_echo, random_bytes, read_to_end, sha256};
use frp_tests::relay::{Impairment, Relay, RelayHandle};
use frp_tests::{
    client_settings, init_logs, server_settings, tcp_proxy, within, Pki, TestClient, TestServer,
    TIMEOUT,
};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const PORTS: std::ops::RangeInclusive<u16> = 1024..=65535;

/// A server, a relay in front of it, and a client publishing an echo service through the relay.
struct Rig {
    server: TestServer,
    client: TestClient,
    relay: Relay,
    public: SocketAddr,
}

impl Rig {
    /// Starts everything, with `tune` applied to both ends' QUIC settings, and waits until the
    /// echo proxy is bound.
    async fn start(tune: impl Fn(&mut QuicTuning)) -> Self {
        init_logs();
        let pki = Pki::new();
        let (echo, _task) = echo_server().await;
        let mut settings = server_settings(&pki, PORTS);
        tune(&mut settings.quic);
        let server = TestServer::start(settings);
        let relay = Relay::start(server.addr).expect("relay");
        let proxies = vec![tcp_proxy("echo", echo, 0)];
        let mut settings = client_settings(pki.client_tls("node1"), relay.addr(), proxies);
        tune(&mut settings.quic);
        let mut client = TestClient::start(settings);
        let public = client.bound("echo").await;
        Self {
            server,
            client,
            relay,
            public,
        }
    }

    fn handle(&self) -> RelayHandle {
        self.relay.handle()
    }

    /// The server's session id for the client, if it is connected.
    fn server_session(&self) -> Option<u64> {
        self.server
            .status
            .borrow()
            .clients
            .get("node1")
            .map(|c| c.session)
    }

    async fn stop(self) {
        self.client.stop().await.expect("client stop");
        self.server.stop().await.expect("server stop");
    }
}

/// How long the lossy-link test may take. At 5% random loss and 50 ms RTT a loss-based
/// controller (Cubic) carries only ~80 KB/s each way (the Mathis limit), and the full figures
/// take about four minutes on loopback (the BBR-style controller, `bbr`, about two). One
/// of the slowest tests of the suite, kept at the figures rather than shrunk.
const LOSSY_LIMIT: Duration = Duration::from_secs(480);

#[tokio::test]
async fn lossy_delayed_reordered_duplicated_link_loses_nothing() {
    let rig = Rig::start(|_| {}).await;
    let relay = rig.handle();
    relay.impair_both(Impairment {
        loss: 0.05,
        delay: Duration::from_millis(25),
        reorder: 0.25,
        // Long enough that several later packets overtake the held one at the link's rate.
        reorder_delay: Duration::from_millis(10),
        duplicate: 0.01,
        ..Impairment::default()
    });
    let started = Instant::now();
    let public = rig.public;
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..50 {
        streams.spawn(async move {
            let data = random_bytes(32 * 1024);
            let back = echo_digest(public, &data, LOSSY_LIMIT, usize::MAX, async {}).await;
            assert_eq!(back, sha256(&data), "an echo stream differs");
        });
    }
    // 16 MiB up to the echo service and the same 16 MiB back down, at once.
    let data = random_bytes(16 << 20);
    let back = echo_digest(public, &data, LOSSY_LIMIT, usize::MAX, async {}).await;
    assert_eq!(back, sha256(&data), "16 MiB each way differ");
    while let Some(r) = streams.join_next().await {
        r.expect("echo stream");
    }
    eprintln!(
        "lossy link: 16 MiB each way and 50 streams in {:?}",
        started.elapsed()
    );

    let s = relay.stats();
    for d in [s.up, s.down] {
        assert!(d.dropped > 0, "no loss happened: {d:?}");
        assert!(d.reordered > 0, "no reordering happened: {d:?}");
        assert!(d.duplicated > 0, "no duplication happened: {d:?}");
    }
    assert_eq!(
        rig.client.status.borrow().sessions,
        1,
        "the client reconnected"
    );
    rig.stop().await;
}

/// Each controller `transport.quic.congestionControl` names (set at both ends) carries data
/// intact both ways through 1% loss each way and a 40 ms round trip. The three run at once,
/// each with its own server, relay and client.
#[tokio::test]
async fn every_congestion_controller_delivers_intact_data_under_loss() {
    let mut runs = tokio::task::JoinSet::new();
    for cc in [
        CongestionControl::Bbr,
        CongestionControl::Cubic,
        CongestionControl::NewReno,
    ] {
        runs.spawn(async move {
            let rig = Rig::start(|q| q.congestion = cc).await;
            rig.handle().impair_both(Impairment {
                loss: 0.01,
                delay: Duration::from_millis(20),
                ..Impairment::default()
            });
            let data = random_bytes(2 << 20);
            let back = echo_digest(rig.public, &data, LOSSY_LIMIT, usize::MAX, async {}).await;
            assert_eq!(back, sha256(&data), "{cc}: 2 MiB each way differ");
            let s = rig.handle().stats();
            assert!(
                s.up.dropped > 0 && s.down.dropped > 0,
                "{cc}: no loss: {s:?}"
            );
            assert_eq!(rig.client.status.borrow().sessions, 1, "{cc}: reconnected");
            rig.stop().await;
        });
    }
    while let Some(r) = runs.join_next().await {
        r.expect("controller run");
    }
}

/// Echoes `data` through `public` under `limit`, awaiting `midway` once `at` bytes have come
/// back (`usize::MAX`: never); returns the SHA-256 of what came back.
async fn echo_digest<F: std::future::Future<Output = ()>>(
    public: SocketAddr,
    data: &[u8],
    limit: Duration,
    at: usize,
    midway: F,
) -> [u8; 32] {
    let tcp = within("connect", TcpStream::connect(public))
        .await
        .expect("connect");
    let (mut r, mut w) = tcp.into_split();
    let reader = async move {
        let (mut hasher, mut got) = (Sha256::new(), 0usize);
        let mut buf = vec![0u8; 64 * 1024];
        let mut midway = Some(midway);
        loop {
            let n = r.read(&mut buf).await.expect("read echo");
            if n == 0 {
                return <[u8; 32]>::from(hasher.finalize());
            }
            hasher.update(&buf[..n]);
            got += n;
            if got >= at {
                if let Some(f) = midway.take() {
                    f.await;
                }
            }
        }
    };
    let writer = async move {
        w.write_all(data).await.expect("write");
        w.shutdown().await.expect("shutdown");
    };
    let both = async { tokio::join!(reader, writer).0 };
    match tokio::time::timeout(limit, both).await {
        Ok(digest) => digest,
        Err(_) => panic!("echo of {} bytes took over {limit:?}", data.len()),
    }
}

#[tokio::test]
async fn nat_rebinding_mid_transfer_migrates_the_connection() {
    let rig = Rig::start(|_| {}).await;
    let relay = rig.handle();
    relay.impair_both(Impairment {
        delay: Duration::from_millis(5),
        ..Impairment::default()
    });
    let session = rig.server_session().expect("server knows the client");
    let before = relay.upstream_addr().expect("upstream");
    let remote = rig.server.status.borrow().clients["node1"].remote;
    assert_eq!(
        remote, before,
        "the server sees the client through the relay"
    );

    let data = random_bytes(32 << 20);
    let rebind = async {
        let after = relay.rebind().await.expect("rebind");
        assert_ne!(
            after.port(),
            before.port(),
            "rebinding must change the port"
        );
    };
    let got = echo_digest(rig.public, &data, TIMEOUT, 4 << 20, rebind).await;
    assert_eq!(got, sha256(&data), "the transfer lost or changed bytes");

    let after = relay.upstream_addr().expect("upstream");
    assert_ne!(after, before);
    let status = rig.client.status.borrow().clone();
    assert!(status.connected, "the client lost its connection");
    assert_eq!(status.sessions, 1, "the client re-registered");
    assert_eq!(
        rig.server_session(),
        Some(session),
        "the server saw a new session"
    );
    // The server's view of the client follows the migration to the new address.
    let mut server_status = rig.server.status.clone();
    let moved =
        server_status.wait_for(|s| s.clients.get("node1").is_some_and(|c| c.remote == after));
    within("server sees the new client address", moved)
        .await
        .expect("status");
    assert_eq!(echo_once(rig.public, b"after").await, b"after");
    rig.stop().await;
}

#[tokio::test]
async fn blackholes_shorter_and_longer_than_the_idle_timeout() {
    let mut rig = Rig::start(|q| {
        q.keepalive = Duration::from_secs(1);
        q.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let relay = rig.handle();
    let session = rig.server_session().expect("server knows the client");

    // Shorter (longer than the keep-alive, half the idle timeout): an open connection carries
    // what was written during the blackhole.
    let mut tcp = open_echo(rig.public).await;
    relay.blackhole(true);
    tcp.write_all(b"during").await.expect("write");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    relay.blackhole(false);
    let mut buf = [0u8; 6];
    within("echo after a short blackhole", tcp.read_exact(&mut buf))
        .await
        .expect("read");
    assert_eq!(&buf, b"during");
    assert_eq!(echo_once(rig.public, b"fresh").await, b"fresh");
    assert_eq!(
        rig.client.status.borrow().sessions,
        1,
        "the client reconnected"
    );
    assert_eq!(
        rig.server_session(),
        Some(session),
        "the server saw a new session"
    );
    assert!(relay.stats().up.blackholed > 0, "nothing was blackholed");

    // Longer: both ends give up, open connections are reset, and the client comes back alone.
    relay.blackhole(true);
    rig.client
        .wait_for("client sees the connection die", |s| !s.connected)
        .await;
    rig.server
        .wait_for("server sees the client go", |s| s.clients.is_empty())
        .await;
    assert!(
        read_to_end(&mut tcp).await.is_err(),
        "an open public connection must be reset, not closed cleanly"
    );
    relay.blackhole(false);
    rig.client
        .wait_for("client re-registers", |s| s.connected && s.sessions == 2)
        .await;
    let public = rig.client.bound("echo").await;
    assert_eq!(echo_once(public, b"back").await, b"back");
    assert!(rig.server_session().is_some_and(|s| s != session));
    rig.stop().await;
}
