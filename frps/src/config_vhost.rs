//! The virtual-host keys of `frps.toml`: `vhostHTTPPort`, `vhostHTTPSPort`,
//! `vhostHTTPTimeout`, `vhostBodyIdleTimeout`, `vhostUpgradeIdleTimeout`,
//! `vhostMaxConnections`, `vhostMaxConnectionsPerIP`, `vhostAuthMaxFailures`,
//! `vhostAuthMaxBackoff`, `subDomainHost`,
//! `allowDomains` (global and per client) and the certificates for TLS termination,
//! `[[vhostHTTPS.certificates]]` (each must cover its `domains`; a name has one certificate).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use frp_runtime::config::{error_chain, resolve};
use serde::Deserialize;

use crate::config::ServerFile;
use crate::config_limits::in_range;
use crate::domains::{DomainPattern, DomainPolicy, DomainSet};
use crate::vhost::tls::cert_covers;
use crate::vhost::{CertStore, VhostSettings};

/// `[vhostHTTPS]`: how frps serves its HTTPS port beyond passthrough.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VhostHttpsSection {
    /// Certificates frps terminates TLS with, for `http` proxies of those names.
    #[serde(default)]
    pub certificates: Vec<CertEntry>,
    /// Certificates obtained from an ACME CA (`[vhostHTTPS.acme]`).
    pub acme: Option<crate::acme::settings::AcmeSection>,
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
    clocks(file, &mut s)?;
    connection_limits(file, &mut s)?;
    auth_backoff(file, &mut s)?;
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
    if let Some(acme) = file.vhost_https.as_ref().and_then(|v| v.acme.as_ref()) {
        let (http, https) = (s.http_port.is_some(), s.https_port.is_some());
        s.acme = Some(acme.settings(path, http, https)?);
    }
    Ok(s)
}

/// `vhostHTTPTimeout`, `vhostBodyIdleTimeout` and `vhostUpgradeIdleTimeout`, in seconds.
fn clocks(file: &ServerFile, s: &mut VhostSettings) -> Result<(), String> {
    let secs = |key: &str, v: Option<u64>, max: u64, into: &mut Duration| match v {
        None => Ok(()),
        Some(t) if (1..=max).contains(&t) => {
            *into = Duration::from_secs(t);
            Ok(())
        }
        Some(t) => Err(format!(
            "`{key} = {t}`: must be between 1 and {max} seconds"
        )),
    };
    let (response, body, upgrade) = (
        file.vhost_http_timeout,
        file.vhost_body_idle_timeout,
        file.vhost_upgrade_idle_timeout,
    );
    secs("vhostHTTPTimeout", response, 3600, &mut s.response_timeout)?;
    secs(
        "vhostBodyIdleTimeout",
        body,
        86_400,
        &mut s.body_idle_timeout,
    )?;
    secs(
        "vhostUpgradeIdleTimeout",
        upgrade,
        604_800,
        &mut s.upgrade_idle_timeout,
    )
}

/// `vhostMaxConnections` and `vhostMaxConnectionsPerIP`.
fn connection_limits(file: &ServerFile, s: &mut VhostSettings) -> Result<(), String> {
    let limit =
        |key: &str, v: Option<usize>, into: &mut usize| in_range(key, v, 1..=1_000_000, into);
    let total = file.vhost_max_connections;
    limit("vhostMaxConnections", total, &mut s.max_connections)?;
    let per_ip = file.vhost_max_connections_per_ip;
    limit(
        "vhostMaxConnectionsPerIP",
        per_ip,
        &mut s.max_connections_per_ip,
    )
}

/// `vhostAuthMaxFailures` (1 to 1000) and `vhostAuthMaxBackoff` (1 to 86400 seconds).
fn auth_backoff(file: &ServerFile, s: &mut VhostSettings) -> Result<(), String> {
    let failures = file.vhost_auth_max_failures;
    in_range(
        "vhostAuthMaxFailures",
        failures,
        1..=1000,
        &mut s.auth_max_failures,
    )?;
    match file.vhost_auth_max_backoff {
        None => Ok(()),
        Some(t) if (1..=86_400).contains(&t) => {
            s.auth_max_backoff = Duration::from_secs(t);
            Ok(())
        }
        Some(t) => Err(format!(
            "`vhostAuthMaxBackoff = {t}`: must be between 1 and 86400 seconds"
        )),
    }
}

fn certificates(path: &Path, entries: &[CertEntry]) -> Result<CertStore, String> {
    let mut store = CertStore::default();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("vhostHTTPS.certificates[{i}]");
        if e.domains.is_empty() {
            return Err(format!("{at}.domains is empty"));
        }
        let names = DomainSet::parse(&e.domains).map_err(|err| format!("{at}.domains: {err}"))?;
        let loaded = |f: &Path| resolve(path, f);
        let chain = frp_certs::load_certs(&loaded(&e.cert_file))
            .map_err(|err| format!("{at}: {}", error_chain(&err)))?;
        let key = frp_certs::load_key(&loaded(&e.key_file))
            .map_err(|err| format!("{at}: {}", error_chain(&err)))?;
        let sans = match chain.first() {
            Some(leaf) => frp_certs::dns_names(leaf).map_err(|err| format!("{at}: {err}"))?,
            None => return Err(format!("{at}.certFile holds no certificate")),
        };
        for name in names.patterns() {
            if !cert_covers(&sans, name) {
                return Err(format!(
                    "{at}.domains: the certificate is not valid for {name} (its names: {})",
                    sans.join(", ")
                ));
            }
            if store.has(name) {
                return Err(format!(
                    "{at}.domains: {name} already has a certificate in an earlier entry"
                ));
            }
        }
        let config = frp_certs::public_server_tls_config(chain, key)
            .map_err(|err| format!("{at}: {}", error_chain(&err)))?;
        store.add(names.patterns(), Arc::new(config));
    }
    Ok(store)
}

/// `subDomainHost` must have names under it that `allowDomains` allows, or every `subdomain`
/// would be refused: almost certainly a mistake in the file.
///
/// # Errors
/// Names both keys.
pub fn check_subdomain_host(v: &VhostSettings, domains: &DomainPolicy) -> Result<(), String> {
    let Some(base) = &v.subdomain_host else {
        return Ok(());
    };
    let under = DomainPattern::parse(&format!("*.{base}"))?;
    let overlaps = |p: &DomainPattern| under.within(p) || p.within(&under);
    match domains.global.patterns().iter().any(overlaps) {
        true => Ok(()),
        false => Err(format!(
            "`subDomainHost = \"{base}\"`: allowDomains allows no name under it, so every subdomain would be refused; add \"{under}\" to allowDomains"
        )),
    }
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
            per_client.insert(crate::identity::canonical(&c.name), set);
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
    fn idle_clocks_are_configurable_and_bounded() {
        let s = settings("vhostBodyIdleTimeout = 600\nvhostUpgradeIdleTimeout = 86400").unwrap();
        assert_eq!(s.body_idle_timeout, Duration::from_secs(600));
        assert_eq!(s.upgrade_idle_timeout, Duration::from_secs(86_400));
        let d = settings("").unwrap();
        assert_eq!(d.body_idle_timeout, Duration::from_secs(60));
        assert_eq!(d.upgrade_idle_timeout, Duration::from_secs(3600));
        for bad in [
            "vhostBodyIdleTimeout = 0",
            "vhostBodyIdleTimeout = 86401",
            "vhostUpgradeIdleTimeout = 604801",
        ] {
            let e = settings(bad).unwrap_err();
            assert!(
                e.contains(bad) && e.contains("must be between 1 and"),
                "{e}"
            );
        }
    }

    /// A certificate for `names` written to `dir` as web.crt / web.key, and a config path.
    fn web_cert(dir: &Path, names: &[&str]) -> PathBuf {
        let ca = frp_certs::Ca::generate("test").unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = ca.issue_server(&names).unwrap();
        let (crt, key) = (dir.join("web.crt"), dir.join("web.key"));
        frp_certs::write_cert_and_key(&crt, &key, &cert, true).unwrap();
        dir.join("frps.toml")
    }

    fn cert_entry(domains: &str) -> String {
        format!("[[vhostHTTPS.certificates]]\ndomains = [{domains}]\ncertFile = \"web.crt\"\nkeyFile = \"web.key\"\n")
    }

    #[test]
    fn certificates_load_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config = web_cert(dir.path(), &["web.example.com", "a.example.org"]);
        let entry = cert_entry("\"web.example.com\", \"a.example.org\"");
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
        let bad = with_port.replace("a.example.org", "*.org");
        let e = vhost_settings(&config, &file(&bad)).unwrap_err();
        assert!(e.contains("certificates[0].domains"), "{e}");
    }

    #[test]
    fn certificates_must_cover_their_domains_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = web_cert(dir.path(), &["web.example.com"]);
        let load = |entries: &str| {
            vhost_settings(&config, &file(&format!("vhostHTTPSPort = 443\n{entries}")))
        };
        let e = load(&cert_entry("\"*.example.com\"")).unwrap_err();
        assert!(
            e.contains("not valid for *.example.com") && e.contains("web.example.com"),
            "{e}"
        );
        let e = load(&cert_entry("\"other.example.com\"")).unwrap_err();
        assert!(e.contains("not valid for other.example.com"), "{e}");
        let twice = format!(
            "{}{}",
            cert_entry("\"web.example.com\""),
            cert_entry("\"web.example.com\"")
        );
        let e = load(&twice).unwrap_err();
        assert!(
            e.starts_with("vhostHTTPS.certificates[1].domains") && e.contains("earlier entry"),
            "{e}"
        );
    }

    #[test]
    fn auth_backoff_is_configurable_and_bounded() {
        let s = settings("vhostAuthMaxFailures = 3\nvhostAuthMaxBackoff = 60").unwrap();
        assert_eq!(
            (s.auth_max_failures, s.auth_max_backoff),
            (3, Duration::from_secs(60))
        );
        let d = settings("").unwrap();
        assert_eq!(
            (d.auth_max_failures, d.auth_max_backoff),
            (10, Duration::from_secs(600))
        );
        for bad in [
            "vhostAuthMaxFailures = 0",
            "vhostAuthMaxFailures = 1001",
            "vhostAuthMaxBackoff = 0",
            "vhostAuthMaxBackoff = 86401",
        ] {
            let e = settings(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("must be between"), "{e}");
        }
    }

    #[test]
    fn connection_limits_and_the_subdomain_host() {
        let s = settings("vhostMaxConnections = 50\nvhostMaxConnectionsPerIP = 5").unwrap();
        assert_eq!((s.max_connections, s.max_connections_per_ip), (50, 5));
        let d = settings("").unwrap();
        assert_eq!((d.max_connections, d.max_connections_per_ip), (10_000, 256));
        let e = settings("vhostMaxConnectionsPerIP = 0").unwrap_err();
        assert!(e.contains("vhostMaxConnectionsPerIP = 0"), "{e}");
        let check = |text: &str| {
            let f = file(text);
            let v = vhost_settings(Path::new("/etc/frp/frps.toml"), &f).unwrap();
            check_subdomain_host(&v, &domain_policy(&f).unwrap())
        };
        assert!(
            check("subDomainHost = \"apps.example.com\"\nallowDomains = [\"*.example.com\"]")
                .is_ok()
        );
        assert!(
            check("subDomainHost = \"example.com\"\nallowDomains = [\"a.example.com\"]").is_ok()
        );
        let e = check("subDomainHost = \"example.org\"\nallowDomains = [\"*.example.com\"]")
            .unwrap_err();
        assert!(
            e.contains("subDomainHost") && e.contains("*.example.org"),
            "{e}"
        );
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
