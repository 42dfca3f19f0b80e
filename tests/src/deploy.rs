//! A deployment of the real binaries on disk, as an operator writes it: a CA and certificates
//! made with `frp_certs` (what `frps ca` does), `frps.toml` and `frpc.toml` in a temp dir.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::procs::{binary, fixed_port, Proc};
use crate::LOCALHOST;

/// The log line frpc (and frps) write when a proxy's public port is bound.
pub const PUBLISHED: &str = r#""message":"proxy published""#;
/// The log line frps writes once it listens.
pub const LISTENING: &str = r#""message":"frps listening for clients (quic)""#;

/// A temp dir with certificates (client `node1`), `frps.toml` and `frpc.toml`.
#[derive(Debug)]
pub struct Deployment {
    dir: TempDir,
    /// frps's UDP address (on a fixed port, so a restarted frps gets the same one).
    pub server: SocketAddr,
}

impl Deployment {
    /// frps allowing `ports` and frpc publishing `local` on each of them; `frps_extra` and
    /// `frpc_extra` are appended to the files (e.g. a `[transport.quic]` table).
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

    /// The deployment's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `name` (frps or frpc) on its config with JSON logs; `run` numbers the log file.
    pub fn start(&self, name: &str, run: u32) -> Proc {
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
