//! Configuration parsing and validation: every section, and errors that name the field.

use super::*;

const FULL: &str = r#"
filter = "count > 10"

[source]
brokers = ["k1:9092", "k2:9092"]
topics = ["events"]
group = "g1"
start = "2024-01-02T00:00:00Z"
isolation = "read_uncommitted"
group_protocol = "consumer"
client_id = "loader"
properties = { "fetch.max.bytes" = "1048576" }

[source.tls]
ca = "/etc/ca.pem"

[source.sasl]
mechanism = "SCRAM-SHA-512"
username = "u"
password_env = "KAFKA_PASSWORD"

[format]
type = "csv"
delimiter = "|"
header = ["id", "name"]

[[columns]]
name = "id"
type = "int64"
source = "id"
nullable = false

[[columns]]
name = "name"
type = "string"
source = "1"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"

[errors]
on_error = "dead_letter"
dead_letter_file = "bad.jsonl"
max_errors = "1%"

[flush]
rows = 5000
bytes = "50M"
age = "30s"

[sink]
type = "parquet"
path = "s3://bucket/events"
compression = "snappy"
partition_by = "date"
"#;

#[test]
fn a_full_config() {
    let c = Config::parse(FULL, "test.toml").unwrap();
    assert_eq!(c.source.brokers.joined(), "k1:9092,k2:9092");
    assert_eq!(c.source.start, StartAt::Timestamp(1_704_153_600_000));
    assert_eq!(c.source.isolation, Isolation::ReadUncommitted);
    assert_eq!(c.source.group_protocol, GroupProtocolConfig::Consumer);
    assert_eq!(c.source.properties["fetch.max.bytes"], "1048576");
    assert_eq!(
        c.source.sasl.as_ref().unwrap().password_env.as_deref(),
        Some("KAFKA_PASSWORD")
    );
    assert!(
        matches!(&c.format, FormatConfig::Csv { delimiter, header: Some(h), .. } if delimiter == "|" && h.len() == 2)
    );
    assert_eq!(c.columns.len(), 3);
    assert!(!c.columns[0].nullable && c.columns[1].nullable);
    assert_eq!(c.errors.limit().unwrap(), Some(ErrorLimit::Fraction(0.01)));
    assert_eq!(
        c.flush,
        FlushConfig {
            rows: 5000,
            bytes: ByteSize(50 << 20),
            age: HumanDuration(std::time::Duration::from_secs(30))
        }
    );
    assert!(
        matches!(&c.sink, SinkConfig::Parquet { compression, partition_by: Some(p), .. } if compression == "snappy" && p == "date")
    );
    assert_eq!(c.filter.as_deref(), Some("count > 10"));
}

#[test]
fn defaults_for_a_minimal_json_job() {
    let c = Config::parse(
        "[source]\nbrokers = \"localhost:9092\"\ntopic = \"events\"\n[sink]\ntype = \"stdout\"\n",
        "min.toml",
    )
    .unwrap();
    assert_eq!(c.format, FormatConfig::default());
    assert_eq!(c.source.topic_names(), vec!["events".to_owned()]);
    assert_eq!(
        (
            c.source.group.as_str(),
            c.source.start.clone(),
            c.source.isolation
        ),
        ("kingest", StartAt::Earliest, Isolation::ReadCommitted)
    );
    assert_eq!(c.source.group_protocol, GroupProtocolConfig::Classic);
    assert_eq!(c.flush, FlushConfig::default());
    assert_eq!(c.errors.on_error, OnError::Fail);
}

#[test]
fn explicit_offsets_and_aliases() {
    let c = Config::parse("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\nconsumer_group = \"dg\"\nstart = { offsets = { \"t:0\" = 100, \"t:1\" = 7 } }\n[sink]\ntype = \"stdout\"\n", "x").unwrap();
    assert_eq!(c.source.group, "dg");
    let StartAt::Offsets(o) = c.source.start else {
        panic!()
    };
    assert_eq!(o[&("t".to_owned(), 1)], 7);
    for (text, want) in [
        ("\"smallest\"", StartAt::Earliest),
        ("\"largest\"", StartAt::Latest),
        ("1700000000000", StartAt::Timestamp(1_700_000_000_000)),
    ] {
        let c = Config::parse(&format!("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\nstart = {text}\n[sink]\ntype = \"stdout\"\n"), "x").unwrap();
        assert_eq!(c.source.start, want);
    }
}

/// Each broken config fails, naming the field.
#[test]
fn errors_name_the_field() {
    let base = "[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[sink]\ntype = \"stdout\"\n";
    let cases: &[(&str, &str)] = &[
        ("[source]\nbrokers = \"b:1\"\n[sink]\ntype = \"stdout\"\n", "source.topics"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\ntopic_pattern = \"t.*\"\n[sink]\ntype = \"stdout\"\n", "source.topic_pattern"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\nstart = \"yesterday\"\n[sink]\ntype = \"stdout\"\n", "yesterday"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\nbogus = 1\n[sink]\ntype = \"stdout\"\n", "bogus"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[sink]\ntype = \"parquet\"\npath = \"d\"\ncompression = \"brotli\"\n", "sink.compression"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[format]\ntype = \"csv\"\n[sink]\ntype = \"stdout\"\n", "columns"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[errors]\non_error = \"dead_letter\"\n[sink]\ntype = \"stdout\"\n", "errors.on_error"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[errors]\nmax_errors = \"lots\"\n[sink]\ntype = \"stdout\"\n", "errors.max_errors"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[[columns]]\nname = \"a\"\ntype = \"int32\"\n[[columns]]\nname = \"a\"\ntype = \"int32\"\n[sink]\ntype = \"stdout\"\n", "columns[1].name"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[flush]\nage = \"5 fortnights\"\n[sink]\ntype = \"stdout\"\n", "fortnights"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[source.sasl]\nmechanism = \"GSSAPI\"\n[sink]\ntype = \"stdout\"\n", "source.sasl.mechanism"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[sink]\ntype = \"postgres\"\nurl = \"postgres://x\"\ntable = \"t\"\nmode = \"upsert\"\n", "sink.key"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[format]\ntype = \"json\"\ndelimiter = \"|\"\n[sink]\ntype = \"stdout\"\n", "unknown field `delimiter`, expected `tombstones`"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[format]\ntombstones = \"drop\"\ntype = \"json\"\n[sink]\ntype = \"stdout\"\n", "unknown variant `drop`, expected one of `null_row`, `skip`, `error`"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[key_format]\ntype = \"json\"\ntombstones = \"skip\"\n[sink]\ntype = \"stdout\"\n", "key_format.tombstones"),
        ("[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[sink]\ntype = \"stdout\"\npath = \"d\"\n", "unknown field `path` in [sink]"),
    ];
    assert!(Config::parse(base, "ok").is_ok());
    for (text, needle) in cases {
        let err = Config::parse(text, "job.toml").unwrap_err().to_string();
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

#[test]
fn tombstones_are_a_format_setting_for_every_type() {
    let job = |format: &str| {
        format!(
            "[source]\nbrokers = \"b:1\"\ntopics = [\"t\"]\n[format]\n{format}\n\
             [[columns]]\nname = \"v\"\ntype = \"string\"\nsource = \"__value\"\n\
             [sink]\ntype = \"stdout\"\n"
        )
    };
    for (format, want) in [
        ("type = \"json\"", Tombstones::NullRow),
        ("type = \"json\"\ntombstones = \"skip\"", Tombstones::Skip),
        ("type = \"csv\"\ntombstones = \"error\"", Tombstones::Error),
        (
            "type = \"raw\"\ntombstones = \"null_row\"",
            Tombstones::NullRow,
        ),
        (
            "type = \"avro\"\nregistry = \"http://r:8081\"\ntombstones = \"skip\"",
            Tombstones::Skip,
        ),
    ] {
        let c = Config::parse(&job(format), "t.toml").unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(c.format.tombstones(), want, "{format}");
    }
}

#[test]
fn parquet_object_store_and_maintenance_tables() {
    let base = "[source]\nbrokers = \"k:9092\"\ntopic = \"events\"\n[sink]\ntype = \"parquet\"\npath = \"s3://lake/raw\"\n";
    let c = Config::parse(
        &format!(
            "{base}[sink.storage]\naws_endpoint = \"http://minio:9000\"\naws_allow_http = \"true\"\n\
             [sink.retry]\nmax_retries = 3\ntimeout = \"30s\"\n\
             [sink.compaction]\ntarget_file_size = \"256MiB\"\n\
             [sink.retention]\nmax_age = \"30d\"\n"
        ),
        "s3.toml",
    )
    .unwrap();
    let SinkConfig::Parquet {
        storage,
        retry,
        compaction,
        retention,
        ..
    } = &c.sink
    else {
        panic!("{:?}", c.sink);
    };
    assert_eq!(storage["aws_endpoint"], "http://minio:9000");
    assert_eq!(retry.max_retries, 3);
    assert_eq!(retry.timeout.0, std::time::Duration::from_secs(30));
    // Unset fields keep object_store's defaults.
    assert_eq!(retry.backoff.0, std::time::Duration::from_millis(100));
    assert_eq!(compaction.target_file_size.0, 256 << 20);
    assert_eq!(compaction.small_below(), 192 << 20);
    assert_eq!(
        retention.unwrap().max_age.0,
        std::time::Duration::from_secs(30 * 86_400)
    );
    // Without the tables: defaults, no retention.
    let c = Config::parse(base, "s3.toml").unwrap();
    let SinkConfig::Parquet {
        retry,
        compaction,
        retention,
        ..
    } = &c.sink
    else {
        panic!("{:?}", c.sink);
    };
    assert_eq!(*retry, RetrySection::default());
    assert_eq!(compaction.target_file_size.0, 128 << 20);
    assert!(retention.is_none());
    // Bad values name the field.
    for (table, field) in [
        (
            "[sink.compaction]\nmin_input_files = 1\n",
            "sink.compaction.min_input_files",
        ),
        (
            "[sink.retention]\nmax_age = \"0s\"\n",
            "sink.retention.max_age",
        ),
        ("[sink.retry]\nretries = 3\n", "retries"),
        (
            "[sink.retention]\nmax_age = \"1d\"\norphan_files_older_than = \"4d\"\n",
            "sink.retention.orphan_files_older_than",
        ),
    ] {
        let err = Config::parse(&format!("{base}{table}"), "bad.toml").unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
}

/// The table sinks take `[sink.storage]` and `[sink.retry]` as the Parquet sink does (the same
/// types, the same conversion), and they reach the sinks' settings: for Iceberg, the client
/// that reads and writes the table's data and metadata files.
#[test]
fn table_sinks_take_the_parquet_storage_and_retry_tables() {
    let source = "[source]\nbrokers = \"k:9092\"\ntopic = \"events\"\ngroup = \"g\"\n";
    let tables = "[sink.storage]\naws_endpoint = \"http://127.0.0.1:5000\"\n\
                  aws_allow_http = \"true\"\naws_region = \"eu-west-1\"\n\
                  [sink.retry]\nmax_retries = 4\nbackoff = \"20ms\"\nmax_backoff = \"1s\"\n";
    let want_retry = crate::sink::parquet::StoreRetry {
        max_retries: 4,
        timeout: std::time::Duration::from_secs(180),
        backoff: std::time::Duration::from_millis(20),
        max_backoff: std::time::Duration::from_secs(1),
    };
    let iceberg = Config::parse(
        &format!(
            "{source}[sink]\ntype = \"iceberg\"\ntable = \"lake.events\"\n\
             warehouse = \"s3://lake/wh\"\n\
             catalog = {{ type = \"sql\", uri = \"sqlite:////tmp/c.db\" }}\n{tables}"
        ),
        "iceberg.toml",
    )
    .unwrap();
    let ic = crate::engine::iceberg_config(&iceberg).unwrap().unwrap();
    assert_eq!(ic.storage["aws_endpoint"], "http://127.0.0.1:5000");
    assert_eq!(ic.storage["aws_region"], "eu-west-1");
    assert_eq!(ic.storage.len(), 3);
    assert_eq!(ic.retry, want_retry);
    let delta = Config::parse(
        &format!("{source}[sink]\ntype = \"delta\"\npath = \"s3://lake/t\"\n{tables}"),
        "delta.toml",
    )
    .unwrap();
    let dc = crate::engine::delta_config(&delta).unwrap().unwrap();
    assert_eq!(dc.storage, ic.storage);
    assert_eq!(dc.retry, want_retry);
    // Without the tables: the environment alone, object_store's retry defaults.
    let bare = Config::parse(
        &format!(
            "{source}[sink]\ntype = \"iceberg\"\ntable = \"lake.events\"\nwarehouse = \"/tmp/wh\"\n"
        ),
        "iceberg.toml",
    )
    .unwrap();
    let ic = crate::engine::iceberg_config(&bare).unwrap().unwrap();
    assert!(ic.storage.is_empty());
    assert_eq!(ic.retry, crate::sink::parquet::StoreRetry::default());
    // A misspelt retry field is refused for Iceberg as for Parquet.
    let err = Config::parse(
        &format!(
            "{source}[sink]\ntype = \"iceberg\"\ntable = \"lake.events\"\nwarehouse = \"/tmp/wh\"\n\
             [sink.retry]\nretries = 3\n"
        ),
        "bad.toml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("retries"), "{err}");
}
