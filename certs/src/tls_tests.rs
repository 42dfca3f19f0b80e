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
