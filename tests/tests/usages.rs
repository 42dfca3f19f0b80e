//! Extended key usage over real QUIC handshakes: a certificate the CA signed without the
//! usage its side needs (no extension at all, or the other side's usage only) is refused for
//! good, with an alert the peer can read, and the server keeps serving good clients.

use std::sync::Arc;

use frp_certs::Ca;
use frp_tests::backends::{echo_once, echo_server};
use frp_tests::{
    client_settings, init_logs, server_settings, tcp_proxy, Pki, TestClient, TestServer,
};
use frpc::{ClientError, ClientSettings};
use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and key signed by `ca` for `names` with exactly `usages` (no extended key
/// usage extension when empty), as a hand-rolled OpenSSL or cfssl setup may make it.
fn issue_with_usages(
    ca: &Ca,
    cn: &str,
    names: &[&str],
    usages: Vec<rcgen::ExtendedKeyUsagePurpose>,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = rcgen::KeyPair::from_pem(ca.key_pem()).expect("ca key");
    let issuer = rcgen::Issuer::from_ca_cert_der(&ca.cert_der(), ca_key).expect("issuer");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = usages;
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// Runs a client that must give up with a permanent refusal; returns the reason.
async fn refused_for_good(settings: ClientSettings) -> String {
    match TestClient::start(settings).finished().await {
        Err(ClientError::Permanent(reason)) => reason,
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}

/// A client presenting `cert` is refused for good with the unsupported_certificate alert,
/// never shows up on the server, and a good client still gets through.
async fn client_refused(usages: Vec<rcgen::ExtendedKeyUsagePurpose>) {
    let pki = Pki::new();
    let server = TestServer::start(server_settings(&pki, 1024..=65535));
    let (cert, key) = issue_with_usages(&pki.ca, "mallory", &[], usages);
    let tls = frp_certs::client_tls_config(vec![cert], key, vec![pki.ca.cert_der()]);
    let settings = client_settings(Arc::new(tls.expect("tls")), server.addr, vec![]);
    let reason = refused_for_good(settings).await;
    // unsupported_certificate (43), and quinn carries frps's reason across.
    assert!(reason.contains("error 43"), "{reason}");
    assert!(
        reason.contains("extended key usage for client authentication"),
        "{reason}"
    );
    assert!(server.status.borrow().clients.is_empty());

    let (echo, _e) = echo_server().await;
    let mut good = TestClient::connect(&pki, "good", server.addr, vec![tcp_proxy("echo", echo, 0)]);
    assert_eq!(echo_once(good.bound("echo").await, b"ok").await, b"ok");
    good.stop().await.expect("stop");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn client_certificate_without_extended_key_usage_is_refused() {
    init_logs();
    client_refused(vec![]).await;
}

#[tokio::test]
async fn client_certificate_with_only_server_auth_is_refused() {
    init_logs();
    client_refused(vec![ServerAuth]).await;
}

#[tokio::test]
async fn server_certificate_without_extended_key_usage_is_refused_by_frpc() {
    init_logs();
    let pki = Pki::new();
    let (cert, key) = issue_with_usages(&pki.ca, "frps", &["localhost"], vec![]);
    let tls = frp_certs::server_tls_config(vec![cert], key, vec![pki.ca.cert_der()]);
    let server = TestServer::start(frps::ServerSettings {
        tls: Arc::new(tls.expect("tls")),
        ..server_settings(&pki, 1024..=65535)
    });
    let settings = client_settings(pki.client_tls("node1"), server.addr, vec![]);
    let reason = refused_for_good(settings).await;
    assert!(reason.contains("error 43"), "{reason}");
    assert!(
        reason.contains("extended key usage for server authentication"),
        "{reason}"
    );
    assert!(server.status.borrow().clients.is_empty());
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn certificates_listing_their_usage_among_others_are_accepted() {
    init_logs();
    let pki = Pki::new();
    let both = || vec![ServerAuth, ClientAuth];
    let (s_cert, s_key) = issue_with_usages(&pki.ca, "frps", &["localhost"], both());
    let tls = frp_certs::server_tls_config(vec![s_cert], s_key, vec![pki.ca.cert_der()]);
    let server = TestServer::start(frps::ServerSettings {
        tls: Arc::new(tls.expect("tls")),
        ..server_settings(&pki, 1024..=65535)
    });
    let (c_cert, c_key) = issue_with_usages(&pki.ca, "node1", &[], both());
    let tls = frp_certs::client_tls_config(vec![c_cert], c_key, vec![pki.ca.cert_der()]);
    let (echo, _e) = echo_server().await;
    let proxies = vec![tcp_proxy("echo", echo, 0)];
    let mut client = TestClient::start(client_settings(
        Arc::new(tls.expect("tls")),
        server.addr,
        proxies,
    ));
    assert_eq!(echo_once(client.bound("echo").await, b"ok").await, b"ok");
    client.stop().await.expect("stop");
    server.stop().await.expect("stop");
}
