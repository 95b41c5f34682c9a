//! `kingest compact` on an Iceberg table written by the sink in-process (SQLite catalog):
//! the replace snapshot's content, a stale plan abandoned, the sink committing on top of a
//! compaction, and snapshot expiry deleting exactly the files only expired snapshots held.
//! (The end-to-end tests with pyiceberg, a running job and kills are in
//! `tests/tests/iceberg_compact.rs`.)

use std::collections::BTreeSet;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tempfile::TempDir;

use super::compact::read_snapshot;
use super::tests::{config, rows, schema};
use super::*;
use crate::sink::maintenance::Maintain;
use crate::sink::parquet::compact::CompactionSettings;
use crate::sink::tests::{key, range};

const SETTINGS: CompactionSettings = CompactionSettings {
    target_bytes: 1 << 20,
    small_below: 3 << 18,
    min_input_files: 2,
};

/// The current snapshot's live data files, its operation, and the offsets its rows hold.
async fn current(c: &IcebergSinkConfig) -> (Vec<String>, String, Vec<i64>) {
    let catalog = Catalog::connect(&c.catalog, c.store_settings())
        .await
        .unwrap();
    let loaded = catalog
        .load(&TableIdent::parse(&c.table).unwrap())
        .await
        .unwrap()
        .unwrap();
    let io = catalog.io(loaded.metadata.location()).unwrap();
    let id = loaded.metadata.current_snapshot_id();
    let files: Vec<String> = read_snapshot(&io, &loaded, id)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|(_, r)| r.entries)
        .filter(|e| e.live())
        .map(|e| e.path)
        .collect();
    let op = loaded.metadata.snapshot(id.unwrap()).unwrap().summary["operation"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut offsets = Vec::new();
    for f in &files {
        let file = std::fs::File::open(f.strip_prefix("file://").unwrap()).unwrap();
        for b in ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
        {
            let b = b.unwrap();
            let col = b
                .column_by_name("offset")
                .unwrap()
                .as_primitive::<Int64Type>();
            offsets.extend(col.values().iter().copied());
        }
    }
    offsets.sort_unstable();
    (files, op, offsets)
}

#[tokio::test]
async fn iceberg_compaction_replaces_small_files_and_expiry_deletes_what_only_old_snapshots_held() {
    let dir = TempDir::new().unwrap();
    let mut c = config(&dir, "g");
    c.partition_by = vec!["bucket(2, offset)".into()];
    let mut sink = IcebergSink::open(c.clone(), schema()).await.unwrap();
    for i in 0..20i64 {
        sink.write(&key("events", 0), &rows(i * 5, 5), range(i * 5, i * 5 + 5))
            .await
            .unwrap();
        sink.flush().await.unwrap();
    }
    let (small, op, offsets) = current(&c).await;
    assert_eq!(op, "append");
    assert!(small.len() >= 30, "{} files", small.len());
    assert_eq!(offsets, (0..100).collect::<Vec<_>>());

    let m = open_maintenance(&c, SETTINGS, None).await.unwrap();
    let plan = m.plan().await.unwrap();
    assert_eq!(plan.rewrites.len(), 2, "{plan:?}");
    let done = m.execute(&plan).await.unwrap();
    assert_eq!(done.rewritten.len(), 2, "{done:?}");
    assert!(done.skipped.is_empty(), "{done:?}");
    let (compacted, op, offsets) = current(&c).await;
    assert_eq!(op, "replace");
    assert_eq!(compacted.len(), 2);
    assert_eq!(offsets, (0..100).collect::<Vec<_>>());
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        CommittedOffsets::from([(("events".to_owned(), 0), 100)])
    );
    assert!(m.plan().await.unwrap().rewrites.is_empty());

    // The plan again: its inputs are gone from the table, so it is abandoned.
    let stale = m.execute(&plan).await.unwrap();
    assert!(
        stale.rewritten.is_empty() && stale.skipped.len() == 2,
        "{stale:?}"
    );
    assert_eq!(current(&c).await.0, compacted);

    // The sink, whose cached table is the one before the replace, commits on top of it.
    sink.write(&key("events", 0), &rows(100, 5), range(100, 105))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    let (files, op, offsets) = current(&c).await;
    assert_eq!(op, "append");
    assert_eq!(offsets, (0..105).collect::<Vec<_>>());
    assert!(files.len() > compacted.len());

    // Expiry: the append on top carries the offsets, so every other snapshot goes, and with
    // them the small files.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let retention = IcebergRetention {
        max_age: Duration::from_millis(10),
        orphans_older_than: Duration::from_secs(3 * 86_400),
    };
    let e = open_maintenance(&c, SETTINGS, Some(retention))
        .await
        .unwrap();
    let mut plan = e.plan().await.unwrap();
    plan.rewrites.clear();
    assert!(!plan.expired.is_empty(), "{plan:?}");
    let done = e.execute(&plan).await.unwrap();
    let deleted: BTreeSet<&str> = done.deleted.iter().map(String::as_str).collect();
    for f in &small {
        assert!(deleted.contains(f.as_str()), "{f} not deleted");
        assert!(!std::path::Path::new(f.strip_prefix("file://").unwrap()).exists());
    }
    let (after, _, offsets) = current(&c).await;
    assert_eq!(after, files);
    assert_eq!(offsets, (0..105).collect::<Vec<_>>());
    let loaded = sink.catalog.load(&sink.ident).await.unwrap().unwrap();
    assert_eq!(loaded.metadata.snapshot_ids().len(), 1);
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        CommittedOffsets::from([(("events".to_owned(), 0), 105)])
    );
    // And the sink goes on committing.
    sink.write(&key("events", 0), &rows(105, 5), range(105, 110))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(current(&c).await.2, (0..110).collect::<Vec<_>>());
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> BTreeSet<std::path::PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn iceberg_old_metadata_files_go_and_old_orphans_are_removed_young_ones_kept() {
    let dir = TempDir::new().unwrap();
    let mut c = config(&dir, "g");
    c.properties
        .insert("write.metadata.previous-versions-max".into(), "3".into());
    let mut sink = IcebergSink::open(c.clone(), schema()).await.unwrap();
    for i in 0..12i64 {
        sink.write(&key("events", 0), &rows(i * 5, 5), range(i * 5, i * 5 + 5))
            .await
            .unwrap();
        sink.flush().await.unwrap();
    }
    let loaded = sink.catalog.load(&sink.ident).await.unwrap().unwrap();
    let root =
        std::path::PathBuf::from(loaded.metadata.location().strip_prefix("file://").unwrap());
    // The creation's and 12 commits' metadata files: the current one and the 3 the log keeps.
    let metadata_files: BTreeSet<_> = files_under(&root.join("metadata"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".metadata.json"))
        .collect();
    assert_eq!(metadata_files.len(), 4, "{metadata_files:?}");
    assert_eq!(loaded.metadata.metadata_log().len(), 3);
    assert!(loaded.metadata.deletes_dropped_metadata());

    // Orphans: a data file and a manifest a killed writer left four days ago, a data file
    // written a moment ago (maybe by a writer about to commit it).
    let old = std::time::SystemTime::now() - Duration::from_secs(4 * 86_400);
    let plant = |rel: &str, modified: Option<std::time::SystemTime>| {
        let p = root.join(rel);
        std::fs::write(&p, b"never committed").unwrap();
        if let Some(t) = modified {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        p
    };
    let data = files_under(&root.join("data"));
    let data_dir = data.iter().next().unwrap().parent().unwrap().to_owned();
    let rel_data = data_dir
        .strip_prefix(&root)
        .unwrap()
        .join("00000-0-dead.parquet");
    let old_data = plant(rel_data.to_str().unwrap(), Some(old));
    let old_manifest = plant("metadata/dead-m0.avro", Some(old));
    let young = plant("data/young.parquet", None);
    let referenced = files_under(&root);

    let retention = IcebergRetention {
        max_age: Duration::from_secs(86_400),
        orphans_older_than: Duration::from_secs(3_600),
    };
    let m = open_maintenance(&c, SETTINGS, Some(retention))
        .await
        .unwrap();
    let mut plan = m.plan().await.unwrap();
    plan.rewrites.clear();
    let listed: BTreeSet<String> = plan.orphans.iter().map(|f| f.path.clone()).collect();
    let want: BTreeSet<String> = [&old_data, &old_manifest]
        .iter()
        .map(|p| format!("file://{}", p.display()))
        .collect();
    assert_eq!(listed, want, "{plan:?}");
    assert!(old_data.exists(), "the dry run deleted");
    let done = m.execute(&plan).await.unwrap();
    assert_eq!(done.deleted.iter().cloned().collect::<BTreeSet<_>>(), want);
    let left = files_under(&root);
    assert!(!left.contains(&old_data) && !left.contains(&old_manifest));
    for p in referenced {
        if p != old_data && p != old_manifest {
            assert!(left.contains(&p), "{} was deleted", p.display());
        }
    }
    assert!(young.exists());
    assert_eq!(current(&c).await.2, (0..60).collect::<Vec<_>>());
}
