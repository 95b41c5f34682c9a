//! Reads every partition of a topic from the beginning and prints each record until caught up.
//!
//! `cargo run -p kingest-client --example consumer -- localhost:9092 events`
//!
//! A partition consumer starts where it is told (`StartAt::Earliest` here). A group member
//! starts where its group's committed offsets say, and where there are none at
//! `offset_reset`, which is `Latest` by default: see the `group` example for reading a new
//! group from the beginning.

use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
use kingest_client::{Client, ClientConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "localhost:9092".to_owned());
    let topic = args.next().unwrap_or_else(|| "events".to_owned());

    let client = Client::connect(ClientConfig::new(&brokers)).await?;
    let partitions = client.partition_count(&topic).await? as i32;
    let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default())?;
    let all: Vec<(&str, i32, StartAt)> = (0..partitions)
        .map(|p| (topic.as_str(), p, StartAt::Earliest))
        .collect();
    consumer.assign(&all).await?;
    while (0..partitions).any(|p| consumer.lag(&topic, p) != Some(0)) {
        for r in consumer
            .poll_timeout(std::time::Duration::from_secs(1))
            .await?
            .records()
        {
            let value = r.record.value.map(String::from_utf8_lossy);
            println!(
                "{}-{} @ {}: {:?}",
                r.topic, r.partition, r.record.offset, value
            );
        }
    }
    Ok(())
}
