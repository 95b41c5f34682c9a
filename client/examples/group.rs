//! Joins a consumer group on a topic and prints its records from the beginning, committing
//! after each batch; stops once its partitions are read to their end (and waits for records
//! while there are none).
//!
//! `cargo run -p kingest-client --example group -- localhost:9092 events my-group`
//!
//! Where a member starts a partition its group has no committed offset for is
//! `offset_reset`: `OffsetReset::Latest` by default, as in the Java client
//! (`auto.offset.reset=latest`). So a new group reads only what is produced after it joined,
//! and a program that produces and then starts a group consumer on a new group receives none
//! of its own records. This example asks for `OffsetReset::Earliest`.

use kingest_client::consumer::OffsetReset;
use kingest_client::group::consumer::{GroupConsumer, GroupConsumerConfig, GroupEvent};
use kingest_client::{Client, ClientConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "localhost:9092".to_owned());
    let topic = args.next().unwrap_or_else(|| "events".to_owned());
    let group = args.next().unwrap_or_else(|| "example-group".to_owned());

    let client = Client::connect(ClientConfig::new(&brokers)).await?;
    let mut config = GroupConsumerConfig::new(&group, &[topic.as_str()]);
    // Without this, a new group starts at the end of each partition.
    config.consumer.offset_reset = OffsetReset::Earliest;
    let mut consumer = GroupConsumer::new(client, config)?;
    loop {
        match consumer.poll().await? {
            GroupEvent::Records(fetched) => {
                for r in fetched.records() {
                    let value = r.record.value.map(String::from_utf8_lossy);
                    println!(
                        "{}-{} @ {}: {:?}",
                        r.topic, r.partition, r.record.offset, value
                    );
                }
                consumer.commit().await?;
                let assigned = consumer.assignment();
                let pc = consumer.partition_consumer();
                if assigned.iter().all(|(t, p)| pc.lag(t, *p) == Some(0)) {
                    break;
                }
            }
            GroupEvent::Assigned(partitions) => println!("assigned {partitions:?}"),
            GroupEvent::Revoked(partitions) | GroupEvent::Lost(partitions) => {
                println!("no longer assigned {partitions:?}")
            }
        }
    }
    consumer.close().await?;
    Ok(())
}
