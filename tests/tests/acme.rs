//! Automatic HTTPS against a real ACME server (Pebble), with the real binaries and config
//! files: certificates obtained over tls-alpn-01 and http-01 and served to a TLS client that
//! trusts only Pebble's root; no order for a name no client holds; a restart that reuses the
//! stored certificate; renewal of a short-lived certificate while a connection stays open;
//! `redirectHTTPS` sparing the ACME path.

use std::net::SocketAddr;
use std::time::Duration;

use frp_tests::deployment::{free_ports, quic_table, Deployment, PUBLISHED};
use frp_tests::frpc_admin::{json_of, ApiClient, PASSWORD, USER};
use frp_tests::http::{client, client_on, http_backend, request, send, Backend, TestBody};
use frp_tests::pebble::{client_tls, Pebble, Validation};
use frp_tests::procs::{binary, Proc};
use frp_tests::{init_logs, within, LOCALHOST};
use hyper::client::conn::http1::SendRequest;
use rustls::pki_types::{CertificateDer, ServerName};

const NAME: &str = "app.example.com";

/// Pebble, frps with `[vhostHTTPS.acme]` and frpc publishing `app.example.com`.
struct Site {
    d: Deployment,
    frps: Proc,
    frpc: Proc,
    pebble: Pebble,
    http: u16,
    https: u16,
    api: ApiClient,
    _app: Backend,
}

async fn site(challenge: &str, validity_secs: Option<u64>, proxy_extra: &str) -> Site {
    binary("frps");
    let app = http_backend("app").await;
    let ports = free_ports(3);
    let (http, https, web) = (ports[0], ports[1], ports[2]);
    let pebble = Pebble::start(Validation {
        http_port: http,
        tls_port: https,
        validity_secs,
    })
    .await;
    let quic = quic_table(Duration::from_secs(5), Duration::from_secs(120));
    let frps_extra = format!(
        "{quic}\n[vhostHTTPS.acme]\nemail = \"ops@example.com\"\ndirectoryURL = \"{}\"\n\
         caFile = \"{}\"\nstorageDir = \"acme\"\nchallenge = \"{challenge}\"\n\n\
         [webServer]\nport = {web}\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        pebble.directory(),
        pebble.ca_file().display()
    );
    let frpc_extra = format!(
        "{quic}\n[[proxies]]\nname = \"app\"\ntype = \"http\"\nlocalPort = {}\n\
         customDomains = [\"{NAME}\"]\n{proxy_extra}\n",
        app.addr.port()
    );
    let d = Deployment::new(app.addr, &[], &frps_extra, &frpc_extra);
    let top = format!(
        "vhostHTTPPort = {http}\nvhostHTTPSPort = {https}\nallowDomains = [\"*.example.com\"]"
    );
    d.prepend("frps", &top);
    let (frps, frpc) = d.start_both().await;
    Site {
        frps,
        frpc,
        pebble,
        http,
        https,
        api: ApiClient::new(SocketAddr::new(LOCALHOST, web), Some((USER, PASSWORD))),
        d,
        _app: app,
    }
}

impl Site {
    /// An HTTPS connection to `name` on the vhost port, trusting only Pebble's root; the
    /// certificate frps presented, and the connection.
    async fn connect(&self, name: &str) -> (CertificateDer<'static>, SendRequest<TestBody>) {
        let root = self.pebble.issuing_root().await;
        let tls = tokio_rustls::TlsConnector::from(client_tls(vec![root]));
        let tcp = tokio::net::TcpStream::connect((LOCALHOST, self.https))
            .await
            .expect("connect");
        let server = ServerName::try_from(name.to_string()).expect("name");
        let stream = within(
            "the TLS handshake (the first waits for the order)",
            tls.connect(server, tcp),
        )
        .await
        .unwrap_or_else(|e| panic!("TLS to {name}: {e}\npebble:\n{}", self.pebble.log()));
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .expect("certificates")[0]
            .clone();
        (leaf, client_on(stream).await)
    }

    /// `GET /` over HTTPS: the backend's answer.
    async fn fetch(&self, sender: &mut SendRequest<TestBody>) -> String {
        let reply = send(sender, request("GET", NAME, "/", &[])).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// frps's `/api/v1/acme` entry for the name.
    async fn listed(&self) -> serde_json::Value {
        let all = json_of(&self.api.get("/api/v1/acme").await);
        let all = all.as_array().cloned().unwrap_or_default();
        all.into_iter()
            .find(|c| c["name"] == NAME)
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn tls_alpn_01_certificate_is_obtained_served_and_reused() {
    init_logs();
    let mut s = site("tls-alpn-01", None, "").await;
    let (leaf, mut sender) = s.connect(NAME).await;
    assert!(s.fetch(&mut sender).await.contains("app"));
    assert_eq!(frp_certs::dns_names(&leaf).expect("sans"), [NAME]);
    assert_eq!(s.pebble.orders(), 1, "{}", s.pebble.log());
    let entry = s.listed().await;
    assert!(entry["notAfter"].as_str().is_some(), "{entry}");
    assert!(entry["lastError"].is_null(), "{entry}");
    let key = s.d.path(&format!("acme/certificates/{NAME}.key"));
    assert_eq!(frp_certs::mode_of(&key), Some(0o600));

    // A second connection is served from memory: no new order.
    let (again, _) = s.connect(NAME).await;
    assert_eq!(again, leaf);

    // Names no client holds (allowed or not) are never ordered: the handshake just ends.
    for other in ["other.example.com", "app.example.org"] {
        let root = s.pebble.issuing_root().await;
        let tls = tokio_rustls::TlsConnector::from(client_tls(vec![root]));
        let tcp = tokio::net::TcpStream::connect((LOCALHOST, s.https))
            .await
            .expect("tcp");
        let name = ServerName::try_from(other.to_string()).expect("name");
        assert!(tls.connect(name, tcp).await.is_err(), "{other} is served");
    }
    assert_eq!(s.pebble.orders(), 1, "{}", s.pebble.log());

    // A restart loads the stored certificate: served at once, no order.
    s.frps.terminate();
    s.frps
        .wait_exit(Duration::from_secs(10))
        .expect("frps exits");
    s.frps = s.d.start("frps", 2);
    s.frpc.wait_log(PUBLISHED, 2).await;
    let (after, mut sender) = s.connect(NAME).await;
    assert_eq!(after, leaf, "the stored certificate");
    assert!(s.fetch(&mut sender).await.contains("app"));
    assert_eq!(s.pebble.orders(), 1, "{}", s.pebble.log());
}

#[tokio::test]
async fn http_01_with_redirect_https_spares_the_challenge_path() {
    init_logs();
    let s = site("http-01", None, "redirectHTTPS = true").await;
    let (leaf, mut sender) = s.connect(NAME).await;
    assert!(s.fetch(&mut sender).await.contains("app"));
    assert_eq!(frp_certs::dns_names(&leaf).expect("sans"), [NAME]);
    assert_eq!(s.pebble.orders(), 1);

    let vhost = SocketAddr::new(LOCALHOST, s.http);
    let mut plain = client(vhost).await;
    let moved = send(&mut plain, request("GET", NAME, "/page?q=1", &[])).await;
    assert_eq!(moved.status, 308, "{}", moved.body);
    let location = moved.headers["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(location, format!("https://{NAME}:{}/page?q=1", s.https));
    let path = "/.well-known/acme-challenge/not-a-token";
    let challenge = send(&mut plain, request("GET", NAME, path, &[])).await;
    assert_ne!(challenge.status, 308, "the ACME path is not redirected");
    // ... but only that path: dot segments out of it are redirected like any other.
    let out = "/.well-known/acme-challenge/../../page";
    let escaped = send(&mut plain, request("GET", NAME, out, &[])).await;
    assert_eq!(escaped.status, 308, "{}", escaped.body);
}

#[tokio::test]
async fn a_short_lived_certificate_is_renewed_without_dropping_connections() {
    init_logs();
    // Pebble issues for 24 s: renewal is due after 16.
    let s = site("tls-alpn-01", Some(24), "").await;
    let (first, mut open) = s.connect(NAME).await;
    assert!(s.fetch(&mut open).await.contains("app"));
    let renewed = within("the certificate is renewed", async {
        loop {
            let entry = s.listed().await;
            if s.pebble.orders() >= 2 && entry["lastError"].is_null() {
                let (leaf, _) = s.connect(NAME).await;
                if leaf != first {
                    return leaf;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    assert_ne!(renewed, first);
    // The connection opened before the renewal goes on.
    assert!(s.fetch(&mut open).await.contains("app"));
}
