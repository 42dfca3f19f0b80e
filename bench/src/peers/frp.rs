//! frp-quic: the release `frps` and `frpc`, with a CA made by `frps ca`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::process::Command as Cmd;

use super::{public_ports, write, Ctx, Tunnel};
use crate::procs::{free_port, run_checked, Guard, Scope, LOCALHOST};
use crate::relay::Relay;
use crate::targets::Ports;

const CMD_LIMIT: Duration = Duration::from_secs(60);

/// Starts frps and frpc publishing `targets`; with `delay`, frpc reaches frps through a
/// [`Relay`] that holds each datagram that long in each direction.
pub async fn start(
    ctx: &Ctx,
    dir: &Path,
    targets: Ports,
    delay: Option<Duration>,
) -> Result<Tunnel> {
    let certs = certs(ctx).await?;
    let public = public_ports()?;
    let udp = free_port()?;
    let relay = match delay {
        Some(d) => Some(Relay::start(SocketAddr::from((LOCALHOST, udp)), d).await?),
        None => None,
    };
    let dial = relay.as_ref().map_or(udp, |r| r.port);
    let frps_toml = dir.join("frps.toml");
    let frpc_toml = dir.join("frpc.toml");
    write(&frps_toml, &frps_config(&certs, udp, public))?;
    write(&frpc_toml, &frpc_config(&certs, dial, public, targets))?;
    let frps = ctx.bin_dir.join("frps");
    let frpc = ctx.bin_dir.join("frpc");
    check(&frps, &frps_toml).await?;
    check(&frpc, &frpc_toml).await?;
    let server = Guard::spawn("frps", &mut binary(&frps, &frps_toml), dir)?;
    let client = Guard::spawn("frpc", &mut binary(&frpc, &frpc_toml), dir)?;
    Ok(Tunnel {
        ports: public,
        server: Some(Scope::Pid(server.pid())),
        client: Some(Scope::Pid(client.pid())),
        guards: vec![client, server],
        _relay: relay,
    })
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

fn binary(bin: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("-c")
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1");
    cmd
}

fn frps_config(certs: &Path, udp: u16, public: Ports) -> String {
    let c = certs.display();
    format!(
        "bindAddr = \"127.0.0.1\"\n\
         bindPort = {udp}\n\
         allowPorts = [{{ single = {} }}, {{ single = {} }}, {{ single = {} }}]\n\
         maxConnectionsPerProxy = 12000\n\
         maxConnectionsPerClient = 18000\n\
         maxConnectionsPerIP = 12000\n\
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
         maxIncomingStreams = 12000\n"
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
