//! Resets recorded in a real Parquet sink directory: files written by [`ParquetSink`], the
//! plan applied, and the sink reopened to read its offsets back.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use super::*;
use crate::sink::{ParquetSinkConfig, PartitionKey, Sink};

fn f(rel: &str, first: i64, next: i64) -> SinkFile {
    SinkFile {
        rel: rel.to_owned(),
        first,
        next,
    }
}

#[test]
fn backward_resets_set_aside_whole_files() {
    let files = [f("a", 0, 100), f("b", 100, 200), f("c", 200, 250)];
    // On a boundary: the later files go, nothing else is needed.
    let p = plan_partition("t", 0, 100, &files, false);
    assert_eq!((p.new, p.marker), (100, false));
    assert_eq!(p.set_aside, vec![files[1].clone(), files[2].clone()]);
    // Inside a file: back to its start.
    let p = plan_partition("t", 0, 150, &files, false);
    assert_eq!((p.requested, p.new, p.marker), (150, 100, false));
    assert_eq!(p.set_aside.len(), 2);
    // To the start: everything goes, and an empty file records 0.
    let p = plan_partition("t", 0, 0, &files, false);
    assert_eq!((p.new, p.marker), (0, true));
    assert_eq!(p.set_aside.len(), 3);
    // Where the sink already is: nothing happens.
    let p = plan_partition("t", 0, 250, &files, false);
    assert_eq!((p.new, p.marker, p.set_aside.len()), (250, false, 0));
}

#[test]
fn forward_resets_and_empty_partitions_get_a_marker() {
    let files = [f("a", 0, 100)];
    let p = plan_partition("t", 0, 300, &files, false);
    assert_eq!((p.new, p.marker, p.set_aside.len()), (300, true, 0));
    // A partition without files is left to the group's offset.
    let p = plan_partition("t", 0, 7, &[], false);
    assert_eq!((p.new, p.marker), (7, false));
    // ...unless source.start would win over the group's offset: then it is pinned.
    let p = plan_partition("t", 0, 7, &[], true);
    assert_eq!((p.new, p.marker), (7, true));
    // An earlier marker past the new offset is set aside like any file.
    let files = [f("a", 0, 100), f("m", 500, 500)];
    let p = plan_partition("t", 0, 100, &files, false);
    assert_eq!((p.new, p.marker), (100, false));
    assert_eq!(p.set_aside, vec![files[1].clone()]);
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]))
}

async fn write(sink: &mut ParquetSink, partition: i32, first: i64, next: i64) {
    let values: Vec<i64> = (first..next).collect();
    let batch = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(values))]).unwrap();
    sink.write(
        &PartitionKey::new("t", partition),
        &batch,
        OffsetRange::new(first, next),
    )
    .await
    .unwrap();
    sink.flush().await.unwrap();
}

fn config(dir: &Path) -> Config {
    Config::parse(
        &format!(
            "[source]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\ngroup = \"g\"\n\n[[columns]]\nname = \"n\"\ntype = \"int64\"\n\n[sink]\ntype = \"parquet\"\npath = \"{}\"\n",
            dir.display()
        ),
        "test.toml",
    )
    .unwrap()
}

fn rows_in(dir: &Path) -> i64 {
    let mut rows = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&path).unwrap();
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).unwrap();
            use parquet::file::reader::FileReader;
            rows += reader.metadata().file_metadata().num_rows();
        }
    }
    rows
}

#[tokio::test]
async fn applied_resets_are_what_the_sink_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let mut sink = ParquetSink::open(
        ParquetSinkConfig::new(root.display().to_string(), "g"),
        schema(),
    )
    .await
    .unwrap();
    write(&mut sink, 0, 0, 10).await;
    write(&mut sink, 0, 10, 20).await;
    write(&mut sink, 1, 0, 5).await;
    // Another group's file is neither counted nor moved.
    let mut other = ParquetSink::open(
        ParquetSinkConfig::new(root.display().to_string(), "other"),
        schema(),
    )
    .await
    .unwrap();
    write(&mut other, 0, 0, 30).await;
    assert_eq!(rows_in(&root), 55);

    let c = config(&root);
    let files = committed_files(&c, schema()).await.unwrap();
    assert_eq!(files[&("t".to_owned(), 0)].len(), 2);
    assert_eq!(files[&("t".to_owned(), 1)].len(), 1);
    // Partition 0 back to 15 (inside [10, 20): to 10), partition 1 forward to 40.
    let plan = ParquetResetPlan {
        marker_dir: None,
        root: root.clone(),
        group: "g".to_owned(),
        partitions: vec![
            plan_partition("t", 0, 15, &files[&("t".to_owned(), 0)], false),
            plan_partition("t", 1, 40, &files[&("t".to_owned(), 1)], false),
        ],
    };
    assert_eq!(plan.partitions[0].new, 10);
    let done = apply(&plan, &schema()).unwrap();
    assert_eq!(done.moved, 1);
    assert_eq!(done.markers.len(), 1);
    let aside = done.set_aside_dir.unwrap();
    assert!(aside.starts_with(root.join(RESET_DIR)));
    assert!(aside.join("reset.json").is_file());

    let reopened = ParquetSink::open(
        ParquetSinkConfig::new(root.display().to_string(), "g"),
        schema(),
    )
    .await
    .unwrap();
    let offsets = reopened.committed_offsets().await.unwrap();
    assert_eq!(offsets[&("t".to_owned(), 0)], 10);
    assert_eq!(offsets[&("t".to_owned(), 1)], 40);
    // The dataset lost the 10 rows of [10, 20), and the marker holds none.
    assert_eq!(rows_in(&root), 45);
    // No temporary file is left behind.
    assert!(std::fs::read_dir(&root).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
    // The other group still resumes where it was.
    let other = ParquetSink::open(
        ParquetSinkConfig::new(root.display().to_string(), "other"),
        schema(),
    )
    .await
    .unwrap();
    assert_eq!(
        other.committed_offsets().await.unwrap()[&("t".to_owned(), 0)],
        30
    );

    // Back to the start of partition 1: the marker is set aside and a new one records 0.
    let files = committed_files(&c, schema()).await.unwrap();
    let plan = ParquetResetPlan {
        marker_dir: None,
        root: root.clone(),
        group: "g".to_owned(),
        partitions: vec![plan_partition(
            "t",
            1,
            0,
            &files[&("t".to_owned(), 1)],
            false,
        )],
    };
    assert_eq!(plan.partitions[0].set_aside.len(), 2);
    apply(&plan, &schema()).unwrap();
    let reopened = ParquetSink::open(
        ParquetSinkConfig::new(root.display().to_string(), "g"),
        schema(),
    )
    .await
    .unwrap();
    assert_eq!(
        reopened.committed_offsets().await.unwrap()[&("t".to_owned(), 1)],
        0
    );
}

#[test]
fn object_stores_have_no_local_root() {
    assert_eq!(local_root("./data"), Some(PathBuf::from("./data")));
    assert_eq!(local_root("file:///tmp/x"), Some(PathBuf::from("/tmp/x")));
    assert_eq!(local_root("s3://bucket/p"), None);
}

/// With `partition_by`, a reset's marker goes where the sink puts its own markers (the
/// column's null directory), so the dataset stays Hive-partitioned, and the sink, opened with
/// the same `partition_by`, reads the reset back.
#[tokio::test]
async fn reset_markers_follow_partition_by() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let mut c = ParquetSinkConfig::new(root.display().to_string(), "g");
    c.partition_by = Some("n".to_owned());
    let mut sink = ParquetSink::open(c.clone(), schema()).await.unwrap();
    write(&mut sink, 0, 0, 10).await;
    drop(sink);
    let plan = ParquetResetPlan {
        marker_dir: Some(crate::sink::marker_subdir("n")),
        root: root.clone(),
        group: "g".to_owned(),
        partitions: vec![plan_partition("t", 0, 25, &[], true)],
    };
    let done = apply(&plan, &schema()).unwrap();
    assert_eq!(done.markers.len(), 1);
    assert!(
        done.markers[0].starts_with(root.join("n=__HIVE_DEFAULT_PARTITION__")),
        "{:?}",
        done.markers
    );
    // Nothing but partition directories at the top (and no reset folder: nothing moved).
    for e in std::fs::read_dir(&root).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.starts_with("n="), "{name} at the root");
    }
    let reopened = ParquetSink::open(c, schema()).await.unwrap();
    assert_eq!(
        reopened.committed_offsets().await.unwrap()[&("t".to_owned(), 0)],
        25
    );
}
