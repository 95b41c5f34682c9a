//! `kingest compact CONFIG [--execute] [--json]`: merge the sink's small files into files near
//! `[sink.compaction] target_file_size` and delete files older than `[sink.retention]
//! max_age` (for a Delta table: `OPTIMIZE`, then `VACUUM` and log cleanup). Prints the plan;
//! changes things only with `--execute`. Safe while the job runs (see
//! [`crate::sink::parquet::compact`] and the Delta sink's `optimize.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::engine::compact::open_maintainer;
use crate::sink::maintenance::{table_wide, MaintenanceDone, MaintenancePlan};
use crate::sink::PartitionKey;

use super::startup;
use super::table::Table;

/// Options of `kingest compact`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job's TOML configuration.
    pub config: PathBuf,
    /// Apply the plan (without it, only print it).
    #[arg(long)]
    pub execute: bool,
    /// Print the plan (and the outcome) as JSON.
    #[arg(long)]
    pub json: bool,
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// A Kafka partition or offsets as shown, `all` / `-` for a table sink's (see [`table_wide`]).
fn shown(partition: &PartitionKey, text: String) -> String {
    if *partition != table_wide() {
        text
    } else if text.contains('[') {
        "-".into()
    } else {
        "all".into()
    }
}

/// The plan as text.
pub fn render(plan: &MaintenancePlan) -> String {
    let mut out = format!("sink {} ({})\n", plan.sink, plan.settings);
    if plan.rewrites.is_empty() {
        out.push_str("nothing to merge\n");
    } else {
        let mut t = Table::new(["DIRECTORY", "PARTITION", "FILES", "ROWS", "SIZE", "OFFSETS"]);
        for r in &plan.rewrites {
            t.row([
                if r.dir.is_empty() {
                    ".".into()
                } else {
                    r.dir.clone()
                },
                shown(&r.partition, r.partition.to_string()),
                r.inputs.len().to_string(),
                r.rows().to_string(),
                mib(r.bytes()),
                shown(&r.partition, r.offsets.to_string()),
            ]);
        }
        out.push_str(&t.render());
        let files: usize = plan.rewrites.iter().map(|r| r.inputs.len()).sum();
        out.push_str(&format!(
            "merge {files} files into {}\n",
            plan.rewrites.len()
        ));
    }
    if !plan.expired.is_empty() {
        out.push_str(&format!(
            "retention: delete {} files:\n",
            plan.expired.len()
        ));
        for e in &plan.expired {
            if e.partition == table_wide() {
                out.push_str(&format!("  {}\n", e.file.path));
                continue;
            }
            out.push_str(&format!(
                "  {} ({} {}, {} rows)\n",
                e.file.path, e.partition, e.file.offsets, e.file.rows
            ));
        }
    }
    if !plan.vacuum.is_empty() {
        let bytes: u64 = plan.vacuum.iter().map(|f| f.bytes).sum();
        out.push_str(&format!(
            "VACUUM: delete {} data files ({}) no kept version refers to:\n",
            plan.vacuum.len(),
            mib(bytes)
        ));
        for f in &plan.vacuum {
            out.push_str(&format!("  {} ({})\n", f.path, f.reason));
        }
    }
    if !plan.orphans.is_empty() {
        let bytes: u64 = plan.orphans.iter().map(|f| f.bytes).sum();
        out.push_str(&format!(
            "remove_orphan_files: delete {} files ({}) no metadata of the table references:\n",
            plan.orphans.len(),
            mib(bytes)
        ));
        for f in &plan.orphans {
            out.push_str(&format!("  {} ({})\n", f.path, f.reason));
        }
    }
    if !plan.log_cleanup.is_empty() {
        out.push_str(&format!(
            "log cleanup: delete {} log files:\n",
            plan.log_cleanup.len()
        ));
        for f in &plan.log_cleanup {
            out.push_str(&format!("  {} ({})\n", f.path, f.reason));
        }
    }
    for n in &plan.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

fn render_done(done: &MaintenanceDone, secs: f64) -> String {
    let (bytes_in, bytes_out): (u64, u64) = done
        .rewritten
        .iter()
        .fold((0, 0), |(i, o), r| (i + r.bytes_in, o + r.bytes_out));
    let inputs: usize = done.rewritten.iter().map(|r| r.inputs).sum();
    let mut out = format!(
        "merged {inputs} files into {} ({} read, {} written, {:.1} MiB/s)\n",
        done.rewritten.len(),
        mib(bytes_in),
        mib(bytes_out),
        bytes_in as f64 / (1u64 << 20) as f64 / secs.max(1e-9)
    );
    if let Some(v) = done.version {
        out.push_str(&format!("committed as table version {v}\n"));
    }
    if !done.deleted.is_empty() {
        out.push_str(&format!("deleted {} files\n", done.deleted.len()));
    }
    for s in &done.skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    for c in &done.cleaned {
        out.push_str(&format!(
            "removed the leftovers of a killed compaction: {c}\n"
        ));
    }
    out
}

/// Plans, and with `--execute` applies.
pub fn run(args: Args) -> ExitCode {
    let config = match startup::load_config("compact", &args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match startup::runtime_with_workers("compact", 2) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let result = async {
            let m = open_maintainer(&config).await?;
            let plan = m.plan().await?;
            if !args.json {
                print!("{}", render(&plan));
            }
            if !args.execute {
                if args.json {
                    println!("{}", serde_json::json!({ "plan": plan, "executed": false }));
                } else {
                    println!("dry run: nothing changed; add --execute to apply");
                }
                return Ok(());
            }
            let started = Instant::now();
            let done = m.execute(&plan).await?;
            let secs = started.elapsed().as_secs_f64();
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "plan": plan, "executed": true, "done": done, "seconds": secs })
                );
            } else {
                print!("{}", render_done(&done, secs));
            }
            Ok::<_, crate::engine::EngineError>(())
        }
        .await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kingest compact: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
