//! A running job's state and what it does on each group event: partitions assigned (resume
//! from the sink's offsets), records fetched (decode, count, bad records), thresholds reached
//! (filter, write, flush), partitions revoked or lost, and the end of the run.
//!
//! Order of durability on every flush ([`Job::flush`]): dead letters first (their file synced,
//! their topic acknowledged), then the sink (rows and offsets together), then the group
//! commit (only for lag tools). So a dead letter is never lost behind a committed offset.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use kingest_client::consumer::{Fetched, StartAt};
use kingest_client::group::consumer::GroupConsumer;

use super::errors::BadRecords;
use super::metrics::{Metrics, PartitionMetrics};
use super::progress::{Progress, Totals};
use super::{EngineError, RunSummary};
use crate::config::{Config, StartAt as StartConfig};
use crate::decode::{FormatSpec, RecordContext, RowDecoder};
use crate::filter::{BoundFilter, FilterError};
use crate::schema::ColumnSpec;
use crate::sink::{AnySink, CommittedFile, OffsetRange, PartitionKey, Sink};

/// One assigned partition's rows in the making.
struct Part {
    decoder: RowDecoder,
    /// The first offset not yet in the sink (the start of the next write).
    first: i64,
    /// The offset after the last record decoded.
    next: i64,
    since: Instant,
    /// The Kafka offset of each decoded row, so the sink can name rows its store rejects.
    offsets: Vec<i64>,
    metrics: PartitionMetrics,
}

/// How a job turns records into rows: a decoder per partition, and the filter.
pub(super) struct Decoding {
    pub(super) columns: Vec<ColumnSpec>,
    pub(super) value: FormatSpec,
    pub(super) key: Option<FormatSpec>,
    pub(super) filter: Option<BoundFilter>,
}

/// A running job. See the [module docs](self).
pub(super) struct Job {
    pub(super) config: Config,
    pub(super) sink: AnySink,
    pub(super) consumer: GroupConsumer,
    pub(super) decoding: Decoding,
    pub(super) errors: BadRecords,
    pub(super) metrics: Metrics,
    pub(super) progress: Progress,
    parts: HashMap<(String, i32), Part>,
    summary: RunSummary,
}

impl Job {
    /// A job with nothing assigned yet.
    pub(super) fn new(
        config: Config,
        sink: AnySink,
        consumer: GroupConsumer,
        decoding: Decoding,
        errors: BadRecords,
        metrics: Metrics,
        progress: Progress,
    ) -> Job {
        Job {
            config,
            sink,
            consumer,
            decoding,
            errors,
            metrics,
            progress,
            parts: HashMap::new(),
            summary: RunSummary::default(),
        }
    }

    /// New partitions: each resumes from the sink's offset for it, else the configured start,
    /// else the group's committed offset (or the reset policy).
    pub(super) async fn assigned(
        &mut self,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), EngineError> {
        tracing::info!(partitions = ?partitions, "assigned");
        let resume = self.sink.committed_offsets().await?;
        // The group may lag the sink (a process killed between a sink commit and the group
        // commit): bring it up to date, for lag tools.
        let sink_offsets: HashMap<(String, i32), i64> = partitions
            .iter()
            .filter_map(|k| resume.get(k).map(|o| (k.clone(), *o)))
            .collect();
        for (topic, partition) in partitions {
            let d = &self.decoding;
            let decoder = RowDecoder::new(&d.columns, &d.value, d.key.as_ref())
                .map_err(|e| EngineError::Setup(e.to_string()))?;
            let key = (topic.clone(), partition);
            let pc = self.consumer.partition_consumer();
            if let Some(offset) = resume.get(&key) {
                // The sink's offsets win over the group's: they are what is durable.
                pc.seek(&topic, partition, *offset)?;
            } else if let StartConfig::Offsets(o) = &self.config.source.start {
                if let Some(offset) = o.get(&key) {
                    pc.seek(&topic, partition, *offset)?;
                }
            } else if let StartConfig::Timestamp(ms) = self.config.source.start {
                pc.seek_to(&topic, partition, StartAt::Timestamp(ms))?;
            }
            let position = pc.position(&topic, partition).unwrap_or(0);
            let metrics = self.metrics.partition(&topic, partition);
            self.parts.insert(
                key,
                Part {
                    decoder,
                    first: position,
                    next: position,
                    since: Instant::now(),
                    offsets: Vec::new(),
                    metrics,
                },
            );
        }
        if !sink_offsets.is_empty() {
            if let Err(e) = self.consumer.commit_offsets(&sink_offsets).await {
                tracing::warn!(error = %e, "committing the sink's offsets to the group failed (the sink's offsets still hold)");
            }
        }
        Ok(())
    }

    /// Partitions leaving: what was read of them is written and flushed before they go.
    pub(super) async fn revoked(
        &mut self,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), EngineError> {
        tracing::info!(partitions = ?partitions, "revoked");
        for key in partitions {
            if let Some(mut part) = self.parts.remove(&key) {
                self.write(&key, &mut part).await?;
            }
            self.metrics.unassigned(&key.0, key.1);
        }
        self.flush(false).await
    }

    /// Partitions lost: another member may own them already, so what was not written is
    /// dropped (it is read again by their new owner).
    pub(super) fn lost(&mut self, partitions: Vec<(String, i32)>) {
        tracing::warn!(partitions = ?partitions, "lost (the group expired this member's session or fenced it): what was read of them and not written is dropped, and read again by their next owner");
        for key in partitions {
            self.parts.remove(&key);
            self.metrics.unassigned(&key.0, key.1);
        }
    }

    /// Decodes fetched records into their partitions' builders; bad records go through the
    /// error policy.
    pub(super) async fn records(&mut self, fetched: &Fetched) -> Result<(), EngineError> {
        for fp in fetched.partitions() {
            let Some(part) = self.parts.get_mut(&(fp.topic().to_owned(), fp.partition())) else {
                continue;
            };
            let (mut records, mut bytes) = (0u64, 0u64);
            for r in fp.records() {
                records += 1;
                self.summary.records += 1;
                let ctx = RecordContext::new(fp.topic(), fp.partition(), &r.record);
                bytes += (ctx.key.map_or(0, <[u8]>::len) + ctx.value.map_or(0, <[u8]>::len)) as u64;
                let mut decoded = Ok(());
                // The first record of a new schema id: fetch its writer schema (async).
                for pending in part.decoder.pending_schemas(&ctx) {
                    decoded = pending.fetch(&ctx).await;
                    if decoded.is_err() {
                        break;
                    }
                }
                let decoded = decoded.and_then(|()| part.decoder.append(&ctx));
                match decoded {
                    Ok(()) => part.offsets.push(ctx.offset),
                    Err(e) => {
                        self.summary.errors += 1;
                        part.metrics.errors.inc();
                        let (seen, errors) = (self.summary.records, self.summary.errors);
                        self.errors.record(&ctx, e, seen, errors).await?;
                    }
                }
            }
            part.metrics.records.inc_by(records);
            part.metrics.bytes.inc_by(bytes);
            self.summary.bytes += bytes;
            if part.decoder.rows() == 0 && part.first == part.next {
                part.since = Instant::now();
            }
            part.next = fp.next_offset();
        }
        Ok(())
    }

    /// Writes the partitions that reached a threshold (rows, bytes, age) and flushes what the
    /// sink says is due.
    pub(super) async fn write_due(&mut self) -> Result<(), EngineError> {
        let flush = &self.config.flush;
        let due: Vec<(String, i32)> = self
            .parts
            .iter()
            .filter(|(_, p)| {
                p.decoder.rows() as u64 >= flush.rows
                    || p.decoder.estimated_bytes() as u64 >= flush.bytes.0
                    || (p.next > p.first && p.since.elapsed() >= flush.age.0)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(mut part) = self.parts.remove(&key) {
                let written = self.write(&key, &mut part).await;
                self.parts.insert(key, part);
                written?;
            }
        }
        if self.sink.should_flush() {
            self.flush(true).await?;
        }
        Ok(())
    }

    /// Whether this process owns `key` now.
    pub(super) fn owns(&self, key: &(String, i32)) -> bool {
        self.parts.contains_key(key)
    }

    /// How many partitions this process owns now.
    pub(super) fn owned_count(&self) -> usize {
        self.parts.len()
    }

    /// Updates the lag gauges and shows progress, when a report is due; cheap otherwise.
    pub(super) fn tick(&mut self, lag_every: &mut Instant) {
        let progress_due = self.progress.due();
        if !progress_due && lag_every.elapsed() < Duration::from_secs(1) {
            return;
        }
        *lag_every = Instant::now();
        let pc = self.consumer.partition_consumer();
        let mut total: Option<i64> = None;
        for ((topic, partition), part) in &self.parts {
            if let Some(lag) = pc.lag(topic, *partition) {
                part.metrics.lag.set(lag);
                total = Some(total.unwrap_or(0) + lag);
            }
        }
        if progress_due {
            let s = &self.summary;
            self.progress.report(Totals {
                records: s.records,
                bytes: s.bytes,
                rows: s.rows,
                filtered: s.filtered,
                errors: s.errors,
                files: s.files as u64,
                flushes: s.flushes,
                lag: total,
            });
        }
    }

    /// Writes everything read, flushes, commits, leaves the group.
    pub(super) async fn finish(mut self) -> Result<RunSummary, EngineError> {
        let keys: Vec<(String, i32)> = self.parts.keys().cloned().collect();
        for key in keys {
            if let Some(mut part) = self.parts.remove(&key) {
                self.write(&key, &mut part).await?;
            }
        }
        self.flush(false).await?;
        // Everything is flushed: closing only releases the sink (it commits what it still
        // holds, which is nothing, or rows it kept back).
        self.errors.make_durable().await?;
        let Job {
            sink,
            mut consumer,
            errors,
            metrics,
            mut summary,
            ..
        } = self;
        let started = Instant::now();
        let files = sink.close().await?;
        if !files.is_empty() {
            flushed(&metrics, &mut summary, &mut consumer, files, started).await;
        }
        errors.close().await?;
        consumer.close().await?;
        Ok(summary)
    }

    /// Hands a partition's decoded rows, filtered, to the sink with the offsets they cover.
    /// The range covers every record read, so records the filter dropped (or that were bad)
    /// still count as read, even when no row is left.
    async fn write(&mut self, key: &(String, i32), part: &mut Part) -> Result<(), EngineError> {
        if part.next <= part.first {
            return Ok(());
        }
        let batch = part.decoder.finish();
        let (batch, offsets) = match &self.decoding.filter {
            Some(f) => {
                let mask = f.evaluate(&batch).map_err(|e| filter_error(key, part, e))?;
                let kept = arrow_select::filter::filter_record_batch(&batch, &mask)
                    .map_err(|e| filter_error(key, part, FilterError::Evaluate(e)))?;
                let offsets: Vec<i64> = part
                    .offsets
                    .iter()
                    .zip(mask.iter())
                    .filter(|(_, keep)| *keep == Some(true))
                    .map(|(o, _)| *o)
                    .collect();
                let dropped = (batch.num_rows() - kept.num_rows()) as u64;
                part.metrics.filtered.inc_by(dropped);
                self.summary.filtered += dropped;
                (kept, offsets)
            }
            None => (batch, std::mem::take(&mut part.offsets)),
        };
        part.offsets.clear();
        self.write_batch(
            key,
            &batch,
            OffsetRange::new(part.first, part.next),
            &offsets,
        )
        .await?;
        part.metrics.rows.inc_by(batch.num_rows() as u64);
        self.summary.rows += batch.num_rows() as u64;
        part.first = part.next;
        part.since = Instant::now();
        Ok(())
    }

    async fn write_batch(
        &mut self,
        key: &(String, i32),
        batch: &RecordBatch,
        range: OffsetRange,
        row_offsets: &[i64],
    ) -> Result<(), EngineError> {
        let partition = PartitionKey::new(&key.0, key.1);
        self.sink
            .write_rows(&partition, batch, range, row_offsets)
            .await?;
        Ok(())
    }

    /// Makes what was written durable (what is due, or everything): dead letters first, then
    /// the sink; then commits the offsets to the group. Rows the sink's store refused (a
    /// database constraint, say) go through the error policy; a flush that refused rows
    /// committed nothing, so the sink is flushed again and commits the other rows without
    /// them (each round removes at least one row, so this ends).
    async fn flush(&mut self, due_only: bool) -> Result<(), EngineError> {
        loop {
            self.errors.make_durable().await?;
            let started = Instant::now();
            let files = if due_only {
                self.sink.flush_due().await?
            } else {
                self.sink.flush().await?
            };
            flushed(
                &self.metrics,
                &mut self.summary,
                &mut self.consumer,
                files,
                started,
            )
            .await;
            let rejected = self.sink.take_rejected();
            if rejected.is_empty() {
                return Ok(());
            }
            for row in rejected {
                self.summary.errors += 1;
                let key = (row.partition.topic.clone(), row.partition.partition);
                if let Some(part) = self.parts.get(&key) {
                    part.metrics.errors.inc();
                }
                let (seen, errors) = (self.summary.records, self.summary.errors);
                self.errors
                    .rejected(
                        &row.partition,
                        row.offset,
                        &row.error,
                        &row.row,
                        seen,
                        errors,
                    )
                    .await?;
            }
        }
    }
}

/// Counts a flush and commits the offsets of its durable files to the group, for lag tools;
/// the sink's own offsets are the ones that count, so a failed commit is only logged.
async fn flushed(
    metrics: &Metrics,
    summary: &mut RunSummary,
    consumer: &mut GroupConsumer,
    files: Vec<CommittedFile>,
    started: Instant,
) {
    metrics.flushed(files.len(), started.elapsed());
    summary.flushes += 1;
    summary.files += files.len();
    let mut offsets: HashMap<(String, i32), i64> = HashMap::new();
    for f in &files {
        let e = offsets
            .entry((f.partition.topic.clone(), f.partition.partition))
            .or_insert(f.offsets.next);
        *e = (*e).max(f.offsets.next);
    }
    if offsets.is_empty() {
        return;
    }
    if let Err(e) = consumer.commit_offsets(&offsets).await {
        tracing::warn!(error = %e, "committing sink offsets to the group failed (the sink's offsets still hold)");
    }
}

fn filter_error(key: &(String, i32), part: &Part, e: FilterError) -> EngineError {
    EngineError::Filter {
        topic: key.0.clone(),
        partition: key.1,
        offsets: OffsetRange::new(part.first, part.next),
        source: Box::new(e),
    }
}
