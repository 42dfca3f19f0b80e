//! Errors of the codec.

use crate::NameError;

/// Why a frame could not be encoded or decoded.
///
/// A decoding error other than [`CodecError::Io`] means the peer broke the protocol (or the stream
/// was cut short): close the connection or reset the stream rather than reading on.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The length prefix exceeds the limit; nothing was reserved for it.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Length announced by the prefix (or produced by the encoder).
        len: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// The length prefix is 0, so the frame has no tag.
    #[error("empty frame (length 0)")]
    EmptyFrame,
    /// The tag is not one this protocol version knows.
    #[error("unknown frame tag {0}")]
    UnknownTag(u8),
    /// The tag is known but not valid in this place.
    #[error("unexpected frame tag {tag}, expected a {expected}")]
    UnexpectedTag {
        /// Tag found.
        tag: u8,
        /// What was expected instead.
        expected: &'static str,
    },
    /// The frame body ended before one of its fields.
    #[error("frame body truncated in {what}")]
    Truncated {
        /// Field being read.
        what: &'static str,
    },
    /// The frame body continues after its last field.
    #[error("{count} unexpected trailing bytes after the frame body")]
    TrailingBytes {
        /// Number of bytes left over.
        count: usize,
    },
    /// A string field is longer than its limit.
    #[error("{what} is {len} bytes long, at most {max} are allowed")]
    StringTooLong {
        /// Field concerned.
        what: &'static str,
        /// Length of the string, in bytes.
        len: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// A list has more entries than allowed.
    #[error("too many {what}: {count}, at most {max} are allowed")]
    TooMany {
        /// Field concerned.
        what: &'static str,
        /// Number of entries.
        count: usize,
        /// Largest allowed number.
        max: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("{what} is not valid utf-8")]
    InvalidUtf8 {
        /// Field concerned.
        what: &'static str,
    },
    /// A proxy name field is not a valid [`ProxyName`](crate::ProxyName).
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// A field holds a value outside its domain (unknown kind, address family, outcome...).
    #[error("invalid {what}")]
    InvalidValue {
        /// Field concerned.
        what: &'static str,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended in the middle of a frame")]
    UnexpectedEof,
    /// Reading from the underlying stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
