//! Fuzz target: the record batch reader over arbitrary bytes, as a partition's `records` field.
//!
//! `RecordSet` walks the batches (magic 2 and the legacy magic 0/1 message sets), each batch is
//! decoded (a batch refused for its CRC is decoded again without the check, so that arbitrary
//! bytes still reach the decompressors and the record parser), and every record, header and
//! control record is read, with the reader's invariants asserted (see `kingest_fuzz`).

#![no_main]

use bytes::Bytes;
use kingest_fuzz::{exercise_record_set, fuzz_options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    exercise_record_set(Bytes::copy_from_slice(data), &fuzz_options(true), true);
});
