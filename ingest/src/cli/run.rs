//! `kingest run CONFIG`: the ingest job, streaming until stopped or, with `--until-eof`, until
//! every partition of its topics is written up to where it ended at the start.

use std::io::IsTerminal as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::{self, ProgressMode, RunOptions};

use super::startup;

/// Options of `kingest run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's TOML configuration.
    pub config: PathBuf,
    /// Exit once every partition of the job's topics is written up to the end offset it had
    /// at the start, by this process or by other members of the group (dgkafka's
    /// -quit-at-eof). Partitions other members hold are waited for, and taken over when the
    /// group gives them up.
    #[arg(long, alias = "quit-at-eof")]
    pub until_eof: bool,
    /// With --until-eof: fail (exit 1, naming the partitions) after this long without
    /// progress on the partitions still short: "90s", "10m" [default: flush.age + 1m].
    #[arg(long, value_name = "DURATION", value_parser = duration, requires = "until_eof")]
    pub eof_timeout: Option<std::time::Duration>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while the job runs (records,
    /// bytes, rows, errors, filtered and lag per partition; flush latency).
    #[arg(long, value_name = "HOST:PORT", value_parser = socket_addr)]
    pub metrics_addr: Option<SocketAddr>,
}

/// `HOST:PORT`, resolved (`localhost:9100`, `0.0.0.0:9100`, `[::1]:9100`).
fn socket_addr(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("{text:?}: {e} (write HOST:PORT, e.g. 127.0.0.1:9100)"))?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// A duration as job files write them (`"500ms"`, `"5m"`, `30`).
fn duration(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(text)
}

/// Runs the job; SIGINT/SIGTERM flush, commit and leave the group.
pub fn run(args: Args) -> ExitCode {
    let config = match startup::load_config("run", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match startup::runtime("run") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let options = RunOptions {
        until_eof: args.until_eof,
        eof_timeout: args.eof_timeout,
        // A live line for a person at a terminal; log events for anything else.
        progress: if std::io::stderr().is_terminal() {
            ProgressMode::Line
        } else {
            ProgressMode::Log
        },
        metrics_addr: args.metrics_addr,
    };
    match runtime.block_on(engine::run(
        config,
        options,
        super::dev_broker::wait_for_shutdown(),
    )) {
        Ok(summary) => {
            eprintln!(
                "kingest run: {} records read, {} rows written in {} files, {} filtered out, {} bad records",
                summary.records, summary.rows, summary.files, summary.filtered, summary.errors
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kingest run: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_addresses_resolve_or_say_what_is_expected() {
        assert_eq!(
            socket_addr("127.0.0.1:9100").unwrap(),
            "127.0.0.1:9100".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(socket_addr("localhost:9100").unwrap().port(), 9100);
        assert!(socket_addr("9100").unwrap_err().contains("HOST:PORT"));
    }
}
