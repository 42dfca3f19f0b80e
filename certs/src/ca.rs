//! The certificate authority: generating it, loading it, and issuing certificates with it.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use time::{Duration, OffsetDateTime};

use crate::{validate_identity, CertError};

/// How long a CA certificate is valid (ten years, leap days included).
const CA_VALIDITY: Duration = Duration::days(3653);
/// How long a server or client certificate is valid (the CA/Browser Forum's old 825-day cap).
const LEAF_VALIDITY: Duration = Duration::days(825);
/// How far in the past a validity window starts, to tolerate clocks a little behind ours.
const BACKDATE: Duration = Duration::hours(1);
/// Subject common name of server certificates; the names that matter are in the SANs.
const SERVER_COMMON_NAME: &str = "frp-quic-server";

/// A certificate authority able to issue server and client certificates.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("issuer", &self.issuer)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Generates a new self-signed CA (ECDSA P-256) whose subject common name is `common_name`.
    ///
    /// # Errors
    ///
    /// [`CertError::Generate`] if key or certificate generation fails, [`CertError::Tls`] if no
    /// random serial number can be drawn.
    pub fn generate(common_name: &str) -> Result<Ca, CertError> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its PEM certificate and PEM (PKCS#8) private key.
    ///
    /// # Errors
    ///
    /// [`CertError::Pem`] if either text is not the expected PEM, [`CertError::NotCa`] if the
    /// certificate is not a CA, [`CertError::KeyMismatch`] if the key is not the certificate's.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, CertError> {
        let pem_error = |what: &str, detail: String| CertError::Pem {
            what: what.to_owned(),
            detail,
        };
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| pem_error("the CA private key", e.to_string()))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| pem_error("the CA certificate", e.to_string()))?;
        check_ca_cert(&cert_der, &key)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            cert_der,
            issuer,
        })
    }

    /// The CA certificate in PEM form.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key in PEM (PKCS#8) form.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate in DER form, e.g. to use as a trust root.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// Server certificate for DNS names and/or IP addresses (a name that parses as an IP becomes an IP SAN), extended key usage serverAuth only, valid from an hour ago for 825 days.
    ///
    /// # Errors
    ///
    /// [`CertError::InvalidServerName`] if `names` is empty or a name is neither an IP address
    /// nor a valid DNS name; [`CertError::Generate`] if generation fails.
    pub fn issue_server(&self, names: &[String]) -> Result<Issued, CertError> {
        if names.is_empty() {
            return Err(CertError::InvalidServerName(
                "(none given): a server certificate needs at least one DNS name or IP".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let mut params = leaf_params(SERVER_COMMON_NAME, now - BACKDATE, now + LEAF_VALIDITY)?;
        params.subject_alt_names = names
            .iter()
            .map(|name| server_san(name))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(&params)
    }

    /// Client certificate whose identity (subject common name, no SAN) is `identity`, extended key usage clientAuth only, valid from an hour ago for 825 days.
    ///
    /// # Errors
    ///
    /// [`CertError::InvalidIdentity`] if `identity` fails [`validate_identity`];
    /// [`CertError::Generate`] if generation fails.
    pub fn issue_client(&self, identity: &str) -> Result<Issued, CertError> {
        let now = OffsetDateTime::now_utc();
        self.issue_client_with_validity(identity, now - BACKDATE, now + LEAF_VALIDITY)
    }

    /// Like [`Ca::issue_client`] with an explicit validity window (tests use it to make expired certificates).
    ///
    /// # Errors
    ///
    /// As [`Ca::issue_client`], and [`CertError::InvalidValidity`] if the window ends before it
    /// starts.
    pub fn issue_client_with_validity(
        &self,
        identity: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued, CertError> {
        validate_identity(identity)?;
        let mut params = leaf_params(identity, not_before, not_after)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params)
    }

    /// Generates a fresh key pair and signs a certificate for it with `params`.
    fn sign(&self, params: &CertificateParams) -> Result<Issued, CertError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }
}

/// A freshly issued certificate and its private key.
pub struct Issued {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: PrivatePkcs8KeyDer<'static>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("fingerprint", &crate::fingerprint(&self.cert_der))
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// The certificate in PEM form.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key in PEM (PKCS#8) form.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate in DER form.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// The private key in DER (PKCS#8) form.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }
}

/// A distinguished name holding only a common name.
fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Parameters shared by server and client certificates (end entities signed by the CA).
fn leaf_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CertError> {
    if not_after <= not_before {
        return Err(CertError::InvalidValidity);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// The SAN for one server name: an IP SAN if it parses as an address, else a DNS SAN.
fn server_san(name: &str) -> Result<SanType, CertError> {
    let invalid = || CertError::InvalidServerName(format!("{name:?}: not an IP or a DNS name"));
    match ServerName::try_from(name).map_err(|_| invalid())? {
        ServerName::IpAddress(ip) => Ok(SanType::IpAddress(ip.into())),
        ServerName::DnsName(dns) => Ok(SanType::DnsName(dns.as_ref().try_into()?)),
        _ => Err(invalid()),
    }
}

/// A random positive 128-bit serial number (top bit clear, so it never needs a sign byte).
fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(rustls::Error::from)?;
    bytes[0] &= 0x7f;
    // Keep the length fixed: a leading zero byte would be dropped from the encoding.
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Checks that `cert` is a CA certificate and that `key` is its private key.
fn check_ca_cert(cert: &CertificateDer<'_>, key: &KeyPair) -> Result<(), CertError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| CertError::Parse(format!("the CA certificate: {e}")))?;
    if !parsed.is_ca() {
        return Err(CertError::NotCa);
    }
    if *parsed.public_key().subject_public_key.data != *key.public_key_raw() {
        return Err(CertError::KeyMismatch);
    }
    Ok(())
}

#[cfg(test)]
#[path = "ca_tests.rs"]
mod tests;
