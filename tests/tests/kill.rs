//! The real binaries killed with SIGKILL: frps frees a dead client's ports within the idle
//! timeout and gives them to the restarted client; frpc reconnects by itself to a restarted frps.
//!
//! Configs and certificates are files in a temp dir, as an operator writes them; readiness
//! comes from the binaries' log lines and from binding or reaching the public ports.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use frp_tests::backends::{echo_once, echo_server};
use frp_tests::procs::{binary, fixed_port, Proc};
use frp_tests::{init_logs, LOCALHOST};
use tempfile::TempDir;

/// `transport.quic.maxIdleTimeout` on both sides.
const IDLE: Duration = Duration::from_secs(3);
/// `transport.quic.keepalivePeriod` on both sides.
const KEEPALIVE: Duration = Duration::from_secs(1);
/// Scheduling slack on a loaded machine on top of the idle timeout.
const SLACK: Duration = Duration::from_secs(5);
/// The log line frpc (and frps) write when a proxy's public port is bound.
const PUBLISHED: &str = r#""message":"proxy published""#;
/// The log line frpc writes for each session.
const CONNECTED: &str = r#""message":"connected to server""#;

/// A temp dir with a CA, server and client certificates, `frps.toml` and `frpc.toml`.
struct Deployment {
    dir: TempDir,
}

impl Deployment {
    /// Writes the files: frps allowing `ports` (and on a fixed UDP port), frpc publishing `local`
    /// on each of them.
    fn new(local: SocketAddr, ports: &[u16]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("certs");
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        frp_certs::init_ca_dir(&certs, &names, false).expect("ca init");
        frp_certs::issue_client_in_dir(&certs, "node1", false).expect("ca issue");
        let quic = format!(
            "[transport.quic]\nkeepalivePeriod = {}\nmaxIdleTimeout = {}\n",
            KEEPALIVE.as_secs(),
            IDLE.as_secs()
        );
        let udp_port = fixed_port();
        let allow: Vec<String> = ports
            .iter()
            .map(|p| format!("{{ single = {p} }}"))
            .collect();
        let frps = format!(
            "bindAddr = \"127.0.0.1\"\nbindPort = {udp_port}\nallowPorts = [{}]\n\
             gracefulShutdownTimeout = 1\n\n[transport.tls]\ncertFile = \"certs/server.crt\"\n\
             keyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n\n{quic}",
            allow.join(", ")
        );
        let mut frpc = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {udp_port}\ngracefulShutdownTimeout = 1\n\n\
             [transport]\nreconnectMinDelayMs = 50\nreconnectMaxDelayMs = 500\n\n\
             [transport.tls]\ncertFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\n\
             trustedCaFile = \"certs/ca.crt\"\n\n{quic}"
        );
        for (i, port) in ports.iter().enumerate() {
            frpc.push_str(&format!(
                "\n[[proxies]]\nname = \"web{i}\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\n\
                 localPort = {}\nremotePort = {port}\n",
                local.port()
            ));
        }
        std::fs::write(dir.path().join("frps.toml"), frps).expect("write frps.toml");
        std::fs::write(dir.path().join("frpc.toml"), frpc).expect("write frpc.toml");
        Self { dir }
    }

    /// Starts `name` (frps or frpc) on its config; `run` numbers the log file.
    fn start(&self, name: &str, run: u32) -> Proc {
        let config: PathBuf = self.dir.path().join(format!("{name}.toml"));
        let args = [
            OsStr::new("--log-format"),
            OsStr::new("json"),
            OsStr::new("-c"),
            config.as_os_str(),
        ];
        let log = self.dir.path().join(format!("{name}-{run}.log"));
        Proc::spawn(&format!("{name} run {run}"), &binary(name), args, log)
    }
}

/// `n` distinct ports for frps to publish on (see [`fixed_port`]).
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        let p = fixed_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// An echo round trip through each public port.
async fn echo_through(ports: &[u16], msg: &[u8]) {
    for &port in ports {
        let public = SocketAddr::new(LOCALHOST, port);
        assert_eq!(echo_once(public, msg).await, msg, "echo through {public}");
    }
}

/// Polls until every port in `ports` can be bound by us, i.e. frps closed its listeners.
async fn until_bindable(ports: &[u16]) {
    for &port in ports {
        while TcpListener::bind((LOCALHOST, port)).is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn frpc_sigkill_frees_ports_within_idle_timeout_and_restart_gets_them_back() {
    init_logs();
    // Builds both binaries if needed, before any timed wait.
    binary("frps");
    let (echo, _e) = echo_server().await;
    let ports = free_ports(2);
    let d = Deployment::new(echo, &ports);
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
    let d = Deployment::new(echo, &ports);
    let mut frps = d.start("frps", 1);
    let mut frpc = d.start("frpc", 1);
    frpc.wait_log(PUBLISHED, 1).await;
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
    let d = Deployment::new(echo, &ports);
    let list = d.dir.path().join("revoked.txt");
    std::fs::write(&list, "# nothing revoked yet\n").expect("write list");
    let frps_toml = d.dir.path().join("frps.toml");
    let config = std::fs::read_to_string(&frps_toml).expect("read frps.toml");
    std::fs::write(
        &frps_toml,
        format!("revocationFile = \"revoked.txt\"\n{config}"),
    )
    .expect("write");
    let mut frps = d.start("frps", 1);
    let mut frpc = d.start("frpc", 1);
    frpc.wait_log(PUBLISHED, 1).await;

    let cert = frp_certs::load_certs(&d.dir.path().join("certs/node1.crt")).expect("cert");
    let serial = frp_certs::serial_hex(&cert[0]).expect("serial");
    std::fs::write(&list, format!("{serial}  # node1, laptop stolen\n")).expect("revoke");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &frps.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());

    frps.wait_log(r#""message":"revocation list reloaded""#, 1)
        .await;
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
