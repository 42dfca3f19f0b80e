//! The TLS layer driven in memory: a `ServerConnection` and a `ClientConnection` exchange
//! their records through byte buffers, no sockets.

#![allow(clippy::unwrap_used)]

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConnection, Connection, ServerConnection};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::{peer_identity, Ca, Issued};

/// Which end of the handshake failed.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

fn server_config(ca: &Ca, server: &Issued) -> ServerConfig {
    server_tls_config(
        vec![server.cert_der()],
        server.key_der(),
        vec![ca.cert_der()],
    )
    .unwrap()
}

fn client_config(ca: &Ca, client: &Issued) -> ClientConfig {
    client_tls_config(
        vec![client.cert_der()],
        client.key_der(),
        vec![ca.cert_der()],
    )
    .unwrap()
}

/// Moves every pending TLS record from `from` to `to`.
fn transfer(from: &mut Connection, to: &mut Connection) {
    while from.wants_write() {
        let mut buf = Vec::new();
        from.write_tls(&mut buf).unwrap();
        let mut rest = &buf[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
        }
    }
}

/// Runs a handshake to completion, returning the first side that failed and its error.
fn handshake(
    server: ServerConfig,
    client: ClientConfig,
    server_name: &str,
) -> Result<(ServerConnection, ClientConnection), (Side, rustls::Error)> {
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = Connection::from(ClientConnection::new(Arc::new(client), name).unwrap());
    let mut server = Connection::from(ServerConnection::new(Arc::new(server)).unwrap());
    for _ in 0..10 {
        transfer(&mut client, &mut server);
        server
            .process_new_packets()
            .map_err(|e| (Side::Server, e))?;
        transfer(&mut server, &mut client);
        client
            .process_new_packets()
            .map_err(|e| (Side::Client, e))?;
        let busy = |c: &Connection| c.is_handshaking() || c.wants_write();
        if !busy(&client) && !busy(&server) {
            match (server, client) {
                (Connection::Server(s), Connection::Client(c)) => return Ok((s, c)),
                _ => unreachable!(),
            }
        }
    }
    panic!("handshake did not finish");
}

fn expect_certificate_error(
    result: Result<(ServerConnection, ClientConnection), (Side, rustls::Error)>,
    side: Side,
) -> CertificateError {
    match result {
        Err((failed, rustls::Error::InvalidCertificate(e))) if failed == side => e,
        Err(other) => panic!("unexpected failure {other:?}"),
        Ok(_) => panic!("handshake succeeded"),
    }
}

struct Pki {
    ca: Ca,
    server: Issued,
    client: Issued,
}

fn pki() -> Pki {
    let ca = Ca::generate("test CA").unwrap();
    let server = ca
        .issue_server(&["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap();
    let client = ca.issue_client("alice").unwrap();
    Pki { ca, server, client }
}

#[test]
fn configs_build_with_alpn_and_tls13_only() {
    let p = pki();
    let server = server_config(&p.ca, &p.server);
    let client = client_config(&p.ca, &p.client);
    assert_eq!(server.alpn_protocols, vec![b"frp-quic/1".to_vec()]);
    assert_eq!(client.alpn_protocols, vec![b"frp-quic/1".to_vec()]);
    assert!(server
        .crypto_provider()
        .cipher_suites
        .iter()
        .any(|s| s.tls13().is_some()));
}

#[test]
fn configs_refuse_missing_roots_and_mismatched_keys() {
    let p = pki();
    let no_roots = server_tls_config(vec![p.server.cert_der()], p.server.key_der(), vec![]);
    assert!(matches!(no_roots, Err(CertError::Verifier(_))));
    let no_roots = client_tls_config(vec![p.client.cert_der()], p.client.key_der(), vec![]);
    assert!(matches!(no_roots, Err(CertError::Verifier(_))));
    let wrong_key = server_tls_config(
        vec![p.server.cert_der()],
        p.client.key_der(),
        vec![p.ca.cert_der()],
    );
    assert!(wrong_key.is_err());
}

#[test]
fn good_client_and_server_agree() {
    let p = pki();
    for name in ["localhost", "127.0.0.1"] {
        let (server, client) = handshake(
            server_config(&p.ca, &p.server),
            client_config(&p.ca, &p.client),
            name,
        )
        .unwrap();
        assert_eq!(server.alpn_protocol(), Some(ALPN));
        assert_eq!(client.alpn_protocol(), Some(&b"frp-quic/1"[..]));
        assert_eq!(
            server.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        let peer = server.peer_certificates().unwrap();
        assert_eq!(peer_identity(&peer[0]).unwrap(), "alice");
    }
}

#[test]
fn client_from_another_ca_is_refused() {
    let p = pki();
    let stranger = Ca::generate("other CA")
        .unwrap()
        .issue_client("alice")
        .unwrap();
    let result = handshake(
        server_config(&p.ca, &p.server),
        client_config(&p.ca, &stranger),
        "localhost",
    );
    let error = expect_certificate_error(result, Side::Server);
    assert!(
        matches!(error, CertificateError::UnknownIssuer),
        "{error:?}"
    );
}

#[test]
fn expired_client_is_refused() {
    let p = pki();
    let now = OffsetDateTime::now_utc();
    let expired =
        p.ca.issue_client_with_validity("alice", now - Duration::days(30), now - Duration::days(1))
            .unwrap();
    let result = handshake(
        server_config(&p.ca, &p.server),
        client_config(&p.ca, &expired),
        "localhost",
    );
    let error = expect_certificate_error(result, Side::Server);
    assert!(
        matches!(
            error,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{error:?}"
    );
}

#[test]
fn server_name_mismatch_is_refused_by_the_client() {
    let p = pki();
    for name in ["frp.example.com", "127.0.0.2"] {
        let result = handshake(
            server_config(&p.ca, &p.server),
            client_config(&p.ca, &p.client),
            name,
        );
        let error = expect_certificate_error(result, Side::Client);
        assert!(
            matches!(
                error,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn server_from_another_ca_is_refused_by_the_client() {
    let p = pki();
    let other = Ca::generate("other CA").unwrap();
    let impostor = other.issue_server(&["localhost".to_owned()]).unwrap();
    let result = handshake(
        server_config(&p.ca, &impostor),
        client_config(&p.ca, &p.client),
        "localhost",
    );
    let error = expect_certificate_error(result, Side::Client);
    assert!(
        matches!(error, CertificateError::UnknownIssuer),
        "{error:?}"
    );
}

fn is_wrong_purpose(error: &CertificateError) -> bool {
    matches!(
        error,
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
    )
}

#[test]
fn client_certificate_cannot_serve() {
    let p = pki();
    let result = handshake(
        server_config(&p.ca, &p.client),
        client_config(&p.ca, &p.client),
        "alice",
    );
    let error = expect_certificate_error(result, Side::Client);
    assert!(is_wrong_purpose(&error), "{error:?}");
}

#[test]
fn server_certificate_cannot_authenticate_a_client() {
    let p = pki();
    let result = handshake(
        server_config(&p.ca, &p.server),
        client_config(&p.ca, &p.server),
        "localhost",
    );
    let error = expect_certificate_error(result, Side::Server);
    assert!(is_wrong_purpose(&error), "{error:?}");
}

/// A certificate and key signed by `ca` with exactly the extended key usages `usages` (none at
/// all when empty: no extension), common name `cn` and DNS names `names`, as another tool
/// (OpenSSL without `-extfile`, an old script) would make it.
fn issue_with_usages(
    ca: &Ca,
    cn: &str,
    names: &[&str],
    usages: Vec<rcgen::ExtendedKeyUsagePurpose>,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let ca_key = rcgen::KeyPair::from_pem(ca.key_pem()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(&ca.cert_der(), ca_key).unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.extended_key_usages = usages;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (cert.der().clone(), key)
}

fn refused_for_purpose(
    result: Result<(ServerConnection, ClientConnection), (Side, rustls::Error)>,
    side: Side,
) {
    let error = expect_certificate_error(result, side);
    assert!(is_wrong_purpose(&error), "{error:?}");
}

#[test]
fn client_certificate_without_extended_key_usage_is_refused() {
    let p = pki();
    let (cert, key) = issue_with_usages(&p.ca, "alice", &[], vec![]);
    let client = client_tls_config(vec![cert], key, vec![p.ca.cert_der()]).unwrap();
    let result = handshake(server_config(&p.ca, &p.server), client, "localhost");
    refused_for_purpose(result, Side::Server);
}

#[test]
fn client_certificate_with_only_server_auth_is_refused() {
    let p = pki();
    let server_auth = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let (cert, key) = issue_with_usages(&p.ca, "alice", &[], server_auth);
    let client = client_tls_config(vec![cert], key, vec![p.ca.cert_der()]).unwrap();
    let result = handshake(server_config(&p.ca, &p.server), client, "localhost");
    refused_for_purpose(result, Side::Server);
}

#[test]
fn server_certificate_without_extended_key_usage_is_refused_by_the_client() {
    let p = pki();
    let (cert, key) = issue_with_usages(&p.ca, "frps", &["localhost"], vec![]);
    let server = server_tls_config(vec![cert], key, vec![p.ca.cert_der()]).unwrap();
    let result = handshake(server, client_config(&p.ca, &p.client), "localhost");
    refused_for_purpose(result, Side::Client);
}

#[test]
fn certificates_listing_both_usages_work_both_ways() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let p = pki();
    let (s_cert, s_key) =
        issue_with_usages(&p.ca, "frps", &["localhost"], vec![ServerAuth, ClientAuth]);
    let (c_cert, c_key) = issue_with_usages(&p.ca, "alice", &[], vec![ServerAuth, ClientAuth]);
    let server = server_tls_config(vec![s_cert], s_key, vec![p.ca.cert_der()]).unwrap();
    let client = client_tls_config(vec![c_cert], c_key, vec![p.ca.cert_der()]).unwrap();
    let (server, _) = handshake(server, client, "localhost").unwrap();
    let peer = server.peer_certificates().unwrap();
    assert_eq!(peer_identity(&peer[0]).unwrap(), "alice");
}

#[test]
fn a_leaf_is_refused_as_a_trust_root() {
    let p = pki();
    let leaf_root = vec![p.ca.cert_der(), p.client.cert_der()];
    let server = server_tls_config(vec![p.server.cert_der()], p.server.key_der(), leaf_root);
    match server {
        Err(CertError::NotCaRoot { what }) => {
            assert!(
                what.contains("trusted certificate 2") && what.contains("CN=alice"),
                "{what}"
            )
        }
        other => panic!("expected NotCaRoot, got {other:?}"),
    }
    let client = client_tls_config(
        vec![p.client.cert_der()],
        p.client.key_der(),
        vec![p.server.cert_der()],
    );
    assert!(
        matches!(client, Err(CertError::NotCaRoot { .. })),
        "{client:?}"
    );
}

#[test]
fn a_leaf_trusted_ca_file_is_named_in_the_error() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = (
        dir.path().join("node1.crt"),
        dir.path().join("node1.key"),
        dir.path().join("server.crt"),
    );
    crate::write_cert_and_key(&cert, &key, &p.client, false).unwrap();
    std::fs::write(&ca, p.server.cert_pem()).unwrap();
    let message = load_client_tls(&cert, &key, &ca).unwrap_err().to_string();
    assert!(message.contains(&ca.display().to_string()), "{message}");
    assert!(message.contains("is not a CA certificate"), "{message}");
    std::fs::write(&ca, p.ca.cert_pem()).unwrap();
    assert!(load_client_tls(&cert, &key, &ca).is_ok());
}
