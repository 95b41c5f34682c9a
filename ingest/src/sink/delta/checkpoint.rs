//! Checkpoints: the table's state at one version as one Parquet file,
//! `_delta_log/{N:020}.checkpoint.parquet`, so readers (and this writer, on start) read it and
//! the few JSON commits after it instead of every commit since version 0.
//!
//! One row per action, one nullable struct column per kind of action (`txn`, `add`, `remove`,
//! `metaData`, `protocol`), as the protocol's *classic* checkpoint lays them out. What a
//! checkpoint holds, and so its size (kafka-delta-ingest#187 reports 500 MB checkpoints where
//! Spark wrote 45 MB for the same table):
//! - the live files, each with its `stats` as the JSON string only (no `stats_parsed` copy),
//!   those statistics bounded as `stats.rs` says (32 columns, 32-character strings);
//! - one `txn` per application id: only the latest survives replay, so per job as many as it
//!   has partitions, whatever the number of commits (`delta.setTransactionRetentionDuration`,
//!   when the table sets it, also drops ids not updated for that long, e.g. of retired jobs);
//! - tombstones (`remove`) only until `delta.deletedFileRetentionDuration` (a week by
//!   default) has passed, as vacuum needs no older ones;
//! - zstd-compressed pages, written in row groups of [`BATCH_ROWS`] actions so writing takes
//!   bounded memory beyond the state itself.
//!
//! Reading accepts checkpoints of other writers (Spark's, delta-rs's, multi-part ones): only
//! the columns a replay needs are read, with whatever integer and string widths they have.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, MapFieldNames,
    StringBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::error::DeltaError;
use super::log::{Add, Format, Metadata, Protocol, Read, Remove, Txn};

/// A map column read back: partition values or tags, a key to its value or null.
type PartitionValues = BTreeMap<String, Option<String>>;

/// Actions per row group (and per Arrow batch while writing).
pub(crate) const BATCH_ROWS: usize = 10_000;

fn err(path: &str, e: impl std::error::Error + Send + Sync + 'static) -> DeltaError {
    DeltaError::Checkpoint {
        path: path.to_owned(),
        source: Box::new(e),
    }
}

fn string_map_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

fn string_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)))
}

fn txn_fields() -> Fields {
    Fields::from(vec![
        Field::new("appId", DataType::Utf8, true),
        Field::new("version", DataType::Int64, true),
        Field::new("lastUpdated", DataType::Int64, true),
    ])
}

fn add_fields() -> Fields {
    Fields::from(vec![
        Field::new("path", DataType::Utf8, true),
        Field::new("partitionValues", string_map_type(), true),
        Field::new("size", DataType::Int64, true),
        Field::new("modificationTime", DataType::Int64, true),
        Field::new("dataChange", DataType::Boolean, true),
        Field::new("stats", DataType::Utf8, true),
        Field::new("tags", string_map_type(), true),
    ])
}

fn remove_fields() -> Fields {
    Fields::from(vec![
        Field::new("path", DataType::Utf8, true),
        Field::new("deletionTimestamp", DataType::Int64, true),
        Field::new("dataChange", DataType::Boolean, true),
        Field::new("extendedFileMetadata", DataType::Boolean, true),
        Field::new("partitionValues", string_map_type(), true),
        Field::new("size", DataType::Int64, true),
        Field::new("tags", string_map_type(), true),
    ])
}

fn format_fields() -> Fields {
    Fields::from(vec![
        Field::new("provider", DataType::Utf8, true),
        Field::new("options", string_map_type(), true),
    ])
}

fn metadata_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("format", DataType::Struct(format_fields()), true),
        Field::new("schemaString", DataType::Utf8, true),
        Field::new("partitionColumns", string_list_type(), true),
        Field::new("configuration", string_map_type(), true),
        Field::new("createdTime", DataType::Int64, true),
    ])
}

fn protocol_fields() -> Fields {
    Fields::from(vec![
        Field::new("minReaderVersion", DataType::Int32, true),
        Field::new("minWriterVersion", DataType::Int32, true),
        Field::new("readerFeatures", string_list_type(), true),
        Field::new("writerFeatures", string_list_type(), true),
    ])
}

/// The checkpoint's Arrow schema.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("txn", DataType::Struct(txn_fields()), true),
        Field::new("add", DataType::Struct(add_fields()), true),
        Field::new("remove", DataType::Struct(remove_fields()), true),
        Field::new("metaData", DataType::Struct(metadata_fields()), true),
        Field::new("protocol", DataType::Struct(protocol_fields()), true),
    ]))
}

fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    let names = MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
}

fn append_map(
    b: &mut MapBuilder<StringBuilder, StringBuilder>,
    m: Option<&BTreeMap<String, Option<String>>>,
) {
    match m {
        None => b.append(false).unwrap_or_default(),
        Some(m) => {
            for (k, v) in m {
                b.keys().append_value(k);
                b.values().append_option(v.as_deref());
            }
            // Keys and values were appended in pairs: `append` cannot fail.
            b.append(true).unwrap_or_default();
        }
    }
}

fn append_list(b: &mut ListBuilder<StringBuilder>, l: Option<&Vec<String>>) {
    match l {
        None => b.append(false),
        Some(l) => {
            for s in l {
                b.values().append_value(s);
            }
            b.append(true);
        }
    }
}

fn strukt(
    fields: Fields,
    children: Vec<ArrayRef>,
    valid: Vec<bool>,
) -> Result<ArrayRef, arrow_schema::ArrowError> {
    Ok(Arc::new(StructArray::try_new(
        fields,
        children,
        Some(NullBuffer::from(valid)),
    )?))
}

fn list_builder() -> ListBuilder<StringBuilder> {
    ListBuilder::new(StringBuilder::new()).with_field(Field::new("element", DataType::Utf8, true))
}

/// One row group's worth of actions as a batch of the checkpoint schema.
fn encode(rows: &[&Read]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let n = rows.len();
    // txn
    let (mut app, mut ver, mut upd, mut v_txn) = (
        StringBuilder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Vec::with_capacity(n),
    );
    // add and remove
    let (mut a_path, mut a_pv, mut a_size, mut a_mt, mut a_dc, mut a_stats, mut a_tags, mut v_add) = (
        StringBuilder::new(),
        map_builder(),
        Int64Builder::new(),
        Int64Builder::new(),
        BooleanBuilder::new(),
        StringBuilder::new(),
        map_builder(),
        Vec::with_capacity(n),
    );
    let (mut r_path, mut r_del, mut r_dc, mut r_ext, mut r_pv, mut r_size, mut r_tags, mut v_rm) = (
        StringBuilder::new(),
        Int64Builder::new(),
        BooleanBuilder::new(),
        BooleanBuilder::new(),
        map_builder(),
        Int64Builder::new(),
        map_builder(),
        Vec::with_capacity(n),
    );
    // metaData and protocol
    let (mut m_id, mut m_name, mut m_desc, mut f_prov, mut f_opts, mut m_schema) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        map_builder(),
        StringBuilder::new(),
    );
    let (mut m_parts, mut m_conf, mut m_created, mut v_meta, mut v_fmt) = (
        list_builder(),
        map_builder(),
        Int64Builder::new(),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut p_r, mut p_w, mut p_rf, mut p_wf, mut v_proto) = (
        Int32Builder::new(),
        Int32Builder::new(),
        list_builder(),
        list_builder(),
        Vec::with_capacity(n),
    );
    for row in rows {
        let txn = match row {
            Read::Txn(t) => Some(t),
            _ => None,
        };
        v_txn.push(txn.is_some());
        app.append_option(txn.map(|t| &t.app_id));
        ver.append_option(txn.map(|t| t.version));
        upd.append_option(txn.and_then(|t| t.last_updated));

        let add = match row {
            Read::Add(a) => Some(a),
            _ => None,
        };
        v_add.push(add.is_some());
        a_path.append_option(add.map(|a| &a.path));
        append_map(&mut a_pv, add.map(|a| &a.partition_values));
        a_size.append_option(add.map(|a| a.size));
        a_mt.append_option(add.map(|a| a.modification_time));
        a_dc.append_option(add.map(|a| a.data_change));
        a_stats.append_option(add.and_then(|a| a.stats.as_ref()));
        append_map(&mut a_tags, add.and_then(|a| a.tags.as_ref()));

        let rm = match row {
            Read::Remove(r) => Some(r),
            _ => None,
        };
        v_rm.push(rm.is_some());
        r_path.append_option(rm.map(|r| &r.path));
        r_del.append_option(rm.and_then(|r| r.deletion_timestamp));
        r_dc.append_option(rm.map(|r| r.data_change));
        r_ext.append_option(rm.and_then(|r| r.extended_file_metadata));
        append_map(&mut r_pv, rm.and_then(|r| r.partition_values.as_ref()));
        r_size.append_option(rm.and_then(|r| r.size));
        append_map(&mut r_tags, rm.and_then(|r| r.tags.as_ref()));

        let meta = match row {
            Read::MetaData(m) => Some(m),
            _ => None,
        };
        v_meta.push(meta.is_some());
        v_fmt.push(meta.is_some());
        m_id.append_option(meta.map(|m| &m.id));
        m_name.append_option(meta.and_then(|m| m.name.as_ref()));
        m_desc.append_option(meta.and_then(|m| m.description.as_ref()));
        f_prov.append_option(meta.map(|m| &m.format.provider));
        let opts = meta.map(|m| {
            m.format
                .options
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect::<BTreeMap<_, _>>()
        });
        append_map(&mut f_opts, opts.as_ref());
        m_schema.append_option(meta.map(|m| &m.schema_string));
        append_list(&mut m_parts, meta.map(|m| &m.partition_columns));
        append_map(&mut m_conf, meta.map(|m| &m.configuration));
        m_created.append_option(meta.and_then(|m| m.created_time));

        let proto = match row {
            Read::Protocol(p) => Some(p),
            _ => None,
        };
        v_proto.push(proto.is_some());
        p_r.append_option(proto.map(|p| p.min_reader_version));
        p_w.append_option(proto.map(|p| p.min_writer_version));
        append_list(&mut p_rf, proto.and_then(|p| p.reader_features.as_ref()));
        append_list(&mut p_wf, proto.and_then(|p| p.writer_features.as_ref()));
    }
    let a = |b: &mut dyn arrow_array::builder::ArrayBuilder| b.finish();
    let columns = vec![
        strukt(
            txn_fields(),
            vec![a(&mut app), a(&mut ver), a(&mut upd)],
            v_txn,
        )?,
        strukt(
            add_fields(),
            vec![
                a(&mut a_path),
                a(&mut a_pv),
                a(&mut a_size),
                a(&mut a_mt),
                a(&mut a_dc),
                a(&mut a_stats),
                a(&mut a_tags),
            ],
            v_add,
        )?,
        strukt(
            remove_fields(),
            vec![
                a(&mut r_path),
                a(&mut r_del),
                a(&mut r_dc),
                a(&mut r_ext),
                a(&mut r_pv),
                a(&mut r_size),
                a(&mut r_tags),
            ],
            v_rm,
        )?,
        strukt(
            metadata_fields(),
            vec![
                a(&mut m_id),
                a(&mut m_name),
                a(&mut m_desc),
                strukt(format_fields(), vec![a(&mut f_prov), a(&mut f_opts)], v_fmt)?,
                a(&mut m_schema),
                a(&mut m_parts),
                a(&mut m_conf),
                a(&mut m_created),
            ],
            v_meta,
        )?,
        strukt(
            protocol_fields(),
            vec![a(&mut p_r), a(&mut p_w), a(&mut p_rf), a(&mut p_wf)],
            v_proto,
        )?,
    ];
    RecordBatch::try_new(schema(), columns)
}

/// The checkpoint file of `actions` (`path` names it in errors).
pub(crate) fn write(path: &str, actions: &[Read]) -> Result<Bytes, DeltaError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(BATCH_ROWS))
        .set_created_by(format!("kingest {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w =
        ArrowWriter::try_new(Vec::new(), schema(), Some(props)).map_err(|e| err(path, e))?;
    let refs: Vec<&Read> = actions.iter().collect();
    for chunk in refs.chunks(BATCH_ROWS) {
        let batch = encode(chunk).map_err(|e| err(path, e))?;
        w.write(&batch).map_err(|e| err(path, e))?;
    }
    let bytes = w.into_inner().map_err(|e| err(path, e))?;
    Ok(Bytes::from(bytes))
}

/// The actions of a checkpoint file (or of one part of one): `with_files` reads `add` and
/// `remove` too, else only what an appending writer needs (`txn`, `metaData`, `protocol`),
/// whose column chunks are all that is fetched from the file.
pub(crate) fn read(path: &str, bytes: Bytes, with_files: bool) -> Result<Vec<Read>, DeltaError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| err(path, e))?;
    let wanted: &[&str] = if with_files {
        &["txn", "add", "remove", "metaData", "protocol"]
    } else {
        &["txn", "metaData", "protocol"]
    };
    let roots: Vec<usize> = builder
        .parquet_schema()
        .root_schema()
        .get_fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| err(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(path, e))?;
        decode(&batch, &mut out).map_err(|reason| DeltaError::Log {
            path: path.to_owned(),
            reason,
        })?;
    }
    Ok(out)
}

/// A struct column's child as strings, integers or booleans, whatever width it was written
/// with; absent children read as all null.
struct Child<'a>(Option<&'a StructArray>);

impl Child<'_> {
    fn get(&self, name: &str) -> Option<ArrayRef> {
        self.0?.column_by_name(name).cloned()
    }

    fn strings(&self, name: &str) -> Result<Vec<Option<String>>, String> {
        let Some(c) = self.get(name) else {
            return Ok(vec![None; self.0.map_or(0, Array::len)]);
        };
        let c = arrow_cast::cast(&c, &DataType::Utf8).map_err(|e| format!("{name}: {e}"))?;
        Ok(c.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect())
    }

    fn ints(&self, name: &str) -> Result<Vec<Option<i64>>, String> {
        let Some(c) = self.get(name) else {
            return Ok(vec![None; self.0.map_or(0, Array::len)]);
        };
        let c = arrow_cast::cast(&c, &DataType::Int64).map_err(|e| format!("{name}: {e}"))?;
        Ok(c.as_primitive::<arrow_array::types::Int64Type>()
            .iter()
            .collect())
    }

    fn bools(&self, name: &str) -> Result<Vec<Option<bool>>, String> {
        let Some(c) = self.get(name) else {
            return Ok(vec![None; self.0.map_or(0, Array::len)]);
        };
        let c = arrow_cast::cast(&c, &DataType::Boolean).map_err(|e| format!("{name}: {e}"))?;
        Ok(c.as_boolean().iter().collect())
    }

    fn maps(&self, name: &str) -> Result<Vec<Option<PartitionValues>>, String> {
        let n = self.0.map_or(0, Array::len);
        let Some(c) = self.get(name) else {
            return Ok(vec![None; n]);
        };
        let Some(m) = c.as_map_opt() else {
            return Err(format!("{name}: not a map"));
        };
        let keys = arrow_cast::cast(m.keys(), &DataType::Utf8).map_err(|e| e.to_string())?;
        let values = arrow_cast::cast(m.values(), &DataType::Utf8).map_err(|e| e.to_string())?;
        let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
        let offsets = m.value_offsets();
        Ok((0..n)
            .map(|i| {
                m.is_valid(i).then(|| {
                    (offsets[i] as usize..offsets[i + 1] as usize)
                        .map(|j| {
                            (
                                keys.value(j).to_owned(),
                                values.is_valid(j).then(|| values.value(j).to_owned()),
                            )
                        })
                        .collect()
                })
            })
            .collect())
    }

    fn lists(&self, name: &str) -> Result<Vec<Option<Vec<String>>>, String> {
        let n = self.0.map_or(0, Array::len);
        let Some(c) = self.get(name) else {
            return Ok(vec![None; n]);
        };
        let Some(l) = c.as_list_opt::<i32>() else {
            return Err(format!("{name}: not a list"));
        };
        let values = arrow_cast::cast(l.values(), &DataType::Utf8).map_err(|e| e.to_string())?;
        let values = values.as_string::<i32>();
        let offsets = l.value_offsets();
        Ok((0..n)
            .map(|i| {
                l.is_valid(i).then(|| {
                    (offsets[i] as usize..offsets[i + 1] as usize)
                        .filter(|j| values.is_valid(*j))
                        .map(|j| values.value(j).to_owned())
                        .collect()
                })
            })
            .collect())
    }
}

fn need<T>(v: Option<T>, what: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("an action without {what}"))
}

/// Appends the actions of one batch of a checkpoint to `out`.
fn decode(batch: &RecordBatch, out: &mut Vec<Read>) -> Result<(), String> {
    let col = |name: &str| batch.column_by_name(name).and_then(|c| c.as_struct_opt());
    if let Some(p) = col("protocol") {
        let c = Child(Some(p));
        let (r, w) = (c.ints("minReaderVersion")?, c.ints("minWriterVersion")?);
        let (rf, wf) = (c.lists("readerFeatures")?, c.lists("writerFeatures")?);
        for i in (0..p.len()).filter(|i| p.is_valid(*i)) {
            out.push(Read::Protocol(Protocol {
                min_reader_version: need(r[i], "minReaderVersion")? as i32,
                min_writer_version: need(w[i], "minWriterVersion")? as i32,
                reader_features: rf[i].clone(),
                writer_features: wf[i].clone(),
            }));
        }
    }
    if let Some(m) = col("metaData") {
        let c = Child(Some(m));
        let fmt = c.get("format");
        let f = Child(fmt.as_ref().and_then(|f| f.as_struct_opt()));
        let (id, name, desc) = (
            c.strings("id")?,
            c.strings("name")?,
            c.strings("description")?,
        );
        let (prov, opts) = (f.strings("provider")?, f.maps("options")?);
        let (schema, parts) = (c.strings("schemaString")?, c.lists("partitionColumns")?);
        let (conf, created) = (c.maps("configuration")?, c.ints("createdTime")?);
        for i in (0..m.len()).filter(|i| m.is_valid(*i)) {
            out.push(Read::MetaData(Metadata {
                id: need(id[i].clone(), "id")?,
                name: name[i].clone(),
                description: desc[i].clone(),
                format: Format {
                    provider: prov
                        .get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| "parquet".into()),
                    options: opts
                        .get(i)
                        .cloned()
                        .flatten()
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v?)))
                        .collect(),
                },
                schema_string: need(schema[i].clone(), "schemaString")?,
                partition_columns: parts[i].clone().unwrap_or_default(),
                configuration: conf[i].clone().unwrap_or_default(),
                created_time: created[i],
            }));
        }
    }
    if let Some(t) = col("txn") {
        let c = Child(Some(t));
        let (app, ver, upd) = (
            c.strings("appId")?,
            c.ints("version")?,
            c.ints("lastUpdated")?,
        );
        for i in (0..t.len()).filter(|i| t.is_valid(*i)) {
            out.push(Read::Txn(Txn {
                app_id: need(app[i].clone(), "appId")?,
                version: need(ver[i], "version")?,
                last_updated: upd[i],
            }));
        }
    }
    if let Some(a) = col("add") {
        let c = Child(Some(a));
        let (path, pv, size) = (
            c.strings("path")?,
            c.maps("partitionValues")?,
            c.ints("size")?,
        );
        let (mt, dc, stats, tags) = (
            c.ints("modificationTime")?,
            c.bools("dataChange")?,
            c.strings("stats")?,
            c.maps("tags")?,
        );
        if c.get("deletionVector")
            .is_some_and(|d| d.null_count() < d.len())
        {
            return Err(
                "a file has a deletion vector, which this writer does not implement".into(),
            );
        }
        for i in (0..a.len()).filter(|i| a.is_valid(*i)) {
            out.push(Read::Add(Add {
                path: need(path[i].clone(), "path")?,
                partition_values: pv[i].clone().unwrap_or_default(),
                size: size[i].unwrap_or(0),
                modification_time: mt[i].unwrap_or(0),
                data_change: dc[i].unwrap_or(false),
                stats: stats[i].clone(),
                tags: tags[i].clone(),
            }));
        }
    }
    if let Some(r) = col("remove") {
        let c = Child(Some(r));
        let (path, del, dc) = (
            c.strings("path")?,
            c.ints("deletionTimestamp")?,
            c.bools("dataChange")?,
        );
        let (ext, pv, size, tags) = (
            c.bools("extendedFileMetadata")?,
            c.maps("partitionValues")?,
            c.ints("size")?,
            c.maps("tags")?,
        );
        for i in (0..r.len()).filter(|i| r.is_valid(*i)) {
            out.push(Read::Remove(Remove {
                path: need(path[i].clone(), "path")?,
                deletion_timestamp: del[i],
                data_change: dc[i].unwrap_or(false),
                extended_file_metadata: ext[i],
                partition_values: pv[i].clone(),
                size: size[i],
                tags: tags[i].clone(),
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_checkpoints_round_trip() {
        let actions = vec![
            Read::Protocol(Protocol {
                min_reader_version: 3,
                min_writer_version: 7,
                reader_features: Some(vec!["timestampNtz".into()]),
                writer_features: Some(vec!["timestampNtz".into(), "generatedColumns".into()]),
            }),
            Read::MetaData(Metadata {
                id: "id".into(),
                name: None,
                description: Some("d".into()),
                format: Format {
                    provider: "parquet".into(),
                    options: BTreeMap::new(),
                },
                schema_string: "{}".into(),
                partition_columns: vec!["p".into()],
                configuration: BTreeMap::from([(
                    "delta.checkpointInterval".into(),
                    Some("5".into()),
                )]),
                created_time: Some(7),
            }),
            Read::Txn(Txn {
                app_id: "g:t:0".into(),
                version: 42,
                last_updated: None,
            }),
            Read::Add(Add {
                path: "p=1/f.parquet".into(),
                partition_values: BTreeMap::from([
                    ("p".into(), Some("1".into())),
                    ("q".into(), None),
                ]),
                size: 100,
                modification_time: 5,
                data_change: true,
                stats: Some("{\"numRecords\":1}".into()),
                tags: None,
            }),
            Read::Remove(Remove {
                path: "old.parquet".into(),
                deletion_timestamp: Some(9),
                data_change: true,
                extended_file_metadata: Some(true),
                partition_values: Some(BTreeMap::new()),
                size: Some(3),
                tags: None,
            }),
        ];
        let bytes = write("cp", &actions).unwrap();
        let mut back = read("cp", bytes.clone(), true).unwrap();
        let mut want = actions.clone();
        let key = |r: &Read| format!("{r:?}");
        back.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(back, want);
        // Without files, only what an appending writer needs is read.
        let lean = read("cp", bytes, false).unwrap();
        assert_eq!(lean.len(), 3);
        assert!(lean
            .iter()
            .all(|r| !matches!(r, Read::Add(_) | Read::Remove(_))));
    }
}
