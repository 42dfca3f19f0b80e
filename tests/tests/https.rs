//! `vhostHTTPSPort` end to end: https proxies chosen by SNI with TLS kept end to end, TLS
//! terminated at frps for an http proxy, and connections that cannot be routed closed without
//! holding the accept loop.

use std::sync::Arc;

use frp_proto::VhostSpec;
use frp_tests::http::{client_on, http_backend, request, send, tls_connect, tls_service};
use frp_tests::{
    http_proxy, https_proxy, init_logs, vhost_settings, within, Pki, TestClient, TestServer,
};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// GET / over TLS to `addr` with SNI `name`, trusting `root`; returns the backend's name.
async fn backend_over_tls(
    addr: std::net::SocketAddr,
    name: &str,
    root: CertificateDer<'static>,
) -> String {
    let tls = tls_connect(addr, name, vec![root])
        .await
        .expect("tls handshake");
    let mut c = client_on(tls).await;
    let r = send(&mut c, request("GET", name, "/", &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.field("backend").unwrap_or_default().to_string()
}

/// Whether a connection that sent `bytes` is closed by the server (EOF or reset) without an
/// answer.
async fn closed_after(addr: std::net::SocketAddr, bytes: &[u8]) -> bool {
    let mut tcp = within("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    within("write", tcp.write_all(bytes)).await.expect("write");
    let mut buf = [0u8; 64];
    matches!(within("close", tcp.read(&mut buf)).await, Ok(0) | Err(_))
}

#[tokio::test]
async fn https_proxies_are_chosen_by_sni_and_tls_stays_end_to_end() {
    init_logs();
    let pki = Pki::new();
    // The services' own CA: frps never holds their keys and the client trusts only it.
    let services = Pki::new();
    let b1 = tls_service(&services.ca, "k1.example.com").await;
    let b2 = tls_service(&services.ca, "k2.example.com").await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let proxies = vec![
        https_proxy("kube1", b1.addr, &["k1.example.com"]),
        https_proxy("kube2", b2.addr, &["k2.example.com"]),
    ];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let https = c.bound("kube1").await;
    assert_eq!(Some(https), server.https);
    c.bound("kube2").await;
    let root = services.ca.cert_der();
    assert_eq!(
        backend_over_tls(https, "k1.example.com", root.clone()).await,
        "k1.example.com"
    );
    assert_eq!(
        backend_over_tls(https, "k2.example.com", root.clone()).await,
        "k2.example.com"
    );
    assert_eq!(
        backend_over_tls(https, "k1.example.com", root.clone()).await,
        "k1.example.com"
    );
    // The deployment's CA did not sign the services' certificates: a client trusting it fails.
    assert!(
        tls_connect(https, "k1.example.com", vec![pki.ca.cert_der()])
            .await
            .is_err()
    );
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn tls_is_terminated_at_frps_for_an_http_proxy_with_a_certificate() {
    init_logs();
    let pki = Pki::new();
    let app = http_backend("app").await;
    let mut settings = vhost_settings(&pki, &["*.example.com"]);
    let cert = pki
        .ca
        .issue_server(&["web.example.com".into()])
        .expect("cert");
    let tls =
        frp_certs::public_server_tls_config(vec![cert.cert_der()], cert.key_der()).expect("tls");
    let name = frps::domains::DomainPattern::parse("web.example.com").expect("name");
    settings.vhost.certificates.add(&[name], Arc::new(tls));
    let mut server = TestServer::start(settings);
    let proxies = vec![http_proxy(
        "web",
        app.addr,
        &["web.example.com"],
        VhostSpec::default(),
    )];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    c.bound("web").await;
    let https = server.https.expect("https port");

    let tls = tls_connect(https, "web.example.com", vec![pki.ca.cert_der()])
        .await
        .expect("handshake");
    let mut conn = client_on(tls).await;
    let r = send(&mut conn, request("GET", "web.example.com", "/hello", &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.field("backend"), Some("app"));
    assert_eq!(r.field("header:x-forwarded-proto"), Some("https"));
    let e = server.next_access().await;
    assert_eq!(
        (e.scheme, e.path.as_str(), e.status),
        ("https", "/hello", 200)
    );
    // Same connection, another host: the TLS was for web.example.com only.
    let r = send(&mut conn, request("GET", "other.example.com", "/", &[])).await;
    assert_eq!(r.status, 421, "{}", r.body);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn unroutable_tls_connections_are_closed_and_never_hold_the_accept_loop() {
    init_logs();
    let pki = Pki::new();
    let services = Pki::new();
    let b1 = tls_service(&services.ca, "k1.example.com").await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let mut c = TestClient::connect(
        &pki,
        "node1",
        server.addr,
        vec![https_proxy("k1", b1.addr, &["k1.example.com"])],
    );
    let https = c.bound("k1").await;

    // A silent connection and a half-sent hello stay open meanwhile: they must not block others.
    let silent = within("connect", TcpStream::connect(https))
        .await
        .expect("connect");
    let mut partial = within("connect", TcpStream::connect(https))
        .await
        .expect("connect");
    let half_hello = partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    within("write", half_hello).await.expect("write");

    assert!(
        closed_after(https, b"GET / HTTP/1.1\r\nHost: k1.example.com\r\n\r\n").await,
        "garbage"
    );
    let unknown = tls_connect(https, "nobody.example.com", vec![services.ca.cert_der()]).await;
    assert!(unknown.is_err(), "an unknown name is closed");
    let no_sni = tls_connect(https, "127.0.0.1", vec![services.ca.cert_der()]).await;
    assert!(no_sni.is_err(), "a hello without SNI is closed");
    let root = services.ca.cert_der();
    assert_eq!(
        backend_over_tls(https, "k1.example.com", root).await,
        "k1.example.com"
    );
    assert_eq!(
        b1.accepted(),
        1,
        "only the routed connection reached the service"
    );
    drop((silent, partial));
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

/// The first flight of a TLS client for `name` offering only ALPN `alpn`.
fn client_hello(name: &str, alpn: &[u8]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("hello");
    hello
}

#[tokio::test]
async fn acme_tls_alpn_hellos_reach_an_https_service_that_runs_its_own_acme() {
    init_logs();
    let pki = Pki::new();
    // The service echoes: what arrives is what the visitor sent, passed through untouched.
    let (echo, _echo) = frp_tests::backends::echo_server().await;
    let server = TestServer::start(vhost_settings(&pki, &["*.example.com"]));
    let proxies = vec![https_proxy("svc", echo, &["svc.example.com"])];
    let mut c = TestClient::connect(&pki, "node1", server.addr, proxies);
    let https = c.bound("svc").await;
    let hello = client_hello("svc.example.com", b"acme-tls/1");
    let mut tcp = within("connect", TcpStream::connect(https))
        .await
        .expect("connect");
    within("write", tcp.write_all(&hello)).await.expect("write");
    let mut back = vec![0u8; hello.len()];
    within("the hello comes back", tcp.read_exact(&mut back))
        .await
        .expect("passed through, not closed");
    assert_eq!(back, hello);
    c.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
