//! The Parquet sink on object stores: `InMemory` and `LocalFileSystem` through the same
//! `ObjectStore` code path that S3, GCS and Azure use (those need a network this machine does
//! not have, so only their client construction is tested).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tempfile::TempDir;

use super::*;
use crate::sink::{ParquetSink, Sink, SinkError};

async fn get(store: &dyn ObjectStore, path: &str) -> Bytes {
    store
        .get(&ObjectPath::parse(path).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

fn cfg(partition_by: Option<&str>) -> ParquetSinkConfig {
    let mut c = ParquetSinkConfig::new("unused", "g");
    c.partition_by = partition_by.map(str::to_owned);
    c
}

/// Writes two partitions (one of them twice), checks the objects and offsets, and returns
/// the object paths.
async fn round_trip(store: Arc<dyn ObjectStore>, partition_by: Option<&str>) -> Vec<String> {
    let mut sink = ParquetSink::open_object_store(
        Arc::clone(&store),
        "lake/events",
        cfg(partition_by),
        schema(),
    )
    .await
    .unwrap();
    let b0 = batch(0, 120, 50);
    let b1 = batch(1000, 80, 50);
    sink.write(&key("ev", 0), &b0, range(0, 120)).await.unwrap();
    sink.write(&key("ev", 1), &b1, range(1000, 1080))
        .await
        .unwrap();
    let first = sink.flush().await.unwrap();
    sink.write(&key("ev", 0), &batch(120, 30, 50), range(120, 150))
        .await
        .unwrap();
    let second = sink.close().await.unwrap();

    let listed = objects(&*store).await;
    assert!(
        listed
            .iter()
            .all(|p| p.starts_with("lake/events/") && p.ends_with(".parquet")),
        "{listed:?}"
    );
    assert!(
        !listed.iter().any(|p| p.contains("_kingest_staging")),
        "{listed:?}"
    );
    assert_eq!(listed.len(), first.len() + second.len());
    // Read every object back and compare with what was written, per Kafka partition.
    let mut per_partition: BTreeMap<i32, Vec<RecordBatch>> = BTreeMap::new();
    for c in first.iter().chain(&second) {
        let rel = c.path.split_once("/lake/events/").unwrap().1;
        let bytes = get(&*store, &format!("lake/events/{rel}")).await;
        assert_eq!(bytes.len() as u64, c.bytes);
        let got = read_bytes(bytes.clone());
        assert_eq!(got.num_rows() as u64, c.rows);
        let md = parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&bytes)
            .unwrap();
        let meta = offsets_json(&md);
        assert_eq!(
            meta["offsets"]["ev"][c.partition.partition.to_string()],
            serde_json::json!([c.offsets.first, c.offsets.next])
        );
        per_partition
            .entry(c.partition.partition)
            .or_default()
            .push(got);
    }
    assert_same_rows(
        &sort_by_offset(&concat(&per_partition[&0])),
        &batch(0, 150, 50),
    );
    assert_same_rows(&sort_by_offset(&concat(&per_partition[&1])), &b1);

    let reopened = ParquetSink::open_object_store(
        Arc::clone(&store),
        "lake/events",
        cfg(partition_by),
        schema(),
    )
    .await
    .unwrap();
    assert_eq!(reopened.recovery(), &Default::default());
    assert_eq!(
        reopened.committed_offsets().await.unwrap(),
        BTreeMap::from([(("ev".to_owned(), 0), 150), (("ev".to_owned(), 1), 1080)])
    );
    listed
}

#[tokio::test]
async fn sink_parquet_in_memory_store_round_trip() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let listed = round_trip(store, None).await;
    assert_eq!(listed.len(), 3);
}

#[tokio::test]
async fn sink_parquet_in_memory_store_partitioned_commits_go_through_staging() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let listed = round_trip(store, Some("date")).await;
    let dirs: std::collections::BTreeSet<&str> = listed
        .iter()
        .map(|p| p.split('/').nth(2).unwrap())
        .collect();
    assert_eq!(
        dirs.into_iter().collect::<Vec<_>>(),
        vec![
            "date=2024-01-01",
            "date=2024-01-02",
            "date=2024-01-03",
            "date=__HIVE_DEFAULT_PARTITION__"
        ]
    );
}

#[tokio::test]
async fn sink_parquet_local_file_system_store_round_trip() {
    let dir = TempDir::new().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    round_trip(Arc::clone(&store), None).await;
    // The objects are plain files a Parquet reader opens directly.
    let files = files_under(dir.path());
    assert_eq!(files.len(), 3, "{files:?}");
    let total: usize = files
        .iter()
        .map(|f| read_file(dir.path().join(f)).num_rows())
        .sum();
    assert_eq!(total, 230);

    let dir = TempDir::new().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    round_trip(store, Some("date")).await;
    assert!(files_under(dir.path())
        .iter()
        .all(|f| f.starts_with("lake/events/date=")));
}

/// Copies a committed object to the staging folder and deletes the original, as if the
/// writer died between uploading and copying into place.
async fn unstage(store: &dyn ObjectStore, shown: &str) -> (ObjectPath, ObjectPath) {
    let rel = shown.split_once("/lake/events/").unwrap().1;
    let final_path = ObjectPath::parse(format!("lake/events/{rel}")).unwrap();
    let staged = ObjectPath::parse(format!("lake/events/_kingest_staging/{rel}")).unwrap();
    store.copy(&final_path, &staged).await.unwrap();
    store.delete(&final_path).await.unwrap();
    (final_path, staged)
}

#[tokio::test]
async fn sink_parquet_in_memory_store_recovery() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let open = |grace: Duration| {
        let store = Arc::clone(&store);
        async move {
            let mut c = cfg(Some("date"));
            c.staging_grace = grace;
            ParquetSink::open_object_store(store, "lake/events", c, schema())
                .await
                .unwrap()
        }
    };
    let mut sink = open(Duration::from_secs(3600)).await;
    sink.write(&key("ev", 0), &batch(0, 90, 30), range(0, 90))
        .await
        .unwrap();
    let a = sink.flush().await.unwrap();
    sink.write(&key("ev", 0), &batch(90, 90, 30), range(90, 180))
        .await
        .unwrap();
    let b = sink.flush().await.unwrap();
    drop(sink);
    assert!(a.len() >= 2 && b.len() >= 2);

    // Commit A: all files uploaded to staging, one copied into place before the crash.
    let mut a_staged = Vec::new();
    for c in &a[1..] {
        a_staged.push(unstage(&*store, &c.path).await);
    }
    // Commit B: one file uploaded to staging, the others never uploaded.
    let (_, b_staged) = unstage(&*store, &b[0].path).await;
    for c in &b[1..] {
        let rel = c.path.split_once("/lake/events/").unwrap().1;
        store
            .delete(&ObjectPath::parse(format!("lake/events/{rel}")).unwrap())
            .await
            .unwrap();
    }

    // A young torn commit may be a live writer's: left alone, offsets not counted.
    let young = open(Duration::from_secs(3600)).await;
    assert_eq!(young.recovery().rolled_forward.len(), a.len() - 1);
    assert!(young.recovery().removed.is_empty());
    assert_eq!(young.recovery().in_use.len(), 1);
    for (final_path, staged) in &a_staged {
        store.head(final_path).await.unwrap();
        assert!(matches!(
            store.head(staged).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }
    store.head(&b_staged).await.unwrap();
    assert_eq!(
        young.committed_offsets().await.unwrap(),
        BTreeMap::from([(("ev".to_owned(), 0), 90)])
    );

    // Past the grace period it is removed.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let old = open(Duration::from_millis(10)).await;
    assert_eq!(old.recovery().removed.len(), 1, "{:?}", old.recovery());
    assert!(matches!(
        store.head(&b_staged).await,
        Err(object_store::Error::NotFound { .. })
    ));
    assert!(!objects(&*store)
        .await
        .iter()
        .any(|p| p.contains("_kingest_staging")));
    assert_eq!(
        old.committed_offsets().await.unwrap(),
        BTreeMap::from([(("ev".to_owned(), 0), 90)])
    );
    let rows: usize = {
        let mut n = 0;
        for p in objects(&*store).await {
            n += read_bytes(get(&*store, &p).await).num_rows();
        }
        n
    };
    assert_eq!(rows, 90, "exactly commit A's rows are visible");
}

#[tokio::test]
async fn sink_parquet_in_memory_store_multipart_upload_is_invisible_until_committed() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut c = cfg(None);
    // Small row groups and parts, so bytes leave the writer (as upload parts) before the
    // flush.
    c.row_group_bytes = 16 << 10;
    c.upload_part_bytes = 64 << 10;
    c.compression = crate::sink::ParquetCompression::None;
    let mut sink = ParquetSink::open_object_store(Arc::clone(&store), "mp", c, schema())
        .await
        .unwrap();
    let mut written = Vec::new();
    for i in 0..8 {
        let b = batch(i * 500, 500, 1000);
        sink.write(&key("t", 0), &b, range(i * 500, i * 500 + 500))
            .await
            .unwrap();
        written.push(b);
    }
    assert!(
        objects(&*store).await.is_empty(),
        "nothing is visible before the commit"
    );
    let done = sink.flush().await.unwrap();
    assert!(
        done[0].bytes > 4 * (64 << 10),
        "large enough for a multipart upload: {}",
        done[0].bytes
    );
    let listed = objects(&*store).await;
    assert_eq!(listed.len(), 1);
    let got = read_bytes(get(&*store, &listed[0]).await);
    assert_same_rows(&got, &concat(&written));
    let md = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&get(&*store, &listed[0]).await)
        .unwrap();
    assert!(
        md.num_row_groups() > 1,
        "row groups were flushed along the way"
    );
}

#[tokio::test]
async fn sink_parquet_object_store_rejects_corrupt_metadata_and_ignores_foreign_objects() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = ParquetSink::open_object_store(Arc::clone(&store), "p", cfg(None), schema())
        .await
        .unwrap();
    sink.write(&key("t", 0), &batch(0, 10, 1000), range(0, 10))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    store
        .put(
            &ObjectPath::from("p/readme.txt"),
            PutPayload::from_static(b"not parquet"),
        )
        .await
        .unwrap();
    assert_eq!(sink.committed_offsets().await.unwrap().len(), 1);
    // A `.parquet` object that is not Parquet is an error naming it, not a silent skip
    // (skipping could resume too early and duplicate rows).
    store
        .put(
            &ObjectPath::from("p/broken.parquet"),
            PutPayload::from_static(b"PAR1 nope"),
        )
        .await
        .unwrap();
    let err = sink.committed_offsets().await.unwrap_err();
    assert!(
        matches!(&err, SinkError::Footer { path, .. } if path.ends_with("p/broken.parquet")),
        "{err}"
    );
}

#[tokio::test]
async fn sink_parquet_location_schemes() {
    let err = ParquetSink::open(ParquetSinkConfig::new("ftp://host/dir", "g"), schema())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SinkError::Location { location, .. } if location == "ftp://host/dir"),
        "{err}"
    );
    let dir = TempDir::new().unwrap();
    let url = format!("file://{}", dir.path().join("sub").display());
    let mut sink = ParquetSink::open(ParquetSinkConfig::new(url, "g"), schema())
        .await
        .unwrap();
    sink.write(&key("t", 0), &batch(0, 5, 1000), range(0, 5))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(files_under(&dir.path().join("sub")).len(), 1);
}

/// S3, GCS and Azure clients build from URLs and the environment (no request is made: this
/// machine has no network).
#[cfg(feature = "cloud")]
#[test]
fn sink_parquet_cloud_clients_build_with_rustls() {
    use crate::sink::parquet::cloud_store;
    let none = BTreeMap::new();
    let retry = crate::sink::parquet::StoreRetry::default();
    let s3 = cloud_store("s3", "s3://bucket/prefix", &none, &retry).unwrap();
    assert!(s3.to_string().contains("bucket"), "{s3}");
    let gs = cloud_store("gs", "gs://bucket/prefix", &none, &retry).unwrap();
    assert!(gs.to_string().contains("bucket"), "{gs}");
    // An unknown option is refused with its name.
    let bad = BTreeMap::from([("aws_endpiont".to_owned(), "http://x".to_owned())]);
    let err = cloud_store("s3", "s3://bucket/prefix", &bad, &retry).unwrap_err();
    assert!(err.to_string().contains("aws_endpiont"), "{err}");
    let az = cloud_store("az", "az://container/prefix", &none, &retry);
    // Azure needs an account name (from AZURE_STORAGE_ACCOUNT_NAME); the error says so.
    match az {
        Ok(s) => assert!(s.to_string().contains("container"), "{s}"),
        Err(e) => assert!(e.to_string().to_lowercase().contains("account"), "{e}"),
    }
}
