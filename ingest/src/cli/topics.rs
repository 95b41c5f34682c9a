//! `kingest topics list|create|delete`.

use std::process::ExitCode;

use kingest_client::admin::{Admin, NewTopic};
use kingest_client::{Client, ClientConfig};

/// Options of `kingest topics`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bootstrap servers.
    #[arg(long, default_value = "localhost:9092", env = "KINGEST_BROKERS")]
    pub brokers: String,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `topics` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List the topics with their partition counts.
    List,
    /// Create a topic.
    Create {
        /// The name.
        name: String,
        /// Partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Replication factor (-1: the broker's default).
        #[arg(long, default_value_t = -1)]
        replication: i16,
    },
    /// Delete topics.
    Delete {
        /// The names.
        names: Vec<String>,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let runtime = match super::startup::runtime("topics") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let result: Result<(), Box<dyn std::error::Error>> = runtime.block_on(async {
        let admin = Admin::new(Client::connect(ClientConfig::new(&args.brokers)).await?);
        match args.action {
            Action::List => {
                for name in admin.list_topics().await? {
                    println!("{name}\t{}", admin.client().partition_count(&name).await?);
                }
            }
            Action::Create {
                name,
                partitions,
                replication,
            } => {
                let topic = NewTopic {
                    replication_factor: replication,
                    ..NewTopic::new(name.clone(), partitions)
                };
                for (n, outcome) in admin.create_topics(&[topic]).await? {
                    outcome?;
                    println!("created {n}");
                }
            }
            Action::Delete { names } => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                for (n, outcome) in admin.delete_topics(&refs).await? {
                    outcome?;
                    println!("deleted {n}");
                }
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kingest topics: {e}");
            ExitCode::FAILURE
        }
    }
}
