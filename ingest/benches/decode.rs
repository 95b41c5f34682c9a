//! Ingest throughput, one core: from the bytes of a fetch response to Arrow record batches,
//! and on to Parquet bytes.
//!
//! Workload: 10,000 ~100-byte JSON events shaped like the Pinot quick-start's
//! (`{"ts": ..., "uuid": "...", "count": N, "page": "..."}`) and the same rows as CSV, written
//! as uncompressed v2 record batches of 160 records (what a producer's 16 KiB batches hold),
//! concatenated as a fetch response's partition data is. Each iteration walks that record set
//! (batch headers, CRC32C, record framing), decodes every value into `timestamp(ms), string,
//! int64, string` columns and finishes a `RecordBatch`; the `_to_parquet` cases also encode it
//! as a zstd Parquet file in memory with the sink's writer settings.
//!
//! Baseline, same bytes, same run: `arrow-json`'s `Decoder` (what `arrow_json::ReaderBuilder`
//! builds) fed each value of the same record set as the consumer hands it over
//! (`arrow_json_fetch_to_arrow`), and fed all values pre-joined by newlines
//! (`arrow_json_bulk`: its best case, which a consumer only gets by copying every value into one
//! buffer first; the copy is not counted).
//!
//! Run: `cargo bench -p kingest --bench decode`. Records/s is criterion's throughput; MB/s is
//! that times the average record size printed at the start.
//!
//! On a loaded machine wall-clock figures wander; instruction counts do not. With
//! `KINGEST_BENCH_CASE=<case> KINGEST_BENCH_ITERS=<n>` the binary runs one case `n` times
//! without criterion, so `valgrind --tool=callgrind` totals for `n` and `0` iterations differ
//! by exactly `n` iterations' instructions (scripts/bench-decode-instructions.sh does that).

use std::hint::black_box;

use arrow_array::RecordBatch;
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, Criterion, Throughput};
use kingest::decode::{FormatSpec, RecordContext, RowDecoder};
use kingest::schema::{parse_type, ColumnSpec, FormatKind, Source};
use kingest_protocol::record::{BatchBuilder, BatchOptions, DecodeOptions, RecordSet};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

const RECORDS: usize = 10_000;
/// Records per batch: ~16 KiB of 100-byte records, a producer's default batch size.
const PER_BATCH: usize = 160;

/// A small deterministic generator, so every run decodes the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const PAGES: [&str; 4] = ["/home", "/cart", "/checkout/payment", "/search?q=kafka"];

fn json_events() -> Vec<Vec<u8>> {
    let mut r = Lcg(42);
    (0..RECORDS)
        .map(|i| {
            format!(
                r#"{{"ts": {}, "uuid": "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", "count": {}, "page": "{}"}}"#,
                1_644_586_485_807u64 + i as u64 * 29,
                r.next() as u32,
                r.next() as u16,
                r.next() as u16,
                r.next() as u16,
                r.next() & 0xffff_ffff_ffff,
                r.next() % 1000,
                PAGES[(r.next() % 4) as usize],
            )
            .into_bytes()
        })
        .collect()
}

fn csv_rows() -> Vec<Vec<u8>> {
    let mut r = Lcg(42);
    (0..RECORDS)
        .map(|i| {
            format!(
                "{},{:08x}-{:04x}-{:04x}-{:04x}-{:012x},{},\"{}\"",
                1_644_586_485_807u64 + i as u64 * 29,
                r.next() as u32,
                r.next() as u16,
                r.next() as u16,
                r.next() as u16,
                r.next() & 0xffff_ffff_ffff,
                r.next() % 1000,
                PAGES[(r.next() % 4) as usize],
            )
            .into_bytes()
        })
        .collect()
}

/// The values as a fetch response's partition data: v2 batches with broker-assigned offsets.
fn record_set(values: &[Vec<u8>]) -> Bytes {
    let mut out = BytesMut::new();
    for (n, chunk) in values.chunks(PER_BATCH).enumerate() {
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset: (n * PER_BATCH) as i64,
            ..BatchOptions::default()
        });
        for (i, v) in chunk.iter().enumerate() {
            b.push(1_644_586_485_807 + i as i64, None, Some(v), &[]);
        }
        b.finish_into(&mut out).unwrap();
    }
    out.freeze()
}

/// Calls `f` with every record of the record set, as the consumer hands records over.
fn for_each_record(data: &Bytes, mut f: impl FnMut(&RecordContext<'_>)) {
    let opts = DecodeOptions::default();
    for raw in RecordSet::new(data.clone()) {
        let batch = raw.unwrap().decode(&opts).unwrap();
        for r in batch.records() {
            f(&RecordContext::new("events", 0, &r.unwrap()));
        }
    }
}

fn columns(kind: FormatKind, sources: [&str; 4]) -> Vec<ColumnSpec> {
    let types = ["timestamp(ms)", "string", "int64", "string"];
    let names = ["ts", "uuid", "count", "page"];
    (0..4)
        .map(|i| {
            ColumnSpec::new(
                names[i],
                parse_type(types[i]).unwrap(),
                Source::parse(sources[i], kind).unwrap(),
            )
        })
        .collect()
}

fn fetch_to_arrow(dec: &mut RowDecoder, data: &Bytes) -> RecordBatch {
    for_each_record(data, |rec| dec.append(rec).unwrap());
    dec.finish()
}

/// The Parquet sink's writer settings (zstd, its default), into memory.
fn to_parquet(batch: &RecordBatch) -> usize {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::with_capacity(1 << 20);
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    out.len()
}

fn avg_len(values: &[Vec<u8>]) -> f64 {
    values.iter().map(Vec::len).sum::<usize>() as f64 / values.len() as f64
}

fn arrow_json_decoder(batch: &RecordBatch) -> arrow_json::reader::Decoder {
    arrow_json::ReaderBuilder::new(batch.schema())
        .with_batch_size(RECORDS)
        .build_decoder()
        .unwrap()
}

/// The bench's data and decoders, shared by criterion and the instruction-count mode.
struct Workload {
    json: Vec<Vec<u8>>,
    json_set: Bytes,
    csv_set: Bytes,
    json_dec: RowDecoder,
    csv_dec: RowDecoder,
    arrow_json: arrow_json::reader::Decoder,
    joined: Vec<u8>,
}

impl Workload {
    fn new() -> Workload {
        let json = json_events();
        let csv = csv_rows();
        let json_set = record_set(&json);
        let csv_set = record_set(&csv);
        eprintln!(
            "records per iteration: {RECORDS} in batches of {PER_BATCH}; average JSON event {:.1} \
             bytes ({} bytes of record set), CSV row {:.1} bytes ({} bytes of record set)",
            avg_len(&json),
            json_set.len(),
            avg_len(&csv),
            csv_set.len(),
        );
        let json_cols = columns(FormatKind::Json, ["/ts", "/uuid", "/count", "/page"]);
        let csv_cols = columns(FormatKind::Csv, ["0", "1", "2", "3"]);
        let mut json_dec = RowDecoder::new(&json_cols, &FormatSpec::json(), None).unwrap();
        let mut csv_dec = RowDecoder::new(&csv_cols, &FormatSpec::csv(), None).unwrap();
        // The outputs agree before anything is timed: same rows, same values.
        let ours = fetch_to_arrow(&mut json_dec, &json_set);
        let mut arrow_json = arrow_json_decoder(&ours);
        for_each_record(&json_set, |rec| {
            arrow_json.decode(rec.value.unwrap()).unwrap();
        });
        let theirs = arrow_json.flush().unwrap().unwrap();
        assert_eq!(
            ours.columns(),
            theirs.columns(),
            "kingest and arrow-json disagree"
        );
        let from_csv = fetch_to_arrow(&mut csv_dec, &csv_set);
        assert_eq!(
            ours.columns(),
            from_csv.columns(),
            "JSON and CSV rows disagree"
        );
        let joined = json.join(&b'\n');
        Workload {
            json,
            json_set,
            csv_set,
            json_dec,
            csv_dec,
            arrow_json,
            joined,
        }
    }

    /// Runs one case once; returns the rows (or bytes) it produced.
    fn run(&mut self, case: &str) -> usize {
        match case {
            "json/kingest_fetch_to_arrow" => {
                fetch_to_arrow(&mut self.json_dec, black_box(&self.json_set)).num_rows()
            }
            "json/arrow_json_fetch_to_arrow" => {
                let decoder = &mut self.arrow_json;
                for_each_record(black_box(&self.json_set), |rec| {
                    decoder.decode(rec.value.unwrap()).unwrap();
                });
                decoder.flush().unwrap().unwrap().num_rows()
            }
            "json/arrow_json_bulk" => {
                let mut rest = black_box(&self.joined[..]);
                while !rest.is_empty() {
                    let n = self.arrow_json.decode(rest).unwrap();
                    rest = &rest[n..];
                    if n == 0 {
                        break;
                    }
                }
                self.arrow_json.flush().unwrap().unwrap().num_rows()
            }
            "csv/kingest_fetch_to_arrow" => {
                fetch_to_arrow(&mut self.csv_dec, black_box(&self.csv_set)).num_rows()
            }
            "json/kingest_fetch_to_parquet" => to_parquet(&fetch_to_arrow(
                &mut self.json_dec,
                black_box(&self.json_set),
            )),
            "csv/kingest_fetch_to_parquet" => {
                to_parquet(&fetch_to_arrow(&mut self.csv_dec, black_box(&self.csv_set)))
            }
            other => panic!("unknown case {other:?}; cases: {CASES:?}"),
        }
    }
}

/// Every case, in the order criterion runs them.
const CASES: [&str; 6] = [
    "json/kingest_fetch_to_arrow",
    "json/arrow_json_fetch_to_arrow",
    "json/arrow_json_bulk",
    "csv/kingest_fetch_to_arrow",
    "json/kingest_fetch_to_parquet",
    "csv/kingest_fetch_to_parquet",
];

fn bench(c: &mut Criterion) {
    let mut w = Workload::new();
    eprintln!("sample JSON: {}", String::from_utf8_lossy(&w.json[0]));
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(30);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(4));
    for case in CASES {
        g.bench_function(case, |b| b.iter(|| black_box(w.run(case))));
    }
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(case) = std::env::var("KINGEST_BENCH_CASE") {
        let iters: usize = std::env::var("KINGEST_BENCH_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let mut w = Workload::new();
        for _ in 0..iters {
            black_box(w.run(&case));
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
