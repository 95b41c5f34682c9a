//! `kingest bench consume`: reads a topic with kingest's consumer — explicit partitions through
//! a [`PartitionConsumer`], or as a member of a consumer group through a [`GroupConsumer`] —
//! and reports records/s and MB/s. Every record's key and value lengths are read, so that the
//! records are really iterated (the values themselves are slices of the fetch response: no
//! copy, as an application would see them).
//!
//! It stops at the first of: `--records` consumed; the end offsets the partitions had when it
//! started (explicit partitions, no `--records`); nothing for `--idle-timeout`; `--duration`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kingest_client::admin::{Admin, OffsetSpec};
use kingest_client::consumer::{ConsumerConfig, Fetched, OffsetReset, PartitionConsumer, StartAt};
use kingest_client::group::consumer::{GroupConsumer, GroupConsumerConfig, GroupEvent};
use kingest_client::{Client, ClientConfig, ClientError};

use super::report::{mb_per_sec, per_sec, ConsumeReport, Progress};
use super::{BenchError, Common};

/// Options of `kingest bench consume`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Brokers, topic, output.
    #[command(flatten)]
    pub common: Common,
    /// Stop after this many records (0: at the end offsets seen at start; with --group, when
    /// idle).
    #[arg(long, default_value_t = 0)]
    pub records: u64,
    /// Consume as a member of this consumer group (offsets are committed as usual).
    #[arg(long, conflicts_with = "partitions")]
    pub group: Option<String>,
    /// Consume these partitions (comma-separated; default: all of the topic's).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<i32>,
    /// Where to start: earliest or latest (for a group: where partitions without a committed
    /// offset start).
    #[arg(long, default_value = "earliest")]
    pub from: String,
    /// Stop when nothing arrived for this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub idle_timeout: f64,
    /// Stop after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    pub duration: f64,
    /// `max.partition.fetch.bytes` (default: the consumer's, 1 MiB).
    #[arg(long)]
    pub max_partition_fetch_bytes: Option<usize>,
    /// `fetch.max.bytes` (default: the consumer's, 50 MiB).
    #[arg(long)]
    pub fetch_max_bytes: Option<usize>,
    /// Skip CRC checks (`check.crcs=false`).
    #[arg(long)]
    pub no_check_crcs: bool,
}

/// The consumer the options ask for.
enum Source {
    Partitions {
        consumer: Box<PartitionConsumer>,
        /// Partition → end offset at start, when the run stops at the end.
        ends: Option<BTreeMap<i32, i64>>,
    },
    Group(Box<GroupConsumer>),
}

fn seconds(s: f64, name: &str) -> Result<Option<Duration>, BenchError> {
    if !s.is_finite() || s < 0.0 {
        return Err(BenchError::Usage(format!(
            "{name} must be 0 or more seconds"
        )));
    }
    Ok((s > 0.0).then(|| Duration::from_secs_f64(s)))
}

/// The consumer settings the options ask for.
pub fn consumer_config(args: &Args) -> Result<(ConsumerConfig, StartAt), BenchError> {
    let (reset, start) = match args.from.as_str() {
        "earliest" => (OffsetReset::Earliest, StartAt::Earliest),
        "latest" => (OffsetReset::Latest, StartAt::Latest),
        other => {
            return Err(BenchError::Usage(format!(
                "bad --from {other:?}: earliest or latest"
            )))
        }
    };
    let mut config = ConsumerConfig::default();
    if let Some(bytes) = args.max_partition_fetch_bytes {
        config.max_partition_fetch_bytes = bytes;
    }
    if let Some(bytes) = args.fetch_max_bytes {
        config.fetch_max_bytes = bytes;
    }
    config.check_crcs = !args.no_check_crcs;
    config.offset_reset = reset;
    Ok((config, start))
}

async fn open(
    args: &Args,
    client: Client,
    config: ConsumerConfig,
    start: StartAt,
) -> Result<Source, BenchError> {
    let topic = args.common.topic.as_str();
    if let Some(group) = &args.group {
        let mut gc = GroupConsumerConfig::new(group, &[topic]);
        gc.consumer = config;
        return Ok(Source::Group(Box::new(GroupConsumer::new(client, gc)?)));
    }
    let partitions: Vec<i32> = if args.partitions.is_empty() {
        let n = client.partition_count(topic).await?;
        (0..n as i32).collect()
    } else {
        args.partitions.clone()
    };
    let ends = if args.records == 0 {
        if start == StartAt::Latest {
            return Err(BenchError::Usage(
                "--from latest reads only new records: give --records or --duration".to_owned(),
            ));
        }
        let specs: Vec<(&str, i32, OffsetSpec)> = partitions
            .iter()
            .map(|&p| (topic, p, OffsetSpec::Latest))
            .collect();
        let listed = Admin::new(client.clone())
            .list_offsets(&specs, false)
            .await?;
        Some(
            listed
                .into_iter()
                .map(|((_, p), o)| (p, o.offset))
                .collect(),
        )
    } else {
        None
    };
    let mut consumer = PartitionConsumer::new(client, config)?;
    let assign: Vec<(&str, i32, StartAt)> = partitions.iter().map(|&p| (topic, p, start)).collect();
    consumer.assign(&assign).await?;
    Ok(Source::Partitions {
        consumer: Box::new(consumer),
        ends,
    })
}

impl Source {
    /// The next records, or an empty set when nothing came within `wait`; with the time
    /// partitions were last assigned during the call, if they were.
    async fn poll(&mut self, wait: Duration) -> Result<(Fetched, Option<Instant>), ClientError> {
        match self {
            Source::Partitions { consumer, .. } => Ok((consumer.poll_timeout(wait).await?, None)),
            Source::Group(group) => {
                let deadline = tokio::time::Instant::now() + wait;
                let mut assigned = None;
                loop {
                    match tokio::time::timeout_at(deadline, group.poll()).await {
                        Err(_) => return Ok((Fetched::default(), assigned)),
                        Ok(Ok(GroupEvent::Records(f))) => return Ok((f, assigned)),
                        Ok(Ok(GroupEvent::Assigned(_))) => assigned = Some(Instant::now()),
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => return Err(e),
                    }
                }
            }
        }
    }

    /// Whether every partition reached the end offset it had at start.
    fn at_end(&self, topic: &str) -> bool {
        match self {
            Source::Partitions {
                consumer,
                ends: Some(ends),
            } => ends
                .iter()
                .all(|(&p, &end)| consumer.position(topic, p).is_some_and(|pos| pos >= end)),
            _ => false,
        }
    }

    async fn close(self) {
        match self {
            Source::Partitions { consumer, .. } => consumer.close(),
            Source::Group(group) => {
                // Leaving the group is a courtesy to the other members; the numbers are in.
                let _ = group.close().await;
            }
        }
    }
}

/// Runs the benchmark.
pub async fn run(args: Args) -> Result<ConsumeReport, BenchError> {
    let idle = seconds(args.idle_timeout, "--idle-timeout")?.unwrap_or(Duration::MAX);
    let duration = seconds(args.duration, "--duration")?;
    let (config, start_at) = consumer_config(&args)?;
    let topic = args.common.topic.clone();
    let began = Instant::now();
    let client = Client::connect(ClientConfig::new(&args.common.brokers)).await?;
    let mut source = open(&args, client, config, start_at).await?;

    let interval = args.common.progress_interval();
    let mut progress = Progress::new(interval);
    let (mut records, mut bytes, mut polls) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last_data = Instant::now();
    let mut last = last_data;
    let poll_wait = Duration::from_millis(200);
    let stopped_by = loop {
        if args.records > 0 && records >= args.records {
            break "records";
        }
        if source.at_end(&topic) {
            break "end";
        }
        let now = Instant::now();
        if duration.is_some_and(|d| now.duration_since(began) >= d) {
            break "duration";
        }
        if now.duration_since(last_data) >= idle {
            break "idle";
        }
        if progress.due(now.duration_since(began)) {
            eprintln!(
                "{}",
                progress.line(now.duration_since(began), records, bytes, "")
            );
        }
        let issued = Instant::now();
        let (fetched, assigned) = match source.poll(poll_wait).await {
            Ok(f) => f,
            Err(e) => {
                source.close().await;
                return Err(BenchError::Consume {
                    topic,
                    records,
                    source: Box::new(e),
                });
            }
        };
        if fetched.is_empty() {
            continue;
        }
        polls += 1;
        // The clock starts when the poll that brought the first records was issued, or when
        // the group assigned the partitions during it: connecting and joining are not counted.
        first.get_or_insert(assigned.unwrap_or(issued));
        for r in fetched.records() {
            if args.records > 0 && records >= args.records {
                break;
            }
            records += 1;
            bytes += (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64;
        }
        last_data = Instant::now();
        last = last_data;
    };
    source.close().await;
    let first = first.unwrap_or(last);
    let secs = last.duration_since(first).as_secs_f64();
    Ok(ConsumeReport {
        mode: "consume",
        topic,
        records,
        bytes,
        seconds: secs,
        first_record_seconds: first.duration_since(began).as_secs_f64(),
        records_per_sec: per_sec(records, secs),
        mb_per_sec: mb_per_sec(bytes, secs),
        records_per_poll: if polls > 0 {
            records as f64 / polls as f64
        } else {
            0.0
        },
        stopped_by,
    })
}
