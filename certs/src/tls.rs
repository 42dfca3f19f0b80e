//! Mutual-TLS configurations for both ends of a frp-quic connection.
//!
//! Both sides speak TLS 1.3 only (QUIC requires it), use the `ring` provider explicitly rather
//! than a process-wide default, offer exactly one ALPN protocol, and verify the peer's chain
//! with WebPKI: the server demands a client certificate with the clientAuth extended key usage,
//! the client demands a server certificate with serverAuth that is valid for the server name.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::CertError;

/// The ALPN protocol of frp-quic, re-exported from `frp-proto`.
pub use frp_proto::ALPN;

/// Server side: requires and verifies a client certificate chaining to `client_roots` (rustls `WebPkiClientVerifier`, which enforces the clientAuth extended key usage), and presents `chain`/`key`.
///
/// # Errors
///
/// [`CertError::Verifier`] if `client_roots` is empty or unusable, [`CertError::Tls`] if the
/// key does not fit the certificate or the configuration is refused.
pub fn server_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Vec<CertificateDer<'static>>,
) -> Result<ServerConfig, CertError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(root_store(client_roots)?, provider.clone())
            .build()
            .map_err(|e| CertError::Verifier(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Client side: verifies the server against `server_roots` (rustls `WebPkiServerVerifier`: serverAuth extended key usage and server name), and presents `chain`/`key` as its client certificate.
///
/// # Errors
///
/// [`CertError::Verifier`] if `server_roots` is empty or unusable, [`CertError::Tls`] if the
/// key does not fit the certificate or the configuration is refused.
pub fn client_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    server_roots: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, CertError> {
    let provider = provider();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        root_store(server_roots)?,
        provider.clone(),
    )
    .build()
    .map_err(|e| CertError::Verifier(e.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The `ring` crypto provider, chosen explicitly so no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding `roots`, which must not be empty.
fn root_store(roots: Vec<CertificateDer<'static>>) -> Result<Arc<RootCertStore>, CertError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root)
            .map_err(|e| CertError::Verifier(format!("unusable trust root: {e}")))?;
    }
    if store.is_empty() {
        return Err(CertError::Verifier(
            "no trusted CA certificate given".into(),
        ));
    }
    Ok(Arc::new(store))
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;

/// [`server_tls_config`] from PEM files: the server's chain and key, and the client CA.
///
/// # Errors
/// As [`crate::load_certs`], [`crate::load_key`] and [`server_tls_config`].
pub fn load_server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
    client_ca: &std::path::Path,
) -> Result<ServerConfig, CertError> {
    let (chain, key, roots) = load_pem_triple(cert, key, client_ca)?;
    server_tls_config(chain, key, roots)
}

/// [`client_tls_config`] from PEM files: the client's chain and key, and the server CA.
///
/// # Errors
/// As [`crate::load_certs`], [`crate::load_key`] and [`client_tls_config`].
pub fn load_client_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
    server_ca: &std::path::Path,
) -> Result<ClientConfig, CertError> {
    let (chain, key, roots) = load_pem_triple(cert, key, server_ca)?;
    client_tls_config(chain, key, roots)
}

type PemTriple = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Vec<CertificateDer<'static>>,
);

fn load_pem_triple(
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: &std::path::Path,
) -> Result<PemTriple, CertError> {
    Ok((
        crate::load_certs(cert)?,
        crate::load_key(key)?,
        crate::load_certs(ca)?,
    ))
}

/// Server side for the public HTTPS port (TLS termination for browsers and other HTTP
/// clients): TLS 1.2 and 1.3, no client certificate, ALPN `http/1.1`, presenting `chain`/`key`.
///
/// # Errors
///
/// [`CertError::Tls`] if the key does not fit the certificate.
pub fn public_server_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, CertError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// [`public_server_tls_config`] from PEM files.
///
/// # Errors
/// As [`crate::load_certs`], [`crate::load_key`] and [`public_server_tls_config`].
pub fn load_public_server_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<ServerConfig, CertError> {
    public_server_tls_config(crate::load_certs(cert)?, crate::load_key(key)?)
}
