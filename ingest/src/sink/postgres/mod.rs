//! The PostgreSQL sink: record batches into a table with binary COPY, exactly once.
//!
//! # Exactly once
//!
//! Written batches wait in memory until a flush; a flush is one transaction that COPYs every
//! waiting batch and then upserts, in the offsets table (default `kingest_offsets`), the row
//! `(consumer_group, topic, partition) → next_offset` of each partition written. Rows and
//! offsets commit together, so [`PostgresSink::committed_offsets`] (which reads that table)
//! is exactly where the stored rows end: a process killed at any point resumes from there, and
//! nothing is lost or stored twice. See `txn.rs` for how a transaction redone after a lost
//! connection (whose COMMIT may or may not have gone through) stays exactly once, and how a
//! process that lost its partitions without noticing is kept from writing them.
//!
//! # Pipelining
//!
//! [`Sink::flush_due`] (the engine's flush on its thresholds) hands the pending batches to a
//! committer task and returns at once with what earlier commits made durable, so the engine
//! decodes the next batches while PostgreSQL takes these; one commit is in flight at a time,
//! batches written meanwhile wait for the next (at most 256 MiB of them before a write waits).
//! [`Sink::flush`] (rebalance, shutdown) waits for everything. Reading the stored offsets waits
//! for a commit in flight, so a partition is never resumed from an offset about to move.
//!
//! # Modes
//!
//! `insert` COPYs into the table. `upsert` COPYs into a temporary staging table and merges it
//! with `INSERT ... ON CONFLICT (key) DO UPDATE`, keeping the last row per key.
//!
//! # Rejected rows
//!
//! A row the server refuses (a constraint, a value out of range, text it cannot store) is
//! isolated while the rest of its batch goes in. With [`RejectPolicy::Fail`] the flush fails
//! with an error naming the row's topic, partition and offset, and nothing of that
//! transaction is committed; with [`RejectPolicy::Report`] the flush commits nothing either
//! but hands the rows to [`Sink::take_rejected`] (for the engine's skip or dead-letter
//! policy), and the next flush commits the rest without them.
//!
//! # Connection loss
//!
//! Any failure a reconnect can cure (broken connection, server restart, failover, too many
//! connections) is retried with backoff ([`RetryPolicy`]); the pending batches are still in
//! memory, so the redo writes exactly what the failed attempt would have.

mod commit;
pub(crate) mod conn;
mod encode;
mod json;
mod schema;
mod txn;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use self::commit::{Committer, Done};
pub use self::conn::RetryPolicy;
use self::conn::{classify, describe, Backoff, ErrorClass, Settings};
use self::encode::Encoder;
pub use self::schema::Difference;
use self::schema::TableName;
use self::txn::{Pending, Plan};
use self::types::Target;
use super::{
    CommittedFile, CommittedOffsets, OffsetRange, PartitionKey, RejectedRow, Result, Sink,
    SinkError,
};

/// How rows are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresMode {
    /// Plain inserts (COPY).
    Insert,
    /// Insert or update on these key columns; the last row per key wins.
    Upsert(Vec<String>),
}

/// What happens to a row the server rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectPolicy {
    /// Fail the flush, naming the row (`errors.on_error = "fail"`).
    Fail,
    /// Report it through [`Sink::take_rejected`] and commit the other rows without it.
    Report,
}

/// How to open a [`PostgresSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSinkConfig {
    /// The connection string: `postgres://user:password@host:port/db?sslmode=...` or libpq's
    /// `key=value` form (see the `sslmode` notes in the [module docs](self)).
    pub url: String,
    /// The target table, `name` or `schema.name`.
    pub table: String,
    /// Insert or upsert.
    pub mode: PostgresMode,
    /// The offsets table, `name` or `schema.name`.
    pub offsets_table: String,
    /// The consumer group the offsets are kept for.
    pub group_id: String,
    /// What happens to rejected rows.
    pub on_reject: RejectPolicy,
    /// Reconnecting.
    pub retry: RetryPolicy,
}

impl PostgresSinkConfig {
    /// Defaults (insert, `kingest_offsets`, fail on rejected rows) for a table and a group.
    pub fn new(
        url: impl Into<String>,
        table: impl Into<String>,
        group_id: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            table: table.into(),
            mode: PostgresMode::Insert,
            offsets_table: "kingest_offsets".to_owned(),
            group_id: group_id.into(),
            on_reject: RejectPolicy::Fail,
            retry: RetryPolicy::default(),
        }
    }

    fn key(&self) -> &[String] {
        match &self.mode {
            PostgresMode::Insert => &[],
            PostgresMode::Upsert(k) => k,
        }
    }
}

/// What `kingest setup` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupReport {
    /// The `CREATE TABLE` run for the target table, if it did not exist.
    pub created_table: Option<String>,
    /// The `CREATE TABLE` run for the offsets table, if it did not exist.
    pub created_offsets: Option<String>,
    /// How existing tables differ from what the job needs.
    pub differences: Vec<Difference>,
}

impl SetupReport {
    /// Whether a difference stops the job from running.
    pub fn blocked(&self) -> bool {
        self.differences.iter().any(|d| d.blocking)
    }
}

fn pg_error(server: &str, context: impl Into<String>, message: impl Into<String>) -> SinkError {
    SinkError::Postgres {
        server: server.to_owned(),
        context: context.into(),
        message: message.into(),
    }
}

/// The server and the two tables the config names; an error names the config key.
fn locations(config: &PostgresSinkConfig) -> Result<(Settings, TableName, TableName)> {
    let at = |key: &str| {
        let location = key.to_owned();
        move |reason| SinkError::Location { location, reason }
    };
    let settings = Settings::parse(&config.url).map_err(at("sink.url"))?;
    let table = TableName::parse(&config.table).map_err(at("sink.table"))?;
    let offsets = TableName::parse(&config.offsets_table).map_err(at("sink.offsets_table"))?;
    Ok((settings, table, offsets))
}

/// Connects, retrying what a retry can cure.
async fn connect(settings: &Settings, retry: RetryPolicy) -> Result<Arc<Client>> {
    let mut backoff = Backoff::new(retry);
    loop {
        match settings.connect().await {
            Ok(c) => return Ok(c),
            Err(e) if classify(&e) == ErrorClass::Retry => {
                tracing::warn!(server = %settings.display, error = %describe(&e), "connecting to PostgreSQL failed; retrying");
                if !backoff.wait().await {
                    return Err(pg_error(&settings.display, "connecting", describe(&e)));
                }
            }
            Err(e) => return Err(pg_error(&settings.display, "connecting", describe(&e))),
        }
    }
}

/// Creates the target and offsets tables when they do not exist, and reports how existing ones
/// differ from what the job writes (`kingest setup`).
pub async fn setup(config: &PostgresSinkConfig, schema: &SchemaRef) -> Result<SetupReport> {
    let (settings, table, offsets) = locations(config)?;
    let server = settings.display.clone();
    let client = connect(&settings, config.retry).await?;
    let mut report = SetupReport::default();
    let ddl = schema::create_table_sql(&table, schema, config.key())
        .map_err(|m| pg_error(&server, "mapping columns", m))?;
    let before = schema::inspect_table(&client, &table, schema, config.key())
        .await
        .map_err(|m| pg_error(&server, "checking the table", m))?;
    if before.exists {
        report.differences.extend(before.differences);
    } else {
        client
            .batch_execute(&ddl)
            .await
            .map_err(|e| pg_error(&server, ddl.clone(), describe(&e)))?;
        report.created_table = Some(ddl);
    }
    match schema::inspect_offsets(&client, &offsets)
        .await
        .map_err(|m| pg_error(&server, "checking the offsets table", m))?
    {
        Some(d) => report.differences.extend(d),
        None => {
            let ddl = schema::create_offsets_sql(&offsets);
            client
                .batch_execute(&ddl)
                .await
                .map_err(|e| pg_error(&server, ddl.clone(), describe(&e)))?;
            report.created_offsets = Some(ddl);
        }
    }
    Ok(report)
}

/// Writes record batches into a PostgreSQL table. See the [module docs](self).
pub struct PostgresSink {
    config: PostgresSinkConfig,
    schema: SchemaRef,
    settings: Settings,
    table: TableName,
    plan: Arc<Plan>,
    /// Runs transactions; `None` while it runs one (`in_flight`).
    committer: Option<Committer>,
    in_flight: Option<JoinHandle<(Committer, Vec<Pending>, Done)>>,
    /// Held by a commit in flight: reading the stored offsets waits for it.
    gate: Arc<Mutex<()>>,
    /// Committed since the engine last asked.
    completed: Vec<CommittedFile>,
    pending: Vec<Pending>,
    rejected: Vec<RejectedRow>,
    /// Per partition, the `next` of the last write: batches must not go back.
    written: HashMap<PartitionKey, i64>,
    poisoned: Option<String>,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("server", &self.settings.display)
            .field("table", &self.table.text)
            .field("pending_batches", &self.pending.len())
            .field("committing", &self.in_flight.is_some())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl PostgresSink {
    /// Connects and checks that the target table takes batches of `schema` and that the
    /// offsets table exists (`kingest setup` creates both).
    pub async fn open(config: PostgresSinkConfig, schema: SchemaRef) -> Result<Self> {
        let (settings, table, offsets) = locations(&config)?;
        let server = settings.display.clone();
        let client = connect(&settings, config.retry).await?;
        let inspection = schema::inspect_table(&client, &table, &schema, config.key())
            .await
            .map_err(|m| pg_error(&server, "checking the table", m))?;
        let Some(targets) = inspection.targets else {
            return Err(table_error(&server, &table, &inspection.differences));
        };
        for d in &inspection.differences {
            tracing::info!(table = %table.text, "{d}");
        }
        match schema::inspect_offsets(&client, &offsets)
            .await
            .map_err(|m| pg_error(&server, "checking the offsets table", m))?
        {
            None => {
                return Err(pg_error(
                    &server,
                    "checking the offsets table",
                    format!(
                        "{} does not exist: `kingest setup` creates it",
                        offsets.text
                    ),
                ))
            }
            Some(d) if d.iter().any(|d| d.blocking) => {
                return Err(table_error(&server, &offsets, &d))
            }
            Some(_) => {}
        }
        let plan = plan_for(&config, &schema, &table, &offsets, targets);
        let client = commit::prepare_session(&settings, &plan, client).await?;
        let gate = Arc::new(Mutex::new(()));
        let committer = Committer {
            settings: settings.clone(),
            plan: plan.clone(),
            retry: config.retry,
            client: Some(client),
            gate: gate.clone(),
        };
        Ok(PostgresSink {
            config,
            schema,
            settings,
            table,
            plan,
            committer: Some(committer),
            in_flight: None,
            gate,
            completed: Vec::new(),
            pending: Vec::new(),
            rejected: Vec::new(),
            written: HashMap::new(),
            poisoned: None,
        })
    }

    /// Rows waiting for the next flush.
    pub fn pending_rows(&self) -> usize {
        self.pending.iter().map(|p| p.batch.num_rows()).sum()
    }

    /// The table's location for [`CommittedFile::path`]: `postgres://host:port/db/table`.
    fn location(&self) -> String {
        format!("postgres://{}/{}", self.settings.display, self.table.text)
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(SinkError::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    async fn write_batch(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
        row_offsets: Option<&[i64]>,
    ) -> Result<()> {
        self.check_poisoned()?;
        if batch.schema().fields() != self.schema.fields() {
            return Err(SinkError::SchemaMismatch {
                partition: partition.clone(),
                expected: self.schema.to_string(),
                found: batch.schema().to_string(),
            });
        }
        let bad = |reason: String| SinkError::Offsets {
            partition: partition.clone(),
            offsets,
            reason,
        };
        if offsets.next < offsets.first {
            return Err(bad("next is before first".to_owned()));
        }
        if let Some(o) = row_offsets {
            if o.len() != batch.num_rows() {
                return Err(bad(format!(
                    "{} row offsets for {} rows",
                    o.len(),
                    batch.num_rows()
                )));
            }
        }
        if self
            .written
            .get(partition)
            .is_some_and(|prev| offsets.first < *prev)
        {
            // A commit in flight may hold the rows in question: let it end first.
            self.finish_commit().await?;
        }
        if let Some(&prev) = self.written.get(partition) {
            if offsets.first < prev {
                // The engine read the partition again from an earlier offset (it was lost and
                // assigned again): what is pending for it was never committed and is read
                // again, so it goes; anything else would be a duplicate.
                let first_pending = self
                    .pending
                    .iter()
                    .filter(|p| &p.partition == partition)
                    .map(|p| p.range.first)
                    .min();
                match first_pending {
                    Some(f) if offsets.first <= f => {
                        self.pending.retain(|p| &p.partition != partition);
                    }
                    _ => {
                        return Err(bad(format!(
                            "this partition was already written up to {prev}"
                        )))
                    }
                }
            }
        }
        // Bounded memory: while a commit is in flight, at most PIPELINE_BYTES wait behind it.
        if self.in_flight.is_some()
            && self.pending_bytes() + batch.get_array_memory_size() > PIPELINE_BYTES
        {
            self.finish_commit().await?;
            if self.rejected.is_empty() && !self.pending.is_empty() {
                self.start_commit();
            }
        }
        self.written.insert(partition.clone(), offsets.next);
        self.pending.push(Pending {
            partition: partition.clone(),
            batch: batch.clone(),
            range: offsets,
            row_offsets: row_offsets.map(<[i64]>::to_vec),
            excluded: vec![false; batch.num_rows()],
            bytes: 0,
        });
        Ok(())
    }

    fn pending_bytes(&self) -> usize {
        self.pending
            .iter()
            .map(|p| p.batch.get_array_memory_size())
            .sum()
    }

    /// Hands the pending batches to the committer, on its own task.
    fn start_commit(&mut self) {
        let Some(committer) = self.committer.take() else {
            return;
        };
        let pending = std::mem::take(&mut self.pending);
        self.in_flight = Some(tokio::spawn(committer.commit(pending)));
    }

    /// Waits for the commit in flight, if any, and takes in its outcome: committed files go
    /// to `completed`; refused rows to `rejected` (or an error under [`RejectPolicy::Fail`]),
    /// their batches back in front of what was written since.
    async fn finish_commit(&mut self) -> Result<()> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        let (committer, mut batches, done) = match handle.await {
            Ok(r) => r,
            Err(e) => {
                let e = pg_error(
                    &self.settings.display,
                    "flushing",
                    format!("the commit task failed: {e}"),
                );
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
        };
        self.committer = Some(committer);
        match done {
            Done::Committed { written, dropped } => {
                let location = self.location();
                self.completed.extend(
                    batches
                        .drain(..)
                        .zip(written)
                        .filter(|(p, _)| !dropped.contains(&p.partition))
                        .map(|(p, wrote)| CommittedFile {
                            path: location.clone(),
                            partition: p.partition,
                            offsets: p.range,
                            rows: if wrote {
                                p.excluded.iter().filter(|x| !**x).count() as u64
                            } else {
                                0
                            },
                            bytes: p.bytes,
                        }),
                );
                for d in dropped {
                    self.written.remove(&d);
                }
                Ok(())
            }
            Done::Refused(refused) => {
                let total: usize = batches.iter().map(|p| p.batch.num_rows()).sum();
                let rows: Vec<RejectedRow> = refused
                    .into_iter()
                    .map(|r| {
                        let p = &batches[r.pending];
                        RejectedRow {
                            partition: p.partition.clone(),
                            offset: p.row_offsets.as_ref().map(|o| o[r.row]),
                            error: r.error,
                            row: row_json(&p.batch, r.row),
                        }
                    })
                    .collect();
                batches.append(&mut self.pending);
                self.pending = batches;
                match self.config.on_reject {
                    RejectPolicy::Fail => {
                        let first = &rows[0];
                        Err(SinkError::Rejected {
                            partition: first.partition.clone(),
                            offset: first.offset,
                            message: format!(
                                "{} ({} of {total} rows rejected)",
                                first.error,
                                rows.len(),
                            ),
                        })
                    }
                    RejectPolicy::Report => {
                        // Nothing is committed yet: the engine deals with these rows first,
                        // and the next flush commits the rest.
                        self.rejected.extend(rows);
                        Ok(())
                    }
                }
            }
            Done::Failed { error, poison } => {
                batches.append(&mut self.pending);
                self.pending = batches;
                if poison {
                    self.poisoned = Some(error.to_string());
                }
                Err(error)
            }
        }
    }
}

/// Rows (by Arrow memory) that may wait behind a commit in flight before a write waits for it.
const PIPELINE_BYTES: usize = 256 << 20;

fn table_error(server: &str, table: &TableName, differences: &[Difference]) -> SinkError {
    let list: Vec<String> = differences
        .iter()
        .filter(|d| d.blocking)
        .map(ToString::to_string)
        .collect();
    pg_error(
        server,
        format!("checking {}", table.text),
        format!(
            "{} (`kingest setup CONFIG` lists every difference)",
            list.join("; ")
        ),
    )
}

fn plan_for(
    config: &PostgresSinkConfig,
    schema: &SchemaRef,
    table: &TableName,
    offsets: &TableName,
    targets: Vec<Target>,
) -> Arc<Plan> {
    let key = config.key();
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    txn::plan(
        Encoder::new(targets, !key.is_empty()),
        &table.quoted,
        &columns,
        key,
        offsets.quoted.clone(),
        config.group_id.clone(),
    )
}

/// One row as a JSON object, for dead letters.
fn row_json(batch: &RecordBatch, row: usize) -> String {
    let mut out = Vec::new();
    let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
    let written = w.write(&batch.slice(row, 1)).and_then(|()| w.finish());
    match written {
        Ok(()) => String::from_utf8_lossy(&out).trim_end().to_owned(),
        Err(e) => format!("{{\"unprintable_row\": {:?}}}", e.to_string()),
    }
}

/// Reads the stored offsets of `group`, reconnecting as needed.
async fn read_offsets(
    settings: Settings,
    client: Option<Arc<Client>>,
    offsets_table: String,
    group: String,
    retry: RetryPolicy,
    gate: Arc<Mutex<()>>,
) -> Result<CommittedOffsets> {
    // After any commit in flight: its offsets are about to count.
    let _after_commits = gate.lock().await;
    let sql = format!(
        "SELECT topic, partition, next_offset FROM {offsets_table} \
         WHERE consumer_group = $1 AND next_offset >= 0"
    );
    let mut client = client.filter(|c| !c.is_closed());
    let mut backoff = Backoff::new(retry);
    loop {
        let c = match client.take() {
            Some(c) => c,
            None => connect(&settings, retry).await?,
        };
        match c.query(&sql, &[&group]).await {
            Ok(rows) => {
                return Ok(rows
                    .iter()
                    .map(|r| ((r.get::<_, String>(0), r.get::<_, i32>(1)), r.get(2)))
                    .collect())
            }
            Err(e) if classify(&e) == ErrorClass::Retry => {
                tracing::warn!(error = %describe(&e), "reading offsets failed; retrying");
                if !backoff.wait().await {
                    return Err(pg_error(&settings.display, "reading offsets", describe(&e)));
                }
            }
            Err(e) => return Err(pg_error(&settings.display, "reading offsets", describe(&e))),
        }
    }
}

impl Sink for PostgresSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
    ) -> Result<()> {
        self.write_batch(partition, batch, offsets, None).await
    }

    async fn write_rows(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
        row_offsets: &[i64],
    ) -> Result<()> {
        self.write_batch(partition, batch, offsets, Some(row_offsets))
            .await
    }

    /// Batches are written in the flush's transaction: any pending batch is due (the engine
    /// already sized it by its own thresholds), once the commit in flight has ended.
    fn should_flush(&self) -> bool {
        match &self.in_flight {
            Some(h) => h.is_finished(),
            None => !self.pending.is_empty(),
        }
    }

    /// Starts committing what is pending on the committer's task and returns what earlier
    /// commits made durable, without waiting: the engine decodes the next batches meanwhile.
    async fn flush_due(&mut self) -> Result<Vec<CommittedFile>> {
        self.check_poisoned()?;
        if self.in_flight.as_ref().is_some_and(JoinHandle::is_finished) {
            self.finish_commit().await?;
        }
        if self.in_flight.is_none() && self.rejected.is_empty() && !self.pending.is_empty() {
            self.start_commit();
        }
        Ok(std::mem::take(&mut self.completed))
    }

    /// Commits everything pending and waits for it (unless rows were refused: then the next
    /// flush commits the rest).
    async fn flush(&mut self) -> Result<Vec<CommittedFile>> {
        self.check_poisoned()?;
        self.finish_commit().await?;
        if self.rejected.is_empty() && !self.pending.is_empty() {
            self.start_commit();
            self.finish_commit().await?;
        }
        Ok(std::mem::take(&mut self.completed))
    }

    fn take_rejected(&mut self) -> Vec<RejectedRow> {
        std::mem::take(&mut self.rejected)
    }

    fn committed_offsets(&self) -> impl Future<Output = Result<CommittedOffsets>> + Send {
        read_offsets(
            self.settings.clone(),
            self.committer.as_ref().and_then(|c| c.client.clone()),
            self.plan.offsets_table.clone(),
            self.config.group_id.clone(),
            self.config.retry,
            self.gate.clone(),
        )
    }

    async fn close(mut self) -> Result<Vec<CommittedFile>> {
        let mut files = Vec::new();
        // A flush that rejected rows commits nothing; the next one commits the rest.
        loop {
            files.extend(self.flush().await?);
            if self.pending.is_empty() && self.in_flight.is_none() && self.rejected.is_empty() {
                break;
            }
            for r in std::mem::take(&mut self.rejected) {
                tracing::warn!(partition = %r.partition, offset = ?r.offset, error = %r.error, row = %r.row, "row rejected by PostgreSQL while closing");
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes one setting unusable.
    type Spoil = fn(&mut PostgresSinkConfig);

    /// `setup` and `open` name the config key whose value cannot be used.
    #[test]
    fn locations_name_the_bad_key() {
        let good = PostgresSinkConfig::new("postgres://u@localhost/db", "s.events", "g");
        let (settings, table, offsets) = locations(&good).unwrap();
        assert!(settings.display.contains("localhost"), "{settings:?}");
        assert_eq!(table.quoted, "\"s\".\"events\"");
        assert_eq!(offsets.quoted, "\"kingest_offsets\"");
        let spoilt: [(&str, Spoil); 3] = [
            ("sink.url", |c| {
                c.url = "postgres://h/db?sslmode=bogus".into()
            }),
            ("sink.table", |c| c.table = "a.b.c".into()),
            ("sink.offsets_table", |c| c.offsets_table = "a.".into()),
        ];
        for (key, spoil) in spoilt {
            let mut config = good.clone();
            spoil(&mut config);
            match locations(&config) {
                Err(SinkError::Location { location, .. }) => assert_eq!(location, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
