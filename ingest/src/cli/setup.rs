//! `kingest setup CONFIG`: prepares a PostgreSQL sink (dgkafka's `setup`). Creates the target
//! table from `[[columns]]` (types mapped as `sink::postgres` documents, a primary key on the
//! upsert key) and the offsets table when they do not exist; for tables that exist, prints
//! exactly how they differ from what the job writes. Exits 1 when a difference would stop
//! `kingest run`, 0 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::{columns, postgres_config};
use crate::schema::arrow_schema;
use crate::sink::postgres::{setup, SetupReport};

use super::startup;

/// Options of `kingest setup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's TOML configuration (with `[sink] type = "postgres"`).
    pub config: PathBuf,
}

/// What `setup` prints for its report.
pub fn render(report: &SetupReport, table: &str, offsets_table: &str) -> String {
    let mut out = String::new();
    match &report.created_table {
        Some(ddl) => out.push_str(&format!("created table {table}:\n{ddl};\n")),
        None => out.push_str(&format!("table {table} exists\n")),
    }
    match &report.created_offsets {
        Some(ddl) => out.push_str(&format!("created offsets table {offsets_table}:\n{ddl};\n")),
        None => out.push_str(&format!("offsets table {offsets_table} exists\n")),
    }
    if report.differences.is_empty() {
        out.push_str("no differences: the job can run\n");
    } else {
        for d in &report.differences {
            out.push_str(&format!("{d}\n"));
        }
        if report.blocked() {
            out.push_str("the job cannot run until the errors above are fixed\n");
        }
    }
    out
}

/// Creates the tables and reports differences.
pub fn run(args: Args) -> ExitCode {
    let config = match startup::load_config("setup", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(sink) = postgres_config(&config) else {
        eprintln!("kingest setup: only [sink] type = \"postgres\" has tables to set up");
        return ExitCode::from(2);
    };
    if config.columns.is_empty() {
        eprintln!(
            "kingest setup: list [[columns]]: the table is created from them \
             (`kingest test CONFIG` shows the columns a job would infer)"
        );
        return ExitCode::from(2);
    }
    let cols = match columns(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kingest setup: {e}");
            return ExitCode::from(2);
        }
    };
    let schema = arrow_schema(&cols);
    // Setup runs a few statements over one PostgreSQL connection: one worker is plenty.
    let runtime = match startup::runtime_with_workers("setup", 1) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(setup(&sink, &schema)) {
        Ok(report) => {
            print!("{}", render(&report, &sink.table, &sink.offsets_table));
            if report.blocked() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("kingest setup: {e}");
            ExitCode::FAILURE
        }
    }
}
