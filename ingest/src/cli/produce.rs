//! `kingest produce`: load a JSON-lines or CSV file into a topic, one record per line
//! (csv2kafka), or generate events shaped like the Pinot quickstart's
//! `{"ts": ..., "uuid": "...", "count": N}` (pdk kafkagen / datagen.py).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_protocol::record::Compression;

/// Options of `kingest produce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bootstrap servers.
    #[arg(long, default_value = "localhost:9092", env = "KINGEST_BROKERS")]
    pub brokers: String,
    /// The topic.
    #[arg(long)]
    pub topic: String,
    /// Send this many generated events.
    #[arg(long, value_name = "N", conflicts_with = "file")]
    pub generate: Option<u64>,
    /// Send each line of this file as one record ("-" for standard input).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "lz4")]
    pub compression: String,
    /// At most this many records per second (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

/// A small, fast pseudo-random generator (xorshift), so generating events costs nothing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One generated event, as the Pinot seed's datagen writes them.
pub fn event(rng_state: &mut u64, ts: i64) -> String {
    let mut rng = Rng(*rng_state | 1);
    let uuid = format!("{:016x}{:04x}", rng.next(), rng.next() & 0xffff);
    let count = rng.next() % 1001;
    *rng_state = rng.0;
    format!("{{\"ts\": {ts}, \"uuid\": \"{uuid}\", \"count\": {count}}}")
}

/// Sends the records.
pub fn run(args: Args) -> ExitCode {
    let Some(compression) = Compression::from_name(&args.compression) else {
        eprintln!(
            "kingest produce: unknown compression {:?} (none, gzip, snappy, lz4, zstd)",
            args.compression
        );
        return ExitCode::from(2);
    };
    if args.generate.is_none() && args.file.is_none() {
        eprintln!("kingest produce: give --generate N or --file PATH");
        return ExitCode::from(2);
    }
    let runtime = match super::startup::runtime("produce") {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(produce(args, compression)) {
        Ok(n) => {
            eprintln!("kingest produce: {n} records delivered");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kingest produce: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn produce(args: Args, compression: Compression) -> Result<u64, Box<dyn std::error::Error>> {
    let client = Client::connect(ClientConfig::new(&args.brokers)).await?;
    let mut config = ProducerConfig::default();
    config.compression = compression;
    let producer = Producer::new(client, config)?;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut pending = Vec::new();
    let pace = |sent: u64| {
        let due = (args.rate > 0).then(|| Duration::from_secs_f64(sent as f64 / args.rate as f64));
        async move {
            if let Some(due) = due {
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    };
    let send = |line: String| producer.send(ProducerRecord::new(args.topic.clone(), line));
    if let Some(n) = args.generate {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        for i in 0..n {
            pace(sent).await;
            pending.push(send(event(&mut state, now + i as i64)).await?);
            sent += 1;
            if pending.len() >= 10_000 {
                for d in pending.drain(..) {
                    d.await?;
                }
            }
        }
    } else if let Some(path) = &args.file {
        let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?,
            ))
        };
        for line in reader.lines() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            pace(sent).await;
            pending.push(send(line).await?);
            sent += 1;
            if pending.len() >= 10_000 {
                for d in pending.drain(..) {
                    d.await?;
                }
            }
        }
    }
    for d in pending {
        d.await?;
    }
    producer.close().await?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_shaped_like_the_pinot_seed() {
        let mut state = 1;
        let e = event(&mut state, 1_644_586_485_807);
        let v: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["ts"], 1_644_586_485_807i64);
        assert_eq!(v["uuid"].as_str().unwrap().len(), 20);
        assert!(v["count"].as_u64().unwrap() <= 1000);
        assert_ne!(event(&mut state, 0), event(&mut state, 0));
    }
}
