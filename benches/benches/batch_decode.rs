//! Record batch decoding throughput: kingest's reader against `kafka-protocol`'s decoder and
//! against bare decompression, on identical bytes (results and method in BENCHMARKS.md).
//!
//! For each codec (none, gzip, snappy, lz4, zstd) and record size (100 B and 1 KiB values, with a
//! 10-byte key), one batch is built with our `BatchBuilder` (about 1000 records; about 1 MiB of
//! records for 1 KiB values), with JSON-like values that compress like real events. Then:
//!
//! - `ours`: `RecordSet::new` → `RawBatch::decode` (CRC check, decompression) → every record,
//!   touching key and value lengths;
//! - `kafka-protocol`: `RecordBatchDecoder::decode` on the same bytes, then every record the same
//!   way;
//! - `bare`: for compressed codecs, decompressing the batch's records section with the library
//!   and reader our decoder uses, into a `Vec` sized for the result: the floor our decoder should
//!   stay within 10% of.
//!
//! Throughput counts records and decompressed record-section bytes, so all three are comparable.
//! Run: `cargo bench -p kingest-benches --bench batch_decode`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kingest_protocol::record::{Compression, DecodeOptions, BATCH_HEADER_SIZE};

#[path = "support/batch_decode_cases.rs"]
mod cases;
use cases::{build, decode_ours, decode_theirs, decompress_bare, SHAPES};

fn batch_decode(c: &mut Criterion) {
    let opts = DecodeOptions::default();
    for (value_size, records) in SHAPES {
        for codec in Compression::ALL {
            let case = build(codec, value_size, records);
            // All three must see the same records before their speed means anything.
            let ours = decode_ours(&case.batch, &opts);
            assert_eq!(ours, decode_theirs(&case.batch), "{codec} {value_size}");
            assert_eq!(ours.0, case.records);
            let section = &case.batch[BATCH_HEADER_SIZE..];
            if codec != Compression::None {
                let bare = decompress_bare(codec, section, case.decompressed);
                assert_eq!(bare.len(), case.decompressed, "{codec} {value_size}");
            }
            println!(
                "case {codec}/{value_size}B: {} records, batch {} bytes, records section {} -> {} bytes",
                case.records,
                case.batch.len(),
                section.len(),
                case.decompressed
            );

            let mut group =
                c.benchmark_group(format!("batch_decode/{}/{}B", case.codec, value_size));
            group
                .throughput(Throughput::ElementsAndBytes {
                    elements: case.records,
                    bytes: case.decompressed as u64,
                })
                .sample_size(20)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
            group.bench_function(BenchmarkId::from_parameter("ours"), |b| {
                b.iter(|| decode_ours(black_box(&case.batch), &opts))
            });
            group.bench_function(BenchmarkId::from_parameter("kafka-protocol"), |b| {
                b.iter(|| decode_theirs(black_box(&case.batch)))
            });
            if codec != Compression::None {
                group.bench_function(BenchmarkId::from_parameter("bare"), |b| {
                    b.iter(|| decompress_bare(codec, black_box(section), case.decompressed))
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, batch_decode);
criterion_main!(benches);
