//! Reading identities, fingerprints and serial numbers out of certificates.

use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;

use crate::{validate_identity, CertError};

/// The identity of a peer: the subject common name of its end-entity certificate, which must be a valid identity.
///
/// Call it on a certificate that TLS has already verified (`peer_certificates()[0]`).
///
/// # Errors
///
/// [`CertError::Parse`] if the certificate cannot be parsed or its common name is not a
/// string, [`CertError::MissingCommonName`] if it has none, [`CertError::InvalidIdentity`] if
/// it has several or the name fails [`validate_identity`].
pub fn peer_identity(cert: &CertificateDer<'_>) -> Result<String, CertError> {
    let parsed = parse(cert)?;
    let mut names = parsed.subject().iter_common_name();
    let name = names.next().ok_or(CertError::MissingCommonName)?;
    if names.next().is_some() {
        return Err(CertError::InvalidIdentity(
            "the certificate has several subject common names".into(),
        ));
    }
    let name = name
        .as_str()
        .map_err(|e| CertError::Parse(format!("subject common name: {e}")))?;
    validate_identity(name)?;
    Ok(name.to_owned())
}

/// The DNS names in the certificate's subject alternative names, lowercase (wildcards such as
/// `*.example.com` as written).
///
/// # Errors
///
/// [`CertError::Parse`] if the certificate or its extension cannot be parsed.
pub fn dns_names(cert: &CertificateDer<'_>) -> Result<Vec<String>, CertError> {
    let parsed = parse(cert)?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| CertError::Parse(format!("subject alternative names: {e}")))?;
    let names = san.iter().flat_map(|ext| ext.value.general_names.iter());
    Ok(names
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            _ => None,
        })
        .collect())
}

/// The subject distinguished name as text (`CN=node1`), control characters replaced by `?`
/// so that it can go into a one-line comment or log field.
///
/// # Errors
///
/// [`CertError::Parse`] if the certificate cannot be parsed.
pub fn subject(cert: &CertificateDer<'_>) -> Result<String, CertError> {
    let text = parse(cert)?.subject().to_string();
    Ok(text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect())
}

/// Whether the certificate is a CA certificate (basicConstraints CA:TRUE).
///
/// # Errors
///
/// [`CertError::Parse`] if the certificate cannot be parsed.
pub fn is_ca(cert: &CertificateDer<'_>) -> Result<bool, CertError> {
    Ok(parse(cert)?.is_ca())
}

/// Lowercase hex SHA-256 of the DER certificate (used for revocation lists).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex(&Sha256::digest(cert.as_ref()))
}

/// Certificate serial number as lowercase hex, no separators and no leading zero bytes.
///
/// # Errors
///
/// [`CertError::Parse`] if the certificate cannot be parsed.
pub fn serial_hex(cert: &CertificateDer<'_>) -> Result<String, CertError> {
    let parsed = parse(cert)?;
    let raw = parsed.raw_serial();
    // DER adds a zero byte in front of a serial whose top bit is set; it is not part of the
    // number. Keep one byte so that serial zero prints as "00".
    let first = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    Ok(hex(raw.get(first..).unwrap_or_default()))
}

/// The end of the certificate's validity (`notAfter`).
///
/// # Errors
///
/// [`CertError::Parse`] if the certificate cannot be parsed.
pub fn not_after(cert: &CertificateDer<'_>) -> Result<std::time::SystemTime, CertError> {
    Ok(validity(cert)?.1)
}

/// The certificate's validity window (`notBefore`, `notAfter`).
///
/// # Errors
///
/// [`CertError::Parse`] if the certificate cannot be parsed.
pub fn validity(
    cert: &CertificateDer<'_>,
) -> Result<(std::time::SystemTime, std::time::SystemTime), CertError> {
    let v = parse(cert)?.validity().clone();
    let at = |t: x509_parser::time::ASN1Time| {
        let secs = u64::try_from(t.timestamp()).unwrap_or(0);
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
    };
    Ok((at(v.not_before), at(v.not_after)))
}

/// Parses a DER certificate.
fn parse<'a>(cert: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, CertError> {
    x509_parser::parse_x509_certificate(cert)
        .map(|(_, parsed)| parsed)
        .map_err(|e| CertError::Parse(e.to_string()))
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Ca;

    #[test]
    fn identity_is_the_common_name() {
        let ca = Ca::generate("test CA").unwrap();
        let client = ca.issue_client("alice-1").unwrap();
        assert_eq!(peer_identity(&client.cert_der()).unwrap(), "alice-1");
    }

    #[test]
    fn dns_names_are_the_subject_alternative_names() {
        let ca = Ca::generate("test CA").unwrap();
        let names = ["Web.example.com".to_string(), "10.0.0.1".to_string()];
        let server = ca.issue_server(&names).unwrap();
        assert_eq!(dns_names(&server.cert_der()).unwrap(), ["web.example.com"]);
        let client = ca.issue_client("alice").unwrap();
        assert!(dns_names(&client.cert_der()).unwrap().is_empty());
    }

    #[test]
    fn identity_must_be_valid() {
        // The CA's own common name has a space, so it is no identity.
        let ca = Ca::generate("test CA").unwrap();
        assert!(matches!(
            peer_identity(&ca.cert_der()),
            Err(CertError::InvalidIdentity(_))
        ));
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        assert!(matches!(peer_identity(&garbage), Err(CertError::Parse(_))));
    }

    #[test]
    fn subject_and_ca_flag() {
        let ca = Ca::generate("test\nCA").unwrap();
        let client = ca.issue_client("alice").unwrap();
        assert_eq!(subject(&client.cert_der()).unwrap(), "CN=alice");
        assert_eq!(subject(&ca.cert_der()).unwrap(), "CN=test?CA");
        assert!(is_ca(&ca.cert_der()).unwrap());
        assert!(!is_ca(&client.cert_der()).unwrap());
    }

    #[test]
    fn not_after_is_the_end_of_validity() {
        let ca = Ca::generate("test CA").unwrap();
        let now = time::OffsetDateTime::now_utc();
        let end = now + time::Duration::days(3);
        let client = ca.issue_client_with_validity("a", now, end).unwrap();
        let got = not_after(&client.cert_der()).unwrap();
        let want =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(end.unix_timestamp() as u64);
        assert_eq!(got, want);
    }

    #[test]
    fn fingerprint_is_lowercase_sha256_hex() {
        let cert = CertificateDer::from(b"abc".to_vec());
        assert_eq!(
            fingerprint(&cert),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn serials_are_random_positive_and_128_bit() {
        let ca = Ca::generate("test CA").unwrap();
        let a = serial_hex(&ca.issue_client("a").unwrap().cert_der()).unwrap();
        let b = serial_hex(&ca.issue_client("a").unwrap().cert_der()).unwrap();
        assert_ne!(a, b);
        for serial in [&a, &b] {
            assert_eq!(serial.len(), 32, "{serial}");
            assert!(serial
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
        let ca_der = ca.cert_der();
        let parsed = x509_parser::parse_x509_certificate(&ca_der).unwrap().1;
        assert_eq!(
            serial_hex(&ca_der).unwrap(),
            hex(&parsed.serial.to_bytes_be())
        );
    }

    #[test]
    fn hex_encodes_every_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
