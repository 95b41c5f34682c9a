//! The Parquet sink's object store and maintenance settings: `[sink.storage]` (object store
//! options over the environment), `[sink.retry]` (how failed object store requests are
//! retried), `[sink.compaction]` (what `kingest compact` merges) and `[sink.retention]` (which
//! old files it deletes).
//!
//! They are separate tables of the `[sink]` section, and kept apart from the Parquet variant's
//! plain fields, so a table sink (Iceberg, Delta) can take the same tables: a warehouse on S3
//! needs the same options and retries, and its `kingest compact` the same targets.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, ConfigError, HumanDuration};

/// Object store options by key, as object_store (and delta-rs's `storage_options`, which
/// kafka-delta-ingest passes through) name them: `aws_endpoint`, `aws_region`,
/// `aws_allow_http`, `azure_storage_account_name`, `google_service_account`, ... A key here wins
/// over the environment variable of the same name.
pub type StorageOptions = BTreeMap<String, String>;

/// How failed object store requests are retried (`[sink.retry]`): object_store retries a
/// request that failed with a server error (5xx), 429 or 408, or that could not be sent or
/// whose connection dropped, after a backoff that starts at `backoff` and doubles up to
/// `max_backoff` (with jitter), until `max_retries` retries or `timeout` since the first
/// attempt; then the error reaches the run, naming the operation and the object.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    /// Retries of one request (default 10).
    #[serde(default = "default_retries")]
    pub max_retries: usize,
    /// Give up retrying a request this long after its first attempt (default `3m`).
    #[serde(default = "default_retry_timeout")]
    pub timeout: HumanDuration,
    /// The first backoff (default `100ms`).
    #[serde(default = "default_backoff")]
    pub backoff: HumanDuration,
    /// The longest backoff (default `15s`).
    #[serde(default = "default_max_backoff")]
    pub max_backoff: HumanDuration,
}

fn default_retries() -> usize {
    10
}

fn default_retry_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(180))
}

fn default_backoff() -> HumanDuration {
    HumanDuration(Duration::from_millis(100))
}

fn default_max_backoff() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}

impl Default for RetrySection {
    /// object_store's own defaults: 10 retries, 3 minutes, 100 ms doubling to 15 s.
    fn default() -> Self {
        Self {
            max_retries: default_retries(),
            timeout: default_retry_timeout(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
        }
    }
}

/// What `kingest compact` merges (`[sink.compaction]`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CompactionSection {
    /// The size merged files aim at (default `128MiB`): a partition's small files are packed,
    /// in offset order, into files of about this size.
    #[serde(default = "default_target")]
    pub target_file_size: ByteSize,
    /// Files below this size are small and may be merged (default: 3/4 of the target).
    pub min_file_size: Option<ByteSize>,
    /// A group of small files is rewritten only when it has at least this many (default 2).
    #[serde(default = "default_min_input_files")]
    pub min_input_files: usize,
}

fn default_target() -> ByteSize {
    ByteSize(128 << 20)
}

fn default_min_input_files() -> usize {
    2
}

impl Default for CompactionSection {
    fn default() -> Self {
        Self {
            target_file_size: default_target(),
            min_file_size: None,
            min_input_files: default_min_input_files(),
        }
    }
}

impl CompactionSection {
    /// The size below which a file counts as small.
    pub fn small_below(&self) -> u64 {
        self.min_file_size
            .map(|s| s.0)
            .unwrap_or(self.target_file_size.0 / 4 * 3)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.target_file_size.0 == 0 {
            return Err(ConfigError::invalid(
                "sink.compaction.target_file_size",
                "must be more than 0 bytes",
            ));
        }
        if self.min_input_files < 2 {
            return Err(ConfigError::invalid(
                "sink.compaction.min_input_files",
                "must be at least 2 (merging one file gains nothing)",
            ));
        }
        Ok(())
    }
}

/// Which old files `kingest compact` deletes (`[sink.retention]`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Files committed longer ago than this are deleted, except each Kafka partition's newest
    /// file, which holds the offset the job resumes from.
    pub max_age: HumanDuration,
    /// Iceberg only (`remove_orphan_files`): files under the table's location that no
    /// metadata references are deleted once last modified longer ago than this (3 days when
    /// unset, as in Iceberg; at least a minute). Delta's `VACUUM` deletes such files after
    /// `max_age`.
    #[serde(default)]
    pub orphan_files_older_than: Option<HumanDuration>,
}

/// Iceberg's default `older_than` for `remove_orphan_files`.
const ORPHAN_FILES_OLDER_THAN: Duration = Duration::from_secs(3 * 86_400);
/// The least `orphan_files_older_than` taken: below it a file a writer has just written for
/// its next commit would be taken for an orphan.
const MIN_ORPHAN_FILES_OLDER_THAN: Duration = Duration::from_secs(60);

impl RetentionSection {
    /// `orphan_files_older_than`, or its default.
    pub fn orphans_older_than(&self) -> Duration {
        self.orphan_files_older_than
            .map_or(ORPHAN_FILES_OLDER_THAN, |d| d.0)
    }

    /// `iceberg`: whether the sink is an Iceberg table (the only one with orphan removal).
    pub(super) fn validate(&self, iceberg: bool) -> Result<(), ConfigError> {
        if self.max_age.0.is_zero() {
            return Err(ConfigError::invalid(
                "sink.retention.max_age",
                "must be more than 0 (to keep nothing, delete the directory)",
            ));
        }
        match self.orphan_files_older_than {
            Some(_) if !iceberg => Err(ConfigError::invalid(
                "sink.retention.orphan_files_older_than",
                "is for Iceberg tables (a Delta table's VACUUM removes unreferenced files \
                 older than max_age; the Parquet sink has no unreferenced files)",
            )),
            Some(d) if d.0 < MIN_ORPHAN_FILES_OLDER_THAN => Err(ConfigError::invalid(
                "sink.retention.orphan_files_older_than",
                "must be at least 1m: a younger file may be one a writer is about to commit \
                 (the default is 3d, as in Iceberg)",
            )),
            _ => Ok(()),
        }
    }
}
