//! The revocation list: certificates the server refuses although its CA signed them.
//!
//! The file (`revocationFile` in frps.toml) holds one entry per line: a certificate serial
//! number in hex (as `openssl x509 -serial` prints it) or the SHA-256 fingerprint of the
//! certificate (64 hex digits); colons and case are ignored, `#` starts a comment. frps reads
//! it at start and again on SIGHUP; connected clients whose certificate is now listed are
//! disconnected with [`frp_proto::CloseCode::Revoked`].

use std::collections::HashSet;
use std::path::Path;

use rustls::pki_types::CertificateDer;

/// Parsed revocation entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocations {
    serials: HashSet<String>,
    fingerprints: HashSet<String>,
}

impl Revocations {
    /// Parses the file format described in the module docs.
    ///
    /// # Errors
    /// Names the first line that is not a hex serial or fingerprint.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut r = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let hex: String = line
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if hex.is_empty() || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "line {}: {line:?} is not a hex serial or SHA-256 fingerprint",
                    i + 1
                ));
            }
            if hex.len() == 64 {
                r.fingerprints.insert(hex);
            } else {
                r.serials.insert(hex.trim_start_matches('0').to_string());
            }
        }
        Ok(r)
    }

    /// Reads and parses `path`.
    ///
    /// # Errors
    /// Says why the file cannot be read or which line is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.serials.len() + self.fingerprints.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `cert` is listed, by fingerprint or serial.
    pub fn is_revoked(&self, cert: &CertificateDer<'_>) -> bool {
        if self.is_empty() {
            return false;
        }
        if self.fingerprints.contains(&frp_certs::fingerprint(cert)) {
            return true;
        }
        // A certificate whose serial cannot be read cannot have passed verification; if it
        // did anyway, refuse it.
        match frp_certs::serial_hex(cert) {
            Ok(serial) => self.serials.contains(serial.trim_start_matches('0')),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_serial_and_fingerprint() {
        let ca = frp_certs::Ca::generate("t").unwrap();
        let (a, b, c) = (
            ca.issue_client("a").unwrap().cert_der(),
            ca.issue_client("b").unwrap().cert_der(),
            ca.issue_client("c").unwrap().cert_der(),
        );
        let serial = frp_certs::serial_hex(&a).unwrap().to_uppercase();
        let colons: Vec<String> = serial
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into())
            .collect();
        let text = format!(
            "# revoked\n\n{}  # laptop lost\n{}\n",
            colons.join(":"),
            frp_certs::fingerprint(&b)
        );
        let r = Revocations::parse(&text).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.is_revoked(&a));
        assert!(r.is_revoked(&b));
        assert!(!r.is_revoked(&c));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Revocations::parse("abcd\nnot-hex\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(Revocations::parse(&"a".repeat(65)).is_err());
        assert!(Revocations::parse("").unwrap().is_empty());
    }
}
