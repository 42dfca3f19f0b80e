//! The certificates frps answers with besides its real ones: the tls-alpn-01 challenge
//! certificate (RFC 8737) for a name under validation, and the self-signed fallback served,
//! with an error page, to visitors of a name whose certificate is not there yet.

use std::sync::Arc;

use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The ALPN protocol of tls-alpn-01 validation connections.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// A TLS config answering a tls-alpn-01 validation for `name` whose key authorization has
/// the SHA-256 `digest`: a self-signed certificate for the name with the `acmeIdentifier`
/// extension, offered only with ALPN `acme-tls/1`.
///
/// # Errors
/// When the certificate cannot be made (a name rcgen refuses).
pub fn tls_alpn_config(name: &str, digest: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut params =
        CertificateParams::new(vec![name.to_string()]).map_err(|e| format!("{name}: {e}"))?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let mut config = self_signed(params)?;
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The fallback: a self-signed certificate that no browser trusts (as Traefik's default
/// certificate), so that a visitor who goes on anyway reads why the real one is missing.
///
/// # Errors
/// When the certificate cannot be made.
pub fn fallback_config() -> Result<Arc<rustls::ServerConfig>, String> {
    let mut params =
        CertificateParams::new(vec!["frp-quic.invalid".to_string()]).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "frp-quic default certificate");
    let mut config = self_signed(params)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A config serving one freshly made self-signed certificate. Handed to rustls as a
/// resolver rather than with `with_single_cert`, which would refuse the challenge
/// certificate's critical `acmeIdentifier` extension (it is for the validator, not for us).
fn self_signed(params: CertificateParams) -> Result<rustls::ServerConfig, String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| e.to_string())?;
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, signer));
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())
        .map(|b| {
            b.with_no_client_auth()
                .with_cert_resolver(Arc::new(One(certified)))
        })
}

/// Always the same certificate.
#[derive(Debug)]
struct One(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for One {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenge_certificates_carry_the_identifier_and_alpn() {
        let config = tls_alpn_config("app.example.com", &[7u8; 32]).unwrap();
        assert_eq!(config.alpn_protocols, [ACME_TLS_ALPN.to_vec()]);
        let fallback = fallback_config().unwrap();
        assert_eq!(fallback.alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
