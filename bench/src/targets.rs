//! The services every peer publishes: nginx serving a 1 KiB file, an iperf3 server, and the
//! echo target of the idle connections.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::probe::{accepts, echoes, serves_1k, wait_until};
use crate::procs::{free_port, Guard};

/// How long a target may take to accept connections.
const READY: Duration = Duration::from_secs(20);

/// The loopback ports of the three services.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub iperf: u16,
    pub nginx: u16,
    pub echo: u16,
}

/// The running services.
#[derive(Debug)]
pub struct Targets {
    pub ports: Ports,
    dir: std::path::PathBuf,
    iperf: Option<Guard>,
    _nginx: Guard,
    _echo: Guard,
}

impl Targets {
    /// Starts all three in `dir` and waits until each serves; nginx takes `held` idle
    /// connections on top of the load generators'.
    pub async fn start(dir: &Path, held: usize) -> Result<Self> {
        let dir = dir.join("targets");
        std::fs::create_dir_all(&dir)?;
        let ports = Ports {
            iperf: free_port()?,
            nginx: free_port()?,
            echo: free_port()?,
        };
        let nginx = start_nginx(&dir, ports.nginx, held).await?;
        let iperf = start_iperf(&dir, ports.iperf).await?;
        let echo = start_echo(&dir, ports.echo).await?;
        Ok(Self {
            ports,
            dir,
            iperf: Some(iperf),
            _nginx: nginx,
            _echo: echo,
        })
    }

    /// Replaces the iperf3 server (on the same port) after a failed test, which can leave it
    /// waiting for a test that never completes.
    pub async fn restart_iperf(&mut self) -> Result<()> {
        self.iperf = None; // stopped first: the new one binds the same port
        self.iperf = Some(start_iperf(&self.dir, self.ports.iperf).await?);
        Ok(())
    }
}

async fn start_nginx(dir: &Path, port: u16, held: usize) -> Result<Guard> {
    let root = dir.join("www");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("1k"), vec![b'a'; 1024])?;
    std::fs::create_dir_all(dir.join("nginx-tmp"))?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir, port, held))?;
    let mut cmd = Command::new("nginx");
    cmd.arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .args(["-g", "daemon off;"]);
    let mut guard = Guard::spawn("nginx", &mut cmd, dir)?;
    wait_until("nginx", READY, || serves_1k(port)).await?;
    guard.check_running()?;
    Ok(guard)
}

/// nginx's configuration: room for `held` idle keep-alive connections besides wrk's, and a
/// keep-alive timeout (default 75 s) long enough that none of them is closed while held.
fn nginx_conf(dir: &Path, port: u16, held: usize) -> String {
    let d = dir.display();
    let conns = held + 4096;
    let files = conns + 100;
    format!(
        "worker_processes 1;\n\
         worker_rlimit_nofile {files};\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/nginx-error.log;\n\
         events {{ worker_connections {conns}; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 keepalive_requests 1000000;\n\
         \x20 keepalive_timeout 3600s;\n\
         \x20 client_body_temp_path {d}/nginx-tmp;\n\
         \x20 proxy_temp_path {d}/nginx-tmp;\n\
         \x20 fastcgi_temp_path {d}/nginx-tmp;\n\
         \x20 uwsgi_temp_path {d}/nginx-tmp;\n\
         \x20 scgi_temp_path {d}/nginx-tmp;\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port};\n\
         \x20   root {d}/www;\n\
         \x20   location / {{ }}\n\
         \x20 }}\n\
         }}\n"
    )
}

/// Starts an iperf3 server on loopback `port` and waits until it accepts.
pub(crate) async fn start_iperf(dir: &Path, port: u16) -> Result<Guard> {
    let mut cmd = Command::new("iperf3");
    cmd.args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()]);
    let mut guard = Guard::spawn("iperf3-server", &mut cmd, dir)?;
    wait_until("iperf3 server", READY, || accepts(port)).await?;
    guard.check_running()?;
    Ok(guard)
}

async fn start_echo(dir: &Path, port: u16) -> Result<Guard> {
    let exe = std::env::current_exe().context("path of the harness binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["echo-target", "--listen", &format!("127.0.0.1:{port}")]);
    let mut guard = Guard::spawn("echo-target", &mut cmd, dir)?;
    wait_until("echo target", READY, || echoes(port)).await?;
    guard.check_running()?;
    Ok(guard)
}
