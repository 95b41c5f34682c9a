//! The dry run behind `kingest test` (Memgraph's `TEST STREAM`): read a few records from
//! where the job would start, decode them with the job's columns, and hand back the rows and
//! the per-record errors, writing nothing and committing nothing.
//!
//! No consumer group is joined (joining would take partitions away from a running job): a
//! [`PartitionConsumer`] reads every partition of the job from the position `kingest run`
//! would resume at — the sink's offset, else a `source.start` naming an offset or a time, else
//! the group's committed offset (read, not changed), else `source.start` `earliest`/`latest`
//! (see [`super::status::start_overrides_group`]) — or from the earliest offsets with
//! [`PreviewFrom::Earliest`].
//! Each start is reported with where it came from. A record that does not decode is reported
//! with its error next to its offset and the preview goes on, whatever `errors.on_error` says.
//! With a `filter`, each row says whether it passes (and would be written).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kingest_client::admin::{Admin, OffsetSpec};
use kingest_client::consumer::{
    ConsumerConfig, IsolationLevel, OffsetReset, PartitionConsumer, StartAt,
};
use kingest_client::Client;
use serde::Serialize;

use super::avro_infer::confluent_schema_id;
use super::status::{
    group_offsets, job_partitions, resolve_columns, sink_offsets, start_overrides_group,
};
use super::{client_config, format_spec, EngineError};
use crate::config::{Config, Isolation, StartAt as StartConfig};
use crate::decode::{DecodeError, FormatSpec, RecordContext, RowDecoder};
use crate::filter::BoundFilter;
use crate::schema::{arrow_schema, ColumnSpec};

/// Where the preview starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PreviewFrom {
    /// Where `kingest run` would resume (sink, then group, then `source.start`).
    #[default]
    Resume,
    /// The earliest offset of every partition.
    Earliest,
}

/// How much to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewOptions {
    /// Records to decode at most, over all partitions.
    pub limit: usize,
    /// Where to start.
    pub from: PreviewFrom,
    /// How long to wait for records before showing what arrived.
    pub wait: Duration,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        Self {
            limit: 10,
            from: PreviewFrom::Resume,
            wait: Duration::from_secs(10),
        }
    }
}

/// Where one partition was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewStart {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset read.
    pub offset: i64,
    /// Why there: `sink`, `group`, `source.start = ...` or `--from earliest`.
    pub from: String,
    /// The log end offset when the preview began.
    pub log_end: i64,
}

/// One record read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch; -1 when it has none).
    pub timestamp: i64,
    /// The decoded row, column name to value, as the stdout sink writes it (`None` when the
    /// record failed).
    pub row: Option<serde_json::Map<String, serde_json::Value>>,
    /// Why the record was rejected.
    pub error: Option<String>,
    /// With a `filter`: whether the row passes it and would be written (`None` without a
    /// filter, or when the record failed).
    pub kept: Option<bool>,
}

/// What a preview read.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The job's columns (inferred ones included).
    pub columns: Vec<ColumnSpec>,
    /// Where each partition was read from, sorted.
    pub starts: Vec<PreviewStart>,
    /// The records, by topic, partition and offset.
    pub records: Vec<PreviewRecord>,
}

/// A decode error without the record's coordinates (they are shown beside it):
/// `column "count" (JSON /count): ...`, which is what [`DecodeError`] displays.
pub fn error_text(e: &DecodeError) -> String {
    e.to_string()
}

/// A start offset known already, or one to look up.
type Wanted = Result<i64, OffsetSpec>;

/// Where each partition starts, and why (see the module docs).
async fn starts(
    config: &Config,
    client: &Client,
    columns: &[ColumnSpec],
    from: PreviewFrom,
) -> Result<Vec<PreviewStart>, EngineError> {
    let admin = Admin::new(client.clone());
    let parts = job_partitions(config, client).await?;
    let bounds = super::status::log_bounds(config, &admin, &parts).await?;
    let (sink, group) = match from {
        PreviewFrom::Earliest => (Default::default(), HashMap::new()),
        PreviewFrom::Resume => (
            sink_offsets(config, arrow_schema(columns)).await?,
            group_offsets(&admin, &config.source.group, &parts).await?,
        ),
    };
    // Per partition: a known offset, or a spec to look up.
    let mut wanted: Vec<((String, i32), Wanted, String)> = Vec::new();
    for key in parts {
        let (spec, why) = if from == PreviewFrom::Earliest {
            (Err(OffsetSpec::Earliest), "--from earliest".to_owned())
        } else if let Some(o) = sink.get(&key) {
            (Ok(*o), "sink".to_owned())
        } else if let (false, Some(o)) = (start_overrides_group(config, &key), group.get(&key)) {
            (Ok(*o), "group".to_owned())
        } else {
            match &config.source.start {
                StartConfig::Earliest => (
                    Err(OffsetSpec::Earliest),
                    "source.start = earliest".to_owned(),
                ),
                StartConfig::Latest => {
                    (Err(OffsetSpec::Latest), "source.start = latest".to_owned())
                }
                StartConfig::Timestamp(ms) => (
                    Err(OffsetSpec::Timestamp(*ms)),
                    format!("source.start = {ms} (ms)"),
                ),
                StartConfig::Offsets(map) => match map.get(&key) {
                    Some(o) => (Ok(*o), "source.start offsets".to_owned()),
                    None => (
                        Err(OffsetSpec::Earliest),
                        "earliest (not in source.start offsets)".to_owned(),
                    ),
                },
            }
        };
        wanted.push((key, spec, why));
    }
    let lookups: Vec<(&str, i32, OffsetSpec)> = wanted
        .iter()
        .filter_map(|((t, p), spec, _)| spec.err().map(|s| (t.as_str(), *p, s)))
        .collect();
    let read_committed = config.source.isolation == Isolation::ReadCommitted;
    let found = if lookups.is_empty() {
        HashMap::new()
    } else {
        admin.list_offsets(&lookups, read_committed).await?
    };
    Ok(wanted
        .into_iter()
        .map(|(key, spec, from)| {
            let (log_start, log_end) = bounds.get(&key).copied().unwrap_or((0, 0));
            let offset = match spec {
                Ok(o) => o,
                // A timestamp past the last record finds nothing (-1): the log end, as the
                // Java client resets by time.
                Err(_) => match found.get(&key) {
                    Some(l) if l.offset >= 0 => l.offset,
                    _ => log_end,
                },
            };
            PreviewStart {
                topic: key.0,
                partition: key.1,
                offset: offset.max(log_start),
                from,
                log_end,
            }
        })
        .collect())
}

/// Fetches the Avro schemas `ctx` needs (async), so that the decoder finds them cached.
async fn prefetch_schemas(
    ctx: &RecordContext<'_>,
    value: &FormatSpec,
    key: Option<&FormatSpec>,
) -> Result<(), EngineError> {
    for (format, bytes) in [(Some(value), ctx.value), (key, ctx.key)] {
        let (Some(FormatSpec::Avro { registry, .. }), Some(bytes)) = (format, bytes) else {
            continue;
        };
        let Some(id) = confluent_schema_id(bytes) else {
            continue;
        };
        if registry.cached(id).is_some() {
            continue;
        }
        // A failure shows again, with the record, when the decoder asks.
        let _ = registry.fetch(id).await;
    }
    Ok(())
}

/// Reads and decodes up to `options.limit` records (see the module docs).
pub async fn preview(config: &Config, options: &PreviewOptions) -> Result<Preview, EngineError> {
    let client = Client::connect(client_config(config)?).await?;
    let value_format = format_spec(&config.format)?;
    let columns = match &value_format {
        // Inferred with the decoder's own registry client, so the schema is fetched once.
        FormatSpec::Avro { registry, .. } if config.columns.is_empty() => {
            super::avro_infer::infer_avro_with(config, &client, registry)
                .await?
                .0
        }
        _ => resolve_columns(config, &client).await?,
    };
    let key_format = config.key_format.as_ref().map(format_spec).transpose()?;
    let mut decoder = RowDecoder::new(&columns, &value_format, key_format.as_ref())
        .map_err(|e| EngineError::Setup(e.to_string()))?;
    let starts = starts(config, &client, &columns, options.from).await?;

    let mut consumer_config = ConsumerConfig::default();
    consumer_config.isolation_level = match config.source.isolation {
        Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
    };
    consumer_config.offset_reset = OffsetReset::Earliest;
    let mut consumer = PartitionConsumer::new(client.clone(), consumer_config)?;
    let assign: Vec<(&str, i32, StartAt)> = starts
        .iter()
        .filter(|s| s.offset < s.log_end)
        .map(|s| (s.topic.as_str(), s.partition, StartAt::Offset(s.offset)))
        .collect();
    let ends: HashMap<(&str, i32), i64> = starts
        .iter()
        .map(|s| ((s.topic.as_str(), s.partition), s.log_end))
        .collect();
    let mut records = Vec::new();
    // Per record read: its coordinates and the row it became, if any.
    let mut rows: Vec<Option<usize>> = Vec::new();
    if !assign.is_empty() && options.limit > 0 {
        consumer.assign(&assign).await?;
    }
    let deadline = Instant::now() + options.wait;
    while !assign.is_empty() && records.len() < options.limit && Instant::now() < deadline {
        let fetched = consumer.poll_timeout(Duration::from_millis(500)).await?;
        for r in fetched.records() {
            if records.len() >= options.limit {
                break;
            }
            let ctx = RecordContext::new(r.topic, r.partition, &r.record);
            prefetch_schemas(&ctx, &value_format, key_format.as_ref()).await?;
            let (row, error) = match decoder.append(&ctx) {
                Ok(()) => (Some(decoder.rows() - 1), None),
                Err(e) => (None, Some(error_text(&e))),
            };
            rows.push(row);
            records.push(PreviewRecord {
                topic: r.topic.to_owned(),
                partition: r.partition,
                offset: r.record.offset,
                timestamp: r.record.timestamp,
                row: None,
                error,
                kept: None,
            });
        }
        let done = assign.iter().all(|(t, p, _)| {
            let end = ends.get(&(*t, *p)).copied().unwrap_or(0);
            consumer.lag(t, *p) == Some(0) || consumer.position(t, *p).is_some_and(|o| o >= end)
        });
        if done {
            break;
        }
    }
    consumer.close();
    client.close().await;

    let batch = decoder.finish();
    let json = rows_as_json(&batch)?;
    // The job's filter, as the run applies it to decoded rows: true keeps a row, false or
    // NULL drops it.
    let kept = match &config.filter {
        Some(text) => {
            let mask = BoundFilter::new(text, &batch.schema())
                .and_then(|f| f.evaluate(&batch))
                .map_err(|e| EngineError::Setup(format!("filter: {e}")))?;
            Some(mask)
        }
        None => None,
    };
    for (record, row) in records.iter_mut().zip(rows) {
        record.row = row.and_then(|i| json.get(i).cloned());
        record.kept = match (&kept, row) {
            (Some(mask), Some(i)) => Some(arrow_array::Array::is_valid(mask, i) && mask.value(i)),
            _ => None,
        };
    }
    records
        .sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    Ok(Preview {
        columns,
        starts,
        records,
    })
}

/// The rows of `batch` as JSON objects, encoded as the stdout sink encodes them.
fn rows_as_json(
    batch: &arrow_array::RecordBatch,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, EngineError> {
    use arrow_json::writer::{LineDelimited, WriterBuilder};
    let mut buf = Vec::new();
    {
        let mut w = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(&mut buf);
        w.write(batch)
            .and_then(|()| w.finish())
            .map_err(|e| EngineError::Setup(format!("encoding the rows as JSON: {e}")))?;
    }
    let mut out = Vec::with_capacity(batch.num_rows());
    for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line)
            .map_err(|e| EngineError::Setup(format!("reading back the rows' JSON: {e}")))?;
        if let serde_json::Value::Object(m) = v {
            out.push(m);
        }
    }
    // A batch of zero columns has rows but writes empty objects, or none at all.
    out.resize_with(batch.num_rows(), serde_json::Map::new);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::FormatSpec;
    use crate::schema::{parse_type, FormatKind, Source};

    #[test]
    fn errors_read_without_the_record_coordinates() {
        let cols = [ColumnSpec::new(
            "count",
            parse_type("int64").unwrap(),
            Source::parse("/count", FormatKind::Json).unwrap(),
        )
        .not_null()];
        let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
        let ctx = |v: &'static [u8]| RecordContext {
            topic: "t",
            partition: 0,
            offset: 7,
            timestamp: 0,
            key: None,
            value: Some(v),
            headers: Default::default(),
        };
        let e = dec.append(&ctx(b"{\"count\": \"x\"}")).unwrap_err();
        let text = error_text(&e);
        assert!(
            text.starts_with("column \"count\" (JSON /count): "),
            "{text}"
        );
        assert!(!text.contains("offset 7"), "{text}");
        let e = dec.append(&ctx(b"{oops")).unwrap_err();
        let text = error_text(&e);
        assert!(text.starts_with("value (json): "), "{text}");
    }

    #[test]
    fn rows_become_json_objects_in_row_order() {
        let cols = [
            ColumnSpec::new(
                "a",
                parse_type("int64").unwrap(),
                Source::parse("/a", FormatKind::Json).unwrap(),
            ),
            ColumnSpec::new(
                "at",
                parse_type("timestamp(ms, UTC)").unwrap(),
                Source::parse("/at", FormatKind::Json).unwrap(),
            ),
        ];
        let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
        for (i, v) in [&b"{\"a\": 1, \"at\": 0}"[..], b"{\"a\": 2}"]
            .iter()
            .enumerate()
        {
            let ctx = RecordContext {
                topic: "t",
                partition: 0,
                offset: i as i64,
                timestamp: 0,
                key: None,
                value: Some(v),
                headers: Default::default(),
            };
            dec.append(&ctx).unwrap();
        }
        let rows = rows_as_json(&dec.finish()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["a"], serde_json::json!(1));
        assert!(rows[0]["at"]
            .as_str()
            .unwrap()
            .starts_with("1970-01-01T00:00:00"));
        assert_eq!(rows[1]["a"], serde_json::json!(2));
        assert_eq!(rows[1]["at"], serde_json::Value::Null);
    }
}
