//! How a splice hands what it read from TCP to QUIC without keeping a read buffer while idle.
//!
//! The splice reserves its 64 KiB read buffer only once the socket is readable. What it read
//! then leaves the buffer as a [`Bytes`] for quinn, and the buffer must leave *with no
//! capacity*: keeping it (`clear()` after a small read, or the unused tail that `split()`
//! leaves, which pins the whole allocation) cost every idle connection that had carried one
//! request a 64 KiB block, touched and so resident once the heap had been busy.

use bytes::{Bytes, BytesMut};

/// Reads up to this size are copied out into an allocation of their own, so that a small
/// chunk waiting in quinn for its acknowledgement does not pin a 64 KiB block.
pub(crate) const COPY_BELOW: usize = 4 * 1024;

/// Takes what `buf` holds as one chunk and leaves `buf` empty with no capacity.
pub(crate) fn take_chunk(buf: &mut BytesMut) -> Bytes {
    let buf = std::mem::take(buf);
    if buf.len() < COPY_BELOW {
        Bytes::copy_from_slice(&buf)
    } else {
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 64 * 1024;

    /// A buffer as the splice fills it: 64 KiB reserved, `n` bytes read.
    fn filled(n: usize) -> BytesMut {
        let mut buf = BytesMut::with_capacity(CHUNK);
        buf.extend((0..n).map(|i| (i % 251) as u8));
        buf
    }

    #[test]
    fn a_small_read_is_copied_and_the_buffer_released() {
        let mut buf = filled(100);
        let chunk = take_chunk(&mut buf);
        assert_eq!(buf.capacity(), 0, "no read buffer kept while idle");
        assert_eq!(chunk.len(), 100);
        assert_eq!(chunk, filled(100).freeze());
    }

    #[test]
    fn a_large_read_moves_the_whole_buffer_out() {
        let mut buf = filled(CHUNK - 10);
        let start = buf.as_ptr();
        let chunk = take_chunk(&mut buf);
        assert_eq!(buf.capacity(), 0, "no tail of the buffer kept");
        assert_eq!(chunk.as_ptr(), start, "not copied");
        assert_eq!(chunk, filled(CHUNK - 10).freeze());
    }

    #[test]
    fn the_boundary_is_not_copied() {
        let mut buf = filled(COPY_BELOW);
        let start = buf.as_ptr();
        let chunk = take_chunk(&mut buf);
        assert_eq!((buf.capacity(), chunk.as_ptr()), (0, start));
    }
}
