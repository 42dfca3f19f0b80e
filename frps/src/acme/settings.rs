//! `[vhostHTTPS.acme]` in frps.toml.

use std::path::{Path, PathBuf};

use frp_runtime::config::resolve;
use serde::Deserialize;

use crate::domains::DomainSet;

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`directoryURL = "staging"`): untrusted certificates,
/// generous rate limits, for trying a setup out.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AcmeSection {
    /// The contact address given to the CA (expiry warnings, policy changes).
    pub email: Option<String>,
    /// The ACME directory: a URL, or `production` / `staging` for Let's Encrypt's.
    #[serde(rename = "directoryURL")]
    pub directory_url: Option<String>,
    /// Where the account and certificates are kept (default `acme` next to frps.toml).
    pub storage_dir: Option<PathBuf>,
    /// A CA certificate (PEM) to trust for the ACME server's own HTTPS (a private CA).
    pub ca_file: Option<PathBuf>,
    /// `tls-alpn-01` (default, on `vhostHTTPSPort`) or `http-01` (on `vhostHTTPPort`).
    pub challenge: Option<String>,
    /// The names (or `*.` patterns of names) to obtain certificates for; default: every
    /// name an http proxy holds.
    pub domains: Option<Vec<String>>,
}

/// How the CA checks that frps answers for a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeKind {
    /// A special certificate on the HTTPS port (RFC 8737).
    TlsAlpn01,
    /// A file under `/.well-known/acme-challenge/` on the HTTP port.
    Http01,
}

/// The settings in force.
#[derive(Clone, Debug, PartialEq)]
pub struct AcmeSettings {
    /// The contact address.
    pub email: Option<String>,
    /// The ACME directory URL.
    pub directory_url: String,
    /// The storage directory.
    pub storage_dir: PathBuf,
    /// The ACME server's CA, when not a public one.
    pub ca_file: Option<PathBuf>,
    /// The challenge type.
    pub challenge: ChallengeKind,
    /// Which names; `None`: all that http proxies hold.
    pub domains: Option<DomainSet>,
}

impl AcmeSection {
    /// Checks the section; `http` and `https` say whether `vhostHTTPPort` and
    /// `vhostHTTPSPort` are set.
    ///
    /// # Errors
    /// Names the key and what is wrong with it.
    pub fn settings(&self, path: &Path, http: bool, https: bool) -> Result<AcmeSettings, String> {
        if !https {
            return Err(
                "[vhostHTTPS.acme] needs vhostHTTPSPort (where the certificates are served)".into(),
            );
        }
        let challenge = match self.challenge.as_deref() {
            None | Some("tls-alpn-01") => ChallengeKind::TlsAlpn01,
            Some("http-01") if http => ChallengeKind::Http01,
            Some("http-01") => return Err(
                "vhostHTTPS.acme.challenge = \"http-01\" needs vhostHTTPPort (the CA asks port 80)"
                    .into(),
            ),
            Some(other) => {
                return Err(format!(
                    "vhostHTTPS.acme.challenge = {other:?}: expected \"tls-alpn-01\" or \"http-01\""
                ))
            }
        };
        let directory_url = match self.directory_url.as_deref() {
            None | Some("production") => LETS_ENCRYPT.to_string(),
            Some("staging") => LETS_ENCRYPT_STAGING.to_string(),
            Some(url) if is_https_url(url) => url.to_string(),
            Some(url) => {
                return Err(format!(
                    "vhostHTTPS.acme.directoryURL = {url:?}: an https:// URL, \"production\" or \"staging\""
                ))
            }
        };
        let email = self
            .email
            .as_deref()
            .map(|e| e.strip_prefix("mailto:").unwrap_or(e));
        if let Some(email) = email {
            if !is_email(email) {
                return Err(format!(
                    "vhostHTTPS.acme.email = {email:?}: not an email address"
                ));
            }
        }
        let domains = match &self.domains {
            None => None,
            Some(d) => {
                Some(DomainSet::parse(d).map_err(|e| format!("vhostHTTPS.acme.domains: {e}"))?)
            }
        };
        let storage = self
            .storage_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("acme"));
        let storage_dir = resolve(path, &storage);
        if storage.as_os_str().is_empty() || storage_dir == resolve(path, Path::new(".")) {
            let why = "vhostHTTPS.acme.storageDir: name a directory of its own, not frps.toml's";
            return Err(why.into());
        }
        let ca_file = self.ca_file.as_ref().map(|f| resolve(path, f));
        if let Some(ca) = &ca_file {
            frp_certs::load_certs(ca).map_err(|e| format!("vhostHTTPS.acme.caFile: {e}"))?;
        }
        Ok(AcmeSettings {
            email: email.map(str::to_string),
            directory_url,
            storage_dir,
            ca_file,
            challenge,
            domains,
        })
    }
}

/// `user@domain.tld`, without spaces or control characters.
fn is_email(email: &str) -> bool {
    let Some((user, domain)) = email.split_once('@') else {
        return false;
    };
    let clean = |s: &str| !s.contains(|c: char| c.is_whitespace() || c.is_control() || c == '@');
    !user.is_empty() && clean(user) && clean(domain) && domain.contains('.')
}

/// `https://HOST[:PORT]/...` with a host, and no spaces or control characters.
fn is_https_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    !host.is_empty() && !url.contains(|c: char| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(toml: &str, http: bool) -> Result<AcmeSettings, String> {
        let s: AcmeSection = toml::from_str(toml).map_err(|e| e.to_string())?;
        s.settings(Path::new("/etc/frp/frps.toml"), http, true)
    }

    #[test]
    fn defaults_and_presets() {
        let s = parse("email = \"ops@example.com\"", false).unwrap();
        assert_eq!(s.directory_url, LETS_ENCRYPT);
        assert_eq!(s.challenge, ChallengeKind::TlsAlpn01);
        assert_eq!(s.storage_dir, Path::new("/etc/frp/acme"));
        let s = parse("directoryURL = \"staging\"\nchallenge = \"http-01\"", true).unwrap();
        assert_eq!(s.directory_url, LETS_ENCRYPT_STAGING);
        assert_eq!(s.challenge, ChallengeKind::Http01);
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("challenge = \"http-01\"", false).unwrap_err();
        assert!(e.contains("vhostHTTPPort"), "{e}");
        let e = parse("challenge = \"dns-01\"", true).unwrap_err();
        assert!(e.contains("tls-alpn-01"), "{e}");
        let e = parse("directoryURL = \"http://ca/dir\"", true).unwrap_err();
        assert!(e.contains("https://"), "{e}");
        for bad in ["nobody", "@", "a@b", "a b@example.com"] {
            let e = parse(&format!("email = \"{bad}\""), true).unwrap_err();
            assert!(e.contains("email"), "{e}");
        }
        let s = parse("email = \"mailto:ops@example.com\"", true).unwrap();
        assert_eq!(
            s.email.as_deref(),
            Some("ops@example.com"),
            "mailto: is added once"
        );
        for bad in ["https://", "https://exa mple/dir", "https:///dir"] {
            let e = parse(&format!("directoryURL = \"{bad}\""), true).unwrap_err();
            assert!(e.contains("directoryURL"), "{e}");
        }
        for bad in ["storageDir = \".\"", "storageDir = \"\""] {
            let e = parse(bad, true).unwrap_err();
            assert!(e.contains("storageDir"), "{e}");
        }
        let e = parse("domains = [\"a..b\"]", true).unwrap_err();
        assert!(e.contains("domains"), "{e}");
        assert!(parse("colour = 1", true).unwrap_err().contains("colour"));
        let s: AcmeSection = toml::from_str("").unwrap();
        assert!(s
            .settings(Path::new("f"), true, false)
            .unwrap_err()
            .contains("vhostHTTPSPort"));
    }
}
