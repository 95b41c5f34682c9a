//! `kingest test CONFIG [--limit N]`: a dry run of a job (Memgraph's `TEST STREAM`). It reads
//! a few records from where `kingest run` would resume, decodes them with the job's columns,
//! and prints the rows with their topic, partition and offset, and next to the offset the
//! error of each record that does not decode. It writes nothing to the sink, joins no consumer
//! group and commits no offset: see [`crate::engine::preview`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::engine::preview::{preview, Preview, PreviewFrom, PreviewOptions};
use crate::schema::format_type;

use super::startup;
use super::table::{clip, Table};

/// Widest a value cell gets in the table (`--json` prints values whole).
const CELL: usize = 40;

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// Where `kingest run` would resume: the sink's offset, else the group's committed offset,
    /// else `source.start`.
    Resume,
    /// The earliest offset of every partition.
    Earliest,
}

/// Options of `kingest test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's TOML configuration.
    pub config: PathBuf,
    /// Records to decode at most (over all partitions).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Where to start reading.
    #[arg(long, value_enum, default_value = "resume")]
    pub from: StartFrom,
    /// Seconds to wait for records before showing what arrived.
    #[arg(long, default_value_t = 10)]
    pub wait: u64,
    /// Print one JSON document (starts, columns, records with rows and errors) instead of
    /// tables.
    #[arg(long)]
    pub json: bool,
}

/// A value cell: strings as they are, everything else as JSON.
fn cell(v: Option<&serde_json::Value>) -> String {
    match v {
        None => String::new(),
        Some(serde_json::Value::String(s)) => clip(s, CELL),
        Some(other) => clip(&other.to_string(), CELL),
    }
}

fn print_tables(config: &Config, p: &Preview) {
    println!(
        "kingest test: group {:?}, dry run: nothing is written and no offset is committed",
        config.source.group
    );
    let mut starts = Table::new(["TOPIC", "PARTITION", "START", "LOG-END", "FROM"]);
    for s in &p.starts {
        starts.row([
            s.topic.clone(),
            s.partition.to_string(),
            s.offset.to_string(),
            s.log_end.to_string(),
            s.from.clone(),
        ]);
    }
    print!("{}", starts.render());
    println!();
    let mut header = vec![
        "TOPIC".to_owned(),
        "PARTITION".to_owned(),
        "OFFSET".to_owned(),
    ];
    header.extend(p.columns.iter().map(|c| c.name.clone()));
    let filtered = config.filter.is_some();
    if filtered {
        header.push("KEPT".to_owned());
    }
    header.push("ERROR".to_owned());
    let mut rows = Table::new(header);
    for r in &p.records {
        let mut cells = vec![
            r.topic.clone(),
            r.partition.to_string(),
            r.offset.to_string(),
        ];
        cells.extend(
            p.columns
                .iter()
                .map(|c| cell(r.row.as_ref().and_then(|row| row.get(&c.name)))),
        );
        if filtered {
            cells.push(match r.kept {
                Some(true) => "yes".to_owned(),
                Some(false) => "no".to_owned(),
                None => String::new(),
            });
        }
        cells.push(r.error.clone().unwrap_or_default());
        rows.row(cells);
    }
    print!("{}", rows.render());
    let errors = p.records.iter().filter(|r| r.error.is_some()).count();
    let dropped = p.records.iter().filter(|r| r.kept == Some(false)).count();
    let by_filter = match &config.filter {
        Some(f) => format!(" ({dropped} not kept by the filter {f:?})"),
        None => String::new(),
    };
    println!(
        "{} records read: {} rows{by_filter}, {} errors",
        p.records.len(),
        p.records.len() - errors,
        errors
    );
}

fn print_json(config: &Config, p: &Preview) {
    let doc = serde_json::json!({
        "group": config.source.group,
        "starts": p.starts,
        "columns": p.columns.iter().map(|c| serde_json::json!({
            "name": c.name,
            "type": format_type(&c.data_type),
            "nullable": c.nullable,
        })).collect::<Vec<_>>(),
        "records": p.records,
    });
    println!("{doc}");
}

/// Runs the dry run.
pub fn run(args: Args) -> ExitCode {
    let config = match startup::load_config("test", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match startup::runtime("test") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let options = PreviewOptions {
        limit: args.limit,
        from: match args.from {
            StartFrom::Resume => PreviewFrom::Resume,
            StartFrom::Earliest => PreviewFrom::Earliest,
        },
        wait: Duration::from_secs(args.wait),
    };
    match runtime.block_on(preview(&config, &options)) {
        Ok(p) => {
            if args.json {
                print_json(&config, &p);
            } else {
                print_tables(&config, &p);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kingest test: {e}");
            ExitCode::FAILURE
        }
    }
}
