//! Fuzz target: `FrameDecoder::split` over an arbitrary byte stream.
//!
//! Input: a byte choosing the frame size limit, a byte choosing the read size, then the stream.
//! The stream is split once as a whole and once fed in read-sized pieces, as a socket delivers
//! it; both must give the same frames and the same error, every frame must be exactly what its
//! prefix announced, and nothing may be reserved for a refused prefix.

#![no_main]

use bytes::{BufMut, BytesMut};
use kingest_protocol::frame::FrameDecoder;
use libfuzzer_sys::fuzz_target;

const LIMITS: [usize; 6] = [
    0,
    1,
    16,
    1024,
    1 << 20,
    kingest_protocol::frame::DEFAULT_MAX_FRAME_SIZE,
];

/// Splits every whole frame off `buf`; the frames, and the error that stopped it if any.
fn drain(d: &FrameDecoder, buf: &mut BytesMut, out: &mut Vec<Vec<u8>>) -> Option<String> {
    loop {
        let before = buf.len();
        let announced = (before >= 4).then(|| i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
        let needed = d.needed(buf);
        match d.split(buf) {
            Ok(Some(frame)) => {
                let size = announced.expect("a frame without a prefix") as usize;
                assert_eq!(frame.len(), size, "frame length vs prefix");
                assert!(size <= d.max_frame_size());
                assert_eq!(needed, Ok(Some(4 + size)));
                assert_eq!(buf.len(), before - 4 - size);
                out.push(frame.to_vec());
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "split consumed bytes without a frame");
                if let Ok(Some(n)) = needed {
                    assert!(n > before);
                }
                return None;
            }
            Err(e) => {
                assert_eq!(buf.len(), before, "split consumed bytes on error");
                assert_eq!(needed.err(), Some(e.clone()));
                return Some(e.to_string());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [limit, read, stream @ ..] = data else {
        return;
    };
    let d = FrameDecoder::new(LIMITS[usize::from(*limit) % LIMITS.len()]);
    let read = usize::from(*read) + 1;

    let mut whole = BytesMut::from(stream);
    let mut frames_whole = Vec::new();
    let err_whole = drain(&d, &mut whole, &mut frames_whole);

    let mut piecewise = BytesMut::new();
    let mut frames_piecewise = Vec::new();
    let mut err_piecewise = None;
    for piece in stream.chunks(read) {
        piecewise.put_slice(piece);
        err_piecewise = drain(&d, &mut piecewise, &mut frames_piecewise);
        if err_piecewise.is_some() {
            break;
        }
    }
    assert_eq!(
        frames_whole, frames_piecewise,
        "frames depend on how the stream was read"
    );
    assert_eq!(
        err_whole, err_piecewise,
        "errors depend on how the stream was read"
    );
    if err_whole.is_none() {
        assert_eq!(
            whole, piecewise,
            "leftover bytes depend on how the stream was read"
        );
    }
});
