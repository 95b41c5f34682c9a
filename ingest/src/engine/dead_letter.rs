//! Dead letters: where `on_error = "dead_letter"` puts records that could not be decoded (and
//! rows the sink's store refused), with why and where they came from.
//!
//! - `errors.dead_letter_file`: JSON lines, one per record: `topic`, `partition`, `offset`,
//!   `timestamp`, `error`, `stage` (`decode` or `sink`), `key_hex`, `value_hex` and `headers`
//!   (`[{"key": ..., "value_hex": ...}]`), and for a row the sink refused, `row` (the row as a
//!   JSON object); the file is appended to, never truncated.
//! - `errors.dead_letter_topic`: the raw record (key, value, original headers and timestamp)
//!   produced to that topic, with these headers added: `kingest.error.message`,
//!   `kingest.error.stage`, `kingest.error.topic`, `kingest.error.partition`,
//!   `kingest.error.offset`, `kingest.error.timestamp` (numbers as decimal text). The topic
//!   must exist; the producer is idempotent with `acks = all`.
//!
//! Durability: [`DeadLetters::make_durable`] (file: flush and fsync; topic: flush the producer
//! and wait for every acknowledgement) runs before every sink flush, so no offset the sink
//! commits ever covers a dead letter that could still be lost. A crash between the two
//! produces the dead letter again on the next run: dead letters are at least once.

use bytes::Bytes;
use kingest_client::producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientError};
use std::io::Write as _;

use super::EngineError;

/// Dead letters waiting for acknowledgement before the oldest are awaited (bounds memory when
/// a topic fills with errors between two sink flushes).
const MAX_PENDING: usize = 4096;

/// A record (or row) to dead-letter.
#[derive(Debug, Clone)]
pub(super) struct Letter<'a> {
    pub(super) topic: &'a str,
    pub(super) partition: i32,
    pub(super) offset: i64,
    /// Milliseconds since the epoch; negative when unknown.
    pub(super) timestamp: i64,
    pub(super) key: Option<&'a [u8]>,
    pub(super) value: Option<&'a [u8]>,
    pub(super) headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
    pub(super) error: String,
    /// `decode` (the record could not be decoded) or `sink` (the store refused the row).
    pub(super) stage: &'static str,
    /// For a refused row: the row as a JSON object (also the value sent to the topic).
    pub(super) row_json: Option<&'a str>,
}

/// The configured dead-letter destinations (none, one or both).
#[derive(Debug, Default)]
pub(super) struct DeadLetters {
    file: Option<DeadLetterFile>,
    topic: Option<DeadLetterTopic>,
}

#[derive(Debug)]
struct DeadLetterFile {
    path: String,
    out: std::io::BufWriter<std::fs::File>,
    dirty: bool,
}

#[derive(Debug)]
struct DeadLetterTopic {
    topic: String,
    producer: Producer,
    /// Sent, not yet acknowledged: (delivery, source topic, partition, offset).
    pending: Vec<(DeliveryFuture, String, i32, i64)>,
}

impl DeadLetters {
    /// Opens the file (appending) and checks the topic exists.
    pub(super) async fn open(
        file: Option<&str>,
        topic: Option<&str>,
        client: &Client,
    ) -> Result<DeadLetters, EngineError> {
        let file = match file {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| EngineError::DeadLetter {
                        path: path.to_owned(),
                        source,
                    })?;
                Some(DeadLetterFile {
                    path: path.to_owned(),
                    out: std::io::BufWriter::new(f),
                    dirty: false,
                })
            }
            None => None,
        };
        let topic = match topic {
            Some(t) => {
                // Fail now, not at the first bad record hours later.
                client.partition_count(t).await.map_err(|e| {
                    EngineError::Setup(format!(
                        "errors.dead_letter_topic {t:?}: {e} (create it first: kingest topics create {t})"
                    ))
                })?;
                Some(DeadLetterTopic {
                    topic: t.to_owned(),
                    producer: Producer::new(client.clone(), ProducerConfig::default())?,
                    pending: Vec::new(),
                })
            }
            None => None,
        };
        Ok(DeadLetters { file, topic })
    }

    /// Whether there is anywhere to write.
    pub(super) fn is_empty(&self) -> bool {
        self.file.is_none() && self.topic.is_none()
    }

    /// Writes `letter` everywhere configured (buffered: see [`DeadLetters::make_durable`]).
    pub(super) async fn write(&mut self, letter: &Letter<'_>) -> Result<(), EngineError> {
        if let Some(f) = &mut self.file {
            let mut line = serde_json::json!({
                "topic": letter.topic,
                "partition": letter.partition,
                "offset": letter.offset,
                "timestamp": letter.timestamp,
                "error": letter.error,
                "stage": letter.stage,
                "key_hex": letter.key.map(hex::encode),
                "value_hex": letter.value.map(hex::encode),
                "headers": letter.headers.iter().map(|(k, v)| serde_json::json!({
                    "key": String::from_utf8_lossy(k),
                    "value_hex": v.map(hex::encode),
                })).collect::<Vec<_>>(),
            });
            if let Some(row) = letter.row_json {
                line["row"] = serde_json::from_str(row)
                    .unwrap_or_else(|_| serde_json::Value::String(row.to_owned()));
            }
            writeln!(f.out, "{line}").map_err(|source| EngineError::DeadLetter {
                path: f.path.clone(),
                source,
            })?;
            f.dirty = true;
        }
        if let Some(t) = &mut self.topic {
            let mut record = ProducerRecord {
                topic: t.topic.clone(),
                key: letter.key.map(Bytes::copy_from_slice),
                value: letter.value.map(Bytes::copy_from_slice),
                timestamp: (letter.timestamp >= 0).then_some(letter.timestamp),
                ..ProducerRecord::default()
            };
            for (k, v) in &letter.headers {
                record.headers.push((
                    String::from_utf8_lossy(k).into_owned(),
                    v.map(Bytes::copy_from_slice),
                ));
            }
            let text = |s: String| Some(Bytes::from(s));
            record.headers.extend([
                (
                    "kingest.error.message".to_owned(),
                    text(letter.error.clone()),
                ),
                (
                    "kingest.error.stage".to_owned(),
                    text(letter.stage.to_owned()),
                ),
                (
                    "kingest.error.topic".to_owned(),
                    text(letter.topic.to_owned()),
                ),
                (
                    "kingest.error.partition".to_owned(),
                    text(letter.partition.to_string()),
                ),
                (
                    "kingest.error.offset".to_owned(),
                    text(letter.offset.to_string()),
                ),
                (
                    "kingest.error.timestamp".to_owned(),
                    text(letter.timestamp.to_string()),
                ),
            ]);
            let delivery = t
                .producer
                .send(record)
                .await
                .map_err(|e| t.error(letter.topic, letter.partition, letter.offset, e))?;
            t.pending.push((
                delivery,
                letter.topic.to_owned(),
                letter.partition,
                letter.offset,
            ));
            if t.pending.len() >= MAX_PENDING {
                t.settle().await?;
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable: the file flushed and fsynced, every record
    /// produced to the topic acknowledged. Called before the sink commits offsets.
    pub(super) async fn make_durable(&mut self) -> Result<(), EngineError> {
        if let Some(f) = &mut self.file {
            if f.dirty {
                let synced = f.out.flush().and_then(|()| f.out.get_ref().sync_data());
                synced.map_err(|source| EngineError::DeadLetter {
                    path: f.path.clone(),
                    source,
                })?;
                f.dirty = false;
            }
        }
        if let Some(t) = &mut self.topic {
            t.settle().await?;
        }
        Ok(())
    }

    /// Makes everything durable and stops the producer.
    pub(super) async fn close(mut self) -> Result<(), EngineError> {
        self.make_durable().await?;
        if let Some(t) = &self.topic {
            t.producer.close().await?;
        }
        Ok(())
    }
}

impl DeadLetterTopic {
    fn error(&self, topic: &str, partition: i32, offset: i64, e: ClientError) -> EngineError {
        EngineError::DeadLetterTopic {
            topic: self.topic.clone(),
            source_topic: topic.to_owned(),
            partition,
            offset,
            source: Box::new(e),
        }
    }

    /// Sends what is buffered and waits for every acknowledgement.
    async fn settle(&mut self) -> Result<(), EngineError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.producer.flush().await;
        for (delivery, topic, partition, offset) in std::mem::take(&mut self.pending) {
            delivery
                .await
                .map_err(|e| self.error(&topic, partition, offset, e))?;
        }
        Ok(())
    }
}
