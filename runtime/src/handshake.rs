//! What both ends know about the QUIC handshake: how frps admits them
//! ([`HandshakeLimits`], `transport.quic.retry` and friends) and what a refused one means, in
//! words ([`TlsRefusal`]).
//!
//! A TLS refusal arrives as a QUIC error carrying a TLS alert number (RFC 8446 §6): the side
//! that refused sends it, the other side receives it in a CONNECTION_CLOSE. The alert number
//! says what kind of problem it was, so the words here come from it, never from the peer's
//! free-text reason (which is untrusted and may be anything).

use std::fmt;
use std::time::Duration;

use quinn::ConnectionError;
use serde::Deserialize;

/// When frps answers a new client with a QUIC Retry, which proves the client's address before
/// any handshake state is kept for it (`transport.quic.retry`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryMode {
    /// Once many handshakes are under way, or many from one address: a flood then holds no
    /// state, and a real client pays one extra round trip.
    #[default]
    Auto,
    /// Always: every new client pays one extra round trip.
    Always,
    /// Never: under a flood of spoofed Initials, new clients may be turned away.
    Never,
}

/// How frps admits QUIC handshakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits {
    /// When to send a Retry.
    pub retry: RetryMode,
    /// Handshakes under way at once from one IPv4 address or IPv6 /64, counted apart for
    /// addresses proven by a Retry and for the others (which a spoofer can use).
    pub per_ip: u32,
    /// How long a handshake from an address not proven by a Retry may take; a proven one
    /// gets [`VALIDATED_HANDSHAKE_TIMEOUT`] or this, whichever is longer.
    pub unvalidated_timeout: Duration,
}

/// Default of `transport.quic.maxHandshakesPerIP`.
pub const DEFAULT_HANDSHAKES_PER_IP: u32 = 32;
/// Default of `transport.quic.handshakeTimeout`, seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT_SECS: u64 = 5;
/// How long a handshake from an address proven by a Retry may take (at least).
pub const VALIDATED_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            retry: RetryMode::Auto,
            per_ip: DEFAULT_HANDSHAKES_PER_IP,
            unvalidated_timeout: Duration::from_secs(DEFAULT_HANDSHAKE_TIMEOUT_SECS),
        }
    }
}

impl HandshakeLimits {
    /// How long a handshake may take, by whether its address was proven by a Retry.
    pub fn timeout(&self, validated: bool) -> Duration {
        if validated {
            self.unvalidated_timeout.max(VALIDATED_HANDSHAKE_TIMEOUT)
        } else {
            self.unvalidated_timeout
        }
    }
}

/// Which end refused, seen from the end that reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBy {
    /// Our TLS stack refused the peer (its certificate, its protocol).
    Us,
    /// The peer refused us and told us with a TLS alert.
    Peer,
}

/// What was wrong, by TLS alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The certificate does not name the host we dialled (alert 42, only when we refused).
    WrongName {
        /// The name we expected.
        expected: String,
        /// The names the certificate is valid for.
        valid: Vec<String>,
    },
    /// Issued by another CA: unknown issuer (48) or a signature that does not verify (51).
    UnknownCa,
    /// Expired or not valid yet (45).
    Expired,
    /// Revoked (44).
    Revoked,
    /// Not meant for this side: the wrong extended key usage (43).
    WrongUsage,
    /// Refused with bad_certificate (42) for a reason we cannot tell: as the other side uses
    /// it, most often a name mismatch.
    BadCertificate,
    /// Could not be verified (46).
    Unverifiable,
    /// No certificate at all (116).
    Missing,
    /// No common application protocol: another frp-quic major version, or not frp-quic (120).
    NoProtocol,
    /// No common TLS version (70).
    NoTlsVersion,
    /// Any other alert.
    Other(u8),
}

impl Problem {
    /// Whether the problem is with a certificate (rather than with the protocol).
    pub fn about_certificate(&self) -> bool {
        !matches!(
            self,
            Problem::NoProtocol | Problem::NoTlsVersion | Problem::Other(_)
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::WrongName { expected, valid } if valid.is_empty() => {
                write!(f, "it is not valid for the name {expected:?}")
            }
            Problem::WrongName { expected, valid } => write!(
                f,
                "it is not valid for the name {expected:?}, only for {}",
                valid.join(", ")
            ),
            Problem::UnknownCa => f.write_str("it was not issued by the trusted CA"),
            Problem::Expired => {
                f.write_str("it has expired or is not valid yet (check both machines' clocks)")
            }
            Problem::Revoked => f.write_str("it is revoked"),
            Problem::WrongUsage => f.write_str(
                "it does not list the extended key usage its side needs (clientAuth for a \
                 client, serverAuth for a server): a server certificate used by a client, the \
                 reverse, or one issued without any usage",
            ),
            Problem::BadCertificate => f.write_str(
                "it is not valid for the name the other side expected (its serverName), or is \
                 malformed (TLS alert bad_certificate)",
            ),
            Problem::Unverifiable => f.write_str("it could not be verified"),
            Problem::Missing => f.write_str("no certificate was presented"),
            Problem::NoProtocol => f.write_str(
                "no common protocol: the other side does not speak frp-quic/1 (another major \
                 version, or not frp-quic)",
            ),
            Problem::NoTlsVersion => f.write_str("no common TLS version (TLS 1.3 is required)"),
            Problem::Other(alert) => write!(f, "TLS alert {alert}"),
        }
    }
}

/// A handshake refused with a TLS alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsRefusal {
    /// Which end refused.
    pub by: RefusedBy,
    /// The TLS alert number.
    pub alert: u8,
    /// What was wrong, in words.
    pub problem: Problem,
}

/// TLS alerts that retrying cannot fix: a certificate refused by either side, a missing client
/// certificate, a certificate signature that does not verify (51), no common protocol version
/// or ALPN (an unsupported frp-quic major version).
const PERMANENT_ALERTS: &[u8] = &[42, 43, 44, 45, 46, 48, 49, 51, 70, 116, 120];

/// QUIC carries TLS alert N as the transport error code 0x100 + N (RFC 9001 §4.8).
fn alert_of(code: u64) -> Option<u8> {
    code.checked_sub(0x100)
        .and_then(|a| u8::try_from(a).ok())
        .filter(|_| code < 0x200)
}

impl TlsRefusal {
    /// The refusal in `e`, when `e` is a TLS alert sent or received.
    pub fn of(e: &ConnectionError) -> Option<Self> {
        let (by, code, reason) = match e {
            ConnectionError::TransportError(t) => (RefusedBy::Us, u64::from(t.code), &*t.reason),
            // The peer's reason text is not used: it is untrusted.
            ConnectionError::ConnectionClosed(c) => (RefusedBy::Peer, u64::from(c.error_code), ""),
            _ => return None,
        };
        Self::from_alert(by, code, reason)
    }

    /// The refusal for a QUIC crypto error `code` (0x100 + the TLS alert).
    fn from_alert(by: RefusedBy, code: u64, reason: &str) -> Option<Self> {
        let alert = alert_of(code)?;
        let problem = match alert {
            42 => wrong_name(reason).unwrap_or(Problem::BadCertificate),
            43 => Problem::WrongUsage,
            44 => Problem::Revoked,
            45 => Problem::Expired,
            46 => Problem::Unverifiable,
            48 | 51 => Problem::UnknownCa,
            70 => Problem::NoTlsVersion,
            116 => Problem::Missing,
            120 => Problem::NoProtocol,
            other => Problem::Other(other),
        };
        Some(Self { by, alert, problem })
    }

    /// The refusal in a TLS-over-TCP handshake's error (the TCP transport): an alert the
    /// peer sent, or a certificate of the peer's that we refused.
    pub fn of_rustls(e: &rustls::Error) -> Option<Self> {
        let (by, alert, reason) = match e {
            rustls::Error::AlertReceived(a) => (RefusedBy::Peer, u8::from(*a), String::new()),
            rustls::Error::InvalidCertificate(c) => (
                RefusedBy::Us,
                u8::from(rustls::AlertDescription::from(c.clone())),
                e.to_string(),
            ),
            rustls::Error::NoApplicationProtocol => (RefusedBy::Us, 120, String::new()),
            _ => return None,
        };
        Self::from_alert(by, u64::from(alert) + 0x100, &reason)
    }

    /// Whether retrying cannot fix it.
    pub fn is_permanent(&self) -> bool {
        PERMANENT_ALERTS.contains(&self.alert)
    }
}

/// The names in rustls's "certificate not valid for name "x"; certificate is only valid for
/// DnsName("a"), IpAddress(1.2.3.4) or ..." (our own TLS stack's text, not the peer's).
fn wrong_name(reason: &str) -> Option<Problem> {
    const NAME: &str = "not valid for name \"";
    let start = reason.find(NAME)? + NAME.len();
    let expected = reason[start..].split('"').next()?.to_string();
    let valid = match reason.split_once("is only valid for ") {
        Some((_, list)) => list
            .split(", ")
            .flat_map(|part| part.split(" or "))
            .map(presented_name)
            .filter(|n| !n.is_empty())
            .collect(),
        None => Vec::new(),
    };
    Some(Problem::WrongName { expected, valid })
}

/// `DnsName("a")` -> `a`, `IpAddress(1.2.3.4)` -> `1.2.3.4`, anything else as it is.
fn presented_name(part: &str) -> String {
    let inner = match (part.find('('), part.rfind(')')) {
        (Some(open), Some(close)) if open < close => &part[open + 1..close],
        _ => part,
    };
    inner.trim().trim_matches('"').to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use quinn::{TransportErrorCode, VarInt};
    use rustls::pki_types::{DnsName, ServerName};

    use super::*;

    /// The error quinn reports when our TLS stack refuses with `e`.
    fn local(e: rustls::Error) -> ConnectionError {
        let alert = match &e {
            rustls::Error::InvalidCertificate(c) => rustls::AlertDescription::from(c.clone()),
            _ => rustls::AlertDescription::HandshakeFailure,
        };
        let code = TransportErrorCode::crypto(u8::from(alert));
        ConnectionError::TransportError(quinn_proto::TransportError {
            code,
            frame: None,
            reason: e.to_string(),
        })
    }

    #[test]
    fn wrong_name_lists_the_valid_names_without_type_names() {
        use rustls::CertificateError::NotValidForNameContext;
        let e = local(rustls::Error::InvalidCertificate(NotValidForNameContext {
            expected: ServerName::DnsName(DnsName::try_from("wrong.example.com").unwrap()),
            presented: vec![
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
            ],
        }));
        let r = TlsRefusal::of(&e).unwrap();
        assert_eq!(r.by, RefusedBy::Us);
        assert!(r.is_permanent());
        let text = r.problem.to_string();
        assert_eq!(
            text,
            "it is not valid for the name \"wrong.example.com\", only for localhost, 127.0.0.1"
        );
    }

    #[test]
    fn another_ca_reads_as_such_from_either_side() {
        let bad_sig = rustls::CertificateError::BadSignature;
        let r = TlsRefusal::of(&local(rustls::Error::InvalidCertificate(bad_sig))).unwrap();
        assert_eq!(
            (r.by, r.problem.clone()),
            (RefusedBy::Us, Problem::UnknownCa)
        );
        assert_eq!(r.problem.to_string(), "it was not issued by the trusted CA");
        let closed = ConnectionError::ConnectionClosed(quinn_proto::ConnectionClose {
            error_code: TransportErrorCode::crypto(48),
            frame_type: None,
            reason: bytes::Bytes::from_static(b"DnsName(\"evil\") \x1b[31m"),
        });
        let r = TlsRefusal::of(&closed).unwrap();
        assert_eq!((r.by, r.problem), (RefusedBy::Peer, Problem::UnknownCa));
    }

    #[test]
    fn only_tls_alerts_are_refusals() {
        assert!(TlsRefusal::of(&ConnectionError::TimedOut).is_none());
        let app = ConnectionError::ApplicationClosed(quinn_proto::ApplicationClose {
            error_code: VarInt::from_u32(0x120),
            reason: bytes::Bytes::new(),
        });
        assert!(TlsRefusal::of(&app).is_none());
        assert_eq!(alert_of(0x200), None);
        assert_eq!(alert_of(0xff), None);
        assert_eq!(alert_of(0x178), Some(120));
    }

    #[test]
    fn unvalidated_handshakes_get_the_short_timeout() {
        let l = HandshakeLimits::default();
        assert_eq!(l.timeout(false), Duration::from_secs(5));
        assert_eq!(l.timeout(true), VALIDATED_HANDSHAKE_TIMEOUT);
        let long = HandshakeLimits {
            unvalidated_timeout: Duration::from_secs(30),
            ..l
        };
        assert_eq!(long.timeout(true), Duration::from_secs(30));
    }
}
