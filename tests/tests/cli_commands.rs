//! `kingest test`, `kingest check`, `kingest reset-offsets` and Avro column inference, end to
//! end: the real `kingest` binary against a nisshi broker (and the test schema registry),
//! records produced with librdkafka (and Avro payloads written by apache-avro), group offsets
//! read back with librdkafka, Parquet output read back with the parquet crate.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use apache_avro::types::Value as AvroValue;
use apache_avro::{to_avro_datum, Decimal, Schema as AvroSchema};
use arrow_schema::{DataType, TimeUnit};
use kingest_tests::ingest::job::{parquet_sink, source, write_job, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::{
    dataset_files, exactly_once, group_committed, kingest, parquet_files, produce, read_file, Cell,
    FileContents, Produced,
};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::registry::Registry;
use serde_json::{json, Value};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;

fn record(partition: i32, value: &[u8], i: i64) -> Produced {
    Produced {
        partition,
        key: None,
        value: Some(value.to_vec()),
        headers: Vec::new(),
        timestamp: T0 + i,
    }
}

/// Runs `kingest ARGS` to completion.
fn run(args: &[&str]) -> Output {
    kingest(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kingest")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `kingest ARGS`, which must succeed, and returns its standard output.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "kingest {} failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `kingest ARGS --json`-style commands and parses their standard output.
fn ok_json(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The committed Parquet files of the dataset under `dir`, read back: set-aside files (under
/// `_kingest_reset/`) excluded, as readers of the dataset exclude them.
fn dataset(dir: &Path) -> Vec<FileContents> {
    dataset_files(dir).iter().map(|p| read_file(p)).collect()
}

fn line_matching<'a>(out: &'a str, pattern: &str) -> &'a str {
    let re = regex::Regex::new(pattern).expect("pattern");
    out.lines()
        .find(|l| re.is_match(l))
        .unwrap_or_else(|| panic!("no line matches {pattern:?} in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_decodes_a_preview_and_writes_and_commits_nothing() {
    let broker = Nisshi::start();
    broker.create_topic("events", 1);
    let values: [&[u8]; 4] = [
        br#"{"id": 1, "name": "a", "at": 1700000000000}"#,
        br#"{"id": "x", "name": "b"}"#,
        b"{oops",
        br#"{"id": 4, "name": null}"#,
    ];
    let records: Vec<Produced> = values
        .iter()
        .enumerate()
        .map(|(i, v)| record(0, v, i as i64))
        .collect();
    produce(&broker.addr(), "events", &records).await;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let job = write_job(
        dir.path(),
        &format!(
            r#"{}
[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "name"
type = "string"

[[columns]]
name = "at"
type = "timestamp(ms, UTC)"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"
{}"#,
            source(&broker.addr(), "events", "preview-group"),
            parquet_sink(&data)
        ),
    );
    let job = job.to_str().unwrap();

    // JSON: the first three records, each row or error next to its offset.
    let doc = ok_json(&["test", job, "--limit", "3", "--json"]);
    assert_eq!(
        doc["starts"],
        json!([{"topic": "events", "partition": 0, "offset": 0, "log_end": 4,
                "from": "source.start = earliest"}])
    );
    let recs = doc["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3, "{doc}");
    assert_eq!(
        recs.iter()
            .map(|r| r["offset"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let row = &recs[0]["row"];
    assert_eq!(
        (&row["id"], &row["name"], &row["offset"]),
        (&json!(1), &json!("a"), &json!(0))
    );
    assert!(
        row["at"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T22:13:20"),
        "{row}"
    );
    assert_eq!(recs[0]["error"], Value::Null);
    assert_eq!(recs[1]["row"], Value::Null);
    let e1 = recs[1]["error"].as_str().unwrap();
    assert!(e1.starts_with("column \"id\" (JSON /id): "), "{e1}");
    assert!(e1.contains("\"x\""), "{e1}");
    let e2 = recs[2]["error"].as_str().unwrap();
    assert!(e2.starts_with("value (json): invalid JSON"), "{e2}");
    assert_eq!(
        doc["columns"][2],
        json!({"name": "at", "type": "timestamp(ms, UTC)", "nullable": true})
    );

    // The table: every record, errors beside their offsets, a count at the end.
    let out = ok(&["test", job]);
    line_matching(&out, r"^events\s+0\s+0\s+4\s+source\.start = earliest$");
    line_matching(
        &out,
        r"^TOPIC\s+PARTITION\s+OFFSET\s+id\s+name\s+at\s+offset\s+ERROR$",
    );
    line_matching(
        &out,
        r"^events\s+0\s+0\s+1\s+a\s+2023-11-14T22:13:20\S*\s+0$",
    );
    line_matching(&out, r#"^events\s+0\s+1\s+column "id" \(JSON /id\): "#);
    line_matching(&out, r"^events\s+0\s+2\s+value \(json\): invalid JSON");
    line_matching(&out, r"^events\s+0\s+3\s+4\s+null\s+null\s+3$");
    assert_eq!(
        out.lines().last(),
        Some("4 records read: 2 rows, 2 errors"),
        "{out}"
    );

    // With a filter, each row says whether the run would keep it.
    let filtered = dir.path().join("filtered.toml");
    std::fs::write(
        &filtered,
        format!(
            "filter = \"id > 1\"\n{}",
            std::fs::read_to_string(job).unwrap()
        ),
    )
    .unwrap();
    let out = ok(&["test", filtered.to_str().unwrap()]);
    line_matching(
        &out,
        r"^TOPIC\s+PARTITION\s+OFFSET\s+id\s+name\s+at\s+offset\s+KEPT\s+ERROR$",
    );
    line_matching(
        &out,
        r"^events\s+0\s+0\s+1\s+a\s+2023-11-14T22:13:20\S*\s+0\s+no$",
    );
    line_matching(&out, r"^events\s+0\s+3\s+4\s+null\s+null\s+3\s+yes$");
    assert_eq!(
        out.lines().last(),
        Some("4 records read: 2 rows (1 not kept by the filter \"id > 1\"), 2 errors"),
        "{out}"
    );

    // Nothing was written, nothing committed.
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    assert!(group_committed(&broker.addr(), "preview-group", "events", 1).is_empty());

    // Once the group has an offset (and the sink none), the preview starts there; with
    // --from earliest, at the start again. Still nothing is written.
    ok(&["reset-offsets", job, "--to", "offset=2", "--execute"]);
    assert_eq!(
        group_committed(&broker.addr(), "preview-group", "events", 1),
        BTreeMap::from([(0, 2)])
    );
    let doc = ok_json(&["test", job, "--json"]);
    assert_eq!(doc["starts"][0]["from"], "group");
    assert_eq!(doc["starts"][0]["offset"], 2);
    let offsets: Vec<i64> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, [2, 3]);
    let doc = ok_json(&["test", job, "--json", "--from", "earliest"]);
    assert_eq!(doc["starts"][0]["from"], "--from earliest");
    assert_eq!(doc["records"].as_array().unwrap().len(), 4);
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    assert_eq!(
        group_committed(&broker.addr(), "preview-group", "events", 1),
        BTreeMap::from([(0, 2)])
    );

    // A job whose source.start names an offset starts there (as `kingest run` does), ahead of
    // the group's offset; so a reset of the group alone is refused, and --sink pins the new
    // offset in the (Parquet) sink, where the next preview starts.
    let text_of_job = std::fs::read_to_string(job).unwrap();
    let pinned = dir.path().join("pinned.toml");
    std::fs::write(
        &pinned,
        text_of_job.replace(
            "group = \"preview-group\"",
            "group = \"preview-group\"\nstart = { offsets = { \"events:0\" = 1 } }",
        ),
    )
    .unwrap();
    let pinned = pinned.to_str().unwrap();
    let doc = ok_json(&["test", pinned, "--json", "--limit", "1"]);
    assert_eq!(doc["starts"][0]["from"], "source.start offsets");
    assert_eq!(doc["records"][0]["offset"], 1);
    let refused = run(&["reset-offsets", pinned, "--to", "offset=3", "--execute"]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("source.start (offsets events:0 = 1)") && stderr.contains("--sink"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    ok(&[
        "reset-offsets",
        pinned,
        "--to",
        "offset=3",
        "--sink",
        "--execute",
    ]);
    let doc = ok_json(&["test", pinned, "--json"]);
    assert_eq!(doc["starts"][0]["from"], "sink");
    assert_eq!(doc["starts"][0]["offset"], 3);
    assert_eq!(
        group_committed(&broker.addr(), "preview-group", "events", 1),
        BTreeMap::from([(0, 3)])
    );
    let files = dataset(&data);
    assert_eq!(files.len(), 1);
    assert!(files[0].rows.is_empty());
    assert_eq!(
        files[0].offsets,
        BTreeMap::from([(("events".to_owned(), 0), (3, 3))])
    );
}

/// `n` values `{"n": base + i}` for partition `p`, with `first` the index of the first.
fn numbered(p: i32, base: i64, first: i64, n: i64) -> Vec<Produced> {
    (first..first + n)
        .map(|i| record(p, format!("{{\"n\": {}}}", base + i).as_bytes(), i))
        .collect()
}

fn partition_status(doc: &Value, p: i64) -> Value {
    doc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["partition"] == p)
        .cloned()
        .unwrap_or_else(|| panic!("no partition {p} in {doc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_reset_offsets_with_a_parquet_sink() {
    let broker = Nisshi::start();
    broker.create_topic("orders", 2);
    let addr = broker.addr();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let job = write_job(
        dir.path(),
        &format!(
            r#"{}
[[columns]]
name = "n"
type = "int64"
{PARTITION_OFFSET_COLUMNS}{}"#,
            source(&addr, "orders", "orders-job"),
            parquet_sink(&data)
        ),
    );
    let job = job.to_str().unwrap();
    // Two runs, so partition 0 has two files: [0, 10) and [10, 20).
    let mut first = numbered(0, 0, 0, 10);
    first.extend(numbered(1, 100, 0, 10));
    produce(&addr, "orders", &first).await;
    ok(&["run", job, "--until-eof"]);
    produce(&addr, "orders", &numbered(0, 0, 10, 10)).await;
    ok(&["run", job, "--until-eof"]);
    // Five more, not ingested: a lag of 5.
    produce(&addr, "orders", &numbered(0, 0, 20, 5)).await;

    let doc = ok_json(&["check", job, "--json"]);
    assert_eq!(doc["group"], "orders-job");
    assert_eq!(doc["members"], json!([]));
    assert_eq!(
        partition_status(&doc, 0),
        json!({"topic": "orders", "partition": 0, "sink": 20, "group": 20,
               "log_start": 0, "log_end": 25, "lag": 5})
    );
    assert_eq!(
        partition_status(&doc, 1),
        json!({"topic": "orders", "partition": 1, "sink": 10, "group": 10,
               "log_start": 0, "log_end": 10, "lag": 0})
    );
    assert_eq!(doc["total_lag"], 5);
    let out = ok(&["check", job]);
    line_matching(
        &out,
        r"^TOPIC\s+PARTITION\s+SINK\s+GROUP\s+LOG-START\s+LOG-END\s+LAG$",
    );
    line_matching(&out, r"^orders\s+0\s+20\s+20\s+0\s+25\s+5$");
    line_matching(&out, r"^orders\s+1\s+10\s+10\s+0\s+10\s+0$");
    line_matching(&out, r"^total lag 5$");

    // The sink holds offsets: the dry run says --execute would refuse, and resetting only the
    // group is refused; nothing changes.
    let out = ok(&["reset-offsets", job, "--to", "earliest"]);
    line_matching(
        &out,
        r"^--execute would refuse: .*orders-0 at 20, orders-1 at 10.*--sink",
    );
    line_matching(&out, r"^dry run: nothing changed");
    let refused = run(&["reset-offsets", job, "--to", "earliest", "--execute"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("add --sink"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(
        group_committed(&addr, "orders-job", "orders", 2),
        BTreeMap::from([(0, 20), (1, 10)])
    );
    assert_eq!(dataset(&data).len(), 3);

    // Back to 15 in partition 0 only, with the sink: 15 is inside [10, 20), so the file is
    // set aside and both the sink and the group resume at 10.
    let out = ok(&[
        "reset-offsets",
        job,
        "--to",
        "offset=orders:0=15",
        "--sink",
        "--execute",
    ]);
    line_matching(
        &out,
        r"^orders\s+0\s+20\s+20\s+0\s+25\s+10\s+15 is inside a file covering \[10, 20\): rewound to 10",
    );
    assert_eq!(
        group_committed(&addr, "orders-job", "orders", 2),
        BTreeMap::from([(0, 10), (1, 10)])
    );
    let doc = ok_json(&["check", job, "--json"]);
    assert_eq!(partition_status(&doc, 0)["sink"], 10);
    assert_eq!(partition_status(&doc, 0)["lag"], 15);
    assert_eq!(partition_status(&doc, 1)["sink"], 10);
    assert_eq!(dataset(&data).len(), 2);
    let aside = parquet_files(&data.join("_kingest_reset"));
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        read_file(&aside[0]).offsets,
        BTreeMap::from([(("orders".to_owned(), 0), (10, 20))])
    );

    // The next run reads 10..25 again: every offset is in the dataset exactly once.
    ok(&["run", job, "--until-eof"]);
    let rows = exactly_once(
        &dataset(&data),
        "orders",
        &BTreeMap::from([(0, 25), (1, 10)]),
        "partition",
        "offset",
    );
    assert_eq!(rows.len(), 35);
    for ((p, o), row) in &rows {
        let base = if *p == 0 { 0 } else { 100 };
        assert_eq!(row["n"], Cell::Int(base + o), "partition {p} offset {o}");
    }

    // Forward to the end, with the sink: partition 1's three new records are skipped.
    produce(&addr, "orders", &numbered(1, 100, 10, 3)).await;
    ok(&[
        "reset-offsets",
        job,
        "--to",
        "latest",
        "--sink",
        "--execute",
    ]);
    let doc = ok_json(&["check", job, "--json"]);
    assert_eq!(
        partition_status(&doc, 1),
        json!({"topic": "orders", "partition": 1, "sink": 13, "group": 13,
               "log_start": 0, "log_end": 13, "lag": 0})
    );
    assert_eq!(partition_status(&doc, 0)["sink"], 25);
    ok(&["run", job, "--until-eof"]);
    let rows: usize = dataset(&data).iter().map(|f| f.rows.len()).sum();
    assert_eq!(rows, 35, "nothing was read after the reset to latest");

    // A running job is a member of the group: the reset is refused.
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let mut child = kingest(&["run", job])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start kingest run");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = ok_json(&["check", job, "--json"]);
        if !doc["members"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kingest run never joined the group: {doc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = ok(&["reset-offsets", job, "--to", "earliest", "--sink"]);
    line_matching(&out, r"^--execute would refuse: group .*active member");
    let refused = run(&[
        "reset-offsets",
        job,
        "--to",
        "earliest",
        "--sink",
        "--execute",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("active member"),
        "{}",
        text(&refused.stderr)
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        group_committed(&addr, "orders-job", "orders", 2),
        BTreeMap::from([(0, 25), (1, 13)])
    );
    assert_eq!(
        dataset(&data).iter().map(|f| f.rows.len()).sum::<usize>(),
        35
    );
}

const PAYMENT: &str = r#"{
  "type": "record", "name": "Payment", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "name", "type": "string"},
      {"name": "email", "type": ["null", "string"], "default": null}
    ]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}}
  ]
}"#;

fn payment(id: u32, i: i64) -> Vec<u8> {
    let schema = AvroSchema::parse_str(PAYMENT).unwrap();
    let email = if i % 2 == 0 {
        AvroValue::Union(1, Box::new(AvroValue::String(format!("c{i}@x.io"))))
    } else {
        AvroValue::Union(0, Box::new(AvroValue::Null))
    };
    let value = AvroValue::Record(vec![
        ("id".into(), AvroValue::Long(i)),
        (
            "customer".into(),
            AvroValue::Record(vec![
                ("name".into(), AvroValue::String(format!("Zoë {i}"))),
                ("email".into(), email),
            ]),
        ),
        (
            "tags".into(),
            AvroValue::Array((0..i).map(|t| AvroValue::String(format!("t{t}"))).collect()),
        ),
        (
            "note".into(),
            AvroValue::Union(0, Box::new(AvroValue::Null)),
        ),
        ("at".into(), AvroValue::TimestampMillis(T0 + i)),
        ("day".into(), AvroValue::Date(19_700 + i as i32)),
        (
            "price".into(),
            AvroValue::Decimal(Decimal::from((1234 + i).to_be_bytes())),
        ),
    ]);
    let mut framed = vec![0];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend(to_avro_datum(&schema, value).unwrap());
    framed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_columns_are_taken_from_the_registry() {
    let broker = Nisshi::start();
    broker.create_topic("payments", 1);
    let registry = Registry::start();
    registry.register("unrelated-value", r#""string""#);
    let id = registry.register("payments-value", PAYMENT);
    let records: Vec<Produced> = (0..3).map(|i| record(0, &payment(id, i), i)).collect();
    produce(&broker.addr(), "payments", &records).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let job = write_job(
        dir.path(),
        &format!(
            r#"{}
[format]
type = "avro"
registry = "{}"
{}"#,
            source(&broker.addr(), "payments", "payments-job"),
            registry.url(),
            parquet_sink(&data)
        ),
    );
    let job = job.to_str().unwrap();

    let out = run(&["test", job, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "taken from the registry's schema id {id} (the writer schema of payments-0 offset 0)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("  price decimal(10, 2) not null"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let columns: Vec<(String, String, bool)> = doc["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
                c["nullable"].as_bool().unwrap(),
            )
        })
        .collect();
    let want = [
        ("id", "int64", false),
        ("customer", "struct<name: string, email: string>", false),
        ("tags", "list<string>", false),
        ("note", "string", true),
        ("at", "timestamp(ms, UTC)", false),
        ("day", "date", false),
        ("price", "decimal(10, 2)", false),
    ];
    assert_eq!(
        columns,
        want.map(|(n, t, b)| (n.to_owned(), t.to_owned(), b))
    );
    let recs = doc["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3);
    let row = &recs[2]["row"];
    assert_eq!(row["id"], 2);
    assert_eq!(
        row["customer"],
        json!({"name": "Zoë 2", "email": "c2@x.io"})
    );
    assert_eq!(row["tags"], json!(["t0", "t1"]));
    assert_eq!(row["note"], Value::Null);
    assert_eq!(recs[1]["row"]["customer"]["email"], Value::Null);
    assert!(
        row["at"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T22:13:20.002"),
        "{row}"
    );
    assert_eq!(row["day"], "2023-12-11");
    assert_eq!(row["price"].as_f64(), Some(12.36));
    assert!(recs.iter().all(|r| r["error"].is_null()), "{doc}");

    // The run writes Parquet with the inferred types.
    ok(&["run", job, "--until-eof"]);
    let files = dataset(&data);
    assert_eq!(files.len(), 1);
    let schema = &files[0].schema;
    let field = |n: &str| schema.field_with_name(n).unwrap().clone();
    assert_eq!(field("id").data_type(), &DataType::Int64);
    assert!(!field("id").is_nullable());
    assert!(field("note").is_nullable());
    assert_eq!(
        field("at").data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(field("day").data_type(), &DataType::Date32);
    assert_eq!(field("price").data_type(), &DataType::Decimal128(10, 2));
    assert!(matches!(field("tags").data_type(), DataType::List(_)));
    assert!(matches!(field("customer").data_type(), DataType::Struct(_)));
    let rows = &files[0].rows;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["price"], Cell::Dec(1235));
    assert_eq!(rows[1]["day"], Cell::Date(19_701));
    assert_eq!(
        rows[2]["customer"],
        Cell::Struct(vec![
            ("name".to_owned(), Cell::s("Zoë 2")),
            ("email".to_owned(), Cell::s("c2@x.io")),
        ])
    );
    assert_eq!(
        rows[2]["tags"],
        Cell::List(vec![Cell::s("t0"), Cell::s("t1")])
    );
    // Never a fetch per record: `test` and `run` each fetched the schema once (their decoders
    // share the inference's registry client and cache).
    assert_eq!(registry.id_requests(id), 2, "{:?}", registry.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_reset_offsets_with_a_postgres_sink() {
    let broker = Nisshi::start();
    broker.create_topic("pg_events", 1);
    let addr = broker.addr();
    let pg = kingest_tests::peers::postgres::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let job = write_job(
        dir.path(),
        &format!(
            r#"{}
[[columns]]
name = "n"
type = "int64"

[[columns]]
name = "kafka_offset"
type = "int64"
source = "__offset"

[sink]
type = "postgres"
url = "{}"
table = "pg_rows"
"#,
            source(&addr, "pg_events", "pg-job"),
            pg.url()
        ),
    );
    let job = job.to_str().unwrap();
    ok(&["setup", job]);
    produce(&addr, "pg_events", &numbered(0, 0, 0, 5)).await;
    ok(&["run", job, "--until-eof"]);
    produce(&addr, "pg_events", &numbered(0, 0, 5, 2)).await;

    // The sink's offset comes from the offsets table, through the same open_sink as the run.
    let doc = ok_json(&["check", job, "--json"]);
    assert_eq!(doc["sink"], "postgres table pg_rows");
    assert_eq!(
        partition_status(&doc, 0),
        json!({"topic": "pg_events", "partition": 0, "sink": 5, "group": 5,
               "log_start": 0, "log_end": 7, "lag": 2})
    );

    // The sink holds offsets: refused without --sink, and with it refused with the SQL that
    // does it by hand.
    let refused = run(&["reset-offsets", job, "--to", "earliest", "--execute"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("add --sink"));
    let refused = run(&[
        "reset-offsets",
        job,
        "--to",
        "earliest",
        "--sink",
        "--execute",
    ]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    let update = "UPDATE kingest_offsets SET next_offset = 0 WHERE consumer_group = 'pg-job' \
                  AND topic = 'pg_events' AND partition = 0;";
    assert!(stderr.contains(update), "{stderr}");
    assert_eq!(pg.psql_value("SELECT count(*) FROM pg_rows"), "5");

    // Done by hand as the message says, the reset of the group goes through, and the next run
    // reads everything again, once.
    pg.psql(&format!("BEGIN; DELETE FROM pg_rows; {update} COMMIT;"));
    ok(&["reset-offsets", job, "--to", "earliest", "--execute"]);
    assert_eq!(
        group_committed(&addr, "pg-job", "pg_events", 1),
        BTreeMap::from([(0, 0)])
    );
    ok(&["run", job, "--until-eof"]);
    assert_eq!(
        pg.psql("SELECT kafka_offset, n FROM pg_rows ORDER BY kafka_offset"),
        (0..7).map(|i| format!("{i}\x1f{i}")).collect::<Vec<_>>()
    );
    let doc = ok_json(&["check", job, "--json"]);
    assert_eq!(partition_status(&doc, 0)["sink"], 7);
    assert_eq!(doc["total_lag"], 0);
}
