//! `kingest bench produce`: sends generated records through kingest's [`Producer`] and reports
//! throughput and produce latency.
//!
//! The sending loop hands each record's [`DeliveryFuture`] with its send time, in chunks, to a
//! collector task that awaits them in send order and records each latency (send to delivery
//! report) in a [`Histogram`]. Records of one batch complete together, and on one broker every
//! partition's batch travels in the same request, so awaiting in order adds no delay there;
//! with several brokers a record can be seen up to one response late. The clock is read once
//! per few records on both sides (a clock read per record is measurable at millions of records
//! per second); the error this adds is microseconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use kingest_client::admin::{Admin, NewTopic};
use kingest_client::producer::{Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_protocol::record::Compression;
use tokio::sync::mpsc;

use super::histogram::Histogram;
use super::payload::{KeyDistribution, Keys, Payloads};
use super::report::{mb_per_sec, per_sec, Latency, ProduceReport, Progress};
use super::{BenchError, Common};

/// Options of `kingest bench produce`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Brokers, topic, output.
    #[command(flatten)]
    pub common: Common,
    /// How many records to send.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Keys: none, sequential:N (keys 0..N in turn) or random:N (uniform among N).
    #[arg(long, default_value = "none")]
    pub keys: KeyDistribution,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// Partitions of the topic when it does not exist yet (an existing topic is used as is).
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// At most this many records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub throughput: u64,
    /// Batch size in bytes (`batch.size`; default: the producer's, 16384).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// How long a batch waits for more records (`linger.ms`; default: the producer's, 5).
    #[arg(long)]
    pub linger_ms: Option<u64>,
    /// Turn idempotence off (it is on by default with acks=all, and always off otherwise).
    #[arg(long)]
    pub no_idempotence: bool,
    /// Seed of the generated keys and values.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Parses `--acks`.
pub fn parse_acks(s: &str) -> Result<Acks, BenchError> {
    match s {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        _ => Err(BenchError::Usage(format!("bad --acks {s:?}: 0, 1 or all"))),
    }
}

fn acks_name(acks: Acks) -> &'static str {
    match acks {
        Acks::None => "0",
        Acks::Leader => "1",
        Acks::All => "all",
    }
}

/// The producer settings the options ask for.
pub fn producer_config(args: &Args) -> Result<ProducerConfig, BenchError> {
    let compression = Compression::from_name(&args.compression).ok_or_else(|| {
        BenchError::Usage(format!(
            "unknown compression {:?} (none, gzip, snappy, lz4, zstd)",
            args.compression
        ))
    })?;
    let acks = parse_acks(&args.acks)?;
    let mut config = ProducerConfig::default();
    config.compression = compression;
    config.acks = acks;
    config.idempotence = acks == Acks::All && !args.no_idempotence;
    if let Some(size) = args.batch_size {
        config.batch_size = size;
    }
    if let Some(ms) = args.linger_ms {
        config.linger = Duration::from_millis(ms);
    }
    config.validate()?;
    Ok(config)
}

/// One record on its way: when it was sent, its delivery report, its key and value bytes.
struct Pending {
    sent: Instant,
    delivery: DeliveryFuture,
    bytes: u64,
}

/// Counters the progress task reads while the benchmark runs.
#[derive(Default)]
struct Live {
    sent: AtomicU64,
    acked: AtomicU64,
    window_count: AtomicU64,
    window_sum_us: AtomicU64,
    window_max_us: AtomicU64,
}

/// What the collector saw.
struct Collected {
    latency: Histogram,
    acked: u64,
    bytes: u64,
    failed: u64,
    first_error: Option<String>,
    last: Option<Instant>,
}

/// Records sent per chunk handed to the collector.
const CHUNK: usize = 1024;
/// Records between clock reads.
const CLOCK_EVERY: u32 = 16;

async fn collect(mut rx: mpsc::UnboundedReceiver<Vec<Pending>>, live: Arc<Live>) -> Collected {
    let mut c = Collected {
        latency: Histogram::new(),
        acked: 0,
        bytes: 0,
        failed: 0,
        first_error: None,
        last: None,
    };
    let mut now = Instant::now();
    let mut since_clock = 0u32;
    while let Some(chunk) = rx.recv().await {
        let (mut count, mut sum, mut max) = (0u64, 0u64, 0u64);
        for p in chunk {
            let mut delivery = p.delivery;
            let outcome = match (&mut delivery).now_or_never() {
                Some(outcome) => {
                    since_clock += 1;
                    if since_clock >= CLOCK_EVERY {
                        now = Instant::now();
                        since_clock = 0;
                    }
                    outcome
                }
                None => {
                    let outcome = delivery.await;
                    now = Instant::now();
                    since_clock = 0;
                    outcome
                }
            };
            match outcome {
                Ok(_) => {
                    let us = now.saturating_duration_since(p.sent).as_micros() as u64;
                    c.latency.record(us);
                    c.acked += 1;
                    c.bytes += p.bytes;
                    count += 1;
                    sum += us;
                    max = max.max(us);
                }
                Err(e) => {
                    c.failed += 1;
                    c.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        c.last = Some(now);
        live.acked.store(c.acked, Ordering::Relaxed);
        live.window_count.fetch_add(count, Ordering::Relaxed);
        live.window_sum_us.fetch_add(sum, Ordering::Relaxed);
        live.window_max_us.fetch_max(max, Ordering::Relaxed);
    }
    c
}

async fn progress(live: Arc<Live>, interval: Duration, record_bytes: u64, start: Instant) {
    let mut p = Progress::new(interval);
    let mut ticker = tokio::time::interval_at((start + interval).into(), interval);
    loop {
        ticker.tick().await;
        let acked = live.acked.load(Ordering::Relaxed);
        let sent = live.sent.load(Ordering::Relaxed);
        let n = live.window_count.swap(0, Ordering::Relaxed);
        let sum = live.window_sum_us.swap(0, Ordering::Relaxed);
        let max = live.window_max_us.swap(0, Ordering::Relaxed);
        let latency = if n > 0 {
            format!(
                "  latency avg {:.2} ms max {:.2} ms",
                sum as f64 / n as f64 / 1000.0,
                max as f64 / 1000.0
            )
        } else {
            String::new()
        };
        let extra = format!("  ({sent} sent){latency}");
        eprintln!(
            "{}",
            p.line(start.elapsed(), acked, acked * record_bytes, &extra)
        );
    }
}

/// Runs the benchmark.
pub async fn run(args: Args) -> Result<ProduceReport, BenchError> {
    if args.records == 0 {
        return Err(BenchError::Usage("--records must be at least 1".to_owned()));
    }
    if args.partitions < 1 {
        return Err(BenchError::Usage(
            "--partitions must be at least 1".to_owned(),
        ));
    }
    let config = producer_config(&args)?;
    let acks = config.acks;
    let topic = args.common.topic.clone();
    let client = Client::connect(ClientConfig::new(&args.common.brokers)).await?;
    Admin::new(client.clone())
        .create_topics_if_missing(&[NewTopic::new(topic.clone(), args.partitions)])
        .await?;
    let producer = Producer::new(client.clone(), config)?;

    // Everything sent is generated before the clock starts.
    let mut payloads = Payloads::new(args.record_size, args.seed);
    let mut keys = Keys::new(args.keys, args.seed);
    let key_len = keys.key_len() as u64;

    let live = Arc::new(Live::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx, live.clone()));
    let start = Instant::now();
    let interval = args.common.progress_interval();
    let progress_task = (!interval.is_zero()).then(|| {
        tokio::spawn(progress(
            live.clone(),
            interval,
            args.record_size as u64 + key_len,
            start,
        ))
    });

    let mut chunk = Vec::with_capacity(CHUNK);
    let mut now = start;
    let mut send_error = None;
    for i in 0..args.records {
        if i % u64::from(CLOCK_EVERY) == 0 || args.throughput > 0 {
            now = Instant::now();
        }
        if args.throughput > 0 {
            // Kafka's ThroughputThrottler: sleep when ahead of schedule by a millisecond or more.
            let due = start + Duration::from_secs_f64(i as f64 / args.throughput as f64);
            if due > now + Duration::from_millis(1) {
                tokio::time::sleep_until(due.into()).await;
                now = Instant::now();
            }
        }
        let value = payloads.next_value();
        let key = keys.next_key();
        let bytes = (value.len() + key.as_ref().map_or(0, |k| k.len())) as u64;
        let record = ProducerRecord {
            topic: topic.clone(),
            key,
            value: Some(value),
            ..ProducerRecord::default()
        };
        match producer.send(record).await {
            Ok(delivery) => chunk.push(Pending {
                sent: now,
                delivery,
                bytes,
            }),
            Err(e) => {
                send_error = Some(e);
                break;
            }
        }
        if chunk.len() == CHUNK {
            live.sent.store(i + 1, Ordering::Relaxed);
            // The collector only stops when this sender is dropped.
            let _ = tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)));
        }
    }
    let _ = tx.send(chunk);
    drop(tx);
    let collected = collector.await;
    if let Some(t) = progress_task {
        t.abort();
    }
    let close = producer.close().await;
    if let Some(e) = send_error {
        return Err(e.into());
    }
    close?;
    let collected = collected.map_err(BenchError::Task)?;
    if collected.failed > 0 {
        return Err(BenchError::Delivery {
            topic,
            failed: collected.failed,
            total: args.records,
            first: collected.first_error.unwrap_or_default(),
        });
    }
    let seconds = collected
        .last
        .map_or(0.0, |l| l.duration_since(start).as_secs_f64());
    Ok(ProduceReport {
        mode: "produce",
        topic,
        records: collected.acked,
        failed: collected.failed,
        bytes: collected.bytes,
        record_size: args.record_size,
        compression: args.compression.clone(),
        acks: acks_name(acks).to_owned(),
        keys: args.keys.to_string(),
        seconds,
        records_per_sec: per_sec(collected.acked, seconds),
        mb_per_sec: mb_per_sec(collected.bytes, seconds),
        latency: Some(Latency::of(&collected.latency)),
    })
}
