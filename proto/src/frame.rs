//! Framing: the `u32 length | u8 tag | body` envelope, the control-stream codec and the
//! data-stream header.

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::{Decoder, Encoder};

use crate::coding::{addr_len, Decode, Encode};
use crate::{CodecError, ControlMsg, DataHeader, MAX_FRAME_LEN};

/// Size of the length prefix.
const LEN_PREFIX: usize = 4;

const TAG_HELLO: u8 = 1;
const TAG_WELCOME: u8 = 2;
const TAG_GOING_AWAY: u8 = 3;
const TAG_ADD_PROXIES: u8 = 4;
const TAG_ADD_RESULTS: u8 = 5;
const TAG_REMOVE_PROXIES: u8 = 6;
const TAG_PROXIES_CLOSED: u8 = 7;
const TAG_DATA_HEADER: u8 = 16;

/// Codec for the control stream, for use with `tokio_util::codec::{FramedRead, FramedWrite}`.
///
/// Decoding returns `Ok(None)` until a whole frame is buffered; a clean end of stream between
/// frames ends the stream, an end in the middle of a frame is [`CodecError::UnexpectedEof`].
#[derive(Debug, Default, Clone)]
pub struct ControlCodec {
    _private: (),
}

impl ControlCodec {
    /// Creates a codec (it holds no state).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder for ControlCodec {
    type Item = ControlMsg;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ControlMsg>, CodecError> {
        match split_frame(src)? {
            Some(frame) => decode_control_frame(&frame).map(Some),
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<ControlMsg>, CodecError> {
        match self.decode(src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::UnexpectedEof),
        }
    }
}

impl Encoder<ControlMsg> for ControlCodec {
    type Error = CodecError;

    fn encode(&mut self, item: ControlMsg, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_control(&item, dst)
    }
}

impl Encoder<&ControlMsg> for ControlCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &ControlMsg, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_control(item, dst)
    }
}

/// Appends one whole control frame (length prefix included) to `dst`.
///
/// # Errors
///
/// Fails with [`CodecError::StringTooLong`], [`CodecError::TooMany`] or
/// [`CodecError::FrameTooLarge`] if the message breaks a limit the peer would enforce; `dst` is
/// then left as it was.
pub fn encode_control(msg: &ControlMsg, dst: &mut BytesMut) -> Result<(), CodecError> {
    let start = dst.len();
    let result = put_control_frame(msg, dst, start);
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

fn put_control_frame(msg: &ControlMsg, dst: &mut BytesMut, start: usize) -> Result<(), CodecError> {
    dst.put_u32(0); // patched below, once the body length is known
    match msg {
        ControlMsg::Hello(m) => {
            dst.put_u8(TAG_HELLO);
            m.encode(dst)?;
        }
        ControlMsg::Welcome(m) => {
            dst.put_u8(TAG_WELCOME);
            m.encode(dst)?;
        }
        ControlMsg::GoingAway(m) => {
            dst.put_u8(TAG_GOING_AWAY);
            m.encode(dst)?;
        }
        ControlMsg::AddProxies(m) => {
            dst.put_u8(TAG_ADD_PROXIES);
            m.encode(dst)?;
        }
        ControlMsg::AddResults(m) => {
            dst.put_u8(TAG_ADD_RESULTS);
            m.encode(dst)?;
        }
        ControlMsg::RemoveProxies(m) => {
            dst.put_u8(TAG_REMOVE_PROXIES);
            m.encode(dst)?;
        }
        ControlMsg::ProxiesClosed(m) => {
            dst.put_u8(TAG_PROXIES_CLOSED);
            m.encode(dst)?;
        }
    }
    let len = dst.len() - start - LEN_PREFIX;
    let too_large = || CodecError::FrameTooLarge {
        len,
        max: MAX_FRAME_LEN,
    };
    if len > MAX_FRAME_LEN {
        return Err(too_large());
    }
    let prefix = u32::try_from(len).map_err(|_| too_large())?.to_be_bytes();
    let slot = dst
        .get_mut(start..start + LEN_PREFIX)
        .ok_or_else(too_large)?;
    slot.copy_from_slice(&prefix);
    Ok(())
}

/// Appends one whole data-header frame (length prefix included) to `dst`.
pub fn encode_data_header(h: &DataHeader, dst: &mut BytesMut) {
    let len = 1 + 4 + addr_len(&h.visitor);
    dst.reserve(LEN_PREFIX + len);
    // At most 24: the cast cannot truncate.
    dst.put_u32(len as u32);
    dst.put_u8(TAG_DATA_HEADER);
    h.put(dst);
}

/// Decodes one data-header frame from the front of `src`, without I/O.
///
/// Returns `Ok(None)` when `src` does not yet hold the whole frame. On success exactly the frame
/// is removed from `src`; what follows is payload.
///
/// # Errors
///
/// Fails if the frame is malformed, too large or is not a data header.
pub fn decode_data_header(src: &mut BytesMut) -> Result<Option<DataHeader>, CodecError> {
    match split_frame(src)? {
        Some(frame) => decode_data_frame(&frame).map(Some),
        None => Ok(None),
    }
}

/// Reads exactly one data-header frame from `r` and nothing more (the bytes after it belong to
/// the spliced payload). Not cancel-safe.
///
/// Dropping the future midway loses the bytes read so far, so do not race it in `select!`; put a
/// timeout around the whole call instead and drop the stream if it fires.
///
/// # Errors
///
/// [`CodecError::UnexpectedEof`] if the stream ends before the frame does, [`CodecError::Io`] if
/// reading fails, any decoding error if the frame is malformed.
pub async fn read_data_header<R: AsyncRead + Unpin>(r: &mut R) -> Result<DataHeader, CodecError> {
    let mut prefix = [0; LEN_PREFIX];
    read_exact(r, &mut prefix).await?;
    let len = check_len(u32::from_be_bytes(prefix))?;
    let mut frame = vec![0; len];
    read_exact(r, &mut frame).await?;
    decode_data_frame(&frame)
}

async fn read_exact<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), CodecError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(CodecError::UnexpectedEof),
        Err(e) => Err(CodecError::Io(e)),
    }
}

/// Validates a length prefix, before anything is reserved for the frame.
fn check_len(len: u32) -> Result<usize, CodecError> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len == 0 {
        Err(CodecError::EmptyFrame)
    } else if len > MAX_FRAME_LEN {
        Err(CodecError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        })
    } else {
        Ok(len)
    }
}

/// Removes one whole frame from the front of `src` and returns it without its length prefix.
///
/// Returns `Ok(None)` if the frame is incomplete, after reserving room for the rest of it.
fn split_frame(src: &mut BytesMut) -> Result<Option<BytesMut>, CodecError> {
    let Some(prefix) = src.first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let total = LEN_PREFIX + check_len(u32::from_be_bytes(*prefix))?;
    if src.len() < total {
        src.reserve(total - src.len());
        return Ok(None);
    }
    let mut frame = src.split_to(total);
    frame.advance(LEN_PREFIX);
    Ok(Some(frame))
}

fn decode_control_frame(frame: &[u8]) -> Result<ControlMsg, CodecError> {
    let (&tag, body) = frame.split_first().ok_or(CodecError::EmptyFrame)?;
    match tag {
        TAG_HELLO => decode_body(body).map(ControlMsg::Hello),
        TAG_WELCOME => decode_body(body).map(ControlMsg::Welcome),
        TAG_GOING_AWAY => decode_body(body).map(ControlMsg::GoingAway),
        TAG_ADD_PROXIES => decode_body(body).map(ControlMsg::AddProxies),
        TAG_ADD_RESULTS => decode_body(body).map(ControlMsg::AddResults),
        TAG_REMOVE_PROXIES => decode_body(body).map(ControlMsg::RemoveProxies),
        TAG_PROXIES_CLOSED => decode_body(body).map(ControlMsg::ProxiesClosed),
        TAG_DATA_HEADER => Err(CodecError::UnexpectedTag {
            tag,
            expected: "control message",
        }),
        _ => Err(CodecError::UnknownTag(tag)),
    }
}

fn decode_data_frame(frame: &[u8]) -> Result<DataHeader, CodecError> {
    let (&tag, body) = frame.split_first().ok_or(CodecError::EmptyFrame)?;
    match tag {
        TAG_DATA_HEADER => decode_body(body),
        TAG_HELLO | TAG_WELCOME | TAG_GOING_AWAY | TAG_ADD_PROXIES | TAG_ADD_RESULTS
        | TAG_REMOVE_PROXIES | TAG_PROXIES_CLOSED => Err(CodecError::UnexpectedTag {
            tag,
            expected: "data header",
        }),
        _ => Err(CodecError::UnknownTag(tag)),
    }
}

/// Decodes a whole frame body, which must hold exactly one `T`.
fn decode_body<T: Decode>(mut body: &[u8]) -> Result<T, CodecError> {
    let value = T::decode(&mut body)?;
    if !body.is_empty() {
        return Err(CodecError::TrailingBytes { count: body.len() });
    }
    Ok(value)
}
