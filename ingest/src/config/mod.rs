//! The TOML configuration of an ingest job, field by field.
//!
//! One file describes one job: where the records come from (`[source]`), how their values and
//! keys are encoded (`[format]`, `[key_format]`), which columns to build and from where
//! (`[[columns]]`), what to keep (`filter`), what to do with bad records (`[errors]`), when to
//! flush (`[flush]`) and where to write (`[sink]`). Users of dgkafka/gpkafka will recognise the
//! `[[columns]]` list and the consumer group; Pinot users the flush thresholds. Every section
//! is validated before anything connects, and errors name the field.
//!
//! ```toml
//! [source]
//! brokers = "localhost:9092"
//! topics = ["events"]
//! group = "events-to-parquet"
//! start = "earliest"
//!
//! [format]
//! type = "json"
//!
//! [[columns]]
//! name = "ts"
//! type = "timestamp(ms, UTC)"
//! source = "/ts"
//!
//! [[columns]]
//! name = "offset"
//! type = "int64"
//! source = "__offset"
//!
//! [sink]
//! type = "parquet"
//! path = "./data"
//! ```

mod source;
mod storage;
mod table;
mod values;

use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

pub use crate::decode::Tombstones;
pub use source::{GroupProtocolConfig, Isolation, SaslSection, SourceConfig, StartAt, TlsSection};
pub use storage::{CompactionSection, RetentionSection, RetrySection, StorageOptions};
pub use table::{CatalogSection, PartitionItems};
pub use values::{parse_duration, ByteSize, HumanDuration};

/// A configuration that could not be read or is inconsistent.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown or mistyped field.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What toml said, with line and column.
        message: String,
    },
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as a TOML path (`source.start`, `columns[2].type`).
        field: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A whole job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the records come from.
    pub source: SourceConfig,
    /// How record values are encoded (default JSON).
    #[serde(default)]
    pub format: FormatConfig,
    /// How record keys are encoded, when columns read fields of the key (`__key` alone needs
    /// no format: it is the key's bytes or text).
    pub key_format: Option<FormatConfig>,
    /// The columns to build; omitted for JSON or Avro, they are inferred (JSON, from a sample)
    /// or taken from the writer schema (Avro), and printed.
    #[serde(default)]
    pub columns: Vec<ColumnConfig>,
    /// Keep only the rows for which this expression over the columns is true, e.g.
    /// `count > 10 and uuid is not null` (the language: [`crate::filter`]).
    pub filter: Option<String>,
    /// What happens to records that cannot be decoded.
    #[serde(default)]
    pub errors: ErrorConfig,
    /// When buffered rows are written out.
    #[serde(default)]
    pub flush: FlushConfig,
    /// Where rows go.
    pub sink: SinkConfig,
}

/// A record encoding. Every format has `tombstones`: what a record with a null (or, but for
/// `raw`, empty) value becomes; it applies to `[format]` only.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum FormatConfig {
    /// One JSON document per record.
    Json {
        /// What a null or empty value becomes (default: a row of NULLs).
        #[serde(default)]
        tombstones: Tombstones,
    },
    /// One CSV row per record.
    Csv {
        /// Field delimiter (one byte; default `,`).
        #[serde(default = "default_delimiter")]
        delimiter: String,
        /// Quote character (default `"`).
        #[serde(default = "default_quote")]
        quote: String,
        /// The text that stands for NULL (default: an empty field is NULL for non-string
        /// columns only).
        null: Option<String>,
        /// Field names by position, so columns can name their source (`source = "price"`).
        header: Option<Vec<String>>,
        /// What a null or empty value becomes.
        #[serde(default)]
        tombstones: Tombstones,
    },
    /// Avro in the Confluent Schema Registry wire format (magic byte, 4-byte schema id).
    Avro {
        /// The registry's URL.
        registry: String,
        /// Basic auth user (`USER_INFO`-style credentials).
        registry_username: Option<String>,
        /// Basic auth password; `registry_password_env` names an environment variable instead.
        registry_password: Option<String>,
        /// An environment variable holding the password.
        registry_password_env: Option<String>,
        /// A PEM CA file for an https registry with a private CA.
        registry_ca: Option<String>,
        /// What a null or empty value becomes.
        #[serde(default)]
        tombstones: Tombstones,
    },
    /// The bytes as they are.
    Raw {
        /// `string` (UTF-8, checked) or `bytes` (default).
        #[serde(default)]
        r#as: RawAs,
        /// What a null value becomes (an empty one is an empty value).
        #[serde(default)]
        tombstones: Tombstones,
    },
}

impl Default for FormatConfig {
    fn default() -> Self {
        FormatConfig::Json {
            tombstones: Tombstones::default(),
        }
    }
}

impl FormatConfig {
    /// What a tombstone becomes.
    pub fn tombstones(&self) -> Tombstones {
        match self {
            FormatConfig::Json { tombstones }
            | FormatConfig::Csv { tombstones, .. }
            | FormatConfig::Avro { tombstones, .. }
            | FormatConfig::Raw { tombstones, .. } => *tombstones,
        }
    }
}

fn default_delimiter() -> String {
    ",".to_owned()
}

fn default_quote() -> String {
    "\"".to_owned()
}

/// How `raw` values are taken.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawAs {
    /// Binary.
    #[default]
    Bytes,
    /// UTF-8 text.
    String,
}

/// One output column.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    /// The column's name in the output.
    pub name: String,
    /// Its type: `int8`..`int64`, `uint8`..`uint64`, `float32`, `float64`, `bool`, `string`,
    /// `binary`, `date`, `timestamp(ms|us|ns|s[, TZ])`, `decimal(P, S)`, `list<T>`,
    /// `struct<a: T, b: U>`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Where the value comes from: a JSON pointer (`/a/b`), a CSV index (`3`) or header name, an
    /// Avro field path (`a.b`), or `__key`, `__header$NAME`, `__topic`, `__partition`,
    /// `__offset`, `__timestamp`. Default: the column's name (`/name` for JSON).
    pub source: Option<String>,
    /// Whether NULLs are allowed (default true); a NULL in a non-nullable column is a record
    /// error.
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

/// What to do with a record that cannot be decoded.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop the run with an error naming topic, partition and offset (default).
    #[default]
    Fail,
    /// Count it, log it, and go on.
    Skip,
    /// Write the raw record and the error to the dead letter (a file or a topic), and go on.
    DeadLetter,
}

/// Bad-record handling.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ErrorConfig {
    /// The policy.
    #[serde(default)]
    pub on_error: OnError,
    /// Where dead letters go: a JSON-lines file...
    pub dead_letter_file: Option<String>,
    /// ...or a Kafka topic.
    pub dead_letter_topic: Option<String>,
    /// Stop once this many records failed (`100`), or this share of records (`"1%"`).
    pub max_errors: Option<toml::Value>,
}

/// The error limit, parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorLimit {
    /// At most this many bad records.
    Count(u64),
    /// At most this fraction (0..=1) of the records seen.
    Fraction(f64),
}

impl ErrorConfig {
    /// The parsed limit.
    pub fn limit(&self) -> Result<Option<ErrorLimit>, ConfigError> {
        let field = "errors.max_errors";
        match &self.max_errors {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(ErrorLimit::Count(*n as u64))),
            Some(toml::Value::String(s)) => {
                let pct = s.trim().strip_suffix('%').ok_or_else(|| {
                    ConfigError::invalid(
                        field,
                        format!("{s:?}: give a count (100) or a percentage (\"1%\")"),
                    )
                })?;
                let v: f64 = pct.trim().parse().map_err(|_| {
                    ConfigError::invalid(field, format!("{s:?} is not a percentage"))
                })?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(ConfigError::invalid(
                        field,
                        format!("{s:?} is not between 0% and 100%"),
                    ));
                }
                Ok(Some(ErrorLimit::Fraction(v / 100.0)))
            }
            Some(other) => Err(ConfigError::invalid(
                field,
                format!("{other}: give a count (100) or a percentage (\"1%\")"),
            )),
        }
    }
}

/// When rows buffered in memory are written: whichever threshold is reached first (Pinot's
/// `realtime.segment.flush.threshold.*`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlushConfig {
    /// Rows per file (default 1,000,000).
    #[serde(default = "default_rows")]
    pub rows: u64,
    /// Uncompressed bytes per file (default `128MiB`).
    #[serde(default = "default_bytes")]
    pub bytes: ByteSize,
    /// Age of the oldest buffered row (default `5m`).
    #[serde(default = "default_age")]
    pub age: HumanDuration,
}

fn default_rows() -> u64 {
    1_000_000
}

fn default_bytes() -> ByteSize {
    ByteSize(128 << 20)
}

fn default_age() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(300))
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self {
            rows: default_rows(),
            bytes: default_bytes(),
            age: default_age(),
        }
    }
}

/// Where rows go.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// Parquet files in a directory or an object store.
    Parquet {
        /// A directory, or `s3://bucket/prefix`, `gs://...`, `az://...`.
        path: String,
        /// `zstd` (default), `snappy`, `lz4`, `gzip` or `none`.
        #[serde(default = "default_compression")]
        compression: String,
        /// Split files into `column=value/` directories by this column (a timestamp column is
        /// split by day).
        partition_by: Option<String>,
        /// Object store options (`aws_endpoint`, `azure_storage_account_name`, ...), over the
        /// environment.
        #[serde(default)]
        storage: StorageOptions,
        /// How failed object store requests are retried.
        #[serde(default)]
        retry: RetrySection,
        /// What `kingest compact` merges.
        #[serde(default)]
        compaction: CompactionSection,
        /// Which old files `kingest compact` deletes (none without this table).
        retention: Option<RetentionSection>,
    },
    /// A Delta Lake table in a directory or an object store.
    Delta {
        /// The table: a directory, or `s3://bucket/prefix`, `gs://...`, `az://...`.
        path: String,
        /// The partition column (a timestamp partitions by its UTC day, in a generated column
        /// `{column}_date`).
        partition_by: Option<String>,
        /// Data file compression: `zstd` (default), `snappy`, `lz4`, `gzip` or `none`.
        #[serde(default = "default_compression")]
        compression: String,
        /// The application id of the `txn` actions holding the offsets (kafka-delta-ingest's
        /// `app_id`); default: the consumer group.
        app_id: Option<String>,
        /// A checkpoint every this many commits (default 100), unless the table sets
        /// `delta.checkpointInterval`.
        checkpoint_interval: Option<u64>,
        /// `metaData.name` of a table kingest creates.
        table_name: Option<String>,
        /// Object store options, as the Parquet sink's.
        #[serde(default)]
        storage: StorageOptions,
        /// How failed object store requests are retried, as the Parquet sink's.
        #[serde(default)]
        retry: RetrySection,
        /// What `kingest compact` merges (its `OPTIMIZE`).
        #[serde(default)]
        compaction: CompactionSection,
        /// What `kingest compact` deletes (`VACUUM` and log cleanup; none without this table).
        retention: Option<RetentionSection>,
    },
    /// JSON lines on standard output.
    Stdout,
    /// A PostgreSQL table.
    Postgres {
        /// `postgres://user:password@host:port/db?sslmode=...`.
        url: String,
        /// The table (optionally `schema.table`).
        table: String,
        /// `insert` (default) or `upsert`.
        #[serde(default = "default_mode")]
        mode: String,
        /// Key columns for `upsert`.
        #[serde(default)]
        key: Vec<String>,
        /// The table holding the offsets (default `kingest_offsets`).
        offsets_table: Option<String>,
    },
    /// An Apache Iceberg table.
    Iceberg {
        /// The catalog (default: a SQLite catalog `catalog.db` in a local `warehouse`).
        catalog: Option<CatalogSection>,
        /// `namespace.table`.
        table: String,
        /// Where new tables go: a directory, `s3://`, `gs://`, `az://`.
        warehouse: Option<String>,
        /// The partition spec of a new table: `"day(ts)"`, `["day(ts)", "bucket(16, id)"]`.
        partition_by: Option<PartitionItems>,
        /// Data file compression: `zstd` (default), `snappy`, `lz4`, `gzip` or `none`.
        #[serde(default = "default_compression")]
        compression: String,
        /// Properties of a table the sink creates.
        #[serde(default)]
        properties: std::collections::BTreeMap<String, String>,
        /// Object store options for the table's data and metadata files, as the Parquet
        /// sink's (the catalog's own connection is `catalog`).
        #[serde(default)]
        storage: StorageOptions,
        /// How failed object store requests are retried, as the Parquet sink's.
        #[serde(default)]
        retry: RetrySection,
        /// What `kingest compact` rewrites (Iceberg's `rewrite_data_files`).
        #[serde(default)]
        compaction: CompactionSection,
        /// Which snapshots `kingest compact` expires (Iceberg's `expire_snapshots`; none
        /// without this table).
        retention: Option<RetentionSection>,
    },
}

/// serde ignores every field beside `type` in a variant that has no fields (`stdout`), even
/// with `deny_unknown_fields`: `[sink] type = "stdout"` with a stray `path = "x"` would load
/// silently. Refused here, as any other unknown field is.
fn refuse_fields_of_fieldless_types(text: &str, origin: &str) -> Result<(), ConfigError> {
    // The text parsed as a Config already, so it parses as a table.
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    for (section, fieldless) in [("sink", "stdout")] {
        let Some(toml::Value::Table(t)) = table.get(section) else {
            continue;
        };
        if t.get("type").and_then(toml::Value::as_str) != Some(fieldless) {
            continue;
        }
        if let Some(extra) = t.keys().find(|k| *k != "type") {
            return Err(ConfigError::Parse {
                path: origin.to_owned(),
                message: format!(
                    "unknown field `{extra}` in [{section}]: type = \"{fieldless}\" has no other fields"
                ),
            });
        }
    }
    Ok(())
}

fn default_compression() -> String {
    "zstd".to_owned()
}

fn default_mode() -> String {
    "insert".to_owned()
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        refuse_fields_of_fieldless_types(text, origin)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: consistent combinations and well-formed values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.source.validate()?;
        if let Some(k) = &self.key_format {
            if k.tombstones() != Tombstones::default() {
                return Err(ConfigError::invalid(
                    "key_format.tombstones",
                    "a tombstone is a record whose value is null; set format.tombstones",
                ));
            }
        }
        if let FormatConfig::Csv {
            delimiter, quote, ..
        } = &self.format
        {
            if delimiter.len() != 1 {
                return Err(ConfigError::invalid(
                    "format.delimiter",
                    format!("{delimiter:?}: one ASCII character, e.g. \",\" or \"|\""),
                ));
            }
            if quote.len() != 1 {
                return Err(ConfigError::invalid(
                    "format.quote",
                    format!("{quote:?}: one ASCII character"),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            if c.name.is_empty() {
                return Err(ConfigError::invalid(
                    format!("columns[{i}].name"),
                    "empty column name",
                ));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("columns[{i}].name"),
                    format!("column {:?} is defined twice", c.name),
                ));
            }
        }
        if self.columns.is_empty()
            && matches!(
                self.format,
                FormatConfig::Csv { .. } | FormatConfig::Raw { .. }
            )
        {
            return Err(ConfigError::invalid(
                "columns",
                "CSV and raw formats need [[columns]]: there is nothing to infer them from",
            ));
        }
        match self.errors.on_error {
            OnError::DeadLetter
                if self.errors.dead_letter_file.is_none()
                    && self.errors.dead_letter_topic.is_none() =>
            {
                return Err(ConfigError::invalid(
                    "errors.on_error",
                    "dead_letter needs errors.dead_letter_file or errors.dead_letter_topic",
                ));
            }
            _ => {}
        }
        self.errors.limit()?;
        if self.flush.rows == 0 {
            return Err(ConfigError::invalid("flush.rows", "must be at least 1"));
        }
        if let SinkConfig::Parquet { compression, .. }
        | SinkConfig::Delta { compression, .. }
        | SinkConfig::Iceberg { compression, .. } = &self.sink
        {
            if !["zstd", "snappy", "lz4", "gzip", "none"].contains(&compression.as_str()) {
                return Err(ConfigError::invalid(
                    "sink.compression",
                    format!("{compression:?}: one of zstd, snappy, lz4, gzip, none"),
                ));
            }
        }
        if let SinkConfig::Parquet {
            compaction,
            retention,
            ..
        }
        | SinkConfig::Delta {
            compaction,
            retention,
            ..
        } = &self.sink
        {
            compaction.validate()?;
            if let Some(r) = retention {
                r.validate(false)?;
            }
        }
        if let SinkConfig::Iceberg {
            compaction,
            retention,
            ..
        } = &self.sink
        {
            compaction.validate()?;
            if let Some(r) = retention {
                r.validate(true)?;
            }
        }
        if let SinkConfig::Delta {
            checkpoint_interval: Some(0),
            ..
        } = &self.sink
        {
            return Err(ConfigError::invalid(
                "sink.checkpoint_interval",
                "must be at least 1",
            ));
        }
        if let SinkConfig::Iceberg {
            catalog,
            table,
            warehouse,
            ..
        } = &self.sink
        {
            if !table.contains('.') || table.split('.').any(str::is_empty) {
                return Err(ConfigError::invalid(
                    "sink.table",
                    format!("{table:?}: namespace.table, e.g. analytics.events"),
                ));
            }
            let local = warehouse
                .as_deref()
                .is_some_and(|w| !w.contains("://") || w.starts_with("file://"));
            if catalog.is_none() && !local {
                return Err(ConfigError::invalid(
                    "sink.catalog",
                    "give a catalog (catalog = { type = \"sql\", uri = \"sqlite:///catalog.db\" } \
                     or { type = \"rest\", uri = \"http://...\" }), or a local warehouse \
                     directory for the default SQLite catalog in it",
                ));
            }
        }
        if let SinkConfig::Postgres { mode, key, .. } = &self.sink {
            match mode.as_str() {
                "insert" => {}
                "upsert" if !key.is_empty() => {}
                "upsert" => {
                    return Err(ConfigError::invalid("sink.key", "upsert needs key columns"))
                }
                other => {
                    return Err(ConfigError::invalid(
                        "sink.mode",
                        format!("{other:?}: insert or upsert"),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
