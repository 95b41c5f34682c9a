//! The PostgreSQL sink's other promises, against a real server the test starts and nisshi:
//!
//! - `kingest setup` (the real binary) creates the target and offsets tables from the columns,
//!   and for an existing table prints exactly how it differs; `kingest run` refuses a table
//!   that cannot take the rows;
//! - upsert keeps the last value per key, across batches and within one;
//! - rows the database rejects (a CHECK constraint, a NUL in text) go to the dead-letter file
//!   with topic, partition and offset while the other rows commit, or with `on_error = "fail"`
//!   stop the run with an error naming the row, committing nothing past it;
//! - TLS with certificate verification (`sslmode=verify-full`, `sslrootcert`), and a wrong CA
//!   refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kingest::config::Config;
use kingest::engine::{columns, postgres_config};
use kingest::schema::arrow_schema;
use kingest_tests::ingest::job::run_until_eof;
use kingest_tests::ingest::{kingest, produce, Produced};
use kingest_tests::peers::certs::TestPki;
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::postgres::{Postgres, PostgresOptions};

fn job(broker: &str, url: &str, topic: &str, table: &str, extra: &str, columns: &str) -> String {
    format!(
        r#"
[source]
brokers = "{broker}"
topics = ["{topic}"]
group = "g-{table}"

{columns}

[flush]
rows = 37

[sink]
type = "postgres"
url = "{url}"
table = "{table}"
{extra}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

async fn run_job(text: &str) -> Result<kingest::engine::RunSummary, kingest::engine::EngineError> {
    run_until_eof(Config::parse(text, "job.toml").unwrap()).await
}

async fn setup(text: &str) {
    let config = Config::parse(text, "job.toml").unwrap();
    let schema = arrow_schema(&columns(&config).unwrap());
    let report = kingest::sink::postgres::setup(&postgres_config(&config).unwrap(), &schema)
        .await
        .unwrap();
    assert!(!report.blocked(), "{report:?}");
}

const EVENT_COLUMNS: &str = r#"
[[columns]]
name = "id"
type = "int64"
nullable = false

[[columns]]
name = "name"
type = "string"

[[columns]]
name = "amount"
type = "decimal(10, 2)"

[[columns]]
name = "ts"
type = "timestamp(ms, UTC)"

[[columns]]
name = "tags"
type = "list<string>"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_tables_and_reports_differences_exactly() {
    let pg = Postgres::start();
    let broker = Nisshi::start();
    broker.create_topic("events", 1);
    let dir = tempfile::tempdir().unwrap();
    let text = job(
        &broker.addr(),
        &pg.url(),
        "events",
        "events",
        "",
        EVENT_COLUMNS,
    );
    let config = write(dir.path(), "job.toml", &text);

    let out = kingest(&["setup", &config]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("created table events:\nCREATE TABLE IF NOT EXISTS \"events\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("created offsets table kingest_offsets:"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("no differences: the job can run\n"),
        "{stdout}"
    );
    assert_eq!(
        pg.psql(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute \
             WHERE attrelid = 'events'::regclass AND attnum > 0 ORDER BY attnum"
        ),
        [
            "id\x1fbigint\x1ft",
            "name\x1ftext\x1ff",
            "amount\x1fnumeric(10,2)\x1ff",
            "ts\x1ftimestamp with time zone\x1ff",
            "tags\x1ftext[]\x1ff",
        ]
    );
    assert_eq!(
        pg.psql(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'kingest_offsets'::regclass AND attnum > 0 ORDER BY attnum"
        ),
        [
            "consumer_group\x1ftext",
            "topic\x1ftext",
            "partition\x1finteger",
            "next_offset\x1fbigint",
            "updated_at\x1ftimestamp with time zone",
        ]
    );
    // Again: nothing to create, nothing differs.
    let out = kingest(&["setup", &config]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "table events exists\noffsets table kingest_offsets exists\nno differences: the job can run\n"
    );

    pg.psql(
        "ALTER TABLE events DROP COLUMN tags; \
         ALTER TABLE events ALTER COLUMN amount TYPE text; \
         ALTER TABLE events ALTER COLUMN name TYPE varchar(20); \
         ALTER TABLE events ALTER COLUMN ts SET NOT NULL; \
         ALTER TABLE events ADD COLUMN region text NOT NULL; \
         ALTER TABLE events ADD COLUMN note text",
    );
    let out = kingest(&["setup", &config]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "table events exists\noffsets table kingest_offsets exists\n\
         note: column \"name\": the table has character varying(20) where setup would create text (accepted: same encoding; values the column's limits refuse are rejected rows)\n\
         error: column \"amount\": the table has text, the job writes numeric(10,2) (decimal(10, 2)), which PostgreSQL's binary COPY cannot put into it\n\
         note: column \"ts\": NOT NULL in the table but nullable in the columns: rows with a null are rejected\n\
         error: column \"tags\": missing from the table (the job writes text[]); add it with ALTER TABLE \"events\" ADD COLUMN \"tags\" text[]\n\
         error: column \"region\": in the table (text, NOT NULL, no default) but not in the columns: every insert would fail\n\
         note: column \"note\": in the table (text) but not in the columns: it gets its default or NULL\n\
         the job cannot run until the errors above are fixed\n"
    );
    // The run refuses the table, naming what blocks it.
    let err = run_job(&text).await.unwrap_err().to_string();
    assert!(err.contains("checking events"), "{err}");
    assert!(
        err.contains("column \"amount\": the table has text"),
        "{err}"
    );
    assert!(err.contains("column \"region\""), "{err}");
    assert!(!err.contains("column \"note\""), "{err}");
}

fn keyed(i: usize) -> Produced {
    let k = i % 50;
    Produced {
        partition: (k % 3) as i32,
        key: Some(format!("k{k}-ü").into_bytes()),
        value: Some(format!("{{\"v\": {i}, \"label\": \"v{i}-é\"}}").into_bytes()),
        headers: Vec::new(),
        timestamp: 1_700_000_000_000 + i as i64,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_keeps_the_last_value_per_key() {
    let pg = Postgres::start();
    let broker = Nisshi::start();
    broker.create_topic("updates", 3);
    let columns = r#"
[[columns]]
name = "k"
type = "string"
source = "__key"

[[columns]]
name = "v"
type = "int64"

[[columns]]
name = "label"
type = "string"

[[columns]]
name = "seen"
type = "int64"
source = "__offset"
"#;
    let text = job(
        &broker.addr(),
        &pg.url(),
        "updates",
        "latest",
        "mode = \"upsert\"\nkey = [\"k\"]",
        columns,
    );
    setup(&text).await;
    let mut last: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let record = |last: &mut BTreeMap<String, (i64, i64)>, i: usize, offset: i64| {
        last.insert(format!("k{}-ü", i % 50), (i as i64, offset));
    };
    let first: Vec<Produced> = (0..1000).map(keyed).collect();
    for (i, (_, o)) in produce(&broker.addr(), "updates", &first)
        .await
        .iter()
        .enumerate()
    {
        record(&mut last, i, *o);
    }
    let summary = run_job(&text).await.unwrap();
    assert_eq!(summary.rows, 1000);
    let check = |last: &BTreeMap<String, (i64, i64)>| {
        let rows = pg.psql("SELECT k, v, label, seen FROM latest ORDER BY k");
        let want: Vec<String> = last
            .iter()
            .map(|(k, (v, o))| format!("{k}\x1f{v}\x1fv{v}-é\x1f{o}"))
            .collect();
        assert_eq!(rows, want);
    };
    check(&last);
    // Updates for some keys, in a second run.
    let more: Vec<Produced> = (1000..1130).map(keyed).collect();
    for (i, (_, o)) in produce(&broker.addr(), "updates", &more)
        .await
        .iter()
        .enumerate()
    {
        record(&mut last, 1000 + i, *o);
    }
    let summary = run_job(&text).await.unwrap();
    assert_eq!(summary.rows, 130);
    check(&last);
    assert_eq!(pg.psql_value("SELECT count(*) FROM latest"), "50");
}

const CHECKED_COLUMNS: &str = r#"
[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "n"
type = "int64"

[[columns]]
name = "note"
type = "string"

[[columns]]
name = "off"
type = "int64"
source = "__offset"
"#;

fn checked(i: usize) -> (Produced, bool) {
    let bad_n = i % 50 == 7;
    let bad_text = i == 123 || i == 124;
    let n = if bad_n { -1 } else { i as i64 };
    let note = if bad_text {
        "nul \\u0000 inside".to_owned()
    } else {
        format!("ok {i} ✓")
    };
    (
        Produced {
            partition: (i % 2) as i32,
            key: None,
            value: Some(format!("{{\"id\": {i}, \"n\": {n}, \"note\": \"{note}\"}}").into_bytes()),
            headers: Vec::new(),
            timestamp: 1_700_000_000_000,
        },
        bad_n || bad_text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_go_through_the_error_policy() {
    let pg = Postgres::start();
    let broker = Nisshi::start();
    broker.create_topic("checked", 2);
    let records: Vec<(Produced, bool)> = (0..600).map(checked).collect();
    let produced: Vec<Produced> = records.iter().map(|(p, _)| p.clone()).collect();
    let at = produce(&broker.addr(), "checked", &produced).await;
    let bad: BTreeSet<(i32, i64)> = records
        .iter()
        .zip(&at)
        .filter(|((_, b), _)| *b)
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(bad.len(), 14);
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");

    // dead_letter: the good rows commit, the refused ones are in the file with their offsets.
    let errors = format!(
        "[errors]\non_error = \"dead_letter\"\ndead_letter_file = \"{}\"\n{CHECKED_COLUMNS}",
        dead.display()
    );
    let text = job(&broker.addr(), &pg.url(), "checked", "checked", "", &errors);
    setup(&text).await;
    pg.psql("ALTER TABLE checked ADD CONSTRAINT n_not_negative CHECK (n >= 0)");
    let summary = run_job(&text).await.unwrap();
    assert_eq!(summary.errors, 14);
    assert_eq!(pg.psql_value("SELECT count(*) FROM checked"), "586");
    let stored: BTreeSet<i64> = pg
        .psql("SELECT id FROM checked")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    for (i, (_, is_bad)) in records.iter().enumerate() {
        assert_eq!(stored.contains(&(i as i64)), !is_bad, "record {i}");
    }
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lettered: BTreeSet<(i32, i64)> = letters
        .iter()
        .map(|l| {
            assert_eq!(l["topic"], "checked");
            assert_eq!(l["stage"], "sink");
            let e = l["error"].as_str().unwrap();
            assert!(e.contains("n_not_negative") || e.contains("0x00"), "{e}");
            assert_eq!(l["row"]["off"], l["offset"], "{l}");
            (
                l["partition"].as_i64().unwrap() as i32,
                l["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lettered, bad);
    assert_eq!(letters.len(), bad.len());
    let next: BTreeSet<String> = pg
        .psql("SELECT partition || ':' || next_offset FROM kingest_offsets WHERE consumer_group = 'g-checked'")
        .into_iter()
        .collect();
    assert_eq!(next, ["0:300".to_owned(), "1:300".to_owned()].into());

    // fail: the run stops naming a refused row; nothing past it is committed.
    let text = job(
        &broker.addr(),
        &pg.url(),
        "checked",
        "checked_fail",
        "",
        CHECKED_COLUMNS,
    );
    setup(&text).await;
    pg.psql("ALTER TABLE checked_fail ADD CONSTRAINT n_not_negative CHECK (n >= 0)");
    let err = run_job(&text).await.unwrap_err().to_string();
    let named = bad
        .iter()
        .find(|(p, o)| err.contains(&format!("checked-{p} offset {o}:")));
    let (p, o) = *named.unwrap_or_else(|| panic!("{err} names no refused row of {bad:?}"));
    assert!(err.contains("rejected"), "{err}");
    let beyond = pg.psql_value(&format!(
        "SELECT count(*) FROM checked_fail WHERE off >= {o} AND id % 2 = {p}"
    ));
    assert_eq!(beyond, "0", "{err}");
    for row in pg.psql("SELECT partition, next_offset FROM kingest_offsets WHERE consumer_group = 'g-checked_fail'") {
        let (part, next) = row.split_once('\x1f').unwrap();
        let first_bad = bad.iter().filter(|(bp, _)| bp.to_string() == part).map(|(_, o)| *o).min().unwrap();
        assert!(next.parse::<i64>().unwrap() <= first_bad, "partition {part} committed past {first_bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_certificate_verification() {
    let pki = TestPki::generate();
    let pg = Postgres::start_with(PostgresOptions {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
    });
    let broker = Nisshi::start();
    broker.create_topic("secure", 1);
    let produced: Vec<Produced> = (0..100)
        .map(|i| Produced {
            partition: 0,
            key: None,
            value: Some(format!("{{\"id\": {i}, \"n\": {i}, \"note\": \"é{i}\"}}").into_bytes()),
            headers: Vec::new(),
            timestamp: 1_700_000_000_000,
        })
        .collect();
    produce(&broker.addr(), "secure", &produced).await;
    let url = |ca: &Path| {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            pg.port(),
            ca.display()
        )
    };
    // The server refuses TCP without TLS, so a run that stores rows used TLS.
    let text = job(
        &broker.addr(),
        &url(&pki.ca),
        "secure",
        "secure",
        "",
        CHECKED_COLUMNS,
    );
    setup(&text).await;
    let summary = run_job(&text).await.unwrap();
    assert_eq!(summary.rows, 100);
    assert_eq!(pg.psql_value("SELECT count(*) FROM secure"), "100");
    let plain = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port()
    );
    let text = job(
        &broker.addr(),
        &plain,
        "secure",
        "secure",
        "",
        CHECKED_COLUMNS,
    );
    let err = run_job(&text).await.unwrap_err().to_string();
    assert!(
        err.contains("no encryption") || err.contains("pg_hba"),
        "{err}"
    );
    // A CA that did not sign the server's certificate is refused.
    let text = job(
        &broker.addr(),
        &url(&pki.other_ca),
        "secure",
        "secure",
        "",
        CHECKED_COLUMNS,
    );
    let err = run_job(&text).await.unwrap_err().to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

/// A batch of `ids` for the sink directly.
fn id_batch(ids: std::ops::Range<i64>) -> arrow_array::RecordBatch {
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "id",
        arrow_schema::DataType::Int64,
        true,
    )]));
    arrow_array::RecordBatch::try_new(
        schema,
        vec![std::sync::Arc::new(
            arrow_array::Int64Array::from_iter_values(ids),
        )],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redone_transaction_neither_repeats_nor_overwrites_another_writer() {
    use kingest::sink::postgres::{PostgresSink, PostgresSinkConfig};
    use kingest::sink::{OffsetRange, PartitionKey, Sink};
    let pg = Postgres::start();
    let config = PostgresSinkConfig::new(pg.url(), "ids", "redo");
    let schema = id_batch(0..0).schema();
    let report = kingest::sink::postgres::setup(&config, &schema)
        .await
        .unwrap();
    assert!(report.created_table.is_some() && report.created_offsets.is_some());
    let p0 = PartitionKey::new("t", 0);
    let p1 = PartitionKey::new("t", 1);

    let mut sink = PostgresSink::open(config.clone(), schema.clone())
        .await
        .unwrap();
    sink.write(&p0, &id_batch(0..100), OffsetRange::new(0, 100))
        .await
        .unwrap();
    sink.write(&p1, &id_batch(1000..1050), OffsetRange::new(0, 50))
        .await
        .unwrap();
    let files = sink.flush().await.unwrap();
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 150);
    let offsets = sink.committed_offsets().await.unwrap();
    assert_eq!(offsets.get(&("t".to_owned(), 0)), Some(&100));
    assert_eq!(offsets.get(&("t".to_owned(), 1)), Some(&50));

    // A commit whose answer was lost: the table already holds [100, 200) of t-0 (as if this
    // very transaction had gone through), so the redo stores nothing twice.
    sink.write(&p0, &id_batch(100..200), OffsetRange::new(100, 200))
        .await
        .unwrap();
    pg.psql(
        "INSERT INTO ids SELECT generate_series(100, 199); \
         UPDATE kingest_offsets SET next_offset = 200 WHERE topic = 't' AND partition = 0",
    );
    let files = sink.flush().await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].rows, 0, "{files:?}");
    assert_eq!(pg.psql_value("SELECT count(*) FROM ids"), "250");
    assert_eq!(pg.psql_value("SELECT count(DISTINCT id) FROM ids"), "250");

    // Another process took t-1 and stored up to 70: this one's [50, 90) is dropped, not
    // written over it; t-0's rows in the same transaction still commit.
    sink.write(&p1, &id_batch(1050..1090), OffsetRange::new(50, 90))
        .await
        .unwrap();
    sink.write(&p0, &id_batch(200..210), OffsetRange::new(200, 210))
        .await
        .unwrap();
    pg.psql(
        "INSERT INTO ids SELECT generate_series(1050, 1069); \
         UPDATE kingest_offsets SET next_offset = 70 WHERE topic = 't' AND partition = 1",
    );
    let files = sink.flush().await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].partition, p0);
    assert_eq!(pg.psql_value("SELECT count(*) FROM ids"), "280");
    assert_eq!(pg.psql_value("SELECT count(DISTINCT id) FROM ids"), "280");
    let offsets = sink.committed_offsets().await.unwrap();
    assert_eq!(offsets.get(&("t".to_owned(), 0)), Some(&210));
    assert_eq!(offsets.get(&("t".to_owned(), 1)), Some(&70));
    sink.close().await.unwrap();

    // A new process reads the offsets from the table.
    let sink = PostgresSink::open(config, schema).await.unwrap();
    assert_eq!(sink.committed_offsets().await.unwrap(), offsets);
}
