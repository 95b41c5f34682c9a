//! What the commands do first: load the job's configuration and start the async runtime, each
//! failure reported alike (`kingest <command>: <error>`, exit code 2 for a configuration that
//! cannot be used, 1 for a runtime that does not start).

use std::path::Path;
use std::process::ExitCode;

use tokio::runtime::{Builder, Runtime};

use crate::config::Config;

/// The job's configuration, or the exit code after saying why it cannot be used.
pub(super) fn load_config(command: &str, path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("kingest {command}: {e}");
        ExitCode::from(2)
    })
}

/// A multi-threaded runtime, or the exit code after saying why it did not start.
pub(super) fn runtime(command: &str) -> Result<Runtime, ExitCode> {
    build(command, Builder::new_multi_thread().enable_all())
}

/// A multi-threaded runtime with `workers` worker threads, for commands with little to run
/// concurrently; or the exit code after saying why it did not start.
pub(super) fn runtime_with_workers(command: &str, workers: usize) -> Result<Runtime, ExitCode> {
    build(
        command,
        Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all(),
    )
}

fn build(command: &str, builder: &mut Builder) -> Result<Runtime, ExitCode> {
    builder.build().map_err(|e| {
        eprintln!("kingest {command}: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}
