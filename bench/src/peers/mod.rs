//! The tunnels compared, each started from scratch on free loopback ports.

mod control;
mod frp;
mod rathole;
mod ssh;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::probe::{accepts, echoes, serves_1k, wait_until};
use crate::procs::{Guard, Scope};
use crate::relay::Relay;
use crate::targets::Ports;
use crate::wan::relay::{Route, WanLink};

/// How long a tunnel may take until all three services answer through it.
const READY: Duration = Duration::from_secs(30);

/// One column of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerKind {
    /// No tunnel: the tools talk to the services directly.
    Direct,
    /// frps + frpc over QUIC with mutual TLS.
    FrpQuic,
    /// frp-quic with its control plane on (webServer, enablePrometheus) at both ends, whose
    /// /metrics are scraped once a second.
    #[value(name = "frp-quic+admin")]
    #[serde(rename = "frp-quic+admin")]
    FrpQuicAdmin,
    /// frp-quic with quinn's Cubic (`congestionControl = "cubic"` at both ends) instead of
    /// the default BBR-style controller: what the controller costs or gains on loopback.
    #[value(name = "frp-quic-cubic")]
    FrpQuicCubic,
    /// frp-quic over its TCP transport (`transport.protocol = "tcp"`: HTTP/2 over TLS over
    /// TCP), the path frpc falls back to where UDP is blocked.
    #[value(name = "frp-quic-tcp")]
    FrpQuicTcp,
    /// rathole 0.5 with its plain TCP transport.
    Rathole,
    /// rathole 0.5 with its TLS transport.
    RatholeTls,
    /// `ssh -R` to a private sshd.
    #[value(name = "ssh-R")]
    #[serde(rename = "ssh-R")]
    SshR,
}

impl PeerKind {
    /// The name used on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Direct => "direct",
            PeerKind::FrpQuic => "frp-quic",
            PeerKind::FrpQuicAdmin => "frp-quic+admin",
            PeerKind::FrpQuicCubic => "frp-quic-cubic",
            PeerKind::FrpQuicTcp => "frp-quic-tcp",
            PeerKind::Rathole => "rathole",
            PeerKind::RatholeTls => "rathole-tls",
            PeerKind::SshR => "ssh-R",
        }
    }

    /// frps and frpc, with or without their control plane.
    pub fn is_frp(self) -> bool {
        matches!(
            self,
            PeerKind::FrpQuic
                | PeerKind::FrpQuicAdmin
                | PeerKind::FrpQuicCubic
                | PeerKind::FrpQuicTcp
        )
    }
}

/// frp-quic from other binaries, or with an environment variable set (`--frp-variant`).
#[derive(Debug, Clone)]
pub struct Variant {
    /// Shown after `frp-quic` in the tables.
    pub label: String,
    /// Directory holding its `frps` and `frpc`.
    pub bin_dir: PathBuf,
    /// Environment variables set for both.
    pub env: Vec<(String, String)>,
}

impl Variant {
    /// Parses `LABEL:DIR` or `LABEL:DIR:KEY=VALUE`, more variables separated by `|` (a value
    /// may hold `:` and `=`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.splitn(3, ':');
        let (Some(label), Some(dir)) = (parts.next(), parts.next()) else {
            return Err("expected LABEL:DIR or LABEL:DIR:KEY=VALUE".into());
        };
        if label.is_empty() || dir.is_empty() {
            return Err("the label and the directory must not be empty".into());
        }
        let mut env = Vec::new();
        for kv in parts.next().into_iter().flat_map(|vars| vars.split('|')) {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
                _ => return Err(format!("{kv:?}: expected KEY=VALUE")),
            }
        }
        Ok(Self {
            label: label.into(),
            bin_dir: dir.into(),
            env,
        })
    }
}

/// What every setup needs: where to put its files and where the binaries are.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The run's temporary directory.
    pub dir: PathBuf,
    /// Directory holding the release `frps` and `frpc`.
    pub bin_dir: PathBuf,
    /// The rathole binary, if one was found.
    pub rathole: Option<PathBuf>,
    /// frp-quic is a variant: its binaries come from there, and only the idle, traffic and
    /// after-load figures are measured.
    pub variant: Option<Variant>,
}

impl Ctx {
    /// This context with frp-quic's binaries and environment taken from `variant`.
    pub fn with_variant(&self, variant: Variant) -> Self {
        Self {
            bin_dir: variant.bin_dir.clone(),
            variant: Some(variant),
            ..self.clone()
        }
    }

    /// The environment variables frps and frpc get.
    fn frp_env(&self) -> &[(String, String)] {
        self.variant.as_ref().map_or(&[], |v| &v.env)
    }

    /// A fresh directory for one setup of `kind`.
    fn setup_dir(&self, kind: PeerKind) -> Result<PathBuf> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("{}-{n}", kind.name()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(dir)
    }

    /// Why `kind` cannot run on this machine, if it cannot.
    pub fn missing(&self, kind: PeerKind) -> Option<String> {
        let need = |path: &Path, what: &str| {
            (!path.is_file()).then(|| format!("{what} not found at {}", path.display()))
        };
        match kind {
            PeerKind::Direct => None,
            PeerKind::FrpQuic
            | PeerKind::FrpQuicAdmin
            | PeerKind::FrpQuicCubic
            | PeerKind::FrpQuicTcp => need(&self.bin_dir.join("frps"), "frps")
                .or_else(|| need(&self.bin_dir.join("frpc"), "frpc")),
            PeerKind::Rathole | PeerKind::RatholeTls => match &self.rathole {
                None => Some("rathole not installed (see bench/install.sh)".into()),
                Some(_) => crate::meta::find_tool("openssl")
                    .is_none()
                    .then(|| "openssl CLI not installed".into()),
            },
            PeerKind::SshR => need(Path::new(ssh::SSHD), "sshd").or_else(|| {
                ["ssh", "ssh-keygen"]
                    .into_iter()
                    .find(|t| crate::meta::find_tool(t).is_none())
                    .map(|t| format!("{t} not installed"))
            }),
        }
    }
}

/// A running tunnel publishing the three targets.
#[derive(Debug)]
pub struct Tunnel {
    /// Public ports: where the tools connect.
    pub ports: Ports,
    /// The tunnel's server side (none for `direct`).
    pub server: Option<Scope>,
    /// The tunnel's client side (none for `direct`).
    pub client: Option<Scope>,
    /// The admin servers being scraped (frp-quic+admin only); stopped before the children.
    control: Option<control::ControlPlane>,
    /// Children, stopped in this order when the tunnel is dropped (clients first).
    guards: Vec<Guard>,
    _hop: Option<Hop>,
}

/// What sits between frpc and frps (frp-quic only).
#[derive(Debug, Clone, Copy)]
pub enum Via<'a> {
    /// frpc dials frps straight on loopback.
    Direct,
    /// A [`Relay`] holding each datagram this long in each direction.
    Delay(Duration),
    /// A route through the emulated WAN link (shared with every other route through it).
    Wan(&'a WanLink),
}

/// The relay a tunnel keeps running for as long as it lives.
#[derive(Debug)]
pub enum Hop {
    Delay(Relay),
    Wan(Route),
}

impl Hop {
    /// The UDP port frpc dials to go through the relay.
    pub fn port(&self) -> u16 {
        match self {
            Hop::Delay(relay) => relay.port,
            Hop::Wan(route) => route.port,
        }
    }
}

impl Tunnel {
    /// Starts `kind` publishing `targets`; `delay` puts a delay relay between frpc and frps
    /// (frp-quic only). Returns once every service answers through the public ports, and for
    /// frp-quic+admin once both `/metrics` answer, with their scraping started.
    pub async fn start(
        kind: PeerKind,
        ctx: &Ctx,
        targets: Ports,
        delay: Option<Duration>,
    ) -> Result<Self> {
        let mut tunnel = match kind {
            PeerKind::Direct => return Ok(Self::direct(targets)),
            PeerKind::FrpQuic
            | PeerKind::FrpQuicAdmin
            | PeerKind::FrpQuicCubic
            | PeerKind::FrpQuicTcp => {
                let setup = frp::Setup {
                    admin: kind == PeerKind::FrpQuicAdmin,
                    quic_lines: match kind {
                        PeerKind::FrpQuicCubic => "congestionControl = \"cubic\"\n",
                        _ => "",
                    },
                    tcp: kind == PeerKind::FrpQuicTcp,
                };
                let via = delay.map_or(Via::Direct, Via::Delay);
                let dir = ctx.setup_dir(kind)?;
                frp::start(ctx, &dir, targets, via, setup).await?
            }
            PeerKind::Rathole => rathole::start(ctx, &ctx.setup_dir(kind)?, targets, false).await?,
            PeerKind::RatholeTls => {
                rathole::start(ctx, &ctx.setup_dir(kind)?, targets, true).await?
            }
            PeerKind::SshR => ssh::start(&ctx.setup_dir(kind)?, targets).await?,
        };
        tunnel.wait_ready(kind).await?;
        let logs = tunnel.logs();
        if let Some(control) = &mut tunnel.control {
            control
                .start()
                .await
                .with_context(|| format!("control plane not answering; logs: {logs}"))?;
        }
        Ok(tunnel)
    }

    /// Starts frp-quic publishing `targets` with frpc reaching frps through `wan`;
    /// `quic_lines` go under `[transport.quic]` in both config files. Returns once every
    /// service answers through the public ports.
    pub async fn start_wan(
        ctx: &Ctx,
        targets: Ports,
        wan: &WanLink,
        quic_lines: &str,
    ) -> Result<Self> {
        let kind = PeerKind::FrpQuic;
        let dir = ctx.setup_dir(kind)?;
        let setup = frp::Setup {
            admin: false,
            quic_lines,
            tcp: false,
        };
        let mut tunnel = frp::start(ctx, &dir, targets, Via::Wan(wan), setup).await?;
        tunnel.wait_ready(kind).await?;
        Ok(tunnel)
    }

    fn direct(ports: Ports) -> Self {
        Self {
            ports,
            server: None,
            client: None,
            control: None,
            guards: Vec::new(),
            _hop: None,
        }
    }

    /// Waits until the echo target, nginx and iperf3 all answer through the public ports.
    async fn wait_ready(&mut self, kind: PeerKind) -> Result<()> {
        let ports = self.ports;
        let ready = async {
            wait_until("echo through the tunnel", READY, || echoes(ports.echo)).await?;
            wait_until("nginx through the tunnel", READY, || serves_1k(ports.nginx)).await?;
            wait_until("iperf3 port of the tunnel", READY, || accepts(ports.iperf)).await
        };
        let result = ready.await;
        let logs = self.logs();
        self.check_running()
            .and(result)
            .with_context(|| format!("{} did not come up; logs: {logs}", kind.name()))
    }

    /// Fails, naming the log, if one of the tunnel's processes has exited.
    pub fn check_running(&mut self) -> Result<()> {
        self.guards.iter_mut().try_for_each(Guard::check_running)
    }

    /// The log files of the tunnel's processes.
    pub fn logs(&self) -> String {
        let logs: Vec<String> = self
            .guards
            .iter()
            .map(|g| g.log().display().to_string())
            .collect();
        logs.join(", ")
    }

    /// Resident memory of the server and client sides, KiB.
    pub fn rss_kib(&self) -> Result<Option<(u64, u64)>> {
        match (self.server, self.client) {
            (Some(s), Some(c)) => Ok(Some((s.rss_kib()?, c.rss_kib()?))),
            _ => Ok(None),
        }
    }

    /// RssAnon of server and client, KiB (see [`crate::procs::anon_kib`]).
    pub fn anon_kib(&self) -> Result<Option<(u64, u64)>> {
        match (self.server, self.client) {
            (Some(s), Some(c)) => Ok(Some((s.anon_kib()?, c.anon_kib()?))),
            _ => Ok(None),
        }
    }

    /// The scrapes of the control plane so far (frp-quic+admin only).
    pub fn scrapes(&self) -> Option<crate::results::Scrapes> {
        self.control.as_ref().map(control::ControlPlane::scrapes)
    }

    /// CPU seconds consumed so far by server and client together.
    pub fn cpu_secs(&self) -> Result<Option<f64>> {
        match (self.server, self.client) {
            (Some(s), Some(c)) => Ok(Some(s.cpu_secs()? + c.cpu_secs()?)),
            _ => Ok(None),
        }
    }
}

/// frpc's connect time from its start to the first echo through the tunnel, with frps under
/// a flood of `flood` QUIC Initials a second (none: quiet).
pub async fn frp_connect_time(
    ctx: &Ctx,
    targets: Ports,
    flood: Option<u32>,
) -> Result<crate::results::ConnectRun> {
    frp::connect_time(ctx, &ctx.setup_dir(PeerKind::FrpQuic)?, targets, flood).await
}

/// Public ports for the three services.
fn public_ports() -> Result<Ports> {
    use crate::procs::free_port;
    Ok(Ports {
        iperf: free_port()?,
        nginx: free_port()?,
        echo: free_port()?,
    })
}

/// Writes a config file, naming it in the error.
fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::Variant;

    #[test]
    fn variants_parse_with_and_without_an_environment_variable() {
        let plain = Variant::parse("je:/tmp/je").expect("plain");
        assert_eq!((plain.label.as_str(), plain.env.len()), ("je", 0));
        let tuned =
            Variant::parse("a2:target/release:GLIBC_TUNABLES=glibc.malloc.arena_max=2:x=1|B=")
                .expect("with env");
        assert_eq!(tuned.bin_dir, std::path::Path::new("target/release"));
        let pairs: Vec<(&str, &str)> = tuned.env.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            pairs,
            [
                ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:x=1"),
                ("B", "")
            ]
        );
        assert!(Variant::parse("nodir").is_err());
        assert!(Variant::parse("x:dir:novalue").is_err());
        assert!(Variant::parse(":dir").is_err());
    }
}
