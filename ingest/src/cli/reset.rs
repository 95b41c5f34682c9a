//! `kingest reset-offsets CONFIG --to ... [--execute] [--sink]`: move a job's consumer group
//! (and with `--sink` its sink) to new offsets. Prints the plan; changes things only with
//! `--execute`. See [`crate::engine::reset`] and the command's `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::reset::{execute, plan_for, ResetPlan, ResetTo};

use super::startup;
use super::table::{group_line, opt, Table};

/// The command's `--help` text (clap shows it for `kingest reset-offsets --help`).
pub const LONG_ABOUT: &str = "\
Move the job's consumer group to new offsets (dgkafka's -force-reset-earliest/-latest, \
kafka-consumer-groups --reset-offsets). Without --execute it only prints the plan.

--to takes:
  earliest                          the log start of every partition
  latest                            the log end (only new records are read)
  timestamp=2024-01-01T00:00:00Z    the first record at or after a time (RFC 3339, a date, or
                                    ms since the epoch); the log end where none is that late
  offset=N                          offset N in every partition (kept within the log)
  offset=events:0=42,events:1=40    these partitions only

The group must have no active members: stop every `kingest run` of the job first.

Sinks and exactly once: `kingest run` resumes each partition from the offset its sink holds \
(the Parquet files' footers, the Delta table's txn actions, the PostgreSQL offsets table) ahead \
of the group's, so resetting \
only the group would be ignored where the sink holds an offset. Such partitions are refused \
unless --sink is given, which records the reset in the sink as well. The same holds where the \
sink holds nothing but source.start names an offset for the partition or is a time, which the \
run prefers to the group's offset. For a local Parquet \
directory, --sink moves the files holding offsets at or past the new offset out of the \
dataset, into _kingest_reset/<time>-<id>/ under the sink's root (hidden from Spark, Trino, \
pyarrow and the sink; reset.json there lists them; move them back to undo), so no offset is \
stored twice once the records are read again. A file's rows are kept or moved whole, so a new \
offset inside a file is rewound to the file's first offset (the plan says so). Where the sink \
must resume somewhere its files do not end (a reset forward, or no files left), an empty \
Parquet file records the new offset. For a Delta table (local or in an object store), --sink \
makes one commit that sets the offsets and removes the files holding offsets at or past the \
new ones (whole files, as above; VACUUM deletes their bytes later). --sink is not implemented \
for Parquet in object stores or PostgreSQL: there the reset is refused with what to do by hand.";

/// Options of `kingest reset-offsets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's TOML configuration.
    pub config: PathBuf,
    /// The new offsets: earliest, latest, timestamp=TIME, offset=N or
    /// offset=TOPIC:PARTITION=N,... (see --help).
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Reset only these topics of the job (repeatable).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Vec<String>,
    /// Record the reset in the sink too (see --help); needed where the sink holds offsets.
    #[arg(long)]
    pub sink: bool,
    /// Only print the plan (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Apply the plan.
    #[arg(long)]
    pub execute: bool,
    /// Print the plan (and the outcome) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The plan as text.
pub fn render(plan: &ResetPlan) -> String {
    let mut out = group_line(&plan.group, &plan.group_state, &plan.members, &plan.sink);
    let mut t = Table::new([
        "TOPIC",
        "PARTITION",
        "GROUP",
        "SINK",
        "LOG-START",
        "LOG-END",
        "NEW",
        "NOTE",
    ]);
    for r in &plan.rows {
        t.row([
            r.topic.clone(),
            r.partition.to_string(),
            opt(r.group),
            opt(r.sink),
            r.log_start.to_string(),
            r.log_end.to_string(),
            r.new.to_string(),
            r.note.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&t.render());
    if let Some(table) = &plan.iceberg_table {
        out.push_str(&format!(
            "--sink: a snapshot of {table} adding no files records the new offsets\n"
        ));
    }
    if let Some(p) = &plan.parquet {
        let moved: Vec<String> = p
            .partitions
            .iter()
            .flat_map(|x| &x.set_aside)
            .map(|f| format!("{} [{}, {})", f.rel, f.first, f.next))
            .collect();
        if !moved.is_empty() {
            out.push_str(&format!(
                "--sink: set aside into {}/{}/: {}\n",
                p.root.display(),
                crate::engine::parquet_reset::RESET_DIR,
                moved.join(", ")
            ));
        }
        let marked: Vec<String> = p
            .partitions
            .iter()
            .filter(|x| x.marker)
            .map(|x| format!("{}-{} at {}", x.topic, x.partition, x.new))
            .collect();
        if !marked.is_empty() {
            out.push_str(&format!(
                "--sink: an empty file records {}\n",
                marked.join(", ")
            ));
        }
    }
    if let Some(d) = &plan.delta {
        let removed: Vec<String> = d
            .partitions
            .iter()
            .flat_map(|x| &x.removed)
            .map(|f| format!("{} [{}, {})", f.path, f.first, f.next))
            .collect();
        out.push_str(&format!(
            "--sink: one commit to the Delta table {} (now at version {}) sets the offsets{}\n",
            d.table,
            d.version,
            if removed.is_empty() {
                String::new()
            } else {
                format!(" and removes {}", removed.join(", "))
            }
        ));
    }
    out
}

/// Plans, and with `--execute` applies.
pub fn run(args: Args) -> ExitCode {
    let config = match startup::load_config("reset-offsets", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let to: ResetTo = match args.to.parse() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kingest reset-offsets: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match startup::runtime("reset-offsets") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let (client, plan) = match plan_for(&config, &to, &args.topic, args.sink).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("kingest reset-offsets: {e}");
                return ExitCode::FAILURE;
            }
        };
        if !args.json {
            print!("{}", render(&plan));
        }
        if !args.execute {
            if args.json {
                println!("{}", serde_json::json!({ "plan": plan, "executed": false }));
            } else {
                if let Some(e) = plan.refusal() {
                    println!("--execute would refuse: {e}");
                }
                println!("dry run: nothing changed; add --execute to apply");
            }
            return ExitCode::SUCCESS;
        }
        match execute(&config, &client, &plan).await {
            Ok(done) => {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "plan": plan, "executed": true, "done": done })
                    );
                } else {
                    println!(
                        "committed {} offsets for group {:?}",
                        done.committed, plan.group
                    );
                    if let Some(v) = done.delta_version {
                        println!("recorded the reset in the Delta table as version {v}");
                    }
                    if let Some(id) = done.iceberg_snapshot {
                        println!("recorded the new offsets in Iceberg snapshot {id}");
                    }
                    if let Some(p) = &done.parquet {
                        if let Some(dir) = &p.set_aside_dir {
                            println!("moved {} files to {}", p.moved, dir.display());
                        }
                        for m in &p.markers {
                            println!("recorded the new offset in {}", m.display());
                        }
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kingest reset-offsets: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
