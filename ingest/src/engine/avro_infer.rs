//! Columns for an Avro job that lists no `[[columns]]`: the writer schema of the topic's first
//! record, fetched from the schema registry by the id in its Confluent header, mapped to
//! columns by [`crate::schema::avro_columns`] and printed so the user can paste them into the
//! configuration (as the JSON inference does).
//!
//! The mapping: a record schema gives one column per field (source: the field's name); nested
//! records become structs, arrays lists, maps `list<struct<key, value>>`, a union with `null`
//! makes the column nullable, and the logical types keep their meaning (`timestamp-millis` and
//! `-micros` are UTC timestamps in their unit, `local-timestamp-*` timestamps without a zone,
//! `date` a date, `decimal` a decimal of its precision and scale, `uuid` a string). A schema
//! that is not a record (a topic of bare strings or longs) gives one column, `value`, holding
//! the whole value.
//!
//! Later records may carry other schema ids (the schema evolved): the decoder reads each
//! record with its own writer schema and matches fields by name, so a field the first schema
//! has and a later one dropped becomes null (and is an error only in a column the first schema
//! says is never null: list the columns explicitly to relax that).

use std::time::{Duration, Instant};

use apache_avro::schema::Schema as AvroSchema;
use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
use kingest_client::Client;

use super::{format_spec, EngineError};
use crate::config::Config;
use crate::decode::{FormatSpec, RegistryClient};
use crate::schema::{avro_columns, format_type, ColumnSpec, Field, SchemaError, Source};

/// How long to wait for a first record before giving up.
const FIRST_RECORD_WAIT: Duration = Duration::from_secs(10);

/// Where the inferred columns came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvroOrigin {
    /// The registry's schema id.
    pub schema_id: u32,
    /// The topic of the record that carried it.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// The schema id of a Confluent-framed value (magic byte 0, then the id, big-endian).
pub fn confluent_schema_id(value: &[u8]) -> Option<u32> {
    match value {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The columns for values written with `schema`: see the module docs.
pub fn avro_value_columns(schema: &AvroSchema) -> Result<Vec<ColumnSpec>, SchemaError> {
    if matches!(schema, AvroSchema::Record(_)) {
        return avro_columns(schema);
    }
    // A bare value: map it as the one field of a record, then read it from the top.
    let inner = serde_json::to_value(schema)
        .map_err(|e| SchemaError::Infer(format!("cannot restate the Avro schema: {e}")))?;
    let wrapper = serde_json::json!({
        "type": "record",
        "name": "kingest_value",
        "fields": [{"name": "value", "type": inner}],
    });
    let wrapped = AvroSchema::parse(&wrapper)
        .map_err(|e| SchemaError::Infer(format!("cannot restate the Avro schema: {e}")))?;
    let mut columns = avro_columns(&wrapped)?;
    for c in &mut columns {
        c.source = Source::Value(Field::AvroPath(Vec::new()));
    }
    Ok(columns)
}

/// Finds the first record with a value on the job's topics (from the earliest offsets) and
/// returns its value and where it was.
async fn first_value(
    config: &Config,
    client: &Client,
) -> Result<Option<(Vec<u8>, String, i32, i64)>, EngineError> {
    let mut consumer = PartitionConsumer::new(client.clone(), ConsumerConfig::default())?;
    let mut assign = Vec::new();
    for (topic, partition) in super::status::job_partitions(config, client).await? {
        assign.push((topic, partition, StartAt::Earliest));
    }
    if assign.is_empty() {
        return Ok(None);
    }
    consumer.assign(&assign).await?;
    let deadline = Instant::now() + FIRST_RECORD_WAIT;
    while Instant::now() < deadline {
        let fetched = consumer.poll_timeout(Duration::from_millis(500)).await?;
        // The lowest offset of the lowest partition among what arrived: stable for one
        // partition, and close to "the first record" for several.
        let first = fetched
            .records()
            .filter_map(|r| {
                r.record
                    .value
                    .map(|v| (r.topic, r.partition, r.record.offset, v))
            })
            .min_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        if let Some((topic, partition, offset, value)) = first {
            return Ok(Some((value.to_vec(), topic.to_owned(), partition, offset)));
        }
        if assign
            .iter()
            .all(|(t, p, _)| consumer.lag(t, *p) == Some(0))
        {
            break;
        }
    }
    Ok(None)
}

/// Columns for an Avro job without `[[columns]]`, from the registry (see the module docs);
/// prints them to standard error.
pub async fn infer_avro(
    config: &Config,
    client: &Client,
) -> Result<(Vec<ColumnSpec>, AvroOrigin), EngineError> {
    let FormatSpec::Avro { registry, .. } = format_spec(&config.format)? else {
        return Err(EngineError::Setup(
            "Avro columns are inferred only for format.type = \"avro\"".to_owned(),
        ));
    };
    infer_avro_with(config, client, &registry).await
}

/// Like [`infer_avro`], with schemas from `registry`: a decoder built on the same client (or
/// a clone) then finds the schema in the cache instead of fetching it again.
pub async fn infer_avro_with(
    config: &Config,
    client: &Client,
    registry: &RegistryClient,
) -> Result<(Vec<ColumnSpec>, AvroOrigin), EngineError> {
    let Some((value, topic, partition, offset)) = first_value(config, client).await? else {
        return Err(EngineError::Setup(
            "no [[columns]] given and no record to take the Avro schema id from: list the \
             columns, or produce a record first"
                .to_owned(),
        ));
    };
    let schema_id = confluent_schema_id(&value).ok_or_else(|| {
        EngineError::Setup(format!(
            "no [[columns]] given, and the first record ({topic}-{partition} offset {offset}) \
             is not in the Confluent Avro wire format (magic byte 0 and a schema id)"
        ))
    })?;
    let schema = registry.fetch(schema_id).await.map_err(|e| {
        EngineError::Setup(format!(
            "no [[columns]] given; fetching schema id {schema_id} (of {topic}-{partition} \
                 offset {offset}) from the registry: {e}"
        ))
    })?;
    let columns = avro_value_columns(&schema).map_err(|e| {
        EngineError::Setup(format!(
            "no [[columns]] given; schema id {schema_id} (of {topic}-{partition} offset \
             {offset}): {e}"
        ))
    })?;
    eprintln!(
        "kingest: no [[columns]] given; taken from the registry's schema id {schema_id} \
         (the writer schema of {topic}-{partition} offset {offset}):"
    );
    for c in &columns {
        let null = if c.nullable { "" } else { " not null" };
        eprintln!("  {} {}{null}", c.name, format_type(&c.data_type));
    }
    Ok((
        columns,
        AvroOrigin {
            schema_id,
            topic,
            partition,
            offset,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{RecordContext, RowDecoder};
    use apache_avro::types::Value;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;

    fn types(cols: &[ColumnSpec]) -> Vec<(String, String, bool)> {
        cols.iter()
            .map(|c| (c.name.clone(), format_type(&c.data_type), c.nullable))
            .collect()
    }

    fn framed(id: u32, datum: Vec<u8>) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&id.to_be_bytes());
        v.extend(datum);
        v
    }

    #[test]
    fn schema_ids_are_read_from_the_header() {
        assert_eq!(confluent_schema_id(&[0, 0, 0, 1, 2, 9]), Some(258));
        assert_eq!(confluent_schema_id(&[0, 0, 0, 1, 2]), Some(258));
        assert_eq!(confluent_schema_id(&[0, 0, 1]), None);
        assert_eq!(confluent_schema_id(b"{\"a\": 1}"), None);
    }

    #[test]
    fn records_map_field_by_field_with_logical_types() {
        let schema = AvroSchema::parse_str(
            r#"{"type": "record", "name": "Order", "fields": [
                {"name": "id", "type": "long"},
                {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "local", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
                {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
                {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
                {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line",
                    "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
                {"name": "ship", "type": ["null", {"type": "record", "name": "Addr",
                    "fields": [{"name": "city", "type": ["null", "string"]}]}]},
                {"name": "again", "type": ["null", "Addr"]}
            ]}"#,
        )
        .unwrap();
        let cols = avro_value_columns(&schema).unwrap();
        let want = [
            ("id", "int64", false),
            ("ref", "string", false),
            ("at", "timestamp(us, UTC)", false),
            ("local", "timestamp(ms)", false),
            ("day", "date", true),
            ("price", "decimal(9, 2)", false),
            ("lines", "list<struct<sku: string, qty: int32>>", false),
            ("ship", "struct<city: string>", true),
            ("again", "struct<city: string>", true),
        ];
        assert_eq!(
            types(&cols),
            want.map(|(n, t, b)| (n.to_owned(), t.to_owned(), b))
        );
        for c in &cols {
            assert_eq!(
                c.source,
                Source::Value(Field::AvroPath(vec![c.name.clone()]))
            );
        }
    }

    #[test]
    fn a_bare_value_is_one_column_that_decodes() {
        let schema =
            AvroSchema::parse_str(r#"{"type": "long", "logicalType": "timestamp-micros"}"#)
                .unwrap();
        let cols = avro_value_columns(&schema).unwrap();
        assert_eq!(
            types(&cols),
            [("value".to_owned(), "timestamp(us, UTC)".to_owned(), false)]
        );
        let registry = RegistryClient::offline();
        registry
            .insert(3, r#"{"type": "long", "logicalType": "timestamp-micros"}"#)
            .unwrap();
        let mut dec = RowDecoder::new(&cols, &FormatSpec::avro(registry), None).unwrap();
        let datum =
            apache_avro::to_avro_datum(&schema, Value::TimestampMicros(1_700_000_000_000_001))
                .unwrap();
        let value = framed(3, datum);
        let rec = RecordContext {
            topic: "t",
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: None,
            value: Some(&value),
            headers: Default::default(),
        };
        dec.append(&rec).unwrap();
        let b = dec.finish();
        let ts = b.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_700_000_000_000_001);

        let nullable =
            avro_value_columns(&AvroSchema::parse_str(r#"["null", "long"]"#).unwrap()).unwrap();
        assert_eq!(
            types(&nullable),
            [("value".to_owned(), "int64".to_owned(), true)]
        );
        let registry = RegistryClient::offline();
        registry.insert(4, r#"["null", "long"]"#).unwrap();
        let mut dec = RowDecoder::new(&nullable, &FormatSpec::avro(registry), None).unwrap();
        for (i, v) in [framed(4, vec![2, 84]), framed(4, vec![0])]
            .iter()
            .enumerate()
        {
            let rec = RecordContext {
                topic: "t",
                partition: 0,
                offset: i as i64,
                timestamp: 0,
                key: None,
                value: Some(v),
                headers: Default::default(),
            };
            dec.append(&rec).unwrap();
        }
        let b = dec.finish();
        let v = b.column(0).as_primitive::<Int64Type>();
        assert_eq!(v.value(0), 42);
        assert!(v.is_null(1));
    }

    #[test]
    fn unions_of_several_types_are_refused_with_the_field_named() {
        let schema = AvroSchema::parse_str(
            r#"{"type": "record", "name": "r", "fields": [{"name": "u", "type": ["int", "string"]}]}"#,
        )
        .unwrap();
        let e = avro_value_columns(&schema).unwrap_err();
        assert!(e.to_string().contains("\"u\""), "{e}");
        assert!(e.to_string().contains("several non-null types"), "{e}");
    }
}
