//! Decoding throughput, one core: Kafka record values into Arrow record batches.
//!
//! Workload: 10,000 ~100-byte JSON events shaped like the Pinot quick-start's
//! (`{"ts": ..., "uuid": "...", "count": N, "page": "..."}`) and the same rows as CSV, decoded
//! into `timestamp(ms), string, int64, string` columns and finished into a `RecordBatch`.
//!
//! Baseline, same bytes, same run: `arrow-json`'s `Decoder` (what `arrow_json::ReaderBuilder`
//! builds), fed one record at a time as a Kafka consumer has them, and fed the whole
//! newline-joined buffer at once (its best case, which a consumer does not get without
//! copying every value into one buffer first).
//!
//! Run: `cargo bench -p kingest --bench decode`. Records/s is criterion's throughput;
//! MB/s is that times the average record size printed at the start.

use std::hint::black_box;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kingest::decode::{FormatSpec, RecordContext, RowDecoder};
use kingest::schema::{parse_type, ColumnSpec, FormatKind, Source};

const RECORDS: usize = 10_000;

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

fn decode_all(dec: &mut RowDecoder, values: &[Vec<u8>]) -> usize {
    for (i, v) in values.iter().enumerate() {
        let rec = RecordContext {
            topic: "events",
            partition: 0,
            offset: i as i64,
            timestamp: 0,
            key: None,
            value: Some(v),
            headers: Default::default(),
        };
        dec.append(&rec).unwrap();
    }
    dec.finish().num_rows()
}

fn avg_len(values: &[Vec<u8>]) -> f64 {
    values.iter().map(Vec::len).sum::<usize>() as f64 / values.len() as f64
}

fn bench(c: &mut Criterion) {
    let json = json_events();
    let csv = csv_rows();
    eprintln!(
        "records per iteration: {RECORDS}; average JSON event {:.1} bytes, CSV row {:.1} bytes",
        avg_len(&json),
        avg_len(&csv)
    );
    eprintln!("sample JSON: {}", String::from_utf8_lossy(&json[0]));
    eprintln!("sample CSV:  {}", String::from_utf8_lossy(&csv[0]));

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(20);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(4));

    let json_cols = columns(FormatKind::Json, ["/ts", "/uuid", "/count", "/page"]);
    let mut dec = RowDecoder::new(&json_cols, &FormatSpec::Json, None).unwrap();
    g.bench_function("kingest_json", |b| {
        b.iter(|| black_box(decode_all(&mut dec, black_box(&json))))
    });

    let csv_cols = columns(FormatKind::Csv, ["0", "1", "2", "3"]);
    let mut dec = RowDecoder::new(&csv_cols, &FormatSpec::csv(), None).unwrap();
    g.bench_function("kingest_csv", |b| {
        b.iter(|| black_box(decode_all(&mut dec, black_box(&csv))))
    });

    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("uuid", DataType::Utf8, true),
        Field::new("count", DataType::Int64, true),
        Field::new("page", DataType::Utf8, true),
    ]));
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(RECORDS)
        .build_decoder()
        .unwrap();
    g.bench_function("arrow_json_per_record", |b| {
        b.iter(|| {
            for v in &json {
                decoder.decode(black_box(v)).unwrap();
            }
            black_box(decoder.flush().unwrap().unwrap().num_rows())
        })
    });

    let joined: Vec<u8> = json.join(&b'\n');
    let mut decoder = arrow_json::ReaderBuilder::new(schema)
        .with_batch_size(RECORDS)
        .build_decoder()
        .unwrap();
    g.bench_function("arrow_json_bulk", |b| {
        b.iter(|| {
            let mut rest = &joined[..];
            while !rest.is_empty() {
                let n = decoder.decode(black_box(rest)).unwrap();
                rest = &rest[n..];
                if n == 0 {
                    break;
                }
            }
            black_box(decoder.flush().unwrap().unwrap().num_rows())
        })
    });
    g.finish();

    // The outputs agree: same rows, same values.
    let mut dec = RowDecoder::new(&json_cols, &FormatSpec::Json, None).unwrap();
    for v in &json {
        dec.append(&RecordContext {
            topic: "events",
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: None,
            value: Some(v),
            headers: Default::default(),
        })
        .unwrap();
    }
    let ours = dec.finish();
    let mut decoder = arrow_json::ReaderBuilder::new(ours.schema())
        .with_batch_size(RECORDS)
        .build_decoder()
        .unwrap();
    for v in &json {
        decoder.decode(v).unwrap();
    }
    let theirs = decoder.flush().unwrap().unwrap();
    assert_eq!(
        ours.columns(),
        theirs.columns(),
        "kingest and arrow-json disagree"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
