//! `kingest compact`: the job's sink, opened for maintenance (compaction and retention, see
//! [`crate::sink::maintenance`]), chosen by `[sink] type`.
//!
//! [`Maintainer`] is the one place that maps a sink type to its [`Maintain`] implementation:
//! the plain Parquet sink, Delta tables (an `OPTIMIZE` commit, `VACUUM` and log cleanup) and
//! Iceberg tables (a `replace` snapshot, snapshot expiry); a sink adds a variant whose `plan`
//! and `execute` commit its rewrite, and the command needs no other change. Sinks with
//! nothing to compact (PostgreSQL, stdout) are refused with the reason.

use std::sync::Arc;

use arrow_schema::Schema;

use super::{delta_config, iceberg_config, parquet_config, EngineError};
use crate::config::{Config, SinkConfig};
use crate::sink::iceberg::{IcebergMaintenance, IcebergRetention};
use crate::sink::maintenance::{Maintain, MaintenanceDone, MaintenancePlan};
use crate::sink::parquet::compact::{CompactionSettings, ParquetMaintenance};
use crate::sink::{DeltaMaintenance, ParquetSink};

/// A sink opened for maintenance: see the [module docs](self).
pub enum Maintainer {
    /// Parquet files in a directory (compaction and retention) or an object store (retention).
    Parquet(Box<ParquetMaintenance>),
    /// A Delta table: `OPTIMIZE`, and with a retention `VACUUM` and log cleanup.
    Delta(Box<DeltaMaintenance>),
    /// An Iceberg table: `rewrite_data_files` as a `replace` snapshot, `expire_snapshots`.
    Iceberg(Box<IcebergMaintenance>),
}

impl Maintainer {
    /// What `kingest compact` would do; changes nothing.
    pub async fn plan(&self) -> Result<MaintenancePlan, EngineError> {
        Ok(match self {
            Maintainer::Parquet(m) => m.plan().await?,
            Maintainer::Delta(m) => m.plan().await?,
            Maintainer::Iceberg(m) => m.plan().await?,
        })
    }

    /// Applies `plan`.
    pub async fn execute(&self, plan: &MaintenancePlan) -> Result<MaintenanceDone, EngineError> {
        Ok(match self {
            Maintainer::Parquet(m) => m.execute(plan).await?,
            Maintainer::Delta(m) => m.execute(plan).await?,
            Maintainer::Iceberg(m) => m.execute(plan).await?,
        })
    }
}

/// Opens the job's sink for maintenance with its `[sink.compaction]` and `[sink.retention]`
/// settings. Needs no broker: a Parquet sink's files carry their own schema and offsets.
pub async fn open_maintainer(config: &Config) -> Result<Maintainer, EngineError> {
    match &config.sink {
        SinkConfig::Parquet {
            compaction,
            retention,
            ..
        } => {
            let Some(mut pc) = parquet_config(config)? else {
                return Err(EngineError::Setup("not a Parquet sink".into()));
            };
            // The files' own schemas are merged; the job's columns play no part, and with
            // `partition_by` the directories are read as they are.
            pc.partition_by = None;
            let sink = ParquetSink::open(pc, Arc::new(Schema::empty())).await?;
            let settings = CompactionSettings {
                target_bytes: compaction.target_file_size.0,
                small_below: compaction.small_below(),
                min_input_files: compaction.min_input_files,
            };
            Ok(Maintainer::Parquet(Box::new(sink.maintenance(
                settings,
                retention.map(|r| r.max_age.0),
            ))))
        }
        SinkConfig::Delta {
            compaction,
            retention,
            ..
        } => {
            let Some(dc) = delta_config(config)? else {
                return Err(EngineError::Setup("not a Delta sink".into()));
            };
            let settings = CompactionSettings {
                target_bytes: compaction.target_file_size.0,
                small_below: compaction.small_below(),
                min_input_files: compaction.min_input_files,
            };
            let m = DeltaMaintenance::open(&dc, settings, retention.map(|r| r.max_age.0)).await?;
            Ok(Maintainer::Delta(Box::new(m)))
        }
        SinkConfig::Iceberg {
            compaction,
            retention,
            ..
        } => {
            let Some(ic) = iceberg_config(config)? else {
                return Err(EngineError::Setup("not an Iceberg sink".into()));
            };
            let settings = CompactionSettings {
                target_bytes: compaction.target_file_size.0,
                small_below: compaction.small_below(),
                min_input_files: compaction.min_input_files,
            };
            let retention = retention.map(|r| IcebergRetention {
                max_age: r.max_age.0,
                orphans_older_than: r.orphans_older_than(),
            });
            let m = crate::sink::iceberg::open_maintenance(&ic, settings, retention).await?;
            Ok(Maintainer::Iceberg(Box::new(m)))
        }
        SinkConfig::Postgres { .. } => Err(EngineError::Setup(
            "kingest compact: a PostgreSQL sink has no files to compact (use VACUUM and the table's own retention)".into(),
        )),
        SinkConfig::Stdout => Err(EngineError::Setup(
            "kingest compact: the stdout sink keeps nothing to compact".into(),
        )),
    }
}
