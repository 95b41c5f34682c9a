//! Fuzz target: the ingest decoders (JSON, CSV, Avro in the Confluent framing, raw) over
//! arbitrary record values and keys, as `kingest run` feeds them from a fetch response.
//!
//! Input: a selector byte, then records separated by `0xFF` (a byte valid UTF-8 never holds,
//! so JSON and CSV seeds stay readable). The selector's low two bits pick the record shape:
//! value only, value and key, key only (a tombstone), or every other record a tombstone. Every
//! decoder gets every record; a decoder's columns cover each type it builds (nested lists and
//! structs, decimals, timestamps in text and as numbers, dates, booleans, metadata columns), so
//! the bytes reach the scanner, the converters and the builders. Checked besides "no panic":
//!
//! - an append either adds exactly one row or none (a refused record leaves no partial row in
//!   any column), and `finish` returns a batch of exactly the rows appended;
//! - every error's message can be rendered (it quotes the input around the failure, which must
//!   cut on character boundaries), and the error carries the record's topic, partition and
//!   offset (its message leaves them to the reporter, who shows them once);
//! - a decoder keeps working after errors: one more valid record is accepted and counted.

#![no_main]

use kingest::decode::every_format::decoders;
use kingest::decode::{DecodeError, RecordContext, RowDecoder};
use kingest_protocol::record::{
    BatchBuilder, BatchOptions, DecodeOptions, Header, Headers, Record, RecordSet,
};
use libfuzzer_sys::fuzz_target;

fn check_error(e: &DecodeError, offset: i64) {
    let text = e.to_string();
    assert!(!text.is_empty());
    assert_eq!((e.topic.as_str(), e.offset), ("fuzz", offset), "{text}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let inputs: Vec<&[u8]> = rest.split(|&b| b == 0xFF).take(64).collect();
    // The records as the consumer hands them over: one v2 batch, read back by the record
    // reader, with the first input also as the value of header `h`.
    let mut builder = BatchBuilder::new(BatchOptions::default());
    let headers = [Header {
        key: b"h",
        value: Some(inputs[0]),
    }];
    for (i, bytes) in inputs.iter().enumerate() {
        let (value, key) = match (selector & 3, i % 2) {
            (0, _) => (Some(*bytes), None),
            (1, _) => (Some(*bytes), Some(*bytes)),
            (2, _) => (None, Some(*bytes)),
            (_, 0) => (Some(*bytes), None),
            _ => (None, Some(*bytes)),
        };
        builder.push(1_700_000_000_000 + i as i64, key, value, &headers);
    }
    let mut set = bytes::BytesMut::new();
    builder.finish_into(&mut set).expect("a batch of fuzz records");
    let mut raws = RecordSet::new(set.freeze());
    let batch = raws
        .next()
        .expect("one batch")
        .expect("a batch we wrote")
        .decode(&DecodeOptions::default())
        .expect("a batch we wrote");
    let records: Vec<_> = batch
        .records()
        .collect::<Result<_, _>>()
        .expect("records we wrote");
    DECODERS.with_borrow_mut(|decoders| run(decoders, &records));
});

thread_local! {
    /// Built once: a decoder lives across many records in `kingest run` too, and `finish`
    /// leaves it empty for the next input.
    static DECODERS: std::cell::RefCell<Vec<(RowDecoder, &'static [u8])>> =
        std::cell::RefCell::new(decoders());
}

fn run(decoders: &mut [(RowDecoder, &'static [u8])], records: &[Record<'_>]) {
    for (dec, valid) in decoders.iter_mut() {
        let mut rows = 0;
        for r in records {
            let ctx = RecordContext::new("fuzz", 3, r);
            match dec.append(&ctx) {
                Ok(()) => rows += 1,
                Err(e) => check_error(&e, r.offset),
            }
            assert_eq!(dec.rows(), rows);
        }
        // Still usable after whatever came before.
        let mut last = records[0];
        last.value = Some(*valid);
        last.key = Some(b"k");
        // Header `h` holds fuzz bytes, which a string column may refuse.
        last.headers = Headers::default();
        dec.append(&RecordContext::new("fuzz", 3, &last))
            .expect("a valid record after fuzz input");
        rows += 1;
        let out = dec.finish();
        assert_eq!(out.num_rows(), rows);
        assert_eq!(dec.rows(), 0);
    }
}
