//! One flush as one PostgreSQL transaction: lock the offsets rows of the partitions being
//! written, COPY each pending batch (isolating rows the server rejects), write the new offsets,
//! commit.
//!
//! Redoing a transaction is always safe. Before writing, the transaction reads (and locks) each
//! partition's stored offset. If it is already at or past the end of what is pending, a
//! previous attempt committed even though its answer was lost (the connection broke during
//! COMMIT), or another process wrote those rows: either way they are in, so the batches are
//! skipped. If it lies inside the pending range, another process owns the partition now (this
//! one lost it without noticing): its batches are dropped, and the owner writes them.
//!
//! A batch goes in under a savepoint. When the server rejects a row (SQLSTATE class 22 or 23)
//! the savepoint is rolled back and the rows are tried again in parts: the row the error's
//! context names (`COPY t, line N`) alone, and the rows before and after it; without a line
//! (an upsert's INSERT), halves. Each part that still fails is split again, so k bad rows in n
//! cost O(k log n) small COPYs, and only when there are bad rows. If any row was rejected, the
//! whole transaction is rolled back and the rejected rows are reported; the next attempt leaves
//! them out, so rows and offsets still commit together.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::conn::{classify, copy_line, describe, ErrorClass};
use super::encode::{Encoder, HEADER, TRAILER};
use crate::sink::{OffsetRange, PartitionKey};

/// COPY data goes to the server in chunks of about this size.
const CHUNK: usize = 256 << 10;

/// The SQL and encoder a sink uses, fixed at open.
#[derive(Debug)]
pub(crate) struct Plan {
    pub encoder: Encoder,
    /// `COPY target (...) FROM STDIN (FORMAT binary)`, or into the staging table for upsert.
    pub copy_sql: String,
    /// For upsert: how to create the session's staging table, empty it, and merge it.
    pub upsert: Option<UpsertSql>,
    /// The offsets table, quoted.
    pub offsets_table: String,
    /// The consumer group whose offsets these are.
    pub group: String,
}

/// The statements of upsert mode.
#[derive(Debug)]
pub(crate) struct UpsertSql {
    /// Creates the staging table (once per connection: temporary tables are per session).
    pub create: String,
    /// Empties it before each COPY.
    pub truncate: String,
    /// Merges it into the target, the last row per key winning.
    pub merge: String,
}

/// A batch waiting for the next transaction.
#[derive(Debug)]
pub(crate) struct Pending {
    pub partition: PartitionKey,
    pub batch: RecordBatch,
    pub range: OffsetRange,
    /// Each row's Kafka offset, when the engine gave them.
    pub row_offsets: Option<Vec<i64>>,
    /// Rows left out because the server rejected them in an earlier attempt.
    pub excluded: Vec<bool>,
    /// COPY bytes of the last successful attempt.
    pub bytes: u64,
}

/// A row the server refused, found while isolating.
#[derive(Debug)]
pub(crate) struct Refused {
    /// Index into the pending list.
    pub pending: usize,
    /// The row in its batch.
    pub row: usize,
    /// The server's error.
    pub error: String,
}

/// What one attempt ended with.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Committed; per pending batch, whether it was written (false: skipped or dropped, see
    /// the module docs), and the partitions dropped because another process owns them.
    Committed {
        written: Vec<bool>,
        dropped: Vec<PartitionKey>,
    },
    /// Rolled back because rows were refused; they are marked excluded in the pending list.
    Refused(Vec<Refused>),
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The connection or the server failed: reconnect and redo.
    Retry(String),
    /// Something a retry does not cure.
    Fatal(String),
}

fn failure(context: &str, e: &tokio_postgres::Error) -> Failure {
    let message = format!("{context}: {}", describe(e));
    match classify(e) {
        ErrorClass::Retry => Failure::Retry(message),
        ErrorClass::Data | ErrorClass::Fatal => Failure::Fatal(message),
    }
}

async fn exec(client: &Client, sql: &str) -> Result<(), Failure> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| failure(sql, &e))
}

/// Runs one attempt at committing `pending`. On failure the transaction is rolled back (or the
/// connection is gone, which rolls it back).
pub(crate) async fn attempt(
    client: &Client,
    plan: &Plan,
    pending: &mut [Pending],
) -> Result<Outcome, Failure> {
    exec(client, "BEGIN").await?;
    match run(client, plan, pending).await {
        Ok(outcome) => Ok(outcome),
        Err(f) => {
            if let Failure::Fatal(_) = f {
                // Best effort: the connection stays usable for the next flush.
                let _ = client.batch_execute("ROLLBACK").await;
            }
            Err(f)
        }
    }
}

async fn run(client: &Client, plan: &Plan, pending: &mut [Pending]) -> Result<Outcome, Failure> {
    // Per partition: the first pending offset and the end of what is pending.
    let mut spans: BTreeMap<PartitionKey, (i64, i64)> = BTreeMap::new();
    for p in pending.iter() {
        let e = spans
            .entry(p.partition.clone())
            .or_insert((p.range.first, p.range.next));
        e.0 = e.0.min(p.range.first);
        e.1 = e.1.max(p.range.next);
    }
    let topics: Vec<&str> = spans.keys().map(|k| k.topic.as_str()).collect();
    let parts: Vec<i32> = spans.keys().map(|k| k.partition).collect();
    // A placeholder row (-1: nothing stored) for new partitions, so that the lock below covers
    // them too; it never outlives the transaction, which always sets the real offset.
    let placeholders = format!(
        "INSERT INTO {} (consumer_group, topic, partition, next_offset) \
         SELECT $1, t, p, -1 FROM unnest($2::text[], $3::int4[]) AS u(t, p) \
         ON CONFLICT DO NOTHING",
        plan.offsets_table
    );
    client
        .execute(&placeholders, &[&plan.group, &topics, &parts])
        .await
        .map_err(|e| failure("creating offsets rows", &e))?;
    let lock = format!(
        "SELECT topic, partition, next_offset FROM {} WHERE consumer_group = $1 \
         AND (topic, partition) IN (SELECT t, p FROM unnest($2::text[], $3::int4[]) AS u(t, p)) \
         FOR UPDATE",
        plan.offsets_table
    );
    let rows = client
        .query(&lock, &[&plan.group, &topics, &parts])
        .await
        .map_err(|e| failure("locking offsets rows", &e))?;
    let mut stored: BTreeMap<PartitionKey, i64> = BTreeMap::new();
    for r in rows {
        stored.insert(PartitionKey::new(r.get::<_, String>(0), r.get(1)), r.get(2));
    }
    let mut dropped = Vec::new();
    let mut write_partition: BTreeMap<PartitionKey, bool> = BTreeMap::new();
    for (key, (first, next)) in &spans {
        let cur = stored.get(key).copied().unwrap_or(-1);
        let write = if cur < 0 || cur <= *first {
            true
        } else if cur >= *next {
            tracing::info!(partition = %key, stored = cur, "rows already committed (an earlier attempt's commit went through)");
            false
        } else {
            tracing::warn!(partition = %key, stored = cur, first, next, "the offsets table moved past this process's rows: another process owns the partition; dropping them");
            dropped.push(key.clone());
            false
        };
        write_partition.insert(key.clone(), write);
    }

    let mut refused = Vec::new();
    let mut written = Vec::with_capacity(pending.len());
    for (i, p) in pending.iter_mut().enumerate() {
        let write = write_partition.get(&p.partition).copied().unwrap_or(false);
        written.push(write);
        if !write {
            continue;
        }
        let rows: Vec<usize> = (0..p.batch.num_rows())
            .filter(|r| !p.excluded[*r])
            .collect();
        let (bad, bytes) = isolate(client, plan, &p.batch, &rows).await?;
        p.bytes = bytes;
        refused.extend(bad.into_iter().map(|(row, error)| Refused {
            pending: i,
            row,
            error,
        }));
    }
    if !refused.is_empty() {
        exec(client, "ROLLBACK").await?;
        // Only now, with the rows on their way to the caller: an attempt that fails later
        // (a lost connection) must not leave rows excluded that nobody was told about.
        for r in &refused {
            pending[r.pending].excluded[r.row] = true;
        }
        return Ok(Outcome::Refused(refused));
    }

    let (mut t, mut pa, mut n) = (Vec::new(), Vec::new(), Vec::new());
    for (key, (_, next)) in &spans {
        if write_partition.get(key) == Some(&true) {
            t.push(key.topic.as_str());
            pa.push(key.partition);
            n.push(*next);
        }
    }
    let update = format!(
        "INSERT INTO {} (consumer_group, topic, partition, next_offset, updated_at) \
         SELECT $1, t, p, n, now() FROM unnest($2::text[], $3::int4[], $4::int8[]) AS u(t, p, n) \
         ON CONFLICT (consumer_group, topic, partition) \
         DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at",
        plan.offsets_table
    );
    client
        .execute(&update, &[&plan.group, &t, &pa, &n])
        .await
        .map_err(|e| failure("updating offsets", &e))?;
    exec(client, "COMMIT").await?;
    Ok(Outcome::Committed { written, dropped })
}

/// Inserts `rows` of `batch`, isolating the rows the server refuses (see the module docs).
/// Returns the refused rows with the server's error, and the COPY bytes sent for the rows that
/// went in.
async fn isolate(
    client: &Client,
    plan: &Plan,
    batch: &RecordBatch,
    rows: &[usize],
) -> Result<(Vec<(usize, String)>, u64), Failure> {
    let mut bad = Vec::new();
    let mut bytes = 0;
    // Parts still to insert, the leftmost on top: rows keep their order, which matters for
    // upsert (the last row per key wins) and for constraints between rows.
    let mut stack = vec![(0, rows.len())];
    while let Some((lo, hi)) = stack.pop() {
        if lo >= hi {
            continue;
        }
        exec(client, "SAVEPOINT kingest_batch").await?;
        match insert(client, plan, batch, &rows[lo..hi]).await {
            Ok(n) => {
                bytes += n;
                exec(client, "RELEASE SAVEPOINT kingest_batch").await?;
            }
            Err(e) => match classify(&e) {
                ErrorClass::Data => {
                    exec(client, "ROLLBACK TO SAVEPOINT kingest_batch").await?;
                    exec(client, "RELEASE SAVEPOINT kingest_batch").await?;
                    if hi - lo == 1 {
                        bad.push((rows[lo], describe(&e)));
                    } else if let Some(line) = copy_line(&e).filter(|l| (1..=hi - lo).contains(l)) {
                        let at = lo + line - 1;
                        stack.push((at + 1, hi));
                        stack.push((at, at + 1));
                        stack.push((lo, at));
                    } else {
                        let mid = lo + (hi - lo) / 2;
                        stack.push((mid, hi));
                        stack.push((lo, mid));
                    }
                }
                _ => return Err(failure("writing rows", &e)),
            },
        }
    }
    Ok((bad, bytes))
}

/// Inserts the rows: one COPY, or for upsert a COPY into the staging table and a merge.
async fn insert(
    client: &Client,
    plan: &Plan,
    batch: &RecordBatch,
    rows: &[usize],
) -> Result<u64, tokio_postgres::Error> {
    if let Some(u) = &plan.upsert {
        client.batch_execute(&u.truncate).await?;
    }
    let n = copy(client, plan, batch, rows).await?;
    if let Some(u) = &plan.upsert {
        client.batch_execute(&u.merge).await?;
    }
    Ok(n)
}

/// Streams the rows as one binary COPY; returns the bytes sent.
async fn copy(
    client: &Client,
    plan: &Plan,
    batch: &RecordBatch,
    rows: &[usize],
) -> Result<u64, tokio_postgres::Error> {
    // The encoder was built for the sink's schema, which `write` checked the batch against.
    let cols = plan.encoder.columns(batch).unwrap_or_default();
    let sink = client
        .copy_in::<_, bytes::Bytes>(plan.copy_sql.as_str())
        .await?;
    futures_util::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(CHUNK + (64 << 10));
    buf.put_slice(HEADER);
    let mut sent = 0u64;
    for &r in rows {
        plan.encoder.row(&cols, r, &mut buf);
        if buf.len() >= CHUNK {
            sent += buf.len() as u64;
            sink.send(buf.split().freeze()).await?;
            buf.reserve(CHUNK + (64 << 10));
        }
    }
    buf.put_slice(TRAILER);
    sent += buf.len() as u64;
    sink.send(buf.split().freeze()).await?;
    sink.as_mut().finish().await?;
    Ok(sent)
}

/// The statements for a target table and its columns.
pub(crate) fn plan(
    encoder: Encoder,
    table: &str,
    columns: &[String],
    key: &[String],
    offsets_table: String,
    group: String,
) -> Arc<Plan> {
    use super::schema::ident;
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let list = cols.join(", ");
    let (copy_sql, upsert) = if key.is_empty() {
        (
            format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"),
            None,
        )
    } else {
        let stage = "kingest_stage";
        let keys: Vec<String> = key.iter().map(|k| ident(k)).collect();
        let keys = keys.join(", ");
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !key.contains(c))
            .map(|c| format!("{0} = EXCLUDED.{0}", ident(c)))
            .collect();
        let action = if updates.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        (
            format!("COPY {stage} ({list}, \"__kingest_row\") FROM STDIN (FORMAT binary)"),
            Some(UpsertSql {
                create: format!(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {table} INCLUDING DEFAULTS); \
                     ALTER TABLE {stage} ADD COLUMN IF NOT EXISTS \"__kingest_row\" bigint"
                ),
                truncate: format!("TRUNCATE {stage}"),
                merge: format!(
                    "INSERT INTO {table} ({list}) SELECT DISTINCT ON ({keys}) {list} FROM {stage} \
                     ORDER BY {keys}, \"__kingest_row\" DESC ON CONFLICT ({keys}) {action}"
                ),
            }),
        )
    };
    Arc::new(Plan {
        encoder,
        copy_sql,
        upsert,
        offsets_table,
        group,
    })
}
