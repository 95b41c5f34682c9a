//! The examples under `examples/` work as their READMEs say, and `docs/config.md` describes
//! every configuration field.
//!
//! Every `examples/**/*.toml` must load and validate, and its columns must build. The JSON,
//! CSV and raw examples run end to end exactly as their READMEs show (`kingest dev-broker`,
//! `kingest produce --file`, `kingest run job.toml --until-eof`, all the real binary), with
//! only the broker address and the output directory rewritten; the Avro example runs against
//! the test schema registry with its sample orders written by apache-avro. The output, read
//! back with the parquet crate, must equal the sample data.
//!
//! `scripts/quickstart.sh`, the README's first command, runs as a new user with a shared
//! target directory would run it: `CARGO_TARGET_DIR` set, and no Python on the `PATH`.
//!
//! The documentation check asks the configuration parser itself which fields each section
//! has (an unknown field's error lists the expected ones), so a field added later without
//! documentation fails here.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use apache_avro::schema::Schema as AvroSchema;
use apache_avro::to_avro_datum;
use apache_avro::types::Value as AvroValue;
use kingest::config::Config;
use kingest_tests::ingest::examples::{
    example_tomls, lines, produce_file, repo, rewritten_job, run_until_eof, DevBroker,
};
use kingest_tests::ingest::{
    end_offsets, exactly_once, kingest, kingest_binary, log_tail, produce, read_dir, Cell, Produced,
};
use kingest_tests::peers::registry::Registry;

#[test]
fn every_example_job_loads_validates_and_builds_its_columns() {
    let files = example_tomls();
    for name in ["json", "csv", "raw", "avro", "delta", "iceberg"] {
        let want = repo().join("examples").join(name).join("job.toml");
        assert!(files.contains(&want), "{} is missing", want.display());
    }
    for f in &files {
        let config = Config::load(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let columns = kingest::engine::columns(&config)
            .unwrap_or_else(|e| panic!("{}: columns: {e}", f.display()));
        assert!(!columns.is_empty(), "{}: no columns", f.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_example_runs_as_its_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let broker = DevBroker::start(dir.path(), "events:3").await;
    produce_file(
        &broker,
        "events",
        &repo().join("examples/json/events.jsonl"),
    );
    // The job as it is, but for the broker; run from the temporary directory, so its relative
    // catalog and warehouse paths land there.
    let text = std::fs::read_to_string(repo().join("examples/iceberg/job.toml")).unwrap();
    let mut job: toml::Table = text.parse().unwrap();
    job["source"]["brokers"] = toml::Value::String(broker.addr.clone());
    let path = dir.path().join("job.toml");
    std::fs::write(&path, toml::to_string(&job).unwrap()).unwrap();
    for _ in 0..2 {
        // The second run finds nothing new: the table's offsets say where it ended.
        let out = kingest(&["run", path.to_str().unwrap(), "--until-eof"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kingest run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let catalog = dir.path().join("data/iceberg/catalog.db");
    let table = kingest_tests::ingest::iceberg::read_table(
        &format!("sqlite:///{}", catalog.display()),
        "lake.events",
    );
    let want = lines(&repo().join("examples/json/events.jsonl"));
    assert_eq!(table.rows.len(), want.len());
    assert_eq!(table.summaries.len(), 1, "the second run committed nothing");
    assert_eq!(table.schema["ts"], "timestamptz");
    assert_eq!(table.schema["count"], "int");
    let spec: Vec<&str> = table.spec.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(spec, ["day", "bucket[4]"]);
    let mut got: Vec<i64> = table
        .rows
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .collect();
    let mut expected: Vec<i64> = want
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                .as_i64()
                .unwrap()
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_example_runs_as_its_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let broker = DevBroker::start(dir.path(), "events:3").await;
    let data = repo().join("examples/json/events.jsonl");
    produce_file(&broker, "events", &data);
    let job = rewritten_job("json", dir.path(), &broker.addr, None);
    let rows = run_until_eof(&job, dir.path(), "events", Some("partition"));
    let mut got: Vec<(i64, String, i64)> = rows
        .iter()
        .map(|r| {
            assert!(matches!(r["kafka_ts"], Cell::Ts(_)), "{r:?}");
            match (&r["ts"], &r["uuid"], &r["count"]) {
                (Cell::Ts(ts), Cell::Str(u), Cell::Int(c)) => (*ts, u.clone(), *c),
                other => panic!("{other:?}"),
            }
        })
        .collect();
    let mut want: Vec<(i64, String, i64)> = lines(&data)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["ts"].as_i64().unwrap(),
                v["uuid"].as_str().unwrap().to_owned(),
                v["count"].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_example_runs_as_its_readme_says() {
    kingest_tests::ingest::delta::require_delta_readers();
    let dir = tempfile::tempdir().unwrap();
    let broker = DevBroker::start(dir.path(), "events:3").await;
    let data = repo().join("examples/delta/events.jsonl");
    produce_file(&broker, "events", &data);
    let job = rewritten_job("delta", dir.path(), &broker.addr, None);
    let out = kingest(&["run", job.to_str().unwrap(), "--until-eof"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kingest run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let apps: Vec<String> = (0..3)
        .map(|p| kingest_tests::ingest::delta::app_id("events-to-delta", "events", p))
        .collect();
    let read = kingest_tests::ingest::delta::read_delta(&dir.path().join("out"), &apps);
    assert_eq!(read.partition_columns, vec!["ts_date"]);
    let offsets: Vec<(i32, i64)> = read
        .rows
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap() as i32,
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    let rows = kingest_tests::ingest::delta::delta_exactly_once(
        &read,
        "events-to-delta",
        "events",
        &end_offsets(&offsets),
    );
    let mut got: Vec<(String, String, i64, String)> = rows
        .values()
        .map(|r| {
            (
                r["ts"].as_str().unwrap().to_owned(),
                r["uuid"].as_str().unwrap().to_owned(),
                r["count"].as_i64().unwrap(),
                r["ts_date"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(String, String, i64, String)> = lines(&data)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let ms = v["ts"].as_i64().unwrap();
            // Python prints a UTC datetime with its microseconds.
            let secs = ms / 1000;
            let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
            (
                format!(
                    "2022-02-11T{h:02}:{m:02}:{s:02}.{:06}+00:00",
                    ms % 1000 * 1000
                ),
                v["uuid"].as_str().unwrap().to_owned(),
                v["count"].as_i64().unwrap(),
                "2022-02-11".to_owned(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

/// `711.56` as a decimal's unscaled value at scale 2.
fn cents(text: &str) -> i128 {
    let (int, frac) = text.split_once('.').unwrap_or((text, "0"));
    let neg = int.starts_with('-');
    let v = int.trim_start_matches('-').parse::<i128>().unwrap() * 100
        + format!("{frac:0<2}").parse::<i128>().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_example_runs_as_its_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let broker = DevBroker::start(dir.path(), "customer:3").await;
    let data = repo().join("examples/csv/customer.csv");
    produce_file(&broker, "customer", &data);
    let job = rewritten_job("csv", dir.path(), &broker.addr, None);
    let rows = run_until_eof(&job, dir.path(), "customer", None);
    let by_key: BTreeMap<i64, &BTreeMap<String, Cell>> = rows
        .iter()
        .map(|r| match r["c_custkey"] {
            Cell::Int(k) => (k, r),
            ref other => panic!("{other:?}"),
        })
        .collect();
    let want = lines(&data);
    assert_eq!((rows.len(), by_key.len()), (want.len(), want.len()));
    for line in &want {
        let f: Vec<&str> = line.split('|').collect();
        let key: i64 = f[0].parse().unwrap();
        let row = by_key[&key];
        let expected: BTreeMap<String, Cell> = [
            ("c_custkey", Cell::Int(key)),
            ("c_name", Cell::s(f[1])),
            ("c_address", Cell::s(f[2])),
            ("c_nationkey", Cell::Int(f[3].parse().unwrap())),
            ("c_acctbal", Cell::Dec(cents(f[5]))),
            ("c_mktsegment", Cell::s(f[6])),
            ("c_comment", Cell::s(f[7])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(row, &expected, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_example_runs_as_its_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let broker = DevBroker::start(dir.path(), "test:1").await;
    let data = repo().join("examples/raw/messages.txt");
    produce_file(&broker, "test", &data);
    let job = rewritten_job("raw", dir.path(), &broker.addr, None);
    let rows = run_until_eof(&job, dir.path(), "test", None);
    // One partition: the offsets are the lines' order.
    let mut by_offset: Vec<(i64, Cell, Cell)> = rows
        .iter()
        .map(|r| match &r["offset"] {
            Cell::Int(o) => (*o, r["message"].clone(), r["key"].clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    by_offset.sort_by_key(|(o, _, _)| *o);
    let want: Vec<(i64, Cell, Cell)> = lines(&data)
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i as i64, Cell::Str(l), Cell::Null))
        .collect();
    assert_eq!(by_offset, want);
}

/// A JSON-encoded Avro datum (the encoding `kafka-avro-console-producer` reads) as a value of
/// `schema`: unions as `null` or `{"branch": value}`.
fn avro_from_json(schema: &AvroSchema, json: &serde_json::Value) -> AvroValue {
    match schema {
        AvroSchema::Null => AvroValue::Null,
        AvroSchema::Long => AvroValue::Long(json.as_i64().unwrap()),
        AvroSchema::TimestampMillis => AvroValue::TimestampMillis(json.as_i64().unwrap()),
        AvroSchema::Double => AvroValue::Double(json.as_f64().unwrap()),
        AvroSchema::String => AvroValue::String(json.as_str().unwrap().to_owned()),
        AvroSchema::Enum(e) => {
            let s = json.as_str().unwrap();
            let i = e.symbols.iter().position(|x| x == s).unwrap();
            AvroValue::Enum(i as u32, s.to_owned())
        }
        AvroSchema::Array(a) => AvroValue::Array(
            json.as_array()
                .unwrap()
                .iter()
                .map(|j| avro_from_json(&a.items, j))
                .collect(),
        ),
        AvroSchema::Record(r) => AvroValue::Record(
            r.fields
                .iter()
                .map(|f| (f.name.clone(), avro_from_json(&f.schema, &json[&f.name])))
                .collect(),
        ),
        AvroSchema::Union(u) => {
            let (branch, value) = match json {
                serde_json::Value::Null => ("null", &serde_json::Value::Null),
                serde_json::Value::Object(o) => {
                    let (k, v) = o.iter().next().unwrap();
                    (k.as_str(), v)
                }
                other => panic!("a union value is null or {{\"type\": value}}, not {other}"),
            };
            let i = u
                .variants()
                .iter()
                .position(|v| match v {
                    AvroSchema::Null => branch == "null",
                    AvroSchema::String => branch == "string",
                    _ => false,
                })
                .unwrap();
            AvroValue::Union(i as u32, Box::new(avro_from_json(&u.variants()[i], value)))
        }
        other => panic!("the example has no {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_example_runs_with_a_schema_registry() {
    let dir = tempfile::tempdir().unwrap();
    let broker = DevBroker::start(dir.path(), "orders:3").await;
    let registry = Registry::start();
    let schema_text = std::fs::read_to_string(repo().join("examples/avro/order.avsc")).unwrap();
    let id = registry.register("orders-value", &schema_text);
    let schema = AvroSchema::parse_str(&schema_text).unwrap();
    let orders: Vec<serde_json::Value> = lines(&repo().join("examples/avro/orders.json"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records: Vec<Produced> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mut value = vec![0];
            value.extend_from_slice(&id.to_be_bytes());
            value.extend(to_avro_datum(&schema, avro_from_json(&schema, o)).unwrap());
            Produced {
                partition: (i % 3) as i32,
                key: None,
                value: Some(value),
                headers: Vec::new(),
                timestamp: o["ts"].as_i64().unwrap(),
            }
        })
        .collect();
    produce(&broker.addr, "orders", &records).await;
    let job = rewritten_job("avro", dir.path(), &broker.addr, Some(registry.url()));
    let rows = run_until_eof(&job, dir.path(), "orders", None);
    let by_id: BTreeMap<i64, &BTreeMap<String, Cell>> = rows
        .iter()
        .map(|r| match r["id"] {
            Cell::Int(k) => (k, r),
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!((rows.len(), by_id.len()), (orders.len(), orders.len()));
    for o in &orders {
        let row = by_id[&o["id"].as_i64().unwrap()];
        let s = |v: &serde_json::Value| Cell::s(v.as_str().unwrap());
        let want = [
            ("ts", Cell::Ts(o["ts"].as_i64().unwrap())),
            ("customer", s(&o["customer"])),
            ("amount", Cell::Float(o["amount"].as_f64().unwrap())),
            ("status", s(&o["status"])),
            (
                "items",
                Cell::List(o["items"].as_array().unwrap().iter().map(s).collect()),
            ),
            ("city", s(&o["address"]["city"])),
            (
                "address",
                Cell::Struct(vec![
                    ("city".into(), s(&o["address"]["city"])),
                    ("country".into(), s(&o["address"]["country"])),
                ]),
            ),
            ("note", o["note"].get("string").map_or(Cell::Null, s)),
        ];
        for (column, cell) in want {
            assert_eq!(row[column], cell, "order {}: {column}", o["id"]);
        }
    }
    assert_eq!(registry.id_requests(id), 1);
}

/// A minimal valid job the documentation probes add an unknown field to.
const PROBE_BASE: &str = r#"
[source]
brokers = "localhost:9092"
topics = ["t"]

[format]
type = "raw"

[[columns]]
name = "v"
type = "binary"
source = "__value"

[sink]
type = "stdout"
"#;

/// The fields a section accepts, as the parser lists them when `job` (which has an unknown
/// field `zz_unknown` in that section) is refused.
fn accepted_fields(section: &str, job: &str) -> Vec<String> {
    let message = match Config::parse(job, "probe.toml") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{section}: an unknown field was accepted:\n{job}"),
    };
    assert!(
        message.contains("unknown field `zz_unknown`"),
        "{section}: unexpected error {message}"
    );
    let Some((_, expected)) = message.split_once("expected") else {
        // "there are no fields"
        return Vec::new();
    };
    let name = regex::Regex::new(r"`([A-Za-z0-9_]+)`").unwrap();
    name.captures_iter(expected)
        .map(|c| c[1].to_owned())
        .collect()
}

#[test]
fn docs_config_md_describes_every_field() {
    let docs = std::fs::read_to_string(repo().join("docs/config.md")).unwrap();
    let with = |from: &str, to: &str| {
        assert!(PROBE_BASE.contains(from));
        PROBE_BASE.replace(from, to)
    };
    let table = |header: &str| format!("{PROBE_BASE}\n{header}\nzz_unknown = 1\n");
    let mut probes: Vec<(&str, String)> = vec![
        ("", format!("zz_unknown = 1\n{PROBE_BASE}")),
        ("source", with("[source]\n", "[source]\nzz_unknown = 1\n")),
        ("source.tls", table("[source.tls]")),
        ("source.sasl", table("[source.sasl]\nmechanism = \"PLAIN\"")),
        (
            "columns[]",
            with("[[columns]]\n", "[[columns]]\nzz_unknown = 1\n"),
        ),
        ("errors", table("[errors]")),
        ("flush", table("[flush]")),
    ];
    let formats = [
        ("format", "json", ""),
        ("format", "csv", ""),
        ("format", "avro", "registry = \"http://registry:8081\""),
        ("format", "raw", ""),
        ("sink", "parquet", "path = \"/tmp/out\""),
        ("sink", "delta", "path = \"/tmp/out\""),
        ("sink", "stdout", ""),
        (
            "sink",
            "postgres",
            "url = \"postgres://db/app\"\ntable = \"t\"",
        ),
        (
            "sink",
            "iceberg",
            "table = \"lake.t\"\nwarehouse = \"/tmp/w\"",
        ),
    ];
    for (section, kind, rest) in formats {
        let header = if section == "format" {
            "[format]\ntype = \"raw\"\n"
        } else {
            "[sink]\ntype = \"stdout\"\n"
        };
        probes.push((
            section,
            with(
                header,
                &format!("[{section}]\ntype = \"{kind}\"\n{rest}\nzz_unknown = 1\n"),
            ),
        ));
    }
    let mut missing = Vec::new();
    let mut checked = 0;
    for (section, job) in &probes {
        for field in accepted_fields(section, job) {
            let path = match *section {
                "" => field,
                s => format!("{s}.{field}"),
            };
            checked += 1;
            if !docs.contains(&format!("`{path}`")) {
                missing.push(path);
            }
        }
    }
    for tag in ["format.type", "sink.type"] {
        if !docs.contains(&format!("`{tag}`")) {
            missing.push(tag.to_owned());
        }
    }
    assert!(
        checked > 50,
        "only {checked} fields found: the probes are broken"
    );
    assert!(
        missing.is_empty(),
        "docs/config.md does not describe these configuration fields: {missing:?}"
    );
}

/// `scripts/quickstart.sh` with `CARGO_TARGET_DIR` set and no Python: the script must ask
/// cargo where the binary is, and show the result with `kingest inspect`.
///
/// `CARGO_TARGET_DIR` is a symbolic link to this build's own target directory, under another
/// name, so cargo finds what the test build already compiled (the quickstart's `cargo build`
/// has nothing or little to do) while a script that assumed `./target` would name a path that
/// is not the one cargo reports. `python`, `python3`, `pip` and `pip3` on the `PATH` are stubs
/// that record being called and fail. The dev profile (what the tests built), 1,000 events,
/// and a temporary output directory; otherwise the script as the README runs it.
#[test]
fn quickstart_runs_with_cargo_target_dir_set_and_without_python() {
    let bin = kingest_binary();
    let profile_dir = bin.parent().unwrap();
    let target = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let dir = tempfile::tempdir().unwrap();
    let shared_target = dir.path().join("shared-target");
    std::os::unix::fs::symlink(target, &shared_target).unwrap();
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    let called = dir.path().join("python-was-called");
    for name in ["python", "python3", "pip", "pip3"] {
        let stub = stubs.join(name);
        std::fs::write(
            &stub,
            format!(
                "#!/bin/sh\necho \"$0 $*\" >> '{}'\nexit 127\n",
                called.display()
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&stub).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&stub, perms).unwrap();
    }
    let path = format!(
        "{}:{}",
        stubs.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out_dir = dir.path().join("data");
    let mut child = std::process::Command::new("bash")
        .arg(repo().join("scripts/quickstart.sh"))
        .args(["--events", "1000", "--profile", profile, "--out"])
        .arg(&out_dir)
        .env("CARGO_TARGET_DIR", &shared_target)
        .env("PATH", path)
        .env("KINGEST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::fs::File::create(dir.path().join("stdout")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("stderr")).unwrap(),
        ))
        .spawn()
        .unwrap();
    // A guard against a hang (a cargo build included), not a measurement.
    let deadline = std::time::Instant::now() + Duration::from_secs(900);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the quickstart did not finish:\n{}",
                log_tail(&dir.path().join("stderr"))
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(status.success(), "quickstart failed:\n{stderr}\n{stdout}");
    assert!(
        !called.exists(),
        "the quickstart ran Python: {}",
        std::fs::read_to_string(&called).unwrap_or_default()
    );
    // The binary cargo reported, under the target directory as the variable names it.
    let used = format!(
        "quickstart: using {}/{}/kingest\n",
        shared_target.display(),
        profile_dir.file_name().unwrap().to_str().unwrap()
    );
    assert!(stderr.contains(&used), "{used:?} not in:\n{stderr}");

    // What it wrote, read back by the parquet crate: every event once.
    let files = read_dir(&out_dir);
    let offsets: Vec<(i32, i64)> = files
        .iter()
        .flat_map(|f| &f.rows)
        .map(|r| match (&r["partition"], &r["offset"]) {
            (Cell::Int(p), Cell::Int(o)) => (*p as i32, *o),
            other => panic!("partition/offset {other:?}"),
        })
        .collect();
    assert_eq!(offsets.len(), 1000);
    let rows = exactly_once(
        &files,
        "quickstart-events",
        &end_offsets(&offsets),
        "partition",
        "offset",
    );
    assert_eq!(rows.len(), 1000);

    // ... and what `kingest inspect` printed of it, line by line.
    let mut want = vec![
        format!(
            "{}: {} Parquet file{}, 1000 rows",
            out_dir.display(),
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        ),
        "columns:".to_owned(),
        "  ts timestamp(ms, UTC)".to_owned(),
        "  uuid string".to_owned(),
        "  count int64".to_owned(),
        "  partition int32".to_owned(),
        "  offset int64".to_owned(),
        "files:".to_owned(),
    ];
    let mut group = None;
    for f in &files {
        let ((topic, partition), (first, next)) = f.offsets.iter().next().unwrap();
        let name = f.path.strip_prefix(&out_dir).unwrap().display().to_string();
        // The group is the script's own (`quickstart-<time>`): taken from the first line.
        let g = group.get_or_insert_with(|| {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("  {name}: ")))
                .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"));
            line.rsplit_once(", group ").unwrap().1.to_owned()
        });
        assert!(g.starts_with("\"quickstart-"), "{g}");
        want.push(format!(
            "  {name}: {} row{}, {topic}-{partition} offsets [{first}, {next}), group {g}",
            f.rows.len(),
            if f.rows.len() == 1 { "" } else { "s" }
        ));
    }
    want.push("first 5 of 1000 rows:".to_owned());
    let got: Vec<&str> = stdout.lines().collect();
    let (head, rows_printed) = got.split_at(want.len().min(got.len()));
    assert_eq!(head, want, "{stdout}");
    // The first five rows in file order, as JSON objects with the columns' values.
    let first_five: Vec<&BTreeMap<String, Cell>> =
        files.iter().flat_map(|f| &f.rows).take(5).collect();
    assert_eq!(rows_printed.len(), 5, "{stdout}");
    for (line, row) in rows_printed.iter().zip(first_five) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let int = |c: &Cell| match c {
            Cell::Int(i) => *i,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            v["partition"].as_i64(),
            Some(int(&row["partition"])),
            "{line}"
        );
        assert_eq!(v["offset"].as_i64(), Some(int(&row["offset"])), "{line}");
        assert_eq!(v["count"].as_i64(), Some(int(&row["count"])), "{line}");
        assert_eq!(
            Some(v["uuid"].as_str().unwrap()),
            match &row["uuid"] {
                Cell::Str(s) => Some(s.as_str()),
                _ => None,
            },
            "{line}"
        );
        assert!(v["ts"].as_str().unwrap().ends_with('Z'), "{line}");
    }
}
