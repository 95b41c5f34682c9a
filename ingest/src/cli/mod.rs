//! The `kingest` command line: argument parsing and one module per subcommand.

pub mod bench;
pub mod check;
pub mod compact;
pub mod dev_broker;
pub mod inspect;
pub mod produce;
pub mod reset;
pub mod run;
pub mod setup;
mod startup;
pub mod table;
pub mod test;
pub mod topics;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kingest: move Kafka data into Parquet and PostgreSQL, exactly once.
#[derive(Debug, Parser)]
#[command(name = "kingest", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest a topic into the configured sink (streaming; `--until-eof` for batch mode).
    Run(run::Args),
    /// Decode a few records as the job would and print them with their errors; writes and
    /// commits nothing (a dry run, like Memgraph's TEST STREAM).
    Test(test::Args),
    /// Show, per partition, the sink's offset, the group's committed offset, the log end and
    /// the lag.
    Check(check::Args),
    /// Merge the sink's small files into larger ones and delete files past the retention
    /// bound; prints the plan, applies it with --execute. Safe while the job runs.
    Compact(compact::Args),
    /// Move the job's group (and with --sink its sink) to new offsets; prints the plan, applies
    /// it with --execute.
    #[command(long_about = reset::LONG_ABOUT)]
    ResetOffsets(reset::Args),
    /// Create a PostgreSQL sink's table and offsets table, or report how existing ones differ
    /// from the job's columns.
    Setup(setup::Args),
    /// Send records to a topic: lines of a file, or generated events.
    Produce(produce::Args),
    /// List, create or delete topics.
    Topics(topics::Args),
    /// Run an in-memory Kafka-compatible broker for local development (not durable, not for
    /// production: everything is lost when it stops).
    DevBroker(dev_broker::Args),
    /// Print a Parquet file or directory (columns, rows, each file's Kafka offsets, the first
    /// rows), or the batches and records of a raw record-set file.
    Inspect(inspect::Args),
    /// Measure produce or consume throughput and produce latency against a cluster.
    Bench(bench::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Check(args) => check::run(args),
        Command::Compact(args) => compact::run(args),
        Command::ResetOffsets(args) => reset::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Topics(args) => topics::run(args),
        Command::DevBroker(args) => dev_broker::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
