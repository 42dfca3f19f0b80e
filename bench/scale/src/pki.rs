//! The run's PKI: a CA and server certificate on disk for frps (as `frps ca init` writes them),
//! and one client certificate per client, issued at run time by that CA.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use frp_certs::{Ca, CaPaths};
use frp_proto::{ProxyKind, ProxyName};
use frpc::{ClientSettings, LocalProxy};

/// Streams frps may open toward a client that publishes nothing. frpc's default (10,000)
/// makes quinn keep ~70 bytes per stream in the *client* (~700 KiB each, 7 GiB for 10,000
/// clients in this one process); frps's memory does not depend on it.
pub const IDLE_CLIENT_STREAMS: u32 = 16;

/// The CA and the paths of frps's files.
#[derive(Debug)]
pub struct Pki {
    ca: Ca,
    /// The files frps.toml points at.
    pub paths: CaPaths,
}

impl Pki {
    /// Writes a fresh CA and a server certificate for localhost / 127.0.0.1 into `dir`.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        let paths = frp_certs::init_ca_dir(dir, &names, false)?;
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let ca = Ca::from_pem(&read(&paths.ca_cert)?, &read(&paths.ca_key)?)?;
        Ok(Self { ca, paths })
    }

    /// Settings of client `index` (identity `scale-NNNNN`) for frps at 127.0.0.1:`port`, with a
    /// certificate issued now; a publisher asks for one tcp proxy. Everything else, the
    /// reconnect backoff included, is frpc's default.
    pub fn client(
        &self,
        index: usize,
        port: u16,
        publisher: bool,
    ) -> anyhow::Result<ClientSettings> {
        let issued = self.ca.issue_client(&format!("scale-{index:05}"))?;
        let tls = frp_certs::client_tls_config(
            vec![issued.cert_der()],
            issued.key_der(),
            vec![self.ca.cert_der()],
        )?;
        let mut s = ClientSettings::new("127.0.0.1", port, Arc::new(tls));
        s.server_name = "localhost".into();
        if publisher {
            s.proxies = vec![tcp_proxy()?];
        } else {
            s.quic.max_incoming_streams = IDLE_CLIENT_STREAMS;
        }
        Ok(s)
    }
}

/// A tcp proxy whose public port frps picks from `allowPorts`. Its local service (the
/// discard port) is never dialled: nobody connects to the public port.
fn tcp_proxy() -> anyhow::Result<LocalProxy> {
    Ok(LocalProxy {
        name: ProxyName::new("svc")?,
        kind: ProxyKind::Tcp,
        local_host: "127.0.0.1".into(),
        local_port: 9,
        remote_port: 0,
        vhost: Default::default(),
        idle_timeout: None,
    })
}
