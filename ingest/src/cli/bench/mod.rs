//! `kingest bench produce|consume`: measures how fast this machine's kingest client moves
//! records to and from a cluster, in the spirit of Kafka's `kafka-producer-perf-test` /
//! `kafka-consumer-perf-test` and librdkafka's `rdkafka_performance`.
//!
//! - `produce`: sends generated records ([`payload`]: values of an exact size that compress
//!   like real events, keys from a chosen distribution) with a chosen codec, acks and
//!   throughput limit, and reports records/s, MB/s and produce latency percentiles (from `send`
//!   to the delivery report: [`histogram`]).
//! - `consume`: reads a topic (explicit partitions, or as a member of a consumer group) until a
//!   record count, the end offsets seen at start, an idle timeout or a duration, and reports
//!   records/s and MB/s.
//!
//! Both print a progress line at an interval on standard error and the final report on
//! standard output, as text or as one JSON object with `--json` ([`report`]).

pub mod consume;
pub mod histogram;
pub mod payload;
pub mod produce;
pub mod report;
#[cfg(test)]
mod tests;

use std::process::ExitCode;
use std::time::Duration;

use kingest_client::ClientError;

/// Options of `kingest bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which benchmark.
    #[command(subcommand)]
    pub mode: Mode,
}

/// `bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Mode {
    /// Send generated records and report throughput and produce latency.
    Produce(produce::Args),
    /// Read records and report throughput.
    Consume(consume::Args),
}

/// Options both benchmarks take.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Bootstrap servers.
    #[arg(long, default_value = "localhost:9092", env = "KINGEST_BROKERS")]
    pub brokers: String,
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// Print the final report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Seconds between progress lines on standard error (0: none).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub interval: f64,
}

impl Common {
    /// The progress interval.
    pub fn progress_interval(&self) -> Duration {
        if self.interval.is_finite() && self.interval > 0.0 {
            Duration::from_secs_f64(self.interval)
        } else {
            Duration::ZERO
        }
    }
}

/// Why a benchmark failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// An option is invalid.
    #[error("{0}")]
    Usage(String),
    /// The client failed (boxed: client errors are large).
    #[error(transparent)]
    Client(Box<ClientError>),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// Records were not delivered.
    #[error(
        "{failed} of {total} records to topic {topic} were not delivered; the first error: {first}"
    )]
    Delivery {
        /// The topic.
        topic: String,
        /// How many failed.
        failed: u64,
        /// How many were sent.
        total: u64,
        /// The first failure.
        first: String,
    },
    /// A task of the benchmark panicked or was cancelled.
    #[error("a benchmark task failed: {0}")]
    Task(tokio::task::JoinError),
    /// Consuming stopped on an error.
    #[error("consuming topic {topic} failed after {records} records: {source}")]
    Consume {
        /// The topic.
        topic: String,
        /// Records consumed before the error.
        records: u64,
        /// The error.
        source: Box<ClientError>,
    },
}

impl From<ClientError> for BenchError {
    fn from(e: ClientError) -> Self {
        BenchError::Client(Box::new(e))
    }
}

/// The report as text, or as JSON with `--json`.
fn render<T: serde::Serialize>(report: &T, json: bool, text: fn(&T) -> String) -> String {
    if json {
        // Only maps with non-string keys fail to serialize; the reports have none.
        serde_json::to_string(report)
            .unwrap_or_else(|e| format!("{{\"error\":\"cannot write the report: {e}\"}}"))
    } else {
        text(report)
    }
}

/// Runs the benchmark.
pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kingest bench: {}", BenchError::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    let outcome = match args.mode {
        Mode::Produce(a) => {
            let json = a.common.json;
            runtime
                .block_on(produce::run(a))
                .map(|r| render(&r, json, report::ProduceReport::text))
        }
        Mode::Consume(a) => {
            let json = a.common.json;
            runtime
                .block_on(consume::run(a))
                .map(|r| render(&r, json, report::ConsumeReport::text))
        }
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e @ BenchError::Usage(_)) => {
            eprintln!("kingest bench: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("kingest bench: {e}");
            ExitCode::FAILURE
        }
    }
}
