//! Fuzz target for the frp-proto frame decoders.
//!
//! The input is read as the bytes of a control stream and, separately, as the start of a data
//! stream. Neither decoder may panic, whatever the input. Every control message that decodes must
//! re-encode (with `encode_control`) to exactly the frame it came from (or, when it carries an
//! http/https proxy, whose length-prefixed vhost spec may hold fields a later minor appends and
//! this version skips, to a frame no longer than it) and decode back to the same message; the same holds for a data header and `encode_data_header`. Feeding the input in small
//! chunks must give the same messages and the same outcome as feeding it all at once.

#![no_main]

use bytes::BytesMut;
use frp_proto::{decode_data_header, encode_control, encode_data_header, ControlCodec, ControlMsg};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let whole = decode_control_stream(data);
    // The chunk size comes from the input so the fuzzer explores it too; 1..=8 bytes.
    let chunk = data.first().map_or(1, |b| usize::from(b % 8) + 1);
    let chunked = decode_control_stream_chunked(data, chunk);
    assert_eq!(
        whole, chunked,
        "chunked decoding (chunks of {chunk}) disagrees"
    );

    data_header(data);
});

/// What decoding a control stream produced: the messages, then `Ok(())` for a clean end of stream
/// or the error (as text) that stopped it.
type Outcome = (Vec<ControlMsg>, Result<(), String>);

/// Decodes `data` as a whole control stream: `decode` until `Ok(None)` or an error, then
/// `decode_eof` on what is left.
fn decode_control_stream(data: &[u8]) -> Outcome {
    let mut codec = ControlCodec::new();
    let mut buf = BytesMut::from(data);
    let mut msgs = Vec::new();
    loop {
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(msg)) => {
                let frame = &data[data.len() - before..data.len() - buf.len()];
                check_round_trip(&msg, frame);
                msgs.push(msg);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed input");
                break;
            }
            Err(e) => return (msgs, Err(e.to_string())),
        }
    }
    // `decode` said the rest is not a whole frame, so at end of stream there is either nothing
    // left or a truncated frame.
    match codec.decode_eof(&mut buf) {
        Ok(None) => {
            assert!(buf.is_empty(), "decode_eof: Ok(None) with bytes left");
            (msgs, Ok(()))
        }
        Ok(Some(msg)) => panic!("decode_eof found a frame decode missed: {msg:?}"),
        Err(e) => (msgs, Err(e.to_string())),
    }
}

/// Like [`decode_control_stream`], but the bytes arrive `chunk` at a time, as from a socket.
fn decode_control_stream_chunked(data: &[u8], chunk: usize) -> Outcome {
    let mut codec = ControlCodec::new();
    let mut buf = BytesMut::new();
    let mut msgs = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => msgs.push(msg),
                Ok(None) => break,
                Err(e) => return (msgs, Err(e.to_string())),
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(None) => (msgs, Ok(())),
        Ok(Some(msg)) => panic!("decode_eof found a frame decode missed: {msg:?}"),
        Err(e) => (msgs, Err(e.to_string())),
    }
}

/// Whether `msg` holds an http/https proxy (a vhost spec whose unknown tail is skipped).
fn has_vhost(msg: &ControlMsg) -> bool {
    let proxies = match msg {
        ControlMsg::Hello(h) => &h.proxies,
        ControlMsg::AddProxies(a) => &a.proxies,
        _ => return false,
    };
    proxies.iter().any(|p| p.kind.is_vhost())
}

/// A decoded message must encode back to the frame it was decoded from (no longer than it when
/// a vhost spec's unknown tail was skipped), and that decodes to the same message.
fn check_round_trip(msg: &ControlMsg, frame: &[u8]) {
    let mut out = BytesMut::new();
    if let Err(e) = encode_control(msg, &mut out) {
        panic!("decoded message does not re-encode: {e}: {msg:?}");
    }
    if has_vhost(msg) {
        assert!(out.len() <= frame.len(), "re-encoding grew the frame");
    } else {
        assert_eq!(
            &out[..],
            frame,
            "re-encoding differs from the decoded frame"
        );
    }
    match ControlCodec::new().decode(&mut out) {
        Ok(Some(again)) => assert_eq!(&again, msg, "round trip changed the message"),
        other => panic!("re-encoded message does not decode: {other:?}"),
    }
    assert!(out.is_empty(), "re-encoded frame left bytes behind");
}

/// Decodes `data` as the start of a data stream; a header that decodes must round-trip, and the
/// bytes after it (payload) must be left untouched.
fn data_header(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    match decode_data_header(&mut buf) {
        Ok(Some(header)) => {
            let consumed = data.len() - buf.len();
            assert_eq!(
                &buf[..],
                &data[consumed..],
                "payload after the header changed"
            );
            let mut out = BytesMut::new();
            encode_data_header(&header, &mut out);
            assert_eq!(
                &out[..],
                &data[..consumed],
                "re-encoding differs from the header"
            );
            assert_eq!(decode_data_header(&mut out).ok().flatten(), Some(header));
            assert!(out.is_empty(), "re-encoded header left bytes behind");
        }
        Ok(None) => assert_eq!(&buf[..], data, "Ok(None) consumed input"),
        Err(_) => {}
    }
}
