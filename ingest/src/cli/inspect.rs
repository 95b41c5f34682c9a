//! `kingest inspect FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `kingest inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A file holding a raw record set (batches back to back, as in a fetch response).
    pub file: PathBuf,
}

/// Prints the file's batches and records.
pub fn run(args: Args) -> ExitCode {
    let path = args.file.display();
    let data = match std::fs::read(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kingest inspect: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::inspect::render(data.into()) {
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
            eprintln!("kingest inspect: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
