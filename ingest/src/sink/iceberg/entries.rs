//! Manifest entries read back, and manifests rewritten around them: what compaction and
//! snapshot expiry need to know about a snapshot's files (which data files are live, their
//! partitions and sequence numbers) and how a replace snapshot marks its inputs deleted.
//!
//! Entries are kept as the Avro values their writer wrote (any engine's, format version 2),
//! and a rewritten manifest is written with the writer's own schema and metadata, so fields
//! this code does not know survive. Only `status`, `snapshot_id` and the two sequence numbers
//! change: the spec lets a null sequence number be inherited from the manifest list only by an
//! entry `ADDED` in that manifest's snapshot, so an entry carried into a new manifest, as
//! `EXISTING` or `DELETED`, gets its inherited values written out.

use std::collections::HashSet;

use apache_avro::types::Value as A;
use apache_avro::{Codec, DeflateSettings, Reader, Schema as AvroSchema, Writer};

use super::manifest::ManifestFile;

/// `status` of a manifest entry.
pub(crate) const EXISTING: i32 = 0;
#[cfg(test)]
pub(crate) const ADDED: i32 = 1;
pub(crate) const DELETED: i32 = 2;

/// One manifest entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub status: i32,
    /// The snapshot that added (or deleted) the file, inherited when null.
    pub snapshot_id: i64,
    /// The data sequence number, inherited when null.
    pub sequence_number: i64,
    pub file_sequence_number: i64,
    /// 0: data, 1: position deletes, 2: equality deletes.
    pub content: i32,
    pub path: String,
    pub rows: u64,
    pub size: u64,
    /// The compressed bytes of its column chunks (`column_sizes`), without the footer: what a
    /// rewrite carries into its output; the file size when not recorded.
    pub data_bytes: u64,
    /// The partition tuple as `name=value` pairs joined by `/` (for people, and as a
    /// grouping key together with the spec id).
    pub partition: String,
    raw: Vec<(String, A)>,
}

impl Entry {
    /// Whether the file is part of the snapshot (added or existing, not deleted).
    pub(crate) fn live(&self) -> bool {
        self.status != DELETED
    }
}

/// A manifest as read: its entries, and the schema and metadata to write it again.
#[derive(Debug, Clone)]
pub(crate) struct ManifestRead {
    pub entries: Vec<Entry>,
    schema: AvroSchema,
    metadata: Vec<(String, Vec<u8>)>,
}

fn unwrap(v: &A) -> &A {
    match v {
        A::Union(_, inner) => inner,
        other => other,
    }
}

fn long(v: Option<&A>) -> Option<i64> {
    match v.map(unwrap) {
        Some(A::Long(x)) => Some(*x),
        Some(A::Int(x)) => Some(i64::from(*x)),
        _ => None,
    }
}

fn field<'a>(fields: &'a [(String, A)], name: &str) -> Option<&'a A> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A partition value for people.
fn show(v: &A) -> String {
    match unwrap(v) {
        A::Null => "null".into(),
        A::Boolean(b) => b.to_string(),
        A::Int(x) | A::Date(x) => x.to_string(),
        A::Long(x)
        | A::TimestampMicros(x)
        | A::TimestampMillis(x)
        | A::TimeMicros(x)
        | A::LocalTimestampMicros(x)
        | A::LocalTimestampMillis(x) => x.to_string(),
        A::String(s) => s.clone(),
        A::Bytes(b) | A::Fixed(_, b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        other => format!("{other:?}"),
    }
}

/// Reads a manifest; null sequence numbers and snapshot ids are resolved from `m`, the
/// manifest list's entry for it.
pub(crate) fn read_manifest(bytes: &[u8], m: &ManifestFile) -> Result<ManifestRead, String> {
    let reader = Reader::new(bytes).map_err(|e| e.to_string())?;
    let schema = reader.writer_schema().clone();
    let metadata = reader
        .user_metadata()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let list_seq = m.sequence_number.unwrap_or(0);
    let mut entries = Vec::new();
    for v in reader {
        let A::Record(raw) = v.map_err(|e| e.to_string())? else {
            return Err("a manifest entry is not a record".into());
        };
        let status = long(field(&raw, "status")).ok_or("a manifest entry without status")? as i32;
        let Some(A::Record(df)) = field(&raw, "data_file").map(unwrap) else {
            return Err("a manifest entry without data_file".into());
        };
        let path = match field(df, "file_path").map(unwrap) {
            Some(A::String(s)) => s.clone(),
            _ => return Err("a data file without file_path".into()),
        };
        let partition = match field(df, "partition").map(unwrap) {
            Some(A::Record(ps)) => ps
                .iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect::<Vec<_>>()
                .join("/"),
            _ => String::new(),
        };
        let sequence_number = long(field(&raw, "sequence_number")).unwrap_or(list_seq);
        let size = long(field(df, "file_size_in_bytes")).unwrap_or(0).max(0) as u64;
        let data_bytes = match field(df, "column_sizes").map(unwrap) {
            Some(A::Array(kvs)) if !kvs.is_empty() => kvs
                .iter()
                .filter_map(|kv| match kv {
                    A::Record(f) => long(field(f, "value")),
                    _ => None,
                })
                .map(|v| v.max(0) as u64)
                .sum::<u64>()
                .min(size),
            _ => size,
        };
        entries.push(Entry {
            status,
            snapshot_id: long(field(&raw, "snapshot_id")).unwrap_or(m.added_snapshot_id),
            sequence_number,
            file_sequence_number: long(field(&raw, "file_sequence_number")).unwrap_or(list_seq),
            content: long(field(df, "content")).unwrap_or(0) as i32,
            rows: long(field(df, "record_count")).unwrap_or(0).max(0) as u64,
            size,
            data_bytes,
            path,
            partition,
            raw,
        });
    }
    Ok(ManifestRead {
        entries,
        schema,
        metadata,
    })
}

impl ManifestRead {
    /// Whether entries of `other` can go into one manifest with these (same Avro schema).
    pub(crate) fn same_schema(&self, other: &ManifestRead) -> bool {
        self.schema.canonical_form() == other.schema.canonical_form()
    }
}

/// The manifests `parts` (each as read, and as listed), of one schema and partition spec,
/// rewritten into one for snapshot `snapshot_id`: the live entries whose path is in `removed`
/// become `DELETED` by that snapshot, the other live entries `EXISTING`; entries deleted by
/// earlier snapshots are dropped. Returns the bytes and the manifest list entry (less path
/// and length; its sequence number is the new snapshot's). Merging keeps the number of
/// manifests from growing with every compaction; the merged manifest's partition summaries
/// are left out when there are several (readers then do not prune it by partition, which the
/// spec allows: the field is optional).
pub(crate) fn rewrite_manifests(
    parts: &[(&ManifestRead, &ManifestFile)],
    removed: &HashSet<String>,
    snapshot_id: i64,
) -> Result<(Vec<u8>, ManifestFile), String> {
    let [(read, m), ..] = parts else {
        return Err("no manifest to rewrite".into());
    };
    let mut w = Writer::with_codec(
        &read.schema,
        Vec::new(),
        Codec::Deflate(DeflateSettings::default()),
    );
    for (k, v) in &read.metadata {
        if !k.starts_with("avro.") {
            w.add_user_metadata(k.clone(), v)
                .map_err(|e| e.to_string())?;
        }
    }
    let mut out = ManifestFile {
        path: String::new(),
        length: 0,
        sequence_number: None,
        min_sequence_number: None,
        added_snapshot_id: snapshot_id,
        added_files: 0,
        existing_files: 0,
        deleted_files: 0,
        added_rows: 0,
        existing_rows: 0,
        deleted_rows: 0,
        partitions: if parts.len() == 1 {
            m.partitions.clone()
        } else {
            None
        },
        ..(*m).clone()
    };
    let mut min_seq: Option<i64> = None;
    let live = parts
        .iter()
        .flat_map(|(r, _)| r.entries.iter())
        .filter(|e| e.live());
    for e in live {
        let gone = removed.contains(&e.path);
        let (status, snap) = if gone {
            out.deleted_files += 1;
            out.deleted_rows += e.rows as i64;
            (DELETED, snapshot_id)
        } else {
            out.existing_files += 1;
            out.existing_rows += e.rows as i64;
            min_seq = Some(min_seq.map_or(e.sequence_number, |s| s.min(e.sequence_number)));
            (EXISTING, e.snapshot_id)
        };
        let fields = e
            .raw
            .iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "status" => A::Int(status),
                    "snapshot_id" => A::Union(1, Box::new(A::Long(snap))),
                    "sequence_number" => A::Union(1, Box::new(A::Long(e.sequence_number))),
                    "file_sequence_number" => {
                        A::Union(1, Box::new(A::Long(e.file_sequence_number)))
                    }
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        w.append(A::Record(fields)).map_err(|e| e.to_string())?;
    }
    out.min_sequence_number = min_seq;
    Ok((w.into_inner().map_err(|e| e.to_string())?, out))
}

#[cfg(test)]
mod tests {
    use super::super::manifest::{write_manifest, DataFile};
    use super::super::partition::Spec;
    use super::super::types::IceSchema;
    use super::*;
    use crate::sink::datafile::WrittenFile;

    fn file(path: &str, rows: u64) -> DataFile {
        DataFile::new(
            &WrittenFile {
                location: path.into(),
                size: rows * 10,
                rows,
                columns: Vec::new(),
            },
            super::super::partition::PartKey(Vec::new()),
            &IceSchema {
                schema_id: 0,
                fields: Vec::new(),
            },
        )
    }

    #[test]
    fn iceberg_rewritten_manifest_marks_inputs_deleted_with_their_sequence_numbers() {
        let schema = IceSchema {
            schema_id: 0,
            fields: Vec::new(),
        };
        let files = [
            file("s3://b/t/data/a.parquet", 3),
            file("s3://b/t/data/b.parquet", 4),
        ];
        let (bytes, mut m) = write_manifest(&files, &Spec::unpartitioned(), &schema, 11).unwrap();
        // As a manifest list lists it once its snapshot (sequence number 5) committed.
        m.sequence_number = Some(5);
        m.min_sequence_number = Some(5);
        let read = read_manifest(&bytes, &m).unwrap();
        assert_eq!(read.entries.len(), 2);
        assert!(read
            .entries
            .iter()
            .all(|e| e.status == ADDED && e.sequence_number == 5 && e.snapshot_id == 11));
        let removed = HashSet::from(["s3://b/t/data/a.parquet".to_owned()]);
        let (again, listed) = rewrite_manifests(&[(&read, &m)], &removed, 99).unwrap();
        assert_eq!((listed.existing_files, listed.deleted_files), (1, 1));
        assert_eq!((listed.existing_rows, listed.deleted_rows), (4, 3));
        assert_eq!(listed.added_snapshot_id, 99);
        assert_eq!(listed.min_sequence_number, Some(5));
        // Read under a later sequence number: the values written out are the original ones.
        let mut later = listed.clone();
        later.sequence_number = Some(8);
        let back = read_manifest(&again, &later).unwrap();
        let a = back
            .entries
            .iter()
            .find(|e| e.path.ends_with("a.parquet"))
            .unwrap();
        let b = back
            .entries
            .iter()
            .find(|e| e.path.ends_with("b.parquet"))
            .unwrap();
        assert_eq!(
            (a.status, a.snapshot_id, a.sequence_number),
            (DELETED, 99, 5)
        );
        assert_eq!(
            (b.status, b.snapshot_id, b.sequence_number),
            (EXISTING, 11, 5)
        );
        assert_eq!(b.file_sequence_number, 5);
        // Rewritten again, the deleted entry is dropped.
        let (third, listed) = rewrite_manifests(&[(&back, &later)], &HashSet::new(), 100).unwrap();
        assert_eq!((listed.existing_files, listed.deleted_files), (1, 0));
        assert_eq!(read_manifest(&third, &listed).unwrap().entries.len(), 1);
        // Two manifests merged into one: their live entries (a and b, and b again: these
        // two are versions of one manifest), the summaries dropped.
        assert!(read.same_schema(&back));
        let (both, listed) =
            rewrite_manifests(&[(&read, &m), (&back, &later)], &removed, 101).unwrap();
        assert_eq!((listed.existing_files, listed.deleted_files), (2, 1));
        assert_eq!(listed.partitions, None);
        assert_eq!(read_manifest(&both, &listed).unwrap().entries.len(), 3);
    }
}
