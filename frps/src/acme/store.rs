//! The ACME storage directory: the account's credentials and each name's certificate chain
//! and key, written atomically with mode 0600 (the directory 0700).
//!
//! ```text
//! storageDir/
//!   account-<hash of the directory URL>.json   the account key and URL (instant-acme's format)
//!   certificates/<name>.crt                     the chain as the CA issued it (PEM)
//!   certificates/<name>.key                     its private key (PEM, PKCS#8)
//! ```
//!
//! One account per ACME directory, so switching `directoryURL` (staging to production) does
//! not reuse another CA's account.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};

/// A certificate frps holds for one name.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its TLS config, ready to serve.
    pub config: Arc<rustls::ServerConfig>,
    /// When it starts and stops being valid.
    pub not_before: SystemTime,
    /// When it expires.
    pub not_after: SystemTime,
}

impl Stored {
    /// Builds the TLS config from a PEM chain and key.
    ///
    /// # Errors
    /// When either does not parse or the key does not fit the certificate.
    pub fn from_pem(chain: &str, key: &str) -> Result<Self, String> {
        let certs = parse_chain(chain)?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|e| format!("the private key does not parse: {e}"))?;
        let leaf = certs.first().ok_or("the chain holds no certificate")?;
        let (not_before, not_after) = frp_certs::validity(leaf).map_err(|e| e.to_string())?;
        let config = frp_certs::public_server_tls_config(certs, key).map_err(|e| e.to_string())?;
        Ok(Self {
            config: Arc::new(config),
            not_before,
            not_after,
        })
    }

    /// When it should be renewed: two thirds into its lifetime.
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + life * 2 / 3
    }
}

/// A stored certificate that does not load: its name, and why.
pub type Unreadable = (String, String);

/// The storage directory.
#[derive(Debug, Clone)]
pub struct Storage {
    dir: PathBuf,
}

impl Storage {
    /// The directory at `dir`, created (0700) if missing.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let certs = dir.join("certificates");
        std::fs::create_dir_all(&certs)
            .map_err(|e| format!("creating {}: {e}", certs.display()))?;
        #[cfg(unix)]
        for d in [dir, certs.as_path()] {
            use std::os::unix::fs::PermissionsExt as _;
            let private = std::fs::Permissions::from_mode(0o700);
            std::fs::set_permissions(d, private)
                .map_err(|e| format!("restricting {}: {e}", d.display()))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Where the account for the ACME directory `url` is kept.
    pub fn account_path(&self, url: &str) -> PathBuf {
        let hash = Sha256::digest(url.as_bytes());
        let short: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("account-{short}.json"))
    }

    /// Reads the account credentials for `url`, if stored.
    pub fn read_account(&self, url: &str) -> Option<String> {
        std::fs::read_to_string(self.account_path(url)).ok()
    }

    /// Stores the account credentials for `url`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_account(&self, url: &str, json: &str) -> Result<(), String> {
        let path = self.account_path(url);
        frp_certs::write_atomic(&path, json.as_bytes(), 0o600)
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Stores `name`'s chain and key (key first: a chain is never without its key).
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write_cert(&self, name: &str, chain: &str, key: &str) -> Result<(), String> {
        let (crt, key_path) = self.cert_paths(name);
        for (path, text) in [(&key_path, key), (&crt, chain)] {
            frp_certs::write_atomic(path, text.as_bytes(), 0o600)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Every stored certificate that still parses, by name; the ones that do not are
    /// reported in the second list (name, why) and left on disk.
    pub fn load_all(&self) -> (Vec<(String, Stored)>, Vec<Unreadable>) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        let Ok(entries) = std::fs::read_dir(self.dir.join("certificates")) else {
            return (ok, bad);
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().to_string();
            let Some(name) = file.strip_suffix(".crt") else {
                continue;
            };
            match self.load(name) {
                Ok(stored) => ok.push((name.to_string(), stored)),
                Err(e) => bad.push((name.to_string(), e)),
            }
        }
        (ok, bad)
    }

    fn load(&self, name: &str) -> Result<Stored, String> {
        let (crt, key) = self.cert_paths(name);
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
        };
        Stored::from_pem(&read(&crt)?, &read(&key)?)
    }

    fn cert_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        let certs = self.dir.join("certificates");
        (
            certs.join(format!("{name}.crt")),
            certs.join(format!("{name}.key")),
        )
    }
}

use rustls::pki_types::pem::PemObject as _;

fn parse_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate chain does not parse: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_stored_private_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("acme")).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["app.example.com".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        storage
            .write_cert("app.example.com", &cert.pem(), &key.serialize_pem())
            .unwrap();
        let (ok, bad) = storage.load_all();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].0, "app.example.com");
        assert!(ok[0].1.renew_at() < ok[0].1.not_after);
        let key_file = dir.path().join("acme/certificates/app.example.com.key");
        assert_eq!(frp_certs::mode_of(&key_file), Some(0o600));
        assert_eq!(frp_certs::mode_of(&dir.path().join("acme")), Some(0o700));
        storage.write_account("https://ca/dir", "{}").unwrap();
        assert_eq!(
            storage.read_account("https://ca/dir").as_deref(),
            Some("{}")
        );
        assert!(storage.read_account("https://other/dir").is_none());
    }
}
