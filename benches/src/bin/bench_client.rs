//! `bench-client`: one client, one direction, one topic, in this process — the unit the
//! side-by-side harness measures.
//!
//! ```text
//! bench-client run --client kingest|rdkafka|rskafka --mode produce|consume \
//!     --brokers HOST:PORT --topic T --partitions P --records N --record-size B \
//!     --codec none|lz4|zstd [--seed S]
//! bench-client measure run ...     # the same as a child; adds its CPU time and peak RSS
//! ```
//!
//! `BENCH_LOG=debug` (a tracing filter) shows what rskafka and kingest-client log.
//!
//! `run` prints one JSON line: records, value bytes and the data phase's seconds. `measure`
//! prints one JSON line with that and the child's wall time, user and system CPU and peak RSS.

use std::process::ExitCode;

use clap::Parser;
use kingest_benches::measure::measure_child;
use kingest_benches::spec::{ClientKind, Codec, Mode, RunSpec};

/// Runs one benchmark client.
#[derive(Debug, Parser)]
#[command(name = "bench-client")]
enum Cli {
    /// Run one client in this process.
    Run(RunArgs),
    /// Run `bench-client ARGS` as a child and report its resource use too.
    Measure {
        /// The child's arguments (`run ...`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
}

/// `run` options (see [`RunSpec`]).
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// kingest, rdkafka or rskafka.
    #[arg(long)]
    client: ClientKind,
    /// produce or consume.
    #[arg(long)]
    mode: Mode,
    /// Bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// The topic.
    #[arg(long)]
    topic: String,
    /// The topic's partitions.
    #[arg(long)]
    partitions: i32,
    /// Records to move.
    #[arg(long)]
    records: u64,
    /// Value size in bytes.
    #[arg(long)]
    record_size: usize,
    /// Codec for producing.
    #[arg(long, default_value = "none")]
    codec: Codec,
    /// Seed of the values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    // Quiet unless asked: BENCH_LOG=debug (tracing's filter syntax) shows what rskafka and
    // kingest-client log.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BENCH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse() {
        Cli::Run(a) => {
            let spec = RunSpec {
                client: a.client,
                mode: a.mode,
                brokers: a.brokers,
                topic: a.topic,
                partitions: a.partitions,
                records: a.records,
                record_size: a.record_size,
                codec: a.codec,
                seed: a.seed,
            };
            match kingest_benches::clients::run(&spec) {
                Ok(result) => print_json(&result),
                Err(e) => {
                    eprintln!("bench-client: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cli::Measure { args } => {
            let exe = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("bench-client: cannot find my own executable: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match measure_child(&exe, &args) {
                Ok(m) => print_json(&m),
                Err(e) => {
                    eprintln!("bench-client: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> ExitCode {
    match serde_json::to_string(value) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-client: cannot write the result: {e}");
            ExitCode::FAILURE
        }
    }
}
