//! frps as an operator runs it with its admin API on: the real binaries on a [`Deployment`]
//! whose frps.toml has `[webServer]` (with [`USER`] / [`PASSWORD`]), `enablePrometheus` and a
//! revocation list, one frpc (`node1`) publishing an echo service on each port and a second
//! one (`node2`) publishing nothing.

use std::net::SocketAddr;
use std::time::Duration;

use crate::backends::echo_server;
use crate::deployment::{free_ports, quic_table, Deployment, CONNECTED, PUBLISHED};
use crate::frpc_admin::{json_of, ApiClient, PASSWORD, USER};
use crate::procs::{binary, Proc};
use crate::{within, LOCALHOST};

/// Keep-alive and idle timeout: long, so nothing here ends by timing out.
const KEEPALIVE: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(120);

/// The running deployment.
#[derive(Debug)]
pub struct Rig {
    /// The files.
    pub d: Deployment,
    /// frps.
    pub frps: Proc,
    /// frpc `node1`, publishing `web0`... on [`Rig::ports`].
    pub node1: Proc,
    /// frpc `node2`, publishing nothing.
    pub node2: Proc,
    /// frps's admin API, with the right credentials.
    pub api: ApiClient,
    /// node1's admin API (its `[webServer]` on loopback, metrics on, no credentials).
    pub node1_api: ApiClient,
    /// The public ports, one per proxy of node1.
    pub ports: Vec<u16>,
    _echo: tokio::task::JoinHandle<()>,
}

/// Starts frps, node1 (publishing an echo service on `n` ports) and node2, and waits until
/// frps's API lists both clients.
pub async fn rig(n: usize) -> Rig {
    binary("frps");
    let (echo, _echo) = echo_server().await;
    let ports = free_ports(n);
    let web = free_ports(2);
    let quic = quic_table(KEEPALIVE, IDLE);
    let frps_web = format!(
        "{quic}\n[webServer]\naddr = \"127.0.0.1\"\nport = {}\nuser = \"{USER}\"\n\
         password = \"{PASSWORD}\"\n",
        web[0]
    );
    let frpc_web = format!(
        "{quic}\n[webServer]\naddr = \"127.0.0.1\"\nport = {}\n",
        web[1]
    );
    let d = Deployment::new(echo, &ports, &frps_web, &frpc_web);
    std::fs::write(d.path("revoked.txt"), "# none yet\n").expect("write list");
    d.prepend(
        "frps",
        "enablePrometheus = true\nrevocationFile = \"revoked.txt\"",
    );
    frp_certs::issue_client_in_dir(&d.path("certs"), "node2", false).expect("issue node2");
    let node2 = std::fs::read_to_string(d.path("frpc.toml")).expect("frpc.toml");
    let node2 = node2.replace("node1", "node2");
    let node2 = node2.split("[webServer]").next().expect("head");
    std::fs::write(d.path("frpc-node2.toml"), node2).expect("write node2");
    d.prepend("frpc", "enablePrometheus = true");
    let frps = d.start("frps", 1);
    let mut node1 = d.start("frpc", 1);
    let mut node2 = d.start_with("frpc", "frpc-node2", 1);
    node1.wait_log(PUBLISHED, n).await;
    node2.wait_log(CONNECTED, 1).await;
    let api = ApiClient::new(SocketAddr::new(LOCALHOST, web[0]), Some((USER, PASSWORD)));
    let rig = Rig {
        d,
        frps,
        node1,
        node2,
        api,
        node1_api: ApiClient::new(SocketAddr::new(LOCALHOST, web[1]), None),
        ports,
        _echo,
    };
    rig.until_clients(2).await;
    rig
}

impl Rig {
    /// `GET path` on frps's API, answered `200`, as JSON.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let r = self.api.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        json_of(&r)
    }

    /// Waits until frps's API lists `n` clients.
    pub async fn until_clients(&self, n: usize) {
        within(&format!("{n} clients listed"), async {
            loop {
                let r = self.api.get("/api/v1/clients").await;
                if r.status == 200 && json_of(&r).as_array().map(Vec::len) == Some(n) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
}
