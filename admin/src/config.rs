//! `[webServer]` and `enablePrometheus`, frp's keys, validated into [`WebServerSettings`].
//!
//! The admin server is off unless `webServer.port` is set. It listens on `127.0.0.1` by
//! default; any other address needs `webServer.user` and `webServer.password`, unless
//! `webServer.insecureAllowOpen = true` says the operator means it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use frp_runtime::config::{error_chain, resolve};
use frp_runtime::ConfigError;
use serde::Deserialize;

/// Longest accepted user name and password, in bytes.
pub const MAX_CREDENTIAL_LEN: usize = 128;

/// `[webServer]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebServerSection {
    /// IP address to listen on (default `127.0.0.1`; `localhost` is accepted).
    pub addr: Option<String>,
    /// TCP port; absent or `0`: no admin server.
    pub port: Option<u16>,
    /// Basic-auth user name.
    pub user: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// `webServer.tls`: serve HTTPS with this certificate.
    pub tls: Option<WebTlsSection>,
    /// Listen on a non-loopback address without credentials anyway.
    pub insecure_allow_open: Option<bool>,
}

/// `webServer.tls` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebTlsSection {
    /// The certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// Basic-auth credentials; `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The admin server's settings, validated.
#[derive(Clone, Debug)]
pub struct WebServerSettings {
    /// Where to listen (port 0: any free port, for tests).
    pub addr: SocketAddr,
    /// Credentials every request but the health probes must present; `None` only on loopback
    /// or with `insecureAllowOpen`.
    pub credentials: Option<Credentials>,
    /// TLS, when `webServer.tls` is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The certificate file behind `tls`, so a local command-line client can trust it.
    pub tls_cert_file: Option<PathBuf>,
    /// Whether `/metrics` is served (`enablePrometheus`).
    pub prometheus: bool,
}

impl WebServerSettings {
    /// Loopback, any free port, no credentials, no TLS, metrics on: for tests and defaults.
    pub fn loopback(port: u16) -> Self {
        Self {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            credentials: None,
            tls: None,
            tls_cert_file: None,
            prometheus: true,
        }
    }

    /// The URL a local client reaches the server at (`http://127.0.0.1:7500`).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let ip = match self.addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        format!("{scheme}://{}", SocketAddr::new(ip, self.addr.port()))
    }
}

/// `[webServer]` and `enablePrometheus` of the config file at `config`, for a command that
/// calls the running `program`'s admin API (`frpc status`, `frps status`). Only that section
/// is read (not the certificates, nor the proxies), so a reload can be asked for a file with
/// mistakes elsewhere.
///
/// # Errors
/// The file cannot be read or is not TOML, the section is invalid, or it sets no port.
pub fn web_settings_of(config: &Path, program: &str) -> Result<WebServerSettings, String> {
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("{}: cannot read file: {e}", config.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("{}: invalid TOML: {}", config.display(), e.message()))?;
    let section: WebServerSection = match table.get("webServer") {
        Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| {
            format!("{}: webServer: {}", config.display(), e.message())
        })?,
        None => WebServerSection::default(),
    };
    let prometheus = table
        .get("enablePrometheus")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    match section.settings(config, prometheus) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(format!(
            "{}: `webServer.port` is not set, so {program} serves no admin API to ask",
            config.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

impl WebServerSection {
    /// Validates the section; `None` when the admin server is off (no port).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key: a bad address, half of the credentials, a
    /// non-loopback address without credentials, unreadable TLS files, or
    /// `enablePrometheus` without a port.
    pub fn settings(
        &self,
        path: &Path,
        enable_prometheus: bool,
    ) -> Result<Option<WebServerSettings>, ConfigError> {
        let err = |m: String| ConfigError::new(path, m);
        let Some(port) = self.port.filter(|p| *p != 0) else {
            if enable_prometheus {
                return Err(err(
                    "`enablePrometheus = true` needs `webServer.port`: metrics are served there"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let ip = parse_addr(self.addr.as_deref()).map_err(err)?;
        let credentials = self.credentials().map_err(err)?;
        if credentials.is_none() && !ip.is_loopback() && self.insecure_allow_open != Some(true) {
            return Err(err(format!(
                "`webServer.addr = \"{ip}\"` is not a loopback address: set `webServer.user` and \
                 `webServer.password` (or `webServer.insecureAllowOpen = true` to expose the \
                 admin API without credentials)"
            )));
        }
        let (tls, tls_cert_file) = match &self.tls {
            Some(t) => {
                let (tls, cert) = t.load(path).map_err(err)?;
                (Some(tls), Some(cert))
            }
            None => (None, None),
        };
        Ok(Some(WebServerSettings {
            addr: SocketAddr::new(ip, port),
            credentials,
            tls,
            tls_cert_file,
            prometheus: enable_prometheus,
        }))
    }

    fn credentials(&self) -> Result<Option<Credentials>, String> {
        match (&self.user, &self.password) {
            (None, None) => Ok(None),
            (Some(_), None) => Err("`webServer.user` is set without `webServer.password`".into()),
            (None, Some(_)) => Err("`webServer.password` is set without `webServer.user`".into()),
            (Some(user), Some(password)) => {
                if user.is_empty() || user.contains(':') || user.len() > MAX_CREDENTIAL_LEN {
                    return Err(format!(
                        "`webServer.user = {user:?}`: 1 to {MAX_CREDENTIAL_LEN} bytes, no ':'"
                    ));
                }
                if password.is_empty() || password.len() > MAX_CREDENTIAL_LEN {
                    return Err(format!(
                        "`webServer.password`: 1 to {MAX_CREDENTIAL_LEN} bytes"
                    ));
                }
                Ok(Some(Credentials {
                    user: user.clone(),
                    password: password.clone(),
                }))
            }
        }
    }
}

impl WebTlsSection {
    fn load(&self, path: &Path) -> Result<(Arc<rustls::ServerConfig>, PathBuf), String> {
        let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) else {
            return Err("`webServer.tls` needs both `certFile` and `keyFile`".into());
        };
        let (cert, key) = (resolve(path, cert), resolve(path, key));
        let config = frp_certs::load_public_server_tls(&cert, &key)
            .map_err(|e| format!("webServer.tls: {}", error_chain(&e)))?;
        Ok((Arc::new(config), cert))
    }
}

fn parse_addr(addr: Option<&str>) -> Result<IpAddr, String> {
    match addr {
        None | Some("localhost") => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(a) => a.parse().map_err(|_| {
            format!("`webServer.addr = {a:?}`: an IP address (or `localhost`) is expected")
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn section(text: &str) -> WebServerSection {
        toml::from_str(text).unwrap()
    }

    fn settings(text: &str, prom: bool) -> Result<Option<WebServerSettings>, ConfigError> {
        section(text).settings(Path::new("frps.toml"), prom)
    }

    #[test]
    fn off_without_a_port() {
        assert!(settings("", false).unwrap().is_none());
        assert!(settings("port = 0", false).unwrap().is_none());
        let e = settings("", true).unwrap_err().to_string();
        assert!(e.contains("enablePrometheus"), "{e}");
    }

    #[test]
    fn loopback_by_default_and_open_addresses_need_credentials() {
        let s = settings("port = 7500", true).unwrap().unwrap();
        assert_eq!(s.addr, "127.0.0.1:7500".parse().unwrap());
        assert!(s.prometheus && s.credentials.is_none());
        let e = settings("port = 7500\naddr = \"0.0.0.0\"", false).unwrap_err();
        assert!(e.to_string().contains("insecureAllowOpen"), "{e}");
        let open = "port = 7500\naddr = \"0.0.0.0\"\ninsecureAllowOpen = true";
        assert!(settings(open, false).unwrap().is_some());
        let creds = "port = 7500\naddr = \"::\"\nuser = \"admin\"\npassword = \"pw\"";
        let s = settings(creds, false).unwrap().unwrap();
        assert_eq!(s.credentials.as_ref().unwrap().user, "admin");
        assert_eq!(s.url(), "http://127.0.0.1:7500");
    }

    #[test]
    fn credentials_come_in_pairs_and_are_never_shown() {
        let e = settings("port = 1\nuser = \"a\"", false).unwrap_err();
        assert!(
            e.to_string().contains("without `webServer.password`"),
            "{e}"
        );
        let e = settings("port = 1\nuser = \"a:b\"\npassword = \"x\"", false).unwrap_err();
        assert!(e.to_string().contains("no ':'"), "{e}");
        let c = Credentials {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_addresses_and_half_tls_are_named() {
        let e = settings("port = 1\naddr = \"nowhere\"", false).unwrap_err();
        assert!(e.to_string().contains("webServer.addr"), "{e}");
        let e = settings("port = 1\n[tls]\ncertFile = \"a.crt\"", false).unwrap_err();
        assert!(e.to_string().contains("keyFile"), "{e}");
        let e = settings("port = 1\n[tls]\ncertFile = \"a\"\nkeyFile = \"b\"", false);
        assert!(e.unwrap_err().to_string().contains("webServer.tls"));
    }
}
