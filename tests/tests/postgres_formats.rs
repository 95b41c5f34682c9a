//! `kingest run` into a real PostgreSQL (Debian's server, started by the test in a temporary
//! directory) for every value format: JSON, CSV, raw bytes, raw text and Avro with a schema
//! registry, the same cases as the Parquet sink's test (`kingest_tests::ingest::cases`).
//! Records are produced with librdkafka on nisshi; the table is read back with `psql` (an
//! independent reader) and compared row for row and column for column with what was
//! produced: NULLs (missing and explicit), integers of every width, floats, exact decimals,
//! dates, timestamps in every unit (nanoseconds kept to the microsecond, as PostgreSQL
//! stores them), lists, structs (as jsonb), binary values, escapes and non-ASCII text, and
//! every metadata column. The offsets table must hold each partition's end.

use std::collections::BTreeMap;

use arrow_schema::{DataType, TimeUnit};
use kingest::engine::{columns, postgres_config};
use kingest::schema::arrow_schema;
use kingest_tests::ingest::case::Case;
use kingest_tests::ingest::job::run_until_eof;
use kingest_tests::ingest::{cases, end_offsets, Cell};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::postgres::Postgres;
use kingest_tests::peers::registry::Registry;

/// PostgreSQL keeps microseconds: the expected cells of nanosecond columns, truncated to them.
fn to_microseconds(mut case: Case) -> Case {
    let nanos: Vec<&str> = case
        .types
        .iter()
        .filter(|(_, t)| matches!(t, DataType::Timestamp(TimeUnit::Nanosecond, _)))
        .map(|(n, _)| *n)
        .collect();
    for (_, cells) in &mut case.records {
        for (name, cell) in cells.iter_mut() {
            if let (true, Cell::Ts(ns)) = (nanos.contains(name), &*cell) {
                *cell = Cell::Ts(ns / 1_000 * 1_000);
            }
        }
    }
    case
}

/// Runs one case into its own table (named after the topic) and compares the table with it.
async fn check_postgres(broker: &Nisshi, pg: &Postgres, case: Case) {
    let case = to_microseconds(case);
    let at = case.produce(broker).await;
    let table = case.topic.replace('-', "_");
    let sink = format!(
        "[sink]\ntype = \"postgres\"\nurl = \"{}\"\ntable = \"{table}\"\n",
        pg.url()
    );
    let config = case.job(broker, "pg-formats", &sink);
    let sink = postgres_config(&config).unwrap();
    let schema = arrow_schema(&columns(&config).unwrap());
    let report = kingest::sink::postgres::setup(&sink, &schema)
        .await
        .unwrap();
    assert!(report.created_table.is_some(), "{report:?}");
    assert!(report.differences.is_empty(), "{report:?}");

    let summary = run_until_eof(config).await.unwrap();
    case.check_summary(&summary);

    let types = case.all_types();
    let rows = pg.read_rows(&table, &types, "\"partition\", \"offset\"");
    assert_eq!(
        rows.len(),
        case.records.len(),
        "{}: rows in the table",
        case.topic
    );
    let names: Vec<&str> = types.iter().map(|(n, _)| *n).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    let by_offset: BTreeMap<(i64, i64), &Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let Cell::Int(p) = r[pos("partition")] else {
                panic!("partition {r:?}")
            };
            let Cell::Int(o) = r[pos("offset")] else {
                panic!("offset {r:?}")
            };
            ((p, o), r)
        })
        .collect();
    assert_eq!(
        by_offset.len(),
        rows.len(),
        "{}: a record stored twice",
        case.topic
    );
    for (i, ((p, o), want)) in case.expected(&at).into_iter().enumerate() {
        let got = by_offset
            .get(&(i64::from(p), o))
            .unwrap_or_else(|| panic!("{}: record {i} at {p}/{o} missing", case.topic));
        for (name, cell) in want {
            assert_eq!(
                got[pos(name)],
                cell,
                "{}: record {i} ({p}/{o}) column {name}",
                case.topic
            );
        }
    }
    // The offsets table holds where each partition ends.
    assert_eq!(
        pg.offsets_table("pg-formats", case.topic),
        end_offsets(&at),
        "{}: offsets table",
        case.topic
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_row_for_row_into_postgres() {
    let pg = Postgres::start();
    let broker = Nisshi::start();
    let registry = Registry::start();
    check_postgres(&broker, &pg, cases::json(400)).await;
    check_postgres(&broker, &pg, cases::csv(300)).await;
    check_postgres(&broker, &pg, cases::raw_bytes(300)).await;
    check_postgres(&broker, &pg, cases::raw_text(300)).await;
    check_postgres(&broker, &pg, cases::avro(&registry, 300).0).await;
}
