//! How frpc reaches frps: `transport.protocol` and `transport.tcpPort` (which transport it
//! dials), the server's address checks, and the dial and reconnect timing.

use std::time::Duration;

use crate::config::{ClientFile, ClientSettings};

/// `transport.protocol`: how frpc reaches frps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// QUIC, falling back to TCP when no QUIC handshake completes within
    /// [`QUIC_HEAD_START`] (at once when UDP is answered with "port unreachable" or the last
    /// session was over TCP); while on TCP, QUIC is probed every [`QUIC_PROBE`] and the
    /// client moves back once it works.
    #[default]
    Auto,
    /// QUIC only (UDP to `serverPort`).
    Quic,
    /// TLS over TCP (HTTP/2 in it) only, to `transport.tcpPort`.
    Tcp,
}

/// How long `auto` gives QUIC alone before it also dials TCP; whichever connects first is
/// used. A QUIC handshake takes one round trip, so only a path that drops UDP waits this.
pub const QUIC_HEAD_START: Duration = Duration::from_secs(3);

/// How often `auto` tries QUIC again while it is connected over TCP (plus up to a quarter of
/// it as jitter, so clients behind one firewall do not probe together).
pub const QUIC_PROBE: Duration = Duration::from_secs(20);

impl Protocol {
    /// Parses the config value.
    ///
    /// # Errors
    /// What the key accepts, naming frp's transports that frp-quic does not have.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "auto" => Ok(Self::Auto),
            "quic" => Ok(Self::Quic),
            "tcp" => Ok(Self::Tcp),
            "kcp" | "websocket" | "wss" => Err(format!(
                "`transport.protocol = {value:?}`: frp's {value} transport is not supported; use \
                 \"auto\" (QUIC, else TLS over TCP), \"quic\" or \"tcp\""
            )),
            other => Err(format!(
                "`transport.protocol = {other:?}`: must be \"auto\" (QUIC, else TLS over TCP), \
                 \"quic\" or \"tcp\""
            )),
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Quic => "quic",
            Self::Tcp => "tcp",
        }
    }
}

/// Refuses a server address, port or name that can never work.
pub(crate) fn check_server(s: &ClientSettings) -> Result<(), String> {
    if s.server_host.trim().is_empty() {
        return Err("`serverAddr` is empty".into());
    }
    if s.server_port == 0 {
        return Err("`serverPort = 0`: must be the server's UDP port (1-65535)".into());
    }
    if s.tcp_port == Some(0) {
        return Err("`transport.tcpPort = 0`: must be the server's TCP port (1-65535)".into());
    }
    rustls::pki_types::ServerName::try_from(s.server_name.as_str()).map_err(|_| {
        format!(
            "`transport.tls.serverName = {:?}` is neither a DNS name nor an IP address",
            s.server_name
        )
    })?;
    Ok(())
}

pub(crate) fn apply_timing(s: &mut ClientSettings, file: &ClientFile) -> Result<(), String> {
    let t = &file.transport;
    if let Some(secs) = t.dial_server_timeout {
        if secs == 0 {
            return Err("`transport.dialServerTimeout = 0`: must be at least 1 second".into());
        }
        s.connect_timeout = Duration::from_secs(secs);
    }
    let ms = Duration::from_millis;
    s.backoff.min = t.reconnect_min_delay_ms.map_or(s.backoff.min, ms);
    s.backoff.max = t.reconnect_max_delay_ms.map_or(s.backoff.max, ms);
    if s.backoff.min.is_zero() || s.backoff.min > s.backoff.max {
        return Err(format!(
            "transport.reconnectMinDelayMs ({:?}) must be at least 1 and at most reconnectMaxDelayMs ({:?})",
            s.backoff.min, s.backoff.max
        ));
    }
    if let Some(g) = file.graceful_shutdown_timeout {
        s.grace = Duration::from_secs(g);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_and_frp_only_ones_are_named() {
        assert_eq!(Protocol::parse("auto"), Ok(Protocol::Auto));
        assert_eq!(Protocol::parse("quic"), Ok(Protocol::Quic));
        assert_eq!(Protocol::parse("tcp"), Ok(Protocol::Tcp));
        let kcp = Protocol::parse("kcp").expect_err("kcp");
        assert!(kcp.contains("kcp transport is not supported"), "{kcp}");
        let typo = Protocol::parse("TCP").expect_err("case");
        assert!(typo.contains("must be \"auto\""), "{typo}");
        assert_eq!(Protocol::default(), Protocol::Auto);
    }
}
