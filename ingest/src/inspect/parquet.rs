//! Printing a Parquet file, or a directory of them as one dataset: the columns, the row count,
//! each file's Kafka offsets (the `kingest.offsets` footer the Parquet sink writes, see
//! `sink/meta.rs`) and the first rows as JSON lines. So a user of `kingest run` can look at
//! what it wrote without another tool (the quickstart uses it), and see which offsets each
//! file holds.
//!
//! ```text
//! data: 3 Parquet files, 100000 rows
//! columns:
//!   ts timestamp(ms, UTC)
//!   uuid string
//! files:
//!   events-0-00000000000000000000-6f1c….parquet: 33412 rows, events-0 offsets [0, 33412), group "quickstart"
//!   ...
//! first 5 of 100000 rows:
//! {"ts":"2022-02-11T13:34:45.807Z","uuid":"93633f7c01d54453a144"}
//! ```
//!
//! A directory is read as Parquet readers read a dataset: every `*.parquet` file below it,
//! recursively, in path order, leaving out names that start with `.` (files being written) or
//! `_` (`_kingest_staging/`, `_kingest_reset/`). The rows are printed by arrow-json's writer,
//! as the stdout sink prints them (timestamps in RFC 3339, binary in hex, explicit nulls).

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_json::writer::{LineDelimited, WriterBuilder};
use arrow_schema::{ArrowError, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;

use crate::schema::format_type;
use crate::sink::meta::FileMeta;
use crate::sink::SinkError;

/// Why a Parquet file or directory could not be printed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not readable Parquet.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The Parquet reader's error.
        source: ParquetError,
    },
    /// Rows could not be turned into JSON.
    #[error("{path}: {source}")]
    Arrow {
        /// The file.
        path: String,
        /// The Arrow error.
        source: ArrowError,
    },
    /// A file's `kingest.offsets` footer is malformed.
    #[error(transparent)]
    Footer(Box<SinkError>),
    /// A directory holds no Parquet file.
    #[error("{path}: no Parquet files")]
    NoFiles {
        /// The directory.
        path: String,
    },
}

/// Whether `path` is a Parquet file (by its first four bytes, `PAR1`) or a directory, rather
/// than a raw record set.
pub fn is_parquet(path: &Path) -> bool {
    if path.is_dir() {
        return true;
    }
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| &magic == b"PAR1")
}

/// The dataset's files under `dir`, sorted (see the [module docs](self)).
fn dataset_files(dir: &Path) -> Result<Vec<PathBuf>, InspectError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| InspectError::Io {
            path: d.display().to_string(),
            source,
        })?;
        for e in entries {
            let e = e.map_err(|source| InspectError::Io {
                path: d.display().to_string(),
                source,
            })?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(['.', '_']) {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else if name.ends_with(".parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One file, opened.
struct Opened {
    /// As printed: relative to the directory inspected, or the path given.
    name: String,
    reader: ParquetRecordBatchReaderBuilder<File>,
    schema: SchemaRef,
    rows: i64,
    offsets: Option<FileMeta>,
}

fn open(path: &Path, name: String) -> Result<Opened, InspectError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| InspectError::Io {
        path: shown.clone(),
        source,
    })?;
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| InspectError::Parquet {
            path: shown.clone(),
            source,
        })?;
    let meta = reader.metadata().clone();
    let offsets =
        FileMeta::from_footer(&shown, &meta).map_err(|e| InspectError::Footer(Box::new(e)))?;
    Ok(Opened {
        name,
        schema: reader.schema().clone(),
        rows: meta.file_metadata().num_rows(),
        offsets,
        reader,
    })
}

/// Renders the Parquet file or directory at `path`: a summary line, the columns (of the first
/// file), one line per file with its rows and offsets, and the first `rows` rows as JSON lines.
pub fn render(path: &Path, rows: usize) -> Result<String, InspectError> {
    let mut files = Vec::new();
    if path.is_dir() {
        for f in dataset_files(path)? {
            let name = f.strip_prefix(path).unwrap_or(&f).display().to_string();
            files.push(open(&f, name)?);
        }
        if files.is_empty() {
            return Err(InspectError::NoFiles {
                path: path.display().to_string(),
            });
        }
    } else {
        files.push(open(path, path.display().to_string())?);
    }
    let total: i64 = files.iter().map(|f| f.rows).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}, {}",
        path.display(),
        count(files.len() as i64, "Parquet file"),
        count(total, "row")
    );
    let schema = files[0].schema.clone();
    out.push_str("columns:\n");
    for f in schema.fields() {
        let not_null = if f.is_nullable() { "" } else { " not null" };
        let _ = writeln!(
            out,
            "  {} {}{not_null}",
            f.name(),
            format_type(f.data_type())
        );
    }
    out.push_str("files:\n");
    for f in &files {
        let _ = write!(out, "  {}: {}", f.name, count(f.rows, "row"));
        match &f.offsets {
            Some(meta) => {
                for (partition, range) in meta.ranges() {
                    let _ = write!(out, ", {partition} offsets {range}");
                }
                let _ = write!(out, ", group {:?}", meta.group);
            }
            None => out.push_str(", no kingest.offsets footer"),
        }
        if f.schema.fields() != schema.fields() {
            out.push_str(", other columns");
        }
        out.push('\n');
    }
    let shown = rows.min(usize::try_from(total).unwrap_or(usize::MAX));
    if shown > 0 {
        let _ = writeln!(out, "first {shown} of {}:", count(total, "row"));
        write_rows(&mut out, files, shown)?;
    }
    Ok(out)
}

/// `1 row`, `2 rows`.
fn count(n: i64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The first `limit` rows of `files`, in order, as JSON lines.
fn write_rows(out: &mut String, files: Vec<Opened>, limit: usize) -> Result<(), InspectError> {
    let mut left = limit;
    let mut buf = Vec::new();
    for f in files {
        if left == 0 {
            break;
        }
        let name = f.name;
        let reader = f
            .reader
            .with_batch_size(left.clamp(1, 8192))
            .with_limit(left)
            .build()
            .map_err(|source| InspectError::Parquet {
                path: name.clone(),
                source,
            })?;
        for batch in reader {
            let batch = batch.map_err(|source| InspectError::Arrow {
                path: name.clone(),
                source,
            })?;
            let mut w = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut buf);
            w.write(&batch)
                .and_then(|()| w.finish())
                .map_err(|source| InspectError::Arrow {
                    path: name.clone(),
                    source,
                })?;
            left = left.saturating_sub(batch.num_rows());
        }
    }
    out.push_str(&String::from_utf8_lossy(&buf));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    use super::*;
    use crate::sink::parquet::{ParquetSink, ParquetSinkConfig};
    use crate::sink::{OffsetRange, PartitionKey, Sink};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]))
    }

    fn batch(first: i64, names: &[Option<&str>]) -> RecordBatch {
        let n = names.len() as i64;
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(
                    TimestampMillisecondArray::from_iter_values(
                        (first..first + n).map(|i| 1_644_586_485_807 + i),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(names.to_vec())),
                Arc::new(Int64Array::from_iter_values(first..first + n)),
            ],
        )
        .unwrap()
    }

    fn name_of(path: &str, root: &Path) -> String {
        Path::new(path)
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string()
    }

    #[tokio::test]
    async fn prints_a_directory_the_sink_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = ParquetSinkConfig::new(root.to_str().unwrap(), "inspect-group");
        let mut sink = ParquetSink::open(config, schema()).await.unwrap();
        let (p0, p1) = (
            PartitionKey::new("events", 0),
            PartitionKey::new("events", 1),
        );
        let rows0 = [Some("a"), None, Some("c\"q")];
        sink.write(&p0, &batch(0, &rows0), OffsetRange::new(0, 3))
            .await
            .unwrap();
        sink.write(&p1, &batch(10, &[Some("x")]), OffsetRange::new(10, 12))
            .await
            .unwrap();
        let mut files = sink.close().await.unwrap();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(files.len(), 2);
        // What Parquet readers of a dataset leave out, and so does inspect.
        std::fs::create_dir(root.join("_kingest_staging")).unwrap();
        std::fs::copy(&files[0].path, root.join("_kingest_staging/x.parquet")).unwrap();
        std::fs::copy(&files[0].path, root.join(".y.parquet.tmp")).unwrap();

        let text = render(root, 3).unwrap();
        let (f0, f1) = (name_of(&files[0].path, root), name_of(&files[1].path, root));
        assert_eq!(
            text,
            format!(
                "{root}: 2 Parquet files, 4 rows\n\
                 columns:\n  ts timestamp(ms, UTC)\n  name string\n  n int64 not null\n\
                 files:\n\
                 \x20 {f0}: 3 rows, events-0 offsets [0, 3), group \"inspect-group\"\n\
                 \x20 {f1}: 1 row, events-1 offsets [10, 12), group \"inspect-group\"\n\
                 first 3 of 4 rows:\n\
                 {{\"ts\":\"2022-02-11T13:34:45.807Z\",\"name\":\"a\",\"n\":0}}\n\
                 {{\"ts\":\"2022-02-11T13:34:45.808Z\",\"name\":null,\"n\":1}}\n\
                 {{\"ts\":\"2022-02-11T13:34:45.809Z\",\"name\":\"c\\\"q\",\"n\":2}}\n",
                root = root.display()
            )
        );

        // One file, every row; and no rows at all.
        let one = render(Path::new(&files[1].path), 10).unwrap();
        assert_eq!(
            one,
            format!(
                "{p}: 1 Parquet file, 1 row\n\
                 columns:\n  ts timestamp(ms, UTC)\n  name string\n  n int64 not null\n\
                 files:\n\
                 \x20 {p}: 1 row, events-1 offsets [10, 12), group \"inspect-group\"\n\
                 first 1 of 1 row:\n\
                 {{\"ts\":\"2022-02-11T13:34:45.817Z\",\"name\":\"x\",\"n\":10}}\n",
                p = files[1].path
            )
        );
        assert!(!render(root, 0).unwrap().contains("rows:\n{"));
        assert!(is_parquet(root) && is_parquet(Path::new(&files[0].path)));
    }

    #[test]
    fn files_without_a_footer_and_empty_directories() {
        let dir = tempfile::tempdir().unwrap();
        let err = render(dir.path(), 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: no Parquet files", dir.path().display())
        );
        // A file another writer made: no kingest.offsets.
        let path = dir.path().join("plain.parquet");
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), schema(), None)
                .unwrap();
        w.write(&batch(0, &[Some("z")])).unwrap();
        w.close().unwrap();
        let text = render(dir.path(), 0).unwrap();
        assert!(
            text.ends_with("files:\n  plain.parquet: 1 row, no kingest.offsets footer\n"),
            "{text}"
        );
        let not = dir.path().join("records.bin");
        std::fs::write(&not, b"\0\0\0\0\0\0\0\0").unwrap();
        assert!(!is_parquet(&not));
    }
}
