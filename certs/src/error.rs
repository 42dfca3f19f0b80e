//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong making, storing, loading or using certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A file or directory could not be read, written or created.
    #[error("accessing {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists and replacing it was not asked for.
    #[error(
        "{} already exists; pass --force to replace it (replacing a CA invalidates every \
         certificate it issued)",
        path.display()
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// PEM text could not be parsed.
    #[error("invalid PEM in {what}: {detail}")]
    Pem {
        /// The file or object that held the PEM text.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A file holds no certificate.
    #[error("no certificate found in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A file holds no private key.
    #[error("no private key found in {}", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// `rcgen` failed to generate a key or certificate.
    #[error("generating a certificate")]
    Generate(#[from] rcgen::Error),
    /// `rustls` refused a configuration, key or certificate.
    #[error("configuring TLS")]
    Tls(#[from] rustls::Error),
    /// A certificate verifier could not be built.
    #[error("building the certificate verifier: {0}")]
    Verifier(String),
    /// A certificate could not be parsed.
    #[error("parsing a certificate: {0}")]
    Parse(String),
    /// A certificate has no subject common name, so it names no identity.
    #[error("the certificate has no subject common name")]
    MissingCommonName,
    /// An identity (client name) is not acceptable.
    #[error("invalid identity {0}")]
    InvalidIdentity(String),
    /// A server name is neither a valid DNS name nor an IP address, or none was given.
    #[error("invalid server name {0}")]
    InvalidServerName(String),
    /// A validity window ends before it starts.
    #[error("the certificate validity ends before it starts")]
    InvalidValidity,
    /// The certificate given as a CA is not a CA certificate.
    #[error("the certificate is not a CA certificate (basic constraints CA flag missing)")]
    NotCa,
    /// A certificate given as a trust root (`trustedCaFile`) is not a CA certificate.
    #[error(
        "{what} is not a CA certificate (no basicConstraints CA:TRUE): trustedCaFile must hold \
         the CA that issued the peer's certificate (ca.crt), not a server or client certificate"
    )]
    NotCaRoot {
        /// Which certificate, in which file, with its subject.
        what: String,
    },
    /// A private key does not belong to the certificate it was given with.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
}

impl CertError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        CertError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
