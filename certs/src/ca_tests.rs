#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

/// The extended key usages as (serverAuth, clientAuth, any other usage present).
fn eku(cert: &X509Certificate<'_>) -> (bool, bool, bool) {
    let e = cert.extended_key_usage().unwrap().unwrap().value;
    let others = e.any
        || e.code_signing
        || e.email_protection
        || e.time_stamping
        || e.ocsp_signing
        || !e.other.is_empty();
    (e.server_auth, e.client_auth, others)
}

#[test]
fn ca_is_a_ca_for_ten_years() {
    let ca = Ca::generate("test CA").unwrap();
    let der = ca.cert_der();
    let cert = parse(&der);
    assert!(cert.is_ca());
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign());
    let now = OffsetDateTime::now_utc();
    let validity = cert.validity();
    assert!(validity.not_before.to_datetime() < now - Duration::minutes(59));
    assert!(validity.not_after.to_datetime() > now + Duration::days(3650));
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "test CA"
    );
}

#[test]
fn ca_round_trips_through_pem_and_still_issues() {
    let ca = Ca::generate("test CA").unwrap();
    let loaded = Ca::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
    assert_eq!(loaded.cert_der(), ca.cert_der());
    assert_eq!(loaded.key_pem(), ca.key_pem());
    let client = loaded.issue_client("bob").unwrap();
    let client_der = client.cert_der();
    let cert = parse(&client_der);
    let ca_der = ca.cert_der();
    let ca_cert = parse(&ca_der);
    assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
    cert.verify_signature(Some(ca_cert.public_key())).unwrap();
}

#[test]
fn from_pem_refuses_bad_input() {
    let ca = Ca::generate("test CA").unwrap();
    let other = Ca::generate("other CA").unwrap();
    assert!(matches!(
        Ca::from_pem(ca.cert_pem(), other.key_pem()),
        Err(CertError::KeyMismatch)
    ));
    assert!(matches!(
        Ca::from_pem("garbage", ca.key_pem()),
        Err(CertError::Pem { .. })
    ));
    assert!(matches!(
        Ca::from_pem(ca.cert_pem(), "garbage"),
        Err(CertError::Pem { .. })
    ));
    let client = ca.issue_client("alice").unwrap();
    assert!(matches!(
        Ca::from_pem(client.cert_pem(), client.key_pem()),
        Err(CertError::NotCa)
    ));
}

#[test]
fn server_cert_has_dns_and_ip_sans_and_server_auth_only() {
    let ca = Ca::generate("test CA").unwrap();
    let names = [
        "frp.example.com".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let server = ca.issue_server(&names).unwrap();
    let der = server.cert_der();
    let cert = parse(&der);
    let sans = &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(sans.len(), 3);
    assert!(sans.contains(&GeneralName::DNSName("frp.example.com")));
    assert!(sans.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    let v6 = match "::1".parse::<IpAddr>().unwrap() {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(_) => unreachable!(),
    };
    assert!(sans.contains(&GeneralName::IPAddress(&v6)));
    assert_eq!(eku(&cert), (true, false, false));
    assert!(!cert.is_ca());
    assert!(
        cert.validity().not_after.to_datetime() > OffsetDateTime::now_utc() + Duration::days(824)
    );
}

#[test]
fn server_names_are_checked() {
    let ca = Ca::generate("test CA").unwrap();
    for names in [
        vec![],
        vec![String::new()],
        vec!["a b".to_owned()],
        vec!["é.com".to_owned()],
    ] {
        assert!(
            matches!(
                ca.issue_server(&names),
                Err(CertError::InvalidServerName(_))
            ),
            "{names:?}"
        );
    }
}

#[test]
fn client_cert_names_the_identity_with_client_auth_only() {
    let ca = Ca::generate("test CA").unwrap();
    let client = ca.issue_client("alice").unwrap();
    let der = client.cert_der();
    let cert = parse(&der);
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "alice");
    assert_eq!(eku(&cert), (false, true, false));
    assert!(!cert.is_ca());
    assert!(cert.subject_alternative_name().unwrap().is_none());
}

#[test]
fn client_identity_and_validity_are_checked() {
    let ca = Ca::generate("test CA").unwrap();
    assert!(matches!(
        ca.issue_client("../x"),
        Err(CertError::InvalidIdentity(_))
    ));
    let now = OffsetDateTime::now_utc();
    assert!(matches!(
        ca.issue_client_with_validity("alice", now, now - Duration::days(1)),
        Err(CertError::InvalidValidity)
    ));
}

#[test]
fn keys_match_their_certificates() {
    let ca = Ca::generate("test CA").unwrap();
    let client = ca.issue_client("alice").unwrap();
    let key = KeyPair::from_pem(client.key_pem()).unwrap();
    let der = client.cert_der();
    assert_eq!(
        &*parse(&der).public_key().subject_public_key.data,
        key.public_key_raw()
    );
    assert!(matches!(client.key_der(), PrivateKeyDer::Pkcs8(_)));
}

#[test]
fn debug_output_hides_private_keys() {
    let ca = Ca::generate("test CA").unwrap();
    let client = ca.issue_client("alice").unwrap();
    for (debug, key_pem) in [
        (format!("{ca:?}"), ca.key_pem()),
        (format!("{client:?}"), client.key_pem()),
    ] {
        assert!(debug.contains("redacted"), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        let body: String = key_pem.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!debug.contains(&body), "{debug}");
    }
}

#[test]
fn ca_and_issued_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ca>();
    assert_send_sync::<Issued>();
}
