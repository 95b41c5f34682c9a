//! The `kingest` command line: argument parsing and one module per subcommand.

pub mod dev_broker;
pub mod inspect;
pub mod produce;
pub mod run;
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
    /// Send records to a topic: lines of a file, or generated events.
    Produce(produce::Args),
    /// List, create or delete topics.
    Topics(topics::Args),
    /// Run an in-memory Kafka-compatible broker for local development (not durable, not for
    /// production: everything is lost when it stops).
    DevBroker(dev_broker::Args),
    /// Print the batches and records of a raw record-set file (a captured fetch response
    /// partition).
    Inspect(inspect::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Topics(args) => topics::run(args),
        Command::DevBroker(args) => dev_broker::run(args),
        Command::Inspect(args) => inspect::run(args),
    }
}
