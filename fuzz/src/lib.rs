//! Shared harness code for kingest's fuzz targets.
//!
//! Every target that reaches record batches (the raw record-set target, the codec target and the
//! Fetch response target) runs the same walk, [`exercise_record_set`]: every batch of the set,
//! decoded; every record of every batch, touched (key, value, each header); the control record
//! of control batches; and the reader's documented invariants asserted along the way, so that a
//! wrong answer is a crash just like a panic is.
//!
//! [`wrap_records`] is the trick that gets the codec target past the CRC: it builds a valid
//! magic-2 batch header around fuzzer bytes and writes the CRC32C they need. The seed generator
//! (`examples/make_seeds.rs`) uses [`codec_input_of`] to turn real batches into that target's
//! input format.

#![forbid(unsafe_code)]

use bytes::{BufMut, Bytes, BytesMut};
use kingest_protocol::record::{
    BatchBuilder, BatchOptions, Compression, DecodeOptions, Header, RawBatch, Record, RecordBatch,
    RecordErrorKind, RecordSet, BATCH_HEADER_SIZE,
};

/// The decompression limit the fuzz targets decode with: small enough that a compression bomb
/// costs milliseconds, large enough for every seed.
pub const FUZZ_MAX_DECOMPRESSED: usize = 4 << 20;

/// Decode options for fuzzing: CRC checked or not, the fuzz-sized decompression limit.
pub fn fuzz_options(verify_crc: bool) -> DecodeOptions {
    DecodeOptions {
        verify_crc,
        max_decompressed_size: FUZZ_MAX_DECOMPRESSED,
    }
}

/// What [`exercise_record_set`] saw, for targets that check more.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Batches the set yielded without error.
    pub batches: usize,
    /// Batches that decoded.
    pub decoded: usize,
    /// Records read without error.
    pub records: usize,
}

/// Walks a whole record set: every batch, decoded with `opts`, every record and header, the
/// control record, asserting the reader's invariants. When `retry_without_crc` is set, a batch
/// refused for its CRC is decoded again with the check off, so that arbitrary bytes still reach
/// the decompressors and the record parser.
pub fn exercise_record_set(data: Bytes, opts: &DecodeOptions, retry_without_crc: bool) -> Walk {
    let len = data.len();
    let mut walk = Walk::default();
    let mut set = RecordSet::new(data);
    let mut last_position = None;
    let mut errors = 0;
    for item in set.by_ref() {
        match item {
            Ok(raw) => {
                walk.batches += 1;
                check_raw(&raw, len, &mut last_position);
                let mut decoded = raw.decode(opts);
                if retry_without_crc {
                    if let Err(e) = &decoded {
                        if matches!(e.kind, RecordErrorKind::CrcMismatch { .. }) {
                            decoded = raw.decode(&DecodeOptions {
                                verify_crc: false,
                                ..*opts
                            });
                        }
                    }
                }
                match decoded {
                    Ok(batch) => {
                        walk.decoded += 1;
                        walk.records += exercise_batch(&batch);
                    }
                    Err(e) => touch_error(&e),
                }
            }
            Err(e) => {
                touch_error(&e);
                errors += 1;
            }
        }
    }
    // The set stops after its first error, and a cut-off batch is only ever the last thing.
    assert!(errors <= 1, "record set yielded {errors} errors");
    assert!(set.next().is_none(), "record set resumed after ending");
    if let Some(cut) = set.incomplete() {
        assert_eq!(errors, 0, "both an error and a cut-off batch");
        assert!(
            cut.at <= len && cut.available == len - cut.at,
            "{cut:?} in {len} bytes"
        );
        if let Some(needed) = cut.needed {
            assert!(needed > cut.available, "{cut:?} is not cut off");
        }
    }
    walk
}

fn check_raw(raw: &RawBatch, set_len: usize, last_position: &mut Option<usize>) {
    let header = raw.header();
    assert_eq!(
        raw.bytes().len(),
        header.size(),
        "raw batch length vs header {header:?}"
    );
    assert!(raw.position() + raw.bytes().len() <= set_len);
    if let Some(last) = *last_position {
        assert!(raw.position() > last, "batch positions do not advance");
    }
    *last_position = Some(raw.position());
    let _ = (
        header.compression(),
        header.timestamp_type(),
        header.is_transactional(),
        header.has_delete_horizon(),
        header.next_offset(),
    );
}

/// Formats an error, so that every error path's `Display` runs too.
fn touch_error(e: &dyn std::fmt::Display) {
    std::hint::black_box(e.to_string());
}

/// Reads every record of a decoded batch, asserting the iterator's contract; returns how many
/// records came out without error.
pub fn exercise_batch(batch: &RecordBatch) -> usize {
    let header = *batch.header();
    let data = batch.data().clone();
    let mut ok = 0usize;
    let mut records = batch.records();
    let mut failed = false;
    for item in records.by_ref() {
        assert!(!failed, "records yielded an item after an error");
        match item {
            Ok(record) => {
                ok += 1;
                touch_record(&record, &data);
            }
            Err(e) => {
                touch_error(&e);
                failed = true;
            }
        }
    }
    assert!(records.next().is_none(), "records resumed after ending");
    if header.magic >= 2 {
        assert!(
            ok <= header.record_count as usize,
            "{ok} records from a batch declaring {}",
            header.record_count
        );
    }
    match batch.control_record() {
        Ok(Some(c)) => {
            assert!(header.is_control());
            std::hint::black_box((c.key_bytes(), c.value_bytes(), c.kind.id()));
        }
        Ok(None) => assert!(!header.is_control()),
        Err(e) => touch_error(&e),
    }
    ok
}

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn touch_record(record: &Record<'_>, data: &Bytes) {
    let mut sum = 0usize;
    for part in [record.key, record.value].into_iter().flatten() {
        // Record views borrow from the batch's data, never from anywhere else.
        assert!(within(data, part), "record bytes outside the batch data");
        sum = sum
            .wrapping_add(part.len())
            .wrapping_add(part.first().copied().unwrap_or(0) as usize);
    }
    let headers = record.headers;
    let mut n = 0;
    for h in headers.iter() {
        n += 1;
        assert!(within(data, h.key));
        if let Some(v) = h.value {
            assert!(within(data, v));
            sum = sum.wrapping_add(v.len());
        }
        sum = sum.wrapping_add(h.key.len());
        let _ = h.key_str();
    }
    // The header bytes were validated when the record was read: the lazy iterator must find
    // exactly as many as were counted.
    assert_eq!(
        n,
        headers.len(),
        "headers iterator disagrees with the header count"
    );
    assert_eq!(headers.is_empty(), n == 0);
    if let Some(first) = headers.iter().next() {
        assert!(headers.last(first.key).is_some());
    }
    std::hint::black_box((sum, record.offset, record.timestamp));
}

/// An owned copy of a record, for comparing two decodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Offset.
    pub offset: i64,
    /// Timestamp.
    pub timestamp: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl OwnedRecord {
    /// Copies a record view.
    pub fn of(r: &Record<'_>) -> Self {
        Self {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r
                .headers
                .iter()
                .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                .collect(),
        }
    }
}

/// Differential check for a batch whose records all decoded: writing them again with
/// [`BatchBuilder`] (uncompressed) and reading that back gives the same records.
pub fn check_rewrite(batch: &RecordBatch) {
    let header = *batch.header();
    if header.magic < 2 {
        return;
    }
    let Ok(originals) = batch
        .records()
        .map(|r| r.map(|r| OwnedRecord::of(&r)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let mut builder = BatchBuilder::new(BatchOptions {
        base_offset: header.base_offset,
        ..BatchOptions::default()
    });
    for r in &originals {
        let headers: Vec<Header<'_>> = r
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let delta = r.offset.wrapping_sub(header.base_offset) as i32;
        builder.push_at(
            delta,
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        );
    }
    let bytes = builder.finish().expect("rewriting decoded records");
    let raw = RawBatch::parse(bytes).expect("parsing a batch we wrote");
    let again = raw
        .decode(&fuzz_options(true))
        .expect("decoding a batch we wrote");
    let rewritten: Vec<OwnedRecord> = again
        .records()
        .map(|r| OwnedRecord::of(&r.expect("reading a record we wrote")))
        .collect();
    assert_eq!(originals, rewritten, "records changed through a rewrite");
}

/// The attribute bits (besides the codec) the codec target lets the fuzzer set: timestamp type,
/// transactional, control, delete horizon.
pub const FLAG_BITS: u8 = 0x78;

/// Base offset, leader epoch and timestamps of every batch [`wrap_records`] builds.
pub const WRAP_BASE_OFFSET: i64 = 1_000;
const WRAP_FIRST_TIMESTAMP: i64 = 1_700_000_000_000;
const WRAP_MAX_TIMESTAMP: i64 = 1_700_000_000_999;

/// Builds a whole magic-2 batch around `records` (the records section as it is on the wire, so
/// compressed when `codec` is a compression codec), with a correct length and CRC32C.
pub fn wrap_records(codec: Compression, flags: u8, record_count: i32, records: &[u8]) -> Bytes {
    let attributes = i16::from(codec.id()) | i16::from(flags & FLAG_BITS);
    let mut out = BytesMut::with_capacity(BATCH_HEADER_SIZE + records.len());
    out.put_i64(WRAP_BASE_OFFSET);
    out.put_i32((BATCH_HEADER_SIZE - 12 + records.len()) as i32);
    out.put_i32(7); // partition leader epoch
    out.put_i8(2);
    out.put_u32(0); // CRC, below
    out.put_i16(attributes);
    out.put_i32(record_count.saturating_sub(1).max(0));
    out.put_i64(WRAP_FIRST_TIMESTAMP);
    out.put_i64(WRAP_MAX_TIMESTAMP);
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(record_count);
    out.put_slice(records);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

/// The codec target's input: codec byte, flags byte, record count (big-endian i32), then the
/// records section.
pub struct CodecInput<'a> {
    /// The codec (the first byte modulo 5).
    pub codec: Compression,
    /// Attribute bits other than the codec.
    pub flags: u8,
    /// The header's record count.
    pub record_count: i32,
    /// The (compressed) records section.
    pub records: &'a [u8],
}

impl<'a> CodecInput<'a> {
    /// Splits fuzzer input; `None` when it is too short.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let [c, flags, a, b, cc, d, rest @ ..] = data else {
            return None;
        };
        Some(Self {
            codec: Compression::ALL[usize::from(*c) % Compression::ALL.len()],
            flags: *flags & FLAG_BITS,
            record_count: i32::from_be_bytes([*a, *b, *cc, *d]),
            records: rest,
        })
    }
}

/// The codec target's input for a real magic-2 batch: what [`CodecInput::parse`] splits back.
pub fn codec_input_of(batch: &[u8]) -> Option<Vec<u8>> {
    if batch.len() < BATCH_HEADER_SIZE || batch[16] != 2 {
        return None;
    }
    let attributes = i16::from_be_bytes([batch[21], batch[22]]);
    let codec = (attributes & 7) as u8;
    Compression::from_id(codec)?;
    let mut out = vec![codec, (attributes as u8) & FLAG_BITS];
    out.extend_from_slice(&batch[57..61]);
    out.extend_from_slice(&batch[BATCH_HEADER_SIZE..]);
    Some(out)
}

/// Picks a version in `min..=max` from a byte: the response targets choose the version they
/// decode with from their first input byte.
pub fn pick_version(byte: u8, min: i16, max: i16) -> i16 {
    let span = (max - min + 1) as u16;
    min + (u16::from(byte) % span) as i16
}

use kingest_protocol::kafka_protocol::messages::{RequestHeader, RequestKind, ResponseHeader};
use kingest_protocol::kafka_protocol::protocol::{Encodable, HeaderVersion, Request};
use kingest_protocol::message::{decode_request, decode_response};

/// A response target's body: the first byte picks the version in `R`'s range, the rest is the
/// response frame (without its size prefix). A response that decodes must encode again at the
/// same version and decode to the same value, whose encoding is the same bytes (values may differ
/// only by NaN floats, which are not equal to themselves). Returns the decoded response.
pub fn exercise_response<R>(data: &[u8]) -> Option<R::Response>
where
    R: Request,
    R::Response: PartialEq + std::fmt::Debug,
{
    let (&v, frame) = data.split_first()?;
    let version = pick_version(v, R::VERSIONS.min, R::VERSIONS.max);
    let (header, body) = match decode_response::<R>(Bytes::copy_from_slice(frame), version) {
        Ok(decoded) => decoded,
        Err(e) => {
            touch_error(&e);
            return None;
        }
    };
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    let encode = |h: &ResponseHeader, b: &R::Response| {
        let mut buf = BytesMut::new();
        h.encode(&mut buf, header_version)
            .expect("re-encoding a decoded response header");
        b.encode(&mut buf, version)
            .expect("re-encoding a decoded response");
        buf.freeze()
    };
    let first = encode(&header, &body);
    let (header2, body2) = decode_response::<R>(first.clone(), version).unwrap_or_else(|e| {
        panic!(
            "a re-encoded response does not decode at version {version}: {e}\n{header:?} {body:?}"
        )
    });
    let second = encode(&header2, &body2);
    let same = header2 == header && body2 == body;
    if first != second || !(same || is_nan_only(&header, &body)) {
        panic!("response changed through a re-encode at version {version}: {header:?} {body:?}\n-> {header2:?} {body2:?}");
    }
    Some(body)
}

/// Whether two decodings may differ only because of a NaN float field (NaN is not equal to
/// itself; the bytes, compared separately, still must be).
fn is_nan_only(header: &dyn std::fmt::Debug, body: &dyn std::fmt::Debug) -> bool {
    format!("{header:?} {body:?}").contains("NaN")
}

/// The request target's body: a request frame (without its size prefix) decoded as testkit's
/// broker does. A request that decodes must encode again and decode to the same value, and a
/// Produce request's record sets go through the record reader, as the broker reads them.
pub fn exercise_request(data: &[u8]) {
    let (header, body) = match decode_request(Bytes::copy_from_slice(data)) {
        Ok(decoded) => decoded,
        Err(e) => {
            touch_error(&e);
            return;
        }
    };
    let version = header.request_api_version;
    let api_key =
        kingest_protocol::kafka_protocol::messages::ApiKey::try_from(header.request_api_key)
            .expect("decode_request accepted an unknown API key");
    let encode = |h: &RequestHeader, b: &RequestKind| {
        let mut buf = BytesMut::new();
        h.encode(&mut buf, api_key.request_header_version(version))
            .expect("re-encoding a decoded request header");
        b.encode(&mut buf, version)
            .expect("re-encoding a decoded request");
        buf.freeze()
    };
    let first = encode(&header, &body);
    let (header2, body2) = decode_request(first.clone()).unwrap_or_else(|e| {
        panic!("a re-encoded request does not decode: {e}\n{header:?} {body:?}")
    });
    let second = encode(&header2, &body2);
    let same = header2 == header && body2 == body;
    if first != second || !(same || is_nan_only(&header, &body)) {
        panic!(
            "request changed through a re-encode: {header:?} {body:?}\n-> {header2:?} {body2:?}"
        );
    }
    if let RequestKind::Produce(produce) = &body {
        for topic in &produce.topic_data {
            for partition in &topic.partition_data {
                if let Some(records) = &partition.records {
                    exercise_record_set(records.clone(), &fuzz_options(true), false);
                }
            }
        }
    }
}
