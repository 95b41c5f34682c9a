//! The ingest engine: a consumer group member that decodes records straight into Arrow
//! builders, one set per partition, writes them to the sink when a flush threshold is reached,
//! and commits the offsets the sink made durable to the group (for lag tools).
//!
//! Exactly once rests on the sink: a Parquet file carries the offsets it covers and becomes
//! visible in one rename, and on start (and on every assignment) the engine resumes each
//! partition from the sink's own offsets, ahead of the group's committed offsets. A process
//! killed at any moment loses only rows that were not yet in a committed file, and those are
//! read again.

pub mod avro_infer;
mod build;
pub mod group_commit;
pub mod parquet_reset;
pub mod preview;
pub mod reset;
pub mod status;

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::time::{Duration, Instant};

use kingest_client::consumer::{ConsumerConfig, IsolationLevel, OffsetReset, StartAt};
use kingest_client::group::consumer::{
    AssignorKind, GroupConsumer, GroupConsumerConfig, GroupEvent, TopicSubscription,
};
use kingest_client::{Client, ClientError};
use thiserror::Error;

pub use build::{
    client_config, columns, format_spec, group_properties, open_sink, parquet_config,
    postgres_config,
};

use crate::config::{Config, ErrorLimit, Isolation, OnError, StartAt as StartConfig};
use crate::decode::{DecodeError, RecordContext, RowDecoder};
use crate::schema::{arrow_schema, ColumnSpec};
use crate::sink::{AnySink, CommittedFile, OffsetRange, PartitionKey, Sink, SinkError};

/// Why a run stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration could not be turned into a running job.
    #[error("{0}")]
    Setup(String),
    /// The Kafka client failed (boxed: client errors are large and rare).
    #[error(transparent)]
    Client(Box<ClientError>),
    /// The sink failed.
    #[error(transparent)]
    Sink(Box<SinkError>),
    /// A record could not be decoded and `on_error = "fail"`.
    #[error("{topic}-{partition} offset {offset}: {source}")]
    Record {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What was wrong (boxed: decode errors carry text and are rare).
        source: Box<DecodeError>,
    },
    /// More records failed than `errors.max_errors` allows.
    #[error("stopping: {errors} bad records of {records} exceed errors.max_errors ({limit}); the last at {topic}-{partition} offset {offset}: {last}")]
    ErrorLimit {
        /// Bad records so far.
        errors: u64,
        /// Records seen so far.
        records: u64,
        /// The configured limit, as written.
        limit: String,
        /// Where the last bad record was.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// Its error.
        last: String,
    },
    /// The dead-letter file could not be written.
    #[error("dead letter file {path}: {source}")]
    DeadLetter {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl From<ClientError> for EngineError {
    fn from(e: ClientError) -> Self {
        EngineError::Client(Box::new(e))
    }
}

impl From<SinkError> for EngineError {
    fn from(e: SinkError) -> Self {
        EngineError::Sink(Box::new(e))
    }
}

/// How `kingest run` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop once every assigned partition is caught up and everything is written
    /// (dgkafka's `-quit-at-eof`).
    pub until_eof: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records read.
    pub records: u64,
    /// Rows written.
    pub rows: u64,
    /// Records that failed to decode (skipped or dead-lettered).
    pub errors: u64,
    /// Files committed.
    pub files: usize,
}

/// One assigned partition's rows in the making.
struct Part {
    decoder: RowDecoder,
    /// The first offset not yet in the sink (the start of the next write).
    first: i64,
    /// The offset after the last record decoded.
    next: i64,
    since: Instant,
}

/// Runs a job until `shutdown` resolves (SIGINT/SIGTERM), or the end of the data with
/// `until_eof`: flushing, committing and leaving the group on the way out.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, EngineError> {
    let client = Client::connect(client_config(&config)?).await?;
    let columns = if config.columns.is_empty() {
        infer(&config, &client).await?
    } else {
        columns(&config)?
    };
    let schema = arrow_schema(&columns);
    let mut sink = open_sink(&config, schema.clone()).await?;
    let value_format = format_spec(&config.format)?;
    let key_format = config.key_format.as_ref().map(format_spec).transpose()?;
    let limit = config
        .errors
        .limit()
        .map_err(|e| EngineError::Setup(e.to_string()))?;

    let mut group_config = GroupConsumerConfig::new(&config.source.group, &[]);
    group_config.subscription = match &config.source.topic_pattern {
        Some(p) => TopicSubscription::Pattern(
            regex::Regex::new(p)
                .map_err(|e| EngineError::Setup(format!("source.topic_pattern: {e}")))?,
        ),
        None => TopicSubscription::Topics(config.source.topic_names()),
    };
    group_config.assignors = vec![AssignorKind::Range, AssignorKind::CooperativeSticky];
    group_config.auto_commit = false;
    group_config.heartbeat_interval = Duration::from_millis(1000);
    group_config.session_timeout = Duration::from_secs(10);
    group_config.consumer = ConsumerConfig {
        isolation_level: match config.source.isolation {
            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
            Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
        },
        offset_reset: match config.source.start {
            StartConfig::Latest => OffsetReset::Latest,
            _ => OffsetReset::Earliest,
        },
        ..ConsumerConfig::default()
    };
    group_properties(&config, &mut group_config)?;
    let mut consumer = GroupConsumer::new(client, group_config)?;
    let mut parts: HashMap<(String, i32), Part> = HashMap::new();
    let mut summary = RunSummary::default();
    let mut dead_letter = match &config.errors.dead_letter_file {
        Some(path) if config.errors.on_error == OnError::DeadLetter => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| EngineError::DeadLetter {
                    path: path.clone(),
                    source,
                })?;
            Some((path.clone(), std::io::BufWriter::new(file)))
        }
        _ => None,
    };
    let age = config.flush.age.0;
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            e = tokio::time::timeout(Duration::from_millis(500), consumer.poll()) => e,
        };
        match event {
            Err(_) => {}
            Ok(event) => match event? {
                GroupEvent::Assigned(partitions) => {
                    let resume = sink.committed_offsets().await?;
                    for (topic, partition) in partitions {
                        let decoder = RowDecoder::new(&columns, &value_format, key_format.as_ref())
                            .map_err(|e| EngineError::Setup(e.to_string()))?;
                        let key = (topic.clone(), partition);
                        let pc = consumer.partition_consumer();
                        if let Some(offset) = resume.get(&key) {
                            // The sink's offsets win over the group's: they are what is durable.
                            pc.seek(&topic, partition, *offset)?;
                        } else if let StartConfig::Offsets(o) = &config.source.start {
                            if let Some(offset) = o.get(&key) {
                                pc.seek(&topic, partition, *offset)?;
                            }
                        } else if let StartConfig::Timestamp(ms) = config.source.start {
                            pc.seek_to(&topic, partition, StartAt::Timestamp(ms))?;
                        }
                        let position = pc.position(&topic, partition).unwrap_or(0);
                        parts.insert(
                            key,
                            Part {
                                decoder,
                                first: position,
                                next: position,
                                since: Instant::now(),
                            },
                        );
                    }
                }
                GroupEvent::Revoked(partitions) => {
                    // Flush what belongs to them before they go, and commit it.
                    for (topic, partition) in &partitions {
                        if let Some(mut part) = parts.remove(&(topic.clone(), *partition)) {
                            write_part(&mut sink, topic, *partition, &mut part, &mut summary)
                                .await?;
                        }
                    }
                    let files = sink.flush().await?;
                    commit(&mut consumer, &files, &mut summary).await;
                }
                GroupEvent::Lost(partitions) => {
                    // Another member may own them already: drop what was not written.
                    for tp in &partitions {
                        parts.remove(tp);
                    }
                }
                GroupEvent::Records(fetched) => {
                    for fp in fetched.partitions() {
                        let Some(part) = parts.get_mut(&(fp.topic().to_owned(), fp.partition()))
                        else {
                            continue;
                        };
                        for r in fp.records() {
                            summary.records += 1;
                            let ctx = RecordContext::new(fp.topic(), fp.partition(), &r.record);
                            let decoded = if part.decoder.needs_prepare(&ctx) {
                                // Fetching a schema from the registry blocks: keep it off the reactor.
                                tokio::task::block_in_place(|| part.decoder.prepare(&ctx))
                                    .and_then(|()| part.decoder.append(&ctx))
                            } else {
                                part.decoder.append(&ctx)
                            };
                            if let Err(e) = decoded {
                                summary.errors += 1;
                                on_bad_record(
                                    &config,
                                    &ctx,
                                    e,
                                    &summary,
                                    limit,
                                    dead_letter.as_mut(),
                                )?;
                            }
                        }
                        if part.decoder.rows() == 0 && part.first == part.next {
                            part.since = Instant::now();
                        }
                        part.next = fp.next_offset();
                    }
                }
            },
        }
        // Write partitions that reached a threshold; commit files the sink made durable.
        for ((topic, partition), part) in parts.iter_mut() {
            let due = part.decoder.rows() as u64 >= config.flush.rows
                || part.decoder.estimated_bytes() as u64 >= config.flush.bytes.0
                || (part.next > part.first && part.since.elapsed() >= age);
            if due {
                write_part(&mut sink, topic, *partition, part, &mut summary).await?;
            }
        }
        if sink.should_flush() {
            let files = sink.flush_due().await?;
            commit(&mut consumer, &files, &mut summary).await;
        }
        if options.until_eof && !parts.is_empty() {
            let pc = consumer.partition_consumer();
            let caught_up = parts.keys().all(|(t, p)| pc.lag(t, *p) == Some(0));
            if caught_up {
                break;
            }
        }
    }
    for ((topic, partition), part) in parts.iter_mut() {
        write_part(&mut sink, topic, *partition, part, &mut summary).await?;
    }
    if let Some((path, mut w)) = dead_letter {
        w.flush()
            .map_err(|source| EngineError::DeadLetter { path, source })?;
    }
    let files = sink.close().await?;
    commit(&mut consumer, &files, &mut summary).await;
    consumer.close().await?;
    Ok(summary)
}

/// Hands a partition's decoded rows to the sink (nothing when no new offset was read).
async fn write_part(
    sink: &mut AnySink,
    topic: &str,
    partition: i32,
    part: &mut Part,
    summary: &mut RunSummary,
) -> Result<(), EngineError> {
    if part.next <= part.first {
        return Ok(());
    }
    let batch = part.decoder.finish();
    if batch.num_rows() > 0 {
        sink.write(
            &PartitionKey::new(topic, partition),
            &batch,
            OffsetRange::new(part.first, part.next),
        )
        .await?;
        summary.rows += batch.num_rows() as u64;
        part.first = part.next;
    }
    part.since = Instant::now();
    Ok(())
}

/// Commits the offsets of durable files to the group, for lag tools; the sink's own offsets
/// are the ones that count, so a failed commit is only logged.
async fn commit(consumer: &mut GroupConsumer, files: &[CommittedFile], summary: &mut RunSummary) {
    summary.files += files.len();
    let mut offsets: HashMap<(String, i32), i64> = HashMap::new();
    for f in files {
        let e = offsets
            .entry((f.partition.topic.clone(), f.partition.partition))
            .or_insert(f.offsets.next);
        *e = (*e).max(f.offsets.next);
    }
    if let Err(e) = consumer.commit_offsets(&offsets).await {
        tracing::warn!(error = %e, "committing sink offsets to the group failed (the sink's offsets still hold)");
    }
}

fn on_bad_record(
    config: &Config,
    ctx: &RecordContext<'_>,
    error: DecodeError,
    summary: &RunSummary,
    limit: Option<ErrorLimit>,
    dead_letter: Option<&mut (String, std::io::BufWriter<std::fs::File>)>,
) -> Result<(), EngineError> {
    if config.errors.on_error == OnError::Fail {
        return Err(EngineError::Record {
            topic: ctx.topic.to_owned(),
            partition: ctx.partition,
            offset: ctx.offset,
            source: Box::new(error),
        });
    }
    tracing::warn!(topic = ctx.topic, partition = ctx.partition, offset = ctx.offset, error = %error, "bad record");
    if let Some((path, w)) = dead_letter {
        let line = serde_json::json!({
            "topic": ctx.topic, "partition": ctx.partition, "offset": ctx.offset, "timestamp": ctx.timestamp,
            "error": error.to_string(),
            "key_hex": ctx.key.map(hex::encode), "value_hex": ctx.value.map(hex::encode),
        });
        writeln!(w, "{line}").map_err(|source| EngineError::DeadLetter {
            path: path.clone(),
            source,
        })?;
    }
    let over = match limit {
        None => false,
        Some(ErrorLimit::Count(n)) => summary.errors > n,
        // A fraction needs some records to mean anything: judged from 100 records on.
        Some(ErrorLimit::Fraction(f)) => {
            summary.records >= 100 && summary.errors as f64 > f * summary.records as f64
        }
    };
    if over {
        return Err(EngineError::ErrorLimit {
            errors: summary.errors,
            records: summary.records,
            limit: config
                .errors
                .max_errors
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            topic: ctx.topic.to_owned(),
            partition: ctx.partition,
            offset: ctx.offset,
            last: error.to_string(),
        });
    }
    Ok(())
}

/// Columns for a JSON or Avro job that names none: for JSON inferred from up to 200 records at
/// the start of the topics, for Avro taken from the registry (see [`avro_infer`]), and printed
/// so the user can paste them into the config.
async fn infer(config: &Config, client: &Client) -> Result<Vec<ColumnSpec>, EngineError> {
    if let crate::config::FormatConfig::Avro { .. } = config.format {
        return Ok(avro_infer::infer_avro(config, client).await?.0);
    }
    if !matches!(config.format, crate::config::FormatConfig::Json) {
        return Err(EngineError::Setup(
            "columns are inferred for JSON and Avro only; list [[columns]]".to_owned(),
        ));
    }
    let mut consumer = kingest_client::consumer::PartitionConsumer::new(
        client.clone(),
        ConsumerConfig::default(),
    )?;
    let mut assign = Vec::new();
    for topic in config.source.topic_names() {
        for p in 0..client.partition_count(&topic).await? as i32 {
            assign.push((topic.clone(), p, StartAt::Earliest));
        }
    }
    consumer.assign(&assign).await?;
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while samples.len() < 200 && Instant::now() < deadline {
        let fetched = consumer.poll_timeout(Duration::from_millis(500)).await?;
        samples.extend(
            fetched
                .records()
                .filter_map(|r| r.record.value.map(<[u8]>::to_vec))
                .take(200 - samples.len()),
        );
        if assign
            .iter()
            .all(|(t, p, _)| consumer.lag(t, *p) == Some(0))
        {
            break;
        }
    }
    if samples.is_empty() {
        return Err(EngineError::Setup(
            "no [[columns]] given and no records to infer them from".to_owned(),
        ));
    }
    let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
    let columns = crate::schema::infer_json_schema(&refs)
        .map_err(|e| EngineError::Setup(format!("inferring columns: {e}")))?;
    eprintln!(
        "kingest: no [[columns]] given; inferred from {} records:",
        samples.len()
    );
    for c in &columns {
        eprintln!("  {} {}", c.name, crate::schema::format_type(&c.data_type));
    }
    Ok(columns)
}
