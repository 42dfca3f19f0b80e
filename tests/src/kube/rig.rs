//! A private cluster behind the tunnel: the test apiserver, an frpc publishing it and an frps,
//! in one of the two routing modes, with a kubeconfig for the tunneled endpoint written by
//! `frpc kubeconfig`'s library from the cluster's own kubeconfig.
//!
//! Both ends use a 1 s QUIC keep-alive and a 3 s idle timeout, so the apiserver's silent gaps
//! (5 s) outlast the idle timeout: only the keep-alives hold the connection open.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use frp_runtime::QuicTuning;
use frpc::kubeconfig::{rewrite, Route, Tunnel};

use super::kubectl::Kubectl;
use super::{KubePki, Options, TestApiserver};
use crate::relay::Relay;
use crate::{
    client_settings, https_proxy, server_settings, tcp_proxy, vhost_settings, Pki, TestClient,
    TestServer,
};

/// The name the https mode routes by (and kubectl verifies the apiserver against).
pub const SNI_NAME: &str = "kube1.example.test";
/// Name of the proxy publishing the apiserver.
pub const PROXY: &str = "kube-apiserver";

/// How frps reaches the apiserver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A tcp proxy: a public port of its own.
    Tcp,
    /// An https proxy on `vhostHTTPSPort`, chosen by SNI.
    Sni,
}

/// Everything of one tunneled cluster.
#[derive(Debug)]
pub struct KubeRig {
    /// frps.
    pub server: TestServer,
    /// frpc, publishing the apiserver.
    pub client: TestClient,
    /// The private cluster's apiserver.
    pub api: TestApiserver,
    /// The relay between frpc and frps, when asked for.
    pub relay: Option<Relay>,
    /// The tunneled endpoint (`https://localhost:PORT`).
    pub tunnel: Tunnel,
}

fn quick_keepalive(q: &mut QuicTuning) {
    q.keepalive = Duration::from_secs(1);
    q.idle_timeout = Duration::from_secs(3);
}

impl KubeRig {
    /// Starts an apiserver (whose certificate lists `extra_sans` besides the usual names), frps,
    /// and frpc publishing it in `mode`; with `relay`, frpc reaches frps through a [`Relay`].
    pub async fn start(mode: Mode, extra_sans: &[&str], relay: bool) -> Self {
        crate::init_logs();
        let api = TestApiserver::start(KubePki::new(extra_sans), Options::default()).await;
        let pki = Pki::new();
        let mut settings = match mode {
            Mode::Tcp => server_settings(&pki, 1024..=65535),
            Mode::Sni => vhost_settings(&pki, &["*.example.test"]),
        };
        quick_keepalive(&mut settings.quic);
        let server = TestServer::start(settings);
        let relay = relay.then(|| Relay::start(server.addr).expect("relay"));
        let target = relay.as_ref().map_or(server.addr, Relay::addr);
        let proxy = match mode {
            Mode::Tcp => tcp_proxy(PROXY, api.addr, 0),
            Mode::Sni => https_proxy(PROXY, api.addr, &[SNI_NAME]),
        };
        let mut settings = client_settings(pki.client_tls("cluster1"), target, vec![proxy]);
        quick_keepalive(&mut settings.quic);
        let mut client = TestClient::start(settings);
        let public: SocketAddr = client.bound(PROXY).await;
        // `localhost` is not among the apiserver's names: in tcp mode only tls-server-name
        // makes verification pass.
        let tunnel = Tunnel {
            server: format!("https://localhost:{}", public.port()),
            route: match mode {
                Mode::Tcp => Route::Tcp(None),
                Mode::Sni => Route::Sni(SNI_NAME.to_string()),
            },
        };
        Self {
            server,
            client,
            api,
            relay,
            tunnel,
        }
    }

    /// The tunneled kubeconfig, as `frpc kubeconfig` writes it from the cluster's own.
    pub fn kubeconfig(&self) -> String {
        let own = self.api.kubeconfig();
        rewrite(&own, Path::new("/"), None, &self.tunnel, None)
            .expect("frpc kubeconfig")
            .yaml
    }

    /// kubectl with [`KubeRig::kubeconfig`].
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(&self.kubeconfig())
    }

    /// Stops frpc, frps and the apiserver.
    pub async fn stop(self) {
        self.client.stop().await.expect("client stop");
        self.server.stop().await.expect("server stop");
        self.api.stop().await;
    }
}
