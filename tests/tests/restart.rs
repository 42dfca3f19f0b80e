//! frps killed with SIGKILL and restarted on the same port with the same key file: its old
//! client learns at its next packet (a stateless reset, keyed by a secret derived from the
//! server's private key) and reconnects, instead of waiting for its idle timeout while web
//! routes answer 404.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

use frp_tests::backends::{echo_once, echo_server};
use frp_tests::deployment::{Deployment, LISTENING, PUBLISHED};
use frp_tests::procs::{binary, fixed_port};
use frp_tests::{init_logs, LOCALHOST};

/// `transport.quic.maxIdleTimeout` on both sides: long, so that waiting for it fails the test.
const IDLE: Duration = Duration::from_secs(60);
/// `transport.quic.keepalivePeriod` on both sides: an idle client's next packet comes within it.
const KEEPALIVE: Duration = Duration::from_secs(5);
/// Scheduling slack on a loaded machine (reconnect backoff, process start, handshake).
const SLACK: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_restarted_frps_resets_its_old_clients_before_their_idle_timeout() {
    init_logs();
    binary("frps");
    let (echo, _e) = echo_server().await;
    let port = fixed_port();
    let quic = format!(
        "[transport.quic]\nkeepalivePeriod = {}\nmaxIdleTimeout = {}\n",
        KEEPALIVE.as_secs(),
        IDLE.as_secs()
    );
    let d = Deployment::new(echo, &[port], &quic, &quic);
    let public = SocketAddr::new(LOCALHOST, port);
    let (mut frps, mut frpc) = d.start_both().await;
    assert_eq!(echo_once(public, b"before").await, b"before");

    let status = frps.kill9();
    assert_eq!(
        status.signal(),
        Some(9),
        "frps ended before the kill: {status}"
    );
    drop(frps);
    let mut frps = d.start("frps", 2);
    frps.wait_log(LISTENING, 1).await;
    let back = Instant::now();
    let bound = KEEPALIVE + SLACK;
    if tokio::time::timeout(bound, frpc.wait_log(PUBLISHED, 2))
        .await
        .is_err()
    {
        panic!(
            "frpc did not come back within {bound:?} of frps's restart (idle timeout {IDLE:?}):\n{}",
            frpc.stderr()
        );
    }
    eprintln!("frpc re-published {:?} after frps was back", back.elapsed());
    assert_eq!(echo_once(public, b"after").await, b"after");
    assert_eq!(
        frpc.log_count("the server reset the connection"),
        1,
        "frpc says why it reconnected: {}",
        frpc.stderr()
    );
}
