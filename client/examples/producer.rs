//! Sends ten keyed JSON records and prints where each landed.
//!
//! `cargo run -p kingest-client --example producer -- localhost:9092 events`
//! (a local broker: `kingest dev-broker --topic events:3`).

use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "localhost:9092".to_owned());
    let topic = args.next().unwrap_or_else(|| "events".to_owned());

    let client = Client::connect(ClientConfig::new(&brokers)).await?;
    let producer = Producer::new(client, ProducerConfig::default())?;
    let mut deliveries = Vec::new();
    for i in 0..10 {
        let record = ProducerRecord::new(topic.clone(), format!("{{\"n\":{i}}}"))
            .with_key(format!("key-{i}"));
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        let meta = delivery.await?;
        println!("{}-{} @ {}", meta.topic, meta.partition, meta.offset);
    }
    producer.close().await?;
    Ok(())
}
