//! `kingest dev-broker`: testkit's in-memory cluster as a local development broker.

use std::process::ExitCode;

use kingest_testkit::{Cluster, ClusterConfig};

use super::startup;

/// Options of `kingest dev-broker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port of the first broker; further brokers take the next ports. 0: free ports, which
    /// the `bootstrap.servers=` line printed at start names.
    #[arg(long, default_value_t = 9092)]
    pub port: u16,
    /// How many brokers.
    #[arg(long, default_value_t = 1)]
    pub brokers: usize,
    /// Topics to create at start, as NAME or NAME:PARTITIONS (repeatable).
    #[arg(long = "topic", value_name = "NAME[:PARTITIONS]")]
    pub topics: Vec<String>,
    /// Create topics on first use (Metadata requests that allow it), with this many partitions.
    #[arg(long, value_name = "PARTITIONS")]
    pub auto_create: Option<i32>,
}

/// Parses NAME or NAME:PARTITIONS.
pub fn parse_topic(spec: &str) -> Result<(String, i32), String> {
    match spec.rsplit_once(':') {
        None => Ok((spec.to_owned(), 1)),
        Some((name, n)) => n
            .parse::<i32>()
            .map(|n| (name.to_owned(), n))
            .map_err(|_| format!("bad partition count in --topic {spec:?}")),
    }
}

/// Runs the broker until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> ExitCode {
    let runtime = match startup::runtime("dev-broker") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let ports = (args.port != 0).then(|| {
            (0..args.brokers.max(1))
                .map(|i| args.port.saturating_add(i as u16))
                .collect()
        });
        let config = ClusterConfig {
            brokers: args.brokers.max(1),
            ports,
            auto_create_topics: args.auto_create.is_some(),
            default_partitions: args.auto_create.unwrap_or(1),
            ..ClusterConfig::default()
        };
        let cluster = match Cluster::start(config).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kingest dev-broker: cannot listen on port {}: {e}", args.port);
                return ExitCode::FAILURE;
            }
        };
        for spec in &args.topics {
            let (name, partitions) = match parse_topic(spec) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("kingest dev-broker: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(code) = cluster.create_topic(&name, partitions) {
                eprintln!("kingest dev-broker: cannot create topic {name}: {code}");
                return ExitCode::FAILURE;
            }
        }
        eprintln!("kingest dev-broker: in-memory Kafka-compatible broker for development; NOT durable, data is lost on exit");
        println!("bootstrap.servers={}", cluster.bootstrap());
        wait_for_shutdown().await;
        eprintln!("kingest dev-broker: stopped");
        ExitCode::SUCCESS
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic("events"), Ok(("events".to_owned(), 1)));
        assert_eq!(parse_topic("events:12"), Ok(("events".to_owned(), 12)));
        assert!(parse_topic("events:x").is_err());
    }
}
