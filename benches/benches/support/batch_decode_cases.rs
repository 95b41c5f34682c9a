//! The batches and decoders the batch-decoding benchmark compares, shared by the criterion bench
//! (`benches/batch_decode.rs`) and the CPU-time cross-check (`examples/batch_decode_cpu.rs`) so
//! that both measure exactly the same bytes and the same code.

use std::io::Read;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use kingest_protocol::record::{
    BatchBuilder, BatchOptions, Compression, DecodeOptions, RecordSet, BATCH_HEADER_SIZE,
};

/// Value sizes benchmarked, and how many records each batch holds.
pub const SHAPES: [(usize, usize); 2] = [(100, 1000), (1024, 1024)];

/// A small deterministic generator, so the data (and its compression ratio) is the same on
/// every run without a dependency.
pub struct XorShift(u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A JSON event of exactly `size` bytes: a realistic mix of repeated field names, enumerated
/// values, ids, timestamps and free text, padded with a random-word "payload" field.
pub fn json_value(rng: &mut XorShift, i: usize, size: usize) -> Vec<u8> {
    const EVENTS: [&str; 6] = [
        "page_view",
        "click",
        "add_to_cart",
        "purchase",
        "search",
        "login",
    ];
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "kafka", "stream", "event", "order", "user", "session", "mobile",
        "desktop", "eu-west", "us-east", "checkout", "banner", "promo", "retry",
    ];
    let mut v = format!(
        r#"{{"seq":{i},"user":"u{:07}","event":"{}","ts":{},"price":{}.{:02},"payload":""#,
        rng.below(5_000_000),
        EVENTS[rng.below(EVENTS.len() as u64) as usize],
        1_700_000_000_000u64 + i as u64 * 7 + rng.below(5),
        rng.below(500),
        rng.below(100),
    );
    while v.len() < size {
        v.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        v.push(if rng.below(4) == 0 { '-' } else { ' ' });
    }
    v.truncate(size - 2);
    v.push_str("\"}");
    v.into_bytes()
}

/// One benchmark case: a batch and what decoding it yields.
pub struct Case {
    pub codec: Compression,
    pub records: u64,
    /// The whole batch, header included.
    pub batch: Bytes,
    /// The size of the records section once decompressed.
    pub decompressed: usize,
}

pub fn build(codec: Compression, value_size: usize, records: usize) -> Case {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ value_size as u64);
    let mut b = BatchBuilder::new(BatchOptions {
        compression: codec,
        ..BatchOptions::default()
    });
    for i in 0..records {
        let key = format!("key-{:06}", i % 1_000_000);
        let value = json_value(&mut rng, i, value_size);
        b.push(
            1_700_000_000_000 + i as i64,
            Some(key.as_bytes()),
            Some(&value),
            &[],
        );
    }
    let decompressed = b.size() - BATCH_HEADER_SIZE;
    let batch = b.finish().expect("building the batch");
    Case {
        codec,
        records: records as u64,
        batch,
        decompressed,
    }
}

/// Ours: record set → raw batch → decode → every record.
pub fn decode_ours(batch: &Bytes, opts: &DecodeOptions) -> (u64, usize) {
    let (mut n, mut len) = (0u64, 0usize);
    for raw in RecordSet::new(batch.clone()) {
        let decoded = raw.expect("raw batch").decode(opts).expect("decoded batch");
        for record in decoded.records() {
            let record = record.expect("record");
            n += 1;
            len += record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len);
        }
    }
    (n, len)
}

/// kafka-protocol's decoder on the same bytes.
pub fn decode_theirs(batch: &Bytes) -> (u64, usize) {
    let (mut n, mut len) = (0u64, 0usize);
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decode");
    for record in &set.records {
        n += 1;
        len +=
            record.key.as_ref().map_or(0, Bytes::len) + record.value.as_ref().map_or(0, Bytes::len);
    }
    (n, len)
}

/// The xerial snappy-java stream header our writer puts before its blocks.
const XERIAL_HEADER_LEN: usize = 16;

/// Bare decompression of a records section with the same library and reader our decoder uses,
/// into a buffer of the exact size.
pub fn decompress_bare(codec: Compression, input: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    match codec {
        Compression::Gzip => {
            flate2::bufread::MultiGzDecoder::new(input)
                .read_to_end(&mut out)
                .expect("gzip");
        }
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(input)
                .read_to_end(&mut out)
                .expect("lz4");
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::with_buffer(input)
                .expect("zstd")
                .read_to_end(&mut out)
                .expect("zstd");
        }
        Compression::Snappy => {
            // xerial framing: a 16-byte header, then (4-byte length, raw block)*.
            out.resize(size, 0);
            let mut decoder = snap::raw::Decoder::new();
            let (mut rest, mut at) = (&input[XERIAL_HEADER_LEN..], 0);
            while !rest.is_empty() {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let block = &rest[4..4 + len];
                at += decoder.decompress(block, &mut out[at..]).expect("snappy");
                rest = &rest[4 + len..];
            }
            out.truncate(at);
        }
        _ => out.extend_from_slice(input),
    }
    out
}
