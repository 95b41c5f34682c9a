//! The pieces of job files that the end-to-end tests write again and again: the `[source]`
//! table, the `partition` and `offset` metadata columns (which the exactly-once checks key rows
//! by), a Parquet `[sink]`, writing a job file for the `kingest` binary, and an in-process run
//! to the end of the topic.

use std::path::{Path, PathBuf};

use kingest::config::Config;
use kingest::engine::{run, EngineError, RunOptions, RunSummary};

/// The `partition` (int32) and `offset` (int64) metadata columns, as `[[columns]]` tables.
pub const PARTITION_OFFSET_COLUMNS: &str = r#"
[[columns]]
name = "partition"
type = "int32"
source = "__partition"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"
"#;

/// The `[source]` table reading `topic` from `broker` as `group`.
pub fn source(broker: &str, topic: &str, group: &str) -> String {
    format!(
        r#"
[source]
brokers = "{broker}"
topics = ["{topic}"]
group = "{group}"
"#
    )
}

/// A `[sink]` table writing Parquet files under `path`.
pub fn parquet_sink(path: &Path) -> String {
    format!(
        r#"
[sink]
type = "parquet"
path = "{}"
"#,
        path.display()
    )
}

/// Parses a job file's text (`name` is the file name its errors would mention); a test's own
/// job must parse.
pub fn parse(text: &str, name: &str) -> Config {
    Config::parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"))
}

/// Writes `text` to `dir/job.toml` for the `kingest` binary and returns its path.
pub fn write_job(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("job.toml");
    std::fs::write(&path, text).expect("write the job file");
    path
}

/// Runs the job in-process (`kingest::engine::run`) until the end of its topics, as
/// `kingest run --until-eof` does, never signalled to stop.
pub async fn run_until_eof(config: Config) -> Result<RunSummary, EngineError> {
    run(
        config,
        RunOptions {
            until_eof: true,
            ..RunOptions::default()
        },
        std::future::pending(),
    )
    .await
}
