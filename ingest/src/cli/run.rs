//! `kingest run CONFIG`: the ingest job, streaming until stopped or, with `--until-eof`, until
//! every partition is caught up.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::engine::{self, RunOptions};

/// Options of `kingest run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's TOML configuration.
    pub config: PathBuf,
    /// Exit once every assigned partition is caught up and written (dgkafka's -quit-at-eof).
    #[arg(long, alias = "quit-at-eof")]
    pub until_eof: bool,
}

/// Runs the job; SIGINT/SIGTERM flush, commit and leave the group.
pub fn run(args: Args) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kingest run: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kingest run: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = RunOptions {
        until_eof: args.until_eof,
    };
    match runtime.block_on(engine::run(
        config,
        options,
        super::dev_broker::wait_for_shutdown(),
    )) {
        Ok(summary) => {
            eprintln!(
                "kingest run: {} records read, {} rows written in {} files, {} bad records",
                summary.records, summary.rows, summary.files, summary.errors
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kingest run: {e}");
            ExitCode::FAILURE
        }
    }
}
