//! Manifests and manifest lists (Avro, format version 2): the files a snapshot is made of.
//!
//! A fast append writes one manifest listing the flush's new data files (status `ADDED`, the
//! snapshot id set, sequence numbers left null so they are inherited from the manifest list
//! entry, which is what lets a retried commit reuse the manifest under a new sequence number),
//! and a manifest list holding that manifest followed by every manifest of the parent
//! snapshot, copied as they are. Each data file carries Iceberg's column metrics: sizes, value
//! and null counts, and lower/upper bounds in the single-value binary serialization (strings
//! and binary truncated to 16, as Iceberg's default `truncate(16)` metrics mode does).
//!
//! Avro schemas carry Iceberg's field ids (`field-id`, `element-id`), which readers resolve
//! fields by.

use std::collections::HashMap;

use apache_avro::types::Value as A;
use apache_avro::{Codec, DeflateSettings, Reader, Schema as AvroSchema, Writer};
use serde_json::{json, Value as Json};

use super::partition::{OwnedValue, PartKey, Spec};
use super::types::{IceSchema, IceType};
use crate::sink::datafile::{ColumnStats, StatValue, WrittenFile};

/// Truncation length of string and binary bounds (Iceberg's default metrics mode).
const BOUND_LEN: usize = 16;

/// A data file as a manifest records it.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    pub location: String,
    pub size: u64,
    pub rows: u64,
    pub partition: PartKey,
    column_sizes: Vec<(i32, i64)>,
    value_counts: Vec<(i32, i64)>,
    null_counts: Vec<(i32, i64)>,
    lower: Vec<(i32, Vec<u8>)>,
    upper: Vec<(i32, Vec<u8>)>,
}

impl DataFile {
    /// The manifest entry of a finished file of `partition`, its metrics for the fields of
    /// `schema`.
    pub(crate) fn new(file: &WrittenFile, partition: PartKey, schema: &IceSchema) -> DataFile {
        let leaves = schema.leaves();
        let mut d = DataFile {
            location: file.location.clone(),
            size: file.size,
            rows: file.rows,
            partition,
            column_sizes: Vec::new(),
            value_counts: Vec::new(),
            null_counts: Vec::new(),
            lower: Vec::new(),
            upper: Vec::new(),
        };
        for c in &file.columns {
            let Some((ty, repeated)) = leaves.get(&c.field_id) else {
                continue;
            };
            d.column_sizes.push((c.field_id, c.compressed_size as i64));
            d.value_counts.push((c.field_id, c.values as i64));
            if let Some(n) = c.nulls {
                d.null_counts.push((c.field_id, n as i64));
            }
            if *repeated {
                continue;
            }
            if let Some((lo, hi)) = bounds(c, ty) {
                if let Some(lo) = lo {
                    d.lower.push((c.field_id, lo));
                }
                if let Some(hi) = hi {
                    d.upper.push((c.field_id, hi));
                }
            }
        }
        d
    }
}

type Bounds = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A leaf's bounds in Iceberg's single-value serialization.
fn bounds(c: &ColumnStats, ty: &IceType) -> Option<Bounds> {
    let IceType::Primitive(name) = ty else {
        return None;
    };
    let (min, max) = (c.min.as_ref()?, c.max.as_ref()?);
    let one = |v: &StatValue| -> Option<Vec<u8>> {
        Some(match (name.as_str(), v) {
            ("boolean", StatValue::Bool(b)) => vec![u8::from(*b)],
            ("int" | "date", StatValue::Int32(x)) => x.to_le_bytes().to_vec(),
            ("long" | "timestamp" | "timestamptz" | "time", StatValue::Int64(x)) => {
                x.to_le_bytes().to_vec()
            }
            ("float", StatValue::Float(x)) if !x.is_nan() => x.to_le_bytes().to_vec(),
            ("double", StatValue::Double(x)) if !x.is_nan() => x.to_le_bytes().to_vec(),
            (d, StatValue::Int32(x)) if d.starts_with("decimal(") => {
                super::transform::decimal_bytes(i128::from(*x))
            }
            (d, StatValue::Int64(x)) if d.starts_with("decimal(") => {
                super::transform::decimal_bytes(i128::from(*x))
            }
            (d, StatValue::Bytes(b)) if d.starts_with("decimal(") && !b.is_empty() => {
                let negative = b[0] & 0x80 != 0;
                if b.len() > 16 {
                    return None;
                }
                let mut buf = [if negative { 0xff } else { 0 }; 16];
                buf[16 - b.len()..].copy_from_slice(b);
                super::transform::decimal_bytes(i128::from_be_bytes(buf))
            }
            _ => return None,
        })
    };
    match (name.as_str(), min, max) {
        ("string", StatValue::Bytes(lo), StatValue::Bytes(hi)) => {
            let lo = std::str::from_utf8(lo).ok()?;
            let hi = std::str::from_utf8(hi).ok()?;
            Some((
                Some(truncate_chars(lo).as_bytes().to_vec()),
                upper_str(hi).map(String::into_bytes),
            ))
        }
        ("binary", StatValue::Bytes(lo), StatValue::Bytes(hi)) => {
            Some((Some(lo[..lo.len().min(BOUND_LEN)].to_vec()), upper_bin(hi)))
        }
        _ => Some((one(min), one(max))),
    }
}

fn truncate_chars(s: &str) -> &str {
    match s.char_indices().nth(BOUND_LEN) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An upper bound of `s` at most 16 characters long: `s` itself, or its prefix with the last
/// character that can be incremented, incremented.
fn upper_str(s: &str) -> Option<String> {
    let prefix = truncate_chars(s);
    if prefix.len() == s.len() {
        return Some(s.to_owned());
    }
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        // Skip the surrogate range, which is not a char.
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn upper_bin(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() <= BOUND_LEN {
        return Some(b.to_vec());
    }
    let mut v = b[..BOUND_LEN].to_vec();
    while let Some(last) = v.pop() {
        if last < 0xff {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

fn kv_array(id: i32, key_id: i32, value_id: i32, value: &str) -> Json {
    json!({
        "type": "array",
        "logicalType": "map",
        "items": {
            "type": "record",
            "name": format!("k{key_id}_v{value_id}"),
            "fields": [
                {"name": "key", "type": "int", "field-id": key_id},
                {"name": "value", "type": value, "field-id": value_id},
            ],
        },
        "element-id": id,
    })
}

fn optional(name: &str, ty: Json, id: i32) -> Json {
    json!({"name": name, "type": ["null", ty], "default": null, "field-id": id})
}

/// The manifest entry schema for a partition spec.
fn manifest_schema(spec: &Spec) -> Json {
    let partition_fields: Vec<Json> = spec
        .fields
        .iter()
        .map(|f| optional(&f.name, f.kind.avro(), f.field_id))
        .collect();
    json!({
        "type": "record",
        "name": "manifest_entry",
        "fields": [
            {"name": "status", "type": "int", "field-id": 0},
            optional("snapshot_id", json!("long"), 1),
            optional("sequence_number", json!("long"), 3),
            optional("file_sequence_number", json!("long"), 4),
            {"name": "data_file", "field-id": 2, "type": {
                "type": "record",
                "name": "r2",
                "fields": [
                    {"name": "content", "type": "int", "field-id": 134},
                    {"name": "file_path", "type": "string", "field-id": 100},
                    {"name": "file_format", "type": "string", "field-id": 101},
                    {"name": "partition", "field-id": 102, "type": {
                        "type": "record", "name": "r102", "fields": partition_fields,
                    }},
                    {"name": "record_count", "type": "long", "field-id": 103},
                    {"name": "file_size_in_bytes", "type": "long", "field-id": 104},
                    optional("column_sizes", kv_array(108, 117, 118, "long"), 108),
                    optional("value_counts", kv_array(109, 119, 120, "long"), 109),
                    optional("null_value_counts", kv_array(110, 121, 122, "long"), 110),
                    optional("nan_value_counts", kv_array(137, 138, 139, "long"), 137),
                    optional("lower_bounds", kv_array(125, 126, 127, "bytes"), 125),
                    optional("upper_bounds", kv_array(128, 129, 130, "bytes"), 128),
                    optional("key_metadata", json!("bytes"), 131),
                    optional("split_offsets",
                        json!({"type": "array", "items": "long", "element-id": 133}), 132),
                    optional("equality_ids",
                        json!({"type": "array", "items": "int", "element-id": 136}), 135),
                    optional("sort_order_id", json!("int"), 140),
                ],
            }},
        ],
    })
}

fn manifest_list_schema() -> Json {
    json!({
        "type": "record",
        "name": "manifest_file",
        "fields": [
            {"name": "manifest_path", "type": "string", "field-id": 500},
            {"name": "manifest_length", "type": "long", "field-id": 501},
            {"name": "partition_spec_id", "type": "int", "field-id": 502},
            {"name": "content", "type": "int", "field-id": 517},
            {"name": "sequence_number", "type": "long", "field-id": 515},
            {"name": "min_sequence_number", "type": "long", "field-id": 516},
            {"name": "added_snapshot_id", "type": "long", "field-id": 503},
            {"name": "added_files_count", "type": "int", "field-id": 504},
            {"name": "existing_files_count", "type": "int", "field-id": 505},
            {"name": "deleted_files_count", "type": "int", "field-id": 506},
            {"name": "added_rows_count", "type": "long", "field-id": 512},
            {"name": "existing_rows_count", "type": "long", "field-id": 513},
            {"name": "deleted_rows_count", "type": "long", "field-id": 514},
            optional("partitions", json!({
                "type": "array",
                "element-id": 508,
                "items": {
                    "type": "record",
                    "name": "r508",
                    "fields": [
                        {"name": "contains_null", "type": "boolean", "field-id": 509},
                        optional("contains_nan", json!("boolean"), 518),
                        optional("lower_bound", json!("bytes"), 510),
                        optional("upper_bound", json!("bytes"), 511),
                    ],
                },
            }), 507),
            optional("key_metadata", json!("bytes"), 519),
        ],
    })
}

fn some(v: A) -> A {
    A::Union(1, Box::new(v))
}

fn none() -> A {
    A::Union(0, Box::new(A::Null))
}

fn kv_long(pairs: &[(i32, i64)]) -> A {
    some(A::Array(
        pairs
            .iter()
            .map(|(k, v)| {
                A::Record(vec![
                    ("key".into(), A::Int(*k)),
                    ("value".into(), A::Long(*v)),
                ])
            })
            .collect(),
    ))
}

fn kv_bytes(pairs: &[(i32, Vec<u8>)]) -> A {
    some(A::Array(
        pairs
            .iter()
            .map(|(k, v)| {
                A::Record(vec![
                    ("key".into(), A::Int(*k)),
                    ("value".into(), A::Bytes(v.clone())),
                ])
            })
            .collect(),
    ))
}

fn avro_err(e: apache_avro::Error) -> String {
    e.to_string()
}

fn parse_schema(j: &Json) -> Result<AvroSchema, String> {
    AvroSchema::parse(j).map_err(avro_err)
}

/// A written manifest, as a manifest list records it.
#[derive(Debug, Clone)]
pub(crate) struct ManifestFile {
    pub path: String,
    pub length: i64,
    pub spec_id: i32,
    /// 0: data, 1: deletes.
    pub content: i32,
    /// `None` for the manifest of the snapshot being committed (its sequence number is the
    /// snapshot's).
    pub sequence_number: Option<i64>,
    pub min_sequence_number: Option<i64>,
    pub added_snapshot_id: i64,
    pub added_files: i32,
    pub existing_files: i32,
    pub deleted_files: i32,
    pub added_rows: i64,
    pub existing_rows: i64,
    pub deleted_rows: i64,
    /// Per partition field: contains null, contains NaN, lower, upper.
    pub partitions: Option<Vec<FieldSummary>>,
    pub key_metadata: Option<Vec<u8>>,
}

/// A manifest's summary of one partition field's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldSummary {
    pub contains_null: bool,
    pub contains_nan: Option<bool>,
    pub lower: Option<Vec<u8>>,
    pub upper: Option<Vec<u8>>,
}

/// Encodes the manifest of `files`, added by `snapshot_id`, and its manifest list entry (less
/// its path and length).
pub(crate) fn write_manifest(
    files: &[DataFile],
    spec: &Spec,
    schema: &IceSchema,
    snapshot_id: i64,
) -> Result<(Vec<u8>, ManifestFile), String> {
    let avro = parse_schema(&manifest_schema(spec))?;
    let mut w = Writer::with_codec(
        &avro,
        Vec::new(),
        Codec::Deflate(DeflateSettings::default()),
    );
    let meta = [
        ("schema", schema.to_json().to_string()),
        ("schema-id", schema.schema_id.to_string()),
        ("partition-spec", spec.fields_json().to_string()),
        ("partition-spec-id", spec.spec_id.to_string()),
        ("format-version", "2".to_owned()),
        ("content", "data".to_owned()),
    ];
    for (k, v) in meta {
        w.add_user_metadata(k.to_owned(), v).map_err(avro_err)?;
    }
    for f in files {
        let partition = A::Record(
            spec.fields
                .iter()
                .zip(&f.partition.0)
                .map(|(pf, v)| (pf.name.clone(), v.to_avro(pf.kind)))
                .collect(),
        );
        let data_file = A::Record(vec![
            ("content".into(), A::Int(0)),
            ("file_path".into(), A::String(f.location.clone())),
            ("file_format".into(), A::String("PARQUET".into())),
            ("partition".into(), partition),
            ("record_count".into(), A::Long(f.rows as i64)),
            ("file_size_in_bytes".into(), A::Long(f.size as i64)),
            ("column_sizes".into(), kv_long(&f.column_sizes)),
            ("value_counts".into(), kv_long(&f.value_counts)),
            ("null_value_counts".into(), kv_long(&f.null_counts)),
            ("nan_value_counts".into(), none()),
            ("lower_bounds".into(), kv_bytes(&f.lower)),
            ("upper_bounds".into(), kv_bytes(&f.upper)),
            ("key_metadata".into(), none()),
            ("split_offsets".into(), none()),
            ("equality_ids".into(), none()),
            ("sort_order_id".into(), none()),
        ]);
        let entry = A::Record(vec![
            ("status".into(), A::Int(1)),
            ("snapshot_id".into(), some(A::Long(snapshot_id))),
            ("sequence_number".into(), none()),
            ("file_sequence_number".into(), none()),
            ("data_file".into(), data_file),
        ]);
        w.append(entry).map_err(avro_err)?;
    }
    let bytes = w.into_inner().map_err(avro_err)?;
    let summaries = summarize(files, spec);
    Ok((
        bytes,
        ManifestFile {
            path: String::new(),
            length: 0,
            spec_id: spec.spec_id,
            content: 0,
            sequence_number: None,
            min_sequence_number: None,
            added_snapshot_id: snapshot_id,
            added_files: files.len() as i32,
            existing_files: 0,
            deleted_files: 0,
            added_rows: files.iter().map(|f| f.rows as i64).sum(),
            existing_rows: 0,
            deleted_rows: 0,
            partitions: Some(summaries),
            key_metadata: None,
        },
    ))
}

fn summarize(files: &[DataFile], spec: &Spec) -> Vec<FieldSummary> {
    (0..spec.fields.len())
        .map(|i| {
            let vals: Vec<&OwnedValue> =
                files.iter().filter_map(|f| f.partition.0.get(i)).collect();
            let non_null = vals.iter().filter(|v| ***v != OwnedValue::Null);
            FieldSummary {
                contains_null: vals.iter().any(|v| **v == OwnedValue::Null),
                contains_nan: None,
                lower: non_null.clone().min().and_then(|v| v.to_bytes()),
                upper: non_null.max().and_then(|v| v.to_bytes()),
            }
        })
        .collect()
}

/// Encodes a manifest list for snapshot `snapshot_id` (sequence number `seq`): the new
/// snapshot's manifests take `seq`.
pub(crate) fn write_manifest_list(
    manifests: &[ManifestFile],
    snapshot_id: i64,
    parent: Option<i64>,
    seq: i64,
) -> Result<Vec<u8>, String> {
    let avro = parse_schema(&manifest_list_schema())?;
    let mut w = Writer::with_codec(
        &avro,
        Vec::new(),
        Codec::Deflate(DeflateSettings::default()),
    );
    w.add_user_metadata("snapshot-id".into(), snapshot_id.to_string())
        .map_err(avro_err)?;
    w.add_user_metadata(
        "parent-snapshot-id".into(),
        parent.map_or_else(|| "null".to_owned(), |p| p.to_string()),
    )
    .map_err(avro_err)?;
    w.add_user_metadata("sequence-number".into(), seq.to_string())
        .map_err(avro_err)?;
    w.add_user_metadata("format-version".into(), "2")
        .map_err(avro_err)?;
    for m in manifests {
        let partitions = match &m.partitions {
            None => none(),
            Some(ps) => some(A::Array(
                ps.iter()
                    .map(|p| {
                        A::Record(vec![
                            ("contains_null".into(), A::Boolean(p.contains_null)),
                            (
                                "contains_nan".into(),
                                p.contains_nan.map_or_else(none, |b| some(A::Boolean(b))),
                            ),
                            (
                                "lower_bound".into(),
                                p.lower.clone().map_or_else(none, |b| some(A::Bytes(b))),
                            ),
                            (
                                "upper_bound".into(),
                                p.upper.clone().map_or_else(none, |b| some(A::Bytes(b))),
                            ),
                        ])
                    })
                    .collect(),
            )),
        };
        let seq_of = m.sequence_number.unwrap_or(seq);
        w.append(A::Record(vec![
            ("manifest_path".into(), A::String(m.path.clone())),
            ("manifest_length".into(), A::Long(m.length)),
            ("partition_spec_id".into(), A::Int(m.spec_id)),
            ("content".into(), A::Int(m.content)),
            ("sequence_number".into(), A::Long(seq_of)),
            (
                "min_sequence_number".into(),
                A::Long(m.min_sequence_number.unwrap_or(seq_of)),
            ),
            ("added_snapshot_id".into(), A::Long(m.added_snapshot_id)),
            ("added_files_count".into(), A::Int(m.added_files)),
            ("existing_files_count".into(), A::Int(m.existing_files)),
            ("deleted_files_count".into(), A::Int(m.deleted_files)),
            ("added_rows_count".into(), A::Long(m.added_rows)),
            ("existing_rows_count".into(), A::Long(m.existing_rows)),
            ("deleted_rows_count".into(), A::Long(m.deleted_rows)),
            ("partitions".into(), partitions),
            (
                "key_metadata".into(),
                m.key_metadata
                    .clone()
                    .map_or_else(none, |b| some(A::Bytes(b))),
            ),
        ]))
        .map_err(avro_err)?;
    }
    w.into_inner().map_err(avro_err)
}

/// Reads a manifest list (ours or any engine's, format version 1 or 2).
pub(crate) fn read_manifest_list(bytes: &[u8]) -> Result<Vec<ManifestFile>, String> {
    let reader = Reader::new(bytes).map_err(avro_err)?;
    let mut out = Vec::new();
    for v in reader {
        let A::Record(fields) = v.map_err(avro_err)? else {
            return Err("a manifest list entry is not a record".into());
        };
        let f: HashMap<String, A> = fields.into_iter().collect();
        let long = |k: &str| -> Option<i64> {
            match unwrap_union(f.get(k)?) {
                A::Long(x) => Some(*x),
                A::Int(x) => Some(i64::from(*x)),
                _ => None,
            }
        };
        let int = |ks: &[&str]| -> i32 { ks.iter().find_map(|k| long(k)).map_or(0, |x| x as i32) };
        let rows = |ks: &[&str]| ks.iter().find_map(|k| long(k)).unwrap_or(0);
        let path = match f.get("manifest_path").map(unwrap_union) {
            Some(A::String(s)) => s.clone(),
            _ => return Err("a manifest list entry without manifest_path".into()),
        };
        let partitions = match f.get("partitions").map(unwrap_union) {
            Some(A::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| {
                        let A::Record(fs) = item else {
                            return FieldSummary {
                                contains_null: true,
                                contains_nan: None,
                                lower: None,
                                upper: None,
                            };
                        };
                        let m: HashMap<&str, &A> = fs
                            .iter()
                            .map(|(k, v)| (k.as_str(), unwrap_union(v)))
                            .collect();
                        let bytes = |k: &str| match m.get(k) {
                            Some(A::Bytes(b)) => Some(b.clone()),
                            _ => None,
                        };
                        let flag = |k: &str| match m.get(k) {
                            Some(A::Boolean(b)) => Some(*b),
                            _ => None,
                        };
                        FieldSummary {
                            contains_null: flag("contains_null").unwrap_or(true),
                            contains_nan: flag("contains_nan"),
                            lower: bytes("lower_bound"),
                            upper: bytes("upper_bound"),
                        }
                    })
                    .collect(),
            ),
            _ => None,
        };
        let key_metadata = match f.get("key_metadata").map(unwrap_union) {
            Some(A::Bytes(b)) => Some(b.clone()),
            _ => None,
        };
        out.push(ManifestFile {
            path,
            length: long("manifest_length").unwrap_or(0),
            spec_id: int(&["partition_spec_id"]),
            content: int(&["content"]),
            // Format version 1 lists have no sequence numbers: 0, as the spec says.
            sequence_number: Some(long("sequence_number").unwrap_or(0)),
            min_sequence_number: Some(long("min_sequence_number").unwrap_or(0)),
            added_snapshot_id: long("added_snapshot_id").unwrap_or(0),
            added_files: int(&["added_files_count", "added_data_files_count"]),
            existing_files: int(&["existing_files_count", "existing_data_files_count"]),
            deleted_files: int(&["deleted_files_count", "deleted_data_files_count"]),
            added_rows: rows(&["added_rows_count"]),
            existing_rows: rows(&["existing_rows_count"]),
            deleted_rows: rows(&["deleted_rows_count"]),
            partitions,
            key_metadata,
        });
    }
    Ok(out)
}

fn unwrap_union(v: &A) -> &A {
    match v {
        A::Union(_, inner) => inner,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_manifest_bounds_truncate_as_iceberg_does() {
        assert_eq!(upper_str("short").as_deref(), Some("short"));
        assert_eq!(
            upper_str("abcdefghijklmnopqrstuvwxyz").as_deref(),
            Some("abcdefghijklmnoq")
        );
        assert_eq!(
            truncate_chars("abcdefghijklmnopqrstuvwxyz"),
            "abcdefghijklmnop"
        );
        assert_eq!(upper_bin(&[0xff; 20]), None);
        let mut b = vec![1u8; 20];
        b[15] = 0xff;
        let mut want = vec![1u8; 15];
        want[14] = 2;
        assert_eq!(upper_bin(&b), Some(want));
    }

    #[test]
    fn iceberg_manifest_list_round_trips() {
        let m = ManifestFile {
            path: "file:///t/metadata/a-m0.avro".into(),
            length: 1234,
            spec_id: 0,
            content: 0,
            sequence_number: None,
            min_sequence_number: None,
            added_snapshot_id: 77,
            added_files: 2,
            existing_files: 0,
            deleted_files: 0,
            added_rows: 10,
            existing_rows: 0,
            deleted_rows: 0,
            partitions: Some(vec![FieldSummary {
                contains_null: false,
                contains_nan: None,
                lower: Some(vec![1, 0, 0, 0]),
                upper: Some(vec![9, 0, 0, 0]),
            }]),
            key_metadata: None,
        };
        let bytes = write_manifest_list(std::slice::from_ref(&m), 77, Some(5), 3).unwrap();
        let back = read_manifest_list(&bytes).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].path, m.path);
        assert_eq!(back[0].sequence_number, Some(3));
        assert_eq!(back[0].min_sequence_number, Some(3));
        assert_eq!(back[0].added_rows, 10);
        assert_eq!(back[0].partitions, m.partitions);
        // A copy keeps its own sequence number.
        let again = write_manifest_list(&back, 78, Some(77), 4).unwrap();
        assert_eq!(
            read_manifest_list(&again).unwrap()[0].sequence_number,
            Some(3)
        );
    }
}
