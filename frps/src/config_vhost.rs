//! The virtual-host keys of `frps.toml`: `vhostHTTPPort`, `vhostHTTPSPort`,
//! `vhostHTTPTimeout`, `subDomainHost`, `allowDomains` (global and per client) and the
//! certificates for TLS termination, `[[vhostHTTPS.certificates]]`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use frp_runtime::config::{error_chain, resolve};
use serde::Deserialize;

use crate::config::ServerFile;
use crate::domains::{DomainPattern, DomainPolicy, DomainSet};
use crate::vhost::{CertStore, VhostSettings};

/// `[vhostHTTPS]`: how frps serves its HTTPS port beyond passthrough.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VhostHttpsSection {
    /// Certificates frps terminates TLS with, for `http` proxies of those names.
    #[serde(default)]
    pub certificates: Vec<CertEntry>,
}

/// One `[[vhostHTTPS.certificates]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertEntry {
    /// The names (or `*.` wildcards) this certificate is chosen for, by SNI.
    pub domains: Vec<String>,
    /// The certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
}

/// Builds the vhost settings from the file.
///
/// # Errors
/// Names the key and what is wrong with it.
pub fn vhost_settings(path: &Path, file: &ServerFile) -> Result<VhostSettings, String> {
    let port = |p: Option<u16>| p.filter(|p| *p != 0);
    let mut s = VhostSettings {
        http_port: port(file.vhost_http_port),
        https_port: port(file.vhost_https_port),
        ..VhostSettings::default()
    };
    match file.vhost_http_timeout {
        None => {}
        Some(t) if (1..=3600).contains(&t) => s.response_timeout = Duration::from_secs(t),
        Some(t) => {
            return Err(format!(
                "`vhostHTTPTimeout = {t}`: must be between 1 and 3600 seconds"
            ))
        }
    }
    if let Some(host) = &file.sub_domain_host {
        let p = DomainPattern::parse(host).map_err(|e| format!("subDomainHost: {e}"))?;
        if p.is_wildcard() {
            return Err(format!(
                "`subDomainHost = {host:?}`: name the parent domain, without '*.'"
            ));
        }
        s.subdomain_host = Some(p);
    }
    let certs = file
        .vhost_https
        .as_ref()
        .map_or(&[][..], |v| &v.certificates[..]);
    s.certificates = certificates(path, certs)?;
    if !s.certificates.is_empty() && s.https_port.is_none() {
        return Err("[[vhostHTTPS.certificates]] needs vhostHTTPSPort".into());
    }
    Ok(s)
}

fn certificates(path: &Path, entries: &[CertEntry]) -> Result<CertStore, String> {
    let mut store = CertStore::default();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("vhostHTTPS.certificates[{i}]");
        if e.domains.is_empty() {
            return Err(format!("{at}.domains is empty"));
        }
        let names = DomainSet::parse(&e.domains).map_err(|err| format!("{at}.domains: {err}"))?;
        let config = frp_certs::load_public_server_tls(
            &resolve(path, &e.cert_file),
            &resolve(path, &e.key_file),
        )
        .map_err(|err| format!("{at}: {}", error_chain(&err)))?;
        store.add(names.patterns(), Arc::new(config));
    }
    Ok(store)
}

/// Builds the domain policy: the global `allowDomains` and each `[[clients]]` entry's own.
///
/// # Errors
/// Names the entry that is not a domain or wildcard.
pub fn domain_policy(file: &ServerFile) -> Result<DomainPolicy, String> {
    let global = DomainSet::parse(file.allow_domains.as_deref().unwrap_or_default())
        .map_err(|e| format!("allowDomains: {e}"))?;
    let mut per_client = HashMap::new();
    for (i, c) in file.clients.iter().enumerate() {
        if let Some(list) = &c.allow_domains {
            let set =
                DomainSet::parse(list).map_err(|e| format!("clients[{i}].allowDomains: {e}"))?;
            per_client.insert(c.name.clone(), set);
        }
    }
    Ok(DomainPolicy { global, per_client })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(text: &str) -> ServerFile {
        toml::from_str(text).unwrap()
    }

    fn settings(text: &str) -> Result<VhostSettings, String> {
        vhost_settings(Path::new("/etc/frp/frps.toml"), &file(text))
    }

    #[test]
    fn ports_timeout_and_subdomain_host() {
        let s = settings("vhostHTTPPort = 80\nvhostHTTPSPort = 0\nvhostHTTPTimeout = 5\nsubDomainHost = \"Example.com\"").unwrap();
        assert_eq!(
            (s.http_port, s.https_port),
            (Some(80), None),
            "0 disables, as in frp"
        );
        assert_eq!(s.response_timeout, Duration::from_secs(5));
        assert_eq!(s.subdomain_host.unwrap().as_str(), "example.com");
        assert_eq!(
            settings("").unwrap().response_timeout,
            Duration::from_secs(60)
        );
        let e = settings("vhostHTTPTimeout = 0").unwrap_err();
        assert!(e.contains("vhostHTTPTimeout = 0"), "{e}");
        let e = settings("subDomainHost = \"*.example.com\"").unwrap_err();
        assert!(e.contains("without '*.'"), "{e}");
        let e = settings("subDomainHost = \"bad name\"").unwrap_err();
        assert!(e.starts_with("subDomainHost"), "{e}");
    }

    #[test]
    fn certificates_load_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = frp_certs::Ca::generate("test").unwrap();
        let cert = ca.issue_server(&["web.example.com".into()]).unwrap();
        let (crt, key) = (dir.path().join("web.crt"), dir.path().join("web.key"));
        frp_certs::write_cert_and_key(&crt, &key, &cert, false).unwrap();
        let config = dir.path().join("frps.toml");
        let entry = format!(
            "[[vhostHTTPS.certificates]]\ndomains = [\"web.example.com\", \"*.example.org\"]\ncertFile = {:?}\nkeyFile = \"web.key\"\n",
            crt.display()
        );
        let with_port = format!("vhostHTTPSPort = 443\n{entry}");
        let s = vhost_settings(&config, &file(&with_port)).unwrap();
        assert!(s.certificates.find("web.example.com").is_some());
        assert!(s.certificates.find("a.example.org").is_some());
        assert!(s.certificates.find("other.example.com").is_none());
        let e = vhost_settings(&config, &file(&entry)).unwrap_err();
        assert!(e.contains("needs vhostHTTPSPort"), "{e}");
        let missing = with_port.replace("web.key", "nope.key");
        let e = vhost_settings(&config, &file(&missing)).unwrap_err();
        assert!(
            e.starts_with("vhostHTTPS.certificates[0]") && e.contains("nope.key"),
            "{e}"
        );
        let bad = with_port.replace("*.example.org", "*.org");
        let e = vhost_settings(&config, &file(&bad)).unwrap_err();
        assert!(e.contains("certificates[0].domains"), "{e}");
    }

    #[test]
    fn allow_domains_global_and_per_client() {
        let f = file("allowDomains = [\"*.example.com\"]\n[[clients]]\nname = \"alice\"\nallowDomains = [\"a.example.com\"]\n[[clients]]\nname = \"bob\"\n");
        let p = domain_policy(&f).unwrap();
        let name = |s: &str| DomainPattern::parse(s).unwrap();
        assert!(p.check("bob", &name("x.example.com")).is_ok());
        assert!(p.check("alice", &name("a.example.com")).is_ok());
        assert!(p.check("alice", &name("x.example.com")).is_err());
        let e =
            domain_policy(&file("allowDomains = [\"ok.example.com\", \"not ok\"]")).unwrap_err();
        assert!(e.starts_with("allowDomains") && e.contains("not ok"), "{e}");
        let e =
            domain_policy(&file("[[clients]]\nname = \"a\"\nallowDomains = [\"x\"]")).unwrap_err();
        assert!(e.starts_with("clients[0].allowDomains"), "{e}");
        assert!(
            domain_policy(&file("")).unwrap().global.is_empty(),
            "deny by default"
        );
    }
}
