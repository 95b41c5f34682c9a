//! The ingest engine: a consumer group member that decodes records straight into Arrow
//! builders, one set per partition, writes them to the sink when a flush threshold is reached,
//! and commits the offsets the sink made durable to the group (for lag tools).
//!
//! Exactly once rests on the sink: a Parquet file carries the offsets it covers and becomes
//! visible in one rename, and on start (and on every assignment) the engine resumes each
//! partition from the sink's own offsets, ahead of the group's committed offsets. A process
//! killed at any moment loses only rows that were not yet in a committed file, and those are
//! read again.
//!
//! One file per part: `job.rs` (what the run does on each group event: resume, decode,
//! filter, write, flush), `eof.rs` (when `--until-eof` may stop), `errors.rs` and `dead_letter.rs` (`on_error`, the error limit, dead
//! letters to a file or a topic), `progress.rs` (the live line on a terminal, log events
//! otherwise), `metrics.rs` and `metrics_http.rs` (Prometheus at `--metrics-addr`), and
//! `build.rs` (configuration to client, decoders and sink). Filters are [`crate::filter`].

pub mod avro_infer;
mod build;
pub mod compact;
mod dead_letter;
pub mod eof;
mod errors;
mod job;
mod metrics;
mod metrics_http;
pub mod parquet_reset;
pub mod preview;
mod progress;
pub mod reset;
pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kingest_client::consumer::{ConsumerConfig, IsolationLevel, OffsetReset, StartAt};
use kingest_client::group::consumer::{
    AssignorKind, GroupConsumer, GroupConsumerConfig, GroupEvent, TopicSubscription,
};
use kingest_client::{Client, ClientError};
use thiserror::Error;

pub use build::{
    client_config, columns, delta_config, format_spec, group_properties, iceberg_config, open_sink,
    parquet_config, postgres_config,
};
pub use progress::{render_line, ProgressMode, Totals};

use crate::config::{Config, Isolation, StartAt as StartConfig};
use crate::decode::DecodeError;
use crate::filter::{BoundFilter, Filter, FilterError};
use crate::schema::{arrow_schema, ColumnSpec};
use crate::sink::{OffsetRange, SinkError};

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
    /// A record could not be decoded and `on_error = "fail"` (or its schema could not be
    /// fetched: the registry was unreachable).
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
    /// A dead letter could not be produced to the dead-letter topic.
    #[error("dead letter topic {topic}: the record from {source_topic}-{partition} offset {offset} was not delivered: {source}")]
    DeadLetterTopic {
        /// The dead-letter topic.
        topic: String,
        /// The bad record's topic.
        source_topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// The producer's error (boxed, like [`EngineError::Client`]).
        source: Box<ClientError>,
    },
    /// `--until-eof` saw no progress for its timeout while partitions were still short of
    /// the end offsets they had when the run started.
    #[error("--until-eof: nothing moved for {}s and {} partition(s) are not written to the end offsets they had at the start: {}", waited.as_secs(), short.len(), eof::list(short))]
    Incomplete {
        /// How long nothing moved.
        waited: Duration,
        /// The short partitions.
        short: Vec<eof::ShortPartition>,
    },
    /// The filter failed on a batch (a column value it had to cast did not fit).
    #[error("{topic}-{partition} offsets {offsets}: {source}")]
    Filter {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offsets of the batch.
        offsets: OffsetRange,
        /// The error.
        source: Box<FilterError>,
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
    /// Stop once every partition of the job's topics is written up to the end offset it had
    /// at the start, by this process or another member of the group (dgkafka's
    /// `-quit-at-eof`; see [`eof`]).
    pub until_eof: bool,
    /// With `until_eof`: how long to wait without progress for partitions that stay short
    /// before failing with [`EngineError::Incomplete`] (default: [`default_eof_timeout`]).
    pub eof_timeout: Option<Duration>,
    /// How progress is shown (a live line on a terminal, log events otherwise).
    pub progress: ProgressMode,
    /// Serve Prometheus metrics at `http://ADDR/metrics` while the job runs.
    pub metrics_addr: Option<SocketAddr>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records read.
    pub records: u64,
    /// Bytes of record keys and values read.
    pub bytes: u64,
    /// Rows written.
    pub rows: u64,
    /// Rows the filter dropped (their records still count as read).
    pub filtered: u64,
    /// Records that failed to decode, and rows the sink refused (skipped or dead-lettered).
    pub errors: u64,
    /// Files committed.
    pub files: usize,
    /// Flushes (each makes zero or more files durable).
    pub flushes: u64,
}

/// Runs a job until `shutdown` resolves (SIGINT/SIGTERM), or the end of the data with
/// `until_eof`: flushing, committing and leaving the group on the way out.
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, EngineError> {
    // A filter that does not parse fails before anything connects.
    let filter = config
        .filter
        .as_deref()
        .map(Filter::parse)
        .transpose()
        .map_err(filter_setup)?;
    let client = Client::connect(client_config(&config)?).await?;
    // One value format for inference and decoding: an Avro job's registry client (and its
    // schema cache) then serves both, so the schema is fetched once.
    let value_format = format_spec(&config.format)?;
    let columns = if config.columns.is_empty() {
        infer(&config, &client, &value_format).await?
    } else {
        columns(&config)?
    };
    let schema = arrow_schema(&columns);
    let filter: Option<BoundFilter> = filter
        .map(|f| f.bind(&schema))
        .transpose()
        .map_err(filter_setup)?;
    let sink = open_sink(&config, schema.clone()).await?;
    let decoding = job::Decoding {
        columns,
        value: value_format,
        key: config.key_format.as_ref().map(format_spec).transpose()?,
        filter,
    };
    let errors = errors::BadRecords::open(&config, &client).await?;
    let metrics = metrics::Metrics::new();
    // Serves until the run returns (dropping it stops the endpoint).
    let _server = match options.metrics_addr {
        Some(addr) => {
            let server = metrics_http::serve(addr, metrics.registry()).await?;
            tracing::info!(
                "serving Prometheus metrics at http://{}/metrics",
                server.addr()
            );
            Some(server)
        }
        None => None,
    };
    let mut eof = match options.until_eof {
        true => {
            let timeout = options
                .eof_timeout
                .unwrap_or_else(|| default_eof_timeout(&config));
            Some(eof::Eof::at_start(&config, &client, timeout).await?)
        }
        false => None,
    };
    let consumer = GroupConsumer::new(client, group_config(&config)?)?;
    let progress = progress::Progress::new(options.progress);
    let mut job = job::Job::new(config, sink, consumer, decoding, errors, metrics, progress);

    let mut lag_updated = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            e = tokio::time::timeout(Duration::from_millis(500), job.consumer.poll()) => e,
        };
        if let Ok(event) = event {
            match event? {
                GroupEvent::Assigned(partitions) => job.assigned(partitions).await?,
                GroupEvent::Revoked(partitions) => job.revoked(partitions).await?,
                GroupEvent::Lost(partitions) => job.lost(partitions),
                GroupEvent::Records(fetched) => job.records(&fetched).await?,
            }
        }
        job.write_due().await?;
        job.tick(&mut lag_updated);
        if let Some(eof) = &mut eof {
            match eof.check(&mut job).await {
                Ok(eof::EofState::Done) => break,
                Ok(eof::EofState::Waiting) => {}
                Err(e) => {
                    // What was read is still written (it is valid, and saves the next run
                    // reading it again) before saying which partitions stay short.
                    job.finish().await?;
                    return Err(e);
                }
            }
        }
    }
    job.finish().await
}

/// How long `--until-eof` waits without progress on partitions owned elsewhere: the flush age
/// (within which a live member of the group writes what it read) plus a minute (within which a
/// dead member's session expires and its partitions move).
pub fn default_eof_timeout(config: &Config) -> Duration {
    config.flush.age.0 + Duration::from_secs(60)
}

fn filter_setup(e: FilterError) -> EngineError {
    EngineError::Setup(e.to_string())
}

/// The group member's settings: subscription, assignors, isolation, reset policy, and
/// `source.properties`.
fn group_config(config: &Config) -> Result<GroupConsumerConfig, EngineError> {
    let mut group_config = GroupConsumerConfig::new(&config.source.group, &[]);
    group_config.subscription = match &config.source.topic_pattern {
        Some(p) => TopicSubscription::Pattern(
            regex::Regex::new(p)
                .map_err(|e| EngineError::Setup(format!("source.topic_pattern: {e}")))?,
        ),
        None => TopicSubscription::Topics(config.source.topic_names()),
    };
    group_config.assignors = vec![AssignorKind::Range, AssignorKind::CooperativeSticky];
    if config.source.group_protocol == crate::config::GroupProtocolConfig::Consumer {
        group_config.group_protocol = kingest_client::group::consumer::GroupProtocol::Consumer;
    }
    group_config.auto_commit = false;
    group_config.heartbeat_interval = Duration::from_millis(1000);
    group_config.session_timeout = Duration::from_secs(10);
    group_config.consumer = ConsumerConfig::default();
    group_config.consumer.isolation_level = match config.source.isolation {
        Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
    };
    group_config.consumer.offset_reset = match config.source.start {
        StartConfig::Latest => OffsetReset::Latest,
        _ => OffsetReset::Earliest,
    };
    group_properties(config, &mut group_config)?;
    Ok(group_config)
}

/// Columns for a JSON or Avro job that names none: for JSON inferred from up to 200 records at
/// the start of the topics, for Avro taken from the registry (see [`avro_infer`]), and printed
/// so the user can paste them into the config.
async fn infer(
    config: &Config,
    client: &Client,
    value_format: &crate::decode::FormatSpec,
) -> Result<Vec<ColumnSpec>, EngineError> {
    if let crate::decode::FormatSpec::Avro { registry, .. } = value_format {
        return Ok(avro_infer::infer_avro_with(config, client, registry)
            .await?
            .0);
    }
    if !matches!(config.format, crate::config::FormatConfig::Json { .. }) {
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
