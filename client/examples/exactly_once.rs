//! Exactly-once consume-transform-produce: reads a topic as a consumer group member, writes
//! each record's value upper-cased to another topic, and commits the consumed offsets in the
//! same transaction as the output. If the process dies anywhere, the next one (same
//! transactional id) aborts what it left open and resumes from the offsets of the last
//! committed transaction, so read_committed readers of the output see every input record's
//! result exactly once. Runs until stopped, or with `--until-end` until its partitions are read
//! to their end.
//!
//! `cargo run -p kingest-client --example exactly_once -- localhost:9092 input output my-group my-transform [--until-end]`
//!
//! The transactional id doubles as the member's static instance id: one process per id, and a
//! restarted process takes its predecessor's place in the group at once.

use std::collections::HashMap;
use std::time::Duration;

use kingest_client::consumer::{IsolationLevel, OffsetReset};
use kingest_client::group::consumer::{GroupConsumer, GroupConsumerConfig, GroupEvent};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig, ClientError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let until_end = std::env::args().any(|a| a == "--until-end");
    let mut args = std::env::args().skip(1).filter(|a| a != "--until-end");
    let mut next = |default: &str| args.next().unwrap_or_else(|| default.to_owned());
    let brokers = next("localhost:9092");
    let input = next("input");
    let output = next("output");
    let group = next("exactly-once");
    let transactional_id = next("exactly-once-transform");

    let client = Client::connect(ClientConfig::new(&brokers)).await?;
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.transactional_id = Some(transactional_id.clone());
        config
    })?;
    // First, before consuming: this fences any older process with the same id and aborts its
    // open transaction, so the group's committed offsets are final when the consumer reads them.
    producer.init_transactions().await?;

    let mut config = GroupConsumerConfig::new(&group, &[input.as_str()]);
    config.instance_id = Some(transactional_id);
    config.session_timeout = Duration::from_secs(10);
    config.heartbeat_interval = Duration::from_secs(1);
    config.auto_commit = false; // offsets are committed by the transactions
    config.consumer.offset_reset = OffsetReset::Earliest;
    // Input written by transactional producers: only what they committed.
    config.consumer.isolation_level = IsolationLevel::ReadCommitted;
    let mut consumer = GroupConsumer::new(client, config)?;

    loop {
        let fetched = match consumer.poll().await? {
            GroupEvent::Records(fetched) => fetched,
            // Each transaction ends before the next poll, so nothing is in flight when the
            // assignment changes.
            _ => continue,
        };
        producer.begin_transaction()?;
        // Per partition: the first offset of this batch (to rewind to after an abort) and the
        // next offset to read (to commit).
        let mut first: HashMap<(String, i32), i64> = HashMap::new();
        let mut offsets: HashMap<(String, i32), i64> = HashMap::new();
        for r in fetched.records() {
            let value = r
                .record
                .value
                .map(|v| v.to_ascii_uppercase())
                .unwrap_or_default();
            let mut out = ProducerRecord::new(&output, value);
            if let Some(key) = r.record.key {
                out = out.with_key(key.to_vec());
            }
            // The delivery outcome is checked by commit_transaction.
            drop(producer.send(out).await?);
            let tp = (r.topic.to_owned(), r.partition);
            first.entry(tp.clone()).or_insert(r.record.offset);
            offsets.insert(tp, r.record.offset + 1);
        }
        let committed = async {
            producer
                .send_offsets_to_transaction(&offsets, &consumer.group_metadata())
                .await?;
            producer.commit_transaction().await
        }
        .await;
        match committed {
            Ok(()) => {}
            // Another process with this transactional id took over: stop.
            Err(e @ ClientError::ProducerFenced { .. }) => return Err(e.into()),
            Err(e) => {
                // Nothing of this batch counts: abort and read it again.
                eprintln!("transaction failed, reading the batch again: {e}");
                producer.abort_transaction().await?;
                for ((topic, partition), offset) in &first {
                    consumer
                        .partition_consumer()
                        .seek(topic, *partition, *offset)?;
                }
                continue;
            }
        }
        let assigned = consumer.assignment();
        let pc = consumer.partition_consumer();
        if until_end && assigned.iter().all(|(t, p)| pc.lag(t, *p) == Some(0)) {
            break;
        }
    }
    producer.close().await?;
    consumer.close().await?;
    Ok(())
}
