//! The revocation list: certificates the server refuses although its CA signed them.
//!
//! The file (`revocationFile` in frps.toml) holds one entry per line, `#` starting a comment:
//!
//! - a certificate serial number in hex, bare or as `openssl x509 -noout -serial` prints it
//!   (`serial=2A8D70D3...`);
//! - the SHA-256 fingerprint of the certificate (64 hex digits), bare or as
//!   `openssl x509 -noout -fingerprint -sha256` prints it (`sha256 Fingerprint=92:C2:...`,
//!   `SHA256 Fingerprint=...` in newer OpenSSL).
//!
//! Colons and case are ignored. A fingerprint of another digest (OpenSSL's default is SHA-1)
//! or any other line is an error naming the line: the whole file is refused, never half read.
//! frps reads it at start (an error stops the start) and again on SIGHUP (an error is logged
//! and the list in force stays); connected clients whose certificate is now listed are
//! disconnected with [`frp_proto::CloseCode::Revoked`]. `frps ca revoke` appends to it.

use std::collections::HashSet;
use std::path::Path;

use rustls::pki_types::CertificateDer;

/// Longest hex accepted for an entry: a SHA-256 fingerprint (a serial has at most 40).
const MAX_HEX: usize = 64;

/// Parsed revocation entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocations {
    serials: HashSet<String>,
    fingerprints: HashSet<String>,
}

/// One entry of the file.
enum Entry {
    Serial(String),
    Fingerprint(String),
}

impl Revocations {
    /// Parses the file format described in the module docs.
    ///
    /// # Errors
    /// Names the first line that is not an entry, and what it should look like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut r = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            match parse_line(line).map_err(|why| format!("line {}: {line:?}: {why}", i + 1))? {
                Entry::Fingerprint(hex) => r.fingerprints.insert(hex),
                Entry::Serial(hex) => r.serials.insert(serial_key(&hex)),
            };
        }
        Ok(r)
    }

    /// Reads and parses `path`.
    ///
    /// # Errors
    /// Says why the file cannot be read or which line is wrong, naming the file.
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

    /// Whether every entry of `other` is in this list too.
    pub fn includes(&self, other: &Self) -> bool {
        other.serials.is_subset(&self.serials) && other.fingerprints.is_subset(&self.fingerprints)
    }

    /// The entries, `serial=HEX` and `sha256=HEX` (lowercase, no colons), sorted.
    pub fn entries(&self) -> Vec<String> {
        let serials = self.serials.iter().map(|s| format!("serial={s}"));
        let prints = self.fingerprints.iter().map(|f| format!("sha256={f}"));
        let mut all: Vec<String> = serials.chain(prints).collect();
        all.sort();
        all
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
            Ok(serial) => self.serials.contains(&serial_key(&serial)),
            Err(_) => true,
        }
    }
}

/// Reads one non-empty line, its comment removed.
fn parse_line(line: &str) -> Result<Entry, String> {
    let Some((label, value)) = line.split_once('=') else {
        let hex = hex_digits(line)?;
        return Ok(match hex.len() {
            MAX_HEX => Entry::Fingerprint(hex),
            _ => Entry::Serial(hex),
        });
    };
    let label = label.trim().to_ascii_lowercase();
    if label == "serial" {
        return hex_digits(value.trim()).map(Entry::Serial);
    }
    let digest = match label.as_str() {
        // `sha256=HEX`, as the admin API lists entries.
        "sha256" => Some("sha256"),
        _ => label.strip_suffix("fingerprint").map(str::trim),
    };
    let Some(digest) = digest else {
        return Err(
            "expected a hex serial, `serial=HEX`, a SHA-256 fingerprint or \
                    `sha256 Fingerprint=HEX`"
                .into(),
        );
    };
    if digest != "sha256" {
        return Err(format!(
            "a {digest} fingerprint: only SHA-256 fingerprints are accepted \
             (openssl x509 -noout -fingerprint -sha256 -in CERT)"
        ));
    }
    let hex = hex_digits(value.trim())?;
    if hex.len() != MAX_HEX {
        return Err(format!(
            "a SHA-256 fingerprint has 64 hex digits, this one {}",
            hex.len()
        ));
    }
    Ok(Entry::Fingerprint(hex))
}

/// A serial as the list compares it: lowercase hex without leading zeros (`0` for zero).
fn serial_key(hex: &str) -> String {
    match hex.trim_start_matches('0') {
        "" => "0".to_string(),
        t => t.to_ascii_lowercase(),
    }
}

/// `text` without colons and lowercase, if that is 1 to 64 hex digits.
fn hex_digits(text: &str) -> Result<String, String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || hex.len() > MAX_HEX || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("not a hex serial or SHA-256 fingerprint".into());
    }
    Ok(hex.to_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `hex` uppercase with a colon between bytes, as OpenSSL prints fingerprints.
    fn openssl_hex(hex: &str) -> String {
        let upper = hex.to_uppercase();
        let pairs: Vec<&str> = upper
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        pairs.join(":")
    }

    fn certs(n: usize) -> Vec<CertificateDer<'static>> {
        let ca = frp_certs::Ca::generate("t").unwrap();
        (0..n)
            .map(|i| ca.issue_client(&format!("c{i}")).unwrap().cert_der())
            .collect()
    }

    #[test]
    fn matches_by_serial_and_fingerprint() {
        let [a, b, c] = <[_; 3]>::try_from(certs(3)).unwrap();
        let serial = frp_certs::serial_hex(&a).unwrap();
        let text = format!(
            "# revoked\n\n{}  # laptop lost\n{}\n",
            openssl_hex(&serial),
            frp_certs::fingerprint(&b)
        );
        let r = Revocations::parse(&text).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.is_revoked(&a));
        assert!(r.is_revoked(&b));
        assert!(!r.is_revoked(&c));
    }

    #[test]
    fn openssl_output_lines_are_accepted() {
        let [a, b, c, d] = <[_; 4]>::try_from(certs(4)).unwrap();
        let serial = frp_certs::serial_hex(&a).unwrap().to_uppercase();
        let fp = |cert| openssl_hex(&frp_certs::fingerprint(cert));
        let text = format!(
            "serial={serial}\nsha256 Fingerprint={}   # openssl 3.0\n  SHA256 Fingerprint={}\n",
            fp(&b),
            fp(&c)
        );
        let r = Revocations::parse(&text).unwrap();
        assert_eq!(r.len(), 3);
        for (cert, revoked) in [(&a, true), (&b, true), (&c, true), (&d, false)] {
            assert_eq!(r.is_revoked(cert), revoked);
        }
    }

    #[test]
    fn other_digests_and_lines_are_refused_with_what_to_write() {
        let sha1 = "SHA1 Fingerprint=9A:7E:C2:1C:47:C4:C0:F3:58:74:84:CD:90:2E:11:A1:EC:30:DD:85";
        let e = Revocations::parse(&format!("serial=0A\n{sha1}\n")).unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("-sha256"), "{e}");
        for bad in [
            "subject=CN = a",
            "serial=",
            "serial=xyz",
            "sha256 Fingerprint=AB:CD",
        ] {
            let e = Revocations::parse(bad).unwrap_err();
            assert!(e.starts_with("line 1:"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Revocations::parse("abcd\nnot-hex\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(Revocations::parse(&"a".repeat(65)).is_err());
        assert!(Revocations::parse("").unwrap().is_empty());
    }
}
