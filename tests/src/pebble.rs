//! Pebble, Let's Encrypt's test ACME server (Debian's `pebble` package), with its DNS
//! companion `pebble-challtestsrv` answering every name with 127.0.0.1, so Pebble validates
//! challenges against frps on loopback.
//!
//! Pebble serves its ACME API over HTTPS with a certificate from a CA made here ([`ca_file`]
//! is what frps's `caFile` names); the roots it issues from are fetched from its management
//! API ([`Pebble::issuing_root`]). Every port is chosen free; both processes are killed
//! when the [`Pebble`] is dropped. Pebble's own output is kept, to count the orders it got.
//!
//! [`ca_file`]: Pebble::ca_file

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::deployment::free_ports;
use crate::{installed, within, LOCALHOST};

const WHY: &str = "the ACME tests use Pebble";
const INSTALL: &str = "apt install pebble";

/// A running Pebble and its DNS server.
#[derive(Debug)]
pub struct Pebble {
    pebble: Child,
    dns: Child,
    dir: tempfile::TempDir,
    /// The ACME API's address (`https://127.0.0.1:PORT/dir` is the directory).
    pub acme: SocketAddr,
    management: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

/// Where Pebble sends its validations: frps's vhost ports.
#[derive(Clone, Copy, Debug)]
pub struct Validation {
    /// `vhostHTTPPort` (http-01).
    pub http_port: u16,
    /// `vhostHTTPSPort` (tls-alpn-01).
    pub tls_port: u16,
    /// The lifetime of the certificates it issues, seconds (`None`: Pebble's default).
    pub validity_secs: Option<u64>,
}

impl Pebble {
    /// Starts Pebble validating against `v`, and waits until its directory answers.
    ///
    /// # Panics
    /// With a clear message when `pebble` is not installed (`apt install pebble`).
    pub async fn start(v: Validation) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = frp_certs::Ca::generate("pebble test CA").expect("ca");
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        let server = ca.issue_server(&names).expect("pebble's certificate");
        let path = |n: &str| dir.path().join(n);
        std::fs::write(path("ca.crt"), ca.cert_pem()).expect("write ca");
        std::fs::write(path("pebble.crt"), server.cert_pem()).expect("write cert");
        std::fs::write(path("pebble.key"), server.key_pem()).expect("write key");
        let ports = free_ports(3);
        let acme = SocketAddr::new(LOCALHOST, ports[0]);
        let management = SocketAddr::new(LOCALHOST, ports[1]);
        let dns = SocketAddr::new(LOCALHOST, ports[2]);
        let mut config = serde_json::json!({"pebble": {
            "listenAddress": acme.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": path("pebble.crt"),
            "privateKey": path("pebble.key"),
            "httpPort": v.http_port,
            "tlsPort": v.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some(secs) = v.validity_secs {
            config["pebble"]["certificateValidityPeriod"] = secs.into();
        }
        std::fs::write(path("pebble.json"), config.to_string()).expect("write config");
        let dns = start_dns(dns, &dir);
        let pebble = Command::new(installed("pebble", WHY, INSTALL))
            .arg("-config")
            .arg(path("pebble.json"))
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{}", ports[2]))
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(path("pebble.log")).expect("log"))
            .stderr(std::fs::File::create(path("pebble.err")).expect("log"))
            .spawn()
            .expect("start pebble");
        let tls = client_tls(vec![ca.cert_der()]);
        let p = Self {
            pebble,
            dns,
            dir,
            acme,
            management,
            tls,
        };
        within("pebble answers", async {
            while p.get(p.acme, "/dir").await.map(|(s, _)| s) != Some(200) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        p
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.acme)
    }

    /// The CA certificate Pebble's HTTPS API is served with (frps's `caFile`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The root Pebble issues certificates under (it makes a new one at every start).
    pub async fn issuing_root(&self) -> CertificateDer<'static> {
        let (status, pem) = self
            .get(self.management, "/roots/0")
            .await
            .expect("pebble management answers");
        assert_eq!(status, 200, "{pem}");
        frp_certs_pem(&pem)
    }

    /// How many orders Pebble has received (from its log).
    pub fn orders(&self) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("POST /order-plz"))
            .count()
    }

    /// Pebble's log so far, for failure messages.
    pub fn log(&self) -> String {
        let out = std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.path().join("pebble.err")).unwrap_or_default();
        format!("{out}\n{err}")
    }

    async fn get(&self, addr: SocketAddr, path: &str) -> Option<(u16, String)> {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let name = ServerName::try_from("localhost").ok()?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls));
        let stream = tls.connect(name, tcp).await.ok()?;
        let mut sender = crate::http::client_on(stream).await;
        let req = crate::http::request("GET", &addr.to_string(), path, &[]);
        let resp = sender.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).to_string()))
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `pebble-challtestsrv` as a DNS server on `addr` answering A queries with 127.0.0.1 and
/// no AAAA (frps listens on IPv4 loopback); its other servers are off.
fn start_dns(addr: SocketAddr, dir: &tempfile::TempDir) -> Child {
    let management = free_ports(1)[0];
    Command::new(installed("pebble-challtestsrv", WHY, INSTALL))
        .args(["-dns01", &addr.to_string(), "-defaultIPv4", "127.0.0.1"])
        .args([
            "-defaultIPv6",
            "",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
        ])
        .args(["-management", &format!("127.0.0.1:{management}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("dns.log")).expect("log"))
        .spawn()
        .expect("start pebble-challtestsrv")
}

/// A TLS client config trusting exactly `roots`.
pub fn client_tls(roots: Vec<CertificateDer<'static>>) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    Arc::new(config)
}

fn frp_certs_pem(pem: &str) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate")
}
