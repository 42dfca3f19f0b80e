//! The real binaries killed with SIGKILL: frps frees a dead client's ports within the idle
//! timeout and gives them to the restarted client; frpc reconnects by itself to a restarted frps.
//!
//! Configs and certificates are files in a temp dir, as an operator writes them; readiness
//! comes from the binaries' log lines and from binding or reaching the public ports.

use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

use frp_tests::backends::echo_server;
use frp_tests::deployment::{
    echo_through, free_ports, quic_table, until_bindable, Deployment, CONNECTED, PUBLISHED,
};
use frp_tests::init_logs;
use frp_tests::procs::binary;

/// `transport.quic.maxIdleTimeout` on both sides.
const IDLE: Duration = Duration::from_secs(3);
/// `transport.quic.keepalivePeriod` on both sides.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// Scheduling slack on a loaded machine on top of the idle timeout.
const SLACK: Duration = Duration::from_secs(5);

/// frps allowing `ports`, frpc publishing `local` on them, with the short idle timeout.
fn deployment(local: std::net::SocketAddr, ports: &[u16]) -> Deployment {
    Deployment::new(
        local,
        ports,
        &quic_table(KEEPALIVE, IDLE),
        &quic_table(KEEPALIVE, IDLE),
    )
}

#[tokio::test]
async fn frpc_sigkill_frees_ports_within_idle_timeout_and_restart_gets_them_back() {
    init_logs();
    // Builds both binaries if needed, before any timed wait.
    binary("frps");
    let (echo, _e) = echo_server().await;
    let ports = free_ports(2);
    let d = deployment(echo, &ports);
    let mut frps = d.start("frps", 1);
    let mut frpc = d.start("frpc", 1);
    frpc.wait_log(PUBLISHED, ports.len()).await;
    echo_through(&ports, b"before the kill").await;

    let status = frpc.kill9();
    let killed = Instant::now();
    assert_eq!(
        status.signal(),
        Some(9),
        "frpc ended before the kill: {status}"
    );
    let bound = IDLE + SLACK;
    if tokio::time::timeout(bound, until_bindable(&ports))
        .await
        .is_err()
    {
        panic!("frps still holds {ports:?} {bound:?} after frpc was killed");
    }
    let freed = killed.elapsed();
    eprintln!("frps freed {ports:?} {freed:?} after frpc's SIGKILL (idle timeout {IDLE:?})");
    frps.wait_log(r#""message":"client disconnected""#, 1).await;
    // The control stream fails together with the timed-out connection; a vanished client
    // is a disconnection, not a protocol violation.
    assert_eq!(
        frps.log_count("protocol violation"),
        0,
        "frps called it a violation"
    );

    let mut again = d.start("frpc", 2);
    again.wait_log(PUBLISHED, ports.len()).await;
    echo_through(&ports, b"after the restart").await;
    assert!(frps.is_running(), "frps exited");
}

#[tokio::test]
async fn frps_sigkill_and_restart_frpc_reconnects_by_itself() {
    init_logs();
    binary("frps");
    let (echo, _e) = echo_server().await;
    let ports = free_ports(1);
    let d = deployment(echo, &ports);
    let (mut frps, mut frpc) = d.start_both().await;
    echo_through(&ports, b"before the kill").await;

    let status = frps.kill9();
    let killed = Instant::now();
    assert_eq!(
        status.signal(),
        Some(9),
        "frps ended before the kill: {status}"
    );
    drop(frps);
    // Same config, same UDP port; frpc is not touched.
    let frps = d.start("frps", 2);
    frpc.wait_log(PUBLISHED, 2).await;
    let back = killed.elapsed();
    eprintln!("frpc re-published {back:?} after frps's SIGKILL (idle timeout {IDLE:?})");
    assert!(
        back <= IDLE + SLACK,
        "frpc took {back:?} to come back; idle timeout {IDLE:?}"
    );
    echo_through(&ports, b"after the restart").await;

    assert!(frpc.is_running(), "frpc exited instead of reconnecting");
    assert_eq!(frpc.log_count(CONNECTED), 2, "frpc sessions");
    assert_eq!(frps.log_count(PUBLISHED), 1, "new frps publications");
}

#[tokio::test]
async fn sighup_rereads_the_revocation_list_and_disconnects_the_client() {
    init_logs();
    binary("frps");
    let (echo, _e) = echo_server().await;
    let ports = free_ports(1);
    let d = deployment(echo, &ports);
    let list = d.dir.path().join("revoked.txt");
    std::fs::write(&list, "# nothing revoked yet\n").expect("write list");
    let frps_toml = d.dir.path().join("frps.toml");
    let config = std::fs::read_to_string(&frps_toml).expect("read frps.toml");
    std::fs::write(
        &frps_toml,
        format!("revocationFile = \"revoked.txt\"\n{config}"),
    )
    .expect("write");
    let (mut frps, mut frpc) = d.start_both().await;

    let cert = frp_certs::load_certs(&d.dir.path().join("certs/node1.crt")).expect("cert");
    let serial = frp_certs::serial_hex(&cert[0]).expect("serial");
    std::fs::write(&list, format!("{serial}  # node1, laptop stolen\n")).expect("revoke");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &frps.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());

    frps.wait_log(r#""message":"frps.toml reloaded""#, 1).await;
    let status = frpc.wait_exit(IDLE + SLACK).expect("frpc must give up");
    assert_eq!(
        status.code(),
        Some(2),
        "frpc exits with the permanent-refusal status"
    );
    assert!(
        frpc.stderr().contains("revoked"),
        "frpc says why: {}",
        frpc.stderr()
    );
    assert!(frps.is_running(), "frps keeps running");
}
