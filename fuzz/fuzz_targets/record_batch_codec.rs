//! Fuzz target: each codec's decompressor and the record parser behind a *valid* batch header.
//!
//! Input: codec byte (modulo 5: none, gzip, snappy, lz4, zstd), attribute flags byte (timestamp
//! type, transactional, control, delete horizon), record count (big-endian i32), then the
//! records section, which for a compression codec is the compressed payload. The target builds
//! the 61-byte header around it and writes the correct CRC32C, so every input gets past the
//! checksum into the codec and the records. Batches whose records all decode are also written
//! again with `BatchBuilder` and read back, which must give the same records.

#![no_main]

use kingest_fuzz::{check_rewrite, exercise_batch, fuzz_options, wrap_records, CodecInput};
use kingest_protocol::record::RawBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = CodecInput::parse(data) else {
        return;
    };
    let bytes = wrap_records(input.codec, input.flags, input.record_count, input.records);
    let raw = match RawBatch::parse(bytes) {
        Ok(raw) => raw,
        // Only a negative record count is refused before decoding.
        Err(_) => {
            assert!(input.record_count < 0, "a well-formed header was refused");
            return;
        }
    };
    assert_eq!(raw.header().compression(), Ok(input.codec));
    match raw.decode(&fuzz_options(true)) {
        Ok(batch) => {
            exercise_batch(&batch);
            check_rewrite(&batch);
        }
        Err(e) => {
            assert!(
                !matches!(
                    e.kind,
                    kingest_protocol::record::RecordErrorKind::CrcMismatch { .. }
                ),
                "CRC refused on a batch with a correct CRC: {e}"
            );
            std::hint::black_box(e.to_string());
        }
    }
});
