//! The `kingest` command.

use std::io::IsTerminal as _;
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
        // Colours for a person at a terminal; plain text for log files and collectors (and
        // for anyone who sets NO_COLOR).
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    kingest::cli::run(kingest::cli::Cli::parse())
}
