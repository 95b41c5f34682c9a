//! When a batch run (`kingest run --until-eof`) is done, whoever owned the partitions.
//!
//! "Ingest everything there is, then exit" means: every partition of the job's topics is
//! written to the sink up to the end offset it had when the run started (its last stable
//! offset under `read_committed`). Watching only the partitions this process happens to be
//! assigned is not enough: after a restart without static membership, the group may still
//! count the killed process as a member until its session expires, and give it half the
//! partitions. A run that stopped once its own half was read would exit 0 with the other half
//! unread. So a partition counts as done when
//!
//! - this process owns it and has read it up to its end offset (the run then writes and
//!   flushes it before exiting), or
//! - the position a new run would resume it from (the sink's offset, else the group's
//!   committed offset, as [`super::status`] computes it) has reached its end offset: another
//!   member wrote it.
//!
//! Until every partition is done the run keeps reading what it owns and waits for the rest,
//! saying every ten seconds which partitions it waits for and which member holds them. When
//! the group gives them up (a dead member's session expires, a live one leaves) the rebalance
//! assigns them here and they are read like any other. A run that sees no progress on the
//! partitions it waits for (no position moving, no change of assignment) for the timeout stops
//! with [`EngineError::Incomplete`], naming each short partition.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kingest_client::admin::Admin;
use kingest_client::Client;

use super::job::Job;
use super::status::{group_offsets, job_partitions, log_bounds, member_label};
use super::EngineError;
use crate::config::Config;
use crate::sink::Sink as _;

/// How often the sink and the group are asked about partitions owned elsewhere while this
/// process has nothing of its own left to read, and while it still has.
const CHECK_IDLE: Duration = Duration::from_secs(2);
const CHECK_BUSY: Duration = Duration::from_secs(10);
/// How often the partitions waited for are reported.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// A partition that `--until-eof` could not see written to its end offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Where a run would resume it (the sink's offset, else the group's), if anywhere.
    pub written: Option<i64>,
    /// Its end offset when the run started.
    pub end: i64,
    /// Who holds it.
    pub holder: Holder,
}

/// Who holds a partition, as far as the group says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holder {
    /// This process.
    ThisProcess,
    /// Another member, as [`member_label`] names it.
    Member(String),
    /// No member (the group is rebalancing, or has no member for it).
    Nobody,
    /// The broker does not say which member holds what (nisshi reports member ids only): the
    /// group's other members, as [`member_label`] names them.
    OneOf(Vec<String>),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::ThisProcess => write!(f, "held by this process"),
            Holder::Member(m) => write!(f, "held by {m}"),
            Holder::Nobody => write!(f, "not assigned"),
            Holder::OneOf(members) if members.is_empty() => write!(f, "not assigned"),
            Holder::OneOf(members) => write!(
                f,
                "held by one of {} (the broker does not report assignments)",
                members.join(", ")
            ),
        }
    }
}

impl std::fmt::Display for ShortPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{} ", self.topic, self.partition)?;
        match self.written {
            Some(w) => write!(f, "written up to offset {w} of {}", self.end)?,
            None => write!(f, "not written (end offset {})", self.end)?,
        }
        write!(f, ", {}", self.holder)
    }
}

/// Renders short partitions as one list (for [`EngineError::Incomplete`]).
pub fn list(short: &[ShortPartition]) -> String {
    short
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What `--until-eof` knows about the job's partitions. See the [module docs](self).
pub(super) struct Eof {
    client: Client,
    config: Config,
    /// Each partition's end offset at the start of the run, for partitions with something to
    /// read.
    targets: BTreeMap<(String, i32), i64>,
    /// Where a run would resume each partition owned elsewhere, as last asked.
    elsewhere: HashMap<(String, i32), i64>,
    /// What counted as progress last time: the positions summed, and the number of partitions
    /// owned here.
    fingerprint: (i64, usize),
    timeout: Duration,
    last_progress: Instant,
    last_check: Option<Instant>,
    last_report: Option<Instant>,
}

/// Whether the run may stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EofState {
    /// Every partition is read here or written elsewhere up to its end offset.
    Done,
    /// Something is left.
    Waiting,
}

impl Eof {
    /// The end offsets of every partition of the job's topics, now.
    pub(super) async fn at_start(
        config: &Config,
        client: &Client,
        timeout: Duration,
    ) -> Result<Eof, EngineError> {
        let admin = Admin::new(client.clone());
        let parts = job_partitions(config, client).await?;
        let bounds = log_bounds(config, &admin, &parts).await?;
        let targets = bounds
            .into_iter()
            .filter(|(_, (start, end))| end > start)
            .map(|(k, (_, end))| (k, end))
            .collect();
        let now = Instant::now();
        Ok(Eof {
            client: client.clone(),
            config: config.clone(),
            targets,
            elsewhere: HashMap::new(),
            fingerprint: (-1, 0),
            timeout,
            last_progress: now,
            last_check: None,
            last_report: None,
        })
    }

    /// Whether every partition is done; errors once nothing moved for the timeout. Cheap
    /// when only owned partitions are left; asks the sink and the group about the others
    /// every few seconds.
    pub(super) async fn check(&mut self, job: &mut Job) -> Result<EofState, EngineError> {
        let mut owned_short: Vec<((String, i32), Option<i64>)> = Vec::new();
        let mut other_short: Vec<(String, i32)> = Vec::new();
        let mut positions = 0i64;
        for (key, end) in &self.targets {
            let at = if job.owns(key) {
                job.consumer.partition_consumer().position(&key.0, key.1)
            } else {
                self.elsewhere.get(key).copied()
            };
            positions = positions.saturating_add(at.unwrap_or(-1));
            if at.unwrap_or(-1) < *end {
                if job.owns(key) {
                    owned_short.push((key.clone(), at));
                } else {
                    other_short.push(key.clone());
                }
            }
        }
        if owned_short.is_empty() && other_short.is_empty() {
            return Ok(EofState::Done);
        }
        let fingerprint = (positions, job.owned_count());
        if fingerprint != self.fingerprint {
            self.fingerprint = fingerprint;
            self.last_progress = Instant::now();
        }
        if !other_short.is_empty() {
            let every = if owned_short.is_empty() {
                CHECK_IDLE
            } else {
                CHECK_BUSY
            };
            if self.last_check.is_none_or(|t| t.elapsed() >= every) {
                self.last_check = Some(Instant::now());
                self.ask_elsewhere(job, &other_short).await?;
            }
        }
        let waited = self.last_progress.elapsed();
        if waited >= self.timeout {
            let mut short: Vec<ShortPartition> = owned_short
                .into_iter()
                .map(|(key, at)| ShortPartition {
                    end: self.targets[&key],
                    topic: key.0,
                    partition: key.1,
                    written: at,
                    holder: Holder::ThisProcess,
                })
                .collect();
            let own_id = own_member_id(job);
            short.extend(self.short(&other_short, &own_id).await);
            return Err(EngineError::Incomplete { waited, short });
        }
        // Owned partitions still being read show in the progress line; once nothing of our own
        // is left, say what is waited for (as soon as the others were asked about, then every
        // ten seconds).
        // Nothing is said before this process is first through a rebalance (it joins, which
        // may take the broker's initial delay, or a dead member's session).
        let report_due = self.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY);
        let joined = job.consumer.membership().is_some();
        if owned_short.is_empty() && joined && self.last_check.is_some() && report_due {
            self.last_report = Some(Instant::now());
            let own_id = own_member_id(job);
            let short = self.short(&other_short, &own_id).await;
            if !short.is_empty() {
                tracing::info!(
                    target: "kingest::progress",
                    "--until-eof: everything assigned here is read; waiting for {} partition(s) owned elsewhere: {}",
                    short.len(),
                    list(&short)
                );
            }
        }
        Ok(EofState::Waiting)
    }

    /// Asks the sink, then the group, where a run would resume `keys`.
    async fn ask_elsewhere(
        &mut self,
        job: &mut Job,
        keys: &[(String, i32)],
    ) -> Result<(), EngineError> {
        let sink = job.sink.committed_offsets().await?;
        let admin = Admin::new(self.client.clone());
        let group = group_offsets(&admin, &self.config.source.group, keys).await?;
        for key in keys {
            if let Some(at) = sink.get(key).or_else(|| group.get(key)) {
                self.elsewhere.insert(key.clone(), *at);
            }
        }
        Ok(())
    }

    /// The partitions in `keys` still short, with the members holding them (asked of the
    /// group; a failure to describe it leaves the holders unknown). `own_id` is this process's
    /// member id, left out of the members that may hold them.
    async fn short(&self, keys: &[(String, i32)], own_id: &str) -> Vec<ShortPartition> {
        let admin = Admin::new(self.client.clone());
        let group = match admin.describe_group(&self.config.source.group).await {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::debug!(error = %e, "describing the group failed");
                None
            }
        };
        let holder_of = |key: &(String, i32)| -> Holder {
            let Some(g) = &group else {
                return Holder::OneOf(Vec::new());
            };
            if let Some(m) = g.members.iter().find(|m| m.assignment.contains(key)) {
                return Holder::Member(member_label(m));
            }
            if g.members.iter().any(|m| !m.assignment.is_empty()) {
                return Holder::Nobody;
            }
            let others = g.members.iter().filter(|m| m.member_id != own_id);
            Holder::OneOf(others.map(member_label).collect())
        };
        keys.iter()
            .filter_map(|key| {
                let end = *self.targets.get(key)?;
                let written = self.elsewhere.get(key).copied();
                (written.unwrap_or(-1) < end).then(|| ShortPartition {
                    topic: key.0.clone(),
                    partition: key.1,
                    written,
                    end,
                    holder: holder_of(key),
                })
            })
            .collect()
    }
}

/// This process's member id, if it has one.
fn own_member_id(job: &Job) -> String {
    job.consumer
        .membership()
        .map(|(id, _)| id.to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_partitions_say_how_far_and_who_holds_them() {
        let short = [
            ShortPartition {
                topic: "ev".into(),
                partition: 3,
                written: Some(5280),
                end: 33100,
                holder: Holder::Member("member kingest-1f2e".into()),
            },
            ShortPartition {
                topic: "ev".into(),
                partition: 4,
                written: None,
                end: 12,
                holder: Holder::Nobody,
            },
            ShortPartition {
                topic: "ev".into(),
                partition: 5,
                written: Some(3),
                end: 12,
                holder: Holder::OneOf(vec!["member a-1".into(), "member b-2".into()]),
            },
        ];
        assert_eq!(
            list(&short),
            "ev-3 written up to offset 5280 of 33100, held by member kingest-1f2e; \
             ev-4 not written (end offset 12), not assigned; \
             ev-5 written up to offset 3 of 12, held by one of member a-1, member b-2 \
             (the broker does not report assignments)"
        );
    }
}
