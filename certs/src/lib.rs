//! Certificates and mutual TLS for frp-quic.
//!
//! Every frp-quic connection is mutually authenticated; there is no plaintext or anonymous mode.
//! A deployment has one certificate authority (CA). The server presents a certificate the CA
//! issued for its public DNS names and IP addresses (extended key usage serverAuth only), and
//! each client presents a certificate whose subject common name is its identity (extended key
//! usage clientAuth only). The server's authorisation rules are keyed by that identity.
//!
//! This crate holds the pieces every other crate shares:
//!
//! - [`Ca`] makes a CA and issues server and client certificates with `rcgen`; every certificate
//!   gets a random positive 128-bit serial number so that it can be revoked by serial later.
//! - [`init_ca_dir`], [`issue_client_in_dir`], [`load_certs`] and [`load_key`] read and write
//!   the PEM files behind `frps ca ...`: private keys are written mode 0600, certificates 0644,
//!   and an existing file is only replaced when the caller passes `force`.
//! - [`server_tls_config`] and [`client_tls_config`] build TLS 1.3 `rustls` configurations with
//!   the `ring` provider, the frp-quic ALPN, and WebPKI verification of the peer on both sides.
//! - [`peer_identity`], [`fingerprint`], [`serial_hex`], [`subject`] and [`is_ca`] read what the
//!   server and `frps ca revoke` need from a certificate.

mod ca;
mod error;
mod files;
mod inspect;
mod tls;
mod usage;

pub use ca::{Ca, Issued};
pub use error::CertError;
pub use files::{
    init_ca_dir, issue_client_in_dir, load_certs, load_key, mode_of, set_create_mode, set_mode,
    write_atomic, write_cert_and_key, CaPaths, CA_COMMON_NAME,
};
pub use inspect::{
    dns_names, fingerprint, is_ca, not_after, peer_identity, serial_hex, subject, validity,
};
pub use tls::{
    client_tls_config, load_client_tls, load_public_server_tls, load_server_tls,
    public_server_tls_config, server_tls_config, ALPN,
};

/// Longest accepted identity, in bytes (the X.520 upper bound for a common name).
pub const MAX_IDENTITY_LEN: usize = 64;

/// Validates an identity usable as a client name and a file name: 1..=64 chars of ASCII alphanumerics, '-', '_', '.', not starting with '.'.
///
/// # Errors
///
/// [`CertError::InvalidIdentity`] saying what is wrong with `name`.
pub fn validate_identity(name: &str) -> Result<(), CertError> {
    let invalid = |why: &str| Err(CertError::InvalidIdentity(format!("{name:?}: {why}")));
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name.len() > MAX_IDENTITY_LEN {
        return invalid("must be at most 64 characters long");
    }
    if name.starts_with('.') {
        return invalid("must not start with '.'");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !name.chars().all(allowed) {
        return invalid("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_identities_are_accepted() {
        for name in ["alice", "a", "node-1.example_2", "x.", &"a".repeat(64)] {
            assert!(validate_identity(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn bad_identities_are_refused() {
        let long = "a".repeat(65);
        for name in ["", "../x", ".hidden", "a b", "a/b", "é", "a\0", &long] {
            assert!(
                matches!(validate_identity(name), Err(CertError::InvalidIdentity(_))),
                "{name:?}"
            );
        }
    }
}
