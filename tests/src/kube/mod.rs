//! A test Kubernetes API server for the real `kubectl`: hyper over rustls, its own CA, client
//! certificates required.
//!
//! It speaks enough of the API for the commands the kubectl tests run: discovery (`/version`,
//! `/api`, `/apis`, `/api/v1`), namespaces and pods (as lists, single objects and server-side
//! tables), a watch whose events are separated by silent gaps, `logs -f` as a stream of lines
//! that lasts as long as [`Options::log_lines`] times [`Options::log_interval`], and
//! `exec` over WebSocket (`v5.channel.k8s.io`, see [`exec`]). SPDY upgrades are refused, so an
//! exec that works went over WebSocket.
//!
//! Every request is recorded as a [`Seen`] with the client certificate that authenticated it,
//! so a test can prove that client-certificate authentication reached the apiserver untouched
//! through the tunnel. Only the identity [`ADMIN`] is authorised; any other gets `403`.

pub mod exec;
pub mod kubectl;
pub mod manifests;
pub mod objects;
pub mod rig;
mod routes;
mod streams;

pub use streams::log_line;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use frp_certs::{Ca, Issued};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::{within, LOCALHOST};

/// The identity (client certificate common name) the apiserver authorises.
pub const ADMIN: &str = "kube-admin";

/// Names every apiserver certificate here carries, as kubeadm's do (plus 127.0.0.1, where the
/// test apiserver listens).
pub const BASE_SANS: &[&str] = &["kubernetes", "kubernetes.default.svc", "127.0.0.1"];

/// The private cluster's PKI: its CA, the apiserver's certificate and the admin's.
#[derive(Debug)]
pub struct KubePki {
    /// The cluster CA (not the tunnel's).
    pub ca: Ca,
    /// The apiserver's serving certificate.
    pub server: Issued,
    /// The client certificate of [`ADMIN`].
    pub admin: Issued,
}

impl KubePki {
    /// A fresh cluster CA and an apiserver certificate for [`BASE_SANS`] plus `extra_sans`
    /// (kubeadm's `certSANs`).
    pub fn new(extra_sans: &[&str]) -> Self {
        let ca = Ca::generate("kubernetes").expect("cluster ca");
        let names: Vec<String> = BASE_SANS
            .iter()
            .chain(extra_sans)
            .map(|s| s.to_string())
            .collect();
        let server = ca.issue_server(&names).expect("apiserver cert");
        let admin = ca.issue_client(ADMIN).expect("admin cert");
        Self { ca, server, admin }
    }
}

/// Timing of the streams the apiserver serves.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Silence between two watch events.
    pub watch_gap: Duration,
    /// Lines of `logs -f`.
    pub log_lines: u32,
    /// Silence between two lines of `logs -f`.
    pub log_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            watch_gap: Duration::from_secs(5),
            log_lines: 7,
            log_interval: Duration::from_secs(5),
        }
    }
}

/// One request as the apiserver saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Common name of the client certificate the TLS handshake verified.
    pub user: String,
    /// SHA-256 fingerprint of that certificate.
    pub cert_fingerprint: String,
    /// The SNI the client sent, if any.
    pub sni: Option<String>,
    /// What an upgrade request became: `websocket v5.channel.k8s.io`, `refused SPDY/3.1`, ...
    pub upgrade: Option<String>,
}

/// What every connection handler shares.
#[derive(Debug)]
struct Shared {
    opts: Options,
    seen: Mutex<Vec<Seen>>,
}

impl Shared {
    fn record(&self, seen: Seen) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(seen);
    }
}

/// Who is on the other end of one TLS connection.
#[derive(Clone, Debug)]
struct Peer {
    user: String,
    fingerprint: String,
    sni: Option<String>,
}

/// A running test apiserver on 127.0.0.1:0.
#[derive(Debug)]
pub struct TestApiserver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its PKI.
    pub pki: KubePki,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl TestApiserver {
    /// Starts an apiserver presenting `pki.server` and requiring client certificates from
    /// `pki.ca`.
    pub async fn start(pki: KubePki, opts: Options) -> Self {
        Self::start_on(SocketAddr::new(LOCALHOST, 0), pki, opts).await
    }

    /// Like [`TestApiserver::start`], listening on `addr`.
    pub async fn start_on(addr: SocketAddr, pki: KubePki, opts: Options) -> Self {
        let mut tls = frp_certs::server_tls_config(
            vec![pki.server.cert_der()],
            pki.server.key_der(),
            vec![pki.ca.cert_der()],
        )
        .expect("apiserver tls");
        // HTTP/1.1 only, as an apiserver behind a proxy that does not speak h2 would be:
        // WebSocket upgrades need it anyway.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind(addr).await.expect("bind apiserver");
        let addr = listener.local_addr().expect("apiserver addr");
        let shared = Arc::new(Shared {
            opts,
            seen: Mutex::default(),
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            shared.clone(),
            cancel.clone(),
        ));
        Self {
            addr,
            pki,
            shared,
            cancel,
            task,
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The private cluster's own kubeconfig, as `kubeadm` writes `admin.conf`: the apiserver's
    /// address, the cluster CA and the admin's certificate and key, embedded.
    pub fn kubeconfig(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://{addr}\n  name: private\ncontexts:\n- context:\n    cluster: private\n    user: {ADMIN}\n  name: {ADMIN}@private\ncurrent-context: {ADMIN}@private\npreferences: {{}}\nusers:\n- name: {ADMIN}\n  user:\n    client-certificate-data: {crt}\n    client-key-data: {key}\n",
            ca = b64(self.pki.ca.cert_pem()),
            addr = self.addr,
            crt = b64(self.pki.admin.cert_pem()),
            key = b64(self.pki.admin.key_pem()),
        )
    }

    /// Stops accepting and waits for the accept loop (open streams end with the runtime).
    pub async fn stop(self) {
        self.cancel.cancel();
        within("apiserver stop", self.task)
            .await
            .expect("apiserver task");
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    loop {
        let tcp = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
        };
        let (acceptor, shared, cancel) = (acceptor.clone(), shared.clone(), cancel.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(Ok(tls)) = tokio::time::timeout(crate::TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let Some(peer) = peer_of(tls.get_ref().1) else {
                return;
            };
            let service = service_fn(move |req| routes::handle(req, shared.clone(), peer.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// The verified client certificate's identity and fingerprint, and the SNI.
fn peer_of(conn: &rustls::ServerConnection) -> Option<Peer> {
    let cert = conn.peer_certificates()?.first()?;
    Some(Peer {
        user: frp_certs::peer_identity(cert).ok()?,
        fingerprint: frp_certs::fingerprint(cert),
        sni: conn.server_name().map(str::to_string),
    })
}
