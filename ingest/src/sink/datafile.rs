//! A table format's data file: record batches into one Parquet file uploaded through
//! `object_store` (local directories included), and, once finished, per-column statistics
//! read back from the footer the writer produced (sizes, value and null counts, minimum and
//! maximum), keyed by each leaf column's field id. Table formats (Iceberg's manifests, Delta's
//! `add` actions) record these so that readers can skip files.
//!
//! Unlike the Parquet sink's files, these need no atomic rename and no offsets in the footer:
//! a data file becomes part of a table only when a commit references it.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStore;
use parquet::arrow::AsyncArrowWriter;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;

use super::layout::batch_bytes;

/// One Parquet data file being written.
pub(crate) struct DataFileWriter {
    /// Where it goes (a location as the table records it).
    pub location: String,
    writer: AsyncArrowWriter<BufWriter>,
    /// Rows written so far.
    pub rows: u64,
    /// Uncompressed (Arrow in-memory) bytes written so far: the roll threshold's measure.
    pub bytes: u64,
}

/// A finished data file.
#[derive(Debug, Clone)]
pub(crate) struct WrittenFile {
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    pub rows: u64,
    /// Per leaf column with a field id.
    pub columns: Vec<ColumnStats>,
}

/// A typed statistics value, as Parquet keeps it (physical types).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StatValue {
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Float(f32),
    Double(f64),
    /// Byte arrays and fixed-length byte arrays (strings, binary, large decimals).
    Bytes(Vec<u8>),
}

/// One leaf column's statistics in one file (summed over its row groups).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnStats {
    pub field_id: i32,
    /// Compressed bytes of its column chunks.
    pub compressed_size: u64,
    /// Values, nulls included (leaf values: a list contributes one per element).
    pub values: u64,
    /// Nulls, when every row group recorded them.
    pub nulls: Option<u64>,
    /// Minimum and maximum, when every row group recorded them.
    pub min: Option<StatValue>,
    pub max: Option<StatValue>,
}

impl DataFileWriter {
    /// Starts `location` (object key `path` of `store`) for batches of `schema`.
    pub(crate) fn create(
        store: Arc<dyn ObjectStore>,
        path: Path,
        location: String,
        schema: SchemaRef,
        props: WriterProperties,
        part_bytes: usize,
    ) -> parquet::errors::Result<DataFileWriter> {
        let sink = BufWriter::with_capacity(store, path, part_bytes);
        let writer = AsyncArrowWriter::try_new(sink, schema, Some(props))?;
        Ok(DataFileWriter {
            location,
            writer,
            rows: 0,
            bytes: 0,
        })
    }

    /// Appends a batch (of the file schema, or of one differing only in field metadata).
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> parquet::errors::Result<()> {
        self.writer.write(batch).await?;
        self.rows += batch.num_rows() as u64;
        self.bytes += batch_bytes(batch);
        Ok(())
    }

    /// Writes the footer and completes the upload.
    pub(crate) async fn finish(mut self) -> parquet::errors::Result<WrittenFile> {
        let meta = self.writer.finish().await?;
        let size = self.writer.bytes_written() as u64;
        Ok(WrittenFile {
            location: self.location,
            size,
            rows: self.rows,
            columns: column_stats(&meta),
        })
    }

    /// Abandons the file (its upload is aborted; a partial local file may remain).
    pub(crate) async fn abort(self) {
        let mut inner = self.writer.into_inner();
        let _ = parquet::arrow::async_writer::AsyncFileWriter::complete(&mut inner).await;
    }
}

fn stat_values(s: &Statistics) -> (Option<StatValue>, Option<StatValue>) {
    match s {
        Statistics::Boolean(v) => (
            v.min_opt().map(|x| StatValue::Bool(*x)),
            v.max_opt().map(|x| StatValue::Bool(*x)),
        ),
        Statistics::Int32(v) => (
            v.min_opt().map(|x| StatValue::Int32(*x)),
            v.max_opt().map(|x| StatValue::Int32(*x)),
        ),
        Statistics::Int64(v) => (
            v.min_opt().map(|x| StatValue::Int64(*x)),
            v.max_opt().map(|x| StatValue::Int64(*x)),
        ),
        Statistics::Float(v) => (
            v.min_opt().map(|x| StatValue::Float(*x)),
            v.max_opt().map(|x| StatValue::Float(*x)),
        ),
        Statistics::Double(v) => (
            v.min_opt().map(|x| StatValue::Double(*x)),
            v.max_opt().map(|x| StatValue::Double(*x)),
        ),
        Statistics::ByteArray(v) => (
            v.min_opt().map(|x| StatValue::Bytes(x.data().to_vec())),
            // A truncated maximum is not an upper bound: drop it.
            v.max_opt()
                .filter(|_| v.max_is_exact())
                .map(|x| StatValue::Bytes(x.data().to_vec())),
        ),
        Statistics::FixedLenByteArray(v) => (
            v.min_opt().map(|x| StatValue::Bytes(x.data().to_vec())),
            v.max_opt()
                .filter(|_| v.max_is_exact())
                .map(|x| StatValue::Bytes(x.data().to_vec())),
        ),
        Statistics::Int96(_) => (None, None),
    }
}

fn less(a: &StatValue, b: &StatValue) -> bool {
    match (a, b) {
        (StatValue::Bool(a), StatValue::Bool(b)) => a < b,
        (StatValue::Int32(a), StatValue::Int32(b)) => a < b,
        (StatValue::Int64(a), StatValue::Int64(b)) => a < b,
        (StatValue::Float(a), StatValue::Float(b)) => a < b,
        (StatValue::Double(a), StatValue::Double(b)) => a < b,
        (StatValue::Bytes(a), StatValue::Bytes(b)) => a < b,
        _ => false,
    }
}

/// Per leaf column with a field id, its statistics summed over the row groups. A minimum or
/// maximum (or null count) missing from any row group that has values is unknown for the file.
pub(crate) fn column_stats(meta: &ParquetMetaData) -> Vec<ColumnStats> {
    let schema = meta.file_metadata().schema_descr();
    let mut out: Vec<ColumnStats> = Vec::with_capacity(schema.num_columns());
    for (i, col) in schema.columns().iter().enumerate() {
        let info = col.self_type().get_basic_info();
        if !info.has_id() {
            continue;
        }
        let mut stats = ColumnStats {
            field_id: info.id(),
            compressed_size: 0,
            values: 0,
            nulls: Some(0),
            min: None,
            max: None,
        };
        let mut bounds_known = true;
        for rg in meta.row_groups() {
            let c = rg.column(i);
            stats.compressed_size += c.compressed_size().max(0) as u64;
            stats.values += c.num_values().max(0) as u64;
            let Some(s) = c.statistics() else {
                stats.nulls = None;
                bounds_known = false;
                continue;
            };
            stats.nulls = match (stats.nulls, s.null_count_opt()) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            let (min, max) = stat_values(s);
            let all_null = s.null_count_opt() == Some(c.num_values().max(0) as u64);
            if all_null {
                continue;
            }
            match (min, max) {
                (Some(lo), Some(hi)) => {
                    if stats.min.as_ref().is_none_or(|m| less(&lo, m)) {
                        stats.min = Some(lo);
                    }
                    if stats.max.as_ref().is_none_or(|m| less(m, &hi)) {
                        stats.max = Some(hi);
                    }
                }
                _ => bounds_known = false,
            }
        }
        if !bounds_known {
            stats.min = None;
            stats.max = None;
        }
        out.push(stats);
    }
    out
}
