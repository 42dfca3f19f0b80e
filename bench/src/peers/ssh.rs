//! `ssh -R` to a private sshd on a loopback port, with throw-away host and user keys in the
//! setup's directory. Neither the system's sshd nor ~/.ssh is used.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::process::Command as Cmd;

use super::{public_ports, write, Tunnel};
use crate::probe::{accepts, wait_until};
use crate::procs::{free_port, run_checked, Guard, Scope};
use crate::targets::Ports;

/// The sshd binary (it must be started by its absolute path).
pub const SSHD: &str = "/usr/sbin/sshd";
/// sshd's privilege separation directory, which must exist.
const PRIVSEP_DIR: &str = "/run/sshd";
const CMD_LIMIT: Duration = Duration::from_secs(60);

/// Starts the private sshd and an `ssh -N -R` client forwarding the three public ports.
pub async fn start(dir: &Path, targets: Ports) -> Result<Tunnel> {
    keygen(&dir.join("host_key")).await?;
    keygen(&dir.join("user_key")).await?;
    let public_key = std::fs::read_to_string(dir.join("user_key.pub"))?;
    write(&dir.join("authorized_keys"), &public_key)?;
    std::fs::create_dir_all(PRIVSEP_DIR).with_context(|| format!("create {PRIVSEP_DIR}"))?;
    let port = free_port()?;
    let config = dir.join("sshd_config");
    write(&config, &sshd_config(dir, port))?;
    let mut cmd = Command::new(SSHD);
    cmd.args(["-D", "-e", "-f"]).arg(&config);
    let server = Guard::spawn("sshd", &mut cmd, dir)?;
    wait_until("private sshd", Duration::from_secs(20), || accepts(port))
        .await
        .with_context(|| format!("see {}", server.log().display()))?;
    let public = public_ports()?;
    let client = Guard::spawn("ssh", &mut ssh_command(dir, port, public, targets)?, dir)?;
    Ok(Tunnel {
        ports: public,
        server: Some(Scope::Tree(server.pid())),
        client: Some(Scope::Pid(client.pid())),
        guards: vec![client, server],
        control: None,
        _hop: None,
    })
}

async fn keygen(path: &Path) -> Result<()> {
    let mut cmd = Cmd::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "frp-bench", "-f"])
        .arg(path);
    run_checked(&mut cmd, CMD_LIMIT).await.map(drop)
}

fn sshd_config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_key\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         PidFile {d}/sshd.pid\n\
         UsePAM no\n\
         StrictModes no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\n\
         PermitRootLogin yes\n\
         AllowTcpForwarding yes\n\
         GatewayPorts no\n\
         X11Forwarding no\n\
         PrintMotd no\n\
         UseDNS no\n\
         MaxStartups 1000\n\
         LogLevel INFO\n"
    )
}

/// `ssh -N` with one `-R` per service; `-F /dev/null` keeps ~/.ssh/config and
/// /etc/ssh/ssh_config out, and no known_hosts file is read or written.
fn ssh_command(dir: &Path, port: u16, public: Ports, targets: Ports) -> Result<Command> {
    let user = current_user()?;
    let mut cmd = Command::new("ssh");
    cmd.args(["-N", "-F", "/dev/null", "-i"])
        .arg(dir.join("user_key"))
        .args(["-p", &port.to_string()]);
    for option in [
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "GlobalKnownHostsFile=/dev/null",
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "ExitOnForwardFailure=yes",
        "BatchMode=yes",
        "ControlMaster=no",
        "ControlPath=none",
        "LogLevel=ERROR",
    ] {
        cmd.args(["-o", option]);
    }
    let pairs = [
        (public.iperf, targets.iperf),
        (public.nginx, targets.nginx),
        (public.echo, targets.echo),
    ];
    for (public, target) in pairs {
        cmd.arg("-R")
            .arg(format!("127.0.0.1:{public}:127.0.0.1:{target}"));
    }
    cmd.arg(format!("{user}@127.0.0.1"));
    Ok(cmd)
}

/// The user the harness runs as: the one whose key sshd will accept.
fn current_user() -> Result<String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .context("run id -un")?;
    let user = String::from_utf8_lossy(&out.stdout).trim().to_string();
    anyhow::ensure!(!user.is_empty(), "id -un printed nothing");
    Ok(user)
}
