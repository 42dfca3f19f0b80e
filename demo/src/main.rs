//! `frp-demo`: the whole tunnel on one machine with built-in defaults.
//!
//! Makes a throw-away CA and certificates in memory, starts frps and frpc in this process,
//! publishes a small local web service (or `--local HOST:PORT`) through the tunnel, prints how
//! to reach it, and runs until Ctrl-C, then shuts both sides down gracefully.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use frp_certs::Ca;
use frps::policy::{PortPolicy, PortSet};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Run frps and frpc on this machine and publish a service through the tunnel.
#[derive(Debug, Parser)]
#[command(name = "frp-demo", version, about)]
struct Args {
    /// Publish this local TCP service instead of the built-in demo page (e.g. 127.0.0.1:22).
    #[arg(long, value_name = "HOST:PORT")]
    local: Option<SocketAddr>,
    /// First public port to try; the server picks the next free one from here to +100.
    #[arg(long, default_value_t = 6000)]
    public_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    frp_runtime::logging::init(frp_runtime::logging::LogFormat::Text);
    let cancel = CancellationToken::new();
    frp_runtime::shutdown::cancel_on_signals(cancel.clone())?;

    let local = match args.local {
        Some(addr) => addr,
        None => demo_service(cancel.clone()).await?,
    };
    let ca = Ca::generate("frp-demo throw-away CA")?;
    let server = frps::Server::bind(server_settings(&ca, args.public_port)?)?;
    let server_addr = server.local_addr()?;
    let server_task = tokio::spawn(server.run(cancel.clone()));

    let client = frpc::Client::new(client_settings(&ca, server_addr, local)?)?;
    let mut status = client.status();
    let client_task = tokio::spawn(client.run(cancel.clone()));
    let public = tokio::select! {
        s = status.wait_for(|s| s.bound("demo").is_some() || s.refused("demo").is_some()) => s?.clone(),
        _ = cancel.cancelled() => return Ok(()),
    };
    match public.bound("demo") {
        Some(addr) => print_banner(server_addr, local, addr, args.local.is_none()),
        None => eprintln!(
            "the server refused the demo proxy: {:?}",
            public.refused("demo")
        ),
    }
    client_task.await?.context("frpc")?;
    server_task.await?.context("frps")?;
    Ok(())
}

fn server_settings(ca: &Ca, first_port: u16) -> anyhow::Result<frps::ServerSettings> {
    let cert = ca.issue_server(&["localhost".into(), "127.0.0.1".into()])?;
    let tls =
        frp_certs::server_tls_config(vec![cert.cert_der()], cert.key_der(), vec![ca.cert_der()])?;
    let mut s = frps::ServerSettings::new(Arc::new(tls));
    s.bind = (Ipv4Addr::LOCALHOST, 0).into();
    s.proxy_bind_ip = Ipv4Addr::LOCALHOST.into();
    let last = first_port.saturating_add(100);
    s.policy = PortPolicy {
        global: PortSet::from_ranges([first_port..=last]),
        ..Default::default()
    };
    s.grace = std::time::Duration::from_secs(3);
    Ok(s)
}

fn client_settings(
    ca: &Ca,
    server: SocketAddr,
    local: SocketAddr,
) -> anyhow::Result<frpc::ClientSettings> {
    let cert = ca.issue_client("demo-node")?;
    let tls =
        frp_certs::client_tls_config(vec![cert.cert_der()], cert.key_der(), vec![ca.cert_der()])?;
    let mut s = frpc::ClientSettings::new(server.ip().to_string(), server.port(), Arc::new(tls));
    s.server_name = "localhost".into();
    s.grace = std::time::Duration::from_secs(3);
    s.proxies = vec![frpc::LocalProxy {
        name: frp_proto::ProxyName::new("demo")?,
        kind: frp_proto::ProxyKind::Tcp,
        local_host: local.ip().to_string(),
        local_port: local.port(),
        remote_port: 0,
        vhost: Default::default(),
        idle_timeout: None,
    }];
    Ok(s)
}

fn print_banner(server: SocketAddr, local: SocketAddr, public: SocketAddr, builtin: bool) {
    println!();
    println!("  frps  listening for clients on udp {server} (QUIC, mutual TLS)");
    println!("  frpc  connected as 'demo-node', publishing {local}");
    println!("  public address: {public}");
    println!();
    if builtin {
        println!("  try:  curl http://{public}/");
    } else {
        println!(
            "  try:  nc {} {}   (or ssh -p {} user@{} for an sshd)",
            public.ip(),
            public.port(),
            public.port(),
            public.ip()
        );
    }
    println!("  stop: Ctrl-C");
    println!();
}

/// A tiny web page on 127.0.0.1:0 to publish: it answers every request with one line.
async fn demo_service(cancel: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (mut tcp, peer) = tokio::select! {
                _ = cancel.cancelled() => return,
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let body = format!(
                    "hello from behind the tunnel (you are {peer} as seen by the service)\n"
                );
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(reply.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    Ok(addr)
}
