//! The test suite's Kubernetes apiserver as a program, to try kubectl through the tunnel on
//! one machine without a cluster (the README's walk-through uses it):
//!
//! ```sh
//! cargo run -p frp-tests --example kube-apiserver -- --listen 127.0.0.1:16443 \
//!     --kubeconfig admin.conf --san cluster1.kube.example.com
//! ```
//!
//! It writes the cluster's own kubeconfig (as kubeadm's admin.conf: its address, CA and an
//! admin client certificate) and serves until Ctrl-C. Each `--san` is added to the
//! apiserver certificate's names, as kubeadm's `certSANs` would.

use std::net::SocketAddr;
use std::time::Duration;

use frp_tests::kube::{KubePki, Options, TestApiserver};

fn main() -> anyhow::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:16443".parse()?;
    let mut kubeconfig = String::from("admin.conf");
    let mut sans = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--listen" => listen = value()?.parse()?,
            "--kubeconfig" => kubeconfig = value()?,
            "--san" => sans.push(value()?),
            other => anyhow::bail!(
                "unknown argument {other}: --listen ADDR, --kubeconfig FILE, --san NAME"
            ),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
        let opts = Options {
            log_interval: Duration::from_secs(1),
            ..Options::default()
        };
        let api = TestApiserver::start_on(listen, KubePki::new(&sans), opts).await;
        std::fs::write(&kubeconfig, api.kubeconfig())?;
        println!(
            "apiserver on https://{}, kubeconfig in {kubeconfig}; Ctrl-C stops it",
            api.addr
        );
        tokio::signal::ctrl_c().await?;
        api.stop().await;
        Ok(())
    })
}
