//! QUIC application error codes used by frp-quic.

use std::fmt;

/// QUIC application close codes (connection level). Values are the wire contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum CloseCode {
    /// Orderly close with nothing to report.
    Normal = 0,
    /// The peer sent something the protocol does not allow.
    ProtocolViolation = 1,
    /// The peer's protocol version is not supported.
    UnsupportedVersion = 2,
    /// The client's certificate is not allowed to connect.
    Unauthorized = 3,
    /// A newer connection from the same client took over.
    Replaced = 4,
    /// The server is shutting down.
    ServerShutdown = 5,
    /// The client is shutting down.
    ClientShutdown = 6,
    /// The client did not send its `Hello` in time.
    HelloTimeout = 7,
    /// An internal error on the closing side.
    Internal = 8,
    /// The client's certificate was revoked.
    Revoked = 9,
    /// A resource limit (connections, proxies, streams) was exceeded.
    LimitExceeded = 10,
    /// Another connection with the same identity is connected and keeps being replaced: two
    /// clients share one certificate. Retry, but not for a minute. (An older client sees an
    /// unknown code, which it retries with its usual backoff.)
    IdentityInUse = 11,
}

impl CloseCode {
    /// Every close code, in wire order.
    pub const ALL: [Self; 12] = [
        Self::Normal,
        Self::ProtocolViolation,
        Self::UnsupportedVersion,
        Self::Unauthorized,
        Self::Replaced,
        Self::ServerShutdown,
        Self::ClientShutdown,
        Self::HelloTimeout,
        Self::Internal,
        Self::Revoked,
        Self::LimitExceeded,
        Self::IdentityInUse,
    ];

    /// Returns the wire value of the code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Maps a wire value back to a code; `None` for values this version does not know.
    pub fn from_code(c: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|x| u64::from(x.code()) == c)
    }

    /// Returns a lowercase, human-readable description of the code.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Normal => "connection closed normally",
            Self::ProtocolViolation => "the peer violated the protocol",
            Self::UnsupportedVersion => "the protocol version is not supported",
            Self::Unauthorized => "the client is not authorized",
            Self::Replaced => "replaced by a newer connection from the same client",
            Self::ServerShutdown => "the server is shutting down",
            Self::ClientShutdown => "the client is shutting down",
            Self::HelloTimeout => "the client did not say hello in time",
            Self::Internal => "internal error",
            Self::Revoked => "the client certificate was revoked",
            Self::LimitExceeded => "a resource limit was exceeded",
            Self::IdentityInUse => "another connection of the same client is connected",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// QUIC stream reset / stop-sending codes. Values are the wire contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum StreamCode {
    /// The client could not connect to the local service.
    LocalUnreachable = 1,
    /// The local service reset its connection.
    LocalReset = 2,
    /// The visitor reset its connection.
    VisitorReset = 3,
    /// The data header named a proxy that does not exist (any more).
    UnknownProxy = 4,
    /// The data header could not be decoded.
    BadHeader = 5,
    /// The resetting side is shutting down.
    Shutdown = 6,
    /// An internal error on the resetting side.
    Internal = 7,
    /// No byte moved either way for the proxy's `idleTimeout`.
    IdleTimeout = 8,
}

impl StreamCode {
    /// Every stream code, in wire order.
    pub const ALL: [Self; 8] = [
        Self::LocalUnreachable,
        Self::LocalReset,
        Self::VisitorReset,
        Self::UnknownProxy,
        Self::BadHeader,
        Self::Shutdown,
        Self::Internal,
        Self::IdleTimeout,
    ];

    /// Returns the wire value of the code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Maps a wire value back to a code; `None` for values this version does not know.
    pub fn from_code(c: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|x| u64::from(x.code()) == c)
    }

    /// Returns a lowercase, human-readable description of the code.
    pub fn describe(self) -> &'static str {
        match self {
            Self::LocalUnreachable => "the local service is unreachable",
            Self::LocalReset => "the local service reset the connection",
            Self::VisitorReset => "the visitor reset the connection",
            Self::UnknownProxy => "unknown proxy",
            Self::BadHeader => "malformed data stream header",
            Self::Shutdown => "shutting down",
            Self::Internal => "internal error",
            Self::IdleTimeout => "no byte either way for the idle timeout",
        }
    }
}

impl fmt::Display for StreamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_round_trip() {
        for (i, code) in CloseCode::ALL.into_iter().enumerate() {
            assert_eq!(u64::from(code.code()), i as u64);
            assert_eq!(CloseCode::from_code(u64::from(code.code())), Some(code));
            assert!(!code.describe().is_empty());
            assert_eq!(code.describe(), code.describe().to_lowercase());
        }
        assert_eq!(CloseCode::from_code(12), None);
        assert_eq!(CloseCode::from_code(u64::MAX), None);
        assert_eq!(CloseCode::from_code(1 << 32), None);
    }

    #[test]
    fn close_code_values_are_stable() {
        assert_eq!(CloseCode::Normal.code(), 0);
        assert_eq!(CloseCode::Unauthorized.code(), 3);
        assert_eq!(CloseCode::HelloTimeout.code(), 7);
        assert_eq!(CloseCode::LimitExceeded.code(), 10);
        assert_eq!(CloseCode::IdentityInUse.code(), 11);
    }

    #[test]
    fn stream_codes_round_trip() {
        for (i, code) in StreamCode::ALL.into_iter().enumerate() {
            assert_eq!(u64::from(code.code()), i as u64 + 1);
            assert_eq!(StreamCode::from_code(u64::from(code.code())), Some(code));
            assert_eq!(code.describe(), code.describe().to_lowercase());
            assert_eq!(code.to_string(), code.describe());
        }
        assert_eq!(StreamCode::from_code(0), None);
        assert_eq!(StreamCode::from_code(9), None);
        assert_eq!(StreamCode::from_code(u64::MAX), None);
    }
}
