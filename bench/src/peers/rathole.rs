//! rathole 0.5: one server and one client process, plain TCP or TLS transport.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::process::Command as Cmd;

use super::{public_ports, write, Ctx, Tunnel};
use crate::probe::{accepts, wait_until};
use crate::procs::{free_port, run_checked, Guard, Scope};
use crate::targets::Ports;

const CMD_LIMIT: Duration = Duration::from_secs(60);
/// Password of the PKCS#12 identity (a throw-away file in the run's directory).
const P12_PASSWORD: &str = "frp-bench";

/// Starts a rathole server and client publishing `targets`.
pub async fn start(ctx: &Ctx, dir: &Path, targets: Ports, tls: bool) -> Result<Tunnel> {
    let rathole = ctx.rathole.clone().context("rathole not installed")?;
    let tls_dir = if tls { Some(certs(ctx).await?) } else { None };
    let public = public_ports()?;
    let control = free_port()?;
    let server_toml = dir.join("server.toml");
    let client_toml = dir.join("client.toml");
    write(
        &server_toml,
        &server_config(control, public, tls_dir.as_deref()),
    )?;
    write(
        &client_toml,
        &client_config(control, targets, tls_dir.as_deref()),
    )?;
    let server = Guard::spawn(
        "rathole-server",
        &mut run(&rathole, "-s", &server_toml),
        dir,
    )?;
    wait_until("rathole server", Duration::from_secs(20), || {
        accepts(control)
    })
    .await
    .with_context(|| format!("see {}", server.log().display()))?;
    let client = Guard::spawn(
        "rathole-client",
        &mut run(&rathole, "-c", &client_toml),
        dir,
    )?;
    Ok(Tunnel {
        ports: public,
        server: Some(Scope::Pid(server.pid())),
        client: Some(Scope::Pid(client.pid())),
        guards: vec![client, server],
        control: None,
        _hop: None,
    })
}

fn run(rathole: &Path, mode: &str, config: &Path) -> Command {
    let mut cmd = Command::new(rathole);
    cmd.arg(mode).arg(config).env("RUST_LOG", "warn");
    cmd
}

const SERVICES: [&str; 3] = ["iperf", "nginx", "echo"];

fn ports(p: Ports) -> [u16; 3] {
    [p.iperf, p.nginx, p.echo]
}

fn server_config(control: u16, public: Ports, tls: Option<&Path>) -> String {
    let mut text = format!("[server]\nbind_addr = \"127.0.0.1:{control}\"\n");
    if let Some(d) = tls {
        text.push_str(&format!(
            "\n[server.transport]\ntype = \"tls\"\n\n[server.transport.tls]\n\
             pkcs12 = \"{}\"\npkcs12_password = \"{P12_PASSWORD}\"\n",
            d.join("identity.pfx").display()
        ));
    }
    for (name, port) in SERVICES.iter().zip(ports(public)) {
        text.push_str(&format!(
            "\n[server.services.{name}]\ntoken = \"bench-{name}\"\n\
             bind_addr = \"127.0.0.1:{port}\"\n"
        ));
    }
    text
}

fn client_config(control: u16, targets: Ports, tls: Option<&Path>) -> String {
    let mut text = format!("[client]\nremote_addr = \"127.0.0.1:{control}\"\n");
    if let Some(d) = tls {
        text.push_str(&format!(
            "\n[client.transport]\ntype = \"tls\"\n\n[client.transport.tls]\n\
             trusted_root = \"{}\"\nhostname = \"localhost\"\n",
            d.join("ca.pem").display()
        ));
    }
    for (name, port) in SERVICES.iter().zip(ports(targets)) {
        text.push_str(&format!(
            "\n[client.services.{name}]\ntoken = \"bench-{name}\"\n\
             local_addr = \"127.0.0.1:{port}\"\n"
        ));
    }
    text
}

/// A CA (`ca.pem`) and a server identity for `localhost` (`identity.pfx`), made once per run
/// with the openssl CLI.
async fn certs(ctx: &Ctx) -> Result<PathBuf> {
    let dir = ctx.dir.join("rathole-certs");
    if dir.join("identity.pfx").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &dir,
        &["req", "-x509", "-days", "3", "-subj", "/CN=frp-bench-ca"],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem"],
    )
    .await?;
    openssl(
        &dir,
        &["req", "-subj", "/CN=localhost"],
        &ec,
        &["-keyout", "server.key", "-out", "server.csr"],
    )
    .await?;
    write(
        &dir.join("server.ext"),
        "subjectAltName = DNS:localhost\nbasicConstraints = CA:FALSE\n\
         keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n",
    )?;
    let sign = [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
    ];
    let sign_out = [
        "-CAcreateserial",
        "-days",
        "3",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ];
    openssl(&dir, &sign, &sign_out, &[]).await?;
    let pass = format!("pass:{P12_PASSWORD}");
    let export = [
        "pkcs12",
        "-export",
        "-inkey",
        "server.key",
        "-in",
        "server.crt",
    ];
    let export_out = [
        "-certfile",
        "ca.pem",
        "-out",
        "identity.pfx",
        "-passout",
        &pass,
    ];
    openssl(&dir, &export, &export_out, &[]).await?;
    Ok(dir)
}

async fn openssl(dir: &Path, a: &[&str], b: &[&str], c: &[&str]) -> Result<()> {
    let mut cmd = Cmd::new("openssl");
    cmd.current_dir(dir).args(a).args(b).args(c);
    run_checked(&mut cmd, CMD_LIMIT).await.map(drop)
}
