//! Iceberg's types and schemas: their JSON form (the table metadata's `schemas`), how the job's
//! Arrow columns map to them, and the Arrow schema data files are written with (each field
//! carrying its Iceberg field id as `PARQUET:field_id`, which readers match columns by).
//!
//! | column type | Iceberg type | in the data file |
//! | --- | --- | --- |
//! | `bool` | `boolean` | |
//! | `int8`, `int16`, `int32`, `uint8`, `uint16` | `int` | widened to int32 |
//! | `int64`, `uint32` | `long` | uint32 widened to int64 |
//! | `uint64` | `decimal(20, 0)` | (every uint64 fits) |
//! | `float32`, `float64` | `float`, `double` | |
//! | `string`, `binary` | `string`, `binary` | |
//! | `date` | `date` | |
//! | `timestamp(s\|ms\|us)` | `timestamp` | microseconds |
//! | `timestamp(s\|ms\|us, TZ)` | `timestamptz` | microseconds, UTC |
//! | `decimal(P, S)` | `decimal(P, S)` | |
//! | `list<T>` | `list<T>` (optional elements) | |
//! | `struct<a: T, ...>` | `struct<a: T, ...>` (optional fields) | |
//! | Arrow maps (no column syntax yet) | `map<K, V>` | |
//!
//! `timestamp(ns)` is refused: format version 2 has no nanosecond type, and truncating would
//! change values silently.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use serde_json::{json, Map, Value};

/// The Arrow field metadata key Parquet writers and readers keep the field id under.
pub(crate) const FIELD_ID_KEY: &str = "PARQUET:field_id";

/// An Iceberg type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IceType {
    /// `boolean`, `int`, `long`, `float`, `double`, `date`, `timestamp`, `timestamptz`,
    /// `string`, `binary`, `uuid`, `time`, `decimal(P, S)`, `fixed[L]`.
    Primitive(String),
    Struct(Vec<IceField>),
    List {
        element_id: i32,
        element_required: bool,
        element: Box<IceType>,
    },
    Map {
        key_id: i32,
        key: Box<IceType>,
        value_id: i32,
        value_required: bool,
        value: Box<IceType>,
    },
}

/// A field of a struct (or of the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IceField {
    pub id: i32,
    pub name: String,
    pub required: bool,
    pub ty: IceType,
}

impl IceType {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            IceType::Primitive(p) => Value::String(p.clone()),
            IceType::Struct(fields) => json!({
                "type": "struct",
                "fields": fields.iter().map(IceField::to_json).collect::<Vec<_>>(),
            }),
            IceType::List {
                element_id,
                element_required,
                element,
            } => json!({
                "type": "list",
                "element-id": element_id,
                "element-required": element_required,
                "element": element.to_json(),
            }),
            IceType::Map {
                key_id,
                key,
                value_id,
                value_required,
                value,
            } => json!({
                "type": "map",
                "key-id": key_id,
                "key": key.to_json(),
                "value-id": value_id,
                "value-required": value_required,
                "value": value.to_json(),
            }),
        }
    }

    pub(crate) fn from_json(v: &Value) -> Result<IceType, String> {
        let int = |o: &Map<String, Value>, k: &str| -> Result<i32, String> {
            o.get(k)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| format!("{k} missing or not a number"))
        };
        let flag = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_bool);
        match v {
            Value::String(s) => Ok(IceType::Primitive(normalize_primitive(s))),
            Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                Some("struct") => {
                    let fields = o
                        .get("fields")
                        .and_then(Value::as_array)
                        .ok_or("struct without fields")?;
                    Ok(IceType::Struct(
                        fields
                            .iter()
                            .map(IceField::from_json)
                            .collect::<Result<_, _>>()?,
                    ))
                }
                Some("list") => Ok(IceType::List {
                    element_id: int(o, "element-id")?,
                    element_required: flag(o, "element-required").unwrap_or(false),
                    element: Box::new(IceType::from_json(
                        o.get("element").ok_or("list without element")?,
                    )?),
                }),
                Some("map") => Ok(IceType::Map {
                    key_id: int(o, "key-id")?,
                    key: Box::new(IceType::from_json(o.get("key").ok_or("map without key")?)?),
                    value_id: int(o, "value-id")?,
                    value_required: flag(o, "value-required").unwrap_or(false),
                    value: Box::new(IceType::from_json(
                        o.get("value").ok_or("map without value")?,
                    )?),
                }),
                other => Err(format!("unknown type {other:?}")),
            },
            other => Err(format!("unknown type {other}")),
        }
    }

    /// How the type reads in messages: `long`, `list<string>`, `struct<a: int>`.
    pub(crate) fn describe(&self) -> String {
        match self {
            IceType::Primitive(p) => p.clone(),
            IceType::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.ty.describe()))
                    .collect();
                format!("struct<{}>", inner.join(", "))
            }
            IceType::List { element, .. } => format!("list<{}>", element.describe()),
            IceType::Map { key, value, .. } => {
                format!("map<{}, {}>", key.describe(), value.describe())
            }
        }
    }
}

/// `decimal(10,2)` and `decimal(10, 2)` are one type.
fn normalize_primitive(s: &str) -> String {
    let t = s.trim().to_ascii_lowercase();
    if let Some(inner) = t.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        if let [p, s] = parts.as_slice() {
            return format!("decimal({p}, {s})");
        }
    }
    t
}

impl IceField {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "required": self.required,
            "type": self.ty.to_json(),
        })
    }

    fn from_json(v: &Value) -> Result<IceField, String> {
        let o = v.as_object().ok_or("a field is not an object")?;
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .ok_or("field without name")?
            .to_owned();
        let id = o
            .get("id")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("field {name:?} without id"))?;
        let required = o.get("required").and_then(Value::as_bool).unwrap_or(false);
        let ty = IceType::from_json(o.get("type").ok_or("field without type")?)
            .map_err(|e| format!("field {name:?}: {e}"))?;
        Ok(IceField {
            id,
            name,
            required,
            ty,
        })
    }
}

/// An Iceberg schema: its id and top-level fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IceSchema {
    pub schema_id: i32,
    pub fields: Vec<IceField>,
}

impl IceSchema {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "type": "struct",
            "schema-id": self.schema_id,
            "fields": self.fields.iter().map(IceField::to_json).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn from_json(v: &Value) -> Result<IceSchema, String> {
        let schema_id = v
            .get("schema-id")
            .and_then(Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(0);
        match IceType::from_json(v)? {
            IceType::Struct(fields) => Ok(IceSchema { schema_id, fields }),
            _ => Err("a schema is not a struct".into()),
        }
    }

    /// The highest field id anywhere in the schema.
    pub(crate) fn max_id(&self) -> i32 {
        fn walk(t: &IceType) -> i32 {
            match t {
                IceType::Primitive(_) => 0,
                IceType::Struct(fs) => fs.iter().map(|f| f.id.max(walk(&f.ty))).max().unwrap_or(0),
                IceType::List {
                    element_id,
                    element,
                    ..
                } => (*element_id).max(walk(element)),
                IceType::Map {
                    key_id,
                    key,
                    value_id,
                    value,
                    ..
                } => (*key_id).max(*value_id).max(walk(key)).max(walk(value)),
            }
        }
        self.fields
            .iter()
            .map(|f| f.id.max(walk(&f.ty)))
            .max()
            .unwrap_or(0)
    }

    /// The top-level field named `name`.
    pub(crate) fn field(&self, name: &str) -> Option<&IceField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Every primitive field, with whether it sits under a list or map (then it has no
    /// bounds in the file's metrics), by id.
    pub(crate) fn leaves(&self) -> HashMap<i32, (IceType, bool)> {
        fn walk(t: &IceType, id: i32, repeated: bool, out: &mut HashMap<i32, (IceType, bool)>) {
            match t {
                IceType::Primitive(_) => {
                    out.insert(id, (t.clone(), repeated));
                }
                IceType::Struct(fs) => {
                    for f in fs {
                        walk(&f.ty, f.id, repeated, out);
                    }
                }
                IceType::List {
                    element_id,
                    element,
                    ..
                } => walk(element, *element_id, true, out),
                IceType::Map {
                    key_id,
                    key,
                    value_id,
                    value,
                    ..
                } => {
                    walk(key, *key_id, true, out);
                    walk(value, *value_id, true, out);
                }
            }
        }
        let mut out = HashMap::new();
        for f in &self.fields {
            walk(&f.ty, f.id, false, &mut out);
        }
        out
    }
}

/// The Iceberg type of an Arrow type, ids taken from `next` (breadth-first per struct, as
/// Iceberg's own `assignFreshIds` does), or why it has none.
fn ice_type(dt: &DataType, next: &mut i32) -> Result<IceType, String> {
    let p = |s: &str| Ok(IceType::Primitive(s.to_owned()));
    match dt {
        DataType::Boolean => p("boolean"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            p("int")
        }
        DataType::Int64 | DataType::UInt32 => p("long"),
        DataType::UInt64 => p("decimal(20, 0)"),
        DataType::Float32 => p("float"),
        DataType::Float64 => p("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => p("string"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => p("binary"),
        DataType::Date32 | DataType::Date64 => p("date"),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Err(
            "Iceberg format version 2 has no nanosecond timestamps: use timestamp(us) or \
             timestamp(ms)"
                .into(),
        ),
        DataType::Timestamp(_, None) => p("timestamp"),
        DataType::Timestamp(_, Some(_)) => p("timestamptz"),
        DataType::Decimal128(prec, scale) if *scale >= 0 => {
            Ok(IceType::Primitive(format!("decimal({prec}, {scale})")))
        }
        DataType::List(f) | DataType::LargeList(f) => {
            let element_id = *next;
            *next += 1;
            Ok(IceType::List {
                element_id,
                element_required: !f.is_nullable(),
                element: Box::new(ice_type(f.data_type(), next)?),
            })
        }
        DataType::Struct(fields) => Ok(IceType::Struct(ice_fields(fields, next)?)),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err("a map whose entries are not a struct".into());
            };
            if kv.len() != 2 {
                return Err("a map entry must have a key and a value".into());
            }
            let (key_id, value_id) = (*next, *next + 1);
            *next += 2;
            Ok(IceType::Map {
                key_id,
                key: Box::new(ice_type(kv[0].data_type(), next)?),
                value_id,
                value_required: !kv[1].is_nullable(),
                value: Box::new(ice_type(kv[1].data_type(), next)?),
            })
        }
        other => Err(format!("type {other} has no Iceberg equivalent here")),
    }
}

fn ice_fields(fields: &Fields, next: &mut i32) -> Result<Vec<IceField>, String> {
    let first = *next;
    *next += fields.len() as i32;
    let mut out = Vec::with_capacity(fields.len());
    for (i, f) in fields.iter().enumerate() {
        let ty = ice_type(f.data_type(), next).map_err(|e| format!("{}: {e}", f.name()))?;
        out.push(IceField {
            id: first + i as i32,
            name: f.name().clone(),
            required: !f.is_nullable(),
            ty,
        });
    }
    Ok(out)
}

/// A new table's schema for the job's columns, ids from 1.
pub(crate) fn schema_for(arrow: &Schema) -> Result<IceSchema, String> {
    let mut next = 1;
    Ok(IceSchema {
        schema_id: 0,
        fields: ice_fields(arrow.fields(), &mut next)?,
    })
}

/// Checks that batches of `arrow` can be written into a table of `table`: every column is in
/// the table with the type it maps to, nullable columns only into optional fields, and every
/// required field of the table is a column. Returns the Arrow schema of the data files: the
/// table's names and field ids, values converted as the module docs say.
pub(crate) fn file_schema(arrow: &Schema, table: &IceSchema) -> Result<Arc<Schema>, Vec<String>> {
    let mut problems = Vec::new();
    let mut fields = Vec::with_capacity(arrow.fields().len());
    for f in arrow.fields() {
        let Some(t) = table.field(f.name()) else {
            problems.push(format!(
                "column {:?} is not in the table (its columns: {})",
                f.name(),
                table
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        match file_field(f, t) {
            Ok(field) => fields.push(field),
            Err(e) => problems.push(format!("column {:?}: {e}", f.name())),
        }
    }
    for t in &table.fields {
        if t.required && arrow.field_with_name(&t.name).is_err() {
            problems.push(format!(
                "the table's required column {:?} is not among the job's columns",
                t.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(Arc::new(Schema::new(fields)))
    } else {
        Err(problems)
    }
}

fn with_id(field: Field, id: i32) -> Field {
    let mut md = field.metadata().clone();
    md.insert(FIELD_ID_KEY.to_owned(), id.to_string());
    field.with_metadata(md)
}

/// The data file's field for column `f` going into table field `t`.
fn file_field(f: &Field, t: &IceField) -> Result<Field, String> {
    if t.required && f.is_nullable() {
        return Err(
            "the table's field is required but the column is nullable (set nullable = false)"
                .into(),
        );
    }
    let dt = file_type(f.data_type(), &t.ty)?;
    Ok(with_id(Field::new(&t.name, dt, !t.required), t.id))
}

/// The Arrow type a value of `dt` is written as into a field of Iceberg type `t`.
fn file_type(dt: &DataType, t: &IceType) -> Result<DataType, String> {
    let mismatch = || {
        let mut next = 1;
        let expected = ice_type(dt, &mut next)
            .map(|e| e.describe())
            .unwrap_or_else(|e| e);
        format!(
            "the table has type {}, the column maps to {expected}",
            t.describe()
        )
    };
    let prim = |name: &str| matches!(t, IceType::Primitive(p) if p == name);
    let out = match (dt, t) {
        (DataType::Boolean, _) if prim("boolean") => DataType::Boolean,
        (
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16,
            _,
        ) if prim("int") => DataType::Int32,
        (DataType::Int64 | DataType::UInt32, _) if prim("long") => DataType::Int64,
        (DataType::UInt64, _) if prim("decimal(20, 0)") => DataType::Decimal128(20, 0),
        (DataType::Float32, _) if prim("float") => DataType::Float32,
        (DataType::Float64, _) if prim("double") => DataType::Float64,
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, _) if prim("string") => {
            DataType::Utf8
        }
        (DataType::Binary | DataType::LargeBinary | DataType::BinaryView, _) if prim("binary") => {
            DataType::Binary
        }
        (DataType::Date32 | DataType::Date64, _) if prim("date") => DataType::Date32,
        (DataType::Timestamp(u, None), _) if prim("timestamp") && *u != TimeUnit::Nanosecond => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        (DataType::Timestamp(u, Some(_)), _)
            if prim("timestamptz") && *u != TimeUnit::Nanosecond =>
        {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        (DataType::Decimal128(p, s), IceType::Primitive(name))
            if *name == format!("decimal({p}, {s})") =>
        {
            DataType::Decimal128(*p, *s)
        }
        (
            DataType::List(f) | DataType::LargeList(f),
            IceType::List {
                element_id,
                element_required,
                element,
            },
        ) => {
            if *element_required && f.is_nullable() {
                return Err("the table's list elements are required, the column's are not".into());
            }
            let inner = file_type(f.data_type(), element)?;
            DataType::List(Arc::new(with_id(
                Field::new("element", inner, !element_required),
                *element_id,
            )))
        }
        (DataType::Struct(fields), IceType::Struct(tfields)) => {
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let tf = tfields
                    .iter()
                    .find(|t| t.name == *f.name())
                    .ok_or_else(|| format!("struct field {:?} is not in the table", f.name()))?;
                out.push(
                    file_field(f, tf).map_err(|e| format!("struct field {:?}: {e}", f.name()))?,
                );
            }
            if let Some(missing) = tfields
                .iter()
                .find(|t| t.required && !fields.iter().any(|f| *f.name() == t.name))
            {
                return Err(format!(
                    "the table's required struct field {:?} is missing",
                    missing.name
                ));
            }
            DataType::Struct(Fields::from(out))
        }
        (
            DataType::Map(entries, sorted),
            IceType::Map {
                key_id,
                key,
                value_id,
                value_required,
                value,
            },
        ) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(mismatch());
            };
            if kv.len() != 2 {
                return Err(mismatch());
            }
            if *value_required && kv[1].is_nullable() {
                return Err("the table's map values are required, the column's are not".into());
            }
            let k = with_id(
                Field::new("key", file_type(kv[0].data_type(), key)?, false),
                *key_id,
            );
            let v = with_id(
                Field::new(
                    "value",
                    file_type(kv[1].data_type(), value)?,
                    !value_required,
                ),
                *value_id,
            );
            DataType::Map(
                Arc::new(Field::new(
                    "key_value",
                    DataType::Struct(Fields::from(vec![k, v])),
                    false,
                )),
                *sorted,
            )
        }
        _ => return Err(mismatch()),
    };
    Ok(out)
}

/// Whether values of `from` must be converted (cast) to be written as `to`; metadata (field
/// ids, names of nested fields) alone needs no conversion, the Parquet writer takes the file
/// schema's.
pub(crate) fn needs_cast(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (DataType::List(a), DataType::List(b)) => needs_cast(a.data_type(), b.data_type()),
        (DataType::Struct(a), DataType::Struct(b)) => {
            a.len() != b.len()
                || a.iter()
                    .zip(b.iter())
                    .any(|(x, y)| x.name() != y.name() || needs_cast(x.data_type(), y.data_type()))
        }
        (DataType::Map(a, _), DataType::Map(b, _)) => needs_cast(a.data_type(), b.data_type()),
        (DataType::Timestamp(u1, tz1), DataType::Timestamp(u2, tz2)) => {
            u1 != u2 || tz1.is_some() != tz2.is_some()
        }
        (a, b) => a != b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_type;

    fn arrow(cols: &[(&str, &str, bool)]) -> Schema {
        Schema::new(
            cols.iter()
                .map(|(n, t, null)| Field::new(*n, parse_type(t).unwrap(), *null))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn iceberg_types_map_every_column_type_with_fresh_ids() {
        let a = arrow(&[
            ("ts", "timestamp(ms, UTC)", false),
            ("local", "timestamp(s)", true),
            ("n", "int16", true),
            ("u", "uint64", true),
            ("price", "decimal(10, 2)", true),
            ("tags", "list<string>", true),
            ("who", "struct<id: int64, names: list<string>>", true),
        ]);
        let s = schema_for(&a).unwrap();
        let j = s.to_json();
        assert_eq!(
            j["fields"][0],
            json!({"id": 1, "name": "ts", "required": true, "type": "timestamptz"})
        );
        assert_eq!(j["fields"][1]["type"], "timestamp");
        assert_eq!(j["fields"][2]["type"], "int");
        assert_eq!(j["fields"][3]["type"], "decimal(20, 0)");
        assert_eq!(j["fields"][4]["type"], "decimal(10, 2)");
        assert_eq!(
            j["fields"][5]["type"],
            json!({"type": "list", "element-id": 8, "element-required": false, "element": "string"})
        );
        // Struct fields get their ids before anything nested inside them.
        assert_eq!(j["fields"][6]["type"]["fields"][0]["id"], 9);
        assert_eq!(j["fields"][6]["type"]["fields"][1]["id"], 10);
        assert_eq!(
            j["fields"][6]["type"]["fields"][1]["type"]["element-id"],
            11
        );
        assert_eq!(s.max_id(), 11);
        assert_eq!(IceSchema::from_json(&j).unwrap(), s);
    }

    #[test]
    fn iceberg_types_nanoseconds_are_refused() {
        let e = schema_for(&arrow(&[("t", "timestamp(ns, UTC)", true)])).unwrap_err();
        assert!(e.contains("nanosecond"), "{e}");
    }

    #[test]
    fn iceberg_file_schema_carries_ids_and_converted_types() {
        let a = arrow(&[
            ("ts", "timestamp(ms, Europe/Paris)", true),
            ("tags", "list<int8>", true),
        ]);
        let table = schema_for(&a).unwrap();
        let f = file_schema(&a, &table).unwrap();
        assert_eq!(
            f.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(f.field(0).metadata()[FIELD_ID_KEY], "1");
        let DataType::List(el) = f.field(1).data_type() else {
            panic!("not a list")
        };
        assert_eq!(el.data_type(), &DataType::Int32);
        assert_eq!(el.metadata()[FIELD_ID_KEY], "3");
        assert!(needs_cast(a.field(0).data_type(), f.field(0).data_type()));
        assert!(needs_cast(a.field(1).data_type(), f.field(1).data_type()));
        let plain = arrow(&[("s", "list<string>", true)]);
        let pf = file_schema(&plain, &schema_for(&plain).unwrap()).unwrap();
        assert!(!needs_cast(
            plain.field(0).data_type(),
            pf.field(0).data_type()
        ));
    }

    #[test]
    fn iceberg_file_schema_names_every_difference() {
        let table = schema_for(&arrow(&[("a", "int64", false), ("b", "string", true)])).unwrap();
        let job = arrow(&[("a", "int32", true), ("c", "string", true)]);
        let problems = file_schema(&job, &table).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("required"), "{problems:?}");
        assert!(
            problems[1].contains("\"c\" is not in the table"),
            "{problems:?}"
        );
        let job = arrow(&[("a", "int32", false)]);
        let problems = file_schema(&job, &table).unwrap_err();
        assert!(
            problems[0].contains("the table has type long, the column maps to int"),
            "{problems:?}"
        );
    }
}
