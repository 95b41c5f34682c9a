//! zstd: one-shot decompression with a per-thread context, into a buffer sized from the frames.
//!
//! `ZSTD_decompressBound` reads the frame headers (their content size, when the producer wrote
//! one) and block headers (when it did not: at most a block's maximum per block) and gives an
//! upper bound of the output without decoding anything. When that bound is within the limit,
//! the whole input is decompressed in one call into a pooled buffer of that size, with a
//! decompression context kept per thread: creating one per batch (what
//! `zstd::stream::read::Decoder` does) was a tenth of the time at 100 B records, and the
//! streaming decoder also copies every block out of its window buffer.
//!
//! The bound comes from the input, so a lying content size can make it wrong: too large, it is
//! still capped by the limit; too small, the decoder stops at the end of the buffer with an
//! error (zstd also checks the content size it decoded against the announced one). A bound
//! above the limit (a compression bomb, or headers claiming one) goes through the streaming
//! decoder, read up to the limit and no further.

use std::cell::RefCell;

use bytes::Bytes;
use zstd::zstd_safe::{self, DCtx};

use super::read_into;
use crate::record::error::RecordErrorKind;
use crate::record::pool;
use crate::record::Compression;

thread_local! {
    /// This thread's decompression context, created on first use.
    static CONTEXT: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

fn corrupt(reason: String) -> RecordErrorKind {
    RecordErrorKind::Decompress {
        codec: Compression::Zstd,
        reason,
    }
}

/// Decompresses zstd frames into a buffer of at most `limit` bytes.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, RecordErrorKind> {
    let bound = zstd_safe::decompress_bound(input).map_err(|_| {
        corrupt("not a sequence of whole zstd frames (corrupt or truncated)".to_owned())
    })?;
    let bound = match usize::try_from(bound) {
        Ok(bound) if bound <= limit => bound,
        _ => return streaming(input, limit),
    };
    let mut out = pool::take(bound);
    match decompress_into(&mut out[..bound], input) {
        Ok(len) => Ok(pool::into_bytes(out, len)),
        Err(e) => {
            pool::give_back(out);
            Err(e)
        }
    }
}

/// One call to `ZSTD_decompressDCtx` with this thread's context (a new one if the thread's is
/// unavailable, as during thread teardown).
fn decompress_into(out: &mut [u8], input: &[u8]) -> Result<usize, RecordErrorKind> {
    let cached = CONTEXT.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.is_none() {
            *slot = DCtx::try_create();
        }
        // A one-shot call starts a new frame whatever the context did before, failed or not.
        slot.as_mut()
            .map(|context| context.decompress(&mut *out, input))
    });
    let result = match cached {
        Ok(Some(result)) => result,
        _ => match DCtx::try_create() {
            Some(mut context) => context.decompress(out, input),
            None => {
                return Err(corrupt(
                    "could not allocate a decompression context".to_owned(),
                ))
            }
        },
    };
    result.map_err(|code| corrupt(zstd_safe::get_error_name(code).to_owned()))
}

/// The streaming decoder, for frames whose bound is above the limit.
fn streaming(input: &[u8], limit: usize) -> Result<Bytes, RecordErrorKind> {
    let decoder =
        zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(e.to_string()))?;
    let hint = input.len().saturating_mul(4).min(limit);
    read_into(decoder, hint, limit, Compression::Zstd)
}
