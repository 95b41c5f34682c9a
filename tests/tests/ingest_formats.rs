//! `kingest run` end to end against nisshi for every value format (JSON, CSV, raw, and Avro
//! with a schema registry and payloads written by apache-avro's own writer), with every
//! metadata column (`__key`, `__header$NAME`, `__topic`, `__partition`, `__offset`,
//! `__timestamp`).
//!
//! Records are produced with librdkafka (keys, repeated and null headers, explicit
//! timestamps, several partitions); the output is read back with the parquet crate's own
//! Arrow reader and compared record for record and column for column with what was produced:
//! integers of every width, floats, exact decimals, dates and timestamps in several units and
//! spellings, lists, structs, nulls (missing and explicit), escapes and non-ASCII text. The
//! files' footer offsets must tile each partition with no gap or overlap. The cases are
//! `kingest_tests::ingest::cases`, which the PostgreSQL sink's test runs too.

use std::collections::BTreeMap;

use arrow_schema::DataType;
use kingest_tests::ingest::case::Case;
use kingest_tests::ingest::job::{parquet_sink, run_until_eof};
use kingest_tests::ingest::{cases, end_offsets, exactly_once, read_dir, Cell};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::registry::Registry;

/// Produces the case's records, runs the job until the end of the topic into Parquet, and
/// checks the files against them: each file's schema, the exactly-once tiling of the footer
/// offsets, and every cell of every row.
async fn check(case: Case) {
    let broker = Nisshi::start();
    let at = case.produce(&broker).await;
    let dir = tempfile::tempdir().unwrap();
    let config = case.job(&broker, "formats", &parquet_sink(dir.path()));
    let summary = run_until_eof(config).await.unwrap();

    let files = read_dir(dir.path());
    assert!(!files.is_empty(), "no Parquet files written");
    let want_types = case.all_types();
    for f in &files {
        let got: Vec<(&str, &DataType)> = f
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        let want: Vec<(&str, &DataType)> = want_types.iter().map(|(n, t)| (*n, t)).collect();
        assert_eq!(got, want, "{}: schema", f.path.display());
    }
    let rows = exactly_once(&files, case.topic, &end_offsets(&at), "partition", "offset");
    assert_eq!(rows.len(), case.records.len(), "rows written");
    for (i, ((p, o), cells)) in case.expected(&at).into_iter().enumerate() {
        let want: BTreeMap<String, Cell> =
            cells.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
        let got = rows
            .get(&(p, o))
            .unwrap_or_else(|| panic!("record {i} at {p}/{o} missing"));
        for (name, want_cell) in &want {
            assert_eq!(
                got.get(name),
                Some(want_cell),
                "record {i} ({p}/{o}) column {name}: {got:?}"
            );
        }
        assert_eq!(got.len(), want.len(), "record {i}: columns {got:?}");
    }
    case.check_summary(&summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_every_type_and_metadata() {
    check(cases::json(700)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_pipe_delimited_with_quotes_and_nulls() {
    check(cases::csv(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bytes_with_binary_values_and_headers() {
    check(cases::raw_bytes(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_text_into_typed_columns() {
    check(cases::raw_text(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_with_a_schema_registry_and_two_writer_schemas() {
    let registry = Registry::start();
    let (case, [id1, id2]) = cases::avro(&registry, 600);
    check(case).await;
    // Each writer schema was fetched once, by id, and nothing else was asked.
    assert_eq!(
        (registry.id_requests(id1), registry.id_requests(id2)),
        (1, 1)
    );
    assert_eq!(registry.request_count(), 2, "{:?}", registry.requests());
}
