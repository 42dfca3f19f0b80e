//! The config sections both ends share: `transport.tls` and `transport.quic`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{resolve, ConfigError};
use crate::congestion::CongestionControl;
use crate::handshake::{HandshakeLimits, RetryMode};
use crate::transport::QuicTuning;

/// `transport.tls` in both files: this side's certificate and key, and the CA it trusts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsSection {
    /// This side's certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// This side's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// The CA that issued the peer's certificate (PEM).
    pub trusted_ca_file: Option<PathBuf>,
    /// Client only: the name expected in the server certificate (defaults to `serverAddr`).
    pub server_name: Option<String>,
    /// frp's switch; TLS is always on here, so only `true` is accepted.
    pub enable: Option<bool>,
}

/// The three TLS files, resolved and known to be set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// This side's certificate chain.
    pub cert: PathBuf,
    /// This side's private key.
    pub key: PathBuf,
    /// The CA that issued the peer's certificate.
    pub ca: PathBuf,
}

impl TlsSection {
    /// Resolves the file paths against `config_path`; all three are required.
    ///
    /// # Errors
    /// Names the missing key; refuses `enable = false`.
    pub fn files(&self, config_path: &Path) -> Result<TlsFiles, ConfigError> {
        if self.enable == Some(false) {
            return Err(ConfigError::new(
                config_path,
                "`transport.tls.enable = false` is not supported: frp-quic always uses mutual TLS",
            ));
        }
        let need = |v: &Option<PathBuf>, key: &str| {
            v.as_deref()
                .map(|p| resolve(config_path, p))
                .ok_or_else(|| {
                    ConfigError::new(
                        config_path,
                        format!("`transport.tls.{key}` is required (make one with `frps ca`)"),
                    )
                })
        };
        Ok(TlsFiles {
            cert: need(&self.cert_file, "certFile")?,
            key: need(&self.key_file, "keyFile")?,
            ca: need(&self.trusted_ca_file, "trustedCaFile")?,
        })
    }
}

/// `transport.quic` in both files, in seconds as frp has it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuicSection {
    /// Seconds between keep-alives (frp default 10).
    pub keepalive_period: Option<u64>,
    /// Seconds without a packet before the connection is dead (frp default 30).
    pub max_idle_timeout: Option<u64>,
    /// Streams the peer may open at once.
    pub max_incoming_streams: Option<u32>,
    /// frps only: when to answer new clients with a Retry.
    pub retry: Option<RetryMode>,
    /// frps only: handshakes under way at once from one IPv4 address or IPv6 /64.
    #[serde(rename = "maxHandshakesPerIP")]
    pub max_handshakes_per_ip: Option<u32>,
    /// frps only: seconds a handshake from an address not proven by a Retry may take.
    pub handshake_timeout: Option<u64>,
    /// `bbr` (default), `cubic` or `newreno`: the controller of the data this side sends.
    pub congestion_control: Option<CongestionControl>,
}

impl QuicSection {
    /// Applies the set keys over `defaults`.
    ///
    /// # Errors
    /// Refuses a zero timeout, a keep-alive not shorter than the idle timeout, and zero streams.
    pub fn tuning(&self, path: &Path, defaults: QuicTuning) -> Result<QuicTuning, ConfigError> {
        let secs = Duration::from_secs;
        let t = QuicTuning {
            keepalive: self.keepalive_period.map_or(defaults.keepalive, secs),
            idle_timeout: self.max_idle_timeout.map_or(defaults.idle_timeout, secs),
            max_incoming_streams: self
                .max_incoming_streams
                .unwrap_or(defaults.max_incoming_streams),
            congestion: self.congestion_control.unwrap_or(defaults.congestion),
        };
        if t.idle_timeout.is_zero() || t.idle_timeout > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                path,
                format!(
                    "`transport.quic.maxIdleTimeout = {}` must be between 1 and 3600 seconds",
                    t.idle_timeout.as_secs()
                ),
            ));
        }
        if t.keepalive.is_zero() || t.keepalive >= t.idle_timeout {
            return Err(ConfigError::new(
                path,
                format!(
                    "`transport.quic.keepalivePeriod = {}` must be at least 1 and shorter than maxIdleTimeout ({})",
                    t.keepalive.as_secs(),
                    t.idle_timeout.as_secs()
                ),
            ));
        }
        if t.max_incoming_streams == 0 {
            return Err(ConfigError::new(
                path,
                "`transport.quic.maxIncomingStreams = 0`: must be at least 1",
            ));
        }
        Ok(t)
    }

    /// frps's handshake admission from `retry`, `maxHandshakesPerIP` and `handshakeTimeout`.
    ///
    /// # Errors
    /// Refuses a per-address limit outside 1..=1024 and a timeout outside 1..=60 seconds.
    pub fn handshake_limits(&self, path: &Path) -> Result<HandshakeLimits, ConfigError> {
        let mut l = HandshakeLimits::default();
        l.retry = self.retry.unwrap_or(l.retry);
        match self.max_handshakes_per_ip {
            None => {}
            Some(n) if (1..=1024).contains(&n) => l.per_ip = n,
            Some(n) => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "`transport.quic.maxHandshakesPerIP = {n}`: must be between 1 and 1024"
                    ),
                ))
            }
        }
        match self.handshake_timeout {
            None => {}
            Some(s) if (1..=60).contains(&s) => l.unvalidated_timeout = Duration::from_secs(s),
            Some(s) => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "`transport.quic.handshakeTimeout = {s}`: must be between 1 and 60 seconds"
                    ),
                ))
            }
        }
        Ok(l)
    }

    /// Refuses the keys that only frps reads, for frpc.toml.
    ///
    /// # Errors
    /// Names the first such key that is set.
    pub fn refuse_server_keys(&self, path: &Path) -> Result<(), ConfigError> {
        let set = [
            ("retry", self.retry.is_some()),
            ("maxHandshakesPerIP", self.max_handshakes_per_ip.is_some()),
            ("handshakeTimeout", self.handshake_timeout.is_some()),
        ];
        match set.iter().find(|(_, is_set)| *is_set) {
            Some((key, _)) => Err(ConfigError::new(
                path,
                format!(
                    "`transport.quic.{key}` is a server setting: set it in frps.toml; frpc has no \
                     use for it (it follows the server's Retry by itself)"
                ),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> QuicSection {
        toml::from_str(text).expect("valid quic section")
    }

    #[test]
    fn handshake_keys_are_read_and_bounded() {
        let p = Path::new("frps.toml");
        let l = parse("retry = \"always\"\nmaxHandshakesPerIP = 8\nhandshakeTimeout = 3\n")
            .handshake_limits(p)
            .expect("limits");
        assert_eq!(l.retry, RetryMode::Always);
        assert_eq!(
            (l.per_ip, l.unvalidated_timeout),
            (8, Duration::from_secs(3))
        );
        assert_eq!(
            parse("").handshake_limits(p).expect("defaults"),
            HandshakeLimits::default()
        );
        let e = parse("maxHandshakesPerIP = 0\n")
            .handshake_limits(p)
            .expect_err("refused");
        assert!(e.to_string().contains("maxHandshakesPerIP = 0"), "{e}");
        let e = parse("handshakeTimeout = 600\n")
            .handshake_limits(p)
            .expect_err("refused");
        assert!(e.to_string().contains("handshakeTimeout = 600"), "{e}");
        let bad = toml::from_str::<QuicSection>("retry = \"sometimes\"\n").expect_err("refused");
        assert!(bad.to_string().contains("auto"), "{bad}");
    }

    #[test]
    fn frpc_refuses_the_server_only_keys_by_name() {
        let p = Path::new("frpc.toml");
        assert!(parse("keepalivePeriod = 5\n").refuse_server_keys(p).is_ok());
        let e = parse("retry = \"never\"\n")
            .refuse_server_keys(p)
            .expect_err("refused");
        let msg = e.to_string();
        assert!(
            msg.contains("`transport.quic.retry` is a server setting"),
            "{msg}"
        );
        assert!(msg.contains("frps.toml"), "{msg}");
    }
}
