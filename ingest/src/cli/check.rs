//! `kingest check CONFIG [--json]`: where a job stands (dgkafka's `check`). Per partition: the
//! offset the sink holds (what `kingest run` resumes from; read through the same
//! `engine::open_sink` as the run, so Parquet and PostgreSQL sinks answer alike), the consumer
//! group's committed offset, the log start and end, and the lag: records between where the
//! job resumes (the sink's offset, else the group's, else the log start) and the log end.
//! Changes nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use kingest_client::Client;

use crate::config::Config;
use crate::engine::status::{job_status, schema_for_offsets, sink_offsets, JobStatus};
use crate::engine::{client_config, EngineError};

use super::startup;
use super::table::{group_line, opt, Table};

/// Options of `kingest check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's TOML configuration.
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

async fn status(config: &Config) -> Result<JobStatus, EngineError> {
    let client = Client::connect(client_config(config)?).await?;
    let schema = schema_for_offsets(config, &client).await;
    let sink = sink_offsets(config, schema).await?;
    let status = job_status(config, &client, &sink).await?;
    client.close().await;
    Ok(status)
}

/// The table `check` prints.
pub fn render(status: &JobStatus) -> String {
    let mut out = group_line(
        &status.group,
        &status.group_state,
        &status.members,
        &status.sink,
    );
    let mut t = Table::new([
        "TOPIC",
        "PARTITION",
        "SINK",
        "GROUP",
        "LOG-START",
        "LOG-END",
        "LAG",
    ]);
    for p in &status.partitions {
        t.row([
            p.topic.clone(),
            p.partition.to_string(),
            opt(p.sink),
            opt(p.group),
            p.log_start.to_string(),
            p.log_end.to_string(),
            p.lag.to_string(),
        ]);
    }
    out.push_str(&t.render());
    out.push_str(&format!("total lag {}\n", status.total_lag()));
    out
}

/// Prints where the job stands.
pub fn run(args: Args) -> ExitCode {
    let config = match startup::load_config("check", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match startup::runtime("check") {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(status(&config)) {
        Ok(s) => {
            if args.json {
                let mut doc = serde_json::to_value(&s).unwrap_or_default();
                doc["total_lag"] = serde_json::json!(s.total_lag());
                println!("{doc}");
            } else {
                print!("{}", render(&s));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kingest check: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::PartitionStatus;

    #[test]
    fn the_table_shows_every_offset() {
        let s = JobStatus {
            group: "g".into(),
            group_state: "Empty".into(),
            members: vec![],
            sink: "parquet ./data".into(),
            partitions: vec![
                PartitionStatus {
                    topic: "events".into(),
                    partition: 0,
                    sink: Some(40),
                    group: Some(40),
                    log_start: 0,
                    log_end: 50,
                    lag: 10,
                },
                PartitionStatus {
                    topic: "events".into(),
                    partition: 1,
                    sink: None,
                    group: None,
                    log_start: 5,
                    log_end: 7,
                    lag: 2,
                },
            ],
        };
        assert_eq!(
            render(&s),
            "group \"g\" (Empty, no active members); sink parquet ./data\n\
             TOPIC   PARTITION  SINK  GROUP  LOG-START  LOG-END  LAG\n\
             events  0          40    40     0          50       10\n\
             events  1          -     -      5          7        2\n\
             total lag 12\n"
        );
    }
}
