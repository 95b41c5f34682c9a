//! The `kingest` command line: argument parsing and one module per subcommand.

pub mod dev_broker;
pub mod inspect;

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
        Command::DevBroker(args) => dev_broker::run(args),
        Command::Inspect(args) => inspect::run(args),
    }
}
