//! Bad records: `errors.on_error` (`fail`, `skip`, `dead_letter`), the error limit
//! (`errors.max_errors`), and the dead letters ([`super::dead_letter`]).
//!
//! A bad record is handled once: it is counted, logged and (with `dead_letter`) written, and
//! the partition's offsets move past it like past any other record, so it is never read
//! again by this run and never loops. With `fail` the run stops at the first one, naming its
//! topic, partition and offset; nothing after the last durable sink flush is committed, so a
//! fixed job (or one switched to `skip`) starts again from there.
//!
//! A record whose schema could not be fetched because the registry is unreachable is not bad:
//! it is neither skipped nor dead-lettered, whatever the policy; the run stops and a restart
//! reads it again.
//!
//! A tombstone that `format.tombstones = "skip"` drops reaches here as a decode error (the
//! decoder gives it no row) and is let go: not logged, not dead-lettered, not held against the
//! limit (the run's error total, which counts every record that gave no row, still holds it).
//!
//! The limit: `max_errors = 100` stops the run at the 101st bad record; `max_errors = "1%"`
//! stops it once more than 1% of the records read are bad, judged from the 100th record on
//! (one bad record among the first three is no rate).

use kingest_client::Client;

use super::dead_letter::{DeadLetters, Letter};
use super::EngineError;
use crate::config::{Config, ErrorLimit, OnError};
use crate::decode::{DecodeError, RecordContext};
use crate::sink::PartitionKey;

/// The error policy of a run.
#[derive(Debug)]
pub(super) struct BadRecords {
    policy: OnError,
    limit: Option<ErrorLimit>,
    /// The limit as configured, for the message.
    limit_text: String,
    dead_letters: DeadLetters,
    /// Tombstones dropped by `format.tombstones = "skip"`: in the run's error count (the
    /// caller counts every record that gave no row), so taken out of it for the limit.
    skipped_tombstones: u64,
}

impl BadRecords {
    /// The policy of `config`, with its dead-letter destinations opened.
    pub(super) async fn open(config: &Config, client: &Client) -> Result<BadRecords, EngineError> {
        let e = &config.errors;
        let limit = e.limit().map_err(|e| EngineError::Setup(e.to_string()))?;
        let dead_letters = if e.on_error == OnError::DeadLetter {
            DeadLetters::open(
                e.dead_letter_file.as_deref(),
                e.dead_letter_topic.as_deref(),
                client,
            )
            .await?
        } else {
            DeadLetters::default()
        };
        if e.on_error == OnError::DeadLetter && dead_letters.is_empty() {
            return Err(EngineError::Setup(
                "errors.on_error = \"dead_letter\" needs errors.dead_letter_file or errors.dead_letter_topic".to_owned(),
            ));
        }
        Ok(BadRecords {
            policy: e.on_error,
            limit,
            limit_text: e
                .max_errors
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            dead_letters,
            skipped_tombstones: 0,
        })
    }

    /// A record that failed to decode. `records` and `errors` are the run's totals, this record
    /// included. Returns an error when the run must stop.
    pub(super) async fn record(
        &mut self,
        ctx: &RecordContext<'_>,
        error: DecodeError,
        records: u64,
        errors: u64,
    ) -> Result<(), EngineError> {
        // `format.tombstones = "skip"`: no row, and not a bad record either.
        if error.is_skipped_tombstone() {
            self.skipped_tombstones += 1;
            return Ok(());
        }
        if self.policy == OnError::Fail || error.is_retriable() {
            return Err(EngineError::Record {
                topic: ctx.topic.to_owned(),
                partition: ctx.partition,
                offset: ctx.offset,
                source: Box::new(error),
            });
        }
        tracing::warn!(topic = ctx.topic, partition = ctx.partition, offset = ctx.offset, error = %error, "bad record");
        let message = error.to_string();
        let letter = Letter {
            topic: ctx.topic,
            partition: ctx.partition,
            offset: ctx.offset,
            timestamp: ctx.timestamp,
            key: ctx.key,
            value: ctx.value,
            headers: ctx.headers.iter().map(|h| (h.key, h.value)).collect(),
            error: message.clone(),
            stage: "decode",
            row_json: None,
        };
        self.dead_letters.write(&letter).await?;
        self.check_limit(
            records,
            errors,
            ctx.topic,
            ctx.partition,
            ctx.offset,
            &message,
        )
    }

    /// A row the sink's store refused (the sink already stopped the run under `fail`): its
    /// row as JSON is the dead letter's value. `offset` is unknown (-1 in the dead letter)
    /// when the sink was not given row offsets.
    pub(super) async fn rejected(
        &mut self,
        partition: &PartitionKey,
        offset: Option<i64>,
        error: &str,
        row_json: &str,
        records: u64,
        errors: u64,
    ) -> Result<(), EngineError> {
        let offset = offset.unwrap_or(-1);
        tracing::warn!(topic = %partition.topic, partition = partition.partition, offset, error, "row refused by the sink");
        let letter = Letter {
            topic: &partition.topic,
            partition: partition.partition,
            offset,
            timestamp: -1,
            key: None,
            value: Some(row_json.as_bytes()),
            headers: Vec::new(),
            error: error.to_owned(),
            stage: "sink",
            row_json: Some(row_json),
        };
        self.dead_letters.write(&letter).await?;
        self.check_limit(
            records,
            errors,
            &partition.topic,
            partition.partition,
            offset,
            error,
        )
    }

    fn check_limit(
        &self,
        records: u64,
        errors: u64,
        topic: &str,
        partition: i32,
        offset: i64,
        last: &str,
    ) -> Result<(), EngineError> {
        let errors = errors.saturating_sub(self.skipped_tombstones);
        if !over_limit(self.limit, records, errors) {
            return Ok(());
        }
        Err(EngineError::ErrorLimit {
            errors,
            records,
            limit: self.limit_text.clone(),
            topic: topic.to_owned(),
            partition,
            offset,
            last: last.to_owned(),
        })
    }

    /// Makes the dead letters written so far durable; called before every sink flush.
    pub(super) async fn make_durable(&mut self) -> Result<(), EngineError> {
        self.dead_letters.make_durable().await
    }

    /// Makes everything durable and closes the dead-letter producer.
    pub(super) async fn close(self) -> Result<(), EngineError> {
        self.dead_letters.close().await
    }
}

/// Whether `errors` bad records among `records` exceed `limit`.
fn over_limit(limit: Option<ErrorLimit>, records: u64, errors: u64) -> bool {
    match limit {
        None => false,
        Some(ErrorLimit::Count(n)) => errors > n,
        Some(ErrorLimit::Fraction(f)) => records >= 100 && errors as f64 > f * records as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(!over_limit(None, 10, 10));
        assert!(!over_limit(Some(ErrorLimit::Count(3)), 10, 3));
        assert!(over_limit(Some(ErrorLimit::Count(3)), 10, 4));
        assert!(over_limit(Some(ErrorLimit::Count(0)), 1, 1));
        // 1%: not judged before 100 records, then strictly more than 1%.
        assert!(!over_limit(Some(ErrorLimit::Fraction(0.01)), 99, 50));
        assert!(!over_limit(Some(ErrorLimit::Fraction(0.01)), 200, 2));
        assert!(over_limit(Some(ErrorLimit::Fraction(0.01)), 200, 3));
    }
}
