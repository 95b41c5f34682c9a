//! The `kingest` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KINGEST_LOG")
                // Progress events (`kingest run` off a terminal) are info: shown by default.
                .unwrap_or_else(|_| "warn,kingest::progress=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    kingest::cli::run(kingest::cli::Cli::parse())
}
