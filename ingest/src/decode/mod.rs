//! Record decoders: Kafka record bytes straight into typed Arrow column buffers.
//!
//! A [`RowDecoder`] (one per partition) holds one builder per column and a decoder for the
//! value's format (and the key's, when key fields are read). [`RowDecoder::append`] takes a
//! record's borrowed bytes and metadata ([`RecordContext`]) and appends exactly one row, or
//! nothing and a [`DecodeError`]: a record that fails half way is rolled back (builders are
//! truncated to the row count), so a bad record never leaves a half row behind.
//!
//! The hot path allocates nothing per record: the JSON and CSV decoders hand slices of the
//! record to the builders (strings are copied once, into the column's data buffer), escapes
//! are undone into a reusable scratch buffer, numbers are parsed from their text, and Avro is
//! decoded by a per-schema-id plan. [`RowDecoder::finish`] turns the buffers into a
//! `RecordBatch` without copying and sizes the next batch's buffers like this one's.
//!
//! Formats: [`json`](FormatSpec::Json), [`csv`](FormatSpec::Csv), [`avro`](FormatSpec::Avro)
//! (Confluent Schema Registry framing, see [`RegistryClient`]) and [`raw`](FormatSpec::Raw).

mod avro;
mod builder;
mod convert;
mod csv;
mod error;
#[doc(hidden)]
pub mod every_format;
mod json;
pub(crate) mod json_infer;
mod json_scan;
mod raw;
mod registry;
mod swar;
mod value;

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use kingest_protocol::record::{Headers, Record};

use crate::schema::{self, ColumnSpec, Field, FormatKind, SchemaError, Source};
use builder::{ColumnBuilder, Val};

pub use error::{DecodeError, DecodeErrorKind};
pub use raw::raw_columns;
pub use registry::{RegistryClient, RegistryError, RegistryOptions};

/// Rows the builders are sized for before the first batch shows the real size.
const INITIAL_ROWS: usize = 1024;

/// What a tombstone becomes: a record whose value is null (Kafka's delete marker on compacted
/// topics), or empty (zero bytes) in a format where an empty value holds no row (JSON, CSV and
/// Avro; a raw value of zero bytes is an empty value, not a tombstone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tombstones {
    /// A row whose value columns are NULL; key, header and metadata columns are filled as for
    /// any record (a value column that is not nullable refuses it as a bad record).
    #[default]
    NullRow,
    /// No row: the record is read (its offset is passed) but gives nothing, and is neither
    /// logged nor dead-lettered. [`RowDecoder::append`] returns an error for which
    /// [`DecodeError::is_skipped_tombstone`] is true, for the caller to drop.
    Skip,
    /// A bad record, handled like any other ([`DecodeErrorKind::Tombstone`]).
    Error,
}

impl Tombstones {
    /// The setting's value as written in a job file.
    pub fn as_str(self) -> &'static str {
        match self {
            Tombstones::NullRow => "null_row",
            Tombstones::Skip => "skip",
            Tombstones::Error => "error",
        }
    }
}

/// A record format, with its settings. Each carries what the value's tombstones become
/// ([`Tombstones`]); a key format's is not used (a null key is no tombstone).
#[derive(Debug, Clone)]
pub enum FormatSpec {
    /// JSON documents; columns read JSON pointers.
    Json {
        /// What a null or empty value becomes.
        tombstones: Tombstones,
    },
    /// One CSV row per message; columns read field positions or names.
    Csv {
        /// The field delimiter (`b','`).
        delimiter: u8,
        /// The quote byte (`b'"'`).
        quote: u8,
        /// The text of a null field (`\N`, `NULL`); see [`FormatSpec::csv`] for the rules.
        null: Option<String>,
        /// Names for the field positions, so columns can name their field.
        names: Option<Vec<String>>,
        /// What a null or empty value becomes.
        tombstones: Tombstones,
    },
    /// Avro binary in the Confluent wire format; columns read field paths.
    Avro {
        /// Where writer schemas come from.
        registry: RegistryClient,
        /// What a null or empty value becomes.
        tombstones: Tombstones,
    },
    /// The bytes as they are.
    Raw {
        /// Whether the bytes must be UTF-8 text.
        utf8: bool,
        /// What a null value becomes.
        tombstones: Tombstones,
    },
}

impl FormatSpec {
    /// JSON, tombstones as null rows.
    pub fn json() -> FormatSpec {
        FormatSpec::Json {
            tombstones: Tombstones::default(),
        }
    }

    /// CSV with `,` and `"`, no null string (an empty unquoted field is null for typed columns
    /// and empty for strings) and no field names; tombstones as null rows.
    pub fn csv() -> FormatSpec {
        FormatSpec::Csv {
            delimiter: b',',
            quote: b'"',
            null: None,
            names: None,
            tombstones: Tombstones::default(),
        }
    }

    /// Avro with schemas from `registry`; tombstones as null rows.
    pub fn avro(registry: RegistryClient) -> FormatSpec {
        FormatSpec::Avro {
            registry,
            tombstones: Tombstones::default(),
        }
    }

    /// Raw bytes (`utf8`: they must be UTF-8 text); tombstones as null rows.
    pub fn raw(utf8: bool) -> FormatSpec {
        FormatSpec::Raw {
            utf8,
            tombstones: Tombstones::default(),
        }
    }

    /// The same format with tombstones handled as `t` says.
    pub fn with_tombstones(mut self, t: Tombstones) -> FormatSpec {
        match &mut self {
            FormatSpec::Json { tombstones }
            | FormatSpec::Csv { tombstones, .. }
            | FormatSpec::Avro { tombstones, .. }
            | FormatSpec::Raw { tombstones, .. } => *tombstones = t,
        }
        self
    }

    /// What a tombstone becomes.
    pub fn tombstones(&self) -> Tombstones {
        match self {
            FormatSpec::Json { tombstones }
            | FormatSpec::Csv { tombstones, .. }
            | FormatSpec::Avro { tombstones, .. }
            | FormatSpec::Raw { tombstones, .. } => *tombstones,
        }
    }

    /// Which kind of format this is.
    pub fn kind(&self) -> FormatKind {
        match self {
            FormatSpec::Json { .. } => FormatKind::Json,
            FormatSpec::Csv { .. } => FormatKind::Csv,
            FormatSpec::Avro { .. } => FormatKind::Avro,
            FormatSpec::Raw { .. } => FormatKind::Raw,
        }
    }
}

/// One record as the decoder sees it: borrowed bytes and the metadata columns can read.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp, in milliseconds since the epoch.
    pub timestamp: i64,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: Headers<'a>,
}

impl<'a> RecordContext<'a> {
    /// The context of a record read from `topic`/`partition`.
    pub fn new(topic: &'a str, partition: i32, record: &Record<'a>) -> RecordContext<'a> {
        RecordContext {
            topic,
            partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
        }
    }
}

/// A format decoder for the value or the key.
#[derive(Debug)]
enum Part {
    Json(json::JsonDecoder),
    Csv(csv::CsvDecoder),
    Avro(avro::AvroDecoder),
}

impl Part {
    fn decode(
        &mut self,
        buf: &[u8],
        cols: &mut [ColumnBuilder],
        row: usize,
    ) -> Result<(), error::Fail> {
        match self {
            Part::Json(d) => d.decode(buf, cols, row),
            Part::Csv(d) => d.decode(buf, cols, row),
            Part::Avro(d) => d.decode(buf, cols, row),
        }
    }
}

/// A column filled from the record rather than a format decoder.
#[derive(Debug)]
enum Meta {
    Value,
    Key,
    Header(Box<[u8]>),
    Topic,
    Partition,
    Offset,
    Timestamp,
}

/// Decodes records into rows of typed columns, for one partition. See the module docs.
#[derive(Debug)]
pub struct RowDecoder {
    columns: Vec<ColumnSpec>,
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    value: Option<Part>,
    key: Option<Part>,
    meta: Vec<(usize, Meta)>,
    value_kind: FormatKind,
    key_kind: Option<FormatKind>,
    value_utf8: bool,
    key_utf8: bool,
    /// What a tombstone becomes.
    tombstones: Tombstones,
    /// Whether an empty value is a tombstone (JSON, CSV, Avro) or an empty value (raw).
    empty_is_tombstone: bool,
    rows: usize,
}

/// Splits the columns reading one part (value or key) into that part's format decoder.
fn part_decoder(
    columns: &[ColumnSpec],
    format: &FormatSpec,
    fields: Vec<(usize, &Field)>,
) -> Result<Option<Part>, SchemaError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let wrong = |col: usize, f: &Field| {
        SchemaError::column(
            &columns[col].name,
            format!("source {f:?} does not fit the {} format", format.kind()),
        )
    };
    Ok(Some(match format {
        FormatSpec::Json { .. } => {
            let mut targets = Vec::new();
            for (col, f) in fields {
                match f {
                    Field::Pointer(tokens) => targets.push((col, tokens.as_slice())),
                    f => return Err(wrong(col, f)),
                }
            }
            Part::Json(json::JsonDecoder::new(targets))
        }
        FormatSpec::Csv {
            delimiter,
            quote,
            null,
            names,
            ..
        } => {
            let mut targets = Vec::new();
            for (col, f) in fields {
                let index = match f {
                    Field::CsvIndex(i) => *i,
                    Field::CsvName(n) => names
                        .as_ref()
                        .and_then(|names| names.iter().position(|x| x == n))
                        .ok_or_else(|| {
                            SchemaError::column(
                                &columns[col].name,
                                format!("CSV field {n:?} is not among the format's names"),
                            )
                        })?,
                    f => return Err(wrong(col, f)),
                };
                if matches!(
                    columns[col].data_type,
                    arrow_schema::DataType::List(_) | arrow_schema::DataType::Struct(_)
                ) {
                    return Err(SchemaError::column(
                        &columns[col].name,
                        "a CSV field cannot fill a list or struct column",
                    ));
                }
                targets.push((col, index));
            }
            if delimiter == quote || matches!(delimiter, b'\n' | b'\r') {
                return Err(SchemaError::Column {
                    column: columns[fields_first(&targets)].name.clone(),
                    message: "the CSV delimiter must differ from the quote and line breaks".into(),
                });
            }
            Part::Csv(csv::CsvDecoder::new(
                *delimiter,
                *quote,
                null.as_deref(),
                targets,
            ))
        }
        FormatSpec::Avro { registry, .. } => {
            let mut targets = Vec::new();
            for (col, f) in fields {
                match f {
                    Field::AvroPath(p) => targets.push((col, p.clone())),
                    f => return Err(wrong(col, f)),
                }
            }
            Part::Avro(avro::AvroDecoder::new(registry.clone(), targets))
        }
        FormatSpec::Raw { .. } => {
            let (col, f) = fields[0];
            return Err(wrong(col, f));
        }
    }))
}

fn fields_first(targets: &[(usize, usize)]) -> usize {
    targets.first().map_or(0, |t| t.0)
}

impl RowDecoder {
    /// A decoder for `columns`, reading values in `value_format` and, when given, keys in
    /// `key_format` (needed only by `__key:SRC` columns).
    pub fn new(
        columns: &[ColumnSpec],
        value_format: &FormatSpec,
        key_format: Option<&FormatSpec>,
    ) -> Result<RowDecoder, SchemaError> {
        let mut value_fields = Vec::new();
        let mut key_fields = Vec::new();
        let mut meta = Vec::new();
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|o| o.name == c.name) {
                return Err(SchemaError::DuplicateColumn(c.name.clone()));
            }
            builder::supported(&c.data_type).map_err(|m| SchemaError::column(&c.name, m))?;
            match &c.source {
                Source::Value(Field::Whole) => meta.push((i, Meta::Value)),
                Source::Value(f) => value_fields.push((i, f)),
                Source::Key(Field::Whole) => meta.push((i, Meta::Key)),
                Source::Key(f) => {
                    if key_format.is_none() {
                        return Err(SchemaError::column(
                            &c.name,
                            "a key field needs a key format",
                        ));
                    }
                    key_fields.push((i, f));
                }
                Source::Header(h) => meta.push((i, Meta::Header(h.as_bytes().into()))),
                Source::Topic => meta.push((i, Meta::Topic)),
                Source::Partition => meta.push((i, Meta::Partition)),
                Source::Offset => meta.push((i, Meta::Offset)),
                Source::Timestamp => meta.push((i, Meta::Timestamp)),
            }
        }
        let value = part_decoder(columns, value_format, value_fields)?;
        let key = match key_format {
            Some(k) => part_decoder(columns, k, key_fields)?,
            None => None,
        };
        let utf8 = |f: Option<&FormatSpec>| matches!(f, Some(FormatSpec::Raw { utf8: true, .. }));
        Ok(RowDecoder {
            schema: schema::arrow_schema(columns),
            builders: columns
                .iter()
                .map(|c| ColumnBuilder::new(&c.data_type, c.nullable, INITIAL_ROWS))
                .collect(),
            columns: columns.to_vec(),
            value,
            key,
            meta,
            value_kind: value_format.kind(),
            key_kind: key_format.map(FormatSpec::kind),
            value_utf8: utf8(Some(value_format)),
            key_utf8: utf8(key_format),
            tombstones: value_format.tombstones(),
            empty_is_tombstone: value_format.kind() != FormatKind::Raw,
            rows: 0,
        })
    }

    /// The columns.
    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// The Arrow schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows appended since the last [`Self::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes the pending rows hold in memory, for flush thresholds.
    pub fn estimated_bytes(&self) -> usize {
        self.builders
            .iter()
            .map(ColumnBuilder::estimated_bytes)
            .sum()
    }

    /// The schemas appending `rec` needs from the registry first (Confluent Avro ids neither
    /// compiled nor cached): empty, without allocating, for every record but the first of
    /// each new schema id. Fetch them with [`PendingSchema::fetch`] before [`Self::append`].
    pub fn pending_schemas(&self, rec: &RecordContext<'_>) -> Vec<PendingSchema> {
        let mut out = Vec::new();
        for (part, bytes, location) in [
            (&self.value, rec.value, "value"),
            (&self.key, rec.key, "key"),
        ] {
            if let (Some(Part::Avro(d)), Some(b)) = (part, bytes) {
                if let Some(id) = d.to_fetch(b) {
                    out.push(PendingSchema {
                        registry: d.registry().clone(),
                        id,
                        location,
                    });
                }
            }
        }
        out
    }

    /// Appends one record as one row, or nothing and the reason.
    pub fn append(&mut self, rec: &RecordContext<'_>) -> Result<(), DecodeError> {
        let row = self.rows;
        match self.append_row(rec, row) {
            Ok(()) => {
                self.rows += 1;
                Ok(())
            }
            Err((column, part, kind)) => {
                for b in &mut self.builders {
                    b.truncate(row);
                }
                Err(self.error(rec, column, part, kind))
            }
        }
    }

    #[inline]
    fn append_row(
        &mut self,
        rec: &RecordContext<'_>,
        row: usize,
    ) -> Result<(), (Option<usize>, &'static str, DecodeErrorKind)> {
        let cols = &mut self.builders;
        let value = match rec.value {
            Some(v) if !v.is_empty() || !self.empty_is_tombstone => Some(v),
            tombstone => {
                if self.tombstones != Tombstones::NullRow {
                    let kind = DecodeErrorKind::Tombstone {
                        empty: tombstone.is_some(),
                        policy: self.tombstones,
                    };
                    return Err((None, "", kind));
                }
                None
            }
        };
        if let (Some(part), Some(v)) = (&mut self.value, value) {
            part.decode(v, cols, row)
                .map_err(|(c, k)| (c, "value", k))?;
        }
        if let (Some(part), Some(k)) = (&mut self.key, rec.key) {
            part.decode(k, cols, row).map_err(|(c, e)| (c, "key", e))?;
        }
        for (col, m) in &self.meta {
            let b = &mut cols[*col];
            let r = match m {
                Meta::Value => match value {
                    Some(v) => raw::append_whole(b, v, self.value_utf8),
                    None => b.append_null(),
                },
                Meta::Key => match rec.key {
                    Some(k) => raw::append_whole(b, k, self.key_utf8),
                    None => b.append_null(),
                },
                Meta::Header(name) => match rec.headers.last(name) {
                    Some(Some(v)) => b.append(Val::Text(v)),
                    _ => b.append_null(),
                },
                Meta::Topic => b.append(Val::Text(rec.topic.as_bytes())),
                Meta::Partition => b.append(Val::Int(i64::from(rec.partition))),
                Meta::Offset => b.append(Val::Int(rec.offset)),
                // Magic-0 records have no timestamp (-1): null rather than 1969.
                Meta::Timestamp if rec.timestamp < 0 => b.append_null(),
                Meta::Timestamp => b.append(Val::Time(
                    rec.timestamp,
                    arrow_schema::TimeUnit::Millisecond,
                )),
            };
            r.map_err(|e| (Some(*col), "", e))?;
        }
        // Columns the record did not reach (missing fields, null values or keys).
        for (i, b) in cols.iter_mut().enumerate() {
            if b.len() == row {
                b.append_null().map_err(|e| (Some(i), "", e))?;
            }
        }
        Ok(())
    }

    fn error(
        &self,
        rec: &RecordContext<'_>,
        column: Option<usize>,
        part: &'static str,
        kind: DecodeErrorKind,
    ) -> DecodeError {
        let location = match column {
            Some(c) => Some(self.location(&self.columns[c].source)),
            None if part.is_empty() => None,
            None => Some(format!(
                "{part} ({})",
                if part == "key" {
                    self.key_kind.unwrap_or(FormatKind::Raw)
                } else {
                    self.value_kind
                }
            )),
        };
        DecodeError {
            topic: rec.topic.to_string(),
            partition: rec.partition,
            offset: rec.offset,
            column: column.map(|c| self.columns[c].name.clone()),
            location,
            kind: Box::new(kind),
        }
    }

    /// Describes where a source reads from, for error messages.
    fn location(&self, source: &Source) -> String {
        let field = |f: &Field| match f {
            Field::Whole => "whole bytes".to_string(),
            Field::Pointer(t) if t.is_empty() => "JSON document".to_string(),
            Field::Pointer(_) => format!("JSON {f}"),
            Field::CsvIndex(i) => format!("CSV field {i}"),
            Field::CsvName(n) => format!("CSV field {n:?}"),
            Field::AvroPath(p) if p.is_empty() => "Avro record".to_string(),
            Field::AvroPath(_) => format!("Avro field {f}"),
        };
        match source {
            Source::Value(Field::Whole) => "value".into(),
            Source::Value(f) => field(f),
            Source::Key(Field::Whole) => "key".into(),
            Source::Key(f) => format!("key {}", field(f)),
            Source::Header(h) => format!("header {h:?}"),
            other => other.to_string(),
        }
    }

    /// The rows appended so far as a batch; the decoder starts a new one, with buffers sized
    /// like this one's.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let rows = std::mem::take(&mut self.rows);
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .expect("columns are built to the schema, one value per row")
    }
}

#[cfg(test)]
mod edge_tests;
/// A writer schema a record needs from the registry before it can be decoded
/// ([`RowDecoder::pending_schemas`]).
#[derive(Debug, Clone)]
pub struct PendingSchema {
    registry: RegistryClient,
    id: u32,
    location: &'static str,
}

impl PendingSchema {
    /// The schema id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Fetches it into the registry client's cache (retried while failures may pass); a
    /// failure is `rec`'s decode error, naming its topic, partition, offset and schema id.
    pub async fn fetch(&self, rec: &RecordContext<'_>) -> Result<(), DecodeError> {
        match self.registry.fetch(self.id).await {
            Ok(_) => Ok(()),
            Err(source) => Err(DecodeError {
                topic: rec.topic.to_string(),
                partition: rec.partition,
                offset: rec.offset,
                column: None,
                location: Some(self.location.to_string()),
                kind: Box::new(DecodeErrorKind::Registry {
                    id: self.id,
                    source,
                }),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
