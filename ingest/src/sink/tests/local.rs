//! The Parquet sink on a local directory: round trips of every type, rolling, partitioning,
//! compression, committed offsets, and what it refuses.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int64Type};
use arrow_array::RecordBatch;
use parquet::basic::Compression;
use tempfile::TempDir;

use super::*;
use crate::sink::layout::{batch_bytes, format_day};
use crate::sink::{ParquetCompression, ParquetSink, Sink, SinkError};

#[tokio::test]
async fn sink_parquet_local_round_trips_every_type() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    let k = key("events", 0);
    let batches = [
        batch(0, 100, 1000),
        batch(100, 100, 1000),
        batch(250, 50, 1000),
    ];
    sink.write(&k, &batches[0], range(0, 100)).await.unwrap();
    sink.write(&k, &batches[1], range(100, 200)).await.unwrap();
    // A gap (transaction markers, compaction) is fine; the file covers it.
    sink.write(&k, &batches[2], range(250, 300)).await.unwrap();
    assert!(!sink.should_flush());
    assert_eq!(
        files_under(dir.path()).len(),
        1,
        "one temporary file while writing"
    );
    assert!(files_under(dir.path())[0].ends_with(".parquet.tmp"));

    let committed = sink.flush().await.unwrap();
    assert_eq!(committed.len(), 1);
    let c = &committed[0];
    assert_eq!(
        (c.partition.clone(), c.offsets, c.rows),
        (k.clone(), range(0, 300), 250)
    );
    let files = files_under(dir.path());
    assert_eq!(files.len(), 1, "no temporary file left: {files:?}");
    let name = &files[0];
    assert!(
        name.starts_with("events-0-00000000000000000000-") && name.ends_with(".parquet"),
        "{name}"
    );
    assert_eq!(c.path, dir.path().join(name).display().to_string());
    assert_eq!(c.bytes, std::fs::metadata(&c.path).unwrap().len());

    assert_same_rows(&read_file(&c.path), &concat(&batches));
    let md = footer(&c.path);
    let kv = offsets_json(&md);
    assert_eq!(kv["group"], "test-group");
    assert_eq!(
        kv["offsets"],
        serde_json::json!({"events": {"0": [0, 300]}})
    );
    assert_eq!(kv["files"], serde_json::json!([name]));
    // (Footers do not record the level, so a reader shows the default one.)
    assert!(matches!(
        md.row_group(0).column(0).compression(),
        Compression::ZSTD(_)
    ));

    let offsets = sink.committed_offsets().await.unwrap();
    assert_eq!(offsets, BTreeMap::from([(("events".to_owned(), 0), 300)]));
    // Nothing open: flushing again commits nothing.
    assert!(sink.flush().await.unwrap().is_empty());
    sink.close().await.unwrap();
}

#[tokio::test]
async fn sink_parquet_rolls_by_rows() {
    let dir = TempDir::new().unwrap();
    let mut sink = open_with(dir.path(), |c| c.roll.max_rows = 250).await;
    let k = key("t", 2);
    let mut committed = Vec::new();
    for i in 0..10 {
        sink.write(
            &k,
            &batch(i * 100, 100, 1000),
            range(i * 100, i * 100 + 100),
        )
        .await
        .unwrap();
        // 100 and 200 rows are under the threshold; the third batch reaches it.
        assert_eq!(sink.should_flush(), i % 3 == 2, "after write {i}");
        if sink.should_flush() {
            committed.extend(sink.flush_due().await.unwrap());
        }
    }
    committed.extend(sink.close().await.unwrap());
    let ranges: Vec<_> = committed.iter().map(|c| (c.offsets, c.rows)).collect();
    assert_eq!(
        ranges,
        vec![
            (range(0, 300), 300),
            (range(300, 600), 300),
            (range(600, 900), 300),
            (range(900, 1000), 100)
        ]
    );
    let mut all = Vec::new();
    for c in &committed {
        all.push(read_file(&c.path));
    }
    assert_same_rows(&concat(&all), &batch(0, 1000, 1000));
    assert_eq!(files_under(dir.path()).len(), 4);
}

#[tokio::test]
async fn sink_parquet_rolls_by_bytes() {
    let dir = TempDir::new().unwrap();
    let one = batch_bytes(&batch(0, 100, 1000));
    let mut sink = open_with(dir.path(), |c| c.roll.max_bytes = one * 3 / 2).await;
    let k = key("t", 0);
    sink.write(&k, &batch(0, 100, 1000), range(0, 100))
        .await
        .unwrap();
    assert!(!sink.should_flush());
    sink.write(&k, &batch(100, 100, 1000), range(100, 200))
        .await
        .unwrap();
    assert!(sink.should_flush());
    let c = sink.flush_due().await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].offsets, c[0].rows), (range(0, 200), 200));
    // A slice of a big batch counts only its own rows.
    let big = batch(200, 1000, 1000);
    sink.write(&k, &big.slice(0, 10), range(200, 210))
        .await
        .unwrap();
    assert!(!sink.should_flush());
}

#[tokio::test]
async fn sink_parquet_rolls_by_age_per_partition() {
    let dir = TempDir::new().unwrap();
    let mut sink = open_with(dir.path(), |c| c.roll.max_age = Duration::from_millis(300)).await;
    sink.write(&key("t", 0), &batch(0, 10, 1000), range(0, 10))
        .await
        .unwrap();
    assert!(!sink.should_flush());
    tokio::time::sleep(Duration::from_millis(350)).await;
    sink.write(&key("t", 1), &batch(0, 10, 1000), range(0, 10))
        .await
        .unwrap();
    // Partition 0 is old enough, partition 1 is not, even though it was just written.
    assert!(sink.should_flush());
    let due = sink.flush_due().await.unwrap();
    assert_eq!(
        due.iter().map(|c| c.partition.clone()).collect::<Vec<_>>(),
        vec![key("t", 0)]
    );
    assert!(!sink.should_flush());
    let rest = sink.flush().await.unwrap();
    assert_eq!(
        rest.iter().map(|c| c.partition.clone()).collect::<Vec<_>>(),
        vec![key("t", 1)]
    );
}

fn dates(b: &RecordBatch) -> Vec<Option<i32>> {
    b.column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>()
        .iter()
        .collect()
}

#[tokio::test]
async fn sink_parquet_partitions_by_date_column() {
    let dir = TempDir::new().unwrap();
    let mut sink = open_dated(dir.path()).await;
    let (k0, k1) = (key("ev", 0), key("ev", 1));
    // 30 rows per day: a batch of 100 spans all three days; row 3, 10, ... have a null date.
    let b0 = batch(0, 100, 30);
    let b1 = batch(500, 20, 1000);
    sink.write(&k0, &b0, range(0, 100)).await.unwrap();
    sink.write(&k1, &b1, range(500, 520)).await.unwrap();
    let committed = sink.flush().await.unwrap();
    let mut by_dir: BTreeMap<String, usize> = BTreeMap::new();
    for c in &committed {
        let rel = c
            .path
            .strip_prefix(&format!("{}/", dir.path().display()))
            .unwrap()
            .to_owned();
        let (d, _) = rel.split_once('/').unwrap();
        *by_dir.entry(d.to_owned()).or_default() += 1;
        let got = read_file(&c.path);
        let want_dir = match d.strip_prefix("date=").unwrap() {
            "__HIVE_DEFAULT_PARTITION__" => None,
            day => Some(day.to_owned()),
        };
        for date in dates(&got) {
            assert_eq!(date.map(|d| format_day(d.into())), want_dir, "row in {rel}");
        }
        assert_eq!(c.rows as usize, got.num_rows());
    }
    assert_eq!(
        by_dir,
        BTreeMap::from([
            ("date=2024-01-01".to_owned(), 2),
            ("date=2024-01-02".to_owned(), 1),
            ("date=2024-01-03".to_owned(), 1),
            ("date=__HIVE_DEFAULT_PARTITION__".to_owned(), 2),
        ])
    );
    // Every file of partition 0's commit records the whole commit and lists its siblings.
    let p0: Vec<_> = committed.iter().filter(|c| c.partition == k0).collect();
    assert_eq!(p0.len(), 4);
    let meta = offsets_json(&footer(&p0[0].path));
    assert_eq!(meta["files"].as_array().unwrap().len(), 4);
    for c in &p0 {
        assert_eq!(c.offsets, range(0, 100));
        assert_eq!(offsets_json(&footer(&c.path)), meta);
    }
    let union = concat(&p0.iter().map(|c| read_file(&c.path)).collect::<Vec<_>>());
    assert_same_rows(&sort_by_offset(&union), &b0);
    let offsets = sink.committed_offsets().await.unwrap();
    assert_eq!(
        offsets,
        BTreeMap::from([(("ev".to_owned(), 0), 100), (("ev".to_owned(), 1), 520)])
    );
}

#[tokio::test]
async fn sink_parquet_partitions_timestamps_by_utc_day() {
    let dir = TempDir::new().unwrap();
    // ts_ns is in +05:30: the directory is still the UTC day.
    let mut sink = open_with(dir.path(), |c| c.partition_by = Some("ts_ns".into())).await;
    let b = batch(0, 60, 30);
    sink.write(&key("t", 0), &b, range(0, 60)).await.unwrap();
    let committed = sink.flush().await.unwrap();
    let mut dirs: Vec<String> = committed
        .iter()
        .map(|c| c.path.rsplit('/').nth(1).unwrap().to_owned())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        vec![
            "ts_ns=2024-01-01",
            "ts_ns=2024-01-02",
            "ts_ns=__HIVE_DEFAULT_PARTITION__"
        ]
    );
    let total: u64 = committed.iter().map(|c| c.rows).sum();
    assert_eq!(total, 60);
}

#[tokio::test]
async fn sink_parquet_partition_by_rejects_unknown_or_unsuitable_columns() {
    let dir = TempDir::new().unwrap();
    for (column, words) in [
        ("nope", "not in the schema"),
        ("f64", "cannot name a directory"),
    ] {
        let mut c = config(dir.path());
        c.partition_by = Some(column.into());
        let err = ParquetSink::open(c, schema()).await.unwrap_err();
        assert!(
            matches!(&err, SinkError::PartitionColumn { column: c, .. } if c == column),
            "{err}"
        );
        assert!(err.to_string().contains(words), "{err}");
    }
}

#[tokio::test]
async fn sink_parquet_writes_every_compression() {
    for (codec, want) in [
        (ParquetCompression::Snappy, Compression::SNAPPY),
        (ParquetCompression::Lz4, Compression::LZ4_RAW),
        (
            ParquetCompression::Gzip,
            Compression::GZIP(Default::default()),
        ),
        (ParquetCompression::None, Compression::UNCOMPRESSED),
        (
            ParquetCompression::Zstd,
            Compression::ZSTD(parquet::basic::ZstdLevel::try_new(3).unwrap()),
        ),
    ] {
        let dir = TempDir::new().unwrap();
        let mut sink = open_with(dir.path(), |c| c.compression = codec).await;
        let b = batch(0, 200, 1000);
        sink.write(&key("t", 0), &b, range(0, 200)).await.unwrap();
        let c = sink.close().await.unwrap();
        let md = footer(&c[0].path);
        for col in md.row_group(0).columns() {
            // Footers do not record levels: compare codecs only.
            assert_eq!(
                std::mem::discriminant(&col.compression()),
                std::mem::discriminant(&want),
                "{codec:?}"
            );
        }
        assert_same_rows(&read_file(&c[0].path), &b);
    }
    assert_eq!(
        "SNAPPY".parse::<ParquetCompression>(),
        Ok(ParquetCompression::Snappy)
    );
    assert!("brotli".parse::<ParquetCompression>().is_err());
}

#[tokio::test]
async fn sink_parquet_committed_offsets_across_files_partitions_and_processes() {
    let dir = TempDir::new().unwrap();
    let empty = open(dir.path()).await;
    assert!(empty.committed_offsets().await.unwrap().is_empty());
    // Two processes of one group share the directory, and a partition moves between them.
    let mut a = open(dir.path()).await;
    let mut b = open(dir.path()).await;
    a.write(&key("x", 0), &batch(0, 10, 1000), range(0, 10))
        .await
        .unwrap();
    a.write(&key("x", 1), &batch(0, 10, 1000), range(0, 12))
        .await
        .unwrap();
    b.write(&key("y", 0), &batch(0, 10, 1000), range(40, 50))
        .await
        .unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    a.write(&key("x", 0), &batch(10, 10, 1000), range(10, 25))
        .await
        .unwrap();
    a.flush().await.unwrap();
    b.write(&key("x", 0), &batch(25, 5, 1000), range(25, 30))
        .await
        .unwrap();
    b.flush().await.unwrap();
    // Another group's files and other tools' Parquet files do not count.
    let mut other = open_with(dir.path(), |c| c.group_id = "someone-else".into()).await;
    other
        .write(&key("x", 0), &batch(0, 10, 1000), range(0, 999))
        .await
        .unwrap();
    other.flush().await.unwrap();
    let foreign = std::fs::File::create(dir.path().join("foreign.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(foreign, schema(), None).unwrap();
    w.write(&batch(0, 5, 1000)).unwrap();
    w.close().unwrap();

    assert_eq!(files_under(dir.path()).len(), 7);
    let want = BTreeMap::from([
        (("x".to_owned(), 0), 30),
        (("x".to_owned(), 1), 12),
        (("y".to_owned(), 0), 50),
    ]);
    assert_eq!(a.committed_offsets().await.unwrap(), want);
    assert_eq!(b.committed_offsets().await.unwrap(), want);
    // A new process sees the same.
    let c = open(dir.path()).await;
    assert_eq!(c.committed_offsets().await.unwrap(), want);
    assert_eq!(c.committed_files().await.unwrap().len(), 5);
    assert_eq!(
        other.committed_offsets().await.unwrap(),
        BTreeMap::from([(("x".to_owned(), 0), 999)])
    );
}

#[tokio::test]
async fn sink_parquet_committed_offsets_reads_only_footers() {
    let dir = TempDir::new().unwrap();
    let mut sink = open_with(dir.path(), |c| c.compression = ParquetCompression::None).await;
    sink.write(&key("t", 0), &batch(0, 500, 1000), range(0, 500))
        .await
        .unwrap();
    let c = sink.flush().await.unwrap();
    // Overwrite the data pages (between the leading magic and the footer) with zeros.
    let path = &c[0].path;
    let mut bytes = std::fs::read(path).unwrap();
    let footer_len =
        u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let data_end = bytes.len() - 8 - footer_len;
    bytes[4..data_end].fill(0);
    std::fs::write(path, &bytes).unwrap();
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    assert!(
        reader.build().unwrap().any(|b| b.is_err()),
        "the data really is unreadable"
    );
    let offsets = sink.committed_offsets().await.unwrap();
    assert_eq!(offsets, BTreeMap::from([(("t".to_owned(), 0), 500)]));
}

#[tokio::test]
async fn sink_parquet_refuses_out_of_order_offsets_and_other_schemas() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    let k = key("t", 4);
    sink.write(&k, &batch(0, 10, 1000), range(0, 10))
        .await
        .unwrap();
    let err = sink
        .write(&k, &batch(5, 10, 1000), range(5, 15))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SinkError::Offsets { partition, .. } if *partition == k),
        "{err}"
    );
    assert!(err.to_string().contains("t-4"), "{err}");
    let err = sink
        .write(&k, &batch(20, 10, 1000), range(30, 20))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Offsets { .. }));
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "offset",
            DataType::Int64,
            false,
        )])),
        vec![Arc::new(arrow_array::Int64Array::from(vec![1]))],
    )
    .unwrap();
    let err = sink.write(&k, &other, range(10, 11)).await.unwrap_err();
    assert!(matches!(err, SinkError::SchemaMismatch { .. }), "{err}");
    // Refusals poison nothing: the partition goes on.
    sink.write(&k, &batch(10, 10, 1000), range(10, 20))
        .await
        .unwrap();
    // An empty batch moves the open commit's end over a gap.
    sink.write(&k, &batch(20, 0, 1000), range(20, 35))
        .await
        .unwrap();
    let c = sink.flush().await.unwrap();
    assert_eq!((c[0].offsets, c[0].rows), (range(0, 35), 20));
    let offsets = read_file(&c[0].path);
    let col = offsets.column(0).as_primitive::<Int64Type>();
    assert_eq!(col.values().to_vec(), (0..20).collect::<Vec<i64>>());
}
