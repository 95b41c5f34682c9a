//! `kingest reset-offsets`: move a job's consumer group — and, with `--sink`, its sink — to
//! new offsets (dgkafka's `-force-reset-earliest`/`-latest`, `kafka-consumer-groups.sh
//! --reset-offsets`).
//!
//! A job resumes each partition from its sink's offset when the sink holds one, ahead of the
//! group's committed offset (that is what makes Parquet and PostgreSQL output exactly once).
//! Resetting only the group would therefore be silently ignored for such partitions, so:
//!
//! - a partition whose sink offset differs from the new offset is a *conflict*: the reset is
//!   refused unless `--sink` is given;
//! - with `--sink`, the reset is recorded in the sink as well (for a local Parquet directory,
//!   see [`super::parquet_reset`]: files past the new offset are set aside, and an empty file
//!   records the new offset; for a Delta table, local or not, one commit removes the files
//!   past the new offset and sets the `txn` offsets, see `sink/delta/reset.rs`); sinks where
//!   that is not implemented (Parquet on object stores, PostgreSQL) refuse with the reason;
//! - likewise a partition the sink holds nothing for, when `source.start` names an offset for
//!   it or is a time: `kingest run` starts such a partition there, not at the group's offset
//!   (see [`super::status::start_overrides_group`]); with `--sink` a Parquet sink records the
//!   new offset for it;
//! - the group must have no members (a running job would overwrite the offsets at its next
//!   commit): [`plan`] reports them and [`execute`] refuses.
//!
//! [`plan`] changes nothing (it is the dry run); [`execute`] applies a plan: the sink first,
//! then the group's offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use kingest_client::admin::{Admin, OffsetSpec};
use kingest_client::{Client, ClientError};
use thiserror::Error;

use super::parquet_reset::{self, ParquetResetDone, ParquetResetPlan};
use super::status::{
    describe_group, group_offsets, job_partitions, log_bounds, resolve_columns, schema_for_offsets,
    sink_label, sink_offsets, start_overrides_group,
};
use super::{client_config, EngineError};
use crate::config::{Config, Isolation, SinkConfig, StartAt};
use crate::schema::arrow_schema;
use crate::sink::SinkError;

/// Why a reset could not be planned or applied.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ResetError {
    /// The job's configuration, or reading where it stands, failed.
    #[error(transparent)]
    Engine(Box<EngineError>),
    /// The Kafka client failed (committing the offsets, describing the group).
    #[error(transparent)]
    Client(Box<ClientError>),
    /// `--to` does not parse, or names partitions the job does not read.
    #[error("--to {0}")]
    BadTarget(String),
    /// The group has members: a running job would overwrite the reset.
    #[error("group {group:?} has {} active member(s) ({}; state {state}): stop the jobs using it first", members.len(), members.join(", "))]
    ActiveMembers {
        /// The group.
        group: String,
        /// Its state.
        state: String,
        /// Its members, as `client-id@host`.
        members: Vec<String>,
    },
    /// The sink holds other offsets for some partitions and `--sink` was not given.
    #[error("the sink ({sink}) holds offsets for {}; kingest run resumes from the sink's offsets, so resetting only the group would be ignored: add --sink to record the reset in the sink too", partitions.join(", "))]
    SinkHoldsOffsets {
        /// The sink.
        sink: String,
        /// The partitions, with the sink's offset (`events-0 at 42`).
        partitions: Vec<String>,
    },
    /// `source.start` names an offset or a time for partitions the sink holds nothing for,
    /// which `kingest run` prefers to the group's offset, and `--sink` was not given.
    #[error("source.start ({start}) decides where kingest run starts {}, not the group's offsets: add --sink to record the reset in the sink, or set source.start to earliest or latest", partitions.join(", "))]
    StartOverridesGroup {
        /// `source.start`, as it reads.
        start: String,
        /// The partitions.
        partitions: Vec<String>,
    },
    /// `--sink` cannot record a reset in this sink.
    #[error("--sink: {0}")]
    Unsupported(String),
    /// A file operation of `--sink` failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Writing an empty Parquet file that records a new offset failed.
    #[error("writing {path}: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// The error.
        source: parquet::errors::ParquetError,
    },
}

impl From<EngineError> for ResetError {
    fn from(e: EngineError) -> Self {
        ResetError::Engine(Box::new(e))
    }
}

impl From<ClientError> for ResetError {
    fn from(e: ClientError) -> Self {
        ResetError::Client(Box::new(e))
    }
}

impl From<SinkError> for ResetError {
    fn from(e: SinkError) -> Self {
        ResetError::Engine(Box::new(EngineError::from(e)))
    }
}

/// Where to move the offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetTo {
    /// The log start of every partition.
    Earliest,
    /// The log end of every partition (only new records are read).
    Latest,
    /// The first record at or after this time (ms since the epoch); the log end where no
    /// record is that late.
    Timestamp(i64),
    /// This offset in every partition (kept within the log).
    Offset(i64),
    /// These offsets for these partitions only.
    Offsets(BTreeMap<(String, i32), i64>),
}

impl FromStr for ResetTo {
    type Err = ResetError;

    /// `earliest`, `latest`, `timestamp=2024-01-01T00:00:00Z` (or a date, or ms since the
    /// epoch), `offset=N`, or `offset=TOPIC:PARTITION=N,TOPIC:PARTITION=N`.
    fn from_str(s: &str) -> Result<Self, ResetError> {
        let bad = |m: String| ResetError::BadTarget(m);
        let s = s.trim();
        match s {
            "earliest" => return Ok(ResetTo::Earliest),
            "latest" => return Ok(ResetTo::Latest),
            _ => {}
        }
        let (kind, value) = s.split_once('=').ok_or_else(|| {
            bad(format!(
                "{s:?}: expected earliest, latest, timestamp=TIME, offset=N or \
                 offset=TOPIC:PARTITION=N,..."
            ))
        })?;
        match kind.trim() {
            "timestamp" => {
                let value = value.trim();
                // The job file's own time syntax (`start = ...`): RFC 3339, a date, or ms.
                let json = match value.parse::<i64>() {
                    Ok(ms) => serde_json::Value::from(ms),
                    Err(_) => serde_json::Value::from(value),
                };
                match serde_json::from_value::<StartAt>(json) {
                    Ok(StartAt::Timestamp(ms)) => Ok(ResetTo::Timestamp(ms)),
                    Ok(_) => Err(bad(format!("timestamp={value}: not a time"))),
                    Err(e) => Err(bad(format!("timestamp={value}: {e}"))),
                }
            }
            "offset" if !value.contains(':') => {
                let n: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("offset={value}: not an offset")))?;
                if n < 0 {
                    return Err(bad(format!("offset={value}: offsets are not negative")));
                }
                Ok(ResetTo::Offset(n))
            }
            "offset" => {
                let mut map = BTreeMap::new();
                for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let parsed = item.rsplit_once('=').and_then(|(tp, n)| {
                        let (t, p) = tp.rsplit_once(':')?;
                        Some((
                            t.trim(),
                            p.trim().parse::<i32>().ok()?,
                            n.trim().parse::<i64>().ok()?,
                        ))
                    });
                    match parsed {
                        Some((t, p, n)) if !t.is_empty() && p >= 0 && n >= 0 => {
                            map.insert((t.to_owned(), p), n);
                        }
                        _ => {
                            return Err(bad(format!(
                                "offset=...: {item:?} is not TOPIC:PARTITION=OFFSET"
                            )))
                        }
                    }
                }
                if map.is_empty() {
                    return Err(bad("offset=: no offsets given".to_owned()));
                }
                Ok(ResetTo::Offsets(map))
            }
            other => Err(bad(format!(
                "{other:?}: expected earliest, latest, timestamp=TIME or offset=..."
            ))),
        }
    }
}

impl fmt::Display for ResetTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResetTo::Earliest => write!(f, "earliest"),
            ResetTo::Latest => write!(f, "latest"),
            ResetTo::Timestamp(ms) => write!(f, "timestamp={ms}"),
            ResetTo::Offset(n) => write!(f, "offset={n}"),
            ResetTo::Offsets(m) => {
                let items: Vec<String> =
                    m.iter().map(|((t, p), n)| format!("{t}:{p}={n}")).collect();
                write!(f, "offset={}", items.join(","))
            }
        }
    }
}

/// One partition of a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResetRow {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset now.
    pub group: Option<i64>,
    /// The sink's offset now.
    pub sink: Option<i64>,
    /// The log start offset.
    pub log_start: i64,
    /// The log end offset.
    pub log_end: i64,
    /// The offset the group (and with `--sink` the sink) moves to.
    pub new: i64,
    /// Why `new` is not exactly what was asked (clamped to the log, rounded to a file).
    pub note: Option<String>,
}

/// What a reset will do. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResetPlan {
    /// The consumer group.
    pub group: String,
    /// Its state.
    pub group_state: String,
    /// Its members (a reset is refused while there are any).
    pub members: Vec<String>,
    /// The sink, as `parquet ./data`, `stdout`, ...
    pub sink: String,
    /// Whether the reset is recorded in the sink too.
    pub with_sink: bool,
    /// `source.start`, as it reads (for messages).
    pub start: String,
    /// Every partition reset.
    pub rows: Vec<ResetRow>,
    /// Partitions whose sink offset differs from the new one, as `events-0 at 42`: without
    /// `--sink`, their reset would be ignored.
    pub sink_conflicts: Vec<String>,
    /// Partitions the sink holds nothing for but whose `source.start` (an offset or a time)
    /// `kingest run` prefers to the group's offset: without `--sink`, their reset would be
    /// ignored too.
    pub start_conflicts: Vec<String>,
    /// With `--sink` on a local Parquet directory: the files set aside and the offsets
    /// recorded.
    pub parquet: Option<ParquetResetPlan>,
    /// With `--sink` on a Delta table: the files removed and the offsets recorded.
    pub delta: Option<crate::sink::delta::DeltaResetPlan>,
    /// Why `--sink` cannot be applied here, when it cannot.
    pub sink_unsupported: Option<String>,
    /// With `--sink` on an Iceberg table: the table, where a snapshot records the offsets.
    pub iceberg_table: Option<String>,
}

impl ResetPlan {
    /// Why [`execute`] would refuse this plan, if it would.
    pub fn refusal(&self) -> Option<ResetError> {
        if !self.members.is_empty() {
            return Some(ResetError::ActiveMembers {
                group: self.group.clone(),
                state: self.group_state.clone(),
                members: self.members.clone(),
            });
        }
        if !self.with_sink && !self.sink_conflicts.is_empty() {
            return Some(ResetError::SinkHoldsOffsets {
                sink: self.sink.clone(),
                partitions: self.sink_conflicts.clone(),
            });
        }
        if !self.with_sink && !self.start_conflicts.is_empty() {
            return Some(ResetError::StartOverridesGroup {
                start: self.start.clone(),
                partitions: self.start_conflicts.clone(),
            });
        }
        if self.with_sink {
            if let Some(why) = &self.sink_unsupported {
                return Some(ResetError::Unsupported(why.clone()));
            }
        }
        None
    }
}

/// What to do by hand for a PostgreSQL sink: the statements that move its offsets.
fn postgres_hint(group: &str, offsets_table: &str, table: &str, rows: &[ResetRow]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let updates: Vec<String> = rows
        .iter()
        .filter(|r| r.sink.is_some_and(|s| s != r.new))
        .map(|r| {
            format!(
                "UPDATE {offsets_table} SET next_offset = {} WHERE consumer_group = {} AND \
                 topic = {} AND partition = {};",
                r.new,
                quote(group),
                quote(&r.topic),
                r.partition
            )
        })
        .collect();
    format!(
        "recording a reset in PostgreSQL is not implemented here. By hand, with the jobs \
         stopped, in one transaction: remove the rows of {table} that came from offsets at or \
         past the new ones, if they are to be read again (in upsert mode they replace \
         themselves), and run {}; then reset the group without --sink",
        updates.join(" ")
    )
}

/// `source.start` as a user wrote it, near enough.
fn start_text(start: &StartAt) -> String {
    match start {
        StartAt::Earliest => "earliest".to_owned(),
        StartAt::Latest => "latest".to_owned(),
        StartAt::Timestamp(ms) => format!("{ms} ms"),
        StartAt::Offsets(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|((t, p), o)| format!("{t}:{p} = {o}"))
                .collect();
            format!("offsets {}", items.join(", "))
        }
    }
}

/// The requested offset of one partition, clamped to its log, with a note when it was.
fn target(
    to: &ResetTo,
    key: &(String, i32),
    start: i64,
    end: i64,
    by_time: &HashMap<(String, i32), i64>,
) -> Option<(i64, Option<String>)> {
    let clamp = |n: i64| {
        if n < start {
            (start, Some(format!("{n} is before the log start: clamped")))
        } else if n > end {
            (end, Some(format!("{n} is past the log end: clamped")))
        } else {
            (n, None)
        }
    };
    Some(match to {
        ResetTo::Earliest => (start, None),
        ResetTo::Latest => (end, None),
        ResetTo::Timestamp(_) => match by_time.get(key) {
            Some(&o) if o >= 0 => clamp(o),
            _ => (end, Some("no record that late: the log end".to_owned())),
        },
        ResetTo::Offset(n) => clamp(*n),
        ResetTo::Offsets(m) => clamp(*m.get(key)?),
    })
}

/// Works out a reset without changing anything (the dry run). `topics`, when not empty,
/// restricts it to those topics; `with_sink` plans recording it in the sink too.
pub async fn plan(
    config: &Config,
    client: &Client,
    to: &ResetTo,
    topics: &[String],
    with_sink: bool,
) -> Result<ResetPlan, ResetError> {
    let admin = Admin::new(client.clone());
    let mut parts = job_partitions(config, client).await?;
    if !topics.is_empty() {
        parts.retain(|(t, _)| topics.contains(t));
    }
    if let ResetTo::Offsets(m) = to {
        let known: BTreeSet<&(String, i32)> = parts.iter().collect();
        if let Some((t, p)) = m.keys().find(|k| !known.contains(k)) {
            return Err(ResetError::BadTarget(format!(
                "offset=...: {t}:{p} is not a partition the job reads{}",
                if topics.is_empty() {
                    ""
                } else {
                    " (with --topic)"
                }
            )));
        }
        parts.retain(|k| m.contains_key(k));
    }
    if parts.is_empty() {
        return Err(ResetError::BadTarget(format!(
            "{to}: no partition to reset (check source.topics and --topic)"
        )));
    }
    let group = &config.source.group;
    let (group_state, members) = describe_group(&admin, group).await?;
    let committed = group_offsets(&admin, group, &parts).await?;
    let bounds = log_bounds(config, &admin, &parts).await?;
    let by_time = match to {
        ResetTo::Timestamp(ms) => {
            let specs: Vec<(&str, i32, OffsetSpec)> = parts
                .iter()
                .map(|(t, p)| (t.as_str(), *p, OffsetSpec::Timestamp(*ms)))
                .collect();
            let read_committed = config.source.isolation == Isolation::ReadCommitted;
            admin
                .list_offsets(&specs, read_committed)
                .await?
                .into_iter()
                .map(|(k, l)| (k, l.offset))
                .collect()
        }
        _ => HashMap::new(),
    };
    let schema = schema_for_offsets(config, client).await;
    let sink = sink_offsets(config, schema.clone()).await?;

    let mut rows = Vec::new();
    for key in &parts {
        let (start, end) = bounds.get(key).copied().unwrap_or((0, 0));
        let Some((new, note)) = target(to, key, start, end, &by_time) else {
            continue;
        };
        rows.push(ResetRow {
            topic: key.0.clone(),
            partition: key.1,
            group: committed.get(key).copied(),
            sink: sink.get(key).copied(),
            log_start: start,
            log_end: end,
            new,
            note,
        });
    }

    let mut parquet = None;
    let mut sink_unsupported = None;
    let mut object_store = None;
    if with_sink {
        if let SinkConfig::Parquet {
            path, partition_by, ..
        } = &config.sink
        {
            let files = parquet_reset::committed_files(config, schema).await?;
            match parquet_reset::local_root(path) {
                Some(root) => {
                    let mut partitions = Vec::new();
                    for row in &mut rows {
                        let key = (row.topic.clone(), row.partition);
                        let f = files.get(&key).map(Vec::as_slice).unwrap_or(&[]);
                        let pin = row.sink.is_none() && start_overrides_group(config, &key);
                        let p = parquet_reset::plan_partition(
                            &row.topic,
                            row.partition,
                            row.new,
                            f,
                            pin,
                        );
                        if p.new != row.new {
                            let file = p.set_aside.iter().map(|f| (f.first, f.next)).min();
                            row.note = Some(match file {
                                Some((first, next)) => format!(
                                    "{} is inside a file covering [{first}, {next}): rewound to {}, the sink keeps whole files",
                                    row.new, p.new
                                ),
                                None => format!("rewound to {}", p.new),
                            });
                            row.new = p.new;
                        }
                        partitions.push(p);
                    }
                    parquet = Some(ParquetResetPlan {
                        root,
                        group: group.clone(),
                        marker_dir: partition_by.as_deref().map(crate::sink::marker_subdir),
                        partitions,
                    });
                }
                None => object_store = Some((path.clone(), files)),
            }
        }
    }
    let mut delta = None;
    if with_sink {
        if let Some(dc) = super::delta_config(config)? {
            let targets: Vec<(String, i32, i64)> = rows
                .iter()
                .map(|r| (r.topic.clone(), r.partition, r.new))
                .collect();
            let p = crate::sink::delta::plan_reset(&dc, &targets).await?;
            for (row, part) in rows.iter_mut().zip(&p.partitions) {
                if part.new != row.new {
                    let file = part.removed.iter().map(|f| (f.first, f.next)).min();
                    row.note = Some(match file {
                        Some((first, next)) => format!(
                            "{} is inside a file covering [{first}, {next}): rewound to {}, the table keeps whole files",
                            row.new, part.new
                        ),
                        None => format!("rewound to {}", part.new),
                    });
                    row.new = part.new;
                }
            }
            delta = Some(p);
        }
    }
    let mut iceberg_table = None;
    if with_sink {
        if let Some(ic) = super::iceberg_config(config)? {
            for row in &mut rows {
                if let Some(s) = row.sink.filter(|s| *s > row.new) {
                    row.note = Some(format!(
                        "rows of offsets {}..{s} stay in the table and will be there twice: \
                         delete them first (e.g. DELETE FROM {} WHERE partition = {} AND \
                         offset >= {}, with a partition and an offset column)",
                        row.new, ic.table, row.partition, row.new
                    ));
                }
            }
            iceberg_table = Some(ic.table);
        }
    }
    let recordable = parquet.is_some() || delta.is_some() || iceberg_table.is_some();
    let sink_conflicts: Vec<String> = rows
        .iter()
        .filter_map(|r| match r.sink {
            Some(s) if s != r.new => Some(format!("{}-{} at {s}", r.topic, r.partition)),
            _ => None,
        })
        .collect();
    let start_conflicts: Vec<String> = rows
        .iter()
        .filter(|r| r.sink.is_none())
        .filter(|r| start_overrides_group(config, &(r.topic.clone(), r.partition)))
        .map(|r| format!("{}-{}", r.topic, r.partition))
        .collect();
    if with_sink && !recordable && !start_conflicts.is_empty() {
        sink_unsupported = Some(format!(
            "source.start ({}) decides where kingest run starts {} and the {} sink cannot \
             record a reset: set source.start to earliest or latest and reset without --sink",
            start_text(&config.source.start),
            start_conflicts.join(", "),
            sink_label(config)
        ));
    }
    if with_sink && !recordable && sink_unsupported.is_none() && !sink_conflicts.is_empty() {
        sink_unsupported = Some(match &object_store {
            Some((path, files)) => {
                let affected: Vec<&str> = rows
                    .iter()
                    .flat_map(|r| {
                        files
                            .get(&(r.topic.clone(), r.partition))
                            .into_iter()
                            .flatten()
                            .filter(move |f| f.next > r.new)
                    })
                    .map(|f| f.rel.as_str())
                    .collect();
                format!(
                    "recording a reset in an object store ({path}) is not implemented; move \
                     these files out of the dataset by hand, then reset without --sink: {}",
                    if affected.is_empty() {
                        "(none)".to_owned()
                    } else {
                        affected.join(", ")
                    }
                )
            }
            None => match super::postgres_config(config) {
                Some(pg) => postgres_hint(&pg.group_id, &pg.offsets_table, &pg.table, &rows),
                None => format!(
                    "recording a reset in the {} sink is not implemented; its offsets for {} stay",
                    sink_label(config),
                    sink_conflicts.join(", ")
                ),
            },
        });
    }
    Ok(ResetPlan {
        group: group.clone(),
        group_state,
        members,
        sink: sink_label(config),
        with_sink,
        rows,
        sink_conflicts,
        start_conflicts,
        start: start_text(&config.source.start),
        parquet,
        delta,
        sink_unsupported,
        iceberg_table,
    })
}

/// What [`execute`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResetDone {
    /// Partitions whose group offset was committed.
    pub committed: usize,
    /// What was done to a local Parquet sink.
    pub parquet: Option<ParquetResetDone>,
    /// The Delta table version that recorded the reset.
    pub delta_version: Option<i64>,
    /// The Iceberg snapshot that records the new offsets (none when the table held them).
    pub iceberg_snapshot: Option<i64>,
}

/// Applies `plan`: the sink's part first, then the group's offsets. Refuses (changing
/// nothing) when [`ResetPlan::refusal`] says so, or when the group gained members since.
pub async fn execute(
    config: &Config,
    client: &Client,
    plan: &ResetPlan,
) -> Result<ResetDone, ResetError> {
    if let Some(e) = plan.refusal() {
        return Err(e);
    }
    let (state, members) = describe_group(&Admin::new(client.clone()), &plan.group).await?;
    if !members.is_empty() {
        return Err(ResetError::ActiveMembers {
            group: plan.group.clone(),
            state,
            members,
        });
    }
    let parquet = match &plan.parquet {
        Some(p) => {
            // Files recording offsets have the sink's schema, so readers of the dataset see
            // one schema.
            let schema = if p.partitions.iter().any(|x| x.marker) {
                let columns = resolve_columns(config, client).await.map_err(|e| {
                    ResetError::Unsupported(format!(
                        "the job's columns are needed for the file that records the new \
                         offsets: {e}"
                    ))
                })?;
                arrow_schema(&columns)
            } else {
                std::sync::Arc::new(arrow_schema::Schema::empty())
            };
            let p = p.clone();
            let done = tokio::task::spawn_blocking(move || parquet_reset::apply(&p, &schema))
                .await
                .map_err(|e| ResetError::Unsupported(format!("the file task failed: {e}")))??;
            Some(done)
        }
        None => None,
    };
    let delta_version = match (&plan.delta, super::delta_config(config)?) {
        (Some(p), Some(dc)) => Some(crate::sink::delta::apply_reset(&dc, p).await?),
        _ => None,
    };
    let offsets: HashMap<(String, i32), i64> = plan
        .rows
        .iter()
        .map(|r| ((r.topic.clone(), r.partition), r.new))
        .collect();
    let mut iceberg_snapshot = None;
    if plan.iceberg_table.is_some() {
        if let Some(ic) = super::iceberg_config(config)? {
            let sink: crate::sink::CommittedOffsets =
                offsets.iter().map(|(k, v)| (k.clone(), *v)).collect();
            iceberg_snapshot = crate::sink::iceberg::record_offsets(&ic, &sink).await?;
        }
    }
    // Refused while the group has members: a job that started in between keeps its offsets.
    kingest_client::admin::Admin::new(client.clone())
        .alter_consumer_group_offsets(&plan.group, &offsets, Some("kingest reset-offsets"))
        .await?;
    Ok(ResetDone {
        committed: offsets.len(),
        parquet,
        delta_version,
        iceberg_snapshot,
    })
}

/// Connects and plans (see [`plan`]); for callers without a client.
pub async fn plan_for(
    config: &Config,
    to: &ResetTo,
    topics: &[String],
    with_sink: bool,
) -> Result<(Client, ResetPlan), ResetError> {
    let client = Client::connect(client_config(config)?).await?;
    let p = plan(config, &client, to, topics, with_sink).await?;
    Ok((client, p))
}

#[cfg(test)]
#[path = "reset_tests.rs"]
mod tests;
