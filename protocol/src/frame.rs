//! Size-prefixed framing.
//!
//! Every Kafka request and response travels as a 4-byte big-endian length followed by that many
//! bytes. [`FrameDecoder::split`] takes whole frames off the front of a read buffer without
//! copying: it looks at the prefix, checks the size against the limit, and only when the whole
//! frame has arrived splits it off (`BytesMut::split_to`), so a response becomes one `Bytes` that
//! every later decoding step slices into.
//!
//! The limit is checked *before* anything is reserved, so a hostile or corrupt prefix is an error,
//! never a 2 GiB allocation.

use bytes::{Buf, BufMut, BytesMut};

use crate::error::FrameError;

/// Kafka's own default for `socket.request.max.bytes` is 100 MiB; the same bound on what we accept.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// Splits size-prefixed frames out of a read buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_size: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames larger than `max_frame_size` bytes (excluding the prefix).
    pub fn new(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    /// The configured limit.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// How many bytes the buffer needs in total before the next frame can be split, once its
    /// prefix is known; lets a reader reserve exactly once per frame.
    pub fn needed(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let size = self.check(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]))?;
        Ok(Some(4 + size))
    }

    /// Splits the next whole frame (without its prefix) off the front of `buf`, or returns
    /// `Ok(None)` when it has not fully arrived yet. Never copies the frame's bytes.
    pub fn split(&self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(total) = self.needed(buf)? else {
            return Ok(None);
        };
        if buf.len() < total {
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(total - 4)))
    }

    fn check(&self, size: i32) -> Result<usize, FrameError> {
        if size < 0 {
            return Err(FrameError::NegativeSize(size));
        }
        let size = size as usize;
        if size > self.max_frame_size {
            return Err(FrameError::TooLarge {
                size,
                limit: self.max_frame_size,
            });
        }
        Ok(size)
    }
}

/// Reserves room for a size prefix at the end of `buf` and returns its position; call
/// [`finish_frame`] with it after writing the frame's body.
pub fn begin_frame(buf: &mut BytesMut) -> usize {
    let at = buf.len();
    buf.put_i32(0);
    at
}

/// Writes the size prefix reserved by [`begin_frame`] at `at`, now that the body is written.
pub fn finish_frame(buf: &mut BytesMut, at: usize) -> Result<(), FrameError> {
    let size = buf.len() - at - 4;
    let prefix = i32::try_from(size).map_err(|_| FrameError::TooLarge {
        size,
        limit: i32::MAX as usize,
    })?;
    buf[at..at + 4].copy_from_slice(&prefix.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(bodies: &[Vec<u8>]) -> BytesMut {
        let mut buf = BytesMut::new();
        for body in bodies {
            let at = begin_frame(&mut buf);
            buf.put_slice(body);
            finish_frame(&mut buf, at).unwrap();
        }
        buf
    }

    #[test]
    fn waits_for_prefix_and_body() {
        let d = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
        assert_eq!(d.split(&mut buf).unwrap(), None);
        buf.put_u8(3);
        buf.put_slice(b"ab");
        assert_eq!(d.split(&mut buf).unwrap(), None, "body incomplete");
        buf.put_slice(b"cX");
        assert_eq!(&d.split(&mut buf).unwrap().unwrap()[..], b"abc");
        assert_eq!(&buf[..], b"X");
    }

    #[test]
    fn oversized_prefix_is_refused_without_allocating() {
        let d = FrameDecoder::new(1024);
        let mut buf = BytesMut::from(&0x7fff_ffffi32.to_be_bytes()[..]);
        let cap = buf.capacity();
        assert_eq!(
            d.split(&mut buf),
            Err(FrameError::TooLarge {
                size: 0x7fff_ffff,
                limit: 1024
            })
        );
        assert_eq!(buf.capacity(), cap);
        let mut neg = BytesMut::from(&(-5i32).to_be_bytes()[..]);
        assert_eq!(d.split(&mut neg), Err(FrameError::NegativeSize(-5)));
    }

    #[test]
    fn split_does_not_copy() {
        let d = FrameDecoder::default();
        let mut buf = framed(&[vec![7; 100]]);
        let start = buf.as_ptr() as usize;
        let frame = d.split(&mut buf).unwrap().unwrap();
        assert_eq!(frame.as_ptr() as usize, start + 4);
    }

    proptest! {
        /// Frames written then read back in arbitrary read-sized pieces come out whole and in order.
        #[test]
        fn round_trip_in_pieces(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
                                chunk in 1usize..64) {
            let d = FrameDecoder::new(1000);
            let wire = framed(&bodies);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.put_slice(piece);
                while let Some(frame) = d.split(&mut buf).unwrap() {
                    out.push(frame.to_vec());
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, bodies);
        }
    }
}
