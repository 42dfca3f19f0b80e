//! Malformed input, truncation and split reads.

#![allow(clippy::unwrap_used)]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio_util::codec::Decoder;

use crate::tests::{decode_one, encode, encode_header, samples, v4, v6};
use crate::*;

/// Builds a frame with a correct length prefix around `tag` and `body`.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len() + 1).unwrap();
    [&len.to_be_bytes()[..], &[tag], body].concat()
}

fn headers() -> Vec<DataHeader> {
    vec![
        DataHeader {
            proxy: ProxyId(3),
            visitor: v4([198, 51, 100, 7], 40000),
        },
        DataHeader {
            proxy: ProxyId(4),
            visitor: v6("2001:db8::42", 1),
        },
    ]
}

/// Yields at most one byte per read, and returns `Pending` (after waking) every other poll.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    pending: bool,
}

impl Trickle {
    fn new(data: &[u8]) -> Self {
        Self {
            data: data.to_vec(),
            pos: 0,
            pending: false,
        }
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.pending = !self.pending;
        if self.pending {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(&b) = self.data.get(self.pos) {
            buf.put_slice(&[b]);
            self.pos += 1;
        }
        Poll::Ready(Ok(()))
    }
}

struct Failing;

impl AsyncRead for Failing {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset")))
    }
}

#[test]
fn truncation_at_every_offset_needs_more_bytes() {
    for msg in samples() {
        let bytes = encode(&msg);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert!(ControlCodec::new().decode(&mut buf).unwrap().is_none());
            assert_eq!(&buf[..], &bytes[..cut], "decode consumed a partial frame");
            let eof = ControlCodec::new().decode_eof(&mut buf);
            if cut == 0 {
                assert!(eof.unwrap().is_none());
            } else {
                assert!(matches!(eof, Err(CodecError::UnexpectedEof)), "cut {cut}");
            }
        }
    }
}

#[tokio::test]
async fn truncated_data_header_at_every_offset() {
    for h in headers() {
        let bytes = encode_header(&h);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decode_data_header(&mut buf).unwrap(), None);
            assert_eq!(buf.len(), cut);
            let mut short = &bytes[..cut];
            let err = read_data_header(&mut short).await.unwrap_err();
            assert!(
                matches!(err, CodecError::UnexpectedEof),
                "cut {cut}: {err:?}"
            );
        }
    }
}

#[tokio::test]
async fn oversized_length_refused_before_allocating() {
    for len in [u32::try_from(MAX_FRAME_LEN + 1).unwrap(), u32::MAX] {
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&[1, 0]);
        let cap = buf.capacity();
        let err = ControlCodec::new().decode(&mut buf).unwrap_err();
        let expected_len = usize::try_from(len).unwrap();
        assert!(
            matches!(err, CodecError::FrameTooLarge { len, max: MAX_FRAME_LEN } if len == expected_len)
        );
        assert_eq!(
            buf.capacity(),
            cap,
            "decoder reserved memory for a refused frame"
        );
        let err = decode_data_header(&mut buf).unwrap_err();
        assert!(matches!(err, CodecError::FrameTooLarge { .. }));
        assert_eq!(buf.capacity(), cap);
        let err = read_data_header(&mut &buf[..]).await.unwrap_err();
        assert!(matches!(err, CodecError::FrameTooLarge { .. }));
    }
}

#[test]
fn max_length_prefix_is_accepted() {
    let len = u32::try_from(MAX_FRAME_LEN).unwrap();
    let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
    assert!(ControlCodec::new().decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= 4 + MAX_FRAME_LEN);
}

#[tokio::test]
async fn zero_length_is_an_empty_frame() {
    assert!(matches!(
        decode_one(&[0, 0, 0, 0]),
        Err(CodecError::EmptyFrame)
    ));
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    assert!(matches!(
        decode_data_header(&mut buf),
        Err(CodecError::EmptyFrame)
    ));
    let err = read_data_header(&mut &[0u8, 0, 0, 0, 16][..]).await;
    assert!(matches!(err, Err(CodecError::EmptyFrame)));
}

#[tokio::test]
async fn unknown_and_misplaced_tags() {
    for tag in [0, 8, 15, 17, 255] {
        let f = frame(tag, &[]);
        assert!(matches!(decode_one(&f), Err(CodecError::UnknownTag(t)) if t == tag));
        let err = decode_data_header(&mut BytesMut::from(&f[..]));
        assert!(matches!(err, Err(CodecError::UnknownTag(t)) if t == tag));
    }
    let header = encode_header(&headers()[0]);
    let err = decode_one(&header).unwrap_err();
    assert!(matches!(
        err,
        CodecError::UnexpectedTag {
            tag: 16,
            expected: "control message"
        }
    ));
    for msg in samples() {
        let bytes = encode(&msg);
        let err = read_data_header(&mut &bytes[..]).await.unwrap_err();
        assert!(matches!(
            err,
            CodecError::UnexpectedTag {
                expected: "data header",
                ..
            }
        ));
    }
}

#[tokio::test]
async fn trailing_bytes_are_refused() {
    let f = frame(3, &[0, 2, b'h', b'i', 0xaa, 0xbb]);
    assert!(matches!(
        decode_one(&f),
        Err(CodecError::TrailingBytes { count: 2 })
    ));
    let f = frame(16, &[0, 0, 0, 1, 4, 127, 0, 0, 1, 0, 80, 0]);
    let err = decode_data_header(&mut BytesMut::from(&f[..]));
    assert!(matches!(err, Err(CodecError::TrailingBytes { count: 1 })));
    let err = read_data_header(&mut &f[..]).await;
    assert!(matches!(err, Err(CodecError::TrailingBytes { count: 1 })));
}

#[test]
fn fields_cut_short_inside_a_frame() {
    // The string says 5 bytes, the frame holds 3.
    let f = frame(3, &[0, 5, b'a', b'b', b'c']);
    let err = decode_one(&f).unwrap_err();
    assert!(matches!(
        err,
        CodecError::Truncated {
            what: "going-away reason"
        }
    ));
    let f = frame(16, &[0, 0, 0, 1, 6, 0, 0]);
    let err = decode_data_header(&mut BytesMut::from(&f[..])).unwrap_err();
    assert!(matches!(
        err,
        CodecError::Truncated {
            what: "visitor address"
        }
    ));
    let f = frame(1, &[0]);
    assert!(matches!(
        decode_one(&f),
        Err(CodecError::Truncated {
            what: "minor version"
        })
    ));
}

#[test]
fn invalid_utf8_is_refused() {
    let f = frame(3, &[0, 2, 0xff, 0xfe]);
    let err = decode_one(&f).unwrap_err();
    assert!(matches!(
        err,
        CodecError::InvalidUtf8 {
            what: "going-away reason"
        }
    ));
    let f = frame(1, &[0, 0, 0, 0, 0, 1, 0, 2, 0xc3, 0x28, 1, 0, 0]);
    let err = decode_one(&f).unwrap_err();
    assert!(matches!(
        err,
        CodecError::InvalidUtf8 { what: "proxy name" }
    ));
}

#[test]
fn over_long_strings_are_refused() {
    let mut body = vec![0x04, 0x01]; // 1025 bytes of text
    body.extend(std::iter::repeat_n(b'a', 1025));
    let err = decode_one(&frame(3, &body)).unwrap_err();
    assert!(matches!(
        err,
        CodecError::StringTooLong {
            len: 1025,
            max: 1024,
            ..
        }
    ));

    let mut body = vec![0, 0, 0, 0, 0, 1, 0, 65];
    body.extend(std::iter::repeat_n(b'n', 65));
    body.extend([1, 0, 0]);
    let err = decode_one(&frame(1, &body)).unwrap_err();
    assert!(matches!(
        err,
        CodecError::StringTooLong {
            what: "proxy name",
            len: 65,
            max: 64
        }
    ));
}

#[test]
fn invalid_names_are_refused() {
    let f = frame(1, &[0, 0, 0, 0, 0, 1, 0, 3, b'a', b'/', b'b', 1, 0, 0]);
    let err = decode_one(&f).unwrap_err();
    assert!(matches!(
        err,
        CodecError::InvalidName(NameError::InvalidChar('/'))
    ));
    let f = frame(1, &[0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0]);
    let err = decode_one(&f).unwrap_err();
    assert!(matches!(err, CodecError::InvalidName(NameError::Empty)));
}

#[test]
fn too_many_proxies_are_refused() {
    let f = frame(1, &[0, 0, 0, 0, 0x01, 0x01]);
    let err = decode_one(&f).unwrap_err();
    assert!(matches!(
        err,
        CodecError::TooMany {
            what: "proxies",
            count: 257,
            max: 256
        }
    ));
    let f = frame(2, &[0, 0, 0xff, 0xff]);
    let err = decode_one(&f).unwrap_err();
    assert!(matches!(
        err,
        CodecError::TooMany {
            what: "proxy results",
            count: 65535,
            ..
        }
    ));
}

#[test]
fn out_of_domain_values_are_refused() {
    let kind = frame(1, &[0, 0, 0, 0, 0, 1, 0, 1, b'a', 9, 0, 0]);
    let err = decode_one(&kind).unwrap_err();
    assert!(matches!(
        err,
        CodecError::InvalidValue { what: "proxy kind" }
    ));
    let outcome = frame(2, &[0, 0, 0, 1, 0, 1, b'a', 2]);
    let err = decode_one(&outcome).unwrap_err();
    assert!(matches!(
        err,
        CodecError::InvalidValue {
            what: "proxy outcome"
        }
    ));
    let family = frame(16, &[0, 0, 0, 1, 5, 1, 2, 3, 4, 0, 80]);
    let err = decode_data_header(&mut BytesMut::from(&family[..])).unwrap_err();
    assert!(matches!(
        err,
        CodecError::InvalidValue {
            what: "address family"
        }
    ));
}

#[test]
fn split_reads_through_the_codec() {
    let msgs = samples();
    let stream: Vec<u8> = msgs.iter().flat_map(|m| encode(m).to_vec()).collect();
    let mut codec = ControlCodec::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &b in &stream {
        buf.extend_from_slice(&[b]);
        while let Some(msg) = codec.decode(&mut buf).unwrap() {
            got.push(msg);
        }
    }
    assert_eq!(got, msgs);
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn several_frames_in_one_buffer() {
    let msgs = samples();
    let mut buf: BytesMut = msgs.iter().flat_map(|m| encode(m).to_vec()).collect();
    let mut codec = ControlCodec::new();
    for msg in &msgs {
        assert_eq!(codec.decode_eof(&mut buf).unwrap().as_ref(), Some(msg));
    }
    assert!(buf.is_empty());
}

#[tokio::test]
async fn read_data_header_with_one_byte_reads() {
    for h in headers() {
        let mut bytes = encode_header(&h).to_vec();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut r = Trickle::new(&bytes);
        assert_eq!(read_data_header(&mut r).await.unwrap(), h);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }
}

#[tokio::test]
async fn read_data_header_leaves_payload_unread() {
    let h = headers()[1];
    let mut bytes = encode_header(&h).to_vec();
    bytes.extend_from_slice(&encode_header(&h)); // payload that looks like another header
    bytes.extend_from_slice(b"tail");
    let mut r = &bytes[..];
    assert_eq!(read_data_header(&mut r).await.unwrap(), h);
    assert_eq!(r.len(), bytes.len() / 2 + 2);
    assert_eq!(read_data_header(&mut r).await.unwrap(), h);
    assert_eq!(r, b"tail");
}

#[tokio::test]
async fn read_data_header_reports_io_errors() {
    let err = read_data_header(&mut Failing).await.unwrap_err();
    assert!(matches!(err, CodecError::Io(e) if e.kind() == io::ErrorKind::ConnectionReset));
}
