//! Columns proposed when a JSON or Avro topic is configured without them: from a sample of
//! JSON documents, or from an Avro writer schema.
//!
//! JSON inference takes each top-level key of the sampled objects as a column (in first-seen
//! order, source `/key`): integers are `int64`, other numbers `float64` (and a key holding
//! both is `float64`), `true`/`false` are `bool`, strings are `string`, objects are structs
//! of their merged keys, arrays are lists of their merged items. A key whose samples disagree
//! otherwise (a string here, an object there) or that is only ever null becomes a `string`
//! column, which the decoder fills with the value's text or raw JSON. Strings are not guessed
//! to be timestamps: a wrong guess rejects records later, a `string` never does. Every
//! inferred column is nullable, since a sample cannot show that a key is always present.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::schema::Schema as AvroSchema;
use arrow_schema::{DataType, Field as ArrowField, Fields, TimeUnit};

use super::{ColumnSpec, Field, SchemaError, Source};
use crate::decode::json_infer::{scan_sample, Inferred};

/// Proposes columns for JSON documents like `samples` (see the module docs). Samples must be
/// JSON objects.
pub fn infer_json_schema(samples: &[&[u8]]) -> Result<Vec<ColumnSpec>, SchemaError> {
    let mut fields: Vec<(String, Inferred)> = Vec::new();
    for (n, sample) in samples.iter().enumerate() {
        let doc = scan_sample(sample)
            .map_err(|e| SchemaError::Infer(format!("sample {n} is not valid JSON: {e}")))?;
        let Inferred::Struct(members) = doc else {
            return Err(SchemaError::Infer(format!(
                "sample {n} is not a JSON object"
            )));
        };
        Inferred::merge_fields(&mut fields, members);
    }
    if fields.is_empty() {
        return Err(SchemaError::Infer("the samples hold no keys".into()));
    }
    Ok(fields
        .into_iter()
        .map(|(name, t)| {
            let source = Source::Value(Field::Pointer(vec![name.clone()]));
            ColumnSpec::new(name, t.to_arrow(), source)
        })
        .collect())
}

/// The columns of an Avro record schema: one per field, source the field's name, typed as
/// the decoder reads it (see [`crate::decode`]'s Avro notes), nullable when the field is a
/// union with `null`.
pub fn avro_columns(schema: &AvroSchema) -> Result<Vec<ColumnSpec>, SchemaError> {
    let mut names = HashMap::new();
    collect_names(schema, &mut names, 0);
    let AvroSchema::Record(r) = schema else {
        return Err(SchemaError::Infer(
            "the Avro schema is not a record; give the columns explicitly".into(),
        ));
    };
    r.fields
        .iter()
        .map(|f| {
            let (ty, nullable) = avro_type(&f.schema, &names, 0)
                .map_err(|m| SchemaError::Infer(format!("Avro field {:?}: {m}", f.name)))?;
            Ok(ColumnSpec {
                name: f.name.clone(),
                data_type: ty,
                source: Source::Value(Field::AvroPath(vec![f.name.clone()])),
                nullable,
            })
        })
        .collect()
}

fn collect_names<'s>(s: &'s AvroSchema, names: &mut HashMap<String, &'s AvroSchema>, depth: usize) {
    if depth > 64 {
        return;
    }
    match s {
        AvroSchema::Record(r) => {
            names.insert(r.name.fullname(None), s);
            names.insert(r.name.name.clone(), s);
            for f in &r.fields {
                collect_names(&f.schema, names, depth + 1);
            }
        }
        AvroSchema::Enum(e) => {
            names.insert(e.name.fullname(None), s);
            names.insert(e.name.name.clone(), s);
        }
        AvroSchema::Fixed(f) => {
            names.insert(f.name.fullname(None), s);
            names.insert(f.name.name.clone(), s);
        }
        AvroSchema::Array(a) => collect_names(&a.items, names, depth + 1),
        AvroSchema::Map(m) => collect_names(&m.types, names, depth + 1),
        AvroSchema::Union(u) => u
            .variants()
            .iter()
            .for_each(|v| collect_names(v, names, depth + 1)),
        _ => {}
    }
}

/// The column type for an Avro type, and whether it is nullable.
fn avro_type(
    s: &AvroSchema,
    names: &HashMap<String, &AvroSchema>,
    depth: usize,
) -> Result<(DataType, bool), String> {
    if depth > 32 {
        return Err("nested too deeply (a recursive type?)".into());
    }
    let list = |t: DataType, nullable: bool| {
        DataType::List(Arc::new(ArrowField::new_list_field(t, nullable)))
    };
    let ty = match s {
        AvroSchema::Null => return Ok((DataType::Utf8, true)),
        AvroSchema::Boolean => DataType::Boolean,
        AvroSchema::Int | AvroSchema::TimeMillis => DataType::Int32,
        AvroSchema::Long | AvroSchema::TimeMicros => DataType::Int64,
        AvroSchema::Float => DataType::Float32,
        AvroSchema::Double => DataType::Float64,
        AvroSchema::Bytes
        | AvroSchema::Fixed(_)
        | AvroSchema::Duration
        | AvroSchema::BigDecimal => DataType::Binary,
        AvroSchema::String | AvroSchema::Uuid | AvroSchema::Enum(_) => DataType::Utf8,
        AvroSchema::Date => DataType::Date32,
        AvroSchema::TimestampMillis => {
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        }
        AvroSchema::TimestampMicros => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        AvroSchema::TimestampNanos => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        AvroSchema::LocalTimestampMillis => DataType::Timestamp(TimeUnit::Millisecond, None),
        AvroSchema::LocalTimestampMicros => DataType::Timestamp(TimeUnit::Microsecond, None),
        AvroSchema::LocalTimestampNanos => DataType::Timestamp(TimeUnit::Nanosecond, None),
        AvroSchema::Decimal(d) => {
            if d.precision == 0 || d.precision > 38 || d.scale > d.precision {
                return Err(format!(
                    "decimal({}, {}) does not fit a 128-bit decimal",
                    d.precision, d.scale
                ));
            }
            DataType::Decimal128(d.precision as u8, d.scale as i8)
        }
        AvroSchema::Array(a) => {
            let (t, n) = avro_type(&a.items, names, depth + 1)?;
            list(t, n)
        }
        AvroSchema::Map(m) => {
            let (t, n) = avro_type(&m.types, names, depth + 1)?;
            let entry = DataType::Struct(Fields::from(vec![
                ArrowField::new("key", DataType::Utf8, false),
                ArrowField::new("value", t, n),
            ]));
            list(entry, false)
        }
        AvroSchema::Record(r) => {
            let fields = r
                .fields
                .iter()
                .map(|f| {
                    let (t, n) = avro_type(&f.schema, names, depth + 1)
                        .map_err(|m| format!("field {:?}: {m}", f.name))?;
                    Ok(ArrowField::new(&f.name, t, n))
                })
                .collect::<Result<Vec<_>, String>>()?;
            DataType::Struct(Fields::from(fields))
        }
        AvroSchema::Union(u) => {
            let non_null: Vec<&AvroSchema> = u
                .variants()
                .iter()
                .filter(|v| !matches!(v, AvroSchema::Null))
                .collect();
            let nullable = non_null.len() < u.variants().len();
            return match non_null.as_slice() {
                [] => Ok((DataType::Utf8, true)),
                [one] => avro_type(one, names, depth + 1).map(|(t, n)| (t, n || nullable)),
                _ => Err(
                    "a union of several non-null types has no single column type; \
                     give the columns explicitly"
                        .into(),
                ),
            };
        }
        AvroSchema::Ref { name } => {
            let target = names
                .get(&name.fullname(None))
                .or_else(|| names.get(&name.name))
                .ok_or_else(|| format!("unknown named type {}", name.name))?;
            return avro_type(target, names, depth + 1);
        }
    };
    Ok((ty, false))
}

#[cfg(test)]
#[path = "infer_tests.rs"]
mod tests;
