//! The real binaries and the signals an operator or a terminal sends them: SIGHUP, SIGUSR1,
//! SIGUSR2 and SIGPIPE never end frps or frpc, each leaves a log line (SIGPIPE stays ignored
//! by the kernel instead), and the tunnel keeps carrying traffic on the same session (SIGHUP
//! makes frpc and frps reread an unchanged config, which changes nothing). A
//! SIGHUP that finds a revocation list that does not parse logs an error naming the file and
//! line and keeps the old list in force. SIGTERM makes frpc tell frps it is going, so its
//! ports are free at once rather than after the idle timeout.

use std::time::Duration;

use frp_tests::backends::echo_server;
use frp_tests::deployment::{
    echo_through, free_ports, ignores_signal, quic_table, send_signal, until_bindable, Deployment,
    CONNECTED,
};
use frp_tests::procs::{binary, Proc};
use frp_tests::{init_logs, within};

/// SIGPIPE's number on Linux.
const SIGPIPE: u32 = 13;
/// The log line of a signal the binaries ignore.
const IGNORED: &str = r#""message":"signal ignored""#;
/// Keep-alive and idle timeout: the idle timeout is longer than any wait in a test, so a port
/// freed in time was freed by a clean close, not by the timeout.
const KEEPALIVE: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(120);

/// frps and frpc running, frpc publishing an echo service on one port.
struct Running {
    _deployment: Deployment,
    _echo: tokio::task::JoinHandle<()>,
    frps: Proc,
    frpc: Proc,
    ports: Vec<u16>,
}

async fn running() -> Running {
    binary("frps");
    let (echo, _echo) = echo_server().await;
    let ports = free_ports(1);
    let d = Deployment::new(
        echo,
        &ports,
        &quic_table(KEEPALIVE, IDLE),
        &quic_table(KEEPALIVE, IDLE),
    );
    let (frps, frpc) = d.start_both().await;
    Running {
        _deployment: d,
        _echo,
        frps,
        frpc,
        ports,
    }
}

/// Sends SIGHUP to `target` and waits for the log line `hup` says what it did, then USR1 and
/// USR2, waiting for their "ignored" lines, then SIGPIPE, which the kernel discards; after
/// each one the tunnel still echoes.
async fn survives_signals(target: &mut Proc, ports: &[u16], hup: &str) {
    send_signal(target.pid(), "HUP");
    target.wait_log(hup, 1).await;
    echo_through(ports, b"HUP").await;
    for signal in ["USR1", "USR2"] {
        send_signal(target.pid(), signal);
        let line = format!(r#""signal":"SIG{signal}""#);
        target.wait_log(&line, 1).await;
        assert_eq!(target.log_count(&line), 1, "{signal} logged once");
        assert!(
            target
                .stderr()
                .lines()
                .any(|l| l.contains(&line) && l.contains(IGNORED)),
            "{signal} logged as ignored"
        );
        echo_through(ports, signal.as_bytes()).await;
    }
    assert_eq!(target.log_count(hup), 1, "SIGHUP logged once");
    assert!(
        ignores_signal(target.pid(), SIGPIPE),
        "SIGPIPE must stay ignored"
    );
    send_signal(target.pid(), "PIPE");
    echo_through(ports, b"PIPE").await;
    assert!(target.is_running(), "still running after every signal");
}

#[tokio::test]
async fn frpc_survives_hup_usr1_usr2_and_pipe_on_the_same_session() {
    init_logs();
    let mut r = running().await;
    // SIGHUP rereads frpc.toml, which has not changed: nothing is registered again.
    survives_signals(&mut r.frpc, &r.ports, r#""message":"config reloaded""#).await;
    assert_eq!(r.frpc.log_count(CONNECTED), 1, "one session throughout");
    assert_eq!(r.frps.log_count("client disconnected"), 0);
    assert!(r.frps.is_running());
}

#[tokio::test]
async fn frps_survives_hup_usr1_usr2_and_pipe_and_keeps_its_clients() {
    init_logs();
    let mut r = running().await;
    // SIGHUP rereads frps.toml, which has not changed: every proxy stays.
    survives_signals(&mut r.frps, &r.ports, r#""message":"frps.toml reloaded""#).await;
    assert_eq!(r.frps.log_count("client disconnected"), 0);
    assert_eq!(r.frpc.log_count(CONNECTED), 1, "one session throughout");
    assert!(r.frpc.is_running());
}

#[tokio::test]
async fn sighup_with_a_broken_list_logs_file_and_line_and_keeps_the_old_list() {
    init_logs();
    binary("frps");
    let (echo, _e) = echo_server().await;
    let ports = free_ports(1);
    let d = Deployment::new(
        echo,
        &ports,
        &quic_table(KEEPALIVE, IDLE),
        &quic_table(KEEPALIVE, IDLE),
    );
    // node2 is revoked from the start; node1 publishes.
    let certs = d.path("certs");
    frp_certs::issue_client_in_dir(&certs, "node2", false).expect("ca issue node2");
    let node2 = frp_certs::load_certs(&certs.join("node2.crt")).expect("node2 cert");
    let list = d.path("revoked.txt");
    let entry = frp_certs::fingerprint(&node2[0]);
    std::fs::write(&list, format!("{entry}  # node2\n")).expect("write list");
    d.prepend("frps", "revocationFile = \"revoked.txt\"");
    let node2_config = std::fs::read_to_string(d.path("frpc.toml"))
        .expect("frpc.toml")
        .replace("node1", "node2");
    let node2_config = node2_config.split("[[proxies]]").next().expect("head");
    std::fs::write(d.path("frpc-node2.toml"), node2_config).expect("write");
    let (mut frps, mut frpc) = d.start_both().await;

    std::fs::write(
        &list,
        format!("{entry}\n# fine so far\nSHA1 Fingerprint=9A:7E\n"),
    )
    .expect("break the list");
    send_signal(frps.pid(), "HUP");
    frps.wait_log(r#""level":"ERROR""#, 1).await;
    let error = frps
        .stderr()
        .lines()
        .find(|l| l.contains(r#""level":"ERROR""#))
        .map(str::to_string)
        .expect("error line");
    let path = list.display().to_string();
    for needle in [path.as_str(), "line 3", "running one stays", "SIGHUP"] {
        assert!(
            error.contains(needle),
            "error line lacks {needle:?}: {error}"
        );
    }
    echo_through(&ports, b"after the bad reload").await;

    let mut revoked = d.start_with("frpc", "frpc-node2", 1);
    let status = within("node2 refused", async {
        loop {
            if let Some(status) = revoked.wait_exit(Duration::ZERO) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(status.code(), Some(2), "{}", revoked.stderr());
    assert!(revoked.stderr().contains("revoked"), "{}", revoked.stderr());
    assert!(frps.is_running() && frpc.is_running());
}

#[tokio::test]
async fn frpc_stopped_by_sigterm_says_goodbye_and_its_ports_are_free_at_once() {
    init_logs();
    let mut r = running().await;
    echo_through(&r.ports, b"before").await;
    r.frpc.terminate();
    r.frps.wait_log(r#""message":"client going away""#, 1).await;
    within(
        "ports freed well before the idle timeout",
        until_bindable(&r.ports),
    )
    .await;
    let status = r.frpc.wait_exit(IDLE).expect("frpc exits");
    assert_eq!(status.code(), Some(0), "{}", r.frpc.stderr());
}
