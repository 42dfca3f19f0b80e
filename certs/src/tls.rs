//! Mutual-TLS configurations for both ends of a frp-quic connection.
//!
//! Both sides speak TLS 1.3 only (QUIC requires it), use the `ring` provider explicitly rather
//! than a process-wide default, offer exactly one ALPN protocol, and verify the peer's chain
//! with WebPKI: the server demands a client certificate with the clientAuth extended key usage,
//! the client demands a server certificate with serverAuth that is valid for the server name.
//! Both usages are required to be listed (see [`crate::usage`]), and a trust root must be a CA
//! certificate, so a leaf given as `trustedCaFile` is refused when the config is loaded.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::usage::{RequireClientAuth, RequireServerAuth};
use crate::CertError;

/// The ALPN protocol of frp-quic, re-exported from `frp-proto`.
pub use frp_proto::ALPN;

/// Server side: requires and verifies a client certificate chaining to `client_roots` (rustls `WebPkiClientVerifier`) that lists the clientAuth extended key usage, and presents `chain`/`key`.
///
/// # Errors
///
/// [`CertError::Verifier`] if `client_roots` is empty or unusable, [`CertError::NotCaRoot`]
/// if one of them is not a CA certificate, [`CertError::Tls`] if the
/// key does not fit the certificate or the configuration is refused.
pub fn server_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Vec<CertificateDer<'static>>,
) -> Result<ServerConfig, CertError> {
    let provider = provider();
    let inner =
        WebPkiClientVerifier::builder_with_provider(root_store(client_roots)?, provider.clone())
            .build()
            .map_err(|e| CertError::Verifier(e.to_string()))?;
    let verifier = Arc::new(RequireClientAuth { inner });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// Client side: verifies the server against `server_roots` (rustls `WebPkiServerVerifier`: chain and server name) and requires the serverAuth extended key usage, and presents `chain`/`key` as its client certificate.
///
/// # Errors
///
/// [`CertError::Verifier`] if `server_roots` is empty or unusable, [`CertError::NotCaRoot`]
/// if one of them is not a CA certificate, [`CertError::Tls`] if the
/// key does not fit the certificate or the configuration is refused.
pub fn client_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    server_roots: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, CertError> {
    let provider = provider();
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        root_store(server_roots)?,
        provider.clone(),
    )
    .build()
    .map_err(|e| CertError::Verifier(e.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RequireServerAuth { inner }))
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The `ring` crypto provider, chosen explicitly so no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding `roots`, which must not be empty and must all be CA certificates.
fn root_store(roots: Vec<CertificateDer<'static>>) -> Result<Arc<RootCertStore>, CertError> {
    check_ca_roots(&roots, None)?;
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

/// Refuses any of `roots` that is not a CA certificate (basicConstraints CA:TRUE): WebPKI
/// would take a leaf as a trust anchor and then never verify a peer with it. `file` names
/// where the roots came from, for the message.
fn check_ca_roots(
    roots: &[CertificateDer<'_>],
    file: Option<&std::path::Path>,
) -> Result<(), CertError> {
    for (i, root) in roots.iter().enumerate() {
        let (_, parsed) = x509_parser::parse_x509_certificate(root)
            .map_err(|e| CertError::Parse(format!("trusted CA certificate {}: {e}", i + 1)))?;
        if parsed.is_ca() {
            continue;
        }
        let which = match file {
            Some(path) => format!("certificate {} in {}", i + 1, path.display()),
            None => format!("trusted certificate {}", i + 1),
        };
        return Err(CertError::NotCaRoot {
            what: format!("{which} ({})", parsed.subject()),
        });
    }
    Ok(())
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
    let roots = crate::load_certs(ca)?;
    check_ca_roots(&roots, Some(ca))?;
    Ok((crate::load_certs(cert)?, crate::load_key(key)?, roots))
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
