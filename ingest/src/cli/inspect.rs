//! `kingest inspect PATH`: a Parquet file or directory (columns, rows, each file's Kafka
//! offsets, the first rows), or a raw record-set file (its batches and records).

use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `kingest inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Parquet file, a directory of them (what a Parquet sink wrote), or a file holding a raw
    /// record set (batches back to back, as in a fetch response).
    pub path: PathBuf,
    /// How many rows of a Parquet file or directory to print.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub rows: usize,
}

/// Prints the Parquet data or the record set's batches and records.
pub fn run(args: Args) -> ExitCode {
    let path = args.path.display();
    let text = if crate::inspect::parquet::is_parquet(&args.path) {
        crate::inspect::parquet::render(&args.path, args.rows).map_err(|e| e.to_string())
    } else {
        match std::fs::read(&args.path) {
            Ok(data) => crate::inspect::render(data.into()).map_err(|e| format!("{path}: {e}")),
            Err(e) => Err(format!("cannot read {path}: {e}")),
        }
    };
    match text {
        Ok(text) => {
            use std::io::Write;
            // A closed pipe (`| head`) is the reader's choice, not an error.
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("kingest inspect: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("kingest inspect: {e}");
            ExitCode::FAILURE
        }
    }
}
