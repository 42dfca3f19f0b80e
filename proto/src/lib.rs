//! The frp-quic wire protocol, without any I/O.
//!
//! This crate turns protocol messages into bytes and back. It owns no sockets and knows nothing
//! of QUIC libraries: the client and server crates move the bytes over quinn streams. The only
//! async function, [`read_data_header`], is generic over [`tokio::io::AsyncRead`].
//!
//! # Versioning
//!
//! The major version lives in the TLS ALPN ([`ALPN`], `frp-quic/1`): peers with different major
//! versions fail the handshake. The minor version ([`PROTOCOL_MINOR`]) travels in [`Hello`] and
//! [`Welcome`]; minor additions must stay backwards compatible.
//!
//! A field that a server must understand to enforce what the client asked for (every field
//! of a [`VhostSpec`] today) is gated by the minor that introduced it: a client sends a proxy
//! that sets such a field only to a server whose `Welcome` minor knows it, and otherwise
//! refuses that proxy itself, naming the key ([`VhostSpec::first_key_newer_than`]). A
//! decoder skips unknown trailing bytes of a `VhostSpec` only so that a newer peer can send
//! fields at their defaults, or hints that change nothing the server enforces; skipping is
//! never how a security setting is meant to degrade.
//!
//! # Streams
//!
//! - **Control stream**: the first bidirectional stream, opened by the client. The client sends
//!   [`Hello`] (its minor version, agent string and the proxies it wants), the server answers
//!   [`Welcome`] with one [`ProxyResult`] per requested proxy (the public address bound, or why it
//!   was refused). Since minor version 1, a client whose server answered with a minor of at
//!   least 1 may then send [`AddProxies`] (its http and https proxies: a minor-0 server cannot
//!   decode them, so they never travel in the `Hello`), answered by [`AddResults`]. Since
//!   minor 2 the client may send `AddProxies` (any kind) and [`RemoveProxies`] whenever it
//!   reloads; the server answers removals, and announces proxies its own reload withdrew,
//!   with [`ProxiesClosed`]. Either side
//!   may send [`GoingAway`] before a graceful shutdown. Use
//!   [`ControlCodec`] with `tokio_util::codec::{FramedRead, FramedWrite}`.
//! - **Data streams**: opened by the server, one per public (visitor) connection. The stream
//!   starts with one [`DataHeader`] frame (proxy id, visitor address); every byte after it is raw
//!   payload, spliced both ways. See [`encode_data_header`] and [`read_data_header`].
//! - Errors end streams and connections with the codes in [`StreamCode`] and [`CloseCode`].
//!
//! # Frames
//!
//! Every frame is `u32 length | u8 tag | body`. `length` counts the tag and the body and must be
//! in `1..=MAX_FRAME_LEN` ([`MAX_FRAME_LEN`] is 64 KiB); it is checked before any memory is
//! reserved. Decoding a frame must consume its body exactly; unknown tags are errors.
//!
//! | tag | message      | body |
//! |-----|--------------|------|
//! | 1   | [`Hello`]     | `u16 minor`, `text agent`, `list<ProxySpec>` |
//! | 2   | [`Welcome`]   | `u16 minor`, `list<ProxyResult>` |
//! | 3   | [`GoingAway`] | `text reason` |
//! | 4   | [`AddProxies`]| `list<ProxySpec>` (since minor 1) |
//! | 5   | [`AddResults`]| `list<ProxyResult>` (since minor 1) |
//! | 6   | [`RemoveProxies`] | `list<name>` (since minor 2) |
//! | 7   | [`ProxiesClosed`] | `list<name, text reason>` (since minor 2) |
//! | 16  | [`DataHeader`]| `u32 proxy id`, `addr visitor` |
//!
//! Field encodings (all integers big-endian):
//!
//! - `name`: `u16 len` + UTF-8 bytes, `len <= MAX_NAME_LEN`, then validated as a [`ProxyName`].
//! - `text`: `u16 len` + UTF-8 bytes, `len <= MAX_TEXT_LEN`.
//! - `list<T>`: `u16 count` (`<= MAX_PROXIES`, checked before allocating) followed by `count`
//!   items.
//! - `addr`: `u8 family` (4 or 6), then 4 or 16 address bytes, then `u16 port`. IPv6 flow info
//!   and scope id are not transmitted (they decode as 0).
//! - `ProxySpec`: `name`, `u8 kind` (1 = tcp, 2 = http, 3 = https), `u16 remote_port` (0 = the
//!   server picks), then for http and https only a `VhostSpec` (since minor 1): `u16 len` and
//!   that many bytes, of which a decoder reads the fields it knows and skips the rest, so later
//!   minors can append fields (the layout is in `wire_vhost.rs`: domains, subdomain, locations,
//!   header rewrites, basic-auth user and password, CORS, redirect, encoded slashes). Its
//!   lists hold at most
//!   [`vhost::MAX_VHOST_ITEMS`] entries.
//! - `ProxyResult`: `name`, then `u8 outcome`: 0 = bound (`u32 proxy id`, `addr`),
//!   1 = refused (`text reason`).
//!
//! Encoding refuses values the peer would refuse (over-long strings, too many proxies, a frame
//! over [`MAX_FRAME_LEN`]) with the same [`CodecError`] variants, and writes nothing in that case.
//! A decoding error leaves the stream in an unknown state: close the connection (or reset the
//! stream) instead of reading on.

mod codes;
mod coding;
mod error;
mod frame;
mod messages;
mod name;
pub mod vhost;
mod wire;
mod wire_vhost;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_decode;
#[cfg(test)]
mod tests_golden;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_vhost_wire;

pub use codes::{CloseCode, StreamCode};
pub use error::CodecError;
pub use frame::{
    decode_data_header, encode_control, encode_data_header, read_data_header, ControlCodec,
};
pub use messages::{
    AddProxies, AddResults, ControlMsg, DataHeader, GoingAway, Hello, ProxiesClosed, ProxyClosed,
    ProxyId, ProxyKind, ProxyOutcome, ProxyResult, ProxySpec, RemoveProxies, Welcome,
};
pub use name::{NameError, ProxyName};
pub use vhost::{CorsSpec, HeaderPair, Secret, VhostSpec};

/// TLS ALPN protocol id; it carries the protocol's major version.
pub const ALPN: &[u8] = b"frp-quic/1";

/// Minor protocol version sent in [`Hello`] and [`Welcome`].
///
/// - 0: tcp proxies.
/// - 1: http and https proxies (kinds 2 and 3, with a length-prefixed [`VhostSpec`] after the
///   remote port), registered with [`AddProxies`] once the [`Welcome`] shows a server of
///   minor 1 or later. The `Hello` itself carries only tcp proxies, the same bytes as in
///   minor 0, so an older server still serves those.
/// - 2: live reconfiguration. [`AddProxies`] may carry any kind and be sent any number of
///   times; [`RemoveProxies`] withdraws proxies, answered by [`ProxiesClosed`], which the
///   server also sends unprompted when its reloaded policy withdraws a proxy. A client sends
///   these only to a server whose `Welcome` minor is at least 2 (otherwise it applies a
///   reload by reconnecting), and a server sends `ProxiesClosed` unprompted only to a client
///   whose `Hello` minor is at least 2.
pub const PROTOCOL_MINOR: u16 = 2;

/// Largest accepted value of a frame's `u32` length prefix (tag plus body).
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Longest proxy name, in bytes (names are ASCII, so also in characters).
pub const MAX_NAME_LEN: usize = 64;

/// Longest free-form text (refusal and shutdown reasons, agent strings), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;

/// Most proxies in one [`Hello`], and most results in one [`Welcome`].
pub const MAX_PROXIES: usize = 256;

/// Longest refusal reason that always fits: a [`Welcome`] of [`MAX_PROXIES`] refusals with
/// maximal names and reasons of this length is still one frame (longer reasons may not be).
pub const MAX_SAFE_REASON_LEN: usize = 186;

/// Cuts `s` to at most `max` bytes, on a character boundary, so it passes a text limit.
pub fn truncate_text(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod lib_tests {
    use super::truncate_text;

    #[test]
    fn truncate_text_respects_char_boundaries() {
        assert_eq!(truncate_text("hello", 10), "hello");
        assert_eq!(truncate_text("hello", 3), "hel");
        assert_eq!(truncate_text("h\u{e9}llo", 2), "h");
        assert_eq!(truncate_text("\u{1F600}", 3), "");
        assert_eq!(truncate_text("", 0), "");
    }
}
