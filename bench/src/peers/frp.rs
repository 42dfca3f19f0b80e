//! frp-quic: the release `frps` and `frpc`, with a CA made by `frps ca`.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use frp_tests::flood::{peak_rss_kib, Flood, Initials};
use tokio::process::Command as Cmd;

use super::control::{self, ControlPlane};
use super::{public_ports, write, Ctx, Hop, Tunnel, Via};
use crate::probe::{echoes, wait_until};
use crate::procs::{free_port, run_checked, Guard, Scope, LOCALHOST};
use crate::relay::Relay;
use crate::results::ConnectRun;
use crate::targets::Ports;

const CMD_LIMIT: Duration = Duration::from_secs(60);

/// What a frp-quic tunnel runs with besides its defaults.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// Both ends run their control plane (see [`control`]).
    pub admin: bool,
    /// Lines under `[transport.quic]` in both config files.
    pub quic_lines: &'a str,
    /// frpc connects over the TCP transport (`transport.protocol = "tcp"`).
    pub tcp: bool,
}

/// Starts frps and frpc publishing `targets`, frpc reaching frps `via` a relay or not, as
/// `setup` says.
pub async fn start(
    ctx: &Ctx,
    dir: &Path,
    targets: Ports,
    via: Via<'_>,
    setup: Setup<'_>,
) -> Result<Tunnel> {
    let Setup {
        admin,
        quic_lines,
        tcp,
    } = setup;
    let certs = certs(ctx).await?;
    let public = public_ports()?;
    let udp = free_port()?;
    let hop = hop(via, udp).await?;
    let dial = hop.as_ref().map_or(udp, Hop::port);
    let frps_toml = dir.join("frps.toml");
    let frpc_toml = dir.join("frpc.toml");
    let mut frps_text = frps_config(&certs, udp, public);
    let mut frpc_text = frpc_config(&certs, dial, public, targets);
    if tcp {
        // Dotted keys before the first table: no second [transport] header.
        let port = free_port()?;
        frps_text.insert_str(0, &format!("transport.tcpPort = {port}\n"));
        let lines = format!("transport.protocol = \"tcp\"\ntransport.tcpPort = {port}\n");
        frpc_text.insert_str(0, &lines);
    }
    if !quic_lines.is_empty() {
        // frps.toml has no [transport.quic] of its own; frpc.toml's is followed by the proxies.
        frps_text.push_str(&format!("\n[transport.quic]\n{quic_lines}"));
        let section = format!("[transport.quic]\n{quic_lines}");
        frpc_text = frpc_text.replacen("[transport.quic]\n", &section, 1);
    }
    let mut control = None;
    if admin {
        let ports = [("frps", free_port()?), ("frpc", free_port()?)];
        frps_text = control::enable(&frps_text, ports[0].1);
        frpc_text = control::enable(&frpc_text, ports[1].1);
        control = Some(ControlPlane::new(&ports));
    }
    write(&frps_toml, &frps_text)?;
    write(&frpc_toml, &frpc_text)?;
    let frps = ctx.bin_dir.join("frps");
    let frpc = ctx.bin_dir.join("frpc");
    check(&frps, &frps_toml).await?;
    check(&frpc, &frpc_toml).await?;
    let server = Guard::spawn("frps", &mut binary(ctx, &frps, &frps_toml), dir)?;
    let client = Guard::spawn("frpc", &mut binary(ctx, &frpc, &frpc_toml), dir)?;
    Ok(Tunnel {
        ports: public,
        server: Some(Scope::Pid(server.pid())),
        client: Some(Scope::Pid(client.pid())),
        control,
        guards: vec![client, server],
        _hop: hop,
    })
}

/// The relay (if any) between frpc and frps listening on `udp`.
async fn hop(via: Via<'_>, udp: u16) -> Result<Option<Hop>> {
    let upstream = SocketAddr::from((LOCALHOST, udp));
    Ok(match via {
        Via::Direct => None,
        Via::Delay(d) => Some(Hop::Delay(Relay::start(upstream, d).await?)),
        Via::Wan(wan) => Some(Hop::Wan(wan.route(upstream)?)),
    })
}

/// How long a connect may take before the figure fails.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// How long the flood lasts at most; the connect is timed within it.
const FLOOD_FOR: Duration = Duration::from_secs(15);

/// Starts frps alone, floods it with `flood` QUIC Initials a second (none: no flood) from
/// loopback addresses, starts frpc half a second later, and times from frpc's start until
/// the echo target answers through the tunnel.
pub async fn connect_time(
    ctx: &Ctx,
    dir: &Path,
    targets: Ports,
    flood: Option<u32>,
) -> Result<ConnectRun> {
    let certs = certs(ctx).await?;
    let public = public_ports()?;
    let udp = free_port()?;
    let (frps_toml, frpc_toml) = (dir.join("frps.toml"), dir.join("frpc.toml"));
    write(&frps_toml, &frps_config(&certs, udp, public))?;
    write(&frpc_toml, &frpc_config(&certs, udp, public, targets))?;
    let (frps, frpc) = (ctx.bin_dir.join("frps"), ctx.bin_dir.join("frpc"));
    let mut server = Guard::spawn("frps", &mut binary(ctx, &frps, &frps_toml), dir)?;
    wait_until("frps to bind its udp port", CONNECT_LIMIT, || async {
        match UdpSocket::bind((LOCALHOST, udp)) {
            Ok(_) => bail!("udp port {udp} still free"),
            Err(_) => Ok(()),
        }
    })
    .await?;
    let target = SocketAddr::from((LOCALHOST, udp));
    let flood = match flood {
        Some(rate) => Some(start_flood(&certs, target, rate).await?),
        None => None,
    };
    let started = Instant::now();
    let mut client = Guard::spawn("frpc", &mut binary(ctx, &frpc, &frpc_toml), dir)?;
    while echoes(public.echo).await.is_err() {
        if started.elapsed() > CONNECT_LIMIT {
            bail!("frpc not through the tunnel after {CONNECT_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let outlasted = flood.as_ref().is_none_or(Flood::is_running);
    let report = flood.map(Flood::stop);
    server.check_running()?;
    client.check_running()?;
    Ok(ConnectRun {
        initials_per_s: report.map_or(0.0, |r| r.rate()),
        initials_sent: report.map_or(0, |r| r.sent),
        connect_ms,
        flood_outlasted_connect: outlasted,
        server_peak_rss_kib: peak_rss_kib(server.pid()),
    })
}

/// Prepares the Initials (each from a fresh client connection) and floods `target` with them,
/// returning once the first half second of it has gone out.
async fn start_flood(certs: &Path, target: SocketAddr, rate: u32) -> Result<Flood> {
    let tls = frp_certs::load_client_tls(
        &certs.join("bench.crt"),
        &certs.join("bench.key"),
        &certs.join("ca.crt"),
    )?;
    let count = rate as usize * FLOOD_FOR.as_secs() as usize;
    let tls = std::sync::Arc::new(tls);
    let initials = tokio::task::spawn_blocking(move || Initials::prepare(tls, target, count))
        .await
        .context("preparing the flood's Initials")?;
    let flood = Flood::start(initials, target, rate, FLOOD_FOR);
    while flood.sent() < u64::from(rate / 2) && flood.is_running() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(flood)
}

/// The run's CA, server certificate and the client certificate `bench`, made once.
async fn certs(ctx: &Ctx) -> Result<PathBuf> {
    let dir = ctx.dir.join("frp-certs");
    if dir.join("bench.key").is_file() {
        return Ok(dir);
    }
    let frps = ctx.bin_dir.join("frps");
    run_checked(
        Cmd::new(&frps)
            .args(["ca", "init", "--name", "127.0.0.1", "--dir"])
            .arg(&dir),
        CMD_LIMIT,
    )
    .await?;
    run_checked(
        Cmd::new(&frps)
            .args(["ca", "issue", "bench", "--dir"])
            .arg(&dir),
        CMD_LIMIT,
    )
    .await?;
    Ok(dir)
}

/// `--check -c`: a rejected config fails here with the reason the binary prints.
async fn check(bin: &Path, config: &Path) -> Result<()> {
    run_checked(
        Cmd::new(bin).arg("--check").arg("-c").arg(config),
        CMD_LIMIT,
    )
    .await
    .with_context(|| format!("{} rejected", config.display()))
    .map(drop)
}

fn binary(ctx: &Ctx, bin: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("-c")
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1");
    cmd.envs(ctx.frp_env().iter().map(|(k, v)| (k, v)));
    cmd
}

fn frps_config(certs: &Path, udp: u16, public: Ports) -> String {
    let c = certs.display();
    format!(
        "bindAddr = \"127.0.0.1\"\n\
         bindPort = {udp}\n\
         allowPorts = [{{ single = {} }}, {{ single = {} }}, {{ single = {} }}]\n\
         maxConnectionsPerProxy = 20000\n\
         maxConnectionsPerClient = 30000\n\
         maxConnectionsPerIP = 20000\n\
         gracefulShutdownTimeout = 1\n\
         \n\
         [transport.tls]\n\
         certFile = \"{c}/server.crt\"\n\
         keyFile = \"{c}/server.key\"\n\
         trustedCaFile = \"{c}/ca.crt\"\n",
        public.iperf, public.nginx, public.echo
    )
}

fn frpc_config(certs: &Path, server_port: u16, public: Ports, targets: Ports) -> String {
    let c = certs.display();
    let mut text = format!(
        "serverAddr = \"127.0.0.1\"\n\
         serverPort = {server_port}\n\
         gracefulShutdownTimeout = 1\n\
         \n\
         [transport.tls]\n\
         certFile = \"{c}/bench.crt\"\n\
         keyFile = \"{c}/bench.key\"\n\
         trustedCaFile = \"{c}/ca.crt\"\n\
         serverName = \"127.0.0.1\"\n\
         \n\
         [transport.quic]\n\
         maxIncomingStreams = 32000\n"
    );
    let proxies = [
        ("iperf", targets.iperf, public.iperf),
        ("nginx", targets.nginx, public.nginx),
        ("echo", targets.echo, public.echo),
    ];
    for (name, local, remote) in proxies {
        text.push_str(&format!(
            "\n[[proxies]]\n\
             name = \"{name}\"\n\
             type = \"tcp\"\n\
             localIP = \"127.0.0.1\"\n\
             localPort = {local}\n\
             remotePort = {remote}\n"
        ));
    }
    text
}
