//! A deployment on disk for the real binaries: a CA, server and client certificates made as
//! `frps ca` makes them, `frps.toml` and `frpc.toml` in a temp dir, as an operator writes them.

use std::ffi::OsStr;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::backends::echo_once;
use crate::procs::{binary, fixed_port, Proc};
use crate::LOCALHOST;

/// The log line frpc (and frps) write when a proxy's public port is bound.
pub const PUBLISHED: &str = r#""message":"proxy published""#;
/// The log line frpc writes for each session.
pub const CONNECTED: &str = r#""message":"connected to server""#;
/// The log line frps writes once it listens.
pub const LISTENING: &str = r#""message":"frps listening for clients (quic)""#;

/// A temp dir with `certs/` (CA, `server`, `node1`), `frps.toml` and `frpc.toml`.
#[derive(Debug)]
pub struct Deployment {
    /// The directory holding everything.
    pub dir: TempDir,
    /// frps's UDP address (on a fixed port, so a restarted frps gets the same one).
    pub server: SocketAddr,
}

/// A `[transport.quic]` table with `keepalive` and `idle` (whole seconds).
pub fn quic_table(keepalive: Duration, idle: Duration) -> String {
    format!(
        "[transport.quic]\nkeepalivePeriod = {}\nmaxIdleTimeout = {}\n",
        keepalive.as_secs(),
        idle.as_secs()
    )
}

impl Deployment {
    /// Writes the files: frps allowing `ports` (on a fixed UDP port), frpc publishing `local`
    /// on each of them; `frps_extra` and `frpc_extra` are appended to the files (e.g. a
    /// [`quic_table`]).
    pub fn new(local: SocketAddr, ports: &[u16], frps_extra: &str, frpc_extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("certs");
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        frp_certs::init_ca_dir(&certs, &names, false).expect("ca init");
        frp_certs::issue_client_in_dir(&certs, "node1", false).expect("ca issue");
        let server = SocketAddr::new(LOCALHOST, fixed_port());
        let allow: Vec<String> = ports
            .iter()
            .map(|p| format!("{{ single = {p} }}"))
            .collect();
        let frps = format!(
            "bindAddr = \"127.0.0.1\"\nbindPort = {}\nallowPorts = [{}]\n\
             gracefulShutdownTimeout = 1\n\n[transport.tls]\ncertFile = \"certs/server.crt\"\n\
             keyFile = \"certs/server.key\"\ntrustedCaFile = \"certs/ca.crt\"\n\n{frps_extra}",
            server.port(),
            allow.join(", ")
        );
        let mut frpc = format!(
            "serverAddr = \"127.0.0.1\"\nserverPort = {}\ngracefulShutdownTimeout = 1\n\n\
             [transport]\nreconnectMinDelayMs = 50\nreconnectMaxDelayMs = 500\n\n\
             [transport.tls]\ncertFile = \"certs/node1.crt\"\nkeyFile = \"certs/node1.key\"\n\
             trustedCaFile = \"certs/ca.crt\"\n\n{frpc_extra}",
            server.port()
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
        Self { dir, server }
    }

    /// `name` inside the deployment's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `name` (frps or frpc) on `name.toml`; `run` numbers the log file.
    pub fn start(&self, name: &str, run: u32) -> Proc {
        self.start_with(name, name, run)
    }

    /// Starts frps, then frpc, on their configs (log run 1) and waits until frpc has published
    /// its proxies: the tunnel is ready.
    pub async fn start_both(&self) -> (Proc, Proc) {
        let frps = self.start("frps", 1);
        let mut frpc = self.start("frpc", 1);
        frpc.wait_log(PUBLISHED, 1).await;
        (frps, frpc)
    }

    /// Starts the binary `program` on `config.toml` with JSON logs in `config-run.log`.
    pub fn start_with(&self, program: &str, config: &str, run: u32) -> Proc {
        let file = self.path(&format!("{config}.toml"));
        let args = [
            OsStr::new("--log-format"),
            OsStr::new("json"),
            OsStr::new("-c"),
            file.as_os_str(),
        ];
        let log = self.path(&format!("{config}-{run}.log"));
        Proc::spawn(&format!("{config} run {run}"), &binary(program), args, log)
    }

    /// Prepends `lines` to `name.toml`, before its first table.
    pub fn prepend(&self, name: &str, lines: &str) {
        let path = self.path(&format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).expect("read config");
        std::fs::write(&path, format!("{lines}\n{text}")).expect("write config");
    }
}

/// `n` distinct ports for frps to publish on (see [`fixed_port`]).
pub fn free_ports(n: usize) -> Vec<u16> {
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
pub async fn echo_through(ports: &[u16], msg: &[u8]) {
    for &port in ports {
        let public = SocketAddr::new(LOCALHOST, port);
        assert_eq!(echo_once(public, msg).await, msg, "echo through {public}");
    }
}

/// Polls until every port in `ports` can be bound by us, i.e. frps closed its listeners.
pub async fn until_bindable(ports: &[u16]) {
    for &port in ports {
        while TcpListener::bind((LOCALHOST, port)).is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sends `signal` (`HUP`, `USR1`, ...) to the process `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Whether the process `pid` ignores `signum` (its bit in `SigIgn` of /proc/PID/status).
pub fn ignores_signal(pid: u32, signum: u32) -> bool {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .expect("read /proc/PID/status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .expect("SigIgn line");
    mask & (1 << (signum - 1)) != 0
}
