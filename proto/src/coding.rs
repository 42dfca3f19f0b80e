//! Small building blocks for the wire encodings: a decode/encode trait pair over
//! [`bytes::Buf`]/[`bytes::BufMut`] and checked readers for integers, strings, lists and addresses.
//!
//! Every reader checks `remaining()` before touching the buffer, because `Buf::get_*` panics on
//! short input. Every writer checks the limits before writing anything.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{Buf, BufMut};

use crate::{CodecError, MAX_PROXIES};

/// A value that can be read from a frame body.
pub(crate) trait Decode: Sized {
    /// Reads one value, advancing `buf` past it.
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, CodecError>;
}

/// A value that can be written into a frame body.
pub(crate) trait Encode {
    /// Writes the value, or fails before writing if it breaks a limit.
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), CodecError>;
}

const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

fn need<B: Buf>(buf: &B, n: usize, what: &'static str) -> Result<(), CodecError> {
    if buf.remaining() < n {
        return Err(CodecError::Truncated { what });
    }
    Ok(())
}

pub(crate) fn get_u8<B: Buf>(buf: &mut B, what: &'static str) -> Result<u8, CodecError> {
    need(buf, 1, what)?;
    Ok(buf.get_u8())
}

pub(crate) fn get_u16<B: Buf>(buf: &mut B, what: &'static str) -> Result<u16, CodecError> {
    need(buf, 2, what)?;
    Ok(buf.get_u16())
}

pub(crate) fn get_u32<B: Buf>(buf: &mut B, what: &'static str) -> Result<u32, CodecError> {
    need(buf, 4, what)?;
    Ok(buf.get_u32())
}

/// Reads a `u16`-length-prefixed UTF-8 string of at most `max` bytes.
pub(crate) fn get_string<B: Buf>(
    buf: &mut B,
    what: &'static str,
    max: usize,
) -> Result<String, CodecError> {
    let len = usize::from(get_u16(buf, what)?);
    if len > max {
        return Err(CodecError::StringTooLong { what, len, max });
    }
    need(buf, len, what)?;
    let mut bytes = vec![0; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes).map_err(|_| CodecError::InvalidUtf8 { what })
}

/// Writes a `u16`-length-prefixed string, refusing one longer than `max` bytes.
pub(crate) fn put_str<B: BufMut>(
    buf: &mut B,
    s: &str,
    what: &'static str,
    max: usize,
) -> Result<(), CodecError> {
    let too_long = CodecError::StringTooLong {
        what,
        len: s.len(),
        max,
    };
    if s.len() > max {
        return Err(too_long);
    }
    let len = u16::try_from(s.len()).map_err(|_| too_long)?;
    buf.put_u16(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

/// Reads a `u16`-counted list of at most [`MAX_PROXIES`] items.
pub(crate) fn get_list<T: Decode, B: Buf>(
    buf: &mut B,
    what: &'static str,
) -> Result<Vec<T>, CodecError> {
    get_list_max(buf, what, MAX_PROXIES, T::decode)
}

/// Reads a `u16`-counted list of at most `max` items, each read by `item`; the count is
/// checked before anything is allocated.
pub(crate) fn get_list_max<T, B: Buf>(
    buf: &mut B,
    what: &'static str,
    max: usize,
    mut item: impl FnMut(&mut B) -> Result<T, CodecError>,
) -> Result<Vec<T>, CodecError> {
    let count = usize::from(get_u16(buf, what)?);
    if count > max {
        return Err(CodecError::TooMany { what, count, max });
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(item(buf)?);
    }
    Ok(items)
}

/// Writes a `u16`-counted list, refusing more than [`MAX_PROXIES`] items.
pub(crate) fn put_list<T: Encode, B: BufMut>(
    buf: &mut B,
    items: &[T],
    what: &'static str,
) -> Result<(), CodecError> {
    put_list_max(buf, items, what, MAX_PROXIES, |buf, item| item.encode(buf))
}

/// Writes a `u16`-counted list of at most `max` items, each written by `item`.
pub(crate) fn put_list_max<T, B: BufMut>(
    buf: &mut B,
    items: &[T],
    what: &'static str,
    max: usize,
    mut item: impl FnMut(&mut B, &T) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let too_many = CodecError::TooMany {
        what,
        count: items.len(),
        max,
    };
    if items.len() > max {
        return Err(too_many);
    }
    let count = u16::try_from(items.len()).map_err(|_| too_many)?;
    buf.put_u16(count);
    items.iter().try_for_each(|i| item(buf, i))
}

/// Reads a `u8` that must be 0 or 1.
pub(crate) fn get_bool<B: Buf>(buf: &mut B, what: &'static str) -> Result<bool, CodecError> {
    match get_u8(buf, what)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::InvalidValue { what }),
    }
}

/// Reads a socket address: `u8 family`, 4 or 16 address bytes, `u16 port`.
pub(crate) fn get_addr<B: Buf>(buf: &mut B, what: &'static str) -> Result<SocketAddr, CodecError> {
    match get_u8(buf, what)? {
        FAMILY_V4 => {
            let ip = Ipv4Addr::from(get_u32(buf, what)?);
            let port = get_u16(buf, what)?;
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        FAMILY_V6 => {
            need(buf, 16, what)?;
            let ip = Ipv6Addr::from(buf.get_u128());
            let port = get_u16(buf, what)?;
            Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
        }
        _ => Err(CodecError::InvalidValue {
            what: "address family",
        }),
    }
}

/// Returns the encoded size of a socket address, family byte and port included.
pub(crate) fn addr_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 1 + 4 + 2,
        SocketAddr::V6(_) => 1 + 16 + 2,
    }
}

/// Writes a socket address; IPv6 flow info and scope id are dropped.
pub(crate) fn put_addr<B: BufMut>(buf: &mut B, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            buf.put_u8(FAMILY_V4);
            buf.put_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            buf.put_u8(FAMILY_V6);
            buf.put_slice(&a.ip().octets());
        }
    }
    buf.put_u16(addr.port());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn readers_refuse_short_input() {
        let mut empty: &[u8] = &[];
        assert!(matches!(
            get_u8(&mut empty, "x"),
            Err(CodecError::Truncated { what: "x" })
        ));
        let mut one: &[u8] = &[1];
        assert!(matches!(
            get_u16(&mut one, "x"),
            Err(CodecError::Truncated { .. })
        ));
        let mut three: &[u8] = &[1, 2, 3];
        assert!(matches!(
            get_u32(&mut three, "x"),
            Err(CodecError::Truncated { .. })
        ));
    }

    #[test]
    fn string_length_checked_before_reading() {
        // Claims 2000 bytes but carries none: the limit is reported, not the truncation.
        let mut buf: &[u8] = &[0x07, 0xd0];
        let err = get_string(&mut buf, "text", 1024).unwrap_err();
        assert!(matches!(
            err,
            CodecError::StringTooLong {
                len: 2000,
                max: 1024,
                ..
            }
        ));
    }

    #[test]
    fn list_count_checked_before_allocating() {
        let mut buf: &[u8] = &[0xff, 0xff];
        let err = get_list::<crate::ProxySpec, _>(&mut buf, "proxies").unwrap_err();
        assert!(matches!(err, CodecError::TooMany { count: 65535, .. }));
    }

    #[test]
    fn unknown_address_family() {
        let mut buf: &[u8] = &[5, 1, 2, 3, 4, 0, 80];
        let err = get_addr(&mut buf, "addr").unwrap_err();
        assert!(matches!(
            err,
            CodecError::InvalidValue {
                what: "address family"
            }
        ));
    }

    #[test]
    fn v6_flow_info_and_scope_are_dropped() {
        let addr = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 80, 7, 9));
        let mut out = Vec::new();
        put_addr(&mut out, &addr);
        let back = get_addr(&mut out.as_slice(), "addr").unwrap();
        assert_eq!(back, SocketAddr::from((Ipv6Addr::LOCALHOST, 80)));
    }
}
