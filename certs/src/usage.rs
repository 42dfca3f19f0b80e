//! Extended key usage, required rather than merely honoured.
//!
//! WebPKI reads a missing extended key usage (EKU) extension as "any usage" (RFC 5280 allows
//! that), so a certificate the CA signed for some other purpose, with no EKU at all, would be
//! accepted as a client by the server and as a server by the client. frp-quic's contract is
//! stricter: a client certificate must list clientAuth and a server certificate serverAuth.
//! [`RequireClientAuth`] and [`RequireServerAuth`] wrap rustls' WebPKI verifiers: the chain,
//! validity, names and signatures are theirs, and after they accept a certificate the wrapper
//! also demands the usage, refusing with the `unsupported_certificate` alert (as WebPKI does
//! for a certificate whose EKU lists other usages) and a log line saying what is missing.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ExtendedKeyPurpose};
use rustls::{Error, SignatureScheme};

/// Which side of the connection a certificate authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A client certificate: needs clientAuth.
    Client,
    /// A server certificate: needs serverAuth.
    Server,
}

impl Purpose {
    /// The usage's name as OpenSSL and RFC 5280 write it.
    fn usage(self) -> &'static str {
        match self {
            Purpose::Client => "clientAuth",
            Purpose::Server => "serverAuth",
        }
    }

    /// Which peer such a certificate identifies.
    fn side(self) -> &'static str {
        match self {
            Purpose::Client => "client",
            Purpose::Server => "server",
        }
    }

    fn rustls(self) -> ExtendedKeyPurpose {
        match self {
            Purpose::Client => ExtendedKeyPurpose::ClientAuth,
            Purpose::Server => ExtendedKeyPurpose::ServerAuth,
        }
    }
}

/// Whether the end-entity certificate `cert` lists the usage `purpose` needs in an extended
/// key usage extension (an absent extension does not count).
///
/// # Errors
/// `InvalidCertificate(BadEncoding)` for a certificate or extension that does not parse, and
/// `InvalidCertificate(InvalidPurposeContext)` when the usage is missing.
pub(crate) fn require_usage(cert: &CertificateDer<'_>, purpose: Purpose) -> Result<(), Error> {
    let bad_encoding = || Error::InvalidCertificate(CertificateError::BadEncoding);
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|_| bad_encoding())?;
    let eku = parsed.extended_key_usage().map_err(|_| bad_encoding())?;
    let listed = eku.as_ref().is_some_and(|e| match purpose {
        Purpose::Client => e.value.client_auth,
        Purpose::Server => e.value.server_auth,
    });
    if listed {
        return Ok(());
    }
    let reason = match eku {
        None => "it has no extended key usage extension",
        Some(_) => "its extended key usage does not list it",
    };
    tracing::warn!(
        subject = %parsed.subject(),
        required = purpose.usage(),
        reason,
        "{} certificate refused: frp-quic requires the extended key usage {}",
        purpose.side(),
        purpose.usage()
    );
    Err(Error::InvalidCertificate(
        CertificateError::InvalidPurposeContext {
            required: purpose.rustls(),
            presented: Vec::new(),
        },
    ))
}

/// The server's client-certificate verifier: WebPKI, then clientAuth required.
#[derive(Debug)]
pub(crate) struct RequireClientAuth {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequireClientAuth {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        require_usage(end_entity, Purpose::Client)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client's server-certificate verifier: WebPKI (chain and name), then serverAuth required.
#[derive(Debug)]
pub(crate) struct RequireServerAuth {
    pub(crate) inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for RequireServerAuth {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        require_usage(end_entity, Purpose::Server)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}
