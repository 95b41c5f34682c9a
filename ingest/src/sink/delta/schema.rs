//! The job's columns as a Delta table: the Delta schema (`schemaString`), the Arrow types the
//! data files are written with, the partition column, the protocol a new table gets, and the
//! checks an existing table must pass before this writer appends to it.
//!
//! Types map as Delta readers expect them in the files (so every reader, not only Arrow-based
//! ones, reads them as the schema says):
//!
//! | column type | Delta type | in the Parquet files |
//! | --- | --- | --- |
//! | `bool`, `int8`..`int64`, `float32`, `float64`, `string`, `binary`, `date`, `decimal(p, s)` | `boolean`, `byte`, `short`, `integer`, `long`, `float`, `double`, `string`, `binary`, `date`, `decimal(p,s)` | as is |
//! | `uint8`, `uint16`, `uint32` | `short`, `integer`, `long` (Delta has no unsigned types) | widened |
//! | `uint64` | `decimal(20,0)` | as a decimal |
//! | `timestamp(unit, zone)` | `timestamp` (microseconds, UTC) | microseconds (nanoseconds are truncated) |
//! | `timestamp(unit)` without a zone | `timestamp_ntz` (table feature `timestampNtz`) | microseconds |
//! | `list<T>`, `struct<...>` | `array`, `struct` | element and field types mapped alike |
//!
//! `partition_by`: a Delta partition column's value lives in the log (`partitionValues`), not in
//! the files, and readers put it back into every row. So a string, integer, boolean or date
//! column partitions the table by its own value (and leaves the files); a timestamp column,
//! whose values are nearly all distinct, partitions it by its UTC day through a *generated
//! column* `{column}_date` (`CAST({column} AS DATE)`, writer version 4), the same days the
//! Parquet sink's `column=YYYY-MM-DD/` directories use. Empty strings are stored as null
//! partition values, as Spark and Hive store them.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde_json::{json, Value as Json};

use super::error::DeltaError;
use super::log::{Metadata, Protocol};
use crate::sink::layout::PartitionBy;
use crate::sink::{PartitionKey, Result, SinkError};

/// Table features (writer version 7) this writer honours when appending.
const WRITER_FEATURES: &[&str] = &[
    "appendOnly",
    "invariants",
    "checkConstraints",
    "changeDataFeed",
    "generatedColumns",
    "timestampNtz",
];

/// How the table is partitioned.
#[derive(Debug, Clone)]
pub(crate) enum Partitioning {
    None,
    /// By the column's own value; the column is left out of the files.
    Identity {
        split: PartitionBy,
        column: String,
    },
    /// By the UTC day of a timestamp column, into the generated date column `column`.
    Day {
        split: PartitionBy,
        column: String,
    },
}

impl Partitioning {
    /// The partition column, if any.
    pub(crate) fn column(&self) -> Option<&str> {
        match self {
            Partitioning::None => None,
            Partitioning::Identity { column, .. } | Partitioning::Day { column, .. } => {
                Some(column)
            }
        }
    }

    /// Splits `batch` by partition value.
    pub(crate) fn split(
        &self,
        key: &PartitionKey,
        batch: &RecordBatch,
    ) -> Result<Vec<(Option<String>, RecordBatch)>> {
        match self {
            Partitioning::None => Ok(vec![(None, batch.clone())]),
            Partitioning::Identity { split, .. } | Partitioning::Day { split, .. } => {
                split.split_values(key, batch)
            }
        }
    }
}

/// The job's table: everything derived from its columns and `partition_by`.
#[derive(Debug, Clone)]
pub(crate) struct TableSchema {
    /// The schema batches arrive with.
    pub input: SchemaRef,
    /// The schema the data files are written with (types mapped, identity partition column
    /// left out).
    pub file: SchemaRef,
    /// Input columns whose type changes on the way to the files.
    cast: Vec<bool>,
    /// The input column left out of the files, if any.
    dropped: Option<usize>,
    pub partitioning: Partitioning,
    /// `schemaString` of a new table.
    pub schema_string: String,
    /// `schemaString` parsed, for comparing with an existing table's.
    delta_fields: Vec<Json>,
    pub protocol: Protocol,
}

fn unsupported(what: String) -> SinkError {
    delta(DeltaError::Unsupported(what))
}

/// The Arrow type a column is written to the files with, and its Delta type.
fn map_type(ty: &DataType, ntz: &mut bool) -> std::result::Result<(DataType, Json), String> {
    let field_of = |f: &Field, ntz: &mut bool| -> std::result::Result<(Field, Json), String> {
        let (t, j) = map_type(f.data_type(), ntz)?;
        Ok((
            Field::new(f.name(), t, f.is_nullable()),
            json!({"name": f.name(), "type": j, "nullable": f.is_nullable(), "metadata": {}}),
        ))
    };
    Ok(match ty {
        DataType::Boolean => (ty.clone(), json!("boolean")),
        DataType::Int8 => (ty.clone(), json!("byte")),
        DataType::Int16 => (ty.clone(), json!("short")),
        DataType::Int32 => (ty.clone(), json!("integer")),
        DataType::Int64 => (ty.clone(), json!("long")),
        DataType::UInt8 => (DataType::Int16, json!("short")),
        DataType::UInt16 => (DataType::Int32, json!("integer")),
        DataType::UInt32 => (DataType::Int64, json!("long")),
        DataType::UInt64 => (DataType::Decimal128(20, 0), json!("decimal(20,0)")),
        DataType::Float32 => (ty.clone(), json!("float")),
        DataType::Float64 => (ty.clone(), json!("double")),
        DataType::Utf8 => (ty.clone(), json!("string")),
        DataType::LargeUtf8 | DataType::Utf8View => (DataType::Utf8, json!("string")),
        DataType::Binary => (ty.clone(), json!("binary")),
        DataType::LargeBinary | DataType::BinaryView => (DataType::Binary, json!("binary")),
        DataType::Date32 => (ty.clone(), json!("date")),
        DataType::Date64 => (DataType::Date32, json!("date")),
        DataType::Decimal128(p, s) if *s >= 0 => (ty.clone(), json!(format!("decimal({p},{s})"))),
        DataType::Timestamp(_, Some(_)) => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            json!("timestamp"),
        ),
        DataType::Timestamp(_, None) => {
            *ntz = true;
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                json!("timestamp_ntz"),
            )
        }
        DataType::List(item) => {
            let (f, j) = field_of(item, ntz)?;
            (
                DataType::List(Arc::new(f)),
                json!({"type": "array", "elementType": j["type"], "containsNull": item.is_nullable()}),
            )
        }
        DataType::Struct(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            let mut js = Vec::with_capacity(fields.len());
            for f in fields.iter() {
                let (f, j) = field_of(f, ntz)?;
                out.push(f);
                js.push(j);
            }
            (
                DataType::Struct(Fields::from(out)),
                json!({"type": "struct", "fields": js}),
            )
        }
        other => return Err(format!("type {other} has no Delta equivalent")),
    })
}

impl TableSchema {
    /// The table for batches of `input`, partitioned by `partition_by`.
    pub(crate) fn new(input: &SchemaRef, partition_by: Option<&str>) -> Result<Self> {
        let mut ntz = false;
        let mut fields = Vec::new();
        let mut delta_fields = Vec::new();
        let mut cast = Vec::new();
        for f in input.fields() {
            let (t, j) = map_type(f.data_type(), &mut ntz)
                .map_err(|e| unsupported(format!("column {:?}: {e}", f.name())))?;
            cast.push(&t != f.data_type());
            fields.push(Field::new(f.name(), t, f.is_nullable()));
            delta_fields.push(
                json!({"name": f.name(), "type": j, "nullable": f.is_nullable(), "metadata": {}}),
            );
        }
        let mut dropped = None;
        let partitioning = match partition_by {
            None => Partitioning::None,
            Some(column) => {
                let split = PartitionBy::new(input, column)?;
                let index = split.index();
                match input.field(index).data_type() {
                    DataType::Timestamp(..) | DataType::Date64 => {
                        let name = format!("{column}_date");
                        if input.field_with_name(&name).is_ok() {
                            return Err(SinkError::PartitionColumn {
                                column: column.to_owned(),
                                reason: format!(
                                    "a timestamp partitions a Delta table by its day, in a generated column {name:?}, but the job has a column of that name: partition by it instead"
                                ),
                            });
                        }
                        let expr = format!("CAST(`{}` AS DATE)", column.replace('`', "``"));
                        delta_fields.push(json!({"name": name, "type": "date", "nullable": true,
                            "metadata": {"delta.generationExpression": expr}}));
                        Partitioning::Day {
                            split,
                            column: name,
                        }
                    }
                    _ => {
                        dropped = Some(index);
                        Partitioning::Identity {
                            split,
                            column: column.to_owned(),
                        }
                    }
                }
            }
        };
        let file_fields: Vec<Field> = fields
            .into_iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != dropped)
            .map(|(_, f)| f)
            .collect();
        let generated = matches!(partitioning, Partitioning::Day { .. });
        let protocol = if ntz {
            let mut writer = vec!["timestampNtz".to_owned()];
            if generated {
                writer.push("generatedColumns".to_owned());
            }
            Protocol {
                min_reader_version: 3,
                min_writer_version: 7,
                reader_features: Some(vec!["timestampNtz".to_owned()]),
                writer_features: Some(writer),
            }
        } else {
            Protocol {
                min_reader_version: 1,
                min_writer_version: if generated { 4 } else { 2 },
                reader_features: None,
                writer_features: None,
            }
        };
        let schema_string = json!({"type": "struct", "fields": delta_fields}).to_string();
        Ok(Self {
            input: input.clone(),
            file: Arc::new(Schema::new(file_fields)),
            cast,
            dropped,
            partitioning,
            schema_string,
            delta_fields,
            protocol,
        })
    }

    /// `batch` as the data files hold it: types mapped, the identity partition column left
    /// out. Columns that need no change are shared, not copied.
    pub(crate) fn to_file(&self, key: &PartitionKey, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.file.fields().len());
        for (i, c) in batch.columns().iter().enumerate() {
            if Some(i) == self.dropped {
                continue;
            }
            if self.cast[i] {
                let to = self.file.field(columns.len()).data_type();
                columns.push(arrow_cast::cast(c, to).map_err(|source| SinkError::Arrow {
                    context: "converting a column to its Delta type",
                    partition: key.clone(),
                    source,
                })?);
            } else {
                columns.push(c.clone());
            }
        }
        RecordBatch::try_new(self.file.clone(), columns).map_err(|source| SinkError::Arrow {
            context: "building a Delta data batch",
            partition: key.clone(),
            source,
        })
    }

    /// Checks that this writer may append to a table with `protocol` and `metadata`: a
    /// protocol it implements, the same partition column, and the job's columns with the same
    /// types (the table may have more columns, if they are nullable: the files then lack them
    /// and readers see nulls).
    pub(crate) fn check_table(&self, protocol: &Protocol, metadata: &Metadata) -> Result<()> {
        check_protocol(protocol).map_err(delta)?;
        if metadata.format.provider != "parquet" {
            return Err(delta(DeltaError::Unsupported(format!(
                "data files in {:?}, not parquet",
                metadata.format.provider
            ))));
        }
        for (k, v) in &metadata.configuration {
            if k.starts_with("delta.constraints.") {
                return Err(delta(DeltaError::Unsupported(format!(
                    "the table has a CHECK constraint ({k} = {}), which this writer does not evaluate",
                    v.as_deref().unwrap_or("")
                ))));
            }
        }
        let ours: Vec<&str> = self.partitioning.column().into_iter().collect();
        if metadata.partition_columns != ours {
            return Err(delta(DeltaError::Schema(format!(
                "the table is partitioned by {:?}, the job by {ours:?}",
                metadata.partition_columns
            ))));
        }
        let theirs: Json = serde_json::from_str(&metadata.schema_string).map_err(|e| {
            delta(DeltaError::Log {
                path: "metaData.schemaString".into(),
                reason: e.to_string(),
            })
        })?;
        let theirs = theirs["fields"].as_array().cloned().unwrap_or_default();
        for f in &theirs {
            if f["metadata"].get("delta.invariants").is_some() {
                return Err(delta(DeltaError::Unsupported(format!(
                    "column {} has an invariant, which this writer does not evaluate",
                    f["name"]
                ))));
            }
            let ours = self.delta_fields.iter().find(|o| o["name"] == f["name"]);
            match ours {
                None if f["nullable"] == json!(false) => {
                    return Err(delta(DeltaError::Schema(format!(
                        "the table's column {} is not nullable and the job has no such column",
                        f["name"]
                    ))))
                }
                None => {}
                Some(o) => {
                    let gen = |x: &Json| x["metadata"].get("delta.generationExpression").cloned();
                    if gen(f) != gen(o) {
                        return Err(delta(DeltaError::Unsupported(format!(
                            "column {} is generated by {} in the table, by {} here",
                            f["name"],
                            gen(f).unwrap_or(Json::Null),
                            gen(o).unwrap_or(Json::Null)
                        ))));
                    }
                    if strip_metadata(&f["type"]) != strip_metadata(&o["type"]) {
                        return Err(delta(DeltaError::Schema(format!(
                            "column {} is {} in the table, {} in the job",
                            f["name"], f["type"], o["type"]
                        ))));
                    }
                    if f["nullable"] == json!(false) && o["nullable"] != json!(false) {
                        return Err(delta(DeltaError::Schema(format!(
                            "column {} is not nullable in the table: declare it nullable = false in [[columns]]",
                            f["name"]
                        ))));
                    }
                }
            }
        }
        for o in &self.delta_fields {
            if !theirs.iter().any(|f| f["name"] == o["name"]) {
                return Err(delta(DeltaError::Schema(format!(
                    "the job's column {} is not in the table",
                    o["name"]
                ))));
            }
        }
        Ok(())
    }
}

fn delta(e: DeltaError) -> SinkError {
    SinkError::Delta {
        table: String::new(),
        source: Box::new(e),
    }
}

/// A Delta type with every `metadata` object removed (nested fields carry their own).
fn strip_metadata(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "metadata")
                .map(|(k, v)| (k.clone(), strip_metadata(v)))
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(strip_metadata).collect()),
        other => other.clone(),
    }
}

/// Whether this writer implements everything `protocol` asks of writers (and of readers of
/// the log: a reader feature such as deletion vectors or column mapping changes what the log
/// means).
pub(crate) fn check_protocol(p: &Protocol) -> std::result::Result<(), DeltaError> {
    let reader_ok = match p.min_reader_version {
        ..=1 => true,
        3 => p
            .reader_features
            .iter()
            .flatten()
            .all(|f| f == "timestampNtz"),
        _ => false,
    };
    if !reader_ok {
        return Err(DeltaError::Unsupported(format!(
            "the table needs reader version {} (features {:?}); this writer implements version 1 and timestampNtz",
            p.min_reader_version,
            p.reader_features.as_deref().unwrap_or_default()
        )));
    }
    let writer_ok = match p.min_writer_version {
        ..=4 => true,
        7 => p
            .writer_features
            .iter()
            .flatten()
            .all(|f| WRITER_FEATURES.contains(&f.as_str())),
        _ => false,
    };
    if !writer_ok {
        return Err(DeltaError::Unsupported(format!(
            "the table needs writer version {} (features {:?}); this writer implements versions up to 4 and the features {WRITER_FEATURES:?}",
            p.min_writer_version,
            p.writer_features.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray, TimestampMillisecondArray, UInt32Array};

    fn schema(fields: Vec<Field>) -> SchemaRef {
        Arc::new(Schema::new(fields))
    }

    #[test]
    fn delta_schema_maps_types_and_casts_only_what_differs() {
        let input = schema(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("n", DataType::UInt32, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("s", DataType::Utf8, true),
        ]);
        let t = TableSchema::new(&input, Some("s")).unwrap();
        assert_eq!(
            t.schema_string,
            r#"{"fields":[{"metadata":{},"name":"id","nullable":false,"type":"long"},{"metadata":{},"name":"n","nullable":true,"type":"long"},{"metadata":{},"name":"ts","nullable":true,"type":"timestamp"},{"metadata":{},"name":"s","nullable":true,"type":"string"}],"type":"struct"}"#
        );
        assert_eq!(t.protocol.min_writer_version, 2);
        let key = PartitionKey::new("t", 0);
        let batch = RecordBatch::try_new(
            input.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(UInt32Array::from(vec![u32::MAX])),
                Arc::new(TimestampMillisecondArray::from(vec![1_500]).with_timezone("UTC")),
                Arc::new(StringArray::from(vec!["x"])),
            ],
        )
        .unwrap();
        let file = t.to_file(&key, &batch).unwrap();
        assert_eq!(
            file.num_columns(),
            3,
            "the partition column leaves the files"
        );
        assert_eq!(
            file.column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            i64::from(u32::MAX)
        );
        assert_eq!(
            file.column(2).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        // The same table accepts the same job.
        let meta = Metadata {
            id: "x".into(),
            name: None,
            description: None,
            format: super::super::log::Format {
                provider: "parquet".into(),
                options: Default::default(),
            },
            schema_string: t.schema_string.clone(),
            partition_columns: vec!["s".into()],
            configuration: Default::default(),
            created_time: None,
        };
        t.check_table(&t.protocol, &meta).unwrap();
        let other = TableSchema::new(&input, None).unwrap();
        assert!(other.check_table(&t.protocol, &meta).is_err());
    }

    #[test]
    fn delta_timestamps_partition_by_a_generated_day_column() {
        let input = schema(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )]);
        let t = TableSchema::new(&input, Some("ts")).unwrap();
        assert_eq!(t.partitioning.column(), Some("ts_date"));
        assert!(t.schema_string.contains(
            r#"{"metadata":{"delta.generationExpression":"CAST(`ts` AS DATE)"},"name":"ts_date","nullable":true,"type":"date"}"#
        ), "{}", t.schema_string);
        assert_eq!(t.file.fields().len(), 1, "the timestamp stays in the files");
        assert_eq!(t.protocol.min_reader_version, 3);
        assert_eq!(
            t.protocol.writer_features,
            Some(vec!["timestampNtz".into(), "generatedColumns".into()])
        );
        let clash = schema(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("ts_date", DataType::Date32, true),
        ]);
        assert!(TableSchema::new(&clash, Some("ts")).is_err());
        assert!(TableSchema::new(&clash, Some("ts_date")).is_ok());
    }

    #[test]
    fn delta_protocols_beyond_this_writer_are_refused() {
        let p = |r, w, rf: Option<&[&str]>, wf: Option<&[&str]>| Protocol {
            min_reader_version: r,
            min_writer_version: w,
            reader_features: rf.map(|f| f.iter().map(|s| s.to_string()).collect()),
            writer_features: wf.map(|f| f.iter().map(|s| s.to_string()).collect()),
        };
        assert!(check_protocol(&p(1, 2, None, None)).is_ok());
        assert!(check_protocol(&p(1, 4, None, None)).is_ok());
        assert!(check_protocol(&p(2, 5, None, None)).is_err());
        assert!(check_protocol(&p(1, 6, None, None)).is_err());
        assert!(check_protocol(&p(
            3,
            7,
            Some(&["timestampNtz"]),
            Some(&["timestampNtz", "appendOnly"])
        ))
        .is_ok());
        assert!(check_protocol(&p(
            3,
            7,
            Some(&["deletionVectors"]),
            Some(&["deletionVectors"])
        ))
        .is_err());
        assert!(check_protocol(&p(1, 7, None, Some(&["rowTracking"]))).is_err());
    }
}
