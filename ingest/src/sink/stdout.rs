//! The stdout sink: one JSON object per row, one row per line, for inspection and pipes
//! (`kingest run job.toml | jq`).
//!
//! Encoding (arrow-json's writer, so it matches what other Arrow tools print):
//! - every column is a key, in schema order; nulls are written as `null` rather than
//!   left out, so every line has the same keys;
//! - timestamps with a time zone are RFC 3339 strings with the offset
//!   (`"2024-01-02T03:04:05.123+00:00"`); timestamps without one have no offset;
//!   dates are `"2024-01-02"`;
//! - binary values are lowercase hex strings (`"00ff"`): unambiguous, and `xxd -r -p` reads them;
//! - decimals are JSON numbers with their scale (`12.30`), so no precision is lost to floats;
//! - lists are arrays and structs objects.
//!
//! A pipe cannot take lines back, so this sink is at least once: [`Sink::flush`] reports what
//! was written since the last flush, the engine commits that to the Kafka group, and a crash
//! before that commit repeats those lines on restart. [`Sink::committed_offsets`] is empty
//! (the group's offsets are the record).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use arrow_array::RecordBatch;
use arrow_json::writer::{LineDelimited, WriterBuilder};
use arrow_schema::SchemaRef;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{CommittedFile, CommittedOffsets, OffsetRange, PartitionKey, Result, Sink, SinkError};

/// What [`CommittedFile::path`] says for this sink.
pub const STDOUT_PATH: &str = "<stdout>";

/// Writes rows as JSON lines to standard output (or any [`AsyncWrite`]). See the
/// [module docs](self).
pub struct StdoutSink<W = tokio::io::Stdout> {
    schema: SchemaRef,
    out: W,
    /// Written since the last flush: per partition, offsets, rows and bytes.
    pending: BTreeMap<PartitionKey, (OffsetRange, u64, u64)>,
    buf: Vec<u8>,
}

impl<W> fmt::Debug for StdoutSink<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutSink")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl StdoutSink {
    /// A sink writing to the process's standard output.
    pub fn new(schema: SchemaRef) -> Self {
        Self::with_writer(schema, tokio::io::stdout())
    }
}

impl<W: AsyncWrite + Unpin + Send> StdoutSink<W> {
    /// A sink writing JSON lines to `out`.
    pub fn with_writer(schema: SchemaRef, out: W) -> Self {
        Self {
            schema,
            out,
            pending: BTreeMap::new(),
            buf: Vec::new(),
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn io_err(e: std::io::Error) -> SinkError {
        SinkError::Io {
            op: "write",
            path: STDOUT_PATH.to_owned(),
            source: e,
        }
    }
}

impl<W: AsyncWrite + Unpin + Send> Sink for StdoutSink<W> {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
    ) -> Result<()> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(SinkError::SchemaMismatch {
                partition: partition.clone(),
                expected: format!("{:?}", self.schema.fields()),
                found: format!("{:?}", batch.schema().fields()),
            });
        }
        self.buf.clear();
        {
            let mut w = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, LineDelimited>(&mut self.buf);
            w.write(batch)
                .and_then(|()| w.finish())
                .map_err(|source| SinkError::Arrow {
                    context: "encoding JSON",
                    partition: partition.clone(),
                    source,
                })?;
        }
        self.out.write_all(&self.buf).await.map_err(Self::io_err)?;
        let entry = self
            .pending
            .entry(partition.clone())
            .or_insert((offsets, 0, 0));
        entry.0.next = offsets.next;
        entry.1 += batch.num_rows() as u64;
        entry.2 += self.buf.len() as u64;
        Ok(())
    }

    /// Lines go out as they are written; this only says there is something to report.
    fn should_flush(&self) -> bool {
        !self.pending.is_empty()
    }

    async fn flush(&mut self) -> Result<Vec<CommittedFile>> {
        self.out.flush().await.map_err(Self::io_err)?;
        Ok(std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(partition, (offsets, rows, bytes))| CommittedFile {
                path: STDOUT_PATH.to_owned(),
                partition,
                offsets,
                rows,
                bytes,
            })
            .collect())
    }

    fn committed_offsets(&self) -> impl Future<Output = Result<CommittedOffsets>> + Send {
        std::future::ready(Ok(CommittedOffsets::new()))
    }

    async fn close(mut self) -> Result<Vec<CommittedFile>> {
        self.flush().await
    }
}
