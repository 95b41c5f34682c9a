//! Partition specs: the job's `partition_by` (`"day(ts)"`, `"bucket(16, user_id)"`,
//! `"truncate(4, name)"`, `"country"`), their Iceberg JSON form, and splitting a batch into the
//! partitions its rows fall in, with each partition's values in Iceberg's single-value binary
//! serialization (for manifests' bounds).
//!
//! The syntax is Spark's and Trino's DDL (`days(ts)` and `day(ts)` both work). A bare column
//! is an identity partition, except a date or timestamp column, which is split by day as the
//! Parquet sink splits it (write `identity(ts)` for one partition per distinct timestamp).
//!
//! Transforms, as the Iceberg spec defines them: `identity`; `year`, `month`, `day`, `hour` of
//! a date or timestamp (years, months, days or hours since 1970, UTC); `bucket[N]` (Murmur3
//! x86 32-bit hash of the value's bytes, modulo N); `truncate[W]` (integers down to a multiple
//! of W, strings to W characters).

use std::collections::{BTreeMap, HashMap};

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::Schema;
use serde_json::{json, Value as Json};

use super::transform::{values, PValue};
use super::types::{IceSchema, IceType};

/// One transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    Identity,
    Year,
    Month,
    Day,
    Hour,
    Bucket(u32),
    Truncate(u32),
}

impl Transform {
    fn name(self) -> String {
        match self {
            Transform::Identity => "identity".into(),
            Transform::Year => "year".into(),
            Transform::Month => "month".into(),
            Transform::Day => "day".into(),
            Transform::Hour => "hour".into(),
            Transform::Bucket(n) => format!("bucket[{n}]"),
            Transform::Truncate(w) => format!("truncate[{w}]"),
        }
    }

    fn parse_json(s: &str) -> Option<Transform> {
        let num = |prefix: &str| -> Option<u32> {
            s.strip_prefix(prefix)?
                .strip_suffix(']')?
                .trim()
                .parse()
                .ok()
        };
        Some(match s {
            "identity" => Transform::Identity,
            "year" => Transform::Year,
            "month" => Transform::Month,
            "day" => Transform::Day,
            "hour" => Transform::Hour,
            _ => {
                if let Some(n) = num("bucket[") {
                    Transform::Bucket(n)
                } else {
                    Transform::Truncate(num("truncate[")?)
                }
            }
        })
    }

    /// The default partition field name, as Iceberg's Java library names it.
    fn field_name(self, column: &str) -> String {
        match self {
            Transform::Identity => column.to_owned(),
            Transform::Year => format!("{column}_year"),
            Transform::Month => format!("{column}_month"),
            Transform::Day => format!("{column}_day"),
            Transform::Hour => format!("{column}_hour"),
            Transform::Bucket(_) => format!("{column}_bucket"),
            Transform::Truncate(_) => format!("{column}_trunc"),
        }
    }
}

/// One `partition_by` item before it is checked against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionItem {
    pub column: String,
    /// `None`: a bare column (identity, or day for dates and timestamps).
    pub transform: Option<Transform>,
}

/// Parses one `partition_by` item.
pub(crate) fn parse_item(text: &str) -> Result<PartitionItem, String> {
    let t = text.trim();
    let Some(open) = t.find('(') else {
        if t.is_empty() {
            return Err("an empty partition_by item".into());
        }
        return Ok(PartitionItem {
            column: t.to_owned(),
            transform: None,
        });
    };
    let inner = t[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("{text:?}: missing the closing parenthesis"))?;
    let func = t[..open].trim().to_ascii_lowercase();
    let args: Vec<&str> = inner.split(',').map(str::trim).collect();
    let one = |tr: Transform| match args.as_slice() {
        [c] if !c.is_empty() => Ok(PartitionItem {
            column: (*c).to_owned(),
            transform: Some(tr),
        }),
        _ => Err(format!("{text:?}: {func}() takes one column")),
    };
    let two = |make: fn(u32) -> Transform| match args.as_slice() {
        [n, c] if !c.is_empty() => match n.parse::<u32>() {
            Ok(n) if n > 0 => Ok(PartitionItem {
                column: (*c).to_owned(),
                transform: Some(make(n)),
            }),
            _ => Err(format!("{text:?}: {n:?} is not a positive number")),
        },
        _ => Err(format!("{text:?}: {func}(N, column)")),
    };
    match func.as_str() {
        "identity" => one(Transform::Identity),
        "year" | "years" => one(Transform::Year),
        "month" | "months" => one(Transform::Month),
        "day" | "days" => one(Transform::Day),
        "hour" | "hours" => one(Transform::Hour),
        "bucket" => two(Transform::Bucket),
        "truncate" => two(Transform::Truncate),
        other => Err(format!(
            "{text:?}: unknown transform {other:?} (identity, year, month, day, hour, \
             bucket(N, column), truncate(W, column))"
        )),
    }
}

/// The kind of value a partition field holds (its Iceberg result type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResultKind {
    Boolean,
    Int,
    Long,
    Date,
    Timestamp { utc: bool },
    String,
    Binary,
}

impl ResultKind {
    /// The Avro schema of the value in a manifest's partition record.
    pub(crate) fn avro(self) -> Json {
        match self {
            ResultKind::Boolean => json!("boolean"),
            ResultKind::Int => json!("int"),
            ResultKind::Long => json!("long"),
            ResultKind::Date => json!({"type": "int", "logicalType": "date"}),
            ResultKind::Timestamp { utc } => {
                json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": utc})
            }
            ResultKind::String => json!("string"),
            ResultKind::Binary => json!("bytes"),
        }
    }
}

/// A partition field of the spec data files are written with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartField {
    pub name: String,
    pub field_id: i32,
    pub source_id: i32,
    pub transform: Transform,
    pub kind: ResultKind,
    /// Index of the source column in the (file) batch.
    pub(crate) column: usize,
}

/// A partition spec, resolved against the table schema and the file schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub spec_id: i32,
    pub fields: Vec<PartField>,
}

fn source_kind(ty: &IceType) -> Option<&str> {
    match ty {
        IceType::Primitive(p) => Some(p.as_str()),
        _ => None,
    }
}

fn result_kind(transform: Transform, source: &str) -> Result<ResultKind, String> {
    let temporal = matches!(source, "date" | "timestamp" | "timestamptz");
    let k = match (transform, source) {
        (Transform::Identity, "boolean") => ResultKind::Boolean,
        (Transform::Identity, "int") => ResultKind::Int,
        (Transform::Identity, "long") => ResultKind::Long,
        (Transform::Identity, "date") => ResultKind::Date,
        (Transform::Identity, "timestamp") => ResultKind::Timestamp { utc: false },
        (Transform::Identity, "timestamptz") => ResultKind::Timestamp { utc: true },
        (Transform::Identity, "string") => ResultKind::String,
        (Transform::Identity, "binary") => ResultKind::Binary,
        (Transform::Year | Transform::Month, _) if temporal => ResultKind::Int,
        (Transform::Day, _) if temporal => ResultKind::Date,
        (Transform::Hour, "timestamp" | "timestamptz") => ResultKind::Int,
        (Transform::Bucket(_), "int" | "long" | "date" | "timestamp" | "timestamptz")
        | (Transform::Bucket(_), "string" | "binary") => ResultKind::Int,
        (Transform::Bucket(_), s) if s.starts_with("decimal(") => ResultKind::Int,
        (Transform::Truncate(_), "int") => ResultKind::Int,
        (Transform::Truncate(_), "long") => ResultKind::Long,
        (Transform::Truncate(_), "string") => ResultKind::String,
        (t, s) => return Err(format!("{} does not apply to a {s} column", t.name())),
    };
    Ok(k)
}

impl Spec {
    /// The unpartitioned spec.
    #[cfg(test)]
    pub(crate) fn unpartitioned() -> Spec {
        Spec {
            spec_id: 0,
            fields: Vec::new(),
        }
    }

    /// A new table's spec from `partition_by` (field ids from 1000, as Iceberg numbers them).
    pub(crate) fn from_items(
        items: &[PartitionItem],
        table: &IceSchema,
        file: &Schema,
    ) -> Result<Spec, String> {
        let mut fields = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let src = table
                .field(&item.column)
                .ok_or_else(|| format!("partition_by column {:?} is not a column", item.column))?;
            let kind = source_kind(&src.ty).ok_or_else(|| {
                format!(
                    "partition_by column {:?} is a {}: only top-level primitive columns partition",
                    item.column,
                    src.ty.describe()
                )
            })?;
            let transform = item.transform.unwrap_or(match kind {
                "date" | "timestamp" | "timestamptz" => Transform::Day,
                _ => Transform::Identity,
            });
            let kind = result_kind(transform, kind)
                .map_err(|e| format!("partition_by {:?}: {e}", item.column))?;
            let name = transform.field_name(&item.column);
            if fields.iter().any(|f: &PartField| f.name == name) {
                return Err(format!("partition_by has {name:?} twice"));
            }
            fields.push(PartField {
                name,
                field_id: 1000 + i as i32,
                source_id: src.id,
                transform,
                kind,
                column: column_index(file, &item.column)?,
            });
        }
        Ok(Spec { spec_id: 0, fields })
    }

    /// A table's spec from its JSON; only transforms this sink computes are accepted.
    pub(crate) fn from_json(v: &Json, table: &IceSchema, file: &Schema) -> Result<Spec, String> {
        let spec_id = v.get("spec-id").and_then(Json::as_i64).unwrap_or(0) as i32;
        let mut fields = Vec::new();
        for f in v
            .get("fields")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let name = f.get("name").and_then(Json::as_str).unwrap_or_default();
            let tr = f
                .get("transform")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let transform = Transform::parse_json(tr).ok_or_else(|| {
                format!("partition field {name:?}: transform {tr:?} is not supported here")
            })?;
            let source_id = f.get("source-id").and_then(Json::as_i64).unwrap_or(-1) as i32;
            let field_id = f.get("field-id").and_then(Json::as_i64).unwrap_or(-1) as i32;
            let src = table
                .fields
                .iter()
                .find(|c| c.id == source_id)
                .ok_or_else(|| {
                    format!(
                        "partition field {name:?}: its source (field {source_id}) is not a \
                         top-level column"
                    )
                })?;
            let kind = source_kind(&src.ty)
                .ok_or_else(|| format!("partition field {name:?}: source is not primitive"))?;
            let kind = result_kind(transform, kind)
                .map_err(|e| format!("partition field {name:?}: {e}"))?;
            fields.push(PartField {
                name: name.to_owned(),
                field_id,
                source_id,
                transform,
                kind,
                column: column_index(file, &src.name).map_err(|_| {
                    format!(
                        "the table is partitioned by column {:?}, which the job does not write",
                        src.name
                    )
                })?,
            });
        }
        Ok(Spec { spec_id, fields })
    }

    /// The spec's JSON (`partition-specs` entry).
    pub(crate) fn to_json(&self) -> Json {
        json!({"spec-id": self.spec_id, "fields": self.fields_json()})
    }

    /// The fields' JSON (also a manifest's `partition-spec` metadata).
    pub(crate) fn fields_json(&self) -> Json {
        Json::Array(
            self.fields
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name,
                        "transform": f.transform.name(),
                        "source-id": f.source_id,
                        "field-id": f.field_id,
                    })
                })
                .collect(),
        )
    }

    /// Whether `other` partitions the same way (ids aside).
    pub(crate) fn same_as(&self, other: &Spec) -> bool {
        self.fields.len() == other.fields.len()
            && self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|(a, b)| a.source_id == b.source_id && a.transform == b.transform)
    }

    /// A description for messages: `day(ts), bucket(16, id)`.
    pub(crate) fn describe(&self, table: &IceSchema) -> String {
        if self.fields.is_empty() {
            return "unpartitioned".into();
        }
        let items: Vec<String> = self
            .fields
            .iter()
            .map(|f| {
                let col = table
                    .fields
                    .iter()
                    .find(|c| c.id == f.source_id)
                    .map_or("?", |c| c.name.as_str());
                match f.transform {
                    Transform::Bucket(n) => format!("bucket({n}, {col})"),
                    Transform::Truncate(w) => format!("truncate({w}, {col})"),
                    t => format!("{}({col})", t.name()),
                }
            })
            .collect();
        items.join(", ")
    }

    /// Splits a (file-schema) batch by partition, keeping row order within each part. A batch
    /// whose rows all fall in one partition is returned whole, without copying.
    pub(crate) fn split(&self, batch: &RecordBatch) -> Result<Vec<(PartKey, RecordBatch)>, String> {
        if self.fields.is_empty() {
            return Ok(vec![(PartKey(Vec::new()), batch.clone())]);
        }
        let columns: Vec<Vec<PValue<'_>>> = self
            .fields
            .iter()
            .map(|f| values(f, batch.column(f.column)))
            .collect::<Result<_, _>>()?;
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(Vec::new());
        }
        let same = columns.iter().all(|c| c.iter().all(|v| *v == c[0]));
        if same {
            let key = PartKey(columns.iter().map(|c| c[0].owned()).collect());
            return Ok(vec![(key, batch.clone())]);
        }
        // Each field's distinct values get small codes; a row's key is its codes in mixed
        // radix, so grouping allocates per group, not per row.
        let mut codes: Vec<BTreeMap<PValue<'_>, u64>> = Vec::with_capacity(columns.len());
        for c in &columns {
            let mut m = BTreeMap::new();
            for v in c {
                let n = m.len() as u64;
                m.entry(*v).or_insert(n);
            }
            codes.push(m);
        }
        let mut groups: HashMap<u64, (usize, Vec<u32>)> = HashMap::new();
        for row in 0..rows {
            let mut key = 0u64;
            for (c, m) in columns.iter().zip(&codes) {
                key = key * m.len() as u64 + m[&c[row]];
            }
            groups
                .entry(key)
                .or_insert_with(|| (row, Vec::new()))
                .1
                .push(row as u32);
        }
        let mut parts: Vec<(usize, Vec<u32>)> = groups.into_values().collect();
        parts.sort_by_key(|(first, _)| *first);
        let mut out = Vec::with_capacity(parts.len());
        for (first, rows) in parts {
            let key = PartKey(columns.iter().map(|c| c[first].owned()).collect());
            let part = arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows))
                .map_err(|e| format!("splitting a batch by partition: {e}"))?;
            out.push((key, part));
        }
        Ok(out)
    }

    /// The directory a partition's files go in: `ts_day=2024-01-02/id_bucket=3`.
    pub(crate) fn path(&self, key: &PartKey) -> String {
        let mut out = String::new();
        for (f, v) in self.fields.iter().zip(&key.0) {
            if !out.is_empty() {
                out.push('/');
            }
            escape(&f.name, &mut out);
            out.push('=');
            escape(&v.human(f.transform, f.kind), &mut out);
        }
        out
    }
}

fn column_index(file: &Schema, name: &str) -> Result<usize, String> {
    file.index_of(name)
        .map_err(|_| format!("partition_by column {name:?} is not among the job's columns"))
}

fn escape(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// A partition value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum OwnedValue {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Str(String),
    Bin(Vec<u8>),
}

impl OwnedValue {
    /// Iceberg's single-value binary serialization (`None` for null).
    pub(crate) fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            OwnedValue::Null => None,
            OwnedValue::Bool(b) => Some(vec![u8::from(*b)]),
            OwnedValue::Int(v) => Some(v.to_le_bytes().to_vec()),
            OwnedValue::Long(v) => Some(v.to_le_bytes().to_vec()),
            OwnedValue::Str(s) => Some(s.as_bytes().to_vec()),
            OwnedValue::Bin(b) => Some(b.clone()),
        }
    }

    /// The value in a manifest's partition record (a `["null", T]` union).
    pub(crate) fn to_avro(&self, kind: ResultKind) -> apache_avro::types::Value {
        use apache_avro::types::Value as A;
        let v = match (self, kind) {
            (OwnedValue::Null, _) => return A::Union(0, Box::new(A::Null)),
            (OwnedValue::Bool(b), _) => A::Boolean(*b),
            (OwnedValue::Int(v), ResultKind::Date) => A::Date(*v),
            (OwnedValue::Int(v), _) => A::Int(*v),
            (OwnedValue::Long(v), ResultKind::Timestamp { .. }) => A::TimestampMicros(*v),
            (OwnedValue::Long(v), _) => A::Long(*v),
            (OwnedValue::Str(s), _) => A::String(s.clone()),
            (OwnedValue::Bin(b), _) => A::Bytes(b.clone()),
        };
        A::Union(1, Box::new(v))
    }

    fn human(&self, transform: Transform, kind: ResultKind) -> String {
        match (self, transform, kind) {
            (OwnedValue::Null, _, _) => "null".into(),
            (OwnedValue::Int(d), _, ResultKind::Date) => crate::sink::layout::format_day(*d as i64),
            (OwnedValue::Int(m), Transform::Month, _) => {
                let (y, mo) = (1970 + m.div_euclid(12), m.rem_euclid(12) + 1);
                format!("{y:04}-{mo:02}")
            }
            (OwnedValue::Int(y), Transform::Year, _) => format!("{:04}", 1970 + y),
            (OwnedValue::Int(h), Transform::Hour, _) => {
                let day = crate::sink::layout::format_day(h.div_euclid(24) as i64);
                format!("{day}-{:02}", h.rem_euclid(24))
            }
            (OwnedValue::Long(us), _, ResultKind::Timestamp { .. }) => us.to_string(),
            (OwnedValue::Bool(b), _, _) => b.to_string(),
            (OwnedValue::Int(v), _, _) => v.to_string(),
            (OwnedValue::Long(v), _, _) => v.to_string(),
            (OwnedValue::Str(s), _, _) => s.clone(),
            (OwnedValue::Bin(b), _, _) => hex::encode(b),
        }
    }
}

/// The partition values of one partition, in spec order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PartKey(pub Vec<OwnedValue>);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, TimeUnit};

    use super::super::transform::{bucket_of, murmur3_32, US_PER_DAY};
    use crate::sink::iceberg::types::schema_for;

    #[test]
    fn iceberg_partition_items_parse() {
        assert_eq!(
            parse_item(" days(ts) ").unwrap(),
            PartitionItem {
                column: "ts".into(),
                transform: Some(Transform::Day)
            }
        );
        assert_eq!(
            parse_item("bucket(16, id)").unwrap().transform,
            Some(Transform::Bucket(16))
        );
        assert_eq!(parse_item("country").unwrap().transform, None);
        assert!(parse_item("bucket(0, id)").is_err());
        assert!(parse_item("weekday(ts)")
            .unwrap_err()
            .contains("unknown transform"));
        assert!(parse_item("day(ts").is_err());
    }

    #[test]
    fn iceberg_partition_splits_by_day_and_bucket() {
        let file = Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]);
        let table = schema_for(&file).unwrap();
        let items: Vec<PartitionItem> = ["ts", "bucket(4, id)"]
            .iter()
            .map(|s| parse_item(s).unwrap())
            .collect();
        let spec = Spec::from_items(&items, &table, &file).unwrap();
        assert_eq!(spec.describe(&table), "day(ts), bucket(4, id)");
        assert_eq!(
            spec.fields_json(),
            json!([
                {"name": "ts_day", "transform": "day", "source-id": 1, "field-id": 1000},
                {"name": "id_bucket", "transform": "bucket[4]", "source-id": 2, "field-id": 1001},
            ])
        );
        let day = US_PER_DAY;
        let batch = RecordBatch::try_new(
            Arc::new(file.clone()),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(0), Some(day + 5), Some(1), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from(vec![34, 34, 34, 34])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .unwrap();
        let parts = spec.split(&batch).unwrap();
        let bucket = bucket_of(murmur3_32(&34i64.to_le_bytes()), 4);
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts[0].0,
            PartKey(vec![OwnedValue::Int(0), OwnedValue::Int(bucket)])
        );
        assert_eq!(parts[0].1.num_rows(), 2, "rows 0 and 2 share a day");
        let month = Spec {
            spec_id: 0,
            fields: vec![PartField {
                name: "ts_month".into(),
                field_id: 1000,
                source_id: 1,
                transform: Transform::Month,
                kind: ResultKind::Int,
                column: 0,
            }],
        };
        assert_eq!(
            month.path(&PartKey(vec![OwnedValue::Int(574)])),
            "ts_month=2017-11"
        );
        assert_eq!(
            spec.path(&parts[1].0),
            format!("ts_day=1970-01-02/id_bucket={bucket}")
        );
        assert_eq!(
            spec.path(&parts[2].0),
            format!("ts_day=null/id_bucket={bucket}")
        );
        let names = parts[0].1.column(2).as_string::<i32>();
        assert_eq!(names.value(1), "c");
    }
}
