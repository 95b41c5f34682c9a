//! The `kingest` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--version"] | ["-V"] => {
            println!("kingest {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["inspect", path] => match std::fs::read(path) {
            Ok(data) => match kingest::inspect::render(data.into()) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kingest: {path}: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("kingest: cannot read {path}: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: kingest --version | kingest inspect RECORD_SET_FILE");
            ExitCode::from(2)
        }
    }
}
