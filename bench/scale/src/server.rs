//! The frps process under test: its frps.toml, starting it, waiting until it listens, killing
//! it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use frp_certs::CaPaths;
use tokio::process::{Child, Command};

/// First port of `allowPorts` when some clients publish a proxy (frps takes the first free one).
pub const ALLOW_PORTS_START: u16 = 42_000;

/// How frps is run.
#[derive(Clone, Debug)]
pub struct FrpsSpec {
    /// The release binary.
    pub bin: PathBuf,
    /// The generated frps.toml.
    pub config: PathBuf,
    /// Its UDP port on 127.0.0.1.
    pub port: u16,
    /// Where its stderr goes (appended to across restarts).
    pub log: PathBuf,
    /// `RUST_LOG` for it.
    pub log_level: String,
}

/// Writes `dir/frps.toml`: 127.0.0.1:`port`, the CA's server certificate, `maxHandshakesPerIP`
/// (every client here comes from 127.0.0.1), and `allowPorts` only when `publishers` > 0.
pub fn write_config(
    dir: &Path,
    certs: &CaPaths,
    port: u16,
    handshakes_per_ip: u32,
    publishers: usize,
) -> anyhow::Result<PathBuf> {
    let mut toml =
        format!("bindAddr = \"127.0.0.1\"\nbindPort = {port}\nproxyBindAddr = \"127.0.0.1\"\n");
    if publishers > 0 {
        let end = usize::from(ALLOW_PORTS_START) + publishers + 100;
        let end = end.min(usize::from(u16::MAX));
        toml += &format!("allowPorts = [{{ start = {ALLOW_PORTS_START}, end = {end} }}]\n");
    }
    toml += &format!(
        "\n[transport.tls]\ncertFile = {:?}\nkeyFile = {:?}\ntrustedCaFile = {:?}\n",
        certs.server_cert, certs.server_key, certs.ca_cert
    );
    toml += &format!("\n[transport.quic]\nmaxHandshakesPerIP = {handshakes_per_ip}\n");
    let path = dir.join("frps.toml");
    std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A free UDP port on 127.0.0.1 (bound and released; frps binds it right after).
pub fn free_udp_port() -> anyhow::Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").context("finding a free udp port")?;
    Ok(socket.local_addr()?.port())
}

/// A running frps.
#[derive(Debug)]
pub struct Frps {
    child: Child,
    pid: u32,
}

impl Frps {
    /// Starts frps and returns once its UDP port is bound.
    pub async fn start(spec: &FrpsSpec) -> anyhow::Result<Self> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .with_context(|| format!("opening {}", spec.log.display()))?;
        let mut child = Command::new(&spec.bin)
            .arg("-c")
            .arg(&spec.config)
            .env("RUST_LOG", &spec.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", spec.bin.display()))?;
        let pid = child.id().context("frps exited at once")?;
        wait_bound(&mut child, spec).await?;
        Ok(Self { child, pid })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGKILL, and waits until it is gone (its UDP port is free again).
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing frps")
    }
}

/// Waits until frps has bound its port, failing if it exits or takes over 10 s.
async fn wait_bound(child: &mut Child, spec: &FrpsSpec) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !crate::procfs::udp_bound(spec.port) {
        if let Some(status) = child.try_wait()? {
            bail!(
                "frps exited with {status} before listening; its log: {}",
                spec.log.display()
            );
        }
        if Instant::now() > deadline {
            bail!("frps did not bind udp port {} within 10 s", spec.port);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
